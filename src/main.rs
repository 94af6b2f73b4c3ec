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
        /// Earlier jobs' traces, to forecast as the bot does once it has
        /// seen them: DIR/*.csv are this asset's finished jobs, DIR/NAME/*.csv
        /// the finished jobs of the tenant's other asset NAME. Without it, the
        /// forecast knows nothing of the asset (a new asset, in a new tenant).
        #[arg(long, value_name = "DIR")]
        history: Option<PathBuf>,
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
        Cmd::Forecast {
            trace,
            total,
            history,
        } => forecast(&trace, total, history.as_deref()),
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
/// With `--history DIR`, each forecast is made knowing what the bot would
/// have learnt from the earlier jobs in DIR (see [`read_history`]).
fn forecast(path: &std::path::Path, total: i64, history: Option<&std::path::Path>) -> ExitCode {
    use servo_sla_bot::domain::forecast;
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
    let rows = match history {
        None => forecast::replay(&partitions, total),
        Some(dir) => match read_history(dir) {
            Ok(known) => forecast::replay_knowing(
                &partitions,
                total,
                |_| true,
                |view, progress| known.at(view, total, progress),
            ),
            Err(e) => {
                eprintln!("servo-sla-bot forecast: --history {}: {e}", dir.display());
                return ExitCode::from(CONFIG_ERROR);
            }
        },
    };
    print!("{}", forecast::replay_csv(&rows));
    ExitCode::SUCCESS
}

/// Earlier jobs' traces for `forecast --history DIR`: DIR/*.csv are this
/// asset's finished jobs, DIR/NAME/*.csv the tenant's other asset NAME's.
/// Each must be a finished job (every partition completed, failed or
/// skipped); its total is its number of partitions. A file that does not
/// parse is named with its line.
fn read_history(
    dir: &std::path::Path,
) -> Result<servo_sla_bot::domain::forecast::traces::Known, String> {
    use servo_sla_bot::domain::forecast::{self, PartitionObs};
    let entries = |d: &std::path::Path| -> Result<Vec<PathBuf>, String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| format!("cannot read {}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        paths.sort();
        Ok(paths)
    };
    let jobs_in = |d: &std::path::Path| -> Result<Vec<Vec<PartitionObs>>, String> {
        let mut jobs = Vec::new();
        for file in entries(d)?
            .into_iter()
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "csv"))
        {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let job =
                forecast::parse_trace_csv(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            if job.is_empty() || job.iter().any(|p| !p.state.is_done()) {
                return Err(format!(
                    "{}: not a finished job (every partition completed, failed or skipped)",
                    file.display()
                ));
            }
            jobs.push(job);
        }
        // Oldest first: the last five are the asset's period-end prior.
        jobs.sort_by_key(|job| job.iter().filter_map(|p| p.completed_at).max());
        Ok(jobs)
    };
    let own = jobs_in(dir)?;
    let mut others = Vec::new();
    for sub in entries(dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = sub
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        others.push((name, jobs_in(&sub)?));
    }
    if own.is_empty() && others.iter().all(|(_, jobs)| jobs.is_empty()) {
        return Err("no finished job's trace (*.csv) in it".to_string());
    }
    Ok(servo_sla_bot::domain::forecast::traces::Known::from_jobs(
        &own, &others,
    ))
}
