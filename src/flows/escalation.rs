//! The escalation path: on-call engineer, then platform team lead, then the
//! product/business stakeholder, each with a time to acknowledge, repeated a
//! configured number of times.
//!
//! Durable by construction: the escalation's next position (tier, round) and
//! an epoch live in the store; every step is a timer. A step pages only if the
//! escalation is still active at exactly that position and epoch, then moves
//! it on with a conditional update and schedules the next step. Every page is
//! an outbox message with a dedup key naming the alert, epoch, round, tier and
//! person, so a timer that fires twice (a crash between paging and moving on,
//! or a second replica) never pages twice.

use crate::config::EscalationTier;
use crate::context::AppState;
use crate::pagerduty::OUTBOX_METHOD as PAGERDUTY;
use crate::risk::{Assessment, RiskBand, SlaTier};
use crate::servo::Job;
use crate::slack::render::{date_token, duration_words, escape_slack};
use crate::store::{Alert, Effects, NewOutboxMessage, NewTimer, Timer, TimerFired};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub const STEP_TIMER: &str = "escalation_step";
pub const ESCALATE_ACTION: &str = "alert_escalate";

fn tier_index(t: SlaTier) -> usize {
    match t {
        SlaTier::Critical => 0,
        SlaTier::Standard => 1,
        SlaTier::BestEffort => 2,
        SlaTier::BelowBestEffort => 3,
    }
}

/// Whether an alert of this SLA tier pages at this band (breach always does).
pub fn pages_at(state: &AppState, tier: SlaTier, band: RiskBand) -> bool {
    band == RiskBand::Breached
        || (band.is_at_risk() && band >= state.config.escalation.start_at[tier_index(tier)])
}

/// The platform tier, which **Request scaling** pages: the second tier of
/// the path (the runbook's platform team lead), or the only one.
pub fn scaling_tier(state: &AppState) -> Option<&EscalationTier> {
    let tiers = &state.config.escalation.tiers;
    tiers.get(1).or(tiers.last())
}

/// A tier as a page names it, in plain text: "*Platform Team Lead* (Bo)".
pub async fn tier_label(state: &AppState, tier: &EscalationTier) -> String {
    format!(
        "*{}* ({})",
        escape_slack(&tier.name),
        tier_names(state, tier).await
    )
}

/// Who **Escalate now** would page for an alert whose escalation is in this
/// state (`None`: no escalation yet), as [`tier_label`] says it; `None` once
/// every tier has been paged.
pub async fn escalate_now_pages(
    state: &AppState,
    esc: Option<&crate::store::EscalationRow>,
) -> Option<String> {
    let tiers = &state.config.escalation.tiers;
    let next = match esc.filter(|e| e.status == "active") {
        None => tiers.first(),
        Some(e) if e.tier >= 0 => tiers.get(e.tier as usize),
        Some(_) => None,
    }?;
    Some(tier_label(state, next).await)
}

/// For a new alert about to start paging at the first tier (which is paged
/// at once): who **Escalate now** will page then.
pub async fn escalate_now_pages_after_start(state: &AppState) -> Option<String> {
    let (tier, _) = next_position(state, 0, 0)?;
    Some(tier_label(state, state.config.escalation.tiers.get(tier)?).await)
}

/// A tier's people as plain text ("Ada, @oncall"): naming them notifies
/// nobody. Only the message that pages a tier mentions its members.
pub async fn tier_names(state: &AppState, tier: &EscalationTier) -> String {
    state.directory.names(&tier.notify).await
}

use crate::flows::alerts::{audit_entry, BUTTONS_TIMER};

/// The position after (tier, round), if the path goes on.
pub(crate) fn next_position(state: &AppState, tier: usize, round: u32) -> Option<(usize, u32)> {
    let tiers = state.config.escalation.tiers.len();
    if tier + 1 < tiers {
        Some((tier + 1, round))
    } else if round < state.config.escalation.repeat {
        Some((0, round + 1))
    } else {
        None
    }
}

/// The timer for an escalation step.
fn step_timer(
    alert_id: &str,
    epoch: i64,
    tier: usize,
    round: u32,
    due: DateTime<Utc>,
    tag: &str,
) -> NewTimer {
    NewTimer {
        kind: STEP_TIMER.into(),
        subject_id: alert_id.to_string(),
        payload: json!({ "epoch": epoch, "tier": tier, "round": round }),
        due_at: due,
        dedup_key: Some(format!("esc:{alert_id}:{epoch}:{round}:{tier}{tag}")),
    }
}

