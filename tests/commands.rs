//! `/backfill` subcommands against Servo's tables (PostgreSQL, under RLS) and
//! the fake Slack, signed as Slack signs them.

mod common;

use common::slack_ui::t0;

use chrono::{DateTime, Duration, Utc};
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::servo_fixture::{JobSpec, ServoFixture};
use serde_json::Value;
use servo_sla_bot::runtime::clock::ManualClock;
use uuid::Uuid;

const OPERATOR: &str = "U0PLATLEAD";
const STAKEHOLDER: &str = "U0PRODOWNER";
const CHANNEL: &str = "C0ACMEALERT";

struct World {
    fx: ServoFixture,
    app: TestApp,
    clock: ManualClock,
}

async fn world() -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let app = spawn(
        Spawn::new(Backend::Sqlite)
            .manual_clock(&clock)
            .servo_url(&fx.bot_url()),
    )
    .await;
    World { fx, app, clock }
}

fn late_job(t: DateTime<Utc>) -> JobSpec {
    JobSpec {
        deadline: Some(t + Duration::minutes(60)),
        eta: Some(t + Duration::minutes(120)),
        heartbeat: Some(t),
        priority: 9,
        ..JobSpec::default()
    }
}

fn text_of(v: &Value) -> String {
    v.to_string()
}

/// The answer, posted to the fake Slack as a message, must pass Slack's limits.
async fn assert_within_limits(app: &TestApp, answer: &Value) {
    let mut msg = answer.clone();
    msg.as_object_mut().unwrap().remove("response_type");
    msg["channel"] = CHANNEL.into();
    app.state
        .slack
        .call("chat.postMessage", &msg)
        .await
        .unwrap_or_else(|e| panic!("Slack would refuse this answer: {e}: {msg}"));
}

#[tokio::test]
async fn status_shows_the_job_card_with_a_link_to_the_alert_thread() {
    let w = world().await;
    let id =
        w.fx.job(JobSpec {
            completed: 30,
            failed: 2,
            durations_ms: (0..30).map(|i| 30_000 + i * 4_000).collect(),
            ..late_job(t0())
        })
        .await;
    w.app.poll().await;
    let answer = w
        .app
        .slash(&format!("status {id}"), OPERATOR, "C0ACMEINCDT")
        .await;
    assert_eq!(answer.status, 200);
    let v = answer.json();
    let text = text_of(&v);
    assert_eq!(v["response_type"], "ephemeral");
    for expected in [
        "revenue_daily",
        "running",
        "30/100",
        "2 failed",
        "<!date^",
        "ETA 1 h after the deadline, 1 h left",
        "High",
        "Critical",
        "Partition durations rising",
        "Alert thread",
        "https://slack.com/archives/C0ACMEALERT/p",
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    assert_within_limits(&w.app, &v).await;
}

#[tokio::test]
async fn an_unknown_job_and_another_tenants_job_get_the_same_answer() {
    let w = world().await;
    let theirs =
        w.fx.job(JobSpec {
            tenant: "globex".into(),
            ..late_job(t0())
        })
        .await;
    let unknown = Uuid::new_v4();
    let a = w
        .app
        .slash(&format!("status {theirs}"), OPERATOR, CHANNEL)
        .await
        .json();
    let b = w
        .app
        .slash(&format!("status {unknown}"), OPERATOR, CHANNEL)
        .await
        .json();
    let norm = |v: &Value, id: &Uuid| v["text"].as_str().unwrap().replace(&id.to_string(), "ID");
    assert_eq!(norm(&a, &theirs), norm(&b, &unknown));
    assert!(norm(&a, &theirs).contains("No job `ID` in tenant `acme`"));
    assert_eq!(a["response_type"], "ephemeral");
}

#[tokio::test]
async fn a_name_that_fits_no_job_says_what_a_job_can_be_called() {
    let w = world().await;
    w.fx.job(late_job(t0())).await;
    let v = w.app.slash("status 12345", OPERATOR, CHANNEL).await.json();
    let text = v["text"].as_str().unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(
        text.contains("No active job of tenant `acme`") && text.contains("at least 8 characters"),
        "{text}"
    );
    let v = w
        .app
        .slash("pause no_such_asset", OPERATOR, CHANNEL)
        .await
        .json();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("asset name `no_such_asset`") && text.contains("Nothing was changed"),
        "{text}"
    );
    let v = w.app.slash("pause", OPERATOR, CHANNEL).await.json();
    assert!(v["text"].as_str().unwrap().contains("Which job?"));
}

