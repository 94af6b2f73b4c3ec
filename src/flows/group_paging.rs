//! One page per incident (issue 35, item 1). While a tenant's roll-up
//! ([`crate::flows::rollup`]) is open, its member alerts do not escalate one
//! by one: the roll-up has one escalation, on the same durable machinery as
//! an alert's ([`crate::flows::escalation`]): a row in `escalations` keyed
//! `rollup:<id>` (position, epoch, PagerDuty key per path), its steps
//! `escalation_step` timers of that subject, every page an outbox message
//! whose dedup key names the roll-up, epoch, round, tier and person.
//!
//! - **Members**: the tenant's open alerts at risk whose own escalation is
//!   not active. An alert that was already paging when the storm began (or
//!   that someone escalated by hand) keeps its own escalation.
//! - **Start**: after the poll's alerts are reconciled, when the worst
//!   member's band and SLA tier page ([`crate::flows::paging::pages_at`]).
//! - **Pages**: one DM per person of a tier, listing the roll-up's jobs
//!   worst first (as the roll-up shows them, capped with "…and N more"),
//!   linking the roll-up, with an Acknowledge button for the roll-up; a
//!   reply in the roll-up's thread mentions the tier. A job that joins while
//!   it pages is in the roll-up's message at once and in the next tier's
//!   page. A person already paged by an open widespread or system-wide
//!   incident for the same jobs is not paged again (and the widespread page
//!   skips those the roll-up paged): one page per person.
//! - **Acknowledge** (the DM, the roll-up message, or any member alert):
//!   the roll-up's escalation ends; its members page nothing.
//! - **Re-arm**: a member that breaches after the acknowledgement re-arms
//!   the roll-up's escalation once (the re-armed path says so in its
//!   reason; a later breach of another member does not re-arm it again).
//! - **Quiet times**: only members that may page now
//!   ([`crate::flows::quiet::decide_among`]) start or re-arm it; before each
//!   step, when every member is held, it stops with a note in its thread,
//!   and the next poll with a member that may page starts it again.
//! - The roll-up resolving stops its escalation and resolves its PagerDuty
//!   incident.
//!
//! Page DMs are enqueued after the poll's channel messages and go after
//! them ([`crate::store::NewOutboxMessage::priority`]): the channel names
//! every job first.

