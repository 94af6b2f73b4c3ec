//! Mitigations' bookkeeping: jobs the bot paused for an alert (so it can
//! resume exactly those, each once), and alert retargeting/redisplay.
//! Tables from migrations 0002_mitigations. (Ported as written with the
//! previous store.)

use super::effects::{apply_with, write_effects};
use super::{in_tx, json_text, ms, on_pool, open_alert_ids, Effects, NewTimer, Result, Store};
use chrono::{DateTime, Utc};

impl Store {
    /// The alert now follows another job (recreated at a higher priority).
    pub async fn retarget_alert(&self, id: &str, job_id: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET job_id = $2, updated_at_ms = $3, version = version + 1 WHERE id = $1 AND status = 'open'")
            .bind(id)
            .bind(job_id)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Records a job the bot paused for an alert.
    pub async fn record_paused(
        &self,
        alert_id: &str,
        tenant: &str,
        job_id: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO paused_jobs (alert_id, tenant_id, job_id, paused_by, paused_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (alert_id, job_id) DO UPDATE SET paused_by = excluded.paused_by, \
               paused_at_ms = excluded.paused_at_ms, resumed_at_ms = NULL")
            .bind(alert_id)
            .bind(tenant)
            .bind(job_id)
            .bind(by)
            .bind(ms(at))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The jobs the bot paused for an alert and has not resumed.
    pub async fn paused_for_alert(&self, alert_id: &str) -> Result<Vec<String>> {
        Ok(self
            .paused_for_alert_since(alert_id)
            .await?
            .into_iter()
            .map(|(job, _)| job)
            .collect())
    }

    /// [`Store::paused_for_alert`], each with when the bot recorded its pause.
    pub async fn paused_for_alert_since(
        &self,
        alert_id: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>> {
        let rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT job_id, paused_at_ms FROM paused_jobs WHERE alert_id = $1 AND resumed_at_ms IS NULL ORDER BY paused_at_ms, job_id")
            .bind(alert_id)
            .fetch_all(p)
            .await?);
        rows.into_iter()
            .map(|(job, at)| Ok((job, super::from_ms(at, "paused_at_ms")?)))
            .collect()
    }

    /// [`Store::paused_for_alert`] of each of a tenant's open alerts that
    /// has any, in one read.
    pub async fn paused_for_open_alerts(
        &self,
        tenant: &str,
    ) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let rows: Vec<(String, String)> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT alert_id, job_id FROM paused_jobs WHERE resumed_at_ms IS NULL AND alert_id IN ",
            open_alert_ids!(),
            " ORDER BY alert_id, paused_at_ms, job_id"
        ))
            .bind(tenant)
            .fetch_all(p)
            .await?);
        let mut by: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (alert, job) in rows {
            by.entry(alert).or_default().push(job);
        }
        Ok(by)
    }

    /// Marks a paused job resumed; false if it already was (a double click).
    pub async fn mark_resumed(
        &self,
        alert_id: &str,
        job_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE paused_jobs SET resumed_at_ms = $3 WHERE alert_id = $1 AND job_id = $2 AND resumed_at_ms IS NULL")
            .bind(alert_id)
            .bind(job_id)
            .bind(ms(at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Replaces what an alert shows (open or resolved), e.g. its buttons.
    /// Records what an alert shows if it is still at `version` (nothing
    /// changed it since it was read); false if something did.
    pub async fn set_alert_shown_at(
        &self,
        id: &str,
        shown: &serde_json::Value,
        version: i64,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET shown = $2, version = version + 1 WHERE id = $1 AND version = $3")
            .bind(id)
            .bind(json_text(shown))
            .bind(version)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn set_alert_shown(&self, id: &str, shown: &serde_json::Value) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query("UPDATE alerts SET shown = $2, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(json_text(shown))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }
}

/// An alert's latest **Request scaling**.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ScalingRequest {
    pub alert_id: String,
    pub tenant_id: String,
    pub requested_by: String,
    pub requested_at_ms: i64,
    /// 1 for the alert's first request, 2 for the next, …
    pub count: i64,
    pub acked_by: Option<String>,
    pub acked_at_ms: Option<i64>,
}

impl Store {
    /// Records a scaling request for an alert unless one was made within
    /// `cooldown`: `Some(count)` for a new request, `None` while cooling down.
    /// One statement, so a double click or two replicas record it once.
    pub async fn claim_scaling_request(
        &self,
        alert_id: &str,
        tenant_id: &str,
        user: &str,
        now: DateTime<Utc>,
        cooldown: chrono::Duration,
    ) -> Result<Option<i64>> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "INSERT INTO scaling_requests (alert_id, tenant_id, requested_by, requested_at_ms, count) \
             VALUES ($1, $2, $3, $4, 1) \
             ON CONFLICT (alert_id) DO UPDATE SET requested_by = excluded.requested_by, \
               requested_at_ms = excluded.requested_at_ms, count = scaling_requests.count + 1, \
               acked_by = NULL, acked_at_ms = NULL \
             WHERE scaling_requests.requested_at_ms <= $5 \
             RETURNING count")
            .bind(alert_id)
            .bind(tenant_id)
            .bind(user)
            .bind(ms(now))
            .bind(ms(now - cooldown))
            .fetch_optional(p)
            .await?))
    }

    /// An alert's latest scaling request.
    pub async fn scaling_request(&self, alert_id: &str) -> Result<Option<ScalingRequest>> {
        Ok(on_pool!(self, p => sqlx::query_as::<_, ScalingRequest>(
            "SELECT alert_id, tenant_id, requested_by, requested_at_ms, count, acked_by, acked_at_ms \
             FROM scaling_requests WHERE alert_id = $1")
            .bind(alert_id)
            .fetch_optional(p)
            .await?))
    }

    /// Acknowledges scaling request number `count`; false if it was already
    /// acknowledged or a newer request replaced it.
    pub async fn ack_scaling_request(
        &self,
        alert_id: &str,
        count: i64,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE scaling_requests SET acked_by = $3, acked_at_ms = $4 \
             WHERE alert_id = $1 AND count = $2 AND acked_by IS NULL")
            .bind(alert_id)
            .bind(count)
            .bind(user)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }
}

