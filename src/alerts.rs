//! Reconciles assessments with what Slack shows. A new at-risk job gets one
//! post per risk episode; a change of band, ETA or progress edits it in place
//! (at most once per poll); a band change also gets a thread reply; a job back
//! on track, finished or cancelled resolves the alert and its buttons go.
//!
//! Every Slack call goes through the outbox with a dedup key derived from the
//! alert and its version, so a restart (or a second replica) never posts an
//! episode twice.

use crate::app::AppState;
use crate::config::Tenant;
use crate::risk::{Assessment, JobState, RiskBand, SlaTier};
use crate::servo::Job;
use crate::slack::render::{date_token, RenderError};
use crate::store::{Alert, NewAlert, NewOutboxMessage, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("escalation: {0}")]
    Escalation(String),
}

fn esc_err(e: anyhow::Error) -> AlertError {
    AlertError::Escalation(e.to_string())
}

/// What the alert message shows. Compared with the stored `shown` value to
/// decide whether Slack needs an edit, so it holds only what the reader sees.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct AlertView {
    pub band: String,
    pub headline: String,
    pub emoji: String,
    pub colour: String,
    pub asset: String,
    pub job_id: String,
    pub state: String,
    pub completed: i64,
    pub failed: i64,
    pub total: i64,
    pub eta_token: String,
    pub eta_fallback: String,
    pub deadline_token: String,
    pub deadline_fallback: String,
    pub severity: String,
    pub tier: String,
    pub priority: i32,
    pub bottlenecks: Vec<String>,
    /// How it ended, or who acknowledged it: a line of Slack markup.
    pub outcome: Option<String>,
    pub buttons: Vec<Button>,
    pub status_line: String,
    pub runbook_url: String,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Button {
    pub action_id: String,
    pub text: String,
    pub value: String,
    pub style: Option<String>,
    /// Slack's own confirm dialog, shown before the click reaches the bot.
    pub confirm: Option<Confirm>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub text: String,
    pub confirm: String,
    pub deny: String,
}

/// The action id of the Acknowledge button.
pub const ACK_ACTION: &str = "alert_ack";
pub const MONITOR_ACTION: &str = "mitigate_monitor";
pub const STOP_MONITOR_ACTION: &str = "mitigate_stop_monitor";
pub const DEFER_ACTION: &str = "mitigate_defer";
pub const PAUSE_LOWER_ACTION: &str = "mitigate_pause_lower";
pub const RECREATE_ACTION: &str = "mitigate_recreate";
pub const SCALING_ACTION: &str = "mitigate_scaling";
pub const NOTIFY_ACTION: &str = "mitigate_notify";
pub const RESUME_PAUSED_ACTION: &str = "mitigate_resume_paused";
/// The timer kind of **Monitor closely** check-ins.
pub const MONITOR_TIMER: &str = "monitor_checkin";

/// What else decides an alert's buttons besides its band.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    /// Monitor closely is on (a check-in is scheduled).
    pub monitoring: bool,
    /// Jobs the bot paused for this alert and has not resumed.
    pub paused_by_bot: usize,
}

/// Reads an alert's extras from the store.
pub async fn extras(state: &AppState, alert_id: &str) -> Result<Extras, StoreError> {
    let monitoring = state
        .store
        .list_timers(Some(alert_id))
        .await?
        .iter()
        .any(|t| t.kind == MONITOR_TIMER && t.status == "pending");
    let paused_by_bot = state.store.paused_for_alert(alert_id).await?.len();
    Ok(Extras {
        monitoring,
        paused_by_bot,
    })
}

fn button(action_id: &str, text: &str, value: &str, style: Option<&str>) -> Button {
    Button {
        action_id: action_id.into(),
        text: text.into(),
        value: value.into(),
        style: style.map(str::to_string),
        confirm: None,
    }
}

