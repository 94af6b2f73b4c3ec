//! What early warning, the buffer check and the weekly SLA review keep:
//! watched jobs (first sight, lowest buffer, breach, outcome), quiet notices,
//! ETA marks at 25/50/75% progress, ETA samples of alerted jobs, and which
//! weekly reviews were posted. Pruned with everything else after
//! `review.retention`.

use super::{from_ms, in_tx, ms, on_pool, AlertRow, ApprovalRow, AuditRow, Result, Store};
use super::{Alert, Approval, AuditEntry};
use chrono::{DateTime, Utc};

/// A job first seen by the poller.
#[derive(Clone, Debug, PartialEq)]
pub struct NewWatchedJob {
    pub tenant_id: String,
    pub job_id: String,
    pub asset: String,
    pub priority: i32,
    pub tier: String,
    pub deadline: Option<DateTime<Utc>>,
    pub buffer: Option<f64>,
}

/// A watched job, as the review and the poller read it.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchedJob {
    pub tenant_id: String,
    pub job_id: String,
    pub asset: String,
    pub priority: i32,
    pub tier: String,
    pub first_seen: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub planned_buffer: Option<f64>,
    pub min_buffer: Option<f64>,
    pub min_buffer_at: Option<DateTime<Utc>>,
    pub last_mark: i64,
    pub breached_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct WatchedRow {
    tenant_id: String,
    job_id: String,
    asset: String,
    priority: i32,
    tier: String,
    first_seen_ms: i64,
    deadline_ms: Option<i64>,
    planned_buffer: Option<f64>,
    min_buffer: Option<f64>,
    min_buffer_at_ms: Option<i64>,
    last_mark: i64,
    breached_at_ms: Option<i64>,
    ended_at_ms: Option<i64>,
    outcome: Option<String>,
    completed_at_ms: Option<i64>,
}

fn opt_ms(v: Option<i64>, what: &str) -> Result<Option<DateTime<Utc>>> {
    v.map(|v| from_ms(v, what)).transpose()
}

impl TryFrom<WatchedRow> for WatchedJob {
    type Error = super::StoreError;
    fn try_from(r: WatchedRow) -> Result<Self> {
        Ok(WatchedJob {
            first_seen: from_ms(r.first_seen_ms, "watched_jobs.first_seen_ms")?,
            deadline: opt_ms(r.deadline_ms, "watched_jobs.deadline_ms")?,
            min_buffer_at: opt_ms(r.min_buffer_at_ms, "watched_jobs.min_buffer_at_ms")?,
            breached_at: opt_ms(r.breached_at_ms, "watched_jobs.breached_at_ms")?,
            ended_at: opt_ms(r.ended_at_ms, "watched_jobs.ended_at_ms")?,
            completed_at: opt_ms(r.completed_at_ms, "watched_jobs.completed_at_ms")?,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            asset: r.asset,
            priority: r.priority,
            tier: r.tier,
            planned_buffer: r.planned_buffer,
            min_buffer: r.min_buffer,
            last_mark: r.last_mark,
            outcome: r.outcome,
        })
    }
}

/// What the poller keeps of an active watched job between polls.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveWatch {
    pub job_id: String,
    pub asset: String,
    pub deadline: Option<DateTime<Utc>>,
    pub min_buffer: Option<f64>,
    pub last_mark: i64,
    pub breached: bool,
}

#[derive(sqlx::FromRow)]
struct ActiveRow {
    job_id: String,
    asset: String,
    deadline_ms: Option<i64>,
    min_buffer: Option<f64>,
    last_mark: i64,
    breached_at_ms: Option<i64>,
}

/// A quiet notice: "approaching" or "tight_deadline".
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub id: String,
    pub tenant_id: String,
    pub job_id: String,
    pub kind: String,
    pub status: String,
    pub buffer: Option<f64>,
    pub alert_id: Option<String>,
    /// A reply in this (resolved) alert's thread rather than a message of its own.
    pub thread_of: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct NoticeRow {
    id: String,
    tenant_id: String,
    job_id: String,
    kind: String,
    status: String,
    buffer: Option<f64>,
    alert_id: Option<String>,
    thread_of: Option<String>,
    opened_at_ms: i64,
    closed_at_ms: Option<i64>,
}

