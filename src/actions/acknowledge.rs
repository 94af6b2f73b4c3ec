//! **Acknowledge**: records who took the alert and when, and shows it on the
//! alert. The first click wins; later clicks are told who was first. This
//! file decodes the click and checks who clicked; the decision and
//! everything it sends commit together in [`crate::flows::acknowledge`].

use super::{tell, Click};
use crate::context::AppState;
use crate::domain::text::date_token;
use crate::flows::acknowledge::{acknowledge, Acked};
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
    // Operators, and anyone paged on the escalation path, may acknowledge.
    if !crate::flows::escalation::may_respond(state, &alert, &click.user).await {
        crate::flows::thread::audit(
            state,
            &alert,
            &click.user,
            "acknowledge",
            "refused: not an operator",
            json!({ "alert_id": alert.id }),
        )
        .await;
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
    match acknowledge(state, &alert.id, &click.user).await? {
        Acked::Acknowledged => {}
        Acked::Already { by, at } => {
            tell(
                state,
                click,
                &format!(
                    "{} already acknowledged this alert {}.",
                    state.directory.user_name(&by).await,
                    date_token(at)
                ),
            )
            .await
        }
        Acked::NotOpen => {
            tell(
                state,
                click,
                "This alert is already resolved; nothing to acknowledge.",
            )
            .await
        }
        Acked::Missing => {
            tell(
                state,
                click,
                "This alert no longer exists; nothing to acknowledge.",
            )
            .await
        }
    }
    Ok(())
}
