//! What one poll of Servo costs, at 1,000, 10,000, 50,000 and 100,000 active
//! jobs with deadlines across 10 tenants and 100 partitions each (10,000 jobs
//! = 1,000,000 partitions): the first poll's and a steady poll's time, the
//! bot's resident memory, the rows it added to its store, the Servo queries
//! and the Slack calls of a poll (issue 40's cost curve).
//!
//! For each size: a fresh PostgreSQL database `sla_bench_<uuid>` is created
//! from `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! given Servo's schema (`tests/fixtures/servo_schema.sql`, with its forced
//! row-level security) and the bot's ordinary role, exactly as the tests'
//! Servo fixture does, seeded in bulk with `INSERT ... SELECT generate_series`,
//! vacuumed and analysed. The real app is built as the tests build it (SQLite
//! store in a temporary directory) but never run: no worker starts and
//! nothing enqueued is sent. Slack is a local stub that answers the calls a
//! poll makes itself (see [`SlackStub`]). Then it times `Poller::tick()`: the
//! first poll (which opens an alert for every at-risk job and enqueues its
//! post), then steady-state polls with nothing changed, and on their own the
//! Servo queries a poll makes (for the first tenant). Servo queries are
//! counted from the bot's own `servo_sla_bot_servo_query_duration_seconds`
//! histogram; rows added are the store's rows over all its tables; memory is
//! this process's VmRSS and VmHWM (the bench's own share is small: the
//! seeding runs in PostgreSQL). The database is dropped afterwards, also when
//! the benchmark panics.
//!
//! Servo's lineage (issue 37) is there too: 5,000 downstream assets, each job
//! asset feeding chains of them, and 1,000 scheduled workflows, read once per
//! poll (`BENCH_LINEAGE=off`: an older Servo without those tables).
//!
//! `cargo bench --bench poll` runs the default sizes; `cargo bench --bench
//! poll -- 1000 10000` runs the sizes given; `BENCH_SLACK=down` makes Slack
//! unreachable. See docs/benchmarks.md.

use servo_sla_bot::app::{App, AppOptions};
use servo_sla_bot::config::{load_env, FileConfig, Settings};
use servo_sla_bot::context::AppState;
use servo_sla_bot::domain::assessment;
use servo_sla_bot::flows::poll::TenantPoll;
use servo_sla_bot::runtime::clock::ManualClock;
use servo_sla_bot::workers::poller::Poller;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

const DEFAULT_SIZES: [i64; 4] = [1_000, 10_000, 50_000, 100_000];
const PARTITIONS_PER_JOB: i64 = 100;
/// One job in this many is at risk: 5%.
const AT_RISK_EVERY: i64 = 20;
const ASSETS: i64 = 50;
const STEADY_POLLS: usize = 5;
const QUERY_RUNS: usize = 5;
/// Jobs are spread over this many tenants, `acme0` … `acme9`.
const TENANTS: i64 = 10;
/// The tenant whose queries are timed on their own.
const TENANT: &str = "acme0";
/// The role the bot connects as, as in `tests/common/servo_fixture.rs`, so
/// row-level security applies to it.
const BOT_ROLE: &str = "servo_sla_bot_test";

/// The configuration `tests/common/bot.rs` uses, cut to one tenant and one tier.
const CONFIG: &str = r#"
poll_interval = "60s"
runbook_url = "https://docs.servo.io/runbooks/backfill-sla-risk"

# Judged on Servo's ETA, which stays put between polls, so a steady poll edits
# nothing. The poll still reads the partition histories of the jobs with an
# open alert and computes their forecasts and calibrations: the cost is the
# same, only the judgement differs (a forecast moves with the clock while a
# partition is in flight, and would edit alerts whose ETA crosses a minute).
[risk]
forecast = false

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["S0ONCALL"]
ack_timeout = "15m"
"#;

