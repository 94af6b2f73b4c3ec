//! The Slack ack path against its floor, risk assessments per second, and the
//! bot's resident memory.
//!
//! For each store (SQLite, then PostgreSQL) it starts the real `servo-sla-bot
//! serve` (the release binary) as its own process, against Servo's tables
//! with forced row-level security in a fresh PostgreSQL database (one running
//! job at risk) and the fake Slack. It waits for the first poll's alert, then
//! loads it for a fixed time with a fixed number of keep-alive connections,
//! each sending signed requests back to back: `/backfill help`, `/backfill
//! status <id>`, and a click on the alert's Acknowledge button (the first
//! acknowledges, the rest are told it already is), and `/backfill help`
//! refused twice: unsigned (no signature headers) and stale (signed ten
//! minutes ago, past Slack's five). It records throughput and latency at p50
//! and p99. Status runs twice: as configured by default (a burst for one job
//! shares a read for `commands.status_max_age`), then on a bot with
//! `status_max_age = "0s"`, where every answer reads Servo.
//!
//! The floor is a minimal axum server, also its own process (this binary run
//! with `ACK_BENCH_FLOOR=<port>`): it checks the Slack signature with the
//! bot's own verifier, parses the form and answers a constant. The bot's
//! figures are reported as a fraction of the floor's help (refusals too: the
//! floor refusing them is shown for reference).
//!
//! `ACK_BENCH_CALLGRIND=<dir>` measures instructions per answer instead,
//! which a busy machine does not move: the floor and the bot on SQLite run
//! under `valgrind --tool=callgrind`, counted only while loaded
//! (`ACK_BENCH_REQUESTS` answers per case, 2,000 by default).
//! `ACK_BENCH_BOT=<path>` runs another build of the bot (a before/after).
//!
//! Memory: the bot's VmRSS once idle (after its first poll) and its VmHWM
//! (peak) after the load, from /proc.
//!
//! `cargo bench --bench ack` (defaults: 32 connections, 10 s per case after a
//! 2 s warm-up); `cargo bench --bench ack -- --connections 16 --seconds 5`;
//! `ACK_BENCH_CALLGRIND=/tmp/cg cargo bench --bench ack`.
//! See docs/benchmarks.md.

#[allow(unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;

use bytes::Bytes;
use chrono::{Duration as ChronoDuration, Utc};
use common::bot::{form, slack_signature, SIGNING_SECRET};
use common::db::TestDb;
use common::fake_slack::FakeSlack;
use common::servo_fixture::{JobSpec, ServoFixture};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use servo_sla_bot::domain::assessment::{self, JobSnapshot, RiskThresholds};
use servo_sla_bot::domain::risk::JobState;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
poll_interval = "60s"

# The job steers Servo's own ETA; the forecaster is tested elsewhere.
[risk]
forecast = false

[[tenants]]
id = "acme"
channel = "C0ACMEALERT"
operators = ["U0PLATLEAD"]

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["U0PLATLEAD"]
ack_timeout = "15m"
"#;

