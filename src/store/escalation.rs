//! Escalation state per alert (tier, round, epoch: a late or repeated timer
//! never pages twice) and the recent severities "risk rises quickly" compares
//! against. Tables from migrations 0003_escalation. (Ported as written with
//! the previous store.)

use super::{ms, on_pool, Result, Store};

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
pub(crate) use advance_query;

/// Starts (or restarts, with a new epoch) an escalation unless one is active.
macro_rules! start_query {
    ($alert_id:expr, $tenant:expr, $tier:expr, $reason:expr, $now:expr) => {
        sqlx::query_as(
            "INSERT INTO escalations (alert_id, tenant_id, status, tier, round, epoch, reason, started_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'active', $3, 0, 1, $4, $5, $5) \
             ON CONFLICT (alert_id) DO UPDATE SET status = 'active', tier = excluded.tier, round = 0, \
               epoch = escalations.epoch + 1, reason = excluded.reason, started_at_ms = excluded.started_at_ms, \
               updated_at_ms = excluded.updated_at_ms \
             WHERE escalations.status <> 'active' RETURNING *",
        )
        .bind($alert_id)
        .bind($tenant)
        .bind($tier)
        .bind($reason)
        .bind($crate::store::ms($now))
    };
}
pub(crate) use start_query;

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
pub(crate) use end_query;

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

    pub async fn get_escalation(&self, alert_id: &str) -> Result<Option<EscalationRow>> {
        Ok(
            on_pool!(self, p => sqlx::query_as("SELECT * FROM escalations WHERE alert_id = $1")
            .bind(alert_id)
            .fetch_optional(p)
            .await?),
        )
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
