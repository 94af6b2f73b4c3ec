//! The TOML file: as users write it (unknown keys are errors), and its
//! validation into [`FileConfig`], which collects every problem.

use super::duration::parse_duration;
use super::*;
use serde::Deserialize;

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
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    silences: super::quiet::RawSilences,
    #[serde(default)]
    maintenance: Vec<super::quiet::RawMaintenance>,
    #[serde(default)]
    rotations: Vec<RawRotation>,
    #[serde(default)]
    lineage: RawLineage,
    #[serde(default)]
    incidents: RawIncidents,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIncidents {
    channel_prefix: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLineage {
    depth: Option<usize>,
    notify_owners_at: Option<String>,
    max_lines: Option<usize>,
}

/// `[[rotations]]` (issue 36).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    id: Option<String>,
    #[serde(default)]
    members: Vec<String>,
    shift: Option<String>,
    handoff: Option<String>,
    tz: Option<String>,
    start: Option<String>,
    announce: Option<bool>,
}

/// `[tenants.escalation]`: the tenant's own path.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTenantEscalation {
    #[serde(default)]
    tiers: Vec<RawTier>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    rollup_after: Option<usize>,
    rollup_lists: Option<usize>,
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
    escalation: Option<RawTenantEscalation>,
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
    start_at_if_downstream: Option<String>,
    #[serde(default)]
    widespread: RawWidespread,
    #[serde(default)]
    system_wide: RawSystemWide,
    #[serde(default)]
    hours: super::quiet::RawHoursByTier,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWidespread {
    min_jobs: Option<usize>,
    share: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSystemWide {
    min_jobs: Option<usize>,
    share: Option<f64>,
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
    post_burst: Option<u32>,
    post_interval: Option<String>,
    socket_mode: Option<bool>,
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

    /// The escalation path a tenant's alerts follow: its own
    /// (`[tenants.escalation]`) or the global one.
    pub fn escalation_for(&self, tenant: &str) -> &Escalation {
        self.tenant(tenant)
            .and_then(|t| t.escalation.as_ref())
            .unwrap_or(&self.escalation)
    }

    /// A rotation by id.
    pub fn rotation(&self, id: &str) -> Option<&crate::domain::rotation::Rotation> {
        self.rotations.iter().find(|r| r.id == id)
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
        .clone()
        .unwrap_or_else(|| "https://docs.servo.io/runbooks/backfill-sla-risk".into());
    if !(runbook_url.starts_with("https://") || runbook_url.starts_with("http://")) {
        problems.push("runbook_url", "must be an http(s) URL");
    }

    let risk = validate_risk(&raw, problems);
    let rotations = validate_rotations(&raw.rotations, problems);
    let mut tenants = validate_tenants(&raw, problems);
    let escalation = validate_escalation(&raw, &rotations, problems);
    validate_tenant_paths(&raw, &mut tenants, &escalation, &rotations, problems);
    let tenant_ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
    let quiet = super::quiet::validate(
        &raw.silences,
        &raw.escalation.hours,
        &raw.maintenance,
        &tenant_ids,
        problems,
    );

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
        post_burst: raw.slack.post_burst.unwrap_or(slack_defaults.post_burst),
        // Zero is allowed here: it turns pacing off.
        post_interval: match raw.slack.post_interval.as_deref().map(parse_duration) {
            None => slack_defaults.post_interval,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                problems.push("slack.post_interval", e);
                slack_defaults.post_interval
            }
        },
    };
    if slack.max_attempts == 0 {
        problems.push("slack.max_attempts", "must be at least 1");
    }
    if slack.post_burst == 0 {
        problems.push("slack.post_burst", "must be at least 1");
    }
    if slack.post_interval > Duration::from_secs(60) {
        problems.push(
            "slack.post_interval",
            "must be at most 60s (Slack's limit is about one post a second; 0s turns pacing off)",
        );
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

    let alerts_defaults = AlertsConfig::default();
    let alerts = AlertsConfig {
        rollup_after: raw
            .alerts
            .rollup_after
            .unwrap_or(alerts_defaults.rollup_after),
        rollup_lists: raw
            .alerts
            .rollup_lists
            .unwrap_or(alerts_defaults.rollup_lists),
    };
    if alerts.rollup_after == 0 {
        problems.push(
            "alerts.rollup_after",
            "must be at least 1: one job at risk is an alert, not an incident",
        );
    }
    if !(1..=40).contains(&alerts.rollup_lists) {
        problems.push(
            "alerts.rollup_lists",
            "must be between 1 and 40 (the roll-up must fit in one Slack message)",
        );
    }

    let incidents = super::IncidentsConfig {
        channel_prefix: raw
            .incidents
            .channel_prefix
            .clone()
            .unwrap_or_else(|| super::IncidentsConfig::default().channel_prefix),
    };
    if incidents.channel_prefix.chars().count() > 40
        || !incidents
            .channel_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        problems.push(
            "incidents.channel_prefix",
            "must be at most 40 lowercase letters, digits, hyphens or underscores (Slack's rules for channel names), e.g. \"sla-\"",
        );
    }

    let lineage = validate_lineage(&raw.lineage, problems);

    FileConfig {
        lineage,
        incidents,
        alerts,
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
        escalation,
        slack,
        quiet,
        rotations,
    }
}

