//! Deadline extensions: requested, then approved or rejected by a stakeholder
//! in the alert's thread, decided once, expiring and superseded on time.

mod common;

use common::slack_ui::{button_value, t0};

fn click(app: &TestApp, user: &str, action_id: &str, value: &str) -> Value {
    common::slack_ui::click_in(app, CHANNEL, user, action_id, value)
}

use chrono::{DateTime, Duration, Utc};
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::servo_fixture::{JobSpec, ServoFixture};
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::ManualClock;
use servo_sla_bot::workers::timer_worker::TimerWorker;
use uuid::Uuid;

const OPERATOR: &str = "U0PLATLEAD";
const CHANNEL: &str = "C0ACMEALERT";

/// The default test config, with the revenue assets' approvers as a group.
fn config() -> String {
    common::bot::CONFIG.replace(
        "asset = \"revenue_*\"\napprovers = [\"U0PRODOWNER\"]",
        "asset = \"revenue_*\"\napprovers = [\"S0PRODTEAM\", \"U0PLATLEAD\"]",
    )
}

struct World {
    fx: ServoFixture,
    app: TestApp,
    clock: ManualClock,
    job: Uuid,
}

async fn world(backend: Backend) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = config();
    let app = spawn(spec).await;
    let stakeholders: Vec<String> = (0..20).map(|i| format!("U0PM{i:02}")).collect();
    let refs: Vec<&str> = stakeholders.iter().map(String::as_str).collect();
    app.slack.set_usergroup("S0PRODTEAM", &refs);
    app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    // ETA 60 min past a deadline 60 min away: High.
    let job = fx
        .job(JobSpec {
            deadline: Some(t0() + Duration::minutes(60)),
            eta: Some(t0() + Duration::minutes(120)),
            heartbeat: Some(t0()),
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    World {
        fx,
        app,
        clock,
        job,
    }
}

fn told(app: &TestApp, action_id: &str, user: &str) -> String {
    app.slack
        .calls_to(&format!("response_url:{action_id}-{user}"))
        .iter()
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Requests +4h by slash command and returns the request message's post.
async fn request(w: &World, by: &str) -> Value {
    let v = w
        .app
        .slash(
            &format!("extend-deadline {} +4h upstream vendor outage", w.job),
            by,
            CHANNEL,
        )
        .await
        .json();
    assert!(
        v["text"].as_str().unwrap().contains("Extension requested"),
        "{v}"
    );
    w.app.drain_outbox().await;
    w.app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .rev()
        .find(|c| button_value(&c.body, "extension_approve").is_some())
        .expect("the request message")
        .body
}

async fn deadline(w: &World) -> DateTime<Utc> {
    w.fx.job_field(w.job, "sla_deadline_at").await
}

#[tokio::test]
async fn the_request_goes_in_the_alert_thread_with_everything_a_stakeholder_needs() {
    let w = world(Backend::Sqlite).await;
    let body = request(&w, OPERATOR).await;
    let root = w
        .app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .unwrap();
    assert_eq!(body["thread_ts"], root.ts.as_str(), "in the alert's thread");
    let text = body.to_string();
    for expected in [
        "<!subteam^S0PRODTEAM>",
        "<@U0PLATLEAD>",
        "upstream vendor outage",
        "Current deadline",
        "Proposed deadline",
        "Band under the new deadline",
        "On track",
        "<!date^",
    ] {
        assert!(text.contains(expected), "{expected} missing: {text}");
    }
    assert!(button_value(&body, "extension_reject").is_some());
}

async fn twenty_simultaneous_approvals(backend: Backend) {
    let w = world(backend).await;
    let body = request(&w, OPERATOR).await;
    let approval = button_value(&body, "extension_approve").unwrap();
    let mut clicks = Vec::new();
    for i in 0..20 {
        let payload = click(
            &w.app,
            &format!("U0PM{i:02}"),
            "extension_approve",
            &approval,
        );
        let app = &w.app;
        clicks.push(async move { app.interact(&payload).await.status });
    }
    let statuses = futures_join_all(clicks).await;
    assert!(statuses.iter().all(|s| *s == 200));
    // A click past Slack's 3 s ack finishes in the background: wait for the
    // decision to land in Servo and for every click to be audited.
    let deadline_at = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let audited = w
            .app
            .state
            .store
            .list_audit(Some(&w.job.to_string()), 100)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "approve_extension")
            .count();
        if audited >= 20 && w.fx.job_field::<i32>(w.job, "version").await >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline_at,
            "the clicks were never all decided"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    w.app.drain_outbox().await;
    assert_eq!(
        w.fx.job_field::<i32>(w.job, "version").await,
        2,
        "exactly one Servo update"
    );
    assert_eq!(
        deadline(&w).await,
        t0() + Duration::minutes(60) + Duration::hours(4)
    );
    let decisions: Vec<_> = w
        .app
        .slack
        .ok_calls_to("chat.update")
        .into_iter()
        .filter(|c| c.body.to_string().contains("Approved by"))
        .collect();
    assert_eq!(decisions.len(), 1, "one decision message");
    let notes = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| {
            c.body["text"]
                .as_str()
                .unwrap_or_default()
                .contains("Approved by")
        })
        .count();
    assert_eq!(notes, 1, "one thread reply");
    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&w.job.to_string()), 50)
        .await
        .unwrap();
    let oks = audit
        .iter()
        .filter(|e| e.action == "approve_extension" && e.outcome == "ok")
        .count();
    let refused = audit
        .iter()
        .filter(|e| e.action == "approve_extension" && e.outcome.starts_with("refused"))
        .count();
    assert_eq!((oks, refused), (1, 19), "every attempt is audited");
    // The requester hears about it by DM.
    let dm = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .find(|c| c.body["channel"] == OPERATOR);
    assert!(dm.unwrap().body["text"]
        .as_str()
        .unwrap()
        .contains("approved"));
}

