//! Interactions: buttons (`block_actions`) and modals (`view_submission`).
//! This module decodes the payload and dispatches on `action_id`; each button
//! (or button and its dialog) has its own file: [`acknowledge`], [`escalate`],
//! [`extension`] (request, approve, reject), and under [`mitigations`] one
//! file per runbook mitigation; the alert menu's silences in [`silence`];
//! the message shortcuts on an alert are in [`shortcuts`]; the incident
//! channel's *Open incident channel* and *Archive channel* in
//! [`incident_channel`]. Every button checks who clicked, is audited, and decides
//! once in the store however often it is clicked. A button decodes the
//! click, checks who clicked and opens dialogs; what it decides is a flow
//! (`crate::flows`) that commits its decision with its effects.

pub mod acknowledge;
pub mod dialog;
pub mod escalate;
pub mod extension;
pub mod incident_channel;
pub mod mitigations;
pub mod rollup_ack;
pub mod shortcuts;
pub mod silence;

use crate::context::AppState;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    #[error("the interaction payload has no `type`")]
    NoType,
    #[error("a block_actions payload needs a user and at least one action with an action_id")]
    Malformed,
}

/// One button click, decoded.
#[derive(Clone, Debug)]
pub struct Click {
    pub user: String,
    pub action_id: String,
    pub value: String,
    pub channel: Option<String>,
    pub message_ts: Option<String>,
    pub response_url: Option<String>,
    pub trigger_id: Option<String>,
}

impl Click {
    /// A dialog's submission as a click of `action_id` on `value`, so its
    /// answers go where a click's would: ephemeral in the channel its
    /// `private_metadata` names (a DM when none).
    pub fn submitted(user: &str, action_id: &str, value: &str, metadata: &Value) -> Click {
        Click {
            user: user.to_string(),
            action_id: action_id.to_string(),
            value: value.to_string(),
            channel: metadata
                .get("channel")
                .and_then(Value::as_str)
                .map(str::to_string),
            message_ts: None,
            response_url: None,
            trigger_id: None,
        }
    }
}

fn str_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A modal's `private_metadata`, which the bot writes as JSON; `Null` when
/// it is missing or not JSON.
pub fn view_metadata(payload: &Value) -> Value {
    payload
        .pointer("/view/private_metadata")
        .and_then(Value::as_str)
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null)
}

/// Decodes the clicks of a `block_actions` payload.
pub fn clicks(payload: &Value) -> Result<Vec<Click>, InteractionError> {
    let user = str_at(payload, "/user/id").ok_or(InteractionError::Malformed)?;
    let actions = payload
        .get("actions")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or(InteractionError::Malformed)?;
    actions
        .iter()
        .map(|a| {
            let mut action_id = str_at(a, "/action_id").ok_or(InteractionError::Malformed)?;
            let mut value = str_at(a, "/value").unwrap_or_default();
            // An overflow menu's option stands for a button: `<action_id>|<value>`.
            if str_at(a, "/type").as_deref() == Some("overflow") {
                let picked =
                    str_at(a, "/selected_option/value").ok_or(InteractionError::Malformed)?;
                let (id, v) = picked.split_once('|').ok_or(InteractionError::Malformed)?;
                (action_id, value) = (id.to_string(), v.to_string());
            }
            Ok(Click {
                user: user.clone(),
                action_id,
                value,
                channel: str_at(payload, "/channel/id")
                    .or_else(|| str_at(payload, "/container/channel_id")),
                message_ts: str_at(payload, "/message/ts")
                    .or_else(|| str_at(payload, "/container/message_ts")),
                response_url: str_at(payload, "/response_url"),
                trigger_id: str_at(payload, "/trigger_id"),
            })
        })
        .collect()
}

/// How long a click may work before the HTTP ack goes back to Slack; the
/// work goes on after that and answers through `response_url` or the outbox.
const ACK_BUDGET: Duration = Duration::from_millis(2_500);

