//! The Servo interface: Servo keeps its backfill jobs in PostgreSQL and has no
//! HTTP API, so the bot reads and writes its tables directly, as Servo's own
//! CLI does. All SQL against Servo lives under this module, behind [`Servo`]:
//! list the active jobs, get one, partition statistics, and the state changes.

pub mod postgres;
pub mod sim;

use crate::config::DatabaseUrl;
use crate::domain::assessment::JobSnapshot;
use crate::domain::forecast::{self, Basis, ForecastInput, PartitionObs, PartitionState};
use crate::domain::risk::JobState;
use chrono::{DateTime, Utc};
use postgres::PgServo;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ServoError {
    /// Servo's database cannot be reached; commands answer "Servo is unreachable".
    #[error("Servo is unreachable: {0}")]
    Unreachable(String),
    #[error("Servo query failed: {0}")]
    Query(String),
    /// The role the bot connects as bypasses row-level security, and that
    /// was not allowed (`serve --allow-rls-bypass`): nothing is read or written.
    #[error("{0}")]
    RlsBypass(String),
}

impl From<sqlx::Error> for ServoError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // A connection that is refused, reset, or closed during the
            // handshake (a proxy whose database is gone answers the SSL
            // request with nothing: a protocol error) means Servo cannot be
            // reached, not that it refused the query.
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => ServoError::Unreachable(e.to_string()),
            other => ServoError::Query(other.to_string()),
        }
    }
}

/// Why a change to a job did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ServoActionError {
    /// No such job for this tenant (another tenant's job looks exactly the same).
    #[error("no such job")]
    NotFound,
    /// Servo does not allow the change from this state; `message` is Servo's own.
    #[error("{message}")]
    InvalidState { state: String, message: String },
    /// The job changed since it was read (optimistic concurrency on `version`).
    #[error("the job changed meanwhile")]
    VersionConflict,
    /// The change was sent and the connection lost at its commit: Servo may
    /// or may not have made it. (A failure before the commit rolled it back:
    /// that is [`ServoActionError::Servo`], and nothing changed.)
    #[error("Servo did not confirm the change ({0})")]
    Unconfirmed(String),
    #[error(transparent)]
    Servo(#[from] ServoError),
}

impl ServoActionError {
    /// A commit whose answer was lost.
    pub(crate) fn unconfirmed(e: sqlx::Error) -> Self {
        Self::Unconfirmed(ServoError::from(e).to_string())
    }
}

/// A backfill job as the bot sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub tenant_id: String,
    pub asset_id: Uuid,
    pub asset_name: String,
    /// The asset's owner: the natural default stakeholder of its jobs.
    pub asset_owner: Option<String>,
    pub idempotency_key: String,
    pub state: JobState,
    pub execution_strategy: serde_json::Value,
    pub partition_start: Option<String>,
    pub partition_end: Option<String>,
    pub partition_keys: Vec<String>,
    pub total_partitions: i64,
    pub completed_partitions: i64,
    pub failed_partitions: i64,
    pub skipped_partitions: i64,
    pub error_message: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub paused_at: Option<DateTime<Utc>>,
    pub checkpoint_partition_key: Option<String>,
    pub estimated_completion_at: Option<DateTime<Utc>>,
    pub avg_partition_duration_ms: Option<i64>,
    pub parent_job_id: Option<Uuid>,
    pub upstream_job_count: i64,
    pub completed_upstream_jobs: i64,
    pub sla_deadline_at: Option<DateTime<Utc>>,
    pub priority: i32,
    /// Durations of the most recent completed partitions, oldest first
    /// (filled by [`Job::attach_history`] when needed).
    pub recent_durations_ms: Vec<i64>,
    /// The bot's forecast (P50, P90) from the partition history, when made.
    pub forecast: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Risk is judged on P90 for this job (its tier is in `risk.p90_tiers`).
    pub judge_on_p90: bool,
    /// What the job means downstream (issue 37), when the poll read the
    /// tenant's lineage ([`Job::attach_impact`]).
    pub impact: Option<crate::domain::lineage::Impact>,
    /// When the poll could not read the tenant's lineage for this job: its
    /// impact is then not known (not "nothing downstream"), and its alert
    /// keeps the impact it last showed, with a note saying so.
    pub lineage_unread: Option<DateTime<Utc>>,
    /// A root job waiting on its upstream jobs (Servo's job tree): them by
    /// name, each with its progress and band, Slack markup (issue 37).
    pub upstream_note: Option<String>,
    /// `forecast` is only when a waiting root's upstream jobs are likely
    /// done: none of its own work has run and nothing says how long it
    /// takes, so it finishes later than that. A floor: risk judged on it is
    /// never early, a downstream run before it would read stale data, and
    /// none after it is called safe ([`Impact::floor`]).
    ///
    /// [`Impact::floor`]: crate::domain::lineage::Impact::floor
    pub wait_only: bool,
}

