//! The alert's mitigation buttons, clicked as Slack sends them, checked in
//! Servo's tables and in what the bot posted.

mod common;

use common::slack_ui::{alert_message, buttons, t0, thread_texts, told_all};

use chrono::{DateTime, Duration, Utc};
use common::bot::{Backend, TestApp, World};
use common::servo_fixture::{JobSpec, ServoFixture};
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::Clock;
use servo_sla_bot::workers::timer_worker::TimerWorker;
use uuid::Uuid;

const OPERATOR: &str = "U0PLATLEAD";
const CHANNEL: &str = "C0ACMEALERT";

async fn world(backend: Backend) -> World {
    common::bot::on_servo(backend, &["U0ONCALL1"]).await
}

/// A job whose ETA is `late` minutes past a deadline 60 minutes away.
fn at_risk(late_minutes: i64, priority: i32) -> JobSpec {
    JobSpec {
        deadline: Some(t0() + Duration::minutes(60)),
        eta: Some(t0() + Duration::minutes(60 + late_minutes)),
        heartbeat: Some(t0()),
        priority,
        ..JobSpec::default()
    }
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

fn click(app: &TestApp, user: &str, action_id: &str, value: &str) -> Value {
    common::slack_ui::fresh_click_in(app, CHANNEL, user, action_id, value)
}

#[tokio::test]
async fn each_band_offers_its_runbook_mitigations() {
    let w = world(Backend::Sqlite).await;
    let low =
        w.fx.job(JobSpec {
            asset: "a_low".into(),
            ..at_risk(6, 5)
        })
        .await;
    let medium =
        w.fx.job(JobSpec {
            asset: "a_medium".into(),
            ..at_risk(18, 5)
        })
        .await;
    let high =
        w.fx.job(JobSpec {
            asset: "a_high".into(),
            ..at_risk(60, 5)
        })
        .await;
    let top =
        w.fx.job(JobSpec {
            asset: "a_top".into(),
            ..at_risk(60, 10)
        })
        .await;
    w.app.poll().await;
    let posts = w.app.slack.ok_calls_to("chat.postMessage");
    let of = |id: Uuid| {
        buttons(
            &posts
                .iter()
                .find(|p| p.body.to_string().contains(&id.to_string()))
                .unwrap()
                .body,
        )
    };
    assert_eq!(
        of(low),
        [
            "alert_ack",
            "mitigate_monitor",
            "mitigate_defer",
            "alert_escalate",
            "alert_silence",
            "alert_silence",
            "alert_silence",
            "alert_silence",
        ],
        "the menu: the quick silences and Silence…"
    );
    assert_eq!(
        of(medium),
        [
            "alert_ack",
            "mitigate_pause_lower",
            "extension_request",
            "alert_escalate",
            "alert_silence",
            "alert_silence",
            "alert_silence",
            "alert_silence",
        ]
    );
    assert_eq!(
        of(high),
        [
            "alert_ack",
            "mitigate_recreate",
            "mitigate_scaling",
            "mitigate_notify",
            "alert_escalate",
            "extension_request",
            "alert_silence",
            "alert_silence",
            "incident_channel_open",
            "alert_silence",
        ],
        "five buttons at most in the row; the rest in its overflow menu"
    );
    assert_eq!(
        of(top),
        [
            "alert_ack",
            "mitigate_scaling",
            "mitigate_notify",
            "extension_request",
            "alert_escalate",
            "alert_silence",
            "alert_silence",
            "alert_silence",
            "incident_channel_open",
            "alert_silence",
        ],
        "no recreate at priority 10"
    );
    let high_post = posts
        .iter()
        .find(|p| p.body.to_string().contains(&high.to_string()))
        .unwrap();
    assert!(
        high_post
            .body
            .to_string()
            .contains("Recreate at priority 10?"),
        "recreate asks to confirm first"
    );
}

#[tokio::test]
async fn monitor_closely_checks_in_until_stopped_and_says_loudly_when_worse() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(6, 5)).await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_monitor", &alert))
        .await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_monitor", &alert))
        .await;
    w.app.drain_outbox().await;
    let timers = w.app.state.store.list_timers(Some(&alert)).await.unwrap();
    assert_eq!(
        timers.iter().filter(|t| t.status == "pending").count(),
        1,
        "a double click schedules once"
    );
    assert!(buttons(&alert_message(&w.app)).contains(&"mitigate_stop_monitor".to_string()));
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("monitoring this closely")));

    let timers = TimerWorker {
        state: w.app.state.clone(),
        worker_id: "t".into(),
    };
    w.clock.advance(Duration::minutes(14));
    assert_eq!(timers.tick().await.unwrap(), 0);
    w.fx.update_job(job, "completed_partitions = 55").await;
    w.clock.advance(Duration::minutes(1));
    assert_eq!(timers.tick().await.unwrap(), 1);
    w.app.drain_outbox().await;
    let checkin = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("Check-in"))
        .expect("a check-in");
    assert!(checkin.contains("55/100"), "{checkin}");

    // It gets worse: the next check-in says so loudly.
    w.fx.set_eta(
        job,
        t0() + Duration::minutes(200),
        t0() + Duration::minutes(30),
    )
    .await;
    w.clock.advance(Duration::minutes(15));
    assert_eq!(timers.tick().await.unwrap(), 1);
    w.app.drain_outbox().await;
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains(":rotating_light: *Worse") && t.contains("<@U0PLATLEAD>")));

    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_stop_monitor", &alert))
        .await;
    w.app.drain_outbox().await;
    w.clock.advance(Duration::minutes(60));
    assert_eq!(timers.tick().await.unwrap(), 0, "no more check-ins");
    assert!(buttons(&alert_message(&w.app)).contains(&"mitigate_monitor".to_string()));
}

