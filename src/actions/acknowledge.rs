//! **Acknowledge**: records who took the alert and when, and shows it on the
//! alert. The first click wins; later clicks are told who was first.

use super::{tell, Click};
use crate::context::AppState;
use crate::flows::alerts::{self, AlertView};
use crate::slack::render::date_token;
use crate::store::{AckOutcome, AuditEntry};
use serde_json::json;

pub async fn run(state: &AppState, click: &Click) {
    if let Err(e) = try_run(state, click).await {
        tracing::error!(error = %e, "acknowledge failed");
        tell(
            state,
            click,
            ":warning: The acknowledgement could not be recorded; nothing changed. Try again in a moment.",
        )
        .await;
    }
}

async fn try_run(state: &AppState, click: &Click) -> anyhow::Result<()> {
    let now = state.clock.now();
    let Some(alert) = state.store.get_alert(&click.value).await? else {
        tell(
            state,
            click,
            "This alert no longer exists; nothing to acknowledge.",
        )
        .await;
        return Ok(());
    };
    let Some(tenant) = state.config.tenant(&alert.tenant_id) else {
        tell(state, click, "This alert's tenant is no longer configured.").await;
        return Ok(());
    };
    let audit = |outcome: &str| AuditEntry {
        at: now,
        tenant_id: Some(alert.tenant_id.clone()),
        actor: click.user.clone(),
        action: "acknowledge".into(),
        subject: Some(alert.job_id.clone()),
        outcome: outcome.into(),
        detail: Some(json!({ "alert_id": alert.id })),
    };
    // Operators, and anyone paged on the escalation path, may acknowledge.
    if !crate::flows::escalation::may_respond(state, &alert, &click.user).await {
        state
            .store
            .audit(&audit("refused: not an operator"))
            .await?;
        let who = state.directory.names(&tenant.operators).await;
        tell(
            state,
            click,
            &format!(
                ":no_entry: Only the operators of tenant `{}` ({who}) and the people on the escalation path can acknowledge its alerts. Ask one of them, or ask to be added to `operators` in the bot's config.",
                tenant.id,
            ),
        )
        .await;
        return Ok(());
    }
    match state
        .store
        .acknowledge_alert(&alert.id, &click.user, now)
        .await?
    {
        AckOutcome::Acknowledged => {
            state.store.audit(&audit("ok")).await?;
            crate::flows::escalation::acknowledged(state, &alert).await?;
            crate::flows::home::touch(state, &alert.tenant_id).await;
            let line = format!(
                ":white_check_mark: Acknowledged by <@{}> {}",
                click.user,
                date_token(now)
            );
            // Only what the acknowledgement decides changes: who and when,
            // shown on the alert as it stands now (a poll may have edited
            // it since it was read above), written over that version only.
            for _ in 0..3 {
                let Some(current) = state.store.get_alert(&alert.id).await? else {
                    break;
                };
                let Some(mut view) = current
                    .shown
                    .clone()
                    .and_then(|v| serde_json::from_value::<AlertView>(v).ok())
                else {
                    break;
                };
                view.buttons.retain(|b| b.action_id != alerts::ACK_ACTION);
                view.outcome = Some(line.clone());
                let shown = serde_json::to_value(&view)?;
                if state
                    .store
                    .set_alert_shown_at(&current.id, &shown, current.version)
                    .await?
                {
                    alerts::edit(state, &current, &view, format!("alert:{}:ack", alert.id)).await?;
                    break;
                }
            }
            alerts::reply_in_thread(state, &alert, format!("alert:{}:ack-note", alert.id), &line)
                .await?;
        }
        AckOutcome::AlreadyAcknowledged { by, at } => {
            state.store.audit(&audit("already acknowledged")).await?;
            tell(
                state,
                click,
                &format!(
                    "{} already acknowledged this alert {}.",
                    state.directory.user_name(&by).await,
                    date_token(at)
                ),
            )
            .await;
        }
        AckOutcome::NotOpen => {
            state.store.audit(&audit("refused: alert resolved")).await?;
            tell(
                state,
                click,
                "This alert is already resolved; nothing to acknowledge.",
            )
            .await;
        }
    }
    Ok(())
}
