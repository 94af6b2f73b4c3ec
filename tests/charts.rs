//! Charts to Slack: a chart enqueued in the outbox is rendered when it is
//! delivered and uploaded with Slack's external upload flow
//! (`files.getUploadURLExternal`, the bytes to the upload URL,
//! `files.completeUploadExternal`), in an alert's thread or in a channel,
//! exactly once through 429s and 500s. Also the fake Slack's own refusals on
//! that flow, since every other test trusts them.

mod common;

use bytes::Bytes;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use common::bot::{spawn_app, Backend, TestApp};
use common::fake_slack::{FakeSlack, Fault, UPLOAD_CALL};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use servo_sla_bot::slack::charts::{
    chart_upload_message, BurnDown, Chart, ReviewCharts, UPLOAD_METHOD,
};
use servo_sla_bot::store::{NewAlert, NewOutboxMessage};
use std::time::Duration;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const GET_URL: &str = "files.getUploadURLExternal";
const COMPLETE: &str = "files.completeUploadExternal";

fn burn_down(now: DateTime<Utc>) -> Chart {
    let start = now - ChronoDuration::hours(3);
    Chart::BurnDown(BurnDown {
        title: "orders_daily · 3f2a…".into(),
        total: 400,
        done: (0..=18)
            .map(|i| (start + ChronoDuration::minutes(10 * i), i * 12))
            .collect(),
        now,
        p50: Some(now + ChronoDuration::minutes(95)),
        p90: Some(now + ChronoDuration::minutes(150)),
        deadline: now + ChronoDuration::hours(2),
    })
}

fn review() -> Chart {
    Chart::Review(ReviewCharts {
        title: "SLA review · acme · 2026-11-16 to 2026-11-23".into(),
        eta_error_minutes: vec![
            ("25%".into(), Some(40.0), Some(18.0)),
            ("50%".into(), Some(22.0), Some(9.5)),
            ("75%".into(), None, Some(4.0)),
        ],
        by_weekday: [1, 4, 0, 2, 3, 0, 0],
        by_hour: [0; 24],
    })
}

