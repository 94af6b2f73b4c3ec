//! `servo-sla-bot simulate`: replays a scenario through the real bot.
//!
//! The bot is the same [`App`] that `serve` runs — risk, alerts, buttons,
//! approvals, escalation, its store (SQLite in a temporary file) and its
//! HTTP routes — with three parts swapped: a simulated Servo
//! ([`crate::servo::sim`]), the recording [`fake_slack`], and a manual clock.
//! The simulator steps the clock from one moment that matters to the next (a
//! poll, a due timer, a retry, a person's action), runs what is due, and
//! turns every Slack call into a readable [`timeline`]. People act the way
//! Slack delivers it: signed HTTP requests to the bot's own routes.

pub mod fake_slack;
pub mod scenario;
pub mod timeline;

use crate::app::{App, AppOptions};
use crate::commands::Command;
use crate::config::{DatabaseUrl, EnvConfig, Settings};
use crate::context::AppState;
use crate::domain::secret::Secret;
use crate::runtime::clock::ManualClock;
use crate::servo::sim::{ServoChange, SimServo};
use crate::servo::Servo;
use crate::workers::outbox_worker::OutboxWorker;
use crate::workers::poller::Poller;
use crate::workers::timer_worker::TimerWorker;
use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use fake_slack::FakeSlack;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use scenario::{Act, Action, Scenario, ScenarioError};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use timeline::{Event, Kind, Names};
use uuid::Uuid;

/// A Slack call as the bot sent it, at simulated time.
#[derive(Clone, Debug, Serialize)]
pub struct SentCall {
    pub at: DateTime<Utc>,
    pub method: String,
    /// `ok`, or what Slack answered instead.
    pub outcome: String,
    pub body: Value,
}

/// What a run produced.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub events: Vec<Event>,
    pub calls: Vec<SentCall>,
    pub servo: Vec<ServoChange>,
    /// Why the run stopped early: an action the bot refused, a button that
    /// was not there. Names the scenario's line.
    #[serde(skip)]
    pub failure: Option<ScenarioError>,
}

impl Report {
    /// The events of one kind.
    pub fn of_kind(&self, kind: Kind) -> Vec<&Event> {
        self.events.iter().filter(|e| e.kind == kind).collect()
    }
}

/// Removes the temporary store when the run ends.
struct TempStore(PathBuf);

