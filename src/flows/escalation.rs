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
//!
//! Each path (epoch) is one PagerDuty incident ([`pd_dedup_key`]): an
//! acknowledgement acknowledges it, the alert's resolution resolves it, and
//! a path that starts again (a re-arm after a worse band, a restart after
//! the path ran out) resolves the one before and triggers under a key of its
//! own. Every page is recorded (`escalation_pages`): **Escalate now** carries
//! the position it pages ([`EscalateButton`]), and a click on a position
//! already paged says by whom and when, and pages nobody ([`escalate_now`]).

use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::domain::text::duration_words;
use crate::domain::text::escape_slack;
use crate::flows::ids::STEP_TIMER;
use crate::flows::paging::cancel_steps;
use crate::flows::paging::next_position;
use crate::flows::paging::step_timer;
use crate::flows::paging::{
    escalate_now_pages, escalate_now_target, pages_at, pd_dedup_key, tier_index, tier_label,
    tier_names, Position,
};
use crate::pagerduty::OUTBOX_METHOD as PAGERDUTY;
use crate::servo::Job;
use crate::store::{
    Alert, Effects, EscalationMove, EscalationStart, NewOutboxMessage, NewTimer, Timer, TimerFired,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::flows::ids::BUTTONS_TIMER;
use crate::flows::thread::audit_entry;

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
    begin(state, alert, tier, reason, Begin::default()).await
}

/// What conditions a start of paging, and what it says and records besides.
#[derive(Default)]
struct Begin<'a> {
    /// Only when the escalation is still at this epoch (0: none yet): a
    /// click acts on the path as its button showed it.
    after_epoch: Option<i64>,
    /// A re-arm: this person's acknowledgement is cleared with the start.
    rearm_from: Option<&'a str>,
    /// A note in the thread ahead of the plan (why it re-arms).
    note: Option<NewOutboxMessage>,
    /// Who clicked **Escalate now** to start it: the first page is theirs.
    by: Option<&'a str>,
}

