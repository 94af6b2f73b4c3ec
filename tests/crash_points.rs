//! Crash points (issue 20): each flow runs with its Nth store statement
//! failing (`store::fault::failing_at`), N = 1, 2, … until it completes, as
//! if the bot had stopped there. Then the bot carries on (polls, fires what is
//! due, delivers), and the invariants must hold: one post per alert, one page
//! per person and tier, each extension applied once, no message twice.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::bot::{spawn, Backend, Spawn, TestApp, World};
use common::fake_pagerduty::FakePagerDuty;
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{advance, alert_message, button_value, t0};
use serde_json::json;
use servo_sla_bot::actions::Click;
use servo_sla_bot::runtime::clock::ManualClock;
use servo_sla_bot::store::fault::failing_at;
use servo_sla_bot::workers::poller::Poller;
use std::collections::HashMap;
use uuid::Uuid;

const CHANNEL: &str = "C0ACMEALERT";
/// More statements than any flow here runs: a loop that never completes
/// fails the test rather than spinning.
const MAX_POINTS: u32 = 120;

async fn world(backend: Backend) -> World {
    common::bot::on_servo(backend, &["U0ONCALL1", "U0ONCALL2"]).await
}

/// The world with a fake PagerDuty, and a routing key on the on-call tier
/// (paged as soon as the alert opens) and on the platform tier (which
/// Request scaling pages).
async fn world_with_pagerduty(backend: Backend) -> (World, FakePagerDuty) {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let (app, pd) = with_pagerduty(backend, &fx, &clock, "").await;
    (World { fx, app, clock }, pd)
}

/// The bot of [`world_with_pagerduty`] on `fx`, with `extra` appended to
/// its config, and its fake PagerDuty.
async fn with_pagerduty(
    backend: Backend,
    fx: &ServoFixture,
    clock: &ManualClock,
    extra: &str,
) -> (TestApp, FakePagerDuty) {
    let pd = FakePagerDuty::start().await;
    let mut spec = Spawn::new(backend)
        .manual_clock(clock)
        .servo_url(&fx.bot_url());
    spec.pagerduty_url = pd.url();
    let key = "\npagerduty_routing_key_env = \"PD_PLATFORM_KEY\"";
    spec.config = common::bot::CONFIG
        .replace(
            "notify = [\"S0ONCALL\"]\nack_timeout = \"15m\"",
            &format!("notify = [\"S0ONCALL\"]\nack_timeout = \"15m\"{key}"),
        )
        .replace(
            "notify = [\"U0PLATLEAD\"]\nack_timeout = \"30m\"",
            &format!("notify = [\"U0PLATLEAD\"]\nack_timeout = \"30m\"{key}"),
        )
        + extra;
    let app = spawn(spec).await;
    app.slack
        .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
    (app, pd)
}

/// The PagerDuty events of one action under one dedup key.
fn pd_events(pd: &FakePagerDuty, action: &str, key: &str) -> usize {
    pd.events()
        .iter()
        .filter(|e| e["event_action"] == action && e["dedup_key"] == key)
        .count()
}

/// Thread replies that contain `needle`.
fn replies_with(app: &TestApp, needle: &str) -> usize {
    app.slack
        .messages()
        .iter()
        .filter(|m| m.thread_ts.is_some() && m.text.contains(needle))
        .count()
}

/// Audit entries of the job with this action and outcome.
async fn audited(app: &TestApp, job: Uuid, action: &str, outcome: &str) -> usize {
    app.state
        .store
        .list_audit(Some(&job.to_string()), 500)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action && e.outcome == outcome)
        .count()
}

/// A critical revenue job at Low: critical jobs page from Low, and the
/// revenue assets' stakeholder is U0PRODOWNER.
fn critical_low() -> JobSpec {
    JobSpec {
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: 9,
        ..JobSpec::default()
    }
}

/// The bot carries on after the stop: a minute later (past the repair
/// pass's settling time) it polls, fires what is due and delivers. The job
/// keeps running as it was (Servo's ETA kept fresh).
async fn carry_on(w: &World, job: Uuid) {
    w.app.drain_outbox().await;
    w.clock.advance(Duration::minutes(1));
    fresh(w, job).await;
    w.app.poll().await;
    advance(&w.app, &w.clock, 0).await;
    w.app.poll().await;
    advance(&w.app, &w.clock, 0).await;
}

/// Servo's ETA as at the start, with a heartbeat of now: still running.
async fn fresh(w: &World, job: Uuid) {
    use servo_sla_bot::runtime::clock::Clock;
    w.fx.set_eta(job, t0() + Duration::minutes(130), w.clock.now())
        .await;
}

fn pages_to(app: &TestApp, user: &str) -> usize {
    app.slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == user && c.body.to_string().contains("You are paged"))
        .count()
}

/// One post per alert, and no message twice anywhere (the same text in the
/// same place).
fn assert_no_duplicates(app: &TestApp, n: u32) {
    let messages = app.slack.messages();
    // The at-risk job's alert (another job's own alert, once, is fine).
    let roots: Vec<&str> = messages
        .iter()
        .filter(|m| m.channel == CHANNEL && m.thread_ts.is_none())
        .map(|m| m.text.as_str())
        .filter(|t| t.contains("revenue_daily"))
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "crash point {n}: one post per alert: {roots:#?}"
    );
    assert_nothing_twice(app, n);
}

/// No message twice anywhere (the same text in the same place).
fn assert_nothing_twice(app: &TestApp, n: u32) {
    let mut seen: HashMap<(String, Option<String>, String), usize> = HashMap::new();
    for m in app.slack.messages() {
        *seen.entry((m.channel, m.thread_ts, m.text)).or_default() += 1;
    }
    let twice: Vec<_> = seen.into_iter().filter(|(_, k)| *k > 1).collect();
    assert!(twice.is_empty(), "crash point {n}: sent twice: {twice:#?}");
}

fn click(user: &str, action_id: &str, value: &str) -> Click {
    common::slack_ui::decoded_click(user, action_id, value)
}