/// The buttons an alert shows: the runbook's mitigations for its band, and
/// Acknowledge until someone has. A resolved alert offers only to resume the
/// jobs the bot paused for it.
pub fn buttons(
    alert: &Alert,
    band: Option<RiskBand>,
    priority: i32,
    extras: &Extras,
) -> Vec<Button> {
    let id = alert.id.as_str();
    let mut out = Vec::new();
    let Some(band) = band.filter(|b| b.is_at_risk() && alert.is_open()) else {
        if extras.paused_by_bot > 0 {
            out.push(button(
                RESUME_PAUSED_ACTION,
                &format!("Resume {} paused job(s)", extras.paused_by_bot),
                id,
                Some("primary"),
            ));
        }
        return out;
    };
    if alert.acked_by.is_none() {
        out.push(button(ACK_ACTION, "Acknowledge", id, Some("primary")));
    }
    match band {
        RiskBand::Low => {
            if extras.monitoring {
                out.push(button(STOP_MONITOR_ACTION, "Stop monitoring", id, None));
            } else {
                out.push(button(MONITOR_ACTION, "Monitor closely", id, None));
            }
            out.push(button(
                DEFER_ACTION,
                "Defer non-critical backfills",
                id,
                None,
            ));
        }
        RiskBand::Medium => {
            out.push(button(
                PAUSE_LOWER_ACTION,
                "Pause lower-priority jobs",
                id,
                None,
            ));
            out.push(button(
                crate::actions::extension::REQUEST_ACTION,
                "Request extension",
                id,
                None,
            ));
        }
        _ => {
            if priority < 10 {
                let mut b = button(
                    RECREATE_ACTION,
                    "Recreate with priority 10",
                    id,
                    Some("danger"),
                );
                b.confirm = Some(Confirm {
                    title: "Recreate at priority 10?".into(),
                    text: "The job is cancelled (SLA at risk - recreating with higher priority) and its uncompleted partitions start again as a new job with priority 10 and the same deadline.".into(),
                    confirm: "Recreate".into(),
                    deny: "Keep the job".into(),
                });
                out.push(b);
            }
            out.push(button(SCALING_ACTION, "Request scaling", id, None));
            out.push(button(NOTIFY_ACTION, "Notify stakeholders", id, None));
            out.push(button(
                crate::actions::extension::REQUEST_ACTION,
                "Request extension",
                id,
                None,
            ));
        }
    }
    if extras.paused_by_bot > 0 {
        out.push(button(
            RESUME_PAUSED_ACTION,
            &format!("Resume {} paused job(s)", extras.paused_by_bot),
            id,
            None,
        ));
    }
    out.push(button(
        crate::escalation::ESCALATE_ACTION,
        "Escalate now",
        id,
        None,
    ));
    out
}

/// Re-renders an alert's buttons from what it shows (after a mitigation
/// changed what it should offer), editing the message only if they changed.
pub async fn refresh(state: &AppState, alert_id: &str) -> Result<(), AlertError> {
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(());
    };
    let Some(mut view) = alert
        .shown
        .clone()
        .and_then(|v| serde_json::from_value::<AlertView>(v).ok())
    else {
        return Ok(());
    };
    let ex = extras(state, alert_id).await?;
    let fresh = buttons(&alert, RiskBand::parse(&view.band), view.priority, &ex);
    if fresh == view.buttons {
        return Ok(());
    }
    view.buttons = fresh;
    let shown = serde_json::to_value(&view).unwrap_or(Value::Null);
    // A resolved alert keeps its final state; only what it shows changes.
    state.store.set_alert_shown(&alert.id, &shown).await?;
    edit(
        state,
        &alert,
        &view,
        format!(
            "alert:{}:buttons:{}",
            alert.id,
            uuid::Uuid::new_v4().simple()
        ),
    )
    .await
}

fn headline(band: RiskBand) -> &'static str {
    match band {
        RiskBand::Breached => "SLA breached",
        RiskBand::High => "High SLA risk",
        RiskBand::Medium => "Medium SLA risk",
        RiskBand::Low => "Low SLA risk",
        _ => "SLA risk",
    }
}