/// Two jobs whose ids share their first group, on two assets, plus a
/// second job of one of the assets.
async fn lookalikes(w: &World) -> (Uuid, Uuid, Uuid) {
    let a = Uuid::parse_str("7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10").unwrap();
    let b = Uuid::parse_str("7f3c2a9e-77aa-4c55-9a7e-2d6f1e8b4c11").unwrap();
    let c = Uuid::parse_str("0a0b0c0d-1111-4c55-9a7e-2d6f1e8b4c12").unwrap();
    for (id, asset, state) in [
        (a, "orders_daily", "running"),
        (b, "orders_daily", "paused"),
        (c, "payments_hourly", "running"),
    ] {
        w.fx.job(JobSpec {
            id: Some(id),
            asset: asset.into(),
            state: state.into(),
            ..late_job(t0())
        })
        .await;
    }
    // A finished-looking job of another tenant shares the prefix too: never a candidate.
    w.fx.job(JobSpec {
        id: Some(Uuid::parse_str("7f3c2a9e-0000-4c55-9a7e-2d6f1e8b4c13").unwrap()),
        tenant: "globex".into(),
        asset: "payments_hourly".into(),
        ..late_job(t0())
    })
    .await;
    (a, b, c)
}

#[tokio::test]
async fn a_job_is_found_by_its_asset_name_or_a_unique_prefix_of_its_id() {
    let w = world().await;
    let (a, b, c) = lookalikes(&w).await;
    w.app.poll().await;
    // The asset has one active job in this tenant: its name is enough.
    let v = w
        .app
        .slash("status payments_hourly", OPERATOR, CHANNEL)
        .await
        .json();
    let text = text_of(&v);
    assert!(
        text.contains(&c.to_string()) && text.contains("payments_hourly"),
        "{text}"
    );
    // A unique prefix of 8 or more characters, backticks and case forgiven.
    let v = w
        .app
        .slash("status `7F3C2A9E-0B1D`", OPERATOR, CHANNEL)
        .await
        .json();
    assert!(text_of(&v).contains(&a.to_string()), "{v}");
    // Pausing by prefix pauses that job and no other.
    let v = w
        .app
        .slash("pause 7f3c2a9e-0b", OPERATOR, CHANNEL)
        .await
        .json();
    assert_eq!(v["response_type"], "in_channel", "{v}");
    assert!(
        v["text"].as_str().unwrap().contains("Alert thread"),
        "links the alert: {v}"
    );
    assert_eq!(w.fx.job_field::<String>(a, "state").await, "paused");
    assert_eq!(w.fx.job_field::<String>(b, "state").await, "paused");
    assert_eq!(w.fx.job_field::<String>(c, "state").await, "running");
    // An extension request by asset name.
    let v = w
        .app
        .slash(
            "extend-deadline payments_hourly +2h vendor outage",
            STAKEHOLDER,
            CHANNEL,
        )
        .await
        .json();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("Extension requested for *payments_hourly*"),
        "{text}"
    );
    assert!(
        text.contains("https://slack.com/archives/C0ACMEALERT/p"),
        "links the alert: {text}"
    );
}

