//! Interactions: buttons (`block_actions`) and modals (`view_submission`).
//! This module decodes the payload and dispatches on `action_id`; each button
//! has its own file. Every button checks who clicked, is audited, and decides
//! once in the store however often it is clicked.

pub mod acknowledge;
pub mod extension;

use crate::app::AppState;
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

fn str_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
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
            Ok(Click {
                user: user.clone(),
                action_id: str_at(a, "/action_id").ok_or(InteractionError::Malformed)?,
                value: str_at(a, "/value").unwrap_or_default(),
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
            // Answered in the ack itself: field errors keep the modal open.
            Ok(extension::submit(state, &payload).await)
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
        crate::alerts::ACK_ACTION => acknowledge::run(state, click).await,
        extension::REQUEST_ACTION => extension::open_request(state, click).await,
        crate::approvals::APPROVE_ACTION => {
            crate::approvals::decide(state, click, true, None).await
        }
        crate::approvals::REJECT_ACTION => extension::open_reject(state, click).await,
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
/// when there is one (no rate limit to share), else `chat.postEphemeral`.
pub async fn tell(state: &AppState, click: &Click, text: &str) {
    let result = match (&click.response_url, &click.channel) {
        (Some(url), _) => state
            .slack
            .respond(
                url,
                &json!({ "response_type": "ephemeral", "replace_original": false, "text": text }),
            )
            .await,
        (None, Some(channel)) => state
            .slack
            .call(
                "chat.postEphemeral",
                &json!({ "channel": channel, "user": click.user, "text": text }),
            )
            .await
            .map(|_| ()),
        (None, None) => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not tell the clicker");
    }
}
