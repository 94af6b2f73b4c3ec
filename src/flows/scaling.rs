//! **Request scaling**: a real page to the platform tier (the runbook's
//! resource scaling decisions), with a cool-down, its **Acknowledge**, and
//! its PagerDuty incidents resolved with the alert. The buttons are
//! [`crate::actions::mitigations`]; what they decide is here.
//!
//! A request commits in one transaction: its row (which starts the
//! cool-down), the DMs, the PagerDuty trigger, the thread note and the audit
//! entry. A stop before the commit leaves nothing (the person is told to try
//! again, and can: the cool-down has not started); after it, everything.

use crate::config::EscalationTier;
use crate::context::AppState;
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::flows::escalation::PageFacts;
use crate::flows::ids::SCALING_ACK_ACTION;
use crate::flows::paging::scaling_dedup_key;
use crate::flows::paging::scaling_tier;
use crate::flows::thread::audit_entry;
use crate::pagerduty::OUTBOX_METHOD as PAGERDUTY;
use crate::store::{Alert, Effects, NewOutboxMessage, ScalingClaim, StoreError};
use chrono::{DateTime, Utc};
use serde_json::json;

/// The runbook's asks of the platform team when a job is at high risk.
const SCALING_ASKS: &str =
    "• Scale up the executors\n• Lower other workloads' resource limits\n• Enable burst capacity";

/// What a request for scaling came to.
#[derive(Debug)]
pub enum Requested {
    /// Paged, as request number `count`; it can be asked again at `again`.
    Paged {
        tier: EscalationTier,
        count: i64,
        again: DateTime<Utc>,
    },
    /// Asked within the cool-down: what to tell the clicker.
    CoolingDown(String),
    /// The alert is resolved: nothing to scale for.
    NotOpen,
    /// No escalation tier is configured to page.
    NoTier,
    /// The tier's people could not be resolved with Slack: nobody paged.
    NobodyResolved,
}

/// **Request scaling** by `user` (an operator, checked by the caller): pages
/// the platform tier, in one commit with the request that starts the
/// cool-down, unless one was made within it.
pub async fn request(state: &AppState, alert: &Alert, user: &str) -> anyhow::Result<Requested> {
    let Some(tier) = scaling_tier(state.config.escalation_for(&alert.tenant_id)) else {
        return Ok(Requested::NoTier);
    };
    let tier = crate::flows::oncall::resolve_tier(state, tier, state.clock.now()).await;
    if !alert.is_open() {
        return Ok(Requested::NotOpen);
    }
    let Ok(targets) = state.directory.expand(&tier.notify).await else {
        return Ok(Requested::NobodyResolved);
    };
    let now = state.clock.now();
    let cooldown = chrono::Duration::from_std(state.config.scaling_cooldown).unwrap_or_default();
    let asker = state.directory.user_name(user).await;
    let facts = PageFacts::of(state, alert);
    // Decided for whichever number the request gets: its pages, its note,
    // its audit entry.
    let pages = |count: i64| -> Result<Effects, crate::flows::thread::AlertError> {
        let dm = facts.message(
            state,
            &format!(":rocket: *Emergency scaling requested* by {asker}"),
            &[
                format!("*The runbook asks the platform team to*\n{SCALING_ASKS}"),
                format!(
                    "*Your part* (as *{}*): {}.",
                    escape_slack(&tier.name),
                    escape_slack(&tier.purpose)
                ),
            ],
            SCALING_ACK_ACTION,
            &format!("{}:{count}", alert.id),
        );
        let key = format!("scaling:{}:{count}", alert.id);
        let mut effects = Effects::new();
        for person in &targets {
            let mut payload = dm.clone();
            payload["channel"] = person.as_str().into();
            effects.send(NewOutboxMessage::call(
                "chat.postMessage",
                payload,
                format!("{key}:{person}"),
            ));
        }
        let who: Vec<String> = targets.iter().map(|u| format!("<@{u}>")).collect();
        effects.send(crate::flows::thread::thread_message(
            state,
            alert,
            format!("{key}:note"),
            &format!(
                ":rocket: {asker} requested emergency scaling: paging *{}* ({}) to scale executors, lower other workloads' limits or enable burst capacity.",
                escape_slack(&tier.name),
                if who.is_empty() { "nobody resolved".to_string() } else { who.join(" ") }
            ),
        )?);
        if let Some(env) = &tier.pagerduty_routing_key_env {
            let mut event = facts.pagerduty_trigger(
                state,
                env,
                &tier.name,
                &tier.purpose,
                &format!("emergency scaling requested by {asker}"),
            );
            event["dedup_key"] = scaling_dedup_key(&alert.id, count).into();
            let summary = format!(
                "Emergency scaling requested: {}",
                event["payload"]["summary"].as_str().unwrap_or_default()
            );
            event["payload"]["summary"] = summary.chars().take(1024).collect::<String>().into();
            effects.send(NewOutboxMessage::call(
                PAGERDUTY,
                event,
                format!("{key}:pd"),
            ));
        }
        effects.record(audit_entry(
            state,
            alert,
            user,
            "request_scaling",
            "ok",
            json!({ "tier": tier.name, "paged": targets, "request": count }),
        ));
        Ok(effects)
    };
    // A page that does not render rolls the request back: the cool-down
    // never locks with nobody paged.
    let claim = state
        .store
        .request_scaling_with(&alert.id, &alert.tenant_id, user, now, cooldown, |count| {
            pages(count)
                .map_err(|e| StoreError::Invalid(format!("the scaling page did not render: {e}")))
        })
        .await?;
    match claim {
        ScalingClaim::Requested(count) => {
            state.wake_outbox();
            state
                .metrics
                .inc("servo_sla_bot_pages_total", &[("tier", &tier.name)]);
            Ok(Requested::Paged {
                tier,
                count,
                again: now + cooldown,
            })
        }
        ScalingClaim::NotOpen => Ok(Requested::NotOpen),
        ScalingClaim::CoolingDown => {
            let last = state.store.scaling_request(&alert.id).await?;
            let mut refused = Effects::new();
            refused.record(audit_entry(
                state,
                alert,
                user,
                "request_scaling",
                "refused: cooling down",
                json!({}),
            ));
            state.commit(&refused).await?;
            let text = match last {
                Some(r) => {
                    let at = DateTime::from_timestamp_millis(r.requested_at_ms).unwrap_or(now);
                    format!(
                        "Scaling was requested {} by {}{}. It can be requested again {}.",
                        date_token(at),
                        state.directory.user_name(&r.requested_by).await,
                        match &r.acked_by {
                            Some(by) => format!(
                                ", and {} acknowledged it",
                                state.directory.user_name(by).await
                            ),
                            None => ", not acknowledged yet".into(),
                        },
                        date_token(at + cooldown)
                    )
                }
                None => "Scaling was requested moments ago.".into(),
            };
            Ok(Requested::CoolingDown(text))
        }
    }
}