#[tokio::test]
async fn an_ambiguous_name_lists_the_candidates_and_changes_nothing() {
    let w = world().await;
    let (a, b, _) = lookalikes(&w).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    for typed in ["7f3c2a9e", "orders_daily", "ORDERS_DAILY"] {
        let v = w
            .app
            .slash(&format!("pause {typed}"), OPERATOR, CHANNEL)
            .await
            .json();
        let text = v["text"].as_str().unwrap();
        assert_eq!(v["response_type"], "ephemeral");
        assert!(
            text.contains("fits 2 active jobs") && text.contains("nothing was changed"),
            "{text}"
        );
        for (id, state) in [(a, "running"), (b, "paused")] {
            assert!(
                text.contains(&id.to_string()),
                "{id} is a candidate: {text}"
            );
            assert!(
                text.contains(&format!("*orders_daily* · {state}")),
                "{text}"
            );
        }
        assert!(
            !text.contains("7f3c2a9e-0000"),
            "another tenant's job: {text}"
        );
        assert!(
            text.contains("Alert thread"),
            "candidates link their alerts: {text}"
        );
    }
    assert_eq!(w.fx.job_field::<String>(a, "state").await, "running");
    assert_eq!(w.fx.job_field::<String>(b, "state").await, "paused");
    // Another tenant's asset is not found from this tenant's channel.
    let v = w
        .app
        .slash("status 7f3c2a9e-0000", OPERATOR, CHANNEL)
        .await
        .json();
    assert!(v["text"].as_str().unwrap().contains("No active job"), "{v}");
}

#[tokio::test]
async fn backfill_alone_shows_the_at_risk_list_in_an_alert_channel_and_help_elsewhere() {
    let w = world().await;
    w.fx.job(JobSpec {
        asset: "late_asset".into(),
        ..late_job(t0())
    })
    .await;
    w.fx.job(JobSpec {
        asset: "fine_asset".into(),
        deadline: Some(t0() + Duration::minutes(600)),
        eta: Some(t0() + Duration::minutes(100)),
        heartbeat: Some(t0()),
        ..JobSpec::default()
    })
    .await;
    w.app.poll().await;
    let v = w.app.slash("", OPERATOR, CHANNEL).await.json();
    let text = text_of(&v);
    assert!(text.contains("late_asset"), "{text}");
    assert!(
        !text.contains("fine_asset"),
        "only the jobs at risk: {text}"
    );
    let v = w.app.slash("", OPERATOR, "C0RANDOM").await.json();
    assert!(v["text"].as_str().unwrap().contains("Usage"), "{v}");
}

#[tokio::test]
async fn list_is_riskiest_first_and_filters() {
    let w = world().await;
    let t = t0();
    let on_track =
        w.fx.job(JobSpec {
            asset: "costs_daily".into(),
            deadline: Some(t + Duration::hours(5)),
            eta: Some(t + Duration::hours(1)),
            heartbeat: Some(t),
            ..JobSpec::default()
        })
        .await;
    let high =
        w.fx.job(JobSpec {
            asset: "revenue_hourly".into(),
            ..late_job(t)
        })
        .await;
    let paused =
        w.fx.job(JobSpec {
            asset: "ads_daily".into(),
            state: "paused".into(),
            ..JobSpec::default()
        })
        .await;
    let v = w.app.slash("list", OPERATOR, CHANNEL).await.json();
    let text = text_of(&v);
    let pos = |id: Uuid| {
        text.find(&id.to_string())
            .unwrap_or_else(|| panic!("{id} missing: {text}"))
    };
    assert!(pos(high) < pos(on_track), "riskiest first");
    assert!(text.contains("3 active jobs"));
    let v = text_of(&w.app.slash("list paused", OPERATOR, CHANNEL).await.json());
    assert!(v.contains(&paused.to_string()) && !v.contains(&high.to_string()));
    let v = text_of(&w.app.slash("list at-risk", OPERATOR, CHANNEL).await.json());
    assert!(v.contains(&high.to_string()) && !v.contains(&on_track.to_string()));
    let v = text_of(&w.app.slash("list running", OPERATOR, CHANNEL).await.json());
    assert!(v.contains(&high.to_string()) && !v.contains(&paused.to_string()));
}

