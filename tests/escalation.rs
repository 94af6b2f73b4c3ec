//! The escalation path with a manual clock and no sleeping: tiers in order,
//! acknowledgement, repeat, the runbook's triggers, PagerDuty, restarts.

mod common;

use common::slack_ui::{alert_message, button_value, t0, thread_texts, told_all};

use chrono::Duration;
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::fake_pagerduty::FakePagerDuty;
use common::servo_fixture::{JobSpec, ServoFixture};
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::{Clock, ManualClock};
use uuid::Uuid;

struct World {
    fx: ServoFixture,
    app: TestApp,
    clock: ManualClock,
    pd: FakePagerDuty,
}

async fn world(backend: Backend, repeat: u32) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let pd = FakePagerDuty::start().await;
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.pagerduty_url = pd.url();
    spec.config = common::bot::CONFIG
        .replace("repeat = 1", &format!("repeat = {repeat}"))
        .replace(
            "notify = [\"U0PLATLEAD\"]\nack_timeout = \"30m\"",
            "notify = [\"U0PLATLEAD\"]\nack_timeout = \"30m\"\npagerduty_routing_key_env = \"PD_PLATFORM_KEY\"",
        );
    let app = spawn(spec).await;
    app.slack
        .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
    World { fx, app, clock, pd }
}

/// A critical job (priority 9) at Low risk: critical jobs page from Low.
fn critical_low() -> JobSpec {
    JobSpec {
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: 9,
        ..JobSpec::default()
    }
}

fn dms_to(app: &TestApp, user: &str) -> usize {
    app.slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| {
            c.body["channel"] == user
                && c.body["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("You are paged")
        })
        .count()
}

async fn advance(w: &World, minutes: i64) {
    common::slack_ui::advance(&w.app, &w.clock, minutes).await;
}

fn ack(app: &TestApp, user: &str, alert_id: &str) -> Value {
    json!({
        "type": "block_actions", "user": {"id": user},
        "channel": {"id": format!("D{user}")},
        "response_url": app.slack.response_url(&format!("ack-{user}")),
        "actions": [{"action_id": "alert_ack", "value": alert_id, "type": "button"}]
    })
}

/// The value of the alert's Escalate now button as Slack shows it now.
fn escalate_value(app: &TestApp) -> String {
    button_value(&alert_message(app), "alert_escalate").expect("an Escalate now button")
}

/// A click on Escalate now in the alert's channel, answered on a fresh URL.
fn escalate(app: &TestApp, user: &str, value: &str) -> Value {
    common::slack_ui::fresh_click_in(app, "C0ACMEALERT", user, "alert_escalate", value)
}

/// PagerDuty events of one action under one dedup key.
fn pd_events(pd: &FakePagerDuty, action: &str, key: &str) -> usize {
    pd.events()
        .iter()
        .filter(|e| e["event_action"] == action && e["dedup_key"] == key)
        .count()
}

async fn alert_of(app: &TestApp, job: Uuid) -> String {
    app.state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn tiers_in_order(backend: Backend) {
    let w = world(backend, 0).await;
    w.fx.job(critical_low()).await;
    w.app.poll().await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        1,
        "tier 1's group members are paged at once"
    );
    assert_eq!(dms_to(&w.app, "U0ONCALL2"), 1);
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 0);
    let plan = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("Escalation started"))
        .expect("the plan in the thread");
    assert!(
        plan.contains("On-call Engineer")
            && plan.contains("Platform Team Lead")
            && plan.contains("Product/Business Stakeholder"),
        "{plan}"
    );
    assert_eq!(
        plan.matches("<!date^").count(),
        3,
        "each step with its time"
    );
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("Paging *On-call Engineer*") && t.contains("<@U0ONCALL1>")));

    advance(&w, 14).await;
    assert_eq!(
        dms_to(&w.app, "U0PLATLEAD"),
        0,
        "not before the ack timeout"
    );
    advance(&w, 1).await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 1, "tier 2 after 15 minutes");
    advance(&w, 30).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 1, "tier 3 after 30 more");
    advance(&w, 60).await;
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("Escalation path exhausted")));
    advance(&w, 120).await;
    assert_eq!(
        (
            dms_to(&w.app, "U0ONCALL1"),
            dms_to(&w.app, "U0PLATLEAD"),
            dms_to(&w.app, "U0PRODOWNER")
        ),
        (1, 1, 1),
        "nobody is paged twice"
    );
    let dm = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .find(|c| c.body["channel"] == "U0PLATLEAD")
        .unwrap();
    assert!(
        dm.body.to_string().contains("alert_ack"),
        "the page carries an Acknowledge button"
    );
}

