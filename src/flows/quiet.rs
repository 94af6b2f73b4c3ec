//! May this alert page now? (issue 35)
//!
//! One decision, [`decide`], read from the store (silences, maintenance
//! windows set from Slack) and the config (`[[maintenance]]`,
//! `[escalation.hours.<tier>]`): [`Decision::Page`], or
//! [`Decision::Hold`] until when and why. The escalation asks it when paging
//! would start and before each step ([`gate`]); a held alert's escalation
//! stops (its thread says so) and a timer at `until` ([`RESUME_TIMER`])
//! starts it again from the first tier if the job is still at risk. Every
//! change is one store transaction with its notes, timers and audit entry,
//! and every note and timer has a dedup key, so each replica that decides
//! the same thing writes it once.
//!
//! Silences are made and ended here too ([`silence`], [`end_silence`]):
//! `/backfill silence`, `/backfill unsilence` and the silence's expiry.

use crate::context::AppState;
use crate::domain::text::date_token;
use crate::risk::{RiskBand, SlaTier};
use crate::slack::render::escape_slack;
use crate::store::{Alert, AuditEntry, Effects, NewTimer, Scope, Silence, StoredWindow};
use chrono::{DateTime, Utc};
use serde_json::json;

/// A held alert's resumption: paging may start again (subject: the alert).
pub const RESUME_TIMER: &str = "quiet_resume";
/// A silence's end (subject: the silence's id).
pub const SILENCE_END_TIMER: &str = "silence_end";

/// What is asked about: one job's alert, its band and SLA tier.
#[derive(Clone, Debug)]
pub struct Subject {
    pub tenant: String,
    pub job_id: String,
    pub asset: String,
    pub band: RiskBand,
    pub tier: SlaTier,
}

impl Subject {
    /// The alert as it shows: its asset and priority from its view.
    pub fn of(alert: &Alert) -> Subject {
        let priority = alert
            .shown
            .as_ref()
            .and_then(|v| v.get("priority"))
            .and_then(|p| p.as_i64())
            .unwrap_or(5) as i32;
        Subject {
            tenant: alert.tenant_id.clone(),
            job_id: alert.job_id.clone(),
            asset: alert.asset_name(),
            band: alert.band,
            tier: SlaTier::from_priority(priority),
        }
    }
}

/// Why an alert may not page now.
#[derive(Clone, Debug, PartialEq)]
pub enum Hold {
    Silenced(Silence),
    Maintenance { reason: Option<String> },
    Settling,
    Hours { tz: chrono_tz::Tz, tier: SlaTier },
}

/// The answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Page,
    Hold { until: DateTime<Utc>, why: Hold },
}

impl Decision {
    /// The thread's and the alert's words for a hold.
    pub fn words(&self) -> Option<String> {
        let Decision::Hold { until, why } = self else {
            return None;
        };
        Some(match why {
            Hold::Silenced(s) => format!(
                "Silenced by <@{}> until {}: {}",
                s.created_by,
                date_token(*until),
                escape_slack(s.reason.as_deref().unwrap_or("no reason given"))
            ),
            Hold::Maintenance { reason } => format!(
                "In maintenance until {}{}",
                date_token(*until),
                reason
                    .as_deref()
                    .map(|r| format!(": {}", escape_slack(r)))
                    .unwrap_or_default()
            ),
            Hold::Settling => format!(
                "Settling after maintenance until {}: nothing pages until then, so ETAs can recover",
                date_token(*until)
            ),
            Hold::Hours { tz, tier } => format!(
                "Paging held until {} ({} tier pages in working hours)",
                until.with_timezone(tz).format("%a %H:%M %Z"),
                tier.label()
            ),
        })
    }

    /// A stable name for the hold (dedup keys of its notes).
    fn key(&self) -> String {
        match self {
            Decision::Page => "page".into(),
            Decision::Hold { until, why } => {
                let kind = match why {
                    Hold::Silenced(s) => format!("silence:{}", s.id),
                    Hold::Maintenance { .. } => "maintenance".into(),
                    Hold::Settling => "settle".into(),
                    Hold::Hours { .. } => "hours".into(),
                };
                format!("{kind}:{}", until.timestamp_millis())
            }
        }
    }
}