impl Drop for TempStore {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

struct Sim {
    sc: Arc<Scenario>,
    clock: ManualClock,
    servo: SimServo,
    slack: FakeSlack,
    state: AppState,
    addr: SocketAddr,
    http: Client<HttpConnector, Full<Bytes>>,
    secret: String,
    names: Names,
    report: Report,
    seen_calls: usize,
    seen_changes: usize,
    /// Who each trigger id and response URL we handed out belongs to.
    triggers: HashMap<String, String>,
    responses: HashMap<String, String>,
    counter: u64,
    /// What each message showed last (text, buttons), so edits show their change.
    shown: HashMap<(String, String), (String, Vec<String>)>,
    /// How many messages have been posted so far.
    posted: usize,
    timers: TimerWorker,
    outbox: OutboxWorker,
}

/// Runs a scenario to its end (or its first failed action) and reports.
pub async fn run(sc: Scenario) -> anyhow::Result<Report> {
    let sc = Arc::new(sc);
    let clock = ManualClock::new(sc.start);
    let servo = SimServo::new(
        Arc::new(clock.clone()),
        sc.job_specs(),
        sc.outages.clone(),
        sc.priority_speedup,
    )
    .with_lineage(sc.lineage.clone());
    let token = format!("xoxb-sim-{}", Uuid::new_v4().simple());
    let slack = FakeSlack::start_with_token(&token).await;
    for (group, users) in &sc.usergroups {
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        slack.set_usergroup(group, &users);
    }
    // The scenario's people answer users.info with their display names
    // ("Dana, on-call engineer" is Dana), as the timeline shows them.
    for (id, name) in &sc.people {
        slack.set_user_name(id, name.split(',').next().unwrap_or(name).trim());
    }
    let db = TempStore(
        std::env::temp_dir().join(format!("servo-sla-bot-sim-{}.db", Uuid::new_v4().simple())),
    );
    let secret = Uuid::new_v4().simple().to_string();
    let mut file = sc.config.clone();
    // PagerDuty is not simulated: the tiers page in Slack only.
    for tier in &mut file.escalation.tiers {
        tier.pagerduty_routing_key_env = None;
    }
    for tenant in &mut file.tenants {
        for tier in tenant
            .escalation
            .iter_mut()
            .flat_map(|e| e.tiers.iter_mut())
        {
            tier.pagerduty_routing_key_env = None;
        }
    }
    let settings = Settings {
        file,
        env: EnvConfig {
            slack_bot_token: Secret::new(token),
            slack_signing_secret: Secret::new(secret.clone()),
            servo_database_url: DatabaseUrl::new("postgres://simulated-servo/servo"),
            database_url: DatabaseUrl::new(format!("sqlite://{}", db.0.display())),
            slack_api_url: slack.base_url(),
            pagerduty_events_url: "http://127.0.0.1:9/unused".into(),
            pagerduty_api_url: "http://127.0.0.1:9/unused".into(),
            pagerduty_api_token: None,
            alertmanager_token: None,
            slack_app_token: None,
            bind_addr: "127.0.0.1:0".parse().expect("an address"),
            pagerduty_keys: HashMap::new(),
        },
    };
    let options = AppOptions {
        clock: Arc::new(clock.clone()),
        worker_id: "simulator".into(),
        run_poller: false,
        run_workers: false,
        servo: Some(Servo::Sim(servo.clone())),
        // The simulated Servo has no database roles to check.
        ..AppOptions::default()
    };
    let app = App::build(settings, options)
        .await
        .context("building the bot")?;
    let addr = app.local_addr();
    let state = app.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let mut names = Names {
        people: sc.people.clone(),
        channels: sc.channels.clone(),
        jobs: Default::default(),
    };
    for (i, job) in sc.jobs.iter().enumerate() {
        names.jobs.insert(
            crate::servo::sim::sim_job_id(i + 1).to_string(),
            job.name.clone(),
        );
    }
    let mut sim = Sim {
        timers: TimerWorker {
            state: state.clone(),
            worker_id: "simulator".into(),
        },
        outbox: OutboxWorker {
            pagerduty: state.pagerduty.clone(),
            store: state.store.clone(),
            slack: state.slack.clone(),
            clock: state.clock.clone(),
            metrics: state.metrics.clone(),
            worker_id: "simulator".into(),
            permalinks: Default::default(),
            pacer: Arc::new(crate::workers::outbox_worker::Pacer::from_config(
                &state.config.slack,
            )),
        },
        report: Report {
            scenario: sc.name.clone(),
            start: sc.start,
            end: sc.end,
            events: Vec::new(),
            calls: Vec::new(),
            servo: Vec::new(),
            failure: None,
        },
        sc,
        clock,
        servo,
        slack,
        state,
        addr,
        http: Client::builder(TokioExecutor::new()).build_http(),
        secret,
        names,
        seen_calls: 0,
        seen_changes: 0,
        triggers: HashMap::new(),
        responses: HashMap::new(),
        counter: 0,
        shown: HashMap::new(),
        posted: 0,
    };
    let result = sim.run().await;
    let _ = stop.send(());
    let _ = task.await;
    sim.slack.shutdown().await;
    drop(db);
    result?;
    Ok(sim.report)
}

impl Sim {
    async fn run(&mut self) -> anyhow::Result<()> {
        let poll_every = Duration::from_std(self.sc.config.poll_interval)
            .unwrap_or(Duration::minutes(1))
            .max(Duration::seconds(1));
        let mut now = self.sc.start;
        let mut next_poll = now;
        let mut next_action = 0;
        let mut last_poll = None;
        loop {
            self.clock.set(now);
            self.servo.advance_to(now);
            self.collect_servo_changes();
            self.settle().await?;
            if now >= next_poll {
                Poller {
                    state: self.state.clone(),
                }
                .tick()
                .await;
                last_poll = Some(now);
                next_poll = now + poll_every;
                self.settle().await?;
            }
            self.collect(now).await;
            while next_action < self.sc.actions.len() && self.sc.actions[next_action].at <= now {
                let action = self.sc.actions[next_action].clone();
                next_action += 1;
                if let Err(e) = self.perform(&action, now).await? {
                    self.report.failure = Some(e);
                    self.finish();
                    return Ok(());
                }
            }
            let everything_ended = self.servo.all_ended()
                && next_action == self.sc.actions.len()
                && last_poll.is_some_and(|p| self.report.servo.last().is_none_or(|c| c.at <= p));
            if now >= self.sc.end || everything_ended {
                break;
            }
            let mut next = next_poll.min(self.sc.end);
            if let Some(a) = self.sc.actions.get(next_action) {
                next = next.min(a.at);
            }
            if let Some(t) = self.state.store.next_timer_due().await? {
                next = next.min(t);
            }
            for m in self.state.store.list_outbox(Some("pending")).await? {
                next = next.min(m.next_attempt_at);
            }
            now = next.max(now + Duration::seconds(1));
        }
        self.finish();
        Ok(())
    }