async fn schedule_step(state: &AppState, step: NewTimer) -> anyhow::Result<()> {
    state.store.schedule_timer(step, state.clock.now()).await?;
    Ok(())
}

/// Starts paging at `tier` (0-based), unless an escalation is already active.
/// Posts the planned steps and their times in the alert's thread.
pub async fn start(
    state: &AppState,
    alert: &Alert,
    tier: usize,
    reason: &str,
) -> anyhow::Result<bool> {
    let tiers = &state.config.escalation.tiers;
    if tiers.is_empty() {
        return Ok(false);
    }
    let tier = tier.min(tiers.len() - 1);
    let now = state.clock.now();
    if state
        .store
        .get_escalation(&alert.id)
        .await?
        .is_some_and(|e| e.status == "active")
    {
        return Ok(false);
    }
    // The plan: who is paged when, if nobody acknowledges. People are named
    // in plain text: a mention would notify later tiers before their turn.
    let mut lines = Vec::new();
    let mut at = now;
    let (mut t, mut r) = (tier, 0u32);
    loop {
        let step = &tiers[t];
        lines.push(format!(
            "• {} *{}*{} ({}): {}",
            date_token(at),
            escape_slack(&step.name),
            if r > 0 {
                format!(" (round {})", r + 1)
            } else {
                String::new()
            },
            tier_names(state, step).await,
            escape_slack(&step.purpose),
        ));
        at += chrono::Duration::from_std(step.ack_timeout).unwrap_or_default();
        match next_position(state, t, r) {
            Some((nt, nr)) => (t, r) = (nt, nr),
            None => break,
        }
    }
    let text = format!(
        ":rotating_light: *Escalation started*: {reason}. Until someone acknowledges, I page:\n{}",
        crate::slack::limits::join_capped(&lines, "\n", 2_600, |n| {
            format!(
                "…and {n} more {}",
                crate::domain::text::noun(n, "step", "steps")
            )
        })
    );
    // Decided; the escalation, its plan, its first step and the audit entry
    // commit together.
    let plan = crate::flows::alerts::thread_message(state, alert, String::new(), &text)?;
    let Some(esc) = state
        .store
        .start_escalation_with(
            &alert.id,
            &alert.tenant_id,
            tier as i64,
            reason,
            now,
            |esc| {
                let mut plan = plan;
                plan.dedup_key = Some(format!("esc:{}:{}:plan", alert.id, esc.epoch));
                let mut effects = Effects::new();
                effects
                    .send(plan)
                    .schedule(step_timer(&alert.id, esc.epoch, tier, 0, now, ""))
                    .record(audit_entry(
                        state,
                        alert,
                        "bot",
                        "escalation_start",
                        "ok",
                        json!({ "tier": tier, "reason": reason, "epoch": esc.epoch }),
                    ));
                effects
            },
        )
        .await?
    else {
        return Ok(false);
    };
    state.wake_outbox();
    // Page the first tier now rather than on the timer worker's next round.
    run_now(state, &alert.id, esc.epoch, tier, 0).await;
    Ok(true)
}

/// The repair pass found this active escalation with no pending step:
/// schedules the step for where it stands, due now (the end of the path when
/// it stands past the last tier).
pub async fn schedule_repair_step(
    state: &AppState,
    esc: &crate::store::EscalationRow,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let tag = format!(":repair:{}", now.timestamp_millis());
    let round = esc.round.max(0) as u32;
    let step = if esc.tier < 0 {
        step_timer(
            &esc.alert_id,
            esc.epoch,
            usize::MAX,
            round,
            now,
            &format!(":end{tag}"),
        )
    } else {
        step_timer(
            &esc.alert_id,
            esc.epoch,
            esc.tier as usize,
            round,
            now,
            &tag,
        )
    };
    schedule_step(state, step).await
}

/// Runs a just-scheduled step now rather than on the timer worker's next
/// round. The step's timer row stays as the durable fallback: if this
/// process dies before the step moves the escalation on, the worker fires it;
/// once it has moved on, the row no longer matches and firing it does nothing.
async fn run_now(state: &AppState, alert_id: &str, epoch: i64, tier: usize, round: u32) {
    let payload = json!({ "epoch": epoch, "tier": tier, "round": round });
    if let Err(e) = step_at(state, alert_id, &payload, StepFrom::Start).await {
        tracing::error!(error = %e, "escalation step failed; the timer worker retries it");
    }
}

