//! Servo's lineage and scheduled workflows, as the bot reads them once per
//! poll per tenant (issue 37), and what a late job means downstream: the
//! assets its asset feeds (transitively, up to a depth) and, first, the
//! scheduled workflow runs that touch them before the job is likely done
//! (its P90), which would read stale data. Pure: no I/O, `now` is given.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet, VecDeque};
use std::str::FromStr;
use uuid::Uuid;

/// An asset of the lineage.
#[derive(Clone, Debug, PartialEq)]
pub struct AssetNode {
    pub id: Uuid,
    pub name: String,
    /// Free text in Servo: a Slack user id, an email, or a name.
    pub owner: Option<String>,
}

/// A workflow's schedule as Servo keeps it (`workflows`).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Five-field cron (`minute hour day-of-month month day-of-week`).
    pub cron: Option<String>,
    /// An IANA zone; `UTC` when unset.
    pub timezone: String,
    pub enabled: bool,
    /// What Servo's scheduler last wrote (Servo's deploy leaves it NULL).
    pub next_scheduled_run: Option<DateTime<Utc>>,
}

/// The live version of a scheduled workflow and the assets it touches.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub id: Uuid,
    pub name: String,
    pub owner: Option<String>,
    pub schedule: Schedule,
    /// The assets it touches (`workflow_assets`), in its order.
    pub assets: Vec<Uuid>,
}

/// Why a workflow's next run cannot be told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("cron `{cron}` is refused: {why}")]
    Cron { cron: String, why: String },
    #[error("time zone `{0}` is not an IANA zone")]
    Zone(String),
}

impl Schedule {
    /// The next scheduled run after `now`: `next_scheduled_run` when it is
    /// set and in the future, else the cron's next time in the workflow's
    /// zone; `None` when scheduling is off or there is no cron.
    pub fn next_run(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ScheduleError> {
        if !self.enabled {
            return Ok(None);
        }
        if let Some(at) = self.next_scheduled_run.filter(|t| *t > now) {
            return Ok(Some(at));
        }
        let Some(cron) = self
            .cron
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        else {
            return Ok(None);
        };
        let schedule = parse_cron(cron)?;
        let zone = if self.timezone.trim().is_empty() {
            chrono_tz::UTC
        } else {
            chrono_tz::Tz::from_str(self.timezone.trim())
                .map_err(|_| ScheduleError::Zone(self.timezone.clone()))?
        };
        Ok(schedule
            .after(&now.with_timezone(&zone))
            .next()
            .map(|t| t.with_timezone(&Utc)))
    }
}

/// Parses Servo's five-field cron with the `cron` crate, which reads
/// `second minute hour day-of-month month day-of-week` and numbers the days
/// of the week 1 (Sunday) to 7: a zero second is put first, and numeric days
/// of the week (0-7, 0 and 7 Sunday, as in crontab) become their names.
pub fn parse_cron(cron: &str) -> Result<cron::Schedule, ScheduleError> {
    let refused = |why: String| ScheduleError::Cron {
        cron: cron.to_string(),
        why,
    };
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(refused(format!(
            "a schedule has 5 fields (minute hour day-of-month month day-of-week), this one has {}",
            fields.len()
        )));
    }
    let dow = day_names(fields[4]).ok_or_else(|| refused("bad day of the week".into()))?;
    let six = format!(
        "0 {} {} {} {} {}",
        fields[0], fields[1], fields[2], fields[3], dow
    );
    cron::Schedule::from_str(&six).map_err(|e| refused(e.to_string()))
}

