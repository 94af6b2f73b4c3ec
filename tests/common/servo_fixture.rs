//! A Servo database for tests: a fresh PostgreSQL database holding Servo's
//! tables with their forced row-level-security policies, and an ordinary
//! (non-superuser) role for the bot, so RLS really applies to it.
#![allow(dead_code)]

use super::db::TestDb;
use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// The role the bot connects as. Roles are cluster-wide; it is created once.
pub const BOT_ROLE: &str = "servo_sla_bot_test";

pub struct ServoFixture {
    /// The fresh database (dropped with the fixture).
    pub db: TestDb,
    /// A superuser pool for seeding and inspecting (RLS does not apply to it).
    pub admin: PgPool,
}

/// One job to seed. `Default` is a running job halfway through 100 partitions.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub tenant: String,
    pub asset: String,
    pub state: String,
    pub total: i32,
    pub completed: i32,
    pub failed: i32,
    pub skipped: i32,
    pub priority: i32,
    pub deadline: Option<DateTime<Utc>>,
    pub eta: Option<DateTime<Utc>>,
    pub avg_ms: Option<i64>,
    pub heartbeat: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub upstream: i32,
    pub upstream_done: i32,
    /// Durations of the completed partitions, oldest first; shorter than
    /// `completed` means the rest take the last value.
    pub durations_ms: Vec<i64>,
    pub created_by: Option<String>,
    /// The job's id; a fresh one when not given.
    pub id: Option<Uuid>,
}

impl Default for JobSpec {
    fn default() -> Self {
        Self {
            tenant: "acme".into(),
            asset: "revenue_daily".into(),
            state: "running".into(),
            total: 100,
            completed: 50,
            failed: 0,
            skipped: 0,
            priority: 5,
            deadline: None,
            eta: None,
            avg_ms: Some(60_000),
            heartbeat: None,
            started: None,
            upstream: 0,
            upstream_done: 0,
            durations_ms: vec![60_000],
            created_by: Some("U0CREATOR".into()),
            id: None,
        }
    }
}

impl ServoFixture {
    pub async fn start() -> ServoFixture {
        Self::start_with(true).await
    }

    /// An older Servo: no lineage, no scheduled workflows (before its
    /// migrations 005 and 014, and without `asset_dependencies`).
    pub async fn start_without_lineage() -> ServoFixture {
        Self::start_with(false).await
    }