/// What recording a scaling request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalingClaim {
    /// Recorded as the alert's request number `n`, with its pages.
    Requested(i64),
    /// One was made within the cool-down: nothing recorded.
    CoolingDown,
    /// The alert is resolved (or gone): nothing recorded.
    NotOpen,
}

impl Store {
    /// Records a scaling request as [`Store::claim_scaling_request`] does,
    /// and in the same transaction what `then` decides for its number (its
    /// DMs, its PagerDuty trigger, its thread note, its audit entry): the
    /// cool-down locks only when the pages are committed with it (an error
    /// from `then` rolls the request back). Only while
    /// the alert is open; the alert's row is held meanwhile, so a resolution
    /// at the same moment sees the request (and resolves its incident).
    pub async fn request_scaling_with(
        &self,
        alert_id: &str,
        tenant_id: &str,
        user: &str,
        now: DateTime<Utc>,
        cooldown: chrono::Duration,
        then: impl FnOnce(i64) -> Result<Effects>,
    ) -> Result<ScalingClaim> {
        in_tx!(self, tx => {
            let open = sqlx::query(
                "UPDATE alerts SET updated_at_ms = updated_at_ms WHERE id = $1 AND status = 'open'",
            )
            .bind(alert_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if open == 0 {
                return Ok(ScalingClaim::NotOpen);
            }
            let count: Option<i64> = sqlx::query_scalar(
                "INSERT INTO scaling_requests (alert_id, tenant_id, requested_by, requested_at_ms, count) \
                 VALUES ($1, $2, $3, $4, 1) \
                 ON CONFLICT (alert_id) DO UPDATE SET requested_by = excluded.requested_by, \
                   requested_at_ms = excluded.requested_at_ms, count = scaling_requests.count + 1, \
                   acked_by = NULL, acked_at_ms = NULL \
                 WHERE scaling_requests.requested_at_ms <= $5 \
                 RETURNING count",
            )
            .bind(alert_id)
            .bind(tenant_id)
            .bind(user)
            .bind(ms(now))
            .bind(ms(now - cooldown))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(count) = count else {
                return Ok(ScalingClaim::CoolingDown);
            };
            let effects = then(count)?;
            effects.check()?;
            write_effects!(tx, &effects, now);
            tx.commit().await?;
            Ok(ScalingClaim::Requested(count))
        })
    }

    /// Acknowledges scaling request number `count` as
    /// [`Store::ack_scaling_request`] does, with `effects` (the thread note,
    /// PagerDuty's acknowledge, the audit entry) only when this call did.
    pub async fn ack_scaling_request_with(
        &self,
        alert_id: &str,
        count: i64,
        user: &str,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> Result<bool> {
        apply_with!(
            self,
            effects,
            now,
            sqlx::query(
                "UPDATE scaling_requests SET acked_by = $3, acked_at_ms = $4 \
                 WHERE alert_id = $1 AND count = $2 AND acked_by IS NULL",
            )
            .bind(alert_id)
            .bind(count)
            .bind(user)
            .bind(ms(now))
        )
    }

    /// Marks a paused job resumed as [`Store::mark_resumed`] does, with
    /// `effects` (its audit entry) only when this call did.
    pub async fn mark_resumed_with(
        &self,
        alert_id: &str,
        job_id: &str,
        at: DateTime<Utc>,
        effects: &Effects,
    ) -> Result<bool> {
        apply_with!(
            self,
            effects,
            at,
            sqlx::query(
                "UPDATE paused_jobs SET resumed_at_ms = $3 \
                 WHERE alert_id = $1 AND job_id = $2 AND resumed_at_ms IS NULL",
            )
            .bind(alert_id)
            .bind(job_id)
            .bind(ms(at))
        )
    }

    /// Starts **Monitor closely**: schedules its first check-in and, only
    /// when this call scheduled it (its dedup key numbers the run, so a
    /// double click schedules one), writes `effects` (the audit entry, the
    /// thread note) with it.
    pub async fn start_monitoring_with(
        &self,
        first: &NewTimer,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let id = uuid::Uuid::new_v4().to_string();
        apply_with!(
            self,
            effects,
            now,
            super::timers::insert_timers!(std::iter::once((id.clone(), first)), now).build()
        )
    }

    /// Stops **Monitor closely**: cancels the alert's pending check-ins of
    /// `kind` and, only when there were any, writes `effects` with it.
    pub async fn stop_monitoring_with(
        &self,
        alert_id: &str,
        kind: &str,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        apply_with!(
            self,
            effects,
            now,
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', fired_at_ms = $3, \
                   claimed_by = NULL, claim_until_ms = NULL \
                 WHERE subject_id = $1 AND kind = $2 AND status = 'pending'",
            )
            .bind(alert_id)
            .bind(kind)
            .bind(ms(now))
        )
    }
}
