//! Builds the application from settings: the store (migrated), Servo's pool,
//! the Slack client, templates, the listener (bound before anything runs, so
//! tests can use port 0) and the workers; then runs until told to stop.

use crate::config::Settings;
use crate::context::socket_status::{SocketState, SocketStatus};
use crate::context::AppState;
use crate::domain::secret::Secret;
use crate::edge::inbound::{self, MAX_BODY_BYTES};
use crate::edge::socket::SocketMode;
use crate::edge::verify::{SlackVerifier, VerifyLayerState};
use crate::runtime::clock::{SharedClock, SystemClock};
use crate::runtime::metrics::Metrics;
use crate::runtime::supervise::supervise;
use crate::servo::{Servo, ServoError};
use crate::slack::api::SlackApi;
use crate::slack::directory::Directory;
use crate::slack::render::Templates;
use crate::store::Store;
use crate::workers::outbox_worker::OutboxWorker;
use crate::workers::poller::Poller;
use crate::workers::timer_worker::TimerWorker;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

/// How to build the app, beyond its settings.
#[derive(Clone)]
pub struct AppOptions {
    pub clock: SharedClock,
    /// Identifies this process in claims and leases.
    pub worker_id: String,
    /// Whether `run_until` polls Servo on its own; tests that drive
    /// [`Poller::tick`] by hand turn it off.
    pub run_poller: bool,
    /// Whether `run_until` runs the outbox and timer workers; the simulator
    /// steps them itself, in simulated time.
    pub run_workers: bool,
    /// Servo to use instead of connecting to `SERVO_DATABASE_URL` (the simulator's).
    pub servo: Option<Servo>,
    /// Start on a Servo role that bypasses row-level security (a superuser
    /// or BYPASSRLS), with a warning, instead of refusing it
    /// (`serve --allow-rls-bypass`, for a lab setup).
    pub allow_rls_bypass: bool,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            worker_id: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "bot".into()),
                uuid::Uuid::new_v4().simple()
            ),
            run_poller: true,
            run_workers: true,
            servo: None,
            allow_rls_bypass: false,
        }
    }
}

pub struct App {
    /// Held while the app lives: the SQLite store's one-process lock.
    _store_lock: Option<std::fs::File>,
    listener: TcpListener,
    state: AppState,
    verifier: SlackVerifier,
    /// The app-level token, when the bot runs in Socket Mode too.
    socket_token: Option<Secret>,
    worker_id: String,
    run_poller: bool,
    run_workers: bool,
}

