//! `servo-sla-bot simulate`: every example scenario runs through the real bot,
//! and its timeline has the key events: who was paged when, which messages,
//! which Servo changes. Scenario mistakes fail with their line.

use servo_sla_bot::sim::scenario::Scenario;
use servo_sla_bot::sim::timeline::{Event, Kind};
use servo_sla_bot::sim::{self, Report};
use std::path::Path;
use std::process::Command;

async fn run_example(name: &str) -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios")
        .join(name);
    let scenario = Scenario::load(&path, None).unwrap_or_else(|e| panic!("{e}"));
    let report = sim::run(scenario).await.expect("the simulation runs");
    if let Some(f) = &report.failure {
        panic!("{name} failed: {f}");
    }
    report
}

/// Pages: (minute, person's DM place) of every DM that pages someone.
fn pages(r: &Report) -> Vec<(i64, String)> {
    r.events
        .iter()
        .filter(|e| {
            e.kind == Kind::Message
                && e.place.starts_with("DM ")
                && e.text.contains("You are paged")
        })
        .map(|e| (e.minute, e.place.clone()))
        .collect()
}

fn servo(r: &Report) -> Vec<(i64, String)> {
    r.servo
        .iter()
        .map(|c| {
            (
                (c.at - r.start).num_minutes(),
                format!("{}: {}", c.job, c.what),
            )
        })
        .collect()
}

fn find<'a>(r: &'a Report, kind: Kind, text: &str) -> Vec<&'a Event> {
    r.events
        .iter()
        .filter(|e| e.kind == kind && e.text.contains(text))
        .collect()
}

#[tokio::test]
async fn medium_risk_extension_is_requested_approved_and_only_then_applied() {
    let r = run_example("medium-extension-approved.toml").await;
    // One alert, posted at the first poll in the tenant's channel.
    let alerts = find(&r, Kind::Message, "Medium SLA risk*: *revenue_orders");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        (alerts[0].minute, alerts[0].place.as_str()),
        (0, "#acme-sla-alerts")
    );
    assert!(alerts[0].buttons.contains(&"Request extension".to_string()));
    // The on-call engineer is paged at once and acknowledges at +5: nobody else is paged.
    assert_eq!(pages(&r), vec![(0, "DM @Dana".to_string())]);
    let ack = find(&r, Kind::Message, "Acknowledged by @Dana");
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].minute, 5);
    // The request is posted in the alert's thread for the stakeholder.
    let request = find(&r, Kind::Message, "Deadline extension requested");
    assert_eq!(request.len(), 1);
    assert_eq!(request[0].minute, 20);
    assert_eq!(request[0].place, "#acme-sla-alerts › orders thread");
    assert!(request[0].text.contains("@Pat"), "{}", request[0].text);
    assert_eq!(request[0].buttons, vec!["Approve", "Reject"]);
    // Servo's deadline changes only when the stakeholder approves, at +30.
    assert_eq!(
        servo(&r),
        vec![
            (-59, "orders: started running".to_string()),
            (30, "orders: deadline moved to Mon 14:00 UTC".to_string()),
            (234, "orders: completed".to_string()),
        ]
    );
    let resolved = find(&r, Kind::Edit, "Back on track");
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].minute, 30);
    // The requester hears the decision in a DM.
    assert!(r
        .events
        .iter()
        .any(|e| e.place == "DM @Lee" && e.text.contains("was approved by Pat")));
}

#[tokio::test]
async fn an_incident_channel_goes_from_open_to_archive() {
    let r = run_example("incident-channel.toml").await;
    let in_channel = |needle: &str| {
        r.events
            .iter()
            .filter(|e| e.place == "#C0NEW0001" && e.text.contains(needle))
            .count()
    };
    assert!(!find(&r, Kind::Edit, "Incident channel: #C0NEW0001").is_empty());
    assert_eq!(
        in_channel("Escalation started"),
        1,
        "a thread note is a line"
    );
    assert_eq!(in_channel("*Timeline* of *revenue_billing*"), 1);
    assert_eq!(in_channel("Archived by @Lee"), 1);
    assert_eq!(
        find(&r, Kind::Message, "Ended: *Mitigated*").len(),
        2,
        "thread and channel"
    );
}