/// The severity as readers want it: a percentage of the time left.
pub fn severity_text(severity: Option<f64>, band: RiskBand) -> String {
    match (band, severity) {
        (RiskBand::Breached, _) => "deadline passed".into(),
        (_, Some(s)) if s.is_infinite() => "due now".into(),
        (_, Some(s)) => format!("{:.0}% late", s * 100.0),
        (_, None) => "unknown".into(),
    }
}

fn fallback(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// ETAs move a little every poll; readers care about minutes, and an edit
/// per second of drift would spend Slack's rate limit for nothing.
fn to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(60), 0).unwrap_or(t)
}

fn token(t: Option<DateTime<Utc>>) -> String {
    t.map(date_token).unwrap_or_else(|| "unknown".into())
}

/// The ETA as shown: the forecast's P50 "likely by" its P90 when the bot
/// forecast from the partition history, else the ETA risk was judged on.
pub fn eta_text(job: &Job, a: &Assessment, now: DateTime<Utc>) -> String {
    match (job.forecast, a.eta_source) {
        (Some((p50, p90)), crate::risk::EtaSource::Forecast) => format!(
            "{}, likely by {}",
            date_token(to_minute(p50.max(now))),
            date_token(to_minute(p90.max(now)))
        ),
        _ => token(a.eta.map(to_minute)),
    }
}

/// Says so when Servo's own ETA and the forecast disagree by much: more than
/// 15 minutes and more than a quarter of the time left.
pub fn disagreement(job: &Job, now: DateTime<Utc>) -> Option<String> {
    let (p50, _) = job.forecast?;
    let servo = job.estimated_completion_at?;
    let gap = servo - p50;
    let left = (p50 - now).max(chrono::Duration::minutes(1));
    if gap.num_minutes().abs() <= 15 || gap.num_seconds().abs() * 4 <= left.num_seconds() {
        return None;
    }
    Some(format!(
        "Servo's own estimate ({}) is {} min {} than the forecast from the partition history",
        // Plain text: bottleneck lines are escaped for Slack, so no date token here.
        to_minute(servo).format("%a %H:%M UTC"),
        gap.num_minutes().abs(),
        if gap > chrono::Duration::zero() {
            "later"
        } else {
            "earlier"
        }
    ))
}

/// Builds the view of an alert for a job and its assessment.
pub fn view(
    state: &AppState,
    job: &Job,
    a: &Assessment,
    alert: Option<&Alert>,
    ex: &Extras,
) -> AlertView {
    let band = a.band;
    let mut buttons_now = Vec::new();
    let mut outcome = None;
    if let Some(alert) = alert {
        if let (Some(by), Some(at)) = (&alert.acked_by, alert.acked_at) {
            outcome = Some(format!(
                ":white_check_mark: Acknowledged by <@{by}> {}",
                date_token(at)
            ));
        }
        buttons_now = buttons(alert, Some(band), job.priority, ex);
    }
    AlertView {
        band: band.as_str().into(),
        headline: headline(band).into(),
        emoji: band.emoji().into(),
        colour: band.colour().into(),
        asset: job.asset_name.clone(),
        job_id: job.id.to_string(),
        state: job.state.as_str().replace('_', " "),
        completed: job.completed_partitions,
        failed: job.failed_partitions,
        total: job.total_partitions,
        eta_token: eta_text(job, a, state.clock.now()),
        eta_fallback: fallback(a.eta.map(to_minute)),
        deadline_token: token(job.sla_deadline_at),
        deadline_fallback: fallback(job.sla_deadline_at),
        severity: severity_text(a.severity, band),
        tier: a.tier.label().into(),
        priority: job.priority,
        bottlenecks: a
            .bottlenecks
            .iter()
            .map(|b| b.describe())
            .chain(disagreement(job, state.clock.now()))
            .collect(),
        outcome,
        buttons: buttons_now,
        status_line: format!("{} {}", band.label(), tier_note(a.tier)),
        runbook_url: state.config.runbook_url.clone(),
    }
}

fn tier_note(tier: SlaTier) -> &'static str {
    match tier {
        SlaTier::Critical => "· Critical tier: tight buffer (under 10%)",
        SlaTier::Standard => "· Standard tier: 20-30% buffer",
        SlaTier::BestEffort => "· Best effort tier: flexible",
        SlaTier::BelowBestEffort => "· below best effort",
    }
}

