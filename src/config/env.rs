//! The environment: secrets and URLs, validated with the file so one answer
//! lists every problem.

use super::*;

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
    let pagerduty_api_url = non_empty("PAGERDUTY_API_URL")
        .unwrap_or_else(|| crate::pagerduty::DEFAULT_API_URL.to_string());
    if !(pagerduty_api_url.starts_with("https://") || pagerduty_api_url.starts_with("http://")) {
        problems.push(
            "PAGERDUTY_API_URL",
            "must be an http(s) URL such as https://api.pagerduty.com",
        );
    }
    let pagerduty_api_token = non_empty("PAGERDUTY_API_TOKEN").map(Secret::new);
    if let Some(file) = file {
        let tenant_tiers = file
            .tenants
            .iter()
            .flat_map(|t| t.escalation.iter().flat_map(|e| e.tiers.iter()));
        let schedule = file
            .escalation
            .tiers
            .iter()
            .chain(tenant_tiers)
            .find(|t| !t.pagerduty_schedules.is_empty());
        if let (Some(tier), None) = (schedule, &pagerduty_api_token) {
            problems.push(
                "PAGERDUTY_API_TOKEN",
                format!(
                    "is not set, but tier '{}' pages a PagerDuty schedule: export a read-only \
                     REST API key (PagerDuty > Integrations > API Access Keys)",
                    tier.name
                ),
            );
        }
    }
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
        // The global path's tiers and every tenant's own.
        let paths = std::iter::once(("escalation".to_string(), &file.escalation)).chain(
            file.tenants.iter().enumerate().filter_map(|(j, t)| {
                t.escalation
                    .as_ref()
                    .map(|e| (format!("tenants[{j}].escalation"), e))
            }),
        );
        for (prefix, path) in paths {
            for (i, tier) in path.tiers.iter().enumerate() {
                let Some(var) = &tier.pagerduty_routing_key_env else {
                    continue;
                };
                if pagerduty_keys.contains_key(var) {
                    continue;
                }
                if let Some(key) = non_empty(var) {
                    pagerduty_keys.insert(var.clone(), Secret::new(key));
                } else if !problems.0.iter().any(|p| &p.key == var) {
                    problems.push(
                        var.clone(),
                        format!(
                            "is not set, but {prefix}.tiers[{i}].pagerduty_routing_key_env \
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
            pagerduty_api_url,
            pagerduty_api_token,
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
