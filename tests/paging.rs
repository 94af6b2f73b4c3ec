//! Pages in order, and pages a person can act on at 3 a.m. (issue 19): who is
//! mentioned when, what a page and its PagerDuty event carry, severity in
//! words, confirmations on the buttons that page, Request scaling as a real
//! page with a cool-down, stakeholders told of extension requests, loud
//! worsenings, and messages that fit Slack's limits whatever Servo says.

mod common;

use chrono::Duration;
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::fake_pagerduty::FakePagerDuty;
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{alert_message, button_value, buttons, t0, thread_texts, told_all};
use serde_json::{json, Value};
use servo_sla_bot::runtime::clock::ManualClock;
use uuid::Uuid;

const CHANNEL: &str = "C0ACMEALERT";

struct World {
    fx: ServoFixture,
    app: TestApp,
    clock: ManualClock,
    pd: FakePagerDuty,
}

/// The test config with PagerDuty on the platform tier (which Request
/// scaling pages), and people with display names.
async fn world(backend: Backend) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let pd = FakePagerDuty::start().await;
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.pagerduty_url = pd.url();
    spec.config = common::bot::CONFIG.replace(
        "notify = [\"U0PLATLEAD\"]\nack_timeout = \"30m\"",
        "notify = [\"U0PLATLEAD\"]\nack_timeout = \"30m\"\npagerduty_routing_key_env = \"PD_PLATFORM_KEY\"",
    );
    let app = spawn(spec).await;
    app.slack
        .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
    app.slack.set_usergroup_handle("S0ONCALL", "oncall");
    app.slack.set_user_name("U0PLATLEAD", "Bo Lead");
    app.slack.set_user_name("U0PRODOWNER", "Pat Owner");
    app.slack.set_user_name("U0ONCALL1", "Ada");
    World { fx, app, clock, pd }
}

/// A critical job (priority 9) at Low risk, 10 minutes late on a deadline two
/// hours away: critical jobs page from Low.
fn critical_low() -> JobSpec {
    JobSpec {
        asset: "revenue_daily".into(),
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: 9,
        durations_ms: vec![60_000, 60_000, 60_000, 120_000, 180_000, 240_000],
        completed: 6,
        ..JobSpec::default()
    }
}

/// A standard job at High: ETA an hour past a deadline an hour away.
fn high() -> JobSpec {
    JobSpec {
        deadline: Some(t0() + Duration::minutes(60)),
        eta: Some(t0() + Duration::minutes(120)),
        heartbeat: Some(t0()),
        priority: 5,
        ..JobSpec::default()
    }
}

async fn advance(w: &World, minutes: i64) {
    common::slack_ui::advance(&w.app, &w.clock, minutes).await;
}

fn click(app: &TestApp, user: &str, action_id: &str, value: &str) -> Value {
    common::slack_ui::fresh_click_in(app, CHANNEL, user, action_id, value)
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

/// Every message and edit the bot sent Slack so far, as JSON text.
fn everything_sent(app: &TestApp) -> Vec<String> {
    app.slack
        .calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c.method.as_str(),
                "chat.postMessage" | "chat.update" | "chat.postEphemeral"
            ) || c.method.starts_with("response_url:")
        })
        .map(|c| c.body.to_string())
        .collect()
}

/// The pages (DMs) a user got, as JSON.
fn pages_to(app: &TestApp, user: &str) -> Vec<Value> {
    app.slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == user && c.body.to_string().contains("You are paged"))
        .map(|c| c.body)
        .collect()
}

/// The confirm dialog of the alert's button with this action id.
fn confirm_of(alert: &Value, action_id: &str) -> Value {
    fn find(v: &Value, id: &str) -> Option<Value> {
        match v {
            Value::Object(m) => {
                if m.get("action_id").and_then(Value::as_str) == Some(id) {
                    return Some(m.get("confirm").cloned().unwrap_or(Value::Null));
                }
                m.values().find_map(|x| find(x, id))
            }
            Value::Array(a) => a.iter().find_map(|x| find(x, id)),
            _ => None,
        }
    }
    find(alert, action_id).unwrap_or(Value::Null)
}

