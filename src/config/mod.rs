//! Typed configuration: a TOML file for what users shape (tenants, people,
//! thresholds, escalation) and environment variables for secrets and URLs.
//!
//! Loading never stops at the first problem: it collects every missing or
//! invalid item with its key and how to fix it, so one run of `check-config`
//! (or a failed `serve`) tells the whole story. Secret values are never part of
//! a problem message.

use crate::domain::ids::{ChannelId, Principal};
use crate::domain::secret::Secret;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the bot's own store lives when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://servo-sla-bot.db";
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api/";
pub const DEFAULT_PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
pub const DEFAULT_BIND_ADDR: &str = "0.0.0.0:8080";
/// The config file used when neither `--config` nor `SERVO_SLA_BOT_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "servo-sla-bot.toml";

/// A database URL whose password is hidden whenever it is printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// Replaces the password of `scheme://user:password@host/...` with `***`
/// (the store's implementation: one place decides what is a secret in a URL).
use crate::store::redact_url;

mod duration;
mod env;
mod file;
mod problems;
pub mod quiet;

pub use duration::parse_duration;
pub use env::{config_path, is_store_url, load_env};
pub use problems::{Problem, Problems};

// ---------------------------------------------------------------------------
// The validated configuration the rest of the bot uses.
// ---------------------------------------------------------------------------

/// What the config file says, validated.
#[derive(Clone, Debug)]
pub struct FileConfig {
    pub poll_interval: Duration,
    pub runbook_url: String,
    pub risk: RiskConfig,
    pub tenants: Vec<Tenant>,
    pub escalation: Escalation,
    pub slack: SlackTuning,
    /// How long a deadline-extension request waits for a decision (it also
    /// expires by the current deadline, whichever comes first).
    pub extension_expire_after: Duration,
    /// How often **Monitor closely** checks in (the runbook: every 15-30 min).
    pub monitor_every: Duration,
    /// After a **Request scaling** page, how long before it can be asked again.
    pub scaling_cooldown: Duration,
    /// How long a `/backfill status` card may be answered again from memory
    /// (zero: never). Any job change this replica makes forgets them at once.
    pub status_max_age: Duration,
    /// `slack.socket_mode`: `Some(true)` requires Socket Mode (and so
    /// `SLACK_APP_TOKEN`), `Some(false)` turns it off even when the token is
    /// set, `None` (the default) runs it exactly when `SLACK_APP_TOKEN` is set.
    pub socket_mode: Option<bool>,
    /// `[buffers]`: the deadline buffer each SLA tier should keep.
    pub buffers: Buffers,
    /// `[review]`: the weekly SLA review and how long its data is kept.
    pub review: ReviewConfig,
    /// `[alerts]`: how alerts read in a storm.
    pub alerts: AlertsConfig,
    /// `[silences]`, `[[maintenance]]`, `[escalation.hours.<tier>]`.
    pub quiet: quiet::QuietConfig,
    /// `[[rotations]]`: who is on shift when (issue 36).
    pub rotations: Vec<crate::domain::rotation::Rotation>,
    /// `[lineage]`: what a late job breaks downstream (issue 37).
    pub lineage: LineageConfig,
    /// `[incidents]`: an alert's incident channel (issue 38).
    pub incidents: IncidentsConfig,
}

/// `[lineage]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LineageConfig {
    /// `lineage.depth`: how many hops downstream of a job's asset count.
    pub depth: usize,
    /// `lineage.notify_owners_at`: the band from which the owners of the
    /// affected downstream assets get a DM (once per episode); `None`
    /// (`"never"`): never.
    pub notify_owners_at: Option<crate::domain::risk::RiskBand>,
    /// `lineage.max_lines`: how many lines an alert's *Downstream impact*
    /// shows before "…and N more".
    pub max_lines: usize,
}

impl Default for LineageConfig {
    fn default() -> Self {
        Self {
            depth: 3,
            notify_owners_at: Some(crate::domain::risk::RiskBand::High),
            max_lines: 5,
        }
    }
}

/// `[incidents]`.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentsConfig {
    /// `incidents.channel_prefix`: an incident channel's name is this, the
    /// asset and the date (`sla-revenue-daily-0302`).
    pub channel_prefix: String,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            channel_prefix: "sla-".into(),
        }
    }
}

