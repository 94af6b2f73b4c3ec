//! `/backfill impact <job>` (issue 37): the job's downstream tree from
//! Servo's lineage, each scheduled workflow's next run marked where it would
//! read stale data (before the job is likely done, its P90), and the
//! upstream jobs it waits on.

use super::answers::{servo_failed, unknown_job};
use super::ephemeral;
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::JobId;
use crate::domain::lineage::{owner_of, path_text};
use crate::domain::text::{date_token, escape_slack};
use serde_json::Value;

/// The most downstream assets the answer lists.
const SHOWN_ASSETS: usize = 40;

/// The answer, as an ephemeral message.
pub async fn run(state: &AppState, tenant: &Tenant, id: JobId) -> Value {
    let now = state.clock.now();
    let (mut job, _a, _alert, _c) = match crate::flows::poll::job(state, tenant, id).await {
        Ok(Some(x)) => x,
        Ok(None) => return unknown_job(id, tenant),
        Err(e) => return servo_failed(&e),
    };
    let lineage = match state.servo.lineage(&tenant.id, now).await {
        Ok(l) => l,
        Err(e) => return servo_failed(&e),
    };
    crate::flows::lineage::attach_impact(state, &mut job, &lineage, now, SHOWN_ASSETS).await;
    let upstream = match crate::flows::lineage::upstream_jobs(state, tenant, &job).await {
        Ok(u) => u,
        Err(e) => return servo_failed(&e),
    };
    let asset = escape_slack(&job.asset_name);
    // Unknown when there is no forecast and Servo's ETA cannot be trusted
    // (not running, or a stale heartbeat): then no run is called safe.
    let likely_done = job.likely_done(now, &state.config.risk.thresholds());
    let likely = match likely_done {
        None => "not known when it is likely done".to_string(),
        Some(t) if job.wait_only => format!(
            "done no sooner than {}, when its upstream jobs are likely done: its own work is not counted, none of it has run yet",
            date_token(t)
        ),
        Some(t) => format!("likely done by {}", date_token(t)),
    };
    let mut text = format!(
        "*Impact of `{asset}`* (job `{}`, {}, {likely})\n",
        job.id,
        job.state.as_str().replace('_', " ")
    );
    text.push_str(&format!(
        "\n*Downstream* (up to {} hops)\n",
        state.config.lineage.depth
    ));
    match job.impact.as_ref() {
        None => text.push_str("Nothing downstream in Servo's lineage.\n"),
        Some(impact) => {
            for a in impact.assets.iter().take(SHOWN_ASSETS) {
                let indent = "    ".repeat(a.path.len().saturating_sub(2));
                let owner = owner_of(a)
                    .map(|o| format!(" · owner {o}"))
                    .unwrap_or_default();
                text.push_str(&format!("{indent}↳ `{}`{owner}\n", escape_slack(&a.name)));
            }
            if impact.assets.len() > SHOWN_ASSETS {
                text.push_str(&format!(
                    "…and {} more\n",
                    impact.assets.len() - SHOWN_ASSETS
                ));
            }
            if impact.beyond > 0 {
                text.push_str(&format!(
                    "…and {} further, past {} hops (their scheduled runs are below all the same)\n",
                    crate::domain::text::count(impact.beyond, "asset", "assets"),
                    state.config.lineage.depth
                ));
            }
            text.push_str("\n*Scheduled runs*\n");
            if impact.runs.is_empty() {
                text.push_str("No scheduled workflow touches these assets.\n");
            }
            for r in impact.runs.iter().take(20) {
                let mark = if r.stale {
                    ":warning: would read stale data"
                } else if impact.after_is_unknown() {
                    ":grey_question: may read stale data (not known when the job is likely done)"
                } else {
                    ":white_check_mark: after the job is likely done"
                };
                text.push_str(&format!(
                    "• `{}` runs {}: {mark} ({})\n",
                    escape_slack(&r.workflow),
                    date_token(r.at),
                    path_text(&r.path)
                ));
            }
            if impact.runs.len() > 20 {
                text.push_str(&format!("…and {} more\n", impact.runs.len() - 20));
            }
        }
    }
    text.push_str("\n*Upstream jobs it waits on*\n");
    if upstream.is_empty() {
        text.push_str("None.\n");
    }
    for (child, a) in &upstream {
        text.push_str(&format!(
            "• {} · job `{}`\n",
            crate::flows::lineage::upstream_line(child, a),
            child.id
        ));
    }
    ephemeral(&crate::slack::limits::truncate(&text, 3_900))
}
