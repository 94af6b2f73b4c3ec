//! The SLA review: weekly in each tenant's channel (`[review]`), and on
//! demand with `/backfill review [7d|30d]`. Its numbers come from the bot's
//! own store (alerts, the audit log, extension requests, watched jobs, ETA
//! marks and samples, notices); [`compute`] is a pure function of those
//! rows, so a seeded history checks every figure.
//!
//! Also here: the burn-down chart a new alert gets in its thread, and the
//! pruning of history older than `review.retention`.

use crate::charts::{BurnDown, Chart, ReviewCharts};
use crate::context::AppState;
use crate::flows::preventive::{pct, span};
use crate::forecast::{PartitionObs, PartitionState};
use crate::risk::Assessment;
use crate::servo::Job;
use crate::slack::render::{date_token, escape_slack};
use crate::store::{
    Alert, Approval, ApprovalStatus, AuditEntry, EtaMark, EtaSample, Notice, StoreError, WatchedJob,
};
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Mitigations the review reports on, by their audit action.
pub const MITIGATIONS: [(&str, &str); 5] = [
    ("monitor", "Monitor closely"),
    ("pause", "Pause lower-priority jobs"),
    ("recreate", "Recreate with priority 10"),
    ("request_scaling", "Request scaling"),
    ("notify_stakeholders", "Notify stakeholders"),
];
/// A mitigation's effect is the ETA this long after it, against the ETA at it.
pub const EFFECT_AFTER: Duration = Duration::minutes(30);
/// Samples further than this from where they are wanted do not count.
const EFFECT_SLACK: Duration = Duration::hours(3);
/// Jobs listed as breached or as close calls, each.
const TOP: usize = 5;

/// Everything a review reads, for one tenant and period.
#[derive(Clone, Debug, Default)]
pub struct ReviewInput {
    pub watched: Vec<WatchedJob>,
    pub marks: Vec<EtaMark>,
    pub alerts: Vec<Alert>,
    pub approvals: Vec<Approval>,
    pub audit: Vec<AuditEntry>,
    pub samples: Vec<EtaSample>,
    pub notices: Vec<Notice>,
}

impl ReviewInput {
    /// Nothing happened in the period: no job watched, no alert, no request,
    /// no notice. Such a review is not posted.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
            && self.alerts.is_empty()
            && self.approvals.is_empty()
            && self.notices.is_empty()
    }
}

/// A job in the breached or close-call list.
#[derive(Clone, Debug, PartialEq)]
pub struct JobLine {
    pub job_id: String,
    pub asset: String,
    pub tier: String,
    /// Breached: when. Close call: when its buffer was lowest.
    pub at: Option<DateTime<Utc>>,
    /// The lowest buffer seen (share of the expected duration).
    pub min_buffer: Option<f64>,
    /// Completed after its deadline by this much (breaches that completed).
    pub late_by: Option<Duration>,
}

/// Servo's and the bot's ETA error at one progress mark, over jobs that completed.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkAccuracy {
    pub mark: i64,
    pub jobs: usize,
    /// Median absolute error, minutes.
    pub servo_abs: Option<f64>,
    pub bot_abs: Option<f64>,
    /// Median signed error (ETA - completion), minutes: positive is pessimistic.
    pub servo_bias: Option<f64>,
    pub bot_bias: Option<f64>,
}

