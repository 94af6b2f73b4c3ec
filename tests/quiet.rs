//! Quiet times (issue 35): silences, paging hours and maintenance windows,
//! with a manual clock, on SQLite and PostgreSQL.

mod common;

use chrono::Duration;
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{
    alert_message, button_value, overflow_click_in, t0, thread_texts, told_all,
};
use servo_sla_bot::runtime::clock::{Clock, ManualClock};

struct World {
    fx: ServoFixture,
    app: TestApp,
    clock: ManualClock,
}

async fn world_with(backend: Backend, extra: &str) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = format!("{}\n{extra}", common::bot::CONFIG);
    let app = spawn(spec).await;
    app.slack
        .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
    World { fx, app, clock }
}

async fn world(backend: Backend) -> World {
    world_with(backend, "").await
}

/// A critical job (priority 9) at Low risk: critical jobs page from Low.
fn critical_low(asset: &str) -> JobSpec {
    JobSpec {
        asset: asset.into(),
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: 9,
        ..JobSpec::default()
    }
}

/// A critical job past its deadline.
fn breached(asset: &str) -> JobSpec {
    JobSpec {
        asset: asset.into(),
        deadline: Some(t0() - Duration::minutes(10)),
        eta: Some(t0() + Duration::minutes(30)),
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

/// Servo's ETA stays 10 minutes past the 2-hour deadline, with a fresh
/// heartbeat: the job stays at risk however far the clock moves.
async fn keep_late(w: &World, job: uuid::Uuid) {
    w.fx.set_eta(job, t0() + Duration::minutes(130), w.clock.now())
        .await;
}

/// `/backfill <text>` by an operator of acme in its channel: the answer.
async fn slash(w: &World, text: &str, user: &str) -> String {
    let answer = w.app.slash(text, user, "C0ACMEALERT").await;
    w.app.drain_outbox().await;
    answer.json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn silence_id(answer: &str) -> String {
    let at = answer
        .find("(id `")
        .expect("the answer names the silence's id")
        + 5;
    answer[at..at + 8].to_string()
}

fn threads_with(app: &TestApp, needle: &str) -> usize {
    thread_texts(app)
        .iter()
        .filter(|t| t.contains(needle))
        .count()
}

// ------------------------------------------------------------- silences

async fn a_silenced_job_does_not_page_and_its_alert_says_so(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    let short = &job.to_string()[..8];
    let answer = slash(
        &w,
        &format!("silence {short} 1h vendor outage"),
        "U0PLATLEAD",
    )
    .await;
    assert!(answer.contains("Silenced job"), "{answer}");
    w.app.poll().await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        0,
        "a silenced job pages nobody"
    );
    let alert = alert_message(&w.app).to_string();
    assert!(
        alert.contains("Silenced by <@U0PLATLEAD> until") && alert.contains("vendor outage"),
        "{alert}"
    );
    assert!(
        threads_with(&w.app, "Silenced by <@U0PLATLEAD>") >= 1,
        "the thread says why it does not page"
    );
    // Polls go on; the alert updates, still nobody is paged, the note is not repeated.
    w.app.poll().await;
    advance(&w, 5).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0);
    assert_eq!(threads_with(&w.app, ":mute: Silenced by"), 1);
    // Audited, listed, counted.
    let audit = w.app.state.store.list_audit(None, 50).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "silence" && e.actor == "U0PLATLEAD"));
    let id = silence_id(&answer);
    let list = slash(&w, "silences", "U0ONCALL1").await;
    assert!(list.contains(&id), "{list}");
    assert_eq!(
        w.app
            .metric("servo_sla_bot_silences_active{tenant=\"acme\"}")
            .await,
        1.0
    );
    // The App Home shows it.
    servo_sla_bot::flows::home::publish(&w.app.state, "U0PLATLEAD")
        .await
        .unwrap();
    let home = w.app.slack.ok_calls_to("views.publish");
    let last = home.last().expect("a Home published").body.to_string();
    assert!(
        last.contains("Silences in force") && last.contains(&id),
        "{last}"
    );
}

on_both_stores!(a_silenced_job_does_not_page_and_its_alert_says_so);

async fn a_silence_stops_an_escalation_and_unsilence_pages_again_from_tier_1(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "tier 1 paged");
    let answer = slash(
        &w,
        "silence orders_daily 4h deploy in progress",
        "U0PLATLEAD",
    )
    .await;
    assert!(answer.contains("Silenced asset"), "{answer}");
    assert_eq!(
        threads_with(&w.app, "The escalation stops"),
        1,
        "the escalation under way stops, and its thread says so: {:#?}",
        thread_texts(&w.app)
    );
    advance(&w, 20).await;
    keep_late(&w, job).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 0, "tier 2 is not paged");
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1);
    // Lifted: the thread says so, and the job, still at risk, pages from tier 1.
    let id = silence_id(&answer);
    let lifted = slash(&w, &format!("unsilence {id}"), "U0PLATLEAD").await;
    assert!(lifted.contains("Lifted"), "{lifted}");
    w.app.drain_outbox().await;
    assert_eq!(threads_with(&w.app, "lifted by <@U0PLATLEAD>"), 1);
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 2, "paged again from tier 1");
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 0);
    let again = slash(&w, &format!("unsilence {id}"), "U0PLATLEAD").await;
    assert!(again.contains("already ended"), "{again}");
    let audit = w.app.state.store.list_audit(None, 100).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "silence_end" && e.actor == "U0PLATLEAD"));
}

