//! A person's time zone as Slack says it (`users.info`): the IANA name
//! (`tz`) when chrono-tz knows it, so that a time said in their day ("09:00
//! tomorrow", "end of day") falls on the right side of a daylight-saving
//! change; the offset Slack gave (`tz_offset`, which is the offset *now*)
//! when the name is missing or unknown.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserZone {
    Named(Tz),
    Fixed(FixedOffset),
}

impl UserZone {
    /// UTC: what a time is said in when Slack did not say the person's zone.
    pub fn utc() -> Self {
        Self::Fixed(FixedOffset::east_opt(0).expect("zero is an offset"))
    }

    /// From `users.info`: the name when it is one, else the offset (clamped
    /// within a day); `None` when Slack gave neither.
    pub fn from_slack(name: Option<&str>, offset_secs: Option<i64>) -> Option<Self> {
        if let Some(tz) = name.and_then(|n| n.parse::<Tz>().ok()) {
            return Some(Self::Named(tz));
        }
        let secs = i32::try_from(offset_secs?.clamp(-86_399, 86_399)).ok()?;
        FixedOffset::east_opt(secs).map(Self::Fixed)
    }

    /// The IANA name, when the zone has one.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::Named(tz) => Some(tz.name()),
            Self::Fixed(_) => None,
        }
    }

    /// The offset from UTC at `t`, in seconds.
    pub fn offset_at(&self, t: DateTime<Utc>) -> i32 {
        match self {
            Self::Named(tz) => tz.offset_from_utc_datetime(&t.naive_utc()).fix(),
            Self::Fixed(o) => *o,
        }
        .local_minus_utc()
    }

    /// The person's calendar date at `t`.
    pub fn date_at(&self, t: DateTime<Utc>) -> NaiveDate {
        (t + Duration::seconds(self.offset_at(t).into())).date_naive()
    }

    /// `time` on `date` in this zone. A time the clocks skip (a spring-forward
    /// gap) is the instant an hour later on the wall clock; a time they pass
    /// twice (autumn) is the first.
    pub fn at(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        let local = date.and_time(time);
        match self {
            Self::Named(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .or_else(|| {
                    tz.from_local_datetime(&(local + Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc)),
            Self::Fixed(o) => o
                .from_local_datetime(&local)
                .single()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// How the zone is named to the person: `Europe/Berlin`, or `UTC+01:00`
    /// when only the offset is known.
    pub fn label(&self) -> String {
        match self {
            Self::Named(tz) => tz.name().to_string(),
            Self::Fixed(o) => {
                let secs = o.local_minus_utc();
                let sign = if secs < 0 { '-' } else { '+' };
                let a = secs.unsigned_abs();
                format!("UTC{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn nine() -> NaiveTime {
        NaiveTime::from_hms_opt(9, 0, 0).unwrap()
    }

    #[test]
    fn a_named_zone_knows_the_offset_of_the_day_asked_about() {
        let berlin = UserZone::from_slack(Some("Europe/Berlin"), Some(7200)).unwrap();
        assert_eq!(berlin.name(), Some("Europe/Berlin"));
        // Summer time (UTC+2) on 24 October, winter time (UTC+1) on the 26th:
        // the offset Slack gave on the 24th would put 09:00 an hour early.
        assert_eq!(berlin.offset_at(at("2026-10-24T12:00:00Z")), 7200);
        let d = NaiveDate::from_ymd_opt(2026, 10, 26).unwrap();
        assert_eq!(berlin.at(d, nine()), Some(at("2026-10-26T08:00:00Z")));
        let fixed = UserZone::from_slack(None, Some(7200)).unwrap();
        assert_eq!(fixed.at(d, nine()), Some(at("2026-10-26T07:00:00Z")));
        assert_eq!(fixed.label(), "UTC+02:00");
        assert_eq!(berlin.label(), "Europe/Berlin");
    }

    #[test]
    fn an_unknown_name_falls_back_to_the_offset_and_nothing_to_none() {
        let z = UserZone::from_slack(Some("Mars/Olympus"), Some(-5 * 3600)).unwrap();
        assert_eq!(z.label(), "UTC-05:00");
        assert_eq!(UserZone::from_slack(None, None), None);
        assert_eq!(UserZone::from_slack(Some("nowhere"), None), None);
        assert_eq!(
            UserZone::from_slack(None, Some(999_999)).unwrap().label(),
            "UTC+23:59"
        );
    }

    #[test]
    fn times_the_clocks_skip_or_repeat_are_still_times() {
        let ny = UserZone::from_slack(Some("America/New_York"), None).unwrap();
        // 02:30 on 8 March 2026 does not exist in New York (02:00 -> 03:00 EDT).
        let spring = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let t = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(ny.at(spring, t), Some(at("2026-03-08T07:30:00Z")));
        // 01:30 on 1 November 2026 happens twice: the first, in EDT.
        let autumn = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let t = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
        assert_eq!(ny.at(autumn, t), Some(at("2026-11-01T05:30:00Z")));
        // The date there: 03:00Z on the 2nd is still the 1st in New York.
        assert_eq!(
            ny.date_at(at("2026-11-02T03:00:00Z")),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        );
    }
}