impl TryFrom<NoticeRow> for Notice {
    type Error = super::StoreError;
    fn try_from(r: NoticeRow) -> Result<Self> {
        Ok(Notice {
            opened_at: from_ms(r.opened_at_ms, "notices.opened_at_ms")?,
            closed_at: opt_ms(r.closed_at_ms, "notices.closed_at_ms")?,
            id: r.id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            kind: r.kind,
            status: r.status,
            buffer: r.buffer,
            alert_id: r.alert_id,
            thread_of: r.thread_of,
        })
    }
}

/// The outbox dedup key of a notice's post.
pub fn notice_post_key(id: &str) -> String {
    format!("notice:{id}:post")
}

/// Where a notice's message is.
#[derive(Clone, Debug, PartialEq)]
pub enum NoticePlace {
    /// Delivered: its channel and ts.
    Posted { channel: String, ts: String },
    /// Still waiting in the outbox.
    Pending,
    /// Never delivered (refused), or no such notice.
    Missing,
}

/// An ETA mark: Servo's and the bot's ETA when a job was `mark`% done, with
/// when the job really completed (if it has).
#[derive(Clone, Debug, PartialEq)]
pub struct EtaMark {
    pub job_id: String,
    pub asset: String,
    pub mark: i64,
    pub made_at: DateTime<Utc>,
    pub servo_eta: Option<DateTime<Utc>>,
    pub bot_eta: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct MarkRow {
    job_id: String,
    asset: String,
    mark: i64,
    made_at_ms: i64,
    servo_eta_ms: Option<i64>,
    bot_eta_ms: Option<i64>,
    completed_at_ms: Option<i64>,
}

/// An ETA mark to record: the job, the mark (25, 50 or 75) and both ETAs.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEtaMark {
    pub job_id: String,
    pub mark: i64,
    pub servo_eta: Option<DateTime<Utc>>,
    pub bot_eta: Option<DateTime<Utc>>,
}

/// The marks, as the store's CHECK has them.
fn crate_marks() -> [i64; 3] {
    [25, 50, 75]
}

/// One ETA sample of a job with an open alert.
#[derive(Clone, Debug, PartialEq)]
pub struct EtaSample {
    pub tenant_id: String,
    pub job_id: String,
    pub at: DateTime<Utc>,
    pub eta: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SampleRow {
    tenant_id: String,
    job_id: String,
    at_ms: i64,
    eta_ms: i64,
    deadline_ms: Option<i64>,
}

impl TryFrom<MarkRow> for EtaMark {
    type Error = super::StoreError;
    fn try_from(r: MarkRow) -> Result<Self> {
        Ok(EtaMark {
            made_at: from_ms(r.made_at_ms, "eta_marks.made_at_ms")?,
            servo_eta: opt_ms(r.servo_eta_ms, "eta_marks.servo_eta_ms")?,
            bot_eta: opt_ms(r.bot_eta_ms, "eta_marks.bot_eta_ms")?,
            completed_at: opt_ms(r.completed_at_ms, "watched_jobs.completed_at_ms")?,
            job_id: r.job_id,
            asset: r.asset,
            mark: r.mark,
        })
    }
}

impl TryFrom<SampleRow> for EtaSample {
    type Error = super::StoreError;
    fn try_from(r: SampleRow) -> Result<Self> {
        Ok(EtaSample {
            at: from_ms(r.at_ms, "eta_samples.at_ms")?,
            eta: from_ms(r.eta_ms, "eta_samples.eta_ms")?,
            deadline: opt_ms(r.deadline_ms, "eta_samples.deadline_ms")?,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
        })
    }
}

/// How far apart ETA samples are (one per job per bucket).
pub const SAMPLE_BUCKET_MS: i64 = 300_000;

/// Rows per multi-row INSERT (well under both engines' bind limits).
const CHUNK: usize = 400;

impl Store {
    /// One tenant's rows in a time window, decoded: `sql` binds the tenant
    /// as `$1` and the window as `$2` (from, inclusive) and `$3` (to, exclusive).
    async fn between<R, T>(
        &self,
        sql: &'static str,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<T>>
    where
        R: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
        T: TryFrom<R, Error = super::StoreError>,
    {
        let rows: Vec<R> = on_pool!(self, p => sqlx::query_as::<_, R>(sql)
            .bind(tenant)
            .bind(ms(from))
            .bind(ms(to))
            .fetch_all(p)
            .await?);
        rows.into_iter().map(T::try_from).collect()
    }

    /// A tenant's watched jobs that are still active (not yet ended): what
    /// the poller compares each poll against, and only that (it reads every
    /// active job's row).
    pub async fn watched_active(&self, tenant: &str) -> Result<Vec<ActiveWatch>> {
        let rows: Vec<ActiveRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT job_id, asset, deadline_ms, min_buffer, last_mark, breached_at_ms \
             FROM watched_jobs WHERE tenant_id = $1 AND ended_at_ms IS NULL")
            .bind(tenant)
            .fetch_all(p)
            .await?);
        rows.into_iter()
            .map(|r| {
                Ok(ActiveWatch {
                    deadline: opt_ms(r.deadline_ms, "watched_jobs.deadline_ms")?,
                    breached: r.breached_at_ms.is_some(),
                    job_id: r.job_id,
                    asset: r.asset,
                    min_buffer: r.min_buffer,
                    last_mark: r.last_mark,
                })
            })
            .collect()
    }

