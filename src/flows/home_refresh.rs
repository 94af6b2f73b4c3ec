//! Marks a tenant's App Homes stale: a refresh timer per person viewing
//! them, debounced. Everything that changes what a Home shows calls it.

use crate::context::AppState;
use crate::flows::ids::REFRESH_TIMER;
use crate::store::NewTimer;
use chrono::{DateTime, Utc};
use serde_json::json;

/// Changes within this window refresh a Home once, at its end.
pub const DEBOUNCE: chrono::Duration = chrono::Duration::seconds(5);

/// Schedules a refresh of the Home of everyone whose Home shows `tenant`.
/// Never fails the caller: a refresh missed is caught up when they open it.
pub async fn touch(state: &AppState, tenant: &str) {
    for timer in touch_timers(state, tenant).await {
        if let Err(e) = state.store.schedule_timer(timer, state.clock.now()).await {
            tracing::warn!(error = %e, "could not schedule a Home refresh");
        }
    }
}

/// The timers [`touch`] schedules, for a transition to commit with its
/// other effects (one per person, per [`DEBOUNCE`] window). None when who
/// has a Home cannot be read: a refresh missed is caught up when they open
/// it.
pub async fn touch_timers(state: &AppState, tenant: &str) -> Vec<NewTimer> {
    let now = state.clock.now();
    let viewers = match state.home_viewers.get(tenant, now) {
        Some(v) => v,
        None => match state.store.home_viewers_of(tenant, now - STALE_AFTER).await {
            Ok(v) => {
                state.home_viewers.put(tenant, now, v.clone());
                v
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read whose Home to refresh");
                return Vec::new();
            }
        },
    };
    viewers
        .iter()
        .map(|user| refresh_timer(user, now))
        .collect()
}

fn refresh_timer(user: &str, now: DateTime<Utc>) -> NewTimer {
    let window = now
        .timestamp_millis()
        .div_euclid(DEBOUNCE.num_milliseconds());
    let due = DateTime::<Utc>::from_timestamp_millis((window + 1) * DEBOUNCE.num_milliseconds())
        .unwrap_or(now);
    NewTimer {
        kind: REFRESH_TIMER.into(),
        subject_id: user.to_string(),
        payload: json!({}),
        due_at: due,
        dedup_key: Some(format!("home:{user}:{window}")),
    }
}

/// Homes of people who have not opened theirs for this long are not kept fresh.
pub(crate) const STALE_AFTER: chrono::Duration = chrono::Duration::days(14);
