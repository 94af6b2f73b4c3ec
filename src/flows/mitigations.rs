//! The runbook's changes to Servo that the bot cannot commit with its own
//! store (pausing a job, recreating one at priority 10): recorded as an
//! intent first, made in Servo, then finished with what they mean to the
//! bot. [`finish_intents`] finishes, before each poll, the intents a stop
//! left `applying`. The buttons that start them are
//! [`crate::actions::mitigations`].

use crate::context::AppState;
use crate::flows::alerts::{self, AlertView};
use crate::risk::JobState;
use crate::servo::{Job, ServoActionError};
use crate::slack::render::date_token;
use crate::store::{Alert, Effects, IntentChange, NewOutboxMessage};
use serde_json::json;

/// The priority the runbook recreates at-risk jobs with.
pub const RECREATE_PRIORITY: i32 = 10;

/// Records an intent Servo refused (a failure here is only logged: the
/// repair pass looks at Servo again and finds nothing was changed).
pub(crate) async fn refuse_intent(
    state: &AppState,
    intent: &crate::store::Intent,
    why: &str,
    now: chrono::DateTime<chrono::Utc>,
) {
    if let Err(e) = state
        .store
        .finish_intent(
            intent,
            "refused",
            Some(why),
            IntentChange::None,
            &Effects::new(),
            now,
        )
        .await
    {
        tracing::error!(error = %e, "could not record a refused intent");
    }
}

/// The thread note that says a job was recreated and the alert follows it.
pub(crate) fn recreated_note(
    state: &AppState,
    alert: &Alert,
    by: &str,
    old: &Job,
    new: &Job,
) -> Result<NewOutboxMessage, alerts::AlertError> {
    alerts::thread_message(
                state,
                alert,
                format!("alert:{}:recreated:{}", alert.id, new.id),
                &format!(
                    ":recycle: <@{}> recreated the job at priority {}: `{}` was cancelled ({}) and its {} start again as `{}`, deadline unchanged ({}). This alert follows the new job.",
                    by,
                    new.priority,
                    old.id,
                    crate::servo::RECREATE_REASON,
                    crate::domain::text::count(new.total_partitions, "uncompleted partition", "uncompleted partitions"),
                    new.id,
                    new.sla_deadline_at.map(date_token).unwrap_or_else(|| "none".into())
                ),
    )
}

/// What the alert shows switches to the new job at once (the next poll
/// refreshes the rest).
pub(crate) async fn show_new_job(state: &AppState, alert: &Alert, new: &Job) {
    if let Ok(Some(fresh)) = state.store.get_alert(&alert.id).await {
        if let Some(mut view) = fresh
            .shown
            .clone()
            .and_then(|v| serde_json::from_value::<AlertView>(v).ok())
        {
            view.job_id = new.id.to_string();
            view.priority = new.priority;
            view.state = new.state.as_str().into();
            view.completed = 0;
            view.failed = 0;
            view.total = new.total_partitions;
            if let Ok(shown) = serde_json::to_value(&view) {
                let _ = state.store.set_alert_shown(&alert.id, &shown).await;
            }
        }
    }
}

/// The repair pass: a pause or a recreate the bot began and never recorded
/// (it stopped between writing to Servo and recording what it did) is
/// finished from what Servo now shows: recorded if Servo has it, made if it
/// does not and still can be, or recorded as refused with why. Each is said
/// in the alert's thread. Servo unreachable: tried again at the next poll.
/// Returns how many were finished.
pub async fn finish_intents(
    state: &AppState,
    before: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let mut finished = 0;
    for intent in state.store.applying_intents(before).await? {
        let Some(alert) = state.store.get_alert(&intent.alert_id).await? else {
            refuse_intent(state, &intent, "the alert no longer exists", now).await;
            continue;
        };
        let Ok(job_id) = intent.job_id.parse::<uuid::Uuid>() else {
            refuse_intent(state, &intent, "not a job id", now).await;
            continue;
        };
        // Servo away: the next poll tries again.
        let Ok(job) = state.servo.get_job(&intent.tenant_id, job_id).await else {
            continue;
        };
        tracing::warn!(intent = %intent.id, kind = %intent.kind, alert = %alert.id, "repair: a change to Servo was begun and never recorded; finishing it");
        let done = match intent.kind.as_str() {
            "pause" => finish_pause(state, &alert, &intent, job, now).await?,
            "recreate" => finish_recreate(state, &alert, &intent, job, now).await?,
            other => {
                refuse_intent(state, &intent, &format!("unknown change '{other}'"), now).await;
                false
            }
        };
        if done {
            state.metrics.inc(
                "servo_sla_bot_repairs_total",
                &[(
                    "what",
                    if intent.kind == "pause" {
                        "intent_pause"
                    } else {
                        "intent_recreate"
                    },
                )],
            );
            finished += 1;
            if let Err(e) = alerts::refresh(state, &alert.id).await {
                tracing::error!(error = %e, "could not refresh the alert's buttons");
            }
        }
    }
    Ok(finished)
}

/// Finishes an intent with its audit entry and a note in the thread.
#[allow(clippy::too_many_arguments)]
async fn finish_with_note(
    state: &AppState,
    alert: &Alert,
    intent: &crate::store::Intent,
    status: &str,
    outcome: Option<&str>,
    change: IntentChange<'_>,
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    let audit_outcome = match (status, outcome) {
        ("done", _) => "ok (finished by the repair pass)".to_string(),
        (_, Some(why)) => format!("failed: {why}"),
        _ => "failed".to_string(),
    };
    let mut effects = Effects::new();
    effects
        .record(alerts::audit_entry(
            state,
            alert,
            &intent.actor,
            &intent.kind,
            &audit_outcome,
            json!({ "job": intent.job_id, "for_alert": alert.id, "intent": intent.id }),
        ))
        .send(alerts::thread_message(
            state,
            alert,
            format!("intent:{}", intent.id),
            text,
        )?);
    let done = state
        .store
        .finish_intent(intent, status, outcome, change, &effects, now)
        .await?;
    state.wake_outbox();
    Ok(done)
}

