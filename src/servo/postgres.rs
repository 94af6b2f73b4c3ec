//! Servo's tables in PostgreSQL. Servo forces row-level security: every
//! transaction here first sets the tenant with
//! `set_config('app.current_tenant', $1, true)`, exactly as Servo does, or it
//! would silently see no rows. Writes follow Servo's own CLI (`servo.md`):
//! which states allow a change, what is written, and the version bump.
//!
//! Every query also names the tenant itself (`j.tenant_id = $n`; partitions
//! are read only for jobs read under the tenant): defence in depth, so a
//! role that RLS does not apply to (refused unless `--allow-rls-bypass`)
//! still keeps each tenant to its own jobs.

use super::{Job, ServoActionError, ServoError};
use crate::domain::risk::JobState;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// `SELECT <the job's columns and its asset's owner> FROM ... <tail>`.
macro_rules! job_select {
    ($tail:literal) => {
        concat!(
            "SELECT j.id, j.tenant_id, j.asset_id, j.asset_name, j.idempotency_key, j.state, \
             j.execution_strategy, j.partition_start, j.partition_end, j.partition_keys, \
             j.total_partitions, j.completed_partitions, j.failed_partitions, j.skipped_partitions, \
             j.error_message, j.created_by, j.created_at, j.started_at, j.completed_at, j.heartbeat_at, \
             j.version, j.paused_at, j.checkpoint_partition_key, j.estimated_completion_at, \
             j.avg_partition_duration_ms, j.parent_job_id, j.upstream_job_count, \
             j.completed_upstream_jobs, j.sla_deadline_at, j.priority, a.owner AS asset_owner \
             FROM backfill_jobs j LEFT JOIN assets a ON a.id = j.asset_id \
             AND (a.tenant_id = j.tenant_id OR a.tenant_id IS NULL) ",
            $tail
        )
    };
}

/// The same, without the per-job JSON (`partition_keys`, about 1 kB a job,
/// and `execution_strategy`) that polling and listing never use: reading
/// and decoding them was most of a poll's Servo time. Jobs read this way
/// have empty `partition_keys` and a null `execution_strategy`; code that
/// needs them (recreate) reads the job with [`job_select!`].
macro_rules! job_select_light {
    ($tail:literal) => {
        concat!(
            "SELECT j.id, j.tenant_id, j.asset_id, j.asset_name, j.idempotency_key, j.state, \
             j.partition_start, j.partition_end, \
             j.total_partitions, j.completed_partitions, j.failed_partitions, j.skipped_partitions, \
             j.error_message, j.created_by, j.created_at, j.started_at, j.completed_at, j.heartbeat_at, \
             j.version, j.paused_at, j.checkpoint_partition_key, j.estimated_completion_at, \
             j.avg_partition_duration_ms, j.parent_job_id, j.upstream_job_count, \
             j.completed_upstream_jobs, j.sla_deadline_at, j.priority, a.owner AS asset_owner \
             FROM backfill_jobs j LEFT JOIN assets a ON a.id = j.asset_id \
             AND (a.tenant_id = j.tenant_id OR a.tenant_id IS NULL) ",
            $tail
        )
    };
}

/// The active states, as Servo names them.
const ACTIVE: [&str; 5] = [
    "pending",
    "waiting_upstream",
    "running",
    "paused",
    "resuming",
];

#[derive(Clone)]
pub struct PgServo {
    pool: PgPool,
    /// Where query latencies go (`servo_sla_bot_servo_query_duration_seconds`).
    metrics: Option<std::sync::Arc<crate::runtime::metrics::Metrics>>,
    /// Whether the role is one that row-level security applies to: nothing
    /// is read or written before it has been checked.
    gate: std::sync::Arc<RlsGate>,
    /// How long one call may take before the bot stops waiting for it.
    deadline: Option<std::time::Duration>,
}

/// What a Servo call returns when it ran past its deadline: Servo is
/// unreachable (a write may still have happened, as after any timeout).
pub(super) trait TimedOut {
    fn timed_out(after: std::time::Duration) -> Self;
}

