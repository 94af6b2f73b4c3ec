//! The repair pass (issue 20): what a crash between two steps of a flow
//! leaves half done is put back at the next poll. Each case commits the first
//! step of a flow through the store, as a bot that died right after it would
//! have left it, then lets the bot poll.

mod common;

use chrono::Duration;
use common::bot::{spawn, Backend, Spawn, TestApp, World};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{advance, t0, thread_texts};
use servo_sla_bot::runtime::clock::{Clock, ManualClock};
use servo_sla_bot::store::NewAlert;

const CHANNEL: &str = "C0ACMEALERT";

async fn world(backend: Backend) -> (ServoFixture, TestApp, ManualClock) {
    let World { fx, app, clock } = common::bot::on_servo(backend, &["U0ONCALL1"]).await;
    (fx, app, clock)
}

/// A standard job at Low: an alert, and no paging of its own.
fn low() -> JobSpec {
    JobSpec {
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: 5,
        ..JobSpec::default()
    }
}

fn root_posts(app: &TestApp) -> usize {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == CHANNEL && m.thread_ts.is_none())
        .count()
}

fn pages_to(app: &TestApp, user: &str) -> usize {
    app.slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == user && c.body.to_string().contains("You are paged"))
        .count()
}

async fn escalation_without_its_step(backend: Backend) {
    let (fx, app, clock) = world(backend).await;
    let job = fx.job(low()).await;
    app.poll().await;
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap();
    // The bot died right after committing the escalation: no plan, no step.
    app.state
        .store
        .start_escalation(&alert.id, "acme", 0, "escalated by hand", clock.now())
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::minutes(1));
    app.poll().await;
    advance(&app, &clock, 0).await;
    assert_eq!(pages_to(&app, "U0ONCALL1"), 1, "tier 1 is paged after all");
    assert_eq!(
        app.metric(r#"servo_sla_bot_repairs_total{what="escalation_step"}"#)
            .await,
        1.0
    );
    // And the path goes on from there: tier 2 after its wait, once.
    advance(&app, &clock, 15).await;
    app.poll().await;
    assert_eq!(pages_to(&app, "U0PLATLEAD"), 1);
    assert_eq!(pages_to(&app, "U0ONCALL1"), 1, "nobody is paged twice");
}