/// No message or edit of the bot's was refused by Slack.
fn assert_slack_refused_nothing(app: &TestApp) {
    let refused: Vec<_> = app
        .slack
        .calls()
        .into_iter()
        .filter(|c| !c.is_ok() && c.method.starts_with("chat."))
        .map(|c| (c.method, c.outcome, c.error_detail))
        .collect();
    assert!(refused.is_empty(), "Slack refused nothing: {refused:#?}");
}

// ----------------------------------------------------------------- order

async fn nobody_is_mentioned_before_their_tier_is_paged(backend: Backend) {
    let w = world(backend).await;
    w.fx.job(critical_low()).await;
    w.app.poll().await;
    let sent = everything_sent(&w.app).join("\n");
    assert!(
        !sent.contains("<@U0PLATLEAD>") && !sent.contains("<@U0PRODOWNER>"),
        "later tiers are named, never mentioned, before their page: {sent}"
    );
    let plan = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("Escalation started"))
        .expect("the plan in the thread");
    assert!(
        plan.contains("@oncall") && plan.contains("Bo Lead") && plan.contains("Pat Owner"),
        "the plan names people by their display names and groups by handle: {plan}"
    );
    assert!(
        !plan.contains("<@") && !plan.contains("<!subteam"),
        "the plan mentions nobody: {plan}"
    );
    assert!(
        plan.contains("resource scaling decisions")
            && plan.contains("deadline negotiation and impact communication"),
        "each tier with its part: {plan}"
    );
    let page_note = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("Paging *On-call Engineer*"))
        .expect("tier 1's page in the thread");
    assert!(page_note.contains("<@U0ONCALL1>") && page_note.contains("<@U0ONCALL2>"));

    advance(&w, 15).await;
    let sent = everything_sent(&w.app).join("\n");
    assert!(
        sent.contains("<@U0PLATLEAD>"),
        "tier 2 is mentioned in the message that pages it"
    );
    assert!(
        !sent.contains("<@U0PRODOWNER>"),
        "tier 3 is still only named"
    );
    advance(&w, 30).await;
    assert!(everything_sent(&w.app)
        .join("\n")
        .contains("<@U0PRODOWNER>"));
}

#[tokio::test]
async fn nobody_is_mentioned_before_their_tier_is_paged_on_sqlite() {
    nobody_is_mentioned_before_their_tier_is_paged(Backend::Sqlite).await;
}

#[tokio::test]
async fn nobody_is_mentioned_before_their_tier_is_paged_on_postgres() {
    nobody_is_mentioned_before_their_tier_is_paged(Backend::Postgres).await;
}

// ------------------------------------------------------ pages stand alone

