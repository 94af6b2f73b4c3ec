//! The App Home (issue 23): built for the person who opens it, from the
//! tenants they belong to, refreshed after a change that concerns them, and
//! never showing another tenant's job; the message shortcuts on an alert;
//! and the extension dialog's picker, quick choices and preview.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::bot::{Backend, TestApp, World};
use common::servo_fixture::JobSpec;
use common::slack_ui::{advance, click_in, t0, told_all};
use serde_json::{json, Value};
use servo_sla_bot::store::Approval;
use uuid::Uuid;

const CHANNEL: &str = "C0ACMEALERT";
const ONCALL: &str = "U0ONCALL1";

async fn world(backend: Backend) -> World {
    let w = common::bot::on_servo(backend, &[ONCALL]).await;
    w.app.slack.set_user_name("U0PLATLEAD", "Bo Lead");
    w.app.slack.set_user_name("U0PRODOWNER", "Pat Owner");
    w
}

/// A critical job (priority 9) at risk: it pages from the first poll.
fn critical(asset: &str, tenant: &str) -> JobSpec {
    JobSpec {
        tenant: tenant.into(),
        asset: asset.into(),
        deadline: Some(t0() + Duration::minutes(60)),
        eta: Some(t0() + Duration::minutes(120)),
        heartbeat: Some(t0()),
        priority: 9,
        ..JobSpec::default()
    }
}

