//! Who a page goes to and when: whether a tier pages at a band, the
//! platform tier, a tier's label, what **Escalate now** pages next and the
//! value its button carries, and the PagerDuty keys of a path and of
//! Request scaling. Read by the alert's view and by the escalation alike.

use crate::config::{Escalation, EscalationTier};
use crate::context::AppState;
use crate::domain::risk::{RiskBand, SlaTier};
use crate::domain::text::escape_slack;
use crate::flows::ids::STEP_TIMER;
use crate::pagerduty::OUTBOX_METHOD as PAGERDUTY;
use crate::slack::directory::Directory;
use crate::store::{Effects, NewOutboxMessage, NewTimer};
use chrono::{DateTime, Utc};
use serde_json::json;

pub(crate) fn tier_index(t: SlaTier) -> usize {
    match t {
        SlaTier::Critical => 0,
        SlaTier::Standard => 1,
        SlaTier::BestEffort => 2,
        SlaTier::BelowBestEffort => 3,
    }
}

/// Whether an alert of this SLA tier pages at this band (breach always does).
pub fn pages_at(escalation: &Escalation, tier: SlaTier, band: RiskBand) -> bool {
    band == RiskBand::Breached
        || (band.is_at_risk() && band >= escalation.start_at[tier_index(tier)])
}

/// Whether this job's alert pages now: at its tier's band, or, when
/// `escalation.start_at_if_downstream` is set, from that band as soon as a
/// scheduled downstream run would read stale data (issue 37).
pub fn pages_for(
    escalation: &Escalation,
    a: &crate::domain::assessment::Assessment,
    job: &crate::servo::Job,
) -> bool {
    pages_at(escalation, a.tier, a.band) || pages_for_downstream(escalation, a, job)
}

/// Whether only its downstream impact makes it page now.
pub fn pages_for_downstream(
    escalation: &Escalation,
    a: &crate::domain::assessment::Assessment,
    job: &crate::servo::Job,
) -> bool {
    a.band.is_at_risk()
        && escalation
            .start_at_if_downstream
            .is_some_and(|from| a.band >= from)
        && job.impact.as_ref().is_some_and(|i| i.has_stale_runs())
}

/// The platform tier, which **Request scaling** pages: the second tier of
/// the path (the runbook's platform team lead), or the only one.
pub fn scaling_tier(escalation: &Escalation) -> Option<&EscalationTier> {
    let tiers = &escalation.tiers;
    tiers.get(1).or(tiers.last())
}

/// A tier as a page names it, in plain text: "*Platform Team Lead* (Bo)".
pub async fn tier_label(directory: &Directory, tier: &EscalationTier) -> String {
    format!(
        "*{}* ({})",
        escape_slack(&tier.name),
        tier_names(directory, tier).await
    )
}

/// Who **Escalate now** would page for an alert whose escalation is in this
/// state (`None`: no escalation yet), as [`tier_label`] says it; `None` once
/// every tier has been paged.
pub async fn escalate_now_pages(
    escalation: &Escalation,
    directory: &Directory,
    esc: Option<&crate::store::EscalationRow>,
) -> Option<String> {
    let tiers = &escalation.tiers;
    let next = match esc.filter(|e| e.status == "active") {
        None => tiers.first(),
        Some(e) if e.tier >= 0 => tiers.get(e.tier as usize),
        Some(_) => None,
    }?;
    Some(tier_label(directory, next).await)
}

/// For a new alert about to start paging at the first tier (which is paged
/// at once): who **Escalate now** will page then.
pub async fn escalate_now_pages_after_start(
    escalation: &Escalation,
    directory: &Directory,
) -> Option<String> {
    let (tier, _) = next_position(escalation, 0, 0)?;
    Some(tier_label(directory, escalation.tiers.get(tier)?).await)
}

/// A tier's people as plain text ("Ada, @oncall"): naming them notifies
/// nobody. Only the message that pages a tier mentions its members.
pub async fn tier_names(directory: &Directory, tier: &EscalationTier) -> String {
    directory.names(&tier.notify).await
}

