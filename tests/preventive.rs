//! The runbook's preventive measures (issue 12): the quiet "approaching"
//! notice and its promotion to the alert, the deadline buffer check for each
//! SLA tier, and the SLA review over a seeded week of history. Servo's
//! tables on PostgreSQL (a role under row-level security), the real app, the
//! fake Slack; every test on SQLite and on PostgreSQL.

mod common;

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use common::bot::{spawn, Backend, Spawn, TestApp, CONFIG};
use common::servo_fixture::{JobSpec, ServoFixture};
use serde_json::json;
use servo_sla_bot::runtime::clock::{Clock, ManualClock};
use servo_sla_bot::store::{AuditEntry, EtaSample, NewAlert, NewApproval, NewWatchedJob};
use uuid::Uuid;

fn start_of_minute() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::minutes(1)).unwrap()
}

/// The tests' usual config with the preventive side on (the harness turns
/// it off for everyone else).
fn config(extra: &str) -> String {
    format!(
        "{CONFIG}\n[buffers]\ncritical = 0.10\nstandard = 0.20\nhysteresis = 0.05\n{extra}\n[review]\nweekly = false\ncharts = false\n"
    )
}

async fn app_with(
    fx: &ServoFixture,
    backend: Backend,
    clock: &ManualClock,
    cfg: String,
) -> TestApp {
    let mut spec = Spawn::new(backend)
        .manual_clock(clock)
        .servo_url(&fx.bot_url());
    spec.config = cfg;
    spawn(spec).await
}

/// Top-level messages the bot posted in a tenant channel.
fn channel_posts(app: &TestApp, channel: &str) -> Vec<common::fake_slack::Message> {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == channel && m.thread_ts.is_none())
        .collect()
}

/// Pages sent so far (the escalation audits each).
async fn pages(app: &TestApp) -> usize {
    app.state
        .store
        .list_audit(None, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "page")
        .count()
}

