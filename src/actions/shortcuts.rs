//! The message shortcuts on an alert ("Job status", "Request extension"),
//! so nobody copies a job id out of a message. A shortcut works on the
//! alert's own message and on any reply in its thread; on another message
//! it says where it works.

use super::{answer, extension, tell, Click};
use crate::context::AppState;
use crate::domain::job_id::JobId;
use crate::store::Alert;
use serde_json::Value;

/// The manifest's `callback_id`s.
pub const STATUS_SHORTCUT: &str = "job_status";
pub const EXTENSION_SHORTCUT: &str = "request_extension";

/// The alert a message is, or is in the thread of.
async fn alert_of(state: &AppState, channel: &str, message: &Value) -> Option<Alert> {
    let ts = message.get("ts").and_then(Value::as_str);
    let thread = message.get("thread_ts").and_then(Value::as_str);
    for ts in [ts, thread].into_iter().flatten() {
        match state.store.alert_by_message(channel, ts).await {
            Ok(Some(a)) => return Some(a),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading an alert by its message failed");
                return None;
            }
        }
    }
    None
}

/// One `message_action` interaction.
pub async fn run(state: &AppState, payload: &Value) {
    let str_at = |p: &str| {
        payload
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(user), Some(channel), Some(callback)) = (
        str_at("/user/id"),
        str_at("/channel/id"),
        str_at("/callback_id"),
    ) else {
        tracing::info!("a message shortcut without a user, channel or callback_id");
        return;
    };
    let message = payload.get("message").cloned().unwrap_or(Value::Null);
    let alert = alert_of(state, &channel, &message).await;
    let mut click = Click {
        user: user.clone(),
        action_id: callback.clone(),
        value: alert.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
        channel: Some(channel),
        message_ts: message
            .get("ts")
            .and_then(Value::as_str)
            .map(str::to_string),
        response_url: str_at("/response_url"),
        trigger_id: str_at("/trigger_id"),
    };
    tracing::info!(user = %user, shortcut = %callback, "message shortcut");
    let Some(alert) = alert else {
        return tell(
            state,
            &click,
            ":grey_question: This message is not a backfill alert. Use the shortcut on an alert, or on a reply in its thread; `/backfill list at-risk` lists the jobs at risk.",
        )
        .await;
    };
    match callback.as_str() {
        STATUS_SHORTCUT => status(state, &click, &alert).await,
        EXTENSION_SHORTCUT => {
            click.action_id = crate::flows::ids::REQUEST_EXTENSION_ACTION.into();
            extension::open_request(state, &click).await
        }
        other => {
            tracing::warn!(shortcut = other, "a shortcut with no handler");
            tell(
                state,
                &click,
                ":grey_question: That shortcut does nothing in this version of the bot.",
            )
            .await
        }
    }
}

/// The job's status card, only to the person who asked. Anyone who can see
/// the alert can see its job's card, as with `/backfill status` in its channel.
async fn status(state: &AppState, click: &Click, alert: &Alert) {
    let (Some(tenant), Ok(id)) = (
        state.config.tenant(&alert.tenant_id),
        JobId::parse(&alert.job_id),
    ) else {
        return tell(state, click, "This alert's tenant is no longer configured.").await;
    };
    let card = crate::commands::status::card(state, tenant, id).await;
    answer(state, click, card).await;
}
