//! An alert's incident channel (issue 38): opened from the alert's menu or
//! `/backfill incident`, named, invited, its topic set and linked from the
//! alert, once however many clicks or replicas; its event lines, its
//! timeline and archive on resolution, and linking an existing channel.
//! On SQLite and PostgreSQL.

mod common;

use chrono::Duration;
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{click_in, fresh_click_in, overflow_click_in, t0, thread_texts, told_all};
use serde_json::Value;
use servo_sla_bot::runtime::clock::{Clock, ManualClock};
use servo_sla_bot::sim::fake_slack::CreatedChannel;

struct World {
    fx: ServoFixture,
    app: TestApp,
    clock: ManualClock,
}

async fn world(backend: Backend) -> World {
    world_with(backend, common::bot::CONFIG).await
}

async fn world_with(backend: Backend, config: &str) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = config.to_string();
    let app = spawn(spec).await;
    app.slack
        .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
    World { fx, app, clock }
}

/// A critical job past its deadline: a Breached alert, tier 1 paged.
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

/// A Medium job: no incident channel from its menu.
fn medium(asset: &str) -> JobSpec {
    JobSpec {
        asset: asset.into(),
        deadline: Some(t0() + Duration::minutes(60)),
        eta: Some(t0() + Duration::minutes(78)),
        heartbeat: Some(t0()),
        priority: 6,
        ..JobSpec::default()
    }
}

/// The alert's message in the tenant's channel as it stands now.
fn alert_in_channel(app: &TestApp) -> Value {
    app.slack
        .calls()
        .into_iter()
        .rev()
        .find(|c| {
            c.is_ok()
                && (c.method == "chat.update"
                    || (c.method == "chat.postMessage"
                        && c.body["channel"] == "C0ACMEALERT"
                        && c.body.get("thread_ts").is_none_or(Value::is_null)
                        && c.body.get("attachments").is_some()))
        })
        .expect("an alert message")
        .body
}

fn alert_id(app: &TestApp) -> String {
    common::slack_ui::button_value(&alert_in_channel(app), "alert_ack")
        .or_else(|| common::slack_ui::button_value(&alert_in_channel(app), "alert_escalate"))
        .map(|v| v.split(':').next().unwrap().to_string())
        .expect("a button naming the alert")
}

fn menu_labels(alert: &Value) -> Vec<String> {
    let rows = alert["attachments"][0]["blocks"].as_array().unwrap();
    rows.iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().clone())
        .filter(|e| e["type"] == "overflow")
        .flat_map(|e| e["options"].as_array().unwrap().clone())
        .map(|o| o["text"]["text"].as_str().unwrap().to_string())
        .collect()
}

/// The channels the bot created.
fn created(app: &TestApp) -> Vec<CreatedChannel> {
    app.slack
        .created_channels()
        .into_iter()
        .filter(|c| c.id.starts_with("C0NEW"))
        .collect()
}

/// Texts of the top-level messages in a channel, in order.
fn channel_texts(app: &TestApp, channel: &str) -> Vec<String> {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == channel && m.thread_ts.is_none())
        .map(|m| m.text)
        .collect()
}

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
    fire(w).await;
    told_all(&w.app)[before.len()..].trim().to_string()
}

/// Fires what is due now and delivers it.
async fn fire(w: &World) {
    common::slack_ui::advance(&w.app, &w.clock, 0).await;
}

