//! The `/backfill` grammar: job ids, deadlines and list filters, parsed into
//! types so the commands only ever see valid values.

use chrono::{DateTime, Duration, FixedOffset, Utc};
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
                crate::slack::render::date_token(current)
            ));
        }
        if new <= now {
            return Err(format!(
                "The new deadline {} is already in the past. {DEADLINE_EXAMPLES}",
                crate::slack::render::date_token(new)
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

/// Which jobs `/backfill list` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFilter {
    All,
    Running,
    Paused,
    AtRisk,
}

impl ListFilter {
    pub fn parse(s: Option<&str>) -> Result<ListFilter, String> {
        match s.map(|s| s.to_ascii_lowercase()) {
            None => Ok(ListFilter::All),
            Some(s) => match s.as_str() {
                "all" => Ok(ListFilter::All),
                "running" => Ok(ListFilter::Running),
                "paused" => Ok(ListFilter::Paused),
                "at-risk" | "at_risk" | "atrisk" | "risk" => Ok(ListFilter::AtRisk),
                _ => Err(format!(
                    "`{}` is not a list filter. Use `running`, `paused`, `at-risk` or `all`, e.g. `/backfill list at-risk`.",
                    short(&s)
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn job_ids_are_uuids_and_tolerate_backticks() {
        let id = "7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10";
        assert_eq!(JobId::parse(id).unwrap().to_string(), id);
        assert_eq!(JobId::parse(&format!("`{id}`")).unwrap().to_string(), id);
        let err = JobId::parse("1234").unwrap_err();
        assert!(err.contains("not a job id") && err.contains("/backfill list"));
    }

    #[test]
    fn rfc3339_deadlines_keep_their_time_zone() {
        let DeadlineSpec::At(t) = DeadlineSpec::parse("2026-12-01T18:00:00+01:00").unwrap() else {
            panic!()
        };
        assert_eq!(t.with_timezone(&Utc), utc("2026-12-01T17:00:00Z"));
        assert!(matches!(
            DeadlineSpec::parse("2026-12-01T18:00:00Z"),
            Ok(DeadlineSpec::At(_))
        ));
        assert!(matches!(
            DeadlineSpec::parse("2026-12-01t18:00:00z"),
            Ok(DeadlineSpec::At(_))
        ));
    }

    #[test]
    fn a_deadline_without_a_zone_says_to_add_one() {
        let err = DeadlineSpec::parse("2026-12-01T18:00:00").unwrap_err();
        assert!(err.contains("no time zone"), "{err}");
    }

    #[test]
    fn steps_add_to_the_current_deadline() {
        let cur = utc("2026-12-01T12:00:00Z");
        let now = utc("2026-12-01T10:00:00Z");
        for (step, expect) in [
            ("+90m", "2026-12-01T13:30:00Z"),
            ("+4h", "2026-12-01T16:00:00Z"),
            ("+1d", "2026-12-02T12:00:00Z"),
            ("+1h30m", "2026-12-01T13:30:00Z"),
        ] {
            let spec = DeadlineSpec::parse(step).unwrap();
            assert_eq!(spec.resolve(cur, now).unwrap(), utc(expect), "{step}");
        }
    }

    #[test]
    fn garbage_and_empty_deadlines_explain_with_an_example() {
        for bad in [
            "",
            "  ",
            "tomorrow",
            "+",
            "+4",
            "+4x",
            "+-4h",
            "4h",
            "+0h",
            "+100d",
            "+99999999999999999999h",
        ] {
            let err = DeadlineSpec::parse(bad).unwrap_err();
            assert!(err.contains("+4h"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_new_deadline_must_be_later_and_in_the_future() {
        let cur = utc("2026-12-01T12:00:00Z");
        let now = utc("2026-12-01T10:00:00Z");
        let earlier = DeadlineSpec::parse("2026-12-01T11:00:00Z").unwrap();
        assert!(earlier
            .resolve(cur, now)
            .unwrap_err()
            .contains("later than the current"));
        let same = DeadlineSpec::parse("2026-12-01T12:00:00Z").unwrap();
        assert!(same.resolve(cur, now).is_err());
        // The current deadline already passed: a step can still land in the past.
        let late_now = utc("2026-12-01T20:00:00Z");
        let step = DeadlineSpec::parse("+2h").unwrap();
        assert!(step
            .resolve(cur, late_now)
            .unwrap_err()
            .contains("in the past"));
    }

    #[test]
    fn a_step_past_the_last_representable_date_is_refused_not_a_panic() {
        let why = DeadlineSpec::Step(Duration::days(1))
            .resolve(DateTime::<Utc>::MAX_UTC, utc("2026-12-01T10:00:00Z"))
            .unwrap_err();
        assert!(why.contains(DEADLINE_EXAMPLES), "{why}");
    }

    #[test]
    fn list_filters_parse_and_reject_garbage() {
        assert_eq!(ListFilter::parse(None).unwrap(), ListFilter::All);
        assert_eq!(
            ListFilter::parse(Some("AT-RISK")).unwrap(),
            ListFilter::AtRisk
        );
        assert_eq!(
            ListFilter::parse(Some("paused")).unwrap(),
            ListFilter::Paused
        );
        assert!(ListFilter::parse(Some("done"))
            .unwrap_err()
            .contains("at-risk"));
    }
}
