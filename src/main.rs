//! The `servo-sla-bot` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};
use servo_sla_bot::app::{shutdown_signal, App, AppOptions};
use servo_sla_bot::config::{self, FileConfig, Settings};
use servo_sla_bot::domain::text::count;
use servo_sla_bot::servo::ServoError;
use servo_sla_bot::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "servo-sla-bot",
    version,
    about = "Watches Servo backfill jobs against their SLA deadlines and helps the on-call team act in Slack"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve Slack's requests and watch Servo.
    Serve {
        /// The config file (default: $SERVO_SLA_BOT_CONFIG, else ./servo-sla-bot.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Start even if SERVO_DATABASE_URL's role bypasses row-level security
        /// (a superuser or BYPASSRLS), with a warning: for a lab setup only.
        /// Without it such a role is refused and `serve` exits 2.
        #[arg(long)]
        allow_rls_bypass: bool,
    },
    /// Create or update the bot's own store (DATABASE_URL; default sqlite://servo-sla-bot.db).
    Migrate,
    /// Validate a config file and name every problem with its key.
    CheckConfig { file: PathBuf },
    /// Replay a recorded job's partitions through the forecaster: one CSV line
    /// `at,completed,servo_eta,p50,p90` per completion (see docs/forecast.md).
    Forecast {
        /// CSV with the header partition_key,state,started_at,completed_at,duration_ms,attempt_count.
        #[arg(long)]
        trace: PathBuf,
        /// The job's total number of partitions.
        #[arg(long)]
        total: i64,
    },
    /// Replay a scenario through the real bot, with a simulated Servo, a
    /// recording Slack and a clock that runs hours in seconds.
    Simulate {
        /// The scenario file (see docs/simulate.md and examples/scenarios/).
        scenario: PathBuf,
        /// Use this config instead of the scenario's own [config].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print every Slack call as it would have been sent (JSON lines)
        /// instead of the readable timeline.
        #[arg(long)]
        json: bool,
    },
}

