//! A job's burn-down chart: partitions left against time, with the
//! forecast and the deadline.

use super::*;

/// The burn-down of a job: completed partitions over time from Servo's
/// partition history, the P50/P90 projection and the deadline.
pub fn burn_down(
    job: &Job,
    a: &Assessment,
    history: &[PartitionObs],
    now: DateTime<Utc>,
) -> Option<BurnDown> {
    let deadline = job.sla_deadline_at?;
    let mut times: Vec<DateTime<Utc>> = history
        .iter()
        .filter(|p| p.state == PartitionState::Completed)
        .filter_map(|p| p.completed_at)
        .filter(|t| *t <= now)
        .collect();
    times.sort();
    // The history may be only the recent partitions: start the count where
    // Servo's total says the curve must end.
    let base = (job.completed_partitions - times.len() as i64).max(0);
    let mut done: Vec<(DateTime<Utc>, i64)> = Vec::with_capacity(times.len() + 2);
    if let Some(start) = job.started_at {
        if times.first().is_none_or(|t| start < *t) {
            done.push((start, base));
        }
    }
    for (i, t) in times.iter().enumerate() {
        done.push((*t, base + i as i64 + 1));
    }
    done.push((now, job.completed_partitions.max(base + times.len() as i64)));
    let (p50, p90) = match job.forecast {
        Some((p50, p90)) => (Some(p50), Some(p90)),
        None => (a.eta, None),
    };
    Some(BurnDown {
        title: format!(
            "{} · {}",
            job.asset_name,
            job.id.to_string().get(..8).unwrap_or_default()
        ),
        total: job.total_partitions,
        done,
        now,
        p50,
        p90,
        deadline,
    })
}

/// The outbox row that uploads a new alert's burn-down chart to its thread.
pub fn burn_down_message(
    alert: &Alert,
    job: &Job,
    a: &Assessment,
    history: &[PartitionObs],
    now: DateTime<Utc>,
) -> Option<crate::store::NewOutboxMessage> {
    let chart = burn_down(job, a, history, now)?;
    let mut m = crate::slack::charts::chart_upload_message(
        &Chart::BurnDown(chart),
        "burn-down.png",
        &format!("Burn-down · {}", job.asset_name),
        "Completed partitions over time, the projected completion (P50 and P90) and the SLA deadline",
        None,
    );
    m.dedup_key = Some(format!("alert:{}:burndown", alert.id));
    // Not in the thread's ordering: a chart (render, three calls) must never
    // hold up the pages and notes behind it. It still waits for the alert's
    // message, through the thread anchor.
    m.ordering_key = None;
    m.thread_alert_id = Some(alert.id.clone());
    m.thread_field = Some("thread_ts".into());
    Some(m)
}