use crate::config::{EscalationTier, Tenant};
use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::domain::text::duration_words;
use crate::domain::text::escape_slack;
use crate::flows::ids::ROLLUP_ACK_ACTION;
use crate::flows::paging::step_timer;
use crate::flows::paging::{next_position, pages_at, pd_dedup_key};
use crate::flows::quiet::{decide_among, Decision, Holds, Subject};
use crate::pagerduty::OUTBOX_METHOD as PAGERDUTY;
use crate::servo::Job;
use crate::store::{
    Alert, AuditEntry, Effects, EscalationMove, EscalationRow, EscalationStart, NewOutboxMessage,
    Timer, TimerFired,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// The reason a re-armed path carries: a member breached after the
/// acknowledgement. A path with it does not re-arm again.
const BREACH_REARM: &str = "a job of the roll-up breached its deadline after the acknowledgement";

/// The escalation subject of a roll-up (its `escalations.alert_id`).
pub fn subject(rollup_id: &str) -> String {
    format!("rollup:{rollup_id}")
}

/// The roll-up an escalation subject names, if it names one.
pub fn rollup_of_subject(subject: &str) -> Option<&str> {
    subject.strip_prefix("rollup:")
}

/// The open roll-up whose escalation pages for this alert, if any: the
/// tenant's open roll-up, unless the alert's own escalation is active (it
/// was paging before the storm, or someone escalated it by hand).
pub async fn paging_rollup(state: &AppState, alert: &Alert) -> anyhow::Result<Option<String>> {
    let Some(rollup) = state.store.open_rollup(&alert.tenant_id).await? else {
        return Ok(None);
    };
    let own = state.store.get_escalation(&alert.id).await?;
    if own.is_some_and(|e| e.status == "active") {
        return Ok(None);
    }
    Ok(Some(rollup.id))
}

fn audit(
    at: DateTime<Utc>,
    tenant: &str,
    actor: &str,
    action: &str,
    rollup: &str,
    detail: Value,
) -> AuditEntry {
    AuditEntry {
        at,
        tenant_id: Some(tenant.to_string()),
        actor: actor.into(),
        action: action.into(),
        subject: Some(subject(rollup)),
        outcome: "ok".into(),
        detail: Some(detail),
    }
}

/// A reply in the roll-up's thread.
fn thread_note(channel: &str, rollup: &str, key: String, text: &str) -> NewOutboxMessage {
    let mut m = NewOutboxMessage::call(
        "chat.postMessage",
        json!({ "channel": channel, "text": text }),
        key,
    );
    m.thread_alert_id = Some(subject(rollup));
    m.thread_field = Some("thread_ts".into());
    m.ordering_key = Some(subject(rollup));
    m
}

/// After a tenant's poll, its alerts reconciled: starts the roll-up's
/// escalation when its worst member pages, or re-arms an acknowledged one
/// once when a member newly breached. `before`: the band each job's alert
/// had before this poll (by job id).
pub async fn reconcile(
    state: &AppState,
    tenant: &Tenant,
    rollup: Option<&str>,
    assessed: &[(&Job, Assessment)],
    before: &HashMap<String, RiskBand>,
) -> anyhow::Result<()> {
    let Some(rollup) = rollup else {
        return Ok(());
    };
    let path = state.config.escalation_for(&tenant.id);
    if path.tiers.is_empty() || !state.store.rollup_is_open(rollup).await? {
        return Ok(());
    }
    let open: HashMap<String, Alert> = state
        .store
        .list_open_alerts(Some(&tenant.id))
        .await?
        .into_iter()
        .map(|a| (a.job_id.clone(), a))
        .collect();
    // The members are the alerts without an escalation of their own; of
    // them, only those that may page now (no silence, maintenance window or
    // paging hours holding them) start or re-arm the roll-up's paging.
    let active = state.store.active_escalations(&tenant.id).await?;
    let now = state.clock.now();
    let held = Holds::read(state, &tenant.id, now).await?;
    let mut members: Vec<(&Job, &Assessment)> = Vec::new();
    for (job, a) in assessed.iter().filter(|(_, a)| a.band.is_at_risk()) {
        let Some(alert) = open.get(&job.id.to_string()) else {
            continue;
        };
        let subject = Subject {
            band: a.band,
            tier: a.tier,
            ..Subject::of(alert)
        };
        if member_decision(state, &held, &active, alert, &subject, now) == Some(Decision::Page) {
            members.push((*job, a));
        }
    }
    members.sort_by(|x, y| Assessment::riskiest_first(x.1, y.1));
    let Some((worst_job, worst)) = members.first().copied() else {
        return Ok(());
    };
    let esc = state.store.get_escalation(&subject(rollup)).await?;
    match esc.as_ref().map(|e| e.status.as_str()) {
        Some("active") => Ok(()),
        Some("acknowledged") => {
            let esc = esc.as_ref().expect("matched");
            let breached = members.iter().find(|(j, a)| {
                a.band == RiskBand::Breached
                    && before.get(&j.id.to_string()) != Some(&RiskBand::Breached)
            });
            let rearmed_before = esc.reason.as_deref() == Some(BREACH_REARM);
            if let (Some((job, _)), false) = (breached, rearmed_before) {
                let note = format!(
                    ":warning: *{}* breached its deadline after the acknowledgement: the roll-up's escalation re-arms (once, whichever of its jobs breaches next).",
                    escape_slack(&job.asset_name)
                );
                begin(
                    state,
                    tenant,
                    rollup,
                    BREACH_REARM,
                    Some(esc.epoch),
                    Some(note),
                )
                .await?;
            }
            Ok(())
        }
        // Ran out of tiers with nobody acknowledging: as for an alert, it
        // does not start again by itself.
        Some("stopped") if esc.as_ref().is_some_and(|e| e.tier < 0) => Ok(()),
        _ => {
            if !pages_at(path, worst.tier, worst.band) {
                return Ok(());
            }
            let reason = if worst.band == RiskBand::Breached {
                format!(
                    "{} jobs of {} at risk together; the worst, {}, breached its deadline",
                    members.len(),
                    escape_slack(&tenant.id),
                    escape_slack(&worst_job.asset_name)
                )
            } else {
                format!(
                    "{} jobs of {} at risk together; the worst, {}, is {} ({} tier)",
                    members.len(),
                    escape_slack(&tenant.id),
                    escape_slack(&worst_job.asset_name),
                    worst.band.label(),
                    worst.tier.label()
                )
            };
            let after = esc.as_ref().map_or(0, |e| e.epoch);
            begin(state, tenant, rollup, &reason, Some(after), None).await?;
            Ok(())
        }
    }
}

/// Starts (or re-arms) the roll-up's escalation at the first tier, with its
/// plan in the roll-up's thread, then pages the first tier.
async fn begin(
    state: &AppState,
    tenant: &Tenant,
    rollup: &str,
    reason: &str,
    after_epoch: Option<i64>,
    note: Option<String>,
) -> anyhow::Result<bool> {
    let path = state.config.escalation_for(&tenant.id);
    let tiers = &path.tiers;
    let now = state.clock.now();
    let subject = subject(rollup);
    let channel = tenant.channel.as_str().to_string();
    let mut lines = Vec::new();
    let mut at = now;
    let (mut t, mut r) = (0usize, 0u32);
    loop {
        // Who is on call when the step comes: a handoff shows in the plan.
        let step = &crate::flows::oncall::resolve_tier(state, &tiers[t], at).await;
        lines.push(format!(
            "• {} *{}*{} ({})",
            date_token(at),
            escape_slack(&step.name),
            if r > 0 {
                format!(" (round {})", r + 1)
            } else {
                String::new()
            },
            crate::flows::paging::tier_names(&state.directory, step).await,
        ));
        at += chrono::Duration::from_std(step.ack_timeout).unwrap_or_default();
        match next_position(path, t, r) {
            Some((nt, nr)) => (t, r) = (nt, nr),
            None => break,
        }
    }
    let plan_text = format!(
        ":rotating_light: *One escalation for the whole roll-up*: {reason}. Its jobs do not page one by one; until someone acknowledges (the page, this message's *Acknowledge*, or any of its alerts), I page:\n{}",
        crate::slack::limits::join_capped(&lines, "\n", 2_600, |n| format!("…and {n} more"))
    );
    let start = EscalationStart {
        alert_id: &subject,
        tenant: &tenant.id,
        tier: 0,
        reason,
        after_epoch,
        rearm_from: None,
    };
    let Some(esc) = state
        .store
        .start_escalation_then(&start, now, |previous, esc| {
            let mut effects = Effects::new();
            if let Some(note) = &note {
                effects.send(thread_note(
                    &channel,
                    rollup,
                    format!("esc:{subject}:{}:rearm", esc.epoch),
                    note,
                ));
            }
            effects
                .send(thread_note(
                    &channel,
                    rollup,
                    format!("esc:{subject}:{}:plan", esc.epoch),
                    &plan_text,
                ))
                .schedule(step_timer(&subject, esc.epoch, 0, 0, now, ""))
                .record(audit(
                    state.clock.now(),
                    &tenant.id,
                    "bot",
                    "rollup_escalation_start",
                    rollup,
                    json!({ "reason": reason, "epoch": esc.epoch }),
                ));
            if let Some(previous) = previous.filter(|p| p.epoch < esc.epoch) {
                effects
                    .outbox
                    .extend(mirror_to_pagerduty(state, &subject, previous, "resolve"));
            }
            effects
        })
        .await?
    else {
        return Ok(false);
    };
    state.wake_outbox();
    let payload = json!({ "epoch": esc.epoch, "tier": 0, "round": 0 });
    if let Err(e) = step_at(state, rollup, &payload, None).await {
        tracing::error!(error = %e, "the roll-up's first page failed; the timer worker retries it");
    }
    Ok(true)
}

/// A due step of a roll-up's escalation (`escalation_step` timer whose
/// subject is `rollup:<id>`); `timer`: the claimed timer, marked fired with
/// the page. True when the step marked it.
pub async fn fire_step(
    state: &AppState,
    rollup: &str,
    payload: &Value,
    timer: Option<(&Timer, &str)>,
) -> anyhow::Result<bool> {
    let tier = payload.get("tier").and_then(Value::as_u64).unwrap_or(0) as usize;
    let tenant = match state.store.get_escalation(&subject(rollup)).await? {
        Some(esc) => esc.tenant_id,
        None => return Ok(false),
    };
    if tier >= state.config.escalation_for(&tenant).tiers.len() {
        exhausted(state, rollup, payload).await?;
        return Ok(false);
    }
    step_at(state, rollup, payload, timer).await
}

/// Pages the tier if the roll-up's escalation still stands at this
/// position, and moves it on, in one commit. True when it paged with the
/// claimed `timer` marked fired.
async fn step_at(
    state: &AppState,
    rollup: &str,
    payload: &Value,
    timer: Option<(&Timer, &str)>,
) -> anyhow::Result<bool> {
    let now = state.clock.now();
    let subject = subject(rollup);
    let epoch = payload.get("epoch").and_then(Value::as_i64).unwrap_or(-1);
    let tier = payload.get("tier").and_then(Value::as_u64).unwrap_or(0) as usize;
    let round = payload.get("round").and_then(Value::as_u64).unwrap_or(0) as u32;
    let Some(esc) = state.store.get_escalation(&subject).await? else {
        return Ok(false);
    };
    if esc.status != "active"
        || esc.epoch != epoch
        || esc.tier != tier as i64
        || esc.round != round as i64
    {
        return Ok(false);
    }
    if !state.store.rollup_is_open(rollup).await? {
        stop(state, rollup, &esc.tenant_id, "the roll-up resolved").await?;
        return Ok(false);
    }
    // Asked before every step, as an alert's escalation asks: when every
    // member is held now, the roll-up pages nobody.
    if let Some(words) = every_member_held(state, &esc.tenant_id, now).await? {
        hold(state, rollup, &esc, &words).await?;
        return Ok(false);
    }
    let path = state.config.escalation_for(&esc.tenant_id);
    let Some(tier_cfg) = path.tiers.get(tier) else {
        return Ok(false);
    };
    // The people on call now: after a handoff, the new person.
    let tier_cfg = &crate::flows::oncall::resolve_tier(state, tier_cfg, now).await;
    let Some(tenant) = state.config.tenant(&esc.tenant_id) else {
        return Ok(false);
    };
    let mut effects = page(
        state,
        tenant,
        rollup,
        &esc,
        tier_cfg,
        tier,
        round,
        esc.reason.as_deref().unwrap_or(""),
    )
    .await?;
    let pd_key = tier_cfg
        .pagerduty_routing_key_env
        .as_ref()
        .map(|_| pd_dedup_key(&subject, epoch));
    let due = now + chrono::Duration::from_std(tier_cfg.ack_timeout).unwrap_or_default();
    let (to_tier, to_round, next) = match next_position(path, tier, round) {
        Some((nt, nr)) => (
            nt as i64,
            nr as i64,
            step_timer(&subject, epoch, nt, nr, due, ""),
        ),
        None => (
            -1,
            round as i64,
            step_timer(&subject, epoch, usize::MAX, round, due, ":end"),
        ),
    };
    effects.schedule(next);
    if let Some((t, worker)) = timer {
        effects.fire(TimerFired {
            id: t.id.clone(),
            worker: worker.to_string(),
            at: state.clock.now(),
        });
    }
    let moved = state
        .store
        .page_escalation_with(
            &EscalationMove {
                alert_id: &subject,
                epoch,
                from: (tier as i64, round as i64),
                to: (to_tier, to_round),
                pd_key: pd_key.as_deref(),
                how: if tier == 0 && round == 0 {
                    "start"
                } else {
                    "step"
                },
                by: None,
                reason: None,
            },
            &effects,
            now,
        )
        .await?;
    if moved {
        state.wake_outbox();
        state
            .metrics
            .inc("servo_sla_bot_pages_total", &[("tier", &tier_cfg.name)]);
    }
    Ok(moved && timer.is_some())
}

/// The people who hold a page for the same jobs already: those an open
/// widespread incident of the tenant, or an open system-wide one, paged.
async fn paged_by_incidents(state: &AppState, tenant: &str) -> anyhow::Result<HashSet<String>> {
    let mut out = HashSet::new();
    for scope in [tenant, "*"] {
        for incident in state.store.open_incidents(scope).await? {
            if incident.kind.starts_with("widespread:") || incident.kind == "system" {
                let prefix = format!("incident:{}:page:", incident.id);
                for key in state.store.outbox_keys_with_prefix(&prefix).await? {
                    if let Some(user) = key.strip_prefix(&prefix) {
                        out.insert(user.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Where a page stands on a path: epoch, round, tier.
type Position = (i64, i64, i64);

/// The DMs of the roll-up's pages (any epoch), each with the position of
/// the page it was part of: read from their outbox keys,
/// `page:rollup:<id>:<epoch>:<round>:<tier>:<user>`.
async fn page_dms(state: &AppState, rollup: &str) -> anyhow::Result<Vec<(Position, String)>> {
    let prefix = format!("page:{}:", subject(rollup));
    Ok(state
        .store
        .outbox_keys_with_prefix(&prefix)
        .await?
        .into_iter()
        .filter_map(|k| {
            let rest = k.strip_prefix(&prefix)?;
            let mut parts = rest.splitn(4, ':');
            let epoch = parts.next()?.parse().ok()?;
            let round = parts.next()?.parse().ok()?;
            let tier = parts.next()?.parse().ok()?;
            let user = parts.next()?;
            // The page's thread note and PagerDuty event are not DMs.
            (!user.is_empty() && user != "thread" && user != "pd")
                .then(|| ((epoch, round, tier), user.to_string()))
        })
        .collect())
}

/// The people the roll-up's escalation has paged (any epoch): a widespread
/// incident's page for the same jobs skips them.
pub async fn paged_people(state: &AppState, rollup: &str) -> anyhow::Result<HashSet<String>> {
    Ok(page_dms(state, rollup)
        .await?
        .into_iter()
        .map(|(_, user)| user)
        .collect())
}

/// The people the tenant's roll-ups paged for `alert`: those of every page
/// a roll-up's escalation made while the alert was open. Membership is not
/// stored: a roll-up pages for its tenant's open alerts at risk (those
/// opened before the storm as much as those that reply in its thread), and
/// its page names every job of the tenant at risk then (or counts it in its
/// "…and N more"), so a page made while the alert was open paged for it,
/// and one made before it opened or after it resolved did not. An alert
/// that escalated on its own meanwhile ([`paging_rollup`]) was named in
/// those pages too, and they count. Read from the pages recorded with their
/// time (`escalation_pages`, subject `rollup:<id>`) and their DMs' outbox
/// keys: it holds after the alert and the roll-up have resolved.
pub async fn paged_for(state: &AppState, alert: &Alert) -> anyhow::Result<HashSet<String>> {
    let pages = state
        .store
        .rollup_pages_between(&alert.tenant_id, alert.opened_at, alert.resolved_at)
        .await?;
    let mut positions: HashMap<&str, HashSet<Position>> = HashMap::new();
    for p in &pages {
        if let Some(rollup) = rollup_of_subject(&p.alert_id) {
            positions
                .entry(rollup)
                .or_default()
                .insert((p.epoch, p.round, p.tier));
        }
    }
    let mut out = HashSet::new();
    for (rollup, paged) in positions {
        for (at, user) in page_dms(state, rollup).await? {
            if paged.contains(&at) {
                out.insert(user);
            }
        }
    }
    Ok(out)
}

/// One tier's page of the roll-up: a DM to each person (but those already
/// paged for the same jobs by an incident), a reply in the roll-up's thread
/// mentioning them, and a PagerDuty trigger when the tier has a routing key.
#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    tenant: &Tenant,
    rollup: &str,
    esc: &EscalationRow,
    tier: &EscalationTier,
    tier_idx: usize,
    round: u32,
    reason: &str,
) -> anyhow::Result<Effects> {
    let subject = subject(rollup);
    let key = format!("page:{subject}:{}:{round}:{tier_idx}", esc.epoch);
    let people = state.directory.expand(&tier.notify).await?;
    let already = paged_by_incidents(state, &tenant.id).await?;
    let (skipped, to_page): (Vec<String>, Vec<String>) =
        people.iter().cloned().partition(|u| already.contains(u));
    let shown = state
        .store
        .open_rollup(&tenant.id)
        .await?
        .filter(|r| r.id == rollup)
        .and_then(|r| r.shown);
    let field = |f: &str| {
        shown
            .as_ref()
            .and_then(|s| s.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (headline, counts, jobs) = (field("headline"), field("counts"), field("jobs"));
    let wait = duration_words(chrono::Duration::from_std(tier.ack_timeout).unwrap_or_default());
    let path = state.config.escalation_for(&tenant.id);
    let next = match next_position(path, tier_idx, round) {
        Some((nt, _)) => {
            let then = state.clock.now()
                + chrono::Duration::from_std(tier.ack_timeout).unwrap_or_default();
            let t = &crate::flows::oncall::resolve_tier(state, &path.tiers[nt], then).await;
            format!(
                "If nobody acknowledges within {wait}, I page *{}* ({}).",
                escape_slack(&t.name),
                crate::flows::paging::tier_names(&state.directory, t).await
            )
        }
        None => format!("You are the last tier of the path; acknowledge within {wait}."),
    };
    let heading = format!(
        ":rotating_light: You are paged as *{}*{} for *{}*: one page for all of its jobs",
        escape_slack(&tier.name),
        if round > 0 {
            format!(" (round {})", round + 1)
        } else {
            String::new()
        },
        escape_slack(&headline),
    );
    let dm = json!({
        "text": format!("{heading}. {}", escape_slack(&headline)),
        "_permalink": crate::store::permalink_spec(&subject, tenant.channel.as_str()),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": format!(
                "{heading}\n{counts}\n*Why you*: {reason}.\n*Your part*: {}.", escape_slack(&tier.purpose)) } },
            { "type": "section", "text": { "type": "mrkdwn", "text": if jobs.is_empty() { "The roll-up lists the jobs.".to_string() } else { jobs.clone() } } },
            { "type": "section", "text": { "type": "mrkdwn", "text": next } },
            { "type": "actions", "elements": [
                { "type": "button", "action_id": ROLLUP_ACK_ACTION, "style": "primary",
                  "text": { "type": "plain_text", "text": "Acknowledge" }, "value": rollup }
            ] },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!(
                    "<{}|Open the roll-up> · <{}|Runbook: backfill SLA risk>",
                    crate::store::PERMALINK,
                    state.config.runbook_url
                ) }
            ] }
        ]
    });
    let mut effects = Effects::new();
    let mut dms = Vec::new();
    for user in &to_page {
        let mut payload = dm.clone();
        payload["channel"] = user.as_str().into();
        dms.push(NewOutboxMessage::call(
            "chat.postMessage",
            payload,
            format!("{key}:{user}"),
        ));
    }
    let mentions = if people.is_empty() {
        tier.notify
            .iter()
            .map(|p| p.mention())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        to_page
            .iter()
            .map(|u| format!("<@{u}>"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let also = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            " Not paged again: {} (already paged for the same jobs by the incident above).",
            skipped
                .iter()
                .map(|u| format!("<@{u}>"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    // A PagerDuty schedule that could not be asked: its last people known
    // are paged, and the thread says so.
    let also = if crate::flows::pd_schedules::stale(state, tier, state.clock.now()) {
        format!(
            "{also}\n:warning: PagerDuty could not be asked who is on call for {}; I paged the last people it named.",
            tier.pagerduty_schedules
                .iter()
                .map(|s| format!("schedule `{}`", escape_slack(s)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        also
    };
    // The thread note first: it goes to the channel, ahead of the DMs.
    effects.send(thread_note(
        tenant.channel.as_str(),
        rollup,
        format!("{key}:thread"),
        &format!(
            ":rotating_light: Paging *{}*{} for the whole roll-up: {} (acknowledge within {wait}).{also}",
            escape_slack(&tier.name),
            if round > 0 { format!(" (round {})", round + 1) } else { String::new() },
            if mentions.is_empty() { "nobody new".to_string() } else { mentions },
        ),
    ));
    for dm in dms {
        effects.send(dm);
    }
    if let Some(env) = &tier.pagerduty_routing_key_env {
        let summary: String = format!("{headline}: {reason}").chars().take(1024).collect();
        effects.send(NewOutboxMessage::call(
            PAGERDUTY,
            json!({
                "routing_key_env": env,
                "event_action": "trigger",
                "dedup_key": pd_dedup_key(&subject, esc.epoch),
                "_permalink": crate::store::permalink_spec(&subject, tenant.channel.as_str()),
                "client": "servo-sla-bot",
                "client_url": crate::store::PERMALINK,
                "links": [
                    { "href": crate::store::PERMALINK, "text": "Slack roll-up" },
                    { "href": state.config.runbook_url, "text": "Runbook: backfill SLA risk" }
                ],
                "payload": {
                    "summary": summary,
                    "source": format!("servo-sla-bot/{}", tenant.id),
                    "severity": "critical",
                    "component": tenant.id,
                    "group": tenant.id,
                    "class": "backfill_sla_risk_rollup",
                    "custom_details": { "tenant": tenant.id, "rollup": rollup, "tier": tier.name, "reason": reason }
                }
            }),
            format!("{key}:pd"),
        ));
    }
    effects.record(audit(
    state.clock.now(),
        &tenant.id,
        "bot",
        "rollup_page",
        rollup,
        json!({ "tier": tier.name, "round": round, "epoch": esc.epoch, "people": to_page, "already_paged": skipped }),
    ));
    Ok(effects)
}

/// The events mirroring an acknowledgement or resolution of the roll-up's
/// path to PagerDuty, one per routing key; none when it triggered nothing.
fn mirror_to_pagerduty(
    state: &AppState,
    subject: &str,
    esc: &EscalationRow,
    action: &str,
) -> Vec<NewOutboxMessage> {
    if esc.pd_triggered != 1 {
        return Vec::new();
    }
    let key = esc
        .pd_dedup_key
        .clone()
        .unwrap_or_else(|| pd_dedup_key(subject, esc.epoch));
    let tiers = &state.config.escalation_for(&esc.tenant_id).tiers;
    tiers
        .iter()
        .enumerate()
        .filter_map(|(i, tier)| {
            let env = tier.pagerduty_routing_key_env.as_ref()?;
            if tiers[..i]
                .iter()
                .any(|t| t.pagerduty_routing_key_env.as_ref() == Some(env))
            {
                return None;
            }
            Some(NewOutboxMessage::call(
                PAGERDUTY,
                json!({ "routing_key_env": env, "event_action": action, "dedup_key": key }),
                format!("pd:{subject}:{}:{action}:{i}", esc.epoch),
            ))
        })
        .collect()
}

/// The end of the roll-up's path with nobody acknowledging.
async fn exhausted(state: &AppState, rollup: &str, payload: &Value) -> anyhow::Result<()> {
    let subject = subject(rollup);
    let epoch = payload.get("epoch").and_then(Value::as_i64).unwrap_or(-1);
    let Some(esc) = state.store.get_escalation(&subject).await? else {
        return Ok(());
    };
    let tiers = state.config.escalation_for(&esc.tenant_id).tiers.len();
    let beyond = esc.tier < 0 || esc.tier as usize >= tiers;
    if esc.status != "active" || esc.epoch != epoch || !beyond {
        return Ok(());
    }
    let Some(tenant) = state.config.tenant(&esc.tenant_id) else {
        return Ok(());
    };
    let note = thread_note(
        tenant.channel.as_str(),
        rollup,
        format!("esc:{subject}:{epoch}:exhausted"),
        ":warning: *The roll-up's escalation path is exhausted*: nobody acknowledged.",
    );
    let ended = state
        .store
        .end_escalation_with(
            &subject,
            "stopped",
            state.clock.now(),
            &Effects::new(),
            |_| {
                let mut effects = Effects::new();
                effects.send(note).record(audit(
                    state.clock.now(),
                    &tenant.id,
                    "bot",
                    "rollup_escalation_exhausted",
                    rollup,
                    json!({ "epoch": epoch }),
                ));
                effects
            },
        )
        .await?;
    if ended.is_some() {
        state.wake_outbox();
    }
    Ok(())
}

/// The roll-up resolved (or is gone): its escalation stops, its steps are
/// cancelled and its PagerDuty incident resolves.
pub async fn stop(state: &AppState, rollup: &str, tenant: &str, why: &str) -> anyhow::Result<()> {
    let subject = subject(rollup);
    let ended = state
        .store
        .end_escalation_with(
            &subject,
            "stopped",
            state.clock.now(),
            &crate::flows::paging::cancel_steps(&subject),
            |esc| {
                let mut effects = Effects::new();
                effects.outbox = mirror_to_pagerduty(state, &subject, esc, "resolve");
                effects.record(audit(
                    state.clock.now(),
                    tenant,
                    "bot",
                    "rollup_escalation_stop",
                    rollup,
                    json!({ "why": why }),
                ));
                effects
            },
        )
        .await?;
    if ended.is_some() {
        state.wake_outbox();
    }
    Ok(())
}

/// When the roll-up has members (open alerts at risk without an
/// escalation of their own) and a silence, a maintenance window or paging
/// hours hold every one of them now: the words of the first member's hold.
async fn every_member_held(
    state: &AppState,
    tenant: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let held = Holds::read(state, tenant, now).await?;
    let active = state.store.active_escalations(tenant).await?;
    let mut words = None;
    for alert in state.store.list_open_alerts(Some(tenant)).await? {
        if !alert.band.is_at_risk() {
            continue;
        }
        match member_decision(state, &held, &active, &alert, &Subject::of(&alert), now) {
            Some(Decision::Page) => return Ok(None),
            Some(held) if words.is_none() => words = held.words(),
            _ => {}
        }
    }
    Ok(words)
}

/// What the quiet times say now of a roll-up member (`subject`: its alert
/// as judged); `None` for an alert that escalates on its own (`active`).
fn member_decision(
    state: &AppState,
    held: &Holds,
    active: &HashSet<String>,
    alert: &Alert,
    subject: &Subject,
    now: DateTime<Utc>,
) -> Option<Decision> {
    (!active.contains(&alert.id)).then(|| decide_among(state, subject, now, held))
}

/// Every member of the roll-up is held: its escalation stops (its pending
/// step cancelled, its PagerDuty incident resolved), with a note in its
/// thread and the audit entry, in one commit. The next poll whose members
/// may page starts it again from the first tier.
async fn hold(
    state: &AppState,
    rollup: &str,
    esc: &EscalationRow,
    words: &str,
) -> anyhow::Result<()> {
    let Some(tenant) = state.config.tenant(&esc.tenant_id) else {
        return Ok(());
    };
    let subject = subject(rollup);
    let now = state.clock.now();
    let note = thread_note(
        tenant.channel.as_str(),
        rollup,
        format!("esc:{subject}:{}:held", esc.epoch),
        &format!(
            ":mute: Every job of this roll-up is held now ({words}): its escalation stops. When one of them may page again and is still at risk, it pages again from the first tier."
        ),
    );
    let ended = state
        .store
        .end_escalation_with(
            &subject,
            "stopped",
            now,
            &crate::flows::paging::cancel_steps(&subject),
            |row| {
                let mut effects = Effects::new();
                effects.outbox = mirror_to_pagerduty(state, &subject, row, "resolve");
                effects.send(note.clone()).record(audit(
                    now,
                    &esc.tenant_id,
                    "bot",
                    "rollup_escalation_held",
                    rollup,
                    json!({ "why": words, "epoch": row.epoch }),
                ));
                effects
            },
        )
        .await?;
    if ended.is_some() {
        state.wake_outbox();
    }
    Ok(())
}

/// What acknowledging a roll-up's paging came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollupAcked {
    /// This acknowledgement ended its escalation.
    Acknowledged,
    /// Its escalation was not paging (acknowledged already, ended, or not
    /// started).
    NotPaging,
    /// The roll-up is resolved or unknown.
    NotOpen,
}

/// Acknowledges the paging of a roll-up's jobs for `user` (an operator of
/// its tenant or someone on the path, checked by the caller): its
/// escalation ends with its pending step cancelled, PagerDuty's incident
/// acknowledged, a note in its thread and the audit entry, in one commit.
/// `via`: the member alert the click came from, if it did.
pub async fn acknowledge(
    state: &AppState,
    rollup: &str,
    user: &str,
    via: Option<&Alert>,
) -> anyhow::Result<RollupAcked> {
    let subject = subject(rollup);
    let Some(esc) = state.store.get_escalation(&subject).await? else {
        return Ok(if state.store.rollup_is_open(rollup).await? {
            RollupAcked::NotPaging
        } else {
            RollupAcked::NotOpen
        });
    };
    if !state.store.rollup_is_open(rollup).await? {
        return Ok(RollupAcked::NotOpen);
    }
    if esc.status != "active" {
        return Ok(RollupAcked::NotPaging);
    }
    let Some(tenant) = state.config.tenant(&esc.tenant_id) else {
        return Ok(RollupAcked::NotOpen);
    };
    let now = state.clock.now();
    let text = format!(
        ":white_check_mark: <@{user}> acknowledged the roll-up's paging {}{}: nobody is paged for its jobs any more.",
        date_token(now),
        match via {
            Some(a) => format!(" (from the alert of job `{}`)", escape_slack(&a.job_id)),
            None => String::new(),
        }
    );
    let ended = state
        .store
        .end_escalation_with(
            &subject,
            "acknowledged",
            now,
            &crate::flows::paging::cancel_steps(&subject),
            |esc| {
                let mut effects = Effects::new();
                effects.outbox = mirror_to_pagerduty(state, &subject, esc, "acknowledge");
                effects
                    .send(thread_note(
                        tenant.channel.as_str(),
                        rollup,
                        format!("esc:{subject}:{}:acknowledged", esc.epoch),
                        &text,
                    ))
                    .record(audit(
                        state.clock.now(),
                        &tenant.id,
                        user,
                        "rollup_acknowledge",
                        rollup,
                        json!({ "epoch": esc.epoch, "via_alert": via.map(|a| a.id.clone()) }),
                    ));
                effects
            },
        )
        .await?;
    if ended.is_some() {
        state.wake_outbox();
        Ok(RollupAcked::Acknowledged)
    } else {
        Ok(RollupAcked::NotPaging)
    }
}

/// Operators of the tenant, and everyone on the escalation path, may
/// acknowledge a roll-up's paging.
pub async fn may_respond(state: &AppState, tenant: &Tenant, user: &str) -> bool {
    let mut people = tenant.operators.clone();
    for t in &state.config.escalation_for(&tenant.id).tiers {
        people.extend(crate::flows::oncall::anyone_on(state, t).await);
    }
    state
        .directory
        .is_among(user, &people)
        .await
        .unwrap_or(false)
}

/// The roll-up's escalation, if it has one.
pub async fn escalation_of(
    state: &AppState,
    rollup: &str,
) -> anyhow::Result<Option<EscalationRow>> {
    Ok(state.store.get_escalation(&subject(rollup)).await?)
}