/// Exit code for configuration problems (the config file, the environment,
/// a Servo role that bypasses row-level security), so scripts can tell them
/// from crashes.
const CONFIG_ERROR: u8 = 2;

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A simulation's output is its timeline; the bot's own logs would bury it.
    let default_filter = match cli.command {
        Cmd::Simulate { .. } => "error",
        _ => "info,sqlx=warn,hyper=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    // LOG_FORMAT=json: one JSON object a line (timestamp, level, target,
    // fields with the message), for log pipelines. Anything else: text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("LOG_FORMAT").ok().as_deref() {
        Some("json") => builder.json().with_current_span(false).init(),
        Some("text") | Some("") | None => builder.init(),
        Some(other) => {
            builder.init();
            tracing::warn!(
                log_format = other,
                "LOG_FORMAT is `json` or `text`; logging as text"
            );
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("servo-sla-bot: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Cmd::CheckConfig { file } => match FileConfig::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: OK ({}, {}, poll every {:?})",
                    file.display(),
                    count(cfg.tenants.len(), "tenant", "tenants"),
                    count(
                        cfg.escalation.tiers.len(),
                        "escalation tier",
                        "escalation tiers"
                    ),
                    cfg.poll_interval
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!(
                    "{} has {}:\n{problems}",
                    file.display(),
                    count(problems.0.len(), "problem", "problems")
                );
                ExitCode::from(CONFIG_ERROR)
            }
        },
        Cmd::Forecast { trace, total } => forecast(&trace, total),
        Cmd::Simulate {
            scenario,
            config,
            json,
        } => simulate(&scenario, config.as_deref(), json).await,
        Cmd::Migrate => {
            let url = config::DatabaseUrl::new(
                env_var("DATABASE_URL")
                    .filter(|u| !u.trim().is_empty())
                    .unwrap_or_else(|| config::DEFAULT_DATABASE_URL.into()),
            );
            if !config::is_store_url(url.expose()) {
                eprintln!("DATABASE_URL: '{url}' is neither sqlite://FILE nor postgres://…");
                return ExitCode::from(CONFIG_ERROR);
            }
            let result = async {
                let store = Store::connect(url.expose()).await?;
                store.migrate().await?;
                store.close().await;
                Ok::<_, servo_sla_bot::store::StoreError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    println!("migrated the store at {url}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("servo-sla-bot: migrating the store at {url} failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Serve {
            config,
            allow_rls_bypass,
        } => {
            let path = config::config_path(config, &env_var);
            let settings = match Settings::load(&path, &env_var) {
                Ok(s) => s,
                Err(problems) => {
                    eprintln!(
                        "servo-sla-bot cannot start: {} to fix (config file: {}):\n{problems}",
                        count(problems.0.len(), "thing", "things"),
                        path.display()
                    );
                    return ExitCode::from(CONFIG_ERROR);
                }
            };
            let options = AppOptions {
                allow_rls_bypass,
                ..AppOptions::default()
            };
            let app = match App::build(settings, options).await {
                Ok(app) => app,
                Err(e) => {
                    eprintln!("servo-sla-bot cannot start: {e:#}");
                    // A Servo role that bypasses RLS is a setting to fix, not a crash.
                    return match e.downcast_ref::<ServoError>() {
                        Some(ServoError::RlsBypass(_)) => ExitCode::from(CONFIG_ERROR),
                        _ => ExitCode::FAILURE,
                    };
                }
            };
            match app.run_until(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("servo-sla-bot stopped with an error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `simulate`: the timeline (or every Slack call as JSON) on stdout; a
/// scenario problem names its line on stderr and exits 1.
async fn simulate(
    path: &std::path::Path,
    config: Option<&std::path::Path>,
    json: bool,
) -> ExitCode {
    use servo_sla_bot::sim::{self, scenario::Scenario, timeline};
    use std::io::Write;
    let scenario = match Scenario::load(path, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("servo-sla-bot simulate: {e}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let report = match sim::run(scenario).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("servo-sla-bot simulate: the simulation failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        for call in &report.calls {
            let _ = writeln!(out, "{}", serde_json::to_string(call).unwrap_or_default());
        }
    } else {
        let _ = writeln!(
            out,
            "Scenario: {} (from {} to at most {})\n",
            report.scenario,
            report.start.format("%a %Y-%m-%d %H:%M UTC"),
            report.end.format("%H:%M")
        );
        let mut events: Vec<&timeline::Event> = report.events.iter().collect();
        events.sort_by_key(|e| e.at);
        for e in events {
            let _ = writeln!(out, "{}", timeline::format_event(e, report.start));
        }
        let messages = report.of_kind(timeline::Kind::Message).len();
        let edits = report.of_kind(timeline::Kind::Edit).len();
        let _ = writeln!(
            out,
            "\n{}: {}, {}; {}.",
            count(report.calls.len(), "Slack call", "Slack calls"),
            count(messages, "message", "messages"),
            count(edits, "edit", "edits"),
            count(report.servo.len(), "Servo change", "Servo changes")
        );
    }
    match report.failure {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("servo-sla-bot simulate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `forecast`: the replay as CSV on stdout; a bad file names its line and exits 2.
fn forecast(path: &std::path::Path, total: i64) -> ExitCode {
    use servo_sla_bot::forecast;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "servo-sla-bot forecast: cannot read {}: {e}",
                path.display()
            );
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let partitions = match forecast::parse_trace_csv(&text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("servo-sla-bot forecast: {}: {e}", path.display());
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    if total < partitions.len() as i64 {
        eprintln!(
            "servo-sla-bot forecast: --total {total} is less than the {} partitions in {}",
            partitions.len(),
            path.display()
        );
        return ExitCode::from(CONFIG_ERROR);
    }
    print!(
        "{}",
        forecast::replay_csv(&forecast::replay(&partitions, total))
    );
    ExitCode::SUCCESS
}
