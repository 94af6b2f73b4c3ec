//! Quiet times (issue 35): `[silences]`, `[[maintenance]]` and
//! `[escalation.hours.<tier>]`, as written and validated, and the small
//! calendar they need (days like `"mon-fri"`, local times in a time zone).

use super::duration::parse_duration;
use super::Problems;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use std::time::Duration;

/// How long a silence may be at most when `silences.max_duration` is unset.
pub const DEFAULT_SILENCE_MAX: Duration = Duration::from_secs(7 * 86_400);
/// How long after a maintenance window nothing pages, unless set.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(15 * 60);

/// What the quiet-time sections say, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct QuietConfig {
    /// `silences.max_duration`.
    pub silence_max: Duration,
    /// `[escalation.hours.<tier>]`, per SLA tier in the order critical,
    /// standard, best effort, below best effort; `None`: any hour.
    pub hours: [Option<PagingHours>; 4],
    /// `[[maintenance]]`.
    pub maintenance: Vec<MaintenanceWindow>,
}

impl Default for QuietConfig {
    fn default() -> Self {
        QuietConfig {
            silence_max: DEFAULT_SILENCE_MAX,
            hours: [None, None, None, None],
            maintenance: Vec::new(),
        }
    }
}

/// A set of weekdays: `"sat"`, `"mon-fri"`, `"mon,wed"`, `"fri-mon"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Days(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<u32, String> {
    let s = s.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| s == *d || (s.len() > 3 && s.starts_with(d)))
        .map(|i| i as u32)
        .ok_or_else(|| format!("'{s}' is not a day; write mon, tue, wed, thu, fri, sat or sun"))
}

impl Days {
    pub const ALL: Days = Days(0x7f);

    /// Parses a list of days and day ranges, comma separated.
    pub fn parse(s: &str) -> Result<Days, String> {
        if s.trim().is_empty() {
            return Err("is empty; write days such as \"mon-fri\", \"sat\" or \"mon,wed\"".into());
        }
        let mut bits = 0u8;
        for part in s.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    let mut d = a;
                    loop {
                        bits |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => bits |= 1 << day(part)?,
            }
        }
        Ok(Days(bits))
    }

    pub fn contains(self, d: Weekday) -> bool {
        self.0 & (1 << d.num_days_from_monday()) != 0
    }
}

/// `"08:00"`.
pub fn parse_clock(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("'{s}' is not a time of day; write HH:MM, e.g. \"08:00\""))
}

/// A time zone by its IANA name (`"Europe/Berlin"`, `"UTC"`).
pub fn parse_tz(s: &str) -> Result<Tz, String> {
    s.trim().parse::<Tz>().map_err(|_| {
        format!("'{s}' is not a time zone; write an IANA name such as \"Europe/Berlin\" or \"UTC\"")
    })
}

/// The instant a local date and time stand for (the earlier of two in a
/// fall-back hour; the first instant after a spring-forward gap).
fn local(tz: Tz, d: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
    let naive = d.and_time(t);
    match tz.from_local_datetime(&naive).earliest() {
        Some(at) => at.with_timezone(&Utc),
        None => {
            let later = naive + chrono::Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .map(|at| at.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
        }
    }
}

/// `[escalation.hours.<tier>]`: when a tier's alerts may page.
#[derive(Clone, Debug, PartialEq)]
pub struct PagingHours {
    pub days: Days,
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub tz: Tz,
    /// A breach waits for the hours too.
    pub hold_breaches: bool,
}

impl PagingHours {
    fn open_at(&self, now: DateTime<Utc>) -> bool {
        let here = now.with_timezone(&self.tz);
        let (d, t) = (here.date_naive(), here.time());
        if self.from < self.to {
            self.days.contains(d.weekday()) && self.from <= t && t < self.to
        } else {
            // Overnight (22:00-06:00): from the evening of a listed day.
            (self.days.contains(d.weekday()) && t >= self.from)
                || (d
                    .pred_opt()
                    .is_some_and(|p| self.days.contains(p.weekday()))
                    && t < self.to)
        }
    }

    /// `None` inside the hours; else when they next start.
    pub fn held_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.open_at(now) {
            return None;
        }
        let today = now.with_timezone(&self.tz).date_naive();
        (0..=8)
            .filter_map(|k| today.checked_add_days(chrono::Days::new(k)))
            .filter(|d| self.days.contains(d.weekday()))
            .map(|d| local(self.tz, d, self.from))
            .find(|start| *start > now)
    }
}