async fn slash_in(w: &World, text: &str, user: &str, channel: &str) -> String {
    let answer = w.app.slash(text, user, channel).await;
    fire(w).await;
    answer.json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn opened_from_the_menu_named_invited_topic_linked_lines_timeline_archive(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    assert!(
        menu_labels(&alert_in_channel(&w.app)).contains(&"Open incident channel".to_string()),
        "a Breached alert's menu offers it: {:?}",
        menu_labels(&alert_in_channel(&w.app))
    );
    assert!(menu_labels(&alert_in_channel(&w.app)).len() <= 5);
    // Acknowledged by one of the people paged.
    w.app
        .interact(&click_in(
            &w.app,
            "C0ACMEALERT",
            "U0ONCALL1",
            "alert_ack",
            &alert,
        ))
        .await;
    fire(&w).await;

    // A non-operator is refused, and audited.
    let refused = choose(&w, "U0STRANGER", "incident_channel_open", &alert).await;
    assert!(refused.contains("Only the operators"), "{refused}");
    assert!(created(&w.app).is_empty());

    let told = choose(&w, "U0PLATLEAD", "incident_channel_open", &alert).await;
    assert!(told.contains("Opening the incident channel"), "{told}");
    let channels = created(&w.app);
    assert_eq!(channels.len(), 1, "{channels:?}");
    let ch = &channels[0];
    let day = t0().format("%m%d").to_string();
    assert_eq!(ch.name, format!("sla-revenue_daily-{day}"));
    for who in ["U0PLATLEAD", "U0ONCALL1", "U0ONCALL2"] {
        assert!(
            ch.members.contains(&who.to_string()),
            "{who} invited: {:?}",
            ch.members
        );
    }
    assert!(
        !ch.members.contains(&"U0PRODOWNER".to_string()),
        "not paged, not invited"
    );
    assert!(ch.topic.contains("revenue_daily"), "{}", ch.topic);
    assert!(ch.topic.contains("Breached"), "{}", ch.topic);
    assert!(ch.topic.contains("deadline"), "{}", ch.topic);
    assert!(
        ch.topic
            .contains("https://slack.com/archives/C0ACMEALERT/p"),
        "{}",
        ch.topic
    );
    // The job's card with the alert's buttons.
    let card = w
        .app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == ch.id && m.attachments.to_string().contains("alert_escalate"))
        .expect("the job's card with the alert's buttons");
    assert!(card.text.contains("revenue_daily"), "{}", card.text);
    // The thread and the alert link it.
    let note = format!("Incident channel <#{}> opened by <@U0PLATLEAD>", ch.id);
    assert_eq!(
        thread_texts(&w.app)
            .iter()
            .filter(|t| t.contains(&note))
            .count(),
        1
    );
    let shown = alert_in_channel(&w.app).to_string();
    assert!(
        shown.contains(&format!("Incident channel: <#{}>", ch.id)),
        "{shown}"
    );
    assert!(!menu_labels(&alert_in_channel(&w.app)).contains(&"Open incident channel".to_string()));

    // Again: nothing more.
    let again = choose(&w, "U0ONCALL2", "incident_channel_open", &alert).await;
    assert!(
        again.contains("already has its incident channel"),
        "{again}"
    );
    assert_eq!(w.app.slack.calls_to("conversations.create").len(), 1);

    // Commands in it act on the tenant, even for someone of no tenant.
    let list = slash_in(&w, "list", "U0STRANGER", &ch.id).await;
    assert!(!list.contains("belongs to no tenant"), "{list}");
    assert!(!list.contains("not one of tenant"), "{list}");

    // An event is one line in the channel; edits are not copied.
    let before = channel_texts(&w.app, &ch.id).len();
    let value = common::slack_ui::button_value(&alert_in_channel(&w.app), "alert_escalate")
        .expect("Escalate now");
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0ACMEALERT",
            "U0PLATLEAD",
            "alert_escalate",
            &value,
        ))
        .await;
    fire(&w).await;
    let lines = channel_texts(&w.app, &ch.id);
    assert!(lines.len() > before, "a line for the page: {lines:#?}");
    assert!(
        w.app
            .slack
            .calls_to("chat.update")
            .iter()
            .all(|c| c.body["channel"] != ch.id.as_str()),
        "no edits in the incident channel"
    );
    let line_count = lines.len();
    // A poll that only edits the alert adds no line.
    w.clock.advance(Duration::minutes(1));
    w.fx.set_eta(job, t0() + Duration::minutes(35), w.clock.now())
        .await;
    w.app.poll().await;
    assert_eq!(channel_texts(&w.app, &ch.id).len(), line_count);

    // Resolution: the timeline from the audit log, and Archive channel.
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    let timeline = w
        .app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == ch.id && m.text.starts_with("Timeline of"))
        .expect("the timeline");
    let body = timeline.blocks.to_string();
    assert!(body.contains("acknowledge"), "{body}");
    assert!(body.contains("incident channel open"), "{body}");
    assert!(body.contains("resolved"), "{body}");
    assert!(
        body.contains("incident_channel_archive"),
        "the Archive channel button: {body}"
    );
    assert!(!body.contains("<@U0"), "names, not mentions: {body}");

    // Archive: operators only, audited, once.
    let click =
        |user: &str| fresh_click_in(&w.app, &ch.id, user, "incident_channel_archive", &alert);
    w.app.interact(&click("U0STRANGER")).await;
    fire(&w).await;
    assert!(!w.app.slack.created_channels()[0].archived);
    let (c1, c2) = (click("U0PLATLEAD"), click("U0ONCALL1"));
    let (a, b) = tokio::join!(w.app.interact(&c1), w.app.interact(&c2));
    drop((a, b));
    fire(&w).await;
    assert_eq!(w.app.slack.ok_calls_to("conversations.archive").len(), 1);
    assert!(created(&w.app)[0].archived);
    let told = told_all(&w.app);
    assert!(told.contains("archived already"), "{told}");
    let audit = w.app.state.store.list_audit(None, 200).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "incident_channel_archive" && e.outcome == "archived")
            .count(),
        1
    );
    assert!(audit.iter().any(|e| e.action == "incident_channel_archive"
        && e.actor == "U0STRANGER"
        && e.outcome.starts_with("refused")));
    assert!(audit
        .iter()
        .any(|e| e.action == "incident_channel_open" && e.actor == "U0PLATLEAD"));
}

#[tokio::test]
async fn opened_from_the_menu_named_invited_topic_linked_lines_timeline_archive_on_sqlite() {
    opened_from_the_menu_named_invited_topic_linked_lines_timeline_archive(Backend::Sqlite).await;
}

#[tokio::test]
async fn opened_from_the_menu_named_invited_topic_linked_lines_timeline_archive_on_postgres() {
    opened_from_the_menu_named_invited_topic_linked_lines_timeline_archive(Backend::Postgres).await;
}