on_both_stores!(a_silence_stops_an_escalation_and_unsilence_pages_again_from_tier_1);

async fn a_silence_that_expires_says_so_and_pages_again(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    slash(&w, "silence acme 30m", "U0PLATLEAD").await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0);
    w.clock.advance(Duration::minutes(1));
    keep_late(&w, job).await;
    w.app.poll().await;
    advance(&w, 30).await;
    assert_eq!(threads_with(&w.app, "The silence expired"), 1);
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        1,
        "still at risk: pages from tier 1"
    );
    keep_late(&w, job).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "and once");
    assert_eq!(
        w.app
            .metric("servo_sla_bot_silences_active{tenant=\"acme\"}")
            .await,
        0.0
    );
}

on_both_stores!(a_silence_that_expires_says_so_and_pages_again);

/// The same silence typed again (a new command, not a retry: another
/// trigger) is answered with the silence in force, not made twice; one
/// that says more (later, or through a breach) is a silence of its own.
async fn the_same_silence_typed_again_is_one_silence(backend: Backend) {
    let w = world(backend).await;
    w.fx.job(critical_low("orders_daily")).await;
    let typed = |text: &'static str, trigger: &'static str| {
        let app = &w.app;
        async move {
            let answer = app
                .slash_as(text, "U0PLATLEAD", "C0ACMEALERT", trigger)
                .await;
            app.drain_outbox().await;
            answer.json()["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    let first = typed("silence orders_daily 2h deploy", "1.1.a").await;
    assert!(first.contains(":mute: Silenced asset"), "{first}");
    let again = typed("silence orders_daily 2h deploy", "2.2.b").await;
    assert!(again.contains(":mute: Already silenced: asset"), "{again}");
    assert_eq!(silence_id(&again), silence_id(&first));
    let shorter = typed("silence orders_daily 30m", "3.3.c").await;
    assert_eq!(silence_id(&shorter), silence_id(&first), "{shorter}");
    let in_force = |n: usize| {
        let store = &w.app.state.store;
        let now = w.clock.now();
        async move {
            assert_eq!(store.active_silences(None, now).await.unwrap().len(), n);
        }
    };
    in_force(1).await;
    // Through a breach, or later: more than the one in force says.
    let through = typed("silence orders_daily 2h --through-breach", "4.4.d").await;
    assert!(through.contains(":mute: Silenced asset"), "{through}");
    assert_ne!(silence_id(&through), silence_id(&first));
    let later = typed("silence orders_daily 4h", "5.5.e").await;
    assert!(later.contains(":mute: Silenced asset"), "{later}");
    in_force(3).await;
}

on_both_stores!(the_same_silence_typed_again_is_one_silence);

async fn a_breach_breaks_through_unless_through_breach(backend: Backend) {
    let w = world(backend).await;
    w.fx.job(breached("orders_daily")).await;
    w.fx.job(breached("users_daily")).await;
    slash(&w, "silence orders_daily 2h", "U0PLATLEAD").await;
    slash(
        &w,
        "silence users_daily 2h known --through-breach",
        "U0PLATLEAD",
    )
    .await;
    w.app.poll().await;
    let pages: Vec<String> = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "U0ONCALL1")
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(pages.len(), 1, "{pages:#?}");
    assert!(pages[0].contains("orders_daily"), "{pages:#?}");
}

on_both_stores!(a_breach_breaks_through_unless_through_breach);

async fn an_asset_silence_covers_its_later_jobs(backend: Backend) {
    let w = world(backend).await;
    let first = w.fx.job(critical_low("orders_daily")).await;
    slash(&w, "silence orders_daily 2h recreating", "U0PLATLEAD").await;
    w.app.poll().await;
    // The job is recreated: the old one is cancelled, a new one runs.
    w.fx.update_job(first, "state = 'cancelled'").await;
    w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    w.app.poll().await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        0,
        "the recreated job stays silenced"
    );
    // Another asset is not covered.
    w.fx.job(critical_low("users_daily")).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1);
}

on_both_stores!(an_asset_silence_covers_its_later_jobs);