/// Crontab's numeric days of the week as names (`1-5` → `MON-FRI`). A
/// numeric range is spelt out day by day (`6-7` → `SAT,SUN`, `1-7/2` →
/// `MON,WED,FRI,SUN`): crontab's 7 is Sunday, and the `cron` crate refuses a
/// named range that runs backwards over the week (`SAT-SUN`).
fn day_names(field: &str) -> Option<String> {
    const NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let name = |s: &str| -> Option<String> {
        if numeric(s) {
            NAMES.get(s.parse::<usize>().ok()?).map(|n| n.to_string())
        } else {
            Some(s.to_string())
        }
    };
    let mut items: Vec<String> = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let spelt = match range.split_once('-') {
            Some((a, b)) if numeric(a) && numeric(b) && step.is_none_or(numeric) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                let by: usize = step.map_or(Some(1), |s| s.parse().ok())?;
                if a > b || b >= NAMES.len() || by == 0 {
                    // Not crontab's either: left for the crate to refuse.
                    None
                } else {
                    Some((a..=b).step_by(by).map(|d| NAMES[d].to_string()))
                }
            }
            _ => None,
        };
        match spelt {
            Some(days) => items.extend(days),
            None => {
                let range = match range.split_once('-') {
                    Some((a, b)) => format!("{}-{}", name(a)?, name(b)?),
                    None => name(range)?,
                };
                items.push(match step {
                    Some(s) => format!("{range}/{s}"),
                    None => range,
                });
            }
        }
    }
    let mut seen = HashSet::new();
    items.retain(|i| seen.insert(i.clone()));
    Some(items.join(","))
}

/// A tenant's lineage and scheduled workflows, as read in one query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lineage {
    pub assets: HashMap<Uuid, AssetNode>,
    /// Upstream asset → the assets it feeds.
    pub downstream: HashMap<Uuid, Vec<Uuid>>,
    /// Downstream asset → the assets it reads.
    pub upstream: HashMap<Uuid, Vec<Uuid>>,
    pub workflows: Vec<Workflow>,
}

/// A downstream asset a late job affects.
#[derive(Clone, Debug, PartialEq)]
pub struct Affected {
    pub name: String,
    pub owner: Option<String>,
    /// The owner's name as plain text (escaped), when the owner is a Slack
    /// user whose name was looked up ([`Impact::name_owners`]): the alert
    /// names owners, it never mentions them.
    pub owner_name: Option<String>,
    /// The job's asset first, this asset last.
    pub path: Vec<String>,
}

/// A scheduled run that would read stale data: it starts before the job is
/// likely done.
#[derive(Clone, Debug, PartialEq)]
pub struct StaleRun {
    pub workflow: String,
    pub owner: Option<String>,
    pub at: DateTime<Utc>,
    /// From the job's asset to the nearest asset the workflow touches.
    pub path: Vec<String>,
}

/// A scheduled run that touches the downstream assets, with whether it
/// comes before the job is likely done.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledRun {
    pub workflow: String,
    pub at: DateTime<Utc>,
    pub path: Vec<String>,
    pub stale: bool,
}

/// What a late job means downstream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impact {
    /// When the job is likely done (its P90), if known.
    pub likely_done: Option<DateTime<Utc>>,
    /// Runs before `likely_done`, soonest first.
    pub stale_runs: Vec<StaleRun>,
    /// Every scheduled run touching the downstream assets, soonest first.
    pub runs: Vec<ScheduledRun>,
    /// The downstream assets, nearest first, up to the depth asked for.
    pub assets: Vec<Affected>,
    /// How many downstream assets lie past that depth (not listed; their
    /// scheduled runs are in `runs` and `stale_runs` all the same).
    pub beyond: usize,
    /// `likely_done` is the earliest the job can be done, not when it is
    /// likely done (a waiting root none of whose own work has run): a run
    /// before it would read stale data, and one after it is not safe.
    pub floor: bool,
}

impl Impact {
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// Whether a scheduled run would read stale data.
    pub fn has_stale_runs(&self) -> bool {
        !self.stale_runs.is_empty()
    }

    /// Whether a run not before `likely_done` is still not known to be
    /// safe: when it is unknown, or only a floor.
    pub fn after_is_unknown(&self) -> bool {
        self.likely_done.is_none() || self.floor
    }

    /// When the job is likely done, as the alert and the DMs say it: a
    /// date token, "<time> at the earliest" for a floor, or "unknown".
    pub fn done_words(&self) -> String {
        match self.likely_done {
            Some(t) if self.floor => {
                format!("{} at the earliest", crate::domain::text::date_token(t))
            }
            Some(t) => crate::domain::text::date_token(t),
            None => "unknown".into(),
        }
    }