/// The config with its ten tenants, each with its own channel.
fn config() -> String {
    let mut c = CONFIG.to_string();
    for t in 0..TENANTS {
        c.push_str(&format!(
            "\n[[tenants]]\nid = \"acme{t}\"\nchannel = \"C0ACME{t:04}\"\n\
             operators = [\"S0ONCALL\", \"U0PLATLEAD\"]\n\n\
             [[tenants.stakeholders]]\nasset = \"revenue_*\"\napprovers = [\"U0PRODOWNER\"]\n"
        ));
    }
    c
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn redacted(url: &str) -> String {
    servo_sla_bot::store::redact_url(url)
}

/// A fresh database, dropped (`WITH (FORCE)`) when this goes out of scope,
/// unwinding from a panic included.
struct BenchDb {
    name: String,
    /// The database as the superuser: for seeding.
    url: String,
}

impl BenchDb {
    async fn create() -> BenchDb {
        let name = format!("sla_bench_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the benchmark needs PostgreSQL: could not connect to {}: {e}. \
                     Start it or set TEST_DATABASE_URL.",
                    redacted(&admin_url())
                )
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("could not create database {name}: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        BenchDb {
            name,
            url: url.to_string(),
        }
    }

    /// The same database as the bot's ordinary role.
    fn bot_url(&self) -> String {
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_username(BOT_ROLE).unwrap();
        let _ = url.set_password(None);
        url.to_string()
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside the runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url())
                    .await
                    .map_err(|e| e.to_string())?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = admin.close().await;
                done
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => eprintln!("  dropped database {}", self.name),
            Ok(Err(e)) => eprintln!("  could not drop database {}: {e}", self.name),
            Err(_) => eprintln!("  could not drop database {}", self.name),
        }
    }
}

/// Servo's schema and the bot's role, as `ServoFixture::start` makes them.
async fn create_schema(db: &BenchDb, admin: &PgPool) {
    sqlx::raw_sql(include_str!("../tests/fixtures/servo_schema.sql"))
        .execute(admin)
        .await
        .expect("create Servo's schema");
    if lineage_on() {
        sqlx::raw_sql(include_str!("../tests/fixtures/servo_lineage_schema.sql"))
            .execute(admin)
            .await
            .expect("create Servo's lineage tables");
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN CREATE ROLE {BOT_ROLE} LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
    )))
    .execute(admin)
    .await
    .expect("create the bot's role");
    let dbname = &db.name;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT CONNECT ON DATABASE \"{dbname}\" TO {BOT_ROLE}; \
         GRANT USAGE ON SCHEMA public TO {BOT_ROLE}; \
         GRANT SELECT, INSERT, UPDATE ON assets, backfill_jobs, backfill_partitions TO {BOT_ROLE}; {}",
        if lineage_on() {
            format!("GRANT SELECT ON workflows, workflow_assets, asset_dependencies TO {BOT_ROLE};")
        } else {
            String::new()
        }
    )))
    .execute(admin)
    .await
    .expect("grant the bot's role");
}

/// Whether Servo has its lineage tables (`BENCH_LINEAGE=off`: an older Servo).
fn lineage_on() -> bool {
    std::env::var("BENCH_LINEAGE").as_deref() != Ok("off")
}

/// Downstream assets and scheduled workflows.
const LINEAGE_ASSETS: i64 = 5_000;
const WORKFLOWS: i64 = 1_000;

