//! What each action bought (issue 38): the confirm dialogs of Recreate and
//! Request scaling, and the dialogs of Pause lower-priority jobs and Request
//! extension, say what the same action bought the last times in the tenant
//! (or that there is no history yet); Recreate says by when it still helps
//! when recreated jobs of the asset have a speed to go by; Pause shows the
//! band today and with the ETA moved as much. A steady poll edits nothing.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::bot::{Backend, TestApp, World};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::t0;
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::Clock;
use servo_sla_bot::store::{AuditEntry, EtaSample, NewWatchedJob};
use uuid::Uuid;

const OPERATOR: &str = "U0PLATLEAD";
const CHANNEL: &str = "C0ACMEALERT";

async fn world(backend: Backend) -> World {
    common::bot::on_servo(backend, &["U0ONCALL1"]).await
}

/// A job whose ETA is `late` minutes past a deadline 60 minutes away, with
/// 50 of its 100 partitions left.
fn at_risk(asset: &str, late_minutes: i64) -> JobSpec {
    JobSpec {
        asset: asset.into(),
        deadline: Some(t0() + Duration::minutes(60)),
        eta: Some(t0() + Duration::minutes(60 + late_minutes)),
        heartbeat: Some(t0()),
        priority: 5,
        ..JobSpec::default()
    }
}

/// Three jobs: two High (one of the asset recreates have a speed for, one
/// not), one Medium, and a job with no SLA for the pause to offer.
async fn jobs(fx: &ServoFixture) -> (Uuid, Uuid, Uuid) {
    let high = fx.job(at_risk("orders", 60)).await;
    let other = fx.job(at_risk("billing", 60)).await;
    let medium = fx.job(at_risk("costs", 18)).await;
    fx.job(JobSpec {
        asset: "scratch".into(),
        priority: 1,
        ..JobSpec::default()
    })
    .await;
    (high, other, medium)
}

fn at(minutes_before_t0: i64) -> DateTime<Utc> {
    t0() - Duration::minutes(minutes_before_t0)
}

/// A past mitigation with the ETA before it and 32 minutes after it
/// (on `follow` when it made a new job): it bought `bought` minutes.
async fn seed(
    app: &TestApp,
    action: &str,
    job: &str,
    when: DateTime<Utc>,
    detail: Value,
    bought: i64,
) {
    let store = &app.state.store;
    store
        .audit(&AuditEntry::ok(
            when,
            "acme",
            OPERATOR,
            action,
            job,
            detail.clone(),
        ))
        .await
        .unwrap();
    let follow = detail
        .get("new_job")
        .and_then(Value::as_str)
        .unwrap_or(job)
        .to_string();
    let eta = when + Duration::hours(3);
    let sample = |job: &str, at: DateTime<Utc>, eta: DateTime<Utc>| EtaSample {
        tenant_id: "acme".into(),
        job_id: job.into(),
        at,
        eta,
        deadline: None,
    };
    store
        .record_eta_samples(&[
            sample(job, when - Duration::minutes(4), eta),
            sample(
                &follow,
                when + Duration::minutes(32),
                eta - Duration::minutes(bought),
            ),
        ])
        .await
        .unwrap();
}