#[tokio::test]
async fn a_page_and_its_pagerduty_event_carry_what_a_person_needs_to_act() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(critical_low()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    let post = w
        .app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == CHANNEL && m.thread_ts.is_none())
        .expect("the alert post");
    let permalink = format!(
        "https://fake-slack.test/archives/{CHANNEL}/p{}",
        post.ts.replace('.', "")
    );

    let dm = pages_to(&w.app, "U0ONCALL1").pop().expect("tier 1 paged");
    let text = dm.to_string();
    for (what, needle) in [
        ("the asset", "revenue_daily".to_string()),
        ("the job", job.to_string()),
        ("the band", "Low SLA risk".to_string()),
        (
            "how late in time",
            "ETA 10 min after the deadline, 2 h left".to_string(),
        ),
        (
            "the ETA as a date token",
            format!("<!date^{}^", (t0() + Duration::minutes(130)).timestamp()),
        ),
        (
            "the deadline as a date token",
            format!("<!date^{}^", (t0() + Duration::minutes(120)).timestamp()),
        ),
        (
            "what is slowing it",
            "Partition durations rising".to_string(),
        ),
        ("a link to the alert", permalink.clone()),
        (
            "the runbook",
            "https://docs.servo.io/runbooks/backfill-sla-risk".to_string(),
        ),
        (
            "what this tier is for",
            "initial assessment and standard mitigation".to_string(),
        ),
        ("who is next", "Bo Lead".to_string()),
        ("Acknowledge", "alert_ack".to_string()),
    ] {
        assert!(
            text.contains(&needle),
            "the page says {what} ({needle}): {text}"
        );
    }
    assert!(
        !text.contains("%SLACK_PERMALINK%") && !text.contains("_permalink"),
        "the link placeholder never reaches Slack"
    );
    assert_eq!(
        w.app.slack.ok_calls_to("chat.getPermalink").len(),
        1,
        "one permalink lookup serves every DM of the page"
    );

    advance(&w, 15).await;
    let events = w.pd.events();
    let trigger = events
        .iter()
        .find(|e| e["event_action"] == "trigger")
        .expect("tier 2 has a routing key");
    assert_eq!(trigger["dedup_key"], format!("servo-sla-bot-{alert}"));
    assert_eq!(trigger["payload"]["source"], "servo-sla-bot/acme");
    let links: Vec<&str> = trigger["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["href"].as_str().unwrap())
        .collect();
    assert_eq!(
        links,
        [
            permalink.as_str(),
            "https://docs.servo.io/runbooks/backfill-sla-risk"
        ]
    );
    let details = &trigger["payload"]["custom_details"];
    assert_eq!(details["tenant"], "acme");
    assert_eq!(details["job_id"], job.to_string());
    assert_eq!(details["asset"], "revenue_daily");
    assert_eq!(details["band"], "low");
    assert_eq!(details["tier"], "Platform Team Lead");
    assert_eq!(details["tier_purpose"], "resource scaling decisions");
    for key in ["eta", "deadline"] {
        assert!(
            chrono::DateTime::parse_from_rfc3339(details[key].as_str().unwrap()).is_ok(),
            "{key} is a time: {details}"
        );
    }
    assert!(
        details["severity"]
            .as_str()
            .unwrap()
            .contains("after the deadline"),
        "{details}"
    );
    let summary = trigger["payload"]["summary"].as_str().unwrap();
    assert!(summary.contains("revenue_daily") && summary.contains("after the deadline"));
    assert!(
        !summary.contains("<!date"),
        "PagerDuty gets plain text: {summary}"
    );
    let dm2 = pages_to(&w.app, "U0PLATLEAD").pop().expect("tier 2 paged");
    assert!(dm2.to_string().contains("resource scaling decisions"));
}

#[tokio::test]
async fn a_tiers_part_can_be_configured() {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(Backend::Sqlite)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = common::bot::CONFIG.replace(
        "notify = [\"S0ONCALL\"]\nack_timeout = \"15m\"",
        "notify = [\"S0ONCALL\"]\nack_timeout = \"15m\"\npurpose = \"triage within 15 minutes, then mitigate\"",
    );
    let app = spawn(spec).await;
    app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    fx.job(critical_low()).await;
    app.poll().await;
    let dm = pages_to(&app, "U0ONCALL1").pop().expect("paged");
    assert!(dm
        .to_string()
        .contains("triage within 15 minutes, then mitigate"));
}

// ------------------------------------------------------ severity in words

#[tokio::test]
async fn severity_reads_as_time_late_or_time_to_spare_never_a_negative_late() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(high()).await;
    w.app.poll().await;
    let shown = alert_message(&w.app).to_string();
    assert!(
        shown.contains("ETA 1 h after the deadline, 1 h left (severity 100%)"),
        "{shown}"
    );
    // Back on track: the resolution says the time to spare.
    w.fx.set_eta(job, t0() + Duration::minutes(40), t0()).await;
    w.app.poll().await;
    let shown = alert_message(&w.app).to_string();
    assert!(
        shown.contains("on track: ETA 20 min before the deadline, 1 h left"),
        "{shown}"
    );
    let all = everything_sent(&w.app).join("\n");
    assert!(
        !all.contains("% late"),
        "no percentage 'late' anywhere: {all}"
    );
    // And /backfill status on the job card.
    let card = w
        .app
        .slash(&format!("status {job}"), "U0PLATLEAD", CHANNEL)
        .await
        .json()
        .to_string();
    assert!(card.contains("before the deadline"), "{card}");
}

