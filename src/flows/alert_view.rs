//! An alert's message as the reader sees it: the view (band, ETA and
//! deadline, what slows the job, the buttons in the order the runbook gives
//! them), its rendering, the resolved view, and the edit that puts a
//! stored alert's view back on its message.

use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::bought::{confirm_lines, ConfirmLines, History};
use crate::domain::risk::{JobState, RiskBand, SlaTier};
use crate::domain::text::date_token;
use crate::flows::ids::{
    ACK_ACTION, DEFER_ACTION, LIFT_SILENCE_ACTION, MONITOR_ACTION, MONITOR_TIMER, NOTIFY_ACTION,
    OVERFLOW_ACTION, PAUSE_LOWER_ACTION, RECREATE_ACTION, REQUEST_EXTENSION_ACTION,
    RESUME_PAUSED_ACTION, SCALING_ACTION, SILENCE_ACTION, STOP_MONITOR_ACTION,
};
use crate::flows::thread::{thread_message, AlertError};
use crate::servo::Job;
use crate::slack::render::RenderError;
use crate::store::{Alert, NewOutboxMessage, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

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
    /// The job is part of a Servo job tree (an upstream job, or a root
    /// waiting on its upstream jobs), which Recreate must not cancel
    /// ([`crate::servo::recreate_refusal`]): the alert does not offer it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_job_tree: bool,
    pub bottlenecks: Vec<String>,
    /// How it ended, or who acknowledged it: a line of Slack markup.
    pub outcome: Option<String>,
    pub buttons: Vec<Button>,
    pub status_line: String,
    pub runbook_url: String,
    /// A silence or maintenance window holding its pages (issue 35): a line
    /// of Slack markup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<String>,
    /// *Downstream impact* (issue 37): the scheduled runs that would read
    /// stale data first, then the downstream assets; lines of Slack markup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downstream: Vec<String>,
    /// Said under them once the alert is resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downstream_note: Option<String>,
    /// Said under them while Servo's lineage cannot be read: the lines above
    /// are the ones last shown, and since when they could not be checked
    /// ([`lineage_unread_note`]); a line of Slack markup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage_unread: Option<String>,
    /// The episode's incident channel (issue 38): a line of Slack markup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// How the episode ended, once answered (issue 38).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// What Recreate and Request scaling bought before in the tenant, as
    /// their confirm dialogs say it (issue 38): kept so an edit that
    /// re-renders the buttons from this view says the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bought: Option<ConfirmLines>,
}

impl AlertView {
    /// Whether its High or Breached band offers *Recreate with priority
    /// 10*: a job below priority 10 and outside a job tree.
    pub fn offers_recreate(&self) -> bool {
        self.priority < 10 && !self.in_job_tree
    }