#[tokio::test]
async fn a_long_list_stays_within_slacks_limits_and_says_what_it_left_out() {
    let w = world().await;
    // 180 jobs, seeded in one statement.
    w.fx.asset("acme", "seed", None).await;
    sqlx::query(
        "INSERT INTO backfill_jobs (tenant_id, asset_id, asset_name, idempotency_key, state, total_partitions, \
           completed_partitions, avg_partition_duration_ms, sla_deadline_at, heartbeat_at, priority) \
         SELECT 'acme', (SELECT id FROM assets LIMIT 1), 'asset_with_a_rather_long_name_' || g, 'k' || g, 'running', \
           100, 10, 60000, now() + interval '3 hours', now(), 3 FROM generate_series(1, 180) g \
         ON CONFLICT DO NOTHING",
    )
    .execute(&w.fx.admin)
    .await
    .unwrap();
    let v = w.app.slash("list all", OPERATOR, CHANNEL).await.json();
    assert!(v["blocks"].as_array().unwrap().len() <= 50);
    assert!(text_of(&v).contains("80 more not shown"), "{}", text_of(&v));
    assert_within_limits(&w.app, &v).await;
}

#[tokio::test]
async fn pause_and_resume_follow_servos_semantics_and_note_it_in_the_alert_thread() {
    let w = world().await;
    let id = w.fx.job(late_job(t0())).await;
    w.app.poll().await;
    let v = w
        .app
        .slash(&format!("pause {id}"), OPERATOR, "C0ACMEINCDT")
        .await
        .json();
    assert_eq!(v["response_type"], "in_channel", "{v}");
    assert!(v["text"].as_str().unwrap().contains("paused"));
    assert!(
        v["text"].as_str().unwrap().contains("Alert thread"),
        "links the alert from an incident channel"
    );
    assert_eq!(w.fx.job_field::<String>(id, "state").await, "paused");
    assert_eq!(w.fx.job_field::<i32>(id, "version").await, 2);
    assert_eq!(
        w.fx.job_field::<Option<String>>(id, "checkpoint_partition_key")
            .await
            .as_deref(),
        Some("p0049")
    );
    w.app.drain_outbox().await;
    let replies = w
        .app
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_some())
        .collect::<Vec<_>>();
    assert!(
        replies.iter().any(|m| m.text.contains("paused")),
        "{replies:#?}"
    );

    // Pausing again: Servo's own refusal, nothing changes.
    let v = w
        .app
        .slash(&format!("pause {id}"), OPERATOR, CHANNEL)
        .await
        .json();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"]
        .as_str()
        .unwrap()
        .contains("Cannot pause job in state 'paused'. Only running jobs can be paused."));
    assert_eq!(w.fx.job_field::<i32>(id, "version").await, 2);

    let v = w
        .app
        .slash(&format!("resume {id}"), OPERATOR, CHANNEL)
        .await
        .json();
    assert!(v["text"].as_str().unwrap().contains("resumed"));
    assert_eq!(w.fx.job_field::<String>(id, "state").await, "resuming");
    assert_eq!(w.fx.job_field::<i32>(id, "version").await, 3);

    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&id.to_string()), 10)
        .await
        .unwrap();
    let seen: Vec<(String, String)> = audit
        .iter()
        .map(|e| (e.action.clone(), e.outcome.clone()))
        .collect();
    assert!(seen.contains(&("pause".into(), "ok".into())));
    assert!(seen
        .iter()
        .any(|(a, o)| a == "pause" && o.starts_with("refused: Cannot pause")));
    assert!(seen.contains(&("resume".into(), "ok".into())));
    assert!(audit
        .iter()
        .filter(|e| e.action == "pause" || e.action == "resume")
        .all(|e| e.actor == OPERATOR));
}