/// An open alert whose root message has been posted, so it has a ts.
async fn posted_alert(app: &TestApp) -> (String, String) {
    let (alert, _) = app
        .state
        .store
        .open_alert(
            NewAlert {
                tenant_id: "acme".into(),
                job_id: "job-1".into(),
                band: servo_sla_bot::domain::risk::RiskBand::High,
                severity: None,
                eta: None,
                deadline: None,
                shown: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let mut root = NewOutboxMessage::call(
        "chat.postMessage",
        json!({"channel": "C0ACMEALERT", "text": "orders_daily is at risk"}),
        "root",
    );
    root.ordering_key = Some(alert.id.clone());
    root.link_kind = Some("alert".into());
    root.link_id = Some(alert.id.clone());
    app.state.enqueue(root).await.unwrap();
    app.slack
        .wait_for_calls("chat.postMessage", 1, Duration::from_secs(10))
        .await;
    app.drain_outbox().await;
    let alert = app.state.store.get_alert(&alert.id).await.unwrap().unwrap();
    (alert.id, alert.ts.expect("the alert was posted"))
}

/// The burn-down as the data side will enqueue it: a reply in the alert's thread.
fn burn_down_in_thread(alert_id: &str) -> NewOutboxMessage {
    let mut msg = chart_upload_message(
        &burn_down(Utc::now()),
        "burn-down.png",
        "orders_daily burn-down",
        "Burn-down: 216 of 400 partitions done; likely done by 16:25 UTC, deadline 16:00 UTC",
        Some("Where orders_daily stands".into()),
    );
    msg.dedup_key = Some(format!("burn-down:{alert_id}"));
    msg.ordering_key = Some(alert_id.to_string());
    msg.thread_alert_id = Some(alert_id.to_string());
    msg.thread_field = Some("thread_ts".into());
    msg
}

fn review_to_channel(channel: &str) -> NewOutboxMessage {
    let mut msg = chart_upload_message(
        &review(),
        "sla-review.png",
        "SLA review · acme",
        "ETA error by progress, at-risk episodes by weekday and hour",
        None,
    );
    msg.payload["channel"] = channel.into();
    msg.dedup_key = Some("review:acme:2026-11-16".into());
    msg
}

async fn charts_arrive_where_they_belong(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alert_id, alert_ts) = posted_alert(&app).await;
    app.state
        .enqueue(burn_down_in_thread(&alert_id))
        .await
        .unwrap();
    app.state
        .enqueue(review_to_channel("C0ACMEINCDT"))
        .await
        .unwrap();
    app.slack.wait_for_files(2, Duration::from_secs(15)).await;
    app.drain_outbox().await;

    let files = app.slack.files();
    assert_eq!(files.len(), 2, "one file each: {files:#?}");
    let chart = files
        .iter()
        .find(|f| f.filename == "burn-down.png")
        .expect("the burn-down arrived");
    assert_eq!(chart.channel, "C0ACMEALERT");
    assert_eq!(chart.thread_ts.as_deref(), Some(alert_ts.as_str()));
    assert_eq!(chart.title, "orders_daily burn-down");
    assert!(chart.alt_text.starts_with("Burn-down: 216 of 400"));
    assert_eq!(
        chart.initial_comment.as_deref(),
        Some("Where orders_daily stands")
    );
    assert!(chart.bytes.starts_with(PNG_SIGNATURE), "a PNG arrives");
    let review = files
        .iter()
        .find(|f| f.filename == "sla-review.png")
        .expect("the review arrived");
    assert_eq!(review.channel, "C0ACMEINCDT");
    assert_eq!(review.thread_ts, None);
    assert_eq!(review.title, "SLA review · acme");
    assert_eq!(review.initial_comment, None);
    assert!(review.bytes.starts_with(PNG_SIGNATURE));

    // One exchange per step per file, each accepted; the URL was asked for
    // with query arguments, not a JSON body.
    for method in [GET_URL, UPLOAD_CALL, COMPLETE] {
        let calls = app.slack.calls_to(method);
        assert_eq!(calls.len(), 2, "{method}: {calls:#?}");
        assert!(calls.iter().all(|c| c.is_ok()), "{method}: {calls:#?}");
    }
    let asked = app.slack.calls_to(GET_URL);
    assert_eq!(
        asked[0].body["length"],
        json!(chart.bytes.len().to_string())
    );
    let sent = app.state.store.list_outbox(Some("sent")).await.unwrap();
    assert_eq!(
        sent.iter().filter(|m| m.method == UPLOAD_METHOD).count(),
        2,
        "{sent:#?}"
    );
    let completed = app
        .metric(r#"servo_sla_bot_slack_api_calls_total{method="files.completeUploadExternal",result="ok"}"#)
        .await;
    assert_eq!(completed, 2.0);
    let uploaded = app
        .metric(r#"servo_sla_bot_slack_api_calls_total{method="upload_url",result="ok"}"#)
        .await;
    assert_eq!(uploaded, 2.0);
}

#[tokio::test]
async fn charts_arrive_once_each_in_the_alert_thread_and_the_channel_on_sqlite() {
    charts_arrive_where_they_belong(Backend::Sqlite).await;
}

#[tokio::test]
async fn charts_arrive_once_each_in_the_alert_thread_and_the_channel_on_postgres() {
    charts_arrive_where_they_belong(Backend::Postgres).await;
}

async fn arrives_once_through_429s_and_500s(backend: Backend) {
    let app = spawn_app(backend).await;
    let limited = Fault::RateLimited {
        retry_after_secs: 1,
    };
    app.slack
        .fail_next(GET_URL, vec![limited.clone(), Fault::ServerError]);
    app.slack
        .fail_next(COMPLETE, vec![limited, Fault::ServerError]);
    app.state
        .enqueue(review_to_channel("C0ACMEALERT"))
        .await
        .unwrap();
    let files = app.slack.wait_for_files(1, Duration::from_secs(20)).await;
    app.drain_outbox().await;
    assert_eq!(app.slack.files().len(), 1, "exactly once: {files:#?}");

    let outcomes = |method: &str| -> Vec<String> {
        app.slack
            .calls_to(method)
            .into_iter()
            .map(|c| c.outcome)
            .collect()
    };
    // The 429 waits and asks again; the 500 starts over. The completion's
    // 429 repeats the completion; its 500 starts over with a new URL.
    assert_eq!(outcomes(GET_URL), ["429", "500", "ok", "ok"]);
    assert_eq!(outcomes(UPLOAD_CALL), ["ok", "ok"]);
    assert_eq!(outcomes(COMPLETE), ["429", "500", "ok"]);
    let limited = app.slack.calls_to(GET_URL);
    assert!(
        limited[1].at.duration_since(limited[0].at) >= Duration::from_millis(950),
        "the retry waited Retry-After"
    );
    // What was shared is the last upload, not the abandoned one.
    let urls: Vec<String> = app
        .slack
        .calls_to(UPLOAD_CALL)
        .iter()
        .map(|c| c.body["file_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files[0].id, urls[1]);
    let sent = app.state.store.list_outbox(Some("sent")).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        app.metric(r#"servo_sla_bot_slack_api_calls_total{method="files.getUploadURLExternal",result="rate_limited"}"#)
            .await,
        1.0
    );
    assert_eq!(
        app.metric(r#"servo_sla_bot_slack_api_calls_total{method="files.completeUploadExternal",result="http_500"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_chart_arrives_once_through_429s_and_500s_on_sqlite() {
    arrives_once_through_429s_and_500s(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_chart_arrives_once_through_429s_and_500s_on_postgres() {
    arrives_once_through_429s_and_500s(Backend::Postgres).await;
}

#[tokio::test]
async fn an_upload_that_keeps_failing_goes_back_to_the_outbox_and_arrives_once() {
    let app = spawn_app(Backend::Sqlite).await;
    // max_attempts is 3: three failed completions end the first delivery.
    app.slack.fail_next(COMPLETE, vec![Fault::ServerError; 3]);
    app.state
        .enqueue(review_to_channel("C0ACMEALERT"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.slack.files().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered: {:#?}",
            app.slack.calls()
        );
        app.state.outbox_wake.notify_one();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.drain_outbox().await;
    assert_eq!(app.slack.files().len(), 1);
    assert_eq!(app.slack.calls_to(COMPLETE).len(), 4);
    let row = &app.state.store.list_outbox(None).await.unwrap()[0];
    assert_eq!(row.status.as_str(), "sent");
    assert_eq!(row.attempts, 2, "one retry by the outbox");
}

#[tokio::test]
async fn a_refused_or_undeliverable_chart_fails_once_with_its_reason() {
    let app = spawn_app(Backend::Sqlite).await;
    // Slack refuses: a thread that does not exist.
    let mut refused = review_to_channel("C0ACMEALERT");
    refused.payload["thread_ts"] = "1700000000.999999".into();
    refused.dedup_key = Some("refused".into());
    app.state.enqueue(refused).await.unwrap();
    // No channel: nowhere to share it.
    let mut nowhere = chart_upload_message(&review(), "r.png", "r", "r", None);
    nowhere.dedup_key = Some("nowhere".into());
    app.state.enqueue(nowhere).await.unwrap();
    // A chart that does not parse (e.g. written by a newer version).
    let mut broken = review_to_channel("C0ACMEALERT");
    broken.payload["chart"] = json!({"kind": "pie", "slices": []});
    broken.dedup_key = Some("broken".into());
    app.state.enqueue(broken).await.unwrap();
    app.drain_outbox().await;

    let failed = app.state.store.list_outbox(Some("failed")).await.unwrap();
    assert_eq!(failed.len(), 3, "{failed:#?}");
    let reason = |key: &str| -> String {
        failed
            .iter()
            .find(|m| m.dedup_key.as_deref() == Some(key))
            .and_then(|m| m.last_error.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("refused").contains("thread_not_found"),
        "{}",
        reason("refused")
    );
    assert!(
        reason("nowhere").contains("no channel"),
        "{}",
        reason("nowhere")
    );
    assert!(
        reason("broken").contains("does not parse"),
        "{}",
        reason("broken")
    );
    assert!(failed.iter().all(|m| m.attempts == 1), "never retried");
    assert!(app.slack.files().is_empty());
    // Only the refused one reached Slack, and only as far as the refusal.
    assert_eq!(app.slack.calls_to(COMPLETE).len(), 1);
    assert_eq!(app.slack.calls_to(GET_URL).len(), 1);
    assert_eq!(
        app.metric(r#"servo_sla_bot_outbox_total{result="failed"}"#)
            .await,
        3.0
    );
}

// ---------------------------------------------------------------------------
// The fake's rules, spoken to directly

struct Raw {
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    slack: FakeSlack,
}

impl Raw {
    async fn new() -> Raw {
        Raw {
            client: Client::builder(TokioExecutor::new()).build_http(),
            slack: FakeSlack::start().await,
        }
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        token: &str,
    ) -> (u16, String) {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header("authorization", format!("Bearer {token}"));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A Web API call with form arguments; Slack's answer.
    async fn form(&self, method: &str, args: &[(&str, &str)]) -> Value {
        self.form_as(method, args, &self.slack.token()).await
    }

    async fn form_as(&self, method: &str, args: &[(&str, &str)], token: &str) -> Value {
        let url = format!("{}{method}", self.slack.base_url());
        let body = serde_urlencoded::to_string(args).unwrap().into_bytes();
        let (status, text) = self
            .send(
                "POST",
                &url,
                Some("application/x-www-form-urlencoded"),
                body,
                token,
            )
            .await;
        assert_eq!(status, 200, "{method}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn json(&self, method: &str, args: Value) -> Value {
        let url = format!("{}{method}", self.slack.base_url());
        let (_, text) = self
            .send(
                "POST",
                &url,
                Some("application/json"),
                args.to_string().into_bytes(),
                &self.slack.token(),
            )
            .await;
        serde_json::from_str(&text).unwrap()
    }

    /// An upload URL and file ID for `length` bytes named `filename`.
    async fn ticket(&self, filename: &str, length: usize) -> (String, String) {
        let answer = self
            .form(
                GET_URL,
                &[("filename", filename), ("length", &length.to_string())],
            )
            .await;
        assert_eq!(answer["ok"], true, "{answer}");
        (
            answer["upload_url"].as_str().unwrap().to_string(),
            answer["file_id"].as_str().unwrap().to_string(),
        )
    }

    async fn upload(&self, url: &str, bytes: &[u8]) -> (u16, String) {
        let token = self.slack.token();
        self.send("POST", url, Some("image/png"), bytes.to_vec(), &token)
            .await
    }

    async fn complete(&self, file_id: &str, channel: Option<&str>) -> Value {
        let mut args = json!({ "files": [{ "id": file_id, "title": "a chart" }] });
        if let Some(c) = channel {
            args["channel_id"] = c.into();
        }
        self.json(COMPLETE, args).await
    }
}

fn png_like(n: usize) -> Vec<u8> {
    let mut bytes = PNG_SIGNATURE.to_vec();
    bytes.resize(n, 7);
    bytes
}

#[tokio::test]
async fn the_fake_asks_for_the_arguments_slack_asks_for() {
    let raw = Raw::new().await;
    let error = |v: Value| v["error"].as_str().unwrap_or("ok").to_string();
    // A JSON body is not read by this method on Slack.
    let json_body = raw
        .json(GET_URL, json!({"filename": "a.png", "length": 10}))
        .await;
    assert_eq!(error(json_body), "invalid_arguments");
    assert_eq!(
        error(raw.form(GET_URL, &[("filename", "a.png")]).await),
        "invalid_arguments"
    );
    assert_eq!(
        error(raw.form(GET_URL, &[("length", "10")]).await),
        "invalid_arguments"
    );
    assert_eq!(
        error(
            raw.form(GET_URL, &[("filename", "a.png"), ("length", "ten")])
                .await
        ),
        "invalid_arguments"
    );
    assert_eq!(
        error(
            raw.form(GET_URL, &[("filename", "a.png"), ("length", "0")])
                .await
        ),
        "missing_argument"
    );
    assert_eq!(
        error(
            raw.form_as(
                GET_URL,
                &[("filename", "a.png"), ("length", "10")],
                "xoxb-wrong"
            )
            .await
        ),
        "invalid_auth"
    );
    let long_alt = "x".repeat(1001);
    assert_eq!(
        error(
            raw.form(
                GET_URL,
                &[
                    ("filename", "a.png"),
                    ("length", "10"),
                    ("alt_txt", &long_alt)
                ]
            )
            .await
        ),
        "alt_txt_too_large"
    );
    // GET with query arguments works, as slack-morphism sends it.
    let url = format!("{}{GET_URL}?filename=a.png&length=10", raw.slack.base_url());
    let (status, text) = raw
        .send("GET", &url, None, Vec::new(), &raw.slack.token())
        .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(answer["upload_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("http://{}/upload/", raw.slack.addr())));
    // GET stays refused where the bot never uses it.
    let url = format!(
        "{}chat.postMessage?channel=C1&text=hi",
        raw.slack.base_url()
    );
    let (status, _) = raw
        .send("GET", &url, None, Vec::new(), &raw.slack.token())
        .await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn the_fake_refuses_unknown_files_wrong_lengths_and_non_pngs() {
    let raw = Raw::new().await;
    let error = |v: Value| v["error"].as_str().unwrap_or("ok").to_string();

    // An upload URL for a file never handed out.
    let bogus = format!("http://{}/upload/F9999999999", raw.slack.addr());
    let (status, _) = raw.upload(&bogus, &png_like(10)).await;
    assert_eq!(status, 404);

    // Bytes that do not match the length given.
    let (url, id) = raw.ticket("chart.png", 100).await;
    let (status, text) = raw.upload(&url, &png_like(99)).await;
    assert_eq!(status, 400, "{text}");
    // Completing before any bytes arrived: nothing to share.
    assert_eq!(error(raw.complete(&id, Some("C1")).await), "file_not_found");
    // The right length is accepted, with Slack's plain-text answer.
    let (status, text) = raw.upload(&url, &png_like(100)).await;
    assert_eq!((status, text.as_str()), (200, "OK - 100"));

    // Completion needs a channel, and names only files handed out.
    assert_eq!(error(raw.complete(&id, None).await), "invalid_arguments");
    assert_eq!(
        error(raw.complete("F0000000404", Some("C1")).await),
        "file_not_found"
    );
    assert_eq!(
        error(raw.json(COMPLETE, json!({"channel_id": "C1"})).await),
        "invalid_arguments"
    );
    assert_eq!(
        error(
            raw.json(
                COMPLETE,
                json!({"files": [{"id": id}], "channel_id": "C1", "thread_ts": "1.000001"})
            )
            .await
        ),
        "thread_not_found"
    );

    // Shared once: a second completion finds no upload.
    let done = raw.complete(&id, Some("C1")).await;
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["files"][0]["id"], id.as_str());
    assert_eq!(error(raw.complete(&id, Some("C1")).await), "file_not_found");
    // And its upload URL is gone with it.
    let (status, _) = raw.upload(&url, &png_like(100)).await;
    assert_eq!(status, 404);

    // A .png that is not a PNG.
    let (url, id) = raw.ticket("chart.png", 12).await;
    let (status, _) = raw.upload(&url, b"hello world!").await;
    assert_eq!(status, 200);
    assert_eq!(
        error(raw.complete(&id, Some("C1")).await),
        "file_type_not_allowed"
    );

    // A multipart upload works as well as raw bytes.
    let (url, id) = raw.ticket("other.png", 20).await;
    let boundary = "XyZzY";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"other.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png_like(20));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let token = raw.slack.token();
    let (status, text) = raw
        .send(
            "POST",
            &url,
            Some(&format!("multipart/form-data; boundary={boundary}")),
            body,
            &token,
        )
        .await;
    assert_eq!((status, text.as_str()), (200, "OK - 20"));
    assert_eq!(raw.complete(&id, Some("C2")).await["ok"], true);

    let files = raw.slack.files();
    assert_eq!(files.len(), 2, "{files:#?}");
    assert_eq!(files[0].channel, "C1");
    assert_eq!(files[0].title, "a chart");
    assert_eq!(files[1].channel, "C2");
    assert_eq!(files[1].bytes, png_like(20));
}
