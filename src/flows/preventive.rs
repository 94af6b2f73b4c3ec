//! The runbook's preventive measures, run on every poll after the alerts are
//! reconciled: the deadline buffer check when a job is first seen, the quiet
//! "approaching" early warning, and the history the weekly review reads
//! (lowest buffer, breaches, ETA marks at 25/50/75% progress, ETA samples of
//! alerted jobs, how each job ended).
//!
//! The buffer of a job is `(deadline - expected completion) / expected
//! duration`, where the expected completion is the ETA risk is judged on and
//! the expected duration runs from the job's start (or now, if it has not
//! started) to that ETA. Each SLA tier keeps the buffer `[buffers]` gives it.
//!
//! Nothing here pages. A notice is one low-key message per job: when the job
//! then goes at risk, [`crate::flows::alerts::reconcile`] edits that same message
//! into the alert.

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::risk::JobState;
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::servo::Job;
use crate::store::{
    notice_post_key, ActiveWatch, EtaSample, NewEtaMark, NewOutboxMessage, NewWatchedJob, Notice,
    StoreError,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The progress marks (percent) at which Servo's ETA and the bot's are kept.
pub const MARKS: [i64; 3] = [25, 50, 75];
/// A mark is recorded only this close after it (percentage points): a job
/// first seen at 60% has no honest "ETA at 25%".
const MARK_WINDOW: f64 = 15.0;
/// A lower buffer is written only when it is this much lower than the lowest
/// recorded, so a steady job costs no write per poll.
const BUFFER_STEP: f64 = 0.005;
/// Jobs that left the active list looked up per poll.
const ENDED_PER_POLL: usize = 20;
/// Up to this many tight deadlines found in one poll get a message each;
/// more share one message.
pub const TIGHT_ONE_BY_ONE: usize = 5;
/// Jobs listed in a shared tight-deadline message (Slack allows 50 blocks).
const TIGHT_LISTED: usize = 40;

/// A tight deadline found at first sight: its notice, the job, its
/// assessment, its buffer and its tier's.
type Tight<'a> = (Notice, &'a Job, &'a Assessment, f64, f64);

/// One message for many tight deadlines found at once.
fn tight_summary(tight: &[Tight], now: DateTime<Utc>) -> NoticeView {
    let mut lines: Vec<String> = tight
        .iter()
        .take(TIGHT_LISTED)
        .map(|(_, job, a, b, want)| {
            let better = deadline_for(job, a, *want, now)
                .map(|d| format!("; a deadline of {} would meet it", date_token(d)))
                .unwrap_or_default();
            format!(
                "• {}: buffer {}, the tier keeps {}{better}",
                job_ref(job),
                pct(*b),
                pct(*want)
            )
        })
        .collect();
    if tight.len() > TIGHT_LISTED {
        lines.push(format!(
            "…and {} more. `/backfill status &lt;job_id&gt;` shows any job's deadline and ETA.",
            tight.len() - TIGHT_LISTED
        ));
    }
    NoticeView {
        text: format!(
            "Tight deadlines: {} less buffer than their SLA tier recommends",
            if tight.len() == 1 { "1 job leaves".to_string() } else { format!("{} jobs leave", tight.len()) }
        ),
        headline: format!(
            ":straight_ruler: *Tight deadlines* · {} seen for the first time {} less buffer than their SLA tier recommends. Nothing is at risk yet: no one is paged. `/backfill extend-deadline &lt;job_id&gt; &lt;deadline&gt;` asks for a later one.",
            crate::domain::text::count(tight.len(), "job", "jobs"),
            crate::domain::text::noun(tight.len(), "leaves", "leave")
        ),
        lines,
    }
}

/// The expected completion (the ETA risk is judged on) and the expected
/// duration in milliseconds, from the job's start (or now, if it has not
/// started) to it; `None` without an ETA after the start.
fn expected(job: &Job, a: &Assessment, now: DateTime<Utc>) -> Option<(DateTime<Utc>, i64)> {
    let eta = a.eta?;
    let start = job.started_at.unwrap_or(now).min(now);
    let ms = (eta - start).num_milliseconds();
    (ms > 0).then_some((eta, ms))
}

/// `(deadline - expected completion) / expected duration`, when the job has
/// a deadline and an ETA after its start.
pub fn buffer(job: &Job, a: &Assessment, now: DateTime<Utc>) -> Option<f64> {
    let deadline = job.sla_deadline_at?;
    let (eta, expected) = expected(job, a, now)?;
    Some((deadline - eta).num_milliseconds() as f64 / expected as f64)
}

/// The deadline that would leave `want` of the expected duration as buffer.
pub fn deadline_for(
    job: &Job,
    a: &Assessment,
    want: f64,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (eta, expected) = expected(job, a, now)?;
    let extra = chrono::Duration::milliseconds((expected as f64 * want).ceil() as i64);
    // Whole minutes, rounded up: a deadline people can type.
    let t = eta + extra;
    let secs = t.timestamp();
    let up = secs + (60 - secs.rem_euclid(60)) % 60;
    DateTime::from_timestamp(up, 0)
}

/// What a notice message shows.
#[derive(Clone, Debug, Serialize)]
pub struct NoticeView {
    pub text: String,
    pub headline: String,
    pub lines: Vec<String>,
}

/// A share as a whole percentage: `0.2` is "20%".
pub fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// A duration as people say it: "3h 20m", "45m", "2d 4h".
pub fn span(d: chrono::Duration) -> String {
    let m = d.num_minutes().max(0);
    let (days, hours, mins) = (m / 1440, (m % 1440) / 60, m % 60);
    match (days, hours, mins) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn job_ref(job: &Job) -> String {
    format!(
        "*{}* `{}` ({} tier, priority {})",
        crate::domain::text::escape_slack(&job.asset_name),
        job.id,
        crate::domain::risk::SlaTier::from_priority(job.priority).label(),
        job.priority
    )
}

/// The approaching notice's message; `in_thread` when it is a reply in
/// the thread of the job's recovered alert.
pub fn approaching_view(
    job: &Job,
    a: &Assessment,
    buffer: f64,
    want: f64,
    in_thread: bool,
) -> NoticeView {
    let eta = a.eta.map(date_token).unwrap_or_else(|| "unknown".into());
    let deadline = job
        .sla_deadline_at
        .map(date_token)
        .unwrap_or_else(|| "none".into());
    let left = match (job.sla_deadline_at, a.eta) {
        (Some(d), Some(e)) => span(d - e),
        _ => "?".into(),
    };
    NoticeView {
        text: format!(
            "Approaching its deadline: {} ETA is within the {} buffer its tier keeps",
            crate::domain::text::escape_slack(&job.asset_name),
            pct(want)
        ),
        headline: format!(
            ":hourglass_flowing_sand: *Approaching its deadline* · {} · ETA {eta}, deadline {deadline}: {left} to spare, a buffer of {} of the expected duration (the tier keeps {}).",
            job_ref(job),
            pct(buffer),
            pct(want)
        ),
        lines: vec![format!(
            "{} of {} done. Not at risk yet: no one is paged. {}",
            job.completed_partitions,
            crate::domain::text::count(job.total_partitions, "partition", "partitions"),
            if in_thread {
                "If it goes at risk again, a new alert is posted."
            } else {
                "This message becomes the alert if the job goes at risk."
            }
        )],
    }
}

/// The buffer check's message: the deadline leaves less than the tier keeps.
pub fn tight_view(
    job: &Job,
    a: &Assessment,
    buffer: f64,
    want: f64,
    now: DateTime<Utc>,
) -> NoticeView {
    let eta = a.eta.map(date_token).unwrap_or_else(|| "unknown".into());
    let deadline = job
        .sla_deadline_at
        .map(date_token)
        .unwrap_or_else(|| "none".into());
    let better = deadline_for(job, a, want, now)
        .map(|d| {
            format!(
                "A deadline of {} would meet the tier (`/backfill extend-deadline {} {}`).",
                date_token(d),
                job.id,
                d.format("%Y-%m-%dT%H:%MZ")
            )
        })
        .unwrap_or_default();
    NoticeView {
        text: format!(
            "Tight deadline: {} leaves a {} buffer, its tier recommends {}",
            crate::domain::text::escape_slack(&job.asset_name),
            pct(buffer),
            pct(want)
        ),
        headline: format!(
            ":straight_ruler: *Tight deadline* · {} · expected to complete {eta}, deadline {deadline}: a buffer of {} of the expected duration, the tier recommends at least {}.",
            job_ref(job),
            pct(buffer),
            pct(want)
        ),
        lines: vec![format!(
            "{better} Nothing is at risk yet: no one is paged. This message becomes the alert if the job goes at risk."
        )],
    }
}

fn cleared_view(job_asset: &str, job_id: &str, why: &str) -> NoticeView {
    NoticeView {
        text: format!("{}: {why}", crate::domain::text::escape_slack(job_asset)),
        headline: format!(
            ":white_check_mark: *{}* `{job_id}` · {why}",
            crate::domain::text::escape_slack(job_asset)
        ),
        lines: Vec::new(),
    }
}

fn post(
    state: &AppState,
    tenant: &Tenant,
    notice: &Notice,
    view: &NoticeView,
) -> Result<NewOutboxMessage, PreventiveError> {
    let mut payload = state.templates.render("notice", view)?;
    payload["channel"] = tenant.channel.as_str().into();
    // A job whose alert recovered hears about it in that alert's thread: the
    // channel already has its message. Its edits follow it there.
    let (ordering_key, thread_alert_id, thread_field) = match &notice.thread_of {
        Some(alert) => (alert.clone(), Some(alert.clone()), Some("thread_ts".into())),
        None => (format!("notice:{}", notice.id), None, None),
    };
    Ok(NewOutboxMessage {
        dedup_key: Some(notice_post_key(&notice.id)),
        method: "chat.postMessage".into(),
        payload,
        ordering_key: Some(ordering_key),
        thread_alert_id,
        thread_field,
        link_kind: None,
        link_id: None,
        not_before: None,
    })
}

/// An edit of a notice's message (the outbox finds it by `notice:<id>`).
pub fn edit_notice(
    state: &AppState,
    notice_id: &str,
    view: &NoticeView,
    dedup_key: String,
) -> Result<NewOutboxMessage, PreventiveError> {
    Ok(NewOutboxMessage {
        dedup_key: Some(dedup_key),
        method: "chat.update".into(),
        payload: state.templates.render("notice", view)?,
        ordering_key: Some(format!("notice:{notice_id}")),
        thread_alert_id: Some(format!("notice:{notice_id}")),
        thread_field: Some("ts".into()),
        link_kind: None,
        link_id: None,
        not_before: None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PreventiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] crate::slack::render::RenderError),
    #[error(transparent)]
    Servo(#[from] crate::servo::ServoError),
}

/// What one poll's watch did, for tests and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PreventiveOutcome {
    pub first_seen: usize,
    pub tight: usize,
    pub approaching: usize,
    pub cleared: usize,
    pub ended: usize,
}

/// Runs after the tenant's alerts were reconciled. `assessed` holds every
/// active job with a deadline and its assessment; `alerted` the open
/// alerts, by job id.
pub async fn observe(
    state: &AppState,
    tenant: &Tenant,
    assessed: &[(&Job, Assessment)],
    alerted: &HashMap<String, crate::store::Alert>,
    now: DateTime<Utc>,
) -> Result<PreventiveOutcome, PreventiveError> {
    let buffers = &state.config.buffers;
    let hysteresis = buffers.hysteresis;
    let mut outcome = PreventiveOutcome::default();
    let watched: HashMap<String, ActiveWatch> = state
        .store
        .watched_active(&tenant.id)
        .await?
        .into_iter()
        .map(|w| (w.job_id.clone(), w))
        .collect();
    let notices = state.store.open_notices_by_job(&tenant.id).await?;
    // Jobs whose alert resolved lately: still sampled, so that what a
    // mitigation bought is measured when it worked too.
    let measuring: std::collections::HashSet<String> = state
        .store
        .jobs_resolved_since(
            &tenant.id,
            now - crate::flows::bought::SAMPLED_AFTER_RESOLUTION,
        )
        .await?
        .into_iter()
        .collect();

    let mut new = Vec::new();
    let mut marks = Vec::new();
    let mut samples = Vec::new();
    let mut messages = Vec::new();
    for (job, a) in assessed {
        let id = job.id.to_string();
        let b = buffer(job, a, now);
        let breached = a.band == RiskBand::Breached;
        match watched.get(&id) {
            None => new.push(NewWatchedJob {
                tenant_id: tenant.id.clone(),
                job_id: id.clone(),
                asset: job.asset_name.clone(),
                priority: job.priority,
                tier: a.tier.as_str().into(),
                deadline: job.sla_deadline_at,
                buffer: b,
            }),
            Some(w) => {
                let lower = b.is_some_and(|b| w.min_buffer.is_none_or(|m| b < m - BUFFER_STEP));
                let moved = w.deadline.map(|d| d.timestamp_millis())
                    != job.sla_deadline_at.map(|d| d.timestamp_millis());
                if lower || moved || (breached && !w.breached) {
                    state
                        .store
                        .watch_observe(&tenant.id, &id, job.sla_deadline_at, b, breached, now)
                        .await?;
                }
                marks.extend(next_mark(job, a, w.last_mark));
            }
        }
        if alerted.contains_key(&id) || measuring.contains(&id) {
            if let Some(eta) = a.eta {
                samples.push(EtaSample {
                    tenant_id: tenant.id.clone(),
                    job_id: id.clone(),
                    at: now,
                    eta,
                    deadline: job.sla_deadline_at,
                });
            }
        }

        // Early warning: only for a job that is on track, has no alert, and
        // whose tier keeps a buffer.
        let Some(want) = buffers.for_tier(a.tier) else {
            continue;
        };
        let on_track = a.band == RiskBand::OnTrack && !alerted.contains_key(&id);
        let notice = notices.get(&id);
        let recovered = b.is_some_and(|b| b >= want + hysteresis);
        let close_in = b.is_some_and(|b| (0.0..want).contains(&b));
        if let (Some(n), Some(b), true, true) = (notice, b, on_track, recovered) {
            if state
                .store
                .close_notice(&n.id, "cleared", None, now)
                .await?
                && has_message(state, &n.id).await?
            {
                let view = cleared_view(
                    &job.asset_name,
                    &id,
                    &format!(
                        "back to a comfortable buffer: {} of the expected duration (the tier keeps {}). ETA {}, deadline {}.",
                        pct(b),
                        pct(want),
                        a.eta.map(date_token).unwrap_or_default(),
                        job.sla_deadline_at.map(date_token).unwrap_or_default()
                    ),
                );
                messages.push(edit_notice(
                    state,
                    &n.id,
                    &view,
                    format!("notice:{}:cleared", n.id),
                )?);
                outcome.cleared += 1;
            }
        } else if let (None, Some(b), true, true) = (notice, b, on_track, close_in) {
            // First sight is the buffer check's (below); after that, early warning.
            if watched.contains_key(&id) {
                let thread_of = state
                    .store
                    .latest_alert_for_job(&tenant.id, &id)
                    .await?
                    .filter(|a| a.ts.is_some())
                    .map(|a| a.id);
                if let Some(n) = state
                    .store
                    .open_notice(
                        &tenant.id,
                        &id,
                        "approaching",
                        Some(b),
                        thread_of.as_deref(),
                        now,
                    )
                    .await?
                {
                    messages.push(post(
                        state,
                        tenant,
                        &n,
                        &approaching_view(job, a, b, want, n.thread_of.is_some()),
                    )?);
                    outcome.approaching += 1;
                }
            }
        }
    }

    // First sight: the buffer check, once per job (the insert that wins).
    let inserted: HashSet<String> = state
        .store
        .watch_new(&new, now)
        .await?
        .into_iter()
        .collect();
    outcome.first_seen = inserted.len();
    let mut tight: Vec<Tight> = Vec::new();
    for (job, a) in assessed {
        let id = job.id.to_string();
        if !inserted.contains(&id) {
            continue;
        }
        marks.extend(next_mark(job, a, 0));
        let (Some(want), Some(b)) = (buffers.for_tier(a.tier), buffer(job, a, now)) else {
            continue;
        };
        if a.band != RiskBand::OnTrack || alerted.contains_key(&id) || b >= want {
            continue;
        }
        let entry = crate::store::AuditEntry {
            at: now,
            tenant_id: Some(tenant.id.clone()),
            actor: "bot".into(),
            action: "buffer_check".into(),
            subject: Some(id.clone()),
            outcome: "tight".into(),
            detail: Some(json!({ "buffer": b, "recommended": want, "tier": a.tier.as_str() })),
        };
        if let Err(e) = state.store.audit(&entry).await {
            tracing::error!(error = %e, "could not write the audit log");
        }
        if let Some(n) = state
            .store
            .open_notice(&tenant.id, &id, "tight_deadline", Some(b), None, now)
            .await?
        {
            tight.push((n, *job, a, b, want));
        }
    }
    outcome.tight = tight.len();
    if tight.len() <= TIGHT_ONE_BY_ONE {
        for (n, job, a, b, want) in &tight {
            messages.push(post(state, tenant, n, &tight_view(job, a, *b, *want, now))?);
        }
    } else {
        // Many at once (the bot's first poll after it is deployed, say): one
        // message lists them rather than a flood. Their notices have no
        // message of their own; one that goes at risk gets a fresh alert.
        let view = tight_summary(&tight, now);
        let mut payload = state.templates.render("notice", &view)?;
        payload["channel"] = tenant.channel.as_str().into();
        messages.push(NewOutboxMessage::call(
            "chat.postMessage",
            payload,
            format!("tight-summary:{}:{}", tenant.id, now.timestamp_millis()),
        ));
    }
    state.store.watch_marks(&tenant.id, &marks, now).await?;
    state.store.record_eta_samples(&samples).await?;

    // Jobs that left the active list: how they ended.
    let active: HashSet<String> = assessed.iter().map(|(j, _)| j.id.to_string()).collect();
    for w in watched
        .values()
        .filter(|w| !active.contains(&w.job_id))
        .take(ENDED_PER_POLL)
    {
        let Ok(uuid) = w.job_id.parse::<Uuid>() else {
            continue;
        };
        let job = state.servo.get_job(&tenant.id, uuid).await?;
        let (how, completed_at) = match &job {
            Some(j) if j.state == JobState::Completed => {
                ("completed", j.completed_at.or(Some(now)))
            }
            Some(j) if j.state == JobState::Cancelled => ("cancelled", None),
            Some(j) if j.state == JobState::Failed => ("failed", None),
            Some(j) if j.state.is_active() && j.sla_deadline_at.is_some() => continue, // not listed this time
            Some(_) => ("no_sla", None),
            None => ("gone", None),
        };
        if !state
            .store
            .watch_end(&tenant.id, &w.job_id, how, completed_at, now)
            .await?
        {
            continue;
        }
        outcome.ended += 1;
        if let Some(n) = notices.get(&w.job_id) {
            if state
                .store
                .close_notice(&n.id, "cleared", None, now)
                .await?
                && has_message(state, &n.id).await?
            {
                let why = match (how, completed_at, w.deadline) {
                    ("completed", Some(c), Some(d)) if c <= d => format!(
                        "completed {} with {} to spare before the deadline {}.",
                        date_token(c),
                        span(d - c),
                        date_token(d)
                    ),
                    ("completed", Some(c), _) => format!("completed {}.", date_token(c)),
                    (other, _, _) => format!("the job ended ({other})."),
                };
                messages.push(edit_notice(
                    state,
                    &n.id,
                    &cleared_view(&w.asset, &w.job_id, &why),
                    format!("notice:{}:cleared", n.id),
                )?);
                outcome.cleared += 1;
            }
        }
    }
    state.enqueue_many(&messages).await?;
    for (kind, n) in [
        ("tight_deadline", outcome.tight),
        ("approaching", outcome.approaching),
        ("cleared", outcome.cleared),
    ] {
        if n > 0 {
            state
                .metrics
                .add("servo_sla_bot_notices_total", &[("kind", kind)], n as f64);
        }
    }
    Ok(outcome)
}

/// Whether a notice has a message of its own to edit (one listed in a
/// shared tight-deadline message has none).
pub(crate) async fn has_message(state: &AppState, notice_id: &str) -> Result<bool, StoreError> {
    Ok(state.store.notice_place(notice_id).await? != crate::store::NoticePlace::Missing)
}

/// The ETAs to keep if the job has just passed a progress mark it has not
/// been recorded at.
fn next_mark(job: &Job, a: &Assessment, last_mark: i64) -> Option<NewEtaMark> {
    let done = (job.completed_partitions + job.failed_partitions + job.skipped_partitions) as f64
        * 100.0
        / job.total_partitions.max(1) as f64;
    let mark = MARKS
        .iter()
        .copied()
        .filter(|m| *m > last_mark && done >= *m as f64 && done < *m as f64 + MARK_WINDOW)
        .max()?;
    Some(NewEtaMark {
        job_id: job.id.to_string(),
        mark,
        servo_eta: job.estimated_completion_at,
        bot_eta: job.forecast.map(|(p50, _)| p50).or(a.eta),
    })
}