/// When a `[[maintenance]]` window is.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    Once {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    Weekly {
        days: Days,
        at: NaiveTime,
        length: Duration,
        tz: Tz,
    },
}

/// `[[maintenance]]`: a tenant's (or some of its assets') planned quiet.
#[derive(Clone, Debug, PartialEq)]
pub struct MaintenanceWindow {
    pub tenant: String,
    /// Globs on asset names (`*`, `?`); empty: every asset of the tenant.
    pub assets: Vec<String>,
    pub when: When,
    pub reason: Option<String>,
    /// `settle`: how long after the end nothing pages.
    pub settle: Duration,
}

impl MaintenanceWindow {
    pub fn covers(&self, tenant: &str, asset: &str) -> bool {
        self.tenant == tenant
            && (self.assets.is_empty() || self.assets.iter().any(|g| glob_match(g, asset)))
    }

    /// The occurrences (start, end) that overlap the week around `now`.
    pub fn occurrences(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match &self.when {
            When::Once { from, to } => vec![(*from, *to)],
            When::Weekly {
                days,
                at,
                length,
                tz,
            } => {
                let today = now.with_timezone(tz).date_naive();
                let len = chrono::Duration::from_std(*length).unwrap_or_default();
                let back = length.as_secs() / 86_400 + 2;
                (0..=back + 8)
                    .filter_map(|k| {
                        today
                            .checked_sub_days(chrono::Days::new(back))?
                            .checked_add_days(chrono::Days::new(k))
                    })
                    .filter(|d| days.contains(d.weekday()))
                    .map(|d| {
                        let start = local(*tz, d, *at);
                        (start, start + len)
                    })
                    .collect()
            }
        }
    }

    /// The occurrence `now` is in, if any.
    pub fn active_at(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.occurrences(now)
            .into_iter()
            .find(|(s, e)| *s <= now && now < *e)
    }

    /// The end of the last occurrence that ended at or before `now`.
    pub fn last_end(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.occurrences(now)
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| *e <= now)
            .max()
    }
}

use crate::domain::text::glob_match;

// ---------------------------------------------------------------------------
// As written.
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSilences {
    max_duration: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHoursByTier {
    critical: Option<RawHours>,
    standard: Option<RawHours>,
    best_effort: Option<RawHours>,
    below_best_effort: Option<RawHours>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHours {
    days: Option<String>,
    from: Option<String>,
    to: Option<String>,
    tz: Option<String>,
    hold_breaches: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    tenant: Option<String>,
    #[serde(default)]
    assets: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    days: Option<String>,
    at: Option<String>,
    #[serde(rename = "for")]
    length: Option<String>,
    tz: Option<String>,
    reason: Option<String>,
    settle: Option<String>,
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("'{s}' is not an RFC 3339 time; write e.g. \"2026-12-24T18:00:00Z\""))
}

fn positive(v: Option<&str>, key: &str, default: Duration, problems: &mut Problems) -> Duration {
    match v.map(parse_duration) {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            problems.push(key, "must be longer than zero");
            default
        }
        Some(Err(e)) => {
            problems.push(key, e);
            default
        }
    }
}

fn taken<T>(r: Result<T, String>, key: String, problems: &mut Problems) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(key, e);
            None
        }
    }
}