/// `[risk]`: the runbook's thresholds and the forecaster's choices.
fn validate_risk(raw: &RawConfig, problems: &mut Problems) -> RiskConfig {
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
                let tier = crate::domain::risk::SlaTier::parse(t);
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
    risk
}

/// `[[tenants]]`: each tenant's channel, operators and stakeholder rules.
fn validate_tenants(raw: &RawConfig, problems: &mut Problems) -> Vec<Tenant> {
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
                escalation: None,
            });
        }
    }
    tenants
}

/// `[escalation]`: the tiers in order, where paging starts, when it starts again.
fn validate_escalation(
    raw: &RawConfig,
    rotations: &[crate::domain::rotation::Rotation],
    problems: &mut Problems,
) -> Escalation {
    // The global path may be left out when every tenant has its own.
    let all_own = !raw.tenants.is_empty()
        && raw
            .tenants
            .iter()
            .all(|t| t.escalation.as_ref().is_some_and(|e| !e.tiers.is_empty()));
    if raw.escalation.tiers.is_empty() && !all_own {
        problems.push(
            "escalation.tiers",
            "no tier is configured; add [[escalation.tiers]] with name and notify \
             (on-call engineer, platform team lead, product/business stakeholder)",
        );
    }
    let tiers = validate_tiers(
        &raw.escalation.tiers,
        "escalation.tiers",
        rotations,
        problems,
    );

    use crate::domain::risk::RiskBand;
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
    let widespread = Widespread {
        min_jobs: raw.escalation.widespread.min_jobs.unwrap_or(3),
        share: raw.escalation.widespread.share,
    };
    if widespread.min_jobs < 2 {
        problems.push(
            "escalation.widespread.min_jobs",
            "must be at least 2: one job is not a widespread slowdown",
        );
    }
    if widespread.share.is_some_and(|s| !(s > 0.0 && s <= 1.0)) {
        problems.push(
            "escalation.widespread.share",
            "must be a share of the active jobs, above 0 and at most 1 (e.g. 0.5)",
        );
    }
    let system_wide = SystemWide {
        min_jobs: raw.escalation.system_wide.min_jobs.unwrap_or(4),
        share: raw.escalation.system_wide.share.unwrap_or(0.6),
    };
    if system_wide.min_jobs < 2 {
        problems.push("escalation.system_wide.min_jobs", "must be at least 2");
    }
    if !(system_wide.share > 0.0 && system_wide.share <= 1.0) {
        problems.push(
            "escalation.system_wide.share",
            "must be a share of the active jobs, above 0 and at most 1 (e.g. 0.6)",
        );
    }
    let start_at_if_downstream = raw.escalation.start_at_if_downstream.as_ref().map(|_| {
        band_key(
            &raw.escalation.start_at_if_downstream,
            "escalation.start_at_if_downstream",
            RiskBand::High,
            problems,
        )
    });
    Escalation {
        start_at_if_downstream,
        widespread,
        system_wide,
        repeat: raw.escalation.repeat.unwrap_or(0),
        tiers,
        start_at,
        rearm_on_worse: raw.escalation.rearm_on_worse.unwrap_or(true),
        high_priority_jobs,
        high_priority_min,
        rise_by,
        rise_within,
    }
}

