//! Outbound delivery through the outbox: 429s are waited out (by the row,
//! not inside a call that holds its claim), 5xx and timeouts retried,
//! refusals recorded, and each message arrives once.

mod common;

use common::bot::{spawn_app, Backend, TestApp};
use common::fake_slack::Fault;
use serde_json::json;
use servo_sla_bot::store::{NewAlert, NewOutboxMessage};
use std::time::Duration;

async fn post(app: &TestApp, key: &str, text: &str) {
    app.state
        .enqueue(NewOutboxMessage::call(
            "chat.postMessage",
            json!({"channel": "C0ACMEALERT", "text": text}),
            key,
        ))
        .await
        .unwrap();
}

async fn waits_out_a_429_then_delivers_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack.fail_next(
        "chat.postMessage",
        vec![Fault::RateLimited {
            retry_after_secs: 1,
        }],
    );
    post(&app, "m1", "hello").await;
    let ok = app
        .slack
        .wait_for_calls("chat.postMessage", 1, Duration::from_secs(10))
        .await;
    app.drain_outbox().await;
    let all = app.slack.calls_to("chat.postMessage");
    assert_eq!(all.len(), 2, "one refused with 429, one delivered");
    assert_eq!(all[0].outcome, "429");
    assert_eq!(ok.len(), 1);
    assert!(
        all[1].at.duration_since(all[0].at) >= Duration::from_millis(950),
        "the retry waited Retry-After"
    );
    assert_eq!(app.slack.messages().len(), 1, "delivered exactly once");
    let sent = app.state.store.list_outbox(Some("sent")).await.unwrap();
    assert_eq!(sent.len(), 1);
    let limited = app
        .metric(r#"servo_sla_bot_slack_api_calls_total{method="chat.postMessage",result="rate_limited"}"#)
        .await;
    assert_eq!(limited, 1.0);
}