/// Servo's lineage: `LINEAGE_ASSETS` report assets with owners, ten fed by
/// each job asset and each feeding one 500 along (chains: 30 assets
/// within 3 hops of a job's asset), and `WORKFLOWS` scheduled workflows
/// (hourly, on the half hour, in a zone) touching three assets each.
async fn seed_lineage(admin: &PgPool) {
    sqlx::query(
        "INSERT INTO assets (name, owner, tenant_id) \
         SELECT format('report_%s', lpad(r::text, 4, '0')), format('U0OWNER%s', r % 97), $2 \
         FROM generate_series(0, $1 - 1) r",
    )
    .bind(LINEAGE_ASSETS)
    .bind(TENANT)
    .execute(admin)
    .await
    .expect("seed the lineage's assets");
    sqlx::query(
        "WITH r AS (SELECT id, substr(name, 8)::int AS n FROM assets WHERE name LIKE 'report_%'), \
              j AS (SELECT id, substr(name, 15)::int AS n FROM assets WHERE name LIKE 'revenue_asset_%') \
         INSERT INTO asset_dependencies (upstream_asset_id, downstream_asset_id, dependency_type) \
         SELECT j.id, r.id, 'data' FROM j JOIN r ON r.n / 10 = j.n \
         UNION ALL \
         SELECT a.id, b.id, 'data' FROM r a JOIN r b ON b.n = a.n + 500",
    )
    .execute(admin)
    .await
    .expect("seed the dependencies");
    sqlx::query(
        "INSERT INTO workflows (id, name, owner, tenant_id, schedule_cron, schedule_timezone) \
         SELECT gen_random_uuid(), format('workflow_%s', w), 'U0WFOWNER', $2, '30 * * * *', 'Europe/Paris' \
         FROM generate_series(0, $1 - 1) w",
    )
    .bind(WORKFLOWS)
    .bind(TENANT)
    .execute(admin)
    .await
    .expect("seed the workflows");
    sqlx::query(
        "WITH w AS (SELECT id, substr(name, 10)::int AS n FROM workflows), \
              r AS (SELECT id, substr(name, 8)::int AS n FROM assets WHERE name LIKE 'report_%') \
         INSERT INTO workflow_assets (workflow_id, asset_id, position) \
         SELECT w.id, r.id, row_number() OVER (PARTITION BY w.id ORDER BY r.n) - 1 \
         FROM w JOIN r ON r.n IN (w.n * 5, w.n * 5 + 1, w.n * 5 + 2)",
    )
    .execute(admin)
    .await
    .expect("seed the workflows' assets");
}