/// The PagerDuty dedup key of an alert's path (its escalation's `epoch`):
/// PagerDuty folds every trigger of one path into one incident. The first
/// path keeps the alert's own key; each later one (a re-arm after an
/// acknowledgement, a restart after the path ran out) is an incident of its
/// own, since PagerDuty ignores new triggers under an acknowledged
/// incident's key.
pub fn pd_dedup_key(alert_id: &str, epoch: i64) -> String {
    if epoch <= 1 {
        format!("servo-sla-bot-{alert_id}")
    } else {
        format!("servo-sla-bot-{alert_id}-{epoch}")
    }
}

/// A position on an alert's path: the tier **Escalate now** pages next, in
/// which round of which path (epoch). Tier -1: every tier has been paged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub epoch: i64,
    pub round: i64,
    pub tier: i64,
}

/// What an **Escalate now** button carries: the alert, and the position it
/// pages (`<alert>:<epoch>:<round>:<tier>`), so that a click pages the tier
/// its confirmation named or nobody. A button rendered before it carried
/// one has the alert's id alone (`target` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalateButton {
    pub alert_id: String,
    pub target: Option<Position>,
}

impl EscalateButton {
    pub fn value(&self) -> String {
        match self.target {
            Some(p) => format!("{}:{}:{}:{}", self.alert_id, p.epoch, p.round, p.tier),
            None => self.alert_id.clone(),
        }
    }

    /// `None` for anything the bot never rendered.
    pub fn parse(value: &str) -> Option<EscalateButton> {
        let parts: Vec<&str> = value.split(':').collect();
        let id = parts.first().copied().unwrap_or_default();
        if id.is_empty()
            || id.len() > 64
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return None;
        }
        let target = match parts[1..] {
            [] => None,
            [epoch, round, tier] => {
                let p = Position {
                    epoch: epoch.parse().ok()?,
                    round: round.parse().ok()?,
                    tier: tier.parse().ok()?,
                };
                if p.epoch < 1 || p.round < 0 || p.tier < -1 {
                    return None;
                }
                Some(p)
            }
            _ => return None,
        };
        Some(EscalateButton {
            alert_id: id.to_string(),
            target,
        })
    }
}

/// Where **Escalate now** stands for an alert whose escalation is in this
/// state: the active path's next position (tier -1 past its last tier), or
/// the first tier of a new path.
pub fn escalate_now_target(
    escalation: &Escalation,
    esc: Option<&crate::store::EscalationRow>,
) -> Position {
    match esc.filter(|e| e.status == "active") {
        Some(e) => Position {
            epoch: e.epoch,
            round: e.round,
            tier: if e.tier >= 0 && (e.tier as usize) < escalation.tiers.len() {
                e.tier
            } else {
                -1
            },
        },
        None => Position {
            epoch: esc.map_or(0, |e| e.epoch) + 1,
            round: 0,
            tier: 0,
        },
    }
}

/// For a new alert about to start paging at the first tier (which is paged
/// at once): the position **Escalate now** pages then.
pub fn escalate_now_target_after_start(escalation: &Escalation) -> Position {
    match next_position(escalation, 0, 0) {
        Some((tier, round)) => Position {
            epoch: 1,
            round: round as i64,
            tier: tier as i64,
        },
        None => Position {
            epoch: 1,
            round: 0,
            tier: -1,
        },
    }
}

/// An **Escalate now** button's value for a new alert about to start paging
/// at the first tier (see [`escalate_now_target_after_start`]).
pub fn escalate_now_value_after_start(escalation: &Escalation, alert_id: &str) -> String {
    EscalateButton {
        alert_id: alert_id.to_string(),
        target: Some(escalate_now_target_after_start(escalation)),
    }
    .value()
}

/// An **Escalate now** button's value for an alert's path in this state.
pub fn escalate_now_value(
    escalation: &Escalation,
    alert_id: &str,
    esc: Option<&crate::store::EscalationRow>,
) -> String {
    EscalateButton {
        alert_id: alert_id.to_string(),
        target: Some(escalate_now_target(escalation, esc)),
    }
    .value()
}

/// PagerDuty's incident for one scaling request: apart from the alert's own.
pub fn scaling_dedup_key(alert_id: &str, count: i64) -> String {
    format!("servo-sla-bot-{alert_id}-scaling-{count}")
}