/// The tiers of a path (`escalation.tiers` or `tenants[i].escalation.tiers`).
/// `notify` names users, user groups, `rotation:<id>` and
/// `pagerduty-schedule:<ID>`.
fn validate_tiers(
    raw: &[RawTier],
    prefix: &str,
    rotations: &[crate::domain::rotation::Rotation],
    problems: &mut Problems,
) -> Vec<EscalationTier> {
    let mut tiers = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let key = format!("{prefix}[{i}]");
        let name = t.name.clone().unwrap_or_else(|| {
            problems.push(format!("{key}.name"), "is missing");
            String::new()
        });
        if t.notify.is_empty() {
            problems.push(
                format!("{key}.notify"),
                "is empty: list the users (U…), user groups (S…) or rotations (rotation:<id>) to page",
            );
        }
        let mut plain = Vec::new();
        let mut tier_rotations = Vec::new();
        let mut schedules = Vec::new();
        for (j, n) in t.notify.iter().enumerate() {
            if let Some(id) = n.trim().strip_prefix("rotation:") {
                if rotations.iter().any(|r| r.id == id) {
                    tier_rotations.push(id.to_string());
                } else {
                    problems.push(
                        format!("{key}.notify[{j}]"),
                        format!("names rotation '{id}', which no [[rotations]] table defines"),
                    );
                }
            } else if let Some(id) = n.trim().strip_prefix("pagerduty-schedule:") {
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                    problems.push(
                        format!("{key}.notify[{j}]"),
                        "must name a PagerDuty schedule id, e.g. \"pagerduty-schedule:PABC123\"",
                    );
                } else {
                    schedules.push(id.to_string());
                }
            } else {
                plain.push(n.clone());
            }
        }
        let notify = principals(&plain, &format!("{key}.notify"), problems);
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
            rotations: tier_rotations,
            pagerduty_schedules: schedules,
            ack_timeout,
            pagerduty_routing_key_env: t.pagerduty_routing_key_env.clone(),
            purpose,
        });
    }
    tiers
}

/// `[tenants.escalation]`: a tenant's own path replaces the global one.
fn validate_tenant_paths(
    raw: &RawConfig,
    tenants: &mut [Tenant],
    global: &Escalation,
    rotations: &[crate::domain::rotation::Rotation],
    problems: &mut Problems,
) {
    for (i, t) in raw.tenants.iter().enumerate() {
        let Some(own) = &t.escalation else { continue };
        let key = format!("tenants[{i}].escalation.tiers");
        if own.tiers.is_empty() {
            problems.push(
                key,
                "no tier is configured for this tenant's path; add [[tenants.escalation.tiers]] \
                 with name and notify, or remove [tenants.escalation] to use the global path",
            );
            continue;
        }
        let tiers = validate_tiers(&own.tiers, &key, rotations, problems);
        let id = t.id.as_deref().map(str::trim).unwrap_or_default();
        if let Some(tenant) = tenants.iter_mut().find(|x| x.id == id) {
            tenant.escalation = Some(Escalation {
                tiers,
                ..global.clone()
            });
        }
    }
}

