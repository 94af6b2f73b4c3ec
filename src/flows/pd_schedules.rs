//! PagerDuty schedules as a tier's people (`notify =
//! ["pagerduty-schedule:<ID>"]`), for teams that keep their rotations
//! there: PagerDuty's REST API says who is on call (`GET /oncalls`), each
//! person is found in Slack by email (`users.lookupByEmail`), and the answer
//! is kept for [`FRESH_FOR`]. While PagerDuty cannot be asked, the last
//! people known are paged, and the answer says it is stale (the page's
//! thread warns).

use crate::context::AppState;
use crate::domain::ids::Principal;
use crate::pagerduty::Known;
use chrono::{DateTime, Utc};

/// How long an answer from PagerDuty is used before asking again.
pub const FRESH_FOR: chrono::Duration = chrono::Duration::minutes(5);

/// Who a schedule says is on call, as Slack users.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub people: Vec<Principal>,
    /// PagerDuty could not be asked: these are the last people known.
    pub stale: bool,
}

fn known(state: &AppState, id: &str) -> Option<Known> {
    state
        .pagerduty
        .schedules
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
}

fn answer(k: &Known, stale: bool) -> Answer {
    Answer {
        people: k.people.iter().cloned().map(Principal::User).collect(),
        stale,
    }
}

/// Who schedule `id` says is on call at `at` (now: PagerDuty is asked for
/// the present).
pub async fn people(state: &AppState, id: &str, at: DateTime<Utc>) -> Answer {
    // PagerDuty is asked about the present; a later step is paged by
    // whoever it says then.
    let at = at.min(state.clock.now());
    let last = known(state, id);
    if let Some(k) = last
        .as_ref()
        .filter(|k| at - k.at < FRESH_FOR && k.at <= at)
    {
        return answer(k, false);
    }
    // Failed a moment ago: not asked again for a minute.
    if let Some(k) = last.as_ref().filter(|k| {
        k.failed_at
            .is_some_and(|f| at - f < chrono::Duration::minutes(1) && f <= at)
    }) {
        return answer(k, true);
    }
    match state.pagerduty.oncall_emails(id).await {
        Ok(emails) => {
            let mut people = Vec::new();
            for email in &emails {
                match state.directory.user_by_email(email).await {
                    Some(user) if !people.contains(&user) => people.push(user),
                    Some(_) => {}
                    // The address is not said in the log: it is personal data.
                    None => tracing::warn!(
                        schedule = id,
                        "a person on call in PagerDuty has no Slack account with the same email"
                    ),
                }
            }
            let k = Known {
                at,
                people,
                failed_at: None,
            };
            state
                .pagerduty
                .schedules
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.to_string(), k.clone());
            answer(&k, false)
        }
        Err(e) => {
            tracing::warn!(schedule = id, error = %e, "PagerDuty cannot be asked who is on call; paging the last people known");
            state
                .metrics
                .inc("servo_sla_bot_pagerduty_schedule_failures_total", &[]);
            let k = Known {
                failed_at: Some(at),
                ..last.unwrap_or(Known {
                    at: DateTime::<Utc>::MIN_UTC,
                    people: Vec::new(),
                    failed_at: None,
                })
            };
            state
                .pagerduty
                .schedules
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.to_string(), k.clone());
            answer(&k, true)
        }
    }
}

/// Everyone the schedule was last known to put on call.
pub fn known_people(state: &AppState, id: &str) -> Vec<Principal> {
    known(state, id)
        .map(|k| k.people.into_iter().map(Principal::User).collect())
        .unwrap_or_default()
}

/// Whether any schedule of `tier` answered from memory only just now.
pub fn stale(state: &AppState, tier: &crate::config::EscalationTier, at: DateTime<Utc>) -> bool {
    tier.pagerduty_schedules
        .iter()
        .any(|id| known(state, id).is_none_or(|k| at - k.at >= FRESH_FOR))
}