/// `[alerts]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertsConfig {
    /// `alerts.rollup_after`: when more of a tenant's jobs than this are at
    /// risk together, the channel gets one incident message for the tenant
    /// (the roll-up), and each new alert is a reply in its thread.
    pub rollup_after: usize,
    /// How many jobs the roll-up names before "…and N more".
    pub rollup_lists: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            rollup_after: 5,
            rollup_lists: 15,
        }
    }
}

/// The deadline buffer each SLA tier should keep: the share of a job's
/// expected duration its deadline leaves after the expected completion,
/// `(deadline - expected completion) / expected duration`. The buffer check
/// flags a job whose deadline leaves less when first seen; the early warning
/// posts a quiet "approaching" notice when the ETA eats into it. `None`: the
/// tier is flexible (no check, no early warning).
#[derive(Clone, Debug, PartialEq)]
pub struct Buffers {
    pub critical: Option<f64>,
    pub standard: Option<f64>,
    pub best_effort: Option<f64>,
    pub below_best_effort: Option<f64>,
    /// An approaching notice clears once the buffer is this much above the tier's.
    pub hysteresis: f64,
}

impl Default for Buffers {
    fn default() -> Self {
        Self {
            critical: Some(0.10),
            standard: Some(0.20),
            best_effort: None,
            below_best_effort: None,
            hysteresis: 0.05,
        }
    }
}

impl Buffers {
    /// The buffer `tier` should keep, if it has one.
    pub fn for_tier(&self, tier: crate::domain::risk::SlaTier) -> Option<f64> {
        use crate::domain::risk::SlaTier::*;
        match tier {
            Critical => self.critical,
            Standard => self.standard,
            BestEffort => self.best_effort,
            BelowBestEffort => self.below_best_effort,
        }
    }
}

/// `[review]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewConfig {
    /// Post the review every week in each tenant's channel.
    pub weekly: bool,
    pub day: chrono::Weekday,
    /// The time of day, UTC.
    pub at: chrono::NaiveTime,
    /// How long alerts, actions, pages, forecasts and notices are kept.
    pub retention: Duration,
    /// Attach charts (PNG) to reviews and burn-downs to new alerts.
    pub charts: bool,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            weekly: true,
            day: chrono::Weekday::Mon,
            at: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            retention: Duration::from_secs(90 * 86_400),
            charts: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RiskConfig {
    /// Severity at which a job is Medium (runbook: 0.20).
    pub medium_at: f64,
    /// Severity above which a job is High (runbook: 0.50).
    pub high_at: f64,
    /// How far below a threshold severity must fall before the band drops,
    /// so a job hovering at a boundary does not flap.
    pub hysteresis: f64,
    /// How old Servo's own ETA may be before the bot computes its own.
    pub eta_fresh_for: Duration,
    /// SLA tiers whose risk is judged on the forecast's P90 (likely-by)
    /// rather than its P50: the cautious choice for tight buffers.
    pub p90_tiers: Vec<crate::domain::risk::SlaTier>,
    /// Judge risk on the bot's forecast from the partition history (true,
    /// the default) or on Servo's own EWMA ETA (false).
    pub forecast: bool,
}

impl RiskConfig {
    /// The thresholds every assessment uses.
    pub fn thresholds(&self) -> crate::domain::assessment::RiskThresholds {
        crate::domain::assessment::RiskThresholds::new(
            self.medium_at,
            self.high_at,
            self.hysteresis,
            self.eta_fresh_for,
        )
    }
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            medium_at: 0.20,
            high_at: 0.50,
            hysteresis: 0.05,
            eta_fresh_for: Duration::from_secs(600),
            p90_tiers: Vec::new(),
            forecast: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Tenant {
    /// Servo's `tenant_id`.
    pub id: String,
    /// Where the tenant's alerts go; slash commands there act on this tenant.
    pub channel: ChannelId,
    /// More channels whose slash commands act on this tenant.
    pub incident_channels: Vec<ChannelId>,
    /// Users and user groups allowed to act (pause, resume, buttons).
    pub operators: Vec<Principal>,
    pub stakeholders: Vec<StakeholderRule>,
    /// `[tenants.escalation]`: the tenant's own path (the global settings
    /// with its own tiers); `None` follows the global path.
    pub escalation: Option<Escalation>,
}

impl Tenant {
    /// Everyone who may act for or decide on the tenant's jobs: its
    /// operators and every stakeholder rule's approvers.
    pub fn people(&self) -> Vec<crate::domain::ids::Principal> {
        let mut all = self.operators.clone();
        for rule in &self.stakeholders {
            all.extend(rule.approvers.iter().cloned());
        }
        all
    }

