//! Reconciles assessments with what Slack shows. A new at-risk job gets one
//! post per risk episode; a change of band, ETA or progress edits it in place
//! (at most once per poll); a band change also gets a thread reply; a job back
//! on track, finished or cancelled resolves the alert and its buttons go.
//!
//! Every Slack call goes through the outbox with a dedup key derived from the
//! alert and its version, so a restart (or a second replica) never posts an
//! episode twice.

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::flows::alert_view::{
    edit, extras, extras_new, extras_read, render, resolved_note, resolved_view, severity_text,
    token, view, AlertView, Extras,
};
use crate::flows::ids::MONITOR_TIMER;
use crate::flows::poll_reads::PollReads;
use crate::flows::thread::{esc_err, thread_message, AlertError};
use crate::servo::Job;
use crate::store::{Alert, NewAlert, NewOutboxMessage, StoreError};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// What reconciling one job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Posted,
    Edited,
    Resolved,
}

/// Brings Slack in line with one job's assessment.
#[allow(clippy::too_many_arguments)]
pub async fn reconcile(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    existing: Option<Alert>,
    notice: Option<&crate::store::Notice>,
    rollup: Option<&str>,
    reads: Option<&PollReads>,
    now: DateTime<Utc>,
) -> Result<Change, AlertError> {
    let at_risk = a.band.is_at_risk();
    match existing {
        None if at_risk => {
            let new = new_alert(tenant, job, a);
            // A quiet notice with a message of its own becomes the alert.
            if let Some(n) = notice.filter(|n| n.thread_of.is_none()) {
                if crate::flows::preventive::has_message(state, &n.id).await? {
                    return open_promoting(state, new, job, a, n, now).await;
                }
            }
            let plan = plan_new(state, tenant, job, a, rollup, now).await?;
            let changes = open_planned(state, vec![(plan, job, a)], reads, now).await?;
            Ok(changes.into_iter().next().unwrap_or(Change::None))
        }
        None => Ok(Change::None),
        Some(alert) if at_risk => {
            let previous = Some(alert.band);
            // Repair: an open alert whose post was never written (the bot
            // stopped between opening it and enqueueing its post), or never
            // delivered (refused for good), gets it first, before anything of
            // its thread: a reply enqueued ahead of its root would wait for
            // it forever.
            if alert.ts.is_none() && !state.store.alert_post_live(&alert.id).await? {
                tracing::warn!(alert = %alert.id, "repair: an open alert had no post; posting it");
                state
                    .metrics
                    .inc("servo_sla_bot_repairs_total", &[("what", "alert_post")]);
                let ex = extras(state, &alert.id).await?;
                let v = view(state, job, a, Some(&alert), &ex);
                record_view(
                    state,
                    &alert.id,
                    job,
                    a,
                    &serde_json::to_value(&v).unwrap_or(Value::Null),
                    now,
                )
                .await?;
                post(state, tenant, &alert, &v).await?;
                crate::flows::escalation::on_assessment(state, &alert, job, a, previous)
                    .await
                    .map_err(esc_err)?;
                return Ok(Change::Posted);
            }
            let changed = crate::flows::escalation::on_assessment_read(
                state, &alert, job, a, previous, reads,
            )
            .await
            .map_err(esc_err)?;
            // The escalation may have re-armed (cleared the acknowledgement):
            // then the alert and its extras are read afresh; otherwise the
            // poll's reads hold.
            let (alert, ex) = match reads.filter(|_| !changed) {
                Some(r) => {
                    let alert = r.alerts.get(&alert.id).cloned().unwrap_or(alert);
                    let ex = extras_read(state, &alert, r).await?;
                    (alert, ex)
                }
                None => {
                    let alert = state.store.get_alert(&alert.id).await?.unwrap_or(alert);
                    let ex = extras(state, &alert.id).await?;
                    (alert, ex)
                }
            };
            let v = view(state, job, a, Some(&alert), &ex);
            let v_json = serde_json::to_value(&v).unwrap_or(Value::Null);
            if alert.shown.as_ref() == Some(&v_json) {
                return Ok(Change::None);
            }
            record_view(state, &alert.id, job, a, &v_json, now).await?;
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
                        ":rotating_light: *Deadline breached.* *{}* is still {} with {} of {} left.",
                        crate::domain::text::escape_slack(&job.asset_name),
                        job.state.as_str().replace('_', " "),
                        a.remaining,
                        crate::domain::text::count(job.total_partitions, "partition", "partitions")
                    )
                } else if worse {
                    format!(
                        "{} *{}*: risk rose from *{from}* to *{}*: {}. ETA {}, deadline {}.",
                        a.band.emoji(),
                        crate::domain::text::escape_slack(&job.asset_name),
                        a.band.label(),
                        severity_text(a.eta, job.sla_deadline_at, now, a.severity),
                        token(a.eta),
                        token(job.sla_deadline_at)
                    )
                } else {
                    format!(
                        "{} Risk eased from *{from}* to *{}*: {}. ETA {}, deadline {}.",
                        a.band.emoji(),
                        a.band.label(),
                        severity_text(a.eta, job.sla_deadline_at, now, a.severity),
                        token(a.eta),
                        token(job.sla_deadline_at)
                    )
                };
                // Worse is loud: a worsening to High or Breached is also shown
                // in the channel (`reply_broadcast`), once per band and episode.
                let loud =
                    worse && matches!(a.band, RiskBand::High | RiskBand::Breached) && !ex.silenced;
                let mut msg = thread_message(
                    state,
                    &alert,
                    if loud {
                        format!("alert:{}:loud:{}", alert.id, a.band.as_str())
                    } else {
                        format!("alert:{}:band:{version}", alert.id)
                    },
                    &text,
                )?;
                if loud {
                    msg.payload["reply_broadcast"] = true.into();
                }
                // The note, and the audit entry an incident channel's
                // timeline reads how the band and ETA moved from.
                let mut effects = crate::store::Effects::new();
                effects.send(msg);
                if let Some(from) = previous {
                    effects.record(crate::flows::incident_channels::band_change_entry(
                        state, &alert, from, a.band, a.eta,
                    ));
                }
                state.commit(&effects).await?;
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

/// The alert a job's assessment opens, before its view is rendered.
fn new_alert(tenant: &Tenant, job: &Job, a: &Assessment) -> NewAlert {
    NewAlert {
        tenant_id: tenant.id.clone(),
        job_id: job.id.to_string(),
        band: a.band,
        severity: a.severity.filter(|s| s.is_finite()),
        eta: a.eta,
        deadline: job.sla_deadline_at,
        shown: None,
    }
}

/// A new alert's extras ([`extras_new`]), with Escalate now past the tier
/// its paging pages at once (a storm's alert does not page on its own: its
/// roll-up does, in `group_paging`, and its Escalate now stays as it is).
async fn new_extras(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    job: &Job,
    a: &Assessment,
    rollup: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Extras, AlertError> {
    let mut ex = extras_new(state, &tenant.id, id).await?;
    let path = crate::flows::oncall::path(state, &tenant.id, now).await;
    if rollup.is_none() && !path.tiers.is_empty() && crate::flows::paging::pages_for(&path, a, job)
    {
        // Paging starts right after the post and pages the first tier at
        // once: from then on, Escalate now pages the next one.
        ex.escalate_to =
            crate::flows::paging::escalate_now_pages_after_start(&path, &state.directory).await;
        ex.escalate_value = Some(crate::flows::paging::escalate_now_value_after_start(
            &path, id,
        ));
    }
    Ok(ex)
}

/// A new alert decided but not yet stored: its id, the alert with the view
/// it shows, and its post.
pub struct PlannedAlert {
    id: String,
    new: NewAlert,
    effects: crate::store::Effects,
}

/// Decides a new alert for an at-risk job with none open: the alert as it
/// will be, its view and its post (a reply in the roll-up's thread in a
/// storm). Nothing is stored until [`open_planned`].
pub async fn plan_new(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    rollup: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PlannedAlert, AlertError> {
    let new = new_alert(tenant, job, a);
    let id = uuid::Uuid::new_v4().to_string();
    let prospective = new.prospective(&id, now);
    let ex = new_extras(state, tenant, &id, job, a, rollup, now).await?;
    let v = view(state, job, a, Some(&prospective), &ex);
    let mut effects = crate::store::Effects::new();
    let mut post = post_message(state, tenant, &id, &v)?;
    if let Some(r) = rollup {
        // A storm: the alert is a reply in the tenant's roll-up.
        post.thread_alert_id = Some(format!("rollup:{r}"));
        post.thread_field = Some("thread_ts".into());
    }
    effects.send(post);
    let new = NewAlert {
        shown: Some(serde_json::to_value(&v).unwrap_or(Value::Null)),
        ..new
    };
    Ok(PlannedAlert { id, new, effects })
}

/// Stores the planned alerts with their posts in one transaction, then
/// starts paging where an alert pages on its own. A job whose alert another
/// replica opened first is left to it (`Change::None`).
pub async fn open_planned(
    state: &AppState,
    planned: Vec<(PlannedAlert, &Job, &Assessment)>,
    reads: Option<&PollReads>,
    now: DateTime<Utc>,
) -> Result<Vec<Change>, AlertError> {
    if planned.is_empty() {
        return Ok(Vec::new());
    }
    let batch: Vec<(&str, &NewAlert, &crate::store::Effects)> = planned
        .iter()
        .map(|(p, _, _)| (p.id.as_str(), &p.new, &p.effects))
        .collect();
    let opened = state.store.open_alerts_with(&batch, now).await?;
    state.wake_outbox();
    let mut changes = Vec::with_capacity(opened.len());
    for (alert, (_, job, a)) in opened.into_iter().zip(&planned) {
        let Some(alert) = alert else {
            // Another replica opened it first, and posts it.
            changes.push(Change::None);
            continue;
        };
        crate::flows::escalation::on_assessment_read(state, &alert, job, a, None, reads)
            .await
            .map_err(esc_err)?;
        changes.push(Change::Posted);
    }
    Ok(changes)
}

/// An alert's post in its tenant's channel (sent once: its dedup key names
/// the alert).
/// Stores what an assessment shows on an alert: its band, severity, ETA,
/// deadline and the view last rendered.
async fn record_view(
    state: &AppState,
    alert_id: &str,
    job: &Job,
    a: &Assessment,
    shown: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    state
        .store
        .update_alert(
            alert_id,
            a.band,
            a.severity.filter(|s| s.is_finite()),
            a.eta,
            job.sla_deadline_at,
            Some(shown),
            now,
        )
        .await
        .map(drop)
}

fn post_message(
    state: &AppState,
    tenant: &Tenant,
    alert_id: &str,
    v: &AlertView,
) -> Result<NewOutboxMessage, AlertError> {
    let mut payload = render(state, v)?;
    payload["channel"] = tenant.channel.as_str().into();
    Ok(NewOutboxMessage {
        dedup_key: Some(format!("alert:{alert_id}:post")),
        method: "chat.postMessage".into(),
        payload,
        ordering_key: Some(alert_id.to_string()),
        thread_alert_id: None,
        thread_field: None,
        link_kind: Some("alert".into()),
        link_id: Some(alert_id.to_string()),
        not_before: None,
    })
}

/// Enqueues an alert's post (the repair of one never written, or never
/// delivered).
async fn post(
    state: &AppState,
    tenant: &Tenant,
    alert: &Alert,
    v: &AlertView,
) -> Result<(), AlertError> {
    let mut msg = post_message(state, tenant, &alert.id, v)?;
    let refused = state.store.alert_posts_refused(&alert.id).await?;
    if refused > 0 {
        // Slack refused its post (or the edit of a notice into it) for good:
        // posted anew under a key of its own, with nothing ordered ahead of
        // it (its thread's notes wait for it by the alert's place).
        msg.dedup_key = Some(format!("alert:{}:post:{refused}", alert.id));
        msg.ordering_key = None;
    }
    state.enqueue(msg).await?;
    Ok(())
}

/// Opens an alert whose job had a quiet notice with a message of its own:
/// the notice's message becomes the alert (if it is still the notice's to
/// give), else the alert is posted afresh. Decided first, both ways; then the
/// alert, the notice's closing and the messages of whichever way it went
/// commit together.
async fn open_promoting(
    state: &AppState,
    new: NewAlert,
    job: &Job,
    a: &Assessment,
    notice: &crate::store::Notice,
    now: DateTime<Utc>,
) -> Result<Change, AlertError> {
    let tenant = state
        .config
        .tenant(&new.tenant_id)
        .ok_or_else(|| AlertError::Store(StoreError::Invalid("unknown tenant".into())))?;
    let id = uuid::Uuid::new_v4().to_string();
    let prospective = new.prospective(&id, now);
    let ex = new_extras(state, tenant, &id, job, a, None, now).await?;
    let v = view(state, job, a, Some(&prospective), &ex);
    let mut fresh = crate::store::Effects::new();
    fresh.send(post_message(state, tenant, &id, &v)?);
    let promoted = promotion(state, &prospective, notice, &v)?;
    let new = NewAlert {
        shown: Some(serde_json::to_value(&v).unwrap_or(Value::Null)),
        ..new
    };
    let (alert, created) = state
        .store
        .open_alert_promoting(&id, new, &notice.id, &promoted, &fresh, now)
        .await?;
    if !created {
        // Another replica opened it first, and posts it.
        return Ok(Change::None);
    }
    state.wake_outbox();
    crate::flows::escalation::on_assessment(state, &alert, job, a, None)
        .await
        .map_err(esc_err)?;
    Ok(Change::Posted)
}

/// What promoting a quiet notice (approaching, or a tight deadline) to the
/// job's alert sends: the notice's message edited into the alert, so the
/// channel sees one message per job, and a note in its thread saying why.
fn promotion(
    state: &AppState,
    alert: &Alert,
    notice: &crate::store::Notice,
    v: &AlertView,
) -> Result<crate::store::Effects, AlertError> {
    let mut effects = crate::store::Effects::new();
    // The outbox finds the notice's channel and ts when it sends (its post
    // may still be on its way), and records them on the alert on success.
    effects.send(NewOutboxMessage {
        dedup_key: Some(format!("alert:{}:post", alert.id)),
        method: "chat.update".into(),
        payload: render(state, v)?,
        ordering_key: Some(alert.id.clone()),
        thread_alert_id: Some(format!("notice:{}", notice.id)),
        thread_field: Some("ts".into()),
        link_kind: Some("alert".into()),
        link_id: Some(alert.id.clone()),
        not_before: None,
    });
    let what = if notice.kind == "tight_deadline" {
        "its deadline was flagged as tight"
    } else {
        "it was approaching its deadline"
    };
    effects.send(thread_message(
        state,
        alert,
        format!("alert:{}:promoted", alert.id),
        &format!(
            "This job went at risk after {what} ({}, buffer {}).",
            date_token(notice.opened_at),
            notice
                .buffer
                .map(crate::flows::preventive::pct)
                .unwrap_or_else(|| "unknown".into())
        ),
    )?);
    Ok(effects)
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
    // Decided first: the resolved view, its edit and the note; then the
    // resolution commits with them, its check-ins and steps cancelled.
    let ex = extras(state, &alert.id).await?;
    let mut fresh = view(state, job, a, None, &ex);
    if fresh.downstream.is_empty() {
        // A job that left the poll's list has no impact read: the section
        // it showed stays, and says it is resolved (issue 37).
        fresh.downstream = AlertView::shown(alert)
            .map(|v| v.downstream)
            .unwrap_or_default();
    }
    let v = resolved_view(alert, fresh, &ex, how, now);
    let mut effects = crate::store::Effects::new();
    effects.outbox = resolved_messages(state, alert, &v, how)?;
    commit_resolution(state, alert, how, now, Some(&v), effects).await
}

/// Commits a resolution with the view it shows from now on (`shown`), its
/// messages (`effects`) and its check-ins and steps cancelled, then stops
/// the paging.
async fn commit_resolution(
    state: &AppState,
    alert: &Alert,
    how: &str,
    now: DateTime<Utc>,
    shown: Option<&AlertView>,
    mut effects: crate::store::Effects,
) -> Result<Change, AlertError> {
    effects
        .cancel(&alert.id, Some(MONITOR_TIMER))
        .cancel(&alert.id, Some(crate::flows::ids::STEP_TIMER));
    let shown = shown.map(|v| serde_json::to_value(v).unwrap_or(Value::Null));
    // An incident channel gets the episode's timeline and its archive button.
    effects
        .outbox
        .extend(crate::flows::incident_channels::on_resolution(state, alert, how, now).await?);
    // The thread asks once how the episode ended.
    effects.send(crate::flows::incident_channels::ask_how_it_ended(
        state, alert,
    )?);
    // Scaling requests' PagerDuty incidents resolve with the alert.
    effects.outbox.extend(
        crate::flows::paging::resolve_events(state, alert)
            .await
            .map_err(esc_err)?,
    );
    if !state
        .store
        .resolve_alert_with(&alert.id, how, now, shown.as_ref(), &effects)
        .await?
    {
        return Ok(Change::None);
    }
    state.wake_outbox();
    // Paging stops with the alert (a stop before this is caught by the next
    // step, which finds the alert resolved and ends the escalation).
    crate::flows::escalation::stop(state, alert, how)
        .await
        .map_err(esc_err)?;
    Ok(Change::Resolved)
}

/// Resolves an alert whose job Servo no longer shows at all (deleted, or
/// moved out of the tenant's sight): with no job to render, the alert's last
/// view is what is marked resolved. Commits as [`resolve`] does: the
/// resolution with its view, its edit, its thread note and its timers
/// cancelled, in one transaction.
pub async fn resolve_gone(
    state: &AppState,
    alert: &Alert,
    how: &str,
    now: DateTime<Utc>,
) -> Result<Change, AlertError> {
    let ex = extras(state, &alert.id).await?;
    let last = AlertView::shown(alert).map(|v| resolved_view(alert, v, &ex, how, now));
    let mut effects = crate::store::Effects::new();
    match &last {
        Some(v) => effects.outbox = resolved_messages(state, alert, v, how)?,
        // Never rendered: nothing to edit, only the note.
        None => {
            effects.send(resolved_note(state, alert, how)?);
        }
    }
    commit_resolution(state, alert, how, now, last.as_ref(), effects).await
}

/// The resolution's view, edit and thread note, from the alert's last view,
/// for the repair pass when a stop left them unwritten: the view is stored
/// with its messages, so later edits render it resolved.
pub async fn resolved_edit(
    state: &AppState,
    alert: &Alert,
    v: AlertView,
    ex: &Extras,
    how: &str,
    at: DateTime<Utc>,
) -> Result<(), AlertError> {
    let v = resolved_view(alert, v, ex, how, at);
    let shown = serde_json::to_value(&v).unwrap_or(Value::Null);
    let mut effects = crate::store::Effects::new();
    effects.outbox = resolved_messages(state, alert, &v, how)?;
    if state
        .store
        .show_resolved_alert(&alert.id, &shown, &effects, state.clock.now())
        .await?
    {
        state.wake_outbox();
    }
    Ok(())
}

/// The resolution's edit (of the resolved view `v`) and thread note.
pub fn resolved_messages(
    state: &AppState,
    alert: &Alert,
    v: &AlertView,
    how: &str,
) -> Result<Vec<NewOutboxMessage>, AlertError> {
    let mut msgs = vec![NewOutboxMessage {
        dedup_key: Some(format!("alert:{}:resolved-edit", alert.id)),
        method: "chat.update".into(),
        payload: render(state, v)?,
        ordering_key: Some(alert.id.clone()),
        thread_alert_id: Some(alert.id.clone()),
        thread_field: Some("ts".into()),
        link_kind: None,
        link_id: None,
        not_before: None,
    }];
    msgs.push(resolved_note(state, alert, how)?);
    Ok(msgs)
}