    /// The view an alert's message shows now, as the store keeps it (`None`
    /// before its first render, or if it no longer reads).
    pub fn shown(alert: &Alert) -> Option<AlertView> {
        alert
            .shown
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Button {
    pub action_id: String,
    pub text: String,
    pub value: String,
    pub style: Option<String>,
    /// Slack's own confirm dialog, shown before the click reaches the bot.
    pub confirm: Option<Confirm>,
    /// Where it goes: the row (moved to the overflow menu when the row is
    /// full), or the menu only.
    #[serde(default, skip_serializing_if = "Place::is_row")]
    pub place: Place,
}

/// Where a button is shown ([`layout`]).
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// In the row while it has room, else in the overflow menu.
    #[default]
    Row,
    /// Always in the overflow menu (the *Silence…* entry).
    Menu,
    /// In the overflow menu when it has room, else left out (the quick
    /// silences, which the *Silence…* dialog offers too).
    MenuIfRoom,
}

impl Place {
    fn is_row(&self) -> bool {
        *self == Place::Row
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub text: String,
    pub confirm: String,
    pub deny: String,
}

/// What else decides an alert's buttons besides its band.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    /// Monitor closely is on (a check-in is scheduled).
    pub monitoring: bool,
    /// Jobs the bot paused for this alert and has not resumed.
    pub paused_by_bot: usize,
    /// Their ids, for Resume's confirmation.
    pub paused_jobs: Vec<String>,
    /// Who **Escalate now** would page, in plain text ("*Platform Team
    /// Lead* (Bo)"); `None` once every tier has been paged.
    pub escalate_to: Option<String>,
    /// The value of **Escalate now**: the alert and the tier it pages
    /// ([`crate::flows::paging::EscalateButton`]); the alert's id alone
    /// when unset.
    pub escalate_value: Option<String>,
    /// Who **Request scaling** pages, in plain text.
    pub scaling_to: Option<String>,
    /// Whether that tier is paged through PagerDuty too.
    pub scaling_pagerduty: bool,
    /// "Silenced by …" or "In maintenance until …" ([`crate::flows::quiet`]).
    pub quiet: Option<String>,
    /// A silence holds it: nothing about it is broadcast.
    pub silenced: bool,
    /// The id of the silence that holds it, for the menu's *Lift silence*.
    pub silence_id: Option<String>,
    /// The episode has (or is getting) an incident channel: the menu no
    /// longer offers to open one.
    pub incident_claimed: bool,
    /// "Incident channel: #…", once it exists.
    pub incident: Option<String>,
    /// "Ended: Mitigated …", once answered.
    pub ended: Option<String>,
    /// The tenant's mitigation history (issue 38), as the poll computed it.
    pub history: Option<Arc<History>>,
    /// What Recreate's and Request scaling's confirm dialogs add: from
    /// [`Extras::history`] in [`view`], from the shown view when only the
    /// buttons are re-rendered. `None`: they add nothing.
    pub confirm_lines: Option<ConfirmLines>,
}

/// Reads an alert's extras from the store.
pub async fn extras(state: &AppState, alert_id: &str) -> Result<Extras, StoreError> {
    let monitoring = state
        .store
        .list_timers(Some(alert_id))
        .await?
        .iter()
        .any(|t| t.kind == MONITOR_TIMER && t.status == "pending");
    let paused_jobs = state.store.paused_for_alert(alert_id).await?;
    let esc = state.store.get_escalation(alert_id).await?;
    let stored = state.store.get_alert(alert_id).await?;
    let (quiet, silence_id) = match &stored {
        Some(alert) if alert.is_open() => crate::flows::quiet::alert_note(state, alert).await,
        _ => (None, None),
    };
    let read = Read {
        monitoring,
        paused_jobs,
        esc,
        tenant: stored.as_ref().map(|a| a.tenant_id.clone()),
        quiet,
        silence_id,
        incident: state.store.incident_channel(alert_id).await?,
        ended: state.store.disposition(alert_id).await?,
    };
    assemble(state, alert_id, read).await
}

/// An open alert's extras from what its poll read for the tenant
/// ([`crate::flows::poll_reads`]): no store read of its own.
pub async fn extras_read(
    state: &AppState,
    alert: &crate::store::Alert,
    reads: &crate::flows::poll_reads::PollReads,
) -> Result<Extras, StoreError> {
    let (quiet, silence_id) = if alert.is_open() {
        crate::flows::quiet::alert_note_among(state, alert, state.clock.now(), &reads.holds)
    } else {
        (None, None)
    };
    let read = Read {
        monitoring: reads.monitoring.contains(&alert.id),
        paused_jobs: reads.paused.get(&alert.id).cloned().unwrap_or_default(),
        esc: reads.escalations.get(&alert.id).cloned(),
        tenant: Some(alert.tenant_id.clone()),
        quiet,
        silence_id,
        incident: reads.incident_channels.get(&alert.id).cloned(),
        ended: reads.dispositions.get(&alert.id).cloned(),
    };
    assemble(state, &alert.id, read).await
}

/// A new alert's extras, before it is stored: nothing is scheduled, paused,
/// escalated, claimed or answered for an alert that does not exist yet; its
/// tenant's path and mitigation history are those of a stored one.
pub async fn extras_new(
    state: &AppState,
    tenant: &str,
    alert_id: &str,
) -> Result<Extras, StoreError> {
    let read = Read {
        monitoring: false,
        paused_jobs: Vec::new(),
        esc: None,
        tenant: Some(tenant.to_string()),
        quiet: None,
        silence_id: None,
        incident: None,
        ended: None,
    };
    assemble(state, alert_id, read).await
}

/// What an alert's extras are made from, however it was read.
struct Read {
    monitoring: bool,
    paused_jobs: Vec<String>,
    esc: Option<crate::store::EscalationRow>,
    /// The alert's tenant (`None`: an alert id the store does not know).
    tenant: Option<String>,
    quiet: Option<String>,
    silence_id: Option<String>,
    incident: Option<crate::store::IncidentChannel>,
    ended: Option<crate::store::Disposition>,
}

async fn assemble(state: &AppState, alert_id: &str, r: Read) -> Result<Extras, StoreError> {
    // The tenant's path.
    let tenant = r.tenant.as_deref().unwrap_or("");
    // What each mitigation bought before in the tenant (issue 38).
    let history = match tenant {
        "" => None,
        t => Some(crate::flows::bought::history(state, t).await?),
    };
    let path = &crate::flows::oncall::path(state, tenant, state.clock.now()).await;
    let escalate_to =
        crate::flows::paging::escalate_now_pages(path, &state.directory, r.esc.as_ref()).await;
    let escalate_value = Some(crate::flows::paging::escalate_now_value(
        path,
        alert_id,
        r.esc.as_ref(),
    ));
    let named = |t: &crate::config::EscalationTier| {
        let t = t.clone();
        async move { crate::flows::paging::tier_label(&state.directory, &t).await }
    };
    let scaling = crate::flows::paging::scaling_tier(path);
    let scaling_pagerduty = scaling.is_some_and(|t| t.pagerduty_routing_key_env.is_some());
    let scaling_to = match scaling {
        Some(t) => Some(named(t).await),
        None => None,
    };
    Ok(Extras {
        history,
        confirm_lines: None,
        ended: r.ended.as_ref().map(ended_line),
        incident_claimed: r.incident.is_some(),
        incident: r.incident.as_ref().and_then(incident_line),
        quiet: r.quiet,
        silenced: r.silence_id.is_some(),
        silence_id: r.silence_id,
        monitoring: r.monitoring,
        paused_by_bot: r.paused_jobs.len(),
        paused_jobs: r.paused_jobs,
        escalate_to,
        escalate_value,
        scaling_to,
        scaling_pagerduty,
    })
}

fn button(action_id: &str, text: &str, value: &str, style: Option<&str>) -> Button {
    Button {
        action_id: action_id.into(),
        text: text.into(),
        value: value.into(),
        style: style.map(str::to_string),
        confirm: None,
        place: Place::Row,
    }
}

/// The alert's line saying how its episode ended (issue 38).
pub fn ended_line(d: &crate::store::Disposition) -> String {
    let label = match d.disposition.as_str() {
        "mitigated" => "Mitigated",
        "expected" => "Expected",
        "false_alarm" => "False alarm",
        "missed" => "Missed",
        other => other,
    };
    let note = d
        .note
        .as_deref()
        .map(|n| format!(": {}", crate::domain::text::escape_slack(n)))
        .unwrap_or_default();
    format!(
        ":memo: Ended: *{label}* (answered by <@{}>){note}",
        d.answered_by
    )
}

/// The alert's line naming its incident channel (issue 38).
pub fn incident_line(ic: &crate::store::IncidentChannel) -> Option<String> {
    let channel = ic.channel.as_ref()?;
    Some(match (&ic.archived_at, &ic.archived_by) {
        (Some(at), Some(by)) => format!(
            ":file_cabinet: Incident channel <#{channel}> (archived by <@{by}> {})",
            date_token(*at)
        ),
        _ => format!(":rotating_light: Incident channel: <#{channel}>"),
    })
}

/// The quick silences an alert's menu offers, by their value's suffix:
/// `<alert id>:<choice>` ([`SILENCE_ACTION`]). `ask` opens the dialog.
pub const SILENCE_CHOICES: [(&str, &str); 3] = [
    ("1h", "Silence for 1 hour"),
    ("4h", "Silence for 4 hours"),
    ("morning", "Silence until 09:00 tomorrow"),
];

/// The menu's silence entries: *Lift silence* while one holds the alert,
/// and *Silence…* (a dialog), with the quick choices when the menu has room.
fn silence_entries(id: &str, extras: &Extras) -> Vec<Button> {
    let mut out = Vec::new();
    let mut entry = |action: &str, text: &str, value: String, place: Place| {
        let mut b = button(action, text, &value, None);
        b.place = place;
        out.push(b);
    };
    if let Some(silence) = &extras.silence_id {
        entry(
            LIFT_SILENCE_ACTION,
            "Lift silence",
            silence.clone(),
            Place::Menu,
        );
        entry(SILENCE_ACTION, "Silence…", format!("{id}:ask"), Place::Menu);
        return out;
    }
    for (choice, text) in SILENCE_CHOICES {
        entry(
            SILENCE_ACTION,
            text,
            format!("{id}:{choice}"),
            Place::MenuIfRoom,
        );
    }
    entry(SILENCE_ACTION, "Silence…", format!("{id}:ask"), Place::Menu);
    out
}

/// The buttons an alert shows: the runbook's mitigations for its band, and
/// Acknowledge until someone has. A resolved alert offers only to resume the
/// jobs the bot paused for it. `recreate`: whether High and Breached offer
/// *Recreate with priority 10* ([`AlertView::offers_recreate`]).
pub fn buttons(
    alert: &Alert,
    band: Option<RiskBand>,
    recreate: bool,
    extras: &Extras,
) -> Vec<Button> {
    let id = alert.id.as_str();
    let mut out = Vec::new();
    let Some(band) = band.filter(|b| b.is_at_risk() && alert.is_open()) else {
        if extras.paused_by_bot > 0 {
            out.push(resume_button(id, extras, Some("primary")));
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
                REQUEST_EXTENSION_ACTION,
                "Request extension",
                id,
                None,
            ));
        }
        _ => {
            if recreate {
                let mut b = button(
                    RECREATE_ACTION,
                    "Recreate with priority 10",
                    id,
                    Some("danger"),
                );
                b.confirm = Some(Confirm {
                    deny: "Keep the job".into(),
                    ..confirm(
                        "Recreate at priority 10?",
                        &with_line(
                            "Cancels the job; its uncompleted partitions restart as a new job at priority 10, same deadline.",
                            extras.confirm_lines.as_ref().map(|l| l.recreate.as_str()),
                        ),
                        "Recreate",
                    )
                });
                out.push(b);
            }
            let mut b = button(SCALING_ACTION, "Request scaling", id, None);
            b.confirm = Some(confirm(
                "Request emergency scaling?",
                &with_line(
                    &format!(
                        "This pages {} by DM{} to scale executors, lower other workloads' limits or enable burst capacity.",
                        extras.scaling_to.as_deref().unwrap_or("the platform tier"),
                        if extras.scaling_pagerduty { " and PagerDuty" } else { "" }
                    ),
                    extras.confirm_lines.as_ref().map(|l| l.scaling.as_str()),
                ),
                "Page them",
            ));
            out.push(b);
            out.push(button(NOTIFY_ACTION, "Notify stakeholders", id, None));
            out.push(button(
                REQUEST_EXTENSION_ACTION,
                "Request extension",
                id,
                None,
            ));
        }
    }
    if extras.paused_by_bot > 0 {
        out.push(resume_button(id, extras, None));
    }
    let mut esc = button(
        crate::flows::ids::ESCALATE_ACTION,
        "Escalate now",
        extras.escalate_value.as_deref().unwrap_or(id),
        None,
    );
    // Where people move when the job is really in trouble (issue 38).
    if matches!(band, RiskBand::High | RiskBand::Breached) && !extras.incident_claimed {
        let mut b = button(
            crate::flows::ids::INCIDENT_CHANNEL_ACTION,
            "Open incident channel",
            id,
            None,
        );
        b.place = Place::Menu;
        out.push(b);
    }
    esc.confirm = Some(match &extras.escalate_to {
        Some(who) => confirm("Page now?", &format!("This pages {who} now."), "Page now"),
        None => confirm(
            "Page again?",
            "Every tier has been paged already: this says so and pages nobody until the path ends.",
            "Go on",
        ),
    });
    out.push(esc);
    out.extend(silence_entries(id, extras));
    out
}

