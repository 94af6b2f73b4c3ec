//! What the bot says in an alert's thread and writes to the audit log:
//! thread notes, replies, and the audit entry of an action on an alert.

use crate::context::AppState;
use crate::slack::render::RenderError;
use crate::store::{Alert, NewOutboxMessage, StoreError};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("escalation: {0}")]
    Escalation(String),
}

pub(crate) fn esc_err(e: anyhow::Error) -> AlertError {
    AlertError::Escalation(e.to_string())
}

fn thread_note(state: &AppState, text: &str) -> Result<Value, RenderError> {
    state
        .templates
        .render("thread_note", &json!({ "text": text }))
}

/// A reply in the alert's thread, ready to enqueue.
pub fn thread_message(
    state: &AppState,
    alert: &Alert,
    dedup_key: String,
    text: &str,
) -> Result<NewOutboxMessage, AlertError> {
    // The outbox fills in the channel and thread_ts from the alert when it sends.
    Ok(NewOutboxMessage {
        dedup_key: Some(dedup_key),
        method: "chat.postMessage".into(),
        payload: thread_note(state, text)?,
        ordering_key: Some(alert.id.clone()),
        thread_alert_id: Some(alert.id.clone()),
        thread_field: Some("thread_ts".into()),
        link_kind: None,
        link_id: None,
        not_before: None,
    })
}

/// Enqueues a reply in the alert's thread.
pub async fn reply_in_thread(
    state: &AppState,
    alert: &Alert,
    dedup_key: String,
    text: &str,
) -> Result<(), AlertError> {
    state
        .enqueue(thread_message(state, alert, dedup_key, text)?)
        .await?;
    Ok(())
}

/// Writes one audit entry about an alert's job: who did what, with what
/// outcome. A failure to audit is logged, and does not undo the action.
pub async fn audit(
    state: &AppState,
    alert: &Alert,
    actor: &str,
    action: &str,
    outcome: &str,
    detail: Value,
) {
    let entry = audit_entry(state, alert, actor, action, outcome, detail);
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

/// The audit entry [`audit`] writes, for a transition to commit with its
/// other effects.
pub fn audit_entry(
    state: &AppState,
    alert: &Alert,
    actor: &str,
    action: &str,
    outcome: &str,
    detail: Value,
) -> crate::store::AuditEntry {
    crate::store::AuditEntry {
        at: state.clock.now(),
        tenant_id: Some(alert.tenant_id.clone()),
        actor: actor.into(),
        action: action.into(),
        subject: Some(alert.job_id.clone()),
        outcome: outcome.into(),
        detail: Some(detail),
    }
}
