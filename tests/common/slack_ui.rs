//! Reading what the bot showed, and clicking as Slack sends clicks.
#![allow(dead_code)]

use super::bot::TestApp;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{json, Value};

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

/// A `block_actions` payload for choosing an option of a message's overflow
/// menu, exactly as Slack sends it.
pub fn overflow_click_in(
    app: &TestApp,
    channel: &str,
    user: &str,
    action_id: &str,
    value: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel},
        "response_url": app.slack.response_url(&format!("{action_id}-{user}")),
        "trigger_id": format!("trigger-{user}"),
        "actions": [{
            "type": "overflow",
            "action_id": "alert_more",
            "selected_option": {
                "text": {"type": "plain_text", "text": action_id},
                "value": format!("{action_id}|{value}")
            }
        }]
    })
}

/// A `block_actions` payload for a click in `channel`, with a response URL
/// named `{action_id}-{user}` (so tests can read what the clicker was told)
/// and a trigger id `trigger-{user}` for dialogs.
pub fn click_in(app: &TestApp, channel: &str, user: &str, action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel},
        "response_url": app.slack.response_url(&format!("{action_id}-{user}")),
        "trigger_id": format!("trigger-{user}"),
        "actions": [{"action_id": action_id, "value": value, "type": "button"}]
    })
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
