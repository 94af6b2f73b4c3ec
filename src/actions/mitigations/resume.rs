//! **Resume paused jobs**: the jobs the bot paused for an alert, resumed
//! in Servo first and then recorded ([`crate::flows::mitigations::resume`]).

use super::*;
use crate::flows::mitigations::{resume, Resumed};

/// **Resume paused jobs**: resumes exactly the jobs the bot paused, once each.
pub async fn resume_paused(state: &AppState, click: &Click) {
    let Some((alert, tenant)) = authorise(
        state,
        &click.user,
        &click.value,
        "resume_paused",
        Some(click),
    )
    .await
    else {
        return;
    };
    match resume(state, &alert, &tenant.id, &click.user).await {
        Ok(Resumed::Done) => {}
        Ok(Resumed::NothingLeft) => {
            tell(
                state,
                click,
                "There are no jobs left to resume for this alert.",
            )
            .await
        }
        Ok(Resumed::AlreadyUnderWay) => {
            tell(state, click, "Those jobs are already being resumed.").await
        }
        Err(e) => {
            tracing::error!(error = %e, "resume failed");
            tell(
                state,
                click,
                ":warning: Something went wrong on our side; try again in a moment.",
            )
            .await;
        }
    }
}