    /// Its operators as mentions, for a refusal that says whom to ask (in
    /// an ephemeral answer, which notifies nobody).
    pub fn operator_mentions(&self) -> String {
        let all: Vec<String> = self.operators.iter().map(|p| p.mention()).collect();
        all.join(", ")
    }
}

/// Who may approve deadline extensions for the jobs it matches.
#[derive(Clone, Debug)]
pub struct StakeholderRule {
    /// A glob on the asset name (`*` and `?`), if the rule is per asset.
    pub asset: Option<String>,
    /// An SLA tier (`critical`, `standard`, `best_effort`, `below_best_effort`).
    pub tier: Option<String>,
    pub approvers: Vec<Principal>,
}

#[derive(Clone, Debug)]
pub struct Escalation {
    /// How many times the whole path is walked again after the last tier.
    pub repeat: u32,
    pub tiers: Vec<EscalationTier>,
    /// The band at which paging starts, per SLA tier: critical, standard,
    /// best effort, below best effort. Below it the alert only posts.
    pub start_at: [crate::domain::risk::RiskBand; 4],
    /// Whether a band that gets worse after an acknowledgement re-arms the path.
    pub rearm_on_worse: bool,
    /// At least this many high-priority jobs at risk at once page from tier 2.
    pub high_priority_jobs: u32,
    /// The priority from which a job counts as high priority (runbook: 8).
    pub high_priority_min: i32,
    /// Severity rising by this much within `rise_within` moves the alert up a tier.
    pub rise_by: f64,
    pub rise_within: Duration,
    /// `[escalation.widespread]`: many jobs of a tenant at risk with one cause.
    pub widespread: Widespread,
    /// `[escalation.system_wide]`: the fleet slowing down across tenants.
    pub system_wide: SystemWide,
    /// `escalation.start_at_if_downstream`: an alert whose job would make a
    /// scheduled downstream run read stale data pages from this band, when
    /// that is earlier than its tier's `start_at` (issue 37). Unset: no change.
    pub start_at_if_downstream: Option<crate::domain::risk::RiskBand>,
}

/// A widespread slowdown: at least `min_jobs` of a tenant's jobs (or, when
/// `share` is set, that share of its active jobs, two at least) at risk at
/// the same time with the same bottleneck (waiting upstream, partition
/// durations rising, partitions failing). It pages from tier 2, once per
/// episode, naming the cause and the jobs.
#[derive(Clone, Debug, PartialEq)]
pub struct Widespread {
    pub min_jobs: usize,
    pub share: Option<f64>,
}

/// System-wide degradation: partition durations rising on at least `share`
/// of the active jobs that have a history to judge by, across all tenants,
/// and on `min_jobs` of them at least. It pages the platform tier once per
/// episode and shows in every affected tenant's channel.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemWide {
    pub min_jobs: usize,
    pub share: f64,
}

#[derive(Clone, Debug)]
pub struct EscalationTier {
    pub name: String,
    /// The users and user groups named in `notify`.
    pub notify: Vec<Principal>,
    /// `rotation:<id>` entries of `notify`: the member on shift is paged.
    pub rotations: Vec<String>,
    /// `pagerduty-schedule:<ID>` entries of `notify`.
    pub pagerduty_schedules: Vec<String>,
    pub ack_timeout: Duration,
    /// The name of the environment variable holding this tier's PagerDuty
    /// routing key; the key itself never sits in the file.
    pub pagerduty_routing_key_env: Option<String>,
    /// What this tier is paged for, said in every page (the runbook's words
    /// by position unless the file says otherwise).
    pub purpose: String,
}

