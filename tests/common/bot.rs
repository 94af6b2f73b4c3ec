//! Spawns the real application on 127.0.0.1:0 against a fresh store and the
//! fake Slack, and talks to it the way Slack does: signed requests.
#![allow(dead_code)]

use super::db::{admin_url, TestDb};
use super::fake_slack::FakeSlack;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use servo_sla_bot::app::{App, AppOptions};
use servo_sla_bot::config::{DatabaseUrl, EnvConfig, FileConfig, Settings};
use servo_sla_bot::context::AppState;
use servo_sla_bot::domain::secret::Secret;
use servo_sla_bot::runtime::clock::{ManualClock, SharedClock, SystemClock};
use servo_sla_bot::workers::poller::Poller;
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SIGNING_SECRET: &str = "test-signing-secret-0123456789";

/// The configuration most tests use: two tenants, an escalation path.
pub const CONFIG: &str = r#"
poll_interval = "60s"
runbook_url = "https://docs.servo.io/runbooks/backfill-sla-risk"

# These tests steer Servo's own ETA; the forecaster's tests turn it on.
[risk]
forecast = false

[[tenants]]
id = "acme"
channel = "C0ACMEALERT"
incident_channels = ["C0ACMEINCDT"]
operators = ["S0ONCALL", "U0PLATLEAD"]

[[tenants.stakeholders]]
asset = "revenue_*"
approvers = ["U0PRODOWNER"]

[[tenants]]
id = "globex"
channel = "C0GLOBEXALR"
operators = ["U0GLOBEXOPS"]

[escalation]
repeat = 1

[[escalation.tiers]]
name = "On-call Engineer"
notify = ["S0ONCALL"]
ack_timeout = "15m"

[[escalation.tiers]]
name = "Platform Team Lead"
notify = ["U0PLATLEAD"]
ack_timeout = "30m"

[[escalation.tiers]]
name = "Product/Business Stakeholder"
notify = ["U0PRODOWNER"]
ack_timeout = "60m"

[slack]
timeout = "2s"
max_attempts = 3
"#;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to build a test app.
pub struct Spawn {
    pub backend: Backend,
    pub config: String,
    pub clock: SharedClock,
    /// Servo's database; by default the admin database of the test server,
    /// which is enough for readiness checks.
    pub servo_url: Option<String>,
    /// Whether the app polls Servo by itself; most tests call `poll()` instead.
    pub run_poller: bool,
    /// Where PagerDuty events go (a fake PagerDuty in tests that need one).
    pub pagerduty_url: String,
    /// Runs Socket Mode too, with the fake's app-level token.
    pub socket_mode: bool,
    /// Starts on a Servo role that bypasses row-level security (a lab
    /// setup). Always so for the default Servo, the admin database (a
    /// superuser), which serves readiness checks only.
    pub allow_rls_bypass: bool,
}

