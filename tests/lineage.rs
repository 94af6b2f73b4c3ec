//! Servo's lineage and scheduled workflows (issue 37), read against Servo's
//! real schema under row-level security, as an ordinary role: what a late
//! job breaks downstream, and what holds it up upstream.

mod common;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::bot::{spawn, Backend, Spawn, TestApp, CONFIG};
use common::fake_slack::Call;
use common::servo_fixture::{JobSpec, ServoFixture};
use servo_sla_bot::config::DatabaseUrl;
use servo_sla_bot::runtime::clock::ManualClock;
use servo_sla_bot::servo::Servo;
use uuid::Uuid;

fn start_of_minute() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::minutes(1)).unwrap()
}

async fn app_with(
    fx: &ServoFixture,
    backend: Backend,
    clock: &ManualClock,
    extra: &str,
) -> TestApp {
    let mut spec = Spawn::new(backend)
        .manual_clock(clock)
        .servo_url(&fx.bot_url());
    spec.config = format!("{CONFIG}\n{extra}");
    spawn(spec).await
}

/// A bot with the forecaster on, as it is by default outside the tests.
async fn forecasting_app(fx: &ServoFixture, clock: &ManualClock) -> TestApp {
    let mut spec = Spawn::new(Backend::Sqlite)
        .manual_clock(clock)
        .servo_url(&fx.bot_url());
    spec.config = CONFIG.replace("forecast = false", "forecast = true");
    assert_ne!(
        spec.config, CONFIG,
        "the test config turns the forecaster off"
    );
    spawn(spec).await
}

/// `revenue_daily` → `revenue_report` → `exec_dashboard`, with three
/// scheduled workflows: `exec_daily` at t0+30 min (on `exec_dashboard`),
/// `finance_daily` at t0+80 min (on `revenue_report`) and `weekly` at t0+200
/// min (on `revenue_report`, after the job's likely completion).
async fn lineage(fx: &ServoFixture, t0: DateTime<Utc>) {
    fx.asset("acme", "revenue_report", Some("U0REPORTOWN"))
        .await;
    fx.asset("acme", "exec_dashboard", Some("cfo@example.com"))
        .await;
    fx.depends("acme", "revenue_daily", "revenue_report").await;
    fx.depends("acme", "revenue_report", "exec_dashboard").await;
    for (name, at, asset) in [
        ("finance_daily", 80, "revenue_report"),
        ("exec_daily", 30, "exec_dashboard"),
        ("weekly", 200, "revenue_report"),
    ] {
        fx.workflow(
            "acme",
            name,
            None,
            None,
            "UTC",
            Some(t0 + Duration::minutes(at)),
            &[asset],
        )
        .await;
    }
}

/// A `revenue_daily` job: deadline t0+60 min, Servo's ETA t0+`eta` min.
async fn late_job(fx: &ServoFixture, t0: DateTime<Utc>, eta: i64, priority: i32) -> Uuid {
    fx.job(JobSpec {
        deadline: Some(t0 + Duration::minutes(60)),
        eta: Some(t0 + Duration::minutes(eta)),
        heartbeat: Some(t0),
        priority,
        ..JobSpec::default()
    })
    .await
}

fn text_of(c: &Call) -> String {
    c.body.to_string()
}

/// The alert's post in the tenant's channel.
fn alert_post(app: &TestApp) -> Call {
    app.slack
        .ok_calls_to("chat.postMessage")
        .into_iter()
        .find(|c| {
            c.body["channel"] == "C0ACMEALERT"
                && c.body.get("thread_ts").is_none_or(|t| t.is_null())
        })
        .expect("the alert was posted")
}

async fn servo_for(fx: &ServoFixture) -> Servo {
    Servo::connect_lazy(&DatabaseUrl::new(fx.bot_url())).unwrap()
}

#[tokio::test]
async fn the_lineage_is_read_in_one_query_under_the_tenants_rls() {
    let fx = ServoFixture::start().await;
    let now = Utc::now();
    fx.asset("acme", "revenue_report", Some("U0FINANCE1")).await;
    fx.depends("acme", "revenue_daily", "revenue_report").await;
    fx.depends("acme", "revenue_report", "exec_dashboard").await;
    // Another tenant's lineage and workflows, and a dependency that crosses
    // into it: none of it is visible to acme.
    fx.depends("globex", "revenue_daily", "globex_report").await;
    let acme_daily = fx.asset("acme", "revenue_daily", None).await;
    let globex_report = fx.asset("globex", "globex_report", None).await;
    sqlx::query(
        "INSERT INTO asset_dependencies (upstream_asset_id, downstream_asset_id, dependency_type) \
         VALUES ($1, $2, 'data')",
    )
    .bind(acme_daily)
    .bind(globex_report)
    .execute(&fx.admin)
    .await
    .unwrap();
    fx.workflow(
        "globex",
        "globex_daily",
        None,
        Some("0 6 * * *"),
        "UTC",
        None,
        &["globex_report"],
    )
    .await;
    // Two versions of one workflow: only the live (highest) one counts.
    fx.workflow(
        "acme",
        "finance_daily",
        Some("U0FINOWNER"),
        Some("0 6 * * *"),
        "UTC",
        None,
        &["exec_dashboard"],
    )
    .await;
    fx.workflow(
        "acme",
        "finance_daily",
        Some("U0FINOWNER"),
        None,
        "UTC",
        Some(now + Duration::hours(2)),
        &["revenue_report"],
    )
    .await;
    // A cron the parser refuses: left out (and logged once).
    fx.workflow(
        "acme",
        "broken",
        None,
        Some("every morning"),
        "UTC",
        None,
        &["revenue_report"],
    )
    .await;
    let servo = servo_for(&fx).await;
    let lineage = servo.lineage("acme", now).await.unwrap();
    let mut names: Vec<&str> = lineage.assets.values().map(|a| a.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["exec_dashboard", "revenue_daily", "revenue_report"]);
    assert_eq!(lineage.downstream.values().map(Vec::len).sum::<usize>(), 2);
    assert_eq!(lineage.workflows.len(), 1, "{:?}", lineage.workflows);
    let wf = &lineage.workflows[0];
    assert_eq!(wf.name, "finance_daily");
    assert_eq!(wf.assets.len(), 1);
    assert_eq!(
        lineage.assets[&wf.assets[0]].name, "revenue_report",
        "the live version's assets"
    );
    let impact = lineage.impact(acme_daily, Some(now + Duration::hours(3)), 3, now);
    assert_eq!(impact.stale_runs.len(), 1);
    assert_eq!(
        impact.stale_runs[0].path,
        ["revenue_daily", "revenue_report"]
    );
    let globex = servo.lineage("globex", now).await.unwrap();
    assert_eq!(globex.workflows.len(), 1);
    assert_eq!(globex.workflows[0].name, "globex_daily");
}