/// The runbook's part for each tier of the path, by position: 1. on-call
/// engineer, 2. platform team lead, 3. product/business stakeholder.
pub fn default_purpose(index: usize) -> &'static str {
    match index {
        0 => "initial assessment and standard mitigation",
        1 => "resource scaling decisions",
        _ => "deadline negotiation and impact communication",
    }
}

/// How the outbound Slack client behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackTuning {
    /// How long one Web API call may take before it counts as failed.
    pub timeout: Duration,
    /// Attempts per call for 5xx answers and timeouts (429s wait, and do not count).
    pub max_attempts: u32,
    /// Posts to one channel in a burst before the outbox paces them
    /// (`slack.post_burst`; Slack allows short bursts).
    pub post_burst: u32,
    /// Then one post to a channel per this long (`slack.post_interval`,
    /// Slack's limit is about one a second; `0s` turns pacing off).
    pub post_interval: Duration,
}

impl Default for SlackTuning {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            post_burst: 3,
            post_interval: Duration::from_secs(1),
        }
    }
}

/// What the environment says.
#[derive(Clone, Debug)]
pub struct EnvConfig {
    pub slack_bot_token: Secret,
    pub slack_signing_secret: Secret,
    pub servo_database_url: DatabaseUrl,
    pub database_url: DatabaseUrl,
    pub slack_api_url: String,
    pub pagerduty_events_url: String,
    /// PagerDuty's REST API (`PAGERDUTY_API_URL`), asked for schedules.
    pub pagerduty_api_url: String,
    /// `PAGERDUTY_API_TOKEN`: a read-only REST API key, needed when a tier
    /// names `pagerduty-schedule:<ID>`.
    pub pagerduty_api_token: Option<Secret>,
    pub alertmanager_token: Option<Secret>,
    /// The app-level token (`xapp-…`) that opens Socket Mode connections.
    pub slack_app_token: Option<Secret>,
    pub bind_addr: SocketAddr,
    /// PagerDuty routing keys, by the environment variable that holds them
    /// (the tiers' `pagerduty_routing_key_env`).
    pub pagerduty_keys: std::collections::HashMap<String, Secret>,
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub file: FileConfig,
    pub env: EnvConfig,
}