/// `app_home_opened` for `user`, signed as Slack signs it.
async fn open_home(app: &TestApp, user: &str) -> Value {
    let before = app.slack.calls_to("views.publish").len();
    let body = json!({
        "type": "event_callback",
        "event_id": format!("Ev{}", Uuid::new_v4().simple()),
        "event": { "type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home" }
    });
    let answer = app
        .post_signed("/slack/events", "application/json", &body.to_string())
        .await;
    assert_eq!(answer.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.slack.calls_to("views.publish").len() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the Home of {user} was never published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.slack.home(user).expect("published")
}

/// Everything a Home shows, as one string.
fn text(home: &Value) -> String {
    home["blocks"].to_string()
}

/// The text of the section after the header `title`, up to the next header.
fn part(home: &Value, title: &str) -> String {
    let blocks = home["blocks"].as_array().unwrap();
    let start = blocks
        .iter()
        .position(|b| b["type"] == "header" && b["text"]["text"] == title)
        .unwrap_or_else(|| panic!("no {title} in {home:#}"));
    blocks[start + 1..]
        .iter()
        .take_while(|b| b["type"] != "header")
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn alert_id(app: &TestApp, tenant: &str, job: Uuid) -> String {
    app.state
        .store
        .open_alert_for_job(tenant, &job.to_string())
        .await
        .unwrap()
        .expect("an open alert")
        .id
}

async fn pending(app: &TestApp) -> Vec<Approval> {
    app.state
        .store
        .list_approvals(Some("acme"), Some("pending"))
        .await
        .unwrap()
}

async fn the_home_is_built_for_the_person_who_opens_it(backend: Backend) {
    let w = world(backend).await;
    let revenue = w.fx.job(critical("revenue_daily", "acme")).await;
    w.fx.job(critical("orders_daily", "acme")).await;
    w.fx.job(critical("globex_secret_ledger", "globex")).await;
    w.app.poll().await;
    advance(&w.app, &w.clock, 0).await; // the first tier is paged
    let revenue_alert = alert_id(&w.app, "acme", revenue).await;

    // The on-call engineer (tier 1, through the group): pages with
    // Acknowledge, the jobs at risk linked to their alerts, the path.
    let home = open_home(&w.app, ONCALL).await;
    if std::env::var("SHOW_HOME").is_ok() {
        println!("{home:#}");
    }
    let pages = part(&home, "Pages waiting for your acknowledgement");
    assert!(
        pages.contains("revenue_daily") && pages.contains("On-call Engineer"),
        "{pages}"
    );
    assert!(
        pages.contains(&format!("\"value\":\"{revenue_alert}\"")),
        "{pages}"
    );
    assert!(pages.contains("Acknowledge"), "{pages}");
    let risks = part(&home, "Jobs at risk");
    for asset in ["revenue_daily", "orders_daily"] {
        assert!(risks.contains(asset), "{asset} in {risks}");
    }
    assert!(
        risks.contains("https://slack.com/archives/C0ACMEALERT/p"),
        "{risks}"
    );
    assert!(
        risks.contains("<!date^"),
        "ETA and deadline in each reader's zone: {risks}"
    );
    let path = part(&home, "On the escalation path now");
    assert!(
        path.contains("On-call Engineer") && path.contains("(you)"),
        "{path}"
    );
    assert!(
        path.contains("Bo Lead") && !path.contains("<@U0PLATLEAD>"),
        "names, not mentions: {path}"
    );

    // An operator of globex only: globex's job, and nothing of acme.
    let globex = open_home(&w.app, "U0GLOBEXOPS").await;
    let all = text(&globex);
    assert!(all.contains("globex_secret_ledger"), "{all}");
    for other in ["revenue_daily", "orders_daily", "C0ACMEALERT"] {
        assert!(!all.contains(other), "another tenant's {other} in {all}");
    }
    assert!(part(&globex, "Pages waiting for your acknowledgement").contains("Nothing"));

    // Someone of no tenant: told why there is nothing, and shown nothing.
    let nobody = open_home(&w.app, "U0STRANGER").await;
    let all = text(&nobody);
    assert!(
        all.contains("not an operator or a stakeholder of any tenant"),
        "{all}"
    );
    for asset in ["revenue_daily", "orders_daily", "globex_secret_ledger"] {
        assert!(!all.contains(asset), "{asset} shown to a stranger: {all}");
    }

    // Acknowledged from the Home: the Home refreshes by itself (debounced)
    // and shows the action among theirs.
    let publishes = w.app.slack.calls_to("views.publish").len();
    let mut click = click_in(&w.app, CHANNEL, ONCALL, "alert_ack", &revenue_alert);
    click["container"] = json!({ "type": "view", "view_id": home["id"] });
    click.as_object_mut().unwrap().remove("channel");
    click.as_object_mut().unwrap().remove("response_url");
    w.app.interact(&click).await;
    let acked = w
        .app
        .state
        .store
        .get_alert(&revenue_alert)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acked.acked_by.as_deref(), Some(ONCALL));
    // Clicked again from the Home (no channel, no response URL): told by DM.
    w.app.interact(&click).await;
    let dm: Vec<String> = w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == ONCALL)
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        dm.iter().any(|t| t.contains("already acknowledged")),
        "{dm:#?}"
    );
    advance(&w.app, &w.clock, 1).await;
    let calls = w.app.slack.calls_to("views.publish");
    let refreshed: Vec<_> = calls[publishes..]
        .iter()
        .filter(|c| c.body["user_id"] == ONCALL)
        .collect();
    assert_eq!(refreshed.len(), 1, "one refresh for the burst of changes");
    let home = w.app.slack.home(ONCALL).unwrap();
    let pages = part(&home, "Pages waiting for your acknowledgement");
    assert!(!pages.contains("revenue_daily"), "{pages}");
    let mine = part(&home, "Your recent actions");
    assert!(
        mine.contains("acknowledge") && mine.contains(&revenue.to_string()),
        "{mine}"
    );
    // The stranger's Home is not refreshed by acme's change.
    assert!(!calls[publishes..]
        .iter()
        .any(|c| c.body["user_id"] == "U0STRANGER"));
}

