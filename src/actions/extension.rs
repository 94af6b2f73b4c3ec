//! The extension buttons and their modals:
//! - **Request extension** on an alert opens a modal asking for the new
//!   deadline and a reason; an invalid value is shown as a field error.
//! - **Approve** in the request message decides at once (after Slack's confirm dialog).
//! - **Reject** opens a modal for an optional reason; submitting it decides.

use super::{tell, Click};
use crate::commands::grammar::{DeadlineSpec, JobId, DEADLINE_EXAMPLES};
use crate::context::AppState;
use crate::flows::approvals;
use serde_json::{json, Value};

pub use crate::flows::alerts::REQUEST_EXTENSION_ACTION as REQUEST_ACTION;
pub const REQUEST_VIEW: &str = "extension_request";
pub const REJECT_VIEW: &str = "extension_reject";

fn modal(callback_id: &str, title: &str, submit: &str, metadata: &Value, blocks: Value) -> Value {
    json!({
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata.to_string(),
        "title": { "type": "plain_text", "text": title },
        "submit": { "type": "plain_text", "text": submit },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": blocks,
    })
}

async fn open(state: &AppState, click: &Click, view: Value) {
    let Some(trigger) = &click.trigger_id else {
        tell(
            state,
            click,
            "Slack sent no trigger for a dialog; try the button again.",
        )
        .await;
        return;
    };
    if let Err(e) = state
        .slack
        .call(
            "views.open",
            &json!({ "trigger_id": trigger, "view": view }),
        )
        .await
    {
        tracing::warn!(error = %e, "views.open failed");
        tell(state, click, "The dialog could not open (Slack allows 3 seconds after a click); try the button again.").await;
    }
}

/// Request extension (on an alert): opens the request modal.
pub async fn open_request(state: &AppState, click: &Click) {
    let alert = match state.store.get_alert(&click.value).await {
        Ok(Some(a)) => a,
        Ok(None) => return tell(state, click, "This alert no longer exists.").await,
        Err(e) => {
            tracing::error!(error = %e, "reading an alert failed");
            return tell(
                state,
                click,
                ":warning: Something went wrong on our side; try again.",
            )
            .await;
        }
    };
    let metadata = json!({ "alert_id": alert.id, "channel": click.channel });
    let current = alert
        .deadline
        .map(crate::slack::render::date_token)
        .unwrap_or_else(|| "none".into());
    let blocks = json!([
        { "type": "section", "text": { "type": "mrkdwn", "text": format!("The current deadline is {current}. A stakeholder approves or rejects the request in the alert's thread; nothing changes in Servo until then.") } },
        { "type": "input", "block_id": "deadline", "label": { "type": "plain_text", "text": "New deadline" },
          "hint": { "type": "plain_text", "text": "+90m, +4h, +1d, or a time like 2026-12-01T18:00:00Z" },
          "element": { "type": "plain_text_input", "action_id": "value", "placeholder": { "type": "plain_text", "text": "+4h" } } },
        { "type": "input", "block_id": "reason", "optional": true, "label": { "type": "plain_text", "text": "Reason" },
          "element": { "type": "plain_text_input", "action_id": "value", "multiline": true, "max_length": 1000 } }
    ]);
    open(
        state,
        click,
        modal(
            REQUEST_VIEW,
            "Extend the deadline",
            "Request",
            &metadata,
            blocks,
        ),
    )
    .await;
}

/// Reject: checks the clicker may decide, then asks for an optional reason.
pub async fn open_reject(state: &AppState, click: &Click) {
    let approval = match state.store.get_approval(&click.value).await {
        Ok(Some(a)) => a,
        Ok(None) => return tell(state, click, "This request no longer exists.").await,
        Err(e) => {
            tracing::error!(error = %e, "reading a request failed");
            return tell(
                state,
                click,
                ":warning: Something went wrong on our side; try again.",
            )
            .await;
        }
    };
    match approvals::refusal(state, &click.user, &approval).await {
        Ok(None) => {}
        Ok(Some(why)) => {
            audit_refusal(state, click, &approval, &why).await;
            return tell(state, click, &why).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check the decider");
            return tell(
                state,
                click,
                "I could not check your membership with Slack just now; try again in a moment.",
            )
            .await;
        }
    }
    let metadata = json!({ "approval_id": approval.id, "channel": click.channel });
    let blocks = json!([
        { "type": "input", "block_id": "reason", "optional": true, "label": { "type": "plain_text", "text": "Reason (shown in the thread)" },
          "element": { "type": "plain_text_input", "action_id": "value", "multiline": true, "max_length": 1000 } }
    ]);
    open(
        state,
        click,
        modal(
            REJECT_VIEW,
            "Reject the extension",
            "Reject",
            &metadata,
            blocks,
        ),
    )
    .await;
}