fn tier_index(t: SlaTier) -> usize {
    match t {
        SlaTier::Critical => 0,
        SlaTier::Standard => 1,
        SlaTier::BestEffort => 2,
        SlaTier::BelowBestEffort => 3,
    }
}

fn window_covers(w: &StoredWindow, s: &Subject) -> bool {
    w.tenant_id == s.tenant && w.scope.covers(&w.target, &s.tenant, &s.job_id, &s.asset)
}

/// May this alert page now? Silences first (the latest-ending one that
/// covers it; a breach breaks through unless it was set
/// `--through-breach`), then maintenance windows and their settling time,
/// then the tier's paging hours (a breach pages at once unless
/// `hold_breaches`).
pub async fn decide(state: &AppState, s: &Subject, now: DateTime<Utc>) -> anyhow::Result<Decision> {
    let breach = s.band == RiskBand::Breached;
    let silence = state
        .store
        .active_silences(Some(&s.tenant), now)
        .await?
        .into_iter()
        .filter(|x| x.covers(&s.tenant, &s.job_id, &s.asset))
        .filter(|x| !breach || x.through_breach)
        .max_by_key(|x| x.ends_at);
    if let Some(x) = silence {
        return Ok(Decision::Hold {
            until: x.ends_at,
            why: Hold::Silenced(x),
        });
    }
    // Maintenance: the config's windows, and those set from Slack.
    let settle =
        chrono::Duration::from_std(crate::config::quiet::DEFAULT_SETTLE).unwrap_or_default();
    let mut inside: Option<(DateTime<Utc>, Option<String>)> = None;
    let mut settling: Option<DateTime<Utc>> = None;
    for w in state
        .config
        .quiet
        .maintenance
        .iter()
        .filter(|w| w.covers(&s.tenant, &s.asset))
    {
        if let Some((_, end)) = w.active_at(now) {
            if inside.as_ref().is_none_or(|(e, _)| end > *e) {
                inside = Some((end, w.reason.clone()));
            }
        } else if let Some(end) = w.last_end(now) {
            let until = end + chrono::Duration::from_std(w.settle).unwrap_or_default();
            if until > now && settling.is_none_or(|u| until > u) {
                settling = Some(until);
            }
        }
    }
    for w in state
        .store
        .windows_ending_after(Some(&s.tenant), now - settle)
        .await?
        .into_iter()
        .filter(|w| window_covers(w, s))
    {
        if w.starts_at <= now && now < w.ends_at {
            if inside.as_ref().is_none_or(|(e, _)| w.ends_at > *e) {
                inside = Some((w.ends_at, w.reason.clone()));
            }
        } else if w.ends_at <= now && settling.is_none_or(|u| w.ends_at + settle > u) {
            settling = Some(w.ends_at + settle);
        }
    }
    if let Some((until, reason)) = inside {
        return Ok(Decision::Hold {
            until,
            why: Hold::Maintenance { reason },
        });
    }
    if let Some(until) = settling {
        return Ok(Decision::Hold {
            until,
            why: Hold::Settling,
        });
    }
    if let Some(hours) = &state.config.quiet.hours[tier_index(s.tier)] {
        if !breach || hours.hold_breaches {
            if let Some(until) = hours.held_until(now) {
                return Ok(Decision::Hold {
                    until,
                    why: Hold::Hours {
                        tz: hours.tz,
                        tier: s.tier,
                    },
                });
            }
        }
    }
    Ok(Decision::Page)
}

