//! Socket Mode: the bot opens a websocket to (fake) Slack with its app-level
//! token and serves slash commands, buttons, modals and events over it, with
//! the same handlers and answers as HTTP mode; each envelope is acked within
//! 3 s; reconnects follow Slack's rules, and an envelope redelivered after a
//! lost ack is acked again but handled once.

mod common;

use chrono::{DateTime, Duration as Minutes, Utc};
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::fake_slack::{SocketAck, SocketEnvelope};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{button_value, t0};
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::ManualClock;
use servo_sla_bot::store::AuditEntry;
use std::time::Duration;
use uuid::Uuid;

const OPERATOR: &str = "U0PLATLEAD";
const ONCALL: &str = "U0ONCALL1";
const CHANNEL: &str = "C0ACMEALERT";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Http,
    Socket,
}

struct World {
    fx: ServoFixture,
    app: TestApp,
    job: Uuid,
    /// The manual clock's time.
    start: DateTime<Utc>,
}

/// The bot on `backend` (in Socket Mode when `socket`), a Servo job at High
/// risk, and its alert posted with its buttons; in Socket Mode, connected.
async fn world(backend: Backend, socket: bool) -> World {
    world_at(backend, socket, t0()).await
}

/// The same, with the clock at `start` (so two worlds can be compared).
async fn world_at(backend: Backend, socket: bool, start: DateTime<Utc>) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(start);
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    if socket {
        spec = spec.socket_mode();
    }
    let app = spawn(spec).await;
    app.slack.set_usergroup("S0ONCALL", &[ONCALL]);
    // ETA 60 min past a deadline 60 min away: High.
    let job = fx
        .job(JobSpec {
            deadline: Some(start + Minutes::minutes(60)),
            eta: Some(start + Minutes::minutes(120)),
            heartbeat: Some(start),
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    if socket {
        app.slack.wait_for_socket_connection(1, WAIT).await;
        wait_for_socket_state(&app, "connected").await;
    }
    World {
        fx,
        app,
        job,
        start,
    }
}

/// The fields Slack sends for `/backfill <text>`, as HTTP form pairs and as
/// the JSON object a `slash_commands` envelope carries.
fn slash_fields(app: &TestApp, text: &str, user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("command", "/backfill".into()),
        ("text", text.into()),
        ("user_id", user.into()),
        ("user_name", "tester".into()),
        ("channel_id", CHANNEL.into()),
        ("channel_name", "alerts".into()),
        ("team_id", "T0TEAM".into()),
        (
            "response_url",
            app.slack.response_url(&Uuid::new_v4().simple().to_string()),
        ),
        ("trigger_id", "1337.42.abcd".into()),
        ("api_app_id", "A0TESTAPP".into()),
    ]
}

/// `/backfill <text>` by `user`, the way `via` delivers it; the answer Slack
/// gets (the HTTP 200's body, or the ack's payload). Socket acks are checked
/// to arrive within Slack's 3 seconds.
async fn slash(app: &TestApp, via: Via, text: &str, user: &str) -> Option<Value> {
    let fields = slash_fields(app, text, user);
    match via {
        Via::Http => {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let answer = app
                .post_signed(
                    "/slack/commands",
                    "application/x-www-form-urlencoded",
                    &common::bot::form(&pairs),
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            (!answer.body.is_empty()).then(|| answer.json())
        }
        Via::Socket => {
            let object: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect();
            let ack = app
                .slack
                .deliver(&SocketEnvelope::slash_command(Value::Object(object)))
                .await;
            ack.payload
        }
    }
}

/// An interaction payload, delivered as `via` delivers it; the answer.
async fn interact(app: &TestApp, via: Via, payload: &Value) -> Option<Value> {
    match via {
        Via::Http => {
            let answer = app.interact(payload).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            (!answer.body.is_empty()).then(|| answer.json())
        }
        Via::Socket => {
            app.slack
                .deliver(&SocketEnvelope::interactive(payload.clone()))
                .await
                .payload
        }
    }
}

/// A click on the alert's button `action_id` by `user`.
fn click(app: &TestApp, user: &str, action_id: &str) -> Value {
    let alert = app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none() && m.channel == CHANNEL)
        .expect("the alert message");
    let value = button_value(&alert.attachments, action_id)
        .or_else(|| button_value(&alert.blocks, action_id))
        .unwrap_or_else(|| panic!("no {action_id} button on the alert"));
    json!({
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": CHANNEL},
        "message": {"ts": alert.ts},
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": alert.ts},
        "response_url": app.slack.response_url(&format!("{action_id}-{user}")),
        "trigger_id": format!("trigger-{user}"),
        "actions": [{"action_id": action_id, "value": value, "type": "button"}]
    })
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let answer = app.get("/readyz").await;
    (answer.status, answer.json())
}