    /// The Slack users among the owners of the first `limit` downstream
    /// assets (the ones a message can show), each once.
    pub fn owner_users(&self, limit: usize) -> Vec<String> {
        let mut users: Vec<String> = Vec::new();
        for a in self.assets.iter().take(limit) {
            if let Some(Owner::SlackUser(id)) = a.owner.as_deref().map(Owner::parse) {
                if !users.contains(&id) {
                    users.push(id);
                }
            }
        }
        users
    }

    /// Names the owners that are Slack users, from `names` (user id → name
    /// as plain text, escaped), so that the lines name them without a
    /// mention.
    pub fn name_owners(&mut self, names: &HashMap<String, String>) {
        for a in &mut self.assets {
            if let Some(Owner::SlackUser(id)) = a.owner.as_deref().map(Owner::parse) {
                a.owner_name = names.get(&id).cloned();
            }
        }
    }

    /// The runs that would still be stale if the job were done by `done`.
    pub fn stale_before(&self, done: DateTime<Utc>) -> Vec<&ScheduledRun> {
        self.runs.iter().filter(|r| r.at < done).collect()
    }
}

impl Lineage {
    /// Builds the graph from its edges.
    pub fn new(assets: Vec<AssetNode>, edges: Vec<(Uuid, Uuid)>, workflows: Vec<Workflow>) -> Self {
        let mut downstream: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut upstream: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (up, down) in edges {
            if up == down {
                continue;
            }
            let d = downstream.entry(up).or_default();
            if !d.contains(&down) {
                d.push(down);
            }
            let u = upstream.entry(down).or_default();
            if !u.contains(&up) {
                u.push(up);
            }
        }
        Lineage {
            assets: assets.into_iter().map(|a| (a.id, a)).collect(),
            downstream,
            upstream,
            workflows,
        }
    }

    fn name(&self, id: Uuid) -> String {
        self.assets
            .get(&id)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    /// The assets `asset` feeds, breadth first up to `depth` hops, each with
    /// its path from `asset` (the shortest; cycles are followed once).
    pub fn downstream_of(&self, asset: Uuid, depth: usize) -> Vec<(Uuid, Vec<Uuid>)> {
        let mut seen: HashSet<Uuid> = HashSet::from([asset]);
        let mut out = Vec::new();
        let mut queue: VecDeque<Vec<Uuid>> = VecDeque::from([vec![asset]]);
        while let Some(path) = queue.pop_front() {
            if path.len() > depth {
                continue;
            }
            let last = *path.last().unwrap_or(&asset);
            let mut next: Vec<Uuid> = self.downstream.get(&last).cloned().unwrap_or_default();
            next.sort_by_key(|id| self.name(*id));
            for n in next {
                if seen.insert(n) {
                    let mut p = path.clone();
                    p.push(n);
                    out.push((n, p.clone()));
                    queue.push_back(p);
                }
            }
        }
        out
    }

    /// What the job of `asset`, likely done at `likely_done` (its P90),
    /// means downstream up to `depth` hops. Runs of workflows whose schedule
    /// cannot be told are left out (the read logs them).
    pub fn impact(
        &self,
        asset: Uuid,
        likely_done: Option<DateTime<Utc>>,
        depth: usize,
        now: DateTime<Utc>,
    ) -> Impact {
        // Every asset downstream, however far: a scheduled run past the
        // depth reads stale data all the same. The depth bounds the list.
        let reach = self.downstream_of(asset, usize::MAX);
        if reach.is_empty() {
            return Impact {
                likely_done,
                ..Impact::default()
            };
        }
        let names = |p: &[Uuid]| p.iter().map(|id| self.name(*id)).collect::<Vec<_>>();
        let paths: HashMap<Uuid, &Vec<Uuid>> = reach.iter().map(|(id, p)| (*id, p)).collect();
        let listed = |p: &Vec<Uuid>| p.len() <= depth.saturating_add(1);
        let beyond = reach.iter().filter(|(_, p)| !listed(p)).count();
        let assets = reach
            .iter()
            .filter(|(_, p)| listed(p))
            .map(|(id, p)| Affected {
                name: self.name(*id),
                owner: self.assets.get(id).and_then(|a| a.owner.clone()),
                owner_name: None,
                path: names(p),
            })
            .collect();
        let mut runs = Vec::new();
        let mut stale_runs = Vec::new();
        for wf in &self.workflows {
            // The nearest downstream asset it touches.
            let Some(path) = wf
                .assets
                .iter()
                .filter_map(|a| paths.get(a))
                .min_by_key(|p| p.len())
            else {
                continue;
            };
            let Ok(Some(at)) = wf.schedule.next_run(now) else {
                continue;
            };
            let stale = likely_done.is_some_and(|done| at < done);
            runs.push(ScheduledRun {
                workflow: wf.name.clone(),
                at,
                path: names(path),
                stale,
            });
            if stale {
                stale_runs.push(StaleRun {
                    workflow: wf.name.clone(),
                    owner: wf.owner.clone(),
                    at,
                    path: names(path),
                });
            }
        }
        runs.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.workflow.cmp(&b.workflow)));
        stale_runs.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.workflow.cmp(&b.workflow)));
        Impact {
            likely_done,
            stale_runs,
            runs,
            assets,
            beyond,
            floor: false,
        }
    }
}

