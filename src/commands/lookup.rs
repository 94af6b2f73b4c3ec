//! The job a command names, as people know it: its full id, the first 8 or
//! more characters of its id, or its asset's name when the asset has one
//! active job. A name that fits several jobs changes nothing: the answer
//! lists them (asset, state, id, alert) so the person can pick one.

use super::answers::servo_failed;
use super::ephemeral;
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::MIN_PREFIX;
use crate::domain::job_id::{short, JobId, JobRef};
use crate::domain::text::escape_slack;
use crate::flows::alert_view::alert_link;
use crate::servo::Job;
use serde_json::Value;

/// How many candidates an ambiguous answer lists.
const MAX_CANDIDATES: usize = 10;

/// The job `named` stands for in `tenant`, or the answer to give instead.
pub async fn job(state: &AppState, tenant: &Tenant, named: &JobRef) -> Result<JobId, Value> {
    let text = match named {
        JobRef::Id(id) => return Ok(*id),
        JobRef::Named(text) => text,
    };
    let jobs = state
        .servo
        .active_jobs(&tenant.id, false)
        .await
        .map_err(|e| servo_failed(&e))?;
    let lower = text.to_ascii_lowercase();
    let prefix = JobRef::looks_like_prefix(&lower);
    let by_prefix: Vec<&Job> = if prefix && lower.len() >= MIN_PREFIX {
        jobs.iter()
            .filter(|j| j.id.to_string().starts_with(&lower))
            .collect()
    } else {
        Vec::new()
    };
    let found = if by_prefix.is_empty() {
        jobs.iter()
            .filter(|j| j.asset_name.eq_ignore_ascii_case(text))
            .collect()
    } else {
        by_prefix
    };
    match found.as_slice() {
        [one] => Ok(JobId(one.id)),
        [] => Err(ephemeral(&not_found(text, prefix, tenant))),
        many => Err(ephemeral(&ambiguous(state, tenant, text, many).await)),
    }
}

fn not_found(text: &str, prefix: bool, tenant: &Tenant) -> String {
    let typed = escape_slack(&short(text));
    let hint = if prefix && text.len() < MIN_PREFIX {
        format!(" A short id needs at least {MIN_PREFIX} characters of the job id.")
    } else {
        String::new()
    };
    format!(
        ":grey_question: No active job of tenant `{}` has an id starting with `{typed}` or the asset name `{typed}`.{hint} Nothing was changed. `/backfill list all` shows the active jobs; a finished job needs its full id.",
        tenant.id
    )
}

async fn ambiguous(state: &AppState, tenant: &Tenant, text: &str, many: &[&Job]) -> String {
    let alerts = state
        .store
        .list_open_alerts(Some(&tenant.id))
        .await
        .unwrap_or_default();
    let mut lines = vec![format!(
        ":warning: `{}` fits {} active jobs of tenant `{}`, so nothing was changed. Run the command again with the job's id (the first {MIN_PREFIX} characters are enough when they differ):",
        escape_slack(&short(text)),
        many.len(),
        tenant.id
    )];
    for job in many.iter().take(MAX_CANDIDATES) {
        let id = job.id.to_string();
        let alert = alerts.iter().find(|a| a.job_id == id);
        let link = alert_link(alert)
            .map(|l| format!(" · {l}"))
            .unwrap_or_default();
        lines.push(format!(
            "• *{}* · {} · `{id}`{link}",
            escape_slack(&job.asset_name),
            job.state.as_str().replace('_', " "),
        ));
    }
    if many.len() > MAX_CANDIDATES {
        lines.push(format!("…and {} more.", many.len() - MAX_CANDIDATES));
    }
    lines.join("\n")
}
