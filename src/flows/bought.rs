//! What each mitigation bought before in a tenant (issue 38), for the
//! confirm dialogs of Recreate and Request scaling and the dialogs of Pause
//! lower-priority jobs and Request extension: from the audit log (the
//! mitigations that went through) and the ETA samples the poller keeps of
//! alerted jobs, the ETA at each action against the ETA 30 minutes after
//! it ([`EtaTrail`], which the weekly review measures with too); and, from
//! the recreated jobs that completed, the partition speed they reached.
//!
//! Computed once per tenant and poll ([`refresh`], three queries) and kept
//! in [`crate::context::AppState::bought`]: every alert of the poll, and a
//! dialog opened between polls, reads it from there ([`history`]).

use crate::context::AppState;
use crate::domain::bought::{summarise, History, Kind};
use crate::store::{AuditEntry, EtaSample, Store, StoreError, WatchedJob};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A mitigation's effect is the ETA this long after it, against the ETA at it.
pub const AFTER: Duration = Duration::minutes(30);
/// How far from where it is wanted a sample may be for the dialogs: the
/// poller samples an alerted job every five minutes.
const SLACK: Duration = Duration::minutes(30);
/// How long after its alert resolved a job's ETA is still sampled: a
/// mitigation that works resolves the alert, and its effect is measured
/// [`AFTER`] it, within the [`SLACK`].
pub const SAMPLED_AFTER_RESOLUTION: Duration = Duration::minutes(60);
/// The newest audit rows read (one pause click writes a row per job).
const AUDIT_ROWS: i64 = 400;
/// The newest actions of each kind looked at, measured or not.
const CANDIDATES: usize = 20;

/// Each alerted job's ETA samples and completion, to tell the ETA at a
/// time and the ETA some time after it.
pub struct EtaTrail<'a> {
    samples: HashMap<&'a str, Vec<&'a EtaSample>>,
    completed: HashMap<&'a str, DateTime<Utc>>,
    /// How far from where it is wanted a sample may be.
    slack: Duration,
}

impl<'a> EtaTrail<'a> {
    pub fn new(samples: &'a [EtaSample], watched: &'a [WatchedJob], slack: Duration) -> Self {
        let mut by_job: HashMap<&str, Vec<&EtaSample>> = HashMap::new();
        for s in samples {
            by_job.entry(s.job_id.as_str()).or_default().push(s);
        }
        for v in by_job.values_mut() {
            v.sort_by_key(|s| s.at);
        }
        EtaTrail {
            samples: by_job,
            completed: watched
                .iter()
                .filter_map(|w| Some((w.job_id.as_str(), w.completed_at?)))
                .collect(),
            slack,
        }
    }

    /// The job's ETA at `t`: its last sample before, within the slack.
    pub fn at(&self, job: &str, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.samples
            .get(job)?
            .iter()
            .rev()
            .find(|s| s.at <= t && t - s.at <= self.slack)
            .map(|s| s.eta)
    }

    /// The job's ETA [`AFTER`] `t`: its first sample from then, within the
    /// slack; a job that completed before that sample was due, its completion.
    pub fn after(&self, job: &str, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let want = t + AFTER;
        let sampled = self
            .samples
            .get(job)
            .and_then(|v| v.iter().find(|s| s.at >= want && s.at - want <= self.slack))
            .map(|s| s.eta);
        let done = self
            .completed
            .get(job)
            .copied()
            .filter(|c| *c >= t && *c <= want + self.slack);
        match (sampled, done) {
            (_, Some(c)) if c <= want => Some(c),
            (Some(s), _) => Some(s),
            (None, d) => d,
        }
    }

    /// Minutes the ETA moved earlier (negative: later) after an action on
    /// `job` at `at`; measured on `follow` after it when the action made a
    /// new job (a recreate). `None`: not measured.
    pub fn bought(&self, job: &str, follow: Option<&str>, at: DateTime<Utc>) -> Option<f64> {
        let before = self.at(job, at)?;
        let after = self.after(follow.unwrap_or(job), at)?;
        Some((before - after).num_milliseconds() as f64 / 60_000.0)
    }
}

/// One mitigation taken: on which job, when, the job it made (a
/// recreate's), and that job's partitions.
#[derive(Clone, Debug, PartialEq)]
pub struct Taken {
    pub job: String,
    pub at: DateTime<Utc>,
    pub follow: Option<String>,
    pub partitions: Option<i64>,
}

