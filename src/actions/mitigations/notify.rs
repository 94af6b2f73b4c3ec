//! **Notify stakeholders**: the impact dialog and the message it sends.

use super::*;
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
    let Some(trigger) = &click.trigger_id else {
        return tell(
            state,
            click,
            "Slack sent no trigger for a dialog; try the button again.",
        )
        .await;
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
    if let Err(e) = state
        .slack
        .call(
            "views.open",
            &json!({ "trigger_id": trigger, "view": view }),
        )
        .await
    {
        tracing::warn!(error = %e, "views.open failed");
        tell(
            state,
            click,
            "The dialog could not open; try the button again.",
        )
        .await;
    }
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
    let Some((alert, tenant)) = authorise(state, user, alert_id, "notify_stakeholders", None).await
    else {
        return;
    };
    let job = job_of(state, &alert).await.ok().flatten();
    let (asset, tier) = job
        .as_ref()
        .map(|j| (j.asset_name.clone(), SlaTier::from_priority(j.priority)))
        .unwrap_or_else(|| ("the job".into(), SlaTier::Standard));
    let who = approvals::stakeholders(&state.config, tenant, &asset, tier);
    let people = state.directory.expand(&who).await.unwrap_or_default();
    let band = format!("{} {}", alert.band.emoji(), alert.band.label());
    let impact = impact
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let text = format!(
        ":mega: {} *{}* is expected to complete {} against its deadline {} ({band}). Impact: {impact} (from <@{user}>)",
        who.iter().map(|p| p.mention()).collect::<Vec<_>>().join(" "),
        asset.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        alert.eta.map(date_token).unwrap_or_else(|| "at an unknown time".into()),
        alert.deadline.map(date_token).unwrap_or_else(|| "none".into()),
    );
    note(
        state,
        &alert,
        format!("notify:{}:{view_id}:thread", alert.id),
        &text,
    )
    .await;
    for p in &people {
        let _ = state
            .enqueue(NewOutboxMessage::call(
                "chat.postMessage",
                json!({ "channel": p, "text": text }),
                format!("notify:{}:{view_id}:{p}", alert.id),
            ))
            .await;
    }
    audit(
        state,
        &alert,
        user,
        "notify_stakeholders",
        "ok",
        json!({ "notified": people, "impact": impact }),
    )
    .await;
}