async fn concurrent_clicks_and_commands_open_one_channel(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    // A channel of that name exists already: the next name is taken.
    let day = t0().format("%m%d").to_string();
    w.app
        .slack
        .add_channel("C0PEOPLE1", &format!("sla-revenue_daily-{day}"), &["U0X"]);
    let state = &w.app.state;
    let a = state.store.get_alert(&alert).await.unwrap().unwrap();
    // Two "replicas" (flow calls racing on one store), two clicks and the command.
    let open = |by: &'static str| {
        let a = a.clone();
        async move {
            servo_sla_bot::flows::incident_channels::open(state, &a, by, None)
                .await
                .unwrap()
        }
    };
    let click = |user: &str| {
        overflow_click_in(&w.app, "C0ACMEALERT", user, "incident_channel_open", &alert)
    };
    let (c1, c2) = (click("U0PLATLEAD"), click("U0ONCALL2"));
    let command = format!("incident {job}");
    let (r1, r2, _, _, _) = tokio::join!(
        open("U0PLATLEAD"),
        open("U0ONCALL1"),
        w.app.interact(&c1),
        w.app.interact(&c2),
        w.app.slash(&command, "U0ONCALL1", "C0ACMEALERT"),
    );
    use servo_sla_bot::flows::incident_channels::OpenOutcome;
    let firsts = [&r1, &r2]
        .iter()
        .filter(|r| matches!(r, OpenOutcome::Opening { .. }))
        .count();
    assert!(firsts <= 1, "{r1:?} {r2:?}");
    fire(&w).await;
    fire(&w).await;
    let channels = created(&w.app);
    assert_eq!(channels.len(), 1, "{channels:?}");
    assert_eq!(
        channels[0].name,
        format!("sla-revenue_daily-{day}-2"),
        "made unique"
    );
    assert_eq!(w.app.slack.ok_calls_to("conversations.create").len(), 1);
    assert_eq!(
        w.app.slack.calls_to("conversations.create").len(),
        2,
        "the taken name, then the next"
    );
    let audit = w.app.state.store.list_audit(None, 200).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "incident_channel_open" && e.outcome == "requested")
            .count(),
        1,
        "decided once"
    );
}

#[tokio::test]
async fn concurrent_clicks_and_commands_open_one_channel_on_sqlite() {
    concurrent_clicks_and_commands_open_one_channel(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_clicks_and_commands_open_one_channel_on_postgres() {
    concurrent_clicks_and_commands_open_one_channel(Backend::Postgres).await;
}

async fn an_existing_channel_is_linked_instead(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(medium("orders_daily")).await;
    w.app.poll().await;
    // A Medium alert: no menu entry, and the command says why.
    assert!(!menu_labels(&alert_in_channel(&w.app)).contains(&"Open incident channel".to_string()));
    let refused = slash_in(&w, &format!("incident {job}"), "U0PLATLEAD", "C0ACMEALERT").await;
    assert!(refused.contains("for High or Breached alerts"), "{refused}");
    assert!(w.app.slack.calls_to("conversations.create").is_empty());

    w.app
        .slack
        .add_channel("C0WARROOM", "war-room", &["U0PLATLEAD"]);
    let strangers = slash_in(
        &w,
        &format!("incident link {job}"),
        "U0STRANGER",
        "C0WARROOM",
    )
    .await;
    assert!(
        strangers.contains("belongs to no tenant") || strangers.contains("Only the operators"),
        "{strangers}"
    );
    let refused = slash_in(
        &w,
        &format!("incident link {job} --tenant acme"),
        "U0PRODOWNER",
        "C0WARROOM",
    )
    .await;
    assert!(refused.contains("Only the operators"), "{refused}");
    let linked = slash_in(
        &w,
        &format!("incident link {job}"),
        "U0PLATLEAD",
        "C0WARROOM",
    )
    .await;
    assert!(
        linked.contains("<#C0WARROOM> is this alert's incident channel"),
        "{linked}"
    );
    assert!(
        w.app.slack.calls_to("conversations.create").is_empty(),
        "nothing created"
    );
    let room = w
        .app
        .slack
        .created_channels()
        .into_iter()
        .find(|c| c.id == "C0WARROOM")
        .unwrap();
    assert!(room.topic.contains("orders_daily"), "{}", room.topic);
    assert!(
        channel_texts(&w.app, "C0WARROOM")
            .iter()
            .any(|t| t.contains("orders_daily")),
        "the job's card"
    );
    let shown = alert_in_channel(&w.app).to_string();
    assert!(shown.contains("Incident channel: <#C0WARROOM>"), "{shown}");
    assert!(thread_texts(&w.app)
        .iter()
        .any(|t| t.contains("<#C0WARROOM> linked by <@U0PLATLEAD>")));
    // Linking again, or opening, changes nothing.
    let again = slash_in(&w, &format!("incident {job}"), "U0PLATLEAD", "C0ACMEALERT").await;
    assert!(
        again.contains("already has its incident channel: <#C0WARROOM>"),
        "{again}"
    );
    // Not in the alerts channel itself.
    let other = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let here = slash_in(
        &w,
        &format!("incident link {other}"),
        "U0PLATLEAD",
        "C0ACMEALERT",
    )
    .await;
    assert!(here.contains("not in a DM or the alerts channel"), "{here}");
}

#[tokio::test]
async fn an_existing_channel_is_linked_instead_on_sqlite() {
    an_existing_channel_is_linked_instead(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_existing_channel_is_linked_instead_on_postgres() {
    an_existing_channel_is_linked_instead(Backend::Postgres).await;
}

async fn the_thread_asks_once_how_it_ended(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    w.app.poll().await;
    let asks: Vec<_> = w
        .app
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_some() && m.text.starts_with("How did it end?"))
        .collect();
    assert_eq!(
        asks.len(),
        1,
        "asked once: {:#?}",
        w.app
            .slack
            .calls_to("chat.postMessage")
            .iter()
            .filter(|c| !c.is_ok())
            .map(|c| (c.outcome.clone(), c.error_detail.clone()))
            .collect::<Vec<_>>()
    );
    let choices = asks[0].blocks.to_string();
    for label in ["Mitigated", "Expected", "False alarm", "Missed"] {
        assert!(choices.contains(label), "{label}: {choices}");
    }
    // Neither an operator nor paged: refused, audited.
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0ACMEALERT",
            "U0STRANGER",
            "alert_disposition",
            &format!("{alert}:false_alarm"),
        ))
        .await;
    fire(&w).await;
    assert!(told_all(&w.app).contains("Only the tenant's operators and the people paged"));
    assert!(w.app.slack.views().is_empty());
    // Someone paged: the dialog, with their choice picked.
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0ACMEALERT",
            "U0ONCALL2",
            "alert_disposition",
            &format!("{alert}:false_alarm"),
        ))
        .await;
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1);
    let view = views[0].view.clone();
    assert_eq!(view["callback_id"], "alert_how_it_ended");
    assert_eq!(
        view["blocks"][0]["element"]["initial_option"]["value"],
        "false_alarm"
    );
    let submit = |user: &str, ending: &str| {
        serde_json::json!({
            "type": "view_submission",
            "user": {"id": user},
            "view": {
                "id": "V0ENDED1",
                "callback_id": "alert_how_it_ended",
                "private_metadata": view["private_metadata"],
                "state": {"values": {
                    "ending": {"value": {"type": "radio_buttons", "selected_option": {"value": ending}}},
                    "note": {"value": {"type": "plain_text_input", "value": "the forecast <overshot>"}}
                }}
            }
        })
    };
    let bad = w.app.interact(&submit("U0ONCALL2", "shrug")).await;
    assert_eq!(bad.json()["response_action"], "errors");
    let ok = w.app.interact(&submit("U0ONCALL2", "false_alarm")).await;
    assert!(ok.body.is_empty(), "{}", ok.body);
    fire(&w).await;
    let again = w.app.interact(&submit("U0PLATLEAD", "mitigated")).await;
    assert!(again.body.is_empty());
    fire(&w).await;
    let d = w
        .app
        .state
        .store
        .disposition(&alert)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.disposition, "false_alarm");
    assert_eq!(d.answered_by, "U0ONCALL2");
    assert_eq!(d.asset, "revenue_daily");
    let shown = alert_in_channel(&w.app).to_string();
    assert!(
        shown.contains(
            "Ended: *False alarm* (answered by <@U0ONCALL2>): the forecast &lt;overshot&gt;"
        ),
        "{shown}"
    );
    assert!(told_all(&w.app).contains("answered once"));
    let audit = w.app.state.store.list_audit(None, 200).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "how_it_ended" && e.outcome == "false_alarm")
            .count(),
        1
    );
    assert!(audit.iter().any(|e| e.action == "how_it_ended"
        && e.actor == "U0STRANGER"
        && e.outcome.starts_with("refused")));
}

