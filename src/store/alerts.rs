//! Alerts: one Slack message per job and risk episode.

use super::effects::write_effects;
use super::once::Arg;
use super::{
    in_tx, json_text, ms, on_pool, AckOutcome, Alert, AlertRow, Effects, NewAlert, Result, Store,
    StoreError,
};
use chrono::{DateTime, Utc};

/// Inserts episode max+1 unless the job already has an open alert. Either
/// unique rule (the partial index on open alerts, or (tenant, job, episode)
/// when two callers computed the same next episode) turns a lost race into
/// "no row", never an error.
const INSERT_ALERT: &str = "\
    INSERT INTO alerts (id, tenant_id, job_id, episode, status, band, severity, eta_ms, \
        deadline_ms, shown, opened_at_ms, updated_at_ms, version) \
    SELECT $1, $2, $3, COALESCE(MAX(episode), 0) + 1, 'open', $4, $5, $6, $7, $8, $9, $9, 1 \
      FROM alerts WHERE tenant_id = $2 AND job_id = $3 \
    ON CONFLICT DO NOTHING \
    RETURNING *";

/// [`INSERT_ALERT`] with its binds, for either engine's transaction.
macro_rules! insert_alert {
    ($id:expr, $new:expr, $shown:expr, $now:expr) => {
        sqlx::query_as(INSERT_ALERT)
            .bind($id)
            .bind(&$new.tenant_id)
            .bind(&$new.job_id)
            .bind($new.band.as_str())
            .bind($new.severity)
            .bind($new.eta.map(ms))
            .bind($new.deadline.map(ms))
            .bind(&$shown)
            .bind(ms($now))
    };
}

/// How often `open_alert` retries when the open alert it lost to was
/// resolved before it could read it (needs a resolve racing every attempt).
const OPEN_ATTEMPTS: usize = 8;