impl Job {
    /// What the pure risk assessment needs.
    pub fn snapshot(&self) -> JobSnapshot {
        JobSnapshot {
            id: self.id.to_string(),
            asset_name: self.asset_name.clone(),
            state: self.state,
            priority: self.priority,
            total_partitions: self.total_partitions,
            completed_partitions: self.completed_partitions,
            failed_partitions: self.failed_partitions,
            skipped_partitions: self.skipped_partitions,
            estimated_completion_at: self.estimated_completion_at,
            avg_partition_duration_ms: self.avg_partition_duration_ms,
            heartbeat_at: self.heartbeat_at,
            started_at: self.started_at,
            paused_at: self.paused_at,
            sla_deadline_at: self.sla_deadline_at,
            upstream_job_count: self.upstream_job_count,
            completed_upstream_jobs: self.completed_upstream_jobs,
            recent_durations_ms: self.recent_durations_ms.clone(),
            forecast: self.forecast,
            judge_on_p90: self.judge_on_p90,
        }
    }

    /// Share of the job's partitions done (completed or failed), 0 to 1.
    pub fn progress(&self) -> f64 {
        ((self.completed_partitions + self.failed_partitions) as f64
            / self.total_partitions.max(1) as f64)
            .clamp(0.0, 1.0)
    }

    /// Reads the job's partition history: the recent durations (the trend
    /// bottleneck) and the forecast (P50/P90), which risk then uses instead
    /// of Servo's EWMA. With too little history the forecast stays unset and
    /// Servo's own ETA is used, as before.
    pub fn attach_history(
        &mut self,
        history: &[PartitionObs],
        now: DateTime<Utc>,
        risk: &crate::config::RiskConfig,
        calibration: Option<&forecast::Calibration>,
        period_end_prior: Option<forecast::ClassPrior>,
    ) -> Option<forecast::Forecast> {
        let mut done: Vec<&PartitionObs> = history
            .iter()
            .filter(|p| p.state == PartitionState::Completed && p.duration_ms.is_some())
            .collect();
        done.sort_by_key(|p| p.completed_at);
        let skip = done.len().saturating_sub(RECENT_DURATIONS as usize);
        self.recent_durations_ms = done[skip..].iter().filter_map(|p| p.duration_ms).collect();
        let input = ForecastInput {
            now,
            total_partitions: self.total_partitions,
            partitions: history,
            servo_eta: self.estimated_completion_at,
            paused: self.state == JobState::Paused,
            waiting_upstream: self.state == JobState::WaitingUpstream,
            period_end_prior,
        };
        let raw = forecast::forecast(&input).filter(|f| f.basis == Basis::History);
        self.forecast = raw
            .filter(|_| risk.forecast)
            .map(|f| calibration.map_or(f, |c| c.apply(f, now)))
            .map(|f| (f.p50, f.p90));
        self.judge_on_p90 = risk
            .p90_tiers
            .contains(&crate::domain::risk::SlaTier::from_priority(self.priority));
        raw
    }
}

/// The most rows of each part of a tenant's lineage (assets, dependencies,
/// workflows) one poll reads.
pub const LINEAGE_LIMIT: i64 = 100_000;