// ------------------------------------------------------ confirmations

#[tokio::test]
async fn the_buttons_that_page_confirm_first_and_say_who_is_paged() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(high()).await;
    w.app.poll().await;
    let shown = alert_message(&w.app);
    // A standard job pages from Medium: tier 1 was paged at once, so
    // Escalate now pages tier 2.
    let esc = confirm_of(&shown, "alert_escalate");
    let text = esc["text"]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Platform Team Lead") && text.contains("Bo Lead"),
        "Escalate now names the tier and its people: {esc}"
    );
    let scaling = confirm_of(&shown, "mitigate_scaling");
    let text = scaling["text"]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Platform Team Lead")
            && text.contains("Bo Lead")
            && text.contains("PagerDuty"),
        "Request scaling names who it pages and how: {scaling}"
    );
    assert!(
        !shown.to_string().contains("<@U0PLATLEAD>"),
        "a confirmation names, never mentions"
    );
    // After tier 2 is paged, Escalate now names tier 3.
    advance(&w, 15).await;
    let esc = confirm_of(&alert_message(&w.app), "alert_escalate");
    assert!(
        esc.to_string().contains("Product/Business Stakeholder")
            && esc.to_string().contains("Pat Owner"),
        "{esc}"
    );
    // The ephemeral answer to Escalate now says who was paged.
    let alert = alert_of(&w.app, job).await;
    let value = button_value(&alert_message(&w.app), "alert_escalate").unwrap();
    assert!(value.starts_with(&alert), "{value}");
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "alert_escalate", &value))
        .await;
    w.app.drain_outbox().await;
    let told = told_all(&w.app);
    assert!(
        told.contains("Paged *Product/Business Stakeholder* now (Pat Owner)"),
        "{told}"
    );
}

#[tokio::test]
async fn five_buttons_at_most_in_a_row_and_the_overflow_acts_as_its_button() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(high()).await;
    w.app.poll().await;
    let shown = alert_message(&w.app);
    let rows: Vec<Value> = shown["attachments"][0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .cloned()
        .collect();
    assert_eq!(rows.len(), 1);
    let elements = rows[0]["elements"].as_array().unwrap();
    let row_buttons = elements.iter().filter(|e| e["type"] == "button").count();
    assert!(row_buttons <= 5, "{elements:#?}");
    let menu = elements
        .iter()
        .find(|e| e["type"] == "overflow")
        .expect("the rest in an overflow menu");
    assert!(menu["options"].as_array().unwrap().len() >= 2);
    assert!(buttons(&shown).contains(&"extension_request".to_string()));
    // Choosing Request extension in the menu opens its dialog.
    let alert = alert_of(&w.app, job).await;
    assert_eq!(
        button_value(&shown, "extension_request").as_deref(),
        Some(alert.as_str())
    );
    let answer = w
        .app
        .interact(&common::slack_ui::overflow_click_in(
            &w.app,
            CHANNEL,
            "U0PLATLEAD",
            "extension_request",
            &alert,
        ))
        .await;
    assert_eq!(answer.status, 200);
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1, "{}", told_all(&w.app));
    assert_eq!(views[0].view["callback_id"], "extension_request");
}

// ------------------------------------------------------ request scaling

