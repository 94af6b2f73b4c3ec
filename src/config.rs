//! Typed configuration: a TOML file for what users shape (tenants, people,
//! thresholds, escalation) and environment variables for secrets and URLs.
//!
//! Loading never stops at the first problem: it collects every missing or
//! invalid item with its key and how to fix it, so one run of `check-config`
//! (or a failed `serve`) tells the whole story. Secret values are never part of
//! a problem message.

use crate::domain::ids::{ChannelId, Principal};
pub use crate::domain::secret::Secret;
use serde::Deserialize;
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
pub use crate::store::redact_url;

/// One problem found while loading configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The config key (`tenants[0].channel`) or environment variable (`SLACK_BOT_TOKEN`).
    pub key: String,
    /// What is wrong and how to fix it. Never contains a secret.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found, in file order then environment order.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The file, as written by users. Unknown keys are errors: a typo in a key
// must not silently fall back to a default.
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    poll_interval: Option<String>,
    runbook_url: Option<String>,
    #[serde(default)]
    risk: RawRisk,
    #[serde(default)]
    tenants: Vec<RawTenant>,
    #[serde(default)]
    escalation: RawEscalation,
    #[serde(default)]
    slack: RawSlack,
    #[serde(default)]
    extensions: RawExtensions,
    #[serde(default)]
    mitigations: RawMitigations,
    #[serde(default)]
    commands: RawCommands,
    #[serde(default)]
    buffers: RawBuffers,
    #[serde(default)]
    review: RawReview,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBuffers {
    critical: Option<f64>,
    standard: Option<f64>,
    best_effort: Option<f64>,
    below_best_effort: Option<f64>,
    hysteresis: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReview {
    weekly: Option<bool>,
    day: Option<String>,
    at: Option<String>,
    retention: Option<String>,
    charts: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCommands {
    status_max_age: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMitigations {
    monitor_every: Option<String>,
    scaling_cooldown: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExtensions {
    expire_after: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    medium_at: Option<f64>,
    high_at: Option<f64>,
    hysteresis: Option<f64>,
    eta_fresh_for: Option<String>,
    #[serde(default)]
    p90_tiers: Vec<String>,
    forecast: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: Option<String>,
    channel: Option<String>,
    #[serde(default)]
    incident_channels: Vec<String>,
    #[serde(default)]
    operators: Vec<String>,
    #[serde(default)]
    stakeholders: Vec<RawStakeholders>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStakeholders {
    asset: Option<String>,
    tier: Option<String>,
    #[serde(default)]
    approvers: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    repeat: Option<u32>,
    #[serde(default)]
    tiers: Vec<RawTier>,
    #[serde(default)]
    start_at: RawStartAt,
    rearm_on_worse: Option<bool>,
    high_priority_jobs: Option<u32>,
    high_priority_min: Option<i32>,
    rise_by: Option<f64>,
    rise_within: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStartAt {
    critical: Option<String>,
    standard: Option<String>,
    best_effort: Option<String>,
    below_best_effort: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    name: Option<String>,
    #[serde(default)]
    notify: Vec<String>,
    ack_timeout: Option<String>,
    pagerduty_routing_key_env: Option<String>,
    purpose: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    timeout: Option<String>,
    max_attempts: Option<u32>,
    socket_mode: Option<bool>,
}

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
    pub fn for_tier(&self, tier: crate::risk::SlaTier) -> Option<f64> {
        use crate::risk::SlaTier::*;
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
    pub p90_tiers: Vec<crate::risk::SlaTier>,
    /// Judge risk on the bot's forecast from the partition history (true,
    /// the default) or on Servo's own EWMA ETA (false).
    pub forecast: bool,
}

impl RiskConfig {
    /// The thresholds every assessment uses.
    pub fn thresholds(&self) -> crate::risk::RiskThresholds {
        crate::risk::RiskThresholds::new(
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
    pub start_at: [crate::risk::RiskBand; 4],
    /// Whether a band that gets worse after an acknowledgement re-arms the path.
    pub rearm_on_worse: bool,
    /// At least this many high-priority jobs at risk at once page from tier 2.
    pub high_priority_jobs: u32,
    /// The priority from which a job counts as high priority (runbook: 8).
    pub high_priority_min: i32,
    /// Severity rising by this much within `rise_within` moves the alert up a tier.
    pub rise_by: f64,
    pub rise_within: Duration,
}

#[derive(Clone, Debug)]
pub struct EscalationTier {
    pub name: String,
    pub notify: Vec<Principal>,
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
}

impl Default for SlackTuning {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_attempts: 4,
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

/// Parses `"60s"`, `"15m"`, `"1h30m"`, `"500ms"`, `"2d"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is empty; write a duration such as \"60s\", \"15m\" or \"1h30m\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "'{s}' is not a duration; write a number and a unit (ms, s, m, h, d), e.g. \"15m\""
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("'{s}' has a number that is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let step = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            "" => {
                return Err(format!(
                    "'{s}' has no unit; add one of ms, s, m, h, d (e.g. \"{n}s\")"
                ))
            }
            other => {
                return Err(format!(
                    "'{s}' has an unknown unit '{other}'; use ms, s, m, h or d"
                ))
            }
        };
        total += step;
    }
    Ok(total)
}

/// The built-in escalation timeouts, from the runbook: 15, 30 and 60 minutes.
fn default_ack_timeout(index: usize) -> Duration {
    match index {
        0 => Duration::from_secs(15 * 60),
        1 => Duration::from_secs(30 * 60),
        _ => Duration::from_secs(60 * 60),
    }
}

impl FileConfig {
    /// Reads and validates a config file, collecting every problem.
    pub fn load(path: &Path) -> Result<FileConfig, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let mut p = Problems::default();
            p.push(
                "config file",
                format!(
                    "cannot read {}: {e}. Pass --config FILE or set SERVO_SLA_BOT_CONFIG; \
                     examples/servo-sla-bot.toml is a commented starting point",
                    path.display()
                ),
            );
            p
        })?;
        Self::parse(&text)
    }

    /// Validates the text of a config file, collecting every problem.
    pub fn parse(text: &str) -> Result<FileConfig, Problems> {
        let mut problems = Problems::default();
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                problems.push("config file", format!("is not valid: {}", e.message()));
                // Point at the line: toml's span is a byte range.
                if let Some(span) = e.span() {
                    let line = text[..span.start.min(text.len())].lines().count().max(1);
                    problems.0[0].key = format!("config file (line {line})");
                }
                return Err(problems);
            }
        };
        let cfg = validate(raw, &mut problems);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }
}

fn duration_key(
    value: Option<&str>,
    key: &str,
    default: Duration,
    problems: &mut Problems,
) -> Duration {
    match value {
        None => default,
        Some(v) => match parse_duration(v) {
            Ok(d) if d.is_zero() => {
                problems.push(key, "must be longer than zero");
                default
            }
            Ok(d) => d,
            Err(e) => {
                problems.push(key, e);
                default
            }
        },
    }
}

fn principals(list: &[String], key: &str, problems: &mut Problems) -> Vec<Principal> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| match Principal::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(format!("{key}[{i}]"), e);
                None
            }
        })
        .collect()
}

