//! Every message template, rendered with sample data, is accepted by the fake
//! Slack, which enforces Slack's Block Kit limits.

mod common;

use common::fake_slack::FakeSlack;
use serde_json::{json, Value};
use servo_sla_bot::config::SlackTuning;
use servo_sla_bot::domain::secret::Secret;
use servo_sla_bot::runtime::metrics::Metrics;
use servo_sla_bot::slack::api::SlackApi;
use servo_sla_bot::slack::render::{Templates, TEMPLATES};
use std::sync::Arc;

fn long(n: usize) -> String {
    "x".repeat(n)
}

/// Sample data for each template, with long user-supplied values where the
/// template must still fit.
fn sample(name: &str) -> Value {
    let token = "<!date^1795875600^{date_short_pretty} at {time}|2026-11-28 14:20 UTC>";
    match name {
        "help" => {
            json!({"unknown": "frobnicate", "runbook_url": "https://docs.servo.io/runbooks/backfill-sla-risk"})
        }
        "alert" => json!({
            "band": "high", "headline": "High SLA risk", "emoji": ":red_circle:", "colour": "#E01E5A",
            "asset": long(255), "job_id": "7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10", "state": "running",
            "completed": 50, "failed": 3, "total": 100, "eta_token": token, "eta_fallback": "2026-11-28 14:20 UTC",
            "deadline_token": token, "deadline_fallback": "2026-11-28 14:20 UTC", "severity": "ETA 1 h 3 min after the deadline, 1 h 40 min left (severity 63%)",
            "tier": "Critical", "priority": 9,
            "bottlenecks": ["Partition durations rising: recent 2.1× earlier", "3 failed vs 50 completed partitions (6%)", "Waiting on 2 upstream jobs"],
            "outcome": "Acknowledged by <@U1>",
            "buttons": [
                {"action_id": "alert_ack", "text": "Acknowledge", "value": "a1b2", "style": "primary", "confirm": null},
                {"action_id": "mitigate_recreate", "text": "Recreate with priority 10", "value": "a1b2", "style": "danger",
                 "confirm": {"title": "Recreate at priority 10?", "text": "The job is cancelled and restarted.", "confirm": "Recreate", "deny": "Keep the job"}}
            ],
            "status_line": "High · Critical tier", "runbook_url": "https://docs.servo.io/runbooks/backfill-sla-risk"
        }),
        "thread_note" => json!({"text": long(2900)}),
        "job_card" => json!({
            "asset": long(255), "job_id": "7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10", "state": "paused",
            "completed": 1, "failed": 0, "skipped": 0, "total": 2, "emoji": ":large_yellow_circle:", "band_label": "Low",
            "eta": token, "deadline": token, "severity": "ETA 12 min after the deadline, 1 h 40 min left (severity 12%)", "priority": -3, "tier": "Below best effort",
            "bottlenecks": [], "alert_link": "<https://slack.com/archives/C1/p1|Alert thread>", "tenant": "acme",
            "runbook_url": "https://docs.servo.io/runbooks/backfill-sla-risk"
        }),
        "job_list" => {
            json!({"title": "3 active jobs", "chunks": [long(2800), long(2800)], "footer": "1 more not shown"})
        }
        "approval_request" => json!({
            "asset": long(255), "job_id": "7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10", "stakeholders": "<@U0PROD> <!subteam^S0ONCALL>",
            "requested_by": "U0REQ", "reason": long(1000), "current": token, "current_fallback": "2026-11-28 14:20 UTC",
            "proposed": token, "proposed_fallback": "2026-11-28 18:20 UTC", "eta": token,
            "new_band": ":large_green_circle: On track", "current_band": ":red_circle: High",
            "approval_id": "b1c2", "outcome": null, "expires": token
        }),
        // The most a notice carries: the tight-deadline list (40 jobs and a "more" line).
        "notice" => {
            json!({"text": long(2000), "headline": long(2900), "lines": vec![long(2900); 41]})
        }
        "review" => json!({
            "response_type": "ephemeral", "text": long(2000), "title": long(150), "period": long(2900),
            "sections": vec![long(2900); 20]
        }),
        // A storm's roll-up at its largest.
        "rollup" => json!({
            "text": long(2000), "headline": long(150), "counts": long(300), "jobs": long(2900),
            "signals": long(1000), "footer": long(300),
            "others": vec![long(2800); servo_sla_bot::flows::rollup::OTHERS_SECTIONS],
            "ack": "f47ac10b-58cc-4372-a567-0e02b2c3d479"
        }),
        other => panic!("no sample data for template {other}: add it here"),
    }
}

#[tokio::test]
async fn every_template_renders_within_slacks_limits() {
    let slack = FakeSlack::start().await;
    let api = SlackApi::new(
        &slack.base_url(),
        &Secret::new(slack.token()),
        SlackTuning::default(),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let templates = Templates::load().unwrap();
    for (name, _) in TEMPLATES {
        let mut message = templates
            .render(name, &sample(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            message["text"].as_str().is_some_and(|t| !t.is_empty()),
            "{name} has a top-level text"
        );
        message["channel"] = "C0ACMEALERT".into();
        // The client cuts any message to Slack's limits before it goes; a
        // template must fit on its own, so that cut must change nothing.
        let mut fitted = message.clone();
        servo_sla_bot::slack::limits::fit_message(&mut fitted);
        assert_eq!(fitted, message, "{name} fits only once cut");
        if let Err(e) = api.call("chat.postMessage", &message).await {
            let detail = slack.calls().last().and_then(|c| c.error_detail.clone());
            panic!("{name} was refused: {e}: {detail:?}");
        }
    }
}

#[tokio::test]
async fn a_closed_approval_request_renders_without_buttons() {
    let templates = Templates::load().unwrap();
    let mut data = sample("approval_request");
    data["outcome"] = "Approved by <@U1>".into();
    let v = templates.render("approval_request", &data).unwrap();
    assert!(!v.to_string().contains("extension_approve"));
    assert!(v.to_string().contains("Approved by <@U1>"));
}
