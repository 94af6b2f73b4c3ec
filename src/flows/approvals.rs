//! Deadline extensions: a request, then a stakeholder's decision in the
//! alert's thread. Servo's deadline changes only on approval, with an
//! optimistic version check. Each request is decided once (a conditional
//! update in the store), expires by itself, and is superseded by a newer one.

use crate::config::{FileConfig, Tenant};
use crate::context::AppState;
use crate::domain::assessment::{self, Assessment};
use crate::domain::ids::Principal;
use crate::domain::risk::JobState;
use crate::domain::risk::RiskBand;
use crate::domain::risk::SlaTier;
use crate::domain::text::date_token;
use crate::flows::ids::EXPIRY_TIMER;
use crate::servo::{Job, ServoActionError};
use crate::store::{
    Alert, Approval, ApprovalStatus, AuditEntry, Effects, NewApproval, NewOutboxMessage, NewTimer,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::text::glob_match;

/// Who may approve an extension for a job: the most specific rule that
/// matches (asset glob, then SLA tier, then the whole tenant), else the last
/// escalation tier's people.
pub fn stakeholders(
    config: &FileConfig,
    tenant: &Tenant,
    asset: &str,
    tier: SlaTier,
) -> Vec<Principal> {
    let by_asset = tenant
        .stakeholders
        .iter()
        .filter(|r| r.asset.as_deref().is_some_and(|g| glob_match(g, asset)))
        // More literal characters: more specific.
        .max_by_key(|r| {
            r.asset
                .as_deref()
                .map(|g| g.chars().filter(|c| *c != '*' && *c != '?').count())
        });
    let by_tier = || {
        tenant
            .stakeholders
            .iter()
            .find(|r| r.tier.as_deref() == Some(tier.as_str()))
    };
    let whole = || {
        tenant
            .stakeholders
            .iter()
            .find(|r| r.asset.is_none() && r.tier.is_none())
    };
    match by_asset.or_else(by_tier).or_else(whole) {
        Some(rule) => rule.approvers.clone(),
        None => config
            .escalation_for(&tenant.id)
            .tiers
            .last()
            .map(|t| {
                // The tier's people and every member of its rotations.
                let mut all = t.notify.clone();
                for r in t.rotations.iter().filter_map(|id| config.rotation(id)) {
                    all.extend(r.members.iter().cloned().map(Principal::User));
                }
                all
            })
            .unwrap_or_default(),
    }
}

/// What the request message shows.
#[derive(Serialize)]
struct RequestView {
    asset: String,
    job_id: String,
    stakeholders: String,
    requested_by: String,
    reason: Option<String>,
    current: String,
    current_fallback: String,
    proposed: String,
    proposed_fallback: String,
    eta: String,
    new_band: String,
    current_band: String,
    approval_id: String,
    outcome: Option<String>,
    expires: String,
}

/// The reason as the request message quotes it. Slack refuses a section over
/// 3000 characters and escaping `& < >` can make one character five, so the
/// quote stops at 2000 escaped characters (the store keeps the whole reason).
/// A long `/backfill extend-deadline` reason otherwise lost the request.
fn shown_reason(reason: &str) -> String {
    let mut budget = 2000usize;
    let mut out = String::new();
    for c in reason.chars() {
        let cost = match c {
            '&' => 5,
            '<' | '>' => 4,
            _ => 1,
        };
        if cost > budget {
            out.push('…');
            break;
        }
        budget -= cost;
        out.push(c);
    }
    out
}

fn band_text(b: RiskBand) -> String {
    format!("{} {}", b.emoji(), b.label())
}

fn request_view(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    approval: &Approval,
    outcome: Option<String>,
) -> RequestView {
    let thresholds = state.config.risk.thresholds();
    let new_band = assessment::severity_if_deadline(
        &job.snapshot(),
        state.clock.now(),
        approval.proposed_deadline,
        &thresholds,
    );
    let who = stakeholders(&state.config, tenant, &job.asset_name, a.tier);
    RequestView {
        asset: job.asset_name.clone(),
        job_id: job.id.to_string(),
        stakeholders: if who.is_empty() {
            "Stakeholders".into()
        } else {
            who.iter()
                .map(|p| p.mention())
                .collect::<Vec<_>>()
                .join(" ")
        },
        requested_by: approval.requested_by.clone(),
        reason: approval.reason.as_deref().map(shown_reason),
        current: date_token(approval.current_deadline),
        current_fallback: approval
            .current_deadline
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        proposed: date_token(approval.proposed_deadline),
        proposed_fallback: approval
            .proposed_deadline
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        eta: a.eta.map(date_token).unwrap_or_else(|| "unknown".into()),
        new_band: band_text(new_band),
        current_band: band_text(a.band),
        approval_id: approval.id.clone(),
        outcome,
        expires: date_token(approval.expires_at),
    }
}

/// Records the request, posts it, tells its stakeholders, supersedes older
/// ones (their expiry cancelled, their buttons closed), schedules its expiry
/// and writes `audit`'s entry (given the request), all in one transaction:
/// a stop part-way leaves either nothing or all of it. `false` with the
/// request already waiting when the same person asked for the same
/// deadline again (a double submission): nothing new is sent.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    alert: Option<&Alert>,
    current: DateTime<Utc>,
    proposed: DateTime<Utc>,
    user: &str,
    reason: Option<String>,
    audit: impl Fn(&Approval) -> AuditEntry,
) -> anyhow::Result<(Approval, bool)> {
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(state.config.extension_expire_after)?;
    // It always expires by the current deadline; past it, the ttl alone counts.
    let expires_at = if current > now {
        (now + ttl).min(current)
    } else {
        now + ttl
    };
    let open_alert = alert.filter(|a| a.is_open());
    let new = NewApproval {
        tenant_id: tenant.id.clone(),
        job_id: job.id.to_string(),
        alert_id: open_alert.map(|a| a.id.clone()),
        requested_by: user.to_string(),
        reason,
        current_deadline: current,
        proposed_deadline: proposed,
        expires_at,
    };
    // Everything it sends is built first (the stakeholders' DMs ask Slack
    // who they are), for the request as it will be stored.
    let id = uuid::Uuid::new_v4().to_string();
    let pending = new.as_pending(&id, now);
    let view = request_view(state, tenant, job, a, &pending, None);
    let msg = request_post(state, tenant, &view, &pending, open_alert)?;
    // Each deciding stakeholder hears of it by DM, with a link to the
    // request; the decision itself stays in the thread.
    let dms = stakeholder_dms(state, tenant, job, a, &pending, &view).await;
    let superseded_by = format!(
        ":fast_forward: Superseded by a newer request from {}.",
        state.directory.user_name(user).await
    );
    let expiry = NewTimer {
        kind: EXPIRY_TIMER.into(),
        subject_id: id.clone(),
        payload: json!({}),
        due_at: expires_at,
        dedup_key: Some(format!("approval:{id}:expiry")),
    };
    let (approval, _, created) = state
        .store
        .create_approval_then(new, &id, now, |created, superseded| {
            let mut effects = Effects::new();
            effects.send(msg.clone());
            for dm in &dms {
                effects.send(dm.clone());
            }
            effects.schedule(expiry.clone()).record(audit(created));
            // Each superseded request loses its expiry and its buttons
            // together.
            for old in superseded {
                effects.cancel(&old.id, Some(EXPIRY_TIMER));
                match close_msg(state, tenant, job, a, old, superseded_by.clone()) {
                    Ok(m) => {
                        effects.send(m);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, approval = %old.id, "could not render a superseded request's closing")
                    }
                }
            }
            effects
        })
        .await?;
    state.wake_outbox();
    Ok((approval, created))
}

