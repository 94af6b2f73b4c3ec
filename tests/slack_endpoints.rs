//! The HTTP surface: signatures, slash command help, url_verification,
//! events handled once, health, readiness and metrics.

mod common;

use common::bot::{form, now_unix, slack_signature, spawn_app, Backend, SIGNING_SECRET};
use serde_json::json;

const FORM: &str = "application/x-www-form-urlencoded";

fn help_form() -> String {
    form(&[
        ("command", "/backfill"),
        ("text", "help"),
        ("user_id", "U0TESTER"),
        ("channel_id", "C0ACMEALERT"),
        ("response_url", "http://127.0.0.1:9/unused"),
    ])
}

#[tokio::test]
async fn unsigned_requests_get_401_on_every_slack_route() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
        let answer = app
            .post_raw(path, FORM, help_form().into_bytes(), &[])
            .await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
    }
}

#[tokio::test]
async fn a_forged_signature_gets_401() {
    let app = spawn_app(Backend::Sqlite).await;
    let ts = now_unix().to_string();
    let body = help_form();
    let forged = slack_signature("not-the-signing-secret", &ts, body.as_bytes());
    let answer = app
        .post_raw(
            "/slack/commands",
            FORM,
            body.into_bytes(),
            &[
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", forged),
            ],
        )
        .await;
    assert_eq!(answer.status, 401);
    assert!(!answer.body.contains("Usage"), "the handler must not run");
}

#[tokio::test]
async fn a_body_changed_after_signing_gets_401() {
    let app = spawn_app(Backend::Sqlite).await;
    let ts = now_unix().to_string();
    let signed = help_form();
    let sig = slack_signature(SIGNING_SECRET, &ts, signed.as_bytes());
    let tampered = signed.replace("help", "pause");
    let answer = app
        .post_raw(
            "/slack/commands",
            FORM,
            tampered.into_bytes(),
            &[
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", sig),
            ],
        )
        .await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn a_request_signed_more_than_five_minutes_ago_is_a_replay_and_gets_401() {
    let app = spawn_app(Backend::Sqlite).await;
    let old = app
        .post_signed_at("/slack/commands", FORM, &help_form(), now_unix() - 301)
        .await;
    assert_eq!(old.status, 401);
    let future = app
        .post_signed_at("/slack/commands", FORM, &help_form(), now_unix() + 301)
        .await;
    assert_eq!(future.status, 401);
    let recent = app
        .post_signed_at("/slack/commands", FORM, &help_form(), now_unix() - 240)
        .await;
    assert_eq!(
        recent.status, 200,
        "four minutes old is inside Slack's window"
    );
}

#[tokio::test]
async fn a_forged_event_reaches_no_handler() {
    let app = spawn_app(Backend::Sqlite).await;
    let event = json!({"type": "event_callback", "event_id": "Ev0FORGED", "event": {"type": "app_mention"}}).to_string();
    let ts = now_unix().to_string();
    let forged = slack_signature("wrong", &ts, event.as_bytes());
    let answer = app
        .post_raw(
            "/slack/events",
            "application/json",
            event.into_bytes(),
            &[
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", forged),
            ],
        )
        .await;
    assert_eq!(answer.status, 401);
    // Had the handler run, it would have recorded the event as delivered.
    let first = app
        .state
        .store
        .first_delivery("event:Ev0FORGED", chrono::Utc::now())
        .await
        .unwrap();
    assert!(first, "the forged event must not have been recorded");
}

#[tokio::test]
async fn a_signed_backfill_help_gets_200_with_usage() {
    let app = spawn_app(Backend::Sqlite).await;
    let answer = app.slash("help", "U0TESTER", "C0ACMEALERT").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v = answer.json();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"].as_str().unwrap().contains("Usage: /backfill"));
    let blocks = v["blocks"].to_string();
    for sub in ["status", "list", "pause", "resume", "extend-deadline"] {
        assert!(
            blocks.contains(&format!("/backfill {sub}")),
            "help mentions {sub}"
        );
    }
}

#[tokio::test]
async fn an_unknown_subcommand_answers_with_usage_naming_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let v = app
        .slash("frobnicate now", "U0TESTER", "C0ACMEALERT")
        .await
        .json();
    assert!(v["text"]
        .as_str()
        .unwrap()
        .contains("Unknown subcommand 'frobnicate'"));
    assert!(v["blocks"].to_string().contains("/backfill status"));
}