    fn finish(&mut self) {
        self.collect_servo_changes();
        self.report.servo = self.servo.changes();
    }

    /// Fires due timers and delivers due messages until nothing more is due now.
    async fn settle(&mut self) -> anyhow::Result<()> {
        for _ in 0..50 {
            let fired = self.timers.tick().await?;
            let mut delivered = false;
            loop {
                let out = self.outbox.tick().await?;
                if !out.did_work() {
                    break;
                }
                delivered = true;
            }
            if fired == 0 && !delivered {
                return Ok(());
            }
        }
        Ok(())
    }

    fn push(
        &mut self,
        at: DateTime<Utc>,
        kind: Kind,
        place: String,
        who: Option<String>,
        text: String,
        buttons: Vec<String>,
    ) {
        self.report.events.push(Event {
            at,
            minute: (at - self.sc.start).num_minutes(),
            kind,
            place,
            who,
            text,
            buttons,
        });
    }

    fn collect_servo_changes(&mut self) {
        let changes = self.servo.changes();
        for c in &changes[self.seen_changes.min(changes.len())..] {
            self.report.events.push(Event {
                at: c.at,
                minute: (c.at - self.sc.start).num_minutes(),
                kind: Kind::Servo,
                place: "Servo".into(),
                who: None,
                text: format!("{}: {}", c.job, c.what),
                buttons: Vec::new(),
            });
        }
        self.seen_changes = changes.len();
    }

    /// Where a message went, readably; threads name the job of their alert.
    async fn place(&self, channel: &str, thread_ts: Option<&str>) -> String {
        let channel = if channel.starts_with(['U', 'W']) {
            FakeSlack::dm_channel_for(channel)
        } else {
            channel.to_string()
        };
        let base = self.names.channel(&channel);
        let Some(root) = thread_ts else {
            return base;
        };
        let job = match self.state.store.alert_by_message(&channel, root).await {
            Ok(Some(alert)) => self.names.jobs.get(&alert.job_id).cloned().or_else(|| {
                alert
                    .job_id
                    .parse()
                    .ok()
                    .and_then(|id| self.servo.name_of(id))
            }),
            _ => None,
        };
        match job {
            Some(job) => format!("{base} › {job} thread"),
            None => format!("{base} › thread"),
        }
    }