/// Runs futures concurrently on the current task.
async fn futures_join_all<F: std::future::Future<Output = u16>>(futs: Vec<F>) -> Vec<u16> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = vec![0; set.len()];
    let mut pending: Vec<usize> = (0..set.len()).collect();
    std::future::poll_fn(|cx| {
        pending.retain(|&i| match set[i].as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                out[i] = v;
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

#[tokio::test]
async fn twenty_simultaneous_approvals_give_one_servo_update_and_one_decision_on_sqlite() {
    twenty_simultaneous_approvals(Backend::Sqlite).await;
}

#[tokio::test]
async fn twenty_simultaneous_approvals_give_one_servo_update_and_one_decision_on_postgres() {
    twenty_simultaneous_approvals(Backend::Postgres).await;
}

#[tokio::test]
async fn approval_re_assesses_the_alert_under_the_new_deadline() {
    let w = world(Backend::Sqlite).await;
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    w.app
        .interact(&click(&w.app, "U0PM01", "extension_approve", &approval))
        .await;
    w.app.drain_outbox().await;
    // ETA t0+120m is before the new deadline t0+5h: the alert resolves as back on track.
    let alert = w
        .app
        .state
        .store
        .latest_alert_for_job("acme", &w.job.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(!alert.is_open(), "{alert:?}");
    assert!(alert.resolution.unwrap().contains("Back on track"));
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request() {
    let w = world(Backend::Sqlite).await;
    // U0PLATLEAD is a stakeholder of revenue_* too.
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    w.app
        .interact(&click(&w.app, OPERATOR, "extension_approve", &approval))
        .await;
    assert!(told(&w.app, "extension_approve", OPERATOR).contains("someone else has to decide"));
    assert_eq!(w.fx.job_field::<i32>(w.job, "version").await, 1);
    let a = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, "pending");
}

#[tokio::test]
async fn a_non_stakeholder_cannot_approve_or_reject() {
    let w = world(Backend::Sqlite).await;
    let body = request(&w, OPERATOR).await;
    let approval = button_value(&body, "extension_approve").unwrap();
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "extension_approve", &approval))
        .await;
    assert!(told(&w.app, "extension_approve", "U0ONCALL1").contains("Only this job's stakeholders"));
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "extension_reject", &approval))
        .await;
    assert!(told(&w.app, "extension_reject", "U0ONCALL1").contains("Only this job's stakeholders"));
    assert!(
        w.app.slack.views().is_empty(),
        "no dialog for someone who may not decide"
    );
    assert_eq!(w.fx.job_field::<i32>(w.job, "version").await, 1);
    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&w.job.to_string()), 10)
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.outcome == "refused: not a stakeholder"));
}