/// A step is due: page the tier if the escalation is still there, move on,
/// and let the alert's **Escalate now** name the next (a [`BUTTONS_TIMER`]
/// the step commits with its pages).
pub async fn step(state: &AppState, alert_id: &str, payload: &Value) -> anyhow::Result<()> {
    due_step(state, alert_id, payload, StepFrom::Due).await?;
    Ok(())
}

/// The timer worker's step: as [`step`], and a step that pages marks its
/// claimed `timer` fired in its own transaction. True when it did, so the
/// worker does not mark it again.
pub async fn fire_step(state: &AppState, timer: &Timer, worker: &str) -> anyhow::Result<bool> {
    let from = StepFrom::Timer {
        id: &timer.id,
        worker,
    };
    due_step(state, &timer.subject_id, &timer.payload, from).await
}

/// A due step; an exhausted path re-renders the alert at once. True when the
/// step marked its timer fired.
async fn due_step(
    state: &AppState,
    alert_id: &str,
    payload: &Value,
    from: StepFrom<'_>,
) -> anyhow::Result<bool> {
    let marks_fired = matches!(from, StepFrom::Timer { .. });
    match step_at(state, alert_id, payload, from).await? {
        Stepped::Paged => Ok(marks_fired),
        Stepped::Ended => {
            refresh_buttons(state, alert_id).await;
            Ok(false)
        }
        Stepped::Nothing => Ok(false),
    }
}

/// Who runs a step.
#[derive(Debug, Clone, Copy)]
enum StepFrom<'a> {
    /// Paging starts: whoever started it re-renders the alert.
    Start,
    /// A step came due (its timer, or a test).
    Due,
    /// The timer worker, holding the step's timer: marked fired with it.
    Timer { id: &'a str, worker: &'a str },
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stepped {
    /// Nothing: the escalation was no longer at this position.
    Nothing,
    /// It paged the tier and moved the path on.
    Paged,
    /// The path as configured ended before this step.
    Ended,
}

/// The re-render of an alert's buttons after its path moved to a position,
/// due at once.
fn buttons_timer(alert_id: &str, epoch: i64, to: (i64, i64), now: DateTime<Utc>) -> NewTimer {
    NewTimer {
        kind: BUTTONS_TIMER.into(),
        subject_id: alert_id.to_string(),
        payload: json!({}),
        due_at: now,
        dedup_key: Some(format!("buttons:{alert_id}:{epoch}:{}:{}", to.1, to.0)),
    }
}

/// Pages the tier if the escalation is still at this position, then moves it
/// on. When paging starts, the alert is re-rendered by whoever started it;
/// otherwise the re-render is scheduled with the move (see [`StepFrom`]).
async fn step_at(
    state: &AppState,
    alert_id: &str,
    payload: &Value,
    from: StepFrom<'_>,
) -> anyhow::Result<Stepped> {
    let now = state.clock.now();
    let epoch = payload.get("epoch").and_then(Value::as_i64).unwrap_or(-1);
    let tier = payload.get("tier").and_then(Value::as_u64).unwrap_or(0) as usize;
    let round = payload.get("round").and_then(Value::as_u64).unwrap_or(0) as u32;
    let Some(esc) = state.store.get_escalation(alert_id).await? else {
        return Ok(Stepped::Nothing);
    };
    if esc.status != "active"
        || esc.epoch != epoch
        || esc.tier != tier as i64
        || esc.round != round as i64
    {
        return Ok(Stepped::Nothing); // acknowledged, stopped, moved on or restarted meanwhile
    }
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(Stepped::Nothing);
    };
    if !alert.is_open() {
        stop(state, &alert, "the alert resolved").await?;
        return Ok(Stepped::Nothing);
    }
    if alert.acked_by.is_some() {
        state
            .store
            .end_escalation(alert_id, "acknowledged", now)
            .await?;
        return Ok(Stepped::Nothing);
    }
    if tier >= state.config.escalation.tiers.len() {
        // Stored before a config change took tiers away: the path, as now
        // configured, ends before this step.
        tracing::warn!(
            alert = alert_id,
            tier,
            tiers = state.config.escalation.tiers.len(),
            "an escalation stored past the configured tiers; its path is exhausted"
        );
        end_exhausted(state, &alert, epoch).await?;
        return Ok(Stepped::Ended);
    }
    let page = page(
        state,
        &alert,
        tier,
        round,
        epoch,
        esc.reason.as_deref().unwrap_or(""),
    )
    .await?;
    let ack_timeout = state.config.escalation.tiers[tier].ack_timeout;
    let due = now + chrono::Duration::from_std(ack_timeout).unwrap_or_default();
    // After the last tier, a step that says the path is exhausted.
    let (to_tier, to_round, next) = match next_position(state, tier, round) {
        Some((nt, nr)) => (
            nt as i64,
            nr as i64,
            step_timer(alert_id, epoch, nt, nr, due, ""),
        ),
        None => (
            -1,
            round as i64,
            step_timer(alert_id, epoch, usize::MAX, round, due, ":end"),
        ),
    };
    // The pages, the move and the next step commit together: a stop before
    // the commit leaves the step due (its timer fires again), a stop after
    // it leaves the next one scheduled; nobody is paged twice or never.
    let mut effects = page.effects;
    effects.schedule(next);
    if !matches!(from, StepFrom::Start) {
        effects.schedule(buttons_timer(alert_id, epoch, (to_tier, to_round), now));
    }
    if let StepFrom::Timer { id, worker } = from {
        // Stamped now, after the step's work, as the worker would.
        effects.fire(TimerFired {
            id: id.to_string(),
            worker: worker.to_string(),
            at: state.clock.now(),
        });
    }
    let moved = state
        .store
        .advance_escalation_with(
            alert_id,
            epoch,
            (tier as i64, round as i64),
            (to_tier, to_round),
            page.pagerduty,
            &effects,
            now,
        )
        .await?;
    if moved {
        state.wake_outbox();
        crate::flows::home::touch(state, &alert.tenant_id).await;
        state.metrics.inc(
            "servo_sla_bot_pages_total",
            &[("tier", &state.config.escalation.tiers[tier].name)],
        );
    }
    Ok(if moved {
        Stepped::Paged
    } else {
        Stepped::Nothing
    })
}