/// `[[rotations]]`: who is on shift when.
fn validate_rotations(
    raw: &[RawRotation],
    problems: &mut Problems,
) -> Vec<crate::domain::rotation::Rotation> {
    use crate::domain::rotation::{Handoff, Rotation, Shift};
    let mut out: Vec<Rotation> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("rotations[{i}]");
        let id = match r.id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() && !id.contains(char::is_whitespace) => id.to_string(),
            _ => {
                problems.push(
                    format!("{key}.id"),
                    "is missing: name the rotation (e.g. \"acme-primary\"); tiers page it as \"rotation:<id>\"",
                );
                continue;
            }
        };
        if out.iter().any(|o| o.id == id) {
            problems.push(
                format!("{key}.id"),
                format!("'{id}' is already used by another rotation"),
            );
        }
        let mut members = Vec::new();
        for (j, m) in r.members.iter().enumerate() {
            match Principal::parse(m) {
                Ok(Principal::User(u)) => members.push(u),
                _ => problems.push(
                    format!("{key}.members[{j}]"),
                    format!(
                        "'{m}' is not a Slack user id (U…/W…); a rotation lists people, in order"
                    ),
                ),
            }
        }
        if r.members.is_empty() {
            problems.push(
                format!("{key}.members"),
                "is empty: list the users (U…) in order",
            );
        }
        let shift = match Shift::parse(r.shift.as_deref().unwrap_or("1w")) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{key}.shift"), e);
                continue;
            }
        };
        let handoff = match Handoff::parse(r.handoff.as_deref().unwrap_or("09:00")) {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("{key}.handoff"), e);
                continue;
            }
        };
        let tz = match super::quiet::parse_tz(r.tz.as_deref().unwrap_or("UTC")) {
            Ok(tz) => tz,
            Err(e) => {
                problems.push(format!("{key}.tz"), e);
                continue;
            }
        };
        let start = match r
            .start
            .as_deref()
            .map(|s| chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d"))
        {
            Some(Ok(d)) => d,
            Some(Err(_)) | None => {
                problems.push(
                    format!("{key}.start"),
                    "must be the date the first member's first shift begins, as YYYY-MM-DD",
                );
                continue;
            }
        };
        let rotation = Rotation {
            id,
            members,
            shift,
            handoff,
            tz,
            start,
            announce: r.announce.unwrap_or(false),
        };
        if !rotation.start_matches_day() {
            problems.push(
                format!("{key}.start"),
                format!(
                    "{} is a {}, but handoff is on {:?}: start on the handoff's day",
                    rotation.start,
                    chrono::Datelike::weekday(&rotation.start),
                    rotation.handoff.day.unwrap_or(chrono::Weekday::Mon)
                ),
            );
        }
        out.push(rotation);
    }
    out
}

/// `[lineage]`.
fn validate_lineage(raw: &RawLineage, problems: &mut Problems) -> LineageConfig {
    use crate::domain::risk::RiskBand;
    let defaults = LineageConfig::default();
    let depth = raw.depth.unwrap_or(defaults.depth);
    if !(1..=10).contains(&depth) {
        problems.push(
            "lineage.depth",
            "must be between 1 and 10 hops downstream of the job's asset",
        );
    }
    let max_lines = raw.max_lines.unwrap_or(defaults.max_lines);
    if !(1..=20).contains(&max_lines) {
        problems.push(
            "lineage.max_lines",
            "must be between 1 and 20 (the alert must stay readable)",
        );
    }
    let notify_owners_at = match raw.notify_owners_at.as_deref() {
        None => defaults.notify_owners_at,
        Some("never") => None,
        Some(b) => match RiskBand::parse(b).filter(|b| b.is_at_risk()) {
            Some(b) => Some(b),
            None => {
                problems.push(
                    "lineage.notify_owners_at",
                    format!("'{b}' is not a band; use low, medium, high, breached or never"),
                );
                defaults.notify_owners_at
            }
        },
    };
    LineageConfig {
        depth: depth.clamp(1, 10),
        notify_owners_at,
        max_lines: max_lines.clamp(1, 20),
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
