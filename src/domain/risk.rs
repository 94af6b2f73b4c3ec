//! The words of the runbook every layer speaks: a job's state as Servo
//! spells it, its SLA tier and its risk band.

use serde::{Deserialize, Serialize};

/// Lower-cases, trims and turns `-` and spaces into `_`, so `parse` accepts
/// both the wire names (`best_effort`) and the labels (`Best effort`).
fn normalise(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['-', ' '], "_")
}

/// A Servo job's state, as Servo spells it (`waiting_upstream`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    WaitingUpstream,
    Running,
    Paused,
    Resuming,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    /// Every state, active ones first.
    pub const ALL: [JobState; 8] = [
        JobState::Pending,
        JobState::WaitingUpstream,
        JobState::Running,
        JobState::Paused,
        JobState::Resuming,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// Servo's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::WaitingUpstream => "waiting_upstream",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Resuming => "resuming",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Reads Servo's name for a state (case and `-`/`_` insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = normalise(s);
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Active jobs are the only ones assessed for risk: they may still miss
    /// their deadline.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Pending
                | JobState::WaitingUpstream
                | JobState::Running
                | JobState::Paused
                | JobState::Resuming
        )
    }

    /// Completed, failed or cancelled: the job will not change any more.
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }
}

// ---------------------------------------------------------------------------
// SLA tier
// ---------------------------------------------------------------------------

/// SLA tier derived from Servo's priority; ordered from least to most
/// important, so `max` picks the most important.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaTier {
    /// Priority below 0.
    BelowBestEffort,
    /// Priority 0..=3.
    BestEffort,
    /// Priority 4..=7.
    Standard,
    /// Priority 8..=10.
    Critical,
}

impl SlaTier {
    /// Every tier, least important first.
    pub const ALL: [SlaTier; 4] = [
        SlaTier::BelowBestEffort,
        SlaTier::BestEffort,
        SlaTier::Standard,
        SlaTier::Critical,
    ];

    /// Priorities outside Servo's -10..=10 still land in the nearest tier
    /// (above 10 is Critical, below -10 is BelowBestEffort).
    pub fn from_priority(priority: i32) -> Self {
        match priority {
            p if p >= 8 => SlaTier::Critical,
            p if p >= 4 => SlaTier::Standard,
            p if p >= 0 => SlaTier::BestEffort,
            _ => SlaTier::BelowBestEffort,
        }
    }

    /// Stable name used in config and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaTier::BelowBestEffort => "below_best_effort",
            SlaTier::BestEffort => "best_effort",
            SlaTier::Standard => "standard",
            SlaTier::Critical => "critical",
        }
    }

    /// Reads [`SlaTier::as_str`] or [`SlaTier::label`] forms.
    pub fn parse(s: &str) -> Option<Self> {
        let s = normalise(s);
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Human label for messages.
    pub fn label(self) -> &'static str {
        match self {
            SlaTier::BelowBestEffort => "Below best effort",
            SlaTier::BestEffort => "Best effort",
            SlaTier::Standard => "Standard",
            SlaTier::Critical => "Critical",
        }
    }
}

// ---------------------------------------------------------------------------
// Risk band
// ---------------------------------------------------------------------------

/// Outcome of an assessment. The derived `Ord` goes from least to most
/// worrying, so sorting with `Reverse` (or `b.cmp(a)`) lists the riskiest
/// first.
///
/// Besides the runbook's bands there are three that are not risk levels:
/// `Finished` (terminal job), `NoSla` (no deadline) and `Unknown` (a deadline
/// but no way to estimate the ETA yet, e.g. a job that has not started).
/// `Unknown` ranks above `OnTrack` because such a job cannot be shown to be
/// safe, but it is not "at risk".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskBand {
    /// The job is completed, failed or cancelled: not assessed.
    Finished,
    /// The job has no SLA deadline.
    NoSla,
    /// ETA at or before the deadline.
    OnTrack,
    /// Deadline ahead but no ETA can be estimated (nothing completed and no
    /// average duration), typically a job not started yet.
    Unknown,
    Low,
    Medium,
    High,
    /// The deadline has passed and the job is still active.
    Breached,
}

impl RiskBand {
    /// Every band, least worrying first.
    pub const ALL: [RiskBand; 8] = [
        RiskBand::Finished,
        RiskBand::NoSla,
        RiskBand::OnTrack,
        RiskBand::Unknown,
        RiskBand::Low,
        RiskBand::Medium,
        RiskBand::High,
        RiskBand::Breached,
    ];

    /// Stable name used in storage and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskBand::Finished => "finished",
            RiskBand::NoSla => "no_sla",
            RiskBand::OnTrack => "on_track",
            RiskBand::Unknown => "unknown",
            RiskBand::Low => "low",
            RiskBand::Medium => "medium",
            RiskBand::High => "high",
            RiskBand::Breached => "breached",
        }
    }

    /// Reads [`RiskBand::as_str`] forms (also "On track", "on-track").
    pub fn parse(s: &str) -> Option<Self> {
        let s = normalise(s);
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// Whether the job needs an alert: Low, Medium, High and Breached.
    /// Breached counts: it is past risk, but still needs attention.
    pub fn is_at_risk(self) -> bool {
        self >= RiskBand::Low
    }

    /// Human label for messages.
    pub fn label(self) -> &'static str {
        match self {
            RiskBand::Finished => "Finished",
            RiskBand::NoSla => "No SLA",
            RiskBand::OnTrack => "On track",
            RiskBand::Unknown => "ETA unknown",
            RiskBand::Low => "Low",
            RiskBand::Medium => "Medium",
            RiskBand::High => "High",
            RiskBand::Breached => "Breached",
        }
    }

    /// Slack emoji shortcode, for message text.
    pub fn emoji(self) -> &'static str {
        match self {
            RiskBand::Finished => ":white_check_mark:",
            RiskBand::NoSla => ":white_circle:",
            RiskBand::OnTrack => ":large_green_circle:",
            RiskBand::Unknown => ":grey_question:",
            RiskBand::Low => ":large_yellow_circle:",
            RiskBand::Medium => ":large_orange_circle:",
            RiskBand::High => ":red_circle:",
            RiskBand::Breached => ":rotating_light:",
        }
    }

    /// Hex colour for the attachment bar.
    pub fn colour(self) -> &'static str {
        match self {
            RiskBand::Finished => "#616061",
            RiskBand::NoSla => "#C7C7C7",
            RiskBand::OnTrack => "#2EB67D",
            RiskBand::Unknown => "#9E9E9E",
            RiskBand::Low => "#ECB22E",
            RiskBand::Medium => "#F2952F",
            RiskBand::High => "#E01E5A",
            RiskBand::Breached => "#8B0000",
        }
    }
}
