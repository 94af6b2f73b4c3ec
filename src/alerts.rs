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
}

/// The action id of the Acknowledge button.
pub const ACK_ACTION: &str = "alert_ack";

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

/// Builds the view of an alert for a job and its assessment.
pub fn view(state: &AppState, job: &Job, a: &Assessment, alert: Option<&Alert>) -> AlertView {
    let band = a.band;
    let mut buttons = Vec::new();
    let mut outcome = None;
    if let Some(alert) = alert {
        match (&alert.acked_by, alert.acked_at) {
            (Some(by), Some(at)) => {
                outcome = Some(format!(
                    ":white_check_mark: Acknowledged by <@{by}> {}",
                    date_token(at)
                ))
            }
            _ => buttons.push(Button {
                action_id: ACK_ACTION.into(),
                text: "Acknowledge".into(),
                value: alert.id.clone(),
                style: Some("primary".into()),
            }),
        }
        // The runbook: extend the deadline "if stakeholders agree" from Medium on.
        if matches!(band, RiskBand::Medium | RiskBand::High | RiskBand::Breached) {
            buttons.push(Button {
                action_id: crate::actions::extension::REQUEST_ACTION.into(),
                text: "Request extension".into(),
                value: alert.id.clone(),
                style: None,
            });
        }
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
        eta_token: token(a.eta.map(to_minute)),
        eta_fallback: fallback(a.eta.map(to_minute)),
        deadline_token: token(job.sla_deadline_at),
        deadline_fallback: fallback(job.sla_deadline_at),
        severity: severity_text(a.severity, band),
        tier: a.tier.label().into(),
        priority: job.priority,
        bottlenecks: a.bottlenecks.iter().map(|b| b.describe()).collect(),
        outcome,
        buttons,
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

/// Enqueues a reply in the alert's thread.
pub async fn reply_in_thread(
    state: &AppState,
    alert: &Alert,
    dedup_key: String,
    text: &str,
) -> Result<(), AlertError> {
    // The outbox fills in the channel and thread_ts from the alert when it sends.
    let payload = thread_note(state, text)?;
    state
        .enqueue(NewOutboxMessage {
            dedup_key: Some(dedup_key),
            method: "chat.postMessage".into(),
            payload,
            ordering_key: Some(alert.id.clone()),
            thread_alert_id: Some(alert.id.clone()),
            thread_field: Some("thread_ts".into()),
            link_kind: None,
            link_id: None,
            not_before: None,
        })
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
            let v = view(state, job, a, Some(&alert));
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
            if created {
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
            Ok(Change::Posted)
        }
        None => Ok(Change::None),
        Some(alert) if at_risk => {
            let v = view(state, job, a, Some(&alert));
            let v_json = serde_json::to_value(&v).unwrap_or(Value::Null);
            if alert.shown.as_ref() == Some(&v_json) {
                return Ok(Change::None);
            }
            let previous = RiskBand::parse(&alert.band);
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
    let mut v = view(state, job, a, None);
    v.band = "resolved".into();
    v.headline = "Resolved".into();
    v.emoji = ":white_check_mark:".into();
    v.colour = "#2EB67D".into();
    v.buttons.clear();
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