#[tokio::test]
async fn an_unknown_subcommands_usage_rendered_once_is_the_same_bytes_as_rendered_afresh() {
    use servo_sla_bot::commands::help;
    let app = spawn_app(Backend::Sqlite).await;
    let long = "x".repeat(70);
    for typed in [
        "frobnicate",
        "<@U0BOSS>&<!channel>",
        "say \"hi\" \\ back",
        "tab\there\u{1}",
        "ünïcødé😀",
        long.as_str(),
    ] {
        let word = servo_sla_bot::domain::job_id::short(typed);
        let mut afresh = help::run(&app.state, Some(&word));
        servo_sla_bot::slack::limits::fit_message(&mut afresh);
        let once = help::unknown_body(&app.state, &word);
        assert_eq!(
            String::from_utf8_lossy(&once),
            serde_json::to_string(&afresh).unwrap(),
            "{typed}"
        );
    }
    // And over HTTP: what was typed, escaped, in a usage answer.
    let v = app.slash("<b>old", "U0TESTER", "C0ACMEALERT").await.json();
    assert!(v["text"]
        .as_str()
        .unwrap()
        .contains("Unknown subcommand '&lt;b&gt;old'"));
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = json!({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let answer = app
        .post_signed("/slack/events", "application/json", &body)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
}

#[tokio::test]
async fn a_retried_event_is_handled_once() {
    let app = spawn_app(Backend::Sqlite).await;
    let body =
        json!({"type": "event_callback", "event_id": "Ev0RETRY", "event": {"type": "app_mention"}})
            .to_string();
    assert_eq!(
        app.post_signed("/slack/events", "application/json", &body)
            .await
            .status,
        200
    );
    assert_eq!(
        app.post_signed("/slack/events", "application/json", &body)
            .await
            .status,
        200
    );
    let again = app
        .state
        .store
        .first_delivery("event:Ev0RETRY", chrono::Utc::now())
        .await
        .unwrap();
    assert!(!again, "the first request recorded the event");
}

#[tokio::test]
async fn malformed_signed_payloads_get_400_not_500() {
    let app = spawn_app(Backend::Sqlite).await;
    let cases = [
        (
            "/slack/commands",
            FORM,
            "this is not a form with fields".to_string(),
        ),
        (
            "/slack/interactions",
            FORM,
            "payload=%7Bnot-json".to_string(),
        ),
        ("/slack/interactions", FORM, "nopayload=1".to_string()),
        ("/slack/interactions", FORM, form(&[("payload", "[1,2]")])),
        (
            "/slack/events",
            "application/json",
            "{\"type\":".to_string(),
        ),
    ];
    for (path, ct, body) in cases {
        let answer = app.post_signed(path, ct, &body).await;
        assert_eq!(answer.status, 400, "{path} {body}: {}", answer.body);
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_read_whole() {
    let app = spawn_app(Backend::Sqlite).await;
    let huge = "text=".to_string() + &"a".repeat(300 * 1024);
    let answer = app.post_signed("/slack/commands", FORM, &huge).await;
    assert_eq!(answer.status, 413);
}

#[tokio::test]
async fn healthz_is_alive_and_readyz_checks_the_store_and_servo() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["status"], "ready");
}

#[tokio::test]
async fn readyz_says_degraded_when_servo_is_unreachable() {
    // Port 9 (discard) is closed here: nothing listens.
    let spec = common::bot::Spawn::new(Backend::Sqlite)
        .servo_url("postgres://bot:secretpw@127.0.0.1:9/servo");
    let app = common::bot::spawn(spec).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    let v = ready.json();
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["store"], "ok");
    assert_ne!(v["servo"], "ok");
    assert!(!ready.body.contains("secretpw"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_outcome() {
    let app = spawn_app(Backend::Sqlite).await;
    app.slash("help", "U0TESTER", "C0ACMEALERT").await;
    app.slash("help", "U0TESTER", "C0ACMEALERT").await;
    app.post_raw("/slack/commands", FORM, help_form().into_bytes(), &[])
        .await;
    let ok = app
        .metric(r#"servo_sla_bot_http_requests_total{route="/slack/commands",outcome="ok"}"#)
        .await;
    let refused = app
        .metric(
            r#"servo_sla_bot_http_requests_total{route="/slack/commands",outcome="unauthorized"}"#,
        )
        .await;
    assert_eq!(ok, 2.0);
    assert_eq!(refused, 1.0);
    let text = app.get("/metrics").await.body;
    // OpenMetrics names a counter's family without `_total`; its samples keep it.
    assert!(text.contains("# TYPE servo_sla_bot_http_requests counter"));
    assert!(text.ends_with("# EOF\n"));
}
