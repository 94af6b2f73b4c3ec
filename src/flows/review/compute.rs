//! The review computed from what the bot recorded: pure, so it is tested
//! without a store.

use super::*;
use crate::domain::bought::median;

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
    /// How episodes ended, as answered in their threads (issue 38).
    pub dispositions: Vec<crate::store::Disposition>,
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

/// How the period's episodes ended, as answered (issue 38).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endings {
    pub mitigated: usize,
    pub expected: usize,
    pub false_alarm: usize,
    pub missed: usize,
    /// False alarms by asset, most first.
    pub false_alarms_by_asset: Vec<(String, usize)>,
    /// The mitigations taken on jobs whose episode was *Mitigated*, by
    /// label, most first.
    pub before_mitigated: Vec<(String, usize)>,
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
    pub endings: Endings,
}

fn minutes(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 60_000.0
}

fn within(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    from <= t && t < to
}

/// Per action: (the at-risk job, when, the job it was recreated as).
type Taken = Vec<(String, DateTime<Utc>, Option<String>)>;

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

    // Close calls: never breached, lowest buffer first; an episode answered
    // *Expected* (planned or accepted) is no close call.
    let expected: std::collections::HashSet<&str> = input
        .dispositions
        .iter()
        .filter(|d| d.disposition == "expected")
        .map(|d| d.job_id.as_str())
        .collect();
    let mut close: Vec<JobLine> = input
        .watched
        .iter()
        .filter(|w| !breached_ids.contains(&w.job_id))
        .filter(|w| !expected.contains(w.job_id.as_str()))
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
    let trail = crate::flows::bought::EtaTrail::new(&input.samples, &input.watched, EFFECT_SLACK);
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
    let endings = endings(input, &taken, from, to);
    let mitigations = MITIGATIONS
        .iter()
        .map(|(action, label)| {
            let list = taken.get(action).cloned().unwrap_or_default();
            let bought: Vec<f64> = list
                .iter()
                .filter_map(|(job, at, follow)| trail.bought(job, follow.as_deref(), *at))
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
        endings,
    }
}

/// The jobs an alert on `job_id` followed up to `until`: that job and each
/// job a *Recreate* moved it from, found in the recreates' audit entries
/// (the subject is the cancelled job, `new_job` the one the alert followed
/// next), however many recreates there were.
fn jobs_followed<'a>(
    audit: &'a [AuditEntry],
    job_id: &'a str,
    until: DateTime<Utc>,
) -> std::collections::HashSet<&'a str> {
    let mut jobs = std::collections::HashSet::from([job_id]);
    loop {
        let before = jobs.len();
        for e in audit
            .iter()
            .filter(|e| e.action == "recreate" && e.at <= until)
        {
            let new_job = e
                .detail
                .as_ref()
                .and_then(|d| d.get("new_job"))
                .and_then(Value::as_str);
            if let (Some(new_job), Some(old)) = (new_job, e.subject.as_deref()) {
                if jobs.contains(new_job) {
                    jobs.insert(old);
                }
            }
        }
        if jobs.len() == before {
            return jobs;
        }
    }
}

/// The answers of the period: counted, false alarms by asset, and the
/// mitigations that preceded a *Mitigated*.
fn endings(
    input: &ReviewInput,
    taken: &BTreeMap<&str, Taken>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Endings {
    let mut e = Endings::default();
    let mut false_alarms: BTreeMap<String, usize> = BTreeMap::new();
    let mut before: BTreeMap<String, usize> = BTreeMap::new();
    for d in input
        .dispositions
        .iter()
        .filter(|d| within(d.answered_at, from, to))
    {
        match d.disposition.as_str() {
            "mitigated" => {
                e.mitigated += 1;
                let jobs = jobs_followed(&input.audit, &d.job_id, d.answered_at);
                for (action, label) in MITIGATIONS {
                    let n = taken.get(action).map_or(0, |list| {
                        list.iter()
                            .filter(|(job, at, _)| {
                                jobs.contains(job.as_str()) && *at <= d.answered_at
                            })
                            .count()
                    });
                    if n > 0 {
                        *before.entry(label.to_string()).or_default() += n;
                    }
                }
            }
            "expected" => e.expected += 1,
            "false_alarm" => {
                e.false_alarm += 1;
                *false_alarms.entry(d.asset.clone()).or_default() += 1;
            }
            "missed" => e.missed += 1,
            _ => {}
        }
    }
    let sorted = |m: BTreeMap<String, usize>| {
        let mut v: Vec<(String, usize)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(TOP);
        v
    };
    e.false_alarms_by_asset = sorted(false_alarms);
    e.before_mitigated = sorted(before);
    e
}
