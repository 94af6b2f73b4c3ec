//! **Monitor closely** and **Stop monitoring**: check-ins in the thread
//! every `monitor_every` (the check-ins themselves: [`crate::flows::monitor`]).

use super::*;
/// **Monitor closely**: a check-in in the thread every `monitor_every`.
pub async fn monitor(state: &AppState, click: &Click) {
    let Some((alert, _)) =
        authorise(state, &click.user, &click.value, "monitor", Some(click)).await
    else {
        return;
    };
    let now = state.clock.now();
    let timers = state
        .store
        .list_timers(Some(&alert.id))
        .await
        .unwrap_or_default();
    if timers
        .iter()
        .any(|t| t.kind == MONITOR_TIMER && t.status == "pending")
    {
        return tell(
            state,
            click,
            "This alert is already being monitored closely.",
        )
        .await;
    }
    // Numbering the runs makes a double click schedule one check-in.
    let run = timers.iter().filter(|t| t.kind == MONITOR_TIMER).count();
    let every = chrono::Duration::from_std(state.config.monitor_every)
        .unwrap_or(chrono::Duration::minutes(15));
    let scheduled = state
        .store
        .schedule_timer(
            NewTimer {
                kind: MONITOR_TIMER.into(),
                subject_id: alert.id.clone(),
                payload: json!({ "by": click.user, "completed": null, "eta_ms": alert.eta.map(|e| e.timestamp_millis()), "band": alert.band, "run": run }),
                due_at: now + every,
                dedup_key: Some(format!("monitor:{}:{run}:0", alert.id)),
            },
            now,
        )
        .await;
    match scheduled {
        Ok(Some(_)) => {
            audit(
                state,
                &alert,
                &click.user,
                "monitor",
                "ok",
                json!({ "every_min": every.num_minutes() }),
            )
            .await;
            note(
                state,
                &alert,
                note_key(&alert, "monitor"),
                &format!(":eyes: <@{}> is monitoring this closely: a check-in here every {} until it resolves.", click.user, crate::domain::text::count(every.num_minutes(), "minute", "minutes")),
            )
            .await;
            refresh(state, &alert).await;
        }
        Ok(None) => {
            tell(
                state,
                click,
                "This alert is already being monitored closely.",
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not schedule a check-in");
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
    match state
        .store
        .cancel_timers(&alert.id, Some(MONITOR_TIMER), state.clock.now())
        .await
    {
        Ok(0) => tell(state, click, "This alert is not being monitored.").await,
        Ok(_) => {
            audit(state, &alert, &click.user, "stop_monitor", "ok", json!({})).await;
            note(
                state,
                &alert,
                note_key(&alert, "unmonitor"),
                &format!(":no_bell: <@{}> stopped the close monitoring.", click.user),
            )
            .await;
            refresh(state, &alert).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not stop monitoring");
            tell(state, click, ":warning: Something went wrong; try again.").await;
        }
    }
}