#[tokio::test]
async fn a_silence_stops_the_paging_and_its_expiry_pages_from_tier_one_again() {
    let r = run_example("silence.toml").await;
    let p = pages(&r);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0], (0, "DM @Dana".to_string()));
    assert_eq!(
        p[1].1, "DM @Dana",
        "from tier 1 again, not the platform lead"
    );
    assert!((65..=70).contains(&p[1].0), "{p:#?}");
    assert_eq!(find(&r, Kind::Message, "The escalation stops").len(), 1);
    assert_eq!(find(&r, Kind::Message, "The silence expired").len(), 1);
    assert!(r
        .events
        .iter()
        .any(|e| e.kind == Kind::Edit && e.text.contains("Silenced by @Lee")));
}

#[tokio::test]
async fn low_risk_job_recovers_under_close_monitoring_without_paging_anyone() {
    let r = run_example("low-risk-recovers.toml").await;
    assert_eq!(find(&r, Kind::Message, "Low SLA risk").len(), 1);
    assert!(
        pages(&r).is_empty(),
        "the Standard tier does not page at Low"
    );
    let watching = find(&r, Kind::Message, "is monitoring this closely");
    assert_eq!(watching.len(), 1);
    assert_eq!(watching[0].minute, 5);
    let check_ins: Vec<i64> = find(&r, Kind::Message, "Check-in:")
        .iter()
        .map(|e| e.minute)
        .collect();
    assert_eq!(
        check_ins,
        vec![20, 35],
        "every 15 minutes until it resolves"
    );
    let back = find(&r, Kind::Message, "Back on track");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].minute, 35);
    // After the recovery the channel hears nothing more. The job keeps less
    // than its tier's 20% buffer for a while, so the early warning says so,
    // quietly, in the recovered alert's thread, and says when it is over.
    let after: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.minute > 35 && e.kind != Kind::Servo)
        .collect();
    assert!(
        after.iter().all(|e| e.place.contains("refunds thread")
            && (e.text.contains("Approaching its deadline")
                || e.text.contains("back to a comfortable buffer")
                || e.text.contains("to spare before the deadline"))),
        "only early warning, in the thread, after the recovery: {after:#?}"
    );
    // The forecast follows the new pace at once (a change in pace), so the
    // warning comes with the recovery itself, in the thread.
    let approaching = find(&r, Kind::Message, "Approaching its deadline");
    assert_eq!(approaching.len(), 1, "{approaching:#?}");
    assert!(approaching[0].minute >= 35, "{approaching:#?}");
    assert_eq!(approaching[0].place, "#acme-sla-alerts › refunds thread");
    assert!(
        after
            .last()
            .is_some_and(|e| e.text.contains("to spare before the deadline")),
        "the last word is that it made it: {after:#?}"
    );
    assert!(
        pages(&r).is_empty(),
        "nothing is said after the recovery: {:#?}",
        r.events
            .iter()
            .filter(|e| e.minute > 35)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        servo(&r).last().unwrap(),
        &(142, "refunds: completed".to_string())
    );
}

#[tokio::test]
async fn high_risk_job_is_recreated_at_priority_ten_after_escalation_reaches_tier_three() {
    let r = run_example("high-risk-recreate.toml").await;
    let alert = find(&r, Kind::Message, "High SLA risk*: *revenue_billing");
    assert_eq!(alert.len(), 1);
    assert!(alert[0].text.contains("3 failed"), "{}", alert[0].text);
    // Nobody acknowledges: each tier after its predecessor's time to acknowledge.
    assert_eq!(
        pages(&r),
        vec![
            (0, "DM @Dana".to_string()),
            (15, "DM @Lee".to_string()),
            (45, "DM @Pat".to_string()),
        ]
    );
    assert_eq!(
        find(&r, Kind::Message, "Acknowledged by @Pat")[0].minute,
        47
    );
    let changes = servo(&r);
    assert!(changes.contains(&(
        50,
        "billing: cancelled: SLA at risk - recreating with higher priority".to_string()
    )));
    assert!(changes.contains(&(
        50,
        "billing: recreated as `billing (recreated)` at priority 10".to_string()
    )));
    let done = changes
        .iter()
        .find(|(_, c)| c == "billing (recreated): completed")
        .expect("the new job completes");
    assert!(done.0 < 120, "before the deadline: {changes:?}");
    let recreated = find(&r, Kind::Message, "recreated the job at priority 10");
    assert_eq!(recreated.len(), 1);
    assert!(recreated[0].text.contains("@Lee"));
    assert_eq!(find(&r, Kind::Message, "Back on track").len(), 1);
}