struct Opts {
    connections: usize,
    seconds: u64,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Opts {
        connections: get("--connections", 32) as usize,
        seconds: get("--seconds", 10),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The floor: verify, parse, answer. Runs when this binary is started with
/// `ACK_BENCH_FLOOR=<port>`.
fn run_floor(port: u16) {
    use axum::body::Bytes as AxBytes;
    use axum::http::{HeaderMap, StatusCode};
    use servo_sla_bot::domain::secret::Secret;
    use servo_sla_bot::edge::verify::SlackVerifier;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let verifier = Arc::new(SlackVerifier::new(Secret::new(SIGNING_SECRET)));
        let handler = move |headers: HeaderMap, body: AxBytes| {
            let verifier = verifier.clone();
            async move {
                if verifier
                    .verify(&headers, &body, Utc::now().timestamp())
                    .is_err()
                {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
                    Ok(f) => f,
                    Err(_) => return (StatusCode::BAD_REQUEST, String::new()),
                };
                let text = form.iter().find(|(k, _)| k == "text").map(|(_, v)| v.len());
                (
                    StatusCode::OK,
                    json!({"response_type": "ephemeral", "text": format!("ok {text:?}")})
                        .to_string(),
                )
            }
        };
        let app = axum::Router::new().route("/slack/commands", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn proc_status(&self, key: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    }
}

async fn wait_healthy(port: u16) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    // Long enough for a bot under callgrind.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let req = hyper::Request::get(format!("http://127.0.0.1:{port}/healthz"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Ok(res) = client.request(req).await {
            if res.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server on {port} never came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a case's requests are signed.
#[derive(Clone, Copy, PartialEq)]
enum Signing {
    /// As Slack signs them, now.
    Signed,
    /// No `X-Slack-Signature` and no timestamp: what a scanner sends.
    Unsigned,
    /// Correctly signed ten minutes ago: a replay, past Slack's five minutes.
    Stale,
}

#[derive(Clone)]
struct Case {
    path: &'static str,
    body: String,
    /// Builds the n-th request's body when each needs its own response_url.
    unique_response_url: Option<Arc<dyn Fn(u64) -> String + Send + Sync>>,
    signing: Signing,
    /// The status every answer must have (200, or 401 for the refused cases).
    expect: u16,
}

impl Case {
    fn signed(path: &'static str, body: String) -> Self {
        Case {
            path,
            body,
            unique_response_url: None,
            signing: Signing::Signed,
            expect: 200,
        }
    }

    /// The same request, refused: unsigned or stale.
    fn refused(&self, signing: Signing) -> Self {
        Case {
            signing,
            expect: 401,
            ..self.clone()
        }
    }
}

struct Result {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    /// Answers with the expected status.
    answered: u64,
}

/// How long a load runs: for a time, or for a number of requests per connection.
#[derive(Clone, Copy)]
enum Until {
    Time(Duration),
    Requests(u64),
}

/// Sends `case` over `connections` keep-alive connections for `seconds`
/// (after a 2 s warm-up) and measures.
async fn load(port: u16, case: &Case, connections: usize, seconds: u64) -> Result {
    load_for(
        port,
        case,
        connections,
        Until::Time(Duration::from_secs(2)),
        Until::Time(Duration::from_secs(seconds)),
        || {},
    )
    .await
}

/// The load itself: a warm-up, `between()`, then the measured part.
async fn load_for(
    port: u16,
    case: &Case,
    connections: usize,
    warm_up: Until,
    measured: Until,
    between: impl FnOnce(),
) -> Result {
    let ts = match case.signing {
        Signing::Stale => Utc::now().timestamp() - 600,
        _ => Utc::now().timestamp(),
    }
    .to_string();
    let sig = slack_signature(SIGNING_SECRET, &ts, case.body.as_bytes());
    let body = Bytes::from(case.body.clone());
    let url = format!("http://127.0.0.1:{port}{}", case.path);
    let (signing, expect) = (case.signing, case.expect);
    let run = |until: Until| {
        let case = &case;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (ts, sig, body, url) = (ts.clone(), sig.clone(), body.clone(), url.clone());
            let unique = case.unique_response_url.clone();
            tasks.push(tokio::spawn(async move {
                // One client per task, one connection each: keep-alive, no pool sharing.
                let client = Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(1)
                    .build_http::<Full<Bytes>>();
                let mut lat = Vec::with_capacity(100_000);
                let mut errors = 0;
                let began = Instant::now();
                let mut n = 0u64;
                let mut sent = 0u64;
                while match until {
                    Until::Time(d) => began.elapsed() < d,
                    Until::Requests(r) => sent < r,
                } {
                    sent += 1;
                    // Slack gives every click its own response_url (usable five
                    // times): such bodies are built and signed per request.
                    let (body, sig) = match &unique {
                        Some(make) => {
                            n += 1;
                            let b = make(n);
                            let s = slack_signature(SIGNING_SECRET, &ts, b.as_bytes());
                            (Bytes::from(b), s)
                        }
                        None => (body.clone(), sig.clone()),
                    };
                    let mut req = hyper::Request::post(&url)
                        .header("content-type", "application/x-www-form-urlencoded");
                    if signing != Signing::Unsigned {
                        req = req
                            .header("x-slack-request-timestamp", &ts)
                            .header("x-slack-signature", &sig);
                    }
                    let req = req.body(Full::new(body)).unwrap();
                    let start = Instant::now();
                    match client.request(req).await {
                        Ok(res) => {
                            let ok = res.status().as_u16() == expect;
                            let _ = res.into_body().collect().await;
                            if ok {
                                lat.push(start.elapsed().as_micros() as u32);
                            } else {
                                errors += 1;
                            }
                        }
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        tasks
    };
    for t in run(warm_up) {
        let _ = t.await;
    }
    between();
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in run(measured) {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|us| *us as f64 / 1000.0)
            .unwrap_or(f64::NAN)
    };
    Result {
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
        answered: all.len() as u64,
    }
}

/// The program to run, under callgrind when `callgrind` names a directory
/// for its output (collecting nothing until told to: see [`instructions`]).
fn command(program: &std::path::Path, callgrind: Option<(&std::path::Path, &str)>) -> Command {
    match callgrind {
        None => Command::new(program),
        Some((dir, name)) => {
            let mut c = Command::new("valgrind");
            c.arg("--tool=callgrind")
                .arg("--instr-atstart=no")
                .arg(format!("--callgrind-out-file={}/{name}.%p", dir.display()))
                .arg(program);
            c
        }
    }
}

/// The bot's binary: this build's, or `ACK_BENCH_BOT` (e.g. an older build
/// kept for a before/after).
fn bot_binary() -> std::path::PathBuf {
    std::env::var_os("ACK_BENCH_BOT")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_servo-sla-bot").into())
}

fn start_bot(
    store_url: &str,
    servo_url: &str,
    slack: &FakeSlack,
    config: &std::path::Path,
) -> Server {
    start_bot_with(store_url, servo_url, slack, config, None)
}

fn start_bot_with(
    store_url: &str,
    servo_url: &str,
    slack: &FakeSlack,
    config: &std::path::Path,
    callgrind: Option<&std::path::Path>,
) -> Server {
    let port = free_port();
    let child = command(&bot_binary(), callgrind.map(|d| (d, "bot")))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("SLACK_BOT_TOKEN", slack.token())
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_API_URL", slack.base_url())
        .env("SERVO_DATABASE_URL", servo_url)
        .env("DATABASE_URL", store_url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("PAGERDUTY_EVENTS_URL", "http://127.0.0.1:9/unused")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the bot");
    Server { child, port }
}

fn start_floor(callgrind: Option<&std::path::Path>) -> Server {
    let port = free_port();
    Server {
        child: command(
            &std::env::current_exe().unwrap(),
            callgrind.map(|d| (d, "floor")),
        )
        .env("ACK_BENCH_FLOOR", port.to_string())
        .spawn()
        .expect("start the floor"),
        port,
    }
}

/// The floor as its own process, loaded like the bot.
async fn run_floor_load(case: &Case, o: &Opts) -> Result {
    let floor = start_floor(None);
    wait_healthy_floor(floor.port).await;
    load(floor.port, case, o.connections, o.seconds).await
}

fn callgrind_control(pid: u32, arg: &str) {
    let ok = Command::new("callgrind_control")
        .arg(arg)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "callgrind_control {arg} {pid} failed");
}

/// The instructions `server` (run under callgrind) executes for `requests`
/// answers of `case` over 4 connections, after 100 not counted, per request;
/// with `case` `None`, per second of idling instead. Reads the total of the
/// dump callgrind writes at the end.
async fn instructions(
    server: &Server,
    dir: &std::path::Path,
    name: &str,
    case: Option<&Case>,
    requests: u64,
) -> (f64, usize) {
    let pid = server.child.id();
    let on = || {
        callgrind_control(pid, "--instr=on");
        callgrind_control(pid, "--zero");
    };
    let (per, errors) = match case {
        Some(case) => {
            let r = load_for(
                server.port,
                case,
                4,
                Until::Requests(25),
                Until::Requests(requests / 4),
                on,
            )
            .await;
            (r.answered.max(1) as f64, r.errors)
        }
        None => {
            on();
            tokio::time::sleep(Duration::from_secs(2)).await;
            (2.0, 0)
        }
    };
    callgrind_control(pid, "--instr=off");
    callgrind_control(pid, &format!("--dump={name}"));
    // The newest dump of this process: `<prefix>.<pid>.<n>`.
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let f = e.file_name().into_string().ok()?;
            let n: u64 = f.rsplit_once('.')?.1.parse().ok()?;
            f.contains(&format!(".{pid}.")).then_some((n, e.path()))
        })
        .max()
        .expect("callgrind wrote a dump")
        .1;
    let text = std::fs::read_to_string(&newest).unwrap();
    // `totals:`, not `summary:` (which counting switched on late can wrap).
    let total: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("a total in the dump");
    (total / per, errors)
}

/// `ACK_BENCH_CALLGRIND=<dir>`: instructions per answer, which a busy machine
/// does not move (wall-clock shares do). The floor and the bot on SQLite run
/// under callgrind, counting only while loaded; `status_max_age` is 60 s so
/// every status answer is a kept card; no click (its cost is the store's).
async fn callgrind_main(dir: std::path::PathBuf, requests: u64) {
    std::fs::create_dir_all(&dir).unwrap();
    let help = help_case();
    let floor = start_floor(Some(&dir));
    wait_healthy_floor(floor.port).await;
    let mut rows = Vec::new();
    for (name, case) in [
        ("floor: help", help.clone()),
        ("floor: unsigned, refused", help.refused(Signing::Unsigned)),
        ("floor: stale, refused", help.refused(Signing::Stale)),
    ] {
        rows.push((
            name,
            instructions(&floor, &dir, "floor", Some(&case), requests).await,
        ));
    }
    drop(floor);
    let (fx, job) = servo_with_a_job_at_risk().await;
    let store = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("{CONFIG}\n[commands]\nstatus_max_age = \"60s\"\n"),
    )
    .unwrap();
    let bot = start_bot_with(&store.url, &fx.bot_url(), &slack, &config, Some(&dir));
    wait_healthy(bot.port).await;
    // Past the first poll, so it is not counted.
    slack
        .wait_for_calls("chat.postMessage", 1, Duration::from_secs(120))
        .await;
    let status = status_case(&job.to_string());
    rows.push((
        "bot: idle, per second",
        instructions(&bot, &dir, "bot", None, 0).await,
    ));
    for (name, case) in [
        ("bot: help", help.clone()),
        ("bot: status <id> (a kept card)", status.clone()),
        ("bot: unsigned, refused", help.refused(Signing::Unsigned)),
        ("bot: stale, refused", help.refused(Signing::Stale)),
        (
            "bot: status <id>, unsigned, refused",
            status.refused(Signing::Unsigned),
        ),
    ] {
        rows.push((
            name,
            instructions(&bot, &dir, "bot", Some(&case), requests).await,
        ));
    }
    drop(bot);
    let floor_help = rows[0].1 .0;
    println!(
        "instructions per answer under callgrind ({requests} answers per case, 4 connections)"
    );
    println!();
    println!("| case | instructions per answer | floor's help ÷ this | errors |");
    println!("|---|---:|---:|---:|");
    for (name, (ir, errors)) in rows {
        let share = if name.contains("idle") {
            String::new()
        } else {
            format!("{:.0}%", 100.0 * floor_help / ir)
        };
        println!("| {name} | {ir:.0} | {share} | {errors} |");
    }
}

/// A Servo with one job at risk (its ETA 40 min past its deadline an hour
/// away): the alert whose status and Acknowledge the cases ask for.
async fn servo_with_a_job_at_risk() -> (ServoFixture, uuid::Uuid) {
    let fx = ServoFixture::start().await;
    let now = Utc::now();
    let job = fx
        .job(JobSpec {
            deadline: Some(now + ChronoDuration::minutes(60)),
            eta: Some(now + ChronoDuration::minutes(100)),
            heartbeat: Some(now),
            ..JobSpec::default()
        })
        .await;
    (fx, job)
}

fn help_case() -> Case {
    Case::signed(
        "/slack/commands",
        form(&[
            ("command", "/backfill"),
            ("text", "help"),
            ("user_id", "U0PLATLEAD"),
            ("channel_id", "C0ACMEALERT"),
            ("response_url", "http://127.0.0.1:9/unused"),
        ]),
    )
}

fn status_case(job: &str) -> Case {
    Case::signed(
        "/slack/commands",
        form(&[
            ("command", "/backfill"),
            ("text", &format!("status {job}")),
            ("user_id", "U0PLATLEAD"),
            ("channel_id", "C0ACMEALERT"),
            ("response_url", "http://127.0.0.1:9/unused"),
        ]),
    )
}

fn row(name: &str, r: &Result, floor: Option<&Result>) {
    let share = floor
        .map(|f| format!("{:.0}%", 100.0 * r.rps / f.rps))
        .unwrap_or_else(|| "100%".into());
    println!(
        "| {name} | {:.0} | {:.2} | {:.2} | {share} | {} |",
        r.rps, r.p50_ms, r.p99_ms, r.errors
    );
}

fn risk_per_second() -> f64 {
    let now = Utc::now();
    let thresholds = RiskThresholds::new(0.2, 0.5, 0.05, std::time::Duration::from_secs(600));
    let jobs: Vec<JobSnapshot> = (0..1000)
        .map(|i| JobSnapshot {
            id: format!("job-{i}"),
            asset_name: "revenue_daily".into(),
            state: JobState::Running,
            priority: (i % 11) as i32,
            total_partitions: 100,
            completed_partitions: 50,
            failed_partitions: i % 3,
            skipped_partitions: 0,
            estimated_completion_at: Some(now + ChronoDuration::minutes(60 + i % 90)),
            avg_partition_duration_ms: Some(60_000),
            heartbeat_at: Some(now),
            started_at: Some(now - ChronoDuration::hours(1)),
            paused_at: None,
            sla_deadline_at: Some(now + ChronoDuration::minutes(90)),
            upstream_job_count: 0,
            completed_upstream_jobs: 0,
            recent_durations_ms: (0..24).map(|d| 55_000 + d * 500).collect(),
            forecast: None,
            judge_on_p90: false,
        })
        .collect();
    let start = Instant::now();
    let mut n = 0u64;
    let mut bands = 0usize;
    while start.elapsed() < Duration::from_secs(3) {
        for j in &jobs {
            bands += assessment::assess(j, now, &thresholds, None).band as usize;
            n += 1;
        }
    }
    std::hint::black_box(bands);
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if let Ok(port) = std::env::var("ACK_BENCH_FLOOR") {
        run_floor(port.parse().expect("a port"));
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches`
    }
    let o = opts();
    let rt = tokio::runtime::Runtime::new().unwrap();
    if let Some(dir) = std::env::var_os("ACK_BENCH_CALLGRIND") {
        let requests = std::env::var("ACK_BENCH_REQUESTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000);
        rt.block_on(callgrind_main(dir.into(), requests));
        return;
    }
    rt.block_on(async move {
        println!(
            "ack path: {} connections, {} s per case after a 2 s warm-up",
            o.connections, o.seconds
        );
        let help = help_case();
        let floor_before = run_floor_load(&help, &o).await;
        // The floor refuses as the bot does (the same verifier): for reference.
        let floor_unsigned = run_floor_load(&help.refused(Signing::Unsigned), &o).await;
        let floor_stale = run_floor_load(&help.refused(Signing::Stale), &o).await;

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG).unwrap();
        // The same, with every status read from Servo: the cost of a card
        // nobody asked for in the last `status_max_age`.
        let config_fresh = dir.path().join("config-fresh.toml");
        std::fs::write(
            &config_fresh,
            format!("{CONFIG}\n[commands]\nstatus_max_age = \"0s\"\n"),
        )
        .unwrap();
        let mut rows: Vec<(String, Result)> = Vec::new();
        let mut memory = Vec::new();
        for backend in ["sqlite", "postgres"] {
            let (fx, job) = servo_with_a_job_at_risk().await;
            let store = match backend {
                "sqlite" => TestDb::sqlite().await,
                _ => TestDb::postgres().await,
            };
            let slack = FakeSlack::start().await;
            let bot = start_bot(&store.url, &fx.bot_url(), &slack, &config);
            wait_healthy(bot.port).await;
            // The first poll's alert: its Acknowledge button is what we click.
            let alert = slack
                .wait_for_calls("chat.postMessage", 1, Duration::from_secs(30))
                .await;
            let alert_id = common::slack_ui::button_value(&alert[0].body, "alert_ack")
                .expect("the alert has an Acknowledge button");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let idle = bot.proc_status("VmRSS:").unwrap_or(f64::NAN);
            let status = status_case(&job.to_string());
            let worker = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let (fake, alert_id) = (slack.clone(), alert_id.clone());
            let make = move |n: u64| {
                let w = worker.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let payload = json!({
                    "type": "block_actions",
                    "user": {"id": "U0PLATLEAD"},
                    "channel": {"id": "C0ACMEALERT"},
                    "response_url": fake.response_url(&format!("bench-{w}-{n}")),
                    "actions": [{"action_id": "alert_ack", "value": alert_id, "type": "button"}]
                })
                .to_string();
                form(&[("payload", &payload)])
            };
            let click = Case {
                unique_response_url: Some(Arc::new(make.clone())),
                ..Case::signed("/slack/interactions", make(0))
            };
            for (name, case) in [
                ("help", help.clone()),
                ("status <id>", status.clone()),
                ("unsigned, refused", help.refused(Signing::Unsigned)),
                (
                    "stale (signed 10 min ago), refused",
                    help.refused(Signing::Stale),
                ),
                ("button click", click),
            ] {
                let r = load(bot.port, &case, o.connections, o.seconds).await;
                rows.push((format!("bot on {backend}: {name}"), r));
            }
            let peak = bot.proc_status("VmHWM:").unwrap_or(f64::NAN);
            memory.push((backend, idle, peak));
            // One `serve` per SQLite file: stop this one before the next.
            drop(bot);
            let fresh = start_bot(&store.url, &fx.bot_url(), &slack, &config_fresh);
            wait_healthy(fresh.port).await;
            let r = load(fresh.port, &status, o.connections, o.seconds).await;
            rows.push((
                format!("bot on {backend}: status <id>, read afresh (status_max_age 0s)"),
                r,
            ));
            drop(fresh);
        }
        // The floor again at the end: it moves with whatever else the machine
        // does, so shares are taken of the better of the two runs.
        let floor_after = run_floor_load(&help, &o).await;
        let floor = if floor_after.rps > floor_before.rps {
            &floor_after
        } else {
            &floor_before
        };
        println!();
        println!("| case | req/s | p50 ms | p99 ms | share of the floor | errors |");
        println!("|---|---:|---:|---:|---:|---:|");
        row(
            "floor (first run): verify + parse + answer",
            &floor_before,
            Some(floor),
        );
        row("floor (last run)", &floor_after, Some(floor));
        row("floor: unsigned, refused", &floor_unsigned, Some(floor));
        row("floor: stale, refused", &floor_stale, Some(floor));
        for (name, r) in &rows {
            row(name, r, Some(floor));
        }
        println!();
        println!("| store | idle RSS (MB) | peak RSS under load (MB) |");
        println!("|---|---:|---:|");
        for (backend, idle, peak) in memory {
            println!("| {backend} | {idle:.1} | {peak:.1} |");
        }
        println!();
        println!(
            "risk assessments: {:.0} per second (one core)",
            risk_per_second()
        );
    });
}

async fn wait_healthy_floor(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the floor never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