/// The message payload for a view (`chat.postMessage` / `chat.update` body, without channel/ts).
pub fn render(state: &AppState, view: &AlertView) -> Result<Value, RenderError> {
    state.templates.render("alert", view)
}

fn thread_note(state: &AppState, text: &str) -> Result<Value, RenderError> {
    state
        .templates
        .render("thread_note", &json!({ "text": text }))
}

/// A reply in the alert's thread, ready to enqueue.
pub fn thread_message(
    state: &AppState,
    alert: &Alert,
    dedup_key: String,
    text: &str,
) -> Result<NewOutboxMessage, AlertError> {
    // The outbox fills in the channel and thread_ts from the alert when it sends.
    Ok(NewOutboxMessage {
        dedup_key: Some(dedup_key),
        method: "chat.postMessage".into(),
        payload: thread_note(state, text)?,
        ordering_key: Some(alert.id.clone()),
        thread_alert_id: Some(alert.id.clone()),
        thread_field: Some("thread_ts".into()),
        link_kind: None,
        link_id: None,
        not_before: None,
    })
}

/// Enqueues a reply in the alert's thread.
pub async fn reply_in_thread(
    state: &AppState,
    alert: &Alert,
    dedup_key: String,
    text: &str,
) -> Result<(), AlertError> {
    state
        .enqueue(thread_message(state, alert, dedup_key, text)?)
        .await?;
    Ok(())
}

/// Enqueues an edit of the alert message with this view; `dedup_key` names
/// the change, so the same change is never sent twice.
pub async fn edit(
    state: &AppState,
    alert: &Alert,
    view: &AlertView,
    dedup_key: String,
) -> Result<(), AlertError> {
    // The outbox fills in the channel and ts from the alert when it sends.
    let payload = render(state, view)?;
    state
        .enqueue(NewOutboxMessage {
            dedup_key: Some(dedup_key),
            method: "chat.update".into(),
            payload,
            ordering_key: Some(alert.id.clone()),
            thread_alert_id: Some(alert.id.clone()),
            thread_field: Some("ts".into()),
            link_kind: None,
            link_id: None,
            not_before: None,
        })
        .await?;
    Ok(())
}

/// What reconciling one job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Posted,
    Edited,
    Resolved,
}