/// What the alert's own message says about a hold (silences and
/// maintenance; paging hours show in its thread only), and whether it is
/// silenced (nothing about it is broadcast then).
pub async fn alert_note(state: &AppState, alert: &Alert) -> (Option<String>, bool) {
    match decide(state, &Subject::of(alert), state.clock.now()).await {
        Ok(d @ Decision::Hold { .. }) => {
            let silenced = matches!(
                d,
                Decision::Hold {
                    why: Hold::Silenced(_),
                    ..
                }
            );
            if matches!(
                d,
                Decision::Hold {
                    why: Hold::Hours { .. },
                    ..
                }
            ) {
                (None, false)
            } else {
                (d.words().map(|w| format!(":mute: {w}")), silenced)
            }
        }
        Ok(Decision::Page) => (None, false),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the alert's silences and windows");
            (None, false)
        }
    }
}

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
        let note = crate::flows::alerts::thread_message(
            state,
            alert,
            format!("quiet:{}:{key}:stop:{}", alert.id, esc.epoch),
            &format!(
                ":mute: {words}. The escalation stops; if the job is still at risk then, it pages again from the first tier."
            ),
        )?;
        let audit = crate::flows::alerts::audit_entry(
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
                &crate::flows::escalation::cancel_steps(&alert.id),
                |_| {
                    let mut effects = Effects::new();
                    effects.send(note).schedule(resume).record(audit);
                    effects
                },
            )
            .await?;
        if ended.is_some() {
            state.wake_outbox();
            crate::flows::escalation::refresh_buttons(state, &alert.id).await;
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
        let note = crate::flows::alerts::thread_message(
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
        crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    }
    Ok(false)
}

/// A hold ended ([`RESUME_TIMER`], a silence lifted or expired): a job
/// still at risk, not acknowledged and not paging, pages again from the
/// first tier (unless something else holds it now).
pub async fn resume(state: &AppState, alert_id: &str) -> anyhow::Result<()> {
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(());
    };
    if !alert.is_open() || alert.acked_by.is_some() {
        return Ok(());
    }
    let s = Subject::of(&alert);
    if !crate::flows::escalation::pages_at(state, s.tier, s.band) {
        return Ok(());
    }
    if let Some(esc) = state.store.get_escalation(alert_id).await? {
        if esc.status == "active" || (esc.status == "stopped" && esc.tier < 0) {
            return Ok(());
        }
    }
    let reason = format!(
        "{} is still {} after the quiet time",
        escape_slack(&s.asset),
        s.band.label()
    );
    crate::flows::escalation::start(state, &alert, 0, &reason).await?;
    crate::flows::escalation::refresh_buttons(state, alert_id).await;
    Ok(())
}

/// A silence asked for.
#[derive(Clone, Debug)]
pub struct SilenceRequest {
    pub tenant: String,
    pub scope: Scope,
    pub target: String,
    pub until: DateTime<Utc>,
    pub reason: Option<String>,
    pub by: String,
    pub through_breach: bool,
    /// Names the request, so a retried one makes one silence.
    pub dedup_key: String,
}

/// Why a silence was refused, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum SilenceRefused {
    #[error("the end ({0}) is not in the future")]
    Past(String),
    #[error("a silence lasts at most {0} (`silences.max_duration`)")]
    TooLong(String),
}

/// The open alerts a silence covers.
async fn covered(state: &AppState, s: &Silence) -> anyhow::Result<Vec<Alert>> {
    Ok(state
        .store
        .list_open_alerts(Some(&s.tenant_id))
        .await?
        .into_iter()
        .filter(|a| s.covers(&a.tenant_id, &a.job_id, &a.asset_name()))
        .collect())
}

fn silence_audit(s: &Silence, actor: &str, action: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        at,
        tenant_id: Some(s.tenant_id.clone()),
        actor: actor.into(),
        action: action.into(),
        subject: Some(s.target.clone()),
        outcome: "ok".into(),
        detail: Some(json!({
            "silence": s.id, "scope": s.scope.as_str(), "until": s.ends_at.to_rfc3339(),
            "reason": s.reason, "through_breach": s.through_breach,
        })),
    }
}