/// Seeds `jobs` running jobs of tenant `acme`, each with a deadline and
/// `PARTITIONS_PER_JOB` partitions, half of them completed. Every
/// `AT_RISK_EVERY`th job is at risk: its deadline is a day away and Servo's
/// ETA 2 h, 8 h or 18 h after it (Low, Medium and High), with an average
/// partition duration that gives the same ETA and durations rising towards
/// the latest partitions. The others finish in 50 minutes against a deadline
/// 1 to 2 days away. `heartbeat_at` is now, so Servo's ETA is trusted.
async fn seed(admin: &PgPool, jobs: i64) {
    sqlx::query(
        "INSERT INTO assets (name, owner, tenant_id) \
         SELECT format('revenue_asset_%s', lpad(a::text, 2, '0')), 'U0ASSETOWNER', \
           format('acme%s', t) \
         FROM generate_series(0, $1 - 1) a CROSS JOIN generate_series(0, $2 - 1) t",
    )
    .bind(ASSETS)
    .bind(TENANTS)
    .execute(admin)
    .await
    .expect("seed assets");

    sqlx::query(
        "WITH keys AS ( \
           SELECT jsonb_agg(format('p%s', lpad(k::text, 4, '0')) ORDER BY k) AS arr \
           FROM generate_series(0, $2 - 1) k \
         ), numbered_assets AS ( \
           SELECT id, name, tenant_id, \
             row_number() OVER (PARTITION BY tenant_id ORDER BY name) - 1 AS n FROM assets \
         ), g AS ( \
           SELECT g, g % $3 = 0 AS at_risk, format('acme%s', (g / $3) % $4) AS tenant, \
                  CASE (g / $3) % 3 WHEN 0 THEN 2 WHEN 1 THEN 8 ELSE 18 END AS late_h \
           FROM generate_series(1, $1) g \
         ) \
         INSERT INTO backfill_jobs (tenant_id, asset_id, asset_name, idempotency_key, state, \
           partition_start, partition_end, partition_keys, total_partitions, completed_partitions, \
           failed_partitions, skipped_partitions, created_by, created_at, started_at, heartbeat_at, \
           estimated_completion_at, avg_partition_duration_ms, sla_deadline_at, priority) \
         SELECT g.tenant, a.id, a.name, format('%s:p0000:%s', a.id, g.g), 'running', \
           'p0000', format('p%s', lpad(($2 - 1)::text, 4, '0')), keys.arr, $2, $2 / 2, 0, 0, \
           'U0CREATOR', now() - interval '2 hours', now() - interval '1 hour', now(), \
           CASE WHEN g.at_risk THEN now() + interval '1 day' + g.late_h * interval '1 hour' \
                ELSE now() + interval '50 minutes' END, \
           CASE WHEN g.at_risk THEN (86400 + g.late_h * 3600)::bigint * 1000 / ($2 - $2 / 2) \
                ELSE 60000 END, \
           CASE WHEN g.at_risk THEN now() + interval '1 day' \
                ELSE now() + interval '1 day' + (g.g % 1440) * interval '1 minute' END, \
           g.g % 11 \
         FROM g JOIN numbered_assets a ON a.n = g.g % $5 AND a.tenant_id = g.tenant \
         CROSS JOIN keys",
    )
    .bind(jobs)
    .bind(PARTITIONS_PER_JOB)
    .bind(AT_RISK_EVERY)
    .bind(TENANTS)
    .bind(ASSETS)
    .execute(admin)
    .await
    .expect("seed jobs");

    // Completed partitions finished one after another, each its job's average
    // partition duration apart (a minute for the on-time jobs), the last one
    // that long ago: the history the forecaster reads agrees with Servo's ETA.
    sqlx::query(
        "INSERT INTO backfill_partitions (backfill_job_id, partition_key, state, attempt_count, \
           duration_ms, started_at, completed_at, tenant_id) \
         SELECT j.id, format('p%s', lpad(k::text, 4, '0')), \
           CASE WHEN d.ms IS NULL THEN 'pending' ELSE 'completed' END, \
           CASE WHEN d.ms IS NULL THEN 0 ELSE 1 END, \
           d.ms, \
           now() - (j.completed_partitions - k) * j.avg_partition_duration_ms * interval '1 millisecond' - d.ms * interval '1 millisecond', \
           now() - (j.completed_partitions - k) * j.avg_partition_duration_ms * interval '1 millisecond', \
           j.tenant_id \
         FROM backfill_jobs j \
         CROSS JOIN LATERAL generate_series(0, j.total_partitions - 1) k \
         CROSS JOIN LATERAL ( \
           SELECT CASE \
             WHEN k >= j.completed_partitions THEN NULL \
             WHEN j.estimated_completion_at > j.sla_deadline_at \
               THEN (j.avg_partition_duration_ms * (0.5 + k::numeric / j.completed_partitions))::bigint \
             ELSE j.avg_partition_duration_ms END AS ms \
         ) d",
    )
    .execute(admin)
    .await
    .expect("seed partitions");

    // VACUUM sets hint bits and the visibility map, as on a database that has
    // been running for a while, and ANALYZE gives the planner its statistics.
    sqlx::raw_sql("VACUUM (ANALYZE) assets, backfill_jobs, backfill_partitions")
        .execute(admin)
        .await
        .expect("vacuum and analyze");
}

/// Settings as `tests/common/bot.rs::settings()` makes them: the file
/// config parsed from text, and the environment's values, read through
/// `config::load_env` (given a map, never the process environment) so the
/// bench keeps building whatever fields `EnvConfig` gains. PagerDuty points
/// at a local port nothing listens on.
fn settings(store_url: &str, servo_url: &str, slack_api_url: &str) -> Settings {
    let file =
        FileConfig::parse(&config()).unwrap_or_else(|p| panic!("bench config invalid:\n{p}"));
    let vars: HashMap<&str, String> = HashMap::from([
        ("SLACK_BOT_TOKEN", "xoxb-bench-never-sent".to_string()),
        (
            "SLACK_SIGNING_SECRET",
            "bench-signing-secret-0123456789".to_string(),
        ),
        ("SERVO_DATABASE_URL", servo_url.to_string()),
        ("DATABASE_URL", store_url.to_string()),
        ("SLACK_API_URL", slack_api_url.to_string()),
        (
            "PAGERDUTY_EVENTS_URL",
            format!("http://127.0.0.1:{}/unused", unused_port()),
        ),
        ("BIND_ADDR", "127.0.0.1:0".to_string()),
    ]);
    let env = load_env(&|k: &str| vars.get(k).cloned(), Some(&file))
        .unwrap_or_else(|p| panic!("bench environment invalid:\n{p}"));
    Settings { file, env }
}