/// A confirm text with what the action bought before after it, when known.
fn with_line(text: &str, line: Option<&str>) -> String {
    match line {
        Some(l) if !l.is_empty() => format!("{text}\n{l}"),
        _ => text.to_string(),
    }
}

fn confirm(title: &str, text: &str, yes: &str) -> Confirm {
    use crate::slack::limits::truncate;
    Confirm {
        title: truncate(title, 100),
        text: truncate(text, 300),
        confirm: truncate(yes, 30),
        deny: "Cancel".into(),
    }
}

/// **Resume N paused jobs**, confirming which jobs it resumes.
fn resume_button(id: &str, extras: &Extras, style: Option<&str>) -> Button {
    let n = extras.paused_by_bot;
    let mut b = button(
        RESUME_PAUSED_ACTION,
        &format!("Resume {n} paused job{}", if n == 1 { "" } else { "s" }),
        id,
        style,
    );
    let ids: Vec<String> = extras
        .paused_jobs
        .iter()
        .map(|j| format!("`{}`", j.chars().take(8).collect::<String>()))
        .collect();
    b.confirm = Some(confirm(
        &format!("Resume {n} job{}?", if n == 1 { "" } else { "s" }),
        &format!(
            "Resumes the job{} the bot paused for this alert ({}); Servo's executor picks {} up again.",
            if n == 1 { "" } else { "s" },
            crate::slack::limits::join_capped(&ids, ", ", 200, |k| format!("…and {k} more")),
            if n == 1 { "it" } else { "them" }
        ),
        "Resume",
    ));
    b
}

