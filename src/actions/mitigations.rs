//! The runbook's mitigations, one button each on the alert. Every one is for
//! the tenant's operators only, audited, and decided once however often it
//! is clicked (dedup keys in the outbox, conditional updates in the store,
//! Servo's own state checks).

use super::{tell, Click};
use crate::config::Tenant;
use crate::context::AppState;
use crate::flows::alerts::{self, MONITOR_TIMER};
use crate::flows::approvals;
use crate::risk::{JobState, RiskBand, SlaTier};
use crate::servo::{Job, ServoActionError};
use crate::slack::render::date_token;
use crate::store::{Alert, Effects, IntentChange, NewOutboxMessage, NewTimer};
use serde_json::{json, Value};

pub const PAUSE_VIEW: &str = "mitigate_pause";
pub const NOTIFY_VIEW: &str = "mitigate_notify";

use crate::flows::alerts::audit;
use crate::flows::mitigations::{recreated_note, refuse_intent, show_new_job, RECREATE_PRIORITY};
use crate::flows::monitor::job_of;

/// The alert and its tenant, if the clicker is one of its operators; else
/// the clicker is told why not, and the refusal is audited.
async fn authorise<'a>(
    state: &'a AppState,
    user: &str,
    alert_id: &str,
    action: &str,
    click: Option<&Click>,
) -> Option<(Alert, &'a Tenant)> {
    let say = |text: String| async move {
        if let Some(c) = click {
            tell(state, c, &text).await;
        }
    };
    let alert = match state.store.get_alert(alert_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            say("This alert no longer exists.".into()).await;
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "reading an alert failed");
            say(":warning: Something went wrong on our side; nothing changed. Try again.".into())
                .await;
            return None;
        }
    };
    let Some(tenant) = state.config.tenant(&alert.tenant_id) else {
        say("This alert's tenant is no longer configured.".into()).await;
        return None;
    };
    match state.directory.is_among(user, &tenant.operators).await {
        Ok(true) => Some((alert, tenant)),
        Ok(false) => {
            audit(
                state,
                &alert,
                user,
                action,
                "refused: not an operator",
                json!({ "alert_id": alert.id }),
            )
            .await;
            say(format!(
                ":no_entry: Only the operators of tenant `{}` can use this button ({}).",
                tenant.id,
                tenant
                    .operators
                    .iter()
                    .map(|p| p.mention())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await;
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check operator membership");
            say("I could not check your membership with Slack just now; nothing changed. Try again in a moment.".into()).await;
            None
        }
    }
}

fn note_key(alert: &Alert, what: &str) -> String {
    format!(
        "alert:{}:{what}:{}",
        alert.id,
        uuid::Uuid::new_v4().simple()
    )
}

async fn note(state: &AppState, alert: &Alert, key: String, text: &str) {
    if let Err(e) = alerts::reply_in_thread(state, alert, key, text).await {
        tracing::error!(error = %e, "could not reply in the alert's thread");
    }
}

async fn refresh(state: &AppState, alert: &Alert) {
    if let Err(e) = alerts::refresh(state, &alert.id).await {
        tracing::error!(error = %e, "could not refresh the alert's buttons");
    }
}

// ------------------------------------------------------------ monitor closely

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
                &format!(":eyes: <@{}> is monitoring this closely: a check-in here every {} minutes until it resolves.", click.user, every.num_minutes()),
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

// ------------------------------------------------------- pausing other jobs

#[derive(Clone, Copy, PartialEq, Eq)]
enum PauseKind {
    /// Low: the tenant's best-effort jobs.
    Defer,
    /// Medium: running jobs with no SLA, or a later deadline and lower priority.
    LowerPriority,
}

fn candidates(kind: PauseKind, at_risk: &Job, jobs: Vec<Job>) -> Vec<Job> {
    jobs.into_iter()
        .filter(|j| j.id != at_risk.id && j.state == JobState::Running)
        .filter(|j| match kind {
            PauseKind::Defer => SlaTier::from_priority(j.priority) <= SlaTier::BestEffort,
            PauseKind::LowerPriority => match (j.sla_deadline_at, at_risk.sla_deadline_at) {
                (None, _) => true,
                (Some(d), Some(mine)) => d > mine && j.priority < at_risk.priority,
                (Some(_), None) => false,
            },
        })
        .collect()
}

/// Slack's multi-select holds 100 options.
const MAX_OPTIONS: usize = 100;

/// A job as a dialog option. Option text is plain text, where a date token
/// does not render, so the deadline is said relative to now ("due in 3 h"),
/// which reads the same in every time zone.
fn option(job: &Job, now: chrono::DateTime<chrono::Utc>) -> Value {
    use crate::slack::render::duration_words;
    let due = job
        .sla_deadline_at
        .map(|d| {
            if d > now {
                format!("due in {}", duration_words(d - now))
            } else {
                format!("due {} ago", duration_words(now - d))
            }
        })
        .unwrap_or_else(|| "no SLA".into());
    let mut label = format!("{} · p{} · {due}", job.asset_name, job.priority);
    if label.chars().count() > 75 {
        label = label.chars().take(74).collect::<String>() + "…";
    }
    json!({ "text": { "type": "plain_text", "text": label }, "value": job.id.to_string() })
}

/// **Pause lower-priority jobs** / **Defer non-critical backfills**: shows
/// exactly which jobs would be paused, in a dialog to confirm.
pub async fn offer_pause(state: &AppState, click: &Click, defer: bool) {
    let action = if defer { "defer" } else { "pause_lower" };
    let Some((alert, tenant)) =
        authorise(state, &click.user, &click.value, action, Some(click)).await
    else {
        return;
    };
    let at_risk = match job_of(state, &alert).await {
        Ok(Some(j)) => j,
        Ok(None) => return tell(state, click, "The at-risk job no longer exists.").await,
        Err(why) => return tell(state, click, &why).await,
    };
    let all = match state.servo.active_jobs(&tenant.id, false).await {
        Ok(j) => j,
        Err(_) => {
            return tell(
                state,
                click,
                ":warning: Servo is unreachable right now; nothing changed.",
            )
            .await
        }
    };
    let kind = if defer {
        PauseKind::Defer
    } else {
        PauseKind::LowerPriority
    };
    let found = candidates(kind, &at_risk, all);
    if found.is_empty() {
        let what = if defer {
            "No best-effort jobs (priority 3 or lower) are running in this tenant, so there is nothing to defer."
        } else {
            "No running job has no SLA, or a later deadline and a lower priority than this one, so there is nothing to pause."
        };
        return tell(state, click, what).await;
    }
    let now = state.clock.now();
    let options: Vec<Value> = found
        .iter()
        .take(MAX_OPTIONS)
        .map(|j| option(j, now))
        .collect();
    let more = found.len().saturating_sub(MAX_OPTIONS);
    let intro = format!(
        "These {} running job(s) would be paused with Servo's pause (the partition in flight finishes first), to free capacity for *{}*. Untick any to keep running.{}",
        found.len(),
        at_risk.asset_name.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        if more > 0 { format!(" ({more} more are not listed; run this again afterwards.)") } else { String::new() }
    );
    let view = json!({
        "type": "modal",
        "callback_id": PAUSE_VIEW,
        "notify_on_close": true,
        "private_metadata": json!({ "alert_id": alert.id, "channel": click.channel, "kind": action }).to_string(),
        "title": { "type": "plain_text", "text": if defer { "Defer backfills" } else { "Pause lower priority" } },
        "submit": { "type": "plain_text", "text": "Pause them" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": intro } },
            { "type": "input", "block_id": "jobs", "label": { "type": "plain_text", "text": "Jobs to pause" },
              "element": { "type": "multi_static_select", "action_id": "value", "options": options, "initial_options": options } }
        ]
    });
    let Some(trigger) = &click.trigger_id else {
        return tell(
            state,
            click,
            "Slack sent no trigger for a dialog; try the button again.",
        )
        .await;
    };
    if let Err(e) = state
        .slack
        .call(
            "views.open",
            &json!({ "trigger_id": trigger, "view": view }),
        )
        .await
    {
        tracing::warn!(error = %e, "views.open failed");
        tell(state, click, "The dialog could not open (Slack allows 3 seconds after a click); try the button again.").await;
    }
}

/// The confirmed pause: pauses each chosen job and reports each result.
pub async fn confirm_pause(state: &AppState, user: &str, metadata: &Value, job_ids: Vec<String>) {
    let Some(alert_id) = metadata.get("alert_id").and_then(Value::as_str) else {
        return;
    };
    let channel = metadata
        .get("channel")
        .and_then(Value::as_str)
        .map(str::to_string);
    let reply_to = Click {
        user: user.to_string(),
        action_id: PAUSE_VIEW.into(),
        value: alert_id.to_string(),
        channel,
        message_ts: None,
        response_url: None,
        trigger_id: None,
    };
    let Some((alert, tenant)) =
        authorise(state, user, alert_id, "pause_lower", Some(&reply_to)).await
    else {
        return;
    };
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
            .begin_intent("pause", &alert.id, &tenant.id, &id, user, now)
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
        let (line, status, why, change, outcome) =
            match state.servo.pause(&tenant.id, uuid, now).await {
                Ok(job) => {
                    paused += 1;
                    (
                        format!(
                            ":double_vertical_bar: paused *{}* (`{id}`)",
                            crate::slack::render::escape_slack(&job.asset_name)
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
        effects.record(alerts::audit_entry(
            state, &alert, user, "pause", &outcome, detail,
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
        "<@{user}> paused {paused} of {} job(s) to make room:\n{}",
        lines.len(),
        lines.join("\n")
    );
    note(state, &alert, note_key(&alert, "pause"), &summary).await;
    tell(state, &reply_to, &summary).await;
    refresh(state, &alert).await;
}

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

// ------------------------------------------------------------------ recreate

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

// ------------------------------------------------------ scaling and notify

/// The action id of the Acknowledge button on a scaling page; its value is
/// `<alert id>:<request number>`.
pub const SCALING_ACK_ACTION: &str = "scaling_ack";

/// The runbook's asks of the platform team when a job is at high risk.
const SCALING_ASKS: &str =
    "• Scale up the executors\n• Lower other workloads' resource limits\n• Enable burst capacity";

/// **Request scaling**: a real page to the platform tier (the runbook's
/// resource scaling decisions): a DM with Acknowledge to each of its people,
/// a PagerDuty trigger when the tier has a routing key, and a note in the
/// alert's thread that says who asked and mentions who was paged. It can be
/// asked again once `mitigations.scaling_cooldown` has passed.
pub async fn request_scaling(state: &AppState, click: &Click) {
    let Some((alert, tenant)) = authorise(
        state,
        &click.user,
        &click.value,
        "request_scaling",
        Some(click),
    )
    .await
    else {
        return;
    };
    let Some(tier) = crate::flows::escalation::scaling_tier(state) else {
        return tell(state, click, "No escalation tier is configured to page.").await;
    };
    if !alert.is_open() {
        return tell(
            state,
            click,
            "This alert is resolved; there is nothing to scale for.",
        )
        .await;
    }
    let targets = match state.directory.expand(&tier.notify).await {
        Ok(t) => t,
        Err(_) => {
            return tell(
                state,
                click,
                "I could not resolve the platform tier's people with Slack just now; nobody was paged. Try again in a moment.",
            )
            .await
        }
    };
    let now = state.clock.now();
    let cooldown = chrono::Duration::from_std(state.config.scaling_cooldown).unwrap_or_default();
    let count = match state
        .store
        .claim_scaling_request(&alert.id, &tenant.id, &click.user, now, cooldown)
        .await
    {
        Ok(Some(n)) => n,
        Ok(None) => {
            let last = state.store.scaling_request(&alert.id).await.ok().flatten();
            audit(
                state,
                &alert,
                &click.user,
                "request_scaling",
                "refused: cooling down",
                json!({}),
            )
            .await;
            let text = match last {
                Some(r) => {
                    let at =
                        chrono::DateTime::from_timestamp_millis(r.requested_at_ms).unwrap_or(now);
                    format!(
                        "Scaling was requested {} by {}{}. It can be requested again {}.",
                        date_token(at),
                        state.directory.user_name(&r.requested_by).await,
                        match &r.acked_by {
                            Some(by) => format!(
                                ", and {} acknowledged it",
                                state.directory.user_name(by).await
                            ),
                            None => ", not acknowledged yet".into(),
                        },
                        date_token(at + cooldown)
                    )
                }
                None => "Scaling was requested moments ago.".into(),
            };
            return tell(state, click, &text).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a scaling request failed");
            return tell(
                state,
                click,
                ":warning: The request could not be recorded; nobody was paged. Try again.",
            )
            .await;
        }
    };
    let asker = state.directory.user_name(&click.user).await;
    let facts = crate::flows::escalation::PageFacts::of(state, &alert);
    let dm = facts.message(
        state,
        &format!(":rocket: *Emergency scaling requested* by {asker}"),
        &[
            format!("*The runbook asks the platform team to*\n{SCALING_ASKS}"),
            format!(
                "*Your part* (as *{}*): {}.",
                crate::slack::render::escape_slack(&tier.name),
                crate::slack::render::escape_slack(&tier.purpose)
            ),
        ],
        SCALING_ACK_ACTION,
        &format!("{}:{count}", alert.id),
    );
    let key = format!("scaling:{}:{count}", alert.id);
    let mut messages: Vec<NewOutboxMessage> = targets
        .iter()
        .map(|user| {
            let mut payload = dm.clone();
            payload["channel"] = user.as_str().into();
            NewOutboxMessage::call("chat.postMessage", payload, format!("{key}:{user}"))
        })
        .collect();
    let who: Vec<String> = targets.iter().map(|u| format!("<@{u}>")).collect();
    match alerts::thread_message(
        state,
        &alert,
        format!("{key}:note"),
        &format!(
            ":rocket: {asker} requested emergency scaling: paging *{}* ({}) to scale executors, lower other workloads' limits or enable burst capacity.",
            crate::slack::render::escape_slack(&tier.name),
            if who.is_empty() { "nobody resolved".to_string() } else { who.join(" ") }
        ),
    ) {
        Ok(m) => messages.push(m),
        Err(e) => tracing::error!(error = %e, "the scaling note did not render"),
    }
    if let Some(env) = &tier.pagerduty_routing_key_env {
        let mut event = facts.pagerduty_trigger(
            state,
            env,
            &tier.name,
            &tier.purpose,
            &format!("emergency scaling requested by {asker}"),
        );
        event["dedup_key"] = scaling_dedup_key(&alert.id, count).into();
        let summary = format!(
            "Emergency scaling requested: {}",
            event["payload"]["summary"].as_str().unwrap_or_default()
        );
        event["payload"]["summary"] = summary.chars().take(1024).collect::<String>().into();
        messages.push(NewOutboxMessage::call(
            crate::pagerduty::OUTBOX_METHOD,
            event,
            format!("{key}:pd"),
        ));
    }
    if let Err(e) = state.enqueue_many(&messages).await {
        tracing::error!(error = %e, "the scaling page could not be queued");
        return tell(
            state,
            click,
            ":warning: The page could not be queued; try again.",
        )
        .await;
    }
    state
        .metrics
        .inc("servo_sla_bot_pages_total", &[("tier", &tier.name)]);
    audit(
        state,
        &alert,
        &click.user,
        "request_scaling",
        "ok",
        json!({ "tier": tier.name, "paged": targets, "request": count }),
    )
    .await;
    tell(
        state,
        click,
        &format!(
            ":rocket: Paged *{}* ({}) for emergency scaling{}. It can be requested again {}.",
            crate::slack::render::escape_slack(&tier.name),
            crate::flows::escalation::tier_names(state, tier).await,
            if tier.pagerduty_routing_key_env.is_some() {
                ", by DM and PagerDuty"
            } else {
                " by DM"
            },
            date_token(now + cooldown)
        ),
    )
    .await;
}

/// PagerDuty's incident for one scaling request: apart from the alert's own.
pub fn scaling_dedup_key(alert_id: &str, count: i64) -> String {
    format!("servo-sla-bot-{alert_id}-scaling-{count}")
}

/// **Acknowledge** on a scaling page: the platform tier has it. Decided once
/// however often it is clicked; mirrored to PagerDuty and said in the thread.
pub async fn ack_scaling(state: &AppState, click: &Click) {
    let Some((alert_id, count)) = click
        .value
        .rsplit_once(':')
        .and_then(|(a, n)| n.parse::<i64>().ok().map(|n| (a.to_string(), n)))
    else {
        return tell(
            state,
            click,
            "This button is not one I recognise; nothing changed.",
        )
        .await;
    };
    let Ok(Some(alert)) = state.store.get_alert(&alert_id).await else {
        return tell(state, click, "This alert no longer exists.").await;
    };
    if !crate::flows::escalation::may_respond(state, &alert, &click.user).await {
        audit(
            state,
            &alert,
            &click.user,
            "ack_scaling",
            "refused: not an operator",
            json!({}),
        )
        .await;
        return tell(state, click, ":no_entry: Only the tenant's operators and the people on the escalation path can acknowledge a scaling request.").await;
    }
    let now = state.clock.now();
    match state
        .store
        .ack_scaling_request(&alert_id, count, &click.user, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let by = match state.store.scaling_request(&alert_id).await.ok().flatten() {
                Some(r) if r.count == count => match r.acked_by {
                    Some(by) => format!(
                        "Already acknowledged by {}.",
                        state.directory.user_name(&by).await
                    ),
                    None => "Nothing changed.".into(),
                },
                _ => "A newer scaling request replaced this one; acknowledge that one.".into(),
            };
            return tell(state, click, &by).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "acknowledging a scaling request failed");
            return tell(
                state,
                click,
                ":warning: Something went wrong on our side; nothing changed. Try again.",
            )
            .await;
        }
    }
    let name = state.directory.user_name(&click.user).await;
    let mut messages = Vec::new();
    if let Ok(m) = alerts::thread_message(
        state,
        &alert,
        format!("scaling:{alert_id}:{count}:ack"),
        &format!(
            ":white_check_mark: {name} acknowledged the scaling request {}.",
            date_token(now)
        ),
    ) {
        messages.push(m);
    }
    if let Some(env) = crate::flows::escalation::scaling_tier(state)
        .and_then(|t| t.pagerduty_routing_key_env.clone())
    {
        messages.push(NewOutboxMessage::call(
            crate::pagerduty::OUTBOX_METHOD,
            json!({ "routing_key_env": env, "event_action": "acknowledge", "dedup_key": scaling_dedup_key(&alert_id, count) }),
            format!("scaling:{alert_id}:{count}:pd-ack"),
        ));
    }
    if let Err(e) = state.enqueue_many(&messages).await {
        tracing::error!(error = %e, "the scaling acknowledgement could not be queued");
    }
    audit(
        state,
        &alert,
        &click.user,
        "ack_scaling",
        "ok",
        json!({ "request": count }),
    )
    .await;
    tell(
        state,
        click,
        ":white_check_mark: Acknowledged: the thread says you have the scaling request.",
    )
    .await;
}

/// **Notify stakeholders**: asks for an impact line, then tells them.
pub async fn offer_notify(state: &AppState, click: &Click) {
    let Some((alert, _)) = authorise(
        state,
        &click.user,
        &click.value,
        "notify_stakeholders",
        Some(click),
    )
    .await
    else {
        return;
    };
    let Some(trigger) = &click.trigger_id else {
        return tell(
            state,
            click,
            "Slack sent no trigger for a dialog; try the button again.",
        )
        .await;
    };
    let view = json!({
        "type": "modal",
        "callback_id": NOTIFY_VIEW,
        "private_metadata": json!({ "alert_id": alert.id, "channel": click.channel }).to_string(),
        "title": { "type": "plain_text", "text": "Notify stakeholders" },
        "submit": { "type": "plain_text", "text": "Notify" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": "The job's stakeholders get the expected completion time and the band, in the alert's thread and by DM." } },
            { "type": "input", "block_id": "impact", "label": { "type": "plain_text", "text": "Impact" },
              "element": { "type": "plain_text_input", "action_id": "value", "max_length": 500,
                           "initial_value": "Downstream reports that depend on this backfill may be late." } }
        ]
    });
    if let Err(e) = state
        .slack
        .call(
            "views.open",
            &json!({ "trigger_id": trigger, "view": view }),
        )
        .await
    {
        tracing::warn!(error = %e, "views.open failed");
        tell(
            state,
            click,
            "The dialog could not open; try the button again.",
        )
        .await;
    }
}

pub async fn confirm_notify(
    state: &AppState,
    user: &str,
    metadata: &Value,
    impact: String,
    view_id: &str,
) {
    let Some(alert_id) = metadata.get("alert_id").and_then(Value::as_str) else {
        return;
    };
    let Some((alert, tenant)) = authorise(state, user, alert_id, "notify_stakeholders", None).await
    else {
        return;
    };
    let job = job_of(state, &alert).await.ok().flatten();
    let (asset, tier) = job
        .as_ref()
        .map(|j| (j.asset_name.clone(), SlaTier::from_priority(j.priority)))
        .unwrap_or_else(|| ("the job".into(), SlaTier::Standard));
    let who = approvals::stakeholders(&state.config, tenant, &asset, tier);
    let people = state.directory.expand(&who).await.unwrap_or_default();
    let band = RiskBand::parse(&alert.band)
        .map(|b| format!("{} {}", b.emoji(), b.label()))
        .unwrap_or_default();
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
    note(
        state,
        &alert,
        format!("notify:{}:{view_id}:thread", alert.id),
        &text,
    )
    .await;
    for p in &people {
        let _ = state
            .enqueue(NewOutboxMessage::call(
                "chat.postMessage",
                json!({ "channel": p, "text": text }),
                format!("notify:{}:{view_id}:{p}", alert.id),
            ))
            .await;
    }
    audit(
        state,
        &alert,
        user,
        "notify_stakeholders",
        "ok",
        json!({ "notified": people, "impact": impact }),
    )
    .await;
}

// ------------------------------------------------------------ repair

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn job(priority: i32, deadline_h: Option<i64>, state: JobState) -> Job {
        let now = Utc::now();
        Job {
            id: uuid::Uuid::new_v4(),
            tenant_id: "acme".into(),
            asset_id: uuid::Uuid::nil(),
            asset_name: "a".into(),
            asset_owner: None,
            idempotency_key: String::new(),
            state,
            execution_strategy: Value::Null,
            partition_start: None,
            partition_end: None,
            partition_keys: vec![],
            total_partitions: 10,
            completed_partitions: 1,
            failed_partitions: 0,
            skipped_partitions: 0,
            error_message: None,
            created_by: None,
            created_at: now,
            started_at: None,
            completed_at: None,
            heartbeat_at: None,
            version: 1,
            paused_at: None,
            checkpoint_partition_key: None,
            estimated_completion_at: None,
            avg_partition_duration_ms: None,
            parent_job_id: None,
            upstream_job_count: 0,
            completed_upstream_jobs: 0,
            sla_deadline_at: deadline_h.map(|h| now + Duration::hours(h)),
            priority,
            recent_durations_ms: vec![],
            forecast: None,
            judge_on_p90: false,
        }
    }

    #[test]
    fn lower_priority_candidates_have_no_sla_or_a_later_deadline_and_lower_priority() {
        let at_risk = job(6, Some(2), JobState::Running);
        let no_sla = job(9, None, JobState::Running);
        let later_lower = job(3, Some(5), JobState::Running);
        let later_higher = job(8, Some(5), JobState::Running);
        let sooner_lower = job(1, Some(1), JobState::Running);
        let paused = job(1, None, JobState::Paused);
        let found: Vec<_> = candidates(
            PauseKind::LowerPriority,
            &at_risk,
            vec![
                at_risk.clone(),
                no_sla.clone(),
                later_lower.clone(),
                later_higher,
                sooner_lower,
                paused,
            ],
        )
        .into_iter()
        .map(|j| j.id)
        .collect();
        assert_eq!(found, vec![no_sla.id, later_lower.id]);
    }

    #[test]
    fn defer_candidates_are_the_running_best_effort_jobs() {
        let at_risk = job(2, Some(2), JobState::Running);
        let best = job(3, Some(9), JobState::Running);
        let below = job(-2, None, JobState::Running);
        let standard = job(4, None, JobState::Running);
        let found: Vec<_> = candidates(
            PauseKind::Defer,
            &at_risk,
            vec![at_risk.clone(), best.clone(), below.clone(), standard],
        )
        .into_iter()
        .map(|j| j.id)
        .collect();
        assert_eq!(found, vec![best.id, below.id]);
    }
}