/// Makes a silence: stored with its audit entry and its expiry timer in one
/// commit; then every covered alert's escalation under way stops (its
/// thread says so) and the alerts show it. Returns the silence and whether
/// this request made it.
pub async fn silence(
    state: &AppState,
    req: SilenceRequest,
) -> anyhow::Result<Result<(Silence, bool), SilenceRefused>> {
    let now = state.clock.now();
    if req.until <= now {
        return Ok(Err(SilenceRefused::Past(req.until.to_rfc3339())));
    }
    let max = chrono::Duration::from_std(state.config.quiet.silence_max).unwrap_or_default();
    if req.until - now > max {
        return Ok(Err(SilenceRefused::TooLong(
            crate::slack::render::duration_words(max),
        )));
    }
    let silence = Silence {
        id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        tenant_id: req.tenant.clone(),
        scope: req.scope,
        target: req.target.clone(),
        reason: req.reason.clone(),
        created_by: req.by.clone(),
        through_breach: req.through_breach,
        starts_at: now,
        ends_at: req.until,
        ended_at: None,
        ended_by: None,
    };
    let (made, created) = state
        .store
        .create_silence_with(&silence, &req.dedup_key, now, |s| {
            let mut effects = Effects::new();
            effects
                .schedule(NewTimer {
                    kind: SILENCE_END_TIMER.into(),
                    subject_id: s.id.clone(),
                    payload: json!({}),
                    due_at: s.ends_at,
                    dedup_key: Some(format!("silence_end:{}", s.id)),
                })
                .record(silence_audit(s, &req.by, "silence", now));
            effects
        })
        .await?;
    if created {
        for alert in covered(state, &made).await? {
            let paging = state
                .store
                .get_escalation(&alert.id)
                .await?
                .is_some_and(|e| e.status == "active");
            if paging {
                gate(state, &alert).await?;
            }
            crate::flows::escalation::refresh_buttons(state, &alert.id).await;
        }
        crate::flows::home::touch(state, &made.tenant_id).await;
        export_gauge(state).await;
    }
    Ok(Ok((made, created)))
}

/// Ends a silence (`by` a person, or `None` at its expiry), once: its end
/// is audited and every covered alert's thread says so, in one commit;
/// then each still at risk pages again from the first tier. `None` when
/// it had ended already.
pub async fn end_silence(
    state: &AppState,
    id: &str,
    by: Option<&str>,
) -> anyhow::Result<Option<Silence>> {
    let now = state.clock.now();
    let Some(s) = state.store.get_silence(id).await? else {
        return Ok(None);
    };
    if s.ended_at.is_some() {
        return Ok(None);
    }
    let alerts = covered(state, &s).await?;
    let how = match by {
        Some(user) => format!("lifted by <@{user}>"),
        None => "expired".into(),
    };
    let mut notes = Vec::new();
    for alert in &alerts {
        notes.push(crate::flows::alerts::thread_message(
            state,
            alert,
            format!("silence:{}:end:{}", s.id, alert.id),
            &format!(
                ":bell: The silence {how} (set by <@{}>): paging resumes; if the job is still at risk, it pages from the first tier.",
                s.created_by
            ),
        )?);
    }
    let actor = by.unwrap_or("bot");
    let ended = state
        .store
        .end_silence_with(id, actor, now, |s| {
            let mut effects = Effects::new();
            effects.cancel(&s.id, Some(SILENCE_END_TIMER));
            for n in notes {
                effects.send(n);
            }
            effects.record(silence_audit(s, actor, "silence_end", now));
            effects
        })
        .await?;
    if ended.is_none() {
        return Ok(None);
    }
    state.wake_outbox();
    for alert in &alerts {
        resume(state, &alert.id).await?;
        crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    }
    crate::flows::home::touch(state, &s.tenant_id).await;
    export_gauge(state).await;
    Ok(ended)
}

/// The [`SILENCE_END_TIMER`]: a silence reached its end.
pub async fn silence_expired(state: &AppState, id: &str) -> anyhow::Result<()> {
    end_silence(state, id, None).await?;
    Ok(())
}