    /// Turns the Slack calls made since the last look into timeline events.
    async fn collect(&mut self, now: DateTime<Utc>) {
        let calls = self.slack.calls_since(self.seen_calls);
        self.seen_calls += calls.len();
        for (id, name) in self.servo.names() {
            self.names.jobs.entry(id.to_string()).or_insert(name);
        }
        for call in calls {
            self.report.calls.push(SentCall {
                at: now,
                method: call.method.clone(),
                outcome: call.outcome.clone(),
                body: call.body.clone(),
            });
            let body = &call.body;
            let arg = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            if !call.is_ok() {
                self.push(
                    now,
                    Kind::Refused,
                    "Slack".into(),
                    None,
                    format!(
                        "refused {}: {}{}",
                        call.method,
                        call.outcome,
                        call.error_detail
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                    Vec::new(),
                );
                continue;
            }
            let (text, buttons) = timeline::content(body, &self.names);
            match call.method.as_str() {
                "chat.postMessage" => {
                    let place = self
                        .place(
                            &arg("channel").unwrap_or_default(),
                            arg("thread_ts").as_deref(),
                        )
                        .await;
                    // Messages are stored in the order they were posted.
                    if let Some(m) = self.slack.messages().get(self.posted) {
                        self.shown.insert(
                            (m.channel.clone(), m.ts.clone()),
                            (text.clone(), buttons.clone()),
                        );
                    }
                    self.posted += 1;
                    self.push(now, Kind::Message, place, None, text, buttons);
                }
                "chat.update" => {
                    let channel = arg("channel").unwrap_or_default();
                    let ts = arg("ts").unwrap_or_default();
                    let thread = self.slack.message(&channel, &ts).and_then(|m| m.thread_ts);
                    let place = self.place(&channel, thread.as_deref()).await;
                    let key = (channel, ts);
                    let (before, old_buttons) = self.shown.get(&key).cloned().unwrap_or_default();
                    let (delta, new_buttons) =
                        timeline::changed(&before, &text, &old_buttons, &buttons);
                    self.shown.insert(key, (text, buttons));
                    if delta.is_empty() && new_buttons.is_empty() {
                        continue;
                    }
                    self.push(
                        now,
                        Kind::Edit,
                        format!("{place} (edited)"),
                        None,
                        delta,
                        new_buttons,
                    );
                }
                "chat.postEphemeral" => {
                    let user = arg("user").unwrap_or_default();
                    let place = format!(
                        "{}, only {}",
                        self.names.channel(&arg("channel").unwrap_or_default()),
                        self.names.person(&user)
                    );
                    self.push(now, Kind::Ephemeral, place, Some(user), text, buttons);
                }
                "views.open" => {
                    let user = arg("trigger_id")
                        .and_then(|t| self.triggers.get(&t).cloned())
                        .unwrap_or_default();
                    let view = body.get("view").cloned().unwrap_or(Value::Null);
                    let title = view
                        .pointer("/title/text")
                        .and_then(Value::as_str)
                        .unwrap_or("a dialog")
                        .to_string();
                    let (fields, _) = timeline::content(&view, &self.names);
                    self.push(
                        now,
                        Kind::Dialog,
                        format!("dialog for {}", self.names.person(&user)),
                        Some(user),
                        format!("«{title}»\n{fields}"),
                        Vec::new(),
                    );
                }
                m if m.starts_with("response_url:") => {
                    let id = m.trim_start_matches("response_url:");
                    let user = self.responses.get(id).cloned().unwrap_or_default();
                    self.push(
                        now,
                        Kind::Ephemeral,
                        format!("reply to {}", self.names.person(&user)),
                        Some(user),
                        text,
                        buttons,
                    );
                }
                _ => {}
            }
        }
    }

    fn next_id(&mut self, what: &str, user: &str) -> String {
        self.counter += 1;
        format!("sim-{what}-{}-{user}", self.counter)
    }

    fn sign(&self, body: &str) -> (String, String) {
        let ts = Utc::now().timestamp().to_string();
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("any key length");
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body.as_bytes());
        (
            ts,
            format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        )
    }

