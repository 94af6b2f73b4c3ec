//! **Monitor closely**: the check-ins a monitor timer brings, each a note
//! in the alert's thread with the progress since the last one, the ETA's
//! trend and the band (loudly when it got worse), and the next one
//! scheduled while the alert is open. The button that starts and stops it
//! is [`crate::actions::mitigations`]; what it decides is [`start`] and
//! [`stop`], each one commit.

use crate::context::AppState;
use crate::domain::assessment::{self};
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::flows::ids::MONITOR_TIMER;
use crate::servo::Job;
use crate::store::{Alert, Effects, NewTimer};
use serde_json::{json, Value};

/// The alert's job, or what to tell the user when Servo cannot say.
pub(crate) async fn job_of(state: &AppState, alert: &Alert) -> Result<Option<Job>, String> {
    let id: uuid::Uuid = alert
        .job_id
        .parse()
        .map_err(|_| "the alert's job id is not valid".to_string())?;
    state
        .servo
        .get_job(&alert.tenant_id, id)
        .await
        .map_err(|_| {
            ":warning: Servo is unreachable right now; nothing changed. Try again in a minute."
                .to_string()
        })
}

/// A check-in is due: progress since the last one, the ETA's trend and the
/// band; loudly if the band got worse. Schedules the next one while open.
pub async fn check_in(state: &AppState, alert_id: &str, payload: &Value) -> anyhow::Result<()> {
    let now = state.clock.now();
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(());
    };
    if !alert.is_open() {
        return Ok(());
    }
    let by = payload.get("by").and_then(Value::as_str).unwrap_or("");
    let run = payload.get("run").and_then(Value::as_i64).unwrap_or(0);
    let last_completed = payload.get("completed").and_then(Value::as_i64);
    let last_eta = payload.get("eta_ms").and_then(Value::as_i64);
    let last_band = payload
        .get("band")
        .and_then(Value::as_str)
        .and_then(RiskBand::parse);
    let (text, next_payload) = match job_of(state, &alert).await {
        Ok(Some(job)) => {
            let thresholds = state.config.risk.thresholds();
            let a = assessment::assess(&job.snapshot(), now, &thresholds, Some(alert.band));
            let progress = match last_completed {
                Some(c) => format!(
                    "+{} since the last check-in",
                    crate::domain::text::count(
                        job.completed_partitions - c,
                        "partition",
                        "partitions"
                    )
                ),
                None => "first check-in".into(),
            };
            let trend = match (a.eta, last_eta) {
                (Some(eta), Some(last)) => {
                    let delta = (eta.timestamp_millis() - last) / 60_000;
                    match delta {
                        d if d > 0 => {
                            format!("ETA {} ({d} min later than before)", date_token(eta))
                        }
                        d if d < 0 => {
                            format!("ETA {} ({} min earlier than before)", date_token(eta), -d)
                        }
                        _ => format!("ETA {} (unchanged)", date_token(eta)),
                    }
                }
                (Some(eta), None) => format!("ETA {}", date_token(eta)),
                (None, _) => "ETA unknown".into(),
            };
            let worse = last_band.is_some_and(|b| a.band > b);
            let text = if worse {
                format!(
                    ":rotating_light: *Worse: risk rose from {} to {}.* <@{by}> {}/{} done ({progress}), {trend}, deadline {}.",
                    last_band.map(|b| b.label()).unwrap_or("?"),
                    a.band.label(),
                    job.completed_partitions,
                    job.total_partitions,
                    job.sla_deadline_at.map(date_token).unwrap_or_default()
                )
            } else {
                format!(
                    ":eyes: Check-in: {}/{} done ({progress}), {trend}, band {} {}.",
                    job.completed_partitions,
                    job.total_partitions,
                    a.band.emoji(),
                    a.band.label()
                )
            };
            let next = json!({ "by": by, "completed": job.completed_partitions, "eta_ms": a.eta.map(|e| e.timestamp_millis()), "band": a.band.as_str(), "run": run });
            (text, next)
        }
        Ok(None) => return Ok(()),
        Err(why) => (
            format!(
                ":warning: Check-in skipped: {}",
                why.trim_start_matches(":warning: ")
            ),
            payload.clone(),
        ),
    };
    let seq = payload.get("seq").and_then(Value::as_i64).unwrap_or(0) + 1;
    crate::flows::thread::reply_in_thread(
        state,
        &alert,
        format!("monitor:{}:{run}:{seq}:note", alert.id),
        &text,
    )
    .await?;
    let every = chrono::Duration::from_std(state.config.monitor_every)
        .unwrap_or(chrono::Duration::minutes(15));
    let mut next_payload = next_payload;
    next_payload["seq"] = seq.into();
    state
        .store
        .schedule_timer(
            NewTimer {
                kind: MONITOR_TIMER.into(),
                subject_id: alert.id.clone(),
                payload: next_payload,
                due_at: now + every,
                dedup_key: Some(format!("monitor:{}:{run}:{seq}", alert.id)),
            },
            now,
        )
        .await?;
    Ok(())
}