/// Risk rises after the acknowledgement while a silence holds paging: the
/// re-arm is decided then (the acknowledgement no longer stands), and the
/// silence's end pages again.
async fn a_rise_after_the_acknowledgement_inside_a_silence_pages_when_it_ends(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1);
    let alert = alert_id(&w.app);
    w.app
        .interact(&common::slack_ui::click_in(
            &w.app,
            "C0ACMEALERT",
            "U0ONCALL1",
            "alert_ack",
            &alert,
        ))
        .await;
    w.app.drain_outbox().await;
    slash(&w, "silence orders_daily 30m deploy", "U0PLATLEAD").await;
    // Worse, not breached, inside the silence.
    advance(&w, 1).await;
    w.fx.set_eta(job, t0() + Duration::minutes(300), w.clock.now())
        .await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "held by the silence");
    let held = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
    assert_eq!(
        held.acked_by, None,
        "the re-arm cleared the acknowledgement"
    );
    assert!(threads_with(&w.app, "the escalation re-arms") >= 1);
    // The silence ends: it pages again, from the first tier.
    advance(&w, 20).await;
    w.fx.set_eta(job, t0() + Duration::minutes(300), w.clock.now())
        .await;
    w.app.poll().await;
    advance(&w, 10).await;
    w.app.drain_outbox().await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        2,
        "{:#?}",
        thread_texts(&w.app)
    );
}

on_both_stores!(a_rise_after_the_acknowledgement_inside_a_silence_pages_when_it_ends);

// ------------------------------------------------ the alert's menu

/// The alert's id, from its Acknowledge button.
fn alert_id(app: &TestApp) -> String {
    button_value(&alert_message(app), "alert_ack").expect("an Acknowledge button")
}

/// Chooses an option of the alert's overflow menu as Slack sends it; what
/// the chooser was told.
async fn choose(w: &World, user: &str, action_id: &str, value: &str) -> String {
    let before = told_all(&w.app);
    w.app
        .interact(&overflow_click_in(
            &w.app,
            "C0ACMEALERT",
            user,
            action_id,
            value,
        ))
        .await;
    w.app.drain_outbox().await;
    told_all(&w.app)[before.len()..].trim().to_string()
}

/// The labels of the alert's overflow menu, in order.
fn menu_labels(alert: &serde_json::Value) -> Vec<String> {
    let rows = alert["attachments"][0]["blocks"].as_array().unwrap();
    rows.iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().clone())
        .filter(|e| e["type"] == "overflow")
        .flat_map(|e| e["options"].as_array().unwrap().clone())
        .map(|o| o["text"]["text"].as_str().unwrap().to_string())
        .collect()
}

async fn the_alert_menu_silences_the_job_for_an_hour_and_lifts_it(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "tier 1 paged");
    let alert = alert_id(&w.app);
    let menu = menu_labels(&alert_message(&w.app));
    assert_eq!(
        menu,
        [
            "Silence for 1 hour",
            "Silence for 4 hours",
            "Silence until 09:00 tomorrow",
            "Silence…"
        ],
        "the menu offers the quick silences and the dialog"
    );
    let told = choose(&w, "U0PLATLEAD", "alert_silence", &format!("{alert}:1h")).await;
    assert!(told.contains("Silenced job"), "{told}");
    let silences = w
        .app
        .state
        .store
        .active_silences(None, w.clock.now())
        .await
        .unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].target, job.to_string());
    assert_eq!(silences[0].ends_at, w.clock.now() + Duration::hours(1));
    assert!(!silences[0].through_breach);
    let shown = alert_message(&w.app).to_string();
    assert!(shown.contains("Silenced by <@U0PLATLEAD> until"), "{shown}");
    assert_eq!(
        threads_with(&w.app, "The escalation stops"),
        1,
        "the escalation under way stops, and its thread says so"
    );
    // Its menu now lifts the silence.
    assert_eq!(
        menu_labels(&alert_message(&w.app)),
        ["Lift silence", "Silence…"]
    );
    // A second click on a stale copy of the menu decides nothing more.
    let again = choose(&w, "U0PLATLEAD", "alert_silence", &format!("{alert}:1h")).await;
    assert!(again.contains("Already silenced"), "{again}");
    assert_eq!(
        w.app
            .state
            .store
            .active_silences(None, w.clock.now())
            .await
            .unwrap()
            .len(),
        1
    );
    advance(&w, 20).await;
    keep_late(&w, job).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0PLATLEAD"), 0, "tier 2 is not paged");
    // Lift silence: paging starts again from tier 1, once however often clicked.
    let id = silences[0].id.clone();
    let lifted = choose(&w, "U0PLATLEAD", "alert_unsilence", &id).await;
    assert!(lifted.contains("Lifted the silence"), "{lifted}");
    let twice = choose(&w, "U0PLATLEAD", "alert_unsilence", &id).await;
    assert!(twice.contains("already ended"), "{twice}");
    assert_eq!(threads_with(&w.app, "lifted by <@U0PLATLEAD>"), 1);
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 2, "paged again from tier 1");
    let audit = w.app.state.store.list_audit(None, 100).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "silence" && e.actor == "U0PLATLEAD")
            .count(),
        1
    );
    assert!(audit
        .iter()
        .any(|e| e.action == "silence_end" && e.actor == "U0PLATLEAD"));
}

