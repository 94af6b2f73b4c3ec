//! `/backfill status <job>`: the job's card, from Servo or, for
//! `commands.status_max_age`, from memory.

use super::answers::{servo_failed, unknown_job};
use super::{ephemeral, tenancy};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::forecast::Calibration;
use crate::domain::job_id::JobId;
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::flows::alert_view::alert_link;
use serde_json::{json, Value};

/// How accurate the forecast has been for the asset, once it has finished
/// jobs to go by: Slack markup, `asset` already escaped.
fn accuracy_note(c: Option<&Calibration>, asset: &str) -> Option<String> {
    let c = c?;
    let error = c.accuracy()?;
    let bias = c.bias_ratio();
    Some(format!(
        "Forecast accuracy for {asset}: off by a median {:.0}% of the time left over {}{}",
        error * 100.0,
        crate::domain::text::count(c.pairs(), "finished job", "finished jobs"),
        if (bias - 1.0).abs() >= 0.05 {
            format!("; corrected for jobs taking ×{bias:.2} what was forecast")
        } else {
            String::new()
        }
    ))
}

/// The status card for `id`, as answered less than `commands.status_max_age`
/// ago with no job change since, or `None` (then [`run`] reads it afresh).
/// The tenant is resolved exactly as for a fresh answer.
pub async fn status_from_memory(
    state: &AppState,
    id: JobId,
    flag: Option<&str>,
    channel: &str,
    user: &str,
) -> Option<bytes::Bytes> {
    let max_age = state.config.status_max_age;
    if max_age.is_zero() {
        return None;
    }
    let tenant = tenancy::resolve(state, channel, user, flag).await.ok()?;
    state.status_cache.get(
        &tenant.id,
        id.0,
        state.clock.now(),
        max_age,
        crate::servo::writes(),
    )
}

/// The job's status card, as an ephemeral answer: for `/backfill status`
/// and the "Job status" message shortcut.
pub async fn card(state: &AppState, tenant: &Tenant, id: JobId) -> Value {
    // Taken before reading, so a change made meanwhile leaves this card stale.
    let (read_at, writes) = (state.clock.now(), crate::servo::writes());
    let (job, a, alert, calibration) = match crate::flows::poll::job(state, tenant, id).await {
        Ok(Some(x)) => x,
        Ok(None) => return unknown_job(id, tenant),
        Err(e) => return servo_failed(&e),
    };
    let card = json!({
        "asset": job.asset_name,
        "job_id": job.id.to_string(),
        "state": job.state.as_str().replace('_', " "),
        "completed": job.completed_partitions,
        "failed": job.failed_partitions,
        "skipped": job.skipped_partitions,
        "total": job.total_partitions,
        "emoji": a.band.emoji(),
        "band_label": band_label(a.band),
        "eta": crate::flows::alert_view::eta_text(&job, &a, state.clock.now()),
        "deadline": job.sla_deadline_at.map(date_token).unwrap_or_else(|| "none (no SLA)".into()),
        "severity": crate::flows::alert_view::severity_text(a.eta, job.sla_deadline_at, state.clock.now(), a.severity),
        "priority": job.priority,
        "tier": a.tier.label(),
        // As the alert shows them: a waiting root names its upstream jobs.
        "bottlenecks": crate::flows::alert_view::bottleneck_lines(&job, &a, state.clock.now()),
        // Slack markup (`{{slack forecast_note}}`): the asset's name escaped.
        "forecast_note": accuracy_note(calibration.as_ref(), &escape_slack(&job.asset_name)),
        "alert_link": alert_link(alert.as_ref()),
        "tenant": tenant.id,
        "runbook_url": state.config.runbook_url,
    });
    match state.templates.render("job_card", &card) {
        Ok(answer) => {
            if !state.config.status_max_age.is_zero() {
                if let Ok(body) = serde_json::to_vec(&answer) {
                    state.status_cache.put(
                        &tenant.id,
                        id.0,
                        read_at,
                        writes,
                        state.config.status_max_age,
                        body.into(),
                    );
                }
            }
            answer
        }
        Err(e) => {
            tracing::error!(error = %e, "job card failed to render");
            ephemeral(&format!(
                "{}: {} ({})",
                escape_slack(&job.asset_name),
                job.state.as_str(),
                band_label(a.band)
            ))
        }
    }
}

pub(super) fn band_label(band: RiskBand) -> &'static str {
    match band {
        RiskBand::NoSla => "No SLA",
        RiskBand::Unknown => "ETA unknown",
        b => b.label(),
    }
}