#[tokio::test]
async fn only_operators_may_pause_and_a_refusal_changes_nothing() {
    let w = world().await;
    let id = w.fx.job(late_job(t0())).await;
    let v = w
        .app
        .slash(&format!("pause {id}"), STAKEHOLDER, CHANNEL)
        .await
        .json();
    assert!(v["text"].as_str().unwrap().contains("Only the operators"));
    assert_eq!(w.fx.job_field::<String>(id, "state").await, "running");
    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&id.to_string()), 10)
        .await
        .unwrap();
    assert_eq!(audit[0].outcome, "refused: not an operator");
}

#[tokio::test]
async fn an_operator_through_a_user_group_may_pause() {
    let w = world().await;
    w.app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    let id = w.fx.job(late_job(t0())).await;
    let v = w
        .app
        .slash(&format!("pause {id}"), "U0ONCALL1", CHANNEL)
        .await
        .json();
    assert_eq!(v["response_type"], "in_channel", "{v}");
    assert_eq!(w.fx.job_field::<String>(id, "state").await, "paused");
}

#[tokio::test]
async fn extend_deadline_creates_a_request_and_changes_nothing_in_servo() {
    let w = world().await;
    let id = w.fx.job(late_job(t0())).await;
    w.app.poll().await;
    let v = w
        .app
        .slash(
            &format!("extend-deadline {id} +4h vendor outage"),
            OPERATOR,
            CHANNEL,
        )
        .await
        .json();
    assert!(
        v["text"].as_str().unwrap().contains("Extension requested"),
        "{v}"
    );
    let pending = w
        .app
        .state
        .store
        .pending_approval_for_job("acme", &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pending.proposed_deadline,
        t0() + Duration::minutes(60) + Duration::hours(4)
    );
    assert_eq!(pending.reason.as_deref(), Some("vendor outage"));
    assert_eq!(pending.requested_by, OPERATOR);
    let deadline: DateTime<Utc> = w.fx.job_field(id, "sla_deadline_at").await;
    assert_eq!(
        deadline,
        t0() + Duration::minutes(60),
        "Servo is unchanged until approved"
    );
    assert_eq!(w.fx.job_field::<i32>(id, "version").await, 1);
    let audit = w
        .app
        .state
        .store
        .list_audit(Some(&id.to_string()), 5)
        .await
        .unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].outcome.as_str()),
        ("request_extension", "ok")
    );
}

#[tokio::test]
async fn bad_deadlines_say_why_with_an_example() {
    let w = world().await;
    let id = w.fx.job(late_job(t0())).await;
    for (arg, why) in [
        ("tomorrow", "is not a deadline"),
        ("2020-01-01T00:00:00Z", "later than the current"),
        ("2026-12-01T18:00:00", "no time zone"),
        ("+0h", "must be positive"),
    ] {
        let v = w
            .app
            .slash(&format!("extend-deadline {id} {arg}"), OPERATOR, CHANNEL)
            .await
            .json();
        let text = v["text"].as_str().unwrap();
        assert!(text.contains(why), "{arg}: {text}");
        assert!(text.contains("+4h"), "{arg}: gives an example: {text}");
    }
    assert!(w
        .app
        .state
        .store
        .list_approvals(None, None)
        .await
        .unwrap()
        .is_empty());
    // A job already past its deadline: a step that still lands in the past.
    w.clock.advance(Duration::hours(3));
    let v = w
        .app
        .slash(&format!("extend-deadline {id} +1h"), OPERATOR, CHANNEL)
        .await
        .json();
    assert!(v["text"].as_str().unwrap().contains("in the past"));
}

#[tokio::test]
async fn help_and_unknown_subcommands_answer_with_usage() {
    let w = world().await;
    let v = w.app.slash("help", "U0ANYONE", "C0RANDOM").await.json();
    assert!(v["text"].as_str().unwrap().contains("Usage"));
    // In mrkdwn `<…>` is markup even inside code spans: a placeholder such
    // as <job> must be written escaped, or Slack swallows it.
    let blocks = v["blocks"].to_string();
    assert!(
        !blocks.contains("<job>") && !blocks.contains("<deadline>"),
        "{blocks}"
    );
    assert!(blocks.contains("/backfill status &lt;job&gt;"), "{blocks}");
    let v = w.app.slash("explode", "U0ANYONE", "C0RANDOM").await.json();
    assert!(v["text"]
        .as_str()
        .unwrap()
        .contains("Unknown subcommand 'explode'"));
}