on_both_stores!(the_alert_menu_silences_the_job_for_an_hour_and_lifts_it);

#[tokio::test]
async fn until_nine_tomorrow_is_nine_in_the_clickers_zone() {
    let w = world(Backend::Sqlite).await;
    w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    // Tokyo, UTC+9: 09:00 tomorrow there.
    w.app
        .slack
        .set_user_tz("U0PLATLEAD", "Asia/Tokyo", 9 * 3600);
    let told = choose(
        &w,
        "U0PLATLEAD",
        "alert_silence",
        &format!("{alert}:morning"),
    )
    .await;
    assert!(told.contains("Silenced job"), "{told}");
    let tokyo = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let local_tomorrow = (w.clock.now().with_timezone(&tokyo).date_naive())
        .succ_opt()
        .unwrap();
    let expected = local_tomorrow
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_local_timezone(tokyo)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let silences = w
        .app
        .state
        .store
        .active_silences(None, w.clock.now())
        .await
        .unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].ends_at, expected);
    assert!(!told.contains("UTC: Slack did not say"), "{told}");
}

#[tokio::test]
async fn the_silence_dialog_asks_how_long_what_and_why_and_explains_bad_input() {
    let w = world(Backend::Sqlite).await;
    let first = w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    choose(&w, "U0PLATLEAD", "alert_silence", &format!("{alert}:ask")).await;
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1, "the Silence… dialog opens");
    let view = &views[0].view;
    assert_eq!(view["callback_id"], "alert_silence");
    let submit = |until: &str, breach: bool| {
        let breach = if breach {
            serde_json::json!([{"value": "hold"}])
        } else {
            serde_json::json!([])
        };
        serde_json::json!({
            "type": "view_submission",
            "user": {"id": "U0PLATLEAD"},
            "view": {
                "id": "V0SILENCE1",
                "callback_id": "alert_silence",
                "private_metadata": view["private_metadata"],
                "state": {"values": {
                    "for": {"value": {"type": "radio_buttons", "selected_option": {"value": "other"}}},
                    "until": {"value": {"type": "plain_text_input", "value": until}},
                    "scope": {"value": {"type": "radio_buttons", "selected_option": {"value": "asset"}}},
                    "reason": {"value": {"type": "plain_text_input", "value": "warehouse migration"}},
                    "breach": {"value": {"type": "checkboxes", "selected_options": breach}}
                }}
            }
        })
    };
    // An end typed beside another choice (the dialog opens on "1 hour")
    // is not silently dropped.
    let mut beside = submit("8h", false);
    beside["view"]["state"]["values"]["for"]["value"]["selected_option"]["value"] = "1h".into();
    let body = w.app.interact(&beside).await.json();
    assert_eq!(body["response_action"], "errors", "{body}");
    assert!(
        body["errors"]["until"]
            .as_str()
            .unwrap()
            .contains("Pick *Other*"),
        "{body}"
    );
    // Bad input keeps the dialog open with a word on the field.
    for (until, says) in [
        ("soon", "duration"),
        ("2001-01-01T00:00:00Z", "not in the future"),
        ("30d", "silences.max_duration"),
    ] {
        let answer = w.app.interact(&submit(until, false)).await;
        let body = answer.json();
        assert_eq!(body["response_action"], "errors", "{until}: {body}");
        assert!(
            body["errors"]["until"].as_str().unwrap().contains(says),
            "{until}: {body}"
        );
    }
    assert!(w
        .app
        .state
        .store
        .active_silences(None, w.clock.now())
        .await
        .unwrap()
        .is_empty());
    // A good one: the asset, 90 minutes, through a breach; Slack's retry makes no second.
    for _ in 0..2 {
        let answer = w.app.interact(&submit("90m", true)).await;
        assert!(answer.body.is_empty(), "the dialog closes: {}", answer.body);
    }
    w.app.drain_outbox().await;
    let silences = w
        .app
        .state
        .store
        .active_silences(None, w.clock.now())
        .await
        .unwrap();
    assert_eq!(silences.len(), 1, "{silences:#?}");
    let s = &silences[0];
    assert_eq!(s.scope.as_str(), "asset");
    assert_eq!(s.target, "orders_daily");
    assert_eq!(s.ends_at, w.clock.now() + Duration::minutes(90));
    assert!(s.through_breach);
    assert_eq!(s.reason.as_deref(), Some("warehouse migration"));
    assert!(
        told_all(&w.app).contains("Silenced asset"),
        "{}",
        told_all(&w.app)
    );
    // It covers the asset's recreated job too.
    w.fx.update_job(first, "state = 'cancelled'").await;
    w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    w.app.poll().await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        1,
        "only the first page, before the silence"
    );
}

