//! Silences and maintenance windows set from Slack, and what their end
//! does: `/backfill silence`, `unsilence`, `maintenance` and `cancel`
//! decided and committed with their notes, audit entries and timers; a
//! hold that ends pages a job still at risk again from the first tier.

use crate::context::AppState;
use crate::domain::text::escape_slack;
use crate::flows::ids::SILENCE_END_TIMER;
use crate::flows::quiet::{export_gauge, window_covers, Subject};
use crate::flows::quiet_hold::gate;
use crate::store::{Alert, AuditEntry, Effects, NewTimer, Scope, Silence, StoredWindow};
use chrono::{DateTime, Utc};
use serde_json::json;

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
    if !crate::flows::paging::pages_at(
        state.config.escalation_for(&alert.tenant_id),
        s.tier,
        s.band,
    ) {
        return Ok(());
    }
    if let Some(esc) = state.store.get_escalation(alert_id).await? {
        if esc.status == "active" || (esc.status == "stopped" && esc.tier < 0) {
            return Ok(());
        }
    }
    // In a storm the roll-up's one escalation pages for it: the next poll
    // starts that when a member may page again (one page per incident).
    if crate::flows::group_paging::paging_rollup(state, &alert)
        .await?
        .is_some()
    {
        return Ok(());
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

/// A hold began for these alerts: each escalation under way stops (its
/// thread says why), and each alert's message shows the hold.
async fn hold(state: &AppState, alerts: &[Alert]) -> anyhow::Result<()> {
    for alert in alerts {
        let paging = state
            .store
            .get_escalation(&alert.id)
            .await?
            .is_some_and(|e| e.status == "active");
        if paging {
            gate(state, alert).await?;
        }
        crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    }
    Ok(())
}

/// A hold of these alerts ended: each still at risk pages again from the
/// first tier ([`resume`]), and each message drops the hold.
async fn release(state: &AppState, alerts: &[Alert]) -> anyhow::Result<()> {
    for alert in alerts {
        resume(state, &alert.id).await?;
        crate::flows::escalation::refresh_buttons(state, &alert.id).await;
    }
    Ok(())
}

/// The open alerts of `tenant` that `covers` says a hold covers.
async fn open_alerts_where(
    state: &AppState,
    tenant: &str,
    covers: impl Fn(&Alert) -> bool,
) -> anyhow::Result<Vec<Alert>> {
    let open = state.store.list_open_alerts(Some(tenant)).await?;
    Ok(open.into_iter().filter(|a| covers(a)).collect())
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
    open_alerts_where(state, &s.tenant_id, |a| {
        s.covers(&a.tenant_id, &a.job_id, &a.asset_name())
    })
    .await
}

fn silence_audit(s: &Silence, actor: &str, action: &str, at: DateTime<Utc>) -> AuditEntry {
    let detail = json!({
        "silence": s.id, "scope": s.scope.as_str(), "until": s.ends_at.to_rfc3339(),
        "reason": s.reason, "through_breach": s.through_breach,
    });
    AuditEntry::ok(at, &s.tenant_id, actor, action, &s.target, detail)
}

/// Audits a silence or maintenance command refused to someone who is not
/// one of the tenant's operators.
pub async fn audit_refused(
    state: &AppState,
    tenant: &crate::config::Tenant,
    user: &str,
    action: &str,
    text: &str,
) {
    let entry = AuditEntry {
        at: state.clock.now(),
        tenant_id: Some(tenant.id.clone()),
        actor: user.to_string(),
        action: action.into(),
        subject: None,
        outcome: "refused: not an operator".into(),
        detail: Some(json!({ "via": "slash command", "text": text })),
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

/// Makes a silence: stored with its audit entry and its expiry timer in one
/// commit; then every covered alert's escalation under way stops (its
/// thread says so) and the alerts show it. Returns the silence and whether
/// this request made it.
///
/// Once the commit is made the silence stands: a failure while holding its
/// alerts is logged, never answered as "nothing was silenced" (the operator
/// told so typed the command again and made a second silence). Each
/// escalation asks [`gate`] before its next step, so nothing pages
/// meanwhile; the same request sent again finishes the hold.
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
            crate::domain::text::duration_words(max),
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
    // A silence in force of the same scope and target, until as late or
    // later and holding through a breach if this one would, already says
    // all this one says: the same command typed again (a new trigger, so
    // not a retry) answers with it rather than making a second silence.
    let covering = state
        .store
        .active_silences(Some(&req.tenant), now)
        .await?
        .into_iter()
        .filter(|s| {
            s.scope == req.scope
                && s.target == req.target
                && s.ends_at >= req.until
                && (s.through_breach || !req.through_breach)
        })
        .max_by_key(|s| s.ends_at);
    let (made, created) = match covering {
        Some(s) => (s, false),
        None => {
            state
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
                .await?
        }
    };
    if made.ended_at.is_none() && made.ends_at > now {
        let held = match covered(state, &made).await {
            Ok(alerts) => hold(state, &alerts).await,
            Err(e) => Err(e),
        };
        if let Err(e) = held {
            tracing::warn!(error = %e, silence = %made.id, "the silence is made; the escalations it covers stop at their next step");
        }
    }
    if created {
        crate::flows::home_refresh::touch(state, &made.tenant_id).await;
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
        notes.push(crate::flows::thread::thread_message(
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
    release(state, &alerts).await?;
    crate::flows::home_refresh::touch(state, &s.tenant_id).await;
    export_gauge(state).await;
    Ok(ended)
}

/// The [`SILENCE_END_TIMER`]: a silence reached its end.
pub async fn silence_expired(state: &AppState, id: &str) -> anyhow::Result<()> {
    end_silence(state, id, None).await?;
    Ok(())
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
    let detail = json!({
        "window": w.id, "scope": w.scope.as_str(), "from": w.starts_at.to_rfc3339(),
        "to": w.ends_at.to_rfc3339(), "reason": w.reason,
    });
    AuditEntry::ok(at, &w.tenant_id, actor, action, &w.target, detail)
}

/// The open alerts a window covers.
async fn in_window(state: &AppState, w: &StoredWindow) -> anyhow::Result<Vec<Alert>> {
    open_alerts_where(state, &w.tenant_id, |a| window_covers(w, &Subject::of(a))).await
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
        // The channel hears of it now rather than at the next poll.
        if let Some(tenant) = state.config.tenant(&made.tenant_id) {
            crate::flows::maintenance::reconcile(state, tenant, now).await?;
        }
        hold(state, &in_window(state, &made).await?).await?;
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
        if let Some(tenant) = state.config.tenant(&w.tenant_id) {
            crate::flows::maintenance::cancelled(state, tenant, w, by).await?;
        }
        release(state, &in_window(state, w).await?).await?;
    }
    Ok(done)
}