impl App {
    pub async fn build(settings: Settings, options: AppOptions) -> anyhow::Result<App> {
        let metrics = Arc::new(Metrics::new());
        let db_url = &settings.env.database_url;
        let store = Store::connect(db_url.expose())
            .await
            .with_context(|| format!("opening the bot's store at {db_url}"))?;
        // SQLite serves one process: a second `serve` on the same file would
        // poll, page and deliver twice. PostgreSQL is what several replicas share.
        let store_lock = match store.sqlite_file() {
            Some(file) => Some(lock_sqlite_store(&file)?),
            None => None,
        };
        store
            .migrate()
            .await
            .with_context(|| format!("migrating the bot's store at {db_url}"))?;
        let servo = match options.servo {
            Some(servo) => servo,
            None => Servo::connect_lazy(&settings.env.servo_database_url)?,
        }
        .with_metrics(metrics.clone())
        .allow_rls_bypass(options.allow_rls_bypass);
        check_servo_role(&servo).await?;
        let slack = SlackApi::new(
            &settings.env.slack_api_url,
            &settings.env.slack_bot_token,
            settings.file.slack.clone(),
            metrics.clone(),
        )
        .context("building the Slack client")?;
        let templates = Templates::load().context("loading the message templates")?;
        let pagerduty = crate::pagerduty::PagerDuty::new(
            &settings.env.pagerduty_events_url,
            settings.env.pagerduty_keys.clone(),
        )
        .context("building the PagerDuty client")?
        .with_api(
            &settings.env.pagerduty_api_url,
            settings.env.pagerduty_api_token.clone(),
        );
        let socket_token = settings.socket_mode_token().cloned();
        let listener = TcpListener::bind(settings.env.bind_addr)
            .await
            .with_context(|| format!("binding {}", settings.env.bind_addr))?;
        let state = AppState {
            config: Arc::new(settings.file),
            store,
            servo,
            directory: Directory::new(slack.clone()),
            slack,
            metrics,
            clock: options.clock,
            templates: Arc::new(templates),
            outbox_wake: Arc::new(Notify::new()),
            poll_wake: Arc::new(Notify::new()),
            alertmanager_token: settings.env.alertmanager_token,
            pagerduty,
            help: Arc::default(),
            help_body: Arc::default(),
            help_unknown: Arc::default(),
            status_cache: Arc::default(),
            calibrations: Arc::default(),
            bought: Arc::default(),
            priors: Arc::default(),
            home_viewers: Arc::default(),
            overrides: Arc::default(),
            last_prune_ms: Arc::default(),
            socket: SocketStatus::new(if socket_token.is_some() {
                SocketState::Connecting
            } else {
                SocketState::Disabled
            }),
            workers: Default::default(),
        };
        Ok(App {
            _store_lock: store_lock,
            listener,
            state,
            verifier: SlackVerifier::new(settings.env.slack_signing_secret),
            socket_token,
            worker_id: options.worker_id,
            run_poller: options.run_poller,
            run_workers: options.run_workers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves HTTP and runs the workers until `shutdown` completes; then stops
    /// taking requests, lets in-flight work finish and hands back claims.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let outbox = OutboxWorker {
            pagerduty: self.state.pagerduty.clone(),
            store: self.state.store.clone(),
            slack: self.state.slack.clone(),
            clock: self.state.clock.clone(),
            metrics: self.state.metrics.clone(),
            worker_id: self.worker_id.clone(),
            permalinks: Default::default(),
            pacer: Arc::new(crate::workers::outbox_worker::Pacer::from_config(
                &self.state.config.slack,
            )),
        };
        let timers = TimerWorker {
            state: self.state.clone(),
            worker_id: self.worker_id.clone(),
        };
        // Every worker runs under a supervisor: a panic restarts it, and
        // `/readyz` names a worker that keeps dying.
        let health = self.state.workers.clone();
        let workers = self.run_workers.then(|| {
            let wake = self.state.outbox_wake.clone();
            let stop = stop_rx.clone();
            let outbox_task = tokio::spawn(supervise(
                "outbox",
                health.clone(),
                stop_rx.clone(),
                move || outbox.clone().run(wake.clone(), stop.clone()),
            ));
            let stop = stop_rx.clone();
            let timer_task = tokio::spawn(supervise(
                "timers",
                health.clone(),
                stop_rx.clone(),
                move || timers.clone().run(stop.clone()),
            ));
            (outbox_task, timer_task)
        });
        let poller_task = self.run_poller.then(|| {
            let (state, wake, stop, id) = (
                self.state.clone(),
                self.state.poll_wake.clone(),
                stop_rx.clone(),
                self.worker_id.clone(),
            );
            tokio::spawn(supervise(
                "poller",
                health.clone(),
                stop_rx.clone(),
                move || {
                    Poller {
                        state: state.clone(),
                    }
                    .run(wake.clone(), stop.clone(), id.clone())
                },
            ))
        });

        // Socket Mode runs beside the HTTP listener, which keeps serving
        // health, metrics, Alertmanager and (during a migration) Slack's routes.
        let socket_task = self.socket_token.map(|token| {
            tracing::info!("Socket Mode on: Slack's requests also arrive over a websocket");
            let (state, stop) = (self.state.clone(), stop_rx.clone());
            tokio::spawn(supervise(
                "socket",
                health.clone(),
                stop_rx.clone(),
                move || SocketMode::new(state.clone(), token.clone()).run(stop.clone()),
            ))
        });

        let verify = VerifyLayerState::new(self.verifier, MAX_BODY_BYTES);
        let router = inbound::router(self.state.clone(), verify);
        tracing::info!(addr = %self.listener.local_addr()?, "servo-sla-bot listening");
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;

        tracing::info!("shutting down: finishing in-flight work");
        let _ = stop_tx.send(true);
        if let Some(task) = socket_task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "Socket Mode ended badly");
            }
        }
        if let Some(task) = poller_task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the poller ended badly");
            }
        }
        if let Some((outbox_task, timer_task)) = workers {
            if let Err(e) = timer_task.await {
                tracing::error!(error = %e, "the timer worker ended badly");
            }
            if let Err(e) = outbox_task.await {
                tracing::error!(error = %e, "the outbox worker ended badly");
            }
        }
        self.state.store.close().await;
        self.state.servo.close().await;
        Ok(())
    }
}

/// How long start-up waits to read the Servo role before starting anyway.
const SERVO_ROLE_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses to start on a Servo role that bypasses row-level security, unless
/// allowed (an error that is a [`ServoError::RlsBypass`]: `serve` exits 2).
/// Servo being unreachable does not stop the start, as before: the role is
/// then checked when Servo is first reached, and nothing is read or written
/// before it passes.
async fn check_servo_role(servo: &Servo) -> anyhow::Result<()> {
    match tokio::time::timeout(SERVO_ROLE_CHECK, servo.check_role()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ ServoError::RlsBypass(_))) => Err(anyhow::Error::new(e)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot check Servo's role at start; it is checked when Servo is first reached, and nothing is read from Servo before");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(
                "Servo did not answer within {SERVO_ROLE_CHECK:?} at start; its role is checked when Servo is first reached, and nothing is read from Servo before"
            );
            Ok(())
        }
    }
}

/// Takes the lock file next to a SQLite store (`<file>.lock`), or says which
/// file another process holds.
fn lock_sqlite_store(file: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut path = file.as_os_str().to_owned();
    path.push(".lock");
    let path = std::path::PathBuf::from(path);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the store's lock file {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another servo-sla-bot process is using the SQLite store {} (it holds {}). \
             SQLite serves one bot process; to run several replicas, point DATABASE_URL at PostgreSQL",
            file.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