#[tokio::test]
async fn only_operators_silence_from_the_menu() {
    let w = world(Backend::Sqlite).await;
    w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    let no = choose(&w, "U0PRODOWNER", "alert_silence", &format!("{alert}:4h")).await;
    assert!(no.contains("Only the operators"), "{no}");
    assert!(w
        .app
        .state
        .store
        .active_silences(None, w.clock.now())
        .await
        .unwrap()
        .is_empty());
    let audit = w.app.state.store.list_audit(None, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "silence"
        && e.actor == "U0PRODOWNER"
        && e.outcome.starts_with("refused")));
    // An operator's silence, then the product owner tries to lift it.
    choose(&w, "U0PLATLEAD", "alert_silence", &format!("{alert}:4h")).await;
    let id = w
        .app
        .state
        .store
        .active_silences(None, w.clock.now())
        .await
        .unwrap()[0]
        .id
        .clone();
    let lift = choose(&w, "U0PRODOWNER", "alert_unsilence", &id).await;
    assert!(lift.contains("Only the operators"), "{lift}");
    assert_eq!(
        w.app
            .state
            .store
            .active_silences(None, w.clock.now())
            .await
            .unwrap()
            .len(),
        1,
        "the silence stands"
    );
}

#[tokio::test]
async fn only_operators_silence_within_the_maximum_and_bad_input_is_explained() {
    let w = world(Backend::Sqlite).await;
    w.fx.job(critical_low("orders_daily")).await;
    let no = slash(&w, "silence acme 1h", "U0PRODOWNER").await;
    assert!(no.contains("Only the operators"), "{no}");
    let audit = w.app.state.store.list_audit(None, 50).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "silence" && e.outcome.starts_with("refused")));
    let long = slash(&w, "silence acme 8d", "U0PLATLEAD").await;
    assert!(long.contains("silences.max_duration"), "{long}");
    let what = slash(&w, "silence nothing_here 1h", "U0PLATLEAD").await;
    assert!(what.contains("is not tenant"), "{what}");
    let bad = slash(&w, "silence acme soon", "U0PLATLEAD").await;
    assert!(bad.contains("neither a duration"), "{bad}");
    let past = slash(&w, "silence acme until 2001-01-01T00:00:00Z", "U0PLATLEAD").await;
    assert!(past.contains("not in the future"), "{past}");
    let gone = slash(&w, "unsilence abcdef12", "U0PLATLEAD").await;
    assert!(gone.contains("No silence"), "{gone}");
    assert!(w
        .app
        .state
        .store
        .active_silences(None, t0())
        .await
        .unwrap()
        .is_empty());
    let help = slash(&w, "help", "U0PLATLEAD").await;
    assert!(help.contains("silence"), "{help}");
}

#[tokio::test]
async fn two_replicas_ending_the_same_silence_announce_it_once() {
    let w = world(Backend::Postgres).await;
    w.fx.job(critical_low("orders_daily")).await;
    let answer = slash(&w, "silence acme 1h", "U0PLATLEAD").await;
    w.app.poll().await;
    let id = silence_id(&answer);
    let (a, b) = tokio::join!(
        servo_sla_bot::flows::silences::end_silence(&w.app.state, &id, None),
        servo_sla_bot::flows::silences::end_silence(&w.app.state, &id, Some("U0PLATLEAD")),
    );
    assert_eq!(
        a.unwrap().is_some() as u8 + b.unwrap().is_some() as u8,
        1,
        "one end wins"
    );
    w.app.drain_outbox().await;
    assert_eq!(threads_with(&w.app, ":bell: The silence"), 1);
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "one page");
}

// --------------------------------------------------------- paging hours

/// Paging hours for critical jobs that start `offset` minutes from t0
/// and last an hour (UTC, every day).
fn hours_from(offset: i64, hold_breaches: bool) -> String {
    let from = t0() + Duration::minutes(offset);
    let to = from + Duration::hours(1);
    format!(
        "[escalation.hours.critical]\ndays = \"mon-sun\"\nfrom = \"{}\"\nto = \"{}\"\ntz = \"UTC\"\nhold_breaches = {hold_breaches}\n",
        from.format("%H:%M"),
        to.format("%H:%M")
    )
}

async fn outside_its_hours_a_tier_holds_its_page_until_they_start(backend: Backend) {
    let w = world_with(backend, &hours_from(120, false)).await;
    w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0, "held outside the hours");
    let start = (t0() + Duration::minutes(120)).format("%H:%M").to_string();
    assert_eq!(
        threads_with(
            &w.app,
            &format!("{start} UTC (Critical tier pages in working hours)")
        ),
        1,
        "{:#?}",
        thread_texts(&w.app)
    );
    assert_eq!(
        threads_with(&w.app, "(Critical tier pages in working hours)"),
        1
    );
    w.app.poll().await;
    assert_eq!(threads_with(&w.app, "Paging held until"), 1, "said once");
    advance(&w, 119).await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0);
    advance(&w, 1).await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "pages when the hours start");
}