/// A path as the alert writes it: "`revenue_daily` → `revenue_report`".
pub fn path_text(path: &[String]) -> String {
    path.iter()
        .map(|n| format!("`{}`", crate::domain::text::escape_slack(n)))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The lines of an alert's *Downstream impact*: the stale runs first
/// ("`finance_daily` runs <Mon 06:00>, before this job is likely done
/// (<07:10>): it would read stale `revenue_daily` → `revenue_report`"), then
/// the downstream assets, at most `max` lines and "…and N more".
pub fn impact_lines(impact: &Impact, max: usize) -> Vec<String> {
    use crate::domain::text::{date_token, escape_slack};
    let mut lines: Vec<String> = impact
        .stale_runs
        .iter()
        .map(|r| {
            format!(
                ":calendar: `{}` runs {}, before this job is likely done ({}): it would read stale {}",
                escape_slack(&r.workflow),
                date_token(r.at),
                impact.done_words(),
                path_text(&r.path)
            )
        })
        .collect();
    // Not known when the job is likely done (no forecast, and Servo's ETA
    // cannot be trusted), or only the earliest it can be: no run after that
    // is called safe, and none is called stale either (nothing pages on
    // missing data), but each is named.
    if impact.after_is_unknown() {
        lines.extend(impact.runs.iter().filter(|r| !r.stale).map(|r| {
            format!(
                ":grey_question: `{}` runs {}: it may read stale {} (not known when this job is likely done)",
                escape_slack(&r.workflow),
                date_token(r.at),
                path_text(&r.path)
            )
        }));
    }
    lines.extend(impact.assets.iter().map(|a| {
        let owner = owner_of(a)
            .map(|o| format!(" (owner {o})"))
            .unwrap_or_default();
        format!("Feeds {}{owner}", path_text(&a.path))
    }));
    if lines.len() > max {
        let more = lines.len() - max;
        lines.truncate(max);
        lines.push(format!("…and {more} more"));
    }
    if impact.beyond > 0 {
        lines.push(format!(
            "…and {} further downstream, past the hops listed (`lineage.depth`)",
            crate::domain::text::count(impact.beyond, "asset", "assets")
        ));
    }
    lines
}

/// A line of Slack markup as plain text for places that do not render it
/// (PagerDuty's `custom_details`): a date token becomes its UTC fallback.
pub fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("<!date^") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match (tail.find('|'), tail.find('>')) {
            (Some(bar), Some(end)) if bar < end => {
                out.push_str(&tail[bar + 1..end]);
                rest = &tail[end + 1..];
            }
            _ => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// An owner as plain text that notifies nobody (a mention would ping them
/// on every alert; they hear of it once, by `lineage.notify_owners_at`): a
/// Slack user's id as is, never `<@…>`, anything else escaped.
pub fn owner_text(owner: &str) -> String {
    match Owner::parse(owner) {
        Owner::SlackUser(id) => crate::domain::text::escape_slack(&id),
        _ => crate::domain::text::escape_slack(owner.trim()),
    }
}

/// A downstream asset's owner as plain text: their name when it was looked
/// up, else [`owner_text`]; `None` without an owner.
pub fn owner_of(a: &Affected) -> Option<String> {
    let owner = a
        .owner
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())?;
    Some(a.owner_name.clone().unwrap_or_else(|| owner_text(owner)))
}

/// What an asset's free-text owner is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A Slack user id (`U…`/`W…`, or `<@U…>`): used as is.
    SlackUser(String),
    /// An email: resolved with `users.lookupByEmail`.
    Email(String),
    /// Anything else (a team's name): named in the thread, not messaged.
    Name(String),
}

