//! At-risk alerts end to end: Servo's tables on PostgreSQL (as a role under
//! row-level security), the real app, and the fake Slack.

mod common;

use common::slack_ui::button_value;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::fake_slack::Call;
use common::servo_fixture::{JobSpec, ServoFixture};
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::ManualClock;
use uuid::Uuid;

fn start_of_minute() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::minutes(1)).unwrap()
}

/// A job whose Servo ETA we steer; deadline at t0 + 60 min.
async fn steered_job(fx: &ServoFixture, t0: DateTime<Utc>, eta_minutes: i64) -> Uuid {
    fx.job(JobSpec {
        deadline: Some(t0 + Duration::minutes(60)),
        eta: Some(t0 + Duration::minutes(eta_minutes)),
        heartbeat: Some(t0),
        ..JobSpec::default()
    })
    .await
}

/// Posts in channels (not DMs) that start a message of their own.
fn top_level_posts(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| {
            c.body["channel"]
                .as_str()
                .is_some_and(|ch| ch.starts_with('C'))
        })
        .filter(|c| c.body.get("thread_ts").is_none_or(Value::is_null))
        .collect()
}

fn is_escalation(c: &Call) -> bool {
    let text = c.body["text"].as_str().unwrap_or_default();
    text.contains("Escalation started")
        || text.contains("Paging *")
        || text.contains("escalation re-arms")
        || text.contains("Risk rose quickly")
}

/// Thread replies about the alert itself (escalation has its own tests).
fn thread_posts(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.body.get("thread_ts").is_some_and(|t| !t.is_null()))
        .filter(|c| !is_escalation(c))
        .collect()
}

async fn app_on(fx: &ServoFixture, backend: Backend, clock: &ManualClock) -> TestApp {
    spawn(
        Spawn::new(backend)
            .manual_clock(clock)
            .servo_url(&fx.bot_url()),
    )
    .await
}

