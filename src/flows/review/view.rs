//! The review as Block Kit: the text, the chunks within Slack's limits, and
//! the charts.

use super::*;
use crate::domain::text::{count, noun};

fn mins(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(m) if m.abs() >= 120.0 => format!("{:.1} h", m / 60.0),
        Some(m) => format!("{m:.0} min"),
    }
}

fn signed(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(m) if m > 0.5 => format!("{} late", mins(Some(m))),
        Some(m) if m < -0.5 => format!("{} early", mins(Some(-m))),
        Some(_) => "unbiased".into(),
    }
}

/// What the review message shows.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewView {
    pub response_type: Option<String>,
    pub text: String,
    pub title: String,
    pub period: String,
    pub sections: Vec<String>,
}

fn job_line(j: &JobLine) -> String {
    let short = j.job_id.get(..8).unwrap_or(&j.job_id);
    let mut s = format!(
        "• *{}* `{short}` ({})",
        escape_slack(&j.asset),
        j.tier.replace('_', " ")
    );
    if let Some(late) = j.late_by {
        s.push_str(&format!(", completed {} late", span(late)));
    }
    if let Some(b) = j.min_buffer {
        s.push_str(&format!(", lowest buffer {}", pct(b)));
    }
    if let Some(at) = j.at {
        s.push_str(&format!(", {}", date_token(at)));
    }
    s
}