async fn request_scaling_is_a_real_page_with_a_cool_down(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(high()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    let scaling_dms = |app: &TestApp| -> Vec<Value> {
        app.slack
            .ok_calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| {
                c.body["channel"] == "U0PLATLEAD"
                    && c.body.to_string().contains("Emergency scaling requested")
            })
            .map(|c| c.body)
            .collect()
    };
    // A double click pages once.
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "mitigate_scaling", &alert))
        .await;
    w.app
        .interact(&click(&w.app, "U0ONCALL2", "mitigate_scaling", &alert))
        .await;
    w.app.drain_outbox().await;
    let dms = scaling_dms(&w.app);
    assert_eq!(dms.len(), 1, "{}", told_all(&w.app));
    let dm = dms[0].to_string();
    for needle in [
        "Ada",
        "Scale up the executors",
        "Lower other workloads' resource limits",
        "Enable burst capacity",
        "revenue_daily",
        "after the deadline",
        "https://fake-slack.test/archives/",
        "https://docs.servo.io/runbooks/backfill-sla-risk",
    ] {
        assert!(dm.contains(needle), "the scaling page says {needle}: {dm}");
    }
    let ack_value = button_value(&dms[0], "scaling_ack").expect("an Acknowledge button");
    assert_eq!(ack_value, format!("{alert}:1"));
    let note = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("requested emergency scaling"))
        .expect("the thread says who asked");
    assert!(
        note.contains("Ada") && note.contains("<@U0PLATLEAD>"),
        "{note}"
    );
    assert!(
        !note.contains("<@U0ONCALL1>"),
        "the asker is named, not pinged"
    );
    let triggers: Vec<Value> =
        w.pd.events()
            .into_iter()
            .filter(|e| e["dedup_key"] == format!("servo-sla-bot-{alert}-scaling-1"))
            .collect();
    assert_eq!(triggers.len(), 1, "PagerDuty, once");
    assert_eq!(triggers[0]["event_action"], "trigger");
    assert!(triggers[0]["links"]
        .as_array()
        .is_some_and(|l| l.len() == 2));
    let told = told_all(&w.app);
    assert!(told.contains("can be requested again"), "{told}");

    // Within the cool-down: refused, saying when it can be asked again.
    advance(&w, 10).await;
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "mitigate_scaling", &alert))
        .await;
    w.app.drain_outbox().await;
    assert_eq!(scaling_dms(&w.app).len(), 1);
    assert!(told_all(&w.app).contains("Scaling was requested"));

    // The platform lead acknowledges from the DM, once.
    let ack = |user: &str| {
        json!({
            "type": "block_actions", "user": {"id": user},
            "channel": {"id": "DU0PLATLEAD"},
            "response_url": w.app.slack.response_url(&format!("sack-{user}-{}", Uuid::new_v4().simple())),
            "actions": [{"action_id": "scaling_ack", "value": ack_value, "type": "button"}]
        })
    };
    w.app.interact(&ack("U0PLATLEAD")).await;
    w.app.interact(&ack("U0PLATLEAD")).await;
    w.app.drain_outbox().await;
    assert_eq!(
        thread_texts(&w.app)
            .iter()
            .filter(|t| t.contains("acknowledged the scaling request"))
            .count(),
        1
    );
    assert!(told_all(&w.app).contains("Already acknowledged by Bo Lead"));
    assert_eq!(
        w.pd.events()
            .iter()
            .filter(|e| e["event_action"] == "acknowledge"
                && e["dedup_key"] == format!("servo-sla-bot-{alert}-scaling-1"))
            .count(),
        1
    );
    // Someone off the path may not acknowledge it.
    w.app.interact(&ack("U0RANDOM")).await;
    w.app.drain_outbox().await;
    assert!(told_all(&w.app).contains("Only the tenant's operators"));

    // After the cool-down it can be requested again: a second page.
    advance(&w, 21).await;
    w.app
        .interact(&click(&w.app, "U0ONCALL2", "mitigate_scaling", &alert))
        .await;
    w.app.drain_outbox().await;
    let dms = scaling_dms(&w.app);
    assert_eq!(dms.len(), 2);
    assert_eq!(
        button_value(&dms[1], "scaling_ack").as_deref(),
        Some(format!("{alert}:2").as_str())
    );
    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&job.to_string()), 50)
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "request_scaling" && e.outcome == "ok")
            .count(),
        2
    );
    assert!(audit
        .iter()
        .any(|e| e.action == "request_scaling" && e.outcome == "refused: cooling down"));
}