/// The lineage as the one query returns it: `assets` as `[id, name, owner]`
/// arrays, `edges` as `[upstream, downstream]`, `workflows` as objects.
pub(crate) fn lineage_from_json(
    assets: serde_json::Value,
    edges: serde_json::Value,
    workflows: serde_json::Value,
) -> Result<crate::domain::lineage::Lineage, serde_json::Error> {
    use crate::domain::lineage::{AssetNode, Lineage, Schedule, Workflow};
    #[derive(serde::Deserialize)]
    struct Wf {
        id: Uuid,
        name: String,
        owner: Option<String>,
        cron: Option<String>,
        timezone: Option<String>,
        enabled: Option<bool>,
        next: Option<DateTime<Utc>>,
        assets: Vec<Uuid>,
    }
    let assets: Vec<(Uuid, String, Option<String>)> = serde_json::from_value(assets)?;
    let edges: Vec<(Uuid, Uuid)> = serde_json::from_value(edges)?;
    let workflows: Vec<Wf> = serde_json::from_value(workflows)?;
    Ok(Lineage::new(
        assets
            .into_iter()
            .map(|(id, name, owner)| AssetNode { id, name, owner })
            .collect(),
        edges,
        workflows
            .into_iter()
            .map(|w| Workflow {
                id: w.id,
                name: w.name,
                owner: w.owner,
                schedule: Schedule {
                    cron: w.cron,
                    timezone: w.timezone.unwrap_or_else(|| "UTC".into()),
                    enabled: w.enabled.unwrap_or(true),
                    next_scheduled_run: w.next,
                },
                assets: w.assets,
            })
            .collect(),
    ))
}

/// Logs, once per process, what is said once: an older Servo without the
/// lineage tables, a workflow whose cron is refused.
fn log_once(key: String) -> bool {
    static SAID: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    said.get_or_insert_with(Default::default).insert(key)
}

impl Job {
    /// When the job is likely done: the forecast's P90, else Servo's own
    /// ETA while it can be trusted (running, with a fresh heartbeat:
    /// [`fresh_servo_eta`](crate::domain::assessment::fresh_servo_eta)), to
    /// the minute; `None` when neither is known. Servo's ETA of a paused,
    /// pending or stalled job is whatever it last wrote, and would call
    /// runs safe that are not.
    pub fn likely_done(
        &self,
        now: DateTime<Utc>,
        thresholds: &crate::domain::assessment::RiskThresholds,
    ) -> Option<DateTime<Utc>> {
        self.forecast
            .map(|(_, p90)| p90)
            .or_else(|| {
                crate::domain::assessment::fresh_servo_eta(&self.snapshot(), now, thresholds)
            })
            .map(|t| {
                DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(60), 0)
                    .unwrap_or(t)
            })
    }

    /// Attaches what the job means downstream from the tenant's lineage.
    pub fn attach_impact(
        &mut self,
        lineage: &crate::domain::lineage::Lineage,
        depth: usize,
        now: DateTime<Utc>,
        thresholds: &crate::domain::assessment::RiskThresholds,
    ) {
        let likely_done = self.likely_done(now, thresholds);
        let mut impact = lineage.impact(self.asset_id, likely_done, depth, now);
        impact.floor = self.wait_only;
        self.impact = (!impact.is_empty()).then_some(impact);
    }
}

/// Why the runbook's recreate must not be done to this job, when Servo's
/// job tree (servo.md, "Job trees") forbids it: a new job knows nothing of
/// the tree, so a root still waiting on its upstream jobs would start before
/// their data is there, and an upstream child, once cancelled, would leave
/// its root waiting for ever. Servo's cancel allows both; the bot does not.
pub fn recreate_refusal(job: &Job) -> Option<ServoActionError> {
    let message = if job.parent_job_id.is_some() {
        "This job is an upstream job of another backfill, whose root waits for it: cancelling it would leave the root waiting for ever. Recreate the root once it runs, or pause lower-priority jobs to make room.".to_string()
    } else if job.state == JobState::WaitingUpstream
        || job.completed_upstream_jobs < job.upstream_job_count
    {
        format!(
            "This job waits on {} of its {} upstream jobs: a recreated job would start before their data is there. Act on the upstream jobs (the alert names them), or request an extension.",
            job.upstream_job_count - job.completed_upstream_jobs,
            job.upstream_job_count
        )
    } else {
        return None;
    };
    Some(ServoActionError::InvalidState {
        state: job.state.as_str().to_string(),
        message,
    })
}

/// The cancel reason the runbook gives for its high-risk step.
pub const RECREATE_REASON: &str = "SLA at risk - recreating with higher priority";

/// How many recent partition durations the trend looks at.
pub const RECENT_DURATIONS: i64 = 24;

/// How many job changes (pause, resume, deadline, cancel, recreate) this
/// process has asked Servo for. A read taken before the latest one may be
/// stale: cached answers remember the count they were read at.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// The count of job changes this process has made through Servo so far.
pub fn writes() -> u64 {
    WRITES.load(Ordering::Acquire)
}