#[tokio::test]
async fn tier_1_then_2_then_3_without_acknowledgement_on_sqlite() {
    tiers_in_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn tier_1_then_2_then_3_without_acknowledgement_on_postgres() {
    tiers_in_order(Backend::Postgres).await;
}

#[tokio::test]
async fn an_acknowledgement_at_tier_2_stops_everything_and_is_mirrored_to_pagerduty() {
    let w = world(Backend::Sqlite, 1).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    advance(&w, 15).await;
    assert_eq!(
        dms_to(&w.app, "U0PLATLEAD"),
        1,
        "{:#?} {:#?}",
        thread_texts(&w.app),
        w.app.state.store.list_timers(None).await.unwrap()
    );
    let triggers: Vec<Value> =
        w.pd.events()
            .into_iter()
            .filter(|e| e["event_action"] == "trigger")
            .collect();
    let outbox = w.app.state.store.list_outbox(None).await.unwrap();
    let pd_rows: Vec<_> = outbox
        .iter()
        .filter(|m| m.method == "pagerduty.enqueue")
        .collect();
    assert_eq!(triggers.len(), 1, "tier 2 has a routing key: {pd_rows:#?}");
    assert_eq!(triggers[0]["routing_key"], "pd-routing-key-platform");
    assert_eq!(triggers[0]["dedup_key"], format!("servo-sla-bot-{alert}"));

    // The platform lead acknowledges from the DM.
    assert_eq!(
        w.app
            .interact(&ack(&w.app, "U0PLATLEAD", &alert))
            .await
            .status,
        200
    );
    w.app.drain_outbox().await;
    advance(&w, 200).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 0, "tier 3 is never paged");
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "no repeat either");
    let ackd: Vec<Value> =
        w.pd.events()
            .into_iter()
            .filter(|e| e["event_action"] == "acknowledge")
            .collect();
    assert_eq!(ackd.len(), 1);
    assert_eq!(ackd[0]["dedup_key"], format!("servo-sla-bot-{alert}"));
    let shown = w
        .app
        .slack
        .ok_calls_to("chat.update")
        .pop()
        .unwrap()
        .body
        .to_string();
    assert!(
        shown.contains("Acknowledged by <@U0PLATLEAD>"),
        "the alert shows who and when"
    );

    // Resolution resolves the PagerDuty incident.
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    let outcome = w.app.poll().await;
    assert_eq!(
        w.pd.events()
            .iter()
            .filter(|e| e["event_action"] == "resolve")
            .count(),
        1,
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_path_repeats_the_configured_number_of_times() {
    let w = world(Backend::Sqlite, 1).await;
    w.fx.job(critical_low()).await;
    w.app.poll().await;
    advance(&w, 15).await; // tier 2
    advance(&w, 30).await; // tier 3
    advance(&w, 60).await; // round 2: tier 1 again
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 2);
    assert!(thread_texts(&w.app).iter().any(|t| t.contains("(round 2)")));
    advance(&w, 15).await;
    advance(&w, 30).await;
    assert_eq!(
        (dms_to(&w.app, "U0PLATLEAD"), dms_to(&w.app, "U0PRODOWNER")),
        (2, 2)
    );
    advance(&w, 60).await;
    advance(&w, 60).await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        2,
        "repeat = 1 means two walks in all"
    );
}

#[tokio::test]
async fn several_high_priority_jobs_at_risk_at_once_page_tier_2_with_all_listed() {
    let w = world(Backend::Sqlite, 0).await;
    let a =
        w.fx.job(JobSpec {
            asset: "revenue_eu".into(),
            ..critical_low()
        })
        .await;
    let b =
        w.fx.job(JobSpec {
            asset: "revenue_us".into(),
            ..critical_low()
        })
        .await;
    w.app.poll().await;
    let dms: Vec<String> = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == "U0PLATLEAD")
        .map(|c| c.body.to_string())
        .collect();
    // One cause, one page (issue 33): not one per alert.
    assert_eq!(dms.len(), 1, "one page for the episode: {dms:#?}");
    for dm in &dms {
        assert!(
            dm.contains(&a.to_string()) && dm.contains(&b.to_string()),
            "all of them listed: {dm}"
        );
    }
}