/// Re-renders an alert's buttons from what it shows (after a mitigation
/// changed what it should offer), editing the message only if they changed.
/// A resolved alert renders from the view stored with its resolution, so
/// it stays resolved: only a new episode (a new message) shows an at-risk
/// band again. Written only over the version it read: if a poll changed the
/// alert meanwhile, it reads again rather than put back what the poll
/// replaced.
pub async fn refresh(state: &AppState, alert_id: &str) -> Result<(), AlertError> {
    for _ in 0..3 {
        let Some(alert) = state.store.get_alert(alert_id).await? else {
            return Ok(());
        };
        let Some(old) = AlertView::shown(&alert) else {
            return Ok(());
        };
        let mut ex = extras(state, alert_id).await?;
        // The confirm lines stay as the poll computed them.
        ex.confirm_lines = old.bought.clone();
        let mut view = old.clone();
        if !alert.is_open() && view.band != RESOLVED_BAND {
            // Resolved without its view stored (by an older version): it
            // reads as resolved from now on.
            view = resolved_view(
                &alert,
                view,
                &ex,
                alert.resolution.as_deref().unwrap_or("Resolved."),
                alert.resolved_at.unwrap_or_else(|| state.clock.now()),
            );
        }
        view.buttons = buttons(
            &alert,
            RiskBand::parse(&view.band),
            view.offers_recreate(),
            &ex,
        );
        if alert.is_open() {
            view.quiet = ex.quiet.clone();
        }
        view.incident = ex.incident.clone();
        view.ended = ex.ended.clone();
        if view == old {
            return Ok(());
        }
        let shown = serde_json::to_value(&view).unwrap_or(Value::Null);
        // A resolved alert keeps its final state; only what it shows changes.
        if state
            .store
            .set_alert_shown_at(&alert.id, &shown, alert.version)
            .await?
        {
            return edit(
                state,
                &alert,
                &view,
                format!("alert:{}:buttons:{}", alert.id, alert.version + 1),
            )
            .await;
        }
    }
    tracing::warn!(
        alert = alert_id,
        "the alert kept changing; its buttons follow at the next poll"
    );
    Ok(())
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

/// The severity as readers want it: how late in time, against the time
/// left, with the runbook's percentage after it. On track it says the time to
/// spare; past the deadline, how long ago it passed. Never a negative "late".
pub fn severity_text(
    eta: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    severity: Option<f64>,
) -> String {
    use crate::domain::text::duration_words as words;
    let Some(deadline) = deadline else {
        return "no SLA deadline".into();
    };
    if now > deadline {
        let passed = format!("deadline passed {} ago", words(now - deadline));
        return match eta.filter(|e| *e > now) {
            Some(e) => format!("{passed}, ETA in {}", words(e - now)),
            None => passed,
        };
    }
    let left = deadline - now;
    let left_text = if left < chrono::Duration::seconds(30) {
        "the deadline is now".to_string()
    } else {
        format!("{} left", words(left))
    };
    match eta {
        None => format!("ETA unknown, {left_text}"),
        Some(e) if e > deadline => {
            let pct = severity
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| format!(" (severity {:.0}%)", s * 100.0))
                .unwrap_or_default();
            format!(
                "ETA {} after the deadline, {left_text}{pct}",
                words(e - deadline)
            )
        }
        Some(e) => format!(
            "on track: ETA {} before the deadline, {left_text}",
            words(deadline - e)
        ),
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

pub(crate) fn token(t: Option<DateTime<Utc>>) -> String {
    t.map(date_token).unwrap_or_else(|| "unknown".into())
}

/// The ETA as shown: the forecast's P50 "likely by" its P90 when the bot
/// forecast from the partition history, else the ETA risk was judged on.
pub fn eta_text(job: &Job, a: &Assessment, now: DateTime<Utc>) -> String {
    match (job.forecast, a.eta_source) {
        (Some((p50, p90)), crate::domain::assessment::EtaSource::Forecast) => format!(
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
        "Servo's own estimate ({}) is {} {} than the forecast from the partition history",
        date_token(to_minute(servo)),
        crate::domain::text::duration_words(gap),
        if gap > chrono::Duration::zero() {
            "later"
        } else {
            "earlier"
        }
    ))
}

/// What is slowing the job, a line each (Slack markup): its assessment's
/// bottlenecks, a waiting root's upstream jobs by name (`upstream_note`, in
/// place of the bare count), and Servo's estimate when it disagrees with the
/// forecast. The alert's *What is slowing it* and the status card's
/// *Bottlenecks* both.
pub fn bottleneck_lines(job: &Job, a: &Assessment, now: DateTime<Utc>) -> Vec<String> {
    a.bottlenecks
        .iter()
        .filter(|b| {
            // Named one by one below when the tree was read.
            job.upstream_note.is_none()
                || !matches!(
                    b,
                    crate::domain::assessment::Bottleneck::WaitingUpstream { .. }
                )
        })
        .map(|b| b.describe())
        .chain(job.upstream_note.clone())
        .chain(disagreement(job, now))
        .collect()
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
    let now = state.clock.now();
    let bought = ex
        .history
        .as_ref()
        .map(|h| confirm_lines(h, &job.asset_name, a.remaining, job.sla_deadline_at, now));
    let ex = &Extras {
        confirm_lines: bought.clone(),
        ..ex.clone()
    };
    if let Some(alert) = alert {
        if let (Some(by), Some(at)) = (&alert.acked_by, alert.acked_at) {
            outcome = Some(format!(
                ":white_check_mark: Acknowledged by <@{by}> {}",
                date_token(at)
            ));
        }
        let recreate = job.priority < 10 && crate::servo::recreate_refusal(job).is_none();
        buttons_now = buttons(alert, Some(band), recreate, ex);
    }
    let (downstream, lineage_unread) = downstream_lines(state, job, alert);
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
        severity: severity_text(a.eta, job.sla_deadline_at, state.clock.now(), a.severity),
        tier: a.tier.label().into(),
        priority: job.priority,
        in_job_tree: crate::servo::recreate_refusal(job).is_some(),
        bottlenecks: bottleneck_lines(job, a, state.clock.now()),
        outcome,
        buttons: buttons_now,
        status_line: format!("{} {}", band.label(), tier_note(a.tier)),
        runbook_url: state.config.runbook_url.clone(),
        quiet: ex.quiet.clone(),
        downstream,
        downstream_note: None,
        lineage_unread,
        incident: ex.incident.clone(),
        ended: None,
        bought,
    }
}

/// An alert's *Downstream impact* lines, and the note said under them when
/// the poll could not read Servo's lineage. Unread is not "nothing
/// downstream": the alert keeps the lines it last showed (its stored view),
/// and the note the first failed read wrote, so a failure that lasts edits
/// nothing; a new alert says the impact is not known.
fn downstream_lines(
    state: &AppState,
    job: &Job,
    alert: Option<&Alert>,
) -> (Vec<String>, Option<String>) {
    let Some(at) = job.lineage_unread else {
        let lines = job
            .impact
            .as_ref()
            .map(|i| crate::domain::lineage::impact_lines(i, state.config.lineage.max_lines))
            .unwrap_or_default();
        return (lines, None);
    };
    let shown = alert.and_then(AlertView::shown);
    let lines = shown
        .as_ref()
        .map(|v| v.downstream.clone())
        .unwrap_or_default();
    let note = shown
        .and_then(|v| v.lineage_unread)
        .unwrap_or_else(|| lineage_unread_note(at, !lines.is_empty()));
    (lines, Some(note))
}

/// What an alert says when Servo's lineage could not be read at `at`:
/// whether the lines above it are the last ones read, or there are none.
pub fn lineage_unread_note(at: DateTime<Utc>, kept: bool) -> String {
    if kept {
        format!(
            ":warning: Servo's lineage could not be read {}: this is the impact last read, and it may have changed.",
            date_token(at)
        )
    } else {
        format!(
            ":warning: Servo's lineage could not be read {}: what waits on this job downstream is not known.",
            date_token(at)
        )
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

/// The most buttons one row shows; the rest go in an overflow menu.
pub const MAX_ROW_BUTTONS: usize = 5;

/// Splits buttons into the row and the overflow menu: at most five buttons
/// in the row, and an overflow of 2 to 5 options. A button that asks for
/// confirmation (the overflow has one confirm for all its options) and
/// Acknowledge stay in the row; the others move to the menu from the end
/// when the row is full. Menu-only entries ([`Place::Menu`]) always go to
/// the menu, after the moved buttons; [`Place::MenuIfRoom`] ones fill what
/// room is left before them. A menu of one option would not be a menu: a
/// row button joins it, or the option stands in the row.
pub fn layout(buttons: &[Button]) -> (Vec<Button>, Vec<Button>) {
    let of = |p: Place| buttons.iter().filter(move |b| b.place == p).cloned();
    let mut row: Vec<Button> = of(Place::Row).collect();
    let fixed: Vec<Button> = of(Place::Menu).collect();
    let optional: Vec<Button> = of(Place::MenuIfRoom).collect();
    let movable = |b: &Button| b.confirm.is_none() && b.action_id != ACK_ACTION;
    let room = MAX_OVERFLOW.saturating_sub(fixed.len());
    let mut moved: Vec<Button> = Vec::new();
    let move_last = |row: &mut Vec<Button>, moved: &mut Vec<Button>| -> bool {
        match row.iter().rposition(movable) {
            Some(i) if moved.len() < room => {
                moved.insert(0, row.remove(i));
                true
            }
            _ => false,
        }
    };
    while row.len() > MAX_ROW_BUTTONS && move_last(&mut row, &mut moved) {}
    // Two options at least, once there is a menu at all.
    let wanted = |moved: &[Button]| moved.len() + fixed.len();
    if wanted(&moved) == 1 && optional.is_empty() {
        move_last(&mut row, &mut moved);
    }
    let free = MAX_OVERFLOW.saturating_sub(wanted(&moved));
    let mut menu = moved;
    menu.extend(optional.into_iter().take(free));
    menu.extend(fixed);
    if menu.len() == 1 {
        row.append(&mut menu);
    }
    (row, menu)
}

/// The most options an overflow menu holds.
const MAX_OVERFLOW: usize = crate::slack::limits::MAX_OVERFLOW_OPTIONS;

/// The message payload for a view (`chat.postMessage` / `chat.update` body, without channel/ts).
pub fn render(state: &AppState, view: &AlertView) -> Result<Value, RenderError> {
    let (row, menu) = layout(&view.buttons);
    let mut data = serde_json::to_value(view).unwrap_or(Value::Null);
    data["buttons"] = serde_json::to_value(&row).unwrap_or(Value::Null);
    data["overflow"] = serde_json::to_value(&menu).unwrap_or(Value::Null);
    data["overflow_action"] = OVERFLOW_ACTION.into();
    // A resolved alert no longer says what is slowing it.
    data["resolved"] = (view.band == RESOLVED_BAND).into();
    // *Downstream impact* is shown when there is some, or when it could not
    // be read: unread is not "nothing downstream".
    data["downstream_section"] =
        (!view.downstream.is_empty() || view.lineage_unread.is_some()).into();
    data["downstream"] = serde_json::to_value(&view.downstream).unwrap_or(Value::Null);
    state.templates.render("alert", &data)
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

/// What a resolved alert says under its *Downstream impact*.
pub const DOWNSTREAM_RESOLVED: &str =
    ":white_check_mark: Resolved: the runs and assets above no longer wait on this job at risk.";

/// The band a resolved alert's view carries.
pub const RESOLVED_BAND: &str = "resolved";

/// What a resolved alert shows, from the view it had: how it ended, its
/// colour and headline, and its buttons gone but Resume (while the bot has
/// jobs paused for it). Stored with the resolution: every later edit of the
/// message (Resume, a button timer, the repair pass) renders from it.
pub fn resolved_view(
    alert: &Alert,
    mut v: AlertView,
    ex: &Extras,
    how: &str,
    at: DateTime<Utc>,
) -> AlertView {
    v.band = RESOLVED_BAND.into();
    if !v.downstream.is_empty() {
        v.downstream_note = Some(DOWNSTREAM_RESOLVED.into());
    }
    // Resolved, the runs above no longer wait on it, read or not.
    v.lineage_unread = None;
    v.headline = "Resolved".into();
    v.emoji = ":white_check_mark:".into();
    v.colour = "#2EB67D".into();
    let mut resolved = alert.clone();
    resolved.status = crate::store::AlertStatus::Resolved;
    v.buttons = buttons(&resolved, None, v.offers_recreate(), ex);
    v.outcome = Some(how.to_string());
    v.bought = None;
    v.status_line = format!("Resolved {}", date_token(at));
    v
}

/// The resolution's note in the alert's thread: how it ended.
pub(crate) fn resolved_note(
    state: &AppState,
    alert: &Alert,
    how: &str,
) -> Result<NewOutboxMessage, AlertError> {
    thread_message(state, alert, format!("alert:{}:resolved", alert.id), how)
}

/// Text from Servo (a cancel reason, an `error_message` with a stack trace)
/// made safe for Slack markup: escaped, so `<!channel>` pings nobody, and cut
/// to a few hundred characters, so the message it goes into stays within
/// Slack's limits.
pub fn servo_text(s: &str) -> String {
    let first = s.trim();
    crate::slack::limits::truncate(&crate::domain::text::escape_slack(first), 500)
}

/// How a job that left the active list ended, in a line.
pub fn ending(job: Option<&Job>) -> String {
    match job {
        Some(j) if j.state == JobState::Completed => format!(
            ":white_check_mark: Completed {} ({} of {}).",
            j.completed_at.map(date_token).unwrap_or_default(),
            j.completed_partitions,
            crate::domain::text::count(j.total_partitions, "partition", "partitions")
        ),
        Some(j) if j.state == JobState::Cancelled => format!(
            ":no_entry_sign: Cancelled: {}.",
            servo_text(j.error_message.as_deref().unwrap_or("no reason given"))
        ),
        Some(j) if j.state == JobState::Failed => format!(
            ":x: Failed: {}.",
            servo_text(j.error_message.as_deref().unwrap_or("no reason given"))
        ),
        Some(_) => ":white_circle: The job no longer has an SLA deadline.".into(),
        None => ":grey_question: The job is no longer visible in Servo.".into(),
    }
}

/// A link to the alert's message (and so its thread), when Slack shows one:
/// every answer that names a job with an alert links to it.
pub fn alert_link(alert: Option<&Alert>) -> Option<String> {
    let a = alert?;
    let (channel, ts) = (a.channel.as_ref()?, a.ts.as_ref()?);
    Some(format!(
        "<https://slack.com/archives/{channel}/p{}|Alert thread> in <#{channel}>",
        ts.replace('.', "")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    #[test]
    fn a_late_job_reads_how_late_in_time_against_the_time_left() {
        assert_eq!(
            severity_text(Some(at(184)), Some(at(130)), at(0), Some(54.0 / 130.0)),
            "ETA 54 min after the deadline, 2 h 10 min left (severity 42%)"
        );
    }

    #[test]
    fn an_on_track_job_reads_its_time_to_spare_never_a_negative_late() {
        let s = severity_text(Some(at(100)), Some(at(130)), at(0), Some(-30.0 / 130.0));
        assert_eq!(
            s,
            "on track: ETA 30 min before the deadline, 2 h 10 min left"
        );
        assert!(!s.contains('-') && !s.contains('%'));
    }

    #[test]
    fn a_breached_job_reads_how_long_ago_the_deadline_passed() {
        assert_eq!(
            severity_text(Some(at(50)), Some(at(-20)), at(0), None),
            "deadline passed 20 min ago, ETA in 50 min"
        );
        assert_eq!(
            severity_text(None, Some(at(-90)), at(0), None),
            "deadline passed 1 h 30 min ago"
        );
    }

    #[test]
    fn unknown_eta_and_no_deadline_say_so() {
        assert_eq!(
            severity_text(None, Some(at(60)), at(0), None),
            "ETA unknown, 1 h left"
        );
        assert_eq!(
            severity_text(Some(at(60)), None, at(0), None),
            "no SLA deadline"
        );
        assert_eq!(
            severity_text(Some(at(10)), Some(at(0)), at(0), Some(f64::INFINITY)),
            "ETA 10 min after the deadline, the deadline is now"
        );
    }

    fn b(id: &str, confirm: bool) -> Button {
        let mut b = button(id, id, "v", None);
        if confirm {
            b.confirm = Some(super::confirm("t", "x", "y"));
        }
        b
    }

    /// A High alert's buttons with paused jobs: seven, four of them confirmed.
    fn high_band() -> Vec<Button> {
        vec![
            b(ACK_ACTION, false),
            b(RECREATE_ACTION, true),
            b(SCALING_ACTION, true),
            b(NOTIFY_ACTION, false),
            b("extension_request", false),
            b(RESUME_PAUSED_ACTION, true),
            b("alert_escalate", true),
        ]
    }

    #[test]
    fn a_row_holds_five_buttons_at_most_and_the_rest_go_to_an_overflow_of_two_or_more() {
        let five: Vec<Button> = (0..5).map(|i| b(&format!("b{i}"), false)).collect();
        assert_eq!(layout(&five), (five.clone(), Vec::new()));
        let seven = high_band();
        let (row, menu) = layout(&seven);
        assert_eq!(row.len(), 5);
        let ids = |v: &[Button]| v.iter().map(|b| b.action_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&menu), [NOTIFY_ACTION, "extension_request"]);
        assert!(row
            .iter()
            .all(|b| b.confirm.is_some() || b.action_id == ACK_ACTION));
        // Six: an overflow needs two options, so four stay in the row.
        let six: Vec<Button> = (0..6).map(|i| b(&format!("b{i}"), false)).collect();
        let (row, menu) = layout(&six);
        assert_eq!((row.len(), menu.len()), (4, 2));
    }

    #[test]
    fn the_silence_entries_always_go_to_the_menu_and_the_quick_ones_fill_its_room() {
        let ids = |v: &[Button]| v.iter().map(|b| b.action_id.clone()).collect::<Vec<_>>();
        let texts = |v: &[Button]| v.iter().map(|b| b.text.clone()).collect::<Vec<_>>();
        let entries = silence_entries("a1", &Extras::default());
        // Low band: four in the row, the menu is all silences.
        let mut low = vec![
            b(ACK_ACTION, false),
            b(MONITOR_ACTION, false),
            b(DEFER_ACTION, false),
            b("alert_escalate", true),
        ];
        low.extend(entries.clone());
        let (row, menu) = layout(&low);
        assert_eq!(row.len(), 4);
        assert_eq!(
            texts(&menu),
            [
                "Silence for 1 hour",
                "Silence for 4 hours",
                "Silence until 09:00 tomorrow",
                "Silence…"
            ]
        );
        assert_eq!(menu[0].value, "a1:1h");
        assert_eq!(menu[3].value, "a1:ask");
        // High band with paused jobs: the moved buttons come first, *Silence…*
        // stays, the quick ones fill what room is left.
        let mut high = high_band();
        high.extend(entries);
        let (row, menu) = layout(&high);
        assert_eq!(row.len(), 5);
        assert_eq!(
            ids(&menu),
            [
                NOTIFY_ACTION,
                "extension_request",
                SILENCE_ACTION,
                SILENCE_ACTION,
                SILENCE_ACTION
            ]
        );
        assert_eq!(menu[4].text, "Silence…");
        // Silenced: *Lift silence* first; a lone menu entry takes a row button along.
        let held = Extras {
            silence_id: Some("s1".into()),
            ..Extras::default()
        };
        let lifted = silence_entries("a1", &held);
        assert_eq!(texts(&lifted), ["Lift silence", "Silence…"]);
        assert_eq!(lifted[0].value, "s1");
        let mut one = vec![b("x", false), b("y", false)];
        one.push(lifted[0].clone());
        let (row, menu) = layout(&one);
        assert_eq!(
            (ids(&row), ids(&menu)),
            (
                vec!["x".to_string()],
                vec!["y".to_string(), LIFT_SILENCE_ACTION.to_string()]
            )
        );
    }

    #[test]
    fn resume_confirms_which_jobs_it_resumes() {
        let ex = Extras {
            paused_by_bot: 2,
            paused_jobs: vec![
                "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
                "7c9e6679-7425-40de-944b-e07fc1f90ae7".into(),
            ],
            ..Extras::default()
        };
        let r = resume_button("alert-1", &ex, None);
        assert_eq!(r.text, "Resume 2 paused jobs");
        let c = r.confirm.expect("a confirmation");
        assert_eq!(c.title, "Resume 2 jobs?");
        assert!(
            c.text.contains("`0f8fad5b`") && c.text.contains("`7c9e6679`"),
            "{}",
            c.text
        );
        assert!(c.text.chars().count() <= 300);
    }
}