/// The pause dialog stayed open while the at-risk job finished: submitting
/// it pauses nothing and says why.
#[tokio::test]
async fn a_pause_confirmed_after_the_alert_resolved_pauses_nothing() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(18, 6)).await;
    let candidate =
        w.fx.job(JobSpec {
            asset: "adhoc".into(),
            priority: 1,
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_pause_lower", &alert))
        .await;
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1);
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    let submit = json!({
        "type": "view_submission",
        "user": {"id": OPERATOR},
        "view": {"id": "V1", "callback_id": "mitigate_pause", "private_metadata": views[0].view["private_metadata"],
                 "state": {"values": {"jobs": {"value": {"type": "multi_static_select",
                     "selected_options": [{"value": candidate.to_string()}]}}}}}
    });
    assert_eq!(w.app.interact(&submit).await.status, 200);
    w.app.drain_outbox().await;
    assert_eq!(
        w.fx.job_field::<String>(candidate, "state").await,
        "running"
    );
    assert!(
        told_all(&w.app).contains("resolved while the dialog was open, so nothing was paused"),
        "{}",
        told_all(&w.app)
    );
}

async fn pause_three_one_fails(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(at_risk(18, 6)).await; // Medium, priority 6
    let no_sla =
        w.fx.job(JobSpec {
            asset: "adhoc".into(),
            priority: 4,
            ..JobSpec::default()
        })
        .await;
    // No SLA, but Critical by its priority: not the runbook's non-critical.
    let _critical_no_sla =
        w.fx.job(JobSpec {
            asset: "ledger".into(),
            priority: 9,
            ..JobSpec::default()
        })
        .await;
    let later_lower =
        w.fx.job(JobSpec {
            asset: "costs".into(),
            priority: 3,
            deadline: Some(t0() + Duration::hours(8)),
            ..JobSpec::default()
        })
        .await;
    let doomed =
        w.fx.job(JobSpec {
            asset: "ads".into(),
            priority: 2,
            deadline: Some(t0() + Duration::hours(9)),
            ..JobSpec::default()
        })
        .await;
    let _not_a_candidate =
        w.fx.job(JobSpec {
            asset: "vip".into(),
            priority: 9,
            deadline: Some(t0() + Duration::hours(9)),
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_pause_lower", &alert))
        .await;
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1);
    let offered: Vec<String> = views[0].view["blocks"][1]["element"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec![
        no_sla.to_string(),
        later_lower.to_string(),
        doomed.to_string(),
    ];
    expected.sort();
    let mut got = offered.clone();
    got.sort();
    assert_eq!(got, expected, "exactly the candidates");

    // One candidate is paused by someone else before the confirmation.
    w.fx.update_job(doomed, "state = 'paused'").await;
    let selected: Vec<Value> = offered.iter().map(|v| json!({"value": v})).collect();
    let submit = json!({
        "type": "view_submission",
        "user": {"id": OPERATOR},
        "view": {"id": "V1", "callback_id": "mitigate_pause", "private_metadata": views[0].view["private_metadata"],
                 "state": {"values": {"jobs": {"value": {"type": "multi_static_select", "selected_options": selected}}}}}
    });
    assert_eq!(w.app.interact(&submit).await.status, 200);
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(no_sla, "state").await, "paused");
    assert_eq!(
        w.fx.job_field::<String>(later_lower, "state").await,
        "paused"
    );
    assert_eq!(
        w.fx.job_field::<i32>(doomed, "version").await,
        1,
        "the failed one is untouched"
    );
    let report = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("paused 2 of 3"))
        .expect("a report");
    assert!(
        report.contains("Cannot pause job in state 'paused'"),
        "{report}"
    );
    assert!(buttons(&alert_message(&w.app)).contains(&"mitigate_resume_paused".to_string()));

    // The at-risk job finishes: the resolved alert offers to resume them, once.
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    let resolved = alert_message(&w.app);
    assert_eq!(buttons(&resolved), ["mitigate_resume_paused"], "{resolved}");
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_resume_paused", &alert))
        .await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_resume_paused", &alert))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(no_sla, "state").await, "resuming");
    assert_eq!(
        w.fx.job_field::<i32>(no_sla, "version").await,
        3,
        "resumed once"
    );
    assert_eq!(
        w.fx.job_field::<String>(later_lower, "state").await,
        "resuming"
    );
    assert!(
        buttons(&alert_message(&w.app)).is_empty(),
        "nothing left to offer"
    );
}

