//! A fake PagerDuty Events API v2 on 127.0.0.1: accepts `POST /v2/enqueue`,
//! checks the event's shape as PagerDuty does, answers 202, records events.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct FakePagerDuty {
    events: Arc<Mutex<Vec<Value>>>,
    url: String,
}

async fn enqueue(
    State(events): State<Arc<Mutex<Vec<Value>>>>,
    Json(event): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let action = event["event_action"].as_str().unwrap_or_default();
    // PagerDuty's rules: a summary of at most 1024 characters, a source and
    // a severity; `links` (optional) each an object with an `href` URL.
    let links_ok = match event.get("links") {
        None => true,
        Some(Value::Array(links)) => links.iter().all(|l| {
            l["href"]
                .as_str()
                .is_some_and(|h| h.starts_with("https://") || h.starts_with("http://"))
                && l.get("text").is_none_or(Value::is_string)
        }),
        Some(_) => false,
    };
    let valid = event["routing_key"].as_str().is_some_and(|k| !k.is_empty())
        && ["trigger", "acknowledge", "resolve"].contains(&action)
        && (action != "trigger"
            || (event["payload"]["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.chars().count() <= 1024)
                && event["payload"]["source"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
                && ["critical", "error", "warning", "info"]
                    .contains(&event["payload"]["severity"].as_str().unwrap_or(""))
                && links_ok
                && event["payload"]
                    .get("custom_details")
                    .is_none_or(Value::is_object)))
        && (action == "trigger" || event["dedup_key"].is_string());
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "invalid event", "message": "Event object is invalid"})),
        );
    }
    let dedup = event["dedup_key"].clone();
    events.lock().unwrap().push(event);
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup})),
    )
}

impl FakePagerDuty {
    pub async fn start() -> FakePagerDuty {
        let events = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v2/enqueue", post(enqueue))
            .with_state(events.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePagerDuty { events, url }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}

/// A PagerDuty that answers `202 Accepted` with its headers at once, then
/// sends one byte of a body it says is longer and never the rest, holding
/// the connection open: what a client reading the body with no deadline
/// waits on for ever. Returns the URL to post events to.
pub async fn start_stalling_body() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 16 * 1024];
                let _ = conn.read(&mut request).await;
                let head = "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\
                            content-length: 100\r\n\r\n{";
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.flush().await;
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                drop(conn);
            });
        }
    });
    url
}