/// Counts a change, whether or not Servo took it: a failed write may still
/// have happened (a timeout after the commit), so readers assume it did.
fn wrote() {
    WRITES.fetch_add(1, Ordering::AcqRel);
}

/// Servo, behind one narrow interface.
#[derive(Clone, Debug)]
pub enum Servo {
    Postgres(PgServo),
    /// `servo-sla-bot simulate`: jobs that run in simulated time.
    Sim(sim::SimServo),
}

impl Servo {
    /// Connects lazily: the bot starts, and says it is degraded, while Servo is down.
    /// Servo's query latencies go to `metrics` from now on.
    pub fn with_metrics(self, metrics: std::sync::Arc<crate::runtime::metrics::Metrics>) -> Self {
        match self {
            Servo::Postgres(pg) => Servo::Postgres(pg.with_metrics(metrics)),
            sim => sim,
        }
    }

    /// Servo's sessions are limited as the store's are
    /// ([`crate::store::pg_session_limits`]: a 15 s statement timeout unless
    /// the URL's `options` sets one, server-side keepalives), and each call
    /// has a deadline of its own, 5 s past the statement timeout: a
    /// blackholed connection (a failover that drops packets) never answers,
    /// not even the server's own timeout, and only the client can stop
    /// waiting.
    pub fn connect_lazy(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|e| anyhow::anyhow!("SERVO_DATABASE_URL ({url}) does not parse: {e}"))?
            .application_name("servo-sla-bot");
        let options = crate::store::pg_session_limits(options, "15s", "30s");
        let deadline = match crate::store::pg_statement_timeout(&options) {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t + Duration::from_secs(5)),
            None => Some(Duration::from_secs(20)),
        };
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // Answer "Servo is unreachable" within Slack's 3 seconds rather than hang.
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        Ok(Servo::Postgres(PgServo::new(pool).with_deadline(deadline)))
    }

    /// Lets a role that bypasses row-level security read and write Servo,
    /// with a warning (`serve --allow-rls-bypass`, a lab setup). The
    /// simulated Servo has no roles.
    pub fn allow_rls_bypass(self, allow: bool) -> Self {
        match self {
            Servo::Postgres(pg) => Servo::Postgres(pg.allow_rls_bypass(allow)),
            sim => sim,
        }
    }

    /// Checks the role the bot connects as, now (see [`PgServo::checked`]):
    /// [`ServoError::RlsBypass`] for a role that bypasses row-level security
    /// when that is not allowed; [`ServoError::Unreachable`] when it cannot
    /// be checked yet (it is then checked when Servo is first reached).
    pub async fn check_role(&self) -> Result<(), ServoError> {
        match self {
            Servo::Postgres(pg) => pg.checked().await,
            Servo::Sim(_) => Ok(()),
        }
    }

    /// Whether Servo's database answers, as a role the bot may use.
    pub async fn ping(&self) -> Result<(), ServoError> {
        match self {
            Servo::Postgres(pg) => {
                pg.checked().await?;
                pg.timed("ping", sqlx::query("SELECT 1").execute(pg.pool()))
                    .await?;
                Ok(())
            }
            Servo::Sim(sim) => sim.active_jobs("", false).map(|_| ()),
        }
    }

    pub async fn close(&self) {
        match self {
            Servo::Postgres(pg) => pg.pool().close().await,
            Servo::Sim(_) => {}
        }
    }

    pub async fn active_jobs(
        &self,
        tenant: &str,
        deadline_only: bool,
    ) -> Result<Vec<Job>, ServoError> {
        match self {
            Servo::Postgres(pg) => {
                pg.timed("active_jobs", pg.active_jobs(tenant, deadline_only))
                    .await
            }
            Servo::Sim(sim) => sim.active_jobs(tenant, deadline_only),
        }
    }

    pub async fn get_job(&self, tenant: &str, id: Uuid) -> Result<Option<Job>, ServoError> {
        match self {
            Servo::Postgres(pg) => pg.timed("get_job", pg.get_job(tenant, id)).await,
            Servo::Sim(sim) => sim.get_job(tenant, id),
        }
    }

    pub async fn recent_durations(
        &self,
        tenant: &str,
        job_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<i64>>, ServoError> {
        match self {
            Servo::Postgres(pg) => {
                pg.timed(
                    "recent_durations",
                    pg.recent_durations(tenant, job_ids, RECENT_DURATIONS),
                )
                .await
            }
            Servo::Sim(sim) => sim.recent_durations(tenant, job_ids, RECENT_DURATIONS),
        }
    }

    /// One job and every partition of it, read together.
    pub async fn job_with_history(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<(Job, Vec<PartitionObs>)>, ServoError> {
        match self {
            Servo::Postgres(pg) => {
                pg.timed("job_with_history", pg.job_with_history(tenant, id))
                    .await
            }
            Servo::Sim(sim) => Ok(match sim.get_job(tenant, id)? {
                Some(job) => {
                    let h = sim.partition_history(tenant, &[id])?.remove(&id);
                    Some((job, h.unwrap_or_default()))
                }
                None => None,
            }),
        }
    }

    /// Every partition of each job (Servo inserts them all at the start, so
    /// the pending keys are known): what the forecaster reads.
    pub async fn partition_history(
        &self,
        tenant: &str,
        job_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<PartitionObs>>, ServoError> {
        match self {
            Servo::Postgres(pg) => {
                pg.timed("partition_history", pg.partition_history(tenant, job_ids))
                    .await
            }
            Servo::Sim(sim) => sim.partition_history(tenant, job_ids),
        }
    }

    /// The completed partitions of each asset's last `jobs` completed jobs,
    /// newest job first: what the forecaster learns an asset's period-end
    /// partitions from.
    pub async fn asset_history(
        &self,
        tenant: &str,
        assets: &[String],
        jobs: i64,
    ) -> Result<HashMap<String, Vec<Vec<PartitionObs>>>, ServoError> {
        match self {
            Servo::Postgres(pg) => {
                pg.timed("asset_history", pg.asset_history(tenant, assets, jobs))
                    .await
            }
            Servo::Sim(sim) => sim.asset_history(tenant, assets, jobs),
        }
    }

    /// The tenant's lineage and scheduled workflows, read in one bounded
    /// query (issue 37). An older Servo without these tables answers an
    /// empty lineage, and says so in the log once. A workflow whose cron or
    /// zone is refused is named in the log once and left out.
    pub async fn lineage(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::lineage::Lineage, ServoError> {
        let read = match self {
            Servo::Postgres(pg) => {
                pg.timed("lineage", pg.lineage(tenant, LINEAGE_LIMIT))
                    .await?
            }
            Servo::Sim(sim) => Some(sim.lineage(tenant)),
        };
        let Some(mut lineage) = read else {
            if log_once("no-lineage".into()) {
                tracing::info!(
                    "Servo's database has no lineage or workflow schedules (an older Servo: no \
                     asset_dependencies, workflow_assets or workflows.schedule_cron); alerts say \
                     nothing of downstream impact"
                );
            }
            return Ok(Default::default());
        };
        lineage.workflows.retain(|w| match w.schedule.next_run(now) {
            Ok(_) => true,
            Err(e) => {
                if log_once(format!("cron:{tenant}:{}:{e}", w.id)) {
                    tracing::warn!(tenant, workflow = %w.name, error = %e,
                        "a workflow's schedule is refused: its runs are left out of downstream impact");
                }
                false
            }
        });
        Ok(lineage)
    }

    pub async fn pause(
        &self,
        tenant: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Job, ServoActionError> {
        let result = match self {
            Servo::Postgres(pg) => pg.timed("pause", pg.pause(tenant, id, now)).await,
            Servo::Sim(sim) => sim.pause(tenant, id),
        };
        wrote();
        result
    }

    pub async fn resume(
        &self,
        tenant: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Job, ServoActionError> {
        let result = match self {
            Servo::Postgres(pg) => pg.timed("resume", pg.resume(tenant, id, now)).await,
            Servo::Sim(sim) => sim.resume(tenant, id),
        };
        wrote();
        result
    }

    pub async fn set_deadline(
        &self,
        tenant: &str,
        id: Uuid,
        deadline: DateTime<Utc>,
        seen_version: i64,
    ) -> Result<Job, ServoActionError> {
        let result = match self {
            Servo::Postgres(pg) => {
                pg.timed(
                    "set_deadline",
                    pg.set_deadline(tenant, id, deadline, seen_version),
                )
                .await
            }
            Servo::Sim(sim) => sim.set_deadline(tenant, id, deadline, seen_version),
        };
        wrote();
        result
    }

    pub async fn cancel(
        &self,
        tenant: &str,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Job, ServoActionError> {
        let result = match self {
            Servo::Postgres(pg) => pg.timed("cancel", pg.cancel(tenant, id, reason, now)).await,
            Servo::Sim(sim) => sim.cancel(tenant, id, reason),
        };
        wrote();
        result
    }

    /// Cancels the job and starts its uncompleted partitions at `priority`:
    /// returns (the cancelled job, the new one).
    pub async fn recreate(
        &self,
        tenant: &str,
        id: Uuid,
        priority: i32,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Job, Job), ServoActionError> {
        let result = match self {
            Servo::Postgres(pg) => {
                pg.timed(
                    "recreate",
                    pg.recreate(tenant, id, priority, created_by, now),
                )
                .await
            }
            Servo::Sim(sim) => sim.recreate(tenant, id, priority, created_by),
        };
        wrote();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::assessment::RiskThresholds;

    fn running(now: DateTime<Utc>) -> Job {
        Job {
            id: Uuid::from_u128(1),
            tenant_id: "acme".into(),
            asset_id: Uuid::from_u128(2),
            asset_name: "revenue_daily".into(),
            asset_owner: None,
            idempotency_key: "k".into(),
            state: JobState::Running,
            execution_strategy: serde_json::json!({}),
            partition_start: None,
            partition_end: None,
            partition_keys: Vec::new(),
            total_partitions: 100,
            completed_partitions: 50,
            failed_partitions: 0,
            skipped_partitions: 0,
            error_message: None,
            created_by: None,
            created_at: now - chrono::Duration::hours(1),
            started_at: Some(now - chrono::Duration::hours(1)),
            completed_at: None,
            heartbeat_at: Some(now - chrono::Duration::minutes(1)),
            version: 1,
            paused_at: None,
            checkpoint_partition_key: None,
            estimated_completion_at: Some(now + chrono::Duration::minutes(100)),
            avg_partition_duration_ms: Some(60_000),
            parent_job_id: None,
            upstream_job_count: 0,
            completed_upstream_jobs: 0,
            sla_deadline_at: Some(now + chrono::Duration::minutes(60)),
            priority: 5,
            recent_durations_ms: Vec::new(),
            forecast: None,
            judge_on_p90: false,
            impact: None,
            lineage_unread: None,
            upstream_note: None,
            wait_only: false,
        }
    }

    /// Servo's ETA is likely-done only while servo.md says to trust it: the
    /// job running with a fresh heartbeat. Otherwise it is what Servo last
    /// wrote, and would call later runs safe.
    #[test]
    fn likely_done_trusts_servos_eta_only_while_running_with_a_fresh_heartbeat() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = RiskThresholds::default();
        let servo = now + chrono::Duration::minutes(100);
        let job = running(now);
        assert_eq!(job.likely_done(now, &t), Some(servo));
        let mut stale = running(now);
        stale.heartbeat_at = Some(now - chrono::Duration::minutes(30));
        assert_eq!(stale.likely_done(now, &t), None, "a stale heartbeat");
        let mut paused = running(now);
        paused.state = JobState::Paused;
        assert_eq!(paused.likely_done(now, &t), None, "paused");
        let mut pending = running(now);
        pending.state = JobState::Pending;
        pending.heartbeat_at = None;
        assert_eq!(pending.likely_done(now, &t), None, "pending");
        // The forecast's P90 wins, to the minute, whatever Servo says.
        let p90 = now + chrono::Duration::seconds(70 * 60 + 42);
        stale.forecast = Some((now + chrono::Duration::minutes(50), p90));
        assert_eq!(
            stale.likely_done(now, &t),
            Some(now + chrono::Duration::minutes(70))
        );
    }

    #[test]
    fn connection_failures_are_unreachable_and_query_errors_are_not() {
        for e in [
            sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into()),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            sqlx::Error::WorkerCrashed,
        ] {
            assert!(
                matches!(ServoError::from(e), ServoError::Unreachable(_)),
                "unreachable"
            );
        }
        assert!(matches!(
            ServoError::from(sqlx::Error::RowNotFound),
            ServoError::Query(_)
        ));
    }
}