/// Brings Slack in line with one job's assessment.
pub async fn reconcile(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    existing: Option<Alert>,
    notice: Option<&crate::store::Notice>,
    now: DateTime<Utc>,
) -> Result<Change, AlertError> {
    let at_risk = a.band.is_at_risk();
    match existing {
        None if at_risk => {
            let (alert, created) = state
                .store
                .open_alert(
                    NewAlert {
                        tenant_id: tenant.id.clone(),
                        job_id: job.id.to_string(),
                        band: a.band.as_str().into(),
                        severity: a.severity.filter(|s| s.is_finite()),
                        eta: a.eta,
                        deadline: job.sla_deadline_at,
                        shown: None,
                    },
                    now,
                )
                .await?;
            let v = view(state, job, a, Some(&alert), &Extras::default());
            state
                .store
                .update_alert(
                    &alert.id,
                    a.band.as_str(),
                    a.severity.filter(|s| s.is_finite()),
                    a.eta,
                    job.sla_deadline_at,
                    Some(&serde_json::to_value(&v).unwrap_or(Value::Null)),
                    now,
                )
                .await?;
            let promoted = match notice.filter(|_| created) {
                Some(n) => promote_notice(state, &alert, n, &v, now).await?,
                None => false,
            };
            if created && !promoted {
                let mut payload = render(state, &v)?;
                payload["channel"] = tenant.channel.as_str().into();
                state
                    .enqueue(NewOutboxMessage {
                        dedup_key: Some(format!("alert:{}:post", alert.id)),
                        method: "chat.postMessage".into(),
                        payload,
                        ordering_key: Some(alert.id.clone()),
                        thread_alert_id: None,
                        thread_field: None,
                        link_kind: Some("alert".into()),
                        link_id: Some(alert.id.clone()),
                        not_before: None,
                    })
                    .await?;
            }
            crate::escalation::on_assessment(state, &alert, job, a, None)
                .await
                .map_err(esc_err)?;
            Ok(Change::Posted)
        }
        None => Ok(Change::None),
        Some(alert) if at_risk => {
            let previous = RiskBand::parse(&alert.band);
            crate::escalation::on_assessment(state, &alert, job, a, previous)
                .await
                .map_err(esc_err)?;
            // The escalation may have re-armed (cleared the acknowledgement).
            let alert = state.store.get_alert(&alert.id).await?.unwrap_or(alert);
            let ex = extras(state, &alert.id).await?;
            let v = view(state, job, a, Some(&alert), &ex);
            let v_json = serde_json::to_value(&v).unwrap_or(Value::Null);
            if alert.shown.as_ref() == Some(&v_json) {
                return Ok(Change::None);
            }
            state
                .store
                .update_alert(
                    &alert.id,
                    a.band.as_str(),
                    a.severity.filter(|s| s.is_finite()),
                    a.eta,
                    job.sla_deadline_at,
                    Some(&v_json),
                    now,
                )
                .await?;
            let version = alert.version + 1;
            edit(
                state,
                &alert,
                &v,
                format!("alert:{}:edit:{version}", alert.id),
            )
            .await?;
            if previous != Some(a.band) {
                let from = previous.map(|b| b.label()).unwrap_or("unknown");
                let worse = previous.is_none_or(|p| a.band > p);
                let text = if a.band == RiskBand::Breached {
                    format!(
                        ":rotating_light: *Deadline breached.* {} is still {} with {} of {} partitions left.",
                        job.asset_name,
                        job.state.as_str().replace('_', " "),
                        a.remaining,
                        job.total_partitions
                    )
                } else if worse {
                    format!(
                        "{} Risk rose from *{from}* to *{}*: {}. ETA {}, deadline {}.",
                        a.band.emoji(),
                        a.band.label(),
                        severity_text(a.severity, a.band),
                        token(a.eta),
                        token(job.sla_deadline_at)
                    )
                } else {
                    format!(
                        "{} Risk eased from *{from}* to *{}*: {}. ETA {}, deadline {}.",
                        a.band.emoji(),
                        a.band.label(),
                        severity_text(a.severity, a.band),
                        token(a.eta),
                        token(job.sla_deadline_at)
                    )
                };
                reply_in_thread(
                    state,
                    &alert,
                    format!("alert:{}:band:{version}", alert.id),
                    &text,
                )
                .await?;
            }
            Ok(Change::Edited)
        }
        Some(alert) => {
            // Unknown means "cannot tell", not "recovered": leave the alert as it is.
            if a.band != RiskBand::OnTrack
                && a.band != RiskBand::Finished
                && a.band != RiskBand::NoSla
            {
                return Ok(Change::None);
            }
            let how = match a.band {
                RiskBand::OnTrack => format!(
                    ":large_green_circle: Back on track: ETA {} is before the deadline {}.",
                    token(a.eta),
                    token(job.sla_deadline_at)
                ),
                _ => ":white_circle: The job no longer has an SLA deadline.".to_string(),
            };
            resolve(state, &alert, job, a, &how, now).await
        }
    }
}