on_both_stores!(outside_its_hours_a_tier_holds_its_page_until_they_start);

#[tokio::test]
async fn inside_its_hours_a_tier_pages_as_usual() {
    let w = world_with(Backend::Sqlite, &hours_from(-30, false)).await;
    w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1);
}

#[tokio::test]
async fn a_breach_pages_outside_the_hours_unless_hold_breaches() {
    let w = world_with(Backend::Sqlite, &hours_from(120, false)).await;
    w.fx.job(breached("orders_daily")).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "a breach pages at once");

    let w = world_with(Backend::Sqlite, &hours_from(120, true)).await;
    w.fx.job(breached("orders_daily")).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0, "hold_breaches holds it");
}

// ------------------------------------------------------ maintenance

fn maintenance_for(minutes: i64) -> String {
    format!(
        "[[maintenance]]\ntenant = \"acme\"\nassets = [\"orders_*\"]\nfrom = \"{}\"\nto = \"{}\"\nreason = \"warehouse upgrade\"\n",
        (t0() - Duration::minutes(5)).to_rfc3339(),
        (t0() + Duration::minutes(minutes)).to_rfc3339()
    )
}

async fn a_maintenance_window_holds_pages_then_settles(backend: Backend) {
    let w = world_with(backend, &maintenance_for(30)).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    w.fx.job(critical_low("users_daily")).await;
    w.app.poll().await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        1,
        "only the job outside the window pages"
    );
    assert!(
        thread_texts(&w.app)
            .iter()
            .any(|t| t.contains("In maintenance until") && t.contains("warehouse upgrade")),
        "{:#?}",
        thread_texts(&w.app)
    );
    // The window ends; nothing pages while ETAs settle (15 minutes).
    keep_late(&w, job).await;
    advance(&w, 31).await;
    keep_late(&w, job).await;
    w.app.poll().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1);
    assert!(threads_with(&w.app, "Settling after maintenance") >= 1);
    keep_late(&w, job).await;
    w.app.poll().await;
    advance(&w, 15).await;
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        2,
        "still at risk after settling: pages {:#?}",
        thread_texts(&w.app)
    );
}

on_both_stores!(a_maintenance_window_holds_pages_then_settles);

/// The channel's maintenance notices (top-level messages), as they show now.
fn notices(app: &TestApp) -> Vec<servo_sla_bot::sim::fake_slack::Message> {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none() && m.text.contains("Maintenance of"))
        .collect()
}

fn summaries(app: &TestApp) -> Vec<String> {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none() && m.text.contains("After the maintenance of"))
        .map(|m| m.text)
        .collect()
}

async fn a_window_is_noticed_once_edited_at_its_end_and_summed_up_after_settling(backend: Backend) {
    let w = world_with(backend, &maintenance_for(30)).await;
    let late = w.fx.job(critical_low("orders_daily")).await;
    let recovers = w.fx.job(critical_low("orders_weekly")).await;
    w.fx.job(critical_low("users_daily")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let posted = notices(&w.app);
    assert_eq!(posted.len(), 1, "one notice when it starts");
    assert!(
        posted[0]
            .text
            .starts_with(":wrench: Maintenance of asset orders_*")
            && posted[0].text.contains(" until ")
            && posted[0].text.contains("warehouse upgrade"),
        "{}",
        posted[0].text
    );
    assert_eq!(posted[0].channel, "C0ACMEALERT");
    // Later polls do not repeat it.
    advance(&w, 5).await;
    keep_late(&w, late).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert_eq!(notices(&w.app).len(), 1);
    assert_eq!(notices(&w.app)[0].edits, 0, "not edited while it lasts");
    // It ends: the same message is edited in place, once.
    advance(&w, 26).await;
    keep_late(&w, late).await;
    w.fx.set_eta(recovers, t0() + Duration::minutes(60), w.clock.now())
        .await;
    w.app.poll().await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let ended = notices(&w.app);
    assert_eq!(ended.len(), 1, "edited, not posted again");
    assert_eq!(ended[0].ts, posted[0].ts);
    assert_eq!(ended[0].edits, 1);
    assert!(ended[0].text.contains("ended"), "{}", ended[0].text);
    assert!(summaries(&w.app).is_empty(), "no summary while it settles");
    // Settled: one summary naming exactly the covered jobs still at risk.
    advance(&w, 15).await;
    keep_late(&w, late).await;
    w.app.poll().await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let said = summaries(&w.app);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("orders_daily"), "{}", said[0]);
    assert!(said[0].contains("1 job is still at risk"), "{}", said[0]);
    assert!(!said[0].contains("orders_weekly"), "recovered: {}", said[0]);
    assert!(
        !said[0].contains("users_daily"),
        "not in the window: {}",
        said[0]
    );
    assert_eq!(notices(&w.app)[0].edits, 1, "the end is edited once");
}