    /// A signed POST, as Slack sends it; returns the status and body.
    async fn post(&self, path: &str, body: String) -> anyhow::Result<(u16, String)> {
        let (ts, sig) = self.sign(&body);
        let req = hyper::Request::post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", sig)
            .body(Full::new(Bytes::from(body)))?;
        let res = self.http.request(req).await?;
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn job_tenant(&self, name: &str) -> Option<String> {
        self.sc
            .jobs
            .iter()
            .find(|j| j.name == name)
            .map(|j| j.tenant.clone())
    }

    /// Replaces `{job}` with the job's current id.
    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_string();
        for name in scenario::placeholders(text) {
            if let Some(id) = self.servo.current_id(&name) {
                out = out.replace(&format!("{{{name}}}"), &id.to_string());
            }
        }
        out
    }

    /// Performs one action. The outer error is the simulator's own failure;
    /// the inner one is the scenario's (a refusal, a missing button).
    async fn perform(
        &mut self,
        a: &Action,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<(), ScenarioError>> {
        let audit_before = self.state.store.audit_count().await?;
        let calls_before = self.slack.calls_since(0).len();
        let who = self.names.person(&a.user);
        let mut refused: Vec<String> = Vec::new();
        let answer = match &a.act {
            Act::Click { button, job } => {
                let Some((channel, message, element)) = self.find_button(button, job).await? else {
                    let shown = self.buttons_about(job).await?;
                    return Ok(Err(self.sc.action_error(
                        a,
                        format!(
                            "{} cannot click [{button}] on `{job}`: no message about it shows that button{}",
                            who,
                            if shown.is_empty() {
                                " (nothing about the job shows a button yet)".to_string()
                            } else {
                                format!("; the buttons shown are {}", shown.join(" "))
                            }
                        ),
                    )));
                };
                let label = element
                    .pointer("/text/text")
                    .and_then(Value::as_str)
                    .unwrap_or(button)
                    .to_string();
                let place = self.place(&channel, message.thread_ts.as_deref()).await;
                let confirm = element
                    .pointer("/confirm/confirm/text")
                    .and_then(Value::as_str)
                    .map(|c| format!(" and confirms [{c}]"))
                    .unwrap_or_default();
                self.push(
                    now,
                    Kind::Action,
                    place,
                    Some(a.user.clone()),
                    format!("{who} clicks [{label}]{confirm} on `{job}`"),
                    Vec::new(),
                );
                let response = self.next_id("click", &a.user);
                let trigger = self.next_id("trigger", &a.user);
                self.responses.insert(response.clone(), a.user.clone());
                self.triggers.insert(trigger.clone(), a.user.clone());
                let payload = json!({
                    "type": "block_actions",
                    "team": {"id": "T0SIM"},
                    "api_app_id": "A0SIM",
                    "user": {"id": a.user},
                    "channel": {"id": channel},
                    "container": {"type": "message", "channel_id": channel, "message_ts": message.ts},
                    "message": {"ts": message.ts, "text": message.text},
                    "response_url": self.slack.response_url(&response),
                    "trigger_id": trigger,
                    "actions": [match element.get("_overflow") {
                        // An option of the overflow menu, sent as Slack sends it.
                        Some(menu) => json!({
                            "type": "overflow",
                            "action_id": menu.get("action_id").cloned().unwrap_or(Value::Null),
                            "selected_option": menu.get("option").cloned().unwrap_or(Value::Null),
                        }),
                        None => json!({
                            "type": "button",
                            "action_id": element.get("action_id").cloned().unwrap_or(Value::Null),
                            "value": element.get("value").cloned().unwrap_or(Value::Null),
                            "text": element.get("text").cloned().unwrap_or(Value::Null),
                        }),
                    }]
                });
                let body = serde_urlencoded::to_string([("payload", payload.to_string())])?;
                self.post("/slack/interactions", body).await?
            }
            Act::Command { text, channel } => {
                let text = self.substitute(text);
                let tenant = scenario::placeholders(&a_text(a))
                    .first()
                    .and_then(|j| self.job_tenant(j))
                    .unwrap_or_else(|| self.sc.config.tenants[0].id.clone());
                let channel = channel.clone().unwrap_or_else(|| {
                    let t = self
                        .sc
                        .config
                        .tenants
                        .iter()
                        .find(|t| t.id == tenant)
                        .unwrap_or(&self.sc.config.tenants[0]);
                    t.incident_channels
                        .first()
                        .unwrap_or(&t.channel)
                        .to_string()
                });
                self.push(
                    now,
                    Kind::Action,
                    self.names.channel(&channel),
                    Some(a.user.clone()),
                    format!(
                        "{who} types `/backfill {}`",
                        timeline::readable(&text, &self.names)
                    ),
                    Vec::new(),
                );
                if let Command::Invalid(why) | Command::Unknown(why) = Command::parse(&text).command
                {
                    refused.push(why);
                }
                let response = self.next_id("command", &a.user);
                let trigger = self.next_id("trigger", &a.user);
                self.responses.insert(response.clone(), a.user.clone());
                self.triggers.insert(trigger.clone(), a.user.clone());
                let body = serde_urlencoded::to_string([
                    ("command", "/backfill"),
                    ("text", text.as_str()),
                    ("user_id", a.user.as_str()),
                    ("user_name", a.user.as_str()),
                    ("channel_id", channel.as_str()),
                    ("channel_name", channel.as_str()),
                    ("team_id", "T0SIM"),
                    ("response_url", self.slack.response_url(&response).as_str()),
                    ("trigger_id", trigger.as_str()),
                    ("api_app_id", "A0SIM"),
                ])?;
                self.post("/slack/commands", body).await?
            }
            Act::Submit { fields } => {
                let views = self.slack.views();
                let Some(view) = views
                    .iter()
                    .rev()
                    .find(|v| self.triggers.get(&v.trigger_id) == Some(&a.user))
                else {
                    return Ok(Err(self.sc.action_error(
                        a,
                        format!("{who} has no dialog open to submit (a button such as [Request extension] opens one)"),
                    )));
                };
                let (values, problems) = self.fill(&view.view, fields);
                if !problems.is_empty() {
                    return Ok(Err(self.sc.action_error(a, problems.join("; "))));
                }
                let shown: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
                self.push(
                    now,
                    Kind::Action,
                    format!("dialog for {who}"),
                    Some(a.user.clone()),
                    format!("{who} submits: {}", shown.join(", ")),
                    Vec::new(),
                );
                let payload = json!({
                    "type": "view_submission",
                    "team": {"id": "T0SIM"},
                    "user": {"id": a.user},
                    "view": {
                        "id": view.id,
                        "callback_id": view.view.get("callback_id").cloned().unwrap_or(Value::Null),
                        "private_metadata": view.view.get("private_metadata").cloned().unwrap_or(Value::Null),
                        "state": {"values": values}
                    }
                });
                let body = serde_urlencoded::to_string([("payload", payload.to_string())])?;
                self.post("/slack/interactions", body).await?
            }
        };
        let (status, body) = answer;
        if status != 200 {
            refused.push(format!("the bot answered HTTP {status}: {body}"));
        }
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            if v.get("response_action").and_then(Value::as_str) == Some("errors") {
                let errors: Vec<String> = v
                    .get("errors")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, e)| format!("{k}: {}", e.as_str().unwrap_or_default()))
                    .collect();
                refused.push(errors.join("; "));
                self.push(
                    now,
                    Kind::Ephemeral,
                    format!("dialog for {who}"),
                    Some(a.user.clone()),
                    format!("the dialog stays open: {}", errors.join("; ")),
                    Vec::new(),
                );
            } else {
                let (text, buttons) = timeline::content(&v, &self.names);
                if !text.is_empty() {
                    self.push(
                        now,
                        Kind::Ephemeral,
                        format!("reply to {who}"),
                        Some(a.user.clone()),
                        text,
                        buttons,
                    );
                }
            }
        }
        self.settle().await?;
        self.collect_servo_changes();
        self.collect(now).await;
        let audit_after = self.state.store.audit_count().await?;
        let new = self
            .state
            .store
            .list_audit(None, (audit_after - audit_before).max(0))
            .await?;
        for e in new.iter().filter(|e| e.actor == a.user) {
            if e.outcome.starts_with("refused") || e.outcome.starts_with("failed") {
                refused.push(format!("{}: {}", e.action, e.outcome));
            }
        }
        if refused.is_empty() {
            if a.expect_refusal {
                return Ok(Err(self.sc.action_error(
                    a,
                    format!("the scenario expects the bot to refuse this, but it did it ({who})"),
                )));
            }
            return Ok(Ok(()));
        }
        if a.expect_refusal {
            return Ok(Ok(()));
        }
        let told: Vec<String> = self
            .slack
            .calls_since(calls_before)
            .iter()
            .filter(|c| {
                c.method.starts_with("response_url:")
                    || (c.method == "chat.postEphemeral"
                        && c.body.get("user").and_then(Value::as_str) == Some(&a.user))
            })
            .map(|c| timeline::content(&c.body, &self.names).0)
            .chain(
                serde_json::from_str::<Value>(&body)
                    .ok()
                    .map(|v| timeline::content(&v, &self.names).0),
            )
            .filter(|t| !t.is_empty())
            .collect();
        Ok(Err(self.sc.action_error(
            a,
            format!(
                "the bot refused this action by {who} ({}){}",
                refused.join("; "),
                if told.is_empty() {
                    String::new()
                } else {
                    format!(". It told them: {}", told.join(" / "))
                }
            ),
        )))
    }

    /// The values (button values) that refer to the scenario job `name`: its
    /// alerts' ids (through recreations) and its approvals' ids.
    async fn refs(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let tenant = self.job_tenant(name).unwrap_or_default();
        let mut ids = Vec::new();
        let mut id = self
            .sc
            .jobs
            .iter()
            .position(|j| j.name == name)
            .map(|i| crate::servo::sim::sim_job_id(i + 1));
        while let Some(job) = id {
            ids.push(job.to_string());
            id = self.servo.successor(job);
        }
        let mut out = Vec::new();
        for job in &ids {
            if let Some(alert) = self.state.store.latest_alert_for_job(&tenant, job).await? {
                out.push(alert.id);
            }
        }
        for ap in self.state.store.list_approvals(Some(&tenant), None).await? {
            if ids.contains(&ap.job_id) {
                out.push(ap.id);
            }
        }
        Ok(out)
    }

    /// The button a click means: (channel, message, button element). The
    /// alert itself comes first, then its thread, then DMs.
    async fn find_button(
        &self,
        button: &str,
        job: &str,
    ) -> anyhow::Result<Option<(String, fake_slack::Message, Value)>> {
        let refs = self.refs(job).await?;
        let mut found: Vec<(u8, fake_slack::Message, Value)> = Vec::new();
        for m in self.slack.messages() {
            for b in button_elements(&m) {
                let label = b
                    .pointer("/text/text")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let action = b.get("action_id").and_then(Value::as_str).unwrap_or("");
                let value = b.get("value").and_then(Value::as_str).unwrap_or("");
                if (label.eq_ignore_ascii_case(button) || action == button)
                    && refs.iter().any(|r| about(value, r))
                {
                    let rank = if m.channel.starts_with('D') {
                        2
                    } else if m.thread_ts.is_some() {
                        1
                    } else {
                        0
                    };
                    found.push((rank, m.clone(), b));
                }
            }
        }
        // The newest of the best rank.
        found.sort_by_key(|(rank, m, _)| (*rank, std::cmp::Reverse(m.ts.clone())));
        Ok(found
            .into_iter()
            .next()
            .map(|(_, m, b)| (m.channel.clone(), m, b)))
    }

    /// Every button shown on a message about the job, as `[Label]`.
    async fn buttons_about(&self, job: &str) -> anyhow::Result<Vec<String>> {
        let refs = self.refs(job).await?;
        let mut out = Vec::new();
        for m in self.slack.messages() {
            for b in button_elements(&m) {
                let value = b.get("value").and_then(Value::as_str).unwrap_or("");
                let label = b
                    .pointer("/text/text")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let label = format!("[{label}]");
                if refs.iter().any(|r| about(value, r)) && !out.contains(&label) {
                    out.push(label);
                }
            }
        }
        Ok(out)
    }

    /// A dialog's `state.values` from the scenario's fields, by block id.
    fn fill(
        &self,
        view: &Value,
        fields: &std::collections::BTreeMap<String, String>,
    ) -> (Value, Vec<String>) {
        let mut values = serde_json::Map::new();
        let mut known = Vec::new();
        for block in view
            .get("blocks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("input"))
        {
            let Some(block_id) = block.get("block_id").and_then(Value::as_str) else {
                continue;
            };
            known.push(block_id.to_string());
            let element = block.get("element").cloned().unwrap_or(Value::Null);
            let action_id = element
                .get("action_id")
                .and_then(Value::as_str)
                .unwrap_or("value")
                .to_string();
            let kind = element
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("plain_text_input")
                .to_string();
            let Some(given) = fields.get(block_id) else {
                continue;
            };
            let value = if kind == "radio_buttons" {
                // One choice: its value or a word of its label.
                let wanted = self.substitute(given.trim());
                let option = element
                    .get("options")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|o| {
                        o.get("value").and_then(Value::as_str) == Some(wanted.as_str())
                            || o.pointer("/text/text")
                                .and_then(Value::as_str)
                                .is_some_and(|t| t.contains(wanted.as_str()))
                    })
                    .cloned()
                    .unwrap_or(Value::Null);
                json!({ "type": kind, "selected_option": option })
            } else if kind.contains("select") || kind == "checkboxes" {
                let options: Vec<Value> = element
                    .get("options")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let wanted: Vec<String> = given
                    .split(',')
                    .map(|w| self.substitute(w.trim()))
                    .collect();
                let picked: Vec<Value> = options
                    .into_iter()
                    .filter(|o| {
                        let v = o.get("value").and_then(Value::as_str).unwrap_or("");
                        let t = o
                            .pointer("/text/text")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        given.trim() == "all"
                            || wanted.iter().any(|w| w == v || t.contains(w.as_str()))
                    })
                    .collect();
                json!({ "type": kind, "selected_options": picked })
            } else {
                json!({ "type": kind, "value": self.substitute(given) })
            };
            values.insert(block_id.to_string(), json!({ action_id: value }));
        }
        let problems = fields
            .keys()
            .filter(|k| !known.contains(k))
            .map(|k| {
                format!(
                    "the dialog has no field `{k}` (its fields: {})",
                    known.join(", ")
                )
            })
            .collect();
        (Value::Object(values), problems)
    }
}