#[tokio::test]
async fn the_thread_asks_once_how_it_ended_on_sqlite() {
    the_thread_asks_once_how_it_ended(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_thread_asks_once_how_it_ended_on_postgres() {
    the_thread_asks_once_how_it_ended(Backend::Postgres).await;
}

/// globex follows its own path, whose one tier is the rotation
/// `globex-primary` (U0GLOBEX1 on shift at t0, then U0GLOBEX2); the global
/// path's first tier (S0ONCALL, acme's people) is not globex's.
fn globex_rotation_config() -> String {
    let handoff = t0() + Duration::minutes(10);
    let globex_path = r#"operators = ["U0GLOBEXOPS"]

[[tenants.escalation.tiers]]
name = "Globex On-call"
notify = ["rotation:globex-primary"]
ack_timeout = "15m"
"#;
    format!(
        "{}\n[[rotations]]\nid = \"globex-primary\"\nmembers = [\"U0GLOBEX1\", \"U0GLOBEX2\"]\nshift = \"1d\"\nhandoff = \"{}\"\ntz = \"UTC\"\nstart = \"{}\"\n",
        common::bot::CONFIG.replace("operators = [\"U0GLOBEXOPS\"]\n", globex_path),
        handoff.format("%H:%M"),
        (handoff - Duration::days(1)).format("%Y-%m-%d"),
    )
}

async fn a_tenants_own_rotation_is_invited_and_may_say_how_it_ended(backend: Backend) {
    let w = world_with(backend, &globex_rotation_config()).await;
    let job =
        w.fx.job(JobSpec {
            tenant: "globex".into(),
            ..breached("globex_orders")
        })
        .await;
    w.app.poll().await;
    fire(&w).await;
    let alert = w
        .app
        .state
        .store
        .open_alert_for_job("globex", &job.to_string())
        .await
        .unwrap()
        .expect("globex's alert");
    assert!(
        w.app
            .slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .any(|c| c.body["channel"] == "U0GLOBEX1"
                && c.body.to_string().contains("You are paged")),
        "globex's engineer on shift is paged"
    );

    let told = slash_in(&w, &format!("incident {job}"), "U0GLOBEXOPS", "C0GLOBEXALR").await;
    assert!(told.contains("Opening the incident channel"), "{told}");
    let channels = created(&w.app);
    assert_eq!(channels.len(), 1, "{channels:?}");
    let members = &channels[0].members;
    assert!(
        members.contains(&"U0GLOBEX1".to_string()),
        "the rotation's member on shift, who was paged, is invited: {members:?}"
    );
    for other in ["U0ONCALL1", "U0ONCALL2", "U0GLOBEX2"] {
        assert!(
            !members.contains(&other.to_string()),
            "{other} was not paged for globex and is not invited: {members:?}"
        );
    }

    // Resolved: the engineer who was paged may say how it ended.
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    fire(&w).await;
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0GLOBEXALR",
            "U0GLOBEX1",
            "alert_disposition",
            &format!("{}:mitigated", alert.id),
        ))
        .await;
    assert!(
        !told_all(&w.app).contains("Only the tenant's operators and the people paged"),
        "{}",
        told_all(&w.app)
    );
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1, "the dialog opens for the paged engineer");
    assert_eq!(views[0].view["callback_id"], "alert_how_it_ended");
    // Someone of the global path, paged for nothing of globex's, may not.
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0GLOBEXALR",
            "U0ONCALL1",
            "alert_disposition",
            &format!("{}:mitigated", alert.id),
        ))
        .await;
    assert!(told_all(&w.app).contains("Only the tenant's operators and the people paged"));
    assert_eq!(w.app.slack.views().len(), 1);
}