#[tokio::test]
async fn one_high_priority_job_alone_does_not_trigger_tier_2() {
    let w = world(Backend::Sqlite, 0).await;
    w.fx.job(critical_low()).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 0);
}

#[tokio::test]
async fn risk_rising_quickly_moves_the_alert_up_a_tier() {
    let w = world(Backend::Sqlite, 0).await;
    // A standard job (priority 5) at Medium: pages tier 1.
    let job =
        w.fx.job(JobSpec {
            deadline: Some(t0() + Duration::minutes(100)),
            eta: Some(t0() + Duration::minutes(130)),
            heartbeat: Some(t0()),
            priority: 5,
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1);
    // Five minutes later severity has jumped from 0.30 to about 1.0.
    w.clock.advance(Duration::minutes(5));
    w.fx.set_eta(
        job,
        t0() + Duration::minutes(195),
        t0() + Duration::minutes(5),
    )
    .await;
    w.app.poll().await;
    assert_eq!(
        dms_to(&w.app, "U0PLATLEAD"),
        1,
        "tier 2 now, not after 15 minutes"
    );
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("Risk rose quickly")));
}

#[tokio::test]
async fn a_band_that_gets_worse_after_an_acknowledgement_re_arms_the_path() {
    let w = world(Backend::Sqlite, 0).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    w.app.interact(&ack(&w.app, "U0ONCALL1", &alert)).await;
    w.app.drain_outbox().await;
    // Worse: Low to High, twenty minutes on (past the rise window).
    w.clock.advance(Duration::minutes(20));
    w.fx.set_eta(
        job,
        t0() + Duration::minutes(300),
        t0() + Duration::minutes(20),
    )
    .await;
    w.app.poll().await;
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("escalation re-arms")));
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 2, "tier 1 paged again");
    let a = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
    assert!(a.acked_by.is_none());
}

#[tokio::test]
async fn a_standard_job_at_low_only_posts_in_the_channel() {
    let w = world(Backend::Sqlite, 0).await;
    w.fx.job(JobSpec {
        priority: 5,
        ..critical_low()
    })
    .await;
    w.app.poll().await;
    assert!(!w.app.slack.ok_calls_to("chat.postMessage").is_empty());
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0);
}

#[tokio::test]
async fn escalate_now_pages_the_next_tier_at_once() {
    let w = world(Backend::Sqlite, 0).await;
    w.fx.job(critical_low()).await;
    w.app.poll().await;
    w.app
        .interact(&escalate(&w.app, "U0ONCALL2", &escalate_value(&w.app)))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 1);
    // The wait that was running is replaced: tier 3 comes 30 minutes after tier 2.
    advance(&w, 29).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 0);
    advance(&w, 1).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 1);
    assert_eq!(
        dms_to(&w.app, "U0PLATLEAD"),
        1,
        "the old timer does not page tier 2 again"
    );
}

#[tokio::test]
async fn a_restart_mid_wait_misses_no_page_and_repeats_none() {
    let w = world(Backend::Sqlite, 0).await;
    w.fx.job(critical_low()).await;
    w.app.poll().await;
    let World { fx, app, clock, pd } = w;
    // Down across the moment tier 2 is due.
    let (db, slack) = app.stop_parts().await;
    clock.advance(Duration::minutes(20));
    let app = common::bot::start_again(db, slack).await;
    let w = World { fx, app, clock, pd };
    advance(&w, 0).await;
    advance(&w, 0).await;
    assert_eq!(
        dms_to(&w.app, "U0PLATLEAD"),
        1,
        "the missed step fires once, as soon as the bot is back"
    );
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1);
    advance(&w, 30).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 1);
}