/// The request's post: in the open alert's thread, else in the channel.
fn request_post(
    state: &AppState,
    tenant: &Tenant,
    view: &RequestView,
    approval: &Approval,
    open_alert: Option<&Alert>,
) -> anyhow::Result<NewOutboxMessage> {
    let payload = state.templates.render("approval_request", view)?;
    let mut msg = NewOutboxMessage::call(
        "chat.postMessage",
        payload,
        format!("approval:{}:post", approval.id),
    );
    msg.link_kind = Some("approval".into());
    msg.link_id = Some(approval.id.clone());
    match open_alert {
        Some(alert) => {
            msg.ordering_key = Some(alert.id.clone());
            msg.thread_alert_id = Some(alert.id.clone());
            msg.thread_field = Some("thread_ts".into());
        }
        None => {
            msg.payload["channel"] = tenant.channel.as_str().into();
            msg.ordering_key = Some(format!("approval:{}", approval.id));
        }
    }
    Ok(msg)
}

/// The repair pass: a pending request a stop left without its post or its
/// expiry gets them (its stakeholders' DMs with the post). Returns how many.
pub async fn repair_requests(state: &AppState, before: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut repaired = 0;
    for approval in state.store.requests_missing_effects(before).await? {
        let Some(tenant) = state.config.tenant(&approval.tenant_id) else {
            continue;
        };
        let now = state.clock.now();
        if state
            .store
            .schedule_timer(
                NewTimer {
                    kind: EXPIRY_TIMER.into(),
                    subject_id: approval.id.clone(),
                    payload: json!({}),
                    due_at: approval.expires_at,
                    dedup_key: Some(format!("approval:{}:expiry:repair", approval.id)),
                },
                now,
            )
            .await?
            .is_some()
        {
            tracing::warn!(approval = %approval.id, "repair: a pending request had no expiry; scheduled it");
        }
        if !state.store.request_post_enqueued(&approval.id).await? {
            // Servo away: the post waits for the next poll.
            let Some(job) = job_or(&approval, state).await else {
                continue;
            };
            let thresholds = state.config.risk.thresholds();
            let a = assessment::assess(&job.snapshot(), now, &thresholds, None);
            let alert = match &approval.alert_id {
                Some(id) => state.store.get_alert(id).await?.filter(|a| a.is_open()),
                None => None,
            };
            let view = request_view(state, tenant, &job, &a, &approval, None);
            let msg = request_post(state, tenant, &view, &approval, alert.as_ref())?;
            let dms = stakeholder_dms(state, tenant, &job, &a, &approval, &view).await;
            state.enqueue(msg).await?;
            state.enqueue_many(&dms).await?;
            tracing::warn!(approval = %approval.id, "repair: a pending request had no post; posted it");
        }
        state.metrics.inc(
            "servo_sla_bot_repairs_total",
            &[("what", "extension_request")],
        );
        repaired += 1;
    }
    Ok(repaired)
}