#[tokio::test]
async fn a_tenants_own_rotation_is_invited_and_may_say_how_it_ended_on_sqlite() {
    a_tenants_own_rotation_is_invited_and_may_say_how_it_ended(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_tenants_own_rotation_is_invited_and_may_say_how_it_ended_on_postgres() {
    a_tenants_own_rotation_is_invited_and_may_say_how_it_ended(Backend::Postgres).await;
}

/// Resolves the job (completed) and polls: the alert resolves.
async fn complete(w: &World, job: uuid::Uuid) {
    w.fx.update_job(
        job,
        "state = 'completed', completed_partitions = 100, completed_at = now()",
    )
    .await;
    w.app.poll().await;
    fire(w).await;
}

/// A *Recreate* moves the alert to the new job; the episode's timeline
/// still has what happened on the old one: the acknowledgement, the
/// channel's opening and the recreate itself.
async fn the_timeline_keeps_what_came_before_a_recreate(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    w.app
        .interact(&click_in(
            &w.app,
            "C0ACMEALERT",
            "U0ONCALL1",
            "alert_ack",
            &alert,
        ))
        .await;
    fire(&w).await;
    let told = choose(&w, "U0PLATLEAD", "incident_channel_open", &alert).await;
    assert!(told.contains("Opening the incident channel"), "{told}");
    let ch = created(&w.app).remove(0);

    w.clock.advance(Duration::minutes(1));
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0ACMEALERT",
            "U0PLATLEAD",
            "mitigate_recreate",
            &alert,
        ))
        .await;
    fire(&w).await;
    let new_job: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM backfill_jobs WHERE id <> $1 AND asset_name = 'revenue_daily'",
    )
    .bind(job)
    .fetch_one(&w.fx.admin)
    .await
    .unwrap();
    let a = w.app.state.store.get_alert(&alert).await.unwrap().unwrap();
    assert_eq!(
        a.job_id,
        new_job.to_string(),
        "the alert follows the new job"
    );

    w.clock.advance(Duration::minutes(1));
    complete(&w, new_job).await;
    let timeline = w
        .app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == ch.id && m.text.starts_with("Timeline of"))
        .expect("the timeline");
    let body = timeline.blocks.to_string();
    assert!(body.contains("acknowledge"), "{body}");
    assert!(body.contains("incident channel open"), "{body}");
    assert!(body.contains("recreate: ok"), "{body}");
    assert!(body.contains("resolved"), "{body}");
}

#[tokio::test]
async fn the_timeline_keeps_what_came_before_a_recreate_on_sqlite() {
    the_timeline_keeps_what_came_before_a_recreate(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_timeline_keeps_what_came_before_a_recreate_on_postgres() {
    the_timeline_keeps_what_came_before_a_recreate(Backend::Postgres).await;
}

async fn a_linked_channel_is_never_archived(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    // The tenant's standing incident room, linked to this episode.
    w.app
        .slack
        .add_channel("C0WARROOM", "acme-incidents", &["U0PLATLEAD"]);
    let linked = slash_in(
        &w,
        &format!("incident link {job}"),
        "U0PLATLEAD",
        "C0WARROOM",
    )
    .await;
    assert!(linked.contains("<#C0WARROOM>"), "{linked}");
    complete(&w, job).await;
    let timeline = w
        .app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == "C0WARROOM" && m.text.starts_with("Timeline of"))
        .expect("the timeline");
    let body = timeline.blocks.to_string();
    assert!(
        !body.contains("incident_channel_archive"),
        "no Archive channel for a linked room: {body}"
    );
    assert!(body.contains("not opened by the bot"), "{body}");
    // A click anyway (a forged or copied button) is refused and audited.
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0WARROOM",
            "U0PLATLEAD",
            "incident_channel_archive",
            &alert,
        ))
        .await;
    fire(&w).await;
    let told = told_all(&w.app);
    assert!(told.contains("not opened by the bot"), "{told}");
    assert!(w.app.slack.calls_to("conversations.archive").is_empty());
    let room = w
        .app
        .slack
        .created_channels()
        .into_iter()
        .find(|c| c.id == "C0WARROOM")
        .unwrap();
    assert!(!room.archived);
    let ic = w
        .app
        .state
        .store
        .incident_channel(&alert)
        .await
        .unwrap()
        .unwrap();
    assert!(ic.archived_at.is_none());
    let audit = w.app.state.store.list_audit(None, 200).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "incident_channel_archive"
        && e.actor == "U0PLATLEAD"
        && e.outcome == "refused: a linked channel"));
}