/// A local port nothing listens on (bound, then released).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}

/// Where the bot's Slack Web API calls go.
///
/// No outbox worker runs, so nothing the poll enqueues is ever sent. But a
/// poll may call Slack itself (the escalation resolves the on-call user
/// group with `usergroups.users.list` before it pages), so by default a
/// stub on 127.0.0.1 answers every call at once with `ok` and two users,
/// and counts the calls. `BENCH_SLACK=down` points Slack at a port nothing
/// listens on instead, to measure a poll while Slack is unreachable.
struct SlackStub {
    base_url: String,
    calls: Arc<AtomicUsize>,
}

impl SlackStub {
    async fn start() -> SlackStub {
        let calls = Arc::new(AtomicUsize::new(0));
        if std::env::var("BENCH_SLACK").as_deref() == Ok("down") {
            return SlackStub {
                base_url: format!("http://127.0.0.1:{}/api/", unused_port()),
                calls,
            };
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Slack stub");
        let addr = listener.local_addr().expect("the stub's address");
        let counter = calls.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve_stub(conn, counter.clone()));
            }
        });
        SlackStub {
            base_url: format!("http://{addr}/api/"),
            calls,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Calls the stub answered, by method, for the report.
static METHODS: std::sync::Mutex<Option<std::collections::BTreeMap<String, usize>>> =
    std::sync::Mutex::new(None);

/// The calls the stub answered since the last time, by method.
fn methods_since_last() -> String {
    let taken = METHODS.lock().unwrap().take().unwrap_or_default();
    taken
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the stub answers a method, as Slack would: a person for
/// `users.info`, the on-call group for `usergroups.list`, and for anything
/// else `ok` with the fields a post or a group's members carry.
fn stub_answer(method: &str) -> &'static str {
    match method {
        "users.info" => {
            r#"{"ok":true,"user":{"id":"U0BENCH","name":"bench","real_name":"Bench Person","tz_offset":0,"profile":{"display_name":"Bench","real_name":"Bench Person"}}}"#
        }
        "usergroups.list" => {
            r#"{"ok":true,"usergroups":[{"id":"S0ONCALL","handle":"oncall","name":"On-call"}]}"#
        }
        _ => r#"{"ok":true,"users":["U0ONCALL1","U0ONCALL2"],"channel":"D0BENCH","ts":"1.000001"}"#,
    }
}

/// Answers HTTP/1.1 requests on one connection (keep-alive), each as
/// [`stub_answer`] says, until the client closes it.
async fn serve_stub(mut conn: TcpStream, calls: Arc<AtomicUsize>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Read one request: the head, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        // "POST /api/users.info HTTP/1.1"
        let method = head
            .split_whitespace()
            .nth(1)
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        let body = stub_answer(&method);
        *METHODS
            .lock()
            .unwrap()
            .get_or_insert_with(Default::default)
            .entry(method)
            .or_default() += 1;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        calls.fetch_add(1, Ordering::Relaxed);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The 1-minute load average (Linux), to tell a quiet machine from a busy one.
fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

async fn timed<T, F: Future<Output = T>>(f: F) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// Slack calls waiting in the outbox, counted by the store (not read and
/// decoded here: at 100,000 jobs, decoding the outbox's 14,000 payloads was
/// most of this process's peak memory, the bench's and not the bot's).
async fn pending(store_url: &str) -> usize {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(store_url)
        .await
        .expect("open the store");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
        .fetch_one(&mut c)
        .await
        .expect("count the outbox");
    let _ = c.close().await;
    n as usize
}

/// One tick, which must have polled every tenant successfully: the sums
/// over the tenants.
async fn tick(poller: &Poller) -> (TenantPoll, Duration) {
    let (outcome, took) = timed(poller.tick()).await;
    assert_eq!(outcome.tenants.len() as i64, TENANTS, "every tenant polled");
    let mut sum = TenantPoll::default();
    for (tenant, poll) in &outcome.tenants {
        let poll = poll
            .as_ref()
            .unwrap_or_else(|e| panic!("the poll of {tenant} failed: {e}"));
        sum.jobs += poll.jobs;
        sum.posted += poll.posted;
        sum.edited += poll.edited;
        sum.resolved += poll.resolved;
        for (band, n) in &poll.at_risk {
            *sum.at_risk.entry(band.clone()).or_default() += n;
        }
    }
    (sum, took)
}

/// Servo queries the bot has made so far, from its own latency histogram.
fn servo_queries(state: &AppState) -> u64 {
    state
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("servo_sla_bot_servo_query_duration_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Rows in the bot's store, over all its tables.
async fn store_rows(store_url: &str) -> i64 {
    store_rows_by_table(store_url).await.values().sum()
}

/// Rows in each of the bot's store tables.
async fn store_rows_by_table(store_url: &str) -> std::collections::BTreeMap<String, i64> {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(store_url)
        .await
        .expect("open the store");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut c)
    .await
    .expect("list the store's tables");
    let mut rows = std::collections::BTreeMap::new();
    for t in tables {
        let sql = format!("SELECT count(*) FROM \"{t}\"");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .expect("count a table");
        rows.insert(t, n);
    }
    let _ = c.close().await;
    rows
}

/// This process's resident memory now and at its peak (VmRSS, VmHWM), MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Measured {
    jobs: i64,
    partitions: i64,
    at_risk: usize,
    seed: Duration,
    first_poll: f64,
    steady: Vec<f64>,
    /// `servo.active_jobs(acme0, true)`, median.
    active_jobs: f64,
    /// `servo.partition_history` for the at-risk jobs (every partition of
    /// each, what the forecaster reads), median.
    partition_history: f64,
    /// `store.list_open_alerts(acme0)`, median.
    open_alerts: f64,
    /// `servo.lineage(acme)`, the one lineage query of a poll, median.
    lineage: f64,
    /// The 1-minute load average when the polls started.
    load: f64,
    /// Slack calls the first poll left in the outbox (posts, thread replies, pages).
    enqueued: usize,
    /// Slack Web API calls made during the first poll and during all steady polls.
    slack_first: usize,
    slack_steady: usize,
    /// Servo queries of the first poll, and of one steady poll (mean).
    servo_first: u64,
    servo_steady: f64,
    /// Rows the first poll added to the store, and all steady polls.
    rows_first: i64,
    rows_steady: i64,
    /// VmRSS after the steady polls, and the peak (VmHWM), MB.
    rss: f64,
    peak: f64,
}

async fn run_size(jobs: i64) -> Measured {
    let partitions = jobs * PARTITIONS_PER_JOB;
    eprintln!("== {jobs} jobs, {partitions} partitions");
    let db = BenchDb::create().await;
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .expect("connect to the fresh database");
    create_schema(&db, &admin).await;
    let ((), seed_took) = timed(async {
        seed(&admin, jobs).await;
        if lineage_on() {
            seed_lineage(&admin).await;
        }
    })
    .await;
    eprintln!("  seeded in {:.1} s", seed_took.as_secs_f64());
    admin.close().await;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let store_url = format!("sqlite://{}", dir.path().join("bot.db").display());
    let options = AppOptions {
        // The bot's clock stands still at the seed's time: an alert says how
        // long is left to the minute, so a slow poll that crosses a minute
        // would edit every alert, and a steady poll is one where nothing,
        // the clock included, moved.
        clock: Arc::new(ManualClock::new(chrono::Utc::now())),
        worker_id: format!("bench-{}", Uuid::new_v4().simple()),
        run_poller: false,
        ..AppOptions::default()
    };
    // Built, never run: no outbox worker, no HTTP server, nothing sent.
    let slack = SlackStub::start().await;
    let app = App::build(
        settings(&store_url, &db.bot_url(), &slack.base_url),
        options,
    )
    .await
    .expect("the app builds");
    let state: AppState = app.state();
    // Open a connection to each database first, so the first poll measures
    // the work and not the connection set-up.
    state.servo.ping().await.expect("Servo answers");
    state.store.ping().await.expect("the store answers");
    let poller = Poller {
        state: state.clone(),
    };

    let load = load1();
    let calls_before = slack.calls();
    let (queries_before, tables_before) =
        (servo_queries(&state), store_rows_by_table(&store_url).await);
    let (first, first_took) = tick(&poller).await;
    let slack_first = slack.calls() - calls_before;
    let servo_first = servo_queries(&state) - queries_before;
    let tables_after = store_rows_by_table(&store_url).await;
    let mut added: Vec<(i64, &String)> = tables_after
        .iter()
        .map(|(t, n)| (n - tables_before.get(t).copied().unwrap_or(0), t))
        .filter(|(n, _)| *n != 0)
        .collect();
    added.sort_unstable_by(|a, b| b.cmp(a));
    let rows_first: i64 = added.iter().map(|(n, _)| n).sum();
    eprintln!(
        "  store rows added by the first poll, by table: {}",
        added
            .iter()
            .map(|(n, t)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let at_risk: usize = first.at_risk.values().sum();
    let expected = (jobs / AT_RISK_EVERY) as usize;
    assert_eq!(first.jobs as i64, jobs, "the poll saw every job");
    assert_eq!(at_risk, expected, "5% of the jobs are at risk");
    assert_eq!(first.posted, expected, "one alert per at-risk job");
    let queued = pending(&store_url).await;
    // At least the alert posts; the escalation may enqueue pages too.
    assert!(queued >= expected, "every new alert enqueued its post");
    eprintln!(
        "  first poll {:.0} ms: {} at risk {:?}, {} Slack calls enqueued, {} made ({})",
        ms(first_took),
        at_risk,
        first.at_risk,
        queued,
        slack_first,
        methods_since_last()
    );

    // The second poll may correct what the first rendered before paging
    // had decided: with Slack down, the first poll could not page (a
    // group's members are unknown), so Escalate now names the wrong tier;
    // with a storm's roll-up (50 jobs at risk in a tenant from 10,000 jobs
    // on), the members' buttons follow the roll-up's one escalation. Once:
    // the polls after it change nothing.
    let (poll, took) = tick(&poller).await;
    assert_eq!((poll.posted, poll.resolved), (0, 0));
    let corrected = poll.edited;
    eprintln!(
        "  second poll {:.0} ms: {corrected} alerts corrected",
        ms(took)
    );
    let before_steady = pending(&store_url).await;
    let calls_before = slack.calls();
    let queries_before = servo_queries(&state);
    let rows_before = store_rows(&store_url).await;
    let mut steady = Vec::new();
    for _ in 0..STEADY_POLLS {
        let (poll, took) = tick(&poller).await;
        assert_eq!(
            (poll.posted, poll.edited, poll.resolved),
            (0, 0, 0),
            "nothing changed, so a steady poll changes nothing"
        );
        steady.push(ms(took));
    }
    let slack_steady = slack.calls() - calls_before;
    let servo_steady = (servo_queries(&state) - queries_before) as f64 / STEADY_POLLS as f64;
    let rows_steady = store_rows(&store_url).await - rows_before;
    let (rss, peak) = rss_mb();
    let still_queued = pending(&store_url).await;
    assert_eq!(still_queued, before_steady, "steady polls enqueue nothing");
    if corrected > 0 {
        eprintln!("  ({corrected} corrections before the steady polls)");
    }
    eprintln!(
        "  steady polls (ms): {steady:.0?}, {slack_steady} Slack calls made ({})",
        methods_since_last()
    );

    // The Servo queries of a poll on their own.
    let thresholds = poller.state.config.risk.thresholds();
    let mut active = Vec::new();
    let mut durations = Vec::new();
    let mut alerts = Vec::new();
    let mut lineage = Vec::new();
    for _ in 0..QUERY_RUNS {
        let (read, took) = timed(state.servo.lineage(TENANT, state.clock.now())).await;
        let read = read.expect("the lineage");
        if lineage_on() {
            assert_eq!(read.workflows.len() as i64, WORKFLOWS);
        }
        lineage.push(ms(took));
        let (listed, took) = timed(state.servo.active_jobs(TENANT, true)).await;
        let listed = listed.expect("active jobs");
        active.push(ms(took));
        let now = state.clock.now();
        let ids: Vec<Uuid> = listed
            .iter()
            .filter(|j| {
                assessment::assess(&j.snapshot(), now, &thresholds, None)
                    .band
                    .is_at_risk()
            })
            .map(|j| j.id)
            .collect();
        // One tenant's share of the at-risk jobs (a tenth, give or take one).
        assert!(!ids.is_empty() && ids.len() <= expected);
        let (histories, took) = timed(state.servo.partition_history(TENANT, &ids)).await;
        let histories = histories.expect("partition histories");
        assert_eq!(histories.len(), ids.len());
        durations.push(ms(took));
        let (open, took) = timed(state.store.list_open_alerts(Some(TENANT))).await;
        assert_eq!(open.expect("open alerts").len(), ids.len());
        alerts.push(ms(took));
    }

    state.servo.close().await;
    state.store.close().await;
    drop(app);
    drop(db);
    Measured {
        jobs,
        partitions,
        at_risk,
        seed: seed_took,
        first_poll: ms(first_took),
        steady,
        active_jobs: median(&active),
        partition_history: median(&durations),
        open_alerts: median(&alerts),
        lineage: median(&lineage),
        load,
        enqueued: queued,
        slack_first,
        slack_steady,
        servo_first,
        servo_steady,
        rows_first,
        rows_steady,
        rss,
        peak,
    }
}

fn sizes() -> Vec<i64> {
    // `cargo bench` adds `--bench`; anything else must be a job count.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.is_empty() {
        return DEFAULT_SIZES.to_vec();
    }
    args.iter()
        .map(|a| match a.replace('_', "").parse::<i64>() {
            Ok(n) if n >= AT_RISK_EVERY => n,
            _ => {
                eprintln!(
                    "usage: cargo bench --bench poll -- [JOBS ...]  \
                     (each a job count of at least {AT_RISK_EVERY}; '{a}' is not)"
                );
                std::process::exit(2);
            }
        })
        .collect()
}

fn main() {
    let sizes = sizes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let slack = if std::env::var("BENCH_SLACK").as_deref() == Ok("down") {
        "unreachable (BENCH_SLACK=down)"
    } else {
        "a local stub"
    };
    eprintln!(
        "poll benchmark against {}; {} partitions per job, 1 job in {} at risk; Slack is {}",
        redacted(&admin_url()),
        PARTITIONS_PER_JOB,
        AT_RISK_EVERY,
        slack
    );
    let results: Vec<Measured> = rt.block_on(async {
        let mut results = Vec::new();
        for jobs in sizes {
            results.push(run_size(jobs).await);
        }
        results
    });

    println!();
    println!(
        "| jobs | partitions | at risk | first poll ms | steady p50 ms | steady max ms \
         | active_jobs ms | partition_history ms | list_open_alerts ms | lineage ms | steady ms per 1000 jobs |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &results {
        let p50 = median(&m.steady);
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            m.jobs,
            m.partitions,
            m.at_risk,
            m.first_poll,
            p50,
            max(&m.steady),
            m.active_jobs,
            m.partition_history,
            m.open_alerts,
            m.lineage,
            p50 / (m.jobs as f64 / 1000.0),
        );
    }
    println!();
    println!(
        "| jobs | seed s | first poll: calls enqueued | first poll: Slack calls made \
         | {STEADY_POLLS} steady polls: Slack calls made | load (1 min) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "| {} | {:.1} | {} | {} | {} | {:.1} |",
            m.jobs,
            m.seed.as_secs_f64(),
            m.enqueued,
            m.slack_first,
            m.slack_steady,
            m.load,
        );
    }
    println!();
    println!(
        "| jobs | tenants | Servo queries: first poll | Servo queries: steady poll \
         | store rows added: first poll | store rows added: {STEADY_POLLS} steady polls \
         | RSS MB | peak RSS MB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "| {} | {TENANTS} | {} | {:.1} | {} | {} | {:.0} | {:.0} |",
            m.jobs, m.servo_first, m.servo_steady, m.rows_first, m.rows_steady, m.rss, m.peak,
        );
    }
}
