//! Operating the bot (issue 24): `/metrics` read as Prometheus reads it, with
//! every histogram moving under load; JSON logs without secrets; and the
//! deploy files (alert rules, dashboard, Kubernetes manifests) parsed and
//! checked against the series the bot really exports.

mod common;

use chrono::Duration;
use common::bot::{spawn, Backend, Spawn, TestApp, SIGNING_SECRET};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{advance, t0};
use serde_json::Value;
use servo_sla_bot::runtime::clock::ManualClock;
use std::collections::{BTreeMap, BTreeSet};

/// One sample of the exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition strictly: `# HELP`/`# TYPE` before a family's
/// samples, every sample `name{k="v",...} value`, label values escaped,
/// `# EOF` last. Returns the families' types and the samples.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "OpenMetrics ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            assert!(
                [
                    "counter",
                    "gauge",
                    "histogram",
                    "info",
                    "summary",
                    "unknown"
                ]
                .contains(&kind),
                "{line}"
            );
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        assert!(!line.starts_with('#'), "an unknown comment: {line}");
        let name_end = line.find(['{', ' ']).expect("a sample");
        let name = &line[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end;
            loop {
                let (start, c) = chars.next().expect("unterminated labels");
                if c == '}' {
                    end = Some(start);
                    break;
                }
                let key_end = body[start..].find('=').expect("key=value") + start;
                let key = body[start..key_end].trim_start_matches(',').to_string();
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                while chars.peek().is_some_and(|(i, _)| *i <= key_end) {
                    chars.next();
                }
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().expect("unterminated value") {
                        (_, '\\') => match chars.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (_, '"') => break,
                        (_, c) => value.push(c),
                    }
                }
                labels.insert(key, value);
                if let Some((_, ',')) = chars.peek() {
                    chars.next();
                }
            }
            rest = &body[end.unwrap() + 1..];
        }
        let value = rest.trim();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("a value: {line}")),
        };
        let family_known = types.keys().any(|f| name.starts_with(f.as_str()));
        assert!(family_known, "a sample before its # TYPE: {line}");
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (types, samples)
}

fn total(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

const HISTOGRAMS: &[&str] = &[
    "servo_sla_bot_http_request_duration_seconds",
    "servo_sla_bot_poll_duration_seconds",
    "servo_sla_bot_servo_query_duration_seconds",
    "servo_sla_bot_outbox_delivery_delay_seconds",
    "servo_sla_bot_slack_api_duration_seconds",
    "servo_sla_bot_timer_lateness_seconds",
];

async fn scrape(app: &TestApp) -> (BTreeMap<String, String>, Vec<Sample>) {
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200);
    parse(&answer.body)
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_every_histogram_moves_under_load() {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let app = spawn(
        Spawn::new(Backend::Postgres)
            .manual_clock(&clock)
            .servo_url(&fx.bot_url()),
    )
    .await;
    let (_, before) = scrape(&app).await;
    assert_eq!(total(&before, "servo_sla_bot_servo_up"), 1.0);
    assert_eq!(total(&before, "servo_sla_bot_build_info"), 1.0);

    // Load: jobs at risk, a poll, pages, commands, a rate-limited post.
    for i in 0..3 {
        fx.job(JobSpec {
            asset: format!("asset_{i}"),
            deadline: Some(t0() + Duration::minutes(60)),
            eta: Some(t0() + Duration::minutes(120)),
            heartbeat: Some(t0()),
            priority: 9,
            ..JobSpec::default()
        })
        .await;
    }
    app.slack.fail_next(
        "chat.postMessage",
        vec![common::fake_slack::Fault::RateLimited {
            retry_after_secs: 0,
        }],
    );
    app.poll().await;
    clock.advance(Duration::seconds(2));
    advance(&app, &clock, 0).await;
    clock.advance(Duration::seconds(2));
    app.drain_outbox().await;
    for _ in 0..5 {
        app.slash("list at-risk", "U0PLATLEAD", "C0ACMEALERT").await;
    }
    let (types, after) = scrape(&app).await;
    for h in HISTOGRAMS {
        assert_eq!(types.get(*h).map(String::as_str), Some("histogram"), "{h}");
    }
    for (name, kind) in [
        ("servo_sla_bot_http_requests", "counter"),
        ("servo_sla_bot_slack_api_calls", "counter"),
        ("servo_sla_bot_slack_rate_limited", "counter"),
        ("servo_sla_bot_slack_refusals", "counter"),
        ("servo_sla_bot_outbox_backlog", "gauge"),
        ("servo_sla_bot_outbox_oldest_age_seconds", "gauge"),
        ("servo_sla_bot_open_alerts", "gauge"),
        ("servo_sla_bot_active_escalations", "gauge"),
        ("servo_sla_bot_pending_approvals", "gauge"),
        ("servo_sla_bot_poll_lease_held", "gauge"),
        ("servo_sla_bot_servo_up", "gauge"),
        ("servo_sla_bot_socket_connected", "gauge"),
        ("servo_sla_bot_build", "info"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    for h in HISTOGRAMS {
        let count = |s: &[Sample]| total(s, &format!("{h}_count"));
        assert!(
            count(&after) > count(&before),
            "{h} did not move: {} -> {}",
            count(&before),
            count(&after)
        );
        // Buckets are cumulative and end at +Inf = count.
        let inf: f64 = after
            .iter()
            .filter(|s| s.name == format!("{h}_bucket") && s.labels["le"] == "+Inf")
            .map(|s| s.value)
            .sum();
        assert_eq!(inf, count(&after), "{h}");
    }
    let commands = after
        .iter()
        .find(|s| {
            s.name == "servo_sla_bot_http_request_duration_seconds_count"
                && s.labels.get("route").map(String::as_str) == Some("/slack/commands")
        })
        .expect("the slash commands' handling time");
    assert!(commands.value >= 5.0);
    assert!(total(&after, "servo_sla_bot_slack_rate_limited_total") >= 1.0);
    assert_eq!(
        after
            .iter()
            .filter(|s| s.name == "servo_sla_bot_open_alerts")
            .map(|s| s.value)
            .sum::<f64>(),
        3.0,
        "open alerts by band: {:?}",
        after
            .iter()
            .filter(|s| s.name == "servo_sla_bot_open_alerts")
            .collect::<Vec<_>>()
    );
    assert_eq!(total(&after, "servo_sla_bot_active_escalations"), 3.0);
    assert!(total(&after, "servo_sla_bot_polls_total") >= 1.0);
    let names: BTreeSet<&str> = after.iter().map(|s| s.name.as_str()).collect();
    for kept in [
        "servo_sla_bot_http_requests_total",
        "servo_sla_bot_slack_api_calls_total",
        "servo_sla_bot_pages_total",
        "servo_sla_bot_at_risk_jobs",
    ] {
        assert!(names.contains(kept), "the series {kept} keeps its name");
    }
}

/// Every metric name a PromQL expression uses (identifiers followed by `{`,
/// `[` or `)` or standing alone, that start with the bot's prefix).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("servo_sla_bot_") {
                out.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    out
}

/// The sample names the bot can export: each family with its suffixes.
fn exported() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, kind) in servo_sla_bot::runtime::metrics::Metrics::families() {
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        for s in suffixes {
            out.insert(format!("{name}{s}"));
        }
    }
    out
}