#[tokio::test]
async fn the_outbox_waits_out_a_429_then_delivers_once_on_sqlite() {
    waits_out_a_429_then_delivers_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_outbox_waits_out_a_429_then_delivers_once_on_postgres() {
    waits_out_a_429_then_delivers_once(Backend::Postgres).await;
}

/// A `Retry-After` is not waited out inside the call: waits add up (ten of
/// two minutes outlived the row's claim, and another replica sent
/// the message again). The row goes back at once, due when Slack says.
async fn a_long_retry_after_is_handed_back_to_the_row(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack.fail_next(
        "chat.postMessage",
        vec![Fault::RateLimited {
            retry_after_secs: 100,
        }],
    );
    let before = chrono::Utc::now();
    post(&app, "m1", "hello").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let row = loop {
        let rows = app.state.store.list_outbox(Some("pending")).await.unwrap();
        if let Some(r) = rows
            .into_iter()
            .find(|r| r.attempts > 0 && r.claimed_by.is_none())
        {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the row never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        row.next_attempt_at >= before + chrono::Duration::seconds(99),
        "due when Slack says: {row:#?}"
    );
    assert_eq!(app.slack.calls_to("chat.postMessage").len(), 1);
    assert!(app.slack.messages().is_empty());
}

#[tokio::test]
async fn a_long_retry_after_is_handed_back_to_the_row_on_sqlite() {
    a_long_retry_after_is_handed_back_to_the_row(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_long_retry_after_is_handed_back_to_the_row_on_postgres() {
    a_long_retry_after_is_handed_back_to_the_row(Backend::Postgres).await;
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_until_delivered() {
    let app = spawn_app(Backend::Sqlite).await;
    app.slack.fail_next(
        "chat.postMessage",
        vec![Fault::ServerError, Fault::Timeout(Duration::from_secs(3))],
    );
    post(&app, "m2", "after trouble").await;
    app.slack
        .wait_for_calls("chat.postMessage", 1, Duration::from_secs(15))
        .await;
    app.drain_outbox().await;
    let outcomes: Vec<String> = app
        .slack
        .calls_to("chat.postMessage")
        .iter()
        .map(|c| c.outcome.clone())
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(outcomes.last().map(String::as_str), Some("ok"));
    assert_eq!(app.slack.messages().len(), 1);
}

#[tokio::test]
async fn a_refusal_is_recorded_as_failed_and_not_retried() {
    let app = spawn_app(Backend::Sqlite).await;
    app.state
        .enqueue(NewOutboxMessage::call(
            "chat.update",
            json!({"channel": "C0ACMEALERT", "ts": "1.2", "text": "edit of nothing"}),
            "m3",
        ))
        .await
        .unwrap();
    app.drain_outbox().await;
    assert_eq!(app.slack.calls_to("chat.update").len(), 1);
    let failed = app.state.store.list_outbox(Some("failed")).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("message_not_found"));
}

#[tokio::test]
async fn a_thread_reply_waits_for_its_alert_post_and_goes_after_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let now = chrono::Utc::now();
    let (alert, _) = app
        .state
        .store
        .open_alert(
            NewAlert {
                tenant_id: "acme".into(),
                job_id: "job-1".into(),
                band: servo_sla_bot::domain::risk::RiskBand::Low,
                severity: None,
                eta: None,
                deadline: None,
                shown: None,
            },
            now,
        )
        .await
        .unwrap();
    // The root post is rate limited first; the reply must still come after it.
    app.slack.fail_next(
        "chat.postMessage",
        vec![Fault::RateLimited {
            retry_after_secs: 1,
        }],
    );
    let mut root = NewOutboxMessage::call(
        "chat.postMessage",
        json!({"channel": "C0ACMEALERT", "text": "root"}),
        "root",
    );
    root.ordering_key = Some(alert.id.clone());
    root.link_kind = Some("alert".into());
    root.link_id = Some(alert.id.clone());
    let mut reply = NewOutboxMessage::call("chat.postMessage", json!({"text": "reply"}), "reply");
    reply.ordering_key = Some(alert.id.clone());
    reply.thread_alert_id = Some(alert.id.clone());
    reply.thread_field = Some("thread_ts".into());
    app.state.enqueue(root).await.unwrap();
    app.state.enqueue(reply).await.unwrap();
    app.slack
        .wait_for_calls("chat.postMessage", 2, Duration::from_secs(10))
        .await;
    app.drain_outbox().await;
    let ok = app.slack.ok_calls_to("chat.postMessage");
    assert_eq!(ok[0].body["text"], "root");
    assert_eq!(ok[1].body["text"], "reply");
    let alert = app.state.store.get_alert(&alert.id).await.unwrap().unwrap();
    assert_eq!(ok[1].body["thread_ts"], alert.ts.clone().unwrap().as_str());
    assert_eq!(ok[1].body["channel"], "C0ACMEALERT");
}

#[tokio::test]
async fn messages_enqueued_before_a_restart_are_delivered_after_it_once() {
    let app = spawn_app(Backend::Sqlite).await;
    // Slack is down while the message is written.
    app.slack
        .fail_next("chat.postMessage", vec![Fault::ServerError; 3]);
    post(&app, "survivor", "still here").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.slack.calls_to("chat.postMessage").len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the three failures never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let app = app.restart().await;
    // The retry is scheduled a few seconds out; wake the worker until it is sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.slack.ok_calls_to("chat.postMessage").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered after restart"
        );
        app.state.outbox_wake.notify_one();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.drain_outbox().await;
    assert_eq!(app.slack.ok_calls_to("chat.postMessage").len(), 1);
    assert_eq!(app.slack.messages().len(), 1);
}

/// Slack posted it, but the answer was lost (the connection dropped after
/// Slack acted): the outbox finds the post by its metadata instead of
/// posting it again.
async fn a_lost_answer_posts_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack
        .fail_next("chat.postMessage", vec![Fault::LostAnswer]);
    post(&app, "m1", "hello").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let row = loop {
        let sent = app.state.store.list_outbox(Some("sent")).await.unwrap();
        if let Some(r) = sent.into_iter().next() {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(app.slack.messages().len(), 1, "posted exactly once");
    let outcomes: Vec<String> = app
        .slack
        .calls_to("chat.postMessage")
        .into_iter()
        .map(|c| c.outcome)
        .collect();
    assert_eq!(outcomes, ["lost_answer"], "never posted again");
    assert_eq!(app.slack.calls_to("conversations.history").len(), 1);
    let message = &app.slack.messages()[0];
    assert_eq!(
        row.response.as_ref().and_then(|r| r["ts"].as_str()),
        Some(message.ts.as_str()),
        "the row records the post it found"
    );
    assert_eq!(message.metadata["event_type"], "servo_sla_bot_outbox");
    assert_eq!(message.metadata["event_payload"]["outbox_key"], "m1");
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_not_posted_again_on_sqlite() {
    a_lost_answer_posts_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_not_posted_again_on_postgres() {
    a_lost_answer_posts_once(Backend::Postgres).await;
}

/// A thread reply and a DM whose answers were lost are found too: in the
/// thread's replies, and in the DM found through conversations.open.
#[tokio::test]
async fn a_lost_reply_and_a_lost_dm_are_found_where_they_went() {
    let app = spawn_app(Backend::Sqlite).await;
    post(&app, "root", "root").await;
    app.drain_outbox().await;
    let root = app.slack.messages()[0].clone();
    app.slack.fail_next(
        "chat.postMessage",
        vec![Fault::LostAnswer, Fault::LostAnswer],
    );
    app.state
        .enqueue(NewOutboxMessage::call(
            "chat.postMessage",
            json!({"channel": "C0ACMEALERT", "thread_ts": root.ts, "text": "a reply"}),
            "reply",
        ))
        .await
        .unwrap();
    app.state
        .enqueue(NewOutboxMessage::call(
            "chat.postMessage",
            json!({"channel": "U0ONCALL1", "text": "a page"}),
            "dm",
        ))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while app
        .state
        .store
        .list_outbox(Some("sent"))
        .await
        .unwrap()
        .len()
        < 3
    {
        assert!(std::time::Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.slack.messages().len(), 3, "each posted exactly once");
    assert_eq!(app.slack.calls_to("conversations.replies").len(), 1);
    assert_eq!(app.slack.calls_to("conversations.open").len(), 1);
}

/// A replica died holding the row after Slack accepted the post; its claim
/// runs out, and the next worker finds the post rather than posting again.
async fn a_dead_replicas_post_is_found(backend: Backend) {
    use servo_sla_bot::runtime::clock::{Clock, ManualClock};
    let clock = ManualClock::new(common::slack_ui::t0());
    let app = common::bot::spawn(common::bot::Spawn::new(backend).manual_clock(&clock)).await;
    let (stopped, slack) = app.stop_parts().await;
    let store = stopped.store().await;
    let payload = json!({"channel": "C0ACMEALERT", "text": "an alert"});
    store
        .enqueue(
            NewOutboxMessage::call("chat.postMessage", payload.clone(), "alert:a1:post"),
            clock.now(),
        )
        .await
        .unwrap();
    // A short claim: it runs out on the database's clock while the bot is
    // down (moving the bot's clock does not end it).
    let claimed = store
        .claim_due_outbox(
            "dead-replica",
            clock.now(),
            chrono::Duration::seconds(1),
            10,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // What the dead replica sent, and Slack accepted.
    let api = servo_sla_bot::slack::api::SlackApi::new(
        &slack.base_url(),
        &servo_sla_bot::domain::secret::Secret::new(slack.token()),
        Default::default(),
        std::sync::Arc::new(servo_sla_bot::runtime::metrics::Metrics::new()),
    )
    .unwrap();
    let mut sent = payload.clone();
    sent["metadata"] = json!({
        "event_type": servo_sla_bot::store::METADATA_EVENT,
        "event_payload": {"outbox_key": "alert:a1:post"}
    });
    let accepted = api.call("chat.postMessage", &sent).await.unwrap();
    store.close().await;
    clock.advance(chrono::Duration::minutes(6));
    let app = common::bot::start_again(stopped, slack).await;
    app.drain_outbox().await;
    assert_eq!(app.slack.messages().len(), 1, "exactly one message");
    let row = app
        .state
        .store
        .list_outbox(Some("sent"))
        .await
        .unwrap()
        .pop()
        .expect("the row is settled");
    assert_eq!(row.response.unwrap()["ts"], accepted["ts"]);
}

#[tokio::test]
async fn a_post_accepted_before_a_replica_died_is_found_after_its_claim_ran_out_on_sqlite() {
    a_dead_replicas_post_is_found(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_post_accepted_before_a_replica_died_is_found_after_its_claim_ran_out_on_postgres() {
    a_dead_replicas_post_is_found(Backend::Postgres).await;
}

/// Claims run on the database's clock, not each replica's: a replica whose
/// clock runs an hour ahead sees a message due, but another replica holds
/// it, so it does not send it a second time.
async fn a_clock_ahead_does_not_take_a_held_row(backend: Backend) {
    use servo_sla_bot::runtime::clock::ManualClock;
    let clock = ManualClock::new(chrono::Utc::now() + chrono::Duration::hours(1));
    let app = common::bot::spawn(common::bot::Spawn::new(backend).manual_clock(&clock)).await;
    let (stopped, slack) = app.stop_parts().await;
    let store = stopped.store().await;
    let now = chrono::Utc::now();
    store
        .enqueue(
            NewOutboxMessage::call(
                "chat.postMessage",
                json!({"channel": "C0ACMEALERT", "text": "held elsewhere"}),
                "held",
            ),
            now,
        )
        .await
        .unwrap();
    let held = store
        .claim_due_outbox("replica-a", now, chrono::Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    store.close().await;
    let app = common::bot::start_again(stopped, slack).await;
    let skewed = servo_sla_bot::workers::outbox_worker::OutboxWorker {
        pagerduty: app.state.pagerduty.clone(),
        store: app.state.store.clone(),
        slack: app.state.slack.clone(),
        clock: app.state.clock.clone(),
        metrics: app.state.metrics.clone(),
        worker_id: "replica-b".into(),
        permalinks: Default::default(),
        pacer: std::sync::Arc::new(servo_sla_bot::workers::outbox_worker::Pacer::new(
            10,
            Duration::from_secs(1),
        )),
    };
    let outcome = skewed.tick().await.unwrap();
    assert!(!outcome.did_work(), "{outcome:?}");
    assert!(app.slack.calls_to("chat.postMessage").is_empty());
    let row = app.state.store.list_outbox(Some("pending")).await.unwrap();
    assert_eq!(row[0].claimed_by.as_deref(), Some("replica-a"));
}

#[tokio::test]
async fn a_replica_whose_clock_runs_ahead_does_not_send_a_message_another_holds_on_sqlite() {
    a_clock_ahead_does_not_take_a_held_row(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_replica_whose_clock_runs_ahead_does_not_send_a_message_another_holds_on_postgres() {
    a_clock_ahead_does_not_take_a_held_row(Backend::Postgres).await;
}

/// Slack returns a thread's replies earliest first, a page at a time: the
/// look-up for a reply whose answer was lost reads on to the newest end of
/// a thread of over 200 replies and finds it there, instead of posting it a
/// second time.
#[tokio::test]
async fn a_lost_reply_at_the_end_of_a_thread_over_200_replies_is_found_not_posted_again() {
    let app = spawn_app(Backend::Sqlite).await;
    post(&app, "root", "root").await;
    app.drain_outbox().await;
    let root = app.slack.messages()[0].clone();
    // People (and the bot) have said a lot in the thread already.
    let api = servo_sla_bot::slack::api::SlackApi::new(
        &app.slack.base_url(),
        &servo_sla_bot::domain::secret::Secret::new(app.slack.token()),
        Default::default(),
        std::sync::Arc::new(servo_sla_bot::runtime::metrics::Metrics::new()),
    )
    .unwrap();
    for i in 0..250 {
        api.call(
            "chat.postMessage",
            &json!({"channel": "C0ACMEALERT", "thread_ts": root.ts, "text": format!("note {i}")}),
        )
        .await
        .unwrap();
    }
    app.slack
        .fail_next("chat.postMessage", vec![Fault::LostAnswer]);
    app.state
        .enqueue(NewOutboxMessage::call(
            "chat.postMessage",
            json!({"channel": "C0ACMEALERT", "thread_ts": root.ts, "text": "the late reply"}),
            "late-reply",
        ))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let row = loop {
        let sent = app.state.store.list_outbox(Some("sent")).await.unwrap();
        if let Some(r) = sent
            .into_iter()
            .find(|r| r.dedup_key.as_deref() == Some("late-reply"))
        {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let late: Vec<_> = app
        .slack
        .thread_replies(&root.channel, &root.ts)
        .into_iter()
        .filter(|m| m.text == "the late reply")
        .collect();
    assert_eq!(late.len(), 1, "posted exactly once");
    assert_eq!(
        row.response.as_ref().and_then(|r| r["ts"].as_str()),
        Some(late[0].ts.as_str()),
        "the row records the reply it found"
    );
}
