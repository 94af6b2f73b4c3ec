//! SLA risk assessment for Servo backfill jobs.
//!
//! Everything here is pure: a [`JobSnapshot`] as read from Servo, the current
//! time and the configured [`RiskThresholds`] go in; an [`Assessment`] comes
//! out. No I/O and no clock, so the poller, the slash commands and the tests
//! all get the same answer for the same inputs.
//!
//! The runbook's measure is
//!
//! ```text
//! severity = (ETA - deadline) / (deadline - now)
//! ```
//!
//! i.e. how late the job will be, as a share of the time still left. Bands:
//! Low below `medium_at` (0.20), Medium from `medium_at` to `high_at` (0.50)
//! inclusive, High above `high_at`. A job with its ETA at or before its
//! deadline is on track; an active job whose deadline has passed is Breached.
//!
//! Choices made where the runbook is silent (each is repeated on the item it
//! concerns):
//! - A deadline equal to now is not yet breached (breach needs `now >
//!   deadline`). With work remaining the severity is infinite, so the job is
//!   High whatever its ETA says, since no remaining partition takes zero time.
//!   With no work remaining it is on track.
//! - An active job with no remaining partitions is on track until its
//!   deadline, without hysteresis: there is no estimate left to flap.
//! - A paused job is assessed on its best case, `now + remaining × average`
//!   (as if resumed right now), and marked `stalled`. While paused with work
//!   remaining and its deadline within `paused_risk_window`, it is at least
//!   Low, with or without an estimate.
//! - A job with an unknown ETA and a deadline ahead is [`RiskBand::Unknown`]
//!   (not at risk); past the deadline it is Breached like any other.
//! - Terminal jobs are [`RiskBand::Finished`], never Breached.

use std::cmp::Ordering;

use crate::domain::risk::{JobState, RiskBand, SlaTier};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Job state and snapshot
// ---------------------------------------------------------------------------

/// One job as read from Servo at a poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSnapshot {
    pub id: String,
    pub asset_name: String,
    pub state: JobState,
    /// Servo's priority, -10..=10; decides the [`SlaTier`].
    pub priority: i32,
    pub total_partitions: i64,
    pub completed_partitions: i64,
    pub failed_partitions: i64,
    pub skipped_partitions: i64,
    /// Servo's own ETA (now + remaining × EWMA), rewritten after each
    /// partition completes; trusted only while `heartbeat_at` is fresh.
    pub estimated_completion_at: Option<DateTime<Utc>>,
    /// Servo's average partition duration; when missing the mean of
    /// `recent_durations_ms` is used instead.
    pub avg_partition_duration_ms: Option<i64>,
    /// Written by Servo together with `estimated_completion_at`, so it tells
    /// how old that ETA is.
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    /// `None` means the job has no SLA.
    pub sla_deadline_at: Option<DateTime<Utc>>,
    pub upstream_job_count: i64,
    pub completed_upstream_jobs: i64,
    /// Durations of completed partitions, oldest first (may be only the
    /// last N).
    pub recent_durations_ms: Vec<i64>,
    /// The bot's own forecast from the partition history: (P50, P90).
    #[serde(default)]
    pub forecast: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Judge risk on P90 rather than P50 (the SLA tiers `risk.p90_tiers` names).
    #[serde(default)]
    pub judge_on_p90: bool,
}

impl JobSnapshot {
    /// Partitions neither completed, failed nor skipped; never negative, even
    /// if Servo's counters overshoot the total.
    pub fn remaining(&self) -> i64 {
        (self.total_partitions
            - self.completed_partitions
            - self.failed_partitions
            - self.skipped_partitions)
            .max(0)
    }

    /// Upstream jobs not yet completed; never negative.
    pub fn waiting_upstream(&self) -> i64 {
        (self.upstream_job_count - self.completed_upstream_jobs).max(0)
    }

    /// Average partition duration in ms: Servo's own figure, else the mean of
    /// the recent durations, else `None`. Negative values are treated as
    /// missing (they can only be bad data).
    pub fn average_partition_ms(&self) -> Option<f64> {
        match self.avg_partition_duration_ms {
            Some(avg) if avg >= 0 => Some(avg as f64),
            _ => mean(&valid_durations(&self.recent_durations_ms)),
        }
    }
}

fn valid_durations(durations: &[i64]) -> Vec<i64> {
    durations.iter().copied().filter(|d| *d >= 0).collect()
}

fn mean(values: &[i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().map(|v| *v as f64).sum::<f64>() / values.len() as f64)
}

// ---------------------------------------------------------------------------
// Thresholds
// ---------------------------------------------------------------------------

/// The runbook's thresholds, from config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiskThresholds {
    /// Severity at which a job becomes Medium (inclusive). Runbook: 0.20.
    pub medium_at: f64,
    /// Severity above which a job becomes High (exclusive). Runbook: 0.50.
    pub high_at: f64,
    /// How far below a threshold severity must fall before the band drops,
    /// so a job hovering at a boundary does not flap between alerts.
    pub hysteresis: f64,
    /// How old Servo's heartbeat (and so its ETA) may be for its ETA to be
    /// trusted; older, and the bot computes its own.
    pub eta_fresh_for: Duration,
    /// A paused job with work left and its deadline at most this far away
    /// is at least Low: it makes no progress, so an optimistic estimate
    /// (or none at all) must not hide it as the deadline nears.
    pub paused_risk_window: Duration,
}

impl Default for RiskThresholds {
    fn default() -> Self {
        Self {
            medium_at: 0.20,
            high_at: 0.50,
            hysteresis: 0.05,
            eta_fresh_for: Duration::minutes(10),
            paused_risk_window: Duration::hours(24),
        }
    }
}

impl RiskThresholds {
    /// Builds thresholds from config values (which hold a `std` duration),
    /// keeping the default `paused_risk_window`. A duration too large for
    /// chrono is clamped to chrono's maximum.
    pub fn new(
        medium_at: f64,
        high_at: f64,
        hysteresis: f64,
        eta_fresh_for: std::time::Duration,
    ) -> Self {
        Self {
            medium_at,
            high_at,
            hysteresis,
            eta_fresh_for: Duration::from_std(eta_fresh_for).unwrap_or(Duration::MAX),
            ..Self::default()
        }
    }
}