/// The section of a Markdown page that starts at `heading`, up to the next
/// heading of the same level.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start = page
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("a {heading} section"))
        + 1;
    let rest = &page[start + heading.len()..];
    let level = heading.split(' ').next().unwrap();
    let end = rest
        .find(&format!("\n{level} "))
        .map_or(page.len(), |e| start + heading.len() + e);
    &page[start..end]
}

/// `/metrics`'s docs list every series the bot exports, by the name a
/// scrape shows (`_total` on counters, `_info` on the build info).
#[test]
fn docs_operating_lists_every_series_the_bot_exports() {
    let metrics = section(include_str!("../docs/operating.md"), "## Metrics");
    let families = servo_sla_bot::runtime::metrics::Metrics::families();
    assert!(families.len() > 20, "{families:?}");
    for (name, kind) in families {
        let shown = match kind {
            "counter" => format!("`{name}_total`"),
            "info" => format!("`{name}_info`"),
            _ => format!("`{name}`"),
        };
        assert!(
            metrics.contains(&shown),
            "{shown} ({kind}) is not listed in docs/operating.md's Metrics"
        );
    }
}

#[test]
fn the_alert_rules_and_the_dashboard_use_only_series_the_bot_exports() {
    let exported = exported();
    let rules: Value =
        serde_yaml_ng::from_str(include_str!("../deploy/prometheus/servo-sla-bot.rules.yml"))
            .expect("the rules parse");
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                assert!(
                    exported.contains(&name),
                    "rule {}: unknown {name}",
                    rule["alert"]
                );
            }
            assert!(rule["annotations"]["summary"].is_string(), "{rule}");
            assert!(rule["labels"]["severity"].is_string(), "{rule}");
            alerts.insert(rule["alert"].as_str().unwrap().to_string());
        }
    }
    for needed in [
        "ServoSlaBotOutboxBacklogGrowing",
        "ServoSlaBotOutboxMessageOld",
        "ServoSlaBotPollsFailing",
        "ServoSlaBotServoUnreachable",
        "ServoSlaBotNoPoller",
        "ServoSlaBotSocketModeDisconnected",
        "ServoSlaBotSlackRefusalsRising",
    ] {
        assert!(alerts.contains(needed), "{needed}");
    }
    // Every alert is explained in docs/operating.md's "Alerts" (the README's
    // "Operating it" until issue 34 moved the reference into docs/).
    let alerts_section = section(include_str!("../docs/operating.md"), "## Alerts");
    for alert in &alerts {
        assert!(
            alerts_section.contains(&format!("`{alert}`")),
            "{alert} is not explained in docs/operating.md's Alerts"
        );
    }
    let dashboard: Value =
        serde_json::from_str(include_str!("../deploy/grafana/servo-sla-bot.json")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            for name in metric_names(target["expr"].as_str().unwrap()) {
                assert!(
                    exported.contains(&name),
                    "panel {}: unknown {name}",
                    panel["title"]
                );
            }
        }
    }
}

