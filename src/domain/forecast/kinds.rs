//! The kinds of synthetic backfill job the generators make (their
//! [`Pattern`]s), a generated job ([`Trace`]), and the constants the
//! generators share.

use chrono::{DateTime, Utc};

use super::PartitionObs;

/// Workload pattern of a synthetic trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Constant median duration.
    Steady,
    /// Durations rise linearly, +100% by the end of the job.
    Drifting,
    /// Daily keys; month-end days take 2x.
    MonthEnd,
    /// 15% of partitions need 2–3 attempts, each costing a full duration.
    Retries,
    /// Four partitions run at once.
    Parallel,
    /// Waits upstream 10–30 min before starting, and pauses 40 min
    /// somewhere between 35% and 65% of the job.
    Paused,
    /// Degrades halfway: from the middle on, partitions take 2.5x.
    Degraded,
    /// Heavy noise: log-space sigma 0.9 instead of 0.35.
    Noisy,
}

impl Pattern {
    /// All patterns, in table order.
    pub const ALL: [Pattern; 8] = [
        Pattern::Steady,
        Pattern::Drifting,
        Pattern::MonthEnd,
        Pattern::Retries,
        Pattern::Parallel,
        Pattern::Paused,
        Pattern::Degraded,
        Pattern::Noisy,
    ];

    /// Short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Steady => "steady",
            Pattern::Drifting => "drifting",
            Pattern::MonthEnd => "month-end",
            Pattern::Retries => "retries",
            Pattern::Parallel => "parallel",
            Pattern::Paused => "paused",
            Pattern::Degraded => "degraded",
            Pattern::Noisy => "noisy",
        }
    }
}

/// A finished synthetic job.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Pattern it was generated with.
    pub pattern: Pattern,
    /// Seed it was generated with.
    pub seed: u64,
    /// Total partitions.
    pub total: i64,
    /// All partitions, completed.
    pub partitions: Vec<PartitionObs>,
}

impl Trace {
    /// Actual completion of the job: the last `completed_at`.
    pub fn actual_completion(&self) -> DateTime<Utc> {
        self.partitions
            .iter()
            .filter_map(|p| p.completed_at)
            .max()
            .unwrap_or_default()
    }
}

/// Median partition duration of the synthetic traces (ms).
pub const BASE_MEDIAN_MS: f64 = 120_000.0;
/// Log-space sigma of the duration noise.
pub const NOISE_SIGMA: f64 = 0.35;
/// Log-space sigma of the heavy-noise kind.
pub const HEAVY_NOISE_SIGMA: f64 = 0.9;
/// How much slower partitions get halfway through the degraded kind.
pub const DEGRADATION: f64 = 2.5;