// ---------------------------------------------------------------------------
// Severity and bands
// ---------------------------------------------------------------------------

/// `(eta - deadline) / (deadline - now)`: how late the job will be, as a
/// share of the time left. Negative when the ETA is before the deadline
/// (used by hysteresis to tell how comfortably on track a job is).
///
/// `None` once the deadline has passed (`now > deadline`): the job is then
/// Breached, and a ratio over negative time would mean nothing. When the
/// deadline is exactly now, the ratio is `+∞` for an ETA after it, `-∞` for
/// one before it, and `0` for an ETA of exactly now. Millisecond precision.
pub fn severity(eta: DateTime<Utc>, deadline: DateTime<Utc>, now: DateTime<Utc>) -> Option<f64> {
    if now > deadline {
        return None;
    }
    let late_ms = eta.signed_duration_since(deadline).num_milliseconds();
    let left_ms = deadline.signed_duration_since(now).num_milliseconds();
    if left_ms == 0 {
        return Some(match late_ms.cmp(&0) {
            Ordering::Greater => f64::INFINITY,
            Ordering::Less => f64::NEG_INFINITY,
            Ordering::Equal => 0.0,
        });
    }
    Some(late_ms as f64 / left_ms as f64)
}

/// The runbook's band for a severity, without memory of the previous band:
/// `<= 0` OnTrack, `< medium_at` Low, `<= high_at` Medium, else High.
/// Only returns those four, or `Unknown` for NaN (which [`severity`] never
/// produces).
pub fn band_for(severity: f64, thresholds: &RiskThresholds) -> RiskBand {
    if severity.is_nan() {
        RiskBand::Unknown
    } else if severity <= 0.0 {
        RiskBand::OnTrack
    } else if severity < thresholds.medium_at {
        RiskBand::Low
    } else if severity <= thresholds.high_at {
        RiskBand::Medium
    } else {
        RiskBand::High
    }
}

/// The band with every threshold lowered by the hysteresis: the band a job
/// already at or above it keeps while easing down.
fn sticky_band(severity: f64, thresholds: &RiskThresholds) -> RiskBand {
    let h = thresholds.hysteresis;
    if severity < -h {
        RiskBand::OnTrack
    } else if severity < thresholds.medium_at - h {
        RiskBand::Low
    } else if severity < thresholds.high_at - h {
        RiskBand::Medium
    } else {
        RiskBand::High
    }
}

/// The band for `severity` given the band the job had at the previous poll,
/// so a job hovering at a threshold does not flap.
///
/// Moving up happens at the plain thresholds ([`band_for`]). Moving down
/// from a band needs severity strictly below that band's threshold minus
/// `hysteresis`: with the runbook values a Medium job stays Medium at 0.18
/// and drops to Low at 0.14; a Low (or higher) job only goes back to
/// OnTrack once its ETA is earlier than the deadline by `hysteresis × (deadline
/// − now)`, i.e. severity < -hysteresis. A job falling several bands keeps
/// the margin at each threshold it crosses (High at 0.18 lands on Medium).
///
/// Only OnTrack/Low/Medium/High previous bands are sticky. Breached is
/// decided by the clock, never here, so it is neither softened nor held: a
/// previous Breached (say the deadline was extended since) or
/// Unknown/NoSla/Finished starts from the plain band.
pub fn band_with_hysteresis(
    previous: Option<RiskBand>,
    severity: f64,
    thresholds: &RiskThresholds,
) -> RiskBand {
    let plain = band_for(severity, thresholds);
    let Some(prev) = previous else {
        return plain;
    };
    let sticky = matches!(
        prev,
        RiskBand::OnTrack | RiskBand::Low | RiskBand::Medium | RiskBand::High
    );
    if !sticky || severity.is_nan() || plain >= prev {
        return plain;
    }
    // Moving down: keep every band whose lowered threshold is still met,
    // but never more than the previous band.
    sticky_band(severity, thresholds).min(prev).max(plain)
}

// ---------------------------------------------------------------------------
// ETA
// ---------------------------------------------------------------------------

/// Where an assessment's ETA came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaSource {
    /// Servo's `estimated_completion_at`, fresh by its heartbeat.
    Servo,
    /// `now + remaining × average partition duration`, computed here (also
    /// `now` itself when nothing remains).
    Computed,
    /// The bot's forecast from the partition history (P50, or P90 for the
    /// tiers configured so).
    Forecast,
    /// No estimate possible.
    Unknown,
}