async fn alert_id(app: &TestApp, job: Uuid) -> String {
    app.state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Opening an alert, starting its escalation and paging tier 1: one poll.
async fn open_and_page(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        let poller = Poller {
            state: w.app.state.clone(),
        };
        let (_, fired) = failing_at(n, poller.tick()).await;
        carry_on(&w, job).await;
        assert_no_duplicates(&w.app, n);
        for user in ["U0ONCALL1", "U0ONCALL2"] {
            assert_eq!(
                pages_to(&w.app, user),
                1,
                "crash point {n}: {user} paged once"
            );
        }
        if !fired {
            assert!(n > 5, "the flow ran statements");
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn opening_an_alert_and_paging_survive_a_stop_at_every_statement_on_sqlite() {
    open_and_page(Backend::Sqlite).await;
}

#[tokio::test]
async fn opening_an_alert_and_paging_survive_a_stop_at_every_statement_on_postgres() {
    open_and_page(Backend::Postgres).await;
}

/// An escalation step (tier 2, due after tier 1's wait).
async fn a_step(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        w.app.poll().await;
        let alert = alert_id(&w.app, job).await;
        w.clock.advance(Duration::minutes(15));
        fresh(&w, job).await;
        let esc = w
            .app
            .state
            .store
            .get_escalation(&alert)
            .await
            .unwrap()
            .unwrap();
        let payload = json!({ "epoch": esc.epoch, "tier": esc.tier, "round": esc.round });
        let state = w.app.state.clone();
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::flows::escalation::step(&state, &alert, &payload).await
        })
        .await;
        carry_on(&w, job).await;
        assert_no_duplicates(&w.app, n);
        assert_eq!(
            pages_to(&w.app, "U0PLATLEAD"),
            1,
            "crash point {n}: tier 2 paged once: {:#?} {:#?} {:?}",
            w.app.state.store.list_timers(None).await.unwrap(),
            w.app.state.store.get_escalation(&alert).await.unwrap(),
            w.app
                .slack
                .calls()
                .iter()
                .map(|c| (
                    c.method.clone(),
                    c.outcome.clone(),
                    c.body["channel"].clone()
                ))
                .collect::<Vec<_>>()
        );
        assert_eq!(pages_to(&w.app, "U0ONCALL1"), 1, "crash point {n}");
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn an_escalation_step_survives_a_stop_at_every_statement_on_sqlite() {
    a_step(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_escalation_step_survives_a_stop_at_every_statement_on_postgres() {
    a_step(Backend::Postgres).await;
}

/// Acknowledge: whatever point the click stopped at (and the person clicks
/// again, as they would if told it failed), the path stops, and everything
/// the acknowledgement decides is there once: the alert says who, the
/// thread says so, PagerDuty's incident is acknowledged, and the audit log
/// has it.
async fn acknowledge(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let (w, pd) = world_with_pagerduty(backend).await;
        let job = w.fx.job(critical_low()).await;
        w.app.poll().await;
        let alert = alert_id(&w.app, job).await;
        let key = format!("servo-sla-bot-{alert}");
        assert_eq!(pd_events(&pd, "trigger", &key), 1, "tier 1 triggered");
        let state = w.app.state.clone();
        let c = click("U0ONCALL1", "alert_ack", &alert);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::acknowledge::run(&state, &c).await
        })
        .await;
        carry_on(&w, job).await;
        // The person clicks again if they were told it failed.
        servo_sla_bot::actions::acknowledge::run(&w.app.state, &c).await;
        w.app.drain_outbox().await;
        advance(&w.app, &w.clock, 60).await;
        fresh(&w, job).await;
        w.app.poll().await;
        let a = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
        assert_eq!(a.acked_by.as_deref(), Some("U0ONCALL1"), "crash point {n}");
        assert_eq!(
            pages_to(&w.app, "U0PLATLEAD"),
            0,
            "crash point {n}: the path stopped"
        );
        let esc = w.app.state.store.get_escalation(&alert).await.unwrap();
        assert_eq!(
            esc.map(|e| e.status).as_deref(),
            Some("acknowledged"),
            "crash point {n}"
        );
        assert_eq!(
            pd_events(&pd, "acknowledge", &key),
            1,
            "crash point {n}: PagerDuty's incident acknowledged once: {:#?}",
            pd.events()
        );
        assert_eq!(
            replies_with(&w.app, "Acknowledged by <@U0ONCALL1>"),
            1,
            "crash point {n}: the thread says who acknowledged, once"
        );
        assert!(
            alert_message(&w.app)
                .to_string()
                .contains("Acknowledged by <@U0ONCALL1>"),
            "crash point {n}: the alert shows who acknowledged"
        );
        assert_eq!(
            audited(&w.app, job, "acknowledge", "ok").await,
            1,
            "crash point {n}: audited once"
        );
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn acknowledge_survives_a_stop_at_every_statement_on_sqlite() {
    acknowledge(Backend::Sqlite).await;
}

#[tokio::test]
async fn acknowledge_survives_a_stop_at_every_statement_on_postgres() {
    acknowledge(Backend::Postgres).await;
}

/// Resolving: the job completes; the alert says so once and paging stops.
async fn resolve(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        w.app.poll().await;
        w.fx.update_job(
            job,
            "state = 'completed', completed_partitions = 100, completed_at = now()",
        )
        .await;
        let poller = Poller {
            state: w.app.state.clone(),
        };
        let (_, fired) = failing_at(n, poller.tick()).await;
        carry_on(&w, job).await;
        advance(&w.app, &w.clock, 60).await;
        let resolved = w
            .app
            .slack
            .ok_calls_to("chat.update")
            .iter()
            .filter(|c| {
                c.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Resolved"))
            })
            .count();
        assert!(resolved >= 1, "crash point {n}: the alert says it resolved");
        assert_eq!(
            pages_to(&w.app, "U0PLATLEAD"),
            0,
            "crash point {n}: paging stopped"
        );
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn resolving_survives_a_stop_at_every_statement_on_sqlite() {
    resolve(Backend::Sqlite).await;
}

#[tokio::test]
async fn resolving_survives_a_stop_at_every_statement_on_postgres() {
    resolve(Backend::Postgres).await;
}

/// Approving an extension: Servo's deadline moves once, by the approval,
/// whatever point the decision stopped at (or the stakeholder's second
/// click, if they were told it failed).
async fn approve(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        w.app.poll().await;
        let answer = w
            .app
            .slash(&format!("extend-deadline {job} +2h"), "U0PLATLEAD", CHANNEL)
            .await;
        assert_eq!(answer.status, 200);
        w.app.drain_outbox().await;
        let approval = w
            .app
            .state
            .store
            .pending_approval_for_job("acme", &job.to_string())
            .await
            .unwrap()
            .expect("a pending request");
        let version: i32 = w.fx.job_field(job, "version").await;
        let state = w.app.state.clone();
        let c = click("U0PRODOWNER", "extension_approve", &approval.id);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::extension::decide(&state, &c, true, None).await
        })
        .await;
        carry_on(&w, job).await;
        let fresh = w
            .app
            .state
            .store
            .get_approval(&approval.id)
            .await
            .unwrap()
            .unwrap();
        if fresh.status.as_str() == "pending" {
            // Stopped before deciding: the stakeholder clicks again.
            servo_sla_bot::actions::extension::decide(&w.app.state, &c, true, None).await;
            carry_on(&w, job).await;
        }
        let deadline: chrono::DateTime<chrono::Utc> = w.fx.job_field(job, "sla_deadline_at").await;
        assert_eq!(
            deadline,
            t0() + Duration::minutes(240),
            "crash point {n}: the extension is applied"
        );
        assert_eq!(
            w.fx.job_field::<i32>(job, "version").await,
            version + 1,
            "crash point {n}: applied once"
        );
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn approving_an_extension_survives_a_stop_at_every_statement_on_sqlite() {
    approve(Backend::Sqlite).await;
}

#[tokio::test]
async fn approving_an_extension_survives_a_stop_at_every_statement_on_postgres() {
    approve(Backend::Postgres).await;
}

/// An extension request made and waiting in the alert's thread.
async fn requested(w: &World, job: Uuid) -> servo_sla_bot::store::Approval {
    w.app.poll().await;
    let answer = w
        .app
        .slash(&format!("extend-deadline {job} +2h"), "U0PLATLEAD", CHANNEL)
        .await;
    assert_eq!(answer.status, 200);
    w.app.drain_outbox().await;
    w.app
        .state
        .store
        .pending_approval_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .expect("a pending request")
}

/// Requesting an extension over an earlier request: a stop anywhere leaves
/// either nothing (the requester asks again) or all of it: one pending
/// request, posted once, its stakeholder told once, its expiry scheduled,
/// the request audited; the earlier one superseded with its buttons closed.
async fn request_over_an_earlier_one(backend: Backend) {
    use servo_sla_bot::domain::deadline::DeadlineSpec;
    use servo_sla_bot::domain::job_id::JobId;
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        let earlier = requested(&w, job).await;
        let state = w.app.state.clone();
        let tenant = state.config.tenant("acme").expect("acme").clone();
        let ask = || {
            servo_sla_bot::flows::extension_decisions::request(
                &state,
                &tenant,
                JobId::parse(&job.to_string()).unwrap(),
                DeadlineSpec::parse("+3h").unwrap(),
                Some("month-end".into()),
                "U0PLATLEAD",
                "test",
            )
        };
        let (_, fired) = failing_at(n, ask()).await;
        carry_on(&w, job).await;
        let pending = w
            .app
            .state
            .store
            .pending_approval_for_job("acme", &job.to_string())
            .await
            .unwrap()
            .expect("a pending request");
        if pending.id == earlier.id {
            // Stopped before it was recorded: the requester asks again.
            ask().await.expect("asked again");
            carry_on(&w, job).await;
        }
        let pending = w
            .app
            .state
            .store
            .pending_approval_for_job("acme", &job.to_string())
            .await
            .unwrap()
            .expect("a pending request");
        assert_ne!(pending.id, earlier.id, "crash point {n}");
        assert_eq!(
            pending.proposed_deadline,
            t0() + Duration::minutes(300),
            "crash point {n}"
        );
        let old = w
            .app
            .state
            .store
            .get_approval(&earlier.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.status.as_str(), "superseded", "crash point {n}");
        let timers = w
            .app
            .state
            .store
            .list_timers(Some(&pending.id))
            .await
            .unwrap();
        assert_eq!(
            timers.iter().filter(|t| t.status == "pending").count(),
            1,
            "crash point {n}: its expiry"
        );
        let old_timers = w
            .app
            .state
            .store
            .list_timers(Some(&earlier.id))
            .await
            .unwrap();
        assert!(
            old_timers.iter().all(|t| t.status != "pending"),
            "crash point {n}: the superseded one's expiry is cancelled"
        );
        let superseded = w
            .app
            .slack
            .ok_calls_to("chat.update")
            .iter()
            .filter(|c| c.body.to_string().contains("Superseded by a newer request"))
            .count();
        assert!(superseded >= 1, "crash point {n}: the old request closed");
        let dms = w
            .app
            .slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.body["channel"] == "U0PRODOWNER")
            .filter(|c| c.body.to_string().contains(&pending.id))
            .count();
        assert_eq!(dms, 1, "crash point {n}: the stakeholder is told once");
        assert_eq!(
            audited(&w.app, job, "request_extension", "ok").await,
            2,
            "crash point {n}: both requests audited"
        );
        // A stop at the read of the job's alert leaves the request without
        // its thread: it is posted in the channel instead, once.
        assert_nothing_twice(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn requesting_an_extension_survives_a_stop_at_every_statement_on_sqlite() {
    request_over_an_earlier_one(Backend::Sqlite).await;
}

#[tokio::test]
async fn requesting_an_extension_survives_a_stop_at_every_statement_on_postgres() {
    request_over_an_earlier_one(Backend::Postgres).await;
}

/// Rejecting an extension: Servo's deadline never moves, the request ends
/// rejected, and the thread says so once.
async fn reject(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        let approval = requested(&w, job).await;
        let version: i32 = w.fx.job_field(job, "version").await;
        let state = w.app.state.clone();
        let c = click("U0PRODOWNER", "extension_reject", &approval.id);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::extension::decide(
                &state,
                &c,
                false,
                Some("not this week".into()),
            )
            .await
        })
        .await;
        carry_on(&w, job).await;
        let now = w
            .app
            .state
            .store
            .get_approval(&approval.id)
            .await
            .unwrap()
            .unwrap();
        if now.status.as_str() == "pending" {
            // Stopped before deciding: the stakeholder clicks again.
            servo_sla_bot::actions::extension::decide(
                &w.app.state,
                &c,
                false,
                Some("not this week".into()),
            )
            .await;
            carry_on(&w, job).await;
        }
        let now = w
            .app
            .state
            .store
            .get_approval(&approval.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.status.as_str(), "rejected", "crash point {n}");
        let deadline: chrono::DateTime<chrono::Utc> = w.fx.job_field(job, "sla_deadline_at").await;
        assert_eq!(deadline, t0() + Duration::minutes(120), "crash point {n}");
        assert_eq!(
            w.fx.job_field::<i32>(job, "version").await,
            version,
            "crash point {n}: Servo untouched"
        );
        let said = w
            .app
            .slack
            .messages()
            .iter()
            .filter(|m| m.thread_ts.is_some() && m.text.contains("Rejected by"))
            .count();
        assert_eq!(said, 1, "crash point {n}: the thread says it once");
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn rejecting_an_extension_survives_a_stop_at_every_statement_on_sqlite() {
    reject(Backend::Sqlite).await;
}

#[tokio::test]
async fn rejecting_an_extension_survives_a_stop_at_every_statement_on_postgres() {
    reject(Backend::Postgres).await;
}

/// The jobs Servo holds for an asset other than the at-risk one's.
async fn jobs_of(w: &World, asset: &str) -> Vec<(Uuid, i32, String)> {
    sqlx::query_as("SELECT id, priority, state FROM backfill_jobs WHERE asset_name = $1")
        .bind(asset)
        .fetch_all(&w.fx.admin)
        .await
        .unwrap()
}

/// Recreating at priority 10: Servo holds exactly one new job, the old one
/// is cancelled, and the alert follows the new job (one post, no second
/// alert for it).
async fn recreate(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        w.app.poll().await;
        let alert = alert_id(&w.app, job).await;
        let asset: String = w.fx.job_field(job, "asset_name").await;
        let state = w.app.state.clone();
        let c = click("U0PLATLEAD", "mitigate_recreate", &alert);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::mitigations::recreate(&state, &c).await
        })
        .await;
        carry_on(&w, job).await;
        if w.fx.job_field::<String>(job, "state").await != "cancelled" {
            // Stopped before Servo recreated it: the operator clicks again.
            servo_sla_bot::actions::mitigations::recreate(&w.app.state, &c).await;
            carry_on(&w, job).await;
        }
        let jobs = jobs_of(&w, &asset).await;
        let new: Vec<_> = jobs.iter().filter(|(id, _, _)| *id != job).collect();
        assert_eq!(new.len(), 1, "crash point {n}: recreated once: {jobs:?}");
        assert_eq!(new[0].1, 10, "crash point {n}");
        assert_eq!(w.fx.job_field::<String>(job, "state").await, "cancelled");
        let a = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
        assert_eq!(
            a.job_id,
            new[0].0.to_string(),
            "crash point {n}: the alert follows the new job"
        );
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn recreating_survives_a_stop_at_every_statement_on_sqlite() {
    recreate(Backend::Sqlite).await;
}

#[tokio::test]
async fn recreating_survives_a_stop_at_every_statement_on_postgres() {
    recreate(Backend::Postgres).await;
}

/// A lower-priority job with a later deadline: what Pause lower-priority
/// jobs offers.
fn lower() -> JobSpec {
    JobSpec {
        asset: "costs".into(),
        priority: 3,
        deadline: Some(t0() + Duration::hours(8)),
        ..JobSpec::default()
    }
}

async fn pause(w: &World, alert: &str, candidate: Uuid) {
    servo_sla_bot::actions::mitigations::confirm_pause(
        &w.app.state,
        "U0PLATLEAD",
        &json!({ "alert_id": alert, "channel": CHANNEL, "kind": "pause_lower" }),
        vec![candidate.to_string()],
    )
    .await
}

/// Pausing lower-priority jobs: the job is paused once, and the bot knows
/// it paused it (Resume offers it).
async fn pause_lower(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        let other = w.fx.job(lower()).await;
        w.app.poll().await;
        let alert = alert_id(&w.app, job).await;
        let state = w.app.state.clone();
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::mitigations::confirm_pause(
                &state,
                "U0PLATLEAD",
                &json!({ "alert_id": alert, "channel": CHANNEL, "kind": "pause_lower" }),
                vec![other.to_string()],
            )
            .await
        })
        .await;
        carry_on(&w, job).await;
        if w.fx.job_field::<String>(other, "state").await != "paused" {
            // Stopped before Servo paused it: the operator confirms again.
            pause(&w, &alert, other).await;
            carry_on(&w, job).await;
        }
        assert_eq!(w.fx.job_field::<String>(other, "state").await, "paused");
        assert_eq!(
            w.fx.job_field::<i32>(other, "version").await,
            2,
            "crash point {n}: paused once"
        );
        let paused = w.app.state.store.paused_for_alert(&alert).await.unwrap();
        assert_eq!(
            paused,
            vec![other.to_string()],
            "crash point {n}: the bot knows it paused it"
        );
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn pausing_lower_priority_jobs_survives_a_stop_at_every_statement_on_sqlite() {
    pause_lower(Backend::Sqlite).await;
}

#[tokio::test]
async fn pausing_lower_priority_jobs_survives_a_stop_at_every_statement_on_postgres() {
    pause_lower(Backend::Postgres).await;
}

/// Resuming what the bot paused: resumed once in Servo, and nothing is left
/// to resume.
async fn resume(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        let other = w.fx.job(lower()).await;
        w.app.poll().await;
        let alert = alert_id(&w.app, job).await;
        pause(&w, &alert, other).await;
        w.app.drain_outbox().await;
        assert_eq!(w.fx.job_field::<String>(other, "state").await, "paused");
        let state = w.app.state.clone();
        let c = click("U0PLATLEAD", "mitigate_resume_paused", &alert);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::mitigations::resume_paused(&state, &c).await
        })
        .await;
        carry_on(&w, job).await;
        if !w
            .app
            .state
            .store
            .paused_for_alert(&alert)
            .await
            .unwrap()
            .is_empty()
        {
            // Not recorded as resumed: the button is still there; clicked again.
            servo_sla_bot::actions::mitigations::resume_paused(&w.app.state, &c).await;
            carry_on(&w, job).await;
        }
        assert_eq!(
            w.fx.job_field::<String>(other, "state").await,
            "resuming",
            "crash point {n}"
        );
        assert_eq!(
            w.fx.job_field::<i32>(other, "version").await,
            3,
            "crash point {n}: resumed once"
        );
        assert!(w
            .app
            .state
            .store
            .paused_for_alert(&alert)
            .await
            .unwrap()
            .is_empty());
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn resuming_survives_a_stop_at_every_statement_on_sqlite() {
    resume(Backend::Sqlite).await;
}

