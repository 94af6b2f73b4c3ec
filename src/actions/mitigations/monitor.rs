//! **Monitor closely** and **Stop monitoring**: check-ins in the thread
//! every `monitor_every` (decided in [`crate::flows::monitor`]).

use super::*;
use crate::flows::monitor::{self, Monitoring};

/// **Monitor closely**: a check-in in the thread every `monitor_every`.
pub async fn monitor(state: &AppState, click: &Click) {
    let Some((alert, _)) =
        authorise(state, &click.user, &click.value, "monitor", Some(click)).await
    else {
        return;
    };
    match monitor::start(state, &alert, &click.user).await {
        Ok(Monitoring::Changed) => {}
        Ok(Monitoring::Unchanged) => {
            tell(
                state,
                click,
                "This alert is already being monitored closely.",
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not start monitoring");
            tell(
                state,
                click,
                ":warning: Monitoring could not start; nothing changed. Try again.",
            )
            .await;
        }
    }
}

/// **Stop monitoring**.
pub async fn stop_monitor(state: &AppState, click: &Click) {
    let Some((alert, _)) = authorise(
        state,
        &click.user,
        &click.value,
        "stop_monitor",
        Some(click),
    )
    .await
    else {
        return;
    };
    match monitor::stop(state, &alert, &click.user).await {
        Ok(Monitoring::Changed) => {}
        Ok(Monitoring::Unchanged) => tell(state, click, "This alert is not being monitored.").await,
        Err(e) => {
            tracing::error!(error = %e, "could not stop monitoring");
            tell(state, click, ":warning: Something went wrong; try again.").await;
        }
    }
}