/// What acknowledging a scaling request came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ScalingAcked {
    Acknowledged,
    /// Not acknowledged by this click: what to tell the clicker.
    Not(String),
}

/// **Acknowledge** on a scaling page, by `user` (checked by the caller):
/// the platform tier has request `count`. Decided once however often it is
/// clicked, in one commit with its thread note, PagerDuty's acknowledge and
/// the audit entry.
pub async fn acknowledge(
    state: &AppState,
    alert: &Alert,
    count: i64,
    user: &str,
) -> anyhow::Result<ScalingAcked> {
    let now = state.clock.now();
    let name = state.directory.user_name(user).await;
    let mut effects = Effects::new();
    effects.send(crate::flows::thread::thread_message(
        state,
        alert,
        format!("scaling:{}:{count}:ack", alert.id),
        &format!(
            ":white_check_mark: {name} acknowledged the scaling request {}.",
            date_token(now)
        ),
    )?);
    if let Some(env) = scaling_tier(state.config.escalation_for(&alert.tenant_id))
        .and_then(|t| t.pagerduty_routing_key_env.clone())
    {
        effects.send(NewOutboxMessage::call(
            PAGERDUTY,
            json!({ "routing_key_env": env, "event_action": "acknowledge", "dedup_key": scaling_dedup_key(&alert.id, count) }),
            format!("scaling:{}:{count}:pd-ack", alert.id),
        ));
    }
    effects.record(audit_entry(
        state,
        alert,
        user,
        "ack_scaling",
        "ok",
        json!({ "request": count }),
    ));
    if state
        .store
        .ack_scaling_request_with(&alert.id, count, user, now, &effects)
        .await?
    {
        state.wake_outbox();
        return Ok(ScalingAcked::Acknowledged);
    }
    let why = match state.store.scaling_request(&alert.id).await? {
        Some(r) if r.count == count => match r.acked_by {
            Some(by) => format!(
                "Already acknowledged by {}.",
                state.directory.user_name(&by).await
            ),
            None => "Nothing changed.".into(),
        },
        _ => "A newer scaling request replaced this one; acknowledge that one.".into(),
    };
    Ok(ScalingAcked::Not(why))
}