async fn audit_refusal(
    state: &AppState,
    click: &Click,
    approval: &crate::store::Approval,
    why: &str,
) {
    let entry = crate::store::AuditEntry {
        at: state.clock.now(),
        tenant_id: Some(approval.tenant_id.clone()),
        actor: click.user.clone(),
        action: "reject_extension".into(),
        subject: Some(approval.job_id.clone()),
        outcome: format!("refused: {}", why.trim_start_matches(":no_entry: ")),
        detail: Some(json!({ "approval_id": approval.id })),
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

fn input(payload: &Value, block: &str) -> Option<String> {
    payload
        .pointer(&format!("/view/state/values/{block}/value/value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn field_error(block: &str, message: &str) -> Value {
    // Slack shows field errors under the input; keep them short and plain.
    let plain: String = message
        .replace(":warning: ", "")
        .chars()
        .take(300)
        .collect();
    json!({ "response_action": "errors", "errors": { block: plain } })
}

/// A `view_submission` for one of our modals. `Some(body)` answers the
/// submission (field errors keep the modal open); `None` closes it.
pub async fn submit(state: &AppState, payload: &Value) -> Option<Value> {
    let callback = payload
        .pointer("/view/callback_id")
        .and_then(Value::as_str)?;
    let user = payload
        .pointer("/user/id")
        .and_then(Value::as_str)?
        .to_string();
    let metadata: Value = payload
        .pointer("/view/private_metadata")
        .and_then(Value::as_str)
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null);
    let channel = metadata
        .get("channel")
        .and_then(Value::as_str)
        .map(str::to_string);
    match callback {
        REQUEST_VIEW => {
            let Some(alert_id) = metadata.get("alert_id").and_then(Value::as_str) else {
                return Some(field_error(
                    "deadline",
                    "This dialog lost track of its alert; open it again from the alert.",
                ));
            };
            let Some(text) = input(payload, "deadline") else {
                return Some(field_error(
                    "deadline",
                    &format!("Enter a new deadline. {DEADLINE_EXAMPLES}"),
                ));
            };
            let spec = match DeadlineSpec::parse(&text) {
                Ok(s) => s,
                Err(e) => return Some(field_error("deadline", &e.replace('`', ""))),
            };
            let alert = match state.store.get_alert(alert_id).await {
                Ok(Some(a)) => a,
                _ => return Some(field_error("deadline", "This alert no longer exists.")),
            };
            let Some(tenant) = state.config.tenant(&alert.tenant_id) else {
                return Some(field_error(
                    "deadline",
                    "This alert's tenant is no longer configured.",
                ));
            };
            let Ok(job) = JobId::parse(&alert.job_id) else {
                return Some(field_error("deadline", "This alert's job id is not valid."));
            };
            let reason = input(payload, "reason");
            match approvals::request(state, tenant, job, spec, reason, &user, "modal").await {
                Ok(confirmation) => {
                    if let Some(channel) = channel {
                        let click = Click {
                            user,
                            action_id: REQUEST_ACTION.into(),
                            value: alert.id.clone(),
                            channel: Some(channel),
                            message_ts: None,
                            response_url: None,
                            trigger_id: None,
                        };
                        tell(state, &click, &confirmation).await;
                    }
                    None
                }
                Err(why) => Some(field_error(
                    "deadline",
                    &why.replace('`', "").replace(":no_entry: ", ""),
                )),
            }
        }
        REJECT_VIEW => {
            let approval_id = metadata
                .get("approval_id")
                .and_then(Value::as_str)?
                .to_string();
            let click = Click {
                user,
                action_id: approvals::REJECT_ACTION.into(),
                value: approval_id,
                channel,
                message_ts: None,
                response_url: None,
                trigger_id: None,
            };
            decide(state, &click, false, input(payload, "reason")).await;
            None
        }
        _ => None,
    }
}

/// Approve or Reject, clicked in the thread (a rejection may carry a reason,
/// given in the Reject modal).
pub async fn decide(state: &AppState, click: &Click, approve: bool, reason: Option<String>) {
    match approvals::decide(state, &click.value, &click.user, approve, reason).await {
        Ok(None) => {}
        Ok(Some(text)) => tell(state, click, &text).await,
        Err(e) => {
            tracing::error!(error = %e, "extension decision failed");
            tell(
                state,
                click,
                ":warning: The decision could not be recorded; nothing changed. Try again in a moment.",
            )
            .await;
        }
    }
}