const TIERS: [&str; 4] = ["critical", "standard", "best_effort", "below_best_effort"];

fn validate(raw: RawConfig, problems: &mut Problems) -> FileConfig {
    let poll_interval = duration_key(
        raw.poll_interval.as_deref(),
        "poll_interval",
        Duration::from_secs(60),
        problems,
    );
    let runbook_url = raw
        .runbook_url
        .unwrap_or_else(|| "https://docs.servo.io/runbooks/backfill-sla-risk".into());
    if !(runbook_url.starts_with("https://") || runbook_url.starts_with("http://")) {
        problems.push("runbook_url", "must be an http(s) URL");
    }

    let defaults = RiskConfig::default();
    let risk = RiskConfig {
        medium_at: raw.risk.medium_at.unwrap_or(defaults.medium_at),
        high_at: raw.risk.high_at.unwrap_or(defaults.high_at),
        hysteresis: raw.risk.hysteresis.unwrap_or(defaults.hysteresis),
        eta_fresh_for: duration_key(
            raw.risk.eta_fresh_for.as_deref(),
            "risk.eta_fresh_for",
            defaults.eta_fresh_for,
            problems,
        ),
        forecast: raw.risk.forecast.unwrap_or(defaults.forecast),
        p90_tiers: raw
            .risk
            .p90_tiers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let tier = crate::risk::SlaTier::parse(t);
                if tier.is_none() {
                    problems.push(
                        format!("risk.p90_tiers[{i}]"),
                        format!("'{t}' is not a tier: critical, standard, best_effort or below_best_effort"),
                    );
                }
                tier
            })
            .collect(),
    };
    if !(risk.medium_at > 0.0 && risk.medium_at.is_finite()) {
        problems.push(
            "risk.medium_at",
            "must be a number above 0 (the runbook uses 0.20)",
        );
    }
    if !(risk.high_at > risk.medium_at && risk.high_at.is_finite()) {
        problems.push(
            "risk.high_at",
            "must be above risk.medium_at (the runbook uses 0.50)",
        );
    }
    if !(0.0..risk.medium_at.max(0.0) + f64::EPSILON).contains(&risk.hysteresis) {
        problems.push(
            "risk.hysteresis",
            "must be between 0 and risk.medium_at (e.g. 0.05)",
        );
    }

    if raw.tenants.is_empty() {
        problems.push(
            "tenants",
            "no tenant is configured; add a [[tenants]] table with id and channel \
             (see examples/servo-sla-bot.toml)",
        );
    }
    let mut tenants = Vec::new();
    let mut seen_ids = BTreeMap::new();
    let mut channel_owner: BTreeMap<String, String> = BTreeMap::new();
    for (i, t) in raw.tenants.iter().enumerate() {
        let key = format!("tenants[{i}]");
        let id = match t.id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                problems.push(
                    format!("{key}.id"),
                    "is missing: set it to Servo's tenant_id",
                );
                String::new()
            }
        };
        if !id.is_empty() {
            if let Some(prev) = seen_ids.insert(id.clone(), i) {
                problems.push(
                    format!("{key}.id"),
                    format!("'{id}' is already used by tenants[{prev}]"),
                );
            }
        }
        let channel = match t.channel.as_deref() {
            None => {
                problems.push(
                    format!("{key}.channel"),
                    "is missing: set it to the channel id where this tenant's alerts go",
                );
                None
            }
            Some(c) => match ChannelId::parse(c) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(format!("{key}.channel"), e);
                    None
                }
            },
        };
        let mut incident_channels = Vec::new();
        for (j, c) in t.incident_channels.iter().enumerate() {
            match ChannelId::parse(c) {
                Ok(c) => incident_channels.push(c),
                Err(e) => problems.push(format!("{key}.incident_channels[{j}]"), e),
            }
        }
        // A channel must map to one tenant, or a slash command there would be ambiguous.
        for (j, c) in channel.iter().chain(incident_channels.iter()).enumerate() {
            if let Some(owner) = channel_owner.insert(c.as_str().to_string(), id.clone()) {
                let which = if j == 0 {
                    format!("{key}.channel")
                } else {
                    format!("{key}.incident_channels[{}]", j - 1)
                };
                problems.push(
                    which,
                    format!("channel {c} already belongs to tenant '{owner}'"),
                );
            }
        }
        let operators = principals(&t.operators, &format!("{key}.operators"), problems);
        if t.operators.is_empty() {
            problems.push(
                format!("{key}.operators"),
                "is empty: list the users (U…) or user groups (S…) who may act on alerts",
            );
        }
        let mut stakeholders = Vec::new();
        for (j, s) in t.stakeholders.iter().enumerate() {
            let skey = format!("{key}.stakeholders[{j}]");
            if let Some(tier) = &s.tier {
                if !TIERS.contains(&tier.as_str()) {
                    problems.push(
                        format!("{skey}.tier"),
                        format!(
                            "'{tier}' is not an SLA tier; use one of {}",
                            TIERS.join(", ")
                        ),
                    );
                }
            }
            if s.asset.is_some() && s.tier.is_some() {
                problems.push(
                    skey.clone(),
                    "set asset or tier, not both (write two rules instead)",
                );
            }
            if s.approvers.is_empty() {
                problems.push(format!("{skey}.approvers"), "is empty");
            }
            stakeholders.push(StakeholderRule {
                asset: s.asset.clone(),
                tier: s.tier.clone(),
                approvers: principals(&s.approvers, &format!("{skey}.approvers"), problems),
            });
        }
        if let Some(channel) = channel {
            tenants.push(Tenant {
                id,
                channel,
                incident_channels,
                operators,
                stakeholders,
            });
        }
    }

    if raw.escalation.tiers.is_empty() {
        problems.push(
            "escalation.tiers",
            "no tier is configured; add [[escalation.tiers]] with name and notify \
             (on-call engineer, platform team lead, product/business stakeholder)",
        );
    }
    let mut tiers = Vec::new();
    for (i, t) in raw.escalation.tiers.iter().enumerate() {
        let key = format!("escalation.tiers[{i}]");
        let name = t.name.clone().unwrap_or_else(|| {
            problems.push(format!("{key}.name"), "is missing");
            String::new()
        });
        if t.notify.is_empty() {
            problems.push(
                format!("{key}.notify"),
                "is empty: list the users (U…) or user groups (S…) to page",
            );
        }
        let notify = principals(&t.notify, &format!("{key}.notify"), problems);
        let ack_timeout = duration_key(
            t.ack_timeout.as_deref(),
            &format!("{key}.ack_timeout"),
            default_ack_timeout(i),
            problems,
        );
        if let Some(env) = &t.pagerduty_routing_key_env {
            let valid = !env.is_empty()
                && env
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                problems.push(
                    format!("{key}.pagerduty_routing_key_env"),
                    "must be the NAME of an environment variable (e.g. PD_PLATFORM_KEY), \
                     not the key itself",
                );
            }
        }
        let purpose = match t.purpose.as_deref().map(str::trim) {
            None => default_purpose(i).to_string(),
            Some("") => {
                problems.push(
                    format!("{key}.purpose"),
                    "is empty: say in a few words what this tier is paged for, or leave it out \
                     for the runbook's wording",
                );
                default_purpose(i).to_string()
            }
            Some(p) if p.chars().count() > 300 => {
                problems.push(
                    format!("{key}.purpose"),
                    "is longer than 300 characters; a page says it in one line",
                );
                default_purpose(i).to_string()
            }
            Some(p) => p.to_string(),
        };
        tiers.push(EscalationTier {
            name,
            notify,
            ack_timeout,
            pagerduty_routing_key_env: t.pagerduty_routing_key_env.clone(),
            purpose,
        });
    }

    use crate::risk::RiskBand;
    let band_key =
        |v: &Option<String>, key: &str, default: RiskBand, problems: &mut Problems| match v {
            None => default,
            Some(b) => match RiskBand::parse(b).filter(|b| b.is_at_risk()) {
                Some(b) => b,
                None => {
                    problems.push(
                        key,
                        format!(
                            "'{b}' is not a band to page at; use low, medium, high or breached"
                        ),
                    );
                    default
                }
            },
        };
    let sa = &raw.escalation.start_at;
    let start_at = [
        band_key(
            &sa.critical,
            "escalation.start_at.critical",
            RiskBand::Low,
            problems,
        ),
        band_key(
            &sa.standard,
            "escalation.start_at.standard",
            RiskBand::Medium,
            problems,
        ),
        band_key(
            &sa.best_effort,
            "escalation.start_at.best_effort",
            RiskBand::High,
            problems,
        ),
        band_key(
            &sa.below_best_effort,
            "escalation.start_at.below_best_effort",
            RiskBand::High,
            problems,
        ),
    ];
    let rise_by = raw.escalation.rise_by.unwrap_or(0.30);
    if !(rise_by > 0.0 && rise_by.is_finite()) {
        problems.push("escalation.rise_by", "must be a number above 0 (e.g. 0.30)");
    }
    let rise_within = duration_key(
        raw.escalation.rise_within.as_deref(),
        "escalation.rise_within",
        Duration::from_secs(15 * 60),
        problems,
    );
    let high_priority_jobs = raw.escalation.high_priority_jobs.unwrap_or(2);
    if high_priority_jobs == 0 {
        problems.push("escalation.high_priority_jobs", "must be at least 1");
    }
    let high_priority_min = raw.escalation.high_priority_min.unwrap_or(8);
    if !(-10..=10).contains(&high_priority_min) {
        problems.push(
            "escalation.high_priority_min",
            "must be a Servo priority, -10 to 10",
        );
    }

    let slack_defaults = SlackTuning::default();
    let slack = SlackTuning {
        timeout: duration_key(
            raw.slack.timeout.as_deref(),
            "slack.timeout",
            slack_defaults.timeout,
            problems,
        ),
        max_attempts: raw
            .slack
            .max_attempts
            .unwrap_or(slack_defaults.max_attempts),
    };
    if slack.max_attempts == 0 {
        problems.push("slack.max_attempts", "must be at least 1");
    }

    let extension_expire_after = duration_key(
        raw.extensions.expire_after.as_deref(),
        "extensions.expire_after",
        Duration::from_secs(2 * 3600),
        problems,
    );

    let monitor_every = duration_key(
        raw.mitigations.monitor_every.as_deref(),
        "mitigations.monitor_every",
        Duration::from_secs(15 * 60),
        problems,
    );
    if !(Duration::from_secs(15 * 60)..=Duration::from_secs(30 * 60)).contains(&monitor_every) {
        problems.push(
            "mitigations.monitor_every",
            "must be between 15m and 30m (the runbook's progress check)",
        );
    }

    let scaling_cooldown = duration_key(
        raw.mitigations.scaling_cooldown.as_deref(),
        "mitigations.scaling_cooldown",
        Duration::from_secs(30 * 60),
        problems,
    );
    if scaling_cooldown < Duration::from_secs(60) {
        problems.push(
            "mitigations.scaling_cooldown",
            "must be at least 1m, so one alert cannot page the platform tier on every click",
        );
    }

    let status_max_age = match raw.commands.status_max_age.as_deref() {
        None => Duration::from_secs(2),
        Some(v) => match parse_duration(v) {
            Ok(d) if d <= Duration::from_secs(60) => d,
            Ok(_) => {
                problems.push(
                    "commands.status_max_age",
                    "must be at most 60s: a status card older than that misleads",
                );
                Duration::from_secs(2)
            }
            Err(e) => {
                problems.push("commands.status_max_age", e);
                Duration::from_secs(2)
            }
        },
    };

    let buffers = validate_buffers(&raw.buffers, problems);
    let review = validate_review(&raw.review, problems);

    FileConfig {
        buffers,
        review,
        poll_interval,
        runbook_url,
        risk,
        extension_expire_after,
        monitor_every,
        scaling_cooldown,
        status_max_age,
        socket_mode: raw.slack.socket_mode,
        tenants,
        escalation: Escalation {
            repeat: raw.escalation.repeat.unwrap_or(0),
            tiers,
            start_at,
            rearm_on_worse: raw.escalation.rearm_on_worse.unwrap_or(true),
            high_priority_jobs,
            high_priority_min,
            rise_by,
            rise_within,
        },
        slack,
    }
}