/// A scaling request is an incident of its own in PagerDuty: when the alert
/// resolves, each of its scaling incidents resolves with it (acknowledged
/// or not), as the escalation's own incident does.
async fn scaling_incidents_resolve_with_the_alert(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(high()).await;
    w.app.poll().await;
    let alert = alert_of(&w.app, job).await;
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "mitigate_scaling", &alert))
        .await;
    w.app.drain_outbox().await;
    advance(&w, 31).await;
    w.app
        .interact(&click(&w.app, "U0ONCALL1", "mitigate_scaling", &alert))
        .await;
    w.app.drain_outbox().await;
    let keys: Vec<String> = (1..=2)
        .map(|n| format!("servo-sla-bot-{alert}-scaling-{n}"))
        .collect();
    for key in &keys {
        assert_eq!(
            w.pd.events()
                .iter()
                .filter(|e| e["event_action"] == "trigger" && e["dedup_key"] == *key)
                .count(),
            1,
            "{key}"
        );
    }
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    for key in &keys {
        assert_eq!(
            w.pd.events()
                .iter()
                .filter(|e| e["event_action"] == "resolve" && e["dedup_key"] == *key)
                .count(),
            1,
            "{key} resolves with the alert: {:#?}",
            w.pd.events()
        );
    }
}

#[tokio::test]
async fn scaling_incidents_resolve_with_the_alert_on_sqlite() {
    scaling_incidents_resolve_with_the_alert(Backend::Sqlite).await;
}

#[tokio::test]
async fn scaling_incidents_resolve_with_the_alert_on_postgres() {
    scaling_incidents_resolve_with_the_alert(Backend::Postgres).await;
}

#[tokio::test]
async fn request_scaling_is_a_real_page_with_a_cool_down_on_sqlite() {
    request_scaling_is_a_real_page_with_a_cool_down(Backend::Sqlite).await;
}

#[tokio::test]
async fn request_scaling_is_a_real_page_with_a_cool_down_on_postgres() {
    request_scaling_is_a_real_page_with_a_cool_down(Backend::Postgres).await;
}

// ------------------------------------------------------ stakeholders

#[tokio::test]
async fn each_deciding_stakeholder_hears_of_an_extension_request_by_dm() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(high()).await;
    w.app.poll().await;
    let answer = w
        .app
        .slash(
            &format!("extend-deadline {job} +2h upstream <!channel> outage"),
            "U0ONCALL1",
            CHANNEL,
        )
        .await;
    assert!(
        answer.json().to_string().contains("Pat Owner"),
        "{}",
        answer.json()
    );
    assert!(!answer.json().to_string().contains("<@U0PRODOWNER>"));
    w.app.drain_outbox().await;
    let request = w
        .app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_some() && m.text.contains("extension"))
        .expect("the request in the alert's thread");
    let dms: Vec<Value> = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == "U0PRODOWNER")
        .map(|c| c.body)
        .collect();
    assert_eq!(dms.len(), 1);
    let dm = dms[0].to_string();
    assert!(dm.contains("waits for your decision"), "{dm}");
    assert!(
        dm.contains(&format!(
            "https://fake-slack.test/archives/{CHANNEL}/p{}",
            request.ts.replace('.', "")
        )),
        "a link to the request in the thread: {dm}"
    );
    assert!(dm.contains("Ada"), "who asks: {dm}");
    assert!(
        dm.contains("&lt;!channel&gt;") && !dm.contains("<!channel>"),
        "the reason is escaped: {dm}"
    );
    assert!(
        buttons(&dms[0]).is_empty(),
        "the decision stays in the thread"
    );
}

// ------------------------------------------------------ worse is loud