#[tokio::test]
async fn reject_asks_for_a_reason_and_records_it() {
    let w = world(Backend::Sqlite).await;
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    w.app
        .interact(&click(&w.app, "U0PM03", "extension_reject", &approval))
        .await;
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].view["callback_id"], "extension_reject");
    let submission = json!({
        "type": "view_submission",
        "user": {"id": "U0PM03"},
        "view": {
            "callback_id": "extension_reject",
            "private_metadata": views[0].view["private_metadata"],
            "state": {"values": {"reason": {"value": {"type": "plain_text_input", "value": "the report can wait <!channel>"}}}}
        }
    });
    let answer = w.app.interact(&submission).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty(), "the modal closes: {}", answer.body);
    w.app.drain_outbox().await;
    let a = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, "rejected");
    assert_eq!(a.decided_by.as_deref(), Some("U0PM03"));
    assert_eq!(
        a.decision_reason.as_deref(),
        Some("the report can wait <!channel>")
    );
    let edit = w
        .app
        .slack
        .ok_calls_to("chat.update")
        .into_iter()
        .find(|c| c.body.to_string().contains("Rejected by"))
        .unwrap();
    assert!(
        edit.body.to_string().contains("&lt;!channel&gt;"),
        "user text is escaped"
    );
    assert_eq!(
        w.fx.job_field::<i32>(w.job, "version").await,
        1,
        "Servo unchanged"
    );
}

#[tokio::test]
async fn a_pending_request_expires_with_the_clock_and_says_so() {
    let w = world(Backend::Sqlite).await;
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    let a = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    // The deadline (60 min) comes before the 2 h expiry: it expires by the deadline.
    assert_eq!(a.expires_at, t0() + Duration::minutes(60));
    let timers = TimerWorker {
        state: w.app.state.clone(),
        worker_id: "t".into(),
    };
    // (Escalation steps are due meanwhile too; only the request's expiry matters here.)
    w.clock.advance(Duration::minutes(59));
    timers.tick().await.unwrap();
    let still = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status, "pending");
    w.clock.advance(Duration::minutes(1));
    timers.tick().await.unwrap();
    w.app.drain_outbox().await;
    let a = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, "expired");
    assert!(w
        .app
        .slack
        .ok_calls_to("chat.update")
        .iter()
        .any(|c| c.body.to_string().contains("Expired")));
    w.app
        .interact(&click(&w.app, "U0PM01", "extension_approve", &approval))
        .await;
    assert!(told(&w.app, "extension_approve", "U0PM01").contains("already expired"));
    assert_eq!(w.fx.job_field::<i32>(w.job, "version").await, 1);
}

#[tokio::test]
async fn a_new_request_supersedes_the_pending_one() {
    let w = world(Backend::Sqlite).await;
    let first = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    let second = button_value(&request(&w, "U0ONCALL1").await, "extension_approve").unwrap();
    assert_ne!(first, second);
    let old = w
        .app
        .state
        .store
        .get_approval(&first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, "superseded");
    assert!(w
        .app
        .slack
        .ok_calls_to("chat.update")
        .iter()
        .any(|c| c.body.to_string().contains("Superseded")));
    let timers = w.app.state.store.list_timers(Some(&first)).await.unwrap();
    assert_eq!(timers[0].status, "cancelled");
}