/// The DMs that tell each deciding stakeholder (groups expanded, the
/// requester left out) that a request waits for them, linking to it. If
/// Slack cannot expand a group just now, its members are not told by DM;
/// the request in the thread still mentions them.
async fn stakeholder_dms(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    approval: &Approval,
    view: &RequestView,
) -> Vec<NewOutboxMessage> {
    let who = stakeholders(&state.config, tenant, &job.asset_name, a.tier);
    let people = match state.directory.expand(&who).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "could not expand the stakeholders for DMs");
            Vec::new()
        }
    };
    let requester = state.directory.user_name(&approval.requested_by).await;
    let asset = crate::domain::text::escape_slack(&job.asset_name);
    let text = format!(
        ":calendar: *A deadline extension waits for your decision*: *{asset}* (tenant `{}`)\n\
         {requester} asks to move the deadline from {} to {}.{}\n\
         Now: {}, ETA {}. Under the new deadline: {}.\n\
         Approve or reject it in the alert's thread: <{}|open the request>. It expires {}.",
        crate::domain::text::escape_slack(&tenant.id),
        view.current,
        view.proposed,
        view.reason
            .as_deref()
            .map(|r| format!(" Reason: {}", crate::domain::text::escape_slack(r)))
            .unwrap_or_default(),
        view.current_band,
        view.eta,
        view.new_band,
        crate::store::PERMALINK,
        view.expires,
    );
    let text = crate::slack::limits::truncate(&text, 2_900);
    people
        .iter()
        .filter(|u| **u != approval.requested_by)
        .map(|user| {
            NewOutboxMessage::call(
                "chat.postMessage",
                json!({
                    "channel": user,
                    "text": text,
                    "_permalink": crate::store::permalink_spec(
                        &format!("approval:{}", approval.id),
                        tenant.channel.as_str(),
                    ),
                    "blocks": [ { "type": "section", "text": { "type": "mrkdwn", "text": text } } ]
                }),
                format!("approval:{}:dm:{user}", approval.id),
            )
        })
        .collect()
}