impl Store {
    /// The job's open alert, or a new one (episode = last + 1) and `true`.
    /// Race-safe: concurrent calls for one job create exactly one alert; an
    /// existing open alert is returned unchanged.
    pub async fn open_alert(&self, new: NewAlert, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        let shown = new.shown.as_ref().map(json_text);
        for _ in 0..OPEN_ATTEMPTS {
            if let Some(a) = self.open_alert_for_job(&new.tenant_id, &new.job_id).await? {
                return Ok((a, false));
            }
            let id = uuid::Uuid::new_v4().to_string();
            let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(INSERT_ALERT)
                .bind(&id)
                .bind(&new.tenant_id)
                .bind(&new.job_id)
                .bind(new.band.as_str())
                .bind(new.severity)
                .bind(new.eta.map(ms))
                .bind(new.deadline.map(ms))
                .bind(&shown)
                .bind(ms(now))
                .fetch_optional(p)
                .await?);
            if let Some(row) = row {
                return Ok((Alert::try_from(row)?, true));
            }
            // Lost the race: the winner's alert is read on the next turn.
        }
        Err(StoreError::Corrupt(format!(
            "could not open an alert for job {}/{} after {OPEN_ATTEMPTS} conflicting attempts",
            new.tenant_id, new.job_id
        )))
    }

    /// Opens the job's alert as `id` with what opening it sends (its post),
    /// in one transaction, unless the job already has an open alert: then
    /// that one and `false`, and nothing is written.
    pub async fn open_alert_with(
        &self,
        id: &str,
        new: NewAlert,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<(Alert, bool)> {
        self.open_alert_inner(id, new, effects, None, now).await
    }

    /// Opens many jobs' alerts, each with its effects, in one transaction
    /// (a poll's new alerts, issue 40): one commit for a storm's fifty
    /// alerts, not fifty. Each comes back with whether it was created; one
    /// whose job already had an open alert (another replica opened it)
    /// comes back `None` and writes nothing of its own.
    pub async fn open_alerts_with(
        &self,
        batch: &[(&str, &NewAlert, &Effects)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Alert>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        for (_, _, effects) in batch {
            effects.check()?;
        }
        let rows: Vec<Option<AlertRow>> = in_tx!(self, tx => {
            let mut rows = Vec::with_capacity(batch.len());
            for &(id, new, effects) in batch {
                let shown = new.shown.as_ref().map(json_text);
                let row: Option<AlertRow> = insert_alert!(id, new, shown, now)
                    .fetch_optional(&mut *tx)
                    .await?;
                if row.is_some() {
                    write_effects!(tx, effects, now);
                }
                rows.push(row);
            }
            tx.commit().await?;
            Ok::<_, StoreError>(rows)
        })?;
        rows.into_iter()
            .map(|r| r.map(Alert::try_from).transpose())
            .collect()
    }

    /// Opens the job's alert as [`Store::open_alert_with`] does, and in the
    /// same transaction closes the open quiet notice `notice` as promoted to
    /// it: with `promoted` (the notice's message becoming the alert) when
    /// the notice was still open, else with `fresh` (a post of its own).
    /// Returns the alert and whether it was created.
    pub async fn open_alert_promoting(
        &self,
        id: &str,
        new: NewAlert,
        notice: &str,
        promoted: &Effects,
        fresh: &Effects,
        now: DateTime<Utc>,
    ) -> Result<(Alert, bool)> {
        promoted.check()?;
        self.open_alert_inner(id, new, fresh, Some((notice, promoted)), now)
            .await
    }

    async fn open_alert_inner(
        &self,
        id: &str,
        new: NewAlert,
        effects: &Effects,
        promote: Option<(&str, &Effects)>,
        now: DateTime<Utc>,
    ) -> Result<(Alert, bool)> {
        effects.check()?;
        let shown = new.shown.as_ref().map(json_text);
        for _ in 0..OPEN_ATTEMPTS {
            if let Some(a) = self.open_alert_for_job(&new.tenant_id, &new.job_id).await? {
                return Ok((a, false));
            }
            let row: Option<AlertRow> = in_tx!(self, tx => {
                let row: Option<AlertRow> = insert_alert!(id, new, shown, now)
                    .fetch_optional(&mut *tx)
                    .await?;
                let mut promoted = false;
                if row.is_some() {
                    if let Some((notice, _)) = promote {
                        promoted = sqlx::query(
                            "UPDATE notices SET status = 'promoted', alert_id = $2, \
                               closed_at_ms = $3 WHERE id = $1 AND status = 'open'",
                        )
                        .bind(notice)
                        .bind(id)
                        .bind(ms(now))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                            == 1;
                    }
                    match promote {
                        Some((_, with)) if promoted => write_effects!(tx, with, now),
                        _ => write_effects!(tx, effects, now),
                    }
                }
                tx.commit().await?;
                Ok::<_, StoreError>(row)
            })?;
            if let Some(row) = row {
                return Ok((Alert::try_from(row)?, true));
            }
            // Lost the race: the winner's alert is read on the next turn.
        }
        Err(StoreError::Corrupt(format!(
            "could not open an alert for job {}/{} after {OPEN_ATTEMPTS} conflicting attempts",
            new.tenant_id, new.job_id
        )))
    }

    pub async fn get_alert(&self, id: &str) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?);
        row.map(Alert::try_from).transpose()
    }

    pub async fn open_alert_for_job(&self, tenant: &str, job_id: &str) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE tenant_id = $1 AND job_id = $2 AND status = 'open'")
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(p)
            .await?);
        row.map(Alert::try_from).transpose()
    }

    /// The job's most recent alert (highest episode), open or resolved.
    pub async fn latest_alert_for_job(&self, tenant: &str, job_id: &str) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE tenant_id = $1 AND job_id = $2 \
             ORDER BY episode DESC LIMIT 1")
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(p)
            .await?);
        row.map(Alert::try_from).transpose()
    }

    /// The alert shown by a Slack message (button clicks, thread replies).
    pub async fn alert_by_message(&self, channel: &str, ts: &str) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE channel = $1 AND ts = $2")
            .bind(channel)
            .bind(ts)
            .fetch_optional(p)
            .await?);
        row.map(Alert::try_from).transpose()
    }

    /// Open alerts, oldest first, of one tenant or all.
    pub async fn list_open_alerts(&self, tenant: Option<&str>) -> Result<Vec<Alert>> {
        let rows: Vec<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE status = 'open' AND ($1 IS NULL OR tenant_id = $1) \
             ORDER BY opened_at_ms, id")
            .bind(tenant)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Alert::try_from).collect()
    }

    /// Records a new assessment, and what the message now shows (`None`
    /// keeps what was recorded). Only while open; bumps `version`.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_alert(
        &self,
        id: &str,
        band: crate::domain::risk::RiskBand,
        severity: Option<f64>,
        eta: Option<DateTime<Utc>>,
        deadline: Option<DateTime<Utc>>,
        shown: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET band = $2, severity = $3, eta_ms = $4, deadline_ms = $5, \
               shown = COALESCE($6, shown), updated_at_ms = $7, version = version + 1 \
             WHERE id = $1 AND status = 'open'")
            .bind(id)
            .bind(band.as_str())
            .bind(severity)
            .bind(eta.map(ms))
            .bind(deadline.map(ms))
            .bind(shown.map(json_text))
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Records where Slack shows the alert. Only if none is recorded yet: the
    /// first delivery wins, a duplicate post never re-points the alert.
    pub async fn set_alert_message(&self, id: &str, channel: &str, ts: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET channel = $2, ts = $3 WHERE id = $1 AND ts IS NULL")
            .bind(id)
            .bind(channel)
            .bind(ts)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// The first acknowledgement wins, decided by one conditional update, so
    /// simultaneous clicks (on any replica) give exactly one `Acknowledged`.
    pub async fn acknowledge_alert(
        &self,
        id: &str,
        user: &str,
        at: DateTime<Utc>,
    ) -> Result<AckOutcome> {
        // Retried only if the acknowledgement we lost to was cleared before
        // we could read it.
        for _ in 0..3 {
            let n = on_pool!(self, p => sqlx::query(
                "UPDATE alerts SET acked_by = $2, acked_at_ms = $3, updated_at_ms = $3, \
                   version = version + 1 \
                 WHERE id = $1 AND status = 'open' AND acked_by IS NULL")
                .bind(id)
                .bind(user)
                .bind(ms(at))
                .execute(p)
                .await?
                .rows_affected());
            if n == 1 {
                return Ok(AckOutcome::Acknowledged);
            }
            match self.get_alert(id).await? {
                Some(a) if a.is_open() => {
                    if let (Some(by), Some(at)) = (a.acked_by, a.acked_at) {
                        return Ok(AckOutcome::AlreadyAcknowledged { by, at });
                    }
                }
                _ => return Ok(AckOutcome::NotOpen),
            }
        }
        Ok(AckOutcome::NotOpen)
    }

    /// Clears the acknowledgement so escalation can re-arm; false if there
    /// was none or the alert is not open.
    pub async fn clear_acknowledgement(&self, id: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET acked_by = NULL, acked_at_ms = NULL, version = version + 1 \
             WHERE id = $1 AND status = 'open' AND acked_by IS NOT NULL")
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Clears `by`'s acknowledgement of an open alert with `effects` (the
    /// note saying why, the audit entry), in one transaction and only when
    /// it cleared: a re-arm decided while paging is held.
    pub async fn clear_acknowledgement_with(
        &self,
        id: &str,
        by: &str,
        effects: Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let cleared = self
            .once::<AlertRow, Alert>(
                "UPDATE alerts SET acked_by = NULL, acked_at_ms = NULL, version = version + 1 \
                 WHERE id = $1 AND status = 'open' AND acked_by = $2 RETURNING *",
                &[Arg::text(id), Arg::text(by)],
                now,
                |_| effects,
            )
            .await?;
        Ok(cleared.is_some())
    }

    /// Resolves an open alert; false when it was not open (someone else did).
    pub async fn resolve_alert(
        &self,
        id: &str,
        resolution: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.resolve_alert_with(id, resolution, at, None, &Effects::new())
            .await
    }

    /// [`Store::resolve_alert`] with the view the message shows from now on
    /// (`shown`; `None` keeps what was recorded) and what resolving sends and
    /// cancels (its edit, its thread note, its check-ins and steps),
    /// committed with it and only by the call that resolved it.
    pub async fn resolve_alert_with(
        &self,
        id: &str,
        resolution: &str,
        at: DateTime<Utc>,
        shown: Option<&serde_json::Value>,
        effects: &Effects,
    ) -> Result<bool> {
        effects.check()?;
        in_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE alerts SET status = 'resolved', resolution = $2, resolved_at_ms = $3, \
                   updated_at_ms = $3, shown = COALESCE($4, shown), version = version + 1 \
                 WHERE id = $1 AND status = 'open'")
                .bind(id)
                .bind(resolution)
                .bind(ms(at))
                .bind(shown.map(json_text))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                write_effects!(tx, effects, at);
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// The jobs of a tenant's alerts resolved at `since` or later: what a
    /// mitigation bought is still measured on them a while after their alert
    /// resolved (`flows::bought`), since a mitigation that works resolves it.
    pub async fn jobs_resolved_since(
        &self,
        tenant: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT DISTINCT job_id FROM alerts WHERE status = 'resolved' AND resolved_at_ms >= $2 AND tenant_id = $1")
            .bind(tenant)
            .bind(ms(since))
            .fetch_all(p)
            .await?))
    }

    /// The channel a quiet notice's post went (or was to go) to: where the
    /// alert it became is posted when the notice's message cannot be edited
    /// into it.
    pub async fn notice_channel(&self, notice_id: &str) -> Result<Option<String>> {
        let payload: Option<String> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE dedup_key = $1")
            .bind(super::notice_post_key(notice_id))
            .fetch_optional(p)
            .await?);
        Ok(payload
            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
            .and_then(|p| p.get("channel")?.as_str().map(str::to_string)))
    }

    /// Whether an alert's post was delivered or may still be (written and
    /// not refused): a post, or the edit of a quiet notice into the alert,
    /// that Slack refused for good does not count (issue 33).
    pub async fn alert_post_live(&self, alert_id: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE link_kind = 'alert' AND link_id = $1 \
               AND status <> 'failed'")
            .bind(alert_id)
            .fetch_one(p)
            .await?);
        Ok(n > 0)
    }

    /// How many of an alert's posts (or edits of a notice into it) Slack
    /// refused for good.
    pub async fn alert_posts_refused(&self, alert_id: &str) -> Result<i64> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE link_kind = 'alert' AND link_id = $1 \
               AND status = 'failed'")
            .bind(alert_id)
            .fetch_one(p)
            .await?))
    }

    /// Records the resolved view of a resolved alert with its messages (the
    /// repair of a resolution whose edit was never written), in one
    /// transaction; false (and nothing written) when the alert is not
    /// resolved.
    pub async fn show_resolved_alert(
        &self,
        id: &str,
        shown: &serde_json::Value,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        effects.check()?;
        in_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE alerts SET shown = $2, version = version + 1 \
                 WHERE id = $1 AND status = 'resolved'")
                .bind(id)
                .bind(json_text(shown))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                write_effects!(tx, effects, now);
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }
}