async fn drift_through_every_band(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let id = steered_job(&fx, t0, 50).await;
    let mut app = app_on(&fx, backend, &clock).await;

    // On track: nothing to say.
    app.poll().await;
    assert!(app.slack.ok_calls_to("chat.postMessage").is_empty());

    // Low: severity 0.10 -> one post in the tenant's channel.
    fx.set_eta(id, t0 + Duration::minutes(66), t0).await;
    app.poll().await;
    let posts = app.slack.ok_calls_to("chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["channel"], "C0ACMEALERT");
    assert!(posts[0].body["text"]
        .as_str()
        .unwrap()
        .contains("Low SLA risk"));
    let alert_json = posts[0].body.to_string();
    assert!(alert_json.contains(&id.to_string()), "the job id is shown");
    assert!(alert_json.contains("revenue_daily"), "the asset is shown");
    assert!(
        alert_json.contains("<!date^"),
        "times are Slack date tokens"
    );
    assert!(
        alert_json.contains("alert_ack"),
        "the Acknowledge button is there"
    );
    assert!(alert_json.contains("50/100"), "progress is shown");

    // Medium: an edit and a thread reply.
    fx.set_eta(id, t0 + Duration::minutes(78), t0).await;
    app.poll().await;
    assert_eq!(app.slack.ok_calls_to("chat.update").len(), 1);

    // A restart halfway: the same episode is not posted again, nothing changed.
    app = app.restart().await;
    app.poll().await;
    assert_eq!(
        top_level_posts(&app.slack.ok_calls_to("chat.postMessage")).len(),
        1
    );
    assert_eq!(
        app.slack.ok_calls_to("chat.update").len(),
        1,
        "no change, no edit"
    );

    // High.
    fx.set_eta(id, t0 + Duration::minutes(108), t0).await;
    app.poll().await;

    // Breached: the deadline passes.
    clock.advance(Duration::minutes(61));
    fx.set_eta(id, t0 + Duration::minutes(110), t0 + Duration::minutes(61))
        .await;
    app.poll().await;
    let updates = app.slack.ok_calls_to("chat.update");
    let last = updates.last().unwrap();
    assert!(
        last.body["text"].as_str().unwrap().contains("SLA breached"),
        "{}",
        last.body
    );

    // Completed: the alert resolves and loses its buttons.
    fx.update_job(
        id,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    app.poll().await;

    let posts = app.slack.ok_calls_to("chat.postMessage");
    assert_eq!(
        top_level_posts(&posts).len(),
        1,
        "one post for the whole episode"
    );
    let updates = app.slack.ok_calls_to("chat.update");
    assert_eq!(
        updates.len(),
        4,
        "Medium, High, Breached, resolved: {updates:#?}"
    );
    let root_ts = app
        .slack
        .messages()
        .iter()
        .find(|m| m.thread_ts.is_none())
        .unwrap()
        .ts
        .clone();
    for u in &updates {
        assert_eq!(
            u.body["ts"],
            root_ts.as_str(),
            "edits go to the alert's own message"
        );
    }
    let final_edit = updates.last().unwrap().body.to_string();
    assert!(final_edit.contains("Completed"), "{final_edit}");
    assert!(
        !final_edit.contains("\"actions\""),
        "a resolved alert has no buttons"
    );
    let replies = thread_posts(&posts);
    assert_eq!(
        replies.len(),
        5,
        "three band changes, the resolution and how it ended (issue 38): {replies:#?}"
    );
    assert!(replies[4].body["text"]
        .as_str()
        .unwrap()
        .starts_with("How did it end?"));
    assert!(replies
        .iter()
        .all(|r| r.body["thread_ts"] == root_ts.as_str()));
    assert!(replies[0].body["text"].as_str().unwrap().contains("Medium"));
    assert!(replies[2].body["text"]
        .as_str()
        .unwrap()
        .contains("breached"));
}

#[tokio::test]
async fn a_job_drifts_through_every_band_to_completion_with_one_post_on_sqlite() {
    drift_through_every_band(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_job_drifts_through_every_band_to_completion_with_one_post_on_postgres() {
    drift_through_every_band(Backend::Postgres).await;
}

#[tokio::test]
async fn tenant_b_jobs_never_reach_tenant_a_channel() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let late = |tenant: &str, asset: &str| JobSpec {
        tenant: tenant.into(),
        asset: asset.into(),
        deadline: Some(t0 + Duration::minutes(60)),
        eta: Some(t0 + Duration::minutes(100)),
        heartbeat: Some(t0),
        ..JobSpec::default()
    };
    let a = fx.job(late("acme", "acme_orders")).await;
    let b = fx.job(late("globex", "globex_secret_ledger")).await;
    let app = app_on(&fx, Backend::Sqlite, &clock).await;
    let outcome = app.poll().await;
    let all = app.slack.ok_calls_to("chat.postMessage");
    let posts = top_level_posts(&all);
    assert_eq!(posts.len(), 2, "{outcome:?} {:#?}", app.slack.calls());
    for p in &posts {
        let body = p.body.to_string();
        match p.body["channel"].as_str().unwrap() {
            "C0ACMEALERT" => {
                assert!(body.contains(&a.to_string()));
                assert!(!body.contains("globex_secret_ledger"));
            }
            "C0GLOBEXALR" => assert!(body.contains(&b.to_string())),
            other => panic!("posted to an unexpected channel {other}"),
        }
    }
}

#[tokio::test]
async fn a_cancelled_job_resolves_its_alert_saying_so() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let id = steered_job(&fx, t0, 100).await;
    let app = app_on(&fx, Backend::Sqlite, &clock).await;
    app.poll().await;
    fx.update_job(
        id,
        "state = 'cancelled', error_message = 'Cancelled by user', completed_at = now()",
    )
    .await;
    app.poll().await;
    let last = app.slack.ok_calls_to("chat.update").pop().unwrap();
    assert!(last
        .body
        .to_string()
        .contains("Cancelled: Cancelled by user"));
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(alert.status.to_string(), "open");
}

#[tokio::test]
async fn a_job_gone_from_servo_resolves_its_alert_in_place_at_once_not_by_the_repair_pass() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let id = steered_job(&fx, t0, 100).await;
    let app = app_on(&fx, Backend::Sqlite, &clock).await;
    app.poll().await;
    app.drain_outbox().await;
    // Moved to another tenant: row-level security hides it from the bot.
    fx.update_job(id, "tenant_id = 'someone-else'").await;
    app.poll().await;
    app.drain_outbox().await;
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert.status.to_string(), "resolved");
    // The alert's own message says so and loses its buttons, in the same
    // poll: the resolution committed with its edit and its note.
    let edit = app
        .slack
        .ok_calls_to("chat.update")
        .pop()
        .expect("the alert was edited");
    let shown = edit.body.to_string();
    assert!(shown.contains("no longer visible in Servo"), "{shown}");
    assert!(shown.contains("Resolved"), "{shown}");
    assert!(
        !shown.contains("alert_ack"),
        "no Acknowledge any more: {shown}"
    );
    let notes: Vec<String> = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body.get("thread_ts").is_some_and(|t| !t.is_null()))
        .map(|c| c.body["text"].to_string())
        .filter(|t| t.contains("no longer visible in Servo"))
        .collect();
    assert_eq!(notes.len(), 1, "one note in the thread: {notes:?}");
    assert_eq!(
        app.metric(r#"servo_sla_bot_repairs_total{what="resolution_edit"}"#)
            .await,
        0.0,
        "nothing was left for the repair pass"
    );
    // Its escalation ended with it: nothing is due to page anyone.
    let esc = app.state.store.get_escalation(&alert.id).await.unwrap();
    assert!(esc.as_ref().is_none_or(|e| e.status != "active"), "{esc:?}");
}

