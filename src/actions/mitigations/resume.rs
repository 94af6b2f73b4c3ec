//! **Resume paused jobs**: the jobs the bot paused for an alert, resumed
//! in Servo first and then recorded.

use super::*;
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
    let now = state.clock.now();
    let jobs = state
        .store
        .paused_for_alert(&alert.id)
        .await
        .unwrap_or_default();
    if jobs.is_empty() {
        return tell(
            state,
            click,
            "There are no jobs left to resume for this alert.",
        )
        .await;
    }
    let mut lines = Vec::new();
    for id in jobs {
        let Ok(uuid) = id.parse::<uuid::Uuid>() else {
            continue;
        };
        // Servo first, then the record: a stop in between leaves the job
        // offered again, and the next click finds it resumed and records it.
        // (Recorded first, a stop lost the resume and its button.) A double
        // click resumes once: Servo resumes only a paused job.
        match state.servo.resume(&tenant.id, uuid, now).await {
            Ok(job) => {
                let _ = state.store.mark_resumed(&alert.id, &id, now).await;
                audit(
                    state,
                    &alert,
                    &click.user,
                    "resume",
                    "ok",
                    json!({ "job": id, "for_alert": alert.id }),
                )
                .await;
                lines.push(format!(
                    ":arrow_forward: resumed *{}* (`{id}`)",
                    crate::slack::render::escape_slack(&job.asset_name)
                ));
            }
            Err(ServoActionError::InvalidState { state: s, .. }) if s != "paused" => {
                // Resumed already (another click, or this one before a stop),
                // or finished: nothing left to do but record it, once.
                if state
                    .store
                    .mark_resumed(&alert.id, &id, now)
                    .await
                    .unwrap_or(false)
                {
                    audit(
                        state,
                        &alert,
                        &click.user,
                        "resume",
                        &format!("skipped: job is {s}"),
                        json!({ "job": id }),
                    )
                    .await;
                    lines.push(format!(":heavy_minus_sign: `{id}` is {s} already"));
                }
            }
            Err(e) => {
                audit(
                    state,
                    &alert,
                    &click.user,
                    "resume",
                    &format!("failed: {e}"),
                    json!({ "job": id }),
                )
                .await;
                lines.push(format!(":x: `{id}`: {e}"));
            }
        }
    }
    if lines.is_empty() {
        return tell(state, click, "Those jobs are already being resumed.").await;
    }
    note(
        state,
        &alert,
        note_key(&alert, "resume"),
        &format!(
            "<@{}> resumed the jobs paused for this alert:\n{}",
            click.user,
            lines.join("\n")
        ),
    )
    .await;
    refresh(state, &alert).await;
}
