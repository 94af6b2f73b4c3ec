//! `/backfill review [7d|30d]`: the SLA review of the last days, to the
//! user who asked (see [`crate::flows::review`]).

use super::ephemeral;
use crate::config::Tenant;
use crate::context::AppState;
use crate::flows::review::{compute, covered_from, load, view};
use chrono::Duration;
use serde_json::Value;

/// `/backfill review [7d|30d]`: the review, to the user who asked.
pub async fn run(state: &AppState, tenant: &Tenant, days: u32) -> Value {
    let to = state.clock.now();
    let nothing = || {
        ephemeral(&format!(
            "No backfill jobs were seen in tenant `{}` in the last {}; nothing to review.",
            crate::domain::text::escape_slack(&tenant.id),
            crate::domain::text::count(days, "day", "days")
        ))
    };
    let from = match covered_from(state, &tenant.id, to - Duration::days(days as i64), to).await {
        Ok(Some(from)) => from,
        Ok(None) => return nothing(),
        Err(e) => {
            tracing::error!(error = %e, "could not read the review's history");
            return ephemeral(":warning: I could not read the bot's history for the review right now. Try again in a minute.");
        }
    };
    match load(state, &tenant.id, from, to).await {
        Ok(input) if input.is_empty() => nothing(),
        Ok(input) => {
            let r = compute(&input, from, to);
            let mut v = view(&tenant.id, &r, days as i64);
            v.response_type = Some("ephemeral".into());
            match state.templates.render("review", &v) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %e, "could not render the review");
                    ephemeral(":warning: I could not build the review; the bot's operators can find why in its log.")
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read the review's history");
            ephemeral(":warning: I could not read the bot's history for the review right now. Try again in a minute.")
        }
    }
}
