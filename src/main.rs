//! The `servo-sla-bot` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};
use servo_sla_bot::app::{shutdown_signal, App, AppOptions};
use servo_sla_bot::config::{self, FileConfig, Settings};
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
    },
    /// Create or update the bot's own store (DATABASE_URL; default sqlite://servo-sla-bot.db).
    Migrate,
    /// Validate a config file and name every problem with its key.
    CheckConfig { file: PathBuf },
}

/// Exit code for configuration problems, so scripts can tell them from crashes.
const CONFIG_ERROR: u8 = 2;

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
                    "{}: OK ({} tenant(s), {} escalation tier(s), poll every {:?})",
                    file.display(),
                    cfg.tenants.len(),
                    cfg.escalation.tiers.len(),
                    cfg.poll_interval
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!(
                    "{} has {} problem(s):\n{problems}",
                    file.display(),
                    problems.0.len()
                );
                ExitCode::from(CONFIG_ERROR)
            }
        },
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
        Cmd::Serve { config } => {
            let path = config::config_path(config, &env_var);
            let settings = match Settings::load(&path, &env_var) {
                Ok(s) => s,
                Err(problems) => {
                    eprintln!(
                        "servo-sla-bot cannot start: {} thing(s) to fix (config file: {}):\n{problems}",
                        problems.0.len(),
                        path.display()
                    );
                    return ExitCode::from(CONFIG_ERROR);
                }
            };
            let app = match App::build(settings, AppOptions::default()).await {
                Ok(app) => app,
                Err(e) => {
                    eprintln!("servo-sla-bot cannot start: {e:#}");
                    return ExitCode::FAILURE;
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
