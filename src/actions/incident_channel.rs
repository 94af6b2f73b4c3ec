//! The alert menu's *Open incident channel*, the timeline's *Archive
//! channel* and the resolved thread's *How did it end?* (issue 38). Operators only, audited; what they decide is in
//! [`crate::flows::incident_channels`], once however often they are clicked.

use super::dialog::open_dialog;
use super::mitigations::authorise;
use super::{tell, Click};
use crate::context::AppState;
use crate::flows::alert_view::ended_line;
use crate::flows::incident_channels::{archive as archive_flow, open as open_flow};
use crate::flows::incident_channels::{
    opened_words, paged_people, record_how_it_ended, ArchiveOutcome, ENDINGS,
};
use crate::store::Alert;
use serde_json::{json, Value};

/// *Open incident channel* in the alert's menu.
pub async fn open(state: &AppState, click: &Click) {
    let Some((alert, _)) = authorise(
        state,
        &click.user,
        &click.value,
        "incident_channel_open",
        Some(click),
    )
    .await
    else {
        return;
    };
    match open_flow(state, &alert, &click.user, None).await {
        Ok(outcome) => tell(state, click, &opened_words(&outcome)).await,
        Err(e) => {
            tracing::error!(error = %e, "opening an incident channel failed");
            tell(
                state,
                click,
                ":warning: Something went wrong on our side; no channel was opened. Try again.",
            )
            .await;
        }
    }
}

/// *Archive channel* under the timeline.
pub async fn archive(state: &AppState, click: &Click) {
    let Some((alert, _)) = authorise(
        state,
        &click.user,
        &click.value,
        "incident_channel_archive",
        Some(click),
    )
    .await
    else {
        return;
    };
    let text = match archive_flow(state, &alert, &click.user).await {
        Ok(ArchiveOutcome::Archived(_)) => ":file_cabinet: Archiving this channel.".to_string(),
        Ok(ArchiveOutcome::Already(by)) => format!(
            "This channel was archived already{}; nothing changed.",
            by.map(|b| format!(" by <@{b}>")).unwrap_or_default()
        ),
        Ok(ArchiveOutcome::NoChannel) => "This alert has no incident channel to archive.".into(),
        Ok(ArchiveOutcome::Linked(c)) => format!(
            "<#{c}> was linked to this alert, not opened by the bot, so the bot does not archive it; nothing changed. Archive it in Slack if you mean to."
        ),
        Err(e) => {
            tracing::error!(error = %e, "archiving an incident channel failed");
            ":warning: Something went wrong on our side; nothing was archived. Try again.".into()
        }
    };
    tell(state, click, &text).await;
}

/// The callback id of the *How did it end?* dialog.
pub const ENDED_VIEW: &str = "alert_how_it_ended";

/// May `user` say how the alert's episode ended: its tenant's operators
/// and the people paged on its path. A refusal is audited and told.
async fn may_answer(state: &AppState, alert: &Alert, user: &str, click: &Click) -> bool {
    let operator = match state.config.tenant(&alert.tenant_id) {
        Some(t) => state
            .directory
            .is_among(user, &t.operators)
            .await
            .unwrap_or(false),
        None => false,
    };
    if operator || paged_people(state, alert).await.iter().any(|u| u == user) {
        return true;
    }
    crate::flows::thread::audit(
        state,
        alert,
        user,
        "how_it_ended",
        "refused: neither an operator nor paged",
        json!({ "alert_id": alert.id }),
    )
    .await;
    tell(
        state,
        click,
        ":no_entry: Only the tenant's operators and the people paged for this alert say how it ended.",
    )
    .await;
    false
}

/// A choice under *How did it end?*: the dialog, with that choice picked
/// and room for a note.
pub async fn ask(state: &AppState, click: &Click) {
    let Some((alert_id, choice)) = click.value.rsplit_once(':') else {
        tell(
            state,
            click,
            "That button is malformed; nothing was recorded.",
        )
        .await;
        return;
    };
    let alert = match state.store.get_alert(alert_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            tell(state, click, "This alert no longer exists.").await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "reading an alert failed");
            tell(
                state,
                click,
                ":warning: Something went wrong on our side; nothing was recorded. Try again.",
            )
            .await;
            return;
        }
    };
    if !may_answer(state, &alert, &click.user, click).await {
        return;
    }
    if let Ok(Some(d)) = state.store.disposition(&alert.id).await {
        tell(
            state,
            click,
            &format!("{}. Nothing changed: it is answered once.", ended_line(&d)),
        )
        .await;
        return;
    }
    let options: Vec<Value> = ENDINGS
        .iter()
        .map(|(v, l)| json!({ "text": { "type": "plain_text", "text": l }, "value": v }))
        .collect();
    let initial = options
        .iter()
        .find(|o| o["value"] == choice)
        .cloned()
        .unwrap_or_else(|| options[0].clone());
    let view = json!({
        "type": "modal",
        "callback_id": ENDED_VIEW,
        "private_metadata": json!({ "alert_id": alert.id, "channel": click.channel }).to_string(),
        "title": { "type": "plain_text", "text": "How did it end?" },
        "submit": { "type": "plain_text", "text": "Record" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "input", "block_id": "ending", "label": { "type": "plain_text", "text": "It ended" },
              "element": { "type": "radio_buttons", "action_id": "value", "options": options, "initial_option": initial } },
            { "type": "input", "block_id": "note", "optional": true, "label": { "type": "plain_text", "text": "Note" },
              "element": { "type": "plain_text_input", "action_id": "value", "max_length": 300 } }
        ]
    });
    open_dialog(state, click, view).await;
}

/// The dialog submitted: recorded once, or the field says what is wrong.
pub async fn submit(state: &AppState, payload: &Value) -> Option<Value> {
    let user = payload
        .pointer("/user/id")
        .and_then(Value::as_str)?
        .to_string();
    let metadata = super::view_metadata(payload);
    let alert_id = metadata.get("alert_id").and_then(Value::as_str)?;
    let click = Click::submitted(&user, ENDED_VIEW, alert_id, &metadata);
    let ending = payload
        .pointer("/view/state/values/ending/value/selected_option/value")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !ENDINGS.iter().any(|(v, _)| *v == ending) {
        return Some(
            json!({ "response_action": "errors", "errors": { "ending": "Pick how it ended." } }),
        );
    }
    let note = payload
        .pointer("/view/state/values/note/value/value")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let alert = state.store.get_alert(alert_id).await.ok().flatten()?;
    if !may_answer(state, &alert, &user, &click).await {
        return None;
    }
    match record_how_it_ended(state, &alert, &user, &ending, note).await {
        Ok(Ok(_)) => {}
        Ok(Err(d)) => {
            tell(
                state,
                &click,
                &format!("{}. Nothing changed: it is answered once.", ended_line(&d)),
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "recording how an episode ended failed");
            tell(
                state,
                &click,
                ":warning: Something went wrong on our side; nothing was recorded. Try again.",
            )
            .await;
        }
    }
    None
}
