//! Alertmanager's webhook starts a poll at once; the poller also exports
//! at-risk and breached gauges.

mod common;

use chrono::{Duration, Utc};
use common::bot::{spawn, Backend, Spawn};
use common::servo_fixture::{JobSpec, ServoFixture};
use serde_json::json;

fn firing(alertname: &str) -> String {
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "servo-sla-bot",
        "groupLabels": {"alertname": alertname},
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": alertname, "severity": "warning"},
            "annotations": {"summary": "1 backfill job at risk"},
            "startsAt": "2026-11-28T12:00:00Z"
        }]
    })
    .to_string()
}

#[tokio::test]
async fn a_firing_sla_alert_from_alertmanager_starts_a_poll_at_once() {
    let fx = ServoFixture::start().await;
    let mut spec = Spawn::new(Backend::Sqlite).servo_url(&fx.bot_url());
    spec.run_poller = true;
    spec.config = spec
        .config
        .replace("poll_interval = \"60s\"", "poll_interval = \"1h\"");
    let app = spawn(spec).await;
    // The poller's first round finds nothing; then a job goes at risk.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let now = Utc::now();
    fx.job(JobSpec {
        deadline: Some(now + Duration::minutes(60)),
        eta: Some(now + Duration::minutes(120)),
        heartbeat: Some(now),
        ..JobSpec::default()
    })
    .await;
    let answer = app
        .post_raw(
            "/alertmanager",
            "application/json",
            firing("ServoBackfillSLAAtRisk").into_bytes(),
            &[("authorization", "Bearer am-token".to_string())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["poll"], true);
    let posts = app
        .slack
        .wait_for_calls("chat.postMessage", 1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(posts[0].body["channel"], "C0ACMEALERT");
}

#[tokio::test]
async fn the_webhook_needs_the_bearer_token() {
    let app = spawn(Spawn::new(Backend::Sqlite)).await;
    for auth in [None, Some("Bearer wrong"), Some("am-token")] {
        let headers: Vec<(&str, String)> = auth
            .map(|a| ("authorization", a.to_string()))
            .into_iter()
            .collect();
        let answer = app
            .post_raw(
                "/alertmanager",
                "application/json",
                firing("ServoBackfillSLABreach").into_bytes(),
                &headers,
            )
            .await;
        assert_eq!(answer.status, 401, "{auth:?}");
    }
}

#[tokio::test]
async fn other_alerts_and_resolved_ones_do_not_start_a_poll() {
    let app = spawn(Spawn::new(Backend::Sqlite)).await;
    let bearer = [("authorization", "Bearer am-token".to_string())];
    let other = app
        .post_raw(
            "/alertmanager",
            "application/json",
            firing("DiskFull").into_bytes(),
            &bearer,
        )
        .await;
    assert_eq!(other.json()["poll"], false);
    let resolved = firing("ServoBackfillSLABreach").replace("\"firing\"", "\"resolved\"");
    let answer = app
        .post_raw(
            "/alertmanager",
            "application/json",
            resolved.into_bytes(),
            &bearer,
        )
        .await;
    assert_eq!(answer.json()["poll"], false);
    let garbage = app
        .post_raw(
            "/alertmanager",
            "application/json",
            b"{\"nope\":1}".to_vec(),
            &bearer,
        )
        .await;
    assert_eq!(garbage.status, 400);
}

#[tokio::test]
async fn the_poll_exports_at_risk_and_breached_gauges_by_tenant() {
    let fx = ServoFixture::start().await;
    let now = Utc::now();
    let at_risk = |deadline_min: i64, eta_min: i64| JobSpec {
        deadline: Some(now + Duration::minutes(deadline_min)),
        eta: Some(now + Duration::minutes(eta_min)),
        heartbeat: Some(now),
        ..JobSpec::default()
    };
    fx.job(at_risk(60, 120)).await; // high
    fx.job(at_risk(60, 66)).await; // low
    fx.job(at_risk(-5, 30)).await; // breached
    fx.job(at_risk(60, 30)).await; // on track
    let app = spawn(Spawn::new(Backend::Sqlite).servo_url(&fx.bot_url())).await;
    app.poll().await;
    let g = |labels: &str| format!("servo_sla_bot_at_risk_jobs{{{labels}}}");
    assert_eq!(app.metric(&g(r#"tenant="acme",band="high""#)).await, 1.0);
    assert_eq!(app.metric(&g(r#"tenant="acme",band="low""#)).await, 1.0);
    assert_eq!(
        app.metric(&g(r#"tenant="acme",band="breached""#)).await,
        1.0
    );
    assert_eq!(app.metric(&g(r#"tenant="globex",band="high""#)).await, 0.0);
    assert_eq!(
        app.metric(r#"servo_sla_bot_breached_jobs{tenant="acme"}"#)
            .await,
        1.0
    );
}