#[test]
fn the_kubernetes_manifests_parse_and_agree_with_the_bot() {
    let doc = |text: &str| -> Value { serde_yaml_ng::from_str(text).expect("YAML") };
    let deployment = doc(include_str!("../deploy/kubernetes/deployment.yaml"));
    assert_eq!(deployment["kind"], "Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["args"][0], "serve");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let secret = doc(include_str!("../deploy/kubernetes/secret.yaml"));
    assert_eq!(secret["kind"], "Secret");
    let keys: BTreeSet<&str> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for required in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SERVO_DATABASE_URL",
        "DATABASE_URL",
    ] {
        assert!(keys.contains(required), "{required}");
    }
    assert!(secret["stringData"]["DATABASE_URL"]
        .as_str()
        .unwrap()
        .starts_with("postgres://"));
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    let config = doc(include_str!("../deploy/kubernetes/configmap.yaml"));
    let toml = config["data"]["servo-sla-bot.toml"].as_str().unwrap();
    if let Err(p) = servo_sla_bot::config::FileConfig::parse(toml) {
        panic!("the ConfigMap's config is invalid:\n{p}");
    }
    let pdb = doc(include_str!("../deploy/kubernetes/pdb.yaml"));
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    let kustomization = doc(include_str!("../deploy/kubernetes/kustomization.yaml"));
    assert_eq!(kustomization["resources"].as_array().unwrap().len(), 5);
    doc(include_str!("../deploy/kubernetes/service.yaml"));
    let unit = include_str!("../deploy/systemd/servo-sla-bot.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/servo-sla-bot serve"));
    assert!(unit.contains("DATABASE_URL=sqlite://"));
    let dockerfile = include_str!("../deploy/Dockerfile");
    assert!(dockerfile.contains("USER 10001"), "a non-root user");
    assert!(dockerfile.matches("FROM ").count() >= 2, "multi-stage");
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_and_carry_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let slack = common::fake_slack::FakeSlack::start().await;
    let config = dir.path().join("config.toml");
    std::fs::write(&config, common::bot::CONFIG).unwrap();
    let db_password = "s3cret-db-pass";
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_servo-sla-bot"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("SLACK_BOT_TOKEN", slack.token())
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_API_URL", slack.base_url())
        // Nothing listens there: the bot says Servo is unreachable, naming
        // the URL without its password.
        .env(
            "SERVO_DATABASE_URL",
            format!("postgres://bot:{db_password}@127.0.0.1:9/servo"),
        )
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bot.db").display()),
        )
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the bot starts");
    // Let it start, poll once (Servo unreachable) and serve.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "a clean exit on SIGTERM");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    let mut messages = Vec::new();
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target"] {
            assert!(v[key].is_string(), "{key} in {line}");
        }
        assert!(
            chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).is_ok(),
            "{line}"
        );
        messages.push(
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert!(
        messages.iter().any(|m| m.contains("listening")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("shutting down")),
        "{messages:#?}"
    );
    for secret in [slack.token().as_str(), SIGNING_SECRET, db_password] {
        assert!(!stderr.contains(secret), "a secret in the log: {stderr}");
    }
}

/// Every series the code names is declared (an undeclared one is dropped at
/// run time, so a typo would lose a metric silently).
#[test]
fn every_series_the_code_names_is_declared() {
    let exported = exported();
    let mut files = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut named = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("metrics.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for piece in text.split('"').skip(1).step_by(2) {
            if piece.starts_with("servo_sla_bot_")
                && piece.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                // The outbox's message-metadata event type, not a series.
                && piece != servo_sla_bot::store::METADATA_EVENT
            {
                named.insert(piece.to_string());
            }
        }
    }
    assert!(named.len() > 20, "{named:?}");
    for name in named {
        assert!(
            exported.contains(&name) || exported.contains(&format!("{name}_count")),
            "{name} is used but not declared in src/runtime/metrics.rs"
        );
    }
}