fn no_answer(after: std::time::Duration) -> ServoError {
    ServoError::Unreachable(format!("no answer within {} s", after.as_secs()))
}

impl<T> TimedOut for Result<T, ServoError> {
    fn timed_out(after: std::time::Duration) -> Self {
        Err(no_answer(after))
    }
}

/// Only changes return this: one Servo never answered may have been
/// committed (the commit's answer is what was lost), so it is unconfirmed.
impl<T> TimedOut for Result<T, super::ServoActionError> {
    fn timed_out(after: std::time::Duration) -> Self {
        Err(super::ServoActionError::Unconfirmed(
            no_answer(after).to_string(),
        ))
    }
}

impl<T> TimedOut for Result<T, sqlx::Error> {
    fn timed_out(after: std::time::Duration) -> Self {
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", after.as_secs()),
        )))
    }
}

/// What `pg_roles` says of the role the bot is connected to Servo as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServoRole {
    pub name: String,
    /// `rolsuper`: a superuser bypasses every row-level-security policy.
    pub superuser: bool,
    /// `rolbypassrls`: the role bypasses them too.
    pub bypass_rls: bool,
}

impl ServoRole {
    /// Whether Servo's forced row-level security does not apply to the role.
    pub fn bypasses_rls(&self) -> bool {
        self.superuser || self.bypass_rls
    }

    /// What the role is, for a message: "a superuser", "a role with BYPASSRLS".
    fn what(&self) -> &'static str {
        if self.superuser {
            "a superuser"
        } else {
            "a role with BYPASSRLS"
        }
    }
}

/// Checks the role once, before the first read or write: a role that
/// bypasses row-level security sees every tenant's rows, so a tenant's poll
/// would alert (and page, and act) on another tenant's jobs.
#[derive(Debug, Default)]
struct RlsGate {
    /// Let such a role through anyway, with a warning (a lab setup).
    allow_bypass: std::sync::atomic::AtomicBool,
    /// Once the role has been read: `Ok`, or why it is refused. A failure to
    /// read it (Servo unreachable) leaves it unset, to be tried again.
    verdict: tokio::sync::OnceCell<Result<(), String>>,
}

/// Why a role that bypasses row-level security is refused, and what to do.
pub fn rls_bypass_refusal(role: &ServoRole) -> String {
    format!(
        "SERVO_DATABASE_URL connects as `{}`, {}, which bypasses the row-level security that keeps \
         Servo's tenants apart: each tenant's poll and commands would see every tenant's jobs, so \
         one tenant's alerts, pages and buttons could name, and act on, another tenant's jobs. \
         Connect as an ordinary role (NOSUPERUSER NOBYPASSRLS, with SELECT, INSERT and UPDATE on \
         Servo's tables), or, for a lab setup only, start with `serve --allow-rls-bypass`.",
        role.name,
        role.what()
    )
}

impl std::fmt::Debug for PgServo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServo").field("pool", &self.pool).finish()
    }
}