/// The newest `max` actions of a kind in the audit (given newest first):
/// one click that paused five jobs is one action; `/backfill pause` is none.
pub fn taken(audit_newest_first: &[AuditEntry], kind: Kind, max: usize) -> Vec<Taken> {
    let mut out: Vec<Taken> = Vec::new();
    for e in audit_newest_first
        .iter()
        .filter(|e| e.outcome == "ok" && e.action == kind.action())
    {
        if out.len() >= max {
            break;
        }
        let detail = e.detail.clone().unwrap_or(Value::Null);
        if kind == Kind::Pause && detail.get("for_alert").is_none() {
            continue;
        }
        let Some(job) = e.subject.clone() else {
            continue;
        };
        if out
            .iter()
            .any(|t| t.job == job && (e.at - t.at).num_seconds().abs() < 60)
        {
            continue;
        }
        out.push(Taken {
            job,
            at: e.at,
            follow: detail
                .get("new_job")
                .and_then(Value::as_str)
                .map(str::to_string),
            partitions: detail.get("partitions").and_then(Value::as_i64),
        });
    }
    out
}

/// The history from the actions taken (newest first, by kind), the samples
/// around them and the jobs involved.
pub fn compute(
    taken: &[(Kind, Vec<Taken>)],
    samples: &[EtaSample],
    watched: &[WatchedJob],
) -> History {
    let trail = EtaTrail::new(samples, watched, SLACK);
    let mut h = History::default();
    for (kind, list) in taken {
        let bought: Vec<f64> = list
            .iter()
            .filter_map(|t| trail.bought(&t.job, t.follow.as_deref(), t.at))
            .collect();
        if let Some(b) = summarise(&bought) {
            h.bought.insert(kind.action().to_string(), b);
        }
    }
    // The speed each recreated job that completed reached, by asset.
    let job: HashMap<&str, &WatchedJob> = watched.iter().map(|w| (w.job_id.as_str(), w)).collect();
    let mut per_asset: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for t in taken
        .iter()
        .filter(|(k, _)| *k == Kind::Recreate)
        .flat_map(|(_, l)| l)
    {
        let (Some(follow), Some(partitions)) = (t.follow.as_deref(), t.partitions) else {
            continue;
        };
        let Some(w) = job.get(follow) else { continue };
        let Some(done) = w.completed_at.filter(|d| *d > t.at) else {
            continue;
        };
        let hours = (done - t.at).num_milliseconds() as f64 / 3_600_000.0;
        per_asset
            .entry(w.asset.clone())
            .or_default()
            .push(partitions as f64 / hours);
    }
    for (asset, v) in per_asset {
        if let Some(s) = crate::domain::bought::speed(&v) {
            h.recreate_speed.insert(asset, s);
        }
    }
    h
}

/// Reads and computes a tenant's history: its newest mitigations, the
/// samples around each, and the jobs they touched.
pub async fn load(store: &Store, tenant: &str) -> Result<History, StoreError> {
    let audit = store.recent_mitigations(tenant, AUDIT_ROWS).await?;
    let taken: Vec<(Kind, Vec<Taken>)> = Kind::ALL
        .iter()
        .map(|k| (*k, taken(&audit, *k, CANDIDATES)))
        .collect();
    let mut windows = Vec::new();
    let mut ids = Vec::new();
    for t in taken.iter().flat_map(|(_, l)| l) {
        let after = t.follow.clone().unwrap_or_else(|| t.job.clone());
        windows.push((t.job.clone(), t.at - SLACK, t.at));
        windows.push((after.clone(), t.at + AFTER, t.at + AFTER + SLACK));
        ids.push(t.job.clone());
        ids.push(after);
    }
    if windows.is_empty() {
        return Ok(History::default());
    }
    ids.sort();
    ids.dedup();
    let samples = store.eta_samples_around(tenant, &windows).await?;
    let watched = store.watched_jobs(tenant, &ids).await?;
    Ok(compute(&taken, &samples, &watched))
}

/// Computes a tenant's history now and keeps it: once per poll.
pub async fn refresh(state: &AppState, tenant: &str) -> Result<Arc<History>, StoreError> {
    let h = Arc::new(load(&state.store, tenant).await?);
    state
        .bought
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(tenant.to_string(), (state.clock.now(), h.clone()));
    Ok(h)
}

/// The tenant's history as the last poll computed it; computed now when
/// no poll did in the last poll interval.
pub async fn history(state: &AppState, tenant: &str) -> Result<Arc<History>, StoreError> {
    match state.kept_for_a_poll(&state.bought, tenant) {
        Some(h) => Ok(h),
        None => refresh(state, tenant).await,
    }
}

/// The history line a dialog shows for a kind of action on an alert;
/// `None` when the store cannot be read just now (logged: the dialog opens
/// without it).
async fn dialog_history(state: &AppState, tenant: &str) -> Option<Arc<History>> {
    match history(state, tenant).await {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(tenant, error = %e, "the mitigation history could not be read for a dialog");
            None
        }
    }
}

