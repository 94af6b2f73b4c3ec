//! Fault runs: Slack answering 429, 500 and timeouts for a while (two real
//! replicas on PostgreSQL), and Servo's database unreachable for a while (a
//! cut network between the bot and PostgreSQL). Nothing is lost, nothing is
//! doubled, nothing is reported recovered that is not, and everything resumes
//! by itself.

mod common;

use chrono::{Duration, Utc};
use common::bot::{spawn, Backend, Spawn, SIGNING_SECRET};
use common::db::TestDb;
use common::fake_slack::{FakeSlack, Fault};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::tcp_proxy::TcpProxy;
use servo_sla_bot::store::{OutboxStatus, Store};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const REPLICA_CONFIG: &str = r#"
poll_interval = "1s"

# The job steers Servo's own ETA; the forecaster is tested elsewhere.
[risk]
forecast = false

[[tenants]]
id = "acme"
channel = "C0ACMEALRT"
operators = ["U0TIER1"]

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["U0TIER1"]
ack_timeout = "3s"

[[escalation.tiers]]
name = "Platform Team Lead"
notify = ["U0TIER2"]
ack_timeout = "3s"

[[escalation.tiers]]
name = "Product/Business Stakeholder"
notify = ["U0TIER3"]
ack_timeout = "3s"

[slack]
timeout = "1s"
max_attempts = 3
"#;

/// The bots a test started; a failing test must not leave them running.
struct Bots(Vec<Child>);

impl Drop for Bots {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn replica(name: &str, dir: &std::path::Path, db: &str, servo: &str, slack: &FakeSlack) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_servo-sla-bot"))
        .args(["serve", "--config"])
        .arg(dir.join("config.toml"))
        .env("HOSTNAME", name)
        .env("RUST_LOG", "warn")
        .env("SLACK_BOT_TOKEN", slack.token())
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_API_URL", slack.base_url())
        .env("SERVO_DATABASE_URL", servo)
        .env("DATABASE_URL", db)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("PAGERDUTY_EVENTS_URL", "http://127.0.0.1:9/unused")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the bot starts")
}