fn hours(raw: &RawHours, key: &str, problems: &mut Problems) -> Option<PagingHours> {
    let before = problems.0.len();
    let days = match raw.days.as_deref() {
        Some(d) => taken(Days::parse(d), format!("{key}.days"), problems),
        None => Some(Days::ALL),
    };
    let from = taken(
        raw.from
            .as_deref()
            .ok_or_else(|| "is missing; write the hour paging starts, e.g. \"08:00\"".to_string())
            .and_then(parse_clock),
        format!("{key}.from"),
        problems,
    );
    let to = taken(
        raw.to
            .as_deref()
            .ok_or_else(|| "is missing; write the hour paging stops, e.g. \"18:00\"".to_string())
            .and_then(parse_clock),
        format!("{key}.to"),
        problems,
    );
    let tz = taken(
        raw.tz
            .as_deref()
            .ok_or_else(|| "is missing; write a time zone such as \"Europe/Berlin\"".to_string())
            .and_then(parse_tz),
        format!("{key}.tz"),
        problems,
    );
    if let (Some(f), Some(t)) = (from, to) {
        if f == t {
            problems.push(
                format!("{key}.to"),
                "equals `from`: the hours would be empty; drop the section to page at any hour",
            );
        }
    }
    if problems.0.len() > before {
        return None;
    }
    Some(PagingHours {
        days: days?,
        from: from?,
        to: to?,
        tz: tz?,
        hold_breaches: raw.hold_breaches.unwrap_or(false),
    })
}

fn window(
    raw: &RawMaintenance,
    key: &str,
    tenants: &[&str],
    problems: &mut Problems,
) -> Option<MaintenanceWindow> {
    let before = problems.0.len();
    let tenant = match raw.tenant.as_deref() {
        None => {
            problems.push(
                format!("{key}.tenant"),
                "is missing; name the tenant it quiets",
            );
            String::new()
        }
        Some(t) if !tenants.contains(&t) => {
            problems.push(
                format!("{key}.tenant"),
                format!("'{t}' is not a tenant of [[tenants]]"),
            );
            String::new()
        }
        Some(t) => t.to_string(),
    };
    for (i, g) in raw.assets.iter().enumerate() {
        if g.trim().is_empty() {
            problems.push(
                format!("{key}.assets[{i}]"),
                "is empty; write an asset name or a glob such as \"orders_*\"",
            );
        }
    }
    let once = raw.from.is_some() || raw.to.is_some();
    let weekly = raw.days.is_some() || raw.at.is_some() || raw.length.is_some() || raw.tz.is_some();
    let when = match (once, weekly) {
        (true, true) => {
            problems.push(
                key,
                "has both from/to (one window) and days/at/for/tz (weekly); keep one",
            );
            None
        }
        (false, false) => {
            problems.push(
                key,
                "says neither when (from/to) nor how often (days/at/for/tz)",
            );
            None
        }
        (true, false) => {
            let from = raw.from.as_deref().map(rfc3339);
            let to = raw.to.as_deref().map(rfc3339);
            match (from, to) {
                (Some(Ok(f)), Some(Ok(t))) if f < t => Some(When::Once { from: f, to: t }),
                (Some(Ok(_)), Some(Ok(_))) => {
                    problems.push(format!("{key}.to"), "must be after `from`");
                    None
                }
                (f, t) => {
                    for (k, v) in [("from", f), ("to", t)] {
                        match v {
                            None => problems.push(
                                format!("{key}.{k}"),
                                "is missing (RFC 3339, e.g. \"2026-12-24T18:00:00Z\")",
                            ),
                            Some(Err(e)) => problems.push(format!("{key}.{k}"), e),
                            Some(Ok(_)) => {}
                        }
                    }
                    None
                }
            }
        }
        (false, true) => {
            let days = raw.days.as_deref().map(Days::parse);
            let at = raw.at.as_deref().map(parse_clock);
            let tz = raw.tz.as_deref().map(parse_tz).unwrap_or(Ok(Tz::UTC));
            let length = raw.length.as_deref().map(parse_duration);
            let mut bad = |k: &str, m: String| problems.push(format!("{key}.{k}"), m);
            match (days, at, length, tz) {
                (Some(Ok(days)), Some(Ok(at)), Some(Ok(length)), Ok(tz))
                    if !length.is_zero() && length <= Duration::from_secs(7 * 86_400) =>
                {
                    Some(When::Weekly {
                        days,
                        at,
                        length,
                        tz,
                    })
                }
                (d, a, l, z) => {
                    match d {
                        None => bad(
                            "days",
                            "is missing; write e.g. \"sat\" or \"mon-fri\"".into(),
                        ),
                        Some(Err(e)) => bad("days", e),
                        _ => {}
                    }
                    match a {
                        None => bad(
                            "at",
                            "is missing; write the local start, e.g. \"02:00\"".into(),
                        ),
                        Some(Err(e)) => bad("at", e),
                        _ => {}
                    }
                    match l {
                        None => bad("for", "is missing; write how long, e.g. \"3h\"".into()),
                        Some(Err(e)) => bad("for", e),
                        Some(Ok(l)) if l.is_zero() || l > Duration::from_secs(7 * 86_400) => {
                            bad("for", "must be longer than zero and at most 7d".into())
                        }
                        _ => {}
                    }
                    if let Err(e) = z {
                        bad("tz", e);
                    }
                    None
                }
            }
        }
    };
    let settle = positive(
        raw.settle.as_deref(),
        &format!("{key}.settle"),
        DEFAULT_SETTLE,
        problems,
    );
    if problems.0.len() > before {
        return None;
    }
    Some(MaintenanceWindow {
        tenant,
        assets: raw.assets.clone(),
        when: when?,
        reason: raw.reason.clone(),
        settle,
    })
}