#[tokio::test]
async fn a_worsening_to_high_or_breached_is_one_broadcast_reply() {
    let w = world(Backend::Sqlite).await;
    // Medium: 18 min late on a deadline an hour away.
    let job =
        w.fx.job(JobSpec {
            deadline: Some(t0() + Duration::minutes(60)),
            eta: Some(t0() + Duration::minutes(78)),
            heartbeat: Some(t0()),
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let loud = |app: &TestApp| {
        app.slack
            .messages()
            .into_iter()
            .filter(|m| m.broadcast)
            .map(|m| m.text)
            .collect::<Vec<_>>()
    };
    assert!(loud(&w.app).is_empty());
    w.fx.set_eta(job, t0() + Duration::minutes(120), t0()).await;
    w.app.poll().await;
    w.app.poll().await;
    let l = loud(&w.app);
    assert_eq!(l.len(), 1, "{l:#?}");
    assert!(l[0].contains("risk rose from *Medium* to *High*"), "{l:#?}");
    // The deadline passes: breached is loud too.
    w.clock.advance(Duration::minutes(61));
    w.fx.set_eta(
        job,
        t0() + Duration::minutes(125),
        t0() + Duration::minutes(61),
    )
    .await;
    w.app.poll().await;
    w.app.poll().await;
    let l = loud(&w.app);
    assert_eq!(l.len(), 2, "{l:#?}");
    assert!(l[1].contains("Deadline breached"));
}

// ------------------------------------------------------ hostile text, limits

#[tokio::test]
async fn hostile_servo_text_is_escaped_and_long_text_fits() {
    let w = world(Backend::Sqlite).await;
    let evil = "revenue_<!channel>_&_<@U0EVIL>";
    let job =
        w.fx.job(JobSpec {
            asset: evil.into(),
            ..critical_low()
        })
        .await;
    w.app.poll().await;
    advance(&w, 15).await;
    // Cancelled with a reason that pings and a 4 KB stack trace.
    let trace = format!(
        "<!channel> boom\n{}",
        "at servo::executor::run (executor.rs:42)\n".repeat(100)
    );
    assert!(trace.len() > 4000);
    sqlx::query(
        "UPDATE backfill_jobs SET state = 'cancelled', error_message = $2, completed_at = now() WHERE id = $1",
    )
    .bind(job)
    .bind(&trace)
    .execute(&w.fx.admin)
    .await
    .unwrap();
    w.app.poll().await;
    assert_slack_refused_nothing(&w.app);
    let resolved = alert_message(&w.app).to_string();
    assert!(resolved.contains("Cancelled"), "{resolved}");
    assert!(resolved.contains('…'), "the trace is cut: {resolved}");
    for sent in everything_sent(&w.app) {
        assert!(
            !sent.contains("<!channel>"),
            "nothing pings the channel: {sent}"
        );
        assert!(
            !sent.contains("<@U0EVIL>"),
            "nothing forges a mention: {sent}"
        );
    }
    for event in w.pd.events() {
        if let Some(summary) = event["payload"]["summary"].as_str() {
            assert!(summary.chars().count() <= 1024);
        }
    }
}

#[tokio::test]
async fn sixty_high_priority_jobs_at_risk_page_within_slacks_limits() {
    let w = world(Backend::Sqlite).await;
    for i in 0..60 {
        w.fx.job(JobSpec {
            asset: format!("revenue_region_with_a_long_name_{i:02}"),
            ..critical_low()
        })
        .await;
    }
    w.app.poll().await;
    assert_slack_refused_nothing(&w.app);
    let pages = pages_to(&w.app, "U0PLATLEAD");
    // One cause, one page for all sixty (issue 33), not one per alert.
    let several: Vec<&Value> = pages
        .iter()
        .filter(|p| p.to_string().contains("high-priority jobs"))
        .collect();
    assert_eq!(
        several.len(),
        1,
        "several high-priority jobs at once: one page"
    );
    let page = several[0].to_string();
    assert!(page.contains("60 high-priority jobs"), "{page}");
    assert!(
        page.contains("more (`/backfill list at-risk`)"),
        "the list is cut: {page}"
    );
    assert!(several[0]["text"].as_str().unwrap().chars().count() <= 3000);
    for block in several[0]["blocks"].as_array().into_iter().flatten() {
        if let Some(t) = block["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000);
        }
    }
}