/// An intent Servo definitely refused: recorded as refused with the reason,
/// and said in the alert's thread.
async fn finish_refused(
    state: &AppState,
    alert: &Alert,
    intent: &crate::store::Intent,
    text: &str,
    why: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    finish_with_note(
        state,
        alert,
        intent,
        "refused",
        Some(why),
        IntentChange::None,
        text,
        now,
    )
    .await
}

async fn finish_pause(
    state: &AppState,
    alert: &Alert,
    intent: &crate::store::Intent,
    job: Option<Job>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    let id = &intent.job_id;
    let refused = |why: String| {
        (
            format!(
                ":x: The pause <@{}> asked for was not made: `{id}`: {why}.",
                intent.actor
            ),
            why,
        )
    };
    let (text, why) = match job {
        None => refused("no such job any more".into()),
        Some(job) if job.state == JobState::Paused => {
            let text = format!(
                ":double_vertical_bar: <@{}> paused *{}* (`{id}`) to make room; recorded after the bot restarted.",
                intent.actor,
                crate::slack::render::escape_slack(&job.asset_name)
            );
            return finish_with_note(
                state,
                alert,
                intent,
                "done",
                None,
                IntentChange::Paused,
                &text,
                now,
            )
            .await;
        }
        Some(job) if job.state.is_active() => {
            match state.servo.pause(&intent.tenant_id, job.id, now).await {
                Ok(job) => {
                    let text = format!(
                        ":double_vertical_bar: <@{}> paused *{}* (`{id}`) to make room; finished after the bot restarted.",
                        intent.actor,
                        crate::slack::render::escape_slack(&job.asset_name)
                    );
                    return finish_with_note(
                        state,
                        alert,
                        intent,
                        "done",
                        None,
                        IntentChange::Paused,
                        &text,
                        now,
                    )
                    .await;
                }
                Err(e @ (ServoActionError::InvalidState { .. } | ServoActionError::NotFound)) => {
                    refused(e.to_string())
                }
                // Servo away: the next poll tries again.
                Err(_) => return Ok(false),
            }
        }
        Some(job) => refused(format!("the job is {}", job.state.as_str())),
    };
    finish_refused(state, alert, intent, &text, &why, now).await
}

async fn finish_recreate(
    state: &AppState,
    alert: &Alert,
    intent: &crate::store::Intent,
    old: Option<Job>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    let refused = |why: String| {
        (
            format!(
                ":x: The recreate <@{}> asked for was not made: {why}.",
                intent.actor
            ),
            why,
        )
    };
    let (text, why) = match old {
        None => refused("the job no longer exists".into()),
        Some(old)
            if old.state == JobState::Cancelled
                && old.error_message.as_deref() == Some(crate::servo::RECREATE_REASON) =>
        {
            // Servo recreated it: find the new job (the same asset, at the
            // priority the bot asks for, created since the intent).
            let Ok(jobs) = state.servo.active_jobs(&intent.tenant_id, false).await else {
                return Ok(false);
            };
            let new = jobs
                .into_iter()
                .filter(|j| {
                    j.asset_id == old.asset_id
                        && j.id != old.id
                        && j.priority >= RECREATE_PRIORITY
                        && j.created_at >= intent.created_at - chrono::Duration::minutes(1)
                })
                .max_by_key(|j| j.created_at);
            match new {
                Some(new) => return retargeted(state, alert, intent, &old, &new, now).await,
                None => refused(
                    "Servo cancelled the job, but its recreated job is no longer active".into(),
                ),
            }
        }
        Some(old) if old.state.is_active() => {
            match state
                .servo
                .recreate(
                    &intent.tenant_id,
                    old.id,
                    RECREATE_PRIORITY,
                    &intent.actor,
                    now,
                )
                .await
            {
                Ok((old, new)) => return retargeted(state, alert, intent, &old, &new, now).await,
                Err(e @ (ServoActionError::InvalidState { .. } | ServoActionError::NotFound)) => {
                    refused(e.to_string())
                }
                Err(_) => return Ok(false),
            }
        }
        Some(old) => refused(format!("the job is {}", old.state.as_str())),
    };
    finish_refused(state, alert, intent, &text, &why, now).await
}

/// A recreate found done (or made) by the repair pass: the alert follows
/// the new job, and the thread says so as the click would have.
async fn retargeted(
    state: &AppState,
    alert: &Alert,
    intent: &crate::store::Intent,
    old: &Job,
    new: &Job,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    let new_id = new.id.to_string();
    let mut effects = Effects::new();
    effects
        .record(alerts::audit_entry(
            state,
            alert,
            &intent.actor,
            "recreate",
            "ok (finished by the repair pass)",
            json!({ "cancelled": old.id, "new_job": new.id, "intent": intent.id }),
        ))
        .send(recreated_note(state, alert, &intent.actor, old, new)?);
    let done = state
        .store
        .finish_intent(
            intent,
            "done",
            Some(&new_id),
            IntentChange::Retarget { job_id: &new_id },
            &effects,
            now,
        )
        .await?;
    state.wake_outbox();
    if done {
        show_new_job(state, alert, new).await;
    }
    Ok(done)
}
