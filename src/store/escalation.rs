//! Escalation state per alert (tier, round, epoch: a late or repeated timer
//! never pages twice) and the recent severities "risk rises quickly" compares
//! against. Tables from migrations 0003_escalation. (Ported as written with
//! the previous store.)

use super::effects::write_effects;
use super::{in_tx, json_text, ms, on_pool, open_alert_ids, Effects, Result, Store};

/// The conditional move of an escalation to its next position.
macro_rules! advance_query {
    ($alert_id:expr, $epoch:expr, $tier:expr, $round:expr, $to_tier:expr, $to_round:expr, $now:expr) => {
        sqlx::query(
            "UPDATE escalations SET tier = $5, round = $6, updated_at_ms = $7 \
             WHERE alert_id = $1 AND status = 'active' AND epoch = $2 AND tier = $3 AND round = $4",
        )
        .bind($alert_id)
        .bind($epoch)
        .bind($tier)
        .bind($round)
        .bind($to_tier)
        .bind($to_round)
        .bind($crate::store::ms($now))
    };
}

/// Starts (or restarts, with a new epoch) an escalation unless one is active.
/// A new epoch is a new PagerDuty incident: nothing triggered under it yet.
macro_rules! start_query {
    ($alert_id:expr, $tenant:expr, $tier:expr, $reason:expr, $now:expr) => {
        sqlx::query_as(
            "INSERT INTO escalations (alert_id, tenant_id, status, tier, round, epoch, reason, started_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'active', $3, 0, 1, $4, $5, $5) \
             ON CONFLICT (alert_id) DO UPDATE SET status = 'active', tier = excluded.tier, round = 0, \
               epoch = escalations.epoch + 1, reason = excluded.reason, started_at_ms = excluded.started_at_ms, \
               updated_at_ms = excluded.updated_at_ms, pd_triggered = 0, pd_dedup_key = NULL \
             WHERE escalations.status <> 'active' RETURNING *",
        )
        .bind($alert_id)
        .bind($tenant)
        .bind($tier)
        .bind($reason)
        .bind($crate::store::ms($now))
    };
}

/// Ends an escalation (`acknowledged` from active only; `stopped` from any).
macro_rules! end_query {
    ($alert_id:expr, $to:expr, $now:expr) => {
        sqlx::query_as(
            "UPDATE escalations SET status = $2, updated_at_ms = $3 \
             WHERE alert_id = $1 AND status <> 'stopped' AND ($2 = 'stopped' OR status = 'active') RETURNING *",
        )
        .bind($alert_id)
        .bind($to)
        .bind($crate::store::ms($now))
    };
}

use chrono::{DateTime, Utc};

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct EscalationRow {
    pub alert_id: String,
    pub tenant_id: String,
    /// active | acknowledged | stopped
    pub status: String,
    pub tier: i64,
    pub round: i64,
    pub epoch: i64,
    pub reason: Option<String>,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    pub bumped_at_ms: Option<i64>,
    pub pd_triggered: i64,
    /// The PagerDuty dedup key this epoch triggered under (migration 0016);
    /// `None` with `pd_triggered` for a row written before it.
    pub pd_dedup_key: Option<String>,
}

/// A tier paged: which position of the path, when, and who or what paged it
/// (migration 0016).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct EscalationPage {
    pub alert_id: String,
    pub epoch: i64,
    pub round: i64,
    pub tier: i64,
    pub paged_at_ms: i64,
    /// `start`, `step`, `escalate_now` or `bot` (see the migration).
    pub how: String,
    /// The person who clicked **Escalate now**, when one did.
    pub paged_by: Option<String>,
    /// Why the bot moved up a tier (`bot`).
    pub reason: Option<String>,
}

/// A step that pages: the escalation moves from `from` to `to` (tier,
/// round) within `epoch`, only if it still stands there.
#[derive(Clone, Debug)]
pub struct EscalationMove<'a> {
    pub alert_id: &'a str,
    pub epoch: i64,
    pub from: (i64, i64),
    pub to: (i64, i64),
    /// The PagerDuty dedup key the page triggered under, when it did.
    pub pd_key: Option<&'a str>,
    /// Recorded with the page (see [`EscalationPage`]).
    pub how: &'a str,
    pub by: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// A (re)start of an alert's escalation and what conditions it.
#[derive(Clone, Debug)]
pub struct EscalationStart<'a> {
    pub alert_id: &'a str,
    pub tenant: &'a str,
    pub tier: i64,
    pub reason: &'a str,
    /// Only when the alert's escalation is still at this epoch (0: none
    /// yet): a click decided on one state of the path acts on it only.
    pub after_epoch: Option<i64>,
    /// A re-arm: the alert's acknowledgement by this person is cleared in
    /// the same transaction, and nothing starts if it is no longer there.
    pub rearm_from: Option<&'a str>,
}