/// `now + remaining × avg_ms`, saturating at the latest representable time
/// rather than overflowing (such an ETA is hopelessly late either way).
fn computed_eta(now: DateTime<Utc>, remaining: i64, avg_ms: f64) -> DateTime<Utc> {
    // `as` saturates on overflow, which is what we want here.
    let total_ms = (remaining as f64 * avg_ms).round() as i64;
    Duration::try_milliseconds(total_ms)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Servo's `estimated_completion_at` when it can be trusted: the job is
/// running or resuming, its heartbeat (written with the ETA after each
/// partition) is no older than `eta_fresh_for`, and the ETA is not already
/// past. Servo leaves the ETA as it was after a pause or on completion.
pub fn fresh_servo_eta(
    job: &JobSnapshot,
    now: DateTime<Utc>,
    thresholds: &RiskThresholds,
) -> Option<DateTime<Utc>> {
    if !matches!(job.state, JobState::Running | JobState::Resuming) {
        return None;
    }
    let (eta, heartbeat) = (job.estimated_completion_at?, job.heartbeat_at?);
    (now.signed_duration_since(heartbeat) <= thresholds.eta_fresh_for && eta >= now).then_some(eta)
}

/// The ETA used for risk, and where it came from.
///
/// - Terminal job: no ETA.
/// - Nothing remaining: `now`.
/// - A forecast from the partition history: its P50 (or P90 for the tiers
///   judged on it), never before `now`.
/// - Running or resuming, with `heartbeat_at` no older than `eta_fresh_for`
///   and Servo's ETA not already in the past: Servo's ETA. Servo writes both
///   after each partition, so the heartbeat dates the ETA; an ETA in the past
///   with work left is wrong whatever its age.
/// - Otherwise `now + remaining × average` when an average is known (Servo's
///   `avg_partition_duration_ms`, else the mean of `recent_durations_ms`).
///   For a paused job this is its best case, as if resumed right now; for a
///   pending or waiting job, as if it started now.
/// - Otherwise unknown.
pub fn estimate_eta(
    job: &JobSnapshot,
    now: DateTime<Utc>,
    thresholds: &RiskThresholds,
) -> (Option<DateTime<Utc>>, EtaSource) {
    if job.state.is_terminal() {
        return (None, EtaSource::Unknown);
    }
    let remaining = job.remaining();
    if remaining == 0 {
        return (Some(now), EtaSource::Computed);
    }
    if let Some((p50, p90)) = job.forecast {
        let eta = if job.judge_on_p90 { p90 } else { p50 };
        return (Some(eta.max(now)), EtaSource::Forecast);
    }
    if let Some(eta) = fresh_servo_eta(job, now, thresholds) {
        return (Some(eta), EtaSource::Servo);
    }
    match job.average_partition_ms() {
        Some(avg) => (Some(computed_eta(now, remaining, avg)), EtaSource::Computed),
        None => (None, EtaSource::Unknown),
    }
}

// ---------------------------------------------------------------------------
// Bottlenecks
// ---------------------------------------------------------------------------

/// Fewest recent durations needed to compare thirds.
pub const MIN_TREND_SAMPLES: usize = 6;
/// recent/earlier ratio from which durations count as rising.
pub const RISING_AT: f64 = 1.2;
/// recent/earlier ratio up to which durations count as falling.
pub const FALLING_AT: f64 = 0.83;

/// How partition durations move: mean of the last third of the recent
/// durations against the mean of the first third.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "trend", rename_all = "snake_case")]
pub enum DurationTrend {
    /// recent/earlier ≥ [`RISING_AT`].
    Rising {
        ratio: f64,
    },
    /// recent/earlier ≤ [`FALLING_AT`].
    Falling {
        ratio: f64,
    },
    Steady,
    /// Fewer than [`MIN_TREND_SAMPLES`] durations, or an earlier mean of 0.
    Unknown,
}

/// Compares the last third of `durations_ms` (oldest first) with the first
/// third; the middle third is ignored so the two ends are clearly apart.
/// Negative durations are dropped as bad data.
pub fn duration_trend(durations_ms: &[i64]) -> DurationTrend {
    let durations = valid_durations(durations_ms);
    if durations.len() < MIN_TREND_SAMPLES {
        return DurationTrend::Unknown;
    }
    let third = durations.len() / 3;
    let (Some(earlier), Some(recent)) = (
        mean(&durations[..third]),
        mean(&durations[durations.len() - third..]),
    ) else {
        return DurationTrend::Unknown;
    };
    if earlier <= 0.0 {
        return DurationTrend::Unknown;
    }
    let ratio = recent / earlier;
    if ratio >= RISING_AT {
        DurationTrend::Rising { ratio }
    } else if ratio <= FALLING_AT {
        DurationTrend::Falling { ratio }
    } else {
        DurationTrend::Steady
    }
}

/// Something slowing a job down, shown with every alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bottleneck {
    /// Recent partitions take `ratio` times as long as earlier ones.
    DurationsRising { ratio: f64 },
    /// Some partitions failed; `ratio` = failed / (completed + failed).
    FailedPartitions {
        failed: i64,
        completed: i64,
        ratio: f64,
    },
    /// Upstream jobs not yet completed.
    WaitingUpstream { jobs: i64 },
    /// The job is paused and makes no progress.
    Paused { since: Option<DateTime<Utc>> },
}

impl Bottleneck {
    /// One short line for the alert.
    pub fn describe(&self) -> String {
        match self {
            Bottleneck::DurationsRising { ratio } => {
                format!("Partition durations rising: recent {ratio:.1}× earlier")
            }
            Bottleneck::FailedPartitions {
                failed,
                completed,
                ratio,
            } => {
                let pct = ratio * 100.0;
                // Slack markup: a bare `<` would pair with the next `>` (a
                // date token's) and garble the message.
                let pct = if pct > 0.0 && pct < 0.5 {
                    "&lt;1%".to_string()
                } else {
                    format!("{pct:.0}%")
                };
                let noun = if *completed == 1 {
                    "partition"
                } else {
                    "partitions"
                };
                format!("{failed} failed vs {completed} completed {noun} ({pct})")
            }
            Bottleneck::WaitingUpstream { jobs } => {
                let noun = if *jobs == 1 { "job" } else { "jobs" };
                format!("Waiting on {jobs} upstream {noun}")
            }
            Bottleneck::Paused { since: Some(at) } => {
                // Slack markup: a date token, shown in each reader's own zone.
                format!(
                    "Paused: no progress since {}",
                    crate::domain::text::date_token(*at)
                )
            }
            Bottleneck::Paused { since: None } => "Paused: no progress until resumed".to_string(),
        }
    }
}

/// The job's bottlenecks, in a fixed order: rising durations, failed
/// partitions, upstream jobs, paused. Falling or steady durations are not
/// bottlenecks and are left out.
pub fn bottlenecks(job: &JobSnapshot) -> Vec<Bottleneck> {
    let mut found = Vec::new();
    if let DurationTrend::Rising { ratio } = duration_trend(&job.recent_durations_ms) {
        found.push(Bottleneck::DurationsRising { ratio });
    }
    if job.failed_partitions > 0 {
        let failed = job.failed_partitions;
        let completed = job.completed_partitions.max(0);
        found.push(Bottleneck::FailedPartitions {
            failed,
            completed,
            ratio: failed as f64 / (completed + failed) as f64,
        });
    }
    let waiting = job.waiting_upstream();
    if waiting > 0 {
        found.push(Bottleneck::WaitingUpstream { jobs: waiting });
    }
    if job.state == JobState::Paused {
        found.push(Bottleneck::Paused {
            since: job.paused_at,
        });
    }
    found
}

