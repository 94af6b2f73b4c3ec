//! The runbook's changes to Servo that the bot cannot commit with its own
//! store (pausing a job, recreating one at priority 10): recorded as an
//! intent first, made in Servo, then finished with what they mean to the
//! bot. [`finish_intents`] finishes, before each poll, the intents a stop
//! left `applying`. The buttons that start them are
//! [`crate::actions::mitigations`]; what each decides is here: [`pause`],
//! [`resume`], [`recreate`], [`notify_stakeholders`] (Monitor closely is
//! [`crate::flows::monitor`], Request scaling [`crate::flows::scaling`]).

use crate::context::AppState;
use crate::domain::risk::JobState;
use crate::domain::text::date_token;
use crate::flows::alert_view::AlertView;
use crate::servo::{Job, ServoActionError};
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
) -> Result<NewOutboxMessage, crate::flows::thread::AlertError> {
    crate::flows::thread::thread_message(
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
        if let Some(mut view) = AlertView::shown(&fresh) {
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
            if let Err(e) = crate::flows::alert_view::refresh(state, &alert.id).await {
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
        .record(crate::flows::thread::audit_entry(
            state,
            alert,
            &intent.actor,
            &intent.kind,
            &audit_outcome,
            json!({ "job": intent.job_id, "for_alert": alert.id, "intent": intent.id }),
        ))
        .send(crate::flows::thread::thread_message(
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
                ":double_vertical_bar: <@{}> paused *{}* (`{id}`) to make room; recorded on a later look at Servo (the bot had not recorded it).",
                intent.actor,
                crate::domain::text::escape_slack(&job.asset_name)
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
        Some(_) if !alert.is_open() => {
            refused("the alert resolved before Servo could be asked again".into())
        }
        Some(job) if job.state.is_active() => {
            match state.servo.pause(&intent.tenant_id, job.id, now).await {
                Ok(job) => {
                    let text = format!(
                        ":double_vertical_bar: <@{}> paused *{}* (`{id}`) to make room; made on a later try (Servo had not confirmed it).",
                        intent.actor,
                        crate::domain::text::escape_slack(&job.asset_name)
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
        Some(_) if !alert.is_open() => {
            refused("the alert resolved before Servo could be asked again".into())
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
        .record(crate::flows::thread::audit_entry(
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

/// A thread note's dedup key for one click's mitigation.
fn note_key(alert: &Alert, what: &str) -> String {
    format!(
        "alert:{}:{what}:{}",
        alert.id,
        uuid::Uuid::new_v4().simple()
    )
}

/// Commits a note in the alert's thread (a click's summary); a failure is
/// logged: what it sums up is already recorded.
async fn note(state: &AppState, alert: &Alert, what: &str, text: &str) {
    let sent = match crate::flows::thread::thread_message(state, alert, note_key(alert, what), text)
    {
        Ok(msg) => {
            let mut effects = Effects::new();
            effects.send(msg);
            state.commit(&effects).await.map_err(anyhow::Error::from)
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = sent {
        tracing::error!(error = %e, "could not reply in the alert's thread");
    }
}

/// **Pause lower-priority jobs** / **Defer non-critical backfills**,
/// confirmed by `user` (an operator, checked by the caller) for `job_ids`:
/// each job is an intent first, then Servo's pause, then the intent
/// finished with the job recorded for Resume and its audit entry, in one
/// commit (a stop in between is finished by the repair pass). The thread
/// says what was paused; returns the same summary for the person.
pub async fn pause(
    state: &AppState,
    alert: &Alert,
    tenant_id: &str,
    user: &str,
    job_ids: Vec<String>,
) -> String {
    let now = state.clock.now();
    let mut lines = Vec::new();
    let mut paused = 0;
    for id in job_ids {
        let Ok(uuid) = id.parse::<uuid::Uuid>() else {
            continue;
        };
        // The intent first: a stop after Servo paused the job and before the
        // bot recorded it would otherwise leave a job paused that Resume
        // never offers. The repair pass finishes an intent left applying.
        let intent = match state
            .store
            .begin_intent("pause", &alert.id, tenant_id, &id, user, now)
            .await
        {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "could not record the intent to pause a job");
                lines.push(format!(
                    ":x: `{id}`: the bot's store is unavailable, so it was not paused; try again in a minute"
                ));
                continue;
            }
        };
        let detail = json!({ "job": id, "for_alert": alert.id });
        let result = state.servo.pause(tenant_id, uuid, now).await;
        if let Err(ServoActionError::Unconfirmed(e)) = &result {
            // Servo may have paused it: the intent stays applying, and the
            // repair pass records what Servo shows (or pauses it then).
            tracing::warn!(error = %e, job = %id, "Servo did not confirm a pause; the repair pass will look");
            crate::flows::thread::audit(state, alert, user, "pause", "unconfirmed", detail).await;
            lines.push(format!(
                ":grey_question: `{id}`: Servo did not confirm the pause; the bot looks again before its next poll and says here what came of it"
            ));
            continue;
        }
        let (line, status, why, change, outcome) = match result {
            Ok(job) => {
                paused += 1;
                (
                    format!(
                        ":double_vertical_bar: paused *{}* (`{id}`)",
                        crate::domain::text::escape_slack(&job.asset_name)
                    ),
                    "done",
                    None,
                    IntentChange::Paused,
                    "ok".to_string(),
                )
            }
            Err(e) => {
                let why = match e {
                    ServoActionError::NotFound => "no such job any more".to_string(),
                    other => other.to_string(),
                };
                (
                    format!(":x: `{id}`: {why}"),
                    "refused",
                    Some(why.clone()),
                    IntentChange::None,
                    format!("failed: {why}"),
                )
            }
        };
        // Recorded (or refused), audited: one transaction.
        let mut effects = Effects::new();
        effects.record(crate::flows::thread::audit_entry(
            state, alert, user, "pause", &outcome, detail,
        ));
        if let Err(e) = state
            .store
            .finish_intent(&intent, status, why.as_deref(), change, &effects, now)
            .await
        {
            tracing::error!(error = %e, "could not record a paused job; the repair pass will");
        }
        lines.push(line);
    }
    let summary = format!(
        "<@{user}> paused {paused} of {} to make room:\n{}",
        crate::domain::text::count(lines.len(), "job", "jobs"),
        lines.join("\n")
    );
    note(state, alert, "pause", &summary).await;
    crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    summary
}

/// What **Resume paused jobs** came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// The bot paused nothing for this alert that it has not resumed.
    NothingLeft,
    /// Another click is resuming them (nothing for this one to record).
    AlreadyUnderWay,
    /// Resumed (or recorded as resumed already, or failed): said in the thread.
    Done,
}

/// **Resume paused jobs**, by `user` (an operator, checked by the caller):
/// exactly the jobs the bot paused for the alert, once each. Servo first,
/// then the record with its audit entry in one commit: a stop in between
/// leaves the job offered again, and the next click finds it resumed and
/// records it. (Recorded first, a stop lost the resume and its button.) A
/// double click resumes once: Servo resumes only a paused job, and each
/// record is conditional.
pub async fn resume(
    state: &AppState,
    alert: &Alert,
    tenant_id: &str,
    user: &str,
) -> anyhow::Result<Resumed> {
    let now = state.clock.now();
    let jobs = state.store.paused_for_alert_since(&alert.id).await?;
    if jobs.is_empty() {
        return Ok(Resumed::NothingLeft);
    }
    let audited = |outcome: &str, detail: serde_json::Value| {
        let mut effects = Effects::new();
        effects.record(crate::flows::thread::audit_entry(
            state, alert, user, "resume", outcome, detail,
        ));
        effects
    };
    let mut lines = Vec::new();
    for (id, paused_at) in jobs {
        let Ok(uuid) = id.parse::<uuid::Uuid>() else {
            continue;
        };
        // Resumed since (a slash command, Servo's CLI) and paused again by
        // someone else: that pause is theirs, not the bot's to undo.
        if let Ok(Some(job)) = state.servo.get_job(tenant_id, uuid).await {
            if let Some(again) = job
                .paused_at
                .filter(|at| job.state == JobState::Paused && *at > paused_at + REPAUSED_AFTER)
            {
                let effects = audited(
                    "skipped: paused again by someone else",
                    json!({ "job": id, "paused_at": again }),
                );
                if state
                    .store
                    .mark_resumed_with(&alert.id, &id, now, &effects)
                    .await
                    .unwrap_or(false)
                {
                    lines.push(format!(
                        ":heavy_minus_sign: `{id}` was resumed and paused again {} by someone else: left paused",
                        date_token(again)
                    ));
                }
                continue;
            }
        }
        match state.servo.resume(tenant_id, uuid, now).await {
            Ok(job) => {
                let effects = audited("ok", json!({ "job": id, "for_alert": alert.id }));
                if let Err(e) = state
                    .store
                    .mark_resumed_with(&alert.id, &id, now, &effects)
                    .await
                {
                    tracing::error!(error = %e, "could not record a resumed job; the next click will");
                }
                lines.push(format!(
                    ":arrow_forward: resumed *{}* (`{id}`)",
                    crate::domain::text::escape_slack(&job.asset_name)
                ));
            }
            Err(ServoActionError::InvalidState { state: s, .. }) if s != "paused" => {
                // Resumed already (another click, or this one before a stop),
                // or finished: nothing left to do but record it, once.
                let effects = audited(&format!("skipped: job is {s}"), json!({ "job": id }));
                if state
                    .store
                    .mark_resumed_with(&alert.id, &id, now, &effects)
                    .await
                    .unwrap_or(false)
                {
                    lines.push(format!(":heavy_minus_sign: `{id}` is {s} already"));
                }
            }
            Err(e) => {
                let effects = audited(&format!("failed: {e}"), json!({ "job": id }));
                if let Err(e) = state.commit(&effects).await {
                    tracing::error!(error = %e, "could not write the audit log");
                }
                lines.push(format!(":x: `{id}`: {e}"));
            }
        }
    }
    if lines.is_empty() {
        return Ok(Resumed::AlreadyUnderWay);
    }
    note(
        state,
        alert,
        "resume",
        &format!(
            "<@{user}> resumed the jobs paused for this alert:\n{}",
            lines.join("\n")
        ),
    )
    .await;
    crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    Ok(Resumed::Done)
}

/// How much later than the bot's record of its pause Servo's `paused_at`
/// must be for the pause to be someone else's (clocks differ a little).
const REPAUSED_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// **Recreate with priority 10**, by `user` (an operator, checked by the
/// caller, after Slack's confirm dialog): an intent first, then Servo's
/// recreate, then the intent finished with the alert following the new job,
/// its audit entry and its note in one commit (a stop in between is
/// finished by the repair pass). `Err` is what to tell the person when
/// Servo refused or could not be asked (audited).
pub async fn recreate(
    state: &AppState,
    alert: &Alert,
    tenant_id: &str,
    user: &str,
) -> Result<(), String> {
    let Ok(job_id) = alert.job_id.parse::<uuid::Uuid>() else {
        return Err("The alert's job id is not valid; nothing was changed.".into());
    };
    let now = state.clock.now();
    // The intent first: a stop after Servo recreated the job and before the
    // alert follows the new one would otherwise leave the alert on the
    // cancelled job. The repair pass finishes an intent left applying.
    let intent = match state
        .store
        .begin_intent("recreate", &alert.id, tenant_id, &alert.job_id, user, now)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "could not record the intent to recreate a job");
            return Err(":warning: The bot's store is unavailable; nothing was changed. Try again in a minute.".into());
        }
    };
    match state
        .servo
        .recreate(tenant_id, job_id, RECREATE_PRIORITY, user, now)
        .await
    {
        Ok((old, new)) => {
            // The alert follows the new job, audited and said, together.
            let mut effects = Effects::new();
            effects.record(crate::flows::thread::audit_entry(state, alert, user, "recreate", "ok", json!({ "cancelled": old.id, "new_job": new.id, "partitions": new.total_partitions })));
            match recreated_note(state, alert, user, &old, &new) {
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
            show_new_job(state, alert, &new).await;
            crate::flows::escalation::refresh_buttons(state, &alert.id).await;
            Ok(())
        }
        Err(ServoActionError::Unconfirmed(e)) => {
            // Servo may have recreated it: the intent stays applying, and the
            // repair pass follows the new job if there is one (or recreates
            // it then, while the alert is open), and says so in the thread.
            tracing::warn!(error = %e, "Servo did not confirm a recreate; the repair pass will look");
            crate::flows::thread::audit(state, alert, user, "recreate", "unconfirmed", json!({}))
                .await;
            Err(":grey_question: Servo did not confirm the recreate: the connection was lost as it was being committed. The bot looks again before its next poll and says in the alert's thread what came of it.".into())
        }
        Err(e) => {
            refuse_intent(state, &intent, &e.to_string(), now).await;
            let (outcome, say) = match e {
                ServoActionError::InvalidState { message, .. } => (
                    Some(format!("refused: {message}")),
                    format!(":warning: {message} Nothing was changed."),
                ),
                ServoActionError::NotFound => (None, "The job no longer exists.".into()),
                e => (
                    Some(format!("failed: {e}")),
                    ":warning: Servo is unreachable or refused; nothing was changed. Try again in a minute.".into(),
                ),
            };
            if let Some(outcome) = outcome {
                crate::flows::thread::audit(state, alert, user, "recreate", &outcome, json!({}))
                    .await;
            }
            Err(say)
        }
    }
}

/// **Notify stakeholders**, confirmed by `user` (an operator) with an
/// `impact` line: the job's stakeholders hear the expected completion and
/// the band, in the alert's thread and by DM, in one commit with the audit
/// entry. `view_id` (the dialog's) keys the messages: a repeated submission
/// of the same dialog sends them once.
pub async fn notify_stakeholders(
    state: &AppState,
    alert: &Alert,
    tenant: &crate::config::Tenant,
    user: &str,
    impact: &str,
    view_id: &str,
) -> anyhow::Result<String> {
    use crate::domain::risk::SlaTier;
    let job = crate::flows::monitor::job_of(state, alert)
        .await
        .ok()
        .flatten();
    let (asset, tier) = job
        .as_ref()
        .map(|j| (j.asset_name.clone(), SlaTier::from_priority(j.priority)))
        .unwrap_or_else(|| ("the job".into(), SlaTier::Standard));
    let who = crate::flows::approvals::stakeholders(&state.config, tenant, &asset, tier);
    // A group Slack cannot list now is mentioned in the thread all the
    // same (a mention notifies its members), but gets no DMs: said, and
    // audited as such, not as everyone notified.
    let (people, unexpanded) = match state.directory.expand(&who).await {
        Ok(people) if people.is_empty() => (people, Some("no members Slack lists".to_string())),
        Ok(people) => (people, None),
        Err(e) => {
            tracing::warn!(error = %e, "could not list the stakeholders' groups");
            (Vec::new(), Some(e.to_string()))
        }
    };
    let band = format!("{} {}", alert.band.emoji(), alert.band.label());
    let impact = impact
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let text = format!(
        ":mega: {} *{}* is expected to complete {} against its deadline {} ({band}). Impact: {impact} (from <@{user}>)",
        who.iter().map(|p| p.mention()).collect::<Vec<_>>().join(" "),
        asset.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        alert.eta.map(date_token).unwrap_or_else(|| "at an unknown time".into()),
        alert.deadline.map(date_token).unwrap_or_else(|| "none".into()),
    );
    let mut effects = Effects::new();
    effects.send(crate::flows::thread::thread_message(
        state,
        alert,
        format!("notify:{}:{view_id}:thread", alert.id),
        &text,
    )?);
    for p in &people {
        effects.send(NewOutboxMessage::call(
            "chat.postMessage",
            json!({ "channel": p, "text": text }),
            format!("notify:{}:{view_id}:{p}", alert.id),
        ));
    }
    let outcome = match &unexpanded {
        None => "ok".to_string(),
        Some(why) => format!("partial: thread only, no DMs ({why})"),
    };
    effects.record(crate::flows::thread::audit_entry(
        state,
        alert,
        user,
        "notify_stakeholders",
        &outcome,
        json!({ "notified": people, "impact": impact }),
    ));
    state.commit(&effects).await?;
    state.wake_outbox();
    let names = state.directory.names(&who).await;
    Ok(match unexpanded {
        None => format!(
            ":mega: Notified {names} in the alert's thread and by DM ({}).",
            crate::domain::text::count(people.len(), "person", "people")
        ),
        Some(_) => format!(
            ":warning: Posted in the alert's thread, mentioning {names}, but Slack did not list anyone in their group just now, so nobody got a DM. Ask them directly if it is urgent."
        ),
    })
}