/// The tenant's history: three recreates of `orders` (40, 50 and 60 min
/// earlier; the new jobs ran 120 partitions in two hours), two scaling
/// requests (20 and 30), two pauses from alerts (30 each; a `/backfill
/// pause` does not count) and an approved extension (0).
async fn history(app: &TestApp) {
    for (i, bought) in [40, 50, 60].into_iter().enumerate() {
        let when = at(600 - 60 * i as i64);
        let (old, new) = (format!("old-{i}"), format!("new-{i}"));
        seed(
            app,
            "recreate",
            &old,
            when,
            json!({ "cancelled": old, "new_job": new, "partitions": 120 }),
            bought,
        )
        .await;
        let store = &app.state.store;
        store
            .watch_new(
                &[NewWatchedJob {
                    tenant_id: "acme".into(),
                    job_id: new.clone(),
                    asset: "orders".into(),
                    priority: 10,
                    tier: "critical".into(),
                    deadline: None,
                    buffer: None,
                }],
                when,
            )
            .await
            .unwrap();
        let done = when + Duration::hours(2);
        store
            .watch_end("acme", &new, "completed", Some(done), done)
            .await
            .unwrap();
    }
    for (i, bought) in [20, 30].into_iter().enumerate() {
        seed(
            app,
            "request_scaling",
            &format!("scaled-{i}"),
            at(300 - 30 * i as i64),
            json!({}),
            bought,
        )
        .await;
    }
    for i in 0..2 {
        seed(
            app,
            "pause",
            &format!("paused-for-{i}"),
            at(200 - 30 * i as i64),
            json!({ "job": "x", "for_alert": format!("a{i}") }),
            30,
        )
        .await;
    }
    seed(
        app,
        "pause",
        "by-command",
        at(100),
        json!({ "job": "by-command" }),
        500,
    )
    .await;
    seed(app, "approve_extension", "extended", at(90), json!({}), 0).await;
}