/// Replaces a request's buttons with its outcome.
fn close_msg(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    approval: &Approval,
    outcome: String,
) -> anyhow::Result<NewOutboxMessage> {
    let view = request_view(state, tenant, job, a, approval, Some(outcome));
    let payload = state.templates.render("approval_request", &view)?;
    // The request message may still be in the outbox: edit it once it is out.
    let mut msg = NewOutboxMessage::call(
        "chat.update",
        payload,
        format!("approval:{}:close", approval.id),
    );
    msg.ordering_key = Some(
        approval
            .alert_id
            .clone()
            .unwrap_or_else(|| format!("approval:{}", approval.id)),
    );
    // The outbox reads the request's channel and ts when it sends, so this
    // works even while the request itself is still waiting to go out.
    msg.thread_alert_id = Some(format!("approval:{}", approval.id));
    msg.thread_field = Some("ts".into());
    Ok(msg)
}

/// What saying how a request ended sends: its message closed with `line`, a
/// note in its thread (`note`, or `line`), and a DM to the requester when
/// `dm` says one. Built before the transition that commits it.
#[allow(clippy::too_many_arguments)]
async fn ending(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    approval: &Approval,
    line: &str,
    note: Option<&str>,
    dm: Option<&str>,
) -> anyhow::Result<Effects> {
    let mut effects = Effects::new();
    effects.send(close_msg(
        state,
        tenant,
        job,
        a,
        approval,
        line.to_string(),
    )?);
    if let Some(msg) = note_msg(state, approval, note.unwrap_or(line)).await? {
        effects.send(msg);
    }
    if let Some(text) = dm {
        effects.send(dm_msg(approval, text));
    }
    Ok(effects)
}