fn job_from_row(row: &PgRow) -> Result<Job, ServoError> {
    let state: String = row.try_get("state")?;
    let state = JobState::parse(&state)
        .ok_or_else(|| ServoError::Query(format!("unknown job state '{state}'")))?;
    // Absent from the light select (see `job_select_light!`); any other
    // failure to read them is still an error.
    let optional_json = |column: &str| -> Result<serde_json::Value, ServoError> {
        match row.try_get::<serde_json::Value, _>(column) {
            Ok(v) => Ok(v),
            Err(sqlx::Error::ColumnNotFound(_)) => Ok(serde_json::Value::Null),
            Err(e) => Err(e.into()),
        }
    };
    let keys = optional_json("partition_keys")?;
    let partition_keys = keys
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let id: Uuid = row.try_get("id")?;
    Ok(Job {
        id,
        tenant_id: row.try_get("tenant_id")?,
        asset_id: row.try_get("asset_id")?,
        asset_name: row.try_get("asset_name")?,
        asset_owner: row.try_get("asset_owner")?,
        idempotency_key: row.try_get("idempotency_key")?,
        state,
        execution_strategy: optional_json("execution_strategy")?,
        partition_start: row.try_get("partition_start")?,
        partition_end: row.try_get("partition_end")?,
        partition_keys,
        total_partitions: row.try_get::<i32, _>("total_partitions")? as i64,
        completed_partitions: row.try_get::<i32, _>("completed_partitions")? as i64,
        failed_partitions: row.try_get::<i32, _>("failed_partitions")? as i64,
        skipped_partitions: row.try_get::<i32, _>("skipped_partitions")? as i64,
        error_message: row.try_get("error_message")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
        version: row.try_get::<i32, _>("version")? as i64,
        paused_at: row.try_get("paused_at")?,
        checkpoint_partition_key: row.try_get("checkpoint_partition_key")?,
        estimated_completion_at: row.try_get("estimated_completion_at")?,
        avg_partition_duration_ms: row.try_get("avg_partition_duration_ms")?,
        parent_job_id: row.try_get("parent_job_id")?,
        upstream_job_count: row.try_get::<i32, _>("upstream_job_count")? as i64,
        completed_upstream_jobs: row.try_get::<i32, _>("completed_upstream_jobs")? as i64,
        sla_deadline_at: row.try_get("sla_deadline_at")?,
        priority: row.try_get("priority")?,
        recent_durations_ms: Vec::new(),
        forecast: None,
        judge_on_p90: false,
        impact: None,
        lineage_unread: None,
        upstream_note: None,
        wait_only: false,
    })
}

/// A `backfill_partitions` row as the forecaster reads it; `None` for a
/// state this version does not know (not evidence).
fn obs_from_row(row: &PgRow) -> Result<Option<crate::domain::forecast::PartitionObs>, ServoError> {
    use crate::domain::forecast::{PartitionObs, PartitionState};
    let state: String = row.try_get("state")?;
    let Some(state) = PartitionState::parse(&state) else {
        return Ok(None);
    };
    Ok(Some(PartitionObs {
        key: row.try_get("partition_key")?,
        state,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        duration_ms: row.try_get("duration_ms")?,
        attempt_count: row.try_get::<Option<i32>, _>("attempt_count")?.unwrap_or(0),
    }))
}

