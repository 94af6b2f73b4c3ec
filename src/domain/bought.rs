//! What each mitigation bought before (issue 38): the median change of the
//! ETA 30 minutes after the same action in the tenant, how many times it was
//! measured, and, for a recreate, the partition speed recreated jobs of the
//! asset reached, so its confirm dialog can say *by when* a recreate still
//! helps. Pure: the numbers come in ([`History`]), the lines go out.

use crate::domain::assessment::{band_for, severity, RiskThresholds};
use crate::domain::risk::RiskBand;
use crate::domain::text::{date_token, duration_words};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many of the last measured actions of a kind the median is over.
pub const LAST_MEASURED: usize = 10;

/// A mitigation whose history the dialogs tell, by its audit action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Recreate,
    Pause,
    Scaling,
    Extension,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Recreate, Kind::Pause, Kind::Scaling, Kind::Extension];

    /// The audit action that records it.
    pub fn action(self) -> &'static str {
        match self {
            Kind::Recreate => "recreate",
            Kind::Pause => "pause",
            Kind::Scaling => "request_scaling",
            Kind::Extension => "approve_extension",
        }
    }

    fn nouns(self) -> (&'static str, &'static str) {
        match self {
            Kind::Recreate => ("recreate", "recreates"),
            Kind::Pause => (
                "pause of lower-priority jobs",
                "pauses of lower-priority jobs",
            ),
            Kind::Scaling => ("scaling request", "scaling requests"),
            Kind::Extension => ("approved extension", "approved extensions"),
        }
    }
}

/// What the last measured actions of one kind bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bought {
    /// How many were measured (at most [`LAST_MEASURED`]).
    pub measured: usize,
    /// The median minutes the ETA moved earlier 30 minutes after
    /// (negative: later), rounded to the minute so the line is stable.
    pub median_min: i64,
}

/// The speed recreated jobs of one asset reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speed {
    /// Median partitions per hour, whole.
    pub per_hour: i64,
    /// Over how many recreated jobs.
    pub jobs: usize,
}

/// A tenant's mitigation history, as the dialogs read it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// By audit action ([`Kind::action`]); absent: none measured yet.
    pub bought: BTreeMap<String, Bought>,
    /// By asset name: what its recreated jobs reached.
    pub recreate_speed: BTreeMap<String, Speed>,
}

impl History {
    pub fn of(&self, kind: Kind) -> Option<Bought> {
        self.bought.get(kind.action()).copied()
    }
}

/// The median of some values; `None` for none.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// What the last measured actions bought, from their effects in minutes
/// (the ETA moved earlier; newest first): the [`LAST_MEASURED`] newest.
pub fn summarise(newest_first: &[f64]) -> Option<Bought> {
    let last: Vec<f64> = newest_first.iter().take(LAST_MEASURED).copied().collect();
    let measured = last.len();
    median(last).map(|m| Bought {
        measured,
        median_min: m.round() as i64,
    })
}

/// The speed of recreated jobs from their partitions per hour, newest first.
pub fn speed(newest_first: &[f64]) -> Option<Speed> {
    let last: Vec<f64> = newest_first
        .iter()
        .filter(|v| v.is_finite() && **v > 0.0)
        .take(LAST_MEASURED)
        .copied()
        .collect();
    let jobs = last.len();
    median(last).map(|m| Speed {
        per_hour: m.round().max(1.0) as i64,
        jobs,
    })
}

/// The confirm dialog's history line: "The last 6 recreates moved the ETA
/// 48 min earlier (median).", or that there is no history yet.
pub fn history_line(kind: Kind, bought: Option<Bought>) -> String {
    let (one, many) = kind.nouns();
    let Some(b) = bought else {
        return format!("No history yet: no earlier {one} in this tenant was measured.");
    };
    let moved = match b.median_min {
        0 => "left the ETA where it was".to_string(),
        m => format!(
            "moved the ETA {} {}",
            duration_words(Duration::minutes(m.abs())),
            if m > 0 { "earlier" } else { "later" }
        ),
    };
    if b.measured == 1 {
        format!("The last {one} {moved}.")
    } else {
        format!("The last {} {many} {moved} (median).", b.measured)
    }
}

