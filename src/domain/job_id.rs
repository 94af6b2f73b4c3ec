//! A Servo job id as people type it.

use std::fmt;
use uuid::Uuid;

/// A Servo job id (a UUID), as typed in a slash command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobId(pub Uuid);

impl JobId {
    pub fn parse(s: &str) -> Result<JobId, String> {
        let t = s.trim().trim_matches(|c| c == '`' || c == '<' || c == '>');
        Uuid::parse_str(t).map(JobId).map_err(|_| {
            format!(
                "`{}` is not a job id. Job ids are UUIDs like `7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10`; `/backfill list` shows them.",
                short(s)
            )
        })
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Echoes user input back safely: at most 60 characters.
pub fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// How short a prefix of a job id may be: 8 characters (the first group of
/// the UUID), enough to be unique among a tenant's active jobs in practice.
pub const MIN_PREFIX: usize = 8;

/// A job as people name it in a command: its full id, a prefix of its id,
/// or its asset's name. Only a full id is known without asking Servo; the
/// others are looked up among the tenant's active jobs
/// (`crate::commands::lookup`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRef {
    Id(JobId),
    /// What was typed, trimmed of backticks: a prefix of an id (8 characters
    /// or more of hex digits and dashes) or an asset name.
    Named(String),
}

impl JobRef {
    /// Anything non-empty names a job; whether it names one is for the lookup.
    pub fn parse(s: &str) -> Result<JobRef, String> {
        if let Ok(id) = JobId::parse(s) {
            return Ok(JobRef::Id(id));
        }
        let t = s.trim().trim_matches(|c| c == '`' || c == '<' || c == '>');
        if t.is_empty() {
            return Err(
                "Which job? Give its id, the first 8 characters of it, or its asset's name, e.g. `/backfill status 7f3c2a9e` or `/backfill status revenue_daily`.".into(),
            );
        }
        Ok(JobRef::Named(t.to_string()))
    }

    /// Whether the text could be a prefix of an id (hex digits and dashes).
    pub fn looks_like_prefix(text: &str) -> bool {
        !text.is_empty() && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    }
}

impl From<JobId> for JobRef {
    fn from(id: JobId) -> Self {
        JobRef::Id(id)
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobRef::Id(id) => id.fmt(f),
            JobRef::Named(t) => f.write_str(&short(t)),
        }
    }
}