fn validate_buffers(raw: &RawBuffers, problems: &mut Problems) -> Buffers {
    let defaults = Buffers::default();
    let mut one = |value: Option<f64>, key: &str, default: Option<f64>| match value {
        None => default,
        Some(v) if !(0.0..=10.0).contains(&v) || v.is_nan() => {
            problems.push(
                format!("buffers.{key}"),
                "must be a share of the expected duration between 0 and 10 (0.2 = 20%; 0 turns it off)",
            );
            default
        }
        // 0 turns the tier's buffer off.
        Some(v) => (v > 0.0).then_some(v),
    };
    let critical = one(raw.critical, "critical", defaults.critical);
    let standard = one(raw.standard, "standard", defaults.standard);
    let best_effort = one(raw.best_effort, "best_effort", defaults.best_effort);
    let below_best_effort = one(
        raw.below_best_effort,
        "below_best_effort",
        defaults.below_best_effort,
    );
    let hysteresis = match raw.hysteresis {
        None => defaults.hysteresis,
        Some(h) if (0.0..=1.0).contains(&h) => h,
        Some(_) => {
            problems.push("buffers.hysteresis", "must be between 0 and 1");
            defaults.hysteresis
        }
    };
    Buffers {
        critical,
        standard,
        best_effort,
        below_best_effort,
        hysteresis,
    }
}