/// The latest time a recreate can start for `remaining` partitions, run at
/// `per_hour`, to finish by `deadline`; down to the minute.
pub fn latest_start(deadline: DateTime<Utc>, remaining: i64, per_hour: i64) -> DateTime<Utc> {
    let needs_ms = remaining.max(0) as f64 / per_hour.max(1) as f64 * 3_600_000.0;
    let at = deadline - Duration::milliseconds(needs_ms.ceil() as i64);
    DateTime::from_timestamp(at.timestamp() - at.timestamp().rem_euclid(60), 0).unwrap_or(at)
}

/// A time as a short Slack token: the time alone within a day, else the date too.
fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t - now < Duration::hours(20) {
        format!(
            "<!date^{}^{{time}}|{}>",
            t.timestamp(),
            t.format("%H:%M UTC")
        )
    } else {
        date_token(t)
    }
}

/// A recreate's *by when*: the latest time at which the job's uncompleted
/// partitions, at the speed recreated jobs of its asset reached before,
/// still finish by the deadline. `None` without that history or a deadline.
pub fn by_when_line(
    speed: Option<Speed>,
    deadline: Option<DateTime<Utc>>,
    remaining: i64,
    now: DateTime<Utc>,
) -> Option<String> {
    let (speed, deadline) = (speed?, deadline?);
    let at = latest_start(deadline, remaining, speed.per_hour);
    let pace = format!(
        "Recreated jobs of this asset ran {} partitions/h",
        speed.per_hour
    );
    Some(if at >= now {
        format!("{pace}: it still helps if done by {}.", when(at, now))
    } else {
        format!("{pace}: a recreate now would not finish by the deadline.")
    })
}

/// The band a job would have with its ETA `earlier_min` minutes earlier
/// (negative: later): a fresh verdict, as [`crate::domain::assessment::assess`]
/// gives it. `None` when the ETA or deadline is unknown.
pub fn band_if_moved(
    eta: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    earlier_min: i64,
    thresholds: &RiskThresholds,
) -> Option<RiskBand> {
    let (eta, deadline) = (eta?, deadline?);
    if now > deadline {
        return Some(RiskBand::Breached);
    }
    let moved = eta - Duration::minutes(earlier_min);
    Some(band_for(severity(moved, deadline, now)?, thresholds))
}

/// The band line of a pause: the band today, and the one it would have
/// were the ETA moved as much as the last pauses moved it.
pub fn band_line(now_band: RiskBand, moved: Option<(i64, RiskBand)>) -> String {
    let today = format!("It is {} *{}* now", now_band.emoji(), now_band.label());
    match moved {
        Some((m, band)) if m != 0 => format!(
            "{today}; with its ETA {} {} it would be {} *{}*.",
            duration_words(Duration::minutes(m.abs())),
            if m > 0 { "earlier" } else { "later" },
            band.emoji(),
            band.label()
        ),
        _ => format!("{today}."),
    }
}

/// The history lines an alert's confirm dialogs carry (issue 38): part of
/// what the alert shows, so kept with its view and compared like the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmLines {
    /// Recreate's: what recreates bought, and by when it still helps.
    pub recreate: String,
    /// Request scaling's: what scaling requests bought.
    pub scaling: String,
}

