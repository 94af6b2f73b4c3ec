//! On-call rotations: who is on shift at an instant, from a list of members,
//! a shift length, a handoff time of day (and day of week) in a time zone and
//! the date the first member's first shift begins; overrides win over the
//! shift for their time. Pure arithmetic, no I/O.
//!
//! Shifts are counted in the rotation's local wall-clock time, so a handoff
//! at 09:00 stays at 09:00 across a daylight-saving change (that shift is an
//! hour shorter or longer) and whole days and weeks roll over month and year
//! ends as the calendar does.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// How long a shift is, in local wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shift(pub chrono::Duration);

impl Shift {
    /// `"1w"`, `"2d"`, `"12h"`, `"8h"`: a number and a unit (w, d, h), at
    /// least an hour and whole hours.
    pub fn parse(s: &str) -> Result<Shift, String> {
        let s = s.trim();
        let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
        let n: i64 = s[..digits].parse().map_err(|_| {
            format!("'{s}' is not a shift length; write a number and a unit (w, d, h), e.g. \"1w\" or \"12h\"")
        })?;
        let d = match &s[digits..] {
            "w" => chrono::Duration::weeks(n),
            "d" => chrono::Duration::days(n),
            "h" => chrono::Duration::hours(n),
            _ => {
                return Err(format!(
                    "'{s}' is not a shift length; write a number and a unit (w, d, h), e.g. \"1w\" or \"12h\""
                ))
            }
        };
        if n <= 0 || n > 10_000 {
            return Err(format!("'{s}' must be at least 1h (and sensible)"));
        }
        Ok(Shift(d))
    }
}

/// When shifts change hands: a time of day, and a day of the week for
/// week-long shifts written as `"mon 09:00"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    pub day: Option<Weekday>,
    pub at: NaiveTime,
}

impl Handoff {
    /// `"09:00"` or `"mon 09:00"`.
    pub fn parse(s: &str) -> Result<Handoff, String> {
        let bad = || format!("'{s}' is not a handoff; write \"09:00\" or \"mon 09:00\"");
        let mut parts = s.split_whitespace();
        let (day, time) = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), None, None) => (None, t),
            (Some(d), Some(t), None) => (Some(d.parse::<Weekday>().map_err(|_| bad())?), t),
            _ => return Err(bad()),
        };
        let at = NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| bad())?;
        Ok(Handoff { day, at })
    }
}

/// A rotation as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct Rotation {
    pub id: String,
    /// Slack user ids, in order.
    pub members: Vec<String>,
    pub shift: Shift,
    pub handoff: Handoff,
    pub tz: Tz,
    /// The date on which the first member's first shift begins (at the handoff time).
    pub start: NaiveDate,
    /// Tell the channels of the tenants whose path names it at each handoff.
    pub announce: bool,
}

/// One shift: its index (0 is the first member's first shift), who, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShiftSpan {
    pub index: i64,
    pub user: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Someone else on call instead of the shift's member, for a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub user: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Who is on call from when until when, shifts and overrides merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCall {
    pub user: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Whether an override (not the shift) puts them there.
    pub by_override: bool,
}

/// The instant a local date and time stand for (the earlier of two in a
/// fall-back hour; the first instant after a spring-forward gap).
pub fn local_instant(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive).earliest() {
        Some(at) => at.with_timezone(&Utc),
        None => {
            // In a gap: move forward by the minute until the clock exists.
            let mut later = naive;
            for _ in 0..180 {
                later += chrono::Duration::minutes(1);
                if let Some(at) = tz.from_local_datetime(&later).earliest() {
                    return at.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&naive)
        }
    }
}

impl Rotation {
    fn origin(&self) -> NaiveDateTime {
        self.start.and_time(self.handoff.at)
    }

    /// The local wall-clock time at which shift `index` begins.
    fn begins_local(&self, index: i64) -> NaiveDateTime {
        self.origin() + self.shift.0 * (index as i32)
    }

    /// Shift `index` (negative: before `start`; the order wraps around).
    pub fn shift_at_index(&self, index: i64) -> Option<ShiftSpan> {
        if self.members.is_empty() {
            return None;
        }
        let n = self.members.len() as i64;
        Some(ShiftSpan {
            index,
            user: self.members[index.rem_euclid(n) as usize].clone(),
            from: local_instant(self.tz, self.begins_local(index)),
            until: local_instant(self.tz, self.begins_local(index + 1)),
        })
    }

    /// The shift under way at `at`.
    pub fn shift_at(&self, at: DateTime<Utc>) -> Option<ShiftSpan> {
        let local = at.with_timezone(&self.tz).naive_local();
        let secs = self.shift.0.num_seconds().max(1);
        let mut index = (local - self.origin()).num_seconds().div_euclid(secs);
        // Wall-clock arithmetic can be an hour off around a DST change: settle
        // on the shift whose span holds the instant.
        for _ in 0..3 {
            let span = self.shift_at_index(index)?;
            if at < span.from {
                index -= 1;
            } else if at >= span.until {
                index += 1;
            } else {
                return Some(span);
            }
        }
        self.shift_at_index(index)
    }