#[tokio::test]
async fn pausing_three_candidates_where_one_fails_reports_each_on_sqlite() {
    pause_three_one_fails(Backend::Sqlite).await;
}

#[tokio::test]
async fn pausing_three_candidates_where_one_fails_reports_each_on_postgres() {
    pause_three_one_fails(Backend::Postgres).await;
}

#[tokio::test]
async fn a_confirmation_cancelled_changes_nothing() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(18, 6)).await;
    let other =
        w.fx.job(JobSpec {
            asset: "adhoc".into(),
            priority: 1,
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_pause_lower", &alert))
        .await;
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1);
    let closed = json!({"type": "view_closed", "user": {"id": OPERATOR},
                        "view": {"callback_id": "mitigate_pause", "private_metadata": views[0].view["private_metadata"]}});
    assert_eq!(w.app.interact(&closed).await.status, 200);
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(other, "state").await, "running");
    assert_eq!(w.fx.job_field::<i32>(other, "version").await, 1);
    assert!(w
        .app
        .state
        .store
        .paused_for_alert(&alert)
        .await
        .unwrap()
        .is_empty());
}

async fn recreate_at_priority_10(backend: Backend) {
    let w = world(backend).await;
    let job =
        w.fx.job(JobSpec {
            completed: 40,
            failed: 5,
            ..at_risk(60, 5)
        })
        .await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    // A double click: the job is recreated once.
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_recreate", &alert))
        .await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_recreate", &alert))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(job, "state").await, "cancelled");
    assert_eq!(
        w.fx.job_field::<Option<String>>(job, "error_message")
            .await
            .as_deref(),
        Some("SLA at risk - recreating with higher priority")
    );
    let skipped: i64 = sqlx::query_scalar("SELECT count(*) FROM backfill_partitions WHERE backfill_job_id = $1 AND state = 'skipped' AND error_message = 'Job cancelled'")
        .bind(job)
        .fetch_one(&w.fx.admin)
        .await
        .unwrap();
    assert_eq!(skipped, 55, "pending partitions become skipped");
    let new_jobs: Vec<(Uuid, i32, i32, DateTime<Utc>, String, Value)> = sqlx::query_as(
        "SELECT id, priority, total_partitions, sla_deadline_at, state, partition_keys FROM backfill_jobs WHERE id <> $1 AND asset_name = 'revenue_daily'",
    )
    .bind(job)
    .fetch_all(&w.fx.admin)
    .await
    .unwrap();
    assert_eq!(new_jobs.len(), 1, "recreated once");
    let (new_id, priority, total, deadline, state, keys) = &new_jobs[0];
    assert_eq!(*priority, 10);
    assert_eq!(*total, 60, "the 5 failed and 55 pending partitions");
    assert_eq!(*deadline, t0() + Duration::minutes(60), "the same deadline");
    assert_eq!(state, "pending");
    let keys: Vec<String> = serde_json::from_value(keys.clone()).unwrap();
    assert_eq!(keys.first().map(String::as_str), Some("p0040"));
    assert_eq!(keys.last().map(String::as_str), Some("p0099"));
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM backfill_partitions WHERE backfill_job_id = $1 AND state = 'pending'",
    )
    .bind(new_id)
    .fetch_one(&w.fx.admin)
    .await
    .unwrap();
    assert_eq!(partitions, 60);
    let a = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
    assert_eq!(
        a.job_id,
        new_id.to_string(),
        "the alert follows the new job"
    );
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("recreated the job at priority 10")));
    assert!(
        told_all(&w.app).contains("already has priority 10"),
        "the second click is refused"
    );
    assert!(!buttons(&alert_message(&w.app)).contains(&"mitigate_recreate".to_string()));
}