#[tokio::test]
async fn someone_paged_who_is_not_an_operator_may_acknowledge_from_the_dm() {
    let w = world(Backend::Sqlite, 0).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    advance(&w, 15).await;
    advance(&w, 30).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 1);
    // The product owner (tier 3) is not an operator of the tenant.
    w.app.interact(&ack(&w.app, "U0PRODOWNER", &alert)).await;
    w.app.drain_outbox().await;
    let a = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
    assert_eq!(a.acked_by.as_deref(), Some("U0PRODOWNER"));
    // And a stranger may not.
    let now = w.clock.now();
    let job2 =
        w.fx.job(JobSpec {
            asset: "other".into(),
            deadline: Some(now + Duration::minutes(120)),
            eta: Some(now + Duration::minutes(130)),
            heartbeat: Some(now),
            ..critical_low()
        })
        .await;
    w.app.poll().await;
    let alert2 = alert_of(&w.app, job2).await;
    w.app.interact(&ack(&w.app, "U0STRANGER", &alert2)).await;
    let a2 = w.app.state.store.get_alert(&alert2).await.unwrap().unwrap();
    assert!(a2.acked_by.is_none());
}

#[tokio::test]
async fn a_config_that_drops_a_tier_ends_a_path_stored_past_it() {
    let w = world(Backend::Sqlite, 0).await;
    w.fx.job(critical_low()).await;
    w.app.poll().await;
    advance(&w, 15).await;
    assert_eq!(
        dms_to(&w.app, "U0PLATLEAD"),
        1,
        "tier 2 paged; tier 3 is next"
    );
    let World { fx, app, clock, pd } = w;
    let (stopped, slack) = app.stop_parts().await;
    // The product stakeholder's tier is taken out of the config meanwhile.
    let two_tiers = common::bot::CONFIG.replace(
        "[[escalation.tiers]]\nname = \"Product/Business Stakeholder\"\nnotify = [\"U0PRODOWNER\"]\nack_timeout = \"60m\"\n",
        "",
    );
    assert!(!two_tiers.contains("Product/Business"));
    let app = common::bot::start_again(stopped.with_config(&two_tiers), slack).await;
    let w = World { fx, app, clock, pd };
    advance(&w, 30).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 0);
    assert!(
        thread_texts(&w.app)
            .iter()
            .any(|t| t.contains("Escalation path exhausted")),
        "{:#?}",
        thread_texts(&w.app)
    );
    let ready = w.app.get("/readyz").await;
    assert!(ready.body.contains("\"workers\":\"ok\""), "{}", ready.body);
}

/// Two clicks a few seconds apart on the same Escalate now button, before
/// Slack shows it refreshed (a double click, or a second person who also
/// confirmed "This pages Platform Team Lead"): the platform lead is paged
/// once, the stakeholder tier never, and the second clicker hears who paged
/// the platform lead and when.
async fn a_double_click_on_escalate_now(backend: Backend) {
    let w = world(backend, 0).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    let value = escalate_value(&w.app);
    assert!(
        value.starts_with(&alert),
        "the value names the alert: {value}"
    );
    w.app.slack.set_user_name("U0ONCALL2", "Grace");
    w.app.interact(&escalate(&w.app, "U0ONCALL2", &value)).await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 1, "{}", told_all(&w.app));
    w.clock.advance(Duration::seconds(4));
    w.app.interact(&escalate(&w.app, "U0ONCALL1", &value)).await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 1, "the platform lead, once");
    assert_eq!(
        dms_to(&w.app, "U0PRODOWNER"),
        0,
        "the stakeholder tier is never paged by the second click"
    );
    let told = told_all(&w.app);
    let second = told.lines().last().unwrap_or_default();
    assert!(
        second.contains("Platform Team Lead")
            && second.contains("already paged")
            && second.contains("Grace")
            && second.contains("<!date^")
            && second.contains("Nobody was paged"),
        "the second clicker is told by whom and when: {told}"
    );
    let refused = w
        .app
        .state
        .store
        .list_audit(Some(&job.to_string()), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "escalate_now" && e.outcome.starts_with("already paged"))
        .count();
    assert_eq!(refused, 1, "the second click is audited");
    // The button now pages the stakeholder tier, and does so when clicked.
    let next = escalate_value(&w.app);
    assert_ne!(next, value);
    w.app.interact(&escalate(&w.app, "U0ONCALL1", &next)).await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 1);
}