impl Owner {
    pub fn parse(owner: &str) -> Owner {
        let o = owner.trim();
        let bare = o
            .strip_prefix("<@")
            .and_then(|s| s.strip_suffix('>'))
            .map(|s| s.split('|').next().unwrap_or(s))
            .unwrap_or(o);
        let is_id = bare.len() >= 9
            && (bare.starts_with('U') || bare.starts_with('W'))
            && bare
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if is_id {
            Owner::SlackUser(bare.to_string())
        } else if o.contains('@') && !o.contains(' ') && o.split('@').all(|p| !p.is_empty()) {
            Owner::Email(o.to_string())
        } else {
            Owner::Name(o.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sched(cron: &str, tz: &str) -> Schedule {
        Schedule {
            cron: Some(cron.into()),
            timezone: tz.into(),
            enabled: true,
            next_scheduled_run: None,
        }
    }

    #[test]
    fn next_run_follows_the_cron_in_the_workflows_zone() {
        let now = at("2026-12-06T20:00:00Z"); // a Sunday
        let s = sched("0 6 * * 1-5", "Europe/Paris");
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-07T05:00:00Z")));
        let s = sched("30 6 * * 0", "UTC");
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-13T06:30:00Z")));
        let s = sched("*/15 * * * *", "UTC");
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-06T20:15:00Z")));
    }

    /// Crontab numbers Sunday 0 and 7 alike: a range ending on 7 reaches
    /// Sunday, and a range over all eight numbers is every day.
    #[test]
    fn day_of_week_ranges_ending_on_7_include_sunday() {
        let now = at("2026-12-04T20:00:00Z"); // a Friday
        let s = sched("0 6 * * 6-7", "UTC");
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-05T06:00:00Z")));
        let sat = at("2026-12-05T07:00:00Z");
        assert_eq!(s.next_run(sat).unwrap(), Some(at("2026-12-06T06:00:00Z")));
        let sun = at("2026-12-06T07:00:00Z");
        assert_eq!(s.next_run(sun).unwrap(), Some(at("2026-12-12T06:00:00Z")));
        let s = sched("0 6 * * 1-7", "UTC");
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-05T06:00:00Z")));
        assert_eq!(s.next_run(sat).unwrap(), Some(at("2026-12-06T06:00:00Z")));
        assert_eq!(s.next_run(sun).unwrap(), Some(at("2026-12-07T06:00:00Z")));
        let s = sched("0 6 * * 0-7", "UTC");
        assert_eq!(s.next_run(sat).unwrap(), Some(at("2026-12-06T06:00:00Z")));
        assert_eq!(s.next_run(sun).unwrap(), Some(at("2026-12-07T06:00:00Z")));
        // Every other day from Monday: 1, 3, 5, 7 (Sunday).
        let s = sched("0 6 * * 1-7/2", "UTC");
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-06T06:00:00Z")));
        assert_eq!(s.next_run(sun).unwrap(), Some(at("2026-12-07T06:00:00Z")));
        // Names and plain numbers read as before.
        let s = sched("0 6 * * SAT,7", "UTC");
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-05T06:00:00Z")));
        assert_eq!(s.next_run(sat).unwrap(), Some(at("2026-12-06T06:00:00Z")));
    }

    #[test]
    fn a_stale_run_past_the_depth_is_found_and_the_assets_past_it_are_counted() {
        // a → b → c → d → e; a workflow on `e` runs before `a`'s job is done.
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        let assets = ["a", "b", "c", "d", "e"]
            .iter()
            .zip(&ids)
            .map(|(n, id)| AssetNode {
                id: *id,
                name: n.to_string(),
                owner: None,
            })
            .collect();
        let edges = ids.windows(2).map(|w| (w[0], w[1])).collect();
        let wf = Workflow {
            id: Uuid::new_v4(),
            name: "e_daily".into(),
            owner: None,
            schedule: sched("0 6 * * *", "UTC"),
            assets: vec![ids[4]],
        };
        let lineage = Lineage::new(assets, edges, vec![wf]);
        let now = at("2026-12-06T20:00:00Z");
        let impact = lineage.impact(ids[0], Some(at("2026-12-07T09:00:00Z")), 2, now);
        let listed: Vec<&str> = impact.assets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(listed, ["b", "c"], "two hops listed");
        assert_eq!(impact.beyond, 2, "`d` and `e` counted");
        assert_eq!(impact.stale_runs.len(), 1, "`e_daily` four hops away");
        assert_eq!(impact.stale_runs[0].path.len(), 5);
        let lines = impact_lines(&impact, 10);
        assert!(
            lines
                .last()
                .is_some_and(|l| l.contains("2 assets further downstream")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_future_next_scheduled_run_wins_and_a_past_one_falls_back_to_the_cron() {
        let now = at("2026-12-06T20:00:00Z");
        let mut s = sched("0 6 * * *", "UTC");
        s.next_scheduled_run = Some(at("2026-12-06T22:00:00Z"));
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-06T22:00:00Z")));
        s.next_scheduled_run = Some(at("2026-12-06T05:00:00Z"));
        assert_eq!(s.next_run(now).unwrap(), Some(at("2026-12-07T06:00:00Z")));
        s.enabled = false;
        assert_eq!(s.next_run(now).unwrap(), None);
    }

    #[test]
    fn a_refused_cron_or_zone_is_an_error() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 20, 0, 0).unwrap();
        assert!(matches!(
            sched("0 6 * *", "UTC").next_run(now),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            sched("61 6 * * *", "UTC").next_run(now),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            sched("0 6 * * *", "Mars/Olympus").next_run(now),
            Err(ScheduleError::Zone(_))
        ));
    }

    #[test]
    fn impact_lists_runs_before_the_p90_soonest_first_and_leaves_later_ones_out() {
        let now = at("2026-12-06T20:00:00Z");
        let id = |n: u128| Uuid::from_u128(n);
        let asset = |n: u128, name: &str, owner: Option<&str>| AssetNode {
            id: id(n),
            name: name.into(),
            owner: owner.map(str::to_string),
        };
        let wf = |n: u128, name: &str, next: &str, assets: Vec<Uuid>| Workflow {
            id: id(100 + n),
            name: name.into(),
            owner: None,
            schedule: Schedule {
                cron: None,
                timezone: "UTC".into(),
                enabled: true,
                next_scheduled_run: Some(at(next)),
            },
            assets,
        };
        let l = Lineage::new(
            vec![
                asset(1, "revenue_daily", None),
                asset(2, "revenue_report", Some("U0FINANCE1")),
                asset(3, "exec_dashboard", Some("cfo@example.com")),
                asset(4, "far_away", None),
                asset(5, "farther", None),
            ],
            vec![
                (id(1), id(2)),
                (id(2), id(3)),
                (id(3), id(4)),
                (id(4), id(5)),
            ],
            vec![
                wf(1, "exec_daily", "2026-12-07T05:00:00Z", vec![id(3)]),
                wf(2, "finance_daily", "2026-12-07T02:00:00Z", vec![id(2)]),
                wf(3, "weekly", "2026-12-08T06:00:00Z", vec![id(2)]),
                // Past the depth: its run is read all the same (after
                // the P90 here, so not stale); see the test below.
                wf(4, "beyond_depth", "2026-12-07T08:00:00Z", vec![id(5)]),
                wf(5, "unrelated", "2026-12-07T01:00:00Z", vec![id(1)]),
            ],
        );
        let p90 = at("2026-12-07T07:10:00Z");
        let i = l.impact(id(1), Some(p90), 3, now);
        let names: Vec<&str> = i.stale_runs.iter().map(|r| r.workflow.as_str()).collect();
        assert_eq!(names, ["finance_daily", "exec_daily"]);
        assert_eq!(
            i.stale_runs[1].path,
            ["revenue_daily", "revenue_report", "exec_dashboard"]
        );
        assert_eq!(
            i.runs.len(),
            4,
            "weekly and beyond_depth are listed in runs, not stale"
        );
        assert_eq!(i.assets.len(), 3, "depth 3 lists up to `far_away`");
        assert_eq!(i.beyond, 1, "`farther` is counted");
        let lines = impact_lines(&i, 4);
        assert!(lines[0].starts_with(":calendar: `finance_daily` runs <!date^"));
        assert!(lines[0].ends_with("it would read stale `revenue_daily` → `revenue_report`"));
        assert_eq!(lines[lines.len() - 2], "…and 1 more");
        assert!(lines.last().unwrap().contains("1 asset further downstream"));
        assert!(lines[2].contains("(owner U0FINANCE1)"), "{lines:?}");
        // Named, never mentioned: a mention would ping the owner on every
        // alert.
        let mut named = i.clone();
        assert_eq!(named.owner_users(5), ["U0FINANCE1"]);
        named.name_owners(&HashMap::from([("U0FINANCE1".into(), "Fiona".into())]));
        let lines = impact_lines(&named, 5);
        assert!(lines[2].contains("(owner Fiona)"), "{lines:?}");
        assert!(lines[3].contains("(owner cfo@example.com)"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("<@")), "{lines:?}");
        assert_eq!(i.stale_before(at("2026-12-07T03:00:00Z")).len(), 1);
        assert!(plain(&lines[0]).starts_with(
            ":calendar: `finance_daily` runs 2026-12-07 02:00 UTC, before this job is likely done (2026-12-07 07:10 UTC)"
        ));
        // Not known when the job is likely done: no run is stale (nothing
        // pages on it), but every run is named as one that may read stale
        // data, soonest first, where before the alert showed none.
        let unknown = l.impact(id(1), None, 3, now);
        assert!(!unknown.has_stale_runs());
        let lines = impact_lines(&unknown, 10);
        let maybe: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(":grey_question:"))
            .collect();
        assert_eq!(maybe.len(), 4, "{lines:?}");
        assert!(maybe[0].starts_with(":grey_question: `finance_daily` runs <!date^"));
        assert!(maybe[0].contains("it may read stale `revenue_daily` → `revenue_report`"));
        assert!(maybe[0].ends_with("(not known when this job is likely done)"));
        assert!(
            lines.iter().all(|l| !l.starts_with(":calendar:")),
            "{lines:?}"
        );
    }

    #[test]
    fn owners_are_slack_ids_emails_or_names() {
        assert_eq!(
            Owner::parse("U0123ABCD"),
            Owner::SlackUser("U0123ABCD".into())
        );
        assert_eq!(
            Owner::parse("<@U0123ABCD>"),
            Owner::SlackUser("U0123ABCD".into())
        );
        assert_eq!(
            Owner::parse("ana@example.com"),
            Owner::Email("ana@example.com".into())
        );
        assert_eq!(
            Owner::parse("Finance team"),
            Owner::Name("Finance team".into())
        );
        assert_eq!(Owner::parse("Ursula"), Owner::Name("Ursula".into()));
    }
}
