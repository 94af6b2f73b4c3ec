//! `/backfill list [all|running|at-risk]`: the tenant's jobs, worst first.

use super::answers::servo_failed;
use super::ephemeral;
use super::grammar::ListFilter;
use super::status::band_label;
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::assessment::{self, Assessment};
use crate::domain::risk::JobState;
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::servo::Job;
use crate::store::Alert;
use serde_json::{json, Value};
use std::collections::HashMap;

/// How many job lines a list shows; Slack allows 50 blocks of 3000 characters.
const LIST_MAX_JOBS: usize = 100;
const CHUNK_CHARS: usize = 2_800;

pub(super) async fn run(state: &AppState, tenant: &Tenant, filter: ListFilter) -> Value {
    let mut jobs = match state.servo.active_jobs(&tenant.id, false).await {
        Ok(j) => j,
        Err(e) => return servo_failed(&e),
    };
    let thresholds = state.config.risk.thresholds();
    let now = state.clock.now();
    jobs.retain(|j| match filter {
        ListFilter::All | ListFilter::AtRisk => true,
        ListFilter::Running => matches!(j.state, JobState::Running | JobState::Resuming),
        ListFilter::Paused => j.state == JobState::Paused,
    });
    // A job with an open alert is listed as its alert shows it: the poll's
    // judgement (the forecast, P90 for the tiers judged on it, the band's
    // stability), which Servo's ETA alone can contradict. The roll-up of a
    // storm sends people here for the jobs it does not name.
    let alerts: HashMap<String, Alert> = match state.store.list_open_alerts(Some(&tenant.id)).await
    {
        Ok(open) => open.into_iter().map(|a| (a.job_id.clone(), a)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the open alerts; listing on Servo's ETA alone");
            HashMap::new()
        }
    };
    let mut rows: Vec<(Job, Assessment)> = jobs
        .into_iter()
        .map(|j| {
            let alert = alerts.get(&j.id.to_string());
            let mut a =
                assessment::assess(&j.snapshot(), now, &thresholds, alert.map(|al| al.band));
            if let Some(al) = alert {
                a.band = al.band;
                a.severity = al.severity.or(a.severity);
                a.eta = al.eta.or(a.eta);
            }
            (j, a)
        })
        .filter(|(_, a)| filter != ListFilter::AtRisk || a.band.is_at_risk())
        .collect();
    rows.sort_by(|(ja, a), (jb, b)| {
        Assessment::riskiest_first(a, b)
            .then(ja.sla_deadline_at.cmp(&jb.sla_deadline_at))
            .then(jb.priority.cmp(&ja.priority))
    });
    let total = rows.len();
    let shown = total.min(LIST_MAX_JOBS);
    let lines: Vec<String> = rows
        .iter()
        .take(shown)
        .map(|(j, a)| {
            format!(
                "{} *{}* `{}` {} · {}/{} · ETA {} · due {} · {}",
                a.band.emoji(),
                escape_slack(&j.asset_name),
                j.id,
                j.state.as_str().replace('_', " "),
                j.completed_partitions,
                j.total_partitions,
                a.eta.map(date_token).unwrap_or_else(|| "?".into()),
                j.sla_deadline_at
                    .map(date_token)
                    .unwrap_or_else(|| "no SLA".into()),
                band_label(a.band)
            )
        })
        .collect();
    let mut chunks: Vec<String> = Vec::new();
    for line in lines {
        match chunks.last_mut() {
            Some(c) if c.len() + line.len() < CHUNK_CHARS => {
                c.push('\n');
                c.push_str(&line);
            }
            _ => chunks.push(line),
        }
    }
    let (one, what) = match filter {
        ListFilter::All => ("active job", "active jobs"),
        ListFilter::Running => ("running job", "running jobs"),
        ListFilter::Paused => ("paused job", "paused jobs"),
        ListFilter::AtRisk => ("at-risk job", "at-risk jobs"),
    };
    let title = format!(
        "{} in tenant {}, riskiest first",
        crate::domain::text::count(total, one, what),
        tenant.id
    );
    if chunks.is_empty() {
        chunks.push(format!("No {what}."));
    }
    let footer = if total > shown {
        format!(
            "{} more not shown. Narrow it down with `/backfill list at-risk`, `running` or `paused`.",
            total - shown
        )
    } else {
        "`/backfill status &lt;job_id&gt;` shows one job in full.".to_string()
    };
    state
        .templates
        .render(
            "job_list",
            &json!({ "title": title, "chunks": chunks, "footer": footer }),
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "job list failed to render");
            ephemeral(&title)
        })
}