fn a_text(a: &Action) -> String {
    match &a.act {
        Act::Command { text, .. } => text.clone(),
        _ => String::new(),
    }
}

/// The button elements of a message, in its blocks and its attachments.
/// Each option of an overflow menu counts as the button it stands for
/// (its value is `<action_id>|<value>`), remembering the menu in `_overflow`.
/// Whether a button's value is about `r` (an alert or job id): the id
/// itself, or the id and a choice (`<alert id>:1h`, the menu's silences).
fn about(value: &str, r: &str) -> bool {
    value == r
        || value
            .strip_prefix(r)
            .is_some_and(|rest| rest.starts_with(':'))
}

fn button_elements(m: &fake_slack::Message) -> Vec<Value> {
    fn walk(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("button") {
                    out.push(v.clone());
                    return;
                }
                if o.get("type").and_then(Value::as_str) == Some("overflow") {
                    for option in o
                        .get("options")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let packed = option.get("value").and_then(Value::as_str).unwrap_or("");
                        let (action_id, value) = packed.split_once('|').unwrap_or((packed, ""));
                        out.push(json!({
                            "type": "button",
                            "action_id": action_id,
                            "value": value,
                            "text": option.get("text").cloned().unwrap_or(Value::Null),
                            "_overflow": { "action_id": o.get("action_id").cloned().unwrap_or(Value::Null), "option": option },
                        }));
                    }
                    return;
                }
                o.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&m.blocks, &mut out);
    walk(&m.attachments, &mut out);
    out
}