/// What a click on **Monitor closely** or **Stop monitoring** came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitoring {
    /// This click started (or stopped) it.
    Changed,
    /// It already was (or was not) being monitored: nothing changed.
    Unchanged,
}

/// **Monitor closely**, by `user` (an operator, checked by the caller): the
/// first check-in scheduled `monitor_every` from now, in one commit with
/// the audit entry and the note in the thread. A double click schedules
/// one: the check-in's dedup key numbers the run.
pub async fn start(state: &AppState, alert: &Alert, user: &str) -> anyhow::Result<Monitoring> {
    let now = state.clock.now();
    let timers = state.store.list_timers(Some(&alert.id)).await?;
    if timers
        .iter()
        .any(|t| t.kind == MONITOR_TIMER && t.status == "pending")
    {
        return Ok(Monitoring::Unchanged);
    }
    let run = timers.iter().filter(|t| t.kind == MONITOR_TIMER).count();
    let every = chrono::Duration::from_std(state.config.monitor_every)
        .unwrap_or(chrono::Duration::minutes(15));
    let first = NewTimer {
        kind: MONITOR_TIMER.into(),
        subject_id: alert.id.clone(),
        payload: json!({ "by": user, "completed": null, "eta_ms": alert.eta.map(|e| e.timestamp_millis()), "band": alert.band, "run": run }),
        due_at: now + every,
        dedup_key: Some(format!("monitor:{}:{run}:0", alert.id)),
    };
    let mut effects = Effects::new();
    effects
        .record(crate::flows::thread::audit_entry(
            state,
            alert,
            user,
            "monitor",
            "ok",
            json!({ "every_min": every.num_minutes() }),
        ))
        .send(crate::flows::thread::thread_message(
            state,
            alert,
            format!("alert:{}:monitor:{run}", alert.id),
            &format!(":eyes: <@{user}> is monitoring this closely: a check-in here every {} until it resolves.", crate::domain::text::count(every.num_minutes(), "minute", "minutes")),
        )?);
    if !state
        .store
        .start_monitoring_with(&first, &effects, now)
        .await?
    {
        return Ok(Monitoring::Unchanged);
    }
    state.wake_outbox();
    crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    Ok(Monitoring::Changed)
}

/// **Stop monitoring**, by `user` (an operator): its pending check-in
/// cancelled, in one commit with the audit entry and the note.
pub async fn stop(state: &AppState, alert: &Alert, user: &str) -> anyhow::Result<Monitoring> {
    let now = state.clock.now();
    let mut effects = Effects::new();
    effects
        .record(crate::flows::thread::audit_entry(
            state,
            alert,
            user,
            "stop_monitor",
            "ok",
            json!({}),
        ))
        .send(crate::flows::thread::thread_message(
            state,
            alert,
            format!(
                "alert:{}:unmonitor:{}",
                alert.id,
                uuid::Uuid::new_v4().simple()
            ),
            &format!(":no_bell: <@{user}> stopped the close monitoring."),
        )?);
    if !state
        .store
        .stop_monitoring_with(&alert.id, MONITOR_TIMER, &effects, now)
        .await?
    {
        return Ok(Monitoring::Unchanged);
    }
    state.wake_outbox();
    crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    Ok(Monitoring::Changed)
}