#[tokio::test]
async fn a_linked_channel_is_never_archived_on_sqlite() {
    a_linked_channel_is_never_archived(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_linked_channel_is_never_archived_on_postgres() {
    a_linked_channel_is_never_archived(Backend::Postgres).await;
}

async fn an_archive_slack_refuses_is_taken_back_and_said(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    let told = choose(&w, "U0PLATLEAD", "incident_channel_open", &alert).await;
    assert!(told.contains("Opening the incident channel"), "{told}");
    let ch = created(&w.app)[0].id.clone();
    complete(&w, job).await;

    // The workspace lets only admins archive channels.
    w.app.slack.fail_next(
        "conversations.archive",
        vec![common::fake_slack::Fault::Error("restricted_action".into())],
    );
    let click = || {
        fresh_click_in(
            &w.app,
            &ch,
            "U0PLATLEAD",
            "incident_channel_archive",
            &alert,
        )
    };
    w.app.interact(&click()).await;
    fire(&w).await;
    assert_eq!(
        w.app.slack.calls_to("conversations.archive")[0].outcome,
        "restricted_action"
    );
    // Slack's answer is read a minute on.
    common::slack_ui::advance(&w.app, &w.clock, 1).await;
    let store = &w.app.state.store;
    let ic = store.incident_channel(&alert).await.unwrap().unwrap();
    assert!(
        ic.archived_at.is_none() && ic.archived_by.is_none(),
        "the store no longer says archived: {ic:?}"
    );
    assert!(!created(&w.app)[0].archived);
    let note = thread_texts(&w.app)
        .into_iter()
        .find(|t| t.contains("Slack would not archive"))
        .expect("the thread says Slack refused");
    assert!(note.contains("restricted_action"), "{note}");
    assert!(note.contains(&format!("<#{ch}>")), "{note}");
    assert!(
        channel_texts(&w.app, &ch)
            .iter()
            .any(|t| t.contains("Slack would not archive this channel (restricted_action)")),
        "the channel is told too"
    );
    let shown = alert_in_channel(&w.app).to_string();
    assert!(
        shown.contains(&format!("Incident channel: <#{ch}>")) && !shown.contains("archived by"),
        "{shown}"
    );
    let audit = store.list_audit(None, 200).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "incident_channel_archive"
        && e.actor == "bot"
        && e.outcome == "refused by Slack: restricted_action"));

    // Fixed in Slack: the button works again, once.
    w.app.interact(&click()).await;
    fire(&w).await;
    common::slack_ui::advance(&w.app, &w.clock, 1).await;
    assert_eq!(w.app.slack.ok_calls_to("conversations.archive").len(), 1);
    assert!(created(&w.app)[0].archived);
    let ic = store.incident_channel(&alert).await.unwrap().unwrap();
    assert_eq!(ic.archived_by.as_deref(), Some("U0PLATLEAD"));
}

#[tokio::test]
async fn an_archive_slack_refuses_is_taken_back_and_said_on_sqlite() {
    an_archive_slack_refuses_is_taken_back_and_said(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_archive_slack_refuses_is_taken_back_and_said_on_postgres() {
    an_archive_slack_refuses_is_taken_back_and_said(Backend::Postgres).await;
}

async fn no_channel_is_created_once_its_alert_has_resolved(backend: Backend) {
    let w = world(backend).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    // Slack is unavailable for the first try (every attempt of one call).
    w.app.slack.fail_next(
        "conversations.create",
        vec![common::fake_slack::Fault::ServerError; 3],
    );
    let told = choose(&w, "U0PLATLEAD", "incident_channel_open", &alert).await;
    assert!(told.contains("Opening the incident channel"), "{told}");
    assert!(!w.app.slack.calls_to("conversations.create").is_empty());
    assert!(created(&w.app).is_empty());
    // The job completes while the step waits to try again.
    complete(&w, job).await;
    common::slack_ui::advance(&w.app, &w.clock, 1).await;

    assert!(
        w.app.slack.ok_calls_to("conversations.create").is_empty(),
        "no channel for an episode that is over"
    );
    assert!(created(&w.app).is_empty());
    let notes: Vec<String> = thread_texts(&w.app)
        .into_iter()
        .filter(|t| t.contains("was not created"))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0].contains("<@U0PLATLEAD>"), "{}", notes[0]);
    assert!(notes[0].contains("the alert resolved"), "{}", notes[0]);
    let ic = w
        .app
        .state
        .store
        .incident_channel(&alert)
        .await
        .unwrap()
        .unwrap();
    assert!(ic.channel.is_none());
    assert_eq!(
        ic.failed.as_deref(),
        Some("the alert resolved before Slack created it")
    );
    // Nothing more however long it waits.
    common::slack_ui::advance(&w.app, &w.clock, 10).await;
    assert!(w.app.slack.ok_calls_to("conversations.create").is_empty());
}

#[tokio::test]
async fn no_channel_is_created_once_its_alert_has_resolved_on_sqlite() {
    no_channel_is_created_once_its_alert_has_resolved(Backend::Sqlite).await;
}

#[tokio::test]
async fn no_channel_is_created_once_its_alert_has_resolved_on_postgres() {
    no_channel_is_created_once_its_alert_has_resolved(Backend::Postgres).await;
}