fn validate_review(raw: &RawReview, problems: &mut Problems) -> ReviewConfig {
    let defaults = ReviewConfig::default();
    let day = match raw.day.as_deref() {
        None => defaults.day,
        Some(d) => match d.parse::<chrono::Weekday>() {
            Ok(day) => day,
            Err(_) => {
                problems.push(
                    "review.day",
                    format!("'{d}' is not a day of the week (monday, tue, ...)"),
                );
                defaults.day
            }
        },
    };
    let at = match raw.at.as_deref() {
        None => defaults.at,
        Some(t) => match chrono::NaiveTime::parse_from_str(t, "%H:%M") {
            Ok(at) => at,
            Err(_) => {
                problems.push(
                    "review.at",
                    format!("'{t}' is not a time of day as HH:MM (UTC)"),
                );
                defaults.at
            }
        },
    };
    let retention = duration_key(
        raw.retention.as_deref(),
        "review.retention",
        defaults.retention,
        problems,
    );
    if retention < Duration::from_secs(31 * 86_400) {
        problems.push(
            "review.retention",
            "must be at least 31d: `/backfill review 30d` reads a month of history",
        );
    }
    ReviewConfig {
        weekly: raw.weekly.unwrap_or(defaults.weekly),
        day,
        at,
        retention,
        charts: raw.charts.unwrap_or(defaults.charts),
    }
}