#[tokio::test]
async fn slack_failing_for_a_while_delivers_every_message_once_in_thread_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), REPLICA_CONFIG).unwrap();
    let db = TestDb::postgres().await;
    let fx = ServoFixture::start().await;
    let slack = FakeSlack::start().await;
    // The first calls, whatever they are, meet every kind of failure.
    let faults = vec![
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        Fault::ServerError,
        Fault::Timeout(std::time::Duration::from_secs(2)),
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        Fault::ServerError,
        Fault::ServerError,
        Fault::Timeout(std::time::Duration::from_secs(2)),
        Fault::RateLimited {
            retry_after_secs: 2,
        },
        Fault::ServerError,
        Fault::Timeout(std::time::Duration::from_secs(2)),
    ];
    let injected = faults.len();
    slack.fail_next("*", faults);
    let now = Utc::now();
    fx.job(JobSpec {
        priority: 9,
        deadline: Some(now + Duration::minutes(120)),
        eta: Some(now + Duration::minutes(130)),
        heartbeat: Some(now),
        ..JobSpec::default()
    })
    .await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let mut replicas = Bots(vec![
        replica("replica-a", dir.path(), &db.url, &fx.bot_url(), &slack),
        replica("replica-b", dir.path(), &db.url, &fx.bot_url(), &slack),
    ]);

    // Wait for the whole escalation path, then for the outbox to empty.
    let started = Instant::now();
    loop {
        let rows = store.list_outbox(None).await.unwrap();
        let tier3 = rows
            .iter()
            .any(|m| m.payload["channel"] == "U0TIER3" && m.status == OutboxStatus::Sent);
        if tier3 && rows.iter().all(|m| m.status == OutboxStatus::Sent) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "not everything was delivered: {rows:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // One more poll or two, to catch late doubles.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for r in &mut replicas.0 {
        r.kill().unwrap();
        r.wait().unwrap();
    }

    let calls = slack.calls();
    let failed = calls
        .iter()
        .filter(|c| ["429", "500", "timeout"].contains(&c.outcome.as_str()))
        .count();
    assert_eq!(failed, injected, "every injected failure was met");
    let rows = store.list_outbox(None).await.unwrap();
    assert!(
        rows.iter().all(|m| m.status == OutboxStatus::Sent),
        "{rows:#?}"
    );
    // Exactly once: every stored call reached Slack once, and nothing else did.
    let mut delivered: HashMap<(String, String), usize> = HashMap::new();
    for c in slack.ok_calls_to("chat.postMessage") {
        *delivered
            .entry((
                c.body["channel"].as_str().unwrap_or_default().to_string(),
                c.body["text"].as_str().unwrap_or_default().to_string(),
            ))
            .or_default() += 1;
    }
    let doubled: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "doubled: {doubled:#?}");
    let posts = rows
        .iter()
        .filter(|m| m.method == "chat.postMessage")
        .count();
    assert_eq!(delivered.len(), posts, "lost or extra messages");
    // In order per thread: the thread shows replies in the order they were written.
    let root = slack
        .messages()
        .into_iter()
        .find(|m| m.channel == "C0ACMEALRT" && m.thread_ts.is_none())
        .expect("the alert");
    let shown: Vec<String> = slack
        .thread_replies(&root.channel, &root.ts)
        .into_iter()
        .map(|m| m.text)
        .collect();
    let written: Vec<String> = rows
        .iter()
        .filter(|m| m.thread_alert_id.is_some() && m.method == "chat.postMessage")
        .map(|m| m.payload["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(shown.len() >= 4, "plan and three pages: {shown:#?}");
    assert_eq!(shown, written, "thread order");
    println!(
        "slack faults: {injected} injected; {} messages sent, 0 lost, 0 doubled",
        delivered.len()
    );
}

#[tokio::test]
async fn servo_unreachable_for_a_while_degrades_resolves_nothing_then_resumes() {
    let fx = ServoFixture::start().await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut servo_url = url::Url::parse(&fx.bot_url()).unwrap();
    servo_url.set_port(Some(proxy.addr().port())).unwrap();
    let now = Utc::now();
    let job = fx
        .job(JobSpec {
            deadline: Some(now + Duration::minutes(60)),
            eta: Some(now + Duration::minutes(100)),
            heartbeat: Some(now),
            ..JobSpec::default()
        })
        .await;
    let app = spawn(Spawn::new(Backend::Sqlite).servo_url(servo_url.as_str())).await;
    app.poll().await;
    let alerts = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "C0ACMEALERT" && c.body.get("thread_ts").is_none())
        .count();
    assert_eq!(alerts, 1, "the alert");
    assert_eq!(app.get("/readyz").await.status, 200);

    proxy.cut();
    // Meanwhile the job really recovers in Servo; the bot cannot know yet.
    fx.set_eta(job, now + Duration::minutes(30), Utc::now())
        .await;
    let updates_before = app.slack.ok_calls_to("chat.update").len();
    for _ in 0..3 {
        let outcome = app.poll().await;
        assert!(outcome.tenants["acme"].is_err(), "{outcome:?}");
    }
    assert_eq!(
        app.slack.ok_calls_to("chat.update").len(),
        updates_before,
        "nothing edited, nothing resolved while Servo is away"
    );
    assert!(app
        .state
        .store
        .open_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .is_some());
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "degraded");
    let answer = app
        .slash(&format!("status {job}"), "U0PLATLEAD", "C0ACMEALERT")
        .await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains("Servo is unreachable"),
        "{}",
        answer.body
    );
    let answer = app
        .slash(&format!("pause {job}"), "U0PLATLEAD", "C0ACMEALERT")
        .await;
    assert!(
        answer.body.contains("Nothing was changed"),
        "{}",
        answer.body
    );

    // The network comes back: the bot resumes by itself.
    proxy.restore();
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    while app.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "readiness did not come back");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let outcome = app.poll().await;
    assert!(outcome.tenants["acme"].is_ok(), "{outcome:?}");
    let resolved = app
        .slack
        .ok_calls_to("chat.update")
        .iter()
        .any(|c| c.body.to_string().contains("Back on track"));
    assert!(
        resolved,
        "now that Servo answers, the recovery is real and reported"
    );
    assert_eq!(
        fx.job_field::<String>(job, "state").await,
        "running",
        "the pause during the outage changed nothing"
    );
}

