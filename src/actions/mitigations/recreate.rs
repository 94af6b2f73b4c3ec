//! **Recreate with priority 10**: Servo cancels the job and starts its
//! uncompleted partitions again at priority 10; the alert follows the new job.

use super::*;
/// **Recreate with priority 10** (after Slack's confirm dialog).
pub async fn recreate(state: &AppState, click: &Click) {
    let Some((alert, tenant)) =
        authorise(state, &click.user, &click.value, "recreate", Some(click)).await
    else {
        return;
    };
    if !alert.is_open() {
        return tell(
            state,
            click,
            "This alert is resolved; there is nothing to recreate.",
        )
        .await;
    }
    let Ok(job_id) = alert.job_id.parse::<uuid::Uuid>() else {
        return;
    };
    let now = state.clock.now();
    // The intent first: a stop after Servo recreated the job and before the
    // alert follows the new one would otherwise leave the alert on the
    // cancelled job. The repair pass finishes an intent left applying.
    let intent = match state
        .store
        .begin_intent(
            "recreate",
            &alert.id,
            &tenant.id,
            &alert.job_id,
            &click.user,
            now,
        )
        .await
    {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "could not record the intent to recreate a job");
            return tell(state, click, ":warning: The bot's store is unavailable; nothing was changed. Try again in a minute.").await;
        }
    };
    match state
        .servo
        .recreate(&tenant.id, job_id, RECREATE_PRIORITY, &click.user, now)
        .await
    {
        Ok((old, new)) => {
            // The alert follows the new job, audited and said, together.
            let mut effects = Effects::new();
            effects.record(alerts::audit_entry(state, &alert, &click.user, "recreate", "ok", json!({ "cancelled": old.id, "new_job": new.id, "partitions": new.total_partitions })));
            match recreated_note(state, &alert, &click.user, &old, &new) {
                Ok(msg) => {
                    effects.send(msg);
                }
                Err(e) => tracing::error!(error = %e, "could not render the recreate note"),
            }
            let new_id = new.id.to_string();
            if let Err(e) = state
                .store
                .finish_intent(
                    &intent,
                    "done",
                    Some(&new_id),
                    IntentChange::Retarget { job_id: &new_id },
                    &effects,
                    now,
                )
                .await
            {
                tracing::error!(error = %e, "could not record the recreated job; the repair pass will");
            }
            state.wake_outbox();
            // Show the new job right away; the next poll refreshes the rest.
            show_new_job(state, &alert, &new).await;
            refresh(state, &alert).await;
        }
        Err(e) => {
            refuse_intent(state, &intent, &e.to_string(), now).await;
            recreate_refused(state, click, &alert, e).await;
        }
    }
}

/// A recreate Servo refused (or could not be asked): audited, and the
/// person told.
async fn recreate_refused(state: &AppState, click: &Click, alert: &Alert, e: ServoActionError) {
    match e {
        ServoActionError::InvalidState { message, .. } => {
            audit(
                state,
                alert,
                &click.user,
                "recreate",
                &format!("refused: {message}"),
                json!({}),
            )
            .await;
            tell(
                state,
                click,
                &format!(":warning: {message} Nothing was changed."),
            )
            .await;
        }
        ServoActionError::NotFound => tell(state, click, "The job no longer exists.").await,
        e => {
            audit(
                state,
                alert,
                &click.user,
                "recreate",
                &format!("failed: {e}"),
                json!({}),
            )
            .await;
            tell(state, click, ":warning: Servo is unreachable or refused; nothing was changed. Try again in a minute.").await;
        }
    }
}