#[tokio::test]
async fn a_channel_of_no_tenant_asks_which_tenant_and_how_to_pick_it() {
    let w = world().await;
    let v = w.app.slash("list", "U0ANYONE", "C0RANDOM").await.json();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("`acme`") && text.contains("`globex`") && text.contains("--tenant"),
        "{text}"
    );
}

#[tokio::test]
async fn an_operator_of_one_tenant_is_understood_in_any_channel() {
    let w = world().await;
    let id =
        w.fx.job(JobSpec {
            tenant: "globex".into(),
            ..late_job(t0())
        })
        .await;
    let v = w.app.slash("list", "U0GLOBEXOPS", "C0RANDOM").await.json();
    assert!(text_of(&v).contains(&id.to_string()), "{v}");
}

#[tokio::test]
async fn the_tenant_flag_is_only_for_that_tenants_people() {
    let w = world().await;
    let id =
        w.fx.job(JobSpec {
            tenant: "globex".into(),
            ..late_job(t0())
        })
        .await;
    let v = w
        .app
        .slash(&format!("status {id} --tenant globex"), OPERATOR, CHANNEL)
        .await
        .json();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("only for that tenant's operators"),
        "{v}"
    );
    let v = w
        .app
        .slash(
            &format!("status {id} --tenant globex"),
            "U0GLOBEXOPS",
            CHANNEL,
        )
        .await
        .json();
    assert!(text_of(&v).contains("revenue_daily"), "{v}");
    let v = w
        .app
        .slash("list --tenant nosuch", OPERATOR, CHANNEL)
        .await
        .json();
    assert!(v["text"].as_str().unwrap().contains("There is no tenant"));
}

#[tokio::test]
async fn commands_say_servo_is_unreachable_when_it_is() {
    let fx = ServoFixture::start().await;
    let id = fx.job(late_job(t0())).await;
    let app =
        spawn(Spawn::new(Backend::Sqlite).servo_url("postgres://nobody@127.0.0.1:9/servo")).await;
    for cmd in [
        format!("status {id}"),
        "list".to_string(),
        format!("pause {id}"),
    ] {
        let answer = app.slash(&cmd, OPERATOR, CHANNEL).await;
        assert_eq!(answer.status, 200);
        let v = answer.json();
        assert!(
            v["text"].as_str().unwrap().contains("Servo is unreachable"),
            "{cmd}: {v}"
        );
    }
}

#[tokio::test]
async fn slow_work_is_acknowledged_within_three_seconds_and_answered_through_response_url() {
    let w = world().await;
    let id = w.fx.job(late_job(t0())).await;
    w.app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    // Slack is slow to list the group's members (two 2 s client timeouts):
    // the check outlasts the ack budget.
    w.app.slack.fail_next(
        "usergroups.users.list",
        vec![common::fake_slack::Fault::Timeout(std::time::Duration::from_secs(4)); 2],
    );
    let started = std::time::Instant::now();
    let answer = w
        .app
        .slash(&format!("pause {id}"), "U0ONCALL1", CHANNEL)
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "acked in {:?}",
        started.elapsed()
    );
    assert!(answer.json()["text"]
        .as_str()
        .unwrap()
        .contains("Working on it"));
    let late = w
        .app
        .slack
        .wait_for_calls_prefix("response_url:", 1, std::time::Duration::from_secs(15))
        .await;
    assert!(
        late[0].body["text"].as_str().unwrap().contains("paused"),
        "{:?}",
        late[0].body
    );
    assert_eq!(w.fx.job_field::<String>(id, "state").await, "paused");
}