/// Handles one verified interaction. `Ok(None)` acks with an empty 200;
/// `Ok(Some(body))` acks with that body (e.g. modal field errors).
pub async fn handle(state: &AppState, payload: Value) -> Result<Option<Value>, InteractionError> {
    let kind = payload
        .get("type")
        .and_then(Value::as_str)
        .ok_or(InteractionError::NoType)?;
    match kind {
        "block_actions"
            if payload.pointer("/view/callback_id").and_then(Value::as_str)
                == Some(extension::REQUEST_VIEW) =>
        {
            // A choice changed inside the request modal: show what it means.
            let state = state.clone();
            let work = tokio::spawn(async move { extension::preview(&state, &payload).await });
            let _ = tokio::time::timeout(ACK_BUDGET, work).await;
            Ok(None)
        }
        "message_action" => {
            let state = state.clone();
            let work = tokio::spawn(async move { shortcuts::run(&state, &payload).await });
            let _ = tokio::time::timeout(ACK_BUDGET, work).await;
            Ok(None)
        }
        "block_actions" => {
            let clicks = clicks(&payload)?;
            let state = state.clone();
            let work = tokio::spawn(async move {
                for click in clicks {
                    run_click(&state, &click).await;
                }
            });
            // Usually done well within the budget; if not, it finishes in the background.
            let _ = tokio::time::timeout(ACK_BUDGET, work).await;
            Ok(None)
        }
        "view_submission" => {
            let callback = payload
                .pointer("/view/callback_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let user = str_at(&payload, "/user/id").unwrap_or_default();
            let metadata = view_metadata(&payload);
            match callback.as_str() {
                mitigations::PAUSE_VIEW => {
                    let jobs: Vec<String> = payload
                        .pointer("/view/state/values/jobs/value/selected_options")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|o| str_at(o, "/value")).collect())
                        .unwrap_or_default();
                    if jobs.is_empty() {
                        return Ok(Some(
                            json!({ "response_action": "errors", "errors": { "jobs": "Pick at least one job, or Cancel." } }),
                        ));
                    }
                    let state = state.clone();
                    let work = tokio::spawn(async move {
                        mitigations::confirm_pause(&state, &user, &metadata, jobs).await
                    });
                    let _ = tokio::time::timeout(ACK_BUDGET, work).await;
                    Ok(None)
                }
                mitigations::NOTIFY_VIEW => {
                    let impact = str_at(&payload, "/view/state/values/impact/value/value")
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty());
                    let Some(impact) = impact else {
                        return Ok(Some(
                            json!({ "response_action": "errors", "errors": { "impact": "Say in a line what the delay means for them." } }),
                        ));
                    };
                    let view_id = str_at(&payload, "/view/id")
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                    mitigations::confirm_notify(state, &user, &metadata, impact, &view_id).await;
                    Ok(None)
                }
                // Field errors keep the modal open; else made within the ack.
                silence::SILENCE_VIEW => {
                    Ok(silence::submit(state, &user, &metadata, &payload).await)
                }
                incident_channel::ENDED_VIEW => Ok(incident_channel::submit(state, &payload).await),
                // Answered in the ack itself: field errors keep the modal open.
                _ => Ok(extension::submit(state, &payload).await),
            }
        }
        "view_closed" => {
            // A cancelled confirmation dialog: nothing was changed; note who looked.
            tracing::info!(user = ?str_at(&payload, "/user/id"), view = ?payload.pointer("/view/callback_id"), "a dialog was cancelled; nothing changed");
            Ok(None)
        }
        other => {
            tracing::info!(kind = other, "interaction type the bot does not handle");
            Ok(None)
        }
    }
}

async fn run_click(state: &AppState, click: &Click) {
    tracing::info!(user = %click.user, action = %click.action_id, "button click");
    match click.action_id.as_str() {
        crate::flows::ids::ACK_ACTION => acknowledge::run(state, click).await,
        crate::flows::ids::REQUEST_EXTENSION_ACTION => extension::open_request(state, click).await,
        crate::flows::ids::APPROVE_ACTION => extension::decide(state, click, true, None).await,
        crate::flows::ids::REJECT_ACTION => extension::open_reject(state, click).await,
        crate::flows::ids::MONITOR_ACTION => mitigations::monitor(state, click).await,
        crate::flows::ids::STOP_MONITOR_ACTION => mitigations::stop_monitor(state, click).await,
        crate::flows::ids::DEFER_ACTION => mitigations::offer_pause(state, click, true).await,
        crate::flows::ids::PAUSE_LOWER_ACTION => {
            mitigations::offer_pause(state, click, false).await
        }
        crate::flows::ids::RESUME_PAUSED_ACTION => mitigations::resume_paused(state, click).await,
        crate::flows::ids::RECREATE_ACTION => mitigations::recreate(state, click).await,
        crate::flows::ids::SCALING_ACTION => mitigations::request_scaling(state, click).await,
        crate::flows::ids::SCALING_ACK_ACTION => mitigations::ack_scaling(state, click).await,
        crate::flows::ids::NOTIFY_ACTION => mitigations::offer_notify(state, click).await,
        crate::flows::ids::ESCALATE_ACTION => escalate::escalate_now(state, click).await,
        crate::flows::ids::ROLLUP_ACK_ACTION => rollup_ack::run(state, click).await,
        crate::flows::ids::SILENCE_ACTION => silence::run(state, click).await,
        crate::flows::ids::LIFT_SILENCE_ACTION => silence::lift(state, click).await,
        crate::flows::ids::INCIDENT_CHANNEL_ACTION => incident_channel::open(state, click).await,
        crate::flows::ids::ARCHIVE_CHANNEL_ACTION => incident_channel::archive(state, click).await,
        a if a.starts_with(crate::flows::ids::DISPOSITION_ACTION) => {
            incident_channel::ask(state, click).await
        }
        other => {
            tracing::warn!(action = other, "a button with no handler");
            tell(
                state,
                click,
                ":grey_question: That button does nothing yet in this version of the bot.",
            )
            .await;
        }
    }
}

/// An ephemeral message to the clicker: through the click's `response_url`
/// when there is one (no rate limit to share), else `chat.postEphemeral` in
/// the click's channel, else (a click in the App Home) a DM.
pub async fn tell(state: &AppState, click: &Click, text: &str) {
    answer(state, click, json!({ "text": text })).await;
}

/// Like [`tell`], with a whole message (text and blocks): what an ephemeral
/// answer carries, sent by the same route.
pub async fn answer(state: &AppState, click: &Click, mut message: Value) {
    if let Some(o) = message.as_object_mut() {
        o.remove("response_type");
    }
    let result = match (&click.response_url, &click.channel) {
        (Some(url), _) => {
            message["response_type"] = json!("ephemeral");
            message["replace_original"] = json!(false);
            state.slack.respond(url, &message).await
        }
        (None, channel) => {
            // A click in the App Home has no channel: the answer goes by DM.
            let method = match channel {
                Some(channel) => {
                    message["channel"] = json!(channel);
                    message["user"] = json!(click.user);
                    "chat.postEphemeral"
                }
                None => {
                    message["channel"] = json!(click.user);
                    "chat.postMessage"
                }
            };
            state.slack.call(method, &message).await.map(|_| ())
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not tell the clicker");
    }
}
