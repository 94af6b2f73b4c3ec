//! Several `serve` processes on one PostgreSQL store: real processes, the fake
//! Slack, Servo's tables with RLS. One replica is killed with `kill -9` in the
//! middle of an escalation; the other pages on time, none missing, none twice,
//! and takes over polling. SIGTERM hands everything back. On SQLite a second
//! bot on the same file is refused.

mod common;

use chrono::{Duration, Utc};
use common::bot::{settings, spawn_app, Backend, SIGNING_SECRET};
use common::db::TestDb;
use common::fake_slack::FakeSlack;
use common::servo_fixture::{JobSpec, ServoFixture};
use servo_sla_bot::app::{App, AppOptions};
use servo_sla_bot::store::Store;
use servo_sla_bot::workers::poller::POLL_LEASE;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const CONFIG: &str = r#"
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
ack_timeout = "4s"

[[escalation.tiers]]
name = "Platform Team Lead"
notify = ["U0TIER2"]
ack_timeout = "4s"

[[escalation.tiers]]
name = "Product/Business Stakeholder"
notify = ["U0TIER3"]
ack_timeout = "4s"
"#;

struct Replica {
    name: String,
    child: Child,
}

/// A failing test must not leave bots running: kill on drop.
impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_replica(
    name: &str,
    dir: &std::path::Path,
    db_url: &str,
    servo_url: &str,
    slack: &FakeSlack,
) -> Replica {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_servo-sla-bot"))
        .args(["serve", "--config"])
        .arg(dir.join("config.toml"))
        .env("HOSTNAME", name)
        .env("RUST_LOG", "warn")
        .env("SLACK_BOT_TOKEN", slack.token())
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_API_URL", slack.base_url())
        .env("SERVO_DATABASE_URL", servo_url)
        .env("DATABASE_URL", db_url)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("PAGERDUTY_EVENTS_URL", "http://127.0.0.1:9/unused")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the bot starts");
    Replica {
        name: name.to_string(),
        child,
    }
}

/// When each page DM to `user` arrived.
fn pages_to(slack: &FakeSlack, user: &str) -> Vec<Instant> {
    slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| {
            c.body["channel"] == user
                && c.body["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("You are paged")
        })
        .map(|c| c.at)
        .collect()
}

