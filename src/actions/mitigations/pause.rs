//! **Pause lower-priority jobs** and **Defer best-effort jobs**: the
//! picker of candidates, and the confirmed pause (recorded as an intent
//! first, see [`crate::flows::mitigations::pause`]).

use super::*;
use crate::actions::dialog::open_dialog;
#[derive(Clone, Copy, PartialEq, Eq)]
enum PauseKind {
    /// Low: the tenant's best-effort jobs.
    Defer,
    /// Medium: the runbook's non-critical jobs: running, of lower priority
    /// than the job at risk, with no SLA or a later deadline.
    LowerPriority,
}

/// The jobs a click may pause for `at_risk`: never the job itself, nor its
/// own upstream jobs (Servo's job tree: pausing them delays it).
fn candidates(kind: PauseKind, at_risk: &Job, jobs: Vec<Job>) -> Vec<Job> {
    jobs.into_iter()
        .filter(|j| j.id != at_risk.id && j.state == JobState::Running)
        .filter(|j| j.parent_job_id != Some(at_risk.id))
        .filter(|j| match kind {
            PauseKind::Defer => SlaTier::from_priority(j.priority) <= SlaTier::BestEffort,
            PauseKind::LowerPriority => {
                j.priority < at_risk.priority
                    && match (j.sla_deadline_at, at_risk.sla_deadline_at) {
                        (None, _) => true,
                        (Some(d), Some(mine)) => d > mine,
                        (Some(_), None) => false,
                    }
            }
        })
        .collect()
}

/// Slack's multi-select holds 100 options.
const MAX_OPTIONS: usize = 100;

/// A job as a dialog option. Option text is plain text, where a date token
/// does not render, so the deadline is said relative to now ("due in 3 h"),
/// which reads the same in every time zone.
fn option(job: &Job, now: chrono::DateTime<chrono::Utc>) -> Value {
    use crate::domain::text::duration_words;
    let due = job
        .sla_deadline_at
        .map(|d| {
            if d > now {
                format!("due in {}", duration_words(d - now))
            } else {
                format!("due {} ago", duration_words(now - d))
            }
        })
        .unwrap_or_else(|| "no SLA".into());
    let mut label = format!("{} · p{} · {due}", job.asset_name, job.priority);
    if label.chars().count() > 75 {
        label = label.chars().take(74).collect::<String>() + "…";
    }
    json!({ "text": { "type": "plain_text", "text": label }, "value": job.id.to_string() })
}

/// **Pause lower-priority jobs** / **Defer non-critical backfills**: shows
/// exactly which jobs would be paused, in a dialog to confirm.
pub async fn offer_pause(state: &AppState, click: &Click, defer: bool) {
    let action = if defer { "defer" } else { "pause_lower" };
    let Some((alert, tenant)) =
        authorise(state, &click.user, &click.value, action, Some(click)).await
    else {
        return;
    };
    let at_risk = match job_of(state, &alert).await {
        Ok(Some(j)) => j,
        Ok(None) => return tell(state, click, "The at-risk job no longer exists.").await,
        Err(why) => return tell(state, click, &why).await,
    };
    let all = match state.servo.active_jobs(&tenant.id, false).await {
        Ok(j) => j,
        Err(_) => {
            return tell(
                state,
                click,
                ":warning: Servo is unreachable right now; nothing changed.",
            )
            .await
        }
    };
    let kind = if defer {
        PauseKind::Defer
    } else {
        PauseKind::LowerPriority
    };
    let found = candidates(kind, &at_risk, all);
    if found.is_empty() {
        let what = if defer {
            "No best-effort jobs (priority 3 or lower) are running in this tenant, so there is nothing to defer."
        } else {
            "No running job has no SLA, or a later deadline and a lower priority than this one, so there is nothing to pause."
        };
        return tell(state, click, what).await;
    }
    let now = state.clock.now();
    let options: Vec<Value> = found
        .iter()
        .take(MAX_OPTIONS)
        .map(|j| option(j, now))
        .collect();
    let more = found.len().saturating_sub(MAX_OPTIONS);
    let intro = format!(
        "{} would be paused with Servo's pause (the partition in flight finishes first), to free capacity for *{}*. Untick any to keep running.{}",
        if found.len() == 1 { "This running job".to_string() } else { format!("These {} running jobs", found.len()) },
        at_risk.asset_name.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        if more > 0 { format!(" ({more} more are not listed; run this again afterwards.)") } else { String::new() }
    );
    // What pauses bought before, and the band with as much (issue 38).
    let history = if defer {
        None
    } else {
        crate::flows::bought::pause_note(state, &alert).await
    };
    let mut view = json!({
        "type": "modal",
        "callback_id": PAUSE_VIEW,
        "notify_on_close": true,
        "private_metadata": json!({ "alert_id": alert.id, "channel": click.channel, "kind": action }).to_string(),
        "title": { "type": "plain_text", "text": if defer { "Defer backfills" } else { "Pause lower priority" } },
        "submit": { "type": "plain_text", "text": "Pause them" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": intro } },
            { "type": "input", "block_id": "jobs", "label": { "type": "plain_text", "text": "Jobs to pause" },
              "element": { "type": "multi_static_select", "action_id": "value", "options": options, "initial_options": options } }
        ]
    });
    if let (Some(text), Some(blocks)) = (history, view["blocks"].as_array_mut()) {
        blocks.push(json!({ "type": "context", "block_id": "bought",
                            "elements": [ { "type": "mrkdwn", "text": text } ] }));
    }
    open_dialog(state, click, view).await;
}

