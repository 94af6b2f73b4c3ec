//! **Notify stakeholders**: the impact dialog, and its submission (what it
//! sends: [`crate::flows::mitigations::notify_stakeholders`]).

use super::*;
use crate::actions::dialog::open_dialog;
/// **Notify stakeholders**: asks for an impact line, then tells them.
pub async fn offer_notify(state: &AppState, click: &Click) {
    let Some((alert, _)) = authorise(
        state,
        &click.user,
        &click.value,
        "notify_stakeholders",
        Some(click),
    )
    .await
    else {
        return;
    };
    let view = json!({
        "type": "modal",
        "callback_id": NOTIFY_VIEW,
        "private_metadata": json!({ "alert_id": alert.id, "channel": click.channel }).to_string(),
        "title": { "type": "plain_text", "text": "Notify stakeholders" },
        "submit": { "type": "plain_text", "text": "Notify" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": "The job's stakeholders get the expected completion time and the band, in the alert's thread and by DM." } },
            { "type": "input", "block_id": "impact", "label": { "type": "plain_text", "text": "Impact" },
              "element": { "type": "plain_text_input", "action_id": "value", "max_length": 500,
                           "initial_value": "Downstream reports that depend on this backfill may be late." } }
        ]
    });
    open_dialog(state, click, view).await;
}

pub async fn confirm_notify(
    state: &AppState,
    user: &str,
    metadata: &Value,
    impact: String,
    view_id: &str,
) {
    let Some(alert_id) = metadata.get("alert_id").and_then(Value::as_str) else {
        return;
    };
    let reply_to = Click::submitted(user, NOTIFY_VIEW, alert_id, metadata);
    let Some((alert, tenant)) = authorise(
        state,
        user,
        alert_id,
        "notify_stakeholders",
        Some(&reply_to),
    )
    .await
    else {
        return;
    };
    let said = match crate::flows::mitigations::notify_stakeholders(
        state, &alert, tenant, user, &impact, view_id,
    )
    .await
    {
        Ok(said) => said,
        Err(e) => {
            tracing::error!(error = %e, "could not notify the stakeholders");
            ":warning: The stakeholders were not notified: the bot's store did not answer, so nothing was sent. Try again in a moment.".to_string()
        }
    };
    tell(state, &reply_to, &said).await;
}
