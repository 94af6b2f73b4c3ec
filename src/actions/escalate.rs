//! **Escalate now**: the button that pages the next tier of an alert's path
//! at once. Its value names the tier it pages (see
//! [`crate::flows::paging::EscalateButton`]); this file decodes it and
//! checks who clicked, and [`crate::flows::escalation::escalate_now`]
//! decides: that tier, once, or nobody and why.

use super::{tell, Click};
use crate::context::AppState;
use crate::flows::escalation::{escalate_now as escalate, may_respond};
use crate::flows::paging::EscalateButton;
use crate::flows::thread::audit;
use serde_json::json;

/// **Escalate now**, for operators and anyone on the escalation path.
pub async fn escalate_now(state: &AppState, click: &Click) {
    let Some(button) = EscalateButton::parse(&click.value) else {
        return tell(
            state,
            click,
            "This button is not one I recognise; nobody was paged.",
        )
        .await;
    };
    let Ok(Some(alert)) = state.store.get_alert(&button.alert_id).await else {
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
    match escalate(state, &alert, &click.user, button.target).await {
        Ok(what) => tell(state, click, &what).await,
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