/// `status` answers a burst for one job from one Servo read, for
/// `commands.status_max_age`; a change the bot makes shows at once, a change
/// made elsewhere once the card is older than that, and "0s" reads every time.
#[tokio::test]
async fn a_status_card_is_reused_for_seconds_but_never_across_a_change_the_bot_made() {
    let w = world().await;
    let id = w.fx.job(late_job(t0())).await;
    let status = || async {
        text_of(
            &w.app
                .slash(&format!("status {id}"), OPERATOR, CHANNEL)
                .await
                .json(),
        )
    };
    let first = status().await;
    assert!(first.contains("0/100"), "{first}");

    // Servo moves on by itself: within 2 s the same card is answered again.
    w.fx.update_job(id, "completed_partitions = 40").await;
    w.clock.advance(Duration::milliseconds(1_500));
    assert_eq!(status().await, first);
    // Once the card is 2 s old, Servo is read again.
    w.clock.advance(Duration::milliseconds(500));
    let second = status().await;
    assert!(second.contains("40/100"), "{second}");

    // A pause through the bot shows in the very next answer.
    let paused = w.app.slash(&format!("pause {id}"), OPERATOR, CHANNEL).await;
    assert_eq!(paused.status, 200);
    let third = status().await;
    assert!(third.contains("paus"), "{third}");
    assert_ne!(third, second);

    // Another tenant's operator asking for the same id gets no cached card.
    let theirs = text_of(
        &w.app
            .slash(&format!("status {id}"), "U0GLOBEXOPS", "C0GLOBEXALR")
            .await
            .json(),
    );
    assert!(theirs.contains("No job"), "{theirs}");

    // With `status_max_age = "0s"` every answer reads Servo.
    let fresh = spawn(
        Spawn {
            config: format!(
                "{}\n[commands]\nstatus_max_age = \"0s\"\n",
                common::bot::CONFIG
            ),
            ..Spawn::new(Backend::Sqlite)
        }
        .manual_clock(&w.clock)
        .servo_url(&w.fx.bot_url()),
    )
    .await;
    let ask = || async {
        text_of(
            &fresh
                .slash(&format!("status {id}"), OPERATOR, CHANNEL)
                .await
                .json(),
        )
    };
    assert!(ask().await.contains("40/100"));
    w.fx.update_job(id, "completed_partitions = 41").await;
    assert!(ask().await.contains("41/100"));
}

/// The harness's config with only its first tenant, `acme`.
fn one_tenant_config() -> String {
    let globex =
        "[[tenants]]\nid = \"globex\"\nchannel = \"C0GLOBEXALR\"\noperators = [\"U0GLOBEXOPS\"]\n";
    assert!(common::bot::CONFIG.contains(globex));
    common::bot::CONFIG.replace(globex, "")
}

async fn one_tenant_world() -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let app = spawn(
        Spawn {
            config: one_tenant_config(),
            ..Spawn::new(Backend::Sqlite)
        }
        .manual_clock(&clock)
        .servo_url(&fx.bot_url()),
    )
    .await;
    assert_eq!(app.state.config.tenants.len(), 1);
    World { fx, app, clock }
}

/// The answer to `/backfill <text>`, waiting for `response_url` when the
/// bot acknowledged first and answered later.
async fn final_answer(app: &TestApp, text: &str, user: &str, channel: &str) -> String {
    let before = app
        .slack
        .calls()
        .iter()
        .filter(|c| c.method.starts_with("response_url:"))
        .count();
    let v = app.slash(text, user, channel).await.json();
    if !text_of(&v).contains("Working on it") {
        return text_of(&v);
    }
    let late = app
        .slack
        .wait_for_calls_prefix(
            "response_url:",
            before + 1,
            std::time::Duration::from_secs(10),
        )
        .await;
    late[before].body.to_string()
}