#[tokio::test]
async fn recreate_starts_the_uncompleted_partitions_at_priority_10_on_sqlite() {
    recreate_at_priority_10(Backend::Sqlite).await;
}

#[tokio::test]
async fn recreate_starts_the_uncompleted_partitions_at_priority_10_on_postgres() {
    recreate_at_priority_10(Backend::Postgres).await;
}

#[tokio::test]
async fn a_non_operator_is_refused_and_nothing_changes() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(60, 5)).await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    for action in [
        "mitigate_recreate",
        "mitigate_scaling",
        "mitigate_notify",
        "mitigate_pause_lower",
    ] {
        w.app
            .interact(&click(&w.app, "U0PRODOWNER", action, &alert))
            .await;
    }
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(job, "state").await, "running");
    assert!(w.app.slack.views().is_empty());
    assert_eq!(told_all(&w.app).matches("Only the operators").count(), 4);
    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&job.to_string()), 10)
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.outcome == "refused: not an operator")
            .count(),
        4
    );
}

#[tokio::test]
async fn request_scaling_pages_the_platform_lead_once() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(60, 5)).await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "mitigate_scaling", &alert))
        .await;
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "mitigate_scaling", &alert))
        .await;
    w.app.drain_outbox().await;
    let dms: Vec<_> = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == "U0PLATLEAD")
        .collect();
    assert_eq!(dms.len(), 1, "paged once: {dms:#?}\n{}", told_all(&w.app));
    assert!(
        dms[0].body.to_string().contains(&job.to_string()),
        "with the job's context"
    );
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("requested emergency scaling")));
}