#[tokio::test]
async fn a_restart_while_a_request_is_pending_leaves_it_decidable() {
    let w = world(Backend::Sqlite).await;
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    let World {
        fx,
        app,
        clock,
        job,
    } = w;
    let app = app.restart().await;
    let w = World {
        fx,
        app,
        clock,
        job,
    };
    w.app
        .interact(&click(&w.app, "U0PM07", "extension_approve", &approval))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(
        w.app
            .state
            .store
            .get_approval(&approval)
            .await
            .unwrap()
            .unwrap()
            .status,
        "approved"
    );
    assert_eq!(w.fx.job_field::<i32>(w.job, "version").await, 2);
}

#[tokio::test]
async fn a_job_that_changed_meanwhile_is_re_checked_before_the_deadline_moves() {
    let w = world(Backend::Sqlite).await;
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    // Servo bumps the version (progress) meanwhile: the approval still applies.
    w.fx.update_job(w.job, "completed_partitions = 60, version = version + 1")
        .await;
    w.app
        .interact(&click(&w.app, "U0PM02", "extension_approve", &approval))
        .await;
    assert_eq!(deadline(&w).await, t0() + Duration::minutes(300));
    assert_eq!(w.fx.job_field::<i32>(w.job, "version").await, 3);

    // A second request, then someone moves the deadline past it directly.
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    w.fx.update_job(
        w.job,
        "sla_deadline_at = sla_deadline_at + interval '1 day', version = version + 1",
    )
    .await;
    w.app
        .interact(&click(&w.app, "U0PM02", "extension_approve", &approval))
        .await;
    w.app.drain_outbox().await;
    let a = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, "failed");
    assert!(a.decision_reason.unwrap().contains("changed meanwhile"));
    assert_eq!(
        deadline(&w).await,
        t0() + Duration::minutes(300) + Duration::days(1),
        "not moved back"
    );
}

#[tokio::test]
async fn a_job_that_finishes_closes_its_pending_request_as_moot() {
    let w = world(Backend::Sqlite).await;
    let approval = button_value(&request(&w, OPERATOR).await, "extension_approve").unwrap();
    w.fx.update_job(
        w.job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    let a = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, "moot");
    assert!(w
        .app
        .slack
        .ok_calls_to("chat.update")
        .iter()
        .any(|c| c.body.to_string().contains("moot")));
}

#[tokio::test]
async fn the_request_modal_validates_its_fields() {
    let w = world(Backend::Sqlite).await;
    let post = &w.app.slack.ok_calls_to("chat.postMessage")[0];
    let alert_id = button_value(&post.body, "extension_request")
        .expect("a Request extension button on a High alert");
    w.app
        .interact(&click(&w.app, OPERATOR, "extension_request", &alert_id))
        .await;
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].trigger_id, format!("trigger-{OPERATOR}"));
    let submit = |deadline: &str, reason: &str| {
        json!({
            "type": "view_submission",
            "user": {"id": OPERATOR},
            "view": {
                "callback_id": "extension_request",
                "private_metadata": views[0].view["private_metadata"],
                "state": {"values": {
                    "deadline": {"value": {"type": "plain_text_input", "value": deadline}},
                    "reason": {"value": {"type": "plain_text_input", "value": reason}}
                }}
            }
        })
    };
    for (bad, why) in [
        ("", "Pick a new deadline, or type one"),
        ("soon", "is not a deadline"),
        ("2020-01-01T00:00:00Z", "later than the current"),
    ] {
        let answer = w.app.interact(&submit(bad, "")).await;
        let v = answer.json();
        assert_eq!(v["response_action"], "errors", "{bad}: {v}");
        assert!(
            v["errors"]["deadline"].as_str().unwrap().contains(why),
            "{bad}: {v}"
        );
    }
    assert!(w
        .app
        .state
        .store
        .list_approvals(None, None)
        .await
        .unwrap()
        .is_empty());
    let answer = w
        .app
        .interact(&submit("+2h", "backfill of a vendor outage"))
        .await;
    assert!(
        answer.body.is_empty(),
        "a valid request closes the modal: {}",
        answer.body
    );
    let pending = w
        .app
        .state
        .store
        .pending_approval_for_job("acme", &w.job.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.proposed_deadline, t0() + Duration::minutes(180));
    assert_eq!(
        pending.reason.as_deref(),
        Some("backfill of a vendor outage")
    );
}