#[tokio::test]
async fn an_escalation_left_without_its_step_pages_after_the_next_poll_on_sqlite() {
    escalation_without_its_step(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_escalation_left_without_its_step_pages_after_the_next_poll_on_postgres() {
    escalation_without_its_step(Backend::Postgres).await;
}

async fn alert_without_its_post(backend: Backend) {
    let (fx, app, _clock) = world(backend).await;
    let job = fx.job(low()).await;
    // The bot died between opening the alert and enqueueing its post.
    let (alert, _) = app
        .state
        .store
        .open_alert(
            NewAlert {
                tenant_id: "acme".into(),
                job_id: job.to_string(),
                band: servo_sla_bot::domain::risk::RiskBand::Low,
                severity: Some(0.08),
                eta: None,
                deadline: None,
                shown: None,
            },
            t0(),
        )
        .await
        .unwrap();
    app.poll().await;
    app.poll().await;
    assert_eq!(root_posts(&app), 1, "posted once");
    let alert = app.state.store.get_alert(&alert.id).await.unwrap().unwrap();
    assert!(alert.ts.is_some(), "the alert knows its message now");
    assert_eq!(
        app.metric(r#"servo_sla_bot_repairs_total{what="alert_post"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn an_open_alert_left_without_its_post_is_posted_at_the_next_poll_on_sqlite() {
    alert_without_its_post(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_open_alert_left_without_its_post_is_posted_at_the_next_poll_on_postgres() {
    alert_without_its_post(Backend::Postgres).await;
}

async fn resolution_without_its_edit(backend: Backend) {
    let (fx, app, clock) = world(backend).await;
    let job = fx.job(low()).await;
    app.poll().await;
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap();
    fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    // The bot died right after recording the resolution.
    assert!(app
        .state
        .store
        .resolve_alert(&alert.id, ":white_check_mark: Completed.", clock.now())
        .await
        .unwrap());
    clock.advance(Duration::minutes(1));
    app.poll().await;
    app.poll().await;
    let edits = app.slack.ok_calls_to("chat.update");
    assert_eq!(edits.len(), 1, "{edits:#?}");
    assert!(edits[0].body.to_string().contains("Resolved"));
    assert!(thread_texts(&app).iter().any(|t| t.contains("Completed.")));
    assert_eq!(root_posts(&app), 1);
}

#[tokio::test]
async fn a_resolution_left_without_its_edit_gets_it_at_the_next_poll_on_sqlite() {
    resolution_without_its_edit(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_resolution_left_without_its_edit_gets_it_at_the_next_poll_on_postgres() {
    resolution_without_its_edit(Backend::Postgres).await;
}

/// The weekly review is written before its week is claimed: a bot that
/// stopped in between writes it again at the next poll, and it is sent once.
#[tokio::test]
async fn a_weekly_review_whose_claim_was_lost_is_still_sent_once() {
    use chrono::TimeZone;
    let fx = ServoFixture::start().await;
    let monday = chrono::Utc.with_ymd_and_hms(2026, 11, 9, 8, 0, 0).unwrap();
    let clock = ManualClock::new(monday);
    let mut spec = Spawn::new(Backend::Sqlite)
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
    app.poll().await;
    let reviews = |app: &TestApp| {
        app.slack
            .messages()
            .into_iter()
            .filter(|m| m.text.starts_with("SLA review"))
            .count()
    };
    assert_eq!(reviews(&app), 1);
    // As if the bot had stopped after writing the review, before claiming
    // the week: the claim is gone.
    match &app.state.store {
        servo_sla_bot::store::Store::Sqlite(p) => sqlx::query("DELETE FROM reviews")
            .execute(p)
            .await
            .map(|_| ()),
        servo_sla_bot::store::Store::Postgres(p) => sqlx::query("DELETE FROM reviews")
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
    clock.advance(Duration::minutes(1));
    app.poll().await;
    assert_eq!(reviews(&app), 1, "sent once all the same");
}

/// A High revenue job (its stakeholder is U0PRODOWNER) with an extension
/// requested by an operator, +2h.
async fn requested(backend: Backend) -> (ServoFixture, TestApp, ManualClock, uuid::Uuid, String) {
    let (fx, app, clock) = world(backend).await;
    let job = fx
        .job(JobSpec {
            deadline: Some(t0() + Duration::minutes(60)),
            eta: Some(t0() + Duration::minutes(120)),
            heartbeat: Some(t0()),
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    let answer = app
        .slash(&format!("extend-deadline {job} +2h"), "U0PLATLEAD", CHANNEL)
        .await;
    assert_eq!(answer.status, 200);
    app.drain_outbox().await;
    let approval = app
        .state
        .store
        .pending_approval_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .expect("a pending request");
    (fx, app, clock, job, approval.id)
}

async fn approved_but_not_applied(backend: Backend) {
    let (fx, app, clock, job, id) = requested(backend).await;
    // The bot died after recording the approval, before writing Servo.
    app.state
        .store
        .decide_approval(&id, "approved", "U0PRODOWNER", None, clock.now())
        .await
        .unwrap()
        .unwrap();
    let before: chrono::DateTime<chrono::Utc> = fx.job_field(job, "sla_deadline_at").await;
    assert_eq!(before, t0() + Duration::minutes(60));
    clock.advance(Duration::minutes(1));
    app.poll().await;
    let after: chrono::DateTime<chrono::Utc> = fx.job_field(job, "sla_deadline_at").await;
    assert_eq!(after, t0() + Duration::minutes(180), "applied after all");
    assert!(thread_texts(&app)
        .iter()
        .any(|t| t.contains("Approved by") && t.contains("the deadline is now")));
    assert!(app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .any(
            |c| c.body["channel"] == "U0PLATLEAD" && c.body.to_string().contains("was approved by")
        ));
    assert_eq!(
        app.metric(r#"servo_sla_bot_repairs_total{what="extension_applied"}"#)
            .await,
        1.0
    );
    // The approver's decision is audited, as the click would have: once.
    let approvals = |audit: Vec<servo_sla_bot::store::AuditEntry>| {
        audit
            .into_iter()
            .filter(|e| e.action == "approve_extension")
            .map(|e| (e.actor, e.outcome))
            .collect::<Vec<_>>()
    };
    let audit = app
        .state
        .store
        .list_audit(Some(&job.to_string()), 50)
        .await
        .unwrap();
    assert_eq!(
        approvals(audit),
        [("U0PRODOWNER".to_string(), "ok".to_string())]
    );
    // Once: the next poll finds nothing left to do.
    let version: i32 = fx.job_field(job, "version").await;
    clock.advance(Duration::minutes(1));
    app.poll().await;
    assert_eq!(fx.job_field::<i32>(job, "version").await, version);
    let audit = app
        .state
        .store
        .list_audit(Some(&job.to_string()), 50)
        .await
        .unwrap();
    assert_eq!(approvals(audit).len(), 1, "audited once");
}

#[tokio::test]
async fn an_extension_approved_but_never_written_to_servo_is_applied_on_sqlite() {
    approved_but_not_applied(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_extension_approved_but_never_written_to_servo_is_applied_on_postgres() {
    approved_but_not_applied(Backend::Postgres).await;
}

#[tokio::test]
async fn an_extension_written_but_never_marked_applied_is_not_written_twice() {
    let (fx, app, clock, job, id) = requested(Backend::Sqlite).await;
    // The bot died after writing Servo, before marking it applied.
    app.state
        .store
        .decide_approval(&id, "approved", "U0PRODOWNER", None, clock.now())
        .await
        .unwrap()
        .unwrap();
    fx.update_job(
        job,
        "sla_deadline_at = sla_deadline_at + interval '2 hours', version = version + 1",
    )
    .await;
    let version: i32 = fx.job_field(job, "version").await;
    clock.advance(Duration::minutes(1));
    app.poll().await;
    assert_eq!(
        fx.job_field::<i32>(job, "version").await,
        version,
        "Servo is not written again"
    );
    assert!(thread_texts(&app)
        .iter()
        .any(|t| t.contains("Approved by") && t.contains("the deadline is now")));
}

#[tokio::test]
async fn a_request_left_without_its_post_and_expiry_gets_them() {
    let (fx, app, clock) = world(Backend::Sqlite).await;
    let job = fx
        .job(JobSpec {
            deadline: Some(t0() + Duration::minutes(60)),
            eta: Some(t0() + Duration::minutes(120)),
            heartbeat: Some(t0()),
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap();
    // The bot died right after recording the request.
    let (approval, _) = app
        .state
        .store
        .create_approval(
            servo_sla_bot::store::NewApproval {
                tenant_id: "acme".into(),
                job_id: job.to_string(),
                alert_id: Some(alert.id.clone()),
                requested_by: "U0PLATLEAD".into(),
                reason: None,
                current_deadline: t0() + Duration::minutes(60),
                proposed_deadline: t0() + Duration::minutes(180),
                expires_at: t0() + Duration::minutes(50),
            },
            clock.now(),
        )
        .await
        .unwrap();
    clock.advance(Duration::minutes(1));
    app.poll().await;
    app.poll().await;
    let requests: Vec<_> = app
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_some() && m.text.contains("extension"))
        .collect();
    assert_eq!(requests.len(), 1, "posted once, in the alert's thread");
    assert!(app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .any(|c| c.body["channel"] == "U0PRODOWNER"
            && c.body.to_string().contains("waits for your decision")));
    let timers = app
        .state
        .store
        .list_timers(Some(&approval.id))
        .await
        .unwrap();
    assert_eq!(
        timers
            .iter()
            .filter(|t| t.kind == "approval_expiry" && t.status.as_str() == "pending")
            .count(),
        1
    );
    // It expires on time.
    advance(&app, &clock, 50).await;
    let fresh = app
        .state
        .store
        .get_approval(&approval.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.status.as_str(), "expired");
}

/// Issue 33, item 2: the repair pass re-renders a resolved alert (a pause
/// begun for it and never recorded is finished, so it now offers Resume):
/// the message stays resolved and never shows its at-risk band again.
async fn repair_after_resolution(backend: Backend) {
    let (fx, app, clock) = world(backend).await;
    let job = fx.job(low()).await;
    let lower = fx
        .job(JobSpec {
            asset: "costs".into(),
            priority: 3,
            deadline: Some(t0() + chrono::Duration::hours(8)),
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap();
    let ts = alert.ts.clone().expect("posted");
    // The job recovers: resolved.
    clock.advance(Duration::minutes(1));
    fx.set_eta(job, t0() + Duration::minutes(90), clock.now())
        .await;
    app.poll().await;
    let resolved = app.slack.message(CHANNEL, &ts).unwrap();
    assert!(resolved.text.contains("Resolved"), "{}", resolved.text);
    // A pause the bot made in Servo for this alert and never recorded.
    app.state
        .store
        .begin_intent(
            "pause",
            &alert.id,
            "acme",
            &lower.to_string(),
            "U0PLATLEAD",
            clock.now(),
        )
        .await
        .unwrap();
    fx.update_job(lower, "state = 'paused'").await;
    clock.advance(Duration::minutes(1));
    app.poll().await;
    let m = app.slack.message(CHANNEL, &ts).unwrap();
    let shown = format!("{}{}", m.text, m.attachments);
    assert!(
        shown.contains("Resume 1 paused job"),
        "the repair pass offers Resume: {shown}"
    );
    assert!(m.text.contains("Resolved"), "{}", m.text);
    for at_risk in [
        "Low SLA risk",
        "Medium SLA risk",
        "High SLA risk",
        "SLA breached",
        "large_yellow_circle",
        "Nothing stands out",
    ] {
        assert!(
            !shown.contains(at_risk),
            "the resolved alert turned back into an at-risk one ({at_risk}): {shown}"
        );
    }
    // The paused job may go at risk on its own; this job has one message.
    let about_the_job = app
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none() && m.attachments.to_string().contains(&job.to_string()))
        .count();
    assert_eq!(about_the_job, 1);
}

#[tokio::test]
async fn a_repair_pass_after_the_resolution_keeps_the_alert_resolved_on_sqlite() {
    repair_after_resolution(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_repair_pass_after_the_resolution_keeps_the_alert_resolved_on_postgres() {
    repair_after_resolution(Backend::Postgres).await;
}

/// Issue 33, item 6: an open alert whose only message was never delivered
/// (the edit that was to make a quiet notice its message, refused for good:
/// the notice was deleted) counts as not posted: the next poll posts it.
async fn undelivered_post(backend: Backend) {
    let (fx, app, clock) = world(backend).await;
    let job = fx.job(low()).await;
    let (stopped, slack) = app.stop_parts().await;
    let store = stopped.store().await;
    let (alert, _) = store
        .open_alert(
            NewAlert {
                tenant_id: "acme".into(),
                job_id: job.to_string(),
                band: servo_sla_bot::domain::risk::RiskBand::Low,
                severity: Some(0.08),
                eta: None,
                deadline: None,
                shown: None,
            },
            t0(),
        )
        .await
        .unwrap();
    // The promotion's edit, refused by Slack for good.
    let mut edit = servo_sla_bot::store::NewOutboxMessage::call(
        "chat.update",
        serde_json::json!({ "text": "Low SLA risk", "channel": CHANNEL, "ts": "1700000000.000001" }),
        format!("alert:{}:post", alert.id),
    );
    edit.ordering_key = Some(alert.id.clone());
    edit.link_kind = Some("alert".into());
    edit.link_id = Some(alert.id.clone());
    let row = store.enqueue(edit, t0()).await.unwrap().unwrap();
    let claimed = store
        .claim_due_outbox("gone", t0(), Duration::seconds(15), 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, row);
    assert!(store
        .mark_outbox_failed(
            row,
            "gone",
            "Slack refused chat.update: message_not_found",
            t0()
        )
        .await
        .unwrap());
    let app = common::bot::start_again(stopped, slack).await;
    clock.advance(Duration::minutes(1));
    app.poll().await;
    app.poll().await;
    assert_eq!(root_posts(&app), 1, "posted once");
    let alert = app.state.store.get_alert(&alert.id).await.unwrap().unwrap();
    assert!(alert.ts.is_some(), "the alert knows its message now");
    assert_eq!(
        app.metric(r#"servo_sla_bot_repairs_total{what="alert_post"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn an_open_alert_whose_only_message_was_refused_is_posted_at_the_next_poll_on_sqlite() {
    undelivered_post(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_open_alert_whose_only_message_was_refused_is_posted_at_the_next_poll_on_postgres() {
    undelivered_post(Backend::Postgres).await;
}

/// A pause the bot began and Servo never made (a stop, or Servo not
/// answering) is not made by the repair pass once the alert has resolved:
/// the job it was to make room for no longer needs it. Recorded as not made,
/// said in the thread; the other job keeps running.
async fn no_late_pause_after_resolution(backend: Backend) {
    let (fx, app, clock) = world(backend).await;
    let job = fx.job(low()).await;
    let lower = fx
        .job(JobSpec {
            asset: "costs".into(),
            priority: 3,
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap();
    // The job recovers as the pause is begun, before the repair pass looks.
    clock.advance(Duration::minutes(1));
    app.state
        .store
        .begin_intent(
            "pause",
            &alert.id,
            "acme",
            &lower.to_string(),
            "U0PLATLEAD",
            clock.now(),
        )
        .await
        .unwrap();
    fx.set_eta(job, t0() + Duration::minutes(90), clock.now())
        .await;
    app.poll().await;
    assert!(!app
        .state
        .store
        .get_alert(&alert.id)
        .await
        .unwrap()
        .unwrap()
        .is_open());
    clock.advance(Duration::minutes(1));
    app.poll().await;
    app.drain_outbox().await;
    assert_eq!(
        fx.job_field::<String>(lower, "state").await,
        "running",
        "not paused for a resolved alert"
    );
    assert!(app
        .state
        .store
        .applying_intents(clock.now() + Duration::minutes(5))
        .await
        .unwrap()
        .is_empty());
    let said = app
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_some())
        .any(|m| m.text.contains("was not made") && m.text.contains("resolved"));
    assert!(said, "the thread says why");
}

#[tokio::test]
async fn the_repair_pass_makes_no_pause_for_an_alert_that_resolved_on_sqlite() {
    no_late_pause_after_resolution(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_repair_pass_makes_no_pause_for_an_alert_that_resolved_on_postgres() {
    no_late_pause_after_resolution(Backend::Postgres).await;
}