#[tokio::test]
async fn an_unreachable_servo_resolves_nothing() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let id = steered_job(&fx, t0, 100).await;
    let app = app_on(&fx, Backend::Sqlite, &clock).await;
    app.poll().await;
    // Servo's database goes away: the bot's role can no longer connect to
    // it. Only this test's database: the role is shared by the tests that
    // run beside this one, which must keep their Servo.
    let dbname = fx.db.url.rsplit('/').next().unwrap().to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "REVOKE CONNECT ON DATABASE \"{dbname}\" FROM PUBLIC, {}",
        common::servo_fixture::BOT_ROLE
    )))
    .execute(&fx.admin)
    .await
    .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND datname = $2",
    )
    .bind(common::servo_fixture::BOT_ROLE)
    .bind(&dbname)
    .execute(&fx.admin)
    .await
    .unwrap();
    let outcome = app.poll().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "GRANT CONNECT ON DATABASE \"{dbname}\" TO {}",
        common::servo_fixture::BOT_ROLE
    )))
    .execute(&fx.admin)
    .await
    .unwrap();
    assert!(outcome.tenants["acme"].is_err());
    assert!(
        app.slack.ok_calls_to("chat.update").is_empty(),
        "nothing was resolved"
    );
    let alert = app
        .state
        .store
        .open_alert_for_job("acme", &id.to_string())
        .await
        .unwrap();
    assert!(alert.is_some(), "the alert stays open");
}

#[tokio::test]
async fn acknowledge_records_who_and_when_and_a_second_click_is_told() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    steered_job(&fx, t0, 100).await;
    let app = app_on(&fx, Backend::Sqlite, &clock).await;
    app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    app.poll().await;
    let posts = app.slack.ok_calls_to("chat.postMessage");
    let post = top_level_posts(&posts)[0];
    let alert_id = button_value(&post.body, "alert_ack").expect("an Acknowledge button");
    let msg = app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .unwrap();

    let click = |user: &str| {
        json!({
            "type": "block_actions",
            "user": {"id": user},
            "channel": {"id": "C0ACMEALERT"},
            "message": {"ts": msg.ts},
            "container": {"type": "message", "channel_id": "C0ACMEALERT", "message_ts": msg.ts},
            "response_url": app.slack.response_url(&format!("ack-{user}")),
            "trigger_id": "1.2.3",
            "actions": [{"action_id": "alert_ack", "value": alert_id, "type": "button"}]
        })
    };
    assert_eq!(app.interact(&click("U0PLATLEAD")).await.status, 200);
    app.drain_outbox().await;
    let edit = app
        .slack
        .ok_calls_to("chat.update")
        .pop()
        .expect("the alert is edited");
    let text = edit.body.to_string();
    assert!(text.contains("Acknowledged by <@U0PLATLEAD>"), "{text}");
    assert!(
        button_value(&edit.body, "alert_ack").is_none(),
        "the button goes"
    );

    // A second operator clicks the stale button: told who was first, nothing changes.
    assert_eq!(app.interact(&click("U0ONCALL1")).await.status, 200);
    app.drain_outbox().await;
    let told = app.slack.calls_to("response_url:ack-U0ONCALL1");
    assert_eq!(told.len(), 1);
    assert!(told[0].body["text"]
        .as_str()
        .unwrap()
        .contains("u0platlead already acknowledged"));
    assert_eq!(app.slack.ok_calls_to("chat.update").len(), 1);

    // Someone who is not an operator is refused.
    assert_eq!(app.interact(&click("U0RANDOM")).await.status, 200);
    let refused = app.slack.calls_to("response_url:ack-U0RANDOM");
    assert!(refused[0].body["text"]
        .as_str()
        .unwrap()
        .contains("Only the operators"));

    let audit = app.state.store.list_audit(None, 10).await.unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|e| e.outcome.as_str()).collect();
    assert!(outcomes.contains(&"ok"));
    assert!(outcomes.contains(&"already acknowledged"));
    assert!(outcomes.iter().any(|o| o.starts_with("refused")));
}