    /// Who is on call at `at`, with overrides winning over the shift (the
    /// last override listed wins over earlier ones covering the same time),
    /// and until when that holds.
    pub fn on_call(&self, overrides: &[Override], at: DateTime<Utc>) -> Option<OnCall> {
        let shift = self.shift_at(at)?;
        let covering = overrides
            .iter()
            .enumerate()
            .rev()
            .find(|(_, o)| o.from <= at && at < o.until);
        let (user, from, mut until, by_override) = match covering {
            Some((_, o)) => (o.user.clone(), o.from.max(shift.from), o.until, true),
            None => (shift.user.clone(), shift.from, shift.until, false),
        };
        // What wins over this stretch and starts before it ends cuts it
        // short: any override, over a shift; a later-listed one, over an
        // override.
        let wins = |i: usize| covering.is_none_or(|(c, _)| i > c);
        if let Some(next) = overrides
            .iter()
            .enumerate()
            .filter(|(i, o)| wins(*i) && o.from > at && o.from < until)
            .map(|(_, o)| o.from)
            .min()
        {
            until = next;
        }
        Some(OnCall {
            user,
            from,
            until,
            by_override,
        })
    }

    /// Who is on call after the current stretch ends (skipping stretches of the same person).
    pub fn next_on_call(&self, overrides: &[Override], at: DateTime<Utc>) -> Option<OnCall> {
        let now = self.on_call(overrides, at)?;
        let mut probe = now.until;
        for _ in 0..8 {
            let next = self.on_call(overrides, probe)?;
            if next.user != now.user {
                return Some(next);
            }
            probe = next.until;
        }
        None
    }

    /// `user`'s next shift starting after `at` (overrides not considered).
    pub fn next_shift_of(&self, user: &str, at: DateTime<Utc>) -> Option<ShiftSpan> {
        let current = self.shift_at(at)?;
        (1..=self.members.len() as i64)
            .filter_map(|k| self.shift_at_index(current.index + k))
            .find(|s| s.user == user)
    }

