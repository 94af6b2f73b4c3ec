//! Crash points (issue 20): each flow runs with its Nth store statement
//! failing (`store::fault::failing_at`), N = 1, 2, … until it completes, as
//! if the bot had stopped there. Then the bot carries on (polls, fires what is
//! due, delivers), and the invariants must hold: one post per alert, one page
//! per person and tier, each extension applied once, no message twice.

mod common;

use chrono::Duration;
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
    let pd = FakePagerDuty::start().await;
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
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
        );
    let app = spawn(spec).await;
    app.slack
        .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
    (World { fx, app, clock }, pd)
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