// ---------------------------------------------------------------------------
// Assessment
// ---------------------------------------------------------------------------

/// The verdict on one job at one poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The ETA risk was judged on (a paused job's best case); `None` when
    /// unknown or the job is finished.
    pub eta: Option<DateTime<Utc>>,
    pub eta_source: EtaSource,
    /// The runbook severity; `None` with no deadline, no ETA, a passed
    /// deadline or a finished job. `+∞` when the deadline is now and work
    /// remains (serialises to JSON `null`).
    pub severity: Option<f64>,
    pub band: RiskBand,
    /// `now > deadline` while the job is active: a fact, never softened.
    pub breached: bool,
    /// The job is paused: no progress, its ETA is a best case.
    pub stalled: bool,
    pub remaining: i64,
    pub tier: SlaTier,
    pub bottlenecks: Vec<Bottleneck>,
}

impl Assessment {
    /// Orders assessments riskiest first: by band, then by severity (higher
    /// first, missing last), then by tier (more important first). Use with
    /// `sort_by`.
    pub fn riskiest_first(a: &Assessment, b: &Assessment) -> Ordering {
        b.band
            .cmp(&a.band)
            .then_with(|| match (a.severity, b.severity) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| b.tier.cmp(&a.tier))
    }
}

/// Assesses one job. `previous_band` is the band reported at the last poll
/// (for hysteresis); pass `None` for a fresh verdict.
///
/// In order:
/// 1. Terminal job → `Finished` (not breached, whatever the deadline).
/// 2. No deadline → `NoSla`.
/// 3. `now > deadline` → `Breached`.
/// 4. Nothing remaining → `OnTrack` (no hysteresis: no estimate left).
/// 5. Deadline exactly now with work remaining → `High`, severity `+∞`.
/// 6. ETA known → [`band_with_hysteresis`] on its severity; ETA unknown →
///    `Unknown`.
/// 7. Paused with its deadline within `paused_risk_window` → at least `Low`.
pub fn assess(
    job: &JobSnapshot,
    now: DateTime<Utc>,
    thresholds: &RiskThresholds,
    previous_band: Option<RiskBand>,
) -> Assessment {
    let remaining = job.remaining();
    let mut assessment = Assessment {
        eta: None,
        eta_source: EtaSource::Unknown,
        severity: None,
        band: RiskBand::Finished,
        breached: false,
        stalled: job.state == JobState::Paused,
        remaining,
        tier: SlaTier::from_priority(job.priority),
        bottlenecks: bottlenecks(job),
    };
    if job.state.is_terminal() {
        return assessment;
    }
    let (eta, eta_source) = estimate_eta(job, now, thresholds);
    assessment.eta = eta;
    assessment.eta_source = eta_source;

    let Some(deadline) = job.sla_deadline_at else {
        assessment.band = RiskBand::NoSla;
        return assessment;
    };
    if now > deadline {
        assessment.band = RiskBand::Breached;
        assessment.breached = true;
        return assessment;
    }
    let sev = eta.and_then(|eta| severity(eta, deadline, now));
    if remaining == 0 {
        assessment.severity = sev;
        assessment.band = RiskBand::OnTrack;
        return assessment;
    }
    if deadline == now {
        assessment.severity = Some(f64::INFINITY);
        assessment.band = RiskBand::High;
        return assessment;
    }
    assessment.severity = sev;
    let mut band = match sev {
        Some(s) => band_with_hysteresis(previous_band, s, thresholds),
        None => RiskBand::Unknown,
    };
    if assessment.stalled && deadline.signed_duration_since(now) <= thresholds.paused_risk_window {
        band = band.max(RiskBand::Low);
    }
    assessment.band = band;
    assessment
}