async fn approaching_then_promoted(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    // Standard tier (priority 5): keeps a 20% buffer. Started an hour ago,
    // deadline in an hour.
    let id = fx
        .job(JobSpec {
            started: Some(t0 - Duration::minutes(60)),
            deadline: Some(t0 + Duration::minutes(60)),
            eta: Some(t0 + Duration::minutes(30)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    let app = app_with(&fx, backend, &clock, config("")).await;

    // Buffer 30 / 90 = 33%: nothing to say.
    let out = app.poll().await;
    assert_eq!(
        out.tenants["acme"].as_ref().unwrap().preventive.first_seen,
        1
    );
    assert!(channel_posts(&app, "C0ACMEALERT").is_empty());

    // ETA t0+50: buffer 10 / 110 = 9% < 20%: a quiet notice, nobody paged.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(50), t0 + Duration::minutes(1))
        .await;
    app.poll().await;
    let posts = channel_posts(&app, "C0ACMEALERT");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let notice = posts[0].clone();
    assert!(
        notice.text.contains("Approaching its deadline"),
        "{}",
        notice.text
    );
    let shown = notice.blocks.to_string();
    assert!(shown.contains(&id.to_string()), "{shown}");
    assert!(shown.contains("9%") && shown.contains("20%"), "{shown}");
    assert!(
        !shown.contains("\"button\""),
        "a notice has no buttons: {shown}"
    );
    assert_eq!(pages(&app).await, 0, "an approaching notice pages no one");
    let row = app
        .state
        .store
        .open_alert_for_job("acme", &id.to_string())
        .await
        .unwrap();
    assert!(row.is_none(), "an approaching notice is not an alert");

    // Polled again unchanged: still one notice.
    app.poll().await;
    assert_eq!(channel_posts(&app, "C0ACMEALERT").len(), 1);

    // Back to 40 / 80 = 50%: the notice says so, in place.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(20), t0 + Duration::minutes(2))
        .await;
    app.poll().await;
    let cleared = app.slack.message("C0ACMEALERT", &notice.ts).unwrap();
    assert_eq!(cleared.edits, 1);
    assert!(
        cleared.text.contains("back to a comfortable buffer"),
        "{}",
        cleared.text
    );
    assert_eq!(channel_posts(&app, "C0ACMEALERT").len(), 1);

    // Closer again (5 / 115 = 4%): a new notice.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(55), t0 + Duration::minutes(3))
        .await;
    app.poll().await;
    let posts = channel_posts(&app, "C0ACMEALERT");
    assert_eq!(posts.len(), 2);
    let second = posts[1].clone();
    assert!(second.text.contains("Approaching"), "{}", second.text);

    // At risk (ETA 20 min past the deadline, 56 min left: Medium): the
    // notice becomes the alert. Same message, edited; no new post.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(80), t0 + Duration::minutes(4))
        .await;
    app.poll().await;
    let posts = channel_posts(&app, "C0ACMEALERT");
    assert_eq!(
        posts.len(),
        2,
        "the alert is the notice's message: {posts:?}"
    );
    let alert_msg = app.slack.message("C0ACMEALERT", &second.ts).unwrap();
    assert!(alert_msg.edits >= 1);
    assert!(
        alert_msg.text.contains("Medium SLA risk"),
        "{}",
        alert_msg.text
    );
    let everything = format!("{}{}", alert_msg.blocks, alert_msg.attachments);
    assert!(
        everything.contains("alert_ack"),
        "the alert has its buttons"
    );
    let alert = app
        .state
        .store
        .open_alert_for_job("acme", &id.to_string())
        .await
        .unwrap()
        .expect("an open alert");
    assert_eq!(alert.ts.as_deref(), Some(second.ts.as_str()));
    assert_eq!(alert.channel.as_deref(), Some("C0ACMEALERT"));
    let thread = app.slack.thread_replies("C0ACMEALERT", &second.ts);
    assert!(
        thread
            .iter()
            .any(|m| m.text.contains("went at risk after it was approaching")),
        "{thread:?}"
    );
    // Standard tier pages from Medium: the alert pages, the notice did not.
    assert!(
        pages(&app).await > 0,
        "the alert pages the on-call engineer"
    );
    // The first notice's message was left as it was (cleared).
    assert_eq!(
        app.slack.message("C0ACMEALERT", &notice.ts).unwrap().edits,
        1
    );

    // Recovery resolves the alert in the same message.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(20), t0 + Duration::minutes(5))
        .await;
    app.poll().await;
    let resolved = app.slack.message("C0ACMEALERT", &second.ts).unwrap();
    assert!(resolved.text.contains("Resolved") || resolved.blocks.to_string().contains("Resolved"));
    assert_eq!(channel_posts(&app, "C0ACMEALERT").len(), 2);

    // Close again after the recovery: the warning is a reply in the alert's
    // thread; the channel keeps one message for the job.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(56), t0 + Duration::minutes(6))
        .await;
    app.poll().await;
    assert_eq!(channel_posts(&app, "C0ACMEALERT").len(), 2);
    let replies = app.slack.thread_replies("C0ACMEALERT", &second.ts);
    let warning = replies
        .iter()
        .find(|m| m.text.contains("Approaching"))
        .expect("the warning is in the alert's thread");
    assert!(warning.blocks.to_string().contains("a new alert is posted"));
    // At risk again: a new episode, a new alert of its own.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(90), t0 + Duration::minutes(7))
        .await;
    app.poll().await;
    let posts = channel_posts(&app, "C0ACMEALERT");
    assert_eq!(posts.len(), 3);
    assert!(posts[2].text.contains("SLA risk"), "{}", posts[2].text);
    let failed = app.state.store.list_outbox(Some("failed")).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
}

#[tokio::test]
async fn an_approaching_notice_is_quiet_and_becomes_the_alert_sqlite() {
    approaching_then_promoted(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_approaching_notice_is_quiet_and_becomes_the_alert_postgres() {
    approaching_then_promoted(Backend::Postgres).await;
}

async fn buffer_check_by_tier(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    // Every job started an hour ago and is expected in 30 minutes: an
    // expected duration of 90 minutes, so each minute of slack is 1.1%.
    let job = |priority: i32, slack_min: i64, asset: &str| JobSpec {
        asset: asset.into(),
        priority,
        started: Some(t0 - Duration::minutes(60)),
        eta: Some(t0 + Duration::minutes(30)),
        deadline: Some(t0 + Duration::minutes(30 + slack_min)),
        heartbeat: Some(t0),
        ..JobSpec::default()
    };
    let critical_tight = fx.job(job(9, 6, "crit_tight")).await; // 6.7% < 10%
    let critical_ok = fx.job(job(9, 11, "crit_ok")).await; // 12.2%
    let standard_tight = fx.job(job(5, 14, "std_tight")).await; // 15.6% < 20%
    let standard_ok = fx.job(job(5, 23, "std_ok")).await; // 25.6%
    let best_effort = fx.job(job(2, 1, "best_effort_job")).await; // 1.1%: flexible
    let below = fx.job(job(-3, 1, "below_job")).await; // 1.1%: flexible
                                                       // At risk at first sight: the alert says it all, no buffer notice.
    let at_risk = fx
        .job(JobSpec {
            asset: "already_late".into(),
            priority: 5,
            started: Some(t0 - Duration::minutes(60)),
            eta: Some(t0 + Duration::minutes(90)),
            deadline: Some(t0 + Duration::minutes(60)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    let app = app_with(&fx, backend, &clock, config("")).await;
    let out = app.poll().await;
    let watch = &out.tenants["acme"].as_ref().unwrap().preventive;
    assert_eq!(watch.first_seen, 7);
    assert_eq!(watch.tight, 2);

    let posts = channel_posts(&app, "C0ACMEALERT");
    let about = |id: Uuid| {
        posts
            .iter()
            .filter(|m| format!("{}{}", m.blocks, m.attachments).contains(&id.to_string()))
            .cloned()
            .collect::<Vec<_>>()
    };
    let crit = about(critical_tight);
    assert_eq!(crit.len(), 1);
    assert!(crit[0].text.contains("Tight deadline"), "{}", crit[0].text);
    let shown = crit[0].blocks.to_string();
    assert!(
        shown.contains("Critical tier") && shown.contains("7%") && shown.contains("10%"),
        "{shown}"
    );
    // The deadline that meets the tier: ETA + 10% of 90 min = t0 + 39 min.
    let meets = (t0 + Duration::minutes(39)).timestamp();
    assert!(shown.contains(&format!("<!date^{meets}^")), "{shown}");
    assert!(
        shown.contains(&format!("/backfill extend-deadline {critical_tight}")),
        "{shown}"
    );

    let std = about(standard_tight);
    assert_eq!(std.len(), 1);
    let shown = std[0].blocks.to_string();
    assert!(
        shown.contains("Standard tier") && shown.contains("16%") && shown.contains("20%"),
        "{shown}"
    );
    let meets = (t0 + Duration::minutes(48)).timestamp();
    assert!(shown.contains(&format!("<!date^{meets}^")), "{shown}");

    for (id, why) in [
        (critical_ok, "critical with 12%"),
        (standard_ok, "standard with 26%"),
        (best_effort, "best effort is flexible"),
        (below, "below best effort is flexible"),
    ] {
        assert!(about(id).is_empty(), "no notice for {why}");
    }
    let late = about(at_risk);
    assert_eq!(late.len(), 1);
    assert!(
        late[0].text.contains("SLA risk"),
        "only the alert: {}",
        late[0].text
    );
    assert!(
        pages(&app).await > 0,
        "the at-risk job pages; notices do not"
    );

    // Said once: polled again, nothing new; audited once.
    let before = posts.len();
    clock.advance(Duration::minutes(1));
    app.poll().await;
    assert_eq!(channel_posts(&app, "C0ACMEALERT").len(), before);
    let checks: Vec<_> = app
        .state
        .store
        .list_audit(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "buffer_check")
        .collect();
    assert_eq!(checks.len(), 2);
    assert_eq!(
        app.metric("servo_sla_bot_notices_total{kind=\"tight_deadline\"}")
            .await,
        2.0
    );
    assert!(checks
        .iter()
        .all(|e| e.actor == "bot" && e.outcome == "tight"));
}

#[tokio::test]
async fn the_buffer_check_holds_each_tier_to_its_buffer_once_sqlite() {
    buffer_check_by_tier(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_buffer_check_holds_each_tier_to_its_buffer_once_postgres() {
    buffer_check_by_tier(Backend::Postgres).await;
}

async fn many_tight_deadlines_at_once(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            fx.job(JobSpec {
                asset: format!("asset_{i}"),
                started: Some(t0 - Duration::minutes(60)),
                eta: Some(t0 + Duration::minutes(30)),
                deadline: Some(t0 + Duration::minutes(35)),
                heartbeat: Some(t0),
                ..JobSpec::default()
            })
            .await,
        );
    }
    let app = app_with(&fx, backend, &clock, config("")).await;
    let out = app.poll().await;
    assert_eq!(out.tenants["acme"].as_ref().unwrap().preventive.tight, 7);
    // The bot's first look at a busy tenant: one message, not seven.
    let posts = channel_posts(&app, "C0ACMEALERT");
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].text.contains("Tight deadlines: 7 jobs"),
        "{}",
        posts[0].text
    );
    let shown = posts[0].blocks.to_string();
    for id in &ids {
        assert!(
            shown.contains(&id.to_string()),
            "every job is listed: {shown}"
        );
    }
    // One of them goes at risk: its alert is a message of its own.
    clock.advance(Duration::minutes(1));
    fx.set_eta(
        ids[0],
        t0 + Duration::minutes(60),
        t0 + Duration::minutes(1),
    )
    .await;
    app.poll().await;
    let posts = channel_posts(&app, "C0ACMEALERT");
    assert_eq!(posts.len(), 2);
    assert!(posts[1].text.contains("SLA risk"), "{}", posts[1].text);
    let failed = app.state.store.list_outbox(Some("failed")).await.unwrap();
    assert!(
        failed.is_empty(),
        "nothing tried to edit a message that does not exist: {failed:?}"
    );
}

#[tokio::test]
async fn many_tight_deadlines_at_once_share_one_message_sqlite() {
    many_tight_deadlines_at_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn many_tight_deadlines_at_once_share_one_message_postgres() {
    many_tight_deadlines_at_once(Backend::Postgres).await;
}

/// A week of history, written through the store as the bot would have.
async fn seed_week(app: &TestApp, start: DateTime<Utc>) {
    let store = &app.state.store;
    let at = |h: i64| start + Duration::hours(h);
    let watch = |job: &str, asset: &str, tier: &str, buffer: f64| NewWatchedJob {
        tenant_id: "acme".into(),
        job_id: job.into(),
        asset: asset.into(),
        priority: 5,
        tier: tier.into(),
        deadline: None,
        buffer: Some(buffer),
    };
    // j1 breached (seen past its deadline on Tuesday 10:00, completed 90 min late).
    // j2 a close call (lowest buffer 3%), j3 comfortable (25%), j4 lowest 8%.
    // j5 started before the week and never came close.
    store
        .watch_new(&[watch("j1", "orders", "standard", 0.30)], at(0))
        .await
        .unwrap();
    store
        .watch_new(&[watch("j2", "orders", "critical", 0.20)], at(2))
        .await
        .unwrap();
    store
        .watch_new(&[watch("j3", "billing", "standard", 0.40)], at(3))
        .await
        .unwrap();
    store
        .watch_new(&[watch("j4", "billing", "standard", 0.30)], at(4))
        .await
        .unwrap();
    store
        .watch_new(
            &[watch("old", "billing", "standard", 0.50)],
            start - Duration::days(9),
        )
        .await
        .unwrap();
    let deadline1 = at(34);
    store
        .watch_observe("acme", "j1", Some(deadline1), Some(-0.2), true, at(34))
        .await
        .unwrap();
    store
        .watch_observe("acme", "j2", None, Some(0.03), false, at(30))
        .await
        .unwrap();
    store
        .watch_observe("acme", "j3", None, Some(0.25), false, at(31))
        .await
        .unwrap();
    store
        .watch_observe("acme", "j4", None, Some(0.08), false, at(32))
        .await
        .unwrap();
    store
        .watch_end(
            "acme",
            "j1",
            "completed",
            Some(deadline1 + Duration::minutes(90)),
            at(36),
        )
        .await
        .unwrap();
    store
        .watch_end("acme", "j2", "completed", Some(at(40)), at(40))
        .await
        .unwrap();
    store
        .watch_end("acme", "j3", "completed", Some(at(50)), at(50))
        .await
        .unwrap();
    store
        .watch_end(
            "acme",
            "old",
            "completed",
            Some(start - Duration::days(8)),
            start - Duration::days(8),
        )
        .await
        .unwrap();

    // ETA marks. j2 completed at at(40); j3 at at(50).
    // At 25%: Servo 60 min late / bot 10 min early (j2); Servo 20 late / bot 10 late (j3).
    let mark = |job: &'static str, m: i64, servo: i64, bot: i64, done: DateTime<Utc>| async move {
        store
            .watch_mark(
                "acme",
                job,
                m,
                Some(done + Duration::minutes(servo)),
                Some(done + Duration::minutes(bot)),
                done - Duration::hours(5),
            )
            .await
            .unwrap();
    };
    mark("j2", 25, 60, -10, at(40)).await;
    mark("j3", 25, 20, 10, at(50)).await;
    mark("j2", 50, 30, 4, at(40)).await;
    mark("j3", 50, -10, -2, at(50)).await;
    mark("j2", 75, 6, 0, at(40)).await;
    // A job outside the week does not count.
    mark("old", 25, 500, 500, start - Duration::days(8)).await;

    // Alerts (at-risk episodes): j1 on Tuesday 10:00 and 11:30, j2 on Wednesday 14:00.
    let t_tue10 = at(34); // start is a Monday 00:00
    for (job, when) in [
        ("j1", t_tue10),
        ("j1", t_tue10 + Duration::minutes(90)),
        ("j2", at(62)),
    ] {
        let (alert, _) = store
            .open_alert(
                NewAlert {
                    tenant_id: "acme".into(),
                    job_id: job.into(),
                    band: servo_sla_bot::domain::risk::RiskBand::Medium,
                    severity: Some(0.3),
                    eta: None,
                    deadline: None,
                    shown: None,
                },
                when,
            )
            .await
            .unwrap();
        store
            .resolve_alert(&alert.id, "back on track", when + Duration::minutes(30))
            .await
            .unwrap();
    }

    // Mitigations on j1: a pause of lower-priority jobs (two jobs paused by one
    // click) that moved the ETA 40 min earlier, and a scaling request with no
    // samples after it. A `/backfill pause` (no alert) is not a mitigation.
    let audit = |action: &str,
                 subject: &str,
                 when: DateTime<Utc>,
                 outcome: &str,
                 detail: serde_json::Value| AuditEntry {
        at: when,
        tenant_id: Some("acme".into()),
        actor: "U0ONCALL".into(),
        action: action.into(),
        subject: Some(subject.into()),
        outcome: outcome.into(),
        detail: Some(detail),
    };
    let m1 = at(34) + Duration::minutes(5);
    for e in [
        audit(
            "pause",
            "j1",
            m1,
            "ok",
            json!({ "job": "x1", "for_alert": "a" }),
        ),
        audit(
            "pause",
            "j1",
            m1 + Duration::seconds(1),
            "ok",
            json!({ "job": "x2", "for_alert": "a" }),
        ),
        audit("pause", "j9", m1, "ok", json!({})),
        audit(
            "request_scaling",
            "j1",
            at(35),
            "ok",
            json!({ "tier": "Platform Team Lead" }),
        ),
        audit(
            "recreate",
            "j1",
            at(35),
            "refused: not an operator",
            json!({}),
        ),
        // Pages: tier 1 at 10:00 for j1, not acked in 15 min, tier 2 at 10:15 acked at 10:27.
        audit(
            "page",
            "j1",
            t_tue10,
            "ok",
            json!({ "tier": "On-call Engineer", "round": 0 }),
        ),
        audit(
            "page",
            "j1",
            t_tue10 + Duration::minutes(15),
            "ok",
            json!({ "tier": "Platform Team Lead", "round": 0 }),
        ),
        audit(
            "acknowledge",
            "j1",
            t_tue10 + Duration::minutes(27),
            "ok",
            json!({}),
        ),
        // j2: tier 1 acked after 4 minutes.
        audit(
            "page",
            "j2",
            at(62),
            "ok",
            json!({ "tier": "On-call Engineer", "round": 0 }),
        ),
        audit(
            "acknowledge",
            "j2",
            at(62) + Duration::minutes(4),
            "ok",
            json!({}),
        ),
    ] {
        store.audit(&e).await.unwrap();
    }
    store
        .record_eta_samples(&[
            EtaSample {
                tenant_id: "acme".into(),
                job_id: "j1".into(),
                at: m1 - Duration::minutes(2),
                eta: at(37),
                deadline: Some(deadline1),
            },
            EtaSample {
                tenant_id: "acme".into(),
                job_id: "j1".into(),
                at: m1 + Duration::minutes(31),
                eta: at(37) - Duration::minutes(40),
                deadline: Some(deadline1),
            },
        ])
        .await
        .unwrap();

    // Extensions: two requested, one approved (+2h), one rejected.
    for (job, decision) in [("j1", "approved"), ("j2", "rejected")] {
        let (req, _) = store
            .create_approval(
                NewApproval {
                    tenant_id: "acme".into(),
                    job_id: job.into(),
                    alert_id: None,
                    requested_by: "U0ONCALL".into(),
                    reason: None,
                    current_deadline: at(40),
                    proposed_deadline: at(42),
                    expires_at: at(44),
                },
                at(36),
            )
            .await
            .unwrap();
        store
            .decide_approval(&req.id, decision, "U0PRODOWNER", None, at(37))
            .await
            .unwrap();
    }
    // Notices: one approaching that was promoted, one tight deadline.
    let n = store
        .open_notice("acme", "j2", "approaching", Some(0.05), None, at(61))
        .await
        .unwrap()
        .unwrap();
    store
        .close_notice(&n.id, "promoted", Some("a2"), at(62))
        .await
        .unwrap();
    store
        .open_notice("acme", "j4", "tight_deadline", Some(0.08), None, at(4))
        .await
        .unwrap()
        .unwrap();
}

async fn review_of_a_seeded_week(backend: Backend) {
    let fx = ServoFixture::start().await;
    // A Monday, midnight UTC, some weeks back; the review runs a week later.
    let start = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
    let end = start + Duration::days(7);
    let clock = ManualClock::new(end + Duration::hours(9));
    let app = app_with(
        &fx,
        backend,
        &clock,
        config("")
            .replace(
                "weekly = false",
                "weekly = true\nday = \"monday\"\nat = \"09:00\"",
            )
            .replace("charts = false", "charts = true"),
    )
    .await;
    seed_week(&app, start).await;

    let input = servo_sla_bot::flows::review::load(&app.state, "acme", start, end)
        .await
        .unwrap();
    let r = servo_sla_bot::flows::review::compute(&input, start, end);
    assert_eq!(
        r.jobs_watched, 4,
        "j1-j4; the old job ended before the week"
    );
    assert_eq!(r.breached_total, 1);
    assert_eq!(r.breached[0].job_id, "j1");
    assert_eq!(r.breached[0].late_by, Some(Duration::minutes(90)));
    let close: Vec<&str> = r.close_calls.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(
        close,
        vec!["j2", "j4", "j3"],
        "lowest buffer first, the breach apart"
    );
    assert_eq!(r.close_calls[0].min_buffer, Some(0.03));

    let acc = |m: i64| r.accuracy.iter().find(|a| a.mark == m).unwrap().clone();
    assert_eq!(acc(25).jobs, 2);
    assert_eq!(acc(25).servo_abs, Some(40.0)); // median of 60 and 20
    assert_eq!(acc(25).bot_abs, Some(10.0)); // 10 and 10
    assert_eq!(acc(25).bot_bias, Some(0.0)); // -10 and +10
    assert_eq!(acc(50).servo_abs, Some(20.0)); // 30 and 10
    assert_eq!(acc(50).bot_abs, Some(3.0)); // 4 and 2
    assert_eq!(acc(50).servo_bias, Some(10.0)); // +30 and -10
    assert_eq!(acc(75).jobs, 1);
    assert_eq!(acc(75).servo_abs, Some(6.0));

    let mit = |a: &str| {
        r.mitigations
            .iter()
            .find(|m| m.action == a)
            .unwrap()
            .clone()
    };
    assert_eq!(
        mit("pause").taken,
        1,
        "one click pausing two jobs is one mitigation"
    );
    assert_eq!(mit("pause").measured, 1);
    assert_eq!(mit("pause").median_bought_min, Some(40.0));
    // Scaling at 11:00 (ETA 12:20 by the last sample before it); the job
    // completed at 11:30, before a sample 30 minutes on: its completion is
    // the ETA after.
    assert_eq!(mit("request_scaling").taken, 1);
    assert_eq!(mit("request_scaling").median_bought_min, Some(50.0));
    assert_eq!(
        mit("recreate").taken,
        0,
        "a refused click is not a mitigation"
    );

    assert_eq!(r.extensions.requested, 2);
    assert_eq!(r.extensions.approved, 1);
    assert_eq!(r.extensions.rejected, 1);
    assert_eq!(r.extensions.approved_time, Duration::hours(2));

    let tier = |n: &str| r.pages.iter().find(|t| t.tier == n).unwrap().clone();
    assert_eq!(tier("On-call Engineer").pages, 2);
    assert_eq!(tier("On-call Engineer").acked, 1);
    assert_eq!(tier("On-call Engineer").moved_on, 1);
    assert_eq!(
        tier("On-call Engineer").median_ack,
        Some(Duration::minutes(4))
    );
    assert_eq!(tier("Platform Team Lead").pages, 1);
    assert_eq!(tier("Platform Team Lead").acked, 1);
    assert_eq!(
        tier("Platform Team Lead").median_ack,
        Some(Duration::minutes(12))
    );

    assert_eq!(r.episodes, 3);
    assert_eq!(r.by_weekday, [0, 2, 1, 0, 0, 0, 0]);
    assert_eq!(r.by_hour[10], 1);
    assert_eq!(r.by_hour[11], 1);
    assert_eq!(r.by_hour[14], 1);
    assert_eq!(r.by_asset[0].asset, "orders");
    assert_eq!((r.by_asset[0].episodes, r.by_asset[0].breaches), (3, 1));
    assert_eq!((r.approaching, r.tight, r.promoted), (1, 1, 1));

    // The weekly review goes out at Monday 09:00, once.
    let out = app.poll().await;
    assert!(out.tenants["acme"].is_ok());
    let posts: Vec<_> = channel_posts(&app, "C0ACMEALERT")
        .into_iter()
        .filter(|m| m.text.starts_with("SLA review"))
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let shown = posts[0].blocks.to_string();
    assert!(
        posts[0].text.contains("1 breach, 3 at-risk episodes"),
        "{}",
        posts[0].text
    );
    for want in [
        "orders",
        "completed 1h 30m late",
        "lowest buffer 3%",
        "at 25% done (2 jobs): Servo 40 min",
        "Pause lower-priority jobs ×1: ETA a median 40 min earlier",
        "2 requested, 1 approved (+2h in all), 1 rejected",
        "On-call Engineer: 2 pages, 1 acknowledged (median 4m to acknowledge), 1 moved on",
        "Platform Team Lead: 1 page, 1 acknowledged (median 12m to acknowledge)",
        "busiest Tue (2)",
    ] {
        assert!(shown.contains(want), "missing {want:?} in {shown}");
    }
    // The other tenant had nothing to review: no empty review in its channel.
    assert_eq!(
        channel_posts(&app, "C0GLOBEXALR")
            .iter()
            .filter(|m| m.text.starts_with("SLA review"))
            .count(),
        0
    );
    // Its charts follow it in each channel, as a PNG through Slack's upload flow.
    let files = app.slack.files();
    let outbox: Vec<_> = app
        .state
        .store
        .list_outbox(None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.method, m.status, m.last_error))
        .collect();
    assert_eq!(files.len(), 1, "{outbox:?}");
    let f = &files[0];
    assert_eq!(f.channel, "C0ACMEALERT", "the chart goes with its review");
    assert_eq!(f.filename, "sla-review.png");
    assert!(f.thread_ts.is_none());
    assert!(f.bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG arrives");
    assert!(!f.alt_text.is_empty(), "charts carry alt text");
    clock.advance(Duration::minutes(1));
    app.poll().await;
    assert_eq!(app.slack.files().len(), 1, "charts once a week too");
    assert_eq!(
        channel_posts(&app, "C0ACMEALERT")
            .iter()
            .filter(|m| m.text.starts_with("SLA review"))
            .count(),
        1,
        "once a week"
    );

    // On demand: the last 30 days, to the asker only.
    let answer = app
        .slash("review 30d", "U0ONCALL", "C0ACMEINCDT")
        .await
        .json();
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("since the bot started watching"),
        "30 days reach back before the bot's history begins: {answer}"
    );
    assert!(
        answer.to_string().contains(&format!(
            "since <!date^{}^",
            (start - Duration::days(9)).timestamp()
        )),
        "the period starts when the bot's history does: {answer}"
    );
    assert!(answer
        .to_string()
        .contains("when the bot started watching, to"));
    let answer = app
        .slash("review 14d", "U0ONCALL", "C0ACMEINCDT")
        .await
        .json();
    assert!(
        answer["text"].as_str().unwrap().contains("`7d`"),
        "{answer}"
    );

    // Retention: pruned a year later, the week is gone.
    let deleted = app
        .state
        .store
        .prune_history(end + Duration::days(400))
        .await
        .unwrap();
    assert!(deleted > 20, "{deleted}");
    let input = servo_sla_bot::flows::review::load(&app.state, "acme", start, end)
        .await
        .unwrap();
    let kept: Vec<&str> = input.watched.iter().map(|w| w.job_id.as_str()).collect();
    assert_eq!(
        kept,
        vec!["j4"],
        "a job still active is kept whatever its age"
    );
    assert!(input.alerts.is_empty() && input.audit.is_empty() && input.marks.is_empty());
}

/// A bot started on a Monday at 08:00: its first 09:00 review slot comes
/// before it has seen anything worth reviewing.
async fn no_empty_review(backend: Backend) {
    let fx = ServoFixture::start().await;
    let monday = Utc.with_ymd_and_hms(2026, 11, 9, 8, 0, 0).unwrap();
    let clock = ManualClock::new(monday);
    let app = app_with(
        &fx,
        backend,
        &clock,
        config("").replace(
            "weekly = false",
            "weekly = true\nday = \"monday\"\nat = \"09:00\"",
        ),
    )
    .await;
    // Nothing seen: /backfill review says so instead of an empty report.
    let answer = app
        .slash("review 7d", "U0ONCALL", "C0ACMEINCDT")
        .await
        .json();
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(
        answer["text"].as_str().unwrap().contains(
            "No backfill jobs were seen in tenant `acme` in the last 7 days; nothing to review."
        ),
        "{answer}"
    );
    // The slot passes with nothing seen: no review in any channel, and the
    // week is not looked at again.
    clock.advance(Duration::hours(1) + Duration::minutes(1));
    app.poll().await;
    clock.advance(Duration::minutes(1));
    app.poll().await;
    let reviews = |app: &TestApp| {
        app.slack
            .messages()
            .into_iter()
            .filter(|m| m.text.starts_with("SLA review"))
            .count()
    };
    assert_eq!(reviews(&app), 0, "an empty period posts nothing");
    assert!(app.slack.files().is_empty());
    let slot = Utc
        .with_ymd_and_hms(2026, 11, 9, 9, 0, 0)
        .unwrap()
        .to_rfc3339();
    assert!(app.state.store.review_posted("acme", &slot).await.unwrap());

    // A job with a deadline from Wednesday on: next Monday's review covers
    // only the days since the bot started watching, not a week before.
    clock.advance(Duration::days(2));
    fx.job(JobSpec {
        deadline: Some(clock.now() + Duration::days(3)),
        eta: Some(clock.now() + Duration::days(1)),
        heartbeat: Some(clock.now()),
        ..JobSpec::default()
    })
    .await;
    app.poll().await;
    let next_monday = Utc.with_ymd_and_hms(2026, 11, 16, 9, 0, 0).unwrap();
    clock.advance(next_monday - clock.now() + Duration::minutes(1));
    app.poll().await;
    let posts: Vec<_> = channel_posts(&app, "C0ACMEALERT")
        .into_iter()
        .filter(|m| m.text.starts_with("SLA review"))
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0]
            .text
            .contains("since the bot started watching (4 d 23 h)"),
        "{}",
        posts[0].text
    );
    let watched_from = Utc.with_ymd_and_hms(2026, 11, 11, 9, 2, 0).unwrap();
    assert!(
        posts[0]
            .blocks
            .to_string()
            .contains(&format!("<!date^{}^", watched_from.timestamp())),
        "the period starts when the bot first saw the job: {}",
        posts[0].blocks
    );
    assert_eq!(
        channel_posts(&app, "C0GLOBEXALR")
            .iter()
            .filter(|m| m.text.starts_with("SLA review"))
            .count(),
        0,
        "the other tenant saw nothing: no review there"
    );
}

/// A bot with history, but none of it in the week: the weekly slot is
/// claimed once and posts nothing; `/backfill review` says there is nothing.
async fn a_quiet_week(backend: Backend) {
    let fx = ServoFixture::start().await;
    let monday = Utc.with_ymd_and_hms(2026, 11, 16, 8, 0, 0).unwrap();
    let clock = ManualClock::new(monday);
    let app = app_with(
        &fx,
        backend,
        &clock,
        config("").replace(
            "weekly = false",
            "weekly = true\nday = \"monday\"\nat = \"09:00\"",
        ),
    )
    .await;
    // A job watched three weeks ago, done two weeks ago.
    let seen = monday - Duration::days(21);
    let store = &app.state.store;
    store
        .watch_new(
            &[NewWatchedJob {
                tenant_id: "acme".into(),
                job_id: "long-gone".into(),
                asset: "orders".into(),
                priority: 5,
                tier: "standard".into(),
                deadline: None,
                buffer: Some(0.5),
            }],
            seen,
        )
        .await
        .unwrap();
    store
        .watch_end(
            "acme",
            "long-gone",
            "completed",
            Some(seen + Duration::days(7)),
            seen + Duration::days(7),
        )
        .await
        .unwrap();
    assert_eq!(store.history_begins("acme").await.unwrap(), Some(seen));
    assert_eq!(store.history_begins("globex").await.unwrap(), None);

    let answer = app
        .slash("review 7d", "U0ONCALL", "C0ACMEINCDT")
        .await
        .json();
    assert_eq!(answer["response_type"], "ephemeral");
    assert_eq!(
        answer["text"],
        "No backfill jobs were seen in tenant `acme` in the last 7 days; nothing to review.",
        "{answer}"
    );
    assert!(
        answer.get("blocks").is_none(),
        "a line, not a report: {answer}"
    );
    // 30 days reach back to the job: that review has something to say.
    let answer = app
        .slash("review 30d", "U0ONCALL", "C0ACMEINCDT")
        .await
        .json();
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("SLA review for acme, since the bot started watching"),
        "{answer}"
    );

    clock.advance(Duration::hours(1) + Duration::minutes(1));
    for _ in 0..3 {
        let out = app.poll().await;
        assert!(out.tenants["acme"].is_ok());
        clock.advance(Duration::minutes(1));
    }
    assert_eq!(
        app.slack
            .messages()
            .iter()
            .filter(|m| m.text.starts_with("SLA review"))
            .count(),
        0,
        "a quiet week posts nothing"
    );
    let slot = Utc
        .with_ymd_and_hms(2026, 11, 16, 9, 0, 0)
        .unwrap()
        .to_rfc3339();
    assert!(app.state.store.review_posted("acme", &slot).await.unwrap());
    assert!(app
        .state
        .store
        .review_posted("globex", &slot)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_quiet_week_posts_no_review_sqlite() {
    a_quiet_week(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_quiet_week_posts_no_review_postgres() {
    a_quiet_week(Backend::Postgres).await;
}

#[tokio::test]
async fn an_empty_period_posts_no_review_and_a_late_start_shortens_it_sqlite() {
    no_empty_review(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_empty_period_posts_no_review_and_a_late_start_shortens_it_postgres() {
    no_empty_review(Backend::Postgres).await;
}

#[tokio::test]
async fn a_review_of_a_seeded_week_has_the_right_numbers_sqlite() {
    review_of_a_seeded_week(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_review_of_a_seeded_week_has_the_right_numbers_postgres() {
    review_of_a_seeded_week(Backend::Postgres).await;
}

async fn burn_down_on_a_new_alert(backend: Backend) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let id = fx
        .job(JobSpec {
            started: Some(t0 - Duration::minutes(60)),
            deadline: Some(t0 + Duration::minutes(60)),
            eta: Some(t0 + Duration::minutes(90)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    let app = app_with(
        &fx,
        backend,
        &clock,
        config("").replace("charts = false", "charts = true"),
    )
    .await;
    app.poll().await;
    let alert = app
        .state
        .store
        .open_alert_for_job("acme", &id.to_string())
        .await
        .unwrap()
        .expect("the job is at risk");
    let files = app
        .slack
        .wait_for_files(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(f.channel, "C0ACMEALERT");
    assert_eq!(f.thread_ts, alert.ts, "in the alert's thread");
    assert_eq!(f.filename, "burn-down.png");
    assert!(f.title.contains("revenue_daily"), "{}", f.title);
    assert!(f.bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG arrives");
    // Later polls edit the alert; the chart is not sent again.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(100), t0 + Duration::minutes(1))
        .await;
    app.poll().await;
    assert_eq!(app.slack.files().len(), 1);
}

#[tokio::test]
async fn a_new_alert_gets_its_burn_down_in_its_thread_sqlite() {
    burn_down_on_a_new_alert(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_new_alert_gets_its_burn_down_in_its_thread_postgres() {
    burn_down_on_a_new_alert(Backend::Postgres).await;
}

#[test]
fn buffers_and_review_are_configurable_and_checked() {
    use servo_sla_bot::config::FileConfig;
    let base = CONFIG;
    let c = FileConfig::parse(base).unwrap();
    assert_eq!(c.buffers.critical, Some(0.10));
    assert_eq!(c.buffers.standard, Some(0.20));
    assert_eq!(c.buffers.best_effort, None);
    assert!(c.review.weekly);
    let c = FileConfig::parse(&format!(
        "{base}[buffers]\nbest_effort = 0.5\ncritical = 0\n[review]\nday = \"fri\"\nat = \"16:30\"\nretention = \"60d\"\n"
    ))
    .unwrap();
    assert_eq!(c.buffers.best_effort, Some(0.5));
    assert_eq!(c.buffers.critical, None, "0 turns a tier's buffer off");
    assert_eq!(c.review.day, chrono::Weekday::Fri);
    for bad in [
        "[buffers]\nstandard = -0.1\n",
        "[review]\nday = \"someday\"\n",
        "[review]\nat = \"9am\"\n",
        "[review]\nretention = \"7d\"\n",
        "[buffers]\nstandrd = 0.2\n",
    ] {
        assert!(FileConfig::parse(&format!("{base}{bad}")).is_err(), "{bad}");
    }
}

async fn handled_events_and_old_severities_are_pruned(backend: Backend) {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(start_of_minute());
    let app = app_with(&fx, backend, &clock, config("")).await;
    let now = clock.now();
    let store = &app.state.store;
    assert!(store
        .first_delivery("old-event", now - Duration::days(2))
        .await
        .unwrap());
    assert!(store
        .first_delivery("new-event", now - Duration::minutes(5))
        .await
        .unwrap());
    store
        .record_severity("a1", now - Duration::days(2), 0.3)
        .await
        .unwrap();
    store
        .record_severity("a1", now - Duration::minutes(5), 0.4)
        .await
        .unwrap();
    app.poll().await;
    assert!(
        store.first_delivery("old-event", now).await.unwrap(),
        "a day-old event id is forgotten"
    );
    assert!(
        !store.first_delivery("new-event", now).await.unwrap(),
        "a recent one is still handled once"
    );
    assert_eq!(
        store
            .min_severity_since("a1", now - Duration::days(3))
            .await
            .unwrap(),
        Some(0.4),
        "severities older than a day are pruned"
    );
}

#[tokio::test]
async fn handled_events_and_old_severities_are_pruned_sqlite() {
    handled_events_and_old_severities_are_pruned(Backend::Sqlite).await;
}

#[tokio::test]
async fn handled_events_and_old_severities_are_pruned_postgres() {
    handled_events_and_old_severities_are_pruned(Backend::Postgres).await;
}

/// How Slack comes to refuse the edit that would make a notice the alert.
#[derive(Clone, Copy, Debug)]
enum Refused {
    /// Someone deleted the notice's message: `message_not_found`.
    Deleted,
    /// Someone archived the channel: `is_archived`, for the alert's own post
    /// too until it is unarchived.
    Archived,
}

/// Issue 33, item 6: the quiet notice's message cannot be edited into the
/// alert: the alert gets a post of its own (once), its thread notes follow
/// the new message, and later edits go to it.
async fn promotion_refused(backend: Backend, how: Refused) {
    let fx = ServoFixture::start().await;
    let t0 = start_of_minute();
    let clock = ManualClock::new(t0);
    let id = fx
        .job(JobSpec {
            started: Some(t0 - Duration::minutes(60)),
            deadline: Some(t0 + Duration::minutes(60)),
            eta: Some(t0 + Duration::minutes(30)),
            heartbeat: Some(t0),
            ..JobSpec::default()
        })
        .await;
    let app = app_with(&fx, backend, &clock, config("")).await;
    app.poll().await;
    // Approaching: a quiet notice of its own.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(50), t0 + Duration::minutes(1))
        .await;
    app.poll().await;
    let posts = channel_posts(&app, "C0ACMEALERT");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let notice = posts[0].clone();
    match how {
        Refused::Deleted => assert!(app.slack.delete_message("C0ACMEALERT", &notice.ts)),
        Refused::Archived => app.slack.archive_channel("C0ACMEALERT"),
    }

    // At risk: the notice would become the alert, and Slack refuses the edit.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(80), t0 + Duration::minutes(2))
        .await;
    match how {
        Refused::Deleted => {
            app.poll().await;
        }
        Refused::Archived => {
            // The alert's thread waits for its post: the outbox cannot drain
            // while the channel is archived.
            servo_sla_bot::workers::poller::Poller {
                state: app.state.clone(),
            }
            .tick()
            .await;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            while !app
                .slack
                .calls_to("chat.postMessage")
                .iter()
                .any(|c| c.outcome == "is_archived" && c.body.to_string().contains("alert_ack"))
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the alert's own post was never tried: {:#?}",
                    app.slack.calls()
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    let refused: Vec<_> = app
        .slack
        .calls_to("chat.update")
        .into_iter()
        .filter(|c| !c.is_ok())
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    if let Refused::Archived = how {
        // The alert's own post is tried again while it is wanted.
        app.slack.unarchive_channel("C0ACMEALERT");
        clock.advance(Duration::minutes(2));
        app.drain_outbox().await;
    }
    let alert = app
        .state
        .store
        .open_alert_for_job("acme", &id.to_string())
        .await
        .unwrap()
        .expect("an open alert");
    let posts: Vec<_> = channel_posts(&app, "C0ACMEALERT")
        .into_iter()
        .filter(|m| m.ts != notice.ts)
        .collect();
    assert_eq!(
        posts.len(),
        1,
        "the alert has a post of its own: {posts:#?}"
    );
    let own = posts[0].clone();
    assert!(own.text.contains("Medium SLA risk"), "{}", own.text);
    assert!(own.attachments.to_string().contains("alert_ack"));
    assert_eq!(alert.ts.as_deref(), Some(own.ts.as_str()));
    let thread = app.slack.thread_replies("C0ACMEALERT", &own.ts);
    assert!(
        thread
            .iter()
            .any(|m| m.text.contains("went at risk after it was approaching")),
        "the promotion's note follows the new message: {thread:#?}"
    );
    let failed = app.state.store.list_outbox(Some("failed")).await.unwrap();
    assert_eq!(failed.len(), 1, "only the refused edit failed: {failed:#?}");
    assert_eq!(failed[0].method, "chat.update");

    // Worse (High): the band change edits the alert's own message, and the
    // next polls post nothing more.
    clock.advance(Duration::minutes(1));
    fx.set_eta(id, t0 + Duration::minutes(120), t0 + Duration::minutes(5))
        .await;
    app.poll().await;
    app.poll().await;
    let edited = app.slack.message("C0ACMEALERT", &own.ts).unwrap();
    assert!(edited.text.contains("High SLA risk"), "{}", edited.text);
    let posts: Vec<_> = channel_posts(&app, "C0ACMEALERT")
        .into_iter()
        .filter(|m| m.ts != notice.ts)
        .collect();
    assert_eq!(posts.len(), 1, "{posts:#?}");
}

#[tokio::test]
async fn a_notice_someone_deleted_is_promoted_to_an_alert_of_its_own_on_sqlite() {
    promotion_refused(Backend::Sqlite, Refused::Deleted).await;
}

#[tokio::test]
async fn a_notice_someone_deleted_is_promoted_to_an_alert_of_its_own_on_postgres() {
    promotion_refused(Backend::Postgres, Refused::Deleted).await;
}

#[tokio::test]
async fn a_notice_in_an_archived_channel_is_promoted_to_an_alert_of_its_own_on_sqlite() {
    promotion_refused(Backend::Sqlite, Refused::Archived).await;
}

#[tokio::test]
async fn a_notice_in_an_archived_channel_is_promoted_to_an_alert_of_its_own_on_postgres() {
    promotion_refused(Backend::Postgres, Refused::Archived).await;
}