/// The confirmed pause: pauses each chosen job and reports each result.
pub async fn confirm_pause(state: &AppState, user: &str, metadata: &Value, job_ids: Vec<String>) {
    let Some(alert_id) = metadata.get("alert_id").and_then(Value::as_str) else {
        return;
    };
    let reply_to = Click::submitted(user, PAUSE_VIEW, alert_id, metadata);
    let Some((alert, tenant)) =
        authorise(state, user, alert_id, "pause_lower", Some(&reply_to)).await
    else {
        return;
    };
    // The dialog may have stayed open while the job recovered or finished:
    // nothing is paused to make room for a job no longer at risk.
    if !alert.is_open() {
        return tell(
            state,
            &reply_to,
            "This alert resolved while the dialog was open, so nothing was paused: its job is no longer at risk.",
        )
        .await;
    }
    let summary = crate::flows::mitigations::pause(state, &alert, &tenant.id, user, job_ids).await;
    tell(state, &reply_to, &summary).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn job(priority: i32, deadline_h: Option<i64>, state: JobState) -> Job {
        let now = Utc::now();
        Job {
            id: uuid::Uuid::new_v4(),
            tenant_id: "acme".into(),
            asset_id: uuid::Uuid::nil(),
            asset_name: "a".into(),
            asset_owner: None,
            idempotency_key: String::new(),
            state,
            execution_strategy: Value::Null,
            partition_start: None,
            partition_end: None,
            partition_keys: vec![],
            total_partitions: 10,
            completed_partitions: 1,
            failed_partitions: 0,
            skipped_partitions: 0,
            error_message: None,
            created_by: None,
            created_at: now,
            started_at: None,
            completed_at: None,
            heartbeat_at: None,
            version: 1,
            paused_at: None,
            checkpoint_partition_key: None,
            estimated_completion_at: None,
            avg_partition_duration_ms: None,
            parent_job_id: None,
            upstream_job_count: 0,
            completed_upstream_jobs: 0,
            sla_deadline_at: deadline_h.map(|h| now + Duration::hours(h)),
            priority,
            recent_durations_ms: vec![],
            forecast: None,
            judge_on_p90: false,
            impact: None,
            lineage_unread: None,
            upstream_note: None,
            wait_only: false,
        }
    }

    #[test]
    fn lower_priority_candidates_have_no_sla_or_a_later_deadline_and_lower_priority() {
        let at_risk = job(6, Some(2), JobState::Running);
        let no_sla = job(2, None, JobState::Running);
        let no_sla_critical = job(9, None, JobState::Running);
        let later_lower = job(3, Some(5), JobState::Running);
        let later_higher = job(8, Some(5), JobState::Running);
        let sooner_lower = job(1, Some(1), JobState::Running);
        let paused = job(1, None, JobState::Paused);
        // The at-risk job's own upstream job: pausing it delays the job.
        let mut upstream = job(1, None, JobState::Running);
        upstream.parent_job_id = Some(at_risk.id);
        let found: Vec<_> = candidates(
            PauseKind::LowerPriority,
            &at_risk,
            vec![
                at_risk.clone(),
                no_sla.clone(),
                no_sla_critical,
                later_lower.clone(),
                later_higher,
                sooner_lower,
                paused,
                upstream,
            ],
        )
        .into_iter()
        .map(|j| j.id)
        .collect();
        assert_eq!(found, vec![no_sla.id, later_lower.id]);
    }

    #[test]
    fn defer_candidates_are_the_running_best_effort_jobs() {
        let at_risk = job(2, Some(2), JobState::Running);
        let best = job(3, Some(9), JobState::Running);
        let below = job(-2, None, JobState::Running);
        let standard = job(4, None, JobState::Running);
        let found: Vec<_> = candidates(
            PauseKind::Defer,
            &at_risk,
            vec![at_risk.clone(), best.clone(), below.clone(), standard],
        )
        .into_iter()
        .map(|j| j.id)
        .collect();
        assert_eq!(found, vec![best.id, below.id]);
    }
}
