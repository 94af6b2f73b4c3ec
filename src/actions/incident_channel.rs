//! The alert menu's *Open incident channel* and the timeline's *Archive
//! channel* (issue 38). Operators only, audited; what they decide is in
//! [`crate::flows::incident_channels`], once however often they are clicked.

use super::mitigations::authorise;
use super::{tell, Click};
use crate::context::AppState;
use crate::flows::incident_channels::{archive as archive_flow, open as open_flow};
use crate::flows::incident_channels::{opened_words, ArchiveOutcome};

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
        Err(e) => {
            tracing::error!(error = %e, "archiving an incident channel failed");
            ":warning: Something went wrong on our side; nothing was archived. Try again.".into()
        }
    };
    tell(state, click, &text).await;
}