#[tokio::test]
async fn several_high_priority_jobs_page_the_platform_lead_at_once() {
    let r = run_example("several-high-priority.toml").await;
    assert_eq!(find(&r, Kind::Message, "SLA risk*: *finance_").len(), 3);
    let lead_at_start = pages(&r)
        .into_iter()
        .filter(|(m, p)| *m == 0 && p == "DM @Lee")
        .count();
    assert_eq!(
        lead_at_start, 1,
        "tier 2 paged once for the three (issue 33)"
    );
    assert!(r.events.iter().any(|e| e.minute == 0
        && e.text
            .contains("3 high-priority jobs of tenant acme are at risk at once")));
    let changes = servo(&r);
    assert!(changes.contains(&(
        11,
        "adhoc: paused (the partitions in flight finish first)".to_string()
    )));
    assert!(changes.contains(&(170, "adhoc: resuming".to_string())));
    assert_eq!(find(&r, Kind::Action, "clicks [Acknowledge]").len(), 3);
    // Nobody else's job was touched.
    assert!(changes
        .iter()
        .filter(|(_, c)| c.contains("paused") || c.contains("cancelled"))
        .all(|(_, c)| c.starts_with("adhoc")));
}

#[tokio::test]
async fn a_storm_of_eight_late_jobs_pages_once() {
    let r = run_example("storm-pages-once.toml").await;
    let pages = pages(&r);
    assert_eq!(
        pages,
        vec![
            (0, "DM @Dana".to_string()),
            (95, "DM @Dana".to_string()),
            (110, "DM @Lee".to_string())
        ],
        "one page for the eight jobs, acknowledged before tier 2; eight breaches re-arm once (issue 35)"
    );
    assert_eq!(find(&r, Kind::Message, "escalation re-arms").len(), 1);
    assert!(!find(&r, Kind::Message, "8 jobs of acme at risk together").is_empty());
    assert!(!find(&r, Kind::Message, "acknowledged the roll-up's paging").is_empty());
    assert_eq!(find(&r, Kind::Action, "clicks [Acknowledge]").len(), 1);
}

const CONFIG: &str = r#"
[config]
poll_interval = "5m"
[[config.tenants]]
id = "acme"
channel = "C0ACMEALRT"
operators = ["U0ONCALL1"]
[[config.tenants.stakeholders]]
approvers = ["U0PRODOWNR"]
[[config.escalation.tiers]]
name = "On-call Engineer"
notify = ["U0ONCALL1"]
ack_timeout = "15m"

[[job]]
name = "orders"
asset = "revenue_orders"
partitions = 147
start = "-1h"
partition_time = "2m"
deadline = "+3h"
priority = 6
"#;

fn write(dir: &tempfile::TempDir, body: &str) -> std::path::PathBuf {
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, format!("{CONFIG}{body}")).unwrap();
    path
}

#[tokio::test]
async fn an_action_the_clicker_may_not_take_fails_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    // Line 24 is the [[action]] header: the product owner is no operator.
    let path = write(
        &dir,
        "\n[[action]]\nat = \"+5m\"\nuser = \"U0PRODOWNR\"\nclick = \"Acknowledge\"\njob = \"orders\"\n",
    );
    let report = sim::run(Scenario::load(&path, None).unwrap())
        .await
        .unwrap();
    let failure = report.failure.expect("the run fails");
    assert_eq!(failure.line, Some(24), "{failure}");
    assert!(failure.message.contains("refused"), "{failure}");
    assert!(
        failure.to_string().contains("scenario.toml:24:"),
        "{failure}"
    );
    // The timeline up to the failure is kept.
    assert!(report
        .events
        .iter()
        .any(|e| e.text.contains("Medium SLA risk")));

    // A button that is not there is named, with what is there.
    let path = write(
        &dir,
        "\n[[action]]\nat = \"+5m\"\nuser = \"U0ONCALL1\"\nclick = \"Approve\"\njob = \"orders\"\n",
    );
    let failure = sim::run(Scenario::load(&path, None).unwrap())
        .await
        .unwrap()
        .failure
        .expect("the run fails");
    assert_eq!(failure.line, Some(24));
    assert!(
        failure
            .message
            .contains("no message about it shows that button"),
        "{failure}"
    );
    assert!(failure.message.contains("[Request extension]"), "{failure}");

    // A refusal the scenario expects is part of the story, not a failure.
    let path = write(
        &dir,
        "\n[[action]]\nat = \"+5m\"\nuser = \"U0PRODOWNR\"\nclick = \"Acknowledge\"\njob = \"orders\"\nexpect = \"refused\"\n",
    );
    let report = sim::run(Scenario::load(&path, None).unwrap())
        .await
        .unwrap();
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert!(report
        .events
        .iter()
        .any(|e| e.kind == Kind::Ephemeral && e.who.as_deref() == Some("U0PRODOWNR")));
}