#[tokio::test]
async fn with_slack_unavailable_names_are_ids_at_once_instead_of_a_round_of_retries_each() {
    // A poll that names many people while Slack is down must not wait out
    // every lookup's retries: the first lookup spends them, the next ones
    // give the id without asking for a while.
    let app = spawn(Spawn::new(Backend::Sqlite)).await;
    app.slack
        .fail_next("users.info", vec![Fault::ServerError; 10]);
    let first = app.state.directory.user_name("U0FIRST").await;
    assert_eq!(first, "U0FIRST", "the id stands in");
    let asked = app.slack.calls_to("users.info").len();
    assert_eq!(asked, 3, "one lookup spends slack.max_attempts");
    for i in 0..20 {
        let id = format!("U0OTHER{i}");
        assert_eq!(app.state.directory.user_name(&id).await, id);
    }
    assert_eq!(
        app.slack.calls_to("users.info").len(),
        asked,
        "the next names are not asked for while Slack was just found unavailable"
    );
}

#[tokio::test]
async fn a_group_slack_does_not_list_is_named_by_its_id_and_not_asked_about_again() {
    // A typo in the config or a deleted group: every render names the tier,
    // and `usergroups.list` has a small rate limit (Tier 2), so the miss is
    // remembered like a name.
    let app = spawn(Spawn::new(Backend::Sqlite)).await;
    let first = app.state.directory.group_name("S0NOSUCHGROUP").await;
    assert_eq!(first, "S0NOSUCHGROUP", "the id stands in");
    let asked = app.slack.ok_calls_to("usergroups.list").len();
    assert_eq!(asked, 1, "Slack was asked once");
    for _ in 0..5 {
        assert_eq!(
            app.state.directory.group_name("S0NOSUCHGROUP").await,
            "S0NOSUCHGROUP"
        );
    }
    assert_eq!(
        app.slack.ok_calls_to("usergroups.list").len(),
        1,
        "the miss is remembered, not asked about at every render"
    );
}

#[tokio::test]
async fn with_slack_unavailable_a_group_pages_its_last_known_members_and_an_unknown_one_fails_at_once(
) {
    let app = spawn(Spawn::new(Backend::Sqlite)).await;
    app.slack.set_usergroup("S0KNOWN", &["U0ONE", "U0TWO"]);
    let known = app.state.directory.members("S0KNOWN").await.unwrap();
    assert_eq!(*known, vec!["U0ONE".to_string(), "U0TWO".to_string()]);
    // The list is now old, and Slack is down.
    app.state.directory.age_member_lists();
    app.slack
        .fail_next("usergroups.users.list", vec![Fault::ServerError; 10]);
    let stale = app.state.directory.members("S0KNOWN").await.unwrap();
    assert_eq!(
        stale, known,
        "the last known members stand while Slack is down"
    );
    let asked = app.slack.calls_to("usergroups.users.list").len();
    assert_eq!(
        asked,
        1 + 3,
        "one fetch, then one lookup's slack.max_attempts"
    );
    // A group never fetched has no list to fall back on: an error, at once,
    // without another round of retries.
    let unknown = app.state.directory.members("S0NEVERSEEN").await;
    assert!(
        matches!(unknown, Err(ref e) if e.is_transient()),
        "{unknown:?}"
    );
    assert_eq!(
        app.slack.calls_to("usergroups.users.list").len(),
        asked,
        "not asked again while Slack was just found unavailable"
    );
}