/// `servo_sla_bot_silences_active`, by tenant.
pub async fn export_gauge(state: &AppState) {
    match state.store.active_silences(None, state.clock.now()).await {
        Ok(all) => {
            let mut by: std::collections::BTreeMap<String, usize> = Default::default();
            for s in all {
                *by.entry(s.tenant_id).or_default() += 1;
            }
            state.metrics.set_gauge_family(
                "servo_sla_bot_silences_active",
                by.into_iter()
                    .map(|(t, n)| (vec![("tenant", t)], n as f64))
                    .collect(),
            );
        }
        Err(e) => tracing::warn!(error = %e, "could not count the active silences"),
    }
}

/// One line per active silence of a tenant, for `/backfill silences` and
/// the App Home.
pub fn silence_line(s: &Silence) -> String {
    format!(
        "• `{}` {} *{}* until {} by <@{}>{}{}",
        s.id,
        s.scope.as_str(),
        escape_slack(&s.target),
        date_token(s.ends_at),
        s.created_by,
        s.reason
            .as_deref()
            .map(|r| format!(": {}", escape_slack(r)))
            .unwrap_or_default(),
        if s.through_breach {
            " (holds through a breach)"
        } else {
            ""
        }
    )
}

/// A maintenance window asked for with `/backfill maintenance`.
#[derive(Clone, Debug)]
pub struct WindowRequest {
    pub tenant: String,
    pub scope: Scope,
    pub target: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub reason: Option<String>,
    pub by: String,
    pub dedup_key: String,
}

fn window_audit(w: &StoredWindow, actor: &str, action: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        at,
        tenant_id: Some(w.tenant_id.clone()),
        actor: actor.into(),
        action: action.into(),
        subject: Some(w.target.clone()),
        outcome: "ok".into(),
        detail: Some(json!({
            "window": w.id, "scope": w.scope.as_str(), "from": w.starts_at.to_rfc3339(),
            "to": w.ends_at.to_rfc3339(), "reason": w.reason,
        })),
    }
}

/// The open alerts a window covers.
async fn in_window(state: &AppState, w: &StoredWindow) -> anyhow::Result<Vec<Alert>> {
    Ok(state
        .store
        .list_open_alerts(Some(&w.tenant_id))
        .await?
        .into_iter()
        .filter(|a| window_covers(w, &Subject::of(a)))
        .collect())
}

/// Stores a maintenance window with its audit entry; one that has begun
/// stops the escalations under way of the alerts it covers.
pub async fn open_window(
    state: &AppState,
    req: WindowRequest,
) -> anyhow::Result<(StoredWindow, bool)> {
    let now = state.clock.now();
    let w = StoredWindow {
        id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        tenant_id: req.tenant.clone(),
        scope: req.scope,
        target: req.target.clone(),
        reason: req.reason.clone(),
        created_by: req.by.clone(),
        starts_at: req.from,
        ends_at: req.to,
        cancelled_at: None,
        cancelled_by: None,
    };
    let (made, created) = state
        .store
        .create_window_with(&w, &req.dedup_key, now, |w| {
            let mut effects = Effects::new();
            effects.record(window_audit(w, &req.by, "maintenance", now));
            effects
        })
        .await?;
    if created && made.starts_at <= now {
        for alert in in_window(state, &made).await? {
            let paging = state
                .store
                .get_escalation(&alert.id)
                .await?
                .is_some_and(|e| e.status == "active");
            if paging {
                gate(state, &alert).await?;
            }
            crate::flows::escalation::refresh_buttons(state, &alert.id).await;
        }
    }
    Ok((made, created))
}

/// Cancels a window once, audited; its alerts may page again at once.
pub async fn cancel_window(
    state: &AppState,
    id: &str,
    by: &str,
) -> anyhow::Result<Option<StoredWindow>> {
    let now = state.clock.now();
    let done = state
        .store
        .cancel_window_with(id, by, now, |w| {
            let mut effects = Effects::new();
            effects.record(window_audit(w, by, "maintenance_cancel", now));
            effects
        })
        .await?;
    if let Some(w) = &done {
        for alert in in_window(state, w).await? {
            resume(state, &alert.id).await?;
            crate::flows::escalation::refresh_buttons(state, &alert.id).await;
        }
    }
    Ok(done)
}