    /// One watched job.
    pub async fn get_watched(&self, tenant: &str, job: &str) -> Result<Option<WatchedJob>> {
        let row: Option<WatchedRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM watched_jobs WHERE tenant_id = $1 AND job_id = $2")
            .bind(tenant)
            .bind(job)
            .fetch_optional(p)
            .await?);
        row.map(WatchedJob::try_from).transpose()
    }

    /// Starts watching jobs seen for the first time; returns the ids this
    /// call inserted (a job already watched, by this or another replica, is
    /// not returned: its first sight was handled there).
    pub async fn watch_new(
        &self,
        jobs: &[NewWatchedJob],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let mut inserted = Vec::new();
        for chunk in jobs.chunks(CHUNK) {
            let ids: Vec<String> = on_pool!(self, p => {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO watched_jobs (tenant_id, job_id, asset, priority, tier, first_seen_ms, \
                       deadline_ms, planned_buffer, min_buffer, min_buffer_at_ms) ",
                );
                qb.push_values(chunk, |mut row, j| {
                    row.push_bind(&j.tenant_id)
                        .push_bind(&j.job_id)
                        .push_bind(&j.asset)
                        .push_bind(j.priority)
                        .push_bind(&j.tier)
                        .push_bind(ms(now))
                        .push_bind(j.deadline.map(ms))
                        .push_bind(j.buffer)
                        .push_bind(j.buffer)
                        .push_bind(j.buffer.map(|_| ms(now)));
                });
                qb.push(" ON CONFLICT (tenant_id, job_id) DO NOTHING RETURNING job_id");
                qb.build_query_scalar().fetch_all(p).await?
            });
            inserted.extend(ids);
        }
        Ok(inserted)
    }

    /// Records a lower buffer (only if lower than the lowest seen), the
    /// deadline now, and a breach (only the first).
    pub async fn watch_observe(
        &self,
        tenant: &str,
        job: &str,
        deadline: Option<DateTime<Utc>>,
        buffer: Option<f64>,
        breached: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE watched_jobs SET deadline_ms = $3, \
               min_buffer_at_ms = CASE WHEN $4 IS NOT NULL AND (min_buffer IS NULL OR min_buffer > $4) \
                                       THEN $6 ELSE min_buffer_at_ms END, \
               min_buffer = CASE WHEN $4 IS NOT NULL AND (min_buffer IS NULL OR min_buffer > $4) \
                                 THEN $4 ELSE min_buffer END, \
               breached_at_ms = CASE WHEN $5 AND breached_at_ms IS NULL THEN $6 ELSE breached_at_ms END \
             WHERE tenant_id = $1 AND job_id = $2")
            .bind(tenant)
            .bind(job)
            .bind(deadline.map(ms))
            .bind(buffer)
            .bind(breached)
            .bind(ms(now))
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Records many ETA marks at once (each once per job and mark) and moves
    /// each job's `last_mark` forward: one transaction however many jobs.
    pub async fn watch_marks(
        &self,
        tenant: &str,
        marks: &[NewEtaMark],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        in_tx!(self, tx => {
            for chunk in marks.chunks(CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO eta_marks (tenant_id, job_id, mark, made_at_ms, servo_eta_ms, bot_eta_ms) ",
                );
                qb.push_values(chunk, |mut row, m| {
                    row.push_bind(tenant)
                        .push_bind(&m.job_id)
                        .push_bind(m.mark)
                        .push_bind(ms(now))
                        .push_bind(m.servo_eta.map(ms))
                        .push_bind(m.bot_eta.map(ms));
                });
                qb.push(" ON CONFLICT (tenant_id, job_id, mark) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            for mark in crate_marks() {
                let ids: Vec<&str> = marks.iter().filter(|m| m.mark == mark).map(|m| m.job_id.as_str()).collect();
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = sqlx::QueryBuilder::new("UPDATE watched_jobs SET last_mark = ");
                    qb.push_bind(mark)
                        .push(" WHERE tenant_id = ")
                        .push_bind(tenant)
                        .push(" AND last_mark < ")
                        .push_bind(mark)
                        .push(" AND job_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    list.push_unseparated(")");
                    qb.build().execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records Servo's and the bot's ETA at a progress mark (once per mark).
    pub async fn watch_mark(
        &self,
        tenant: &str,
        job: &str,
        mark: i64,
        servo_eta: Option<DateTime<Utc>>,
        bot_eta: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let one = NewEtaMark {
            job_id: job.to_string(),
            mark,
            servo_eta,
            bot_eta,
        };
        self.watch_marks(tenant, std::slice::from_ref(&one), now)
            .await
    }

    /// A watched job left the active list: how it ended. Once.
    pub async fn watch_end(
        &self,
        tenant: &str,
        job: &str,
        outcome: &str,
        completed_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE watched_jobs SET ended_at_ms = $3, outcome = $4, completed_at_ms = $5 \
             WHERE tenant_id = $1 AND job_id = $2 AND ended_at_ms IS NULL")
            .bind(tenant)
            .bind(job)
            .bind(ms(now))
            .bind(outcome)
            .bind(completed_at.map(ms))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Records ETA samples; a job already sampled in a sample's five-minute
    /// bucket keeps the earlier one.
    pub async fn record_eta_samples(&self, samples: &[EtaSample]) -> Result<()> {
        for chunk in samples.chunks(CHUNK) {
            on_pool!(self, p => {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO eta_samples (tenant_id, job_id, bucket, at_ms, eta_ms, deadline_ms) ",
                );
                qb.push_values(chunk, |mut row, s| {
                    row.push_bind(&s.tenant_id)
                        .push_bind(&s.job_id)
                        .push_bind(ms(s.at).div_euclid(SAMPLE_BUCKET_MS))
                        .push_bind(ms(s.at))
                        .push_bind(ms(s.eta))
                        .push_bind(s.deadline.map(ms));
                });
                qb.push(" ON CONFLICT (tenant_id, job_id, bucket) DO NOTHING");
                qb.build().execute(p).await?;
            });
        }
        Ok(())
    }

    /// A tenant's ETA samples taken in `[from, to)`.
    pub async fn eta_samples(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EtaSample>> {
        self.between::<SampleRow, _>(
            "SELECT tenant_id, job_id, at_ms, eta_ms, deadline_ms FROM eta_samples \
             WHERE tenant_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY job_id, at_ms",
            tenant,
            from,
            to,
        )
        .await
    }

    /// Opens a notice for a job unless one is open; `None` when one was.
    pub async fn open_notice(
        &self,
        tenant: &str,
        job: &str,
        kind: &str,
        buffer: Option<f64>,
        thread_of: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Notice>> {
        let id = uuid::Uuid::new_v4().to_string();
        let row: Option<NoticeRow> = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO notices (id, tenant_id, job_id, kind, status, buffer, opened_at_ms, thread_of) \
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) \
             ON CONFLICT DO NOTHING RETURNING *")
            .bind(&id)
            .bind(tenant)
            .bind(job)
            .bind(kind)
            .bind(buffer)
            .bind(ms(now))
            .bind(thread_of)
            .fetch_optional(p)
            .await?);
        row.map(Notice::try_from).transpose()
    }

    /// A tenant's open notices, by job id (a job has at most one).
    pub async fn open_notices_by_job(
        &self,
        tenant: &str,
    ) -> Result<std::collections::HashMap<String, Notice>> {
        Ok(self
            .open_notices(tenant)
            .await?
            .into_iter()
            .map(|n| (n.job_id.clone(), n))
            .collect())
    }

    /// A tenant's open notices.
    pub async fn open_notices(&self, tenant: &str) -> Result<Vec<Notice>> {
        let rows: Vec<NoticeRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM notices WHERE tenant_id = $1 AND status = 'open' ORDER BY opened_at_ms")
            .bind(tenant)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Notice::try_from).collect()
    }

    /// A job's open notice, if it has one.
    pub async fn open_notice_for_job(&self, tenant: &str, job: &str) -> Result<Option<Notice>> {
        let row: Option<NoticeRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM notices WHERE tenant_id = $1 AND job_id = $2 AND status = 'open'")
            .bind(tenant)
            .bind(job)
            .fetch_optional(p)
            .await?);
        row.map(Notice::try_from).transpose()
    }

    /// A tenant's notices opened in `[from, to)`.
    pub async fn notices_between(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Notice>> {
        self.between::<NoticeRow, _>(
            "SELECT * FROM notices WHERE tenant_id = $1 AND opened_at_ms >= $2 AND opened_at_ms < $3 \
             ORDER BY opened_at_ms",
            tenant,
            from,
            to,
        )
        .await
    }

    /// Closes an open notice as `cleared` or `promoted` (into `alert_id`);
    /// false when it was not open any more (someone else closed it).
    pub async fn close_notice(
        &self,
        id: &str,
        status: &str,
        alert_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if !matches!(status, "cleared" | "promoted") {
            return Err(super::StoreError::Invalid(format!(
                "a notice closes as cleared or promoted, not {status}"
            )));
        }
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE notices SET status = $2, alert_id = $3, closed_at_ms = $4 \
             WHERE id = $1 AND status = 'open'")
            .bind(id)
            .bind(status)
            .bind(alert_id)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Where a notice's message is: read from its post's outbox row.
    pub async fn notice_place(&self, id: &str) -> Result<NoticePlace> {
        self.post_place(&notice_post_key(id)).await
    }

    /// Where the message posted by the outbox row `dedup_key` is: its
    /// answer's channel and ts once sent.
    pub async fn post_place(&self, dedup_key: &str) -> Result<NoticePlace> {
        let row: Option<(String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT status, response FROM outbox WHERE dedup_key = $1")
            .bind(dedup_key)
            .fetch_optional(p)
            .await?);
        Ok(match row {
            Some((status, _)) if status == "pending" => NoticePlace::Pending,
            Some((status, Some(response))) if status == "sent" => {
                let v: serde_json::Value = serde_json::from_str(&response).unwrap_or_default();
                match (
                    v.get("channel").and_then(|c| c.as_str()),
                    v.get("ts").and_then(|t| t.as_str()),
                ) {
                    (Some(c), Some(t)) => NoticePlace::Posted {
                        channel: c.to_string(),
                        ts: t.to_string(),
                    },
                    _ => NoticePlace::Missing,
                }
            }
            _ => NoticePlace::Missing,
        })
    }

    /// Whether the weekly review of `period` went out for a tenant.
    pub async fn review_posted(&self, tenant: &str, period: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM reviews WHERE tenant_id = $1 AND period = $2")
            .bind(tenant)
            .bind(period)
            .fetch_one(p)
            .await?);
        Ok(n > 0)
    }

    /// When the bot's history of a tenant begins: the first sight of any of
    /// its jobs, or its first alert, whichever is earlier (`None`: nothing yet).
    pub async fn history_begins(&self, tenant: &str) -> Result<Option<DateTime<Utc>>> {
        let first: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(t) FROM ( \
               SELECT MIN(first_seen_ms) AS t FROM watched_jobs WHERE tenant_id = $1 \
               UNION ALL SELECT MIN(opened_at_ms) AS t FROM alerts WHERE tenant_id = $1 \
             ) AS firsts")
            .bind(tenant)
            .fetch_one(p)
            .await?);
        first.map(|t| from_ms(t, "history_begins")).transpose()
    }

    /// Claims the weekly review of `period` for a tenant: true once.
    pub async fn claim_review(
        &self,
        tenant: &str,
        period: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO reviews (tenant_id, period, posted_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, period) DO NOTHING")
            .bind(tenant)
            .bind(period)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// The tenant's watched jobs that were active at some point in `[from, to)`.
    pub async fn watched_between(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WatchedJob>> {
        self.between::<WatchedRow, _>(
            "SELECT * FROM watched_jobs WHERE tenant_id = $1 AND first_seen_ms < $3 \
               AND (ended_at_ms IS NULL OR ended_at_ms >= $2) ORDER BY first_seen_ms, job_id",
            tenant,
            from,
            to,
        )
        .await
    }

    /// ETA marks of the tenant's jobs that completed in `[from, to)`.
    pub async fn marks_completed_between(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EtaMark>> {
        self.between::<MarkRow, _>(
            "SELECT m.job_id, w.asset, m.mark, m.made_at_ms, m.servo_eta_ms, m.bot_eta_ms, \
                    w.completed_at_ms \
             FROM eta_marks m JOIN watched_jobs w ON w.tenant_id = m.tenant_id AND w.job_id = m.job_id \
             WHERE m.tenant_id = $1 AND w.completed_at_ms >= $2 AND w.completed_at_ms < $3 \
             ORDER BY m.job_id, m.mark",
            tenant,
            from,
            to,
        )
        .await
    }

    /// The tenant's alerts opened in `[from, to)`.
    pub async fn alerts_between(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        self.between::<AlertRow, _>(
            "SELECT * FROM alerts WHERE tenant_id = $1 AND opened_at_ms >= $2 AND opened_at_ms < $3 \
             ORDER BY opened_at_ms, id",
            tenant,
            from,
            to,
        )
        .await
    }

    /// The tenant's extension requests made in `[from, to)`.
    pub async fn approvals_between(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Approval>> {
        self.between::<ApprovalRow, _>(
            "SELECT * FROM approvals WHERE tenant_id = $1 AND created_at_ms >= $2 AND created_at_ms < $3 \
             ORDER BY created_at_ms, id",
            tenant,
            from,
            to,
        )
        .await
    }

    /// The tenant's audit log in `[from, to)`, oldest first.
    pub async fn audit_between(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>> {
        self.between::<AuditRow, _>(
            "SELECT * FROM audit_log WHERE tenant_id = $1 AND at_ms >= $2 AND at_ms < $3 \
             ORDER BY at_ms, id",
            tenant,
            from,
            to,
        )
        .await
    }

    /// Deletes what is older than `before` and no longer in play: resolved
    /// alerts (with their escalations, scaling requests, paused-job records and decided
    /// requests), decided requests, sent or failed outbox rows, fired or
    /// cancelled timers, the audit log, ended watched jobs with their marks
    /// and samples, closed notices, completed forecasts and posted reviews.
    /// Open alerts, pending requests, pending messages and timers, and
    /// active jobs are kept whatever their age. Returns rows deleted.
    pub async fn prune_history(&self, before: DateTime<Utc>) -> Result<u64> {
        let cut = ms(before);
        let statements = [
            "DELETE FROM approvals WHERE status <> 'pending' AND created_at_ms < $1 \
               AND (decided_at_ms IS NULL OR decided_at_ms < $1)",
            "DELETE FROM paused_jobs WHERE alert_id IN \
               (SELECT id FROM alerts WHERE status = 'resolved' AND resolved_at_ms < $1)",
            "DELETE FROM escalations WHERE alert_id IN \
               (SELECT id FROM alerts WHERE status = 'resolved' AND resolved_at_ms < $1)",
            "DELETE FROM scaling_requests WHERE alert_id IN \
               (SELECT id FROM alerts WHERE status = 'resolved' AND resolved_at_ms < $1)",
            "DELETE FROM alerts WHERE status = 'resolved' AND resolved_at_ms < $1 \
               AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.alert_id = alerts.id)",
            "DELETE FROM outbox WHERE status <> 'pending' AND created_at_ms < $1",
            "DELETE FROM timers WHERE status <> 'pending' AND created_at_ms < $1",
            "DELETE FROM audit_log WHERE at_ms < $1",
            "DELETE FROM intents WHERE status <> 'applying' AND created_at_ms < $1",
            "DELETE FROM rollups WHERE status <> 'open' AND resolved_at_ms < $1",
            "DELETE FROM incidents WHERE status <> 'open' AND closed_at_ms < $1",
            "DELETE FROM eta_marks WHERE made_at_ms < $1 AND EXISTS (SELECT 1 FROM watched_jobs w \
               WHERE w.tenant_id = eta_marks.tenant_id AND w.job_id = eta_marks.job_id \
               AND w.ended_at_ms IS NOT NULL AND w.ended_at_ms < $1)",
            "DELETE FROM watched_jobs WHERE ended_at_ms IS NOT NULL AND ended_at_ms < $1",
            "DELETE FROM eta_samples WHERE at_ms < $1",
            "DELETE FROM notices WHERE status <> 'open' AND closed_at_ms < $1",
            "DELETE FROM forecasts WHERE completed_at_ms IS NOT NULL AND completed_at_ms < $1",
            "DELETE FROM reviews WHERE posted_at_ms < $1",
            "DELETE FROM home_viewers WHERE opened_at_ms < $1",
        ];
        let mut deleted = 0;
        in_tx!(self, tx => {
            for sql in statements {
                deleted += sqlx::query(sql).bind(cut).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        });
        Ok(deleted)
    }

    /// The tenant's last `limit` mitigations that went through, newest
    /// first: what each mitigation's confirm dialog says it bought before
    /// (issue 38). Pauses, recreates, scaling requests and approved
    /// extensions; a `/backfill pause` is among them, told apart by its detail.
    pub async fn recent_mitigations(&self, tenant: &str, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM audit_log WHERE tenant_id = $1 AND outcome = 'ok' \
               AND action IN ('pause', 'recreate', 'request_scaling', 'approve_extension') \
             ORDER BY at_ms DESC, id DESC LIMIT $2")
            .bind(tenant)
            .bind(limit)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(AuditEntry::try_from).collect()
    }

    /// The ETA samples of some jobs, each within its window `[from, to]`
    /// (the samples around a mitigation), ordered by job and time.
    pub async fn eta_samples_around(
        &self,
        tenant: &str,
        windows: &[(String, DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<Vec<EtaSample>> {
        let mut out = Vec::new();
        // Three binds a window: well under both engines' limits.
        for chunk in windows.chunks(CHUNK) {
            let rows: Vec<SampleRow> = on_pool!(self, p => {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT tenant_id, job_id, at_ms, eta_ms, deadline_ms FROM eta_samples \
                     WHERE tenant_id = ",
                );
                qb.push_bind(tenant).push(" AND (");
                for (i, (job, from, to)) in chunk.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(job_id = ")
                        .push_bind(job)
                        .push(" AND at_ms >= ")
                        .push_bind(ms(*from))
                        .push(" AND at_ms <= ")
                        .push_bind(ms(*to))
                        .push(")");
                }
                qb.push(") ORDER BY job_id, at_ms");
                qb.build_query_as().fetch_all(p).await?
            });
            for r in rows {
                out.push(EtaSample::try_from(r)?);
            }
        }
        Ok(out)
    }

    /// Some of the tenant's watched jobs, by id (unknown ids are left out).
    pub async fn watched_jobs(&self, tenant: &str, ids: &[String]) -> Result<Vec<WatchedJob>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let rows: Vec<WatchedRow> = on_pool!(self, p => {
                let mut qb = sqlx::QueryBuilder::new("SELECT * FROM watched_jobs WHERE tenant_id = ");
                qb.push_bind(tenant).push(" AND job_id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                qb.push(") ORDER BY job_id");
                qb.build_query_as().fetch_all(p).await?
            });
            for r in rows {
                out.push(WatchedJob::try_from(r)?);
            }
        }
        Ok(out)
    }
}