    async fn start_with(lineage: bool) -> ServoFixture {
        let db = TestDb::postgres().await;
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db.url)
            .await
            .expect("connect to the fresh Servo database");
        sqlx::raw_sql(include_str!("../fixtures/servo_schema.sql"))
            .execute(&admin)
            .await
            .expect("create Servo's schema");
        if lineage {
            sqlx::raw_sql(include_str!("../fixtures/servo_lineage_schema.sql"))
                .execute(&admin)
                .await
                .expect("create Servo's lineage and workflows");
        }
        // Concurrent tests race to create the role: either error means it exists.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN CREATE ROLE {BOT_ROLE} LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
        )))
        .execute(&admin)
        .await
        .expect("create the bot's role");
        let dbname = db.url.rsplit('/').next().unwrap().to_string();
        let lineage_grant = if lineage {
            format!("GRANT SELECT ON workflows, workflow_assets, asset_dependencies TO {BOT_ROLE};")
        } else {
            String::new()
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "GRANT CONNECT ON DATABASE \"{dbname}\" TO {BOT_ROLE}; \
             GRANT USAGE ON SCHEMA public TO {BOT_ROLE}; \
             GRANT SELECT, INSERT, UPDATE ON assets, backfill_jobs, backfill_partitions TO {BOT_ROLE}; \
             {lineage_grant}"
        )))
        .execute(&admin)
        .await
        .expect("grant the bot's role");
        ServoFixture { db, admin }
    }

    /// The URL the bot uses: the same database, as the ordinary role.
    pub fn bot_url(&self) -> String {
        let mut url = url::Url::parse(&self.db.url).unwrap();
        url.set_username(BOT_ROLE).unwrap();
        let _ = url.set_password(None);
        url.to_string()
    }

    /// The asset's id, created on first use.
    pub async fn asset(&self, tenant: &str, name: &str, owner: Option<&str>) -> Uuid {
        let row = sqlx::query(
            "INSERT INTO assets (name, owner, tenant_id) VALUES ($1, $2, $3) \
             ON CONFLICT (name, tenant_id) DO UPDATE SET owner = COALESCE(EXCLUDED.owner, assets.owner) \
             RETURNING id",
        )
        .bind(name)
        .bind(owner)
        .bind(tenant)
        .fetch_one(&self.admin)
        .await
        .expect("insert asset");
        row.get("id")
    }

    /// `upstream` feeds `downstream` (both the tenant's assets, created on
    /// first use).
    pub async fn depends(&self, tenant: &str, upstream: &str, downstream: &str) {
        let up = self.asset(tenant, upstream, None).await;
        let down = self.asset(tenant, downstream, None).await;
        sqlx::query(
            "INSERT INTO asset_dependencies (upstream_asset_id, downstream_asset_id, dependency_type) \
             VALUES ($1, $2, 'data') ON CONFLICT DO NOTHING",
        )
        .bind(up)
        .bind(down)
        .execute(&self.admin)
        .await
        .expect("insert dependency");
    }

    /// A scheduled workflow of the tenant touching `assets` (in order):
    /// `next` is its `next_scheduled_run`, `cron` its 5-field schedule in
    /// `timezone`. Returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn workflow(
        &self,
        tenant: &str,
        name: &str,
        owner: Option<&str>,
        cron: Option<&str>,
        timezone: &str,
        next: Option<DateTime<Utc>>,
        assets: &[&str],
    ) -> Uuid {
        let id = Uuid::new_v4();
        let version: i32 = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM workflows WHERE name = $1 AND tenant_id = $2",
        )
        .bind(name)
        .bind(tenant)
        .fetch_one(&self.admin)
        .await
        .expect("read workflow version")
        .get(0);
        sqlx::query(
            "INSERT INTO workflows (id, name, owner, tenant_id, version, schedule_cron, \
               schedule_timezone, schedule_enabled, next_scheduled_run) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8)",
        )
        .bind(id)
        .bind(name)
        .bind(owner)
        .bind(tenant)
        .bind(version)
        .bind(cron)
        .bind(timezone)
        .bind(next)
        .execute(&self.admin)
        .await
        .expect("insert workflow");
        for (i, asset) in assets.iter().enumerate() {
            let asset_id = self.asset(tenant, asset, None).await;
            sqlx::query(
                "INSERT INTO workflow_assets (workflow_id, asset_id, position) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(asset_id)
            .bind(i as i32)
            .execute(&self.admin)
            .await
            .expect("insert workflow asset");
        }
        id
    }

    /// Seeds a job and its partitions (`p0000`, `p0001`, … with the first
    /// `completed` completed, then `failed` failed, the rest pending).
    pub async fn job(&self, spec: JobSpec) -> Uuid {
        let now = Utc::now();
        let asset_id = self
            .asset(&spec.tenant, &spec.asset, Some("U0ASSETOWNER"))
            .await;
        let keys: Vec<String> = (0..spec.total).map(|i| format!("p{i:04}")).collect();
        let id = spec.id.unwrap_or_else(Uuid::new_v4);
        let started = spec.started.or(Some(now - Duration::hours(1)));
        sqlx::query(
            "INSERT INTO backfill_jobs (id, tenant_id, asset_id, asset_name, idempotency_key, state, \
               partition_start, partition_end, partition_keys, total_partitions, completed_partitions, \
               failed_partitions, skipped_partitions, created_by, started_at, heartbeat_at, \
               estimated_completion_at, avg_partition_duration_ms, upstream_job_count, \
               completed_upstream_jobs, sla_deadline_at, priority) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)",
        )
        .bind(id)
        .bind(&spec.tenant)
        .bind(asset_id)
        .bind(&spec.asset)
        .bind(format!("{asset_id}:{}:{}", keys.first().cloned().unwrap_or_default(), id.simple()))
        .bind(&spec.state)
        .bind(keys.first())
        .bind(keys.last())
        .bind(serde_json::json!(keys))
        .bind(spec.total)
        .bind(spec.completed)
        .bind(spec.failed)
        .bind(spec.skipped)
        .bind(&spec.created_by)
        .bind(started)
        .bind(spec.heartbeat)
        .bind(spec.eta)
        .bind(spec.avg_ms)
        .bind(spec.upstream)
        .bind(spec.upstream_done)
        .bind(spec.deadline)
        .bind(spec.priority)
        .execute(&self.admin)
        .await
        .expect("insert job");
        let mut t = started.unwrap_or(now);
        for (i, key) in keys.iter().enumerate() {
            let i = i as i32;
            let (state, duration) = if i < spec.completed {
                let d = spec
                    .durations_ms
                    .get(i as usize)
                    .or(spec.durations_ms.last())
                    .copied()
                    .unwrap_or(60_000);
                ("completed", Some(d))
            } else if i < spec.completed + spec.failed {
                ("failed", Some(1_000))
            } else {
                ("pending", None)
            };
            let (started_at, completed_at) = match duration {
                Some(d) => {
                    let s = t;
                    t += Duration::milliseconds(d);
                    (Some(s), Some(t))
                }
                None => (None, None),
            };
            sqlx::query(
                "INSERT INTO backfill_partitions (backfill_job_id, partition_key, state, attempt_count, \
                   duration_ms, started_at, completed_at, tenant_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            )
            .bind(id)
            .bind(key)
            .bind(state)
            .bind(if duration.is_some() { 1 } else { 0 })
            .bind(duration)
            .bind(started_at)
            .bind(completed_at)
            .bind(&spec.tenant)
            .execute(&self.admin)
            .await
            .expect("insert partition");
        }
        id
    }

    /// Sets Servo's own ETA for a job and the heartbeat that says how fresh it
    /// is: how tests steer a job between risk bands.
    pub async fn set_eta(&self, id: Uuid, eta: DateTime<Utc>, heartbeat: DateTime<Utc>) {
        sqlx::query(
            "UPDATE backfill_jobs SET estimated_completion_at = $2, heartbeat_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(eta)
        .bind(heartbeat)
        .execute(&self.admin)
        .await
        .expect("set the job's ETA");
    }

    /// Runs an UPDATE on one job as the superuser (to move a job along in a test).
    pub async fn update_job(&self, id: Uuid, set: &'static str) {
        let sql = format!("UPDATE backfill_jobs SET {set} WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&self.admin)
            .await
            .expect("update job");
    }

    /// A column of one job, read as the superuser.
    pub async fn job_field<T>(&self, id: Uuid, column: &'static str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        let sql = format!("SELECT {column} FROM backfill_jobs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&self.admin)
            .await
            .expect("read job");
        row.get::<T, _>(0)
    }
}