#[tokio::test]
async fn notify_stakeholders_tells_them_in_the_thread_and_by_dm_with_the_edited_impact() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(60, 5)).await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_notify", &alert))
        .await;
    let views = w.app.slack.views();
    assert_eq!(views[0].view["callback_id"], "mitigate_notify");
    let submit = json!({
        "type": "view_submission", "user": {"id": OPERATOR},
        "view": {"id": "V9", "callback_id": "mitigate_notify", "private_metadata": views[0].view["private_metadata"],
                 "state": {"values": {"impact": {"value": {"type": "plain_text_input", "value": "Finance close slips a day"}}}}}
    });
    w.app.interact(&submit).await;
    w.app.drain_outbox().await;
    let note = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("Finance close slips a day"))
        .expect("a thread note");
    assert!(
        note.contains("<@U0PRODOWNER>") && note.contains("<!date^") && note.contains("High"),
        "{note}"
    );
    let dm = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .find(|c| c.body["channel"] == "U0PRODOWNER");
    assert!(dm.is_some(), "the stakeholder gets a DM");
    let told = told_all(&w.app);
    assert!(told.contains(":mega: Notified"), "{told}");
    // Someone who may not notify is told so, and nothing more is sent.
    let posts = w.app.slack.ok_calls_to("chat.postMessage").len();
    let stranger = json!({
        "type": "view_submission", "user": {"id": "U0STRANGER"},
        "view": {"id": "V10", "callback_id": "mitigate_notify", "private_metadata": views[0].view["private_metadata"],
                 "state": {"values": {"impact": {"value": {"type": "plain_text_input", "value": "Nothing"}}}}}
    });
    w.app.interact(&stranger).await;
    w.app.drain_outbox().await;
    assert_eq!(w.app.slack.ok_calls_to("chat.postMessage").len(), posts);
    assert!(
        told_all(&w.app).matches("Only the operators").count() >= 1,
        "{}",
        told_all(&w.app)
    );
}

/// The stakeholders are a group Slack cannot list just now: the thread
/// reply mentions them (a mention notifies), nobody gets a DM, and the one
/// who notified is told so; the audit says it was partial.
#[tokio::test]
async fn notify_stakeholders_says_when_their_group_cannot_be_listed() {
    let fx = ServoFixture::start().await;
    let clock = servo_sla_bot::runtime::clock::ManualClock::new(t0());
    let mut spec = common::bot::Spawn::new(Backend::Sqlite)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = common::bot::CONFIG.replace(
        "approvers = [\"U0PRODOWNER\"]",
        "approvers = [\"S0PRODUCT\"]",
    );
    spec.config = spec.config.replace("asset = \"revenue_*\"\n", "");
    let app = common::bot::spawn(spec).await;
    app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    let job = fx.job(at_risk(60, 5)).await;
    app.poll().await;
    let alert = alert_id(&app, job).await;
    app.interact(&click(&app, OPERATOR, "mitigate_notify", &alert))
        .await;
    let views = app.slack.views();
    app.slack.fail_next(
        "usergroups.users.list",
        vec![common::fake_slack::Fault::ServerError; 6],
    );
    let submit = json!({
        "type": "view_submission", "user": {"id": OPERATOR},
        "view": {"id": "V11", "callback_id": "mitigate_notify", "private_metadata": views[0].view["private_metadata"],
                 "state": {"values": {"impact": {"value": {"type": "plain_text_input", "value": "Finance close slips"}}}}}
    });
    app.interact(&submit).await;
    app.drain_outbox().await;
    assert!(thread_texts(&app)
        .iter()
        .any(|t| t.contains("Finance close slips") && t.contains("<!subteam^S0PRODUCT>")));
    let told = told_all(&app);
    assert!(told.contains("nobody got a DM"), "{told}");
    let audit = app.state.store.list_audit(None, 50).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "notify_stakeholders" && e.outcome.starts_with("partial")));
}