#[tokio::test]
async fn a_window_that_begins_and_ends_between_two_polls_is_noticed_once_and_summed_up() {
    // From +2 to +4 minutes: the polls at 0 and +5 never see it open.
    let window = format!(
        "[[maintenance]]\ntenant = \"acme\"\nfrom = \"{}\"\nto = \"{}\"\nreason = \"failover drill\"\n",
        (t0() + Duration::minutes(2)).to_rfc3339(),
        (t0() + Duration::minutes(4)).to_rfc3339()
    );
    let w = world_with(Backend::Sqlite, &window).await;
    let late = w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert!(notices(&w.app).is_empty(), "not begun yet");
    advance(&w, 5).await;
    keep_late(&w, late).await;
    w.app.poll().await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let ran = notices(&w.app);
    assert_eq!(ran.len(), 1, "one notice that it ran");
    assert!(
        ran[0].text.contains("ran from") && ran[0].text.contains("failover drill"),
        "{}",
        ran[0].text
    );
    assert_eq!(ran[0].edits, 0, "nothing to edit");
    advance(&w, 15).await;
    keep_late(&w, late).await;
    w.app.poll().await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let said = summaries(&w.app);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("orders_daily"), "{}", said[0]);
    assert_eq!(notices(&w.app).len(), 1);
}

on_both_stores!(a_window_is_noticed_once_edited_at_its_end_and_summed_up_after_settling);

async fn after_a_window_where_all_recovered_the_summary_says_so(backend: Backend) {
    let w = world_with(backend, &maintenance_for(30)).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    w.app.poll().await;
    advance(&w, 31).await;
    w.fx.set_eta(job, t0() + Duration::minutes(60), w.clock.now())
        .await;
    w.app.poll().await;
    advance(&w, 15).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let said = summaries(&w.app);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("all recovered"), "{}", said[0]);
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0, "nothing pages");
}

on_both_stores!(after_a_window_where_all_recovered_the_summary_says_so);

fn window_id(answer: &str) -> String {
    let at = answer
        .find("Maintenance window `")
        .expect("the answer names the window's id")
        + "Maintenance window `".len();
    answer[at..at + 8].to_string()
}

async fn maintenance_from_slack_is_noticed_listed_and_cancelled(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(critical_low("orders_daily")).await;
    let answer = slash(&w, "maintenance acme now 1h db upgrade", "U0PLATLEAD").await;
    assert!(answer.contains("Maintenance window `"), "{answer}");
    let id = window_id(&answer);
    w.app.drain_outbox().await;
    let posted = notices(&w.app);
    assert_eq!(posted.len(), 1, "the channel hears of it at once");
    assert!(
        posted[0]
            .text
            .contains("Maintenance of tenant `acme` until")
            && posted[0].text.contains("db upgrade"),
        "{}",
        posted[0].text
    );
    w.app.poll().await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0, "nothing pages inside it");
    assert_eq!(notices(&w.app).len(), 1, "noticed once");
    // Listed, with its id, for anyone.
    let list = slash(&w, "maintenance list", "U0ONCALL1").await;
    assert!(list.contains(&id) && list.contains("db upgrade"), "{list}");
    // Only operators cancel; a refusal is audited.
    let no = slash(&w, &format!("maintenance cancel {id}"), "U0PRODOWNER").await;
    assert!(no.contains("Only the operators"), "{no}");
    let audit = w.app.state.store.list_audit(None, 50).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "maintenance_cancel" && e.outcome.starts_with("refused")));
    assert!(audit
        .iter()
        .any(|e| e.action == "maintenance" && e.actor == "U0PLATLEAD" && e.outcome == "ok"));
    let unknown = slash(&w, "maintenance cancel abcdef12", "U0PLATLEAD").await;
    assert!(unknown.contains("No maintenance window"), "{unknown}");
    // Cancelled: the notice says it ended, the job still at risk pages.
    keep_late(&w, job).await;
    let done = slash(&w, &format!("maintenance cancel {id}"), "U0PLATLEAD").await;
    assert!(done.contains("Cancelled the maintenance window"), "{done}");
    w.app.drain_outbox().await;
    let ended = notices(&w.app);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].edits, 1);
    assert!(
        ended[0].text.contains("ended (cancelled by <@U0PLATLEAD>)"),
        "{}",
        ended[0].text
    );
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "pages again at once");
    let again = slash(&w, &format!("maintenance cancel {id}"), "U0PLATLEAD").await;
    assert!(again.contains("cancelled already"), "{again}");
    let audit = w.app.state.store.list_audit(None, 100).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "maintenance_cancel" && e.actor == "U0PLATLEAD" && e.outcome == "ok"));
    let gone = slash(&w, "maintenance list", "U0PLATLEAD").await;
    assert!(!gone.contains(&id), "{gone}");
}