/// A job with an open quiet notice (approaching, or a tight deadline) that
/// goes at risk: the notice's message becomes the alert, edited in place, so
/// the channel sees one message per job. False when the notice has no
/// message of its own to become it (the caller posts the alert afresh).
async fn promote_notice(
    state: &AppState,
    alert: &Alert,
    notice: &crate::store::Notice,
    v: &AlertView,
    now: DateTime<Utc>,
) -> Result<bool, AlertError> {
    // A notice that is a reply in an earlier alert's thread (or was listed
    // with others) has no message of its own to become the alert.
    if !state
        .store
        .close_notice(&notice.id, "promoted", Some(&alert.id), now)
        .await?
        || notice.thread_of.is_some()
        || !crate::watch::has_message(state, &notice.id).await?
    {
        return Ok(false);
    }
    // The outbox finds the notice's channel and ts when it sends (its post
    // may still be on its way), and records them on the alert on success.
    state
        .enqueue(NewOutboxMessage {
            dedup_key: Some(format!("alert:{}:post", alert.id)),
            method: "chat.update".into(),
            payload: render(state, v)?,
            ordering_key: Some(alert.id.clone()),
            thread_alert_id: Some(format!("notice:{}", notice.id)),
            thread_field: Some("ts".into()),
            link_kind: Some("alert".into()),
            link_id: Some(alert.id.clone()),
            not_before: None,
        })
        .await?;
    let what = if notice.kind == "tight_deadline" {
        "its deadline was flagged as tight"
    } else {
        "it was approaching its deadline"
    };
    reply_in_thread(
        state,
        alert,
        format!("alert:{}:promoted", alert.id),
        &format!(
            "This job went at risk after {what} ({}, buffer {}).",
            date_token(notice.opened_at),
            notice
                .buffer
                .map(crate::watch::pct)
                .unwrap_or_else(|| "unknown".into())
        ),
    )
    .await?;
    Ok(true)
}

/// Resolves an alert: the message says how it ended and loses its buttons.
pub async fn resolve(
    state: &AppState,
    alert: &Alert,
    job: &Job,
    a: &Assessment,
    how: &str,
    now: DateTime<Utc>,
) -> Result<Change, AlertError> {
    if !state.store.resolve_alert(&alert.id, how, now).await? {
        return Ok(Change::None);
    }
    // Check-ins and paging stop with the alert.
    state
        .store
        .cancel_timers(&alert.id, Some(MONITOR_TIMER), now)
        .await?;
    crate::escalation::stop(state, alert, how)
        .await
        .map_err(esc_err)?;
    let ex = extras(state, &alert.id).await?;
    let mut v = view(state, job, a, None, &ex);
    v.band = "resolved".into();
    v.headline = "Resolved".into();
    v.emoji = ":white_check_mark:".into();
    v.colour = "#2EB67D".into();
    let mut resolved = alert.clone();
    resolved.status = crate::store::AlertStatus::Resolved;
    v.buttons = buttons(&resolved, None, job.priority, &ex);
    v.outcome = Some(how.to_string());
    v.status_line = format!("Resolved {}", date_token(now));
    edit(
        state,
        alert,
        &v,
        format!("alert:{}:resolved-edit", alert.id),
    )
    .await?;
    reply_in_thread(state, alert, format!("alert:{}:resolved", alert.id), how).await?;
    Ok(Change::Resolved)
}

/// How a job that left the active list ended, in a line.
pub fn ending(job: Option<&Job>) -> String {
    match job {
        Some(j) if j.state == JobState::Completed => format!(
            ":white_check_mark: Completed {} ({} of {} partitions).",
            j.completed_at.map(date_token).unwrap_or_default(),
            j.completed_partitions,
            j.total_partitions
        ),
        Some(j) if j.state == JobState::Cancelled => format!(
            ":no_entry_sign: Cancelled: {}.",
            j.error_message.as_deref().unwrap_or("no reason given")
        ),
        Some(j) if j.state == JobState::Failed => format!(
            ":x: Failed: {}.",
            j.error_message.as_deref().unwrap_or("no reason given")
        ),
        Some(_) => ":white_circle: The job no longer has an SLA deadline.".into(),
        None => ":grey_question: The job is no longer visible in Servo.".into(),
    }
}

/// Writes one audit entry about an alert's job: who did what, with what
/// outcome. A failure to audit is logged, and does not undo the action.
pub async fn audit(
    state: &AppState,
    alert: &Alert,
    actor: &str,
    action: &str,
    outcome: &str,
    detail: Value,
) {
    let entry = crate::store::AuditEntry {
        at: state.clock.now(),
        tenant_id: Some(alert.tenant_id.clone()),
        actor: actor.into(),
        action: action.into(),
        subject: Some(alert.job_id.clone()),
        outcome: outcome.into(),
        detail: Some(detail),
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}