/// The alert's **Escalate now** says whom it pages: after the path moves on,
/// the button's confirmation names the next tier.
pub async fn refresh_buttons(state: &AppState, alert_id: &str) {
    if let Err(e) = crate::flows::alerts::refresh(state, alert_id).await {
        tracing::warn!(error = %e, "could not refresh the alert's buttons after the escalation moved");
    }
}

/// The end of the path with nobody acknowledging.
pub async fn exhausted(state: &AppState, alert_id: &str, payload: &Value) -> anyhow::Result<()> {
    let epoch = payload.get("epoch").and_then(Value::as_i64).unwrap_or(-1);
    let Some(esc) = state.store.get_escalation(alert_id).await? else {
        return Ok(());
    };
    // Past the end, or (after a config change took tiers away) at a tier
    // that no longer exists.
    let beyond = esc.tier < 0 || esc.tier as usize >= state.config.escalation.tiers.len();
    if esc.status != "active" || esc.epoch != epoch || !beyond {
        return Ok(());
    }
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(());
    };
    end_exhausted(state, &alert, epoch).await?;
    refresh_buttons(state, alert_id).await;
    Ok(())
}

/// Ends an escalation that ran out of tiers, once, saying so in the thread.
async fn end_exhausted(state: &AppState, alert: &Alert, epoch: i64) -> anyhow::Result<()> {
    let note = crate::flows::alerts::thread_message(
        state,
        alert,
        format!("esc:{}:{epoch}:exhausted", alert.id),
        ":warning: *Escalation path exhausted*: nobody acknowledged. Use *Escalate now* to page again.",
    )?;
    let ended = state
        .store
        .end_escalation_with(
            &alert.id,
            "stopped",
            state.clock.now(),
            &Effects::new(),
            |_| {
                let mut effects = Effects::new();
                effects.send(note).record(audit_entry(
                    state,
                    alert,
                    "bot",
                    "escalation_exhausted",
                    "ok",
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

/// Pages one tier: a DM with an Acknowledge button to each person (groups
/// expanded), a reply in the alert's thread mentioning them (the only message
/// that mentions them), and a PagerDuty trigger when the tier has a routing
/// key. Each page stands alone: the job, how late, ETA and deadline, what is
/// slowing it, why this tier and what it is for, and links to the alert and
/// the runbook. Idempotent per position.
async fn page(
    state: &AppState,
    alert: &Alert,
    tier_idx: usize,
    round: u32,
    epoch: i64,
    reason: &str,
) -> anyhow::Result<Page> {
    let tier = &state.config.escalation.tiers[tier_idx];
    let people = state.directory.expand(&tier.notify).await?;
    let key = format!("page:{}:{epoch}:{round}:{tier_idx}", alert.id);
    let facts = PageFacts::of(state, alert);
    let next = match next_position(state, tier_idx, round) {
        Some((nt, _)) => {
            let t = &state.config.escalation.tiers[nt];
            format!(
                "If nobody acknowledges within {}, I page *{}* ({}).",
                duration_words(chrono::Duration::from_std(tier.ack_timeout).unwrap_or_default()),
                escape_slack(&t.name),
                tier_names(state, t).await
            )
        }
        None => format!(
            "You are the last tier of the path; acknowledge within {}.",
            duration_words(chrono::Duration::from_std(tier.ack_timeout).unwrap_or_default())
        ),
    };
    let heading = format!(
        ":rotating_light: You are paged as *{}*{}",
        escape_slack(&tier.name),
        if round > 0 {
            format!(" (round {})", round + 1)
        } else {
            String::new()
        }
    );
    let dm = facts.message(
        state,
        &heading,
        &[
            format!("*Why you*: {reason}."),
            format!("*Your part*: {}.", escape_slack(&tier.purpose)),
            next,
        ],
        crate::flows::alerts::ACK_ACTION,
        &alert.id,
    );
    // The DMs and the thread note go to the outbox in one statement.
    let mut messages = Vec::with_capacity(people.len() + 1);
    for user in &people {
        let mut payload = dm.clone();
        payload["channel"] = user.as_str().into();
        messages.push(NewOutboxMessage::call(
            "chat.postMessage",
            payload,
            format!("{key}:{user}"),
        ));
    }
    let thread = format!(
        ":rotating_light: Paging *{}*{}: {} (acknowledge within {}). Their part: {}.",
        escape_slack(&tier.name),
        if round > 0 {
            format!(" (round {})", round + 1)
        } else {
            String::new()
        },
        if people.is_empty() {
            tier.notify
                .iter()
                .map(|p| p.mention())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            people
                .iter()
                .map(|u| format!("<@{u}>"))
                .collect::<Vec<_>>()
                .join(" ")
        },
        duration_words(chrono::Duration::from_std(tier.ack_timeout).unwrap_or_default()),
        escape_slack(&tier.purpose)
    );
    messages.push(crate::flows::alerts::thread_message(
        state,
        alert,
        format!("{key}:thread"),
        &thread,
    )?);
    if let Some(env) = &tier.pagerduty_routing_key_env {
        messages.push(NewOutboxMessage::call(
            PAGERDUTY,
            facts.pagerduty_trigger(state, env, &tier.name, &tier.purpose, reason),
            format!("{key}:pd"),
        ));
    }
    let mut effects = Effects::new();
    effects.outbox = messages;
    effects.record(audit_entry(
        state,
        alert,
        "bot",
        "page",
        "ok",
        json!({ "tier": tier.name, "round": round, "people": people, "epoch": epoch }),
    ));
    Ok(Page {
        effects,
        pagerduty: tier.pagerduty_routing_key_env.is_some(),
    })
}

/// A tier's page, decided: what it sends and records, and whether it
/// triggers PagerDuty. The step commits it with the escalation's move.
struct Page {
    effects: Effects,
    pagerduty: bool,
}

/// What every page about an alert says, from what the alert shows: enough to
/// act on at 3 a.m. without looking anything up.
pub struct PageFacts {
    alert_id: String,
    tenant: String,
    channel: String,
    job_id: String,
    /// The asset's name as Servo has it (raw: escape before Slack markup).
    asset: String,
    band: Option<RiskBand>,
    headline: String,
    severity: String,
    severity_ratio: Option<f64>,
    eta: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    /// Slack markup, built by the bot.
    bottlenecks: Vec<String>,
}

impl PageFacts {
    pub fn of(state: &AppState, alert: &Alert) -> PageFacts {
        let view = alert
            .shown
            .clone()
            .and_then(|v| serde_json::from_value::<crate::flows::alerts::AlertView>(v).ok());
        let band = Some(alert.band);
        PageFacts {
            alert_id: alert.id.clone(),
            tenant: alert.tenant_id.clone(),
            channel: state
                .config
                .tenant(&alert.tenant_id)
                .map(|t| t.channel.as_str().to_string())
                .or_else(|| alert.channel.clone())
                .unwrap_or_default(),
            job_id: alert.job_id.clone(),
            asset: view
                .as_ref()
                .map(|v| v.asset.clone())
                .unwrap_or_else(|| "a backfill".into()),
            band,
            headline: view
                .as_ref()
                .map(|v| v.headline.clone())
                .unwrap_or_else(|| format!("{} SLA risk", band.map(|b| b.label()).unwrap_or("At"))),
            severity: crate::flows::alerts::severity_text(
                alert.eta,
                alert.deadline,
                state.clock.now(),
                alert.severity,
            ),
            severity_ratio: alert.severity,
            eta: alert.eta,
            deadline: alert.deadline,
            bottlenecks: view.map(|v| v.bottlenecks).unwrap_or_default(),
        }
    }

    /// The alert's link, resolved by the outbox when the page is sent (the
    /// alert's own post may still be on its way): `chat.getPermalink`.
    fn link_spec(&self) -> Value {
        crate::outbox::permalink_spec(&self.alert_id, &self.channel)
    }

    /// A DM's payload (without `channel`): the facts, then `lines` (already
    /// Slack markup), an Acknowledge-style button, and the links.
    pub fn message(
        &self,
        state: &AppState,
        heading: &str,
        lines: &[String],
        ack_action: &str,
        ack_value: &str,
    ) -> Value {
        let asset = escape_slack(&self.asset);
        let token =
            |t: Option<DateTime<Utc>>| t.map(date_token).unwrap_or_else(|| "unknown".into());
        let slowing = if self.bottlenecks.is_empty() {
            "Nothing stands out: partitions are just taking longer than the deadline allows."
                .to_string()
        } else {
            crate::slack::limits::join_capped(
                &self
                    .bottlenecks
                    .iter()
                    .map(|b| format!("• {b}"))
                    .collect::<Vec<_>>(),
                "\n",
                1_500,
                |n| format!("…and {n} more"),
            )
        };
        let text = format!(
            "{heading}: {} for {asset}: {}. ETA {}, deadline {}.",
            self.headline,
            self.severity,
            token(self.eta),
            token(self.deadline)
        );
        json!({
            "text": text,
            "_permalink": self.link_spec(),
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": format!(
                    "{heading}\n{} {}: *{asset}*\n{}",
                    self.band.map(|b| b.emoji()).unwrap_or(":warning:"),
                    self.headline,
                    self.severity
                ) } },
                { "type": "section", "fields": [
                    { "type": "mrkdwn", "text": format!("*ETA*\n{}", token(self.eta)) },
                    { "type": "mrkdwn", "text": format!("*Deadline*\n{}", token(self.deadline)) },
                    { "type": "mrkdwn", "text": format!("*Job*\n`{}`", self.job_id) },
                    { "type": "mrkdwn", "text": format!("*Tenant*\n`{}`", escape_slack(&self.tenant)) }
                ] },
                { "type": "section", "text": { "type": "mrkdwn", "text": format!("*What is slowing it*\n{slowing}") } },
                { "type": "section", "text": { "type": "mrkdwn", "text": lines.join("\n") } },
                { "type": "actions", "elements": [
                    { "type": "button", "action_id": ack_action, "style": "primary",
                      "text": { "type": "plain_text", "text": "Acknowledge" }, "value": ack_value }
                ] },
                { "type": "context", "elements": [
                    { "type": "mrkdwn", "text": format!(
                        "<{}|Open the alert> · <{}|Runbook: backfill SLA risk>",
                        crate::outbox::PERMALINK,
                        state.config.runbook_url
                    ) }
                ] }
            ]
        })
    }

    /// A PagerDuty trigger: the same facts, with `links` to the alert and the
    /// runbook and `custom_details` for PagerDuty's own views and rules.
    pub fn pagerduty_trigger(
        &self,
        state: &AppState,
        routing_key_env: &str,
        tier: &str,
        purpose: &str,
        reason: &str,
    ) -> Value {
        let severity = match self.band {
            Some(RiskBand::Breached) | Some(RiskBand::High) => "critical",
            Some(RiskBand::Medium) => "error",
            _ => "warning",
        };
        let rfc = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
        let summary: String = format!(
            "{}: {} (tenant {}): {}",
            self.headline, self.asset, self.tenant, self.severity
        )
        .chars()
        .take(1024)
        .collect();
        json!({
            "routing_key_env": routing_key_env,
            "event_action": "trigger",
            "dedup_key": format!("servo-sla-bot-{}", self.alert_id),
            "_permalink": self.link_spec(),
            "client": "servo-sla-bot",
            "client_url": crate::outbox::PERMALINK,
            "links": [
                { "href": crate::outbox::PERMALINK, "text": "Slack alert" },
                { "href": state.config.runbook_url, "text": "Runbook: backfill SLA risk" }
            ],
            "payload": {
                "summary": summary,
                "source": format!("servo-sla-bot/{}", self.tenant),
                "severity": severity,
                "component": self.asset,
                "group": self.tenant,
                "class": "backfill_sla_risk",
                "custom_details": {
                    "tenant": self.tenant,
                    "job_id": self.job_id,
                    "asset": self.asset,
                    "band": self.band.map(|b| b.as_str()).unwrap_or("unknown"),
                    "eta": rfc(self.eta),
                    "deadline": rfc(self.deadline),
                    "severity": self.severity,
                    "severity_ratio": self.severity_ratio,
                    "tier": tier,
                    "tier_purpose": purpose,
                    "reason": reason,
                }
            }
        })
    }
}

/// Stable per alert: PagerDuty folds every trigger of one alert into one incident.
pub fn pd_dedup_key(alert: &Alert) -> String {
    format!("servo-sla-bot-{}", alert.id)
}

/// The events that mirror an acknowledgement or resolution to PagerDuty,
/// one per routing key.
fn mirror_to_pagerduty(
    state: &AppState,
    alert: &Alert,
    action: &str,
    epoch: i64,
) -> Vec<NewOutboxMessage> {
    state
        .config
        .escalation
        .tiers
        .iter()
        .enumerate()
        .filter_map(|(i, tier)| {
            let env = tier.pagerduty_routing_key_env.as_ref()?;
            let event = json!({ "routing_key_env": env, "event_action": action, "dedup_key": pd_dedup_key(alert) });
            Some(NewOutboxMessage::call(
                PAGERDUTY,
                event,
                format!("pd:{}:{epoch}:{action}:{i}", alert.id),
            ))
        })
        .collect()
}

/// Someone acknowledged: the escalation stops (PagerDuty too), its steps
/// cancelled in the same transaction.
pub async fn acknowledged(state: &AppState, alert: &Alert) -> anyhow::Result<()> {
    end(state, alert, "acknowledged", None).await
}

/// The alert resolved: everything stops and the PagerDuty incident resolves.
pub async fn stop(state: &AppState, alert: &Alert, why: &str) -> anyhow::Result<()> {
    end(state, alert, "stopped", Some(why)).await
}

/// Ends the escalation (`acknowledged` or `stopped`): its pending steps are
/// cancelled, PagerDuty hears of it, and a stop is audited, in one commit.
async fn end(state: &AppState, alert: &Alert, to: &str, why: Option<&str>) -> anyhow::Result<()> {
    let mut cancel = Effects::new();
    cancel.cancel(&alert.id, Some(STEP_TIMER));
    let ended = state
        .store
        .end_escalation_with(&alert.id, to, state.clock.now(), &cancel, |esc| {
            let mut effects = Effects::new();
            if esc.pd_triggered == 1 {
                let action = if to == "acknowledged" {
                    "acknowledge"
                } else {
                    "resolve"
                };
                effects.outbox = mirror_to_pagerduty(state, alert, action, esc.epoch);
            }
            if let Some(why) = why {
                effects.record(audit_entry(
                    state,
                    alert,
                    "bot",
                    "escalation_stop",
                    "ok",
                    json!({ "why": why }),
                ));
            }
            effects
        })
        .await?;
    if ended.is_some() {
        state.wake_outbox();
    }
    Ok(())
}

/// Pages the next tier at once (the **Escalate now** button, or risk rising
/// quickly). Starts at the first tier when nothing is active. The caller
/// re-renders the alert ([`refresh_buttons`]) unless it is about to anyway.
pub async fn escalate_next(
    state: &AppState,
    alert: &Alert,
    reason: &str,
) -> anyhow::Result<String> {
    let now = state.clock.now();
    let Some(esc) = state
        .store
        .get_escalation(&alert.id)
        .await?
        .filter(|e| e.status == "active")
    else {
        start(state, alert, 0, reason).await?;
        return Ok(match state.config.escalation.tiers.first() {
            Some(t) => format!(
                "Escalation started: paged *{}* ({}).",
                escape_slack(&t.name),
                tier_names(state, t).await
            ),
            None => "No escalation tier is configured.".into(),
        });
    };
    if esc.tier < 0 {
        return Ok(
            "Every tier has been paged already; the path ends when its last wait runs out.".into(),
        );
    }
    // The pending step (the next tier, due later) is brought forward to now:
    // cancelled and scheduled again in one commit, so it is never lost.
    let mut effects = Effects::new();
    effects
        .cancel(&alert.id, Some(STEP_TIMER))
        .schedule(step_timer(
            &alert.id,
            esc.epoch,
            esc.tier as usize,
            esc.round as u32,
            now,
            &format!(":now:{}", uuid::Uuid::new_v4().simple()),
        ));
    state.commit(&effects).await?;
    run_now(
        state,
        &alert.id,
        esc.epoch,
        esc.tier as usize,
        esc.round as u32,
    )
    .await;
    Ok(match state.config.escalation.tiers.get(esc.tier as usize) {
        Some(t) => format!(
            "Paged *{}* now ({}).",
            escape_slack(&t.name),
            tier_names(state, t).await
        ),
        None => "Paged the next tier now.".into(),
    })
}

/// Called for every at-risk assessment of an open alert: starts paging when
/// the band reaches the tier's threshold or the deadline passes, re-arms after
/// an acknowledgement when the band gets worse, and moves up a tier when
/// severity rises quickly.
pub async fn on_assessment(
    state: &AppState,
    alert: &Alert,
    job: &Job,
    a: &Assessment,
    previous: Option<RiskBand>,
) -> anyhow::Result<()> {
    let cfg = &state.config.escalation;
    let now = state.clock.now();
    if let Some(sev) = a.severity.filter(|s| s.is_finite()) {
        state.store.record_severity(&alert.id, now, sev).await?;
    }
    let esc = state.store.get_escalation(&alert.id).await?;
    let active = esc.as_ref().is_some_and(|e| e.status == "active");
    let worse = previous.is_some_and(|p| a.band > p);
    if alert.acked_by.is_some() {
        if worse && cfg.rearm_on_worse {
            state.store.clear_acknowledgement(&alert.id).await?;
            let mut fresh = alert.clone();
            fresh.acked_by = None;
            let reason = format!("risk rose to {} after the acknowledgement", a.band.label());
            crate::flows::alerts::reply_in_thread(
                state,
                alert,
                format!("esc:{}:rearm:{}", alert.id, alert.version),
                &format!(":warning: Risk rose from {} to {} after the acknowledgement: the escalation re-arms.", previous.map(|p| p.label()).unwrap_or("?"), a.band.label()),
            )
            .await?;
            start(state, &fresh, 0, &reason).await?;
        }
        return Ok(());
    }
    if !active
        && !esc
            .as_ref()
            .is_some_and(|e| e.status == "stopped" && e.tier < 0)
        && pages_at(state, a.tier, a.band)
    {
        let reason = if a.band == RiskBand::Breached {
            format!("{} breached its deadline", escape_slack(&job.asset_name))
        } else {
            format!(
                "{} reached {} ({} tier pages from {})",
                escape_slack(&job.asset_name),
                a.band.label(),
                a.tier.label(),
                cfg.start_at[tier_index(a.tier)].label()
            )
        };
        start(state, alert, 0, &reason).await?;
        return Ok(());
    }
    if active {
        if let Some(sev) = a.severity.filter(|s| s.is_finite()) {
            let window = chrono::Duration::from_std(cfg.rise_within).unwrap_or_default();
            let since = now - window;
            let recently_bumped = esc
                .as_ref()
                .and_then(|e| e.bumped_at_ms)
                .is_some_and(|b| b >= since.timestamp_millis());
            if let Some(min) = state.store.min_severity_since(&alert.id, since).await? {
                if sev - min >= cfg.rise_by && !recently_bumped {
                    state.store.mark_escalation_bumped(&alert.id, now).await?;
                    crate::flows::alerts::reply_in_thread(
                        state,
                        alert,
                        format!("esc:{}:rise:{}", alert.id, now.timestamp()),
                        &format!(":chart_with_upwards_trend: Risk rose quickly (severity +{:.0} points within {} min): moving up a tier.", (sev - min) * 100.0, window.num_minutes()),
                    )
                    .await?;
                    escalate_next(state, alert, "risk rose quickly").await?;
                }
            }
        }
    }
    Ok(())
}

/// Operators of the alert's tenant, and everyone on the escalation path,
/// may acknowledge and escalate.
pub async fn may_respond(state: &AppState, alert: &Alert, user: &str) -> bool {
    let Some(tenant) = state.config.tenant(&alert.tenant_id) else {
        return false;
    };
    let mut people = tenant.operators.clone();
    for t in &state.config.escalation.tiers {
        people.extend(t.notify.iter().cloned());
    }
    state
        .directory
        .is_among(user, &people)
        .await
        .unwrap_or(false)
}