async fn wait_for_socket_state(app: &TestApp, want: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, v) = readyz(app).await;
        if v["socket"] == want {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("/readyz never said socket {want:?}; last: {v}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What people did, from the audit log: (actor, action, outcome), oldest
/// first (the bot's own entries, such as pages, left out).
async fn audit(app: &TestApp) -> Vec<(String, String, String)> {
    let mut entries: Vec<AuditEntry> = app.state.store.list_audit(None, 100).await.unwrap();
    entries.reverse();
    entries
        .into_iter()
        .filter(|e| e.actor != "bot")
        .map(|e| (e.actor, e.action, e.outcome))
        .collect()
}

/// Edits of the alert that say it was acknowledged.
fn acknowledged_edits(app: &TestApp) -> usize {
    app.slack
        .ok_calls_to("chat.update")
        .iter()
        .filter(|c| c.body.to_string().contains("Acknowledged by <@U0PLATLEAD>"))
        .count()
}

fn texts(app: &TestApp, method: &str) -> Vec<String> {
    app.slack
        .ok_calls_to(method)
        .iter()
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ------------------------------------------------------------------ serving

#[tokio::test]
async fn the_bot_connects_with_its_app_token_and_readyz_reports_the_socket() {
    let w = world(Backend::Sqlite, true).await;
    let opens = w.app.slack.calls_to("apps.connections.open");
    assert_eq!(opens.len(), 1);
    assert!(opens[0].is_ok(), "{:?}", opens[0]);
    let (status, v) = readyz(&w.app).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["socket"], "connected");
}

#[tokio::test]
async fn slash_commands_answer_the_same_over_the_socket_as_over_http() {
    let w = world(Backend::Sqlite, true).await;
    // Both modes at once, as during a migration.
    for text in [
        "help".to_string(),
        "frobnicate now".to_string(),
        format!("status {}", w.job),
        "list at-risk".to_string(),
        "status 00000000-0000-0000-0000-000000000000".to_string(),
    ] {
        let http = slash(&w.app, Via::Http, &text, OPERATOR).await;
        let socket = slash(&w.app, Via::Socket, &text, OPERATOR).await;
        assert!(http.is_some(), "/backfill {text} answers");
        assert_eq!(socket, http, "/backfill {text}");
    }
    let help = slash(&w.app, Via::Socket, "help", OPERATOR).await.unwrap();
    assert!(help["text"].as_str().unwrap().contains("Usage: /backfill"));
    let status = slash(&w.app, Via::Socket, &format!("status {}", w.job), OPERATOR)
        .await
        .unwrap();
    assert!(status.to_string().contains(&w.job.to_string()), "{status}");
}

#[tokio::test]
async fn a_slash_command_that_changes_servo_over_the_socket_acts_like_over_http() {
    let mut effects = Vec::new();
    let start = t0();
    for via in [Via::Http, Via::Socket] {
        let w = world_at(Backend::Sqlite, via == Via::Socket, start).await;
        let answer = slash(&w.app, via, &format!("pause {}", w.job), OPERATOR)
            .await
            .expect("an answer");
        let again = slash(&w.app, via, &format!("pause {}", w.job), OPERATOR)
            .await
            .expect("an answer");
        w.app.drain_outbox().await;
        assert_eq!(w.fx.job_field::<String>(w.job, "state").await, "paused");
        assert_eq!(w.fx.job_field::<i32>(w.job, "version").await, 2);
        let answers = [answer, again].map(|a| {
            a["text"]
                .as_str()
                .unwrap()
                .replace(&w.job.to_string(), "JOB")
        });
        effects.push((answers, audit(&w.app).await));
    }
    assert_eq!(effects[0], effects[1], "HTTP vs Socket Mode");
    assert!(effects[1].0[1].contains("Cannot pause job in state 'paused'"));
}

#[tokio::test]
async fn a_button_click_over_the_socket_has_the_same_effect_as_over_http() {
    let mut effects = Vec::new();
    let start = t0();
    for via in [Via::Http, Via::Socket] {
        let w = world_at(Backend::Sqlite, via == Via::Socket, start).await;
        let (operator, oncall) = (
            click(&w.app, OPERATOR, "alert_ack"),
            click(&w.app, ONCALL, "alert_ack"),
        );
        let first = interact(&w.app, via, &operator).await;
        // A second operator clicks the (now stale) button: told who was first.
        let second = interact(&w.app, via, &oncall).await;
        w.app.drain_outbox().await;
        assert_eq!((&first, &second), (&None, &None), "clicks ack with nothing");
        let mut edits = texts(&w.app, "chat.update");
        edits.sort();
        assert_eq!(acknowledged_edits(&w.app), 1, "{edits:?}");
        let told = texts(&w.app, &format!("response_url:alert_ack-{ONCALL}"));
        assert_eq!(told.len(), 1);
        assert!(told[0].contains("u0platlead already acknowledged"));
        effects.push((edits, told, audit(&w.app).await));
    }
    assert_eq!(effects[0], effects[1], "HTTP vs Socket Mode");
}

#[tokio::test]
async fn a_modal_submission_over_the_socket_answers_like_http_and_requests_the_extension() {
    let w = world(Backend::Sqlite, true).await;
    let opened = interact(
        &w.app,
        Via::Socket,
        &click(&w.app, OPERATOR, "extension_request"),
    )
    .await;
    assert_eq!(opened, None);
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1, "the click opened the request modal");
    assert_eq!(views[0].trigger_id, format!("trigger-{OPERATOR}"));
    let submit = |deadline: &str| {
        json!({
            "type": "view_submission",
            "user": {"id": OPERATOR},
            "view": {
                "id": views[0].id,
                "callback_id": "extension_request",
                "private_metadata": views[0].view["private_metadata"],
                "state": {"values": {
                    "deadline": {"value": {"type": "plain_text_input", "value": deadline}},
                    "reason": {"value": {"type": "plain_text_input", "value": "vendor outage"}}
                }}
            }
        })
    };
    // Field errors come back in the ack, exactly as in the HTTP answer.
    let socket = interact(&w.app, Via::Socket, &submit("soon")).await;
    let http = interact(&w.app, Via::Http, &submit("soon")).await;
    assert_eq!(socket, http);
    let errors = socket.expect("field errors");
    assert_eq!(errors["response_action"], "errors", "{errors}");
    assert!(errors["errors"]["deadline"]
        .as_str()
        .unwrap()
        .contains("is not a deadline"));
    assert!(w
        .app
        .state
        .store
        .list_approvals(None, None)
        .await
        .unwrap()
        .is_empty());

    // A valid submission closes the modal and files the request.
    assert_eq!(interact(&w.app, Via::Socket, &submit("+2h")).await, None);
    let pending = w
        .app
        .state
        .store
        .pending_approval_for_job("acme", &w.job.to_string())
        .await
        .unwrap()
        .expect("a pending extension request");
    assert_eq!(pending.proposed_deadline, w.start + Minutes::minutes(180));
    assert_eq!(pending.reason.as_deref(), Some("vendor outage"));
}

#[tokio::test]
async fn an_event_over_the_socket_is_acked_and_recorded_once() {
    let w = world(Backend::Sqlite, true).await;
    let event = json!({
        "type": "event_callback",
        "event_id": "Ev0SOCKET",
        "event": {"type": "app_home_opened", "user": OPERATOR},
    });
    let ack = w
        .app
        .slack
        .deliver(&SocketEnvelope::events_api(event.clone()))
        .await;
    assert_eq!(ack.payload, None);
    // Slack retries the event itself in a new envelope: acked, not handled again.
    w.app
        .slack
        .deliver(&SocketEnvelope::events_api(event))
        .await;
    let first = w
        .app
        .state
        .store
        .first_delivery("event:Ev0SOCKET", chrono::Utc::now())
        .await
        .unwrap();
    assert!(!first, "the event was recorded on its first delivery");
}

#[tokio::test]
async fn a_malformed_envelope_is_acked_and_changes_nothing() {
    let w = world(Backend::Sqlite, true).await;
    let ack = w
        .app
        .slack
        .deliver(&SocketEnvelope::slash_command(json!({"text": "pause"})))
        .await;
    assert_eq!(ack.payload, None, "no answer, but acked so Slack stops");
    let ack = w
        .app
        .slack
        .deliver(&SocketEnvelope::interactive(json!({"no": "type"})))
        .await;
    assert_eq!(ack.payload, None);
    assert!(audit(&w.app).await.is_empty());
}

#[tokio::test]
async fn the_bot_answers_slacks_pings() {
    let w = world(Backend::Sqlite, true).await;
    w.app.slack.ping_socket();
    let deadline = std::time::Instant::now() + WAIT;
    while w.app.slack.socket_pongs() == 0 {
        assert!(std::time::Instant::now() < deadline, "no pong");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// --------------------------------------------------------------- reconnects

#[tokio::test]
async fn a_refresh_moves_to_a_new_connection_without_losing_or_doubling_an_action() {
    let w = world(Backend::Sqlite, true).await;
    let slack = &w.app.slack;
    // A click arrives, and Slack asks to move right behind it.
    let click = SocketEnvelope::interactive(click(&w.app, OPERATOR, "alert_ack"));
    slack.send_envelope(&click);
    assert_eq!(slack.send_disconnect("refresh_requested"), 1);
    // The click is acked where it came in, and the bot moves to a new connection.
    let ack = slack
        .wait_for_ack(&click.envelope_id, 1, WAIT)
        .await
        .expect("the click is acked");
    assert_eq!(ack.connection, 1);
    assert!(ack.after <= Duration::from_secs(3), "{:?}", ack.after);
    slack.wait_for_socket_connection(2, WAIT).await;
    slack.wait_for_socket_closed(1, WAIT).await;
    assert_eq!(
        slack.socket_connections_closed_by_bot(),
        vec![1],
        "the old connection is closed politely once the new one is up"
    );
    assert_eq!(slack.socket_connections_opened(), 2);
    assert_eq!(
        slack.socket_handshakes_refused(),
        0,
        "a fresh URL each time"
    );
    // The new connection serves.
    let help = slack
        .deliver(&SocketEnvelope::slash_command(json!({
            "command": "/backfill", "text": "help", "user_id": OPERATOR, "channel_id": CHANNEL
        })))
        .await;
    assert_eq!(help.connection, 2);
    assert!(help.payload.is_some());
    w.app.drain_outbox().await;
    assert_eq!(acknowledged_edits(&w.app), 1, "acknowledged once");
    assert_eq!(
        audit(&w.app).await,
        vec![(OPERATOR.into(), "acknowledge".into(), "ok".into())]
    );
    assert_eq!(slack.socket_acks_for(&click.envelope_id).len(), 1);
    let (status, v) = readyz(&w.app).await;
    assert_eq!((status, v["socket"].as_str()), (200, Some("connected")));
}

#[tokio::test]
async fn a_dropped_socket_is_reopened_after_a_backoff_and_serves_again() {
    let w = world(Backend::Sqlite, true).await;
    let slack = &w.app.slack;
    let dropped_at = std::time::Instant::now();
    slack.drop_socket();
    wait_for_socket_state(&w.app, "reconnecting").await;
    let (status, v) = readyz(&w.app).await;
    assert_eq!((status, &v["status"]), (503, &json!("degraded")), "{v}");
    slack.wait_for_socket_connection(2, WAIT).await;
    assert!(
        dropped_at.elapsed() >= Duration::from_millis(500),
        "reconnected after {:?}: no backoff",
        dropped_at.elapsed()
    );
    wait_for_socket_state(&w.app, "connected").await;
    assert_eq!(
        slack.calls_to("apps.connections.open").len(),
        2,
        "a new URL"
    );
    let answer = slash(&w.app, Via::Socket, "help", OPERATOR).await;
    assert!(answer.is_some());
}

/// Slack did not get the ack of a `/backfill pause` (the socket died as the
/// ack was written), so it redelivers the envelope on the next connection:
/// acked again with the same answer, and the job is paused once.
async fn a_lost_ack_is_redelivered_after_reconnect_and_handled_once(backend: Backend) {
    let w = world(backend, true).await;
    let slack = &w.app.slack;
    let fields: serde_json::Map<String, Value> =
        slash_fields(&w.app, &format!("pause {}", w.job), OPERATOR)
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect();
    let pause = SocketEnvelope::slash_command(Value::Object(fields));
    slack.lose_next_socket_ack();
    slack.send_envelope(&pause);
    slack.wait_for_socket_connection(2, WAIT).await;
    let lost: Vec<SocketAck> = slack.lost_socket_acks();
    assert_eq!(lost.len(), 1, "the bot acked, but Slack never got it");
    assert!(slack.socket_acks_for(&pause.envelope_id).is_empty());
    w.app.drain_outbox().await;
    let calls_before = slack.calls().len();
    let audit_before = audit(&w.app).await;

    let again = slack.deliver(&pause.redelivery()).await;
    assert_eq!(again.connection, 2);
    assert_eq!(
        again.payload, lost[0].payload,
        "the redelivery is acked with the first answer"
    );
    assert!(again.payload.as_ref().unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("paused"));
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(w.job, "state").await, "paused");
    assert_eq!(
        w.fx.job_field::<i32>(w.job, "version").await,
        2,
        "paused once"
    );
    assert_eq!(audit(&w.app).await, audit_before, "nothing handled again");
    assert_eq!(
        audit_before,
        vec![(OPERATOR.into(), "pause".into(), "ok".into())]
    );
    assert_eq!(slack.calls().len(), calls_before, "no Slack call either");
    let redelivered = w
        .app
        .metric(
            r#"servo_sla_bot_socket_envelopes_total{type="slash_commands",outcome="redelivered"}"#,
        )
        .await;
    assert_eq!(redelivered, 1.0);
}

#[tokio::test]
async fn a_lost_ack_is_redelivered_after_reconnect_and_handled_once_on_sqlite() {
    a_lost_ack_is_redelivered_after_reconnect_and_handled_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_lost_ack_is_redelivered_after_reconnect_and_handled_once_on_postgres() {
    a_lost_ack_is_redelivered_after_reconnect_and_handled_once(Backend::Postgres).await;
}

/// A click whose ack is lost, redelivered: the acknowledgement is not
/// attempted again (no "already acknowledged" for the same click).
async fn a_redelivered_click_is_not_clicked_twice(backend: Backend) {
    let w = world(backend, true).await;
    let slack = &w.app.slack;
    let click = SocketEnvelope::interactive(click(&w.app, OPERATOR, "alert_ack"));
    slack.lose_next_socket_ack();
    slack.send_envelope(&click);
    slack.wait_for_socket_connection(2, WAIT).await;
    let again = slack.deliver(&click.redelivery()).await;
    assert_eq!(again.payload, None);
    w.app.drain_outbox().await;
    assert_eq!(
        audit(&w.app).await,
        vec![(OPERATOR.into(), "acknowledge".into(), "ok".into())]
    );
    assert_eq!(acknowledged_edits(&w.app), 1);
    assert!(
        texts(&w.app, &format!("response_url:alert_ack-{OPERATOR}"))
            .iter()
            .all(|t| !t.contains("already")),
        "the clicker is not told their own click came first"
    );
}

#[tokio::test]
async fn a_redelivered_click_is_not_clicked_twice_on_sqlite() {
    a_redelivered_click_is_not_clicked_twice(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_redelivered_click_is_not_clicked_twice_on_postgres() {
    a_redelivered_click_is_not_clicked_twice(Backend::Postgres).await;
}

#[tokio::test]
async fn link_disabled_stops_reconnecting_and_readyz_says_so() {
    let w = world(Backend::Sqlite, true).await;
    let slack = &w.app.slack;
    slack.send_disconnect("link_disabled");
    wait_for_socket_state(&w.app, "link_disabled").await;
    slack.wait_for_socket_closed(1, WAIT).await;
    // Long enough for several reconnects, had the bot tried.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(slack.socket_connections_opened(), 1);
    assert_eq!(slack.calls_to("apps.connections.open").len(), 1);
    let (status, v) = readyz(&w.app).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["socket"], "link_disabled");
    // HTTP keeps serving.
    assert_eq!(w.app.slash("help", OPERATOR, CHANNEL).await.status, 200);
}

#[tokio::test]
async fn a_wrong_app_token_never_connects_and_readyz_is_degraded() {
    let fx = ServoFixture::start().await;
    let spec = Spawn::new(Backend::Sqlite)
        .servo_url(&fx.bot_url())
        .socket_mode();
    let mut app = spawn(spec).await;
    app.slack.wait_for_socket_connection(1, WAIT).await;
    // Restart with a token the fake does not know.
    app.settings.env.slack_app_token =
        Some(servo_sla_bot::domain::secret::Secret::new("xapp-1-wrong"));
    let app = app.restart().await;
    let deadline = std::time::Instant::now() + WAIT;
    let refused = loop {
        let refused: Vec<_> = app
            .slack
            .calls_to("apps.connections.open")
            .into_iter()
            .filter(|c| c.outcome == "invalid_auth")
            .collect();
        if !refused.is_empty() {
            break refused;
        }
        assert!(std::time::Instant::now() < deadline, "no refused open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!refused.is_empty());
    let (status, v) = readyz(&app).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        matches!(v["socket"].as_str(), Some("connecting" | "reconnecting")),
        "{v}"
    );
    assert_eq!(
        app.slack.socket_connections_opened(),
        1,
        "only the first app's"
    );
}

#[tokio::test]
async fn stopping_the_bot_closes_the_socket_politely() {
    let w = world(Backend::Sqlite, true).await;
    let World { app, fx, .. } = w;
    let (_db, slack) = app.stop().await;
    slack.wait_for_socket_closed(1, WAIT).await;
    assert_eq!(slack.socket_connections_closed_by_bot(), vec![1]);
    drop(fx);
}

#[tokio::test]
async fn http_mode_is_the_default_and_reports_the_socket_disabled() {
    let w = world(Backend::Sqlite, false).await;
    let (status, v) = readyz(&w.app).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["socket"], "disabled");
    assert!(w.app.slack.calls_to("apps.connections.open").is_empty());
    assert_eq!(w.app.slack.socket_connections_opened(), 0);
}

#[test]
fn the_socket_mode_manifest_is_the_http_one_without_request_urls() {
    // Comments and URLs aside, the two manifests must not drift apart.
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| !l.contains("url:"))
            .map(str::to_string)
            .collect()
    };
    let http = include_str!("../manifest.yml");
    let socket = include_str!("../manifest.socket-mode.yml");
    assert!(http.contains("socket_mode_enabled: false"));
    assert!(socket.contains("socket_mode_enabled: true"));
    assert!(!socket.contains("url:"), "Socket Mode needs no request URL");
    assert_eq!(
        strip(&http.replace("socket_mode_enabled: false", "socket_mode_enabled: true")),
        strip(socket)
    );
}