impl PgServo {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            metrics: None,
            gate: Default::default(),
            deadline: None,
        }
    }

    /// Gives every call `deadline` at most (`None`: no limit).
    pub fn with_deadline(mut self, deadline: Option<std::time::Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Lets a role that bypasses row-level security through, with a warning
    /// (`serve --allow-rls-bypass`, for a lab setup); refused otherwise.
    pub fn allow_rls_bypass(self, allow: bool) -> Self {
        self.gate
            .allow_bypass
            .store(allow, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// The role the bot is connected as.
    pub async fn role(&self) -> Result<ServoRole, ServoError> {
        let row = sqlx::query(
            "SELECT current_user::text AS name, rolsuper, rolbypassrls \
             FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ServoRole {
            name: row.try_get("name")?,
            superuser: row.try_get("rolsuper")?,
            bypass_rls: row.try_get("rolbypassrls")?,
        })
    }

    /// Whether the role may be used: checked on the first call (at start, or
    /// when Servo is first reached), then remembered. A role that bypasses
    /// row-level security is refused ([`ServoError::RlsBypass`]) unless
    /// allowed, and then only warned about, once.
    pub async fn checked(&self) -> Result<(), ServoError> {
        let verdict = self
            .gate
            .verdict
            .get_or_try_init(|| async {
                let role = self.role().await?;
                if !role.bypasses_rls() {
                    return Ok::<_, ServoError>(Ok(()));
                }
                let why = rls_bypass_refusal(&role);
                if self
                    .gate
                    .allow_bypass
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(role = %role.name, superuser = role.superuser, bypass_rls = role.bypass_rls,
                        "--allow-rls-bypass: reading Servo as a role that bypasses row-level security; \
                         only every query's own tenant_id filter keeps the tenants apart. For a lab setup only");
                    Ok(Ok(()))
                } else {
                    tracing::error!(role = %role.name, "{why}");
                    Ok(Err(why))
                }
            })
            .await?;
        verdict.clone().map_err(ServoError::RlsBypass)
    }

    /// Records each query's latency in `metrics`.
    pub fn with_metrics(
        mut self,
        metrics: std::sync::Arc<crate::runtime::metrics::Metrics>,
    ) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs one query of Servo's, timed, within the deadline.
    pub(super) async fn timed<T: TimedOut>(
        &self,
        query: &'static str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let started = std::time::Instant::now();
        let out = match self.deadline {
            Some(deadline) => tokio::time::timeout(deadline, work)
                .await
                .unwrap_or_else(|_| T::timed_out(deadline)),
            None => work.await,
        };
        if let Some(m) = &self.metrics {
            m.observe(
                "servo_sla_bot_servo_query_duration_seconds",
                &[("query", query)],
                started.elapsed().as_secs_f64(),
            );
        }
        out
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction whose first statement sets the tenant, as Servo does.
    async fn tenant_tx(&self, tenant: &str) -> Result<Transaction<'static, Postgres>, ServoError> {
        self.checked().await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('app.current_tenant', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// The tenant's active jobs; with `deadline_only`, just those with an SLA.
    pub async fn active_jobs(
        &self,
        tenant: &str,
        deadline_only: bool,
    ) -> Result<Vec<Job>, ServoError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let states: Vec<String> = ACTIVE.iter().map(|s| s.to_string()).collect();
        let rows = sqlx::query(job_select_light!(
            "WHERE j.tenant_id = $3 AND j.state = ANY($1) \
             AND ($2 = false OR j.sla_deadline_at IS NOT NULL) \
             ORDER BY j.sla_deadline_at NULLS LAST, j.id"
        ))
        .bind(&states)
        .bind(deadline_only)
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(job_from_row).collect()
    }

    /// The tenant's lineage and scheduled workflows in one query (issue 37):
    /// its assets with their owners, the dependencies between them (visible
    /// only when both assets are), and the live version of each scheduled
    /// workflow with the assets it touches (`workflow_assets` has no policy
    /// of its own: it is reached only through `workflows`). Each part is
    /// bounded by `limit` rows. `None` for an older Servo without these
    /// tables (or without the schedule columns).
    pub async fn lineage(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<Option<crate::domain::lineage::Lineage>, ServoError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT \
               (SELECT COALESCE(json_agg(json_build_array(a.id, a.name, a.owner)), '[]'::json) \
                  FROM (SELECT id, name, owner FROM assets \
                        WHERE tenant_id = $1 OR tenant_id IS NULL ORDER BY name LIMIT $2) a) AS assets, \
               (SELECT COALESCE(json_agg(json_build_array(d.upstream_asset_id, d.downstream_asset_id)), '[]'::json) \
                  FROM (SELECT DISTINCT upstream_asset_id, downstream_asset_id FROM asset_dependencies \
                        ORDER BY upstream_asset_id, downstream_asset_id LIMIT $2) d) AS edges, \
               (SELECT COALESCE(json_agg(json_build_object( \
                   'id', w.id, 'name', w.name, 'owner', w.owner, 'cron', w.schedule_cron, \
                   'timezone', w.schedule_timezone, 'enabled', w.schedule_enabled, \
                   'next', w.next_scheduled_run, \
                   'assets', (SELECT COALESCE(json_agg(wa.asset_id ORDER BY wa.position), '[]'::json) \
                              FROM workflow_assets wa WHERE wa.workflow_id = w.id))), '[]'::json) \
                  FROM (SELECT * FROM \
                          (SELECT DISTINCT ON (name) id, name, owner, schedule_cron, schedule_timezone, \
                                  schedule_enabled, next_scheduled_run \
                           FROM workflows WHERE tenant_id = $1 OR tenant_id IS NULL \
                           ORDER BY name, version DESC) live \
                        WHERE live.schedule_enabled IS NOT FALSE \
                          AND (live.schedule_cron IS NOT NULL OR live.next_scheduled_run IS NOT NULL) \
                        ORDER BY name LIMIT $2) w) AS workflows",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_one(&mut *tx)
        .await;
        let row = match row {
            Ok(row) => row,
            // 42P01 undefined_table, 42703 undefined_column: an older Servo.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P01") | Some("42703")) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        let json = |c: &str| -> Result<serde_json::Value, ServoError> { Ok(row.try_get(c)?) };
        let (assets, edges, workflows) = (json("assets")?, json("edges")?, json("workflows")?);
        // Each part in a stable order, so a cut one is the same every poll;
        // and a cut is said, not silent.
        for (part, v) in [
            ("assets", &assets),
            ("edges", &edges),
            ("workflows", &workflows),
        ] {
            if v.as_array().is_some_and(|a| a.len() as i64 >= limit) {
                tracing::warn!(
                    tenant,
                    part,
                    limit,
                    "Servo's lineage was cut at the read's limit: what lies past it is not seen"
                );
            }
        }
        super::lineage_from_json(assets, edges, workflows)
            .map(Some)
            .map_err(|e| ServoError::Query(format!("the lineage does not read: {e}")))
    }

    /// One job of the tenant; another tenant's job is simply not found.
    pub async fn get_job(&self, tenant: &str, id: Uuid) -> Result<Option<Job>, ServoError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(job_select!("WHERE j.id = $1 AND j.tenant_id = $2"))
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The durations of the last `n` completed partitions of each job, oldest
    /// first: what tells whether a job is slowing down.
    pub async fn recent_durations(
        &self,
        tenant: &str,
        job_ids: &[Uuid],
        n: i64,
    ) -> Result<HashMap<Uuid, Vec<i64>>, ServoError> {
        if job_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT backfill_job_id, duration_ms FROM ( \
               SELECT backfill_job_id, duration_ms, completed_at, \
                      row_number() OVER (PARTITION BY backfill_job_id ORDER BY completed_at DESC) AS rn \
               FROM backfill_partitions \
               WHERE backfill_job_id = ANY(ARRAY(SELECT id FROM backfill_jobs WHERE id = ANY($1) AND tenant_id = $3)) \
                 AND state = 'completed' AND duration_ms IS NOT NULL \
             ) recent WHERE rn <= $2 ORDER BY backfill_job_id, completed_at",
        )
        .bind(job_ids)
        .bind(n)
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: HashMap<Uuid, Vec<i64>> = HashMap::new();
        for row in rows {
            let id: Uuid = row.try_get("backfill_job_id")?;
            let d: i64 = row.try_get("duration_ms")?;
            out.entry(id).or_default().push(d);
        }
        Ok(out)
    }

    /// Every partition of each job, for the forecaster.
    pub async fn partition_history(
        &self,
        tenant: &str,
        job_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<crate::domain::forecast::PartitionObs>>, ServoError> {
        use crate::domain::forecast::PartitionObs;
        if job_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT backfill_job_id, partition_key, state, started_at, completed_at, duration_ms, \
                    attempt_count \
             FROM backfill_partitions \
             WHERE backfill_job_id = ANY(ARRAY(SELECT id FROM backfill_jobs WHERE id = ANY($1) AND tenant_id = $2))",
        )
        .bind(job_ids)
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: HashMap<Uuid, Vec<PartitionObs>> = HashMap::new();
        for row in rows {
            if let Some(obs) = obs_from_row(&row)? {
                out.entry(row.try_get("backfill_job_id")?)
                    .or_default()
                    .push(obs);
            }
        }
        Ok(out)
    }

    /// The completed partitions of each asset's last `jobs` completed jobs.
    pub async fn asset_history(
        &self,
        tenant: &str,
        assets: &[String],
        jobs: i64,
    ) -> Result<HashMap<String, Vec<Vec<crate::domain::forecast::PartitionObs>>>, ServoError> {
        if assets.is_empty() {
            return Ok(HashMap::new());
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "WITH recent AS ( \
                 SELECT id, asset_name, completed_at FROM ( \
                     SELECT id, asset_name, completed_at, row_number() OVER \
                            (PARTITION BY asset_name ORDER BY completed_at DESC, id) AS nth \
                     FROM backfill_jobs \
                     WHERE tenant_id = $3 AND asset_name = ANY($1) AND state = 'completed' \
                       AND completed_at IS NOT NULL) j \
                 WHERE nth <= $2) \
             SELECT r.asset_name, p.backfill_job_id, p.partition_key, p.state, p.started_at, \
                    p.completed_at, p.duration_ms, p.attempt_count \
             FROM recent r JOIN backfill_partitions p ON p.backfill_job_id = r.id \
             WHERE p.state = 'completed' \
             ORDER BY r.completed_at DESC, p.backfill_job_id, p.completed_at",
        )
        .bind(assets)
        .bind(jobs)
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: HashMap<String, Vec<Vec<crate::domain::forecast::PartitionObs>>> =
            HashMap::new();
        let mut last: Option<Uuid> = None;
        for row in rows {
            let Some(obs) = obs_from_row(&row)? else {
                continue;
            };
            let job: Uuid = row.try_get("backfill_job_id")?;
            let of_asset = out.entry(row.try_get("asset_name")?).or_default();
            if last != Some(job) || of_asset.is_empty() {
                of_asset.push(Vec::new());
            }
            last = Some(job);
            if let Some(current) = of_asset.last_mut() {
                current.push(obs);
            }
        }
        Ok(out)
    }

    /// One job and all its partitions, in one transaction (`/backfill status`).
    pub async fn job_with_history(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<(Job, Vec<crate::domain::forecast::PartitionObs>)>, ServoError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let Some(row) = sqlx::query(job_select!("WHERE j.id = $1 AND j.tenant_id = $2"))
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let job = job_from_row(&row)?;
        let rows = sqlx::query(
            "SELECT partition_key, state, started_at, completed_at, duration_ms, attempt_count \
             FROM backfill_partitions WHERE backfill_job_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut history = Vec::with_capacity(rows.len());
        for row in &rows {
            history.extend(obs_from_row(row)?);
        }
        Ok(Some((job, history)))
    }

    /// Locks a job of the tenant for a change, in `tx`.
    async fn lock_job(
        tx: &mut Transaction<'static, Postgres>,
        tenant: &str,
        id: Uuid,
    ) -> Result<Job, ServoActionError> {
        let row = sqlx::query(job_select!(
            "WHERE j.id = $1 AND j.tenant_id = $2 FOR UPDATE OF j"
        ))
        .bind(id)
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await
        .map_err(ServoError::from)?;
        match row {
            Some(row) => Ok(job_from_row(&row)?),
            None => Err(ServoActionError::NotFound),
        }
    }

    /// Servo's pause: only from `running`; the checkpoint is the most recently
    /// completed partition (kept if there is none).
    pub async fn pause(
        &self,
        tenant: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Job, ServoActionError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let job = Self::lock_job(&mut tx, tenant, id).await?;
        if job.state != JobState::Running {
            return Err(ServoActionError::InvalidState {
                state: job.state.as_str().to_string(),
                message: format!(
                    "Cannot pause job in state '{}'. Only running jobs can be paused.",
                    job.state.as_str()
                ),
            });
        }
        let checkpoint: Option<String> = sqlx::query_scalar(
            "SELECT partition_key FROM backfill_partitions \
             WHERE backfill_job_id = $1 AND state = 'completed' \
             ORDER BY completed_at DESC NULLS LAST LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(ServoError::from)?;
        sqlx::query(
            "UPDATE backfill_jobs SET state = 'paused', paused_at = $2, \
             checkpoint_partition_key = COALESCE($3, checkpoint_partition_key), \
             heartbeat_at = $2, version = version + 1 WHERE id = $1 AND tenant_id = $4",
        )
        .bind(id)
        .bind(now)
        .bind(checkpoint)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map_err(ServoError::from)?;
        let job = Self::lock_job(&mut tx, tenant, id).await?;
        tx.commit().await.map_err(ServoActionError::unconfirmed)?;
        Ok(job)
    }

    /// Servo's resume: only from `paused`, to `resuming` (the executor takes it from there).
    pub async fn resume(
        &self,
        tenant: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Job, ServoActionError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let job = Self::lock_job(&mut tx, tenant, id).await?;
        if job.state != JobState::Paused {
            return Err(ServoActionError::InvalidState {
                state: job.state.as_str().to_string(),
                message: format!(
                    "Cannot resume job in state '{}'. Only paused jobs can be resumed.",
                    job.state.as_str()
                ),
            });
        }
        sqlx::query(
            "UPDATE backfill_jobs SET state = 'resuming', heartbeat_at = $2, version = version + 1 \
             WHERE id = $1 AND tenant_id = $3",
        )
        .bind(id)
        .bind(now)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map_err(ServoError::from)?;
        let job = Self::lock_job(&mut tx, tenant, id).await?;
        tx.commit().await.map_err(ServoActionError::unconfirmed)?;
        Ok(job)
    }

    /// The deadline change the runbook describes, with an optimistic version check.
    pub async fn set_deadline(
        &self,
        tenant: &str,
        id: Uuid,
        deadline: DateTime<Utc>,
        seen_version: i64,
    ) -> Result<Job, ServoActionError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE backfill_jobs SET sla_deadline_at = $2, version = version + 1 \
             WHERE id = $1 AND version = $3 AND tenant_id = $4",
        )
        .bind(id)
        .bind(deadline)
        .bind(seen_version as i32)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map_err(ServoError::from)?;
        if done.rows_affected() != 1 {
            let exists = Self::lock_job(&mut tx, tenant, id).await;
            return Err(match exists {
                Ok(_) => ServoActionError::VersionConflict,
                Err(e) => e,
            });
        }
        let job = Self::lock_job(&mut tx, tenant, id).await?;
        tx.commit().await.map_err(ServoActionError::unconfirmed)?;
        Ok(job)
    }

    /// Servo's cancel: from any active state; pending partitions become
    /// skipped. Runs inside `tx` so recreate can cancel and start atomically.
    async fn cancel_in(
        tx: &mut Transaction<'static, Postgres>,
        job: &Job,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServoActionError> {
        if !job.state.is_active() {
            return Err(ServoActionError::InvalidState {
                state: job.state.as_str().to_string(),
                message: format!(
                    "Cannot cancel job in state '{}'. Only active jobs can be cancelled.",
                    job.state.as_str()
                ),
            });
        }
        sqlx::query(
            "UPDATE backfill_jobs SET state = 'cancelled', error_message = $2, completed_at = $3, \
             version = version + 1 WHERE id = $1 AND tenant_id = $4",
        )
        .bind(job.id)
        .bind(reason)
        .bind(now)
        .bind(&job.tenant_id)
        .execute(&mut **tx)
        .await
        .map_err(ServoError::from)?;
        sqlx::query(
            "UPDATE backfill_partitions SET state = 'skipped', error_message = 'Job cancelled' \
             WHERE backfill_job_id = $1 AND state = 'pending'",
        )
        .bind(job.id)
        .execute(&mut **tx)
        .await
        .map_err(ServoError::from)?;
        Ok(())
    }

    pub async fn cancel(
        &self,
        tenant: &str,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Job, ServoActionError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let job = Self::lock_job(&mut tx, tenant, id).await?;
        Self::cancel_in(&mut tx, &job, reason, now).await?;
        let job = Self::lock_job(&mut tx, tenant, id).await?;
        tx.commit().await.map_err(ServoActionError::unconfirmed)?;
        Ok(job)
    }

    /// The runbook's high-risk step, as Servo's CLI does it: cancel the job
    /// with the runbook's reason, then start the same asset's partitions that
    /// were not completed, with `priority` and the same deadline. One
    /// transaction, so a failure leaves the old job running. If an active job
    /// already covers all those partitions at that priority, it is returned
    /// instead (as the CLI does). Refused for a job of a job tree
    /// ([`super::recreate_refusal`]).
    pub async fn recreate(
        &self,
        tenant: &str,
        id: Uuid,
        priority: i32,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Job, Job), ServoActionError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let old = Self::lock_job(&mut tx, tenant, id).await?;
        if let Some(refusal) = super::recreate_refusal(&old) {
            return Err(refusal);
        }
        if old.priority >= priority {
            return Err(ServoActionError::InvalidState {
                state: old.state.as_str().to_string(),
                message: format!("The job already has priority {}.", old.priority),
            });
        }
        Self::cancel_in(&mut tx, &old, super::RECREATE_REASON, now).await?;
        let done: Vec<String> = sqlx::query_scalar(
            "SELECT partition_key FROM backfill_partitions WHERE backfill_job_id = $1 AND state = 'completed'",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(ServoError::from)?;
        let remaining: Vec<String> = old
            .partition_keys
            .iter()
            .filter(|k| !done.contains(k))
            .cloned()
            .collect();
        if remaining.is_empty() {
            return Err(ServoActionError::InvalidState {
                state: old.state.as_str().to_string(),
                message: "Every partition is already completed; there is nothing to recreate."
                    .into(),
            });
        }
        // Only a job that covers every remaining partition, at the priority
        // asked for, stands for the new one: one that shares a key or runs
        // at the old priority would leave the rest undone or as slow.
        let existing: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM backfill_jobs WHERE tenant_id = $4 AND asset_id = $1 AND state = ANY($2) \
             AND partition_keys @> $3 AND priority >= $5 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(old.asset_id)
        .bind(ACTIVE.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .bind(serde_json::json!(remaining))
        .bind(tenant)
        .bind(priority)
        .fetch_optional(&mut *tx)
        .await
        .map_err(ServoError::from)?;
        let new_id = match existing {
            Some(id) => id,
            None => {
                let new_id = Uuid::new_v4();
                let key = format!(
                    "{}:{}:{}",
                    old.asset_id,
                    remaining[0],
                    now.format("%Y%m%d%H%M%S")
                );
                sqlx::query(
                    "INSERT INTO backfill_jobs (id, tenant_id, asset_id, asset_name, idempotency_key, state, \
                       execution_strategy, partition_start, partition_end, partition_keys, total_partitions, \
                       completed_partitions, failed_partitions, skipped_partitions, created_by, created_at, \
                       version, sla_deadline_at, priority) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, 0, 0, 0, $11, $12, 1, $13, $14)",
                )
                .bind(new_id)
                .bind(&old.tenant_id)
                .bind(old.asset_id)
                .bind(&old.asset_name)
                .bind(key)
                .bind(&old.execution_strategy)
                .bind(remaining.first())
                .bind(remaining.last())
                .bind(serde_json::json!(remaining))
                .bind(remaining.len() as i32)
                .bind(created_by)
                .bind(now)
                .bind(old.sla_deadline_at)
                .bind(priority)
                .execute(&mut *tx)
                .await
                .map_err(ServoError::from)?;
                sqlx::query(
                    "INSERT INTO backfill_partitions (backfill_job_id, partition_key, state, attempt_count, tenant_id) \
                     SELECT $1, k, 'pending', 0, $3 FROM unnest($2::varchar[]) AS k",
                )
                .bind(new_id)
                .bind(&remaining)
                .bind(&old.tenant_id)
                .execute(&mut *tx)
                .await
                .map_err(ServoError::from)?;
                new_id
            }
        };
        let cancelled = Self::lock_job(&mut tx, tenant, id).await?;
        let new = Self::lock_job(&mut tx, tenant, new_id).await?;
        tx.commit().await.map_err(ServoActionError::unconfirmed)?;
        Ok((cancelled, new))
    }
}