#[tokio::test]
async fn the_home_is_built_for_the_person_who_opens_it_on_sqlite() {
    the_home_is_built_for_the_person_who_opens_it(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_home_is_built_for_the_person_who_opens_it_on_postgres() {
    the_home_is_built_for_the_person_who_opens_it(Backend::Postgres).await;
}

#[tokio::test]
async fn a_stakeholder_finds_the_request_waiting_for_their_decision() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(critical("revenue_daily", "acme")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let before = open_home(&w.app, "U0PRODOWNER").await;
    assert!(part(&before, "Extension requests waiting for your decision").contains("Nothing"));
    let v = w
        .app
        .slash(
            &format!("extend-deadline {job} +2h vendor outage"),
            "U0PLATLEAD",
            CHANNEL,
        )
        .await
        .json();
    assert!(
        v["text"].as_str().unwrap().contains("Extension requested"),
        "{v}"
    );
    // The request's post goes out first: its thread is what the Home links to.
    w.app.drain_outbox().await;
    advance(&w.app, &w.clock, 1).await;
    let home = w.app.slack.home("U0PRODOWNER").unwrap();
    let requests = part(&home, "Extension requests waiting for your decision");
    assert!(requests.contains("revenue_daily"), "{requests}");
    assert!(requests.contains("decide in the thread"), "{requests}");
    assert!(requests.contains("<@U0PLATLEAD>"), "who asked: {requests}");
    // The requester cannot decide their own request: not in their Home.
    let theirs = open_home(&w.app, "U0PLATLEAD").await;
    assert!(part(&theirs, "Extension requests waiting for your decision").contains("Nothing"));
    let mine = part(&theirs, "Your recent actions");
    assert!(
        mine.contains("request extension") || mine.contains("extension"),
        "{mine}"
    );
}

/// A `message_action` payload for a shortcut on the message at `ts`.
fn shortcut(app: &TestApp, callback: &str, user: &str, ts: &str, thread: Option<&str>) -> Value {
    let mut message = json!({ "type": "message", "ts": ts, "text": "…" });
    if let Some(t) = thread {
        message["thread_ts"] = json!(t);
    }
    json!({
        "type": "message_action",
        "callback_id": callback,
        "user": { "id": user },
        "channel": { "id": CHANNEL },
        "message": message,
        "message_ts": ts,
        "response_url": app.slack.response_url(&format!("{callback}-{user}-{ts}")),
        "trigger_id": format!("trigger-{user}"),
    })
}

#[tokio::test]
async fn the_shortcuts_on_an_alert_need_no_job_id() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(critical("revenue_daily", "acme")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let alert = w
        .app
        .state
        .store
        .open_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .unwrap();
    let ts = alert.ts.clone().unwrap();

    // Job status on the alert itself, and on a reply in its thread.
    for (at, thread) in [
        (ts.clone(), None),
        ("1799999999.000100".to_string(), Some(ts.as_str())),
    ] {
        let answer = w
            .app
            .interact(&shortcut(&w.app, "job_status", "U0PRODOWNER", &at, thread))
            .await;
        assert_eq!(answer.status, 200);
        let said = w
            .app
            .slack
            .calls()
            .into_iter()
            .rfind(|c| c.method == format!("response_url:job_status-U0PRODOWNER-{at}"))
            .expect("the card, to the person who asked")
            .body;
        assert_eq!(said["response_type"], "ephemeral");
        let card = said.to_string();
        assert!(
            card.contains(&job.to_string()) && card.contains("revenue_daily"),
            "{card}"
        );
        assert!(card.contains("Alert thread"), "{card}");
    }
    // On a message that is no alert: says where it works.
    w.app
        .interact(&shortcut(
            &w.app,
            "job_status",
            "U0PRODOWNER",
            "1700000000.999999",
            None,
        ))
        .await;
    assert!(
        told_all(&w.app).contains("not a backfill alert"),
        "{}",
        told_all(&w.app)
    );

    // Request extension opens the dialog for this alert's job.
    w.app
        .interact(&shortcut(
            &w.app,
            "request_extension",
            "U0PLATLEAD",
            &ts,
            None,
        ))
        .await;
    let view = w.app.slack.views().pop().expect("the dialog opened").view;
    assert_eq!(view["callback_id"], "extension_request");
    let metadata: Value = serde_json::from_str(view["private_metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata["alert_id"], alert.id.as_str());
    assert!(view["blocks"].to_string().contains("datetimepicker"));
}

/// The request dialog, opened from the alert by `user`.
async fn open_dialog(w: &World, alert: &str, user: &str) -> Value {
    w.app
        .interact(&click_in(&w.app, CHANNEL, user, "extension_request", alert))
        .await;
    w.app.slack.views().pop().expect("the dialog opened").view
}

/// A `block_actions` payload from inside the dialog, as Slack sends it.
fn in_dialog(view: &Value, user: &str, values: Value, action: Value) -> Value {
    let mut view = view.clone();
    view["state"] = json!({ "values": values });
    json!({
        "type": "block_actions",
        "user": { "id": user },
        "container": { "type": "view", "view_id": view["id"] },
        "trigger_id": format!("trigger-{user}"),
        "view": view,
        "actions": [action],
    })
}

fn submit(view: &Value, user: &str, values: Value) -> Value {
    let mut view = view.clone();
    view["state"] = json!({ "values": values });
    json!({ "type": "view_submission", "user": { "id": user }, "view": view })
}

fn picker_block(view: &Value) -> (String, Option<i64>) {
    let block = view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["element"]["type"] == "datetimepicker")
        .expect("a datetimepicker");
    (
        block["block_id"].as_str().unwrap().to_string(),
        block["element"]["initial_date_time"].as_i64(),
    )
}

fn preview(view: &Value) -> String {
    view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "preview")
        .expect("a preview")
        .to_string()
}

#[tokio::test]
async fn the_extension_dialog_picks_a_time_shows_the_band_under_it_and_requests_it() {
    let w = world(Backend::Sqlite).await;
    // Tokyo: UTC+9, so "end of day" is 23:59 there.
    w.app
        .slack
        .set_user_tz("U0PLATLEAD", "Asia/Tokyo", 9 * 3600);
    let job = w.fx.job(critical("revenue_daily", "acme")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let alert = alert_id(&w.app, "acme", job).await;
    let deadline = t0() + Duration::minutes(60);

    let view = open_dialog(&w, &alert, "U0PLATLEAD").await;
    let (block, initial) = picker_block(&view);
    assert_eq!(initial, None, "nothing chosen yet");
    assert!(
        view["blocks"].to_string().contains("23:59 Asia/Tokyo"),
        "end of day in their zone"
    );

    // +2 h: the picker is set to the deadline + 2 h, and the preview says
    // the band under it (ETA t0+120 min against t0+180 min: on track).
    w.app
        .interact(&in_dialog(
            &view,
            "U0PLATLEAD",
            json!({}),
            json!({ "type": "button", "block_id": "quick", "action_id": "extension_quick_2h", "value": "+2h" }),
        ))
        .await;
    let updated = w.app.slack.views().pop().unwrap().view;
    assert_eq!(updated["id"], view["id"], "the same dialog, updated");
    let (new_block, set) = picker_block(&updated);
    assert_ne!(new_block, block, "a new block, so Slack shows the value");
    assert_eq!(set, Some((deadline + Duration::hours(2)).timestamp()));
    let said = preview(&updated);
    assert!(said.contains("On track") && said.contains("High"), "{said}");

    // End of day in Tokyo: 23:59 +09:00 of the deadline's day there.
    w.app
        .interact(&in_dialog(
            &updated,
            "U0PLATLEAD",
            json!({}),
            json!({ "type": "button", "block_id": "quick", "action_id": "extension_quick_eod", "value": "eod" }),
        ))
        .await;
    let eod_view = w.app.slack.views().pop().unwrap().view;
    let tokyo = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let local_day = deadline.with_timezone(&tokyo).date_naive();
    let eod: DateTime<Utc> = tokyo
        .from_local_datetime(&local_day.and_hms_opt(23, 59, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(picker_block(&eod_view).1, Some(eod.timestamp()));

    // A time picked by hand, before the current deadline: the preview says
    // why, and submitting it is refused on the field.
    let (eod_block, _) = picker_block(&eod_view);
    let early = (deadline - Duration::minutes(30)).timestamp();
    let values = json!({ eod_block.clone(): { "value": { "type": "datetimepicker", "selected_date_time": early } } });
    w.app
        .interact(&in_dialog(
            &eod_view,
            "U0PLATLEAD",
            values.clone(),
            json!({ "type": "datetimepicker", "block_id": eod_block, "action_id": "value", "selected_date_time": early }),
        ))
        .await;
    assert!(preview(&w.app.slack.views().pop().unwrap().view).contains("later than the current"));
    let refused = w
        .app
        .interact(&submit(&eod_view, "U0PLATLEAD", values))
        .await
        .json();
    assert_eq!(refused["response_action"], "errors", "{refused}");
    assert!(pending(&w.app).await.is_empty());

    // The picker's value reaches the request.
    let picked = (deadline + Duration::minutes(150)).timestamp();
    let values = json!({
        eod_block.clone(): { "value": { "type": "datetimepicker", "selected_date_time": picked } },
        "reason": { "value": { "type": "plain_text_input", "value": "vendor outage" } }
    });
    let answer = w
        .app
        .interact(&submit(&eod_view, "U0PLATLEAD", values))
        .await;
    assert_eq!(answer.status, 200);
    let requests = pending(&w.app).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].proposed_deadline.timestamp(), picked);
    assert_eq!(requests[0].reason.as_deref(), Some("vendor outage"));
    assert_eq!(requests[0].requested_by, "U0PLATLEAD");
}

#[tokio::test]
async fn a_typed_deadline_wins_over_the_picker() {
    let w = world(Backend::Sqlite).await;
    let job = w.fx.job(critical("revenue_daily", "acme")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let alert = alert_id(&w.app, "acme", job).await;
    let view = open_dialog(&w, &alert, "U0PLATLEAD").await;
    let (block, _) = picker_block(&view);
    let values = json!({
        block: { "value": { "type": "datetimepicker", "selected_date_time": (t0() + Duration::hours(9)).timestamp() } },
        "deadline": { "value": { "type": "plain_text_input", "value": "+90m" } },
    });
    w.app.interact(&submit(&view, "U0PLATLEAD", values)).await;
    let requests = pending(&w.app).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].proposed_deadline,
        t0() + Duration::minutes(60 + 90)
    );
    // Nothing chosen at all: refused on the field, nothing requested.
    let other = w.fx.job(critical("orders_daily", "acme")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let alert = alert_id(&w.app, "acme", other).await;
    let view = open_dialog(&w, &alert, "U0PLATLEAD").await;
    let refused = w
        .app
        .interact(&submit(&view, "U0PLATLEAD", json!({})))
        .await
        .json();
    assert_eq!(refused["response_action"], "errors", "{refused}");
    assert!(refused["errors"]["deadline"]
        .as_str()
        .unwrap()
        .contains("Pick a new deadline"));
    assert_eq!(pending(&w.app).await.len(), 1);
}

/// The manifests import with the Home and the shortcuts: they parse as YAML,
/// enable the Home tab, subscribe to `app_home_opened`, and name shortcuts
/// the bot handles.
#[test]
fn the_manifests_declare_the_home_and_the_shortcuts_the_bot_handles() {
    use servo_sla_bot::actions::shortcuts::{EXTENSION_SHORTCUT, STATUS_SHORTCUT};
    for (name, text) in [
        ("manifest.yml", include_str!("../manifest.yml")),
        (
            "manifest.socket-mode.yml",
            include_str!("../manifest.socket-mode.yml"),
        ),
    ] {
        let m: Value = serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            m["features"]["app_home"]["home_tab_enabled"], true,
            "{name}"
        );
        let events = m["settings"]["event_subscriptions"]["bot_events"].to_string();
        assert!(events.contains("app_home_opened"), "{name}: {events}");
        let shortcuts = m["features"]["shortcuts"].as_array().expect("shortcuts");
        let mut ids: Vec<&str> = shortcuts
            .iter()
            .map(|s| {
                assert_eq!(s["type"], "message", "{name}: {s}");
                // Slack's limits for a shortcut.
                assert!(s["name"].as_str().unwrap().len() <= 24, "{name}: {s}");
                assert!(
                    s["description"].as_str().unwrap().len() <= 150,
                    "{name}: {s}"
                );
                s["callback_id"].as_str().unwrap()
            })
            .collect();
        ids.sort();
        assert_eq!(ids, [STATUS_SHORTCUT, EXTENSION_SHORTCUT], "{name}");
        let command = &m["features"]["slash_commands"][0];
        assert_eq!(command["command"], "/backfill");
        assert!(command["usage_hint"]
            .as_str()
            .unwrap()
            .contains("status <job>"));
        // `/backfill oncall override <rotation> @user …` reads a mention as
        // Slack escapes it (`<@U…|name>`); unescaped, Slack sends `@name`.
        assert_eq!(command["should_escape"], true, "{name}");
    }
}

#[tokio::test]
async fn a_home_with_many_pages_and_jobs_keeps_within_slacks_limits() {
    let w = world(Backend::Sqlite).await;
    for i in 0..40 {
        w.fx.job(critical(&format!("asset_{i:02}"), "acme")).await;
    }
    w.app.poll().await;
    advance(&w.app, &w.clock, 0).await;
    // Published means the fake Slack took it: at most 100 blocks, each
    // section within 3000 characters.
    let home = open_home(&w.app, ONCALL).await;
    let blocks = home["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 100, "{} blocks", blocks.len());
    let pages = part(&home, "Pages waiting for your acknowledgement");
    assert_eq!(pages.matches("Acknowledge").count(), 10, "{pages}");
    assert!(pages.contains("…and 30 more pages"), "{pages}");
    let risks = part(&home, "Jobs at risk");
    assert!(risks.contains("more: `/backfill list at-risk`"), "{risks}");
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000, "{t}");
        }
    }
}