    /// Whether the first shift starts on the handoff's day of the week.
    pub fn start_matches_day(&self) -> bool {
        self.handoff.day.is_none_or(|d| self.start.weekday() == d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rot(shift: &str, handoff: &str, tz: &str, start: &str, members: &[&str]) -> Rotation {
        Rotation {
            id: "primary".into(),
            members: members.iter().map(|s| s.to_string()).collect(),
            shift: Shift::parse(shift).unwrap(),
            handoff: Handoff::parse(handoff).unwrap(),
            tz: tz.parse().unwrap(),
            start: NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap(),
            announce: false,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn shifts_and_handoffs_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(Shift::parse("1w").unwrap().0, chrono::Duration::weeks(1));
        assert_eq!(Shift::parse("12h").unwrap().0, chrono::Duration::hours(12));
        assert!(Shift::parse("0d").is_err());
        assert!(Shift::parse("1 week").unwrap_err().contains("\"1w\""));
        let h = Handoff::parse("mon 09:00").unwrap();
        assert_eq!(h.day, Some(Weekday::Mon));
        assert_eq!(Handoff::parse("21:30").unwrap().day, None);
        assert!(Handoff::parse("someday 9").is_err());
    }

    #[test]
    fn weekly_shifts_hand_off_at_nine_local_across_both_dst_changes() {
        // Europe/Berlin: summer time begins 2026-03-29, ends 2026-10-25.
        let r = rot(
            "1w",
            "mon 09:00",
            "Europe/Berlin",
            "2026-03-23",
            &["U1", "U2", "U3"],
        );
        assert!(r.start_matches_day());
        // The first shift: Mon 23 Mar 09:00 CET (08:00 UTC) to Mon 30 Mar 09:00 CEST (07:00 UTC).
        let s = r.shift_at(utc("2026-03-29T12:00:00Z")).unwrap();
        assert_eq!(s.user, "U1");
        assert_eq!(s.from, utc("2026-03-23T08:00:00Z"));
        assert_eq!(s.until, utc("2026-03-30T07:00:00Z"));
        // An hour shorter than a week, and the next begins at 09:00 summer time.
        assert_eq!(s.until - s.from, chrono::Duration::hours(167));
        assert_eq!(r.shift_at(utc("2026-03-30T06:59:59Z")).unwrap().user, "U1");
        assert_eq!(r.shift_at(utc("2026-03-30T07:00:00Z")).unwrap().user, "U2");
        // Autumn: the shift holding 25 Oct is an hour longer.
        let s = r.shift_at(utc("2026-10-25T12:00:00Z")).unwrap();
        assert_eq!(s.from, utc("2026-10-19T07:00:00Z"));
        assert_eq!(s.until, utc("2026-10-26T08:00:00Z"));
        assert_eq!(s.until - s.from, chrono::Duration::hours(169));
    }

    #[test]
    fn twelve_hour_shifts_in_new_york_keep_nine_and_nine_over_the_spring_gap() {
        // America/New_York: 2026-03-08 02:00 EST jumps to 03:00 EDT.
        let r = rot(
            "12h",
            "09:00",
            "America/New_York",
            "2026-03-01",
            &["UA", "UB"],
        );
        let night = r.shift_at(utc("2026-03-08T06:00:00Z")).unwrap();
        assert_eq!(night.from, utc("2026-03-08T02:00:00Z")); // Sat 21:00 EST
        assert_eq!(night.until, utc("2026-03-08T13:00:00Z")); // Sun 09:00 EDT
        assert_eq!(night.until - night.from, chrono::Duration::hours(11));
        let day = r.shift_at(utc("2026-03-08T13:00:00Z")).unwrap();
        assert_eq!(day.until, utc("2026-03-09T01:00:00Z")); // Sun 21:00 EDT
        assert_ne!(night.user, day.user);
    }

    #[test]
    fn daily_shifts_roll_over_month_and_year_ends_and_leap_days() {
        let r = rot("1d", "09:00", "UTC", "2027-12-30", &["U1", "U2", "U3"]);
        assert_eq!(r.shift_at(utc("2027-12-31T10:00:00Z")).unwrap().user, "U2");
        let s = r.shift_at(utc("2028-01-01T08:59:00Z")).unwrap();
        assert_eq!(
            (s.user.as_str(), s.until),
            ("U2", utc("2028-01-01T09:00:00Z"))
        );
        assert_eq!(r.shift_at(utc("2028-01-01T09:00:00Z")).unwrap().user, "U3");
        // 2028 is a leap year: 29 Feb has its own shift.
        let feb29 = r.shift_at(utc("2028-02-29T12:00:00Z")).unwrap();
        let mar1 = r.shift_at(utc("2028-03-01T12:00:00Z")).unwrap();
        assert_eq!(mar1.index, feb29.index + 1);
        assert_eq!(feb29.from, utc("2028-02-29T09:00:00Z"));
        // Before the start the order runs backwards.
        assert_eq!(r.shift_at(utc("2027-12-29T10:00:00Z")).unwrap().user, "U3");
    }

    #[test]
    fn an_override_wins_for_its_time_and_cuts_the_shift_short() {
        let r = rot("1w", "mon 09:00", "UTC", "2026-12-07", &["U1", "U2"]);
        let o = Override {
            user: "U9".into(),
            from: utc("2026-12-09T12:00:00Z"),
            until: utc("2026-12-10T12:00:00Z"),
        };
        let before = r
            .on_call(std::slice::from_ref(&o), utc("2026-12-08T00:00:00Z"))
            .unwrap();
        assert_eq!((before.user.as_str(), before.until), ("U1", o.from));
        let next = r
            .next_on_call(std::slice::from_ref(&o), utc("2026-12-08T00:00:00Z"))
            .unwrap();
        assert_eq!(next.user, "U9");
        let during = r
            .on_call(std::slice::from_ref(&o), utc("2026-12-10T00:00:00Z"))
            .unwrap();
        assert!(during.by_override);
        assert_eq!((during.user.as_str(), during.until), ("U9", o.until));
        let after = r.on_call(&[o], utc("2026-12-10T12:00:00Z")).unwrap();
        assert_eq!(
            (after.user.as_str(), after.until),
            ("U1", utc("2026-12-14T09:00:00Z"))
        );
        assert_eq!(
            r.next_shift_of("U1", utc("2026-12-10T12:00:00Z"))
                .unwrap()
                .from,
            utc("2026-12-21T09:00:00Z")
        );
    }

    /// A later override inside an earlier one wins for its time: the
    /// earlier one's stretch ends where it starts, and resumes after it.
    #[test]
    fn a_later_override_inside_an_earlier_one_cuts_it_short() {
        let r = rot("1w", "mon 09:00", "UTC", "2026-12-07", &["U1", "U2"]);
        let carol = Override {
            user: "UCAROL".into(),
            from: utc("2026-12-09T10:00:00Z"),
            until: utc("2026-12-09T18:00:00Z"),
        };
        let dave = Override {
            user: "UDAVE".into(),
            from: utc("2026-12-09T12:00:00Z"),
            until: utc("2026-12-09T14:00:00Z"),
        };
        let both = [carol.clone(), dave.clone()];
        let at = utc("2026-12-09T11:00:00Z");
        let now = r.on_call(&both, at).unwrap();
        assert_eq!((now.user.as_str(), now.until), ("UCAROL", dave.from));
        let next = r.next_on_call(&both, at).unwrap();
        assert_eq!((next.user.as_str(), next.until), ("UDAVE", dave.until));
        let after = r.on_call(&both, dave.until).unwrap();
        assert_eq!((after.user.as_str(), after.until), ("UCAROL", carol.until));
        // Listed the other way round, the earlier-made one loses nothing to
        // the one it outranks.
        let reversed = [dave.clone(), carol.clone()];
        let now = r.on_call(&reversed, at).unwrap();
        assert_eq!((now.user.as_str(), now.until), ("UCAROL", carol.until));
    }
}
