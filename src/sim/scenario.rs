//! The scenario file `servo-sla-bot simulate` replays: TOML, documented in
//! `docs/simulate.md`. Parsing checks everything that can be checked before
//! the run (names, times, which job an action means) and reports problems
//! with the file's line, so a typo does not surface an hour into a replay.

use crate::config::{parse_duration, FileConfig};
use crate::servo::sim::SimJobSpec;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use toml::Spanned;

/// A problem with a scenario, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// The start time scenarios use unless they say otherwise: a Monday morning.
pub const DEFAULT_START: &str = "2026-03-02T09:00:00Z";
/// How long a scenario runs at most unless it says otherwise.
pub const DEFAULT_RUN_FOR: &str = "12h";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    start: Option<String>,
    run_for: Option<String>,
    config: Option<toml::Table>,
    #[serde(default)]
    people: BTreeMap<String, String>,
    #[serde(default)]
    usergroups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    channels: BTreeMap<String, String>,
    #[serde(default)]
    servo: RawServo,
    #[serde(default, rename = "job")]
    jobs: Vec<Spanned<RawJob>>,
    #[serde(default, rename = "action")]
    actions: Vec<Spanned<RawAction>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServo {
    priority_speedup: Option<f64>,
    #[serde(default)]
    outages: Vec<Spanned<RawOutage>>,
    /// Servo's lineage: assets, their owners and what they read (issue 37).
    #[serde(default, rename = "asset")]
    assets: Vec<RawAsset>,
    /// Scheduled workflows and the assets they touch.
    #[serde(default, rename = "workflow")]
    workflows: Vec<RawWorkflow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsset {
    name: String,
    owner: Option<String>,
    #[serde(default)]
    reads: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: String,
    owner: Option<String>,
    cron: Option<String>,
    timezone: Option<String>,
    /// Its `next_scheduled_run`, as an offset from the start (`+3h`).
    next: Option<String>,
    assets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutage {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: String,
    tenant: Option<String>,
    asset: String,
    owner: Option<String>,
    partitions: usize,
    parallelism: Option<usize>,
    start: Option<String>,
    partition_time: String,
    #[serde(default)]
    pace: Vec<RawPace>,
    #[serde(default)]
    failures: Vec<RawFailure>,
    upstream: Option<RawUpstream>,
    deadline: Option<String>,
    priority: Option<i32>,
    first_partition: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPace {
    at: String,
    partition_time: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailure {
    at: String,
    partitions: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    jobs: i64,
    done_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    at: String,
    user: String,
    click: Option<String>,
    job: Option<String>,
    command: Option<String>,
    channel: Option<String>,
    submit: Option<BTreeMap<String, String>>,
    expect: Option<String>,
}

/// What a person does.
#[derive(Clone, Debug, PartialEq)]
pub enum Act {
    /// Clicks the button with this label (or action id) on a message about `job`.
    Click { button: String, job: String },
    /// Types `/backfill <text>` in `channel` (`{job}` already replaced by its id at run time).
    Command {
        text: String,
        channel: Option<String>,
    },
    /// Submits the dialog they have open, with these field values.
    Submit { fields: BTreeMap<String, String> },
}

/// One human action of the scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub line: usize,
    pub at: DateTime<Utc>,
    pub user: String,
    pub act: Act,
    /// The scenario expects the bot to refuse it (to show what a refusal looks like).
    pub expect_refusal: bool,
}

/// A parsed, checked scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub file: String,
    pub name: String,
    pub description: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub config: FileConfig,
    /// Display names by Slack user id.
    pub people: BTreeMap<String, String>,
    pub usergroups: BTreeMap<String, Vec<String>>,
    /// Display names by channel id.
    pub channels: BTreeMap<String, String>,
    pub jobs: Vec<SimJobSpec>,
    pub outages: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub priority_speedup: f64,
    pub actions: Vec<Action>,
    /// Servo's lineage and scheduled workflows.
    pub lineage: crate::servo::sim::SimLineage,
}

/// Parses `+25m`, `-2h`, `0m`, `+1h30m` (from the scenario's start).
pub fn parse_offset(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let d = parse_duration(rest).map_err(|e| {
        format!("`{s}` is not a time in the scenario ({e}); write an offset from its start such as \"+25m\", \"-2h\" or \"+1h30m\"")
    })?;
    let d = Duration::from_std(d).map_err(|_| format!("`{s}` is too far away"))?;
    Ok(d * sign)
}

struct Ctx<'a> {
    file: String,
    text: &'a str,
    start: DateTime<Utc>,
}

impl Ctx<'_> {
    fn line_of(&self, byte: usize) -> usize {
        self.text[..byte.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }
    fn err(&self, line: Option<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }
    fn time(&self, line: usize, what: &str, s: &str) -> Result<DateTime<Utc>, ScenarioError> {
        parse_offset(s)
            .map(|d| self.start + d)
            .map_err(|e| self.err(Some(line), format!("{what}: {e}")))
    }
    fn span(&self, line: usize, what: &str, s: &str) -> Result<Duration, ScenarioError> {
        let d = parse_duration(s).map_err(|e| self.err(Some(line), format!("{what} {e}")))?;
        Duration::from_std(d).map_err(|_| self.err(Some(line), format!("{what} is too long")))
    }
}

impl Scenario {
    /// Reads and checks a scenario; `config` replaces the scenario's own `[config]`.
    pub fn load(path: &Path, config: Option<&Path>) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: None,
            message: format!("cannot read the scenario: {e}"),
        })?;
        let config = match config {
            None => None,
            Some(p) => Some(FileConfig::load(p).map_err(|problems| ScenarioError {
                file: p.display().to_string(),
                line: None,
                message: format!("the config has problems:\n{problems}"),
            })?),
        };
        Scenario::parse(&file, &text, config)
    }

    pub fn parse(
        file: &str,
        text: &str,
        config_override: Option<FileConfig>,
    ) -> Result<Scenario, ScenarioError> {
        let mut ctx = Ctx {
            file: file.to_string(),
            text,
            start: DateTime::parse_from_rfc3339(DEFAULT_START)
                .expect("a valid default")
                .with_timezone(&Utc),
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| ctx.line_of(s.start));
            ctx.err(line, e.message().to_string())
        })?;
        if let Some(start) = &raw.start {
            ctx.start = DateTime::parse_from_rfc3339(start)
                .map_err(|e| {
                    ctx.err(
                        None,
                        format!("start: `{start}` is not an RFC 3339 time ({e})"),
                    )
                })?
                .with_timezone(&Utc);
        }
        let run_for = ctx.span(
            0,
            "run_for",
            raw.run_for.as_deref().unwrap_or(DEFAULT_RUN_FOR),
        )?;
        let config = match (config_override, raw.config) {
            (Some(c), _) => c,
            (None, Some(table)) => {
                let text = toml::to_string(&table)
                    .map_err(|e| ctx.err(None, format!("[config] cannot be read: {e}")))?;
                FileConfig::parse(&text).map_err(|problems| {
                    ctx.err(
                        None,
                        format!("[config] has problems (its keys are those of servo-sla-bot.toml):\n{problems}"),
                    )
                })?
            }
            (None, None) => {
                return Err(ctx.err(
                    None,
                    "the scenario has no [config] table and no --config was given; the bot needs its tenants and escalation path",
                ))
            }
        };
        let tenants: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();

        let mut jobs = Vec::new();
        for spanned in &raw.jobs {
            let line = ctx.line_of(spanned.span().start);
            let j = spanned.get_ref();
            if jobs.iter().any(|o: &SimJobSpec| o.name == j.name) {
                return Err(ctx.err(Some(line), format!("a second job is named `{}`", j.name)));
            }
            let tenant = match &j.tenant {
                Some(t) if tenants.contains(&t.as_str()) => t.clone(),
                Some(t) => {
                    return Err(ctx.err(
                        Some(line),
                        format!(
                            "job `{}`: tenant `{t}` is not in the config (tenants: {})",
                            j.name,
                            tenants.join(", ")
                        ),
                    ))
                }
                None if tenants.len() == 1 => tenants[0].to_string(),
                None => {
                    return Err(ctx.err(
                        Some(line),
                        format!(
                            "job `{}` needs `tenant`: the config has several ({})",
                            j.name,
                            tenants.join(", ")
                        ),
                    ))
                }
            };
            if j.partitions == 0 {
                return Err(ctx.err(
                    Some(line),
                    format!("job `{}` needs at least one partition", j.name),
                ));
            }
            let created = ctx.time(line, "start", j.start.as_deref().unwrap_or("0m"))?;
            let mut pace = vec![(
                created,
                ctx.span(line, "partition_time", &j.partition_time)?,
            )];
            for p in &j.pace {
                pace.push((
                    ctx.time(line, "pace.at", &p.at)?,
                    ctx.span(line, "pace.partition_time", &p.partition_time)?,
                ));
            }
            pace.sort_by_key(|p| p.0);
            let mut failures = Vec::new();
            for f in &j.failures {
                failures.push((ctx.time(line, "failures.at", &f.at)?, f.partitions));
            }
            let upstream = match &j.upstream {
                None => None,
                Some(u) => Some((u.jobs, ctx.time(line, "upstream.done_at", &u.done_at)?)),
            };
            let deadline = match &j.deadline {
                None => None,
                Some(d) => Some(ctx.time(line, "deadline", d)?),
            };
            let first_partition = match &j.first_partition {
                None => NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"),
                Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    ctx.err(
                        Some(line),
                        format!("first_partition: `{d}` is not a date like 2025-01-01"),
                    )
                })?,
            };
            jobs.push(SimJobSpec {
                name: j.name.clone(),
                tenant,
                asset: j.asset.clone(),
                owner: j.owner.clone(),
                partitions: j.partitions,
                parallelism: j.parallelism.unwrap_or(1).max(1),
                created,
                pace,
                failures,
                upstream,
                deadline,
                priority: j.priority.unwrap_or(5),
                first_partition,
            });
        }
        if jobs.is_empty() {
            return Err(ctx.err(None, "the scenario has no [[job]]"));
        }

        let mut outages = Vec::new();
        for o in &raw.servo.outages {
            let line = ctx.line_of(o.span().start);
            let (from, to) = (
                ctx.time(line, "outages.from", &o.get_ref().from)?,
                ctx.time(line, "outages.to", &o.get_ref().to)?,
            );
            if to <= from {
                return Err(ctx.err(Some(line), "an outage must end after it starts"));
            }
            outages.push((from, to));
        }

        let job_names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        let known_job = |line: usize, name: &str| -> Result<(), ScenarioError> {
            if job_names.contains(&name) {
                Ok(())
            } else {
                Err(ctx.err(
                    Some(line),
                    format!(
                        "unknown job `{name}` (the scenario's jobs: {})",
                        job_names.join(", ")
                    ),
                ))
            }
        };
        let mut actions = Vec::new();
        for spanned in &raw.actions {
            let line = ctx.line_of(spanned.span().start);
            let a = spanned.get_ref();
            let at = ctx.time(line, "at", &a.at)?;
            if !raw.people.is_empty() && !raw.people.contains_key(&a.user) {
                return Err(ctx.err(
                    Some(line),
                    format!(
                        "unknown person `{}` (the scenario's people: {})",
                        a.user,
                        raw.people.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let act = match (&a.click, &a.command, &a.submit) {
                (Some(button), None, None) => {
                    let Some(job) = &a.job else {
                        return Err(ctx.err(
                            Some(line),
                            format!("`click = \"{button}\"` needs `job`: which job's message is clicked"),
                        ));
                    };
                    known_job(line, job)?;
                    Act::Click {
                        button: button.clone(),
                        job: job.clone(),
                    }
                }
                (None, Some(text), None) => {
                    let text = text.trim().trim_start_matches("/backfill").trim();
                    for name in placeholders(text) {
                        known_job(line, &name)?;
                    }
                    if let Some(job) = &a.job {
                        known_job(line, job)?;
                    }
                    Act::Command {
                        text: text.to_string(),
                        channel: a.channel.clone(),
                    }
                }
                (None, None, Some(fields)) => Act::Submit {
                    fields: fields.clone(),
                },
                _ => {
                    return Err(ctx.err(
                        Some(line),
                        "an action needs exactly one of `click`, `command` or `submit`",
                    ))
                }
            };
            let expect_refusal = match a.expect.as_deref() {
                None => false,
                Some("refused") => true,
                Some(other) => {
                    return Err(ctx.err(
                        Some(line),
                        format!("expect = \"{other}\": the only expectation is \"refused\""),
                    ))
                }
            };
            actions.push(Action {
                line,
                at,
                user: a.user.clone(),
                act,
                expect_refusal,
            });
        }
        actions.sort_by_key(|a| a.at);

        let priority_speedup = raw.servo.priority_speedup.unwrap_or(2.0);
        if !(priority_speedup.is_finite() && priority_speedup > 0.0) {
            return Err(ctx.err(None, "servo.priority_speedup must be above 0"));
        }
        let mut lineage = crate::servo::sim::SimLineage::default();
        for a in &raw.servo.assets {
            lineage
                .assets
                .push((a.name.clone(), a.owner.clone(), a.reads.clone()));
        }
        for w in &raw.servo.workflows {
            let next = match &w.next {
                Some(n) => Some(
                    ctx.start
                        + parse_offset(n).map_err(|e| {
                            ctx.err(None, format!("servo.workflow `{}` next: {e}", w.name))
                        })?,
                ),
                None => None,
            };
            if w.cron.is_none() && next.is_none() {
                return Err(ctx.err(
                    None,
                    format!("servo.workflow `{}` needs a `cron` or a `next`", w.name),
                ));
            }
            let timezone = w.timezone.clone().unwrap_or_else(|| "UTC".into());
            let schedule = crate::domain::lineage::Schedule {
                cron: w.cron.clone(),
                timezone: timezone.clone(),
                enabled: true,
                next_scheduled_run: None,
            };
            if w.cron.is_some() {
                schedule
                    .next_run(ctx.start)
                    .map_err(|e| ctx.err(None, format!("servo.workflow `{}`: {e}", w.name)))?;
            }
            lineage.workflows.push(crate::servo::sim::SimWorkflow {
                name: w.name.clone(),
                owner: w.owner.clone(),
                cron: w.cron.clone(),
                timezone,
                next_scheduled_run: next,
                assets: w.assets.clone(),
            });
        }
        Ok(Scenario {
            lineage,
            file: ctx.file.clone(),
            name: raw.name.unwrap_or_else(|| file.to_string()),
            description: raw.description,
            start: ctx.start,
            end: ctx.start + run_for,
            config,
            people: raw.people,
            usergroups: raw.usergroups,
            channels: raw.channels,
            jobs,
            outages,
            priority_speedup,
            actions,
        })
    }

    /// The specs shared with the simulated Servo.
    pub fn job_specs(&self) -> Vec<SimJobSpec> {
        self.jobs.clone()
    }

    /// A person's display name, or their id.
    pub fn person(&self, id: &str) -> String {
        self.people
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// The error for an action that went wrong at run time.
    pub fn action_error(&self, action: &Action, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.clone(),
            line: Some(action.line),
            message: message.into(),
        }
    }
}

/// The job names written `{name}` in a command.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(rest[open + 1..open + close].trim().to_string());
        rest = &rest[open + close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[config]
poll_interval = "5m"
[[config.tenants]]
id = "acme"
channel = "C0ACMEALRT"
operators = ["U0ONCALL1"]
[[config.escalation.tiers]]
name = "On-call Engineer"
notify = ["U0ONCALL1"]
ack_timeout = "15m"
"#;

    fn parse(body: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse("s.toml", &format!("{CONFIG}{body}"), None)
    }

    const JOB: &str = r#"
[[job]]
name = "orders"
asset = "revenue_orders"
partitions = 10
partition_time = "5m"
deadline = "+1h"
"#;

    #[test]
    fn offsets_take_signs_and_compound_units() {
        assert_eq!(parse_offset("+25m").unwrap(), Duration::minutes(25));
        assert_eq!(parse_offset("-2h").unwrap(), Duration::hours(-2));
        assert_eq!(parse_offset("1h30m").unwrap(), Duration::minutes(90));
        assert!(parse_offset("soon").unwrap_err().contains("+25m"));
    }

    #[test]
    fn a_scenario_parses_with_its_jobs_and_actions_in_time_order() {
        let s = parse(&format!(
            "{JOB}\n[[action]]\nat = \"+30m\"\nuser = \"U0ONCALL1\"\ncommand = \"status {{orders}}\"\n\n[[action]]\nat = \"+10m\"\nuser = \"U0ONCALL1\"\nclick = \"Acknowledge\"\njob = \"orders\"\n"
        ))
        .unwrap();
        assert_eq!(s.jobs[0].tenant, "acme");
        assert_eq!(s.jobs[0].deadline, Some(s.start + Duration::hours(1)));
        assert_eq!(s.actions.len(), 2);
        assert_eq!(s.actions[0].at, s.start + Duration::minutes(10));
        assert!(matches!(s.actions[0].act, Act::Click { .. }));
        assert_eq!(s.actions[1].line, 20, "the line of its [[action]] header");
    }

    #[test]
    fn an_unknown_job_is_named_with_its_line() {
        let e = parse(&format!(
            "{JOB}\n[[action]]\nat = \"+10m\"\nuser = \"U0ONCALL1\"\nclick = \"Acknowledge\"\njob = \"ordrs\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(20));
        assert!(e.message.contains("unknown job `ordrs`"), "{e}");
        assert!(e.to_string().starts_with("s.toml:20: "), "{e}");
        let e = parse(&format!(
            "{JOB}\n[[action]]\nat = \"+10m\"\nuser = \"U0ONCALL1\"\ncommand = \"pause {{billing}}\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("unknown job `billing`"), "{e}");
    }

    #[test]
    fn bad_values_and_keys_give_their_line() {
        let e = parse(&JOB.replace("\"+1h\"", "\"tomorrow\"")).unwrap_err();
        assert_eq!(e.line, Some(13));
        assert!(e.message.contains("deadline"), "{e}");
        let e = parse(&format!("{JOB}colour = \"red\"\n")).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
        assert_eq!(e.line, Some(19));
        let e = Scenario::parse("s.toml", JOB, None).unwrap_err();
        assert!(e.message.contains("no [config]"), "{e}");
    }
}