/// The request as it will be once decided `to` by `by`: what its closing
/// messages are built from before the decision commits with them.
pub(crate) fn as_decided(
    approval: &Approval,
    to: ApprovalStatus,
    by: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Approval {
    Approval {
        status: to,
        decided_by: Some(by.to_string()),
        decided_at: Some(now),
        decision_reason: reason.map(str::to_string),
        ..approval.clone()
    }
}

/// Why `click.user` may not decide this request, if they may not.
pub async fn refusal(
    state: &AppState,
    user: &str,
    approval: &Approval,
) -> anyhow::Result<Option<String>> {
    if approval.status != "pending" {
        let by = approval
            .decided_by
            .as_deref()
            .filter(|b| *b != "bot")
            .map(|b| format!(" by <@{b}>"))
            .unwrap_or_default();
        return Ok(Some(format!(
            "This request was already {}{by}.",
            approval.status
        )));
    }
    if approval.requested_by == user {
        return Ok(Some(":no_entry: You asked for this extension, so someone else has to decide it: another stakeholder of the job.".into()));
    }
    let Some(tenant) = state.config.tenant(&approval.tenant_id) else {
        return Ok(Some(
            "This request's tenant is no longer configured.".into(),
        ));
    };
    let tier =
        match job_or(approval, state).await {
            Some(job) => (job.asset_name, SlaTier::from_priority(job.priority)),
            None => return Ok(Some(
                ":warning: Servo is unreachable or the job is gone, so this cannot be decided now."
                    .into(),
            )),
        };
    let who = stakeholders(&state.config, tenant, &tier.0, tier.1);
    if !state.directory.is_among(user, &who).await? {
        return Ok(Some(format!(
            ":no_entry: Only this job's stakeholders can decide its deadline ({}).",
            who.iter()
                .map(|p| p.mention())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(None)
}

/// Approve or Reject by `user` (a rejection may carry a reason). Decided
/// once: a second decision is refused. `Some(text)`: what to tell the user
/// (a refusal, or why it could not be applied); `None`: the thread says it.
/// The audit entry of a decision by `user` on `approval`.
pub(crate) fn decision_audit(
    approval: &Approval,
    user: &str,
    action: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        at: now,
        tenant_id: Some(approval.tenant_id.clone()),
        actor: user.to_string(),
        action: action.into(),
        subject: Some(approval.job_id.clone()),
        outcome: outcome.into(),
        detail: Some(json!({ "approval_id": approval.id, "proposed": approval.proposed_deadline })),
    }
}

/// Who may decide, checked and audited before anything is decided: the
/// request still pending, someone other than its requester, the job still in
/// Servo (a job gone closes the request as moot), and one of its
/// stakeholders. `Err(text)`: what to tell the user.
pub(crate) async fn admit<'a>(
    state: &'a AppState,
    approval_id: &str,
    user: &str,
    action: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<(Approval, &'a Tenant, Job), String>> {
    let Some(approval) = state.store.get_approval(approval_id).await? else {
        return Ok(Err("This request no longer exists.".to_string()));
    };
    let Some(tenant) = state.config.tenant(&approval.tenant_id) else {
        return Ok(Err(
            "This request's tenant is no longer configured.".to_string()
        ));
    };
    let audit = |outcome: &str| decision_audit(&approval, user, action, outcome, now);
    if approval.status != "pending" {
        state
            .store
            .audit(&audit(&format!("refused: already {}", approval.status)))
            .await?;
        let by = approval
            .decided_by
            .as_deref()
            .filter(|b| *b != "bot")
            .map(|b| format!(" by <@{b}>"))
            .unwrap_or_default();
        return Ok(Err(format!(
            "This request was already {}{by}.",
            approval.status
        )));
    }
    // Its expiry timer may be late (the bot was down): past its time, a
    // request is not decided.
    if approval.expires_at <= now {
        state.store.audit(&audit("refused: expired")).await?;
        return Ok(Err(format!(
            ":hourglass: This request expired {}: nothing was decided. Ask for a new one with `/backfill extend-deadline`.",
            date_token(approval.expires_at)
        )));
    }
    if approval.requested_by == user {
        state.store.audit(&audit("refused: requester")).await?;
        return Ok(Err(":no_entry: You asked for this extension, so someone else has to decide it: another stakeholder of the job.".to_string()));
    }
    let job_id: uuid::Uuid = approval.job_id.parse()?;
    let job = match state.servo.get_job(&tenant.id, job_id).await {
        Ok(Some(job)) => job,
        Ok(None) => {
            // Closed once, with its buttons gone and the click audited.
            let job = fake_job(&approval);
            let a = assessment::assess(&job.snapshot(), now, &state.config.risk.thresholds(), None);
            let moot = Approval {
                status: ApprovalStatus::Moot,
                ..approval.clone()
            };
            let mut effects = Effects::new();
            effects
                .cancel(&approval.id, Some(EXPIRY_TIMER))
                .send(close_msg(
                    state,
                    tenant,
                    &job,
                    &a,
                    &moot,
                    ":heavy_minus_sign: Closed: the job no longer exists in Servo.".into(),
                )?)
                .record(audit("refused: job gone"));
            if state
                .store
                .decide_approval_with(
                    &approval.id,
                    "moot",
                    "bot",
                    Some("the job no longer exists"),
                    now,
                    &effects,
                )
                .await?
                .is_some()
            {
                state.wake_outbox();
            }
            return Ok(Err(
                "The job no longer exists; the request is closed.".to_string()
            ));
        }
        Err(e) => {
            state.store.audit(&audit(&format!("failed: {e}"))).await?;
            return Ok(Err(":warning: Servo is unreachable right now, so the deadline cannot change. Nothing was decided; try again in a minute.".to_string()));
        }
    };
    let tier = SlaTier::from_priority(job.priority);
    let who = stakeholders(&state.config, tenant, &job.asset_name, tier);
    if !state.directory.is_among(user, &who).await? {
        state
            .store
            .audit(&audit("refused: not a stakeholder"))
            .await?;
        return Ok(Err(format!(
            ":no_entry: Only this job's stakeholders can decide its deadline ({}).",
            who.iter()
                .map(|p| p.mention())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Ok((approval, tenant, job)))
}

/// What a rejection sends: the request closed, the thread told (with the
/// reason, escaped), and the requester's DM.
pub(crate) async fn rejection(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    decided: &Approval,
    user: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Effects> {
    let why = decided
        .decision_reason
        .as_deref()
        .map(|r| format!(" Reason: {}", crate::domain::text::escape_slack(r)))
        .unwrap_or_default();
    let line = format!(":x: Rejected by <@{}> {}.{why}", user, date_token(now));
    ending(
        state,
        tenant,
        job,
        a,
        decided,
        &line,
        Some(&format!(
            "{line} The deadline stays {}.",
            date_token(decided.current_deadline)
        )),
        Some(&format!(
            "Your deadline extension for *{}* was rejected by {}.",
            crate::domain::text::escape_slack(&job.asset_name),
            state.directory.user_name(user).await
        )),
    )
    .await
}

/// After an approved extension was (or could not be) written to Servo:
/// records it applied, or failed with why, and says so on the request, in
/// the thread and to the requester. `Some(line)`: it could not be applied.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle(
    state: &AppState,
    tenant: &Tenant,
    decided: &Approval,
    by: &str,
    outcome: Result<Job, String>,
    entry: Option<AuditEntry>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let thresholds = state.config.risk.thresholds();
    let by_name = state.directory.user_name(by).await;
    let mut effects = Effects::new();
    if let Some(entry) = entry {
        effects.record(entry);
    }
    match outcome {
        Ok(updated) => {
            let a = assessment::assess(&updated.snapshot(), now, &thresholds, None);
            let line = format!(
                ":white_check_mark: Approved by {by_name} {}: the deadline is now {}.",
                date_token(decided.decided_at.unwrap_or(now)),
                date_token(decided.proposed_deadline)
            );
            let dm = format!(
                "Your deadline extension for *{}* was approved by {by_name}: the deadline is now {}.",
                crate::domain::text::escape_slack(&updated.asset_name),
                date_token(decided.proposed_deadline)
            );
            effects.extend(
                ending(state, tenant, &updated, &a, decided, &line, None, Some(&dm)).await?,
            );
            // Applied, audited and said, together.
            state
                .store
                .mark_approval_applied_with(&decided.id, now, &effects)
                .await?;
            state.wake_outbox();
            Ok(None)
        }
        Err(why) => {
            let line =
                format!(":warning: Approved by {by_name}, but the deadline was not changed: {why}");
            let job = job_or(decided, state)
                .await
                .unwrap_or_else(|| fake_job(decided));
            let a = assessment::assess(&job.snapshot(), now, &thresholds, None);
            let failed = Approval {
                status: ApprovalStatus::Failed,
                ..decided.clone()
            };
            effects.extend(ending(state, tenant, &job, &a, &failed, &line, None, None).await?);
            state
                .store
                .amend_approval_with(&decided.id, "approved", "failed", &why, now, &effects)
                .await?;
            state.wake_outbox();
            Ok(Some(line))
        }
    }
}

/// The repair pass: an extension approved but never written to Servo (the
/// bot stopped in between) is written now, or recorded as failed with why.
/// One already in Servo (the stop came after the write) is marked applied.
/// Each says so as the decision would have. Returns how many were settled.
pub async fn apply_approved(state: &AppState, before: DateTime<Utc>) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let mut settled = 0;
    for approval in state.store.approved_unapplied(before).await? {
        let Some(tenant) = state.config.tenant(&approval.tenant_id) else {
            continue;
        };
        let Ok(id) = approval.job_id.parse::<uuid::Uuid>() else {
            continue;
        };
        // Servo away: try again at the next poll.
        let Ok(found) = state.servo.get_job(&tenant.id, id).await else {
            continue;
        };
        let by = approval.decided_by.clone().unwrap_or_default();
        tracing::warn!(approval = %approval.id, "repair: an approved extension was never marked applied; settling it");
        let outcome = match found {
            Some(job) if job.sla_deadline_at == Some(approval.proposed_deadline) => Ok(job),
            Some(job) => apply(state, tenant, &approval, job).await,
            None => Err("the job is no longer visible in Servo".to_string()),
        };
        // The approver's audit entry goes with the settling, as the
        // decision's own would have: a stop before it must not lose it.
        let entry = decision_audit(
            &approval,
            &by,
            "approve_extension",
            &match &outcome {
                Ok(_) => "ok".to_string(),
                Err(why) => format!("failed: {why}"),
            },
            now,
        );
        settle(state, tenant, &approval, &by, outcome, Some(entry), now).await?;
        state.metrics.inc(
            "servo_sla_bot_repairs_total",
            &[("what", "extension_applied")],
        );
        settled += 1;
    }
    Ok(settled)
}

/// Writes the approved deadline with Servo's optimistic version check. If the
/// job changed meanwhile, re-reads it and checks the request still makes sense.
pub(crate) async fn apply(
    state: &AppState,
    tenant: &Tenant,
    approval: &Approval,
    mut job: Job,
) -> Result<Job, String> {
    let now = state.clock.now();
    for _ in 0..3 {
        if !job.state.is_active() || job.state == JobState::Completed {
            return Err(format!("the job is {}", job.state.as_str()));
        }
        let current = job
            .sla_deadline_at
            .ok_or("the job no longer has a deadline")?;
        if approval.proposed_deadline <= current {
            return Err(format!(
                "the deadline is already {} (changed meanwhile)",
                date_token(current)
            ));
        }
        match state
            .servo
            .set_deadline(&tenant.id, job.id, approval.proposed_deadline, job.version)
            .await
        {
            Ok(updated) => return Ok(updated),
            // The commit's answer was lost: what Servo shows says whether it
            // took (the deadline asked for), else the loop asks again.
            Err(ServoActionError::VersionConflict | ServoActionError::Unconfirmed(_)) => {
                job = match state.servo.get_job(&tenant.id, job.id).await {
                    Ok(Some(j)) if j.sla_deadline_at == Some(approval.proposed_deadline) => {
                        return Ok(j)
                    }
                    Ok(Some(j)) => j,
                    Ok(None) => return Err("the job no longer exists".into()),
                    Err(e) => return Err(e.to_string()),
                };
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let _ = now;
    Err("the job kept changing; try again".into())
}

async fn job_or(approval: &Approval, state: &AppState) -> Option<Job> {
    let id = approval.job_id.parse().ok()?;
    state
        .servo
        .get_job(&approval.tenant_id, id)
        .await
        .ok()
        .flatten()
}

/// A stand-in for a job that can no longer be read, so the request message
/// can still be closed.
fn fake_job(approval: &Approval) -> Job {
    Job {
        id: approval.job_id.parse().unwrap_or_default(),
        tenant_id: approval.tenant_id.clone(),
        asset_id: uuid::Uuid::nil(),
        asset_name: "(job unavailable)".into(),
        asset_owner: None,
        idempotency_key: String::new(),
        state: JobState::Cancelled,
        execution_strategy: Value::Null,
        partition_start: None,
        partition_end: None,
        partition_keys: vec![],
        total_partitions: 0,
        completed_partitions: 0,
        failed_partitions: 0,
        skipped_partitions: 0,
        error_message: None,
        created_by: None,
        created_at: approval.created_at,
        started_at: None,
        completed_at: None,
        heartbeat_at: None,
        version: 0,
        paused_at: None,
        checkpoint_partition_key: None,
        estimated_completion_at: None,
        avg_partition_duration_ms: None,
        parent_job_id: None,
        upstream_job_count: 0,
        completed_upstream_jobs: 0,
        sla_deadline_at: Some(approval.current_deadline),
        priority: 0,
        recent_durations_ms: vec![],
        forecast: None,
        judge_on_p90: false,
        impact: None,
        lineage_unread: None,
        upstream_note: None,
        wait_only: false,
    }
}

/// A line in the thread where the request was posted (none when its alert
/// is gone).
async fn note_msg(
    state: &AppState,
    approval: &Approval,
    text: &str,
) -> anyhow::Result<Option<NewOutboxMessage>> {
    let key = format!("approval:{}:note:{}", approval.id, approval.status);
    match &approval.alert_id {
        Some(alert_id) => match state.store.get_alert(alert_id).await? {
            Some(alert) => Ok(Some(crate::flows::thread::thread_message(
                state, &alert, key, text,
            )?)),
            None => Ok(None),
        },
        None => {
            let mut msg = NewOutboxMessage::call("chat.postMessage", json!({ "text": text }), key);
            msg.ordering_key = Some(format!("approval:{}", approval.id));
            msg.thread_alert_id = Some(format!("approval:{}", approval.id));
            msg.thread_field = Some("thread_ts".into());
            Ok(Some(msg))
        }
    }
}

/// A direct message to the requester (posting to a user id opens the DM).
fn dm_msg(approval: &Approval, text: &str) -> NewOutboxMessage {
    NewOutboxMessage::call(
        "chat.postMessage",
        json!({ "channel": approval.requested_by, "text": text }),
        format!("approval:{}:dm:{}", approval.id, approval.status),
    )
}

/// Expires a request whose timer fired (if still pending).
pub async fn expire(state: &AppState, approval_id: &str) -> anyhow::Result<()> {
    let now = state.clock.now();
    let Some(approval) = state.store.get_approval(approval_id).await? else {
        return Ok(());
    };
    if !approval.is_pending() {
        return Ok(());
    }
    let Some(tenant) = state.config.tenant(&approval.tenant_id) else {
        return Ok(());
    };
    let job = job_or(&approval, state)
        .await
        .unwrap_or_else(|| fake_job(&approval));
    let thresholds = state.config.risk.thresholds();
    let a = assessment::assess(&job.snapshot(), now, &thresholds, None);
    let line = format!(
        ":hourglass: Expired {} without a decision. Ask again if it is still needed.",
        date_token(now)
    );
    let reason = "no decision in time";
    let expired = as_decided(&approval, ApprovalStatus::Expired, "bot", Some(reason), now);
    let mut effects = ending(state, tenant, &job, &a, &expired, &line, None, None).await?;
    effects.record(AuditEntry {
        at: now,
        tenant_id: Some(approval.tenant_id.clone()),
        actor: "bot".into(),
        action: "expire_extension".into(),
        subject: Some(approval.job_id.clone()),
        outcome: "ok".into(),
        detail: Some(json!({ "approval_id": approval.id })),
    });
    if state
        .store
        .decide_approval_with(&approval.id, "expired", "bot", Some(reason), now, &effects)
        .await?
        .is_some()
    {
        state.wake_outbox();
        crate::flows::home_refresh::touch(state, &approval.tenant_id).await;
    }
    Ok(())
}

/// Closes a finished or cancelled job's pending request as moot.
pub async fn close_moot(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
) -> anyhow::Result<()> {
    let now = state.clock.now();
    let Some(pending) = state
        .store
        .pending_approval_for_job(&tenant.id, &job.id.to_string())
        .await?
    else {
        return Ok(());
    };
    let reason = format!("the job is {}", job.state.as_str());
    let line = format!(":white_circle: Closed: {reason}, so the extension is moot.");
    let moot = as_decided(&pending, ApprovalStatus::Moot, "bot", Some(&reason), now);
    let mut effects = ending(state, tenant, job, a, &moot, &line, None, None).await?;
    effects.cancel(&pending.id, Some(EXPIRY_TIMER));
    if state
        .store
        .decide_approval_with(&pending.id, "moot", "bot", Some(&reason), now, &effects)
        .await?
        .is_some()
    {
        state.wake_outbox();
    }
    Ok(())
}

/// Audits a refused decision on `approval` by `user` (who may not decide
/// it, or clicked after it was decided), with why.
pub async fn audit_refusal(state: &AppState, user: &str, approval: &Approval, why: &str) {
    let entry = AuditEntry {
        at: state.clock.now(),
        tenant_id: Some(approval.tenant_id.clone()),
        actor: user.to_string(),
        action: "reject_extension".into(),
        subject: Some(approval.job_id.clone()),
        outcome: format!("refused: {}", why.trim_start_matches(":no_entry: ")),
        detail: Some(json!({ "approval_id": approval.id })),
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> FileConfig {
        FileConfig::parse(&format!(
            r#"
[[tenants]]
id = "acme"
channel = "C0ACME"
operators = ["U0OPS"]
{extra}
[[escalation.tiers]]
name = "On-call"
notify = ["U0ONCALL"]
[[escalation.tiers]]
name = "Business"
notify = ["U0BIZ"]
"#
        ))
        .unwrap()
    }

    #[test]
    fn the_most_specific_stakeholder_rule_wins() {
        let cfg = config(
            r#"
[[tenants.stakeholders]]
approvers = ["U0TENANT"]
[[tenants.stakeholders]]
tier = "critical"
approvers = ["U0CRIT"]
[[tenants.stakeholders]]
asset = "revenue_*"
approvers = ["U0REV"]
[[tenants.stakeholders]]
asset = "revenue_daily"
approvers = ["U0DAILY"]
"#,
        );
        let t = &cfg.tenants[0];
        let ids = |v: Vec<Principal>| v.iter().map(|p| p.id().to_string()).collect::<Vec<_>>();
        assert_eq!(
            ids(stakeholders(&cfg, t, "revenue_daily", SlaTier::Critical)),
            ["U0DAILY"]
        );
        assert_eq!(
            ids(stakeholders(&cfg, t, "revenue_hourly", SlaTier::Critical)),
            ["U0REV"]
        );
        assert_eq!(
            ids(stakeholders(&cfg, t, "costs", SlaTier::Critical)),
            ["U0CRIT"]
        );
        assert_eq!(
            ids(stakeholders(&cfg, t, "costs", SlaTier::Standard)),
            ["U0TENANT"]
        );
    }

    #[test]
    fn with_no_rule_the_last_escalation_tier_decides() {
        let cfg = config("");
        let who = stakeholders(&cfg, &cfg.tenants[0], "anything", SlaTier::BestEffort);
        assert_eq!(who, vec![Principal::User("U0BIZ".into())]);
    }
}