async fn a_channel_slack_made_as_the_alert_resolved_gets_its_timeline(backend: Backend) {
    // Slack's answer comes after 3 s: the client waits up to 10.
    let config = common::bot::CONFIG.replace("timeout = \"2s\"", "timeout = \"10s\"");
    let w = world_with(backend, &config).await;
    let job = w.fx.job(breached("revenue_daily")).await;
    w.app.poll().await;
    let alert = alert_id(&w.app);
    w.app.slack.fail_next(
        "conversations.create",
        vec![common::fake_slack::Fault::HeldAnswer(
            std::time::Duration::from_secs(3),
        )],
    );
    let app = &w.app;
    let open = async {
        app.interact(&overflow_click_in(
            app,
            "C0ACMEALERT",
            "U0PLATLEAD",
            "incident_channel_open",
            &alert,
        ))
        .await;
        fire(&w).await;
    };
    // The job completes while Slack makes the channel.
    let resolve = async {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        assert!(created(app).len() <= 1);
        complete(&w, job).await;
    };
    tokio::join!(open, resolve);
    fire(&w).await;
    let channels = created(&w.app);
    assert_eq!(channels.len(), 1, "{channels:?}");
    let ch = &channels[0].id;
    let store = &w.app.state.store;
    let a = store.get_alert(&alert).await.unwrap().unwrap();
    assert!(!a.is_open(), "resolved meanwhile");
    let timeline = w
        .app
        .slack
        .messages()
        .into_iter()
        .filter(|m| &m.channel == ch && m.text.starts_with("Timeline of"))
        .collect::<Vec<_>>();
    assert_eq!(timeline.len(), 1, "the timeline, once");
    assert!(timeline[0]
        .blocks
        .to_string()
        .contains("incident_channel_archive"));
}

#[tokio::test]
async fn a_channel_slack_made_as_the_alert_resolved_gets_its_timeline_on_sqlite() {
    a_channel_slack_made_as_the_alert_resolved_gets_its_timeline(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_channel_slack_made_as_the_alert_resolved_gets_its_timeline_on_postgres() {
    a_channel_slack_made_as_the_alert_resolved_gets_its_timeline(Backend::Postgres).await;
}

/// The page DMs a person got.
fn pages_to(app: &TestApp, user: &str) -> usize {
    app.slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == user && c.body.to_string().contains("You are paged"))
        .count()
}

/// A storm in globex (more jobs at risk than `alerts.rollup_after`): its
/// alerts do not page one by one, the roll-up's one escalation pages the
/// rotation's engineer on shift (U0GLOBEX1, neither an operator nor
/// acknowledging). Its pages made while an alert was open are pages for it:
/// the alert's channel invites him, a pre-storm alert's (a member too) as
/// well, and he may say how it ended; an alert that joined after that page
/// has only the pages made since.
async fn whom_a_storms_rollup_paged_is_invited_and_may_say_how_it_ended(backend: Backend) {
    let config = format!("{}\n[alerts]\nrollup_after = 5\n", globex_rotation_config());
    let w = world_with(backend, &config).await;
    // Standard priority: several high-priority jobs at once would page too.
    let globex = |spec: JobSpec| JobSpec {
        tenant: "globex".into(),
        priority: spec.priority.min(5),
        ..spec
    };
    // Before the storm: a best-effort job at Medium, whose alert pages nobody.
    let early =
        w.fx.job(globex(JobSpec {
            priority: 2,
            ..medium("globex_early")
        }))
        .await;
    w.app.poll().await;
    fire(&w).await;
    assert_eq!(
        pages_to(&w.app, "U0GLOBEX1"),
        0,
        "a Medium best-effort job pages nobody"
    );

    w.clock.advance(Duration::minutes(1));
    let mut storm = Vec::new();
    for i in 0..5 {
        storm.push(
            w.fx.job(globex(breached(&format!("globex_storm_{i}"))))
                .await,
        );
    }
    w.app.poll().await;
    fire(&w).await;
    let store = &w.app.state.store;
    assert!(
        store.open_rollup("globex").await.unwrap().is_some(),
        "a roll-up"
    );
    assert_eq!(pages_to(&w.app, "U0GLOBEX1"), 1, "one page for the storm");
    let alert_of = |job: uuid::Uuid| async move {
        store
            .open_alert_for_job("globex", &job.to_string())
            .await
            .unwrap()
            .expect("an open alert")
    };
    let first = alert_of(storm[0]).await;
    assert!(
        store
            .escalation_pages_of(&first.id)
            .await
            .unwrap()
            .is_empty(),
        "the alert itself paged nobody: the roll-up did"
    );

    // A member's channel invites the engineer the roll-up paged.
    let told = slash_in(
        &w,
        &format!("incident {}", storm[0]),
        "U0GLOBEXOPS",
        "C0GLOBEXALR",
    )
    .await;
    assert!(told.contains("Opening the incident channel"), "{told}");
    let channels = created(&w.app);
    assert_eq!(channels.len(), 1, "{channels:?}");
    let members = &channels[0].members;
    assert!(
        members.contains(&"U0GLOBEX1".to_string()),
        "paged by the roll-up for this alert, so invited: {members:?}"
    );
    for other in ["U0ONCALL1", "U0ONCALL2", "U0GLOBEX2"] {
        assert!(
            !members.contains(&other.to_string()),
            "{other} was not paged for globex and is not invited: {members:?}"
        );
    }
    // So does the channel of the alert open before the storm: it was a
    // member when the roll-up paged.
    w.app
        .slack
        .add_channel("C0GLOBEXWAR", "globex-war-room", &["U0GLOBEXOPS"]);
    let linked = slash_in(
        &w,
        &format!("incident link {early} --tenant globex"),
        "U0GLOBEXOPS",
        "C0GLOBEXWAR",
    )
    .await;
    assert!(linked.contains("<#C0GLOBEXWAR>"), "{linked}");
    let room = w
        .app
        .slack
        .created_channels()
        .into_iter()
        .find(|c| c.id == "C0GLOBEXWAR")
        .unwrap();
    assert!(
        room.members.contains(&"U0GLOBEX1".to_string()),
        "{:?}",
        room.members
    );

    // A job that joins after the page: that page was not for it; the next
    // one is (after the handoff at t0 + 10 min: U0GLOBEX2 on shift).
    w.clock.advance(Duration::minutes(1));
    let joiner = w.fx.job(globex(breached("globex_joiner"))).await;
    w.app.poll().await;
    fire(&w).await;
    let paged_people = servo_sla_bot::flows::incident_channels::paged_people;
    let joined = alert_of(joiner).await;
    assert_eq!(
        paged_people(&w.app.state, &joined).await,
        Vec::<String>::new()
    );
    common::slack_ui::advance(&w.app, &w.clock, 15).await;
    assert_eq!(pages_to(&w.app, "U0GLOBEX2"), 1, "the path's second round");
    assert_eq!(paged_people(&w.app.state, &joined).await, ["U0GLOBEX2"]);
    assert_eq!(
        paged_people(&w.app.state, &first).await,
        ["U0GLOBEX1", "U0GLOBEX2"]
    );

    // Resolved: the engineer the roll-up paged may say how it ended.
    complete(&w, storm[0]).await;
    let resolved = store.get_alert(&first.id).await.unwrap().unwrap();
    assert!(!resolved.is_open());
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0GLOBEXALR",
            "U0GLOBEX1",
            "alert_disposition",
            &format!("{}:mitigated", first.id),
        ))
        .await;
    assert!(
        !told_all(&w.app).contains("Only the tenant's operators and the people paged"),
        "{}",
        told_all(&w.app)
    );
    let views = w.app.slack.views();
    assert_eq!(views.len(), 1, "the dialog opens for the engineer paged");
    assert_eq!(views[0].view["callback_id"], "alert_how_it_ended");
    // Someone of the global path, paged for nothing of globex's, may not.
    w.app
        .interact(&fresh_click_in(
            &w.app,
            "C0GLOBEXALR",
            "U0ONCALL1",
            "alert_disposition",
            &format!("{}:mitigated", first.id),
        ))
        .await;
    assert!(told_all(&w.app).contains("Only the tenant's operators and the people paged"));
    assert_eq!(w.app.slack.views().len(), 1);
}