on_both_stores!(maintenance_from_slack_is_noticed_listed_and_cancelled);

#[tokio::test]
async fn maintenance_bad_input_is_answered_clearly() {
    let w = world(Backend::Sqlite).await;
    let usage = slash(&w, "maintenance acme", "U0PLATLEAD").await;
    assert!(usage.contains("Usage:"), "{usage}");
    let when = slash(&w, "maintenance acme soon 1h", "U0PLATLEAD").await;
    assert!(when.contains("RFC 3339"), "{when}");
    let to = slash(&w, "maintenance acme now later", "U0PLATLEAD").await;
    assert!(to.contains("neither a duration"), "{to}");
    let past = slash(
        &w,
        "maintenance acme now 2001-01-01T00:00:00Z",
        "U0PLATLEAD",
    )
    .await;
    assert!(past.contains("must end after it starts"), "{past}");
    let which = slash(&w, "maintenance cancel", "U0PLATLEAD").await;
    assert!(which.contains("Which window?"), "{which}");
    let no = slash(&w, "maintenance acme now 1h", "U0PRODOWNER").await;
    assert!(
        no.contains("Only the operators") && no.contains("can set maintenance windows"),
        "{no}"
    );
    assert!(w
        .app
        .state
        .store
        .windows_ending_after(None, t0())
        .await
        .unwrap()
        .is_empty());
    assert!(notices(&w.app).is_empty());
}

/// A window for an asset typed in another case holds its job (the name as
/// Servo spells it), a glob holds every job it matches, and a name no
/// running job has is set but said so.
async fn a_window_from_slack_names_assets_as_servo_does_or_by_glob(backend: Backend) {
    let w = world(backend).await;
    w.fx.job(critical_low("orders_daily")).await;
    w.fx.job(critical_low("orders_weekly")).await;
    w.fx.job(critical_low("users_daily")).await;
    let exact = slash(&w, "maintenance Orders_Daily now 1h reindex", "U0PLATLEAD").await;
    assert!(exact.contains("*orders_daily*"), "{exact}");
    assert!(!exact.contains("No running job"), "{exact}");
    let glob = slash(&w, "maintenance orders_w* now 1h reindex", "U0PLATLEAD").await;
    assert!(glob.contains("It covers 1 running job now"), "{glob}");
    let typo = slash(&w, "maintenance ordrs_daily now 1h", "U0PLATLEAD").await;
    assert!(
        typo.contains("No running job has the asset `ordrs_daily`"),
        "{typo}"
    );
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 1, "only users_daily pages");
    let paged: Vec<String> = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "U0ONCALL1")
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(paged[0].contains("users_daily"), "{paged:#?}");
}

on_both_stores!(a_window_from_slack_names_assets_as_servo_does_or_by_glob);

async fn a_window_from_slack_ends_and_settles_like_the_configs(backend: Backend) {
    let w = world(backend).await;
    let late = w.fx.job(critical_low("orders_daily")).await;
    let answer = slash(&w, "maintenance orders_daily now 30m reindex", "U0PLATLEAD").await;
    assert!(answer.contains("Maintenance window `"), "{answer}");
    // Two replicas' polls at once: one notice.
    let tenant = w.app.state.config.tenant("acme").unwrap();
    let now = w.clock.now();
    let (a, b) = tokio::join!(
        servo_sla_bot::flows::maintenance::reconcile(&w.app.state, tenant, now),
        servo_sla_bot::flows::maintenance::reconcile(&w.app.state, tenant, now),
    );
    a.unwrap();
    b.unwrap();
    w.app.poll().await;
    w.app.drain_outbox().await;
    let posted = notices(&w.app);
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0]
            .text
            .contains("Maintenance of asset *orders_daily* until")
            && posted[0].text.contains("reindex"),
        "{}",
        posted[0].text
    );
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0);
    advance(&w, 31).await;
    keep_late(&w, late).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let ended = notices(&w.app);
    assert_eq!((ended.len(), ended[0].edits), (1, 1));
    assert!(ended[0].text.contains("ended at"), "{}", ended[0].text);
    assert!(summaries(&w.app).is_empty());
    assert_eq!(dms_to(&w.app, "U0ONCALL1"), 0, "settling");
    keep_late(&w, late).await;
    w.app.poll().await;
    advance(&w, 15).await;
    keep_late(&w, late).await;
    w.app.poll().await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let said = summaries(&w.app);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("orders_daily"), "{}", said[0]);
    assert_eq!(
        dms_to(&w.app, "U0ONCALL1"),
        1,
        "the job still at risk pages"
    );
}

on_both_stores!(a_window_from_slack_ends_and_settles_like_the_configs);