#[tokio::test]
async fn a_double_click_on_escalate_now_pages_the_next_tier_once_on_sqlite() {
    a_double_click_on_escalate_now(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_double_click_on_escalate_now_pages_the_next_tier_once_on_postgres() {
    a_double_click_on_escalate_now(Backend::Postgres).await;
}

/// A button rendered before Escalate now carried its tier has only the
/// alert's id: it pages the tier the path stands at, unless the path moved
/// within the last two minutes (then nobody can tell which tier the clicker
/// saw): it pages nobody and says what moved.
#[tokio::test]
async fn an_escalate_now_button_without_its_tier_pages_nobody_right_after_the_path_moved() {
    let w = world(Backend::Sqlite, 0).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    w.app.interact(&escalate(&w.app, "U0ONCALL1", &alert)).await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 0, "nobody paged");
    let told = told_all(&w.app);
    assert!(
        told.contains("On-call Engineer") && told.contains("Nobody was paged"),
        "{told}"
    );
    // Later, with nothing moved meanwhile, it pages where the path stands.
    w.clock.advance(Duration::minutes(3));
    w.app.interact(&escalate(&w.app, "U0ONCALL1", &alert)).await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 1);
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 0);
}

/// Acknowledged at tier 2 (PagerDuty's incident acknowledged), then the band
/// gets worse: PagerDuty ignores new triggers under an acknowledged
/// incident's key, so the old incident is resolved and the re-armed path
/// triggers under a new key; the alert's resolution resolves that one.
#[tokio::test]
async fn a_re_armed_path_pages_pagerduty_under_a_new_key_and_resolves_the_old_one() {
    let w = world(Backend::Sqlite, 0).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    advance(&w, 15).await;
    let old = format!("servo-sla-bot-{alert}");
    assert_eq!(pd_events(&w.pd, "trigger", &old), 1);
    w.app.interact(&ack(&w.app, "U0PLATLEAD", &alert)).await;
    w.app.drain_outbox().await;
    assert_eq!(pd_events(&w.pd, "acknowledge", &old), 1);
    // Worse: Low to High, twenty minutes on (past the rise window).
    w.clock.advance(Duration::minutes(20));
    w.fx.set_eta(job, t0() + Duration::minutes(300), w.clock.now())
        .await;
    w.app.poll().await;
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("escalation re-arms")));
    assert_eq!(
        pd_events(&w.pd, "resolve", &old),
        1,
        "the acknowledged incident is resolved when the path re-arms: {:#?}",
        w.pd.events()
    );
    // Tier 2 again, 15 minutes on: a trigger PagerDuty will not ignore.
    w.fx.set_eta(
        job,
        t0() + Duration::minutes(300),
        w.clock.now() + Duration::minutes(15),
    )
    .await;
    advance(&w, 15).await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 2, "tier 2 paged again");
    let triggers: Vec<Value> =
        w.pd.events()
            .into_iter()
            .filter(|e| e["event_action"] == "trigger")
            .collect();
    assert_eq!(triggers.len(), 2, "{triggers:#?}");
    let new = triggers[1]["dedup_key"].as_str().unwrap().to_string();
    assert_ne!(new, old, "a new incident");
    assert!(new.starts_with(&old), "still named for the alert: {new}");
    assert_eq!(pd_events(&w.pd, "trigger", &old), 1);
    // The resolution resolves the new incident.
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    assert_eq!(pd_events(&w.pd, "resolve", &new), 1, "{:#?}", w.pd.events());
}

/// An acknowledgement recorded while the escalation was still active (as
/// when someone acknowledges in the instant before a poll starts the path):
/// the step that comes due ends the path as the acknowledgement does: its
/// steps cancelled, PagerDuty's incident acknowledged, nobody else paged.
#[tokio::test]
async fn a_step_that_finds_the_alert_acknowledged_ends_the_path_as_acknowledging_does() {
    let w = world(Backend::Sqlite, 0).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    advance(&w, 15).await;
    let key = format!("servo-sla-bot-{alert}");
    assert_eq!(pd_events(&w.pd, "trigger", &key), 1);
    w.app
        .state
        .store
        .acknowledge_alert(&alert, "U0PLATLEAD", w.clock.now())
        .await
        .unwrap();
    advance(&w, 30).await;
    assert_eq!(dms_to(&w.app, "U0PRODOWNER"), 0, "tier 3 is not paged");
    let esc = w
        .app
        .state
        .store
        .get_escalation(&alert)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(esc.status, "acknowledged");
    assert_eq!(
        pd_events(&w.pd, "acknowledge", &key),
        1,
        "PagerDuty hears of it: {:#?}",
        w.pd.events()
    );
    let pending_steps = w
        .app
        .state
        .store
        .list_timers(Some(&alert))
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.kind == "escalation_step" && t.status == "pending")
        .count();
    assert_eq!(pending_steps, 0);
}