#[tokio::test]
async fn an_older_servo_without_the_lineage_tables_reads_an_empty_lineage() {
    let fx = ServoFixture::start_without_lineage().await;
    fx.job(common::servo_fixture::JobSpec {
        deadline: Some(Utc::now() + Duration::hours(2)),
        ..Default::default()
    })
    .await;
    let servo = servo_for(&fx).await;
    let lineage = servo.lineage("acme", Utc::now()).await.unwrap();
    assert!(lineage.assets.is_empty() && lineage.workflows.is_empty());
    // The rest of Servo works as before.
    assert_eq!(servo.active_jobs("acme", true).await.unwrap().len(), 1);
}

async fn the_alert_lists_the_stale_runs_first_and_leaves_later_runs_out(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    let id = late_job(&fx, t0, 100, 5).await;
    let app = app_with(&fx, backend, &clock, "").await;
    app.slack.set_user_name("U0REPORTOWN", "Rita");
    app.poll().await;
    app.drain_outbox().await;
    common::slack_ui::advance(&app, &clock, 0).await;
    app.drain_outbox().await;
    let post = text_of(&alert_post(&app));
    assert!(post.contains("*Downstream impact*"), "{post}");
    let exec = post.find("`exec_daily` runs").expect("exec_daily listed");
    let finance = post
        .find("`finance_daily` runs")
        .expect("finance_daily listed");
    assert!(exec < finance, "soonest first: {post}");
    assert!(
        post.contains("it would read stale `revenue_daily` → `revenue_report` → `exec_dashboard`"),
        "{post}"
    );
    assert!(
        !post.contains("weekly"),
        "a run after the P90 is not listed: {post}"
    );
    // Named, not mentioned: the owner hears of it once, by DM
    // (`lineage.notify_owners_at`), not at every alert.
    assert!(post.contains("owner Rita"), "{post}");
    assert!(!post.contains("<@U0REPORTOWN>"), "{post}");
    // The page says it too (the on-call group has no members in the fake
    // Slack: the platform lead's page, 15 min on).
    common::slack_ui::advance(&app, &clock, 15).await;
    app.drain_outbox().await;
    let dms: Vec<String> = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] != "C0ACMEALERT")
        .map(text_of)
        .filter(|t| t.contains("You are paged"))
        .collect();
    assert!(
        dms.iter()
            .any(|t| t.contains("Downstream impact") && t.contains("finance_daily")),
        "the page names the stale runs: {dms:?}"
    );
    // The job completes: the section says so in place.
    fx.update_job(id, "state = 'completed', completed_at = now()")
        .await;
    clock.advance(Duration::minutes(1));
    app.poll().await;
    app.drain_outbox().await;
    let update = app
        .slack
        .ok_calls_to("chat.update")
        .last()
        .map(text_of)
        .expect("the alert was edited");
    assert!(update.contains("*Downstream impact*"), "{update}");
    assert!(update.contains("no longer wait on this job"), "{update}");
}