/// An acknowledgement: the alert's, decided on `version` of the alert, with
/// what the alert shows from then on.
#[derive(Clone, Debug)]
pub struct AlertAck<'a> {
    pub alert_id: &'a str,
    pub user: &'a str,
    pub version: i64,
    pub shown: Option<&'a serde_json::Value>,
}

impl Store {
    /// Starts (or restarts, with a new epoch) an alert's escalation at `tier`;
    /// `None` when one is already active.
    pub async fn start_escalation(
        &self,
        alert_id: &str,
        tenant: &str,
        tier: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<EscalationRow>> {
        Ok(
            on_pool!(self, p => start_query!(alert_id, tenant, tier, reason, now)
            .fetch_optional(p)
            .await?),
        )
    }

    /// The ids of a tenant's alerts (and roll-ups) whose escalation is
    /// active: one read for a poll's many members, not one per alert.
    pub async fn active_escalations(
        &self,
        tenant: &str,
    ) -> Result<std::collections::HashSet<String>> {
        let rows: Vec<(String,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT alert_id FROM escalations WHERE tenant_id = $1 AND status = 'active'",
        )
        .bind(tenant)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn get_escalation(&self, alert_id: &str) -> Result<Option<EscalationRow>> {
        Ok(
            on_pool!(self, p => sqlx::query_as("SELECT * FROM escalations WHERE alert_id = $1")
            .bind(alert_id)
            .fetch_optional(p)
            .await?),
        )
    }

    /// The escalations of a tenant's open alerts, by alert: one read for a
    /// poll's alerts, not one per alert (issue 40).
    pub async fn open_alerts_escalations(
        &self,
        tenant: &str,
    ) -> Result<std::collections::HashMap<String, EscalationRow>> {
        let rows: Vec<EscalationRow> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT * FROM escalations WHERE alert_id IN ",
            open_alert_ids!()
        ))
            .bind(tenant)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(|e| (e.alert_id.clone(), e)).collect())
    }

    /// Moves an active escalation from (epoch, tier, round) to (tier, round);
    /// false if anything changed meanwhile (acknowledged, moved, restarted).
    #[allow(clippy::too_many_arguments)]
    pub async fn advance_escalation(
        &self,
        alert_id: &str,
        epoch: i64,
        tier: i64,
        round: i64,
        to_tier: i64,
        to_round: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => advance_query!(alert_id, epoch, tier, round, to_tier, to_round, now)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Ends an escalation (`acknowledged` from active only; `stopped` from any).
    pub async fn end_escalation(
        &self,
        alert_id: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<EscalationRow>> {
        Ok(on_pool!(self, p => end_query!(alert_id, to, now)
            .fetch_optional(p)
            .await?))
    }

    pub async fn mark_escalation_bumped(&self, alert_id: &str, now: DateTime<Utc>) -> Result<()> {
        on_pool!(self, p => sqlx::query("UPDATE escalations SET bumped_at_ms = $2 WHERE alert_id = $1")
            .bind(alert_id)
            .bind(ms(now))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Records that a PagerDuty incident was triggered; true the first time.
    pub async fn mark_pd_triggered(&self, alert_id: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query("UPDATE escalations SET pd_triggered = 1 WHERE alert_id = $1 AND pd_triggered = 0")
            .bind(alert_id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn record_severity(
        &self,
        alert_id: &str,
        at: DateTime<Utc>,
        severity: f64,
    ) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO severity_history (alert_id, at_ms, severity) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(alert_id)
            .bind(ms(at))
            .bind(severity)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The lowest severity recorded for the alert since `since`.
    pub async fn min_severity_since(
        &self,
        alert_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<f64>> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(severity) FROM severity_history WHERE alert_id = $1 AND at_ms >= $2")
            .bind(alert_id)
            .bind(ms(since))
            .fetch_one(p)
            .await?))
    }

    /// [`Store::min_severity_since`] of each of a tenant's open alerts that
    /// has any, in one read.
    pub async fn open_alerts_min_severity_since(
        &self,
        tenant: &str,
        since: DateTime<Utc>,
    ) -> Result<std::collections::HashMap<String, f64>> {
        let rows: Vec<(String, f64)> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT alert_id, MIN(severity) FROM severity_history WHERE at_ms >= $2 AND alert_id IN ",
            open_alert_ids!(),
            " GROUP BY alert_id"
        ))
            .bind(tenant)
            .bind(ms(since))
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().collect())
    }

    /// [`Store::record_severity`] of many alerts, in one transaction.
    pub async fn record_severities(&self, all: &[(String, DateTime<Utc>, f64)]) -> Result<()> {
        if all.is_empty() {
            return Ok(());
        }
        in_tx!(self, tx => {
            for (alert_id, at, severity) in all {
                sqlx::query(
                    "INSERT INTO severity_history (alert_id, at_ms, severity) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(alert_id)
                    .bind(ms(*at))
                    .bind(severity)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn prune_severity_history(&self, older_than: DateTime<Utc>) -> Result<u64> {
        Ok(
            on_pool!(self, p => sqlx::query("DELETE FROM severity_history WHERE at_ms < $1")
            .bind(ms(older_than))
            .execute(p)
            .await?
            .rows_affected()),
        )
    }

    /// Says why the escalation pages now (shown in the next pages).
    pub async fn set_escalation_reason(&self, alert_id: &str, reason: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query("UPDATE escalations SET reason = $2 WHERE alert_id = $1")
            .bind(alert_id)
            .bind(reason)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

impl Store {
    /// Starts (or restarts, with a new epoch) an escalation as `start`
    /// says, and commits what `then` decides for it, given the row it
    /// replaces (the previous epoch, whose PagerDuty incident a new epoch
    /// resolves) and the new one. `None`, writing nothing, when one is
    /// active, the epoch moved, or (a re-arm) the acknowledgement is gone.
    pub async fn start_escalation_then(
        &self,
        start: &EscalationStart<'_>,
        now: DateTime<Utc>,
        then: impl FnOnce(Option<&EscalationRow>, &EscalationRow) -> Effects,
    ) -> Result<Option<EscalationRow>> {
        in_tx!(self, tx => {
            let previous: Option<EscalationRow> =
                sqlx::query_as("SELECT * FROM escalations WHERE alert_id = $1")
                    .bind(start.alert_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(epoch) = start.after_epoch {
                if previous.as_ref().map_or(0, |p| p.epoch) != epoch {
                    return Ok(None);
                }
            }
            if let Some(user) = start.rearm_from {
                let cleared = sqlx::query(
                    "UPDATE alerts SET acked_by = NULL, acked_at_ms = NULL, version = version + 1 \
                     WHERE id = $1 AND status = 'open' AND acked_by = $2",
                )
                .bind(start.alert_id)
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if cleared == 0 {
                    return Ok(None);
                }
            }
            let row: Option<EscalationRow> =
                start_query!(start.alert_id, start.tenant, start.tier, start.reason, now)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(esc) = row else {
                return Ok(None);
            };
            let effects = then(previous.as_ref(), &esc);
            effects.check()?;
            write_effects!(tx, &effects, now);
            tx.commit().await?;
            Ok(Some(esc))
        })
    }

    /// Pages a tier: moves the escalation as `step` says, records the page
    /// (and the PagerDuty key it triggered under), and writes `effects` (the
    /// pages, the next step, the audit entry), in one transaction. False,
    /// writing nothing, when it no longer stood there.
    pub async fn page_escalation_with(
        &self,
        step: &EscalationMove<'_>,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        effects.check()?;
        in_tx!(self, tx => {
            let moved = advance_query!(
                step.alert_id, step.epoch, step.from.0, step.from.1, step.to.0, step.to.1, now
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if moved {
                if let Some(key) = step.pd_key {
                    sqlx::query(
                        "UPDATE escalations SET pd_triggered = 1, pd_dedup_key = $2 WHERE alert_id = $1",
                    )
                    .bind(step.alert_id)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO escalation_pages (alert_id, epoch, round, tier, paged_at_ms, how, paged_by, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                )
                .bind(step.alert_id)
                .bind(step.epoch)
                .bind(step.from.1)
                .bind(step.from.0)
                .bind(ms(now))
                .bind(step.how)
                .bind(step.by)
                .bind(step.reason)
                .execute(&mut *tx)
                .await?;
                write_effects!(tx, effects, now);
            }
            tx.commit().await?;
            Ok(moved)
        })
    }

    /// The page of one position of an alert's path, if that tier was paged.
    pub async fn escalation_page(
        &self,
        alert_id: &str,
        epoch: i64,
        round: i64,
        tier: i64,
    ) -> Result<Option<EscalationPage>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM escalation_pages WHERE alert_id = $1 AND epoch = $2 AND round = $3 AND tier = $4")
            .bind(alert_id)
            .bind(epoch)
            .bind(round)
            .bind(tier)
            .fetch_optional(p)
            .await?))
    }

    /// The last tier paged on an alert's path (of any epoch).
    pub async fn latest_escalation_page(&self, alert_id: &str) -> Result<Option<EscalationPage>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM escalation_pages WHERE alert_id = $1 \
             ORDER BY paged_at_ms DESC, epoch DESC, round DESC, tier DESC LIMIT 1")
            .bind(alert_id)
            .fetch_optional(p)
            .await?))
    }

    /// Acknowledges an alert, once: only while it is open, unacknowledged
    /// and still at `ack.version` (nothing changed it since it was read), so
    /// a double click or two replicas acknowledge once and a poll's edit is
    /// never overwritten. With it, in one transaction: what the alert shows,
    /// its escalation ended (`acknowledged`, also a path that ran out of
    /// tiers, whose PagerDuty incident is still open), `effects` (its edit,
    /// its thread note, its audit entry, its steps cancelled) and what
    /// `then` decides for the ended escalation (PagerDuty's acknowledge).
    /// False, writing nothing, when the alert was not so.
    pub async fn acknowledge_alert_with(
        &self,
        ack: &AlertAck<'_>,
        effects: &Effects,
        now: DateTime<Utc>,
        then: impl FnOnce(Option<&EscalationRow>) -> Effects,
    ) -> Result<bool> {
        effects.check()?;
        in_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE alerts SET acked_by = $2, acked_at_ms = $3, updated_at_ms = $3, \
                   shown = COALESCE($5, shown), version = version + 1 \
                 WHERE id = $1 AND status = 'open' AND acked_by IS NULL AND version = $4",
            )
            .bind(ack.alert_id)
            .bind(ack.user)
            .bind(ms(now))
            .bind(ack.version)
            .bind(ack.shown.map(json_text))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            let ended: Option<EscalationRow> = sqlx::query_as(
                "UPDATE escalations SET status = 'acknowledged', updated_at_ms = $2 \
                 WHERE alert_id = $1 AND status IN ('active', 'stopped') RETURNING *",
            )
            .bind(ack.alert_id)
            .bind(ms(now))
            .fetch_optional(&mut *tx)
            .await?;
            let more = then(ended.as_ref());
            more.check()?;
            write_effects!(tx, effects, now);
            write_effects!(tx, &more, now);
            tx.commit().await?;
            Ok(true)
        })
    }
}

/// The escalation transitions that commit their decision's effects in
/// the same transaction.
impl Store {
    /// Starts (or restarts, with a new epoch) an alert's escalation at `tier`
    /// and commits what `then` decides for the new row (the plan, the first
    /// step, the audit entry) with it; `None`, writing nothing, when one is
    /// already active.
    pub async fn start_escalation_with(
        &self,
        alert_id: &str,
        tenant: &str,
        tier: i64,
        reason: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&EscalationRow) -> Effects,
    ) -> Result<Option<EscalationRow>> {
        in_tx!(self, tx => {
            let row: Option<EscalationRow> =
                start_query!(alert_id, tenant, tier, reason, now)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(esc) = &row {
                let effects = then(esc);
                effects.check()?;
                write_effects!(tx, &effects, now);
            }
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Moves an active escalation from (epoch, tier, round) to (to_tier,
    /// to_round), with the step's effects (its pages, its next step, its
    /// audit entry, and `pd_triggered` when it triggered PagerDuty). False,
    /// writing nothing, when it was no longer there (acknowledged, moved on
    /// or restarted meanwhile).
    #[allow(clippy::too_many_arguments)]
    pub async fn advance_escalation_with(
        &self,
        alert_id: &str,
        epoch: i64,
        (tier, round): (i64, i64),
        (to_tier, to_round): (i64, i64),
        pd_triggered: bool,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        effects.check()?;
        in_tx!(self, tx => {
            let moved = advance_query!(
                alert_id, epoch, tier, round, to_tier, to_round, now
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if moved {
                if pd_triggered {
                    sqlx::query("UPDATE escalations SET pd_triggered = 1 WHERE alert_id = $1")
                        .bind(alert_id)
                        .execute(&mut *tx)
                        .await?;
                }
                write_effects!(tx, effects, now);
            }
            tx.commit().await?;
            Ok(moved)
        })
    }

    /// Ends an escalation as [`Store::end_escalation`] does and commits what
    /// `then` decides for the ended row; `before` (cancelling its steps, say)
    /// is written whether or not there was anything to end.
    pub async fn end_escalation_with(
        &self,
        alert_id: &str,
        to: &str,
        now: DateTime<Utc>,
        before: &Effects,
        then: impl FnOnce(&EscalationRow) -> Effects,
    ) -> Result<Option<EscalationRow>> {
        before.check()?;
        in_tx!(self, tx => {
            write_effects!(tx, before, now);
            let row: Option<EscalationRow> =
                end_query!(alert_id, to, now)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(esc) = &row {
                let effects = then(esc);
                effects.check()?;
                write_effects!(tx, &effects, now);
            }
            tx.commit().await?;
            Ok(row)
        })
    }
}