impl Settings {
    /// The app-level token when the bot should run in Socket Mode: set
    /// `SLACK_APP_TOKEN`, unless the file says `slack.socket_mode = false`.
    /// (`socket_mode = true` without the token never loads.)
    pub fn socket_mode_token(&self) -> Option<&Secret> {
        match self.file.socket_mode {
            Some(false) => None,
            _ => self.env.slack_app_token.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
poll_interval = "60s"
runbook_url = "https://docs.servo.io/runbooks/backfill-sla-risk"

[risk]
medium_at = 0.20
high_at = 0.50

[[tenants]]
id = "acme"
channel = "C0ACMEALERT"
incident_channels = ["C0INCIDENT1"]
operators = ["S0ONCALL", "U0PLATLEAD"]

[[tenants.stakeholders]]
asset = "revenue_*"
approvers = ["U0PRODOWNER"]

[escalation]
repeat = 1

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["S0ONCALL"]
ack_timeout = "15m"

[[escalation.tiers]]
name = "Platform Team Lead"
notify = ["U0PLATLEAD"]
pagerduty_routing_key_env = "PD_PLATFORM_KEY"

[[escalation.tiers]]
name = "Product/Business Stakeholder"
notify = ["U0PRODOWNER"]
"#;

    #[test]
    fn lineage_keys_default_and_refuse_what_they_cannot_use() {
        use crate::domain::risk::RiskBand;
        let cfg = FileConfig::parse(GOOD).unwrap();
        assert_eq!(cfg.lineage, LineageConfig::default());
        assert_eq!(cfg.lineage.notify_owners_at, Some(RiskBand::High));
        assert_eq!(cfg.escalation.start_at_if_downstream, None);
        let set = GOOD.replace(
            "[escalation]\nrepeat = 1\n",
            "[escalation]\nrepeat = 1\nstart_at_if_downstream = \"medium\"\n",
        ) + "\n[lineage]\ndepth = 2\nnotify_owners_at = \"never\"\n";
        let cfg = FileConfig::parse(&set).unwrap();
        assert_eq!(
            cfg.escalation.start_at_if_downstream,
            Some(RiskBand::Medium)
        );
        assert_eq!(cfg.lineage.depth, 2);
        assert_eq!(cfg.lineage.notify_owners_at, None);
        let bad = GOOD.replace(
            "[escalation]\nrepeat = 1\n",
            "[escalation]\nrepeat = 1\nstart_at_if_downstream = \"soon\"\n",
        ) + "\n[lineage]\ndepth = 0\nnotify_owners_at = \"loud\"\n";
        let p = FileConfig::parse(&bad).unwrap_err().to_string();
        for key in [
            "escalation.start_at_if_downstream",
            "lineage.depth",
            "lineage.notify_owners_at",
        ] {
            assert!(p.contains(key), "{key} in {p}");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_documented_example_shape_parses_with_runbook_defaults() {
        let cfg = FileConfig::parse(GOOD).unwrap();
        assert_eq!(cfg.poll_interval, Duration::from_secs(60));
        assert_eq!(cfg.tenants[0].id, "acme");
        assert_eq!(cfg.tenants[0].channel.as_str(), "C0ACMEALERT");
        assert_eq!(cfg.escalation.repeat, 1);
        let timeouts: Vec<u64> = cfg
            .escalation
            .tiers
            .iter()
            .map(|t| t.ack_timeout.as_secs() / 60)
            .collect();
        assert_eq!(
            timeouts,
            vec![15, 30, 60],
            "defaults are 15, 30 and 60 minutes"
        );
        assert_eq!(cfg.risk, RiskConfig::default());
    }

    #[test]
    fn each_tier_says_its_part_as_the_runbook_does_unless_configured() {
        let cfg = FileConfig::parse(GOOD).unwrap();
        let parts: Vec<&str> = cfg
            .escalation
            .tiers
            .iter()
            .map(|t| t.purpose.as_str())
            .collect();
        assert_eq!(
            parts,
            [
                "initial assessment and standard mitigation",
                "resource scaling decisions",
                "deadline negotiation and impact communication"
            ]
        );
        assert_eq!(cfg.scaling_cooldown, Duration::from_secs(30 * 60));
        let custom = GOOD.replace(
            "ack_timeout = \"15m\"",
            "ack_timeout = \"15m\"\npurpose = \"triage, then mitigate\"",
        );
        let cfg = FileConfig::parse(&custom).unwrap();
        assert_eq!(cfg.escalation.tiers[0].purpose, "triage, then mitigate");
    }

    #[test]
    fn an_empty_part_and_a_scaling_cool_down_under_a_minute_are_problems() {
        let bad = GOOD.replace(
            "ack_timeout = \"15m\"",
            "ack_timeout = \"15m\"\npurpose = \" \"",
        ) + "\n[mitigations]\nscaling_cooldown = \"10s\"\n";
        let p = FileConfig::parse(&bad).unwrap_err().to_string();
        assert!(p.contains("escalation.tiers[0].purpose"), "{p}");
        assert!(p.contains("mitigations.scaling_cooldown"), "{p}");
    }

    #[test]
    fn the_shipped_example_file_is_valid() {
        let text = include_str!("../../examples/servo-sla-bot.toml");
        if let Err(p) = FileConfig::parse(text) {
            panic!("examples/servo-sla-bot.toml is invalid:\n{p}");
        }
    }

    #[test]
    fn a_tenant_path_replaces_the_global_one_and_check_config_names_an_empty_one() {
        let own = GOOD.replace(
            "approvers = [\"U0PRODOWNER\"]\n",
            "approvers = [\"U0PRODOWNER\"]\n\n[[tenants.escalation.tiers]]\nname = \"Acme On-call\"\nnotify = [\"rotation:acme\", \"pagerduty-schedule:PABC123\"]\n\n[[rotations]]\nid = \"acme\"\nmembers = [\"U0ALICE\", \"U0BOB\"]\nshift = \"1w\"\nhandoff = \"mon 09:00\"\ntz = \"Europe/Berlin\"\nstart = \"2026-12-07\"\n",
        );
        let cfg = FileConfig::parse(&own).unwrap();
        let path = cfg.escalation_for("acme");
        assert_eq!(path.tiers.len(), 1);
        assert_eq!(path.tiers[0].name, "Acme On-call");
        assert_eq!(path.tiers[0].rotations, ["acme"]);
        assert_eq!(path.tiers[0].pagerduty_schedules, ["PABC123"]);
        assert_eq!(path.repeat, 1, "the global settings stay");
        assert_eq!(cfg.escalation_for("other").tiers.len(), 3);
        assert_eq!(cfg.rotation("acme").unwrap().members, ["U0ALICE", "U0BOB"]);

        let empty = GOOD.replace(
            "approvers = [\"U0PRODOWNER\"]\n",
            "approvers = [\"U0PRODOWNER\"]\n\n[tenants.escalation]\n",
        );
        let p = FileConfig::parse(&empty).unwrap_err().to_string();
        assert!(p.contains("tenants[0].escalation.tiers: no tier"), "{p}");
        let empty_tier = GOOD.replace(
            "approvers = [\"U0PRODOWNER\"]\n",
            "approvers = [\"U0PRODOWNER\"]\n\n[[tenants.escalation.tiers]]\nname = \"X\"\n",
        );
        let p = FileConfig::parse(&empty_tier).unwrap_err().to_string();
        assert!(p.contains("tenants[0].escalation.tiers[0].notify"), "{p}");
        let bad = own
            .replace("rotation:acme", "rotation:nope")
            .replace("start = \"2026-12-07\"", "start = \"2026-12-08\"")
            .replace("shift = \"1w\"", "shift = \"1 week\"");
        let p = FileConfig::parse(&bad).unwrap_err().to_string();
        assert!(p.contains("names rotation 'nope'"), "{p}");
        assert!(p.contains("rotations[0].shift"), "{p}");
    }

    #[test]
    fn a_rotation_starting_off_its_handoff_day_is_a_problem() {
        let bad = format!(
            "{GOOD}\n[[rotations]]\nid = \"r\"\nmembers = [\"U0ALICE\", \"S0GROUP\"]\nhandoff = \"mon 09:00\"\nstart = \"2026-12-08\"\ntz = \"Mars/Base\"\n"
        );
        let p = FileConfig::parse(&bad).unwrap_err().to_string();
        assert!(p.contains("rotations[0].members[1]"), "{p}");
        assert!(p.contains("rotations[0].tz"), "{p}");
        let bad = bad.replace("Mars/Base", "UTC");
        let p = FileConfig::parse(&bad).unwrap_err().to_string();
        assert!(p.contains("rotations[0].start") && p.contains("Tue"), "{p}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r##"
poll_interval = "soon"
[risk]
medium_at = 0.6
high_at = 0.5
[[tenants]]
channel = "#alerts"
operators = ["alice"]
[[escalation.tiers]]
name = "On-call"
notify = []
ack_timeout = "15 minutes"
"##;
        let problems = FileConfig::parse(text).unwrap_err();
        let keys: Vec<&str> = problems.0.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "poll_interval",
            "risk.high_at",
            "tenants[0].id",
            "tenants[0].channel",
            "tenants[0].operators[0]",
            "escalation.tiers[0].notify",
            "escalation.tiers[0].ack_timeout",
        ] {
            assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
        }
    }

    #[test]
    fn a_misspelt_key_is_an_error_with_its_line() {
        let problems = FileConfig::parse("pol_interval = \"60s\"\n").unwrap_err();
        assert_eq!(problems.0.len(), 1);
        assert!(problems.0[0].key.contains("line 1"), "{:?}", problems.0[0]);
        assert!(problems.0[0].message.contains("pol_interval"));
    }

    #[test]
    fn a_channel_cannot_belong_to_two_tenants() {
        let text = GOOD.to_string()
            + r#"
[[tenants]]
id = "globex"
channel = "C0INCIDENT1"
operators = ["U0GLOBEX"]
"#;
        let problems = FileConfig::parse(&text).unwrap_err();
        assert!(problems
            .0
            .iter()
            .any(|p| p.key == "tenants[1].channel" && p.message.contains("acme")));
    }

    #[test]
    fn durations_parse_with_units_and_reject_garbage() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "60", "m", "5 minutes", "1y", "-5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn missing_environment_names_every_variable_and_no_value() {
        let cfg = FileConfig::parse(GOOD).unwrap();
        let problems = load_env(
            &env(&[("SLACK_SIGNING_SECRET", "s3cr3t-value")]),
            Some(&cfg),
        )
        .unwrap_err();
        let keys: Vec<&str> = problems.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["SLACK_BOT_TOKEN", "SERVO_DATABASE_URL", "PD_PLATFORM_KEY"]
        );
        assert!(!problems.to_string().contains("s3cr3t-value"));
    }

    #[test]
    fn an_invalid_servo_url_is_reported_without_its_password() {
        let problems = load_env(
            &env(&[
                ("SLACK_BOT_TOKEN", "xoxb-1"),
                ("SLACK_SIGNING_SECRET", "x"),
                ("SERVO_DATABASE_URL", "mysql://bot:hunter2@db/servo"),
            ]),
            None,
        )
        .unwrap_err();
        let text = problems.to_string();
        assert!(text.contains("SERVO_DATABASE_URL"));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_complete_environment_loads_with_defaults() {
        let env = load_env(
            &env(&[
                ("SLACK_BOT_TOKEN", "xoxb-1"),
                ("SLACK_SIGNING_SECRET", "x"),
                ("SERVO_DATABASE_URL", "postgres://bot:pw@127.0.0.1/servo"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(env.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(env.slack_api_url, DEFAULT_SLACK_API_URL);
        assert_eq!(env.bind_addr.to_string(), DEFAULT_BIND_ADDR);
        assert_eq!(format!("{:?}", env.slack_bot_token), "Secret(***)");
        assert_eq!(
            format!("{}", env.servo_database_url),
            "postgres://bot:***@127.0.0.1/servo"
        );
    }

    const BASE_ENV: [(&str, &str); 3] = [
        ("SLACK_BOT_TOKEN", "xoxb-1"),
        ("SLACK_SIGNING_SECRET", "x"),
        ("SERVO_DATABASE_URL", "postgres://bot:pw@127.0.0.1/servo"),
    ];

    fn settings_with(file_extra: &str, vars: &[(&str, &str)]) -> Result<Settings, Problems> {
        let file = FileConfig::parse(&format!("{GOOD}\n{file_extra}"))?;
        let mut all: Vec<(&str, &str)> = BASE_ENV.to_vec();
        all.extend_from_slice(vars);
        all.push(("PD_PLATFORM_KEY", "pd"));
        let env = load_env(&env(&all), Some(&file))?;
        Ok(Settings { file, env })
    }

    #[test]
    fn socket_mode_follows_the_app_token_unless_the_file_says_otherwise() {
        let http = settings_with("", &[]).unwrap();
        assert!(
            http.socket_mode_token().is_none(),
            "HTTP mode is the default"
        );
        let token = [("SLACK_APP_TOKEN", "xapp-1-A1-123-abc")];
        let socket = settings_with("", &token).unwrap();
        assert_eq!(
            socket.socket_mode_token().map(Secret::expose),
            Some("xapp-1-A1-123-abc")
        );
        let on = settings_with("[slack]\nsocket_mode = true\n", &token).unwrap();
        assert!(on.socket_mode_token().is_some());
        let off = settings_with("[slack]\nsocket_mode = false\n", &token).unwrap();
        assert!(off.socket_mode_token().is_none(), "an explicit false wins");
    }

    #[test]
    fn socket_mode_without_an_app_token_is_a_problem_naming_the_variable() {
        let problems = settings_with("[slack]\nsocket_mode = true\n", &[]).unwrap_err();
        assert_eq!(problems.0.len(), 1, "{problems}");
        assert_eq!(problems.0[0].key, "SLACK_APP_TOKEN");
        assert!(problems.0[0].message.contains("xapp-"), "{problems}");
    }

    #[test]
    fn a_bot_token_given_as_the_app_token_is_refused_without_printing_it() {
        let problems = settings_with("", &[("SLACK_APP_TOKEN", "xoxb-SECRETVALUE")]).unwrap_err();
        assert_eq!(problems.0[0].key, "SLACK_APP_TOKEN");
        assert!(!problems.to_string().contains("SECRETVALUE"));
    }
}
