//! A requested deadline, as people type it: a time, or a step from the
//! current deadline.

use super::job_id::short;
use chrono::{DateTime, Duration, FixedOffset, Utc};

/// A requested deadline: a time, or a step from the current deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineSpec {
    At(DateTime<FixedOffset>),
    Step(Duration),
}

pub const DEADLINE_EXAMPLES: &str =
    "Write an RFC 3339 time such as `2026-12-01T18:00:00Z` or `2026-12-01T18:00:00+01:00`, or a step from the current deadline such as `+90m`, `+4h` or `+1d`.";

impl DeadlineSpec {
    pub fn parse(s: &str) -> Result<DeadlineSpec, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err(format!("No deadline given. {DEADLINE_EXAMPLES}"));
        }
        if let Some(step) = s.strip_prefix('+') {
            return parse_step(step).map(DeadlineSpec::Step).map_err(|why| {
                format!("`{}` is not a step: {why}. {DEADLINE_EXAMPLES}", short(s))
            });
        }
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Ok(DeadlineSpec::At(t)),
            Err(_) => {
                let hint = if chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok()
                    || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").is_ok()
                {
                    " It has no time zone: add `Z` for UTC or an offset like `+01:00`."
                } else {
                    ""
                };
                Err(format!(
                    "`{}` is not a deadline.{hint} {DEADLINE_EXAMPLES}",
                    short(s)
                ))
            }
        }
    }

    /// The new deadline, given the current one. It must be later than the
    /// current deadline and in the future.
    pub fn resolve(
        self,
        current: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, String> {
        let new = match self {
            DeadlineSpec::At(t) => t.with_timezone(&Utc),
            // Checked: `current + d` panics past the last date chrono can hold.
            DeadlineSpec::Step(d) => current.checked_add_signed(d).ok_or_else(|| {
                format!("That step goes past the last date I can handle. {DEADLINE_EXAMPLES}")
            })?,
        };
        if new <= current {
            return Err(format!(
                "The new deadline must be later than the current one ({}). {DEADLINE_EXAMPLES}",
                super::text::date_token(current)
            ));
        }
        if new <= now {
            return Err(format!(
                "The new deadline {} is already in the past. {DEADLINE_EXAMPLES}",
                super::text::date_token(new)
            ));
        }
        Ok(new)
    }
}

/// `90m`, `4h`, `1d`, `1h30m`: minutes, hours and days, at most 90 days.
fn parse_step(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("the step has no amount".into());
    }
    let mut total = Duration::zero();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err("steps are a number and a unit (m, h or d)".into());
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_string())?;
        rest = &rest[digits..];
        let unit = rest
            .chars()
            .next()
            .ok_or("the step has no unit (m, h or d)")?;
        rest = &rest[unit.len_utf8()..];
        let step = match unit {
            'm' => Duration::minutes(n.min(1_000_000)),
            'h' => Duration::hours(n.min(100_000)),
            'd' => Duration::days(n.min(10_000)),
            other => return Err(format!("`{other}` is not a unit (use m, h or d)")),
        };
        total += step;
    }
    if total <= Duration::zero() {
        return Err("a step must be positive".into());
    }
    if total > Duration::days(90) {
        return Err("a step of more than 90 days is surely a typo".into());
    }
    Ok(total)
}