#[tokio::test]
async fn the_alert_lists_the_stale_runs_first_and_leaves_later_runs_out_on_sqlite() {
    the_alert_lists_the_stale_runs_first_and_leaves_later_runs_out(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_alert_lists_the_stale_runs_first_and_leaves_later_runs_out_on_postgres() {
    the_alert_lists_the_stale_runs_first_and_leaves_later_runs_out(Backend::Postgres).await;
}

async fn a_stale_downstream_run_pages_from_start_at_if_downstream(backend: Backend) {
    let t0 = start_of_minute();
    let pages = |app: &TestApp| {
        app.slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .filter(|c| text_of(c).contains("Escalation started"))
            .count()
    };
    for (setting, expected) in [("", 0), ("start_at_if_downstream = \"medium\"\n", 1)] {
        let fx = ServoFixture::start().await;
        let clock = ManualClock::new(t0);
        lineage(&fx, t0).await;
        // Best effort (priority 2) pages from High; this one is Medium (ETA
        // 20 min late with 60 left: severity 0.33), and `exec_daily` (t0+30)
        // would read stale data.
        late_job(&fx, t0, 80, 2).await;
        let mut spec = Spawn::new(backend)
            .manual_clock(&clock)
            .servo_url(&fx.bot_url());
        spec.config = CONFIG.replacen(
            "[escalation]\nrepeat = 1\n",
            &format!("[escalation]\nrepeat = 1\n{setting}"),
            1,
        );
        let app = spawn(spec).await;
        app.poll().await;
        app.drain_outbox().await;
        assert_eq!(pages(&app), expected, "with `{setting}`");
        if expected == 1 {
            let started = app
                .slack
                .ok_calls_to("chat.postMessage")
                .iter()
                .map(text_of)
                .find(|t| t.contains("Escalation started"))
                .unwrap();
            assert!(started.contains("scheduled downstream run"), "{started}");
        }
    }
}

#[tokio::test]
async fn a_stale_downstream_run_pages_from_start_at_if_downstream_on_sqlite() {
    a_stale_downstream_run_pages_from_start_at_if_downstream(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_stale_downstream_run_pages_from_start_at_if_downstream_on_postgres() {
    a_stale_downstream_run_pages_from_start_at_if_downstream(Backend::Postgres).await;
}

async fn downstream_owners_hear_of_it_once_per_episode(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    fx.asset("acme", "board_pack", Some("Finance team")).await;
    fx.depends("acme", "exec_dashboard", "board_pack").await;
    fx.asset("acme", "unknown_mail", Some("nobody@example.com"))
        .await;
    fx.depends("acme", "revenue_report", "unknown_mail").await;
    late_job(&fx, t0, 100, 5).await; // High: the default notify_owners_at
    let app = app_with(&fx, backend, &clock, "").await;
    app.slack.set_user_email("U0CFO00001", "CFO@example.com");
    for _ in 0..3 {
        app.poll().await;
        app.drain_outbox().await;
        clock.advance(Duration::minutes(1));
    }
    let dms_to = |user: &str| -> Vec<String> {
        app.slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.body["channel"] == user)
            .map(text_of)
            .filter(|t| t.contains("feeds your"))
            .collect()
    };
    let owner = dms_to("U0REPORTOWN");
    assert_eq!(owner.len(), 1, "one DM per episode: {owner:?}");
    assert!(
        owner[0].contains("`revenue_daily` → `revenue_report`"),
        "{}",
        owner[0]
    );
    assert!(owner[0].contains("likely done by"), "{}", owner[0]);
    assert!(owner[0].contains("`exec_daily` runs"), "{}", owner[0]);
    assert!(
        owner[0].contains("slack.com") || owner[0].contains("Open the alert"),
        "{}",
        owner[0]
    );
    assert_eq!(
        dms_to("U0CFO00001").len(),
        1,
        "an email resolved with users.lookupByEmail"
    );
    let named: Vec<String> = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .map(text_of)
        .filter(|t| t.contains("Downstream owners not messaged"))
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(
        named[0].contains("Finance team (`board_pack`)"),
        "{}",
        named[0]
    );
    assert!(
        named[0].contains("nobody@example.com (`unknown_mail`)"),
        "{}",
        named[0]
    );
}

#[tokio::test]
async fn downstream_owners_hear_of_it_once_per_episode_on_sqlite() {
    downstream_owners_hear_of_it_once_per_episode(Backend::Sqlite).await;
}

#[tokio::test]
async fn downstream_owners_hear_of_it_once_per_episode_on_postgres() {
    downstream_owners_hear_of_it_once_per_episode(Backend::Postgres).await;
}

/// With `lineage.notify_owners_at = "never"`, a Low alert names the
/// downstream owners without mentioning them, and nobody is messaged: a
/// mention in the channel would notify them at every band, every episode.
async fn owners_are_named_not_mentioned_when_never_notified(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    // Low: ETA 10 min after the deadline, with 60 min left (severity 0.17).
    late_job(&fx, t0, 70, 5).await;
    let app = app_with(
        &fx,
        backend,
        &clock,
        "[lineage]\nnotify_owners_at = \"never\"\n",
    )
    .await;
    app.slack.set_user_name("U0REPORTOWN", "Rita");
    for _ in 0..2 {
        app.poll().await;
        app.drain_outbox().await;
        clock.advance(Duration::minutes(1));
    }
    let post = text_of(&alert_post(&app));
    assert!(post.contains("*Low SLA risk*"), "{post}");
    assert!(post.contains("*Downstream impact*"), "{post}");
    assert!(post.contains("owner Rita"), "{post}");
    let sent: Vec<String> = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .chain(app.slack.ok_calls_to("chat.update").iter())
        .map(text_of)
        .collect();
    assert!(
        sent.iter().all(|t| !t.contains("<@U0REPORTOWN>")),
        "the owner is not mentioned: {sent:#?}"
    );
    let dms = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "U0REPORTOWN")
        .count();
    assert_eq!(dms, 0, "`never`: no DM");
}

on_both_stores!(owners_are_named_not_mentioned_when_never_notified);

/// Makes `child` an upstream job of `root` (Servo's job tree, migration 010).
async fn child_of(fx: &ServoFixture, child: Uuid, root: Uuid) {
    sqlx::query("UPDATE backfill_jobs SET parent_job_id = $2 WHERE id = $1")
        .bind(child)
        .bind(root)
        .execute(&fx.admin)
        .await
        .unwrap();
}

/// A root waiting on `upstream` jobs, done at t0+50 min as if it started
/// now, against a t0+70 deadline.
async fn waiting_root(fx: &ServoFixture, t0: DateTime<Utc>, asset: String, upstream: i32) -> Uuid {
    fx.job(JobSpec {
        asset,
        state: "waiting_upstream".into(),
        deadline: Some(t0 + Duration::minutes(70)),
        upstream,
        upstream_done: 0,
        started: None,
        ..JobSpec::default()
    })
    .await
}

/// An upstream job likely done at t0+40 min, Medium against its t0+30
/// deadline.
async fn late_upstream(fx: &ServoFixture, t0: DateTime<Utc>, asset: &str) -> Uuid {
    fx.job(JobSpec {
        asset: asset.into(),
        deadline: Some(t0 + Duration::minutes(30)),
        eta: Some(t0 + Duration::minutes(40)),
        heartbeat: Some(t0),
        ..JobSpec::default()
    })
    .await
}

/// The alerts' own posts in the tenant's channel (not their thread replies).
fn alert_posts(app: &TestApp) -> Vec<String> {
    app.slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| {
            c.body["channel"] == "C0ACMEALERT"
                && c.body.get("thread_ts").is_none_or(|t| t.is_null())
        })
        .map(text_of)
        .collect()
}

/// A root waiting on two upstream jobs: as if it started now it would be
/// done at t0+50 min, before its t0+70 deadline, but `orders_raw` is likely
/// done only at t0+40 (Medium against its t0+30 deadline), so the root,
/// starting then, is at risk too; `fx_rates` is on track. Returns
/// `orders_raw`.
async fn job_tree(fx: &ServoFixture, t0: DateTime<Utc>) -> Uuid {
    let root = waiting_root(fx, t0, JobSpec::default().asset, 2).await;
    let orders = late_upstream(fx, t0, "orders_raw").await;
    let fx_rates = fx
        .job(JobSpec {
            asset: "fx_rates".into(),
            eta: Some(t0 + Duration::minutes(20)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    child_of(fx, orders, root).await;
    child_of(fx, fx_rates, root).await;
    orders
}

#[tokio::test]
async fn impact_shows_the_downstream_tree_its_runs_and_the_upstream_jobs() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    let root = late_job(&fx, t0, 100, 5).await;
    let child = fx
        .job(JobSpec {
            asset: "orders_raw".into(),
            deadline: None,
            eta: Some(t0 + Duration::minutes(40)),
            heartbeat: Some(t0),
            completed: 40,
            ..JobSpec::default()
        })
        .await;
    child_of(&fx, child, root).await;
    let app = app_with(&fx, Backend::Sqlite, &clock, "").await;
    app.slack.set_user_name("U0REPORTOWN", "Rita");
    let answer = app
        .slash("impact revenue_daily", "U0PLATLEAD", "C0ACMEALERT")
        .await;
    assert_eq!(answer.status, 200);
    let v = answer.json();
    assert_eq!(v["response_type"], "ephemeral");
    let text = v["text"].as_str().unwrap().to_string();
    for expected in [
        "*Impact of `revenue_daily`*",
        "↳ `revenue_report` · owner Rita",
        "    ↳ `exec_dashboard` · owner cfo@example.com",
        "`exec_daily` runs <!date^",
        "`weekly` runs",
        "*Upstream jobs it waits on*",
        "`orders_raw` on track (40/100 partitions)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let stale = |wf: &str| {
        text.lines()
            .find(|l| l.contains(&format!("`{wf}` runs")))
            .unwrap()
            .contains("would read stale data")
    };
    assert!(stale("exec_daily") && stale("finance_daily"));
    assert!(!stale("weekly"), "after the P90: {text}");
    // A job without lineage says so.
    let lone = fx
        .job(JobSpec {
            asset: "lonely".into(),
            deadline: Some(t0 + Duration::hours(1)),
            ..JobSpec::default()
        })
        .await;
    let text = app
        .slash(&format!("impact {lone}"), "U0PLATLEAD", "C0ACMEALERT")
        .await
        .json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Nothing downstream"), "{text}");
    assert!(text.contains("None."), "{text}");
}

/// The extension dialog of `job`'s open alert, opened by the platform lead,
/// with one of its quick choices (`extension_quick_1h`, `+1h`) clicked: its
/// preview block, as JSON text.
async fn extension_preview(app: &TestApp, job: Uuid, action: &str, value: &str) -> String {
    use serde_json::{json, Value};
    let alert = app
        .state
        .store
        .open_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .expect("an open alert")
        .id;
    app.interact(&common::slack_ui::click_in(
        app,
        "C0ACMEALERT",
        "U0PLATLEAD",
        "extension_request",
        &alert,
    ))
    .await;
    let view = app.slack.views().pop().expect("the dialog opened").view;
    let mut dialog = view.clone();
    dialog["state"] = json!({ "values": {} });
    app.interact(&json!({
        "type": "block_actions",
        "user": { "id": "U0PLATLEAD" },
        "container": { "type": "view", "view_id": view["id"] },
        "trigger_id": "trigger-U0PLATLEAD",
        "view": dialog,
        "actions": [{ "type": "button", "block_id": "quick", "action_id": action, "value": value }],
    }))
    .await;
    let updated = app.slack.views().pop().unwrap().view;
    updated["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "preview")
        .map(Value::to_string)
        .expect("a preview")
}

/// `/backfill impact` never calls a run safe when it cannot tell when the
/// job is likely done: not from Servo's ETA under a stale heartbeat (Servo
/// leaves it as it was; servo.md: trust it only while the job runs with a
/// fresh heartbeat), and not when there is no estimate at all.
#[tokio::test]
async fn impact_calls_no_run_safe_when_the_job_is_not_known_to_be_done() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    // Servo's ETA (t0+100) is half an hour old: `weekly` at t0+200 would
    // have looked safe after it.
    let stale = fx
        .job(JobSpec {
            deadline: Some(t0 + Duration::minutes(60)),
            eta: Some(t0 + Duration::minutes(100)),
            heartbeat: Some(t0 - Duration::minutes(30)),
            ..JobSpec::default()
        })
        .await;
    // No estimate at all: pending, no ETA, no average yet.
    let unknown = fx
        .job(JobSpec {
            state: "pending".into(),
            deadline: Some(t0 + Duration::minutes(60)),
            completed: 0,
            avg_ms: None,
            durations_ms: vec![],
            ..JobSpec::default()
        })
        .await;
    let app = app_with(&fx, Backend::Sqlite, &clock, "").await;
    for job in [stale, unknown] {
        let text = app
            .slash(&format!("impact {job}"), "U0PLATLEAD", "C0ACMEALERT")
            .await
            .json()["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("not known when it is likely done"), "{text}");
        let runs: Vec<&str> = text.lines().filter(|l| l.contains("` runs ")).collect();
        assert_eq!(runs.len(), 3, "{text}");
        for run in runs {
            assert!(
                run.contains(":grey_question: may read stale data"),
                "{run}\n{text}"
            );
            assert!(!run.contains("after the job is likely done"), "{run}");
        }
    }
}

/// The alert of a job not known to be done (Servo's ETA under a stale
/// heartbeat, no forecast) names each downstream run as one that may read
/// stale data; it used to list none, as if nothing were at stake.
#[tokio::test]
async fn the_alert_names_the_runs_that_may_read_stale_when_the_job_is_not_known_to_be_done() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    // At risk on its computed ETA (50 partitions left of a minute each,
    // as if it resumed now), a best case that calls no run safe.
    fx.job(JobSpec {
        deadline: Some(t0 + Duration::minutes(30)),
        eta: Some(t0 + Duration::minutes(100)),
        heartbeat: Some(t0 - Duration::minutes(30)),
        ..JobSpec::default()
    })
    .await;
    let app = app_with(&fx, Backend::Sqlite, &clock, "").await;
    app.poll().await;
    app.drain_outbox().await;
    let post = text_of(&alert_post(&app));
    assert!(post.contains("*Downstream impact*"), "{post}");
    for wf in ["exec_daily", "finance_daily", "weekly"] {
        assert!(
            post.contains(&format!(":grey_question: `{wf}` runs")),
            "{wf}: {post}"
        );
    }
    assert!(
        post.contains("not known when this job is likely done"),
        "{post}"
    );
    assert!(!post.contains(":calendar:"), "none is called stale: {post}");
}

#[tokio::test]
async fn the_extension_dialog_says_which_downstream_runs_the_deadline_leaves_stale() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    let job = late_job(&fx, t0, 100, 5).await;
    let app = app_with(&fx, Backend::Sqlite, &clock, "").await;
    app.poll().await;
    app.drain_outbox().await;
    // +1 h: the deadline moves to t0+120 min; `exec_daily` (t0+30) and
    // `finance_daily` (t0+80) come before it, `weekly` (t0+200) after.
    let preview = extension_preview(&app, job, "extension_quick_1h", "+1h").await;
    assert!(
        preview.contains("would still leave these downstream runs reading stale data"),
        "{preview}"
    );
    assert!(
        preview.contains("`exec_daily`") && preview.contains("`finance_daily`"),
        "{preview}"
    );
    assert!(!preview.contains("weekly"), "{preview}");
}

async fn a_root_and_its_upstream_jobs_at_risk_are_one_alert(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let orders = job_tree(&fx, t0).await;
    let app = app_with(&fx, backend, &clock, "").await;
    for _ in 0..2 {
        app.poll().await;
        app.drain_outbox().await;
    }
    let posts = alert_posts(&app);
    assert_eq!(posts.len(), 1, "one alert for the tree: {posts:#?}");
    let post = &posts[0];
    assert!(post.contains("*revenue_daily*"), "{post}");
    assert!(post.contains("Waiting on 2 upstream jobs: "), "{post}");
    assert!(post.contains("`orders_raw` Medium, ETA <!date^"), "{post}");
    assert!(
        post.contains("`fx_rates` on track (50/100 partitions)"),
        "{post}"
    );
    let notes: Vec<String> = app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .map(text_of)
        .filter(|t| t.contains("Upstream job holding this one up"))
        .collect();
    assert_eq!(notes.len(), 1, "once per band: {notes:?}");
    assert!(notes[0].contains("`orders_raw` Medium"), "{}", notes[0]);
    assert!(
        app.state
            .store
            .open_alert_for_job("acme", &orders.to_string())
            .await
            .unwrap()
            .is_none(),
        "no alert of its own"
    );
}

/// A root waiting on three upstream jobs: `orders_raw` is likely done only
/// at t0+40 min, so the root, as if it started now done at t0+50, is done
/// only at t0+90 against its t0+70 deadline; `fx_rates` is on track; and
/// `fx_backfill`, created last, is still pending with no average partition
/// time: its ETA is unknown, which does not erase what is known of the
/// others. The root's alert is posted and says that an ETA is unknown.
async fn an_upstream_job_without_an_eta_does_not_erase_the_known_wait(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let root = waiting_root(&fx, t0, JobSpec::default().asset, 3).await;
    let orders = late_upstream(&fx, t0, "orders_raw").await;
    let fx_rates = fx
        .job(JobSpec {
            asset: "fx_rates".into(),
            eta: Some(t0 + Duration::minutes(20)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    let waiting = fx
        .job(JobSpec {
            asset: "fx_backfill".into(),
            state: "pending".into(),
            completed: 0,
            avg_ms: None,
            durations_ms: vec![],
            started: None,
            ..JobSpec::default()
        })
        .await;
    for child in [orders, fx_rates, waiting] {
        child_of(&fx, child, root).await;
    }
    let app = app_with(&fx, backend, &clock, "").await;
    for _ in 0..2 {
        app.poll().await;
        app.drain_outbox().await;
    }
    let posts = alert_posts(&app);
    let post = posts
        .iter()
        .find(|p| p.contains("*revenue_daily*"))
        .unwrap_or_else(|| panic!("the root's alert is posted: {posts:#?}"));
    assert_eq!(posts.len(), 1, "`orders_raw` is folded into it: {posts:#?}");
    assert!(post.contains("Waiting on 3 upstream jobs: "), "{post}");
    assert!(post.contains("`orders_raw` Medium, ETA <!date^"), "{post}");
    assert!(
        post.contains("`fx_backfill` ETA unknown (0/100 partitions)"),
        "{post}"
    );
    assert!(
        post.contains(
            "the ETA of 1 upstream job is unknown: this ETA waits only for the known ones"
        ),
        "{post}"
    );
}

on_both_stores!(an_upstream_job_without_an_eta_does_not_erase_the_known_wait);

/// One of the root's upstream jobs failed: it is not among Servo's active
/// jobs any more, but the root still waits for it. The alert says so
/// instead of counting only the upstream jobs that run.
#[tokio::test]
async fn a_failed_upstream_job_is_said_not_dropped() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let root = waiting_root(&fx, t0, JobSpec::default().asset, 3).await;
    let orders = late_upstream(&fx, t0, "orders_raw").await;
    let fx_rates = fx
        .job(JobSpec {
            asset: "fx_rates".into(),
            eta: Some(t0 + Duration::minutes(20)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    let failed = fx
        .job(JobSpec {
            asset: "fx_backfill".into(),
            state: "failed".into(),
            ..JobSpec::default()
        })
        .await;
    for child in [orders, fx_rates, failed] {
        child_of(&fx, child, root).await;
    }
    let app = app_with(&fx, Backend::Sqlite, &clock, "").await;
    for _ in 0..2 {
        app.poll().await;
        app.drain_outbox().await;
    }
    let posts = alert_posts(&app);
    let post = posts
        .iter()
        .find(|p| p.contains("*revenue_daily*"))
        .unwrap_or_else(|| panic!("the root's alert is posted: {posts:#?}"));
    assert!(post.contains("Waiting on 2 upstream jobs: "), "{post}");
    assert!(
        post.contains("1 upstream job it waits for is not running: failed or cancelled in Servo"),
        "{post}"
    );
}

/// A storm's roll-up lists a root's upstream jobs at risk under it, not as
/// jobs of their own, and counts the storm in alerts.
async fn a_storms_roll_up_lists_upstream_jobs_under_their_root(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    // The tree of the test above: `revenue_daily` waits on `orders_raw`
    // (Medium) and `fx_rates` (on track), and is at risk with them.
    job_tree(&fx, t0).await;
    // Two more jobs at risk on their own: three alerts, four jobs at risk.
    for asset in ["ledger_daily", "fx_close"] {
        fx.job(JobSpec {
            asset: asset.into(),
            deadline: Some(t0 + Duration::minutes(30)),
            eta: Some(t0 + Duration::minutes(90)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    }
    let roll_ups = |app: &TestApp| -> Vec<String> {
        app.slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.body.get("thread_ts").is_none_or(|t| t.is_null()))
            .map(text_of)
            .filter(|t| t.contains("at risk together"))
            .collect()
    };

    // Three alerts are not more than three: no roll-up, although four jobs
    // are at risk.
    let app = app_with(&fx, backend, &clock, "[alerts]\nrollup_after = 3\n").await;
    app.poll().await;
    app.drain_outbox().await;
    assert!(roll_ups(&app).is_empty(), "{:#?}", roll_ups(&app));
    drop(app);

    // More than two: one roll-up, the upstream job under its root.
    // (A fresh bot, with a store of its own, against the same Servo.)
    let app = app_with(&fx, backend, &clock, "[alerts]\nrollup_after = 2\n").await;
    app.poll().await;
    app.drain_outbox().await;
    let posts = roll_ups(&app);
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let post = &posts[0];
    // Counted in alerts, as its page counts them.
    assert!(post.contains("3 jobs of acme at risk together"), "{post}");
    assert!(
        post.contains("*1* upstream, listed under the job it holds up"),
        "{post}"
    );
    let root_line = post
        .find("*revenue_daily*")
        .unwrap_or_else(|| panic!("the root is listed: {post}"));
    let under = post
        .find("↳ waiting on `orders_raw` Medium, ETA <!date^")
        .unwrap_or_else(|| panic!("its upstream job is listed under it: {post}"));
    assert!(root_line < under, "{post}");
    assert!(
        !post.contains("*orders_raw*"),
        "the upstream job has no line of its own: {post}"
    );
    assert!(
        !post.contains("`fx_rates`"),
        "an upstream job on track is not listed: {post}"
    );
    drop(app);

    // Where the roll-up names jobs only, the root names its upstream job.
    let app = app_with(
        &fx,
        backend,
        &clock,
        "[alerts]\nrollup_after = 2\nrollup_lists = 1\n",
    )
    .await;
    app.poll().await;
    app.drain_outbox().await;
    let posts = roll_ups(&app);
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert!(
        posts[0].contains("*Medium*: revenue_daily (waiting on orders_raw)"),
        "{}",
        posts[0]
    );
    assert!(!posts[0].contains("↳"), "{}", posts[0]);
}

#[tokio::test]
async fn a_root_and_its_upstream_jobs_at_risk_are_one_alert_on_sqlite() {
    a_root_and_its_upstream_jobs_at_risk_are_one_alert(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_root_and_its_upstream_jobs_at_risk_are_one_alert_on_postgres() {
    a_root_and_its_upstream_jobs_at_risk_are_one_alert(Backend::Postgres).await;
}

/// Two roots, each waiting on its own upstream job: each alert names its
/// own, and neither the other's (the poll indexes the tenant's jobs by
/// parent once, whatever the number of roots).
#[tokio::test]
async fn each_root_names_its_own_upstream_jobs_and_no_other_roots() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    job_tree(&fx, t0).await;
    let root = waiting_root(&fx, t0, "margin_daily".into(), 1).await;
    let costs = late_upstream(&fx, t0, "costs_raw").await;
    child_of(&fx, costs, root).await;
    let app = app_with(&fx, Backend::Sqlite, &clock, "").await;
    for _ in 0..2 {
        app.poll().await;
        app.drain_outbox().await;
    }
    let posts = alert_posts(&app);
    assert_eq!(posts.len(), 2, "one alert per tree: {posts:#?}");
    let of = |asset: &str| {
        posts
            .iter()
            .find(|p| p.contains(&format!("*{asset}*")))
            .unwrap_or_else(|| panic!("{asset} has an alert: {posts:#?}"))
    };
    let revenue = of("revenue_daily");
    assert!(
        revenue.contains("Waiting on 2 upstream jobs: "),
        "{revenue}"
    );
    assert!(revenue.contains("`orders_raw` Medium"), "{revenue}");
    assert!(!revenue.contains("costs_raw"), "{revenue}");
    let margin = of("margin_daily");
    assert!(margin.contains("Waiting on 1 upstream job: "), "{margin}");
    assert!(margin.contains("`costs_raw` Medium"), "{margin}");
    assert!(
        !margin.contains("orders_raw") && !margin.contains("fx_rates"),
        "{margin}"
    );
}

/// A root waiting on one slow upstream job (issue 37, one job's view):
/// `revenue_daily` has about an hour of its own work left (60 of 100
/// partitions of a minute each, its forecast from the 40 done) against a
/// t0+100 min deadline, but it waits
/// on `orders_raw`, likely done only at t0+180 (Servo's ETA, with a fresh
/// heartbeat; no SLA of its own). `revenue_daily` feeds `revenue_report`,
/// which `finance_daily` reads at t0+120 min: after the root's own
/// estimate, before the upstream job is done. `monthly_close` runs at
/// t0+600, after everything. Returns the root.
async fn root_waiting_on_a_slow_upstream_job(fx: &ServoFixture, t0: DateTime<Utc>) -> Uuid {
    fx.asset("acme", "revenue_report", Some("U0REPORTOWN"))
        .await;
    fx.depends("acme", "revenue_daily", "revenue_report").await;
    for (name, at) in [("finance_daily", 120), ("monthly_close", 600)] {
        fx.workflow(
            "acme",
            name,
            None,
            None,
            "UTC",
            Some(t0 + Duration::minutes(at)),
            &["revenue_report"],
        )
        .await;
    }
    let root = fx
        .job(JobSpec {
            state: "waiting_upstream".into(),
            deadline: Some(t0 + Duration::minutes(100)),
            completed: 40,
            upstream: 1,
            upstream_done: 0,
            // Its 40 partitions ran from t0-60 to t0-20 min: a history to
            // forecast the rest from, about an hour as if it started now.
            started: Some(t0 - Duration::minutes(60)),
            ..JobSpec::default()
        })
        .await;
    let orders = fx
        .job(JobSpec {
            asset: "orders_raw".into(),
            completed: 10,
            avg_ms: Some(120_000),
            durations_ms: vec![120_000],
            eta: Some(t0 + Duration::minutes(180)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    child_of(fx, orders, root).await;
    root
}

/// The line of `/backfill impact`'s answer that lists workflow `wf`'s run.
fn run_line(text: &str, wf: &str) -> String {
    text.lines()
        .find(|l| l.contains(&format!("`{wf}` runs")))
        .unwrap_or_else(|| panic!("{wf} listed:\n{text}"))
        .to_string()
}

/// The instant of the first Slack date token (`<!date^SECONDS^…>`) in `s`.
fn first_date(s: &str) -> DateTime<Utc> {
    let at = s
        .find("<!date^")
        .unwrap_or_else(|| panic!("no date in {s}"))
        + "<!date^".len();
    let secs: i64 = s[at..].split('^').next().unwrap().parse().unwrap();
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// `/backfill impact` of a waiting root counts the upstream wait, as its
/// alert does: likely done only after `orders_raw` (t0+180) and then its own
/// hour, so `finance_daily` at t0+120, after the root's own estimate but
/// before the upstream job is done, would read stale data; `monthly_close`
/// stays safe.
#[tokio::test]
async fn impact_of_a_waiting_root_counts_the_upstream_wait() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let root = root_waiting_on_a_slow_upstream_job(&fx, t0).await;
    let app = forecasting_app(&fx, &clock).await;
    let text = app
        .slash(&format!("impact {root}"), "U0PLATLEAD", "C0ACMEALERT")
        .await
        .json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let header = text.lines().next().unwrap();
    assert!(header.contains("likely done by <!date^"), "{text}");
    let likely = first_date(header);
    assert!(
        likely >= t0 + Duration::minutes(180 + 50),
        "likely done after the upstream job (t0+180) and about its own hour, not at {likely} (t0 = {t0}):\n{text}"
    );
    let run = |wf: &str| run_line(&text, wf);
    assert!(
        run("finance_daily").contains(":warning: would read stale data"),
        "before the upstream job is done:\n{text}"
    );
    assert!(
        !run("finance_daily").contains("after the job is likely done"),
        "{text}"
    );
    assert!(
        run("monthly_close").contains(":white_check_mark: after the job is likely done"),
        "{text}"
    );
    assert!(
        text.contains("`orders_raw` on track (10/100 partitions)"),
        "{text}"
    );
}

/// `/backfill status` of a waiting root shows what its alert shows: the
/// ETA counting the upstream wait, the band it makes, and the upstream job
/// by name under *Bottlenecks* (not the bare count as well).
#[tokio::test]
async fn status_of_a_waiting_root_counts_the_upstream_wait_and_names_it() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let root = root_waiting_on_a_slow_upstream_job(&fx, t0).await;
    let app = forecasting_app(&fx, &clock).await;
    app.poll().await;
    app.drain_outbox().await;
    let posts = alert_posts(&app);
    assert_eq!(posts.len(), 1, "the root's alert: {posts:#?}");
    let post = &posts[0];
    let v = app
        .slash(&format!("status {root}"), "U0PLATLEAD", "C0ACMEALERT")
        .await
        .json();
    let card = v.to_string();
    let eta = v["blocks"][1]["fields"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("the ETA field: {card}"))
        .trim_start_matches("*ETA*\n")
        .to_string();
    assert!(
        first_date(&eta) >= t0 + Duration::minutes(180 + 50),
        "the ETA starts after the upstream job (t0+180), not {eta} (t0 = {t0}): {card}"
    );
    assert!(
        post.contains(&eta),
        "the card's ETA {eta} is the alert's: {post}"
    );
    assert!(card.contains(" · High"), "{card}");
    assert!(post.contains("High"), "{post}");
    assert!(
        card.contains("Waiting on 1 upstream job: `orders_raw` on track (10/100 partitions)"),
        "{card}"
    );
    assert_eq!(
        card.matches("Waiting on 1 upstream job").count(),
        1,
        "named, and not counted bare as well: {card}"
    );
}

/// A root as Servo leaves it while it waits (none of its partitions run,
/// so no ETA of its own) is alerted once its upstream job is likely done
/// past its deadline: it cannot finish sooner. Before, it had no ETA and
/// said nothing until the deadline passed. The alert says the ETA leaves its
/// own work out, and no downstream run is called safe.
#[tokio::test]
async fn a_root_that_has_not_started_is_alerted_when_its_upstream_wait_alone_passes_its_deadline() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    let root = fx
        .job(JobSpec {
            state: "waiting_upstream".into(),
            deadline: Some(t0 + Duration::minutes(100)),
            completed: 0,
            avg_ms: None,
            durations_ms: vec![],
            upstream: 1,
            upstream_done: 0,
            started: None,
            ..JobSpec::default()
        })
        .await;
    let orders = fx
        .job(JobSpec {
            asset: "orders_raw".into(),
            completed: 10,
            avg_ms: Some(120_000),
            durations_ms: vec![120_000],
            eta: Some(t0 + Duration::minutes(180)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    child_of(&fx, orders, root).await;
    let app = forecasting_app(&fx, &clock).await;
    app.poll().await;
    app.drain_outbox().await;
    let posts = alert_posts(&app);
    assert_eq!(posts.len(), 1, "the root's alert: {posts:#?}");
    let post = &posts[0];
    assert!(post.contains(&root.to_string()), "{post}");
    assert!(
        post.contains("Waiting on 1 upstream job: `orders_raw`"),
        "{post}"
    );
    assert!(
        post.contains(
            "its own work is not counted, none of it has run yet, so it will finish later"
        ),
        "{post}"
    );
    // `exec_daily` (t0+30) and `finance_daily` (t0+80) run before the
    // upstream job is even done: stale. `weekly` (t0+200) runs after that
    // floor: not safe, not known.
    assert!(post.contains(":calendar: `exec_daily` runs"), "{post}");
    assert!(post.contains(":calendar: `finance_daily` runs"), "{post}");
    assert!(
        post.contains("at the earliest): it would read stale"),
        "{post}"
    );
    assert!(post.contains(":grey_question: `weekly` runs"), "{post}");
    assert!(!post.contains(":calendar: `weekly`"), "{post}");
    // A High root of a job tree: Recreate would start it before its
    // upstream data is there, and Servo's refusal is not offered as a
    // button; the other High mitigations are.
    assert!(post.contains("mitigate_scaling"), "{post}");
    assert!(!post.contains("mitigate_recreate"), "{post}");
    let text = app
        .slash(&format!("impact {root}"), "U0PLATLEAD", "C0ACMEALERT")
        .await
        .json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("done no sooner than <!date^"), "{text}");
    assert!(text.contains("its own work is not counted"), "{text}");
    let run = |wf: &str| run_line(&text, wf);
    assert!(
        run("finance_daily").contains(":warning: would read stale data"),
        "{text}"
    );
    assert!(
        run("weekly").contains(":grey_question: may read stale data"),
        "{text}"
    );
    assert!(
        !text.contains("after the job is likely done"),
        "no run is called safe: {text}"
    );
}

/// The extension dialog's preview of a waiting root judges it as its alert
/// does: under a deadline 2 h later (t0+220 min) the root, likely done at
/// about t0+240 once `orders_raw` is, is still late (Low), not on track by
/// its own hour of work alone.
#[tokio::test]
async fn the_extension_dialog_of_a_waiting_root_counts_the_upstream_wait() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let root = root_waiting_on_a_slow_upstream_job(&fx, t0).await;
    let app = forecasting_app(&fx, &clock).await;
    app.poll().await;
    app.drain_outbox().await;
    let preview = extension_preview(&app, root, "extension_quick_2h", "+2h").await;
    assert!(
        preview.contains("the job would be :large_yellow_circle: *Low*"),
        "{preview}"
    );
    let eta = &preview[preview.find("(ETA ").unwrap_or_else(|| panic!("{preview}"))..];
    assert!(
        first_date(eta) >= t0 + Duration::minutes(180 + 50),
        "the ETA under it counts the upstream wait (t0 = {t0}): {preview}"
    );
    assert!(preview.contains("it is :red_circle: High now"), "{preview}");
}

#[tokio::test]
async fn a_steady_poll_does_not_edit_an_alert_with_downstream_impact() {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    late_job(&fx, t0, 100, 5).await;
    let app = app_with(&fx, Backend::Sqlite, &clock, "").await;
    app.poll().await;
    app.drain_outbox().await;
    let before = app.slack.ok_calls_to("chat.update").len();
    app.poll().await;
    app.drain_outbox().await;
    let after = app.slack.ok_calls_to("chat.update");
    assert_eq!(
        after.len(),
        before,
        "{:#?}",
        after.iter().skip(before).map(text_of).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_storms_roll_up_lists_upstream_jobs_under_their_root_on_sqlite() {
    a_storms_roll_up_lists_upstream_jobs_under_their_root(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_storms_roll_up_lists_upstream_jobs_under_their_root_on_postgres() {
    a_storms_roll_up_lists_upstream_jobs_under_their_root(Backend::Postgres).await;
}

/// Takes the bot's Servo role's read of `asset_dependencies` away (`false`)
/// or gives it back: its lineage read then fails, as a Servo whose grants
/// were changed under it would.
async fn lineage_readable(fx: &ServoFixture, readable: bool) {
    let role = common::servo_fixture::BOT_ROLE;
    let sql = if readable {
        format!("GRANT SELECT ON asset_dependencies TO {role}")
    } else {
        format!("REVOKE SELECT ON asset_dependencies FROM {role}")
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&fx.admin)
        .await
        .unwrap();
}

const UNREAD: &str = "Servo's lineage could not be read";

async fn an_unread_lineage_keeps_the_impact_last_shown(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    late_job(&fx, t0, 100, 5).await;
    let app = app_with(&fx, backend, &clock, "").await;
    app.poll().await;
    app.drain_outbox().await;
    let post = text_of(&alert_post(&app));
    assert!(post.contains("*Downstream impact*"), "{post}");
    assert!(post.contains("finance_daily"), "{post}");
    // The read fails: the alert keeps what it showed, and says why.
    lineage_readable(&fx, false).await;
    let before = app.slack.ok_calls_to("chat.update").len();
    app.poll().await;
    app.drain_outbox().await;
    let updates = app.slack.ok_calls_to("chat.update");
    let update = updates
        .get(before..)
        .and_then(|u| u.last())
        .map(text_of)
        .expect("the alert says the lineage could not be read");
    assert!(update.contains("*Downstream impact*"), "{update}");
    assert!(update.contains("finance_daily"), "{update}");
    assert!(update.contains(UNREAD), "{update}");
    // Another failed poll changes nothing: the note keeps its first time.
    let before = updates.len();
    app.poll().await;
    app.drain_outbox().await;
    assert_eq!(app.slack.ok_calls_to("chat.update").len(), before);
    // Read again: the note goes, the impact stays.
    lineage_readable(&fx, true).await;
    app.poll().await;
    app.drain_outbox().await;
    let update = app
        .slack
        .ok_calls_to("chat.update")
        .last()
        .map(text_of)
        .unwrap();
    assert!(update.contains("*Downstream impact*"), "{update}");
    assert!(update.contains("finance_daily"), "{update}");
    assert!(!update.contains(UNREAD), "{update}");
}

#[tokio::test]
async fn an_unread_lineage_keeps_the_impact_last_shown_on_sqlite() {
    an_unread_lineage_keeps_the_impact_last_shown(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_unread_lineage_keeps_the_impact_last_shown_on_postgres() {
    an_unread_lineage_keeps_the_impact_last_shown(Backend::Postgres).await;
}

/// A new alert while the lineage cannot be read says so, and no downstream
/// page starts on the missing read; once read, the page starts.
async fn a_new_alert_says_the_lineage_was_not_read_and_pages_on_nothing_missing(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    lineage(&fx, t0).await;
    // Medium, best effort: only `start_at_if_downstream` pages it.
    late_job(&fx, t0, 80, 2).await;
    lineage_readable(&fx, false).await;
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = CONFIG.replacen(
        "[escalation]\nrepeat = 1\n",
        "[escalation]\nrepeat = 1\nstart_at_if_downstream = \"medium\"\n",
        1,
    );
    let app = spawn(spec).await;
    let pages = |app: &TestApp| {
        app.slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .filter(|c| text_of(c).contains("Escalation started"))
            .count()
    };
    app.poll().await;
    app.drain_outbox().await;
    let post = text_of(&alert_post(&app));
    assert!(post.contains("*Downstream impact*"), "{post}");
    assert!(post.contains(UNREAD), "{post}");
    assert!(post.contains("not known"), "{post}");
    assert_eq!(pages(&app), 0, "no page on a read that failed");
    lineage_readable(&fx, true).await;
    app.poll().await;
    app.drain_outbox().await;
    let update = app
        .slack
        .ok_calls_to("chat.update")
        .last()
        .map(text_of)
        .expect("the alert shows the impact once read");
    assert!(update.contains("exec_daily"), "{update}");
    assert!(!update.contains(UNREAD), "{update}");
    assert_eq!(pages(&app), 1, "the stale run pages once it is known");
}

#[tokio::test]
async fn a_new_alert_says_the_lineage_was_not_read_on_sqlite() {
    a_new_alert_says_the_lineage_was_not_read_and_pages_on_nothing_missing(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_new_alert_says_the_lineage_was_not_read_on_postgres() {
    a_new_alert_says_the_lineage_was_not_read_and_pages_on_nothing_missing(Backend::Postgres).await;
}
