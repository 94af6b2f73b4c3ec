//! The bot's own state: alerts, the outbox of Slack calls, timers, approval
//! requests, the audit log, handled events and leases. SQLite is the embedded
//! default; PostgreSQL lets several replicas share the work.
//!
//! Both engines run the same SQL (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`): each query is written once and expanded for both pools by
//! [`on_pool!`]. Only claims differ, where PostgreSQL adds `FOR UPDATE SKIP
//! LOCKED`. Times are epoch milliseconds in the database and
//! `DateTime<Utc>` (truncated to milliseconds) in Rust.

mod rows;

pub use rows::*;

use crate::config::redact_url;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that does not decode into the domain (hand-edited, or a bug).
    #[error("store row is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported store URL {0}: use sqlite://FILE or postgres://...")]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store, on one of its two engines. Cheap to clone (a pool inside).
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

impl Store {
    /// Opens the store named by `url` (does not migrate). A SQLite file is
    /// created on first use.
    pub async fn connect(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?.application_name("servo-sla-bot");
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            Ok(Store::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            Ok(Store::Sqlite(pool))
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await?,
            Store::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    // ----------------------------------------------------------------- alerts

    /// The open alert for the job, or a new one (episode = last + 1).
    /// Race-safe: concurrent calls for one job create exactly one alert.
    pub async fn open_alert(&self, new: NewAlert, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        for _ in 0..5 {
            if let Some(a) = self.open_alert_for_job(&new.tenant_id, &new.job_id).await? {
                return Ok((a, false));
            }
            let id = uuid::Uuid::new_v4().to_string();
            let shown = new.shown.as_ref().map(json_text);
            let inserted = on_pool!(self, p => sqlx::query(
                "INSERT INTO alerts (id, tenant_id, job_id, episode, status, band, severity, eta_ms, \
                   deadline_ms, shown, opened_at_ms, updated_at_ms, version) \
                 SELECT $1, $2, $3, COALESCE(MAX(episode), 0) + 1, 'open', $4, $5, $6, $7, $8, $9, $9, 1 \
                   FROM alerts WHERE tenant_id = $2 AND job_id = $3 \
                 ON CONFLICT DO NOTHING")
                .bind(&id)
                .bind(&new.tenant_id)
                .bind(&new.job_id)
                .bind(&new.band)
                .bind(new.severity)
                .bind(new.eta.map(ms))
                .bind(new.deadline.map(ms))
                .bind(&shown)
                .bind(ms(now))
                .execute(p)
                .await?
                .rows_affected());
            if inserted == 1 {
                let a = self.get_alert(&id).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("alert {id} vanished after insert"))
                })?;
                return Ok((a, true));
            }
        }
        Err(StoreError::Corrupt(format!(
            "could not open an alert for job {} after repeated conflicts",
            new.job_id
        )))
    }

    pub async fn get_alert(&self, id: &str) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as("SELECT * FROM alerts WHERE id = $1")
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

    /// The job's most recent alert, open or resolved.
    pub async fn latest_alert_for_job(&self, tenant: &str, job_id: &str) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE tenant_id = $1 AND job_id = $2 ORDER BY episode DESC LIMIT 1")
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(p)
            .await?);
        row.map(Alert::try_from).transpose()
    }

    pub async fn alert_by_message(&self, channel: &str, ts: &str) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE channel = $1 AND ts = $2")
            .bind(channel)
            .bind(ts)
            .fetch_optional(p)
            .await?);
        row.map(Alert::try_from).transpose()
    }

    pub async fn list_open_alerts(&self, tenant: Option<&str>) -> Result<Vec<Alert>> {
        let rows: Vec<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM alerts WHERE status = 'open' AND ($1 IS NULL OR tenant_id = $1) ORDER BY opened_at_ms")
            .bind(tenant)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Alert::try_from).collect()
    }

    /// Records a new assessment and what the message shows; only while open.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_alert(
        &self,
        id: &str,
        band: &str,
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
            .bind(band)
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

    /// Records where Slack shows the alert; the first delivery wins.
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

    /// The first acknowledgement wins, decided by one conditional update.
    pub async fn acknowledge_alert(
        &self,
        id: &str,
        user: &str,
        at: DateTime<Utc>,
    ) -> Result<AckOutcome> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET acked_by = $2, acked_at_ms = $3, updated_at_ms = $3, version = version + 1 \
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
        Ok(match self.get_alert(id).await? {
            Some(a) if a.is_open() => match (a.acked_by, a.acked_at) {
                (Some(by), Some(at)) => AckOutcome::AlreadyAcknowledged { by, at },
                _ => AckOutcome::NotOpen,
            },
            _ => AckOutcome::NotOpen,
        })
    }

    /// Clears the acknowledgement so escalation can re-arm.
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

    /// Resolves an open alert; false when it was not open (someone else did).
    pub async fn resolve_alert(
        &self,
        id: &str,
        resolution: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET status = 'resolved', resolution = $2, resolved_at_ms = $3, \
               updated_at_ms = $3, version = version + 1 \
             WHERE id = $1 AND status = 'open'")
            .bind(id)
            .bind(resolution)
            .bind(ms(at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    // ----------------------------------------------------------------- outbox

    /// Writes a Slack call to deliver; `None` if the dedup key was used before.
    pub async fn enqueue(&self, msg: NewOutboxMessage, now: DateTime<Utc>) -> Result<Option<i64>> {
        let due = ms(msg.not_before.unwrap_or(now));
        let id: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "INSERT INTO outbox (dedup_key, method, payload, ordering_key, thread_alert_id, thread_field, \
               link_kind, link_id, status, attempts, next_attempt_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10) \
             ON CONFLICT (dedup_key) DO NOTHING RETURNING id")
            .bind(&msg.dedup_key)
            .bind(&msg.method)
            .bind(json_text(&msg.payload))
            .bind(&msg.ordering_key)
            .bind(&msg.thread_alert_id)
            .bind(&msg.thread_field)
            .bind(&msg.link_kind)
            .bind(&msg.link_id)
            .bind(due)
            .bind(ms(now))
            .fetch_optional(p)
            .await?);
        Ok(id)
    }

    /// Claims due messages for `worker` until `now + lease`. A message waits
    /// while an earlier one with the same ordering key is still pending.
    pub async fn claim_due_outbox(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let until = ms(now + lease);
        let mut rows: Vec<OutboxRow> = match self {
            Store::Sqlite(p) => sqlx::query_as(
                "UPDATE outbox SET claimed_by = $1, claim_until_ms = $2, attempts = attempts + 1 \
                     WHERE id IN ( \
                       SELECT o.id FROM outbox o \
                       WHERE o.status = 'pending' AND o.next_attempt_at_ms <= $3 \
                         AND (o.claimed_by IS NULL OR o.claim_until_ms < $3) \
                         AND (o.ordering_key IS NULL OR NOT EXISTS ( \
                           SELECT 1 FROM outbox e WHERE e.ordering_key = o.ordering_key \
                             AND e.status = 'pending' AND e.id < o.id)) \
                       ORDER BY o.id LIMIT $4) \
                     RETURNING *",
            )
            .bind(worker)
            .bind(until)
            .bind(ms(now))
            .bind(limit)
            .fetch_all(p)
            .await?,
            Store::Postgres(p) => sqlx::query_as(
                "UPDATE outbox SET claimed_by = $1, claim_until_ms = $2, attempts = attempts + 1 \
                     WHERE id IN ( \
                       SELECT o.id FROM outbox o \
                       WHERE o.status = 'pending' AND o.next_attempt_at_ms <= $3 \
                         AND (o.claimed_by IS NULL OR o.claim_until_ms < $3) \
                         AND (o.ordering_key IS NULL OR NOT EXISTS ( \
                           SELECT 1 FROM outbox e WHERE e.ordering_key = o.ordering_key \
                             AND e.status = 'pending' AND e.id < o.id)) \
                       ORDER BY o.id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                     AND (claimed_by IS NULL OR claim_until_ms < $3) \
                     RETURNING *",
            )
            .bind(worker)
            .bind(until)
            .bind(ms(now))
            .bind(limit)
            .fetch_all(p)
            .await?,
        };
        rows.sort_by_key(|r| r.id);
        rows.into_iter().map(OutboxMessage::try_from).collect()
    }

    /// Marks a claimed message sent, and records its channel/ts on the linked
    /// alert or approval in the same transaction.
    pub async fn mark_outbox_sent(
        &self,
        id: i64,
        worker: &str,
        response: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let channel = response
            .get("channel")
            .and_then(|c| c.as_str())
            .map(str::to_string);
        let ts = response
            .get("ts")
            .and_then(|c| c.as_str())
            .map(str::to_string);
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let link: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                "UPDATE outbox SET status = 'sent', response = $3, sent_at_ms = $4, claimed_by = NULL, \
                   claim_until_ms = NULL, last_error = NULL \
                 WHERE id = $1 AND claimed_by = $2 AND status = 'pending' \
                 RETURNING link_kind, link_id")
                .bind(id)
                .bind(worker)
                .bind(json_text(response))
                .bind(ms(now))
                .fetch_optional(&mut *tx)
                .await?;
            let Some((kind, link_id)) = link else {
                tx.rollback().await?;
                return Ok(false);
            };
            if let (Some(kind), Some(link_id), Some(channel), Some(ts)) = (kind, link_id, &channel, &ts) {
                let sql = match kind.as_str() {
                    "alert" => "UPDATE alerts SET channel = $2, ts = $3 WHERE id = $1 AND ts IS NULL",
                    "approval" => "UPDATE approvals SET channel = $2, ts = $3 WHERE id = $1 AND ts IS NULL",
                    other => return Err(StoreError::Corrupt(format!("outbox {id} links to a '{other}'"))),
                };
                sqlx::query(sql).bind(link_id).bind(channel).bind(ts).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Hands a message back to be tried again at `next_attempt_at`.
    pub async fn mark_outbox_retry(
        &self,
        id: i64,
        worker: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET next_attempt_at_ms = $3, last_error = $4, claimed_by = NULL, claim_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(ms(next_attempt_at))
            .bind(error)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Gives up on a message (Slack refused it for good).
    pub async fn mark_outbox_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $3, sent_at_ms = $4, claimed_by = NULL, \
               claim_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(error)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Hands back every claim of a worker that is shutting down.
    pub async fn release_outbox_claims(&self, worker: &str) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claim_until_ms = NULL WHERE claimed_by = $1 AND status = 'pending'")
            .bind(worker)
            .execute(p)
            .await?
            .rows_affected()))
    }

    pub async fn list_outbox(&self, status: Option<&str>) -> Result<Vec<OutboxMessage>> {
        let rows: Vec<OutboxRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM outbox WHERE ($1 IS NULL OR status = $1) ORDER BY id")
            .bind(status)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(OutboxMessage::try_from).collect()
    }

    pub async fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>> {
        let t: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(next_attempt_at_ms) FROM outbox WHERE status = 'pending'")
            .fetch_one(p)
            .await?);
        Ok(t.map(from_ms))
    }

    // ----------------------------------------------------------------- timers

    /// Schedules a timer; `None` when its dedup key was used before.
    pub async fn schedule_timer(&self, t: NewTimer, now: DateTime<Utc>) -> Result<Option<String>> {
        let id = uuid::Uuid::new_v4().to_string();
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO timers (id, kind, subject_id, payload, due_at_ms, status, dedup_key, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT DO NOTHING")
            .bind(&id)
            .bind(&t.kind)
            .bind(&t.subject_id)
            .bind(json_text(&t.payload))
            .bind(ms(t.due_at))
            .bind(&t.dedup_key)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok((n == 1).then_some(id))
    }

    /// Claims due timers for `worker` until `now + lease`, earliest first.
    pub async fn claim_due_timers(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Timer>> {
        let until = ms(now + lease);
        let mut rows: Vec<TimerRow> = match self {
            Store::Sqlite(p) => {
                sqlx::query_as(
                    "UPDATE timers SET claimed_by = $1, claim_until_ms = $2 \
                     WHERE id IN (SELECT id FROM timers WHERE status = 'pending' AND due_at_ms <= $3 \
                       AND (claimed_by IS NULL OR claim_until_ms < $3) ORDER BY due_at_ms LIMIT $4) \
                     RETURNING *",
                )
                .bind(worker)
                .bind(until)
                .bind(ms(now))
                .bind(limit)
                .fetch_all(p)
                .await?
            }
            Store::Postgres(p) => {
                sqlx::query_as(
                    "UPDATE timers SET claimed_by = $1, claim_until_ms = $2 \
                     WHERE id IN (SELECT id FROM timers WHERE status = 'pending' AND due_at_ms <= $3 \
                       AND (claimed_by IS NULL OR claim_until_ms < $3) ORDER BY due_at_ms LIMIT $4 \
                       FOR UPDATE SKIP LOCKED) \
                     AND (claimed_by IS NULL OR claim_until_ms < $3) \
                     RETURNING *",
                )
                .bind(worker)
                .bind(until)
                .bind(ms(now))
                .bind(limit)
                .fetch_all(p)
                .await?
            }
        };
        rows.sort_by_key(|r| r.due_at_ms);
        rows.into_iter().map(Timer::try_from).collect()
    }

    /// Marks a claimed timer fired; false if it was cancelled or taken over.
    pub async fn complete_timer(&self, id: &str, worker: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE timers SET status = 'fired', fired_at_ms = $3, claimed_by = NULL, claim_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn release_timer(&self, id: &str, worker: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE timers SET claimed_by = NULL, claim_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn release_timer_claims(&self, worker: &str) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE timers SET claimed_by = NULL, claim_until_ms = NULL WHERE claimed_by = $1 AND status = 'pending'")
            .bind(worker)
            .execute(p)
            .await?
            .rows_affected()))
    }

    /// Cancels a subject's pending timers (of one kind, or all).
    pub async fn cancel_timers(
        &self,
        subject_id: &str,
        kind: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE timers SET status = 'cancelled', fired_at_ms = $3, claimed_by = NULL, claim_until_ms = NULL \
             WHERE subject_id = $1 AND ($2 IS NULL OR kind = $2) AND status = 'pending'")
            .bind(subject_id)
            .bind(kind)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected()))
    }

    pub async fn list_timers(&self, subject_id: Option<&str>) -> Result<Vec<Timer>> {
        let rows: Vec<TimerRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM timers WHERE ($1 IS NULL OR subject_id = $1) ORDER BY due_at_ms, id")
            .bind(subject_id)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Timer::try_from).collect()
    }

    pub async fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>> {
        let t: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(due_at_ms) FROM timers WHERE status = 'pending'")
            .fetch_one(p)
            .await?);
        Ok(t.map(from_ms))
    }

    // -------------------------------------------------------------- approvals

    /// Creates a request and supersedes the job's pending ones, in one transaction.
    pub async fn create_approval(
        &self,
        new: NewApproval,
        now: DateTime<Utc>,
    ) -> Result<(Approval, Vec<Approval>)> {
        let id = uuid::Uuid::new_v4().to_string();
        let (row, superseded): (ApprovalRow, Vec<ApprovalRow>) = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let superseded: Vec<ApprovalRow> = sqlx::query_as(
                "UPDATE approvals SET status = 'superseded', decided_by = $3, decided_at_ms = $4, \
                   decision_reason = 'superseded by a newer request' \
                 WHERE tenant_id = $1 AND job_id = $2 AND status = 'pending' RETURNING *")
                .bind(&new.tenant_id)
                .bind(&new.job_id)
                .bind(&new.requested_by)
                .bind(ms(now))
                .fetch_all(&mut *tx)
                .await?;
            let row: ApprovalRow = sqlx::query_as(
                "INSERT INTO approvals (id, tenant_id, job_id, alert_id, requested_by, reason, \
                   current_deadline_ms, proposed_deadline_ms, status, expires_at_ms, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10) RETURNING *")
                .bind(&id)
                .bind(&new.tenant_id)
                .bind(&new.job_id)
                .bind(&new.alert_id)
                .bind(&new.requested_by)
                .bind(&new.reason)
                .bind(ms(new.current_deadline))
                .bind(ms(new.proposed_deadline))
                .bind(ms(new.expires_at))
                .bind(ms(now))
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            (row, superseded)
        });
        Ok((
            Approval::try_from(row)?,
            superseded
                .into_iter()
                .map(Approval::try_from)
                .collect::<Result<_>>()?,
        ))
    }

    pub async fn get_approval(&self, id: &str) -> Result<Option<Approval>> {
        let row: Option<ApprovalRow> = on_pool!(self, p => sqlx::query_as("SELECT * FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?);
        row.map(Approval::try_from).transpose()
    }

    pub async fn pending_approval_for_job(
        &self,
        tenant: &str,
        job_id: &str,
    ) -> Result<Option<Approval>> {
        let row: Option<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM approvals WHERE tenant_id = $1 AND job_id = $2 AND status = 'pending' \
             ORDER BY created_at_ms DESC LIMIT 1")
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(p)
            .await?);
        row.map(Approval::try_from).transpose()
    }

    pub async fn set_approval_message(&self, id: &str, channel: &str, ts: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE approvals SET channel = $2, ts = $3 WHERE id = $1 AND ts IS NULL")
            .bind(id)
            .bind(channel)
            .bind(ts)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Decides a pending request. `Some` only for the one call that decided:
    /// simultaneous clicks, or Approve and Reject together, give one decision.
    pub async fn decide_approval(
        &self,
        id: &str,
        to_status: &str,
        decided_by: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Approval>> {
        let row: Option<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "UPDATE approvals SET status = $2, decided_by = $3, decision_reason = $4, decided_at_ms = $5 \
             WHERE id = $1 AND status = 'pending' RETURNING *")
            .bind(id)
            .bind(to_status)
            .bind(decided_by)
            .bind(reason)
            .bind(ms(now))
            .fetch_optional(p)
            .await?);
        row.map(Approval::try_from).transpose()
    }

    /// Changes the outcome of an already decided request (e.g. approved, then
    /// Servo refused the change: `failed`). Conditional on the status it had.
    pub async fn amend_approval(
        &self,
        id: &str,
        from_status: &str,
        to_status: &str,
        reason: &str,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE approvals SET status = $3, decision_reason = $4 WHERE id = $1 AND status = $2")
            .bind(id)
            .bind(from_status)
            .bind(to_status)
            .bind(reason)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Expires pending requests whose time has come, and returns them.
    pub async fn expire_due_approvals(&self, now: DateTime<Utc>) -> Result<Vec<Approval>> {
        let rows: Vec<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "UPDATE approvals SET status = 'expired', decided_by = 'bot', decided_at_ms = $1 \
             WHERE status = 'pending' AND expires_at_ms <= $1 RETURNING *")
            .bind(ms(now))
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Approval::try_from).collect()
    }

    pub async fn list_approvals(
        &self,
        tenant: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<Approval>> {
        let rows: Vec<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM approvals WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR status = $2) \
             ORDER BY created_at_ms")
            .bind(tenant)
            .bind(status)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Approval::try_from).collect()
    }

    // ------------------------------------------------------------------ audit

    pub async fn audit(&self, e: &AuditEntry) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO audit_log (at_ms, tenant_id, actor, action, subject, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(ms(e.at))
            .bind(&e.tenant_id)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.subject)
            .bind(&e.outcome)
            .bind(e.detail.as_ref().map(json_text))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The newest entries first, optionally for one subject.
    pub async fn list_audit(&self, subject: Option<&str>, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM audit_log WHERE ($1 IS NULL OR subject = $1) ORDER BY id DESC LIMIT $2")
            .bind(subject)
            .bind(limit)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(AuditEntry::try_from).collect()
    }

    // ------------------------------------------------------ events and leases

    /// True only for the first call with this key (Slack retries events).
    pub async fn first_delivery(&self, key: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO processed_events (key, at_ms) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn prune_processed(&self, older_than: DateTime<Utc>) -> Result<u64> {
        Ok(
            on_pool!(self, p => sqlx::query("DELETE FROM processed_events WHERE at_ms < $1")
            .bind(ms(older_than))
            .execute(p)
            .await?
            .rows_affected()),
        )
    }

    /// Takes or extends a lease: free, expired, or already ours.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
             WHERE leases.holder = excluded.holder OR leases.until_ms < $4")
            .bind(name)
            .bind(holder)
            .bind(ms(now + ttl))
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn lease_holder(&self, name: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT holder FROM leases WHERE name = $1 AND until_ms >= $2")
            .bind(name)
            .bind(ms(now))
            .fetch_optional(p)
            .await?))
    }

    // ------------------------------------------------------------ mitigations

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
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT job_id FROM paused_jobs WHERE alert_id = $1 AND resumed_at_ms IS NULL ORDER BY paused_at_ms, job_id")
            .bind(alert_id)
            .fetch_all(p)
            .await?))
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

    /// Puts back a claim on a paused job whose resume failed.
    pub async fn unmark_resumed(&self, alert_id: &str, job_id: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query("UPDATE paused_jobs SET resumed_at_ms = NULL WHERE alert_id = $1 AND job_id = $2")
            .bind(alert_id)
            .bind(job_id)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Replaces what an alert shows (open or resolved), e.g. its buttons.
    pub async fn set_alert_shown(&self, id: &str, shown: &serde_json::Value) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query("UPDATE alerts SET shown = $2, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(json_text(shown))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    // ------------------------------------------------------------- escalation

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
        Ok(on_pool!(self, p => sqlx::query_as(
            "INSERT INTO escalations (alert_id, tenant_id, status, tier, round, epoch, reason, started_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'active', $3, 0, 1, $4, $5, $5) \
             ON CONFLICT (alert_id) DO UPDATE SET status = 'active', tier = excluded.tier, round = 0, \
               epoch = escalations.epoch + 1, reason = excluded.reason, started_at_ms = excluded.started_at_ms, \
               updated_at_ms = excluded.updated_at_ms \
             WHERE escalations.status <> 'active' RETURNING *")
            .bind(alert_id)
            .bind(tenant)
            .bind(tier)
            .bind(reason)
            .bind(ms(now))
            .fetch_optional(p)
            .await?))
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
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE escalations SET tier = $5, round = $6, updated_at_ms = $7 \
             WHERE alert_id = $1 AND status = 'active' AND epoch = $2 AND tier = $3 AND round = $4")
            .bind(alert_id)
            .bind(epoch)
            .bind(tier)
            .bind(round)
            .bind(to_tier)
            .bind(to_round)
            .bind(ms(now))
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
        Ok(on_pool!(self, p => sqlx::query_as(
            "UPDATE escalations SET status = $2, updated_at_ms = $3 \
             WHERE alert_id = $1 AND status <> 'stopped' AND ($2 = 'stopped' OR status = 'active') RETURNING *")
            .bind(alert_id)
            .bind(to)
            .bind(ms(now))
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
}