/// The PagerDuty `resolve` of each of an alert's scaling incidents, for its
/// resolution to commit: a scaling request is an incident of its own, and
/// ends with the alert (acknowledged or not). None when the platform tier
/// has no routing key or nobody asked.
pub async fn resolve_events(
    state: &AppState,
    alert: &crate::store::Alert,
) -> anyhow::Result<Vec<NewOutboxMessage>> {
    let alert_id = alert.id.as_str();
    let Some(env) = scaling_tier(state.config.escalation_for(&alert.tenant_id))
        .and_then(|t| t.pagerduty_routing_key_env.clone())
    else {
        return Ok(Vec::new());
    };
    let Some(last) = state.store.scaling_request(alert_id).await? else {
        return Ok(Vec::new());
    };
    Ok((1..=last.count)
        .map(|n| {
            NewOutboxMessage::call(
                PAGERDUTY,
                json!({ "routing_key_env": env, "event_action": "resolve", "dedup_key": scaling_dedup_key(alert_id, n) }),
                format!("scaling:{alert_id}:{n}:pd-resolve"),
            )
        })
        .collect())
}

/// The position after (tier, round), if the path goes on.
pub(crate) fn next_position(
    escalation: &Escalation,
    tier: usize,
    round: u32,
) -> Option<(usize, u32)> {
    let tiers = escalation.tiers.len();
    if tier + 1 < tiers {
        Some((tier + 1, round))
    } else if round < escalation.repeat {
        Some((0, round + 1))
    } else {
        None
    }
}

/// The cancellation of an alert's pending steps.
pub(crate) fn cancel_steps(alert_id: &str) -> Effects {
    let mut cancel = Effects::new();
    cancel.cancel(alert_id, Some(STEP_TIMER));
    cancel
}

/// The timer for an escalation step of `subject` (an alert, or a roll-up
/// as `rollup:<id>`), keyed so that a step is scheduled once.
pub(crate) fn step_timer(
    subject: &str,
    epoch: i64,
    tier: usize,
    round: u32,
    due: DateTime<Utc>,
    tag: &str,
) -> NewTimer {
    NewTimer {
        kind: STEP_TIMER.into(),
        subject_id: subject.to_string(),
        payload: json!({ "epoch": epoch, "tier": tier, "round": round }),
        due_at: due,
        dedup_key: Some(format!("esc:{subject}:{epoch}:{round}:{tier}{tag}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    #[test]
    fn an_escalate_now_value_names_the_alert_and_the_position_it_pages() {
        let button = EscalateButton {
            alert_id: ALERT.into(),
            target: Some(Position {
                epoch: 3,
                round: 1,
                tier: 2,
            }),
        };
        assert_eq!(button.value(), format!("{ALERT}:3:1:2"));
        assert_eq!(EscalateButton::parse(&button.value()), Some(button));
        let past_the_end = format!("{ALERT}:1:0:-1");
        assert_eq!(
            EscalateButton::parse(&past_the_end).and_then(|b| b.target),
            Some(Position {
                epoch: 1,
                round: 0,
                tier: -1
            })
        );
    }

    #[test]
    fn a_value_of_the_alert_alone_is_a_button_from_before_it_named_a_tier() {
        assert_eq!(
            EscalateButton::parse(ALERT),
            Some(EscalateButton {
                alert_id: ALERT.into(),
                target: None
            })
        );
    }

    #[test]
    fn anything_the_bot_never_rendered_is_refused() {
        for value in [
            String::new(),
            format!("{ALERT}:1:0"),
            format!("{ALERT}:1:0:1:9"),
            format!("{ALERT}:one:0:1"),
            format!("{ALERT}:0:0:1"),
            format!("{ALERT}:1:-1:1"),
            format!("{ALERT}:1:0:-2"),
            format!("{ALERT}:1:0:99999999999999999999"),
            ":1:0:1".into(),
            "<!channel>".into(),
            "a".repeat(2_000),
        ] {
            assert_eq!(EscalateButton::parse(&value), None, "{value}");
        }
    }

    #[test]
    fn the_first_path_keeps_the_alerts_pagerduty_key_and_later_ones_have_their_own() {
        assert_eq!(pd_dedup_key("a1", 1), "servo-sla-bot-a1");
        assert_eq!(pd_dedup_key("a1", 2), "servo-sla-bot-a1-2");
        assert_ne!(pd_dedup_key("a1", 2), pd_dedup_key("a1", 3));
    }
}
