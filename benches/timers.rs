//! Escalation timers: how late do steps fire when 1,000 escalations are due
//! at the same moment? Runs the real timer worker and the real escalation
//! step (page by DM, thread reply, audit, next step) against the bot's store
//! on SQLite and on PostgreSQL. Pages go to the outbox, and no outbox worker
//! runs; the lookups a step makes (the names on the alert's buttons) answer
//! from a fake Slack on 127.0.0.1, as Slack would, rather than failing and
//! being retried against an address nothing listens on.
//!
//! cargo bench --bench timers [-- sqlite|postgres] [N]

use chrono::Utc;
use serde_json::json;
use servo_sla_bot::app::{App, AppOptions};
use servo_sla_bot::config::{DatabaseUrl, EnvConfig, FileConfig, Settings};
use servo_sla_bot::context::AppState;
use servo_sla_bot::domain::risk::RiskBand;
use servo_sla_bot::domain::secret::Secret;
use servo_sla_bot::flows::alert_view::{buttons, extras, AlertView};
use servo_sla_bot::flows::ids::BUTTONS_TIMER;
use servo_sla_bot::flows::ids::STEP_TIMER;
use servo_sla_bot::runtime::clock::SystemClock;
use servo_sla_bot::store::{Alert, NewAlert, NewTimer};
use servo_sla_bot::workers::timer_worker::TimerWorker;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[[tenants]]
id = "acme"
channel = "C0ACMEALERT"
operators = ["U0ONCALL"]
[[escalation.tiers]]
name = "On-call Engineer"
notify = ["U0ONCALL"]
ack_timeout = "15m"
[[escalation.tiers]]
name = "Platform Team Lead"
notify = ["U0PLATLEAD"]
ack_timeout = "30m"
"#;

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The view of a freshly posted high-risk alert, with the buttons it would
/// show now (the escalation has started at the first tier).
async fn shown_view(state: &AppState, alert: &Alert) -> serde_json::Value {
    let ex = extras(state, &alert.id).await.unwrap();
    let view = AlertView {
        band: "high".into(),
        headline: "High SLA risk".into(),
        emoji: ":large_orange_circle:".into(),
        colour: "#E8912D".into(),
        asset: alert.job_id.clone(),
        job_id: alert.job_id.clone(),
        state: "running".into(),
        completed: 40,
        failed: 0,
        total: 100,
        eta_token: String::new(),
        eta_fallback: "in 2 hours".into(),
        deadline_token: String::new(),
        deadline_fallback: "in 1 hour".into(),
        severity: "1 hour late, 100% of the time left".into(),
        tier: "standard".into(),
        priority: 5,
        in_job_tree: false,
        bottlenecks: vec!["partitions slower than usual".into()],
        outcome: None,
        buttons: buttons(alert, Some(RiskBand::High), true, &ex),
        status_line: String::new(),
        runbook_url: "https://runbooks.example/backfill-sla".into(),
        quiet: None,
        downstream: Vec::new(),
        downstream_note: None,
        lineage_unread: None,
        incident: None,
        ended: None,
        bought: None,
    };
    serde_json::to_value(view).unwrap()
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(backend: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, pg_name) = match backend {
        "sqlite" => (
            format!("sqlite://{}", dir.path().join("bench.db").display()),
            None,
        ),
        _ => {
            let name = format!("sla_bench_timers_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::connect(&admin_url())
                .await
                .expect("PostgreSQL is required for this benchmark");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut admin)
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin_url()).unwrap();
            url.set_path(&format!("/{name}"));
            (url.to_string(), Some(name))
        }
    };
    let slack = servo_sla_bot::sim::fake_slack::FakeSlack::start().await;
    let settings = Settings {
        file: FileConfig::parse(CONFIG).unwrap(),
        env: EnvConfig {
            slack_bot_token: Secret::new(slack.token()),
            slack_signing_secret: Secret::new("bench"),
            servo_database_url: DatabaseUrl::new("postgres://nobody@127.0.0.1:9/servo"),
            database_url: DatabaseUrl::new(db_url),
            slack_api_url: slack.base_url(),
            pagerduty_events_url: "http://127.0.0.1:9/".into(),
            pagerduty_api_url: "http://127.0.0.1:9/".into(),
            pagerduty_api_token: None,
            alertmanager_token: None,
            slack_app_token: None,
            bind_addr: "127.0.0.1:0".parse().unwrap(),
            pagerduty_keys: Default::default(),
        },
    };
    let options = AppOptions {
        clock: Arc::new(SystemClock),
        worker_id: "bench".into(),
        run_poller: false,
        ..AppOptions::default()
    };
    let app = App::build(settings, options).await.unwrap();
    let state = app.state();
    let now = Utc::now();
    // The store keeps milliseconds: compare at that precision.
    let due = chrono::DateTime::from_timestamp_millis(
        (now + chrono::Duration::seconds(3)).timestamp_millis(),
    )
    .unwrap();
    let setup = Instant::now();
    for i in 0..n {
        let (alert, _) = state
            .store
            .open_alert(
                NewAlert {
                    tenant_id: "acme".into(),
                    job_id: format!("job-{i}"),
                    band: RiskBand::High,
                    severity: Some(0.8),
                    eta: Some(now + chrono::Duration::hours(2)),
                    deadline: Some(now + chrono::Duration::hours(1)),
                    shown: None,
                },
                now,
            )
            .await
            .unwrap();
        state
            .store
            .start_escalation(&alert.id, "acme", 0, "bench", now)
            .await
            .unwrap();
        // What a real alert shows, so the step's re-render of its buttons
        // (Escalate now names the next tier) has a message to edit.
        let shown = shown_view(&state, &alert).await;
        assert!(state
            .store
            .set_alert_shown_at(&alert.id, &shown, alert.version)
            .await
            .unwrap());
        state
            .store
            .schedule_timer(
                NewTimer {
                    kind: STEP_TIMER.into(),
                    subject_id: alert.id.clone(),
                    payload: json!({ "epoch": 1, "tier": 0, "round": 0 }),
                    due_at: due,
                    dedup_key: Some(format!("esc:{}:1:0:0", alert.id)),
                },
                now,
            )
            .await
            .unwrap();
    }
    eprintln!(
        "{backend}: {n} escalations set up in {:?}; all due at once",
        setup.elapsed()
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(
        TimerWorker {
            state: state.clone(),
            worker_id: "bench-worker".into(),
        }
        .run(stopped),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let lateness: Vec<i64> = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let timers = state.store.list_timers(None).await.unwrap();
        let fired: Vec<i64> = timers
            .iter()
            .filter(|t| t.due_at == due && t.status == "fired")
            .map(|t| (t.fired_at.unwrap() - t.due_at).num_milliseconds())
            .collect();
        if fired.len() >= n || Instant::now() > deadline {
            break fired;
        }
    };
    // The buttons' re-renders each step scheduled, due once it paged: when
    // the last of them has edited its alert.
    let buttons_done = loop {
        let timers = state.store.list_timers(None).await.unwrap();
        let buttons: Vec<_> = timers.iter().filter(|t| t.kind == BUTTONS_TIMER).collect();
        let fired = buttons.iter().filter(|t| t.status == "fired").count();
        if (fired >= n && buttons.len() >= n) || Instant::now() > deadline {
            break buttons
                .iter()
                .filter_map(|t| t.fired_at)
                .max()
                .map(|at| (at - due).num_milliseconds());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = stop.send(true);
    let _ = worker.await;
    let outbox = state.store.list_outbox(Some("pending")).await.unwrap();
    let edits = outbox.iter().filter(|m| m.method == "chat.update").count();
    let pages = outbox.len();
    let mut sorted = lateness.clone();
    sorted.sort();
    println!(
        "{backend:>8}  {n:>5} due at once  fired {:>5}  lateness p50 {:>5} ms  p99 {:>5} ms  max {:>5} ms  ({} messages queued, {} of them button edits; the last edit queued {} ms after the due time)",
        sorted.len(),
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or(0),
        pages,
        edits,
        buttons_done.map_or("-".to_string(), |ms| ms.to_string()),
    );
    state.store.close().await;
    if let Some(name) = pg_name {
        let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let backends: Vec<String> = args
        .iter()
        .filter(|a| *a == "sqlite" || *a == "postgres")
        .cloned()
        .collect();
    let backends = if backends.is_empty() {
        vec!["sqlite".to_string(), "postgres".to_string()]
    } else {
        backends
    };
    let n = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for b in backends {
        rt.block_on(run(&b, n));
    }
}