/// Reads the environment through `get` (so tests need not touch the process
/// environment) and collects every problem.
pub fn load_env(
    get: &dyn Fn(&str) -> Option<String>,
    file: Option<&FileConfig>,
) -> Result<EnvConfig, Problems> {
    let mut problems = Problems::default();
    let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());

    let slack_bot_token = match non_empty("SLACK_BOT_TOKEN") {
        Some(t) if t.starts_with("xoxb-") => Some(Secret::new(t)),
        Some(_) => {
            problems.push(
                "SLACK_BOT_TOKEN",
                "is not a bot token (it must start with xoxb-); copy the Bot User OAuth Token \
                 from the app's OAuth & Permissions page",
            );
            None
        }
        None => {
            problems.push(
                "SLACK_BOT_TOKEN",
                "is not set: export the Bot User OAuth Token (xoxb-…) from the app's \
                 OAuth & Permissions page",
            );
            None
        }
    };
    let slack_signing_secret = match non_empty("SLACK_SIGNING_SECRET") {
        Some(s) => Some(Secret::new(s)),
        None => {
            problems.push(
                "SLACK_SIGNING_SECRET",
                "is not set: export the Signing Secret from the app's Basic Information page",
            );
            None
        }
    };
    let servo_database_url = match non_empty("SERVO_DATABASE_URL") {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Some(DatabaseUrl::new(u))
        }
        Some(u) => {
            problems.push(
                "SERVO_DATABASE_URL",
                format!(
                    "'{}' is not a PostgreSQL URL; Servo keeps its jobs in PostgreSQL: \
                     postgres://USER:PASSWORD@HOST:5432/DB",
                    redact_url(&u)
                ),
            );
            None
        }
        None => {
            problems.push(
                "SERVO_DATABASE_URL",
                "is not set: export the URL of Servo's PostgreSQL database \
                 (postgres://USER:PASSWORD@HOST:5432/DB), as a role that row-level security applies to",
            );
            None
        }
    };
    let database_url = DatabaseUrl::new(
        non_empty("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
    );
    if !is_store_url(database_url.expose()) {
        problems.push(
            "DATABASE_URL",
            format!(
                "'{database_url}' is neither sqlite://FILE nor postgres://…; leave it unset for \
                 the embedded SQLite default ({DEFAULT_DATABASE_URL})"
            ),
        );
    }
    let slack_api_url =
        non_empty("SLACK_API_URL").unwrap_or_else(|| DEFAULT_SLACK_API_URL.to_string());
    if !(slack_api_url.starts_with("https://") || slack_api_url.starts_with("http://")) {
        problems.push(
            "SLACK_API_URL",
            "must be an http(s) URL such as https://slack.com/api/",
        );
    }
    let pagerduty_events_url = non_empty("PAGERDUTY_EVENTS_URL")
        .unwrap_or_else(|| DEFAULT_PAGERDUTY_EVENTS_URL.to_string());
    let alertmanager_token = non_empty("ALERTMANAGER_TOKEN").map(Secret::new);
    let slack_app_token = match non_empty("SLACK_APP_TOKEN") {
        Some(t) if t.starts_with("xapp-") => Some(Secret::new(t)),
        Some(_) => {
            problems.push(
                "SLACK_APP_TOKEN",
                "is not an app-level token (it must start with xapp-); generate one with the \
                 connections:write scope under Basic Information > App-Level Tokens",
            );
            None
        }
        None => {
            if file.and_then(|f| f.socket_mode) == Some(true) {
                problems.push(
                    "SLACK_APP_TOKEN",
                    "is not set, but slack.socket_mode = true: export an app-level token \
                     (xapp-…) with the connections:write scope, from Basic Information > \
                     App-Level Tokens; or remove socket_mode to serve Slack over HTTP",
                );
            }
            None
        }
    };
    let bind = non_empty("BIND_ADDR").unwrap_or_else(|| DEFAULT_BIND_ADDR.to_string());
    let bind_addr = match bind.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(
                "BIND_ADDR",
                format!("'{bind}' is not an address:port such as 0.0.0.0:8080"),
            );
            None
        }
    };
    let mut pagerduty_keys = std::collections::HashMap::new();
    if let Some(file) = file {
        for (i, tier) in file.escalation.tiers.iter().enumerate() {
            if let Some(var) = &tier.pagerduty_routing_key_env {
                if let Some(key) = non_empty(var) {
                    pagerduty_keys.insert(var.clone(), Secret::new(key));
                } else {
                    problems.push(
                        var.clone(),
                        format!(
                            "is not set, but escalation.tiers[{i}].pagerduty_routing_key_env \
                             names it: export the tier's PagerDuty routing key"
                        ),
                    );
                }
            }
        }
    }

    match (
        slack_bot_token,
        slack_signing_secret,
        servo_database_url,
        bind_addr,
    ) {
        (
            Some(slack_bot_token),
            Some(slack_signing_secret),
            Some(servo_database_url),
            Some(bind_addr),
        ) if problems.is_empty() => Ok(EnvConfig {
            slack_bot_token,
            slack_signing_secret,
            servo_database_url,
            database_url,
            slack_api_url,
            pagerduty_events_url,
            alertmanager_token,
            slack_app_token,
            bind_addr,
            pagerduty_keys,
        }),
        _ => Err(problems),
    }
}

/// Whether a `DATABASE_URL` names a backend the store supports.
pub fn is_store_url(url: &str) -> bool {
    url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The config file to use: `--config`, else `SERVO_SLA_BOT_CONFIG`, else the default path.
pub fn config_path(cli: Option<PathBuf>, get: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    cli.or_else(|| get("SERVO_SLA_BOT_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

impl Settings {
    /// Loads file and environment together, so the answer lists every problem of both.
    pub fn load(path: &Path, get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Problems> {
        let file = FileConfig::load(path);
        let env = load_env(get, file.as_ref().ok());
        match (file, env) {
            (Ok(file), Ok(env)) => Ok(Settings { file, env }),
            (file, env) => {
                let mut all = Problems::default();
                if let Err(p) = file {
                    all.0.extend(p.0);
                }
                if let Err(p) = env {
                    all.0.extend(p.0);
                }
                Err(all)
            }
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
        let text = include_str!("../examples/servo-sla-bot.toml");
        if let Err(p) = FileConfig::parse(text) {
            panic!("examples/servo-sla-bot.toml is invalid:\n{p}");
        }
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