#[tokio::test]
async fn with_one_tenant_status_list_and_review_outside_its_channels_answer_only_its_people() {
    let w = one_tenant_world().await;
    // Group members are cached: the group is set before anyone looks it up.
    w.app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    let id = w.fx.job(late_job(t0())).await;
    w.app.poll().await;
    for text in [format!("status {id}"), "list".into(), "review".into()] {
        // Someone who is neither an operator nor a stakeholder, in a DM.
        let refused = final_answer(&w.app, &text, "U0STRANGER", "D0STRANGER").await;
        assert!(
            !refused.contains(&id.to_string()) && !refused.contains("revenue_daily"),
            "{text}: nothing of the tenant's jobs for a stranger: {refused}"
        );
        assert!(
            refused.contains("operators and stakeholders") && refused.contains("<#C0ACMEALERT>"),
            "{text}: says why and where to ask instead: {refused}"
        );
    }
    // An operator through a user group, and a stakeholder, are answered anywhere.
    let listed = final_answer(&w.app, "list", "U0ONCALL1", "D0ONCALL1").await;
    assert!(listed.contains(&id.to_string()), "{listed}");
    let card = final_answer(&w.app, &format!("status {id}"), STAKEHOLDER, "D0OWNER").await;
    assert!(card.contains("revenue_daily"), "{card}");
    let review = final_answer(&w.app, "review", OPERATOR, "D0LEAD").await;
    assert!(!review.contains("operators and stakeholders"), "{review}");
}

#[tokio::test]
async fn with_one_tenant_anyone_in_its_channels_is_answered_as_before() {
    let w = one_tenant_world().await;
    let id = w.fx.job(late_job(t0())).await;
    for channel in [CHANNEL, "C0ACMEINCDT"] {
        let listed = final_answer(&w.app, "list", "U0STRANGER", channel).await;
        assert!(listed.contains(&id.to_string()), "{channel}: {listed}");
    }
}

/// `/backfill list at-risk` lists a job as its alert shows it. Here the
/// partitions take 2.5× as long since the 20th: the forecast puts the job
/// past its deadline and the poll alerts, while Servo's ETA (lagging, as its
/// EWMA does) is still on track: the only ETA the list read before.
#[tokio::test]
async fn list_at_risk_agrees_with_the_alerts_the_forecast_raised() {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(Backend::Sqlite)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = common::bot::CONFIG.replace("forecast = false", "forecast = true");
    let w = World {
        app: spawn(spec).await,
        fx,
        clock,
    };
    let id =
        w.fx.job(JobSpec {
            completed: 30,
            durations_ms: (0..30)
                .map(|i| if i < 20 { 60_000 } else { 150_000 })
                .collect(),
            deadline: Some(t0() + Duration::minutes(120)),
            eta: Some(t0() + Duration::minutes(100)),
            heartbeat: Some(t0()),
            priority: 6,
            ..JobSpec::default()
        })
        .await;
    w.app.poll().await;
    let alert = w
        .app
        .state
        .store
        .open_alert_for_job("acme", &id.to_string())
        .await
        .unwrap()
        .expect("the forecast raised an alert");
    assert!(alert.band.is_at_risk(), "{:?}", alert.band);
    let v = text_of(&w.app.slash("list at-risk", OPERATOR, CHANNEL).await.json());
    assert!(v.contains(&id.to_string()), "{v}");
    assert!(v.contains("1 at-risk job"), "{v}");
}

/// A pause asked in a channel of no tenant (an operator of one tenant is
/// understood anywhere) is answered to the one who asked only: the job's
/// details do not go to a channel that is not the tenant's. The alert's
/// thread has it all the same.
#[tokio::test]
async fn a_change_asked_outside_the_tenants_channels_is_answered_privately() {
    let w = world().await;
    let id =
        w.fx.job(JobSpec {
            tenant: "globex".into(),
            ..late_job(t0())
        })
        .await;
    w.app.poll().await;
    let v = w
        .app
        .slash(&format!("pause {id}"), "U0GLOBEXOPS", "C0RANDOM")
        .await
        .json();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    assert!(v["text"].as_str().unwrap().contains("paused"), "{v}");
    assert_eq!(w.fx.job_field::<String>(id, "state").await, "paused");
}