#[test]
fn the_cli_prints_a_timeline_or_json_and_names_a_bad_line() {
    let bin = env!("CARGO_BIN_EXE_servo-sla-bot");
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios/medium-extension-approved.toml");
    let out = Command::new(bin)
        .arg("simulate")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("09:00  +0:00  DM @Dana"), "{text}");
    assert!(text.contains("[Approve] [Reject]"), "{text}");
    assert!(
        text.contains("Servo                              orders: deadline moved"),
        "{text}"
    );

    let out = Command::new(bin)
        .args(["simulate", "--json"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(out.status.success());
    let calls: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let posts: Vec<&serde_json::Value> = calls
        .iter()
        .filter(|c| c["method"] == "chat.postMessage")
        .collect();
    assert!(posts.len() >= 5, "{calls:#?}");
    assert!(posts
        .iter()
        .all(|c| c["outcome"] == "ok" && c["body"]["channel"].is_string()));
    assert!(
        posts[0]["body"]["attachments"][0]["blocks"].is_array(),
        "sent as Slack gets it"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "\n[[action]]\nat = \"+5m\"\nuser = \"U0ONCALL1\"\nclick = \"Acknowledge\"\njob = \"ordrs\"\n",
    );
    let out = Command::new(bin)
        .arg("simulate")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("scenario.toml:24: unknown job `ordrs`"),
        "{err}"
    );
}

#[tokio::test]
async fn the_forecast_sees_parallel_partitions_where_servos_average_does_not() {
    // Four partitions at once: Servo's `remaining x average duration` is four
    // times too late (High risk); the forecast from completions per hour is
    // about 20 minutes late (Low), and the alert says the two disagree.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parallel.toml");
    std::fs::write(
        &path,
        "run_for = \"10m\"\n".to_string()
            + &CONFIG.replace(
                "partitions = 147\nstart = \"-1h\"\npartition_time = \"2m\"\ndeadline = \"+3h\"",
                "partitions = 200\nparallelism = 4\nstart = \"-1h\"\npartition_time = \"4m\"\ndeadline = \"+2h\"",
            ),
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("parallelism = 4"), "the job was rewritten");
    let r = sim::run(Scenario::load(&path, None).unwrap())
        .await
        .unwrap();
    let alert = find(&r, Kind::Message, "SLA risk*: *revenue_orders");
    assert_eq!(alert.len(), 1, "{:#?}", r.events);
    assert!(
        alert[0].text.contains("*Low SLA risk*"),
        "{}",
        alert[0].text
    );
    assert!(alert[0].text.contains("likely by"), "{}", alert[0].text);
    assert!(
        alert[0].text.contains("Servo's own estimate")
            && alert[0].text.contains("later than the forecast"),
        "{}",
        alert[0].text
    );
    assert!(pages(&r).is_empty(), "Low does not page the Standard tier");
}

#[tokio::test]
async fn with_the_forecast_turned_off_risk_is_judged_on_servos_eta() {
    // The job of the test above, with `risk.forecast = false`: Servo's
    // `remaining x average duration` (four times too late) is what risk is
    // judged on, High; the alert shows no forecast of the bot's own.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parallel_off.toml");
    let body = CONFIG
        .replace(
            "partitions = 147\nstart = \"-1h\"\npartition_time = \"2m\"\ndeadline = \"+3h\"",
            "partitions = 200\nparallelism = 4\nstart = \"-1h\"\npartition_time = \"4m\"\ndeadline = \"+2h\"",
        )
        .replace(
            "poll_interval = \"5m\"\n",
            "poll_interval = \"5m\"\n[config.risk]\nforecast = false\n",
        );
    assert!(body.contains("parallelism = 4") && body.contains("forecast = false"));
    std::fs::write(&path, "run_for = \"10m\"\n".to_string() + &body).unwrap();
    let r = sim::run(Scenario::load(&path, None).unwrap())
        .await
        .unwrap();
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let alert = find(&r, Kind::Message, "SLA risk*: *revenue_orders");
    assert_eq!(alert.len(), 1, "{:#?}", r.events);
    assert!(
        alert[0].text.contains("*High SLA risk*"),
        "{}",
        alert[0].text
    );
    assert!(
        !alert[0].text.contains("likely by"),
        "no P50/P90 of the bot's own: {}",
        alert[0].text
    );
}