on_both_stores!(whom_a_storms_rollup_paged_is_invited_and_may_say_how_it_ended);

/// A job late by 40 minutes (High), waiting on upstream jobs or not.
fn late(asset: &str, upstream: bool) -> JobSpec {
    JobSpec {
        asset: asset.into(),
        deadline: Some(t0() + Duration::minutes(60)),
        eta: Some(t0() + Duration::minutes(100)),
        heartbeat: Some(t0()),
        upstream: if upstream { 2 } else { 0 },
        upstream_done: 0,
        ..JobSpec::default()
    }
}

/// A widespread slowdown (three jobs of acme waiting on upstream jobs)
/// pages the platform team lead once for all of them, before any alert's
/// own path reaches him: the channel of one of those jobs invites him, that
/// of a job the slowdown does not name does not.
async fn whom_a_widespread_slowdown_paged_is_invited_for_the_jobs_it_named(backend: Backend) {
    let config = format!(
        "{}\n[escalation.widespread]\nmin_jobs = 3\n",
        common::bot::CONFIG
    );
    let w = world_with(backend, &config).await;
    let mut waiting = Vec::new();
    for i in 0..3 {
        waiting.push(w.fx.job(late(&format!("orders_{i}"), true)).await);
    }
    let alone = w.fx.job(late("billing_alone", false)).await;
    w.app.poll().await;
    fire(&w).await;
    let store = &w.app.state.store;
    assert!(
        store.open_rollup("acme").await.unwrap().is_none(),
        "no storm"
    );
    assert_eq!(store.open_incidents("acme").await.unwrap().len(), 1);
    assert_eq!(pages_to(&w.app, "U0PLATLEAD"), 1, "the slowdown's one page");

    let invited = |job: uuid::Uuid| {
        let w = &w;
        async move {
            let before = created(&w.app).len();
            let told = slash_in(w, &format!("incident {job}"), "U0ONCALL1", "C0ACMEALERT").await;
            assert!(told.contains("Opening the incident channel"), "{told}");
            let channels = created(&w.app);
            assert_eq!(channels.len(), before + 1, "{channels:?}");
            channels.last().unwrap().members.clone()
        }
    };
    let named = invited(waiting[0]).await;
    for who in ["U0ONCALL1", "U0ONCALL2", "U0PLATLEAD"] {
        assert!(named.contains(&who.to_string()), "{who}: {named:?}");
    }
    let other = invited(alone).await;
    assert!(other.contains(&"U0ONCALL2".to_string()), "{other:?}");
    assert!(
        !other.contains(&"U0PLATLEAD".to_string()),
        "the slowdown did not name it: {other:?}"
    );
}

on_both_stores!(whom_a_widespread_slowdown_paged_is_invited_for_the_jobs_it_named);
