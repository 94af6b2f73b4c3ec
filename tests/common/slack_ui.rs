//! Reading what the bot showed, and clicking as Slack sends clicks.
#![allow(dead_code)]

use super::bot::TestApp;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::{Clock, ManualClock};
use servo_sla_bot::workers::timer_worker::TimerWorker;

/// The start of the minute of the first call: a round "now" for manual
/// clocks. The same for every call in a test binary, so a test that crosses
/// a minute boundary still compares like with like.
pub fn t0() -> DateTime<Utc> {
    static T0: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *T0.get_or_init(|| Utc::now().duration_trunc(Duration::minutes(1)).unwrap())
}

/// The `value` of the button with this `action_id`, anywhere in a message,
/// including an option of an overflow menu (valued `<action_id>|<value>`).
pub fn button_value(body: &Value, action_id: &str) -> Option<String> {
    match body {
        Value::Object(m) => {
            if m.get("action_id").and_then(Value::as_str) == Some(action_id) {
                return m.get("value").and_then(Value::as_str).map(str::to_string);
            }
            if m.get("type").and_then(Value::as_str) == Some("overflow") {
                let found = m
                    .get("options")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.get("value").and_then(Value::as_str))
                    .find_map(|v| v.split_once('|').filter(|(id, _)| *id == action_id));
                if let Some((_, value)) = found {
                    return Some(value.to_string());
                }
            }
            m.values().find_map(|v| button_value(v, action_id))
        }
        Value::Array(a) => a.iter().find_map(|v| button_value(v, action_id)),
        _ => None,
    }
}

/// The action ids of every button in a message, in order, and then those of
/// its overflow menu's options.
pub fn buttons(body: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>, menu: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.get("type").and_then(Value::as_str) == Some("button") {
                    if let Some(id) = m.get("action_id").and_then(Value::as_str) {
                        out.push(id.to_string());
                    }
                }
                if m.get("type").and_then(Value::as_str) == Some("overflow") {
                    for o in m
                        .get("options")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some((id, _)) = o
                            .get("value")
                            .and_then(Value::as_str)
                            .and_then(|v| v.split_once('|'))
                        {
                            menu.push(id.to_string());
                        }
                    }
                }
                m.values().for_each(|x| walk(x, out, menu));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out, menu)),
            _ => {}
        }
    }
    let (mut out, mut menu) = (Vec::new(), Vec::new());
    walk(body, &mut out, &mut menu);
    out.extend(menu);
    out
}

/// A `block_actions` payload as Slack sends it for a click in `channel`:
/// `action` is the element clicked, the response URL is named `reply`.
fn block_actions(app: &TestApp, channel: &str, user: &str, reply: &str, action: Value) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel},
        "response_url": app.slack.response_url(reply),
        "trigger_id": format!("trigger-{user}"),
        "actions": [action]
    })
}

/// A `block_actions` payload for choosing an option of a message's overflow
/// menu, exactly as Slack sends it.
pub fn overflow_click_in(
    app: &TestApp,
    channel: &str,
    user: &str,
    action_id: &str,
    value: &str,
) -> Value {
    let option = json!({
        "text": {"type": "plain_text", "text": action_id},
        "value": format!("{action_id}|{value}")
    });
    block_actions(
        app,
        channel,
        user,
        &format!("{action_id}-{user}"),
        json!({"type": "overflow", "action_id": "alert_more", "selected_option": option}),
    )
}

/// A `block_actions` payload for a click in `channel`, with a response URL
/// named `{action_id}-{user}` (so tests can read what the clicker was told)
/// and a trigger id `trigger-{user}` for dialogs.
pub fn click_in(app: &TestApp, channel: &str, user: &str, action_id: &str, value: &str) -> Value {
    block_actions(
        app,
        channel,
        user,
        &format!("{action_id}-{user}"),
        json!({"action_id": action_id, "value": value, "type": "button"}),
    )
}

/// A click like [`click_in`], with a response URL of its own each time, so
/// that clicking again is answered on a fresh URL ([`told_all`] reads them all).
pub fn fresh_click_in(
    app: &TestApp,
    channel: &str,
    user: &str,
    action_id: &str,
    value: &str,
) -> Value {
    block_actions(
        app,
        channel,
        user,
        &format!("{action_id}-{user}-{}", uuid::Uuid::new_v4().simple()),
        json!({"action_id": action_id, "value": value, "type": "button"}),
    )
}

/// Everything the bot told people privately (response URLs and ephemeral
/// messages), one answer a line.
pub fn told_all(app: &TestApp) -> String {
    app.slack
        .calls()
        .iter()
        .filter(|c| c.method.starts_with("response_url:") || c.method == "chat.postEphemeral")
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The alert message as Slack shows it now (the last post or edit of it).
pub fn alert_message(app: &TestApp) -> Value {
    app.slack
        .calls()
        .into_iter()
        .rev()
        .find(|c| {
            c.is_ok()
                && (c.method == "chat.update"
                    || (c.method == "chat.postMessage"
                        && c.body.get("thread_ts").is_none_or(Value::is_null)
                        && c.body.get("attachments").is_some()))
        })
        .expect("an alert message")
        .body
}

/// Moves a manual clock on and fires what is due, as the timer worker would.
/// The app's own timer worker may claim a due step first: wait until nothing
/// due is left pending, then until the outbox is empty.
pub async fn advance(app: &TestApp, clock: &ManualClock, minutes: i64) {
    clock.advance(Duration::minutes(minutes));
    let timers = TimerWorker {
        state: app.state.clone(),
        worker_id: "test-timers".into(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        timers.tick().await.unwrap();
        let now = clock.now();
        let due = app
            .state
            .store
            .list_timers(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.status == "pending" && t.due_at <= now)
            .count();
        if due == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "due timers never fired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.drain_outbox().await;
}

/// The texts of every thread reply Slack holds.
pub fn thread_texts(app: &TestApp) -> Vec<String> {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_some())
        .map(|m| m.text)
        .collect()
}

/// A click on a button of the alerts' channel (`C0ACMEALERT`), handed to an
/// action as the interaction endpoint would decode it.
pub fn decoded_click(user: &str, action_id: &str, value: &str) -> servo_sla_bot::actions::Click {
    servo_sla_bot::actions::Click {
        user: user.into(),
        action_id: action_id.into(),
        value: value.into(),
        channel: Some("C0ACMEALERT".into()),
        message_ts: None,
        response_url: None,
        trigger_id: None,
    }
}