#[tokio::test]
async fn resuming_survives_a_stop_at_every_statement_on_postgres() {
    resume(Backend::Postgres).await;
}

/// The weekly review: posted once for its week, whatever point the review
/// stopped at (the next poll writes what is missing).
async fn weekly_review(backend: Backend) {
    use chrono::TimeZone;
    use servo_sla_bot::runtime::clock::Clock;
    let monday = chrono::Utc.with_ymd_and_hms(2026, 11, 9, 8, 0, 0).unwrap();
    for n in 1..=MAX_POINTS {
        let fx = ServoFixture::start().await;
        let clock = ManualClock::new(monday);
        let mut spec = Spawn::new(backend)
            .manual_clock(&clock)
            .servo_url(&fx.bot_url());
        spec.config = format!(
            "{}\n[review]\nweekly = true\nday = \"monday\"\nat = \"09:00\"\ncharts = false\n",
            common::bot::CONFIG
        );
        let app = spawn(spec).await;
        fx.job(JobSpec {
            deadline: Some(monday + Duration::days(3)),
            eta: Some(monday + Duration::days(1)),
            heartbeat: Some(monday),
            ..JobSpec::default()
        })
        .await;
        app.poll().await;
        clock.advance(Duration::hours(1) + Duration::minutes(1));
        let state = app.state.clone();
        let now = clock.now();
        let (_, fired) = failing_at(n, async {
            let _ = servo_sla_bot::flows::review::weekly(&state, now).await;
        })
        .await;
        app.drain_outbox().await;
        clock.advance(Duration::minutes(1));
        app.poll().await;
        app.drain_outbox().await;
        app.poll().await;
        app.drain_outbox().await;
        let reviews = app
            .slack
            .messages()
            .into_iter()
            .filter(|m| m.text.starts_with("SLA review"))
            .count();
        assert_eq!(reviews, 1, "crash point {n}: the week's review, once");
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn the_weekly_review_survives_a_stop_at_every_statement_on_sqlite() {
    weekly_review(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_weekly_review_survives_a_stop_at_every_statement_on_postgres() {
    weekly_review(Backend::Postgres).await;
}

/// Promoting a quiet notice to the job's alert: the notice's message becomes
/// the alert, in one poll, stopped at each of its statements. Whatever the
/// stop, the channel keeps one message for the job (the notice's, now the
/// alert), the thread says once why it went at risk, and nothing is sent
/// twice.
async fn promoting_a_notice(backend: Backend) {
    use servo_sla_bot::runtime::clock::Clock;
    for n in 1..=MAX_POINTS {
        let fx = ServoFixture::start().await;
        let clock = ManualClock::new(t0());
        let mut spec = Spawn::new(backend)
            .manual_clock(&clock)
            .servo_url(&fx.bot_url());
        spec.config = format!(
            "{}\n[buffers]\ncritical = 0.10\nstandard = 0.20\nhysteresis = 0.05\n[review]\nweekly = false\ncharts = false\n",
            common::bot::CONFIG
        );
        let app = spawn(spec).await;
        app.slack
            .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
        // Standard tier, started an hour ago, deadline in an hour: ETA 50 min
        // leaves a 9% buffer (under 20%), a quiet notice.
        let job = fx
            .job(JobSpec {
                started: Some(t0() - Duration::minutes(60)),
                deadline: Some(t0() + Duration::minutes(60)),
                eta: Some(t0() + Duration::minutes(50)),
                heartbeat: Some(t0()),
                ..JobSpec::default()
            })
            .await;
        app.poll().await;
        app.drain_outbox().await;
        let roots = |app: &TestApp| -> Vec<common::fake_slack::Message> {
            app.slack
                .messages()
                .into_iter()
                .filter(|m| m.channel == CHANNEL && m.thread_ts.is_none())
                .collect()
        };
        let notice = roots(&app);
        assert_eq!(notice.len(), 1, "the notice: {notice:?}");
        // First seen with a 9% buffer: a tight-deadline notice.
        assert!(
            notice[0].text.contains("Tight deadline"),
            "{}",
            notice[0].text
        );
        // At risk: ETA 20 min past the deadline.
        clock.advance(Duration::minutes(1));
        fx.set_eta(job, t0() + Duration::minutes(80), clock.now())
            .await;
        let poller = Poller {
            state: app.state.clone(),
        };
        let (_, fired) = failing_at(n, poller.tick()).await;
        // Carry on: deliver, then poll again a minute later (past the
        // repair pass's settling time), and deliver.
        app.drain_outbox().await;
        clock.advance(Duration::minutes(1));
        fx.set_eta(job, t0() + Duration::minutes(80), clock.now())
            .await;
        app.poll().await;
        advance(&app, &clock, 0).await;
        app.drain_outbox().await;
        let now_roots = roots(&app);
        assert_eq!(
            now_roots.len(),
            1,
            "crash point {n}: one message for the job: {now_roots:#?}"
        );
        let alert = app
            .state
            .store
            .open_alert_for_job("acme", &job.to_string())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("crash point {n}: the alert is open"));
        assert_eq!(
            alert.ts.as_deref(),
            Some(notice[0].ts.as_str()),
            "crash point {n}: the notice's message is the alert"
        );
        let shown = app.slack.message(CHANNEL, &notice[0].ts).unwrap();
        assert!(
            shown.text.contains("SLA risk"),
            "crash point {n}: {}",
            shown.text
        );
        let why: Vec<_> = app
            .slack
            .thread_replies(CHANNEL, &notice[0].ts)
            .into_iter()
            .filter(|m| m.text.contains("went at risk after"))
            .collect();
        assert_eq!(why.len(), 1, "crash point {n}: {why:#?}");
        assert_nothing_twice(&app, n);
        if !fired {
            assert!(n > 3, "the flow ran statements");
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn promoting_a_notice_survives_a_stop_at_every_statement_on_sqlite() {
    promoting_a_notice(Backend::Sqlite).await;
}

#[tokio::test]
async fn promoting_a_notice_survives_a_stop_at_every_statement_on_postgres() {
    promoting_a_notice(Backend::Postgres).await;
}

/// Request scaling: whatever point the click stopped at, and the person
/// clicking again (as they would when told it failed, or by a double
/// click), the platform tier is paged once, by DM and PagerDuty, the thread
/// says so once, and the audit log has it once. A stop never leaves the
/// cool-down locked with nobody paged.
async fn request_scaling(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let (w, pd) = world_with_pagerduty(backend).await;
        let job = w.fx.job(critical_low()).await;
        w.app.poll().await;
        let alert = alert_id(&w.app, job).await;
        let state = w.app.state.clone();
        let c = click("U0ONCALL1", "mitigate_scaling", &alert);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::mitigations::request_scaling(&state, &c).await
        })
        .await;
        carry_on(&w, job).await;
        servo_sla_bot::actions::mitigations::request_scaling(&w.app.state, &c).await;
        w.app.drain_outbox().await;
        let scaling_dms = w
            .app
            .slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .filter(|c| {
                c.body["channel"] == "U0PLATLEAD"
                    && c.body.to_string().contains("Emergency scaling requested")
            })
            .count();
        assert_eq!(
            scaling_dms, 1,
            "crash point {n}: the platform tier paged once"
        );
        assert_eq!(
            pd_events(&pd, "trigger", &format!("servo-sla-bot-{alert}-scaling-1")),
            1,
            "crash point {n}: PagerDuty triggered once"
        );
        assert_eq!(
            pd_events(&pd, "trigger", &format!("servo-sla-bot-{alert}-scaling-2")),
            0,
            "crash point {n}: one request"
        );
        assert_eq!(
            replies_with(&w.app, "requested emergency scaling"),
            1,
            "crash point {n}: the thread says who asked, once"
        );
        assert_eq!(
            audited(&w.app, job, "request_scaling", "ok").await,
            1,
            "crash point {n}: audited once"
        );
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn request_scaling_survives_a_stop_at_every_statement_on_sqlite() {
    request_scaling(Backend::Sqlite).await;
}

#[tokio::test]
async fn request_scaling_survives_a_stop_at_every_statement_on_postgres() {
    request_scaling(Backend::Postgres).await;
}

/// Escalate now: the button as the alert shows it (tier 1 paged, so it
/// pages tier 2), clicked with a stop at each statement, then the same
/// button clicked again (a double click, or the person told it failed).
/// Tier 2 is paged once, the stakeholder tier never (its turn is 30 min
/// after tier 2's page), and nothing is sent twice.
async fn escalate_now(backend: Backend) {
    for n in 1..=MAX_POINTS {
        let w = world(backend).await;
        let job = w.fx.job(critical_low()).await;
        w.app.poll().await;
        let value =
            button_value(&alert_message(&w.app), "alert_escalate").expect("an Escalate now button");
        let state = w.app.state.clone();
        let c = click("U0ONCALL2", "alert_escalate", &value);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::escalate::escalate_now(&state, &c).await
        })
        .await;
        carry_on(&w, job).await;
        servo_sla_bot::actions::escalate::escalate_now(&w.app.state, &c).await;
        w.app.drain_outbox().await;
        advance(&w.app, &w.clock, 20).await;
        assert_eq!(
            pages_to(&w.app, "U0PLATLEAD"),
            1,
            "crash point {n}: tier 2 paged once"
        );
        assert_eq!(
            pages_to(&w.app, "U0PRODOWNER"),
            0,
            "crash point {n}: the stakeholder tier is not paged by a second click"
        );
        for user in ["U0ONCALL1", "U0ONCALL2"] {
            assert_eq!(pages_to(&w.app, user), 1, "crash point {n}: {user}");
        }
        assert_no_duplicates(&w.app, n);
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn escalate_now_survives_a_stop_at_every_statement_on_sqlite() {
    escalate_now(Backend::Sqlite).await;
}

#[tokio::test]
async fn escalate_now_survives_a_stop_at_every_statement_on_postgres() {
    escalate_now(Backend::Postgres).await;
}

// ------------------------------------ round 3: the people on call (issue 35)

/// A bot on a store of its own (with its own fake Slack and PagerDuty, as
/// [`world_with_pagerduty`] has them) over a Servo that one test's crash
/// points share. Creating Servo's database is half of what a crash point
/// costs, and these flows never write to Servo: each crash point puts back
/// the one thing the one before moved there, its jobs' ETAs and heartbeats.
struct Bot<'a> {
    app: TestApp,
    clock: ManualClock,
    pd: FakePagerDuty,
    fx: &'a ServoFixture,
    /// The jobs, each with the ETA Servo keeps giving it.
    jobs: &'a [(Uuid, DateTime<Utc>)],
}

impl<'a> Bot<'a> {
    async fn start(
        backend: Backend,
        fx: &'a ServoFixture,
        jobs: &'a [(Uuid, DateTime<Utc>)],
        extra: &str,
    ) -> Bot<'a> {
        let clock = ManualClock::new(t0());
        let (app, pd) = with_pagerduty(backend, fx, &clock, extra).await;
        let bot = Bot {
            app,
            clock,
            pd,
            fx,
            jobs,
        };
        bot.keep_running().await;
        bot
    }

    /// Servo's ETAs as at the start, with a heartbeat of now: every job
    /// still running as it was.
    async fn keep_running(&self) {
        use servo_sla_bot::runtime::clock::Clock;
        for (job, eta) in self.jobs {
            self.fx.set_eta(*job, *eta, self.clock.now()).await;
        }
    }

    /// [`carry_on`]: a minute later the bot polls, fires what is due and
    /// delivers, twice.
    async fn carry_on(&self) {
        self.app.drain_outbox().await;
        self.clock.advance(Duration::minutes(1));
        self.keep_running().await;
        self.app.poll().await;
        self.advance(0).await;
        self.app.poll().await;
        self.advance(0).await;
    }

    /// The clock moved on by `minutes`, what is due fired and delivered.
    async fn advance(&self, minutes: i64) {
        advance(&self.app, &self.clock, minutes).await;
    }

    /// The clock moved on by `minutes`, what is due fired, then a poll.
    async fn poll_after(&self, minutes: i64) {
        self.advance(minutes).await;
        self.keep_running().await;
        self.app.poll().await;
        self.advance(0).await;
    }
}

/// The storm's jobs: the fewest that make one with the roll-up at more
/// than one alert (`alerts.rollup_after = 1`).
const STORM_ASSETS: [&str; 2] = ["orders_hourly", "payments_daily"];

/// The roll-up at more than one alert at risk together.
const STORM_CONFIG: &str = "\n[alerts]\nrollup_after = 1\nrollup_lists = 4\n";

/// A storm at its smallest: two jobs of acme late by 40 minutes (High,
/// standard tier, deadline in an hour), at risk in the same poll.
async fn storm_jobs(fx: &ServoFixture) -> Vec<(Uuid, DateTime<Utc>)> {
    let eta = t0() + Duration::minutes(100);
    let mut jobs = Vec::new();
    for asset in STORM_ASSETS {
        let job = fx
            .job(JobSpec {
                asset: asset.into(),
                deadline: Some(t0() + Duration::minutes(60)),
                eta: Some(eta),
                heartbeat: Some(t0()),
                ..JobSpec::default()
            })
            .await;
        jobs.push((job, eta));
    }
    jobs
}

/// The roll-up's page DMs a person got (one page for all of its jobs).
fn rollup_pages_to(app: &TestApp, user: &str) -> usize {
    app.slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == user)
        .map(|c| c.body.to_string())
        .filter(|t| t.contains("You are paged") && t.contains("one page for all of its jobs"))
        .count()
}

/// The tenant's open roll-up.
async fn rollup_id(app: &TestApp) -> String {
    app.state
        .store
        .open_rollup("acme")
        .await
        .unwrap()
        .expect("an open roll-up")
        .id
}

/// An escalation (an alert's, or a roll-up's as `rollup:<id>`).
async fn escalation(app: &TestApp, subject: &str) -> servo_sla_bot::store::EscalationRow {
    app.state
        .store
        .get_escalation(subject)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{subject} has an escalation"))
}

/// Audit entries about `subject` with this action, done.
async fn audited_ok(app: &TestApp, subject: &str, action: &str) -> usize {
    app.state
        .store
        .list_audit(Some(subject), 500)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action && e.outcome == "ok")
        .count()
}

/// A storm as one incident: one message in the channel, the roll-up; each
/// job's alert posted once, in its thread; no alert of the storm paging on
/// its own; and no message twice.
async fn assert_one_rollup(app: &TestApp, n: u32) {
    let messages = app.slack.messages();
    let roots: Vec<_> = messages
        .iter()
        .filter(|m| m.channel == CHANNEL && m.thread_ts.is_none())
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "crash point {n}: one message in the channel, the roll-up: {roots:#?}"
    );
    assert!(
        roots[0].text.contains("2 jobs of acme at risk together"),
        "crash point {n}: {}",
        roots[0].text
    );
    for asset in STORM_ASSETS {
        let posts: Vec<_> = messages
            .iter()
            .filter(|m| m.channel == CHANNEL && m.text.contains(&format!(": {asset} (ETA")))
            .collect();
        assert_eq!(
            posts.len(),
            1,
            "crash point {n}: one post per alert: {posts:#?}"
        );
        assert_eq!(
            posts[0].thread_ts.as_deref(),
            Some(roots[0].ts.as_str()),
            "crash point {n}: the alert replies to the roll-up"
        );
    }
    for alert in app
        .state
        .store
        .list_open_alerts(Some("acme"))
        .await
        .unwrap()
    {
        assert_eq!(
            app.state.store.get_escalation(&alert.id).await.unwrap(),
            None,
            "crash point {n}: no alert of the storm pages on its own"
        );
    }
    assert_nothing_twice(app, n);
}

