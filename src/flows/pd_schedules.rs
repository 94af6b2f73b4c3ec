//! PagerDuty schedules as a tier's people (`notify = ["pagerduty-schedule:<ID>"]`).

use crate::context::AppState;
use crate::domain::ids::Principal;
use chrono::{DateTime, Utc};

/// Who a schedule says is on call, as Slack users.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub people: Vec<Principal>,
    /// PagerDuty could not be asked: these are the last people known.
    pub stale: bool,
}

/// Who schedule `id` says is on call at `at`.
pub async fn people(_state: &AppState, _id: &str, _at: DateTime<Utc>) -> Answer {
    Answer::default()
}

/// Everyone the schedule has been known to put on call.
pub fn known(_state: &AppState, _id: &str) -> Vec<Principal> {
    Vec::new()
}
