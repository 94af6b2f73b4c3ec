//! Holding an escalation while a silence, a maintenance window or paging
//! hours say not to page ([`crate::flows::quiet::decide`]): the escalation
//! asks [`gate`] before it starts and before each step.

use crate::context::AppState;
use crate::flows::ids::RESUME_TIMER;
use crate::flows::quiet::{decide, Decision, Subject};
use crate::store::{Alert, Effects, NewTimer};
use serde_json::json;

/// The escalation asks before it starts and before each step: true when
/// it may page. When held, the hold is recorded: an escalation under way
/// stops with a note in its thread; one not started gets the note once; a
/// [`RESUME_TIMER`] at the hold's end starts it again.
pub async fn gate(state: &AppState, alert: &Alert) -> anyhow::Result<bool> {
    let now = state.clock.now();
    let decision = decide(state, &Subject::of(alert), now).await?;
    let Decision::Hold { until, .. } = &decision else {
        return Ok(true);
    };
    let until = *until;
    let words = decision.words().unwrap_or_default();
    let key = decision.key();
    let resume = NewTimer {
        kind: RESUME_TIMER.into(),
        subject_id: alert.id.clone(),
        payload: json!({}),
        due_at: until,
        dedup_key: Some(format!(
            "quiet:{}:resume:{}",
            alert.id,
            until.timestamp_millis()
        )),
    };
    let active = state
        .store
        .get_escalation(&alert.id)
        .await?
        .filter(|e| e.status == "active");
    if let Some(esc) = active {
        let note = crate::flows::thread::thread_message(
            state,
            alert,
            format!("quiet:{}:{key}:stop:{}", alert.id, esc.epoch),
            &format!(
                ":mute: {words}. The escalation stops; if the job is still at risk then, it pages again from the first tier."
            ),
        )?;
        let audit = crate::flows::thread::audit_entry(
            state,
            alert,
            "bot",
            "escalation_held",
            "ok",
            json!({ "until": until.to_rfc3339(), "why": key, "epoch": esc.epoch }),
        );
        let ended = state
            .store
            .end_escalation_with(
                &alert.id,
                "stopped",
                now,
                &crate::flows::paging::cancel_steps(&alert.id),
                |_| {
                    let mut effects = Effects::new();
                    effects.send(note).schedule(resume).record(audit);
                    effects
                },
            )
            .await?;
        if ended.is_some() {
            state.wake_outbox();
            if let Err(e) = crate::flows::alert_view::refresh(state, &alert.id).await {
                tracing::warn!(error = %e, "could not refresh the alert after holding its pages");
            }
        }
        return Ok(false);
    }
    // Not started: said once per hold (the note and the timer are keyed).
    let pending = state
        .store
        .list_timers(Some(&alert.id))
        .await?
        .into_iter()
        .any(|t| t.kind == RESUME_TIMER && t.status == "pending" && t.due_at == until);
    if !pending {
        let note = crate::flows::thread::thread_message(
            state,
            alert,
            format!("quiet:{}:{key}", alert.id),
            &format!(":mute: {words}."),
        )?;
        let mut effects = Effects::new();
        effects.send(note).schedule(resume);
        state.store.commit(&effects, now).await?;
        state.wake_outbox();
        // The alert shows the silence or window from now on.
        if let Err(e) = crate::flows::alert_view::refresh(state, &alert.id).await {
            tracing::warn!(error = %e, "could not refresh the alert after holding its pages");
        }
    }
    Ok(false)
}