/// The same person asking for the same deadline again while the request
/// waits (a double submission, a retry after Slack showed an error) gets
/// that request back: nothing is superseded and nothing is sent again.
async fn asking_twice_for_the_same_extension_requests_once(backend: Backend) {
    let w = world(backend).await;
    request(&w, OPERATOR).await;
    let posts = w.app.slack.ok_calls_to("chat.postMessage").len();
    let again = w
        .app
        .slash(
            &format!("extend-deadline {} +4h upstream vendor outage", w.job),
            OPERATOR,
            CHANNEL,
        )
        .await
        .json();
    w.app.drain_outbox().await;
    assert!(
        again["text"]
            .as_str()
            .unwrap()
            .contains("You asked for this already"),
        "{again}"
    );
    assert_eq!(w.app.slack.ok_calls_to("chat.postMessage").len(), posts);
    assert!(w
        .app
        .slack
        .ok_calls_to("chat.update")
        .iter()
        .all(|c| !c.body.to_string().contains("Superseded")));
    // Another deadline is a new request, which supersedes the first.
    let other = w
        .app
        .slash(&format!("extend-deadline {} +6h", w.job), OPERATOR, CHANNEL)
        .await
        .json();
    w.app.drain_outbox().await;
    assert!(
        other["text"]
            .as_str()
            .unwrap()
            .contains("Extension requested"),
        "{other}"
    );
    assert!(w
        .app
        .slack
        .ok_calls_to("chat.update")
        .iter()
        .any(|c| c.body.to_string().contains("Superseded")));
}

#[tokio::test]
async fn asking_twice_for_the_same_extension_requests_once_on_sqlite() {
    asking_twice_for_the_same_extension_requests_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn asking_twice_for_the_same_extension_requests_once_on_postgres() {
    asking_twice_for_the_same_extension_requests_once(Backend::Postgres).await;
}

/// A request past its expiry whose timer has not fired yet (the bot was
/// down) is not decided: the stakeholder is told it expired.
#[tokio::test]
async fn an_expired_request_whose_timer_is_late_is_not_approved() {
    let w = world(Backend::Sqlite).await;
    let body = request(&w, OPERATOR).await;
    let approval = button_value(&body, "extension_approve").unwrap();
    let before = deadline(&w).await;
    w.clock.advance(Duration::minutes(61));
    w.app
        .interact(&click(&w.app, "U0PM00", "extension_approve", &approval))
        .await;
    w.app.drain_outbox().await;
    assert!(
        told(&w.app, "extension_approve", "U0PM00").contains("This request expired"),
        "{}",
        told(&w.app, "extension_approve", "U0PM00")
    );
    assert_eq!(deadline(&w).await, before, "Servo untouched");
}

/// Approve finds the job gone from Servo: the request is closed (its
/// buttons gone) and the click audited.
#[tokio::test]
async fn a_request_whose_job_is_gone_is_closed_when_clicked() {
    let w = world(Backend::Sqlite).await;
    let body = request(&w, OPERATOR).await;
    let approval = button_value(&body, "extension_approve").unwrap();
    // Out of acme's sight (row-level security): gone, for the bot.
    w.fx.update_job(w.job, "tenant_id = 'globex'").await;
    w.app
        .interact(&click(&w.app, "U0PM00", "extension_approve", &approval))
        .await;
    w.app.drain_outbox().await;
    assert!(told(&w.app, "extension_approve", "U0PM00").contains("no longer exists"));
    let stored = w
        .app
        .state
        .store
        .get_approval(&approval)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status.as_str(), "moot");
    let closed = w.app.slack.ok_calls_to("chat.update").into_iter().any(|c| {
        c.body
            .to_string()
            .contains("the job no longer exists in Servo")
    });
    assert!(closed, "its message is closed");
    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&w.job.to_string()), 50)
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "approve_extension" && e.outcome == "refused: job gone"));
}