/// The confirm text of a button in the post of a job's alert.
fn confirm_text(app: &TestApp, job: Uuid, action_id: &str) -> String {
    fn find(v: &Value, action_id: &str) -> Option<String> {
        match v {
            Value::Object(o) => {
                if o.get("action_id").and_then(Value::as_str) == Some(action_id) {
                    return o
                        .get("confirm")
                        .and_then(|c| c.pointer("/text/text"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                o.values().find_map(|v| find(v, action_id))
            }
            Value::Array(a) => a.iter().find_map(|v| find(v, action_id)),
            _ => None,
        }
    }
    let post = app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .find(|p| p.body.to_string().contains(&job.to_string()))
        .expect("the job's alert");
    find(&post.body, action_id).unwrap_or_else(|| panic!("no confirm on {action_id}"))
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

/// Clicks a button of a job's alert and returns the dialog it opened.
async fn dialog(app: &TestApp, job: Uuid, action_id: &str) -> Value {
    let alert = alert_id(app, job).await;
    let before = app.slack.views().len();
    app.interact(&common::slack_ui::fresh_click_in(
        app, CHANNEL, OPERATOR, action_id, &alert,
    ))
    .await;
    let views = app.slack.views();
    assert_eq!(views.len(), before + 1, "{action_id} opens a dialog");
    views[before].view.clone()
}

/// The Pause lower-priority jobs dialog's note (its history and band lines).
async fn pause_dialog_note(app: &TestApp, job: Uuid) -> String {
    let pause = dialog(app, job, "mitigate_pause_lower").await;
    pause["blocks"][2]["elements"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn without_history(backend: Backend) {
    let w = world(backend).await;
    let (high, _, medium) = jobs(&w.fx).await;
    w.app.poll().await;

    let recreate = confirm_text(&w.app, high, "mitigate_recreate");
    assert!(
        recreate.contains("No history yet: no earlier recreate in this tenant was measured."),
        "{recreate}"
    );
    assert!(
        !recreate.contains("partitions/h"),
        "no by-when without history: {recreate}"
    );
    assert!(recreate.chars().count() <= 300);
    let scaling = confirm_text(&w.app, high, "mitigate_scaling");
    assert!(
        scaling.contains("No history yet: no earlier scaling request"),
        "{scaling}"
    );

    let note = pause_dialog_note(&w.app, medium).await;
    assert!(
        note.contains("No history yet: no earlier pause of lower-priority jobs"),
        "{note}"
    );
    assert!(note.contains("*Medium* now."), "the band today: {note}");
    assert!(!note.contains("would be"), "{note}");

    let extension = dialog(&w.app, medium, "extension_request").await;
    let intro = extension["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        intro.contains("No history yet: no earlier approved extension"),
        "{intro}"
    );
}

async fn with_history(backend: Backend) {
    let w = world(backend).await;
    history(&w.app).await;
    let (high, other, medium) = jobs(&w.fx).await;
    w.app.poll().await;

    let recreate = confirm_text(&w.app, high, "mitigate_recreate");
    assert!(
        recreate.contains("The last 3 recreates moved the ETA 50 min earlier (median)."),
        "{recreate}"
    );
    // 50 partitions left at 60 an hour take 50 minutes: by 10 minutes
    // before the 60-minute deadline.
    assert!(
        recreate.contains(
            "Recreated jobs of this asset ran 60 partitions/h: it still helps if done by"
        ),
        "{recreate}"
    );
    let by = (t0() + Duration::minutes(10)).timestamp().to_string();
    assert!(recreate.contains(&by), "{recreate}");
    assert!(recreate.chars().count() <= 300, "{recreate}");
    // Another asset: the tenant's history, but no speed to go by.
    let elsewhere = confirm_text(&w.app, other, "mitigate_recreate");
    assert!(elsewhere.contains("The last 3 recreates"), "{elsewhere}");
    assert!(!elsewhere.contains("partitions/h"), "{elsewhere}");

    let scaling = confirm_text(&w.app, high, "mitigate_scaling");
    assert!(
        scaling.contains("The last 2 scaling requests moved the ETA 25 min earlier (median)."),
        "{scaling}"
    );

    let note = pause_dialog_note(&w.app, medium).await;
    assert!(
        note.contains(
            "The last 2 pauses of lower-priority jobs moved the ETA 30 min earlier (median)."
        ),
        "the /backfill pause is not among them: {note}"
    );
    // ETA 18 min past a deadline 60 min away (Medium); 30 min earlier it is
    // 12 min before it.
    assert!(
        note.contains("*Medium* now; with its ETA 30 min earlier it would be")
            && note.contains("*On track*"),
        "{note}"
    );

    let extension = dialog(&w.app, medium, "extension_request").await;
    let intro = extension["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        intro.contains("The last approved extension left the ETA where it was."),
        "{intro}"
    );

    // Nothing changed: the next poll edits no alert.
    let edits = w.app.slack.ok_calls_to("chat.update").len();
    w.app.poll().await;
    assert_eq!(
        w.app.slack.ok_calls_to("chat.update").len(),
        edits,
        "a steady poll with the same history edits nothing"
    );
}

/// A mitigation that works resolves its alert, and is still measured: the
/// job's ETA is sampled for an hour after its alert resolved, so the next
/// alert's Request scaling confirm says what the last one bought (before,
/// sampling stopped with the alert and only the mitigations that failed
/// were ever measured).
async fn measured_when_it_worked(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(at_risk("orders", 60)).await;
    w.app.poll().await;
    let alert = alert_id(&w.app, job).await;
    w.app
        .interact(&common::slack_ui::fresh_click_in(
            &w.app,
            CHANNEL,
            "U0ONCALL1",
            "mitigate_scaling",
            &alert,
        ))
        .await;
    // The scaling works: the job is back on track and its alert resolves.
    w.clock.advance(Duration::minutes(5));
    w.fx.set_eta(job, t0() + Duration::minutes(50), w.clock.now())
        .await;
    w.app.poll().await;
    let resolved = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
    assert!(!resolved.is_open(), "resolved");
    // Half an hour after the request, the job runs on, on track.
    w.clock.advance(Duration::minutes(27));
    w.fx.set_eta(job, t0() + Duration::minutes(50), w.clock.now())
        .await;
    w.app.poll().await;
    // Another job at risk: its confirm has the measure.
    let next = w.fx.job(at_risk("billing", 60)).await;
    w.app.poll().await;
    let scaling = confirm_text(&w.app, next, "mitigate_scaling");
    assert!(
        scaling.contains("The last scaling request moved the ETA 1 h 10 min earlier."),
        "{scaling}"
    );
}

on_both_stores!(without_history, with_history, measured_when_it_worked);