/// PagerDuty sends its answer's headers, then stalls in the middle of the
/// body: the whole request, body included, is under the client's timeout,
/// so the event fails as unavailable (to be tried again) within it.
#[tokio::test]
async fn pagerduty_stalling_in_the_middle_of_its_answer_fails_within_the_timeout() {
    use servo_sla_bot::domain::secret::Secret;
    use servo_sla_bot::pagerduty::{PagerDuty, PagerDutyError};
    let url = common::fake_pagerduty::start_stalling_body().await;
    let keys = [("PD_KEY".to_string(), Secret::new("pd-routing-key"))]
        .into_iter()
        .collect();
    let pagerduty = PagerDuty::new(&url, keys).unwrap();
    let event = serde_json::json!({
        "routing_key_env": "PD_KEY",
        "event_action": "trigger",
        "dedup_key": "alert-1",
        "payload": {"summary": "a page", "source": "servo-sla-bot", "severity": "critical"},
    });
    let started = Instant::now();
    let sent = tokio::time::timeout(std::time::Duration::from_secs(30), pagerduty.send(&event))
        .await
        .expect("the send ends within its own timeout, not never");
    assert!(
        matches!(sent, Err(PagerDutyError::Unavailable(_))),
        "{sent:?}"
    );
    assert!(
        started.elapsed() <= std::time::Duration::from_secs(12),
        "took {:?}",
        started.elapsed()
    );
}

/// Two tiers, the first paged at once and the next 2 s later.
const FAST_PAGING_CONFIG: &str = r#"
poll_interval = "60s"

[risk]
forecast = false

[[tenants]]
id = "acme"
channel = "C0ACMEALERT"
operators = ["U0TIER1"]

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["U0TIER1"]
ack_timeout = "2s"

[[escalation.tiers]]
name = "Platform Team Lead"
notify = ["U0TIER2"]
ack_timeout = "5m"
"#;

