//! **Escalate now**: the button that moves an alert's escalation to the
//! next tier at once (see [`crate::flows::escalation`]).

use super::{tell, Click};
use crate::context::AppState;
use crate::flows::alerts::audit;
use crate::flows::escalation::{escalate_next, may_respond, refresh_buttons};
use serde_json::json;

/// **Escalate now**, for operators and anyone on the escalation path.
pub async fn escalate_now(state: &AppState, click: &Click) {
    let Ok(Some(alert)) = state.store.get_alert(&click.value).await else {
        return tell(state, click, "This alert no longer exists.").await;
    };
    if !alert.is_open() {
        return tell(
            state,
            click,
            "This alert is resolved; there is nobody to page.",
        )
        .await;
    }
    if !may_respond(state, &alert, &click.user).await {
        audit(
            state,
            &alert,
            &click.user,
            "escalate_now",
            "refused: not an operator",
            json!({}),
        )
        .await;
        return tell(state, click, ":no_entry: Only the tenant's operators and the people on the escalation path can escalate.").await;
    }
    let by = state.directory.user_name(&click.user).await;
    match escalate_next(state, &alert, &format!("{by} escalated by hand")).await {
        Ok(what) => {
            refresh_buttons(state, &alert.id).await;
            audit(
                state,
                &alert,
                &click.user,
                "escalate_now",
                "ok",
                json!({ "result": what }),
            )
            .await;
            tell(state, click, &what).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "escalate now failed");
            tell(
                state,
                click,
                ":warning: The escalation could not move on; try again.",
            )
            .await;
        }
    }
}
