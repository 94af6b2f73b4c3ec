//! The `/backfill` grammar: job ids, deadlines and list filters, parsed into
//! types so the commands only ever see valid values.

use crate::domain::job_id::short;

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
    use crate::domain::deadline::{DeadlineSpec, DEADLINE_EXAMPLES};
    use crate::domain::job_id::JobId;
    use chrono::{DateTime, Duration, Utc};

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