/// The band the job would have if its deadline were `new_deadline`, for
/// showing the effect of a proposed extension. A fresh verdict: no
/// hysteresis from the current band.
pub fn severity_if_deadline(
    job: &JobSnapshot,
    now: DateTime<Utc>,
    new_deadline: DateTime<Utc>,
    thresholds: &RiskThresholds,
) -> RiskBand {
    let mut proposed = job.clone();
    proposed.sla_deadline_at = Some(new_deadline);
    assess(&proposed, now, thresholds, None).band
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    fn mins(n: i64) -> Duration {
        Duration::minutes(n)
    }

    fn at(offset_mins: i64) -> DateTime<Utc> {
        t0() + mins(offset_mins)
    }

    /// A running job at `t0()`: 60 of 100 partitions left at 1 min each, so
    /// the computed ETA is `at(60)`; deadline `at(120)` (on track); fresh
    /// heartbeat, no Servo ETA.
    fn job() -> JobSnapshot {
        JobSnapshot {
            id: "job-1".into(),
            asset_name: "revenue_daily".into(),
            state: JobState::Running,
            priority: 5,
            total_partitions: 100,
            completed_partitions: 40,
            failed_partitions: 0,
            skipped_partitions: 0,
            estimated_completion_at: None,
            avg_partition_duration_ms: Some(60_000),
            heartbeat_at: Some(at(-1)),
            started_at: Some(at(-40)),
            paused_at: None,
            sla_deadline_at: Some(at(120)),
            upstream_job_count: 0,
            completed_upstream_jobs: 0,
            recent_durations_ms: vec![60_000; 10],
            forecast: None,
            judge_on_p90: false,
        }
    }

    fn no_estimate(j: &mut JobSnapshot) {
        j.completed_partitions = 0;
        j.avg_partition_duration_ms = None;
        j.recent_durations_ms.clear();
    }

    #[test]
    fn band_for_follows_the_runbook_boundaries() {
        use RiskBand::*;
        let th = RiskThresholds::default();
        #[rustfmt::skip]
        let cases: &[(&str, f64, RiskBand)] = &[
            ("eta exactly at the deadline is on track", 0.0,           OnTrack),
            ("eta before the deadline is on track",    -0.3,           OnTrack),
            ("a tiny delay is low",                     1e-9,          Low),
            ("0.19 is low",                             0.19,          Low),
            ("0.20 is medium",                          0.20,          Medium),
            ("0.50 is still medium",                    0.50,          Medium),
            ("0.5000001 is high",                       0.500_000_1,   High),
            ("infinite severity is high",               f64::INFINITY, High),
            ("NaN is unknown",                          f64::NAN,      Unknown),
        ];
        for (name, sev, want) in cases {
            assert_eq!(band_for(*sev, &th), *want, "{name}");
        }
    }

    #[test]
    fn severity_is_lateness_over_time_left() {
        // (name, eta, deadline, expected), times in minutes after now
        #[rustfmt::skip]
        let cases: &[(&str, i64, i64, Option<f64>)] = &[
            ("ten late out of fifty left is 0.2",              60,  50, Some(0.2)),
            ("thirty late out of thirty left is 1.0",          60,  30, Some(1.0)),
            ("sixty early out of 120 left is -0.5",            60, 120, Some(-0.5)),
            ("an eta equal to the deadline is zero",           50,  50, Some(0.0)),
            ("deadline now and eta later is infinite",         10,   0, Some(f64::INFINITY)),
            ("deadline now and eta now is zero",                0,   0, Some(0.0)),
            ("deadline now and eta earlier is minus infinity", -5,   0, Some(f64::NEG_INFINITY)),
            ("a deadline already past has no severity",        10,  -1, None),
        ];
        for (name, eta, deadline, want) in cases {
            assert_eq!(severity(at(*eta), at(*deadline), t0()), *want, "{name}");
        }
    }

    #[test]
    fn hysteresis_rises_at_once_and_falls_only_past_the_margin() {
        use RiskBand::*;
        let th = RiskThresholds::default();
        #[rustfmt::skip]
        let cases: &[(&str, Option<RiskBand>, f64, RiskBand)] = &[
            ("without a previous band the plain threshold applies",   None,           0.18,        Low),
            ("medium stays medium at 0.18",                           Some(Medium),   0.18,        Medium),
            ("medium stays medium at 0.16",                           Some(Medium),   0.16,        Medium),
            ("medium drops to low at 0.14",                           Some(Medium),   0.14,        Low),
            ("low rises to medium at exactly 0.20",                   Some(Low),      0.20,        Medium),
            ("on track rises straight to high",                       Some(OnTrack),  0.9,         High),
            ("medium rises to high just above 0.50",                  Some(Medium),   0.500_000_1, High),
            ("high stays high at 0.47",                               Some(High),     0.47,        High),
            ("high drops to medium at 0.44",                          Some(High),     0.44,        Medium),
            ("high falling to 0.18 keeps medium's margin too",        Some(High),     0.18,        Medium),
            ("high falling to 0.10 lands on low",                     Some(High),     0.10,        Low),
            ("low stays low at an eta equal to the deadline",         Some(Low),      0.0,         Low),
            ("low stays low with the eta only just before deadline",  Some(Low),     -0.02,        Low),
            ("low recovers to on track past the margin",              Some(Low),     -0.06,        OnTrack),
            ("medium slightly early keeps low",                       Some(Medium),  -0.02,        Low),
            ("medium far below recovers to on track",                 Some(Medium),  -0.2,         OnTrack),
            ("a previous breach (deadline extended) is not held",     Some(Breached), 0.1,         Low),
            ("a previous unknown is not held",                        Some(Unknown), -0.02,        OnTrack),
        ];
        for (name, prev, sev, want) in cases {
            assert_eq!(band_with_hysteresis(*prev, *sev, &th), *want, "{name}");
        }
    }

    struct Case {
        name: &'static str,
        setup: fn(&mut JobSnapshot),
        previous: Option<RiskBand>,
        band: RiskBand,
        source: EtaSource,
        breached: bool,
        stalled: bool,
    }

    const fn case(
        name: &'static str,
        setup: fn(&mut JobSnapshot),
        band: RiskBand,
        source: EtaSource,
    ) -> Case {
        Case {
            name,
            setup,
            previous: None,
            band,
            source,
            breached: false,
            stalled: false,
        }
    }

    impl Case {
        const fn after(mut self, previous: RiskBand) -> Self {
            self.previous = Some(previous);
            self
        }
        const fn breached(mut self) -> Self {
            self.breached = true;
            self
        }
        const fn stalled(mut self) -> Self {
            self.stalled = true;
            self
        }
    }

    #[test]
    fn assess_gives_the_expected_band() {
        use EtaSource::{Computed, Servo, Unknown as NoEta};
        use RiskBand::*;
        let cases = [
            case(
                "an eta before the deadline is on track",
                |_| {},
                OnTrack,
                Computed,
            ),
            case(
                "no deadline means no sla and no risk",
                |j| j.sla_deadline_at = None,
                NoSla,
                Computed,
            ),
            case(
                "an eta 20% late is medium",
                |j| j.sla_deadline_at = Some(at(50)),
                Medium,
                Computed,
            ),
            case(
                "an eta 10% late is low",
                |j| {
                    j.completed_partitions = 45;
                    j.sla_deadline_at = Some(at(50));
                },
                Low,
                Computed,
            ),
            case(
                "an eta 100% late is high",
                |j| j.sla_deadline_at = Some(at(30)),
                High,
                Computed,
            ),
            case(
                "a deadline already past is breached",
                |j| j.sla_deadline_at = Some(at(-1)),
                Breached,
                Computed,
            )
            .breached(),
            case(
                "a breach is not softened by a previous on-track band",
                |j| j.sla_deadline_at = Some(at(-1)),
                Breached,
                Computed,
            )
            .after(OnTrack)
            .breached(),
            case(
                "a deadline equal to now with work left is high",
                |j| j.sla_deadline_at = Some(at(0)),
                High,
                Computed,
            ),
            case(
                "a deadline equal to now with no work left is on track",
                |j| {
                    j.completed_partitions = 100;
                    j.sla_deadline_at = Some(at(0));
                },
                OnTrack,
                Computed,
            ),
            case(
                "no work left is on track even after a medium band",
                |j| j.completed_partitions = 100,
                OnTrack,
                Computed,
            )
            .after(Medium),
            case(
                "skipped and failed partitions are not remaining work",
                |j| {
                    j.failed_partitions = 10;
                    j.skipped_partitions = 10;
                    j.sla_deadline_at = Some(at(50));
                },
                OnTrack,
                Computed,
            ),
            case(
                "no partition completed and no average is unknown and not at risk",
                no_estimate,
                Unknown,
                NoEta,
            ),
            case(
                "an unknown eta past the deadline is breached",
                |j| {
                    no_estimate(j);
                    j.sla_deadline_at = Some(at(-5));
                },
                Breached,
                NoEta,
            )
            .breached(),
            case(
                "the mean of recent durations stands in for a missing average",
                |j| {
                    j.avg_partition_duration_ms = None;
                    j.recent_durations_ms = vec![30_000, 90_000];
                    j.sla_deadline_at = Some(at(50));
                },
                Medium,
                Computed,
            ),
            case(
                "a fresh servo eta is used",
                |j| {
                    j.estimated_completion_at = Some(at(40));
                    j.heartbeat_at = Some(at(-2));
                    j.sla_deadline_at = Some(at(50));
                },
                OnTrack,
                Servo,
            ),
            case(
                "a stale servo eta falls back to the computed eta",
                |j| {
                    j.estimated_completion_at = Some(at(40));
                    j.heartbeat_at = Some(at(-30));
                    j.sla_deadline_at = Some(at(50));
                },
                Medium,
                Computed,
            ),
            case(
                "a servo eta without a heartbeat is not trusted",
                |j| {
                    j.estimated_completion_at = Some(at(40));
                    j.heartbeat_at = None;
                    j.sla_deadline_at = Some(at(50));
                },
                Medium,
                Computed,
            ),
            case(
                "a servo eta already in the past is not trusted",
                |j| {
                    j.estimated_completion_at = Some(at(-5));
                    j.sla_deadline_at = Some(at(50));
                },
                Medium,
                Computed,
            ),
            case(
                "a resuming job uses servo's eta like a running one",
                |j| {
                    j.state = JobState::Resuming;
                    j.estimated_completion_at = Some(at(40));
                    j.sla_deadline_at = Some(at(50));
                },
                OnTrack,
                Servo,
            ),
            case(
                "a paused job is judged on its best case and marked stalled",
                |j| {
                    j.state = JobState::Paused;
                    j.paused_at = Some(at(-20));
                    j.estimated_completion_at = Some(at(40));
                    j.sla_deadline_at = Some(at(50));
                },
                Medium,
                Computed,
            )
            .stalled(),
            case(
                "a paused job on track but near its deadline is at least low",
                |j| j.state = JobState::Paused,
                Low,
                Computed,
            )
            .stalled(),
            case(
                "a paused job with no estimate near its deadline is at least low",
                |j| {
                    no_estimate(j);
                    j.state = JobState::Paused;
                },
                Low,
                NoEta,
            )
            .stalled(),
            case(
                "a paused job with no estimate and a distant deadline is unknown",
                |j| {
                    no_estimate(j);
                    j.state = JobState::Paused;
                    j.sla_deadline_at = Some(at(3 * 24 * 60));
                },
                Unknown,
                NoEta,
            )
            .stalled(),
            case(
                "a pending job with a known average is judged as if starting now",
                |j| {
                    j.state = JobState::Pending;
                    j.completed_partitions = 0;
                    j.sla_deadline_at = Some(at(50));
                },
                High,
                Computed,
            ),
            case(
                "a pending job with no average is unknown (not started)",
                |j| {
                    no_estimate(j);
                    j.state = JobState::Pending;
                },
                Unknown,
                NoEta,
            ),
            case(
                "a job waiting upstream with no average is unknown (not started)",
                |j| {
                    no_estimate(j);
                    j.state = JobState::WaitingUpstream;
                    j.upstream_job_count = 2;
                },
                Unknown,
                NoEta,
            ),
            case(
                "a job waiting upstream past its deadline is breached",
                |j| {
                    no_estimate(j);
                    j.state = JobState::WaitingUpstream;
                    j.sla_deadline_at = Some(at(-1));
                },
                Breached,
                NoEta,
            )
            .breached(),
            case(
                "a completed job is finished, not breached",
                |j| {
                    j.state = JobState::Completed;
                    j.sla_deadline_at = Some(at(-10));
                },
                Finished,
                NoEta,
            ),
            case(
                "a failed job is finished",
                |j| j.state = JobState::Failed,
                Finished,
                NoEta,
            ),
            case(
                "a cancelled job is finished",
                |j| j.state = JobState::Cancelled,
                Finished,
                NoEta,
            ),
            case(
                "a medium job at 0.18 stays medium",
                |j| {
                    j.completed_partitions = 41;
                    j.sla_deadline_at = Some(at(50));
                },
                Medium,
                Computed,
            )
            .after(Medium),
            case(
                "an at-risk job with its eta just before the deadline stays low",
                |j| {
                    j.completed_partitions = 41;
                    j.sla_deadline_at = Some(at(60));
                },
                Low,
                Computed,
            )
            .after(Low),
            case(
                "an at-risk job with its eta well before the deadline is on track",
                |j| {
                    j.completed_partitions = 50;
                    j.sla_deadline_at = Some(at(60));
                },
                OnTrack,
                Computed,
            )
            .after(Low),
        ];
        let th = RiskThresholds::default();
        for c in cases {
            let mut j = job();
            (c.setup)(&mut j);
            let a = assess(&j, t0(), &th, c.previous);
            assert_eq!(a.band, c.band, "{}: band", c.name);
            assert_eq!(a.eta_source, c.source, "{}: eta source", c.name);
            assert_eq!(a.breached, c.breached, "{}: breached", c.name);
            assert_eq!(a.stalled, c.stalled, "{}: stalled", c.name);
        }
    }

    #[test]
    fn assess_reports_eta_severity_remaining_and_tier() {
        let th = RiskThresholds::default();
        let mut j = job();
        j.sla_deadline_at = Some(at(50));
        j.failed_partitions = 5;
        j.skipped_partitions = 5;
        let a = assess(&j, t0(), &th, None);
        assert_eq!(a.remaining, 50);
        assert_eq!(a.eta, Some(at(50)));
        assert_eq!(a.severity, Some(0.0));
        assert_eq!(a.tier, SlaTier::Standard);

        j.sla_deadline_at = Some(at(0));
        assert_eq!(assess(&j, t0(), &th, None).severity, Some(f64::INFINITY));

        j.sla_deadline_at = Some(at(-1));
        assert_eq!(assess(&j, t0(), &th, None).severity, None);
    }

    #[test]
    fn remaining_never_goes_negative() {
        let mut j = job();
        j.completed_partitions = 120;
        assert_eq!(j.remaining(), 0);
        assert_eq!(
            estimate_eta(&j, t0(), &RiskThresholds::default()),
            (Some(t0()), EtaSource::Computed)
        );
    }

    #[test]
    fn a_huge_estimate_saturates_instead_of_overflowing() {
        let mut j = job();
        j.total_partitions = i64::MAX / 2;
        j.avg_partition_duration_ms = Some(i64::MAX / 2);
        let a = assess(&j, t0(), &RiskThresholds::default(), None);
        assert_eq!(a.eta, Some(DateTime::<Utc>::MAX_UTC));
        assert_eq!(a.band, RiskBand::High);
    }

    #[test]
    fn a_proposed_deadline_shows_the_band_it_would_give() {
        let th = RiskThresholds::default();
        let j = job(); // eta at(60)
        let cases: &[(&str, i64, RiskBand)] = &[
            (
                "a later deadline puts the job on track",
                120,
                RiskBand::OnTrack,
            ),
            ("a deadline 20% short is medium", 50, RiskBand::Medium),
            (
                "a deadline already past is breached",
                -1,
                RiskBand::Breached,
            ),
        ];
        for (name, deadline, want) in cases {
            assert_eq!(
                severity_if_deadline(&j, t0(), at(*deadline), &th),
                *want,
                "{name}"
            );
        }
    }

    #[test]
    fn duration_trend_compares_last_third_with_first() {
        use DurationTrend::*;
        #[rustfmt::skip]
        let cases: &[(&str, &[i64], DurationTrend)] = &[
            ("no samples is unknown",                        &[],                              Unknown),
            ("five samples are too few",                     &[100, 100, 100, 300, 300],       Unknown),
            ("durations 2.5 times longer are rising",        &[100, 100, 100, 100, 250, 250],  Rising { ratio: 2.5 }),
            ("exactly 1.2 times is rising",                  &[100, 100, 500, 1, 120, 120],    Rising { ratio: 1.2 }),
            ("1.1 times is steady",                          &[100, 100, 100, 100, 110, 110],  Steady),
            ("flat durations are steady",                    &[100; 9],                        Steady),
            ("halved durations are falling",                 &[200, 200, 150, 150, 100, 100],  Falling { ratio: 0.5 }),
            ("exactly 0.83 times is falling",                &[100, 100, 100, 100, 83, 83],    Falling { ratio: 0.83 }),
            ("a seventh sample falls in the ignored middle", &[100, 100, 1, 1, 1, 200, 200],   Rising { ratio: 2.0 }),
            ("an earlier mean of zero is unknown",           &[0, 0, 5, 5, 5, 5],              Unknown),
            ("negative samples are dropped as bad data",     &[-1, 100, 100, 100, 100, 100],   Unknown),
        ];
        for (name, durations, want) in cases {
            assert_eq!(duration_trend(durations), *want, "{name}");
        }
    }

    #[test]
    fn bottlenecks_are_described_in_one_line_each() {
        type BottleneckCase = (&'static str, fn(&mut JobSnapshot), &'static [&'static str]);
        let cases: &[BottleneckCase] = &[
            ("a healthy job has no bottleneck", |_| {}, &[]),
            (
                "rising durations are reported with their ratio",
                |j| j.recent_durations_ms = vec![100, 100, 100, 100, 210, 210],
                &["Partition durations rising: recent 2.1× earlier"],
            ),
            (
                "falling durations are not a bottleneck",
                |j| j.recent_durations_ms = vec![200, 200, 100, 100, 100, 100],
                &[],
            ),
            (
                "failed partitions are reported with their share",
                |j| j.failed_partitions = 3,
                &["3 failed vs 40 completed partitions (7%)"],
            ),
            (
                "a tiny failure share reads as under one percent",
                |j| {
                    j.completed_partitions = 999;
                    j.total_partitions = 2000;
                    j.failed_partitions = 1;
                },
                &["1 failed vs 999 completed partitions (&lt;1%)"],
            ),
            (
                "upstream jobs still running are reported",
                |j| {
                    j.upstream_job_count = 3;
                    j.completed_upstream_jobs = 1;
                },
                &["Waiting on 2 upstream jobs"],
            ),
            (
                "one upstream job reads in the singular",
                |j| j.upstream_job_count = 1,
                &["Waiting on 1 upstream job"],
            ),
            (
                "a paused job says since when",
                |j| {
                    j.state = JobState::Paused;
                    j.paused_at = Some(at(-60));
                },
                &["Paused: no progress since <!date^1714561200^{date_short_pretty} at {time}|2024-05-01 11:00 UTC>"],
            ),
            (
                "several bottlenecks come in a fixed order",
                |j| {
                    j.state = JobState::Paused;
                    j.failed_partitions = 3;
                    j.upstream_job_count = 1;
                    j.recent_durations_ms = vec![100, 100, 100, 100, 250, 250];
                },
                &[
                    "Partition durations rising: recent 2.5× earlier",
                    "3 failed vs 40 completed partitions (7%)",
                    "Waiting on 1 upstream job",
                    "Paused: no progress until resumed",
                ],
            ),
        ];
        for (name, setup, want) in cases {
            let mut j = job();
            setup(&mut j);
            let got: Vec<String> = bottlenecks(&j).iter().map(Bottleneck::describe).collect();
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn tiers_follow_priority_boundaries() {
        use SlaTier::*;
        let cases = [
            (-10, BelowBestEffort),
            (-1, BelowBestEffort),
            (0, BestEffort),
            (3, BestEffort),
            (4, Standard),
            (7, Standard),
            (8, Critical),
            (10, Critical),
        ];
        for (priority, want) in cases {
            assert_eq!(
                SlaTier::from_priority(priority),
                want,
                "priority {priority}"
            );
        }
    }

    #[test]
    fn tier_strings_round_trip() {
        for tier in SlaTier::ALL {
            assert_eq!(SlaTier::parse(tier.as_str()), Some(tier), "{tier:?} as_str");
            assert_eq!(SlaTier::parse(tier.label()), Some(tier), "{tier:?} label");
        }
        assert_eq!(SlaTier::Critical.as_str(), "critical");
        assert_eq!(SlaTier::BelowBestEffort.label(), "Below best effort");
        assert_eq!(SlaTier::parse("gold"), None);
    }

    #[test]
    fn band_strings_round_trip() {
        for band in RiskBand::ALL {
            assert_eq!(RiskBand::parse(band.as_str()), Some(band), "{band:?}");
        }
        let names: Vec<&str> = RiskBand::ALL.iter().map(|b| b.as_str()).collect();
        for name in ["on_track", "low", "medium", "high", "breached"] {
            assert!(names.contains(&name), "{name} is a band name");
        }
        assert_eq!(RiskBand::parse("On track"), Some(RiskBand::OnTrack));
        assert_eq!(RiskBand::parse("critical"), None);
    }

    #[test]
    fn job_state_strings_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state), "{state:?}");
        }
        let active: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, JobState::ALL[..5]);
    }

    #[test]
    fn only_low_and_worse_are_at_risk() {
        for band in RiskBand::ALL {
            let want = matches!(
                band,
                RiskBand::Low | RiskBand::Medium | RiskBand::High | RiskBand::Breached
            );
            assert_eq!(band.is_at_risk(), want, "{band:?}");
        }
    }

    #[test]
    fn each_band_has_its_colour() {
        let cases = [
            (RiskBand::OnTrack, "#2EB67D"),
            (RiskBand::Low, "#ECB22E"),
            (RiskBand::Medium, "#F2952F"),
            (RiskBand::High, "#E01E5A"),
            (RiskBand::Breached, "#8B0000"),
        ];
        for (band, colour) in cases {
            assert_eq!(band.colour(), colour, "{band:?}");
        }
    }

    #[test]
    fn bands_sort_riskiest_first() {
        use RiskBand::*;
        let mut bands = vec![
            Low, Finished, Breached, OnTrack, High, NoSla, Unknown, Medium,
        ];
        bands.sort_by(|a, b| b.cmp(a));
        assert_eq!(
            bands,
            [Breached, High, Medium, Low, Unknown, OnTrack, NoSla, Finished]
        );
    }

    #[test]
    fn assessments_sort_riskiest_first_then_by_severity_then_tier() {
        let th = RiskThresholds::default();
        let with = |deadline: i64, priority: i32| {
            let mut j = job();
            j.sla_deadline_at = Some(at(deadline));
            j.priority = priority;
            assess(&j, t0(), &th, None)
        };
        let mut list = [
            with(120, 9), // on track
            with(40, 1),  // 0.5: medium
            with(30, 1),  // 1.0: high
            with(20, 1),  // 2.0: high
            with(-1, 1),  // breached
            with(-1, 9),  // breached, critical
        ];
        list.sort_by(Assessment::riskiest_first);
        let got: Vec<(RiskBand, SlaTier)> = list.iter().map(|a| (a.band, a.tier)).collect();
        assert_eq!(
            got,
            [
                (RiskBand::Breached, SlaTier::Critical),
                (RiskBand::Breached, SlaTier::BestEffort),
                (RiskBand::High, SlaTier::BestEffort),
                (RiskBand::High, SlaTier::BestEffort),
                (RiskBand::Medium, SlaTier::BestEffort),
                (RiskBand::OnTrack, SlaTier::Critical),
            ]
        );
        assert_eq!(list[2].severity, Some(2.0));
        assert_eq!(list[3].severity, Some(1.0));
    }

    #[test]
    fn thresholds_from_config_values_keep_the_paused_window() {
        let th = RiskThresholds::new(0.2, 0.5, 0.05, std::time::Duration::from_secs(600));
        assert_eq!(th, RiskThresholds::default());
    }

    #[test]
    fn a_forecast_replaces_servos_eta_and_p90_is_used_for_the_tiers_that_ask() {
        let th = RiskThresholds::default();
        let mut j = job();
        // Servo says on time; the history says late: P50 at +130, P90 at +150.
        j.estimated_completion_at = Some(at(100));
        j.forecast = Some((at(130), at(150)));
        let a = assess(&j, t0(), &th, None);
        assert_eq!(a.eta_source, EtaSource::Forecast);
        assert_eq!(a.eta, Some(at(130)));
        assert_eq!(
            a.band,
            RiskBand::Low,
            "10 min late of 120: {:?}",
            a.severity
        );
        j.judge_on_p90 = true;
        let a = assess(&j, t0(), &th, None);
        assert_eq!(a.eta, Some(at(150)));
        assert_eq!(a.band, RiskBand::Medium, "30 of 120 min late");
        // A forecast in the past is clamped to now; finished jobs have none.
        j.forecast = Some((at(-10), at(-5)));
        assert_eq!(assess(&j, t0(), &th, None).eta, Some(t0()));
        j.state = JobState::Completed;
        assert_eq!(assess(&j, t0(), &th, None).eta, None);
    }
}