/// The review as Slack blocks' text.
pub fn view(tenant: &str, r: &Review, days: i64) -> ReviewView {
    let mut sections = Vec::new();
    let mut s = format!(
        "*Breaches and close calls*\n{} with a deadline watched, {}, {}.",
        count(r.jobs_watched, "job", "jobs"),
        count(r.episodes, "at-risk episode", "at-risk episodes"),
        count(r.breached_total, "breach", "breaches")
    );
    if r.breached.is_empty() {
        s.push_str("\nNo deadline was missed.");
    } else {
        s.push_str("\n_Breached:_");
        for j in &r.breached {
            s.push('\n');
            s.push_str(&job_line(j));
        }
        if r.breached_total > r.breached.len() {
            s.push_str(&format!(
                "\n…and {} more.",
                r.breached_total - r.breached.len()
            ));
        }
    }
    if !r.close_calls.is_empty() {
        s.push_str(
            "\n_Closest calls (lowest remaining buffer; those answered Expected left out):_",
        );
        for j in &r.close_calls {
            s.push('\n');
            s.push_str(&job_line(j));
        }
    }
    s.push_str(&format!(
        "\nEarly warning: {}, {} flagged at first sight, {} went on to become {}.",
        count(r.approaching, "approaching notice", "approaching notices"),
        count(r.tight, "tight deadline", "tight deadlines"),
        r.promoted,
        noun(r.promoted, "an alert", "alerts")
    ));
    sections.push(s);

    let mut s = String::from(
        "*ETA accuracy* (median absolute error against the real completion; bias: median of ETA − completion)",
    );
    for m in &r.accuracy {
        s.push_str(&format!(
            "\n• at {}% done ({}): Servo {} ({}), the bot {} ({})",
            m.mark,
            count(m.jobs, "job", "jobs"),
            mins(m.servo_abs),
            signed(m.servo_bias),
            mins(m.bot_abs),
            signed(m.bot_bias)
        ));
    }
    sections.push(s);

    let mut s =
        String::from("*Mitigations* (what each bought: how the ETA moved in the 30 min after it)");
    let any = r.mitigations.iter().any(|m| m.taken > 0);
    if !any {
        s.push_str("\nNone taken.");
    }
    for m in r.mitigations.iter().filter(|m| m.taken > 0) {
        let bought = match m.median_bought_min {
            Some(b) if b > 0.5 => format!("ETA a median {} earlier", mins(Some(b))),
            Some(b) if b < -0.5 => format!("ETA a median {} later", mins(Some(-b))),
            Some(_) => "ETA unchanged".into(),
            None => "no ETA to compare".into(),
        };
        s.push_str(&format!(
            "\n• {} ×{}: {bought} (measured on {})",
            m.label, m.taken, m.measured
        ));
    }
    let en = &r.endings;
    if en.mitigated + en.expected + en.false_alarm + en.missed > 0 {
        s.push_str(&format!(
            "\n*How episodes ended* (as answered in their threads): {} mitigated, {} expected, {} false {}, {} missed.",
            en.mitigated,
            en.expected,
            en.false_alarm,
            noun(en.false_alarm, "alarm", "alarms"),
            en.missed
        ));
        let list = |v: &[(String, usize)]| {
            v.iter()
                .map(|(k, n)| format!("{} ×{n}", escape_slack(k)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !en.false_alarms_by_asset.is_empty() {
            s.push_str(&format!(
                "\n• False alarms by asset: {}",
                list(&en.false_alarms_by_asset)
            ));
        }
        if !en.before_mitigated.is_empty() {
            s.push_str(&format!(
                "\n• Before a _Mitigated_: {}",
                list(&en.before_mitigated)
            ));
        }
    }
    let e = &r.extensions;
    s.push_str(&format!(
        "\n*Deadline extensions:* {} requested, {} approved (+{} in all), {} rejected, {} expired{}.",
        e.requested,
        e.approved,
        span(e.approved_time),
        e.rejected,
        e.expired,
        if e.other > 0 {
            format!(", {} pending or withdrawn", e.other)
        } else {
            String::new()
        }
    ));
    sections.push(s);

    let mut s = String::from("*Pages by tier*");
    if r.pages.is_empty() {
        s.push_str("\nNobody was paged.");
    }
    for t in &r.pages {
        s.push_str(&format!(
            "\n• {}: {}, {} acknowledged{}, {} moved on unacknowledged",
            escape_slack(&t.tier),
            count(t.pages, "page", "pages"),
            t.acked,
            t.median_ack
                .map(|d| format!(" (median {} to acknowledge)", span_fine(d)))
                .unwrap_or_default(),
            t.moved_on
        ));
    }
    sections.push(s);

    let mut s = String::from("*Patterns*");
    if r.by_asset.is_empty() {
        s.push_str("\nNo at-risk episodes.");
    } else {
        s.push_str("\n_By asset:_ ");
        s.push_str(
            &r.by_asset
                .iter()
                .map(|a| {
                    format!(
                        "{} ({}, {})",
                        escape_slack(&a.asset),
                        count(a.episodes, "episode", "episodes"),
                        count(a.breaches, "breach", "breaches")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let busiest_day = (0..7).max_by_key(|d| (r.by_weekday[*d], -(*d as i64)));
        let busiest_hour = (0..24).max_by_key(|h| (r.by_hour[*h], -(*h as i64)));
        if let (Some(d), Some(h)) = (busiest_day, busiest_hour) {
            s.push_str(&format!(
                "\n_By time (UTC):_ {}; busiest {} ({}) and {:02}:00–{:02}:59 ({}).",
                DAYS.iter()
                    .zip(r.by_weekday.iter())
                    .map(|(d, n)| format!("{d} {n}"))
                    .collect::<Vec<_>>()
                    .join(" · "),
                DAYS[d],
                r.by_weekday[d],
                h,
                h,
                r.by_hour[h]
            ));
        }
    }
    sections.push(s);

    // Slack's limit is 3000 characters a section: long lists (long asset
    // names) are split at line ends.
    let sections: Vec<String> = sections.iter().flat_map(|s| chunk(s, 2900)).collect();
    // A period that starts later than asked: the bot's history begins there.
    let partial = r.to - r.from < Duration::days(days) - Duration::minutes(1);
    let span_words = if partial {
        format!(
            "since the bot started watching ({})",
            crate::domain::text::duration_words(r.to - r.from)
        )
    } else {
        format!("last {}", count(days, "day", "days"))
    };
    let title = format!("SLA review · {tenant} · {span_words}");
    ReviewView {
        response_type: None,
        text: format!(
            "SLA review for {tenant}, {span_words}: {}, {}",
            count(r.breached_total, "breach", "breaches"),
            count(r.episodes, "at-risk episode", "at-risk episodes")
        ),
        title: title.chars().take(150).collect(),
        period: if partial {
            format!(
                "since {} when the bot started watching, to {} · times in UTC where not shown in yours",
                date_token(r.from),
                date_token(r.to)
            )
        } else {
            format!(
                "{} to {} · times in UTC where not shown in yours",
                date_token(r.from),
                date_token(r.to)
            )
        },
        sections,
    }
}

/// Splits text into pieces of at most `max` characters, at line ends where
/// it can (a single longer line is cut).
pub(super) fn chunk(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.split('\n') {
        let mut line: String = line.to_string();
        while line.chars().count() > max {
            let head: String = line.chars().take(max).collect();
            line = line.chars().skip(max).collect();
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.push(head);
        }
        if current.chars().count() + line.chars().count() + 1 > max && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn span_fine(d: Duration) -> String {
    if d < Duration::minutes(1) {
        format!("{}s", d.num_seconds().max(0))
    } else {
        span(d)
    }
}

/// The review's charts.
pub fn charts(tenant: &str, r: &Review) -> ReviewCharts {
    ReviewCharts {
        title: format!(
            "SLA review · {tenant} · {} to {}",
            r.from.format("%Y-%m-%d"),
            r.to.format("%Y-%m-%d")
        ),
        eta_error_minutes: r
            .accuracy
            .iter()
            .map(|m| (format!("{}%", m.mark), m.servo_abs, m.bot_abs))
            .collect(),
        by_weekday: r.by_weekday,
        by_hour: r.by_hour,
    }
}