pub(super) fn validate(
    silences: &RawSilences,
    hours_by_tier: &RawHoursByTier,
    maintenance: &[RawMaintenance],
    tenants: &[&str],
    problems: &mut Problems,
) -> QuietConfig {
    let silence_max = positive(
        silences.max_duration.as_deref(),
        "silences.max_duration",
        DEFAULT_SILENCE_MAX,
        problems,
    );
    let h = hours_by_tier;
    let mut per_tier: [Option<PagingHours>; 4] = [None, None, None, None];
    for (i, (name, raw)) in [
        ("critical", &h.critical),
        ("standard", &h.standard),
        ("best_effort", &h.best_effort),
        ("below_best_effort", &h.below_best_effort),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(raw) = raw {
            per_tier[i] = hours(raw, &format!("escalation.hours.{name}"), problems);
        }
    }
    let maintenance = maintenance
        .iter()
        .enumerate()
        .filter_map(|(i, m)| window(m, &format!("maintenance[{i}]"), tenants, problems))
        .collect();
    QuietConfig {
        silence_max,
        hours: per_tier,
        maintenance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn days_take_single_days_ranges_lists_and_wrapping_ranges() {
        let sat = Days::parse("sat").unwrap();
        assert!(sat.contains(Weekday::Sat) && !sat.contains(Weekday::Sun));
        let work = Days::parse("mon-fri").unwrap();
        assert!(work.contains(Weekday::Mon) && work.contains(Weekday::Fri));
        assert!(!work.contains(Weekday::Sat));
        let two = Days::parse("mon,wed").unwrap();
        assert!(two.contains(Weekday::Wed) && !two.contains(Weekday::Tue));
        let wrap = Days::parse("fri-mon").unwrap();
        assert!(wrap.contains(Weekday::Sun) && wrap.contains(Weekday::Mon));
        assert!(!wrap.contains(Weekday::Wed));
        assert_eq!(Days::parse("Monday-Sunday").unwrap(), Days::ALL);
        assert!(Days::parse("funday").unwrap_err().contains("not a day"));
        assert!(Days::parse("").is_err());
    }

    #[test]
    fn paging_hours_are_open_in_the_local_working_day_and_say_when_they_start() {
        let h = PagingHours {
            days: Days::parse("mon-fri").unwrap(),
            from: parse_clock("08:00").unwrap(),
            to: parse_clock("18:00").unwrap(),
            tz: parse_tz("Europe/Berlin").unwrap(),
            hold_breaches: false,
        };
        // Tuesday 2026-12-08 10:00 in Berlin is 09:00 UTC.
        assert_eq!(h.held_until(at("2026-12-08T09:00:00Z")), None);
        // Monday evening: held until Tuesday 08:00 CET (07:00 UTC).
        assert_eq!(
            h.held_until(at("2026-12-07T20:00:00Z")),
            Some(at("2026-12-08T07:00:00Z"))
        );
        // Saturday: held until Monday 08:00.
        assert_eq!(
            h.held_until(at("2026-12-12T12:00:00Z")),
            Some(at("2026-12-14T07:00:00Z"))
        );
        // Summer time moves it: 08:00 CEST is 06:00 UTC.
        assert_eq!(
            h.held_until(at("2026-07-06T05:00:00Z")),
            Some(at("2026-07-06T06:00:00Z"))
        );
    }

    #[test]
    fn overnight_hours_run_past_midnight() {
        let h = PagingHours {
            days: Days::parse("fri").unwrap(),
            from: parse_clock("22:00").unwrap(),
            to: parse_clock("06:00").unwrap(),
            tz: Tz::UTC,
            hold_breaches: false,
        };
        assert_eq!(h.held_until(at("2026-12-11T23:00:00Z")), None); // Fri
        assert_eq!(h.held_until(at("2026-12-12T05:00:00Z")), None); // Sat early
        assert_eq!(
            h.held_until(at("2026-12-12T07:00:00Z")),
            Some(at("2026-12-18T22:00:00Z"))
        );
    }

    #[test]
    fn a_weekly_window_is_active_in_its_occurrence_and_remembers_its_last_end() {
        let w = MaintenanceWindow {
            tenant: "acme".into(),
            assets: vec!["orders_*".into()],
            when: When::Weekly {
                days: Days::parse("sat").unwrap(),
                at: parse_clock("02:00").unwrap(),
                length: Duration::from_secs(3 * 3600),
                tz: Tz::UTC,
            },
            reason: None,
            settle: DEFAULT_SETTLE,
        };
        assert!(w.covers("acme", "orders_daily") && !w.covers("acme", "users"));
        assert!(!w.covers("globex", "orders_daily"));
        assert_eq!(
            w.active_at(at("2026-12-12T03:00:00Z")),
            Some((at("2026-12-12T02:00:00Z"), at("2026-12-12T05:00:00Z")))
        );
        assert_eq!(w.active_at(at("2026-12-12T05:00:00Z")), None);
        assert_eq!(
            w.last_end(at("2026-12-12T05:10:00Z")),
            Some(at("2026-12-12T05:00:00Z"))
        );
    }

    #[test]
    fn bad_sections_are_clear_problems() {
        let raw: RawHoursByTier =
            toml::from_str("[standard]\ndays = \"mon-fry\"\nfrom = \"8\"\ntz = \"Mars/Base\"\n")
                .unwrap();
        let maint: Vec<RawMaintenance> = vec![
            toml::from_str("tenant = \"nobody\"\nfrom = \"2026-12-24T18:00:00Z\"\nto = \"2026-12-24T10:00:00Z\"\n").unwrap(),
            toml::from_str("tenant = \"acme\"\ndays = \"sat\"\nat = \"02:00\"\n").unwrap(),
        ];
        let mut problems = Problems::default();
        let cfg = validate(
            &toml::from_str("max_duration = \"0s\"").unwrap(),
            &raw,
            &maint,
            &["acme"],
            &mut problems,
        );
        let keys: Vec<&str> = problems.0.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "silences.max_duration",
            "escalation.hours.standard.days",
            "escalation.hours.standard.from",
            "escalation.hours.standard.to",
            "escalation.hours.standard.tz",
            "maintenance[0].tenant",
            "maintenance[0].to",
            "maintenance[1].for",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert!(cfg.hours[1].is_none() && cfg.maintenance.is_empty());
    }
}