/// One kind of mitigation over the period.
#[derive(Clone, Debug, PartialEq)]
pub struct MitigationLine {
    pub action: String,
    pub label: String,
    pub taken: usize,
    /// How many had an ETA before and after to compare.
    pub measured: usize,
    /// Median minutes the ETA moved earlier (negative: later) after it.
    pub median_bought_min: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extensions {
    pub requested: usize,
    pub approved: usize,
    pub rejected: usize,
    pub expired: usize,
    pub other: usize,
    /// Total time added by approved extensions.
    pub approved_time: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TierPages {
    pub tier: String,
    pub pages: usize,
    pub acked: usize,
    /// Paged again at the next tier (or the next round) without an ack.
    pub moved_on: usize,
    pub median_ack: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AssetLine {
    pub asset: String,
    pub episodes: usize,
    pub breaches: usize,
}

/// The review's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub jobs_watched: usize,
    pub breached: Vec<JobLine>,
    pub breached_total: usize,
    pub close_calls: Vec<JobLine>,
    pub accuracy: Vec<MarkAccuracy>,
    pub mitigations: Vec<MitigationLine>,
    pub extensions: Extensions,
    pub pages: Vec<TierPages>,
    pub episodes: usize,
    pub by_asset: Vec<AssetLine>,
    /// At-risk episodes opened, Monday first (UTC).
    pub by_weekday: [i64; 7],
    /// At-risk episodes opened by hour of day (UTC).
    pub by_hour: [i64; 24],
    pub approaching: usize,
    pub tight: usize,
    pub promoted: usize,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
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

fn minutes(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 60_000.0
}

fn within(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    from <= t && t < to
}

/// The review of `[from, to)` from what the store kept.
pub fn compute(input: &ReviewInput, from: DateTime<Utc>, to: DateTime<Utc>) -> Review {
    let asset_of: HashMap<&str, &str> = input
        .watched
        .iter()
        .map(|w| (w.job_id.as_str(), w.asset.as_str()))
        .collect();

    // Breaches: seen past the deadline while active, or completed after it.
    let mut breached: Vec<JobLine> = input
        .watched
        .iter()
        .filter_map(|w| {
            let late = match (w.completed_at, w.deadline) {
                (Some(c), Some(d)) if c > d => Some(c - d),
                _ => None,
            };
            let at = w
                .breached_at
                .or_else(|| late.and(w.deadline))
                .filter(|t| within(*t, from, to))?;
            Some(JobLine {
                job_id: w.job_id.clone(),
                asset: w.asset.clone(),
                tier: w.tier.clone(),
                at: Some(at),
                min_buffer: w.min_buffer,
                late_by: late,
            })
        })
        .collect();
    breached.sort_by_key(|j| j.at);
    let breached_ids: std::collections::HashSet<String> =
        breached.iter().map(|j| j.job_id.clone()).collect();
    let breached_total = breached.len();
    breached.truncate(TOP);

    // Close calls: never breached, lowest buffer first.
    let mut close: Vec<JobLine> = input
        .watched
        .iter()
        .filter(|w| !breached_ids.contains(&w.job_id))
        .filter(|w| w.min_buffer_at.is_some_and(|t| within(t, from, to)))
        .filter_map(|w| {
            Some(JobLine {
                job_id: w.job_id.clone(),
                asset: w.asset.clone(),
                tier: w.tier.clone(),
                at: w.min_buffer_at,
                min_buffer: Some(w.min_buffer?),
                late_by: None,
            })
        })
        .collect();
    close.sort_by(|a, b| {
        a.min_buffer
            .unwrap_or(f64::MAX)
            .total_cmp(&b.min_buffer.unwrap_or(f64::MAX))
    });
    close.truncate(TOP);

    // ETA accuracy at each mark, over jobs that completed in the period.
    let accuracy = crate::flows::preventive::MARKS
        .iter()
        .map(|&mark| {
            let rows: Vec<&EtaMark> = input
                .marks
                .iter()
                .filter(|m| m.mark == mark && m.completed_at.is_some_and(|c| within(c, from, to)))
                .collect();
            let errors = |pick: fn(&EtaMark) -> Option<DateTime<Utc>>| -> Vec<f64> {
                rows.iter()
                    .filter_map(|m| Some(minutes(pick(m)? - m.completed_at?)))
                    .collect()
            };
            let servo = errors(|m| m.servo_eta);
            let bot = errors(|m| m.bot_eta);
            MarkAccuracy {
                mark,
                jobs: rows.len(),
                servo_abs: median(servo.iter().map(|e| e.abs()).collect()),
                bot_abs: median(bot.iter().map(|e| e.abs()).collect()),
                servo_bias: median(servo),
                bot_bias: median(bot),
            }
        })
        .collect();

    // Mitigations, and how the ETA moved after each.
    let mut samples: HashMap<&str, Vec<&EtaSample>> = HashMap::new();
    for s in &input.samples {
        samples.entry(s.job_id.as_str()).or_default().push(s);
    }
    for v in samples.values_mut() {
        v.sort_by_key(|s| s.at);
    }
    let completed: HashMap<&str, DateTime<Utc>> = input
        .watched
        .iter()
        .filter_map(|w| Some((w.job_id.as_str(), w.completed_at?)))
        .collect();
    // Per action: (the at-risk job, when, the job it was recreated as).
    type Taken = Vec<(String, DateTime<Utc>, Option<String>)>;
    let mut taken: BTreeMap<&str, Taken> = BTreeMap::new();
    for e in input
        .audit
        .iter()
        .filter(|e| e.outcome == "ok" && within(e.at, from, to))
    {
        let Some((action, _)) = MITIGATIONS.iter().find(|(a, _)| *a == e.action) else {
            continue;
        };
        let detail = e.detail.clone().unwrap_or(Value::Null);
        // `/backfill pause` pauses the named job; only the alert's
        // "pause lower-priority jobs" is a mitigation.
        if *action == "pause" && detail.get("for_alert").is_none() {
            continue;
        }
        let Some(subject) = e.subject.clone() else {
            continue;
        };
        let list = taken.entry(action).or_default();
        // One click that paused five jobs is one mitigation.
        if list
            .iter()
            .any(|(s, at, _)| *s == subject && (e.at - *at).num_seconds().abs() < 60)
        {
            continue;
        }
        let follow = detail
            .get("new_job")
            .and_then(Value::as_str)
            .map(str::to_string);
        list.push((subject, e.at, follow));
    }
    let eta_at = |job: &str, t: DateTime<Utc>| -> Option<DateTime<Utc>> {
        samples
            .get(job)?
            .iter()
            .rev()
            .find(|s| s.at <= t && t - s.at <= EFFECT_SLACK)
            .map(|s| s.eta)
    };
    let eta_after = |job: &str, t: DateTime<Utc>| -> Option<DateTime<Utc>> {
        let want = t + EFFECT_AFTER;
        let sampled = samples
            .get(job)
            .and_then(|v| {
                v.iter()
                    .find(|s| s.at >= want && s.at - want <= EFFECT_SLACK)
            })
            .map(|s| s.eta);
        // A job that completed before the sample was due: its completion is the ETA after.
        let done = completed
            .get(job)
            .copied()
            .filter(|c| *c >= t && *c <= want + EFFECT_SLACK);
        match (sampled, done) {
            (_, Some(c)) if c <= want => Some(c),
            (Some(s), _) => Some(s),
            (None, d) => d,
        }
    };
    let mitigations = MITIGATIONS
        .iter()
        .map(|(action, label)| {
            let list = taken.get(action).cloned().unwrap_or_default();
            let bought: Vec<f64> = list
                .iter()
                .filter_map(|(job, at, follow)| {
                    let before = eta_at(job, *at)?;
                    let after = eta_after(follow.as_deref().unwrap_or(job), *at)?;
                    Some(minutes(before - after))
                })
                .collect();
            MitigationLine {
                action: action.to_string(),
                label: label.to_string(),
                taken: list.len(),
                measured: bought.len(),
                median_bought_min: median(bought),
            }
        })
        .collect();

    // Extension requests made in the period.
    let mut extensions = Extensions::default();
    for a in input
        .approvals
        .iter()
        .filter(|a| within(a.created_at, from, to))
    {
        extensions.requested += 1;
        match a.status {
            ApprovalStatus::Approved => {
                extensions.approved += 1;
                extensions.approved_time += a.proposed_deadline - a.current_deadline;
            }
            ApprovalStatus::Rejected => extensions.rejected += 1,
            ApprovalStatus::Expired => extensions.expired += 1,
            _ => extensions.other += 1,
        }
    }

    // Pages by tier: a page is acknowledged at its tier when the ack came
    // before the job's next page.
    let mut by_job: HashMap<&str, Vec<&AuditEntry>> = HashMap::new();
    let mut acks: HashMap<&str, Vec<DateTime<Utc>>> = HashMap::new();
    for e in &input.audit {
        let Some(subject) = e.subject.as_deref() else {
            continue;
        };
        if e.action == "page" && e.outcome == "ok" {
            by_job.entry(subject).or_default().push(e);
        } else if e.action == "acknowledge" && e.outcome == "ok" {
            acks.entry(subject).or_default().push(e.at);
        }
    }
    let mut tiers: Vec<TierPages> = Vec::new();
    let mut waits: HashMap<String, Vec<f64>> = HashMap::new();
    for (job, mut pages) in by_job {
        pages.sort_by_key(|p| p.at);
        for (i, p) in pages.iter().enumerate() {
            if !within(p.at, from, to) {
                continue;
            }
            let tier = p
                .detail
                .as_ref()
                .and_then(|d| d.get("tier"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let next = pages.get(i + 1).map(|n| n.at);
            let ack = acks
                .get(job)
                .and_then(|v| v.iter().filter(|a| **a >= p.at).min().copied())
                .filter(|a| next.is_none_or(|n| *a < n));
            let line = match tiers.iter_mut().position(|t| t.tier == tier) {
                Some(k) => &mut tiers[k],
                None => {
                    tiers.push(TierPages {
                        tier: tier.clone(),
                        pages: 0,
                        acked: 0,
                        moved_on: 0,
                        median_ack: None,
                    });
                    tiers.last_mut().expect("just pushed")
                }
            };
            line.pages += 1;
            match ack {
                Some(a) => {
                    line.acked += 1;
                    waits.entry(tier).or_default().push(minutes(a - p.at));
                }
                None if next.is_some() => line.moved_on += 1,
                None => {}
            }
        }
    }
    for t in &mut tiers {
        t.median_ack = median(waits.remove(&t.tier).unwrap_or_default())
            .map(|m| Duration::milliseconds((m * 60_000.0).round() as i64));
    }

    // Patterns: at-risk episodes by asset, weekday and hour.
    let episodes: Vec<&Alert> = input
        .alerts
        .iter()
        .filter(|a| within(a.opened_at, from, to))
        .collect();
    let mut by_weekday = [0i64; 7];
    let mut by_hour = [0i64; 24];
    let mut assets: BTreeMap<String, AssetLine> = BTreeMap::new();
    for a in &episodes {
        by_weekday[a.opened_at.weekday().num_days_from_monday() as usize] += 1;
        by_hour[a.opened_at.hour() as usize] += 1;
        let asset = asset_of
            .get(a.job_id.as_str())
            .copied()
            .unwrap_or("(unknown asset)")
            .to_string();
        assets
            .entry(asset.clone())
            .or_insert(AssetLine {
                asset,
                episodes: 0,
                breaches: 0,
            })
            .episodes += 1;
    }
    for id in &breached_ids {
        let asset = asset_of
            .get(id.as_str())
            .copied()
            .unwrap_or("(unknown asset)")
            .to_string();
        assets
            .entry(asset.clone())
            .or_insert(AssetLine {
                asset,
                episodes: 0,
                breaches: 0,
            })
            .breaches += 1;
    }
    let mut by_asset: Vec<AssetLine> = assets.into_values().collect();
    by_asset.sort_by(|a, b| {
        (b.breaches, b.episodes)
            .cmp(&(a.breaches, a.episodes))
            .then_with(|| a.asset.cmp(&b.asset))
    });
    by_asset.truncate(TOP);

    let notices: Vec<&Notice> = input
        .notices
        .iter()
        .filter(|n| within(n.opened_at, from, to))
        .collect();
    Review {
        from,
        to,
        jobs_watched: input
            .watched
            .iter()
            .filter(|w| w.first_seen < to && w.ended_at.is_none_or(|e| e >= from))
            .count(),
        breached,
        breached_total,
        close_calls: close,
        accuracy,
        mitigations,
        extensions,
        pages: tiers,
        episodes: episodes.len(),
        by_asset,
        by_weekday,
        by_hour,
        approaching: notices.iter().filter(|n| n.kind == "approaching").count(),
        tight: notices
            .iter()
            .filter(|n| n.kind == "tight_deadline")
            .count(),
        promoted: notices.iter().filter(|n| n.status == "promoted").count(),
    }
}

/// Reads a tenant's review input for `[from, to)`. Jobs and marks reach
/// back far enough to see jobs that started before the period.
pub async fn load(
    state: &AppState,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ReviewInput, StoreError> {
    let store = &state.store;
    Ok(ReviewInput {
        watched: store.watched_between(tenant, from, to).await?,
        marks: store.marks_completed_between(tenant, from, to).await?,
        alerts: store.alerts_between(tenant, from, to).await?,
        approvals: store.approvals_between(tenant, from, to).await?,
        // Pages just before the period can be acknowledged in it.
        audit: store
            .audit_between(tenant, from - Duration::days(1), to)
            .await?,
        samples: store
            .eta_samples(tenant, from - EFFECT_SLACK, to + EFFECT_SLACK)
            .await?,
        notices: store.notices_between(tenant, from, to).await?,
    })
}

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
        "*Breaches and close calls*\n{} job(s) with a deadline watched, {} at-risk episode(s), {} breach(es).",
        r.jobs_watched, r.episodes, r.breached_total
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
        s.push_str("\n_Closest calls (lowest remaining buffer):_");
        for j in &r.close_calls {
            s.push('\n');
            s.push_str(&job_line(j));
        }
    }
    s.push_str(&format!(
        "\nEarly warning: {} approaching notice(s), {} tight deadline(s) flagged at first sight, {} went on to become alerts.",
        r.approaching, r.tight, r.promoted
    ));
    sections.push(s);

    let mut s = String::from(
        "*ETA accuracy* (median absolute error against the real completion; bias: median of ETA − completion)",
    );
    for m in &r.accuracy {
        s.push_str(&format!(
            "\n• at {}% done ({} job(s)): Servo {} ({}), the bot {} ({})",
            m.mark,
            m.jobs,
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
            "\n• {}: {} page(s), {} acknowledged{}, {} moved on unacknowledged",
            escape_slack(&t.tier),
            t.pages,
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
                        "{} ({} episode(s), {} breach(es))",
                        escape_slack(&a.asset),
                        a.episodes,
                        a.breaches
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
            crate::slack::render::duration_words(r.to - r.from)
        )
    } else {
        format!("last {days} days")
    };
    let title = format!("SLA review · {tenant} · {span_words}");
    ReviewView {
        response_type: None,
        text: format!(
            "SLA review for {tenant}, {span_words}: {} breach(es), {} at-risk episode(s)",
            r.breached_total, r.episodes
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
fn chunk(text: &str, max: usize) -> Vec<String> {
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

/// The start of a review of `[from, to)`: `from`, or later when the bot's
/// history of the tenant begins later (a review covers only what the bot
/// saw). `None` when it begins at or after `to`: nothing to review.
pub async fn covered_from(
    state: &AppState,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(match state.store.history_begins(tenant).await? {
        Some(first) if first < to => Some(first.max(from)),
        _ => None,
    })
}

/// The most recent scheduled weekly review time at or before `now`.
pub fn last_slot(cfg: &crate::config::ReviewConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive();
    let back = (today.weekday().num_days_from_monday() + 7 - cfg.day.num_days_from_monday()) % 7;
    let day = today - Duration::days(back as i64);
    let slot = day.and_time(cfg.at).and_utc();
    if slot <= now {
        slot
    } else {
        slot - Duration::days(7)
    }
}

/// How late a weekly review may still go out (after an outage, say).
const REVIEW_GRACE: Duration = Duration::hours(12);

/// Posts the week's review in each tenant's channel once its time has come
/// (one per tenant and week, whichever replica polls), and prunes history
/// past the retention. Runs from the poller.
pub async fn weekly(state: &AppState, now: DateTime<Utc>) -> Result<usize, anyhow::Error> {
    let cfg = &state.config.review;
    let mut posted = 0;
    if cfg.weekly {
        let slot = last_slot(cfg, now);
        if now - slot <= REVIEW_GRACE {
            for tenant in &state.config.tenants {
                let period = slot.to_rfc3339();
                if state.store.review_posted(&tenant.id, &period).await? {
                    continue;
                }
                // Read before claiming: a failed read must not use up the week's claim.
                let Some(from) =
                    covered_from(state, &tenant.id, slot - Duration::days(7), slot).await?
                else {
                    // Nothing seen yet (a bot started moments ago): the week
                    // is claimed, so it is not looked at again, and nothing posts.
                    if state.store.claim_review(&tenant.id, &period, now).await? {
                        tracing::info!(tenant = %tenant.id, "no history for the weekly review yet; nothing posted");
                    }
                    continue;
                };
                let input = load(state, &tenant.id, from, slot).await?;
                if input.is_empty() {
                    if state.store.claim_review(&tenant.id, &period, now).await? {
                        tracing::info!(tenant = %tenant.id, "an empty week: no weekly review posted");
                    }
                    continue;
                }
                let r = compute(&input, from, slot);
                let v = view(&tenant.id, &r, 7);
                let mut payload = state.templates.render("review", &v)?;
                payload["channel"] = tenant.channel.as_str().into();
                let key = format!("review:{}:{period}", tenant.id);
                let mut msgs = vec![crate::store::NewOutboxMessage {
                    ordering_key: Some(key.clone()),
                    ..crate::store::NewOutboxMessage::call(
                        "chat.postMessage",
                        payload,
                        format!("{key}:post"),
                    )
                }];
                if cfg.charts {
                    let mut m = crate::charts::chart_upload_message(
                        &Chart::Review(charts(&tenant.id, &r)),
                        "sla-review.png",
                        &format!("SLA review charts · {}", tenant.id),
                        "ETA error at 25, 50 and 75% progress for Servo and the bot; at-risk episodes by weekday and by hour",
                        None,
                    );
                    m.payload["channel"] = tenant.channel.as_str().into();
                    m.dedup_key = Some(format!("{key}:charts"));
                    m.ordering_key = Some(key.clone());
                    msgs.push(m);
                }
                // Written before the week is claimed: a bot that stops in
                // between writes it again at the next poll, and its outbox keys
                // send it once. (Claimed first, a crash lost the week's review.)
                state.enqueue_many(&msgs).await?;
                if !state.store.claim_review(&tenant.id, &period, now).await? {
                    continue;
                }
                state.metrics.inc("servo_sla_bot_reviews_total", &[]);
                posted += 1;
            }
        }
    }
    // Pruning scans whole tables: once an hour is plenty.
    let last = state
        .last_prune_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    if now.timestamp_millis() - last >= PRUNE_EVERY.num_milliseconds() {
        let before = now - Duration::from_std(cfg.retention).unwrap_or(Duration::days(90));
        let mut pruned = state.store.prune_history(before).await?;
        // By their own rules: an event is redelivered within the hour, and
        // the quick-rise check reads `escalation.rise_within` back.
        pruned += state
            .store
            .prune_processed(now - PROCESSED_EVENTS_KEPT)
            .await?;
        let rise = Duration::from_std(state.config.escalation.rise_within).unwrap_or_default();
        pruned += state
            .store
            .prune_severity_history(now - rise.max(SEVERITY_HISTORY_KEPT))
            .await?;
        state
            .last_prune_ms
            .store(now.timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
        if pruned > 0 {
            tracing::info!(rows = pruned, "pruned history past review.retention");
        }
    }
    Ok(posted)
}

/// How often history past the retention is pruned.
const PRUNE_EVERY: Duration = Duration::hours(1);
/// Handled Slack events and clicks are remembered this long (Slack
/// redelivers an unanswered event within minutes, never after an hour).
const PROCESSED_EVENTS_KEPT: Duration = Duration::days(1);
/// Severities are kept at least this long for the quick-rise check.
const SEVERITY_HISTORY_KEPT: Duration = Duration::days(1);

/// The burn-down of a job: completed partitions over time from Servo's
/// partition history, the P50/P90 projection and the deadline.
pub fn burn_down(
    job: &Job,
    a: &Assessment,
    history: &[PartitionObs],
    now: DateTime<Utc>,
) -> Option<BurnDown> {
    let deadline = job.sla_deadline_at?;
    let mut times: Vec<DateTime<Utc>> = history
        .iter()
        .filter(|p| p.state == PartitionState::Completed)
        .filter_map(|p| p.completed_at)
        .filter(|t| *t <= now)
        .collect();
    times.sort();
    // The history may be only the recent partitions: start the count where
    // Servo's total says the curve must end.
    let base = (job.completed_partitions - times.len() as i64).max(0);
    let mut done: Vec<(DateTime<Utc>, i64)> = Vec::with_capacity(times.len() + 2);
    if let Some(start) = job.started_at {
        if times.first().is_none_or(|t| start < *t) {
            done.push((start, base));
        }
    }
    for (i, t) in times.iter().enumerate() {
        done.push((*t, base + i as i64 + 1));
    }
    done.push((now, job.completed_partitions.max(base + times.len() as i64)));
    let (p50, p90) = match job.forecast {
        Some((p50, p90)) => (Some(p50), Some(p90)),
        None => (a.eta, None),
    };
    Some(BurnDown {
        title: format!(
            "{} · {}",
            job.asset_name,
            job.id.to_string().get(..8).unwrap_or_default()
        ),
        total: job.total_partitions,
        done,
        now,
        p50,
        p90,
        deadline,
    })
}

/// The outbox row that uploads a new alert's burn-down chart to its thread.
pub fn burn_down_message(
    alert: &Alert,
    job: &Job,
    a: &Assessment,
    history: &[PartitionObs],
    now: DateTime<Utc>,
) -> Option<crate::store::NewOutboxMessage> {
    let chart = burn_down(job, a, history, now)?;
    let mut m = crate::charts::chart_upload_message(
        &Chart::BurnDown(chart),
        "burn-down.png",
        &format!("Burn-down · {}", job.asset_name),
        "Completed partitions over time, the projected completion (P50 and P90) and the SLA deadline",
        None,
    );
    m.dedup_key = Some(format!("alert:{}:burndown", alert.id));
    // Not in the thread's ordering: a chart (render, three calls) must never
    // hold up the pages and notes behind it. It still waits for the alert's
    // message, through the thread anchor.
    m.ordering_key = None;
    m.thread_alert_id = Some(alert.id.clone());
    m.thread_field = Some("thread_ts".into());
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sections_are_split_at_line_ends_under_slacks_limit() {
        let line = "x".repeat(1000);
        let text = vec![line.clone(); 7].join("\n");
        let parts = chunk(&text, 2900);
        assert_eq!(
            parts.len(),
            4,
            "two lines of 1000 fit in 2900, three do not"
        );
        assert!(parts.iter().all(|p| p.chars().count() <= 2900));
        assert_eq!(parts.join("\n"), text, "nothing lost");
        let one = "y".repeat(6000);
        let parts = chunk(&one, 2900);
        assert_eq!(parts.concat(), one);
        assert!(parts.iter().all(|p| p.chars().count() <= 2900));
        assert_eq!(chunk("short", 2900), vec!["short".to_string()]);
    }

    #[test]
    fn the_weekly_slot_is_the_last_configured_day_and_time() {
        let cfg = crate::config::ReviewConfig::default(); // Monday 09:00
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            last_slot(&cfg, at("2026-11-30T09:00:00Z")),
            at("2026-11-30T09:00:00Z")
        );
        assert_eq!(
            last_slot(&cfg, at("2026-11-30T08:59:59Z")),
            at("2026-11-23T09:00:00Z")
        );
        assert_eq!(
            last_slot(&cfg, at("2026-11-29T23:00:00Z")),
            at("2026-11-23T09:00:00Z")
        );
        assert_eq!(
            last_slot(&cfg, at("2026-12-03T12:00:00Z")),
            at("2026-11-30T09:00:00Z")
        );
    }

    #[test]
    fn an_empty_period_reviews_cleanly() {
        let from = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = compute(&ReviewInput::default(), from, from + Duration::days(7));
        assert_eq!(r.breached_total, 0);
        assert!(r
            .accuracy
            .iter()
            .all(|m| m.jobs == 0 && m.servo_abs.is_none()));
        let v = view("acme", &r, 7);
        let all = v.sections.join("\n");
        assert!(all.contains("No deadline was missed."));
        assert!(all.contains("Nobody was paged."));
        assert!(all.contains("None taken."));
        assert_eq!(v.title, "SLA review · acme · last 7 days");
        assert!(v.period.starts_with(&date_token(from)), "{}", v.period);
    }

    #[test]
    fn a_period_shorter_than_asked_says_when_the_bot_started_watching() {
        let to = DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let from = to - Duration::days(2);
        let r = compute(&ReviewInput::default(), from, to);
        let v = view("acme", &r, 7);
        assert!(
            v.title.contains("since the bot started watching (2 d)"),
            "{}",
            v.title
        );
        assert!(
            v.text.contains("since the bot started watching"),
            "{}",
            v.text
        );
        assert!(
            v.period.starts_with(&format!(
                "since {} when the bot started watching, to {}",
                date_token(from),
                date_token(to)
            )),
            "{}",
            v.period
        );
    }
}