/// An alert's confirm lines from its tenant's history, its asset, the
/// partitions it has left and its deadline.
pub fn confirm_lines(
    h: &History,
    asset: &str,
    remaining: i64,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ConfirmLines {
    let mut recreate = history_line(Kind::Recreate, h.of(Kind::Recreate));
    if let Some(by) = by_when_line(
        h.recreate_speed.get(asset).copied(),
        deadline,
        remaining,
        now,
    ) {
        recreate = format!("{recreate} {by}");
    }
    ConfirmLines {
        recreate,
        scaling: history_line(Kind::Scaling, h.of(Kind::Scaling)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn the_median_is_over_the_last_ten_measured_and_rounded_to_the_minute() {
        assert_eq!(summarise(&[]), None);
        assert_eq!(
            summarise(&[48.4, 30.0, 60.2]),
            Some(Bought {
                measured: 3,
                median_min: 48
            })
        );
        // Even: the mean of the middle two.
        assert_eq!(summarise(&[10.0, 21.0]).unwrap().median_min, 16);
        // Twelve measured: the ten newest count, the two oldest (huge) not.
        let mut v = vec![5.0; 10];
        v.extend([500.0, 500.0]);
        assert_eq!(
            summarise(&v),
            Some(Bought {
                measured: 10,
                median_min: 5
            })
        );
    }

    #[test]
    fn the_history_line_says_the_count_the_median_and_the_direction() {
        let line = |n, m| {
            history_line(
                Kind::Recreate,
                Some(Bought {
                    measured: n,
                    median_min: m,
                }),
            )
        };
        assert_eq!(
            line(6, 48),
            "The last 6 recreates moved the ETA 48 min earlier (median)."
        );
        assert_eq!(
            line(1, 70),
            "The last recreate moved the ETA 1 h 10 min earlier."
        );
        assert_eq!(
            line(2, -15),
            "The last 2 recreates moved the ETA 15 min later (median)."
        );
        assert_eq!(
            line(3, 0),
            "The last 3 recreates left the ETA where it was (median)."
        );
        assert_eq!(
            history_line(Kind::Scaling, None),
            "No history yet: no earlier scaling request in this tenant was measured."
        );
    }

    #[test]
    fn by_when_is_the_latest_start_that_still_finishes_by_the_deadline() {
        // 120 partitions at 60/h take two hours: start by 10:00 for 12:00.
        assert_eq!(latest_start(at(0), 120, 60), at(-120));
        // Down to the minute: 100 at 70/h take 85 min 43 s, so 10:34 (not 10:35).
        assert_eq!(latest_start(at(0), 100, 70), at(-86));
        let speed = Some(Speed {
            per_hour: 60,
            jobs: 3,
        });
        let helps = by_when_line(speed, Some(at(0)), 60, at(-90)).unwrap();
        assert!(
            helps.contains("60 partitions/h") && helps.contains("still helps if done by"),
            "{helps}"
        );
        assert!(helps.contains(&at(-60).timestamp().to_string()), "{helps}");
        let late = by_when_line(speed, Some(at(0)), 60, at(-30)).unwrap();
        assert!(late.contains("would not finish by the deadline"), "{late}");
        // Without history, or without a deadline: nothing said.
        assert_eq!(by_when_line(None, Some(at(0)), 60, at(-90)), None);
        assert_eq!(by_when_line(speed, None, 60, at(-90)), None);
    }

    #[test]
    fn the_speed_is_the_median_partitions_per_hour_of_the_newest_ten() {
        assert_eq!(speed(&[]), None);
        assert_eq!(
            speed(&[100.0, 0.0, 140.0, f64::INFINITY]),
            Some(Speed {
                per_hour: 120,
                jobs: 2
            })
        );
    }

    #[test]
    fn a_pause_shows_the_band_today_and_the_band_with_the_eta_moved() {
        let t = RiskThresholds::default();
        // Deadline in 100 min, ETA 30 min after it: severity 0.3, Medium.
        let (eta, deadline, now) = (Some(at(130)), Some(at(100)), at(0));
        assert_eq!(
            band_if_moved(eta, deadline, now, 0, &t),
            Some(RiskBand::Medium)
        );
        // 15 min earlier: 0.15, Low; 40 min earlier: on track.
        assert_eq!(
            band_if_moved(eta, deadline, now, 15, &t),
            Some(RiskBand::Low)
        );
        assert_eq!(
            band_if_moved(eta, deadline, now, 40, &t),
            Some(RiskBand::OnTrack)
        );
        assert_eq!(band_if_moved(None, deadline, now, 15, &t), None);
        let line = band_line(RiskBand::Medium, Some((15, RiskBand::Low)));
        assert!(
            line.contains("*Medium* now")
                && line.contains("15 min earlier it would be")
                && line.contains("*Low*"),
            "{line}"
        );
        assert!(!band_line(RiskBand::Medium, None).contains("would be"));
    }

    #[test]
    fn the_confirm_lines_add_by_when_only_with_the_assets_history() {
        let mut h = History::default();
        let none = confirm_lines(&h, "orders", 60, Some(at(120)), at(0));
        assert!(
            none.recreate.starts_with("No history yet"),
            "{}",
            none.recreate
        );
        assert!(!none.recreate.contains("partitions/h"));
        h.bought.insert(
            "recreate".into(),
            Bought {
                measured: 4,
                median_min: 30,
            },
        );
        h.recreate_speed.insert(
            "orders".into(),
            Speed {
                per_hour: 60,
                jobs: 2,
            },
        );
        let with = confirm_lines(&h, "orders", 60, Some(at(120)), at(0));
        assert!(with
            .recreate
            .contains("The last 4 recreates moved the ETA 30 min earlier"));
        assert!(with.recreate.contains("60 partitions/h"));
        let other = confirm_lines(&h, "billing", 60, Some(at(120)), at(0));
        assert!(
            !other.recreate.contains("partitions/h"),
            "{}",
            other.recreate
        );
    }
}