/// The poll in which a storm begins (as `open_and_page` polls): it opens
/// the roll-up, its alerts, and the roll-up's one escalation, which pages
/// the first tier. Stopped at each statement, then carried on: each person
/// of the tier holds one page, the roll-up's, and no page of a job; the
/// plan is said once and PagerDuty triggered once.
async fn storm_pages_once(backend: Backend) {
    let fx = ServoFixture::start().await;
    let jobs = storm_jobs(&fx).await;
    for n in 1..=MAX_POINTS {
        let w = Bot::start(backend, &fx, &jobs, STORM_CONFIG).await;
        let poller = Poller {
            state: w.app.state.clone(),
        };
        let (_, fired) = failing_at(n, poller.tick()).await;
        w.carry_on().await;
        assert_one_rollup(&w.app, n).await;
        for user in ["U0ONCALL1", "U0ONCALL2"] {
            assert_eq!(
                rollup_pages_to(&w.app, user),
                1,
                "crash point {n}: {user} holds the roll-up's page"
            );
            assert_eq!(
                pages_to(&w.app, user),
                1,
                "crash point {n}: {user} holds no page of a job"
            );
        }
        assert_eq!(pages_to(&w.app, "U0PLATLEAD"), 0, "crash point {n}");
        let rollup = rollup_id(&w.app).await;
        assert_eq!(
            pd_events(&w.pd, "trigger", &format!("servo-sla-bot-rollup:{rollup}")),
            1,
            "crash point {n}: PagerDuty triggered once: {:#?}",
            w.pd.events()
        );
        assert_eq!(
            replies_with(&w.app, "One escalation for the whole roll-up"),
            1,
            "crash point {n}: its plan, once"
        );
        if !fired {
            assert!(n > 5, "the flow ran statements");
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn a_storms_rollup_paging_survives_a_stop_at_every_statement_on_sqlite() {
    storm_pages_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_storms_rollup_paging_survives_a_stop_at_every_statement_on_postgres() {
    storm_pages_once(Backend::Postgres).await;
}

/// The roll-up's escalation step to tier 2 (what its `escalation_step`
/// timer runs, due after tier 1's wait), stopped at each statement: tier 2
/// is paged once, with the roll-up's page, and tier 1 is not paged again.
async fn rollup_step(backend: Backend) {
    let fx = ServoFixture::start().await;
    let jobs = storm_jobs(&fx).await;
    for n in 1..=MAX_POINTS {
        let w = Bot::start(backend, &fx, &jobs, STORM_CONFIG).await;
        w.app.poll().await;
        let rollup = rollup_id(&w.app).await;
        let subject = format!("rollup:{rollup}");
        w.clock.advance(Duration::minutes(15));
        w.keep_running().await;
        let esc = escalation(&w.app, &subject).await;
        assert_eq!((esc.status.as_str(), esc.tier), ("active", 1));
        let payload = json!({ "epoch": esc.epoch, "tier": esc.tier, "round": esc.round });
        let state = w.app.state.clone();
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::flows::group_paging::fire_step(&state, &rollup, &payload, None).await
        })
        .await;
        w.carry_on().await;
        assert_one_rollup(&w.app, n).await;
        assert_eq!(
            rollup_pages_to(&w.app, "U0PLATLEAD"),
            1,
            "crash point {n}: tier 2 holds the roll-up's page"
        );
        assert_eq!(
            pages_to(&w.app, "U0PLATLEAD"),
            1,
            "crash point {n}: tier 2 paged once"
        );
        for user in ["U0ONCALL1", "U0ONCALL2"] {
            assert_eq!(
                pages_to(&w.app, user),
                1,
                "crash point {n}: {user} not paged again"
            );
        }
        assert_eq!(
            pages_to(&w.app, "U0PRODOWNER"),
            0,
            "crash point {n}: tier 3's turn is 30 minutes on"
        );
        let esc = escalation(&w.app, &subject).await;
        assert_eq!(
            (esc.status.as_str(), esc.tier),
            ("active", 2),
            "crash point {n}: the path moved on once"
        );
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn a_rollups_escalation_step_survives_a_stop_at_every_statement_on_sqlite() {
    rollup_step(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_rollups_escalation_step_survives_a_stop_at_every_statement_on_postgres() {
    rollup_step(Backend::Postgres).await;
}

/// Acknowledge on the roll-up's page, stopped at each statement, then the
/// same click again (a double click, or the person told it failed): the
/// roll-up's escalation ends once, tier 2 is never paged after its wait,
/// PagerDuty's incident is acknowledged once, and the acknowledgement is
/// audited once and said once in the roll-up's thread.
async fn rollup_acknowledge(backend: Backend) {
    let fx = ServoFixture::start().await;
    let jobs = storm_jobs(&fx).await;
    for n in 1..=MAX_POINTS {
        let w = Bot::start(backend, &fx, &jobs, STORM_CONFIG).await;
        w.app.poll().await;
        let rollup = rollup_id(&w.app).await;
        let subject = format!("rollup:{rollup}");
        let key = format!("servo-sla-bot-{subject}");
        assert_eq!(pd_events(&w.pd, "trigger", &key), 1, "tier 1 triggered");
        let state = w.app.state.clone();
        let c = click("U0ONCALL1", "rollup_ack", &rollup);
        let (_, fired) = failing_at(n, async {
            servo_sla_bot::actions::rollup_ack::run(&state, &c).await
        })
        .await;
        w.carry_on().await;
        servo_sla_bot::actions::rollup_ack::run(&w.app.state, &c).await;
        w.app.drain_outbox().await;
        // Past tier 2's turn (15 minutes after tier 1's page), before the
        // jobs breach (a breach re-arms the roll-up's paging, by design).
        w.poll_after(30).await;
        assert_eq!(
            escalation(&w.app, &subject).await.status,
            "acknowledged",
            "crash point {n}"
        );
        assert_eq!(
            pages_to(&w.app, "U0PLATLEAD"),
            0,
            "crash point {n}: tier 2 never paged"
        );
        for user in ["U0ONCALL1", "U0ONCALL2"] {
            assert_eq!(pages_to(&w.app, user), 1, "crash point {n}: {user}");
        }
        assert_eq!(
            pd_events(&w.pd, "acknowledge", &key),
            1,
            "crash point {n}: PagerDuty's incident acknowledged once: {:#?}",
            w.pd.events()
        );
        assert_eq!(
            replies_with(&w.app, "<@U0ONCALL1> acknowledged the roll-up's paging"),
            1,
            "crash point {n}: said once in the roll-up's thread"
        );
        assert_eq!(
            audited_ok(&w.app, &subject, "rollup_acknowledge").await,
            1,
            "crash point {n}: audited once"
        );
        assert_one_rollup(&w.app, n).await;
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn acknowledging_a_rollups_page_survives_a_stop_at_every_statement_on_sqlite() {
    rollup_acknowledge(Backend::Sqlite).await;
}

#[tokio::test]
async fn acknowledging_a_rollups_page_survives_a_stop_at_every_statement_on_postgres() {
    rollup_acknowledge(Backend::Postgres).await;
}

/// `/backfill <text>` by U0PLATLEAD (an operator of acme) in its channel,
/// as Slack posts it; `trigger` tells one command from another.
fn slash_command(text: &str, trigger: &str) -> servo_sla_bot::commands::SlashCommand {
    servo_sla_bot::commands::SlashCommand {
        command: "/backfill".into(),
        text: text.into(),
        user_id: "U0PLATLEAD".into(),
        user_name: "lead".into(),
        channel_id: CHANNEL.into(),
        channel_name: "alerts".into(),
        team_id: "T0TEAM".into(),
        response_url: String::new(),
        trigger_id: trigger.into(),
        api_app_id: "A0APP".into(),
    }
}

/// A slash command's flow, run as the endpoint runs it: its answer's text.
async fn run_command(
    state: &servo_sla_bot::context::AppState,
    cmd: &servo_sla_bot::commands::SlashCommand,
) -> String {
    use servo_sla_bot::commands::{run, Command};
    let answer = run(state, Command::parse(&cmd.text), cmd).await;
    answer["text"].as_str().unwrap_or_default().to_string()
}

/// The silences in force in acme.
async fn silences(w: &Bot<'_>) -> Vec<servo_sla_bot::store::Silence> {
    use servo_sla_bot::runtime::clock::Clock;
    w.app
        .state
        .store
        .active_silences(Some("acme"), w.clock.now())
        .await
        .unwrap()
}

/// A silence that stops a paging escalation (`/backfill silence`, as in
/// `tests/quiet.rs`), its flow stopped at each statement, then the command
/// again: typed again (a new command) by the operator told that nothing
/// was silenced, else the same command sent again. One silence; the
/// escalation stops, its thread says so once; nothing pages while it holds
/// (tier 2's turn comes inside it); and when it is lifted the job, still at
/// risk, pages again from tier 1, once.
async fn silence_stops_paging(backend: Backend) {
    let fx = ServoFixture::start().await;
    let job = fx.job(critical_low()).await;
    let jobs = [(job, t0() + Duration::minutes(130))];
    for n in 1..=MAX_POINTS {
        let w = Bot::start(backend, &fx, &jobs, "").await;
        w.app.poll().await;
        assert_eq!(pages_to(&w.app, "U0ONCALL1"), 1, "tier 1 paged");
        let alert = alert_id(&w.app, job).await;
        let text = "silence revenue_daily 4h deploy in progress";
        let cmd = slash_command(text, "1337.42.first");
        let state = w.app.state.clone();
        let (told, fired) = failing_at(n, run_command(&state, &cmd)).await;
        w.carry_on().await;
        let again = if told.contains("nothing was silenced") {
            slash_command(text, "1337.42.again")
        } else {
            cmd
        };
        let answer = run_command(&w.app.state, &again).await;
        // Made now, or made by the stopped run and answered as the
        // silence in force: either way it names the one silence.
        assert!(
            answer.contains(":mute: Silenced asset")
                || answer.contains(":mute: Already silenced: asset"),
            "crash point {n}: {answer}"
        );
        w.app.drain_outbox().await;
        w.poll_after(20).await;
        let made = silences(&w).await;
        assert_eq!(made.len(), 1, "crash point {n}: one silence: {made:#?}");
        assert_eq!(
            escalation(&w.app, &alert).await.status,
            "stopped",
            "crash point {n}: the escalation stopped"
        );
        assert_eq!(
            pages_to(&w.app, "U0PLATLEAD"),
            0,
            "crash point {n}: nothing pages while silenced"
        );
        assert_eq!(pages_to(&w.app, "U0ONCALL1"), 1, "crash point {n}");
        assert_eq!(
            replies_with(&w.app, "The escalation stops"),
            1,
            "crash point {n}: the thread says so once"
        );
        assert!(
            alert_message(&w.app)
                .to_string()
                .contains("Silenced by <@U0PLATLEAD> until"),
            "crash point {n}: the alert shows the silence"
        );
        assert_eq!(
            audited_ok(&w.app, "revenue_daily", "silence").await,
            1,
            "crash point {n}: audited once"
        );
        assert_no_duplicates(&w.app, n);
        // Lifted: the job, still at risk, pages from tier 1 again, once
        // (its thread says so as it did the first time, in the same words).
        let lifted = run_command(
            &w.app.state,
            &slash_command(&format!("unsilence {}", made[0].id), "1337.42.lift"),
        )
        .await;
        assert!(lifted.contains("Lifted"), "crash point {n}: {lifted}");
        w.app.drain_outbox().await;
        w.poll_after(1).await;
        assert_eq!(
            replies_with(&w.app, "lifted by <@U0PLATLEAD>"),
            1,
            "crash point {n}"
        );
        for user in ["U0ONCALL1", "U0ONCALL2"] {
            assert_eq!(
                pages_to(&w.app, user),
                2,
                "crash point {n}: {user} paged again from tier 1, once"
            );
        }
        assert_eq!(pages_to(&w.app, "U0PLATLEAD"), 0, "crash point {n}");
        assert_eq!(
            replies_with(&w.app, "Paging *On-call Engineer*"),
            2,
            "crash point {n}: tier 1's page said in the thread, before and after"
        );
        if !fired {
            return;
        }
    }
    panic!("the flow never completed within {MAX_POINTS} statements");
}

#[tokio::test]
async fn a_silence_stopping_an_escalation_survives_a_stop_at_every_statement_on_sqlite() {
    silence_stops_paging(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_silence_stopping_an_escalation_survives_a_stop_at_every_statement_on_postgres() {
    silence_stops_paging(Backend::Postgres).await;
}