impl Spawn {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            config: CONFIG.to_string(),
            clock: Arc::new(SystemClock),
            servo_url: None,
            run_poller: false,
            pagerduty_url: "http://127.0.0.1:9/unused".into(),
            socket_mode: false,
            allow_rls_bypass: false,
        }
    }
    /// Servo's role may bypass row-level security (`serve --allow-rls-bypass`).
    pub fn allow_rls_bypass(mut self) -> Self {
        self.allow_rls_bypass = true;
        self
    }
    /// Socket Mode on (`SLACK_APP_TOKEN` set to the fake's app token); the
    /// HTTP routes keep working beside it.
    pub fn socket_mode(mut self) -> Self {
        self.socket_mode = true;
        self
    }
    pub fn manual_clock(mut self, clock: &ManualClock) -> Self {
        self.clock = Arc::new(clock.clone());
        self
    }
    pub fn servo_url(mut self, url: &str) -> Self {
        self.servo_url = Some(url.to_string());
        self
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub settings: Settings,
    pub clock: SharedClock,
    pub run_poller: bool,
    pub allow_rls_bypass: bool,
    pub slack: FakeSlack,
    pub state: AppState,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// A test's config file, parsed. Tests of other features run without the
/// preventive side (quiet notices, the weekly review, charts) unless their
/// config asks for it: it posts messages of its own that those tests do not
/// expect.
fn test_config(config: &str) -> FileConfig {
    let mut config = config.to_string();
    if !config.contains("[buffers]") {
        config.push_str("\n[buffers]\ncritical = 0\nstandard = 0\n");
    }
    if !config.contains("[review]") {
        config.push_str("\n[review]\nweekly = false\ncharts = false\n");
    }
    // A storm's roll-up threads alerts under one message: tests of other
    // features see each alert on its own unless their config has `[alerts]`.
    if !config.contains("[alerts]") {
        config.push_str("\n[alerts]\nrollup_after = 1000\n");
    }
    // Trouble wider than one job pages the platform tier once per episode,
    // on top of the per-job pages that tests of other features count.
    if !config.contains("[escalation.widespread]") {
        config.push_str("\n[escalation.widespread]\nmin_jobs = 100000\n");
    }
    if !config.contains("[escalation.system_wide]") {
        config.push_str("\n[escalation.system_wide]\nmin_jobs = 100000\n");
    }
    // Posts are paced per channel on the app's clock; under a manual clock a paced
    // post would wait for the test to move time. Tests of other features post
    // unpaced (as if Slack allowed any burst) unless their config sets
    // `post_interval`; `tests/storms.rs` tests pacing itself.
    if !config.contains("post_interval") {
        config = if config.contains("[slack]") {
            config.replacen("[slack]", "[slack]\npost_interval = \"0s\"", 1)
        } else {
            config + "\n[slack]\npost_interval = \"0s\"\n"
        };
    }
    FileConfig::parse(&config).unwrap_or_else(|p| panic!("test config invalid:\n{p}"))
}

pub fn settings(
    config: &str,
    db_url: &str,
    slack: &FakeSlack,
    servo_url: &str,
    pagerduty_url: &str,
) -> Settings {
    let file = test_config(config);
    Settings {
        file,
        env: EnvConfig {
            slack_bot_token: Secret::new(slack.token()),
            slack_signing_secret: Secret::new(SIGNING_SECRET),
            servo_database_url: DatabaseUrl::new(servo_url),
            database_url: DatabaseUrl::new(db_url),
            slack_api_url: slack.base_url(),
            pagerduty_events_url: pagerduty_url.to_string(),
            // The fake PagerDuty serves the REST API's `/oncalls` too.
            pagerduty_api_url: pagerduty_url.trim_end_matches("/v2/enqueue").to_string(),
            pagerduty_api_token: Some(Secret::new("pd-api-token")),
            alertmanager_token: Some(Secret::new("am-token")),
            slack_app_token: None,
            bind_addr: "127.0.0.1:0".parse().unwrap(),
            pagerduty_keys: [(
                "PD_PLATFORM_KEY".to_string(),
                Secret::new("pd-routing-key-platform"),
            )]
            .into_iter()
            .collect(),
        },
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn(Spawn::new(backend)).await
}

pub async fn spawn(spec: Spawn) -> TestApp {
    let slack = FakeSlack::start().await;
    let db = match spec.backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await,
    };
    // The admin database is a superuser's: Servo there is for readiness only.
    let allow_rls_bypass = spec.allow_rls_bypass || spec.servo_url.is_none();
    let servo_url = spec.servo_url.clone().unwrap_or_else(admin_url);
    let mut settings = settings(
        &spec.config,
        &db.url,
        &slack,
        &servo_url,
        &spec.pagerduty_url,
    );
    if spec.socket_mode {
        settings.env.slack_app_token = Some(Secret::new(slack.app_token()));
    }
    start_allowing(
        settings,
        spec.clock,
        spec.run_poller,
        slack,
        db,
        allow_rls_bypass,
    )
    .await
}

/// Builds and runs the app on an existing store and fake Slack (restarts
/// reuse them). A role that bypasses row-level security is allowed only on
/// the admin database (readiness checks).
pub async fn start(
    settings: Settings,
    clock: SharedClock,
    run_poller: bool,
    slack: FakeSlack,
    db: TestDb,
) -> TestApp {
    let allow = settings.env.servo_database_url.expose() == admin_url();
    start_allowing(settings, clock, run_poller, slack, db, allow).await
}

/// [`start`], saying whether Servo's role may bypass row-level security.
pub async fn start_allowing(
    settings: Settings,
    clock: SharedClock,
    run_poller: bool,
    slack: FakeSlack,
    db: TestDb,
    allow_rls_bypass: bool,
) -> TestApp {
    let options = AppOptions {
        clock,
        worker_id: format!("test-{}", uuid::Uuid::new_v4().simple()),
        run_poller,
        allow_rls_bypass,
        ..AppOptions::default()
    };
    let app = App::build(settings.clone(), options.clone())
        .await
        .expect("the app builds");
    let addr = app.local_addr();
    let state = app.state();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        settings,
        clock: options.clock,
        run_poller,
        allow_rls_bypass,
        slack,
        state,
        db,
        stop: Some(stop),
        task: Some(task),
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

/// Slack's signature, computed here independently of the bot's own code.
pub fn slack_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {}", self.body))
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A raw POST with the given headers and nothing added.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Answer {
        let mut req = hyper::Request::post(self.url(path)).header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let res = self.client.request(req).await.expect("the app answers");
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// A POST signed as Slack signs it, at `timestamp`.
    pub async fn post_signed_at(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        timestamp: i64,
    ) -> Answer {
        let ts = timestamp.to_string();
        let sig = slack_signature(SIGNING_SECRET, &ts, body.as_bytes());
        self.post_raw(
            path,
            content_type,
            body.as_bytes().to_vec(),
            &[
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", sig),
            ],
        )
        .await
    }

    pub async fn post_signed(&self, path: &str, content_type: &str, body: &str) -> Answer {
        self.post_signed_at(path, content_type, body, now_unix())
            .await
    }

    /// `/backfill <text>` typed by `user` in `channel`.
    pub async fn slash(&self, text: &str, user: &str, channel: &str) -> Answer {
        self.slash_as(text, user, channel, "1337.42.abcd").await
    }

    /// A slash command with its own `trigger_id`: a command typed again,
    /// not a retry of the same one.
    pub async fn slash_as(&self, text: &str, user: &str, channel: &str, trigger: &str) -> Answer {
        let response_url = self
            .slack
            .response_url(&uuid::Uuid::new_v4().simple().to_string());
        let body = form(&[
            ("command", "/backfill"),
            ("text", text),
            ("user_id", user),
            ("user_name", "tester"),
            ("channel_id", channel),
            ("channel_name", "alerts"),
            ("team_id", "T0TEAM"),
            ("response_url", &response_url),
            ("trigger_id", trigger),
            ("api_app_id", "A0APP"),
        ]);
        self.post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await
    }

    /// An interaction payload, form-encoded and signed.
    pub async fn interact(&self, payload: &Value) -> Answer {
        let body = form(&[("payload", &payload.to_string())]);
        self.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let req = hyper::Request::get(self.url(path))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = self.client.request(req).await.expect("the app answers");
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The value of one series on `/metrics`, as served.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").await.body;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// One poll of every tenant, as the background poller would do it.
    pub async fn poll(&self) -> servo_sla_bot::workers::poller::PollOutcome {
        let outcome = Poller {
            state: self.state.clone(),
        }
        .tick()
        .await;
        self.drain_outbox().await;
        outcome
    }

    /// Waits until the outbox has nothing left that is due (at most 15 s).
    pub async fn drain_outbox(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            self.state.outbox_wake.notify_one();
            let pending = self
                .state
                .store
                .list_outbox(Some("pending"))
                .await
                .expect("list outbox");
            let now = self.state.clock.now();
            if pending.iter().all(|m| m.next_attempt_at > now) {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!("the outbox did not drain: {pending:#?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops the app gracefully and starts a new one on the same store and fake Slack.
    pub async fn restart(self) -> TestApp {
        let (settings, clock, run_poller, allow) = (
            self.settings.clone(),
            self.clock.clone(),
            self.run_poller,
            self.allow_rls_bypass,
        );
        let (db, slack) = self.stop().await;
        start_allowing(settings, clock, run_poller, slack, db, allow).await
    }

    /// Stops the app and keeps what a restart needs, so a test can change the
    /// world (e.g. move the clock) while the bot is down.
    pub async fn stop_parts(self) -> (Stopped, FakeSlack) {
        let (settings, clock, run_poller, allow_rls_bypass) = (
            self.settings.clone(),
            self.clock.clone(),
            self.run_poller,
            self.allow_rls_bypass,
        );
        let (db, slack) = self.stop().await;
        (
            Stopped {
                settings,
                clock,
                run_poller,
                allow_rls_bypass,
                db,
            },
            slack,
        )
    }

    /// Stops the app gracefully and hands back its store and fake Slack.
    /// (Dropping a TestApp also stops it: the stop channel closes.)
    pub async fn stop(mut self) -> (TestDb, FakeSlack) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("app task").expect("app ran cleanly");
        }
        let TestApp { db, slack, .. } = self;
        (db, slack)
    }
}

/// A stopped app: its settings, clock and store, ready to start again.
pub struct Stopped {
    settings: Settings,
    clock: SharedClock,
    run_poller: bool,
    allow_rls_bypass: bool,
    db: TestDb,
}

impl Stopped {
    /// The stopped app's store, to change it while the bot is down (as a
    /// replica that died mid-call left it).
    pub async fn store(&self) -> servo_sla_bot::store::Store {
        self.db.store().await
    }

    /// The same app with another config file (a config change across a
    /// restart); the harness's defaults apply as at the first start.
    pub fn with_config(mut self, config: &str) -> Stopped {
        self.settings.file = test_config(config);
        self
    }
}

/// Starts a stopped app again on the same store and fake Slack.
pub async fn start_again(stopped: Stopped, slack: FakeSlack) -> TestApp {
    start_allowing(
        stopped.settings,
        stopped.clock,
        stopped.run_poller,
        slack,
        stopped.db,
        stopped.allow_rls_bypass,
    )
    .await
}

/// The real app on `backend` against a fresh Servo fixture, with a clock
/// that stands at [`super::slack_ui::t0`] until the test moves it, and the
/// on-call group `S0ONCALL` holding `oncall` (left unset when empty): the
/// world most flow tests start from.
pub async fn on_servo(backend: Backend, oncall: &[&str]) -> World {
    let fx = super::servo_fixture::ServoFixture::start().await;
    let clock = ManualClock::new(super::slack_ui::t0());
    let app = spawn(
        Spawn::new(backend)
            .manual_clock(&clock)
            .servo_url(&fx.bot_url()),
    )
    .await;
    if !oncall.is_empty() {
        app.slack.set_usergroup("S0ONCALL", oncall);
    }
    World { fx, app, clock }
}

/// A bot on a Servo of its own, with the manual clock it runs on: what
/// [`on_servo`] starts.
pub struct World {
    pub fx: super::servo_fixture::ServoFixture,
    pub app: TestApp,
    pub clock: ManualClock,
}