/// When `user`'s first page DM went out, waiting up to `within` for it.
async fn paged_at(app: &common::bot::TestApp, user: &str, within: std::time::Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if let Some(c) = app.slack.ok_calls_to("chat.postMessage").iter().find(|c| {
            c.body["channel"] == user
                && c.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("You are paged"))
        }) {
            return c.at;
        }
        assert!(
            Instant::now() < deadline,
            "{user} was not paged within {within:?}; Slack got {:#?}",
            app.slack.calls()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A Home refresh waiting out Slack's 429s on `views.publish` (20 s at a
/// time) holds only its own lane: the escalation step due 2 s after the
/// first page pages the next tier on time.
async fn a_home_refresh_stuck_on_429s_does_not_delay_a_page(backend: Backend) {
    use servo_sla_bot::store::NewTimer;
    let fx = ServoFixture::start().await;
    let mut spec = Spawn::new(backend).servo_url(&fx.bot_url());
    spec.config = FAST_PAGING_CONFIG.to_string();
    let app = spawn(spec).await;
    app.slack.fail_next(
        "views.publish",
        vec![
            Fault::RateLimited {
                retry_after_secs: 20
            };
            3
        ],
    );
    let now = Utc::now();
    app.state
        .store
        .schedule_timer(
            NewTimer {
                kind: servo_sla_bot::flows::ids::REFRESH_TIMER.into(),
                subject_id: "U0TIER1".into(),
                payload: serde_json::json!({}),
                due_at: now,
                dedup_key: None,
            },
            now,
        )
        .await
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while app.slack.calls_to("views.publish").is_empty() {
        assert!(Instant::now() < deadline, "the Home refresh never ran");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The Home refresh is now waiting out a 429. A critical job goes at risk.
    fx.job(JobSpec {
        priority: 9,
        deadline: Some(now + Duration::minutes(120)),
        eta: Some(now + Duration::minutes(130)),
        heartbeat: Some(now),
        ..JobSpec::default()
    })
    .await;
    app.poll().await;
    let tier1 = paged_at(&app, "U0TIER1", std::time::Duration::from_secs(10)).await;
    let tier2 = paged_at(&app, "U0TIER2", std::time::Duration::from_secs(15)).await;
    let gap = tier2.duration_since(tier1);
    assert!(
        gap < std::time::Duration::from_secs(8),
        "the next tier was paged {gap:?} after the first, 2 s due"
    );
    assert_eq!(
        app.slack.ok_calls_to("views.publish").len(),
        0,
        "the Home refresh is still waiting out Slack's 429s"
    );
}

#[tokio::test]
async fn a_home_refresh_stuck_on_429s_does_not_delay_a_page_on_sqlite() {
    a_home_refresh_stuck_on_429s_does_not_delay_a_page(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_home_refresh_stuck_on_429s_does_not_delay_a_page_on_postgres() {
    a_home_refresh_stuck_on_429s_does_not_delay_a_page(Backend::Postgres).await;
}

/// Servo's database blackholed while a poll waits for its answer (a
/// failover that drops packets: no error, no answer, the connections left
/// open): the poll fails within seconds instead of hanging, nothing is
/// edited or reported recovered meanwhile, and once the network forwards
/// again the polls resume by themselves and the recovery is reported.
#[tokio::test]
async fn servo_blackholed_mid_poll_fails_the_poll_within_seconds_then_resumes() {
    let fx = ServoFixture::start().await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut servo_url = url::Url::parse(&fx.bot_url()).unwrap();
    servo_url.set_port(Some(proxy.addr().port())).unwrap();
    // A short statement timeout (the URL's options win over the bot's
    // defaults), so the test does not wait out the default.
    servo_url
        .query_pairs_mut()
        .append_pair("options", "-c statement_timeout=2s");
    let now = Utc::now();
    let job = fx
        .job(JobSpec {
            deadline: Some(now + Duration::minutes(60)),
            eta: Some(now + Duration::minutes(100)),
            heartbeat: Some(now),
            ..JobSpec::default()
        })
        .await;
    let app = spawn(Spawn::new(Backend::Sqlite).servo_url(servo_url.as_str())).await;
    app.poll().await;
    let alerts = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "C0ACMEALERT" && c.body.get("thread_ts").is_none())
        .count();
    assert_eq!(alerts, 1, "the alert");
    // Meanwhile the job really recovers in Servo; the bot cannot know yet.
    fx.set_eta(job, now + Duration::minutes(30), Utc::now())
        .await;
    let updates_before = app.slack.ok_calls_to("chat.update").len();

    // Someone holds a lock on Servo's jobs: the next poll's read waits on
    // it, in flight. The link is blackholed while it waits; the lock goes,
    // and Servo's answer goes into the hole.
    let mut lock = fx.admin.begin().await.unwrap();
    sqlx::query("LOCK TABLE backfill_jobs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let poll = tokio::spawn({
        let state = app.state.clone();
        async move {
            servo_sla_bot::workers::poller::Poller { state }
                .tick()
                .await
        }
    });
    let dbname = fx.db.url.rsplit('/').next().unwrap().to_string();
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'servo-sla-bot' AND wait_event_type = 'Lock'",
        )
        .bind(&dbname)
        .fetch_one(&fx.admin)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poll never waited on the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    proxy.blackhole();
    let blackholed = Instant::now();
    lock.rollback().await.unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(40), poll)
        .await
        .expect("the poll ends instead of waiting on the blackhole")
        .unwrap();
    let took = blackholed.elapsed();
    assert!(
        took < std::time::Duration::from_secs(20),
        "the poll failed after {took:?}"
    );
    assert!(outcome.tenants["acme"].is_err(), "{outcome:?}");
    println!("blackholed mid-poll: the poll failed after {took:.1?}");
    app.drain_outbox().await;
    assert_eq!(
        app.slack.ok_calls_to("chat.update").len(),
        updates_before,
        "nothing edited, nothing resolved while Servo is away"
    );
    assert!(app
        .state
        .store
        .open_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .is_some());

    // The network forwards again: the polls resume by themselves (the
    // connections lost in the hole are dropped along the way).
    proxy.restore();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let outcome = app.poll().await;
        if outcome.tenants["acme"].is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the polls did not resume: {outcome:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let resolved = app
        .slack
        .ok_calls_to("chat.update")
        .iter()
        .any(|c| c.body.to_string().contains("Back on track"));
    assert!(
        resolved,
        "now that Servo answers, the recovery is real and reported"
    );
}