async fn wait_for_page(slack: &FakeSlack, user: &str, within: std::time::Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if let Some(at) = pages_to(slack, user).first() {
            return *at;
        }
        assert!(
            Instant::now() < deadline,
            "{user} was not paged within {within:?}; Slack got: {:#?}",
            slack.calls()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn lease_holder(store: &Store) -> Option<String> {
    store
        .lease_holder(POLL_LEASE)
        .await
        .expect("read the lease")
}

#[tokio::test]
async fn kill_9_of_a_replica_mid_escalation_loses_no_page_and_doubles_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    let db = TestDb::postgres().await;
    let fx = ServoFixture::start().await;
    let slack = FakeSlack::start().await;
    let now = Utc::now();
    // A critical job at Low risk: critical jobs page from Low.
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

    let mut replicas = vec![
        spawn_replica("replica-a", dir.path(), &db.url, &fx.bot_url(), &slack),
        spawn_replica("replica-b", dir.path(), &db.url, &fx.bot_url(), &slack),
    ];
    let tier1 = wait_for_page(&slack, "U0TIER1", std::time::Duration::from_secs(30)).await;

    // Kill the replica that polls, without warning, between two pages.
    let holder = lease_holder(&store).await.expect("one replica polls");
    let victim = replicas
        .iter()
        .position(|r| holder.starts_with(&format!("{}-", r.name)))
        .expect("the holder is one of ours");
    let mut dead = replicas.remove(victim);
    let survivor = replicas.remove(0);
    let killed_at = Instant::now();
    dead.child.kill().unwrap(); // SIGKILL
    dead.child.wait().unwrap();

    let tier2 = wait_for_page(&slack, "U0TIER2", std::time::Duration::from_secs(20)).await;
    let tier3 = wait_for_page(&slack, "U0TIER3", std::time::Duration::from_secs(20)).await;
    // The survivor takes over polling once the dead one's lease runs out.
    let takeover = loop {
        if let Some(h) = lease_holder(&store).await {
            if h.starts_with(&format!("{}-", survivor.name)) {
                break killed_at.elapsed();
            }
        }
        assert!(
            killed_at.elapsed() < std::time::Duration::from_secs(30),
            "{} never took over polling",
            survivor.name
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    println!("take-over after kill -9: {:.1} s", takeover.as_secs_f64());
    // Several polls by the new poller, then count: nothing doubled.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(pages_to(&slack, "U0TIER1").len(), 1, "tier 1 paged once");
    assert_eq!(pages_to(&slack, "U0TIER2").len(), 1, "tier 2 paged once");
    assert_eq!(pages_to(&slack, "U0TIER3").len(), 1, "tier 3 paged once");
    // In order, each after its predecessor's 4 s to acknowledge, and on time
    // (the timers are rows in the store, fired by whichever replica is alive).
    for (before, after) in [(tier1, tier2), (tier2, tier3)] {
        let gap = after.duration_since(before).as_secs_f64();
        assert!((3.5..=8.0).contains(&gap), "pages {gap:.1} s apart");
    }
    let roots = slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "C0ACMEALRT" && c.body.get("thread_ts").is_none())
        .count();
    assert_eq!(roots, 1, "one alert, whoever polled");
    // Every message goes out. The one the dead replica was sending when it
    // died may or may not have reached Slack: it stays claimed until its
    // short lease runs out (nobody renews it any more), and the rows of the
    // same alert wait behind it; then the survivor finds it in the channel or
    // sends it, and the rest follow. Nothing is lost and nothing doubles.
    let drained_by = killed_at + std::time::Duration::from_secs(40);
    let outbox = loop {
        let rows = store.list_outbox(None).await.unwrap();
        let all_sent = rows
            .iter()
            .all(|m| m.status == servo_sla_bot::store::OutboxStatus::Sent);
        if all_sent || Instant::now() > drained_by {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let held: Vec<_> = outbox
        .iter()
        .filter(|m| m.status != servo_sla_bot::store::OutboxStatus::Sent)
        .collect();
    assert!(
        held.is_empty(),
        "all sent within the dead replica's lease: {held:#?}"
    );
    let mut thread_notes: Vec<String> = slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "C0ACMEALRT" && c.body.get("thread_ts").is_some())
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    let notes = thread_notes.len();
    thread_notes.sort();
    thread_notes.dedup();
    assert_eq!(
        notes,
        thread_notes.len(),
        "no thread note doubled: {thread_notes:#?}"
    );
    for tier in ["U0TIER1", "U0TIER2", "U0TIER3"] {
        assert!(
            thread_notes
                .iter()
                .any(|t| t.contains("Paging") && t.contains(tier)),
            "the thread says {tier} was paged: {thread_notes:#?}"
        );
    }
    println!(
        "outbox: {} sent after kill -9, none held, none doubled",
        outbox.len()
    );

    // SIGTERM: the survivor finishes, hands back its lease and exits cleanly.
    let mut survivor = survivor;
    let status = Command::new("kill")
        .args(["-TERM", &survivor.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || survivor.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exited.success(), "a clean exit on SIGTERM: {exited:?}");
    assert_eq!(
        lease_holder(&store).await,
        None,
        "the poll lease is handed back"
    );
    store.close().await;
}

#[tokio::test]
async fn a_second_bot_on_the_same_sqlite_file_is_refused_with_a_clear_message() {
    let first = spawn_app(Backend::Sqlite).await;
    let again = settings(
        common::bot::CONFIG,
        &first.db.url,
        &first.slack,
        &common::db::admin_url(),
        "http://127.0.0.1:9/unused",
    );
    // Servo here is the admin database (a superuser), for readiness only.
    let lab = || AppOptions {
        allow_rls_bypass: true,
        ..AppOptions::default()
    };
    let err = match App::build(again.clone(), lab()).await {
        Ok(_) => panic!("a second bot on the same SQLite file must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("another servo-sla-bot process is using the SQLite store"),
        "{err}"
    );
    assert!(err.contains("PostgreSQL"), "says what to do instead: {err}");
    // Once the first has stopped, the file is free again.
    let (_db, _slack) = first.stop().await;
    App::build(again, lab())
        .await
        .expect("the file is free once the first bot stopped");
}

/// Pages only at a breach, so the at-risk job's first call is its alert's
/// post and the channel's one top-level message is that post.
const QUIET_CONFIG: &str = r#"
poll_interval = "1s"

[risk]
forecast = false

[[tenants]]
id = "acme"
channel = "C0ACMEALRT"
operators = ["U0TIER1"]

[escalation.start_at]
critical = "breached"
standard = "breached"
best_effort = "breached"
below_best_effort = "breached"

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["U0TIER1"]
ack_timeout = "5m"
"#;

/// The alert posts in the channel (top-level messages).
fn channel_posts(slack: &FakeSlack) -> Vec<common::fake_slack::Message> {
    slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == "C0ACMEALRT" && m.thread_ts.is_none())
        .collect()
}

/// Runs `sql` against the bot's store from outside the bot (as an operator
/// with psql or sqlite3 would).
async fn store_sql(url: &str, sql: &'static str) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

async fn wait_until(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `kill -9` of the bot while Slack holds the answer to a post it accepted:
/// the bot never learned the `ts`. After the restart the channel still has
/// exactly one alert post (the row's claim is still the dead process's), and
/// once the claim runs out the new process finds the post by its metadata
/// and records it instead of posting again; the alert's next edit goes to
/// that one message.
async fn a_kill_while_slack_holds_the_answer(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), QUIET_CONFIG).unwrap();
    let fx = ServoFixture::start().await;
    let slack = FakeSlack::start().await;
    let now = Utc::now();
    let job = fx
        .job(JobSpec {
            priority: 5,
            deadline: Some(now + Duration::minutes(60)),
            eta: Some(now + Duration::minutes(200)),
            heartbeat: Some(now),
            ..JobSpec::default()
        })
        .await;
    slack.fail_next(
        "chat.postMessage",
        vec![common::fake_slack::Fault::HeldAnswer(
            std::time::Duration::from_secs(600),
        )],
    );

    let mut first = spawn_replica("replica-a", dir.path(), &db.url, &fx.bot_url(), &slack);
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while channel_posts(&slack).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "Slack never got the alert post; calls: {:#?}\nlog: {}",
            slack.calls(),
            std::fs::read_to_string(dir.path().join("replica-a.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let posted = channel_posts(&slack).remove(0);
    assert_eq!(
        posted.metadata["event_payload"]["outbox_key"]
            .as_str()
            .map(|k| k.ends_with(":post")),
        Some(true),
        "the post names its outbox row: {:?}",
        posted.metadata
    );
    // Killed while Slack still holds the answer.
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let _second = spawn_replica("replica-b", dir.path(), &db.url, &fx.bot_url(), &slack);
    // Several polls go by: the row is still claimed by the dead process.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        channel_posts(&slack).len(),
        1,
        "exactly one message after the restart"
    );
    let store = Store::connect(&db.url).await.unwrap();
    let claimed: Vec<_> = store
        .list_outbox(Some("pending"))
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.dedup_key.as_deref().is_some_and(|k| k.ends_with(":post")))
        .collect();
    assert_eq!(claimed.len(), 1, "the post's fate is still unknown");
    assert!(
        claimed[0]
            .claimed_by
            .as_deref()
            .is_some_and(|w| w.starts_with("replica-a-")),
        "still the dead process's claim: {:?}",
        claimed[0].claimed_by
    );

    // The claim runs out (nobody renews it: within 15 s of the kill).
    store_sql(
        &db.url,
        "UPDATE outbox SET claim_until_ms = 0 WHERE claimed_by LIKE 'replica-a-%'",
    )
    .await;
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let alert = loop {
        let alert = store
            .latest_alert_for_job("acme", &job.to_string())
            .await
            .unwrap()
            .expect("the alert is open");
        if alert.ts.is_some() {
            break alert;
        }
        assert!(Instant::now() < deadline, "the post was never settled");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        alert.ts.as_deref(),
        Some(posted.ts.as_str()),
        "the post found is recorded"
    );
    assert_eq!(
        channel_posts(&slack).len(),
        1,
        "exactly one message after the claim ran out"
    );
    assert!(
        !slack.calls_to("conversations.history").is_empty(),
        "found by looking, not by posting"
    );

    // The alert's next change edits that one message.
    fx.set_eta(job, now + Duration::minutes(20), Utc::now())
        .await;
    wait_until(
        "the recovery edits the alert",
        std::time::Duration::from_secs(30),
        || {
            slack
                .ok_calls_to("chat.update")
                .iter()
                .any(|c| c.body["ts"] == posted.ts.as_str())
        },
    )
    .await;
    assert_eq!(channel_posts(&slack).len(), 1);
    store.close().await;
}

#[tokio::test]
async fn a_kill_while_slack_holds_a_posts_answer_leaves_one_message_on_sqlite() {
    a_kill_while_slack_holds_the_answer(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn a_kill_while_slack_holds_a_posts_answer_leaves_one_message_on_postgres() {
    a_kill_while_slack_holds_the_answer(TestDb::postgres().await).await;
}

/// One tier: a critical job pages it at once, and nobody after it soon.
const ONE_TIER_CONFIG: &str = r#"
poll_interval = "1s"

[risk]
forecast = false

[[tenants]]
id = "acme"
channel = "C0ACMEALRT"
operators = ["U0TIER1"]

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["U0TIER1"]
ack_timeout = "5m"

# The held answer outlasts the test: the call is in flight when it is killed.
[slack]
timeout = "60s"
"#;

/// Makes the claims `holder` has run out now, as they do on their own
/// within a lease once nobody renews them.
async fn expire_claims_of(url: &str, holder: &str) {
    const SQL: &str = "UPDATE outbox SET claim_until_ms = 0 WHERE claimed_by = $1";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(SQL).bind(holder).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(SQL).bind(holder).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// The page DMs Slack shows U0TIER1.
fn dms_to_tier1(slack: &FakeSlack) -> Vec<common::fake_slack::Message> {
    let dm = FakeSlack::dm_channel_for("U0TIER1");
    slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == dm && m.text.contains("You are paged"))
        .collect()
}

/// A page DM waits once (Slack answers 429: the row records "rate limited"),
/// then its next try is posted but Slack holds the answer, and the replica
/// sending it is killed (`kill -9`): the row's last recorded error still
/// says "rate limited", but that is not how its last attempt ended. Once
/// the dead replica's claim runs out, the replica that takes the row over
/// looks for the DM by its metadata and records it: one DM.
async fn a_dm_that_waited_then_died_in_flight(db: TestDb, both_live: bool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), ONE_TIER_CONFIG).unwrap();
    let fx = ServoFixture::start().await;
    let slack = FakeSlack::start().await;
    let now = Utc::now();
    // A critical job at Low risk: critical jobs page from Low.
    fx.job(JobSpec {
        priority: 9,
        deadline: Some(now + Duration::minutes(120)),
        eta: Some(now + Duration::minutes(130)),
        heartbeat: Some(now),
        ..JobSpec::default()
    })
    .await;
    slack.fail_next(
        "chat.postMessage:U0TIER1",
        vec![
            common::fake_slack::Fault::RateLimited {
                retry_after_secs: 1,
            },
            common::fake_slack::Fault::HeldAnswer(std::time::Duration::from_secs(600)),
        ],
    );
    let mut replicas = vec![spawn_replica(
        "replica-a",
        dir.path(),
        &db.url,
        &fx.bot_url(),
        &slack,
    )];
    if both_live {
        replicas.push(spawn_replica(
            "replica-b",
            dir.path(),
            &db.url,
            &fx.bot_url(),
            &slack,
        ));
    }
    let logs = |dir: &std::path::Path| {
        ["replica-a", "replica-b"]
            .iter()
            .map(|n| std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    wait_until(
        "the DM is posted, its answer held",
        std::time::Duration::from_secs(30),
        || dms_to_tier1(&slack).len() == 1,
    )
    .await;
    let tries: Vec<String> = slack
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == "U0TIER1")
        .map(|c| c.outcome)
        .collect();
    assert_eq!(tries, ["429", "held_answer"], "{}", logs(dir.path()));

    // Kill the replica that holds the DM's row.
    let store = Store::connect(&db.url).await.unwrap();
    let row = store
        .list_outbox(Some("pending"))
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.payload["channel"] == "U0TIER1")
        .expect("the DM's row is still pending");
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("rate limited")),
        "the last recorded error is the 429: {row:#?}"
    );
    let holder = row.claimed_by.clone().expect("a replica holds the row");
    let victim = replicas
        .iter()
        .position(|r| holder.starts_with(&format!("{}-", r.name)))
        .expect("the holder is one of ours");
    let mut dead = replicas.remove(victim);
    dead.child.kill().unwrap(); // SIGKILL
    dead.child.wait().unwrap();
    if !both_live {
        replicas.push(spawn_replica(
            "replica-b",
            dir.path(),
            &db.url,
            &fx.bot_url(),
            &slack,
        ));
    }
    // Nobody renews the dead replica's claim: it runs out.
    expire_claims_of(&db.url, &holder).await;

    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let settled = loop {
        let settled = store
            .list_outbox(Some("sent"))
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.id == row.id);
        if let Some(m) = settled {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the DM's row was never settled; Slack got {:#?}\n{}",
            slack.calls(),
            logs(dir.path())
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // A poll or two more, then count.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let dms = dms_to_tier1(&slack);
    assert_eq!(dms.len(), 1, "one DM: {dms:#?}\n{}", logs(dir.path()));
    assert_eq!(
        settled.response.as_ref().and_then(|r| r["ts"].as_str()),
        Some(dms[0].ts.as_str()),
        "the row records the DM it found"
    );
    assert!(
        settled
            .response
            .as_ref()
            .is_some_and(|r| r["found_in_history"] == true),
        "found by looking, not by posting: {settled:#?}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_dm_that_waited_once_then_died_in_flight_with_two_replicas_is_sent_once_on_postgres() {
    a_dm_that_waited_then_died_in_flight(TestDb::postgres().await, true).await;
}

#[tokio::test]
async fn a_dm_that_waited_once_then_died_in_flight_is_sent_once_on_sqlite() {
    a_dm_that_waited_then_died_in_flight(TestDb::sqlite().await, false).await;
}