/// The bot resumed a job in Servo and stopped before recording it: the
/// alert still offers Resume, and the next click records it (once) without
/// resuming anything twice.
#[tokio::test]
async fn a_resume_servo_has_but_the_bot_never_recorded_is_recorded_on_the_next_click() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(18, 6)).await;
    let paused =
        w.fx.job(JobSpec {
            asset: "adhoc".into(),
            state: "paused".into(),
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .state
        .store
        .record_paused(&alert, "acme", &paused.to_string(), OPERATOR, t0())
        .await
        .unwrap();
    // Resumed in Servo; the record of it was lost with the process.
    w.fx.update_job(paused, "state = 'resuming', version = version + 1")
        .await;
    let version: i32 = w.fx.job_field(paused, "version").await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_resume_paused", &alert))
        .await;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_resume_paused", &alert))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<i32>(paused, "version").await, version);
    assert!(w
        .app
        .state
        .store
        .paused_for_alert(&alert)
        .await
        .unwrap()
        .is_empty());
    let notes: Vec<String> = thread_texts(&w.app)
        .into_iter()
        .filter(|t| t.contains("is resuming already"))
        .collect();
    assert_eq!(notes.len(), 1, "said once: {notes:#?}");
    assert!(told_all(&w.app).contains("There are no jobs left to resume"));
}

/// How an at-risk alert reads: its headlines and its bands' emoji.
const AT_RISK_BANDS: [&str; 8] = [
    "Low SLA risk",
    "Medium SLA risk",
    "High SLA risk",
    "SLA breached",
    "large_yellow_circle",
    "large_orange_circle",
    ":red_circle:",
    ":rotating_light:",
];

/// What a resolved alert message must never show again: an at-risk band,
/// or the at-risk "nothing stands out" line.
fn assert_stays_resolved(app: &TestApp, ts: &str, when: &str) {
    let m = app.slack.message(CHANNEL, ts).expect("the alert message");
    let shown = format!("{}{}{}", m.text, m.blocks, m.attachments);
    assert!(m.text.contains("Resolved"), "{when}: {}", m.text);
    for band in AT_RISK_BANDS {
        assert!(
            !shown.contains(band),
            "{when}: the resolved alert shows an at-risk band again ({band}): {shown}"
        );
    }
    assert!(
        !shown.contains("Nothing stands out"),
        "{when}: a resolved alert says what is slowing it: {shown}"
    );
    assert!(
        m.attachments.to_string().contains("#2EB67D"),
        "{when}: the colour bar is the resolved one: {}",
        m.attachments
    );
}

/// Issue 33, item 2, as it was reproduced: pause a lower-priority job, let
/// the job recover (Resolved, with Resume 1 paused job), then a button timer
/// fires and Resume is clicked: the message stays resolved each time, and
/// the Resume button goes once used.
async fn resolved_stays_resolved(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(at_risk(18, 6)).await; // Medium, priority 6
    let lower =
        w.fx.job(JobSpec {
            asset: "costs".into(),
            priority: 3,
            deadline: Some(t0() + Duration::hours(8)),
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    let ts = w
        .app
        .state
        .store
        .get_alert(&alert)
        .await
        .unwrap()
        .unwrap()
        .ts
        .expect("posted");
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_pause_lower", &alert))
        .await;
    let views = w.app.slack.views();
    let submit = json!({
        "type": "view_submission",
        "user": {"id": OPERATOR},
        "view": {"id": "V1", "callback_id": "mitigate_pause", "private_metadata": views[0].view["private_metadata"],
                 "state": {"values": {"jobs": {"value": {"type": "multi_static_select",
                     "selected_options": [{"value": lower.to_string()}]}}}}}
    });
    assert_eq!(w.app.interact(&submit).await.status, 200);
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(lower, "state").await, "paused");

    // The job recovers: resolved, offering to resume the paused job.
    w.clock.advance(Duration::minutes(1));
    w.fx.set_eta(
        job,
        t0() + Duration::minutes(30),
        t0() + Duration::minutes(1),
    )
    .await;
    w.app.poll().await;
    assert_stays_resolved(&w.app, &ts, "at the resolution");
    let shown = |app: &TestApp| app.slack.message(CHANNEL, &ts).unwrap().attachments;
    let resolved = shown(&w.app);
    assert_eq!(buttons(&resolved), ["mitigate_resume_paused"], "{resolved}");
    assert!(resolved.to_string().contains("Resume 1 paused job"));

    // An escalation step's button timer re-renders it afterwards.
    let now = w.clock.now();
    w.app
        .state
        .store
        .schedule_timer(
            servo_sla_bot::store::NewTimer {
                kind: servo_sla_bot::flows::ids::BUTTONS_TIMER.into(),
                subject_id: alert.clone(),
                payload: json!({}),
                due_at: now,
                dedup_key: None,
            },
            now,
        )
        .await
        .unwrap();
    common::slack_ui::advance(&w.app, &w.clock, 0).await;
    assert_stays_resolved(&w.app, &ts, "after a button timer");
    assert_eq!(
        buttons(&shown(&w.app)),
        ["mitigate_resume_paused"],
        "Resume is still offered"
    );

    // Resume: the job runs again, the button goes, the message stays resolved.
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_resume_paused", &alert))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(lower, "state").await, "resuming");
    assert_stays_resolved(&w.app, &ts, "after Resume");
    let m = w.app.slack.message(CHANNEL, &ts).unwrap();
    assert!(
        buttons(&m.attachments).is_empty(),
        "Resume goes once used: {}",
        m.attachments
    );
    // Clicked again (a stale copy of the message): told, nothing changes.
    let edits = m.edits;
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_resume_paused", &alert))
        .await;
    w.app.drain_outbox().await;
    assert!(told_all(&w.app).contains("There are no jobs left to resume"));
    assert_stays_resolved(&w.app, &ts, "after a second Resume");
    assert_eq!(w.app.slack.message(CHANNEL, &ts).unwrap().edits, edits);
}

#[tokio::test]
async fn a_resolved_alert_stays_resolved_through_a_button_timer_and_resume_on_sqlite() {
    resolved_stays_resolved(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_resolved_alert_stays_resolved_through_a_button_timer_and_resume_on_postgres() {
    resolved_stays_resolved(Backend::Postgres).await;
}

/// The link to Servo goes dark as a Recreate is asked for: Servo never
/// answers, so the bot cannot know whether it was made. It says so (not
/// "nothing was changed"), keeps the change open, and once Servo answers
/// again finishes it from what Servo shows: recreated once, the alert
/// following the new job, both the click and the outcome audited. A slash
/// `pause` in the dark is answered the same way.
#[tokio::test]
async fn a_change_servo_never_confirmed_is_said_so_and_finished_once_servo_answers() {
    use common::tcp_proxy::TcpProxy;
    use servo_sla_bot::runtime::clock::ManualClock;
    let fx = ServoFixture::start().await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut url = url::Url::parse(&fx.bot_url()).unwrap();
    url.set_port(Some(proxy.addr().port())).unwrap();
    // A 3 s statement timeout: the bot gives up on Servo after 8 s.
    url.query_pairs_mut()
        .append_pair("options", "-c statement_timeout=3000");
    let clock = ManualClock::new(t0());
    let app = common::bot::spawn(
        common::bot::Spawn::new(Backend::Sqlite)
            .manual_clock(&clock)
            .servo_url(url.as_str()),
    )
    .await;
    app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    let job = fx.job(at_risk(60, 5)).await;
    let other = fx
        .job(JobSpec {
            asset: "adhoc".into(),
            priority: 1,
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    let alert = alert_id(&app, job).await;

    // Someone holds a lock on Servo's jobs: the recreate and a slash pause
    // wait on it, in flight. The link goes dark while they wait; the lock
    // goes, and whatever Servo answers goes into the dark.
    let mut lock = fx.admin.begin().await.unwrap();
    sqlx::query("LOCK TABLE backfill_jobs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let dbname = fx.db.url.rsplit('/').next().unwrap().to_string();
    let dark = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND application_name = 'servo-sla-bot' AND wait_event_type = 'Lock'",
            )
            .bind(&dbname)
            .fetch_one(&fx.admin)
            .await
            .unwrap();
            if waiting >= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the changes never waited on the lock"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        proxy.blackhole();
        lock.rollback().await.unwrap();
    };
    let (recreate, pause) = (
        click(&app, OPERATOR, "mitigate_recreate", &alert),
        format!("pause {other}"),
    );
    let (_, answer, _) = tokio::join!(
        app.interact(&recreate),
        app.slash(&pause, OPERATOR, CHANNEL),
        dark,
    );
    // Both outlive Slack's 3-second ack: their answers follow by response_url.
    assert!(answer.body.contains("Working on it"), "{}", answer.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let told = loop {
        let told = told_all(&app);
        if told.matches("confirm").count() >= 2 || std::time::Instant::now() > deadline {
            break told;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(told.contains("did not confirm the recreate"), "{told}");
    assert!(told.contains("did not confirm the pause"), "{told}");
    assert!(
        !told.to_lowercase().contains("nothing was changed"),
        "{told}"
    );
    assert_eq!(
        app.state
            .store
            .applying_intents(clock.now() + Duration::minutes(5))
            .await
            .unwrap()
            .len(),
        1,
        "the recreate is still open"
    );

    proxy.restore();
    clock.advance(Duration::minutes(1));
    // The connections lost in the dark are dropped along the way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while fx.job_field::<String>(job, "state").await != "cancelled" {
        assert!(
            std::time::Instant::now() < deadline,
            "the repair pass never finished the recreate"
        );
        app.poll().await;
    }
    app.drain_outbox().await;
    let new_jobs: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT id, priority FROM backfill_jobs WHERE id <> $1 AND asset_name = 'revenue_daily'",
    )
    .bind(job)
    .fetch_all(&fx.admin)
    .await
    .unwrap();
    assert_eq!(new_jobs.len(), 1, "recreated once");
    assert_eq!(new_jobs[0].1, 10);
    let a = app.state.store.get_alert(&alert).await.unwrap().unwrap();
    assert_eq!(
        a.job_id,
        new_jobs[0].0.to_string(),
        "the alert follows the new job"
    );
    assert!(thread_texts(&app)
        .iter()
        .any(|t| t.contains("recreated the job at priority 10")));
    let audit: Vec<String> = app
        .state
        .store
        .list_audit(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "recreate")
        .map(|e| e.outcome)
        .collect();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit.contains(&"unconfirmed".to_string()), "{audit:?}");
    assert!(audit.iter().any(|o| o.starts_with("ok")), "{audit:?}");
}

/// The bot paused a job for the alert; since then someone resumed it (a
/// slash command, Servo's CLI) and paused it again on purpose. *Resume
/// paused jobs* leaves that pause alone: it is theirs, not the bot's.
#[tokio::test]
async fn resume_leaves_alone_a_job_someone_paused_again_since() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(at_risk(18, 6)).await;
    let theirs =
        w.fx.job(JobSpec {
            asset: "adhoc".into(),
            state: "paused".into(),
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .state
        .store
        .record_paused(&alert, "acme", &theirs.to_string(), OPERATOR, t0())
        .await
        .unwrap();
    // Paused again half an hour after the bot's pause, by someone else.
    sqlx::query("UPDATE backfill_jobs SET paused_at = $2, version = version + 2 WHERE id = $1")
        .bind(theirs)
        .bind(t0() + Duration::minutes(30))
        .execute(&w.fx.admin)
        .await
        .unwrap();
    let version: i32 = w.fx.job_field(theirs, "version").await;
    w.clock.advance(Duration::minutes(31));
    w.app
        .interact(&click(&w.app, OPERATOR, "mitigate_resume_paused", &alert))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(w.fx.job_field::<String>(theirs, "state").await, "paused");
    assert_eq!(w.fx.job_field::<i32>(theirs, "version").await, version);
    assert!(w
        .app
        .state
        .store
        .paused_for_alert(&alert)
        .await
        .unwrap()
        .is_empty());
    assert!(
        thread_texts(&w.app)
            .iter()
            .any(|t| t.contains("paused again") && t.contains("left paused")),
        "{:#?}",
        thread_texts(&w.app)
    );
}