async fn begin(
    state: &AppState,
    alert: &Alert,
    tier: usize,
    reason: &str,
    how: Begin<'_>,
) -> anyhow::Result<bool> {
    let path = state.config.escalation_for(&alert.tenant_id);
    let tiers = &path.tiers;
    if tiers.is_empty() {
        return Ok(false);
    }
    let tier = tier.min(tiers.len() - 1);
    let now = state.clock.now();
    if how.after_epoch.is_none()
        && state
            .store
            .get_escalation(&alert.id)
            .await?
            .is_some_and(|e| e.status == "active")
    {
        return Ok(false);
    }
    // Silences, maintenance and paging hours (issue 35); a person's click
    // pages regardless.
    if how.by.is_none() && !crate::flows::quiet_hold::gate(state, alert).await? {
        // A re-arm is decided though paging is held: the acknowledgement no
        // longer stands (with its note and audit entry, in one commit), so
        // the hold's end pages again.
        if let Some(user) = how.rearm_from {
            let mut effects = Effects::new();
            if let Some(note) = how.note {
                effects.send(note);
            }
            effects.record(crate::flows::thread::audit_entry(
                state,
                alert,
                "bot",
                "escalation_rearm_held",
                "ok",
                json!({ "acknowledged_by": user, "reason": reason }),
            ));
            if state
                .store
                .clear_acknowledgement_with(&alert.id, user, effects, now)
                .await?
            {
                state.wake_outbox();
                if let Err(e) = crate::flows::alert_view::refresh(state, &alert.id).await {
                    tracing::warn!(error = %e, "could not refresh the alert after clearing its acknowledgement");
                }
            }
        }
        return Ok(false);
    }
    // The plan: who is paged when, if nobody acknowledges. People are named
    // in plain text: a mention would notify later tiers before their turn.
    let mut lines = Vec::new();
    let mut at = now;
    let (mut t, mut r) = (tier, 0u32);
    loop {
        // Who is on call when the step comes: a handoff shows in the plan.
        let step = &crate::flows::oncall::resolve_tier(state, &tiers[t], at).await;
        lines.push(format!(
            "• {} *{}*{} ({}): {}",
            date_token(at),
            escape_slack(&step.name),
            if r > 0 {
                format!(" (round {})", r + 1)
            } else {
                String::new()
            },
            tier_names(&state.directory, step).await,
            escape_slack(&step.purpose),
        ));
        at += chrono::Duration::from_std(step.ack_timeout).unwrap_or_default();
        match next_position(path, t, r) {
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
    // commit together (with a re-arm's note and its acknowledgement
    // cleared), and the incident of the path it replaces is resolved in
    // PagerDuty: a new path is a new incident.
    let plan = crate::flows::thread::thread_message(state, alert, String::new(), &text)?;
    let start = EscalationStart {
        alert_id: &alert.id,
        tenant: &alert.tenant_id,
        tier: tier as i64,
        reason,
        after_epoch: how.after_epoch,
        rearm_from: how.rearm_from,
    };
    let note = how.note;
    let Some(esc) = state
        .store
        .start_escalation_then(&start, now, |previous, esc| {
            let mut plan = plan;
            plan.dedup_key = Some(format!("esc:{}:{}:plan", alert.id, esc.epoch));
            let mut effects = Effects::new();
            if let Some(note) = note {
                effects.send(note);
            }
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
            if let Some(previous) = previous.filter(|p| p.epoch < esc.epoch) {
                effects
                    .outbox
                    .extend(mirror_to_pagerduty(state, alert, previous, "resolve"));
            }
            effects
        })
        .await?
    else {
        return Ok(false);
    };
    state.wake_outbox();
    // Page the first tier now rather than on the timer worker's next round.
    let from = match how.by {
        Some(user) => StepFrom::Now {
            by: Some(user),
            why: reason,
        },
        None => StepFrom::Start,
    };
    run_now(state, &alert.id, esc.epoch, tier, 0, from).await;
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
async fn run_now(
    state: &AppState,
    alert_id: &str,
    epoch: i64,
    tier: usize,
    round: u32,
    from: StepFrom<'_>,
) {
    let payload = json!({ "epoch": epoch, "tier": tier, "round": round });
    if let Err(e) = step_at(state, alert_id, &payload, from).await {
        tracing::error!(error = %e, "escalation step failed; the timer worker retries it");
    }
}

/// A step is due: page the tier if the escalation is still there, move on,
/// and let the alert's **Escalate now** name the next (a [`BUTTONS_TIMER`]
/// the step commits with its pages).
pub async fn step(state: &AppState, alert_id: &str, payload: &Value) -> anyhow::Result<()> {
    if let Some(rollup) = crate::flows::group_paging::rollup_of_subject(alert_id) {
        crate::flows::group_paging::fire_step(state, rollup, payload, None).await?;
        return Ok(());
    }
    due_step(state, alert_id, payload, StepFrom::Due).await?;
    Ok(())
}

/// The timer worker's step: as [`step`], and a step that pages marks its
/// claimed `timer` fired in its own transaction. True when it did, so the
/// worker does not mark it again.
pub async fn fire_step(state: &AppState, timer: &Timer, worker: &str) -> anyhow::Result<bool> {
    if let Some(rollup) = crate::flows::group_paging::rollup_of_subject(&timer.subject_id) {
        let claimed = Some((timer, worker));
        return crate::flows::group_paging::fire_step(state, rollup, &timer.payload, claimed).await;
    }
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
    /// Brought forward: **Escalate now** (`by` the person who clicked), or
    /// the bot moving up a tier (`why`). The pending step is cancelled in
    /// the page's own commit.
    Now { by: Option<&'a str>, why: &'a str },
}

impl StepFrom<'_> {
    /// How the page is recorded (`escalation_pages.how`), by whom, and why.
    fn recorded(&self) -> (&str, Option<&str>, Option<&str>) {
        match *self {
            StepFrom::Start => ("start", None, None),
            StepFrom::Due | StepFrom::Timer { .. } => ("step", None, None),
            StepFrom::Now { by: Some(by), .. } => ("escalate_now", Some(by), None),
            StepFrom::Now { by: None, why } => ("bot", None, Some(why)),
        }
    }
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
    let path = state.config.escalation_for(&alert.tenant_id);
    if alert.acked_by.is_some() {
        // Acknowledged as the path started (the acknowledgement found no
        // escalation to end): it ends as an acknowledgement ends it.
        end_acknowledged(state, &alert, epoch).await?;
        return Ok(Stepped::Nothing);
    }
    if !matches!(from, StepFrom::Now { by: Some(_), .. })
        && !crate::flows::quiet_hold::gate(state, &alert).await?
    {
        return Ok(Stepped::Nothing); // held: stopped, to start again when it may page
    }
    if tier >= path.tiers.len() {
        // Stored before a config change took tiers away: the path, as now
        // configured, ends before this step.
        tracing::warn!(
            alert = alert_id,
            tier,
            tiers = path.tiers.len(),
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
    let ack_timeout = path.tiers[tier].ack_timeout;
    let due = now + chrono::Duration::from_std(ack_timeout).unwrap_or_default();
    // After the last tier, a step that says the path is exhausted.
    let (to_tier, to_round, next) = match next_position(path, tier, round) {
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
    if let StepFrom::Now { by, .. } = from {
        // The step that was waiting goes: this one replaces it.
        effects.cancel(alert_id, Some(STEP_TIMER));
        if let Some(user) = by {
            effects.record(audit_entry(
                state,
                &alert,
                user,
                "escalate_now",
                "ok",
                json!({ "tier": path.tiers[tier].name, "epoch": epoch, "round": round }),
            ));
        }
    }
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
    let (how, by, why) = from.recorded();
    let moved = state
        .store
        .page_escalation_with(
            &EscalationMove {
                alert_id,
                epoch,
                from: (tier as i64, round as i64),
                to: (to_tier, to_round),
                pd_key: page.pd_key.as_deref(),
                how,
                by,
                reason: why,
            },
            &effects,
            now,
        )
        .await?;
    if moved {
        state.wake_outbox();
        crate::flows::home_refresh::touch(state, &alert.tenant_id).await;
        state.metrics.inc(
            "servo_sla_bot_pages_total",
            &[("tier", &path.tiers[tier].name)],
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
    if let Err(e) = crate::flows::alert_view::refresh(state, alert_id).await {
        tracing::warn!(error = %e, "could not refresh the alert's buttons after the escalation moved");
    }
}

/// The end of the path with nobody acknowledging.
pub async fn exhausted(state: &AppState, alert_id: &str, payload: &Value) -> anyhow::Result<()> {
    if let Some(rollup) = crate::flows::group_paging::rollup_of_subject(alert_id) {
        crate::flows::group_paging::fire_step(state, rollup, payload, None).await?;
        return Ok(());
    }
    let epoch = payload.get("epoch").and_then(Value::as_i64).unwrap_or(-1);
    let Some(esc) = state.store.get_escalation(alert_id).await? else {
        return Ok(());
    };
    // Past the end, or (after a config change took tiers away) at a tier
    // that no longer exists.
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(());
    };
    let tiers = state.config.escalation_for(&alert.tenant_id).tiers.len();
    let beyond = esc.tier < 0 || esc.tier as usize >= tiers;
    if esc.status != "active" || esc.epoch != epoch || !beyond {
        return Ok(());
    }
    end_exhausted(state, &alert, epoch).await?;
    refresh_buttons(state, alert_id).await;
    Ok(())
}

/// Ends an escalation that ran out of tiers, once, saying so in the thread.
async fn end_exhausted(state: &AppState, alert: &Alert, epoch: i64) -> anyhow::Result<()> {
    let note = crate::flows::thread::thread_message(
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
    // The people on call now: after a handoff, the new person.
    let path = state.config.escalation_for(&alert.tenant_id);
    let now = state.clock.now();
    let (tier, people) = crate::flows::oncall::paged(state, &path.tiers[tier_idx], now).await?;
    let tier = &tier;
    let key = format!("page:{}:{epoch}:{round}:{tier_idx}", alert.id);
    let facts = PageFacts::of(state, alert);
    let next = match next_position(path, tier_idx, round) {
        Some((nt, _)) => {
            let then = now + chrono::Duration::from_std(tier.ack_timeout).unwrap_or_default();
            let t = &crate::flows::oncall::resolve_tier(state, &path.tiers[nt], then).await;
            format!(
                "If nobody acknowledges within {}, I page *{}* ({}).",
                duration_words(chrono::Duration::from_std(tier.ack_timeout).unwrap_or_default()),
                escape_slack(&t.name),
                tier_names(&state.directory, t).await
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
        crate::flows::ids::ACK_ACTION,
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
    // A PagerDuty schedule that could not be asked: the last people known
    // are paged, and the thread says so.
    let thread = if crate::flows::pd_schedules::stale(state, &path.tiers[tier_idx], now) {
        format!(
            "{thread}\n:warning: PagerDuty could not be asked who is on call for {}; I paged the last people it named.",
            path.tiers[tier_idx]
                .pagerduty_schedules
                .iter()
                .map(|s| format!("schedule `{}`", escape_slack(s)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        thread
    };
    messages.push(crate::flows::thread::thread_message(
        state,
        alert,
        format!("{key}:thread"),
        &thread,
    )?);
    // Each path (epoch) is an incident of its own: PagerDuty ignores new
    // triggers under an acknowledged incident's key.
    let pd_key = tier
        .pagerduty_routing_key_env
        .as_ref()
        .map(|_| pd_dedup_key(&alert.id, epoch));
    if let (Some(env), Some(dedup)) = (&tier.pagerduty_routing_key_env, &pd_key) {
        let mut event = facts.pagerduty_trigger(state, env, &tier.name, &tier.purpose, reason);
        event["dedup_key"] = dedup.as_str().into();
        messages.push(NewOutboxMessage::call(
            PAGERDUTY,
            event,
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
    Ok(Page { effects, pd_key })
}

/// A tier's page, decided: what it sends and records, and the PagerDuty key
/// it triggers under, if it does. The step commits it with the escalation's
/// move.
struct Page {
    effects: Effects,
    pd_key: Option<String>,
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
    /// The alert's *Downstream impact* (issue 37), Slack markup.
    downstream: Vec<String>,
}

impl PageFacts {
    pub fn of(state: &AppState, alert: &Alert) -> PageFacts {
        let view = alert
            .shown
            .clone()
            .and_then(|v| serde_json::from_value::<crate::flows::alert_view::AlertView>(v).ok());
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
            severity: crate::flows::alert_view::severity_text(
                alert.eta,
                alert.deadline,
                state.clock.now(),
                alert.severity,
            ),
            severity_ratio: alert.severity,
            eta: alert.eta,
            deadline: alert.deadline,
            // While Servo's lineage cannot be read, the page says so under
            // the impact last read, as the alert does.
            downstream: view
                .as_ref()
                .map(|v| {
                    v.downstream
                        .iter()
                        .chain(&v.lineage_unread)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            bottlenecks: view.map(|v| v.bottlenecks).unwrap_or_default(),
        }
    }

    /// The alert's link, resolved by the outbox when the page is sent (the
    /// alert's own post may still be on its way): `chat.getPermalink`.
    fn link_spec(&self) -> Value {
        crate::store::permalink_spec(&self.alert_id, &self.channel)
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
        let downstream = if self.downstream.is_empty() {
            String::new()
        } else {
            format!(
                "*Downstream impact*\n{}",
                crate::slack::limits::join_capped(
                    &self
                        .downstream
                        .iter()
                        .map(|l| format!("• {l}"))
                        .collect::<Vec<_>>(),
                    "\n",
                    1_500,
                    |n| format!("…and {n} more"),
                )
            )
        };
        let mut message = json!({
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
                        crate::store::PERMALINK,
                        state.config.runbook_url
                    ) }
                ] }
            ]
        });
        if !downstream.is_empty() {
            if let Some(blocks) = message["blocks"].as_array_mut() {
                blocks.insert(
                    3,
                    json!({ "type": "section", "text": { "type": "mrkdwn", "text": downstream } }),
                );
            }
        }
        message
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
            "client_url": crate::store::PERMALINK,
            "links": [
                { "href": crate::store::PERMALINK, "text": "Slack alert" },
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
                    "downstream": self
                        .downstream
                        .iter()
                        .map(|l| crate::domain::lineage::plain(l))
                        .collect::<Vec<_>>(),
                }
            }
        })
    }
}

/// The events that mirror an acknowledgement or resolution of a path to
/// PagerDuty, one per routing key, under the key the path triggered under;
/// none when it triggered nothing.
fn mirror_to_pagerduty(
    state: &AppState,
    alert: &Alert,
    esc: &crate::store::EscalationRow,
    action: &str,
) -> Vec<NewOutboxMessage> {
    if esc.pd_triggered != 1 {
        return Vec::new();
    }
    // A row from before keys were recorded triggered under the alert's own.
    let key = esc
        .pd_dedup_key
        .clone()
        .unwrap_or_else(|| pd_dedup_key(&alert.id, 1));
    let tiers = &state.config.escalation_for(&alert.tenant_id).tiers;
    tiers
        .iter()
        .enumerate()
        .filter_map(|(i, tier)| {
            let env = tier.pagerduty_routing_key_env.as_ref()?;
            // One event per routing key, however many tiers share it.
            if tiers[..i]
                .iter()
                .any(|t| t.pagerduty_routing_key_env.as_ref() == Some(env))
            {
                return None;
            }
            let event = json!({ "routing_key_env": env, "event_action": action, "dedup_key": key });
            Some(NewOutboxMessage::call(
                PAGERDUTY,
                event,
                format!("pd:{}:{}:{action}:{i}", alert.id, esc.epoch),
            ))
        })
        .collect()
}

/// What ending a path by an acknowledgement sends: PagerDuty's acknowledge
/// of its incident. The acknowledgement commits it with the alert's
/// acknowledged state ([`crate::flows::acknowledge`]); a step that finds
/// the alert acknowledged commits the same.
pub(crate) fn acknowledged_effects(
    state: &AppState,
    alert: &Alert,
    esc: &crate::store::EscalationRow,
) -> Vec<NewOutboxMessage> {
    mirror_to_pagerduty(state, alert, esc, "acknowledge")
}

/// A step found the alert acknowledged with its path still active (the
/// acknowledgement came as the path started, and found nothing to end): the
/// path ends as the acknowledgement ends it, its steps cancelled and
/// PagerDuty told, and the thread says why it stopped.
async fn end_acknowledged(state: &AppState, alert: &Alert, epoch: i64) -> anyhow::Result<()> {
    let by = alert.acked_by.clone().unwrap_or_default();
    let note = crate::flows::thread::thread_message(
        state,
        alert,
        format!("esc:{}:{epoch}:acknowledged", alert.id),
        &format!(
            ":white_check_mark: The escalation stopped: <@{by}> acknowledged the alert {}.",
            alert.acked_at.map(date_token).unwrap_or_default()
        ),
    )?;
    let ended = state
        .store
        .end_escalation_with(
            &alert.id,
            "acknowledged",
            state.clock.now(),
            &cancel_steps(&alert.id),
            |esc| {
                let mut effects = Effects::new();
                effects.outbox = acknowledged_effects(state, alert, esc);
                effects.send(note).record(audit_entry(
                    state,
                    alert,
                    "bot",
                    "escalation_stop",
                    "ok",
                    json!({ "why": "acknowledged", "by": by, "epoch": esc.epoch }),
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

/// The alert resolved: everything stops and the PagerDuty incident resolves
/// (the path's, and any scaling request's, should the resolution's own
/// commit have missed one made at the same moment).
pub async fn stop(state: &AppState, alert: &Alert, why: &str) -> anyhow::Result<()> {
    let mut before = cancel_steps(&alert.id);
    before.outbox = crate::flows::paging::resolve_events(state, alert).await?;
    let ended = state
        .store
        .end_escalation_with(&alert.id, "stopped", state.clock.now(), &before, |esc| {
            let mut effects = Effects::new();
            effects.outbox = mirror_to_pagerduty(state, alert, esc, "resolve");
            effects.record(audit_entry(
                state,
                alert,
                "bot",
                "escalation_stop",
                "ok",
                json!({ "why": why }),
            ));
            effects
        })
        .await?;
    if ended.is_some() || before.sends() {
        state.wake_outbox();
    }
    Ok(())
}

/// Pages the next tier at once, when the bot moves up a tier (risk rising
/// quickly, several high-priority jobs at risk). Starts at the first tier
/// when nothing is active. The caller re-renders the alert
/// ([`refresh_buttons`]) unless it is about to anyway.
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
        let path = crate::flows::oncall::path(state, &alert.tenant_id, now).await;
        return Ok(match path.tiers.first() {
            Some(t) => format!(
                "Escalation started: paged *{}* ({}).",
                escape_slack(&t.name),
                tier_names(&state.directory, t).await
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
    // cancelled and scheduled again in one commit, so it is never lost; the
    // page then cancels it in its own commit.
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
        StepFrom::Now {
            by: None,
            why: reason,
        },
    )
    .await;
    let path = crate::flows::oncall::path(state, &alert.tenant_id, now).await;
    Ok(match path.tiers.get(esc.tier as usize) {
        Some(t) => format!(
            "Paged *{}* now ({}).",
            escape_slack(&t.name),
            tier_names(&state.directory, t).await
        ),
        None => "Paged the next tier now.".into(),
    })
}

/// How long after the path moved a button that does not say which tier it
/// pages (rendered before buttons said) pages nobody: the click may have
/// been meant for the tier before.
pub const UNTARGETED_QUIET: chrono::Duration = chrono::Duration::minutes(2);

/// **Escalate now**, clicked by `user` (an operator or someone on the path,
/// checked by the caller) on a button that pages `target`: pages that tier
/// if the path still stands there, or starts the path there if it was
/// not running, in one commit with its audit entry. A button whose tier was
/// already paged says by whom and when, and pages nobody; one whose path
/// moved otherwise (acknowledged, restarted) says so, and pages nobody.
/// A button with no target (rendered before buttons had one) pages where
/// the path stands, unless it moved within [`UNTARGETED_QUIET`]. Returns
/// what to tell the clicker.
pub async fn escalate_now(
    state: &AppState,
    alert: &Alert,
    user: &str,
    target: Option<Position>,
) -> anyhow::Result<String> {
    let now = state.clock.now();
    let esc = state.store.get_escalation(&alert.id).await?;
    let path = crate::flows::oncall::path(state, &alert.tenant_id, now).await;
    let current = escalate_now_target(&path, esc.as_ref());
    let target = match target {
        Some(t) => t,
        None => {
            if let Some(e) = esc
                .as_ref()
                .filter(|e| e.updated_at_ms >= (now - UNTARGETED_QUIET).timestamp_millis())
            {
                return untargeted_refused(state, alert, user, e).await;
            }
            current
        }
    };
    if target != current {
        return stale(state, alert, user, target).await;
    }
    let name = |t: i64| path.tiers.get(t.max(0) as usize).cloned();
    if target.tier < 0 {
        crate::flows::thread::audit(
            state,
            alert,
            user,
            "escalate_now",
            "refused: every tier paged",
            json!({ "epoch": target.epoch }),
        )
        .await;
        return Ok(
            "Every tier has been paged already; the path ends when its last wait runs out. Nobody was paged now."
                .into(),
        );
    }
    let Some(tier) = name(target.tier) else {
        return Ok("No escalation tier is configured.".into());
    };
    let active = esc.as_ref().is_some_and(|e| e.status == "active");
    if !active {
        let by = state.directory.user_name(user).await;
        let started = begin(
            state,
            alert,
            0,
            &format!("{by} escalated by hand"),
            Begin {
                after_epoch: Some(target.epoch - 1),
                by: Some(user),
                ..Begin::default()
            },
        )
        .await?;
        if !started {
            return stale(state, alert, user, target).await;
        }
        return Ok(format!(
            "Escalation started: paged {}.",
            tier_label(&state.directory, &tier).await
        ));
    }
    let payload = json!({ "epoch": target.epoch, "tier": target.tier, "round": target.round });
    let from = StepFrom::Now {
        by: Some(user),
        why: "",
    };
    match step_at(state, &alert.id, &payload, from).await? {
        Stepped::Paged => Ok(format!(
            "Paged *{}* now ({}).",
            escape_slack(&tier.name),
            tier_names(&state.directory, &tier).await
        )),
        Stepped::Ended => {
            refresh_buttons(state, &alert.id).await;
            Ok("The path as now configured has no tier left to page; it ended.".into())
        }
        Stepped::Nothing => stale(state, alert, user, target).await,
    }
}

/// How a page came about, in words ("by Ada with Escalate now").
async fn paged_how(state: &AppState, page: &crate::store::EscalationPage) -> String {
    match (page.how.as_str(), &page.paged_by) {
        ("escalate_now", Some(by)) => {
            format!(
                "by {} with Escalate now",
                state.directory.user_name(by).await
            )
        }
        ("start", _) => "when the escalation started".into(),
        ("step", _) => "by the path, when the tier before had not acknowledged in time".into(),
        _ => format!(
            "by the bot ({})",
            page.reason.as_deref().unwrap_or("moving up a tier")
        ),
    }
}

/// What **Escalate now** pages next, in a sentence.
async fn next_sentence(state: &AppState, alert: &Alert) -> anyhow::Result<String> {
    let esc = state.store.get_escalation(&alert.id).await?;
    let path = crate::flows::oncall::path(state, &alert.tenant_id, state.clock.now()).await;
    Ok(
        match escalate_now_pages(&path, &state.directory, esc.as_ref()).await {
            Some(who) => format!("Escalate now pages {who} next."),
            None => "Every tier has been paged; the path ends when its last wait runs out.".into(),
        },
    )
}

/// A click on a button whose tier is no longer next: if that tier was paged,
/// by whom and when; else what became of the path. Nobody is paged; the
/// alert's buttons are re-rendered (they may not show the change yet).
async fn stale(
    state: &AppState,
    alert: &Alert,
    user: &str,
    target: Position,
) -> anyhow::Result<String> {
    let path = crate::flows::oncall::path(state, &alert.tenant_id, state.clock.now()).await;
    let tiers = &path.tiers;
    let page = match tiers.get(target.tier.max(0) as usize) {
        Some(_) if target.tier >= 0 => {
            state
                .store
                .escalation_page(&alert.id, target.epoch, target.round, target.tier)
                .await?
        }
        _ => None,
    };
    let detail = json!({ "epoch": target.epoch, "round": target.round, "tier": target.tier });
    let text = match page {
        Some(page) => {
            let tier = &tiers[target.tier as usize];
            crate::flows::thread::audit(
                state,
                alert,
                user,
                "escalate_now",
                &format!("already paged ({})", page.how),
                detail,
            )
            .await;
            format!(
                ":information_source: {} was already paged {} {}. Nobody was paged now. {}",
                tier_label(&state.directory, tier).await,
                ms_token(page.paged_at_ms),
                paged_how(state, &page).await,
                next_sentence(state, alert).await?
            )
        }
        None => {
            let esc = state.store.get_escalation(&alert.id).await?;
            let fresh = state.store.get_alert(&alert.id).await?;
            let what = match (&esc, fresh.as_ref().and_then(|a| a.acked_by.clone())) {
                (_, Some(by)) => format!(
                    "{} acknowledged this alert {}",
                    state.directory.user_name(&by).await,
                    fresh
                        .as_ref()
                        .and_then(|a| a.acked_at)
                        .map(date_token)
                        .unwrap_or_default()
                ),
                (Some(e), None) if e.epoch != target.epoch => {
                    format!("The escalation restarted {}", ms_token(e.started_at_ms))
                }
                (Some(e), None) if e.status != "active" => {
                    format!("The escalation ended {}", ms_token(e.updated_at_ms))
                }
                (Some(e), None) => format!("The escalation moved on {}", ms_token(e.updated_at_ms)),
                (None, None) => "The escalation changed".into(),
            };
            crate::flows::thread::audit(
                state,
                alert,
                user,
                "escalate_now",
                "refused: the path moved",
                detail,
            )
            .await;
            format!(
                ":information_source: {what} since this button was shown. Nobody was paged now. {}",
                next_sentence(state, alert).await?
            )
        }
    };
    refresh_buttons(state, &alert.id).await;
    Ok(text)
}

/// A click on a button that does not say which tier it pages, just after
/// the path moved: which tier the clicker saw is unknown, so nobody is
/// paged, and the answer says what moved.
async fn untargeted_refused(
    state: &AppState,
    alert: &Alert,
    user: &str,
    esc: &crate::store::EscalationRow,
) -> anyhow::Result<String> {
    let last = state.store.latest_escalation_page(&alert.id).await?;
    let path = crate::flows::oncall::path(state, &alert.tenant_id, state.clock.now()).await;
    let moved = match last
        .as_ref()
        .and_then(|p| Some((p, path.tiers.get(p.tier as usize)?)))
    {
        Some((page, tier)) => format!(
            "{} was paged {} {}",
            tier_label(&state.directory, tier).await,
            ms_token(page.paged_at_ms),
            paged_how(state, page).await
        ),
        None => format!("it changed {}", ms_token(esc.updated_at_ms)),
    };
    crate::flows::thread::audit(
        state,
        alert,
        user,
        "escalate_now",
        "refused: the path moved",
        json!({ "epoch": esc.epoch, "untargeted": true }),
    )
    .await;
    refresh_buttons(state, &alert.id).await;
    Ok(format!(
        ":information_source: The escalation just moved: {moved}. This button was shown before and does not say which tier it pages. Nobody was paged now. {}",
        next_sentence(state, alert).await?
    ))
}

/// A stored epoch-millisecond time as a Slack date token.
fn ms_token(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(date_token)
        .unwrap_or_default()
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
    on_assessment_read(state, alert, job, a, previous, None)
        .await
        .map(drop)
}

/// [`on_assessment`], from what the poll read for the tenant's open alerts
/// when `reads` is given (the severity is then kept for the poll's one
/// write). True when it changed the escalation or the alert (a start, a
/// re-arm, a move up a tier): the caller reads the alert afresh.
pub async fn on_assessment_read(
    state: &AppState,
    alert: &Alert,
    job: &Job,
    a: &Assessment,
    previous: Option<RiskBand>,
    reads: Option<&crate::flows::poll_reads::PollReads>,
) -> anyhow::Result<bool> {
    let cfg = state.config.escalation_for(&alert.tenant_id);
    let now = state.clock.now();
    let sev = a.severity.filter(|s| s.is_finite());
    if let Some(sev) = sev {
        match reads {
            Some(r) => r.record_severity(&alert.id, now, sev),
            None => state.store.record_severity(&alert.id, now, sev).await?,
        }
    }
    let esc = match reads {
        Some(r) => r.escalations.get(&alert.id).cloned(),
        None => state.store.get_escalation(&alert.id).await?,
    };
    let active = esc.as_ref().is_some_and(|e| e.status == "active");
    // A storm: its roll-up's one escalation pages for it (issue 35), unless
    // the alert escalates on its own.
    let rollup = match reads {
        Some(r) => r.rollup.is_some(),
        None => state.store.open_rollup(&alert.tenant_id).await?.is_some(),
    };
    if rollup && !active {
        return Ok(false);
    }
    let worse = previous.is_some_and(|p| a.band > p);
    if let Some(acked_by) = alert.acked_by.as_deref() {
        if worse && cfg.rearm_on_worse {
            // One commit: the acknowledgement cleared, the note, the new
            // path (a new PagerDuty incident) and the acknowledged one's
            // incident resolved.
            let mut fresh = alert.clone();
            fresh.acked_by = None;
            let reason = format!("risk rose to {} after the acknowledgement", a.band.label());
            let note = crate::flows::thread::thread_message(
                state,
                alert,
                format!("esc:{}:rearm:{}", alert.id, alert.version),
                &format!(":warning: Risk rose from {} to {} after the acknowledgement: the escalation re-arms.", previous.map(|p| p.label()).unwrap_or("?"), a.band.label()),
            )?;
            begin(
                state,
                &fresh,
                0,
                &reason,
                Begin {
                    rearm_from: Some(acked_by),
                    note: Some(note),
                    ..Begin::default()
                },
            )
            .await?;
            return Ok(true);
        }
        return Ok(false);
    }
    if !active
        && !esc
            .as_ref()
            .is_some_and(|e| e.status == "stopped" && e.tier < 0)
        && crate::flows::paging::pages_for(cfg, a, job)
    {
        let reason = if a.band == RiskBand::Breached {
            format!("{} breached its deadline", escape_slack(&job.asset_name))
        } else if !pages_at(cfg, a.tier, a.band) {
            format!(
                "{} reached {} and would make a scheduled downstream run read stale data \
                 (escalation.start_at_if_downstream is {})",
                escape_slack(&job.asset_name),
                a.band.label(),
                cfg.start_at_if_downstream
                    .map(|b| b.label())
                    .unwrap_or("unset")
            )
        } else {
            format!(
                "{} reached {} ({} tier pages from {})",
                escape_slack(&job.asset_name),
                a.band.label(),
                a.tier.label(),
                cfg.start_at[tier_index(a.tier)].label()
            )
        };
        // Asked about the band it has now (the alert row may show the last).
        let mut now_band = alert.clone();
        now_band.band = a.band;
        start(state, &now_band, 0, &reason).await?;
        return Ok(true);
    }
    if active {
        if let Some(sev) = sev {
            let window = chrono::Duration::from_std(cfg.rise_within).unwrap_or_default();
            let since = now - window;
            let recently_bumped = esc
                .as_ref()
                .and_then(|e| e.bumped_at_ms)
                .is_some_and(|b| b >= since.timestamp_millis());
            let min = match reads {
                Some(r) => Some(r.min_severity_since(&alert.id, sev)),
                None => state.store.min_severity_since(&alert.id, since).await?,
            };
            if let Some(min) = min {
                if sev - min >= cfg.rise_by && !recently_bumped {
                    state.store.mark_escalation_bumped(&alert.id, now).await?;
                    crate::flows::thread::reply_in_thread(
                        state,
                        alert,
                        format!("esc:{}:rise:{}", alert.id, now.timestamp()),
                        &format!(":chart_with_upwards_trend: Risk rose quickly (severity +{:.0} points within {} min): moving up a tier.", (sev - min) * 100.0, window.num_minutes()),
                    )
                    .await?;
                    escalate_next(state, alert, "risk rose quickly").await?;
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Operators of the alert's tenant, and everyone on the escalation path,
/// may acknowledge and escalate.
pub async fn may_respond(state: &AppState, alert: &Alert, user: &str) -> bool {
    let Some(tenant) = state.config.tenant(&alert.tenant_id) else {
        return false;
    };
    // Everyone who is or may be on call for a tier of the path: a person
    // paged before a handoff can still acknowledge after it.
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