/// What *Pause lower-priority jobs*' dialog says besides its jobs: what the
/// last pauses bought, the band the job has now, and the band it would have
/// with its ETA moved as much (from what the alert shows).
pub async fn pause_note(state: &AppState, alert: &crate::store::Alert) -> Option<String> {
    use crate::domain::bought::{band_if_moved, band_line, history_line};
    let h = dialog_history(state, &alert.tenant_id).await?;
    let bought = h.of(Kind::Pause);
    let moved = bought.and_then(|b| {
        let band = band_if_moved(
            alert.eta,
            alert.deadline,
            state.clock.now(),
            b.median_min,
            &state.config.risk.thresholds(),
        )?;
        Some((b.median_min, band))
    });
    Some(format!(
        "{}\n{}",
        history_line(Kind::Pause, bought),
        band_line(alert.band, moved)
    ))
}

/// What *Request extension*'s dialog says of the extensions approved before.
pub async fn extension_note(state: &AppState, alert: &crate::store::Alert) -> Option<String> {
    let h = dialog_history(state, &alert.tenant_id).await?;
    Some(crate::domain::bought::history_line(
        Kind::Extension,
        h.of(Kind::Extension),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn audit(action: &str, job: &str, min: i64, detail: Value) -> AuditEntry {
        AuditEntry::ok(at(min), "acme", "U1", action, job, detail)
    }

    fn sample(job: &str, min: i64, eta_min: i64) -> EtaSample {
        EtaSample {
            tenant_id: "acme".into(),
            job_id: job.into(),
            at: at(min),
            eta: at(eta_min),
            deadline: None,
        }
    }

    fn watched(job: &str, asset: &str, completed: Option<i64>) -> WatchedJob {
        WatchedJob {
            tenant_id: "acme".into(),
            job_id: job.into(),
            asset: asset.into(),
            priority: 5,
            tier: "standard".into(),
            first_seen: at(-600),
            deadline: None,
            planned_buffer: None,
            min_buffer: None,
            min_buffer_at: None,
            last_mark: 0,
            breached_at: None,
            ended_at: completed.map(at),
            outcome: None,
            completed_at: completed.map(at),
        }
    }

    #[test]
    fn one_pause_click_is_one_action_and_backfill_pause_is_none() {
        let a = vec![
            audit("pause", "j1", 100, json!({"job": "x1", "for_alert": "a1"})),
            audit("pause", "j1", 100, json!({"job": "x2", "for_alert": "a1"})),
            audit("pause", "j2", 90, json!({"job": "j2"})),
            audit("pause", "j1", 10, json!({"job": "x1", "for_alert": "a1"})),
        ];
        let t = taken(&a, Kind::Pause, 20);
        assert_eq!(
            t.iter().map(|t| t.at).collect::<Vec<_>>(),
            [at(100), at(10)]
        );
        assert_eq!(taken(&a, Kind::Pause, 1).len(), 1);
        assert!(taken(&a, Kind::Recreate, 20).is_empty());
    }

    #[test]
    fn what_an_action_bought_is_the_eta_at_it_against_the_eta_thirty_minutes_after() {
        let taken_now = vec![
            (
                Kind::Recreate,
                vec![Taken {
                    job: "old".into(),
                    at: at(0),
                    follow: Some("new".into()),
                    partitions: Some(120),
                }],
            ),
            (
                Kind::Scaling,
                vec![
                    Taken {
                        job: "s1".into(),
                        at: at(200),
                        follow: None,
                        partitions: None,
                    },
                    // No sample after it: not measured.
                    Taken {
                        job: "s2".into(),
                        at: at(100),
                        follow: None,
                        partitions: None,
                    },
                ],
            ),
        ];
        let samples = vec![
            sample("old", -5, 300),
            // The recreated job's ETA 30 min later: 60 min earlier.
            sample("new", 31, 240),
            sample("s1", 198, 500),
            sample("s1", 232, 480),
            sample("s2", 99, 500),
        ];
        let watched = vec![
            watched("new", "orders", Some(120)),
            watched("old", "orders", None),
        ];
        let h = compute(&taken_now, &samples, &watched);
        let recreate = h.of(Kind::Recreate).expect("measured");
        assert_eq!((recreate.measured, recreate.median_min), (1, 60));
        let scaling = h.of(Kind::Scaling).expect("measured");
        assert_eq!((scaling.measured, scaling.median_min), (1, 20));
        assert_eq!(h.of(Kind::Pause), None);
        // 120 partitions in two hours.
        assert_eq!(h.recreate_speed["orders"].per_hour, 60);
    }
}