#[tokio::test]
async fn finished_jobs_calibrate_the_forecast_for_their_asset_and_status_reports_its_accuracy() {
    // Three jobs of one asset slow down half-way, after the forecast recorded
    // at a quarter done: they take longer than that forecast said. The fourth
    // job's status card, asked when it is about a quarter done, reports the
    // accuracy and the correction learned from them at that checkpoint.
    let job = |name: &str, start: i64| {
        format!(
            "[[job]]\nname = \"{name}\"\nasset = \"revenue_orders\"\npartitions = 40\nstart = \"+{start}m\"\n\
             partition_time = \"1m\"\npace = [ {{ at = \"+{}m\", partition_time = \"2m\" }} ]\n\
             deadline = \"+{}m\"\npriority = 5\n\n",
            start + 20,
            start + 50
        )
    };
    let config = CONFIG.split("[[job]]").next().unwrap();
    let body = format!(
        "run_for = \"4h\"\n{config}{}{}{}{}[[action]]\nat = \"+3h41m\"\nuser = \"U0ONCALL1\"\ncommand = \"status {{d}}\"\nchannel = \"C0ACMEALRT\"\n",
        job("a", 0),
        job("b", 70),
        job("c", 140),
        job("d", 210)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calibration.toml");
    std::fs::write(&path, body).unwrap();
    let r = sim::run(Scenario::load(&path, None).unwrap())
        .await
        .unwrap();
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let card = r
        .events
        .iter()
        .find(|e| e.kind == Kind::Ephemeral && e.minute == 221)
        .unwrap_or_else(|| panic!("the status card: {:#?}", r.events));
    assert!(
        card.text.contains("Forecast accuracy for revenue_orders")
            && card.text.contains("over 3 finished jobs"),
        "{}",
        card.text
    );
    assert!(
        card.text.contains("corrected for jobs taking ×1."),
        "{}",
        card.text
    );
    assert!(
        card.text.contains("Servo's own estimate (Mon "),
        "a readable time, not an escaped date token: {}",
        card.text
    );
}

#[tokio::test]
async fn a_handoff_in_the_middle_of_an_escalation_pages_the_new_person_and_the_old_one_acknowledges(
) {
    let r = run_example("oncall-handoff.toml").await;
    let p = pages(&r);
    assert_eq!(
        p,
        vec![
            (0, "DM @Dana".to_string()),
            (15, "DM @Lee".to_string()),
            (45, "DM @Sam".to_string())
        ],
        "round 2 pages Sam, on call since 09:10, and not Dana again"
    );
    assert_eq!(
        find(&r, Kind::Message, "Handoff on `acme-primary`").len(),
        1
    );
    assert_eq!(find(&r, Kind::Message, "Acknowledged by @Dana").len(), 1);
    assert_eq!(find(&r, Kind::Ephemeral, "then Sam").len(), 1);
}

#[tokio::test]
async fn a_late_job_threatening_a_scheduled_report_says_so_and_tells_its_owner() {
    let r = run_example("late-job-threatens-report.toml").await;
    let alerts = find(&r, Kind::Message, "High SLA risk*: *revenue_orders");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0].text;
    assert!(alert.contains("*Downstream impact*"), "{alert}");
    assert!(
        alert.contains("`finance_daily` runs Mon 12:00 UTC, before this job is likely done"),
        "{alert}"
    );
    assert!(!alert.contains("board_weekly"), "after the P90: {alert}");
    let dms: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| e.kind == Kind::Message && e.place == "DM @Fran")
        .collect();
    assert_eq!(dms.len(), 1, "one DM to the report's owner: {dms:#?}");
    assert!(dms[0].text.contains("it feeds yours"), "{}", dms[0].text);
    assert_eq!(
        find(&r, Kind::Message, "Finance team (`exec_dashboard`)").len(),
        1,
        "a team's name is named in the thread"
    );
    assert!(
        r.events
            .iter()
            .any(|e| e.text.contains("no longer wait on this job")),
        "the section says resolved"
    );
}
