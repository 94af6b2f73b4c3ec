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
