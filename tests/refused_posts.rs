//! Nothing lost to a refused post (issue 20): an alert's post that Slack
//! refuses for a reason that can pass is tried again (at most a minute
//! apart) while the alert is open, joining a public channel when that is
//! all it takes; once it goes out, its thread and edits follow. A post
//! refused for good takes its thread with it instead of leaving it waiting.

mod common;

use chrono::Duration;
use common::bot::{Backend, TestApp, World};
use common::fake_slack::Fault;
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::t0;
use servo_sla_bot::runtime::clock::ManualClock;
use uuid::Uuid;

const CHANNEL: &str = "C0ACMEALERT";

/// A standard job at Low: it posts an alert and pages nobody (standard
/// pages from Medium), so every `chat.postMessage` is the alert's.
fn low() -> JobSpec {
    JobSpec {
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: 5,
        ..JobSpec::default()
    }
}

async fn world(backend: Backend) -> (ServoFixture, TestApp, ManualClock) {
    let World { fx, app, clock } = common::bot::on_servo(backend, &[]).await;
    (fx, app, clock)
}

/// Lets `minutes` pass a minute at a time, delivering what comes due.
async fn wait_minutes(app: &TestApp, clock: &ManualClock, minutes: i64) {
    for _ in 0..minutes {
        clock.advance(Duration::minutes(1));
        app.drain_outbox().await;
    }
}

fn outcomes(app: &TestApp, method: &str) -> Vec<String> {
    app.slack
        .calls_to(method)
        .into_iter()
        .map(|c| c.outcome)
        .collect()
}

fn root_posts(app: &TestApp) -> usize {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == CHANNEL && m.thread_ts.is_none())
        .count()
}

async fn refused_then_accepted(backend: Backend) {
    let (fx, app, clock) = world(backend).await;
    app.slack.fail_next(
        "chat.postMessage",
        vec![Fault::Error("is_archived".into()); 3],
    );
    let job: Uuid = fx.job(low()).await;
    app.poll().await;
    assert_eq!(root_posts(&app), 0, "refused so far");
    wait_minutes(&app, &clock, 3).await;
    assert_eq!(
        outcomes(&app, "chat.postMessage")[..4],
        ["is_archived", "is_archived", "is_archived", "ok"]
    );
    assert_eq!(
        root_posts(&app),
        1,
        "delivered once the channel accepts posts"
    );
    // Its later edits follow: Medium, then resolved.
    fx.set_eta(job, t0() + Duration::minutes(160), clock_now(&clock))
        .await;
    app.poll().await;
    fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    app.poll().await;
    wait_minutes(&app, &clock, 1).await;
    let updates = app.slack.ok_calls_to("chat.update");
    assert!(
        updates
            .last()
            .is_some_and(|u| u.body.to_string().contains("Resolved")),
        "{updates:#?}"
    );
    assert_eq!(root_posts(&app), 1, "exactly one post");
    let pending = app.state.store.list_outbox(Some("pending")).await.unwrap();
    assert!(pending.is_empty(), "nothing left waiting: {pending:#?}");
}

fn clock_now(clock: &ManualClock) -> chrono::DateTime<chrono::Utc> {
    use servo_sla_bot::runtime::clock::Clock;
    clock.now()
}

#[tokio::test]
async fn a_refused_alert_post_goes_out_once_slack_accepts_with_its_edits_on_sqlite() {
    refused_then_accepted(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_refused_alert_post_goes_out_once_slack_accepts_with_its_edits_on_postgres() {
    refused_then_accepted(Backend::Postgres).await;
}

#[tokio::test]
async fn not_in_a_public_channel_the_bot_joins_it_and_posts() {
    let (fx, app, _clock) = world(Backend::Sqlite).await;
    app.slack.require_membership(CHANNEL, false);
    fx.job(low()).await;
    app.poll().await;
    assert_eq!(outcomes(&app, "conversations.join"), ["ok"]);
    assert_eq!(
        outcomes(&app, "chat.postMessage")[..2],
        ["not_in_channel", "ok"]
    );
    assert_eq!(root_posts(&app), 1);
}

#[tokio::test]
async fn a_private_channel_is_tried_at_most_a_minute_apart_until_the_bot_is_invited() {
    let (fx, app, clock) = world(Backend::Sqlite).await;
    app.slack.require_membership(CHANNEL, true);
    fx.job(low()).await;
    app.poll().await;
    wait_minutes(&app, &clock, 10).await;
    let tries = outcomes(&app, "chat.postMessage").len();
    assert!(
        (6..=12).contains(&tries),
        "backing off, at most a minute apart: {tries} tries in 10 minutes"
    );
    assert!(outcomes(&app, "conversations.join")
        .iter()
        .all(|o| o == "method_not_supported_for_channel_type"));
    app.slack.invite_bot(CHANNEL);
    wait_minutes(&app, &clock, 1).await;
    assert_eq!(
        root_posts(&app),
        1,
        "posted within a minute of the invitation"
    );
}

#[tokio::test]
async fn a_post_refused_for_good_fails_its_thread_too_instead_of_leaving_it_waiting() {
    let (fx, app, clock) = world(Backend::Sqlite).await;
    // Refused for a reason that does not pass: given up at once.
    app.slack.fail_next(
        "chat.postMessage",
        vec![Fault::Error("invalid_auth".into())],
    );
    let job = fx.job(low()).await;
    app.poll().await;
    fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    app.poll().await;
    wait_minutes(&app, &clock, 1).await;
    let rows = app.state.store.list_outbox(None).await.unwrap();
    assert!(
        rows.iter().all(|r| r.status.as_str() != "pending"),
        "nothing spins waiting for a message that will never exist: {rows:#?}"
    );
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| r.method == "chat.update" || r.thread_alert_id.is_some())
        .collect();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|r| r
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused by Slack (") && e.contains("invalid_auth"))),
        "each says why: {failed:#?}"
    );
}
