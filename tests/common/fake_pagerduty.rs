//! A fake PagerDuty Events API v2 on 127.0.0.1: accepts `POST /v2/enqueue`,
//! checks the event's shape as PagerDuty does, answers 202, records events.
//! It serves the REST API's `GET /oncalls` too (issue 36), as PagerDuty
//! documents it: `Authorization: Token token=…`, `schedule_ids[]`,
//! `include[]=users` for the users' emails, a 401 without a token, and a
//! 503 while it is made to be down.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct FakePagerDuty {
    events: Arc<Mutex<Vec<Value>>>,
    rest: Rest,
    url: String,
}

/// Who each schedule puts on call: (name, email) pairs.
type OnCalls = std::collections::HashMap<String, Vec<(String, String)>>;

/// The REST API's state: who each schedule puts on call (name, email),
/// whether it is down, how many times `/oncalls` was asked.
#[derive(Clone, Default)]
struct Rest {
    oncalls: Arc<Mutex<OnCalls>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    asked: Arc<std::sync::atomic::AtomicUsize>,
}

async fn oncalls(
    State(rest): State<Rest>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> (StatusCode, Json<Value>) {
    use std::sync::atomic::Ordering;
    rest.asked.fetch_add(1, Ordering::SeqCst);
    if rest.down.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"message": "Service Unavailable", "code": 2001}})),
        );
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Token token=") && v.len() > 12);
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Authentication failed", "code": 2006}})),
        );
    }
    let query = query.unwrap_or_default();
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.replace("%5B%5D", "[]"), v.to_string()))
        .collect();
    let with_users = params.iter().any(|(k, v)| k == "include[]" && v == "users");
    let map = rest.oncalls.lock().unwrap().clone();
    let mut out = Vec::new();
    for (k, schedule) in &params {
        if k != "schedule_ids[]" {
            continue;
        }
        for (i, (name, email)) in map.get(schedule).into_iter().flatten().enumerate() {
            let id = format!("PU{i}{}", schedule.len());
            // Without include[]=users a user is a reference, with no email.
            let user = if with_users {
                json!({"id": id, "type": "user", "name": name, "email": email, "summary": name,
                       "self": format!("https://api.pagerduty.com/users/{id}"),
                       "html_url": format!("https://example.pagerduty.com/users/{id}")})
            } else {
                json!({"id": id, "type": "user_reference", "summary": name,
                       "self": format!("https://api.pagerduty.com/users/{id}"),
                       "html_url": format!("https://example.pagerduty.com/users/{id}")})
            };
            out.push(json!({
                "escalation_policy": {"id": "PEP0001", "type": "escalation_policy_reference", "summary": "Team"},
                "escalation_level": 1,
                "schedule": {"id": schedule, "type": "schedule_reference", "summary": format!("Schedule {schedule}")},
                "user": user,
                "start": "2026-12-07T09:00:00Z",
                "end": "2026-12-14T09:00:00Z"
            }));
        }
    }
    let total = out.len();
    (
        StatusCode::OK,
        Json(json!({"oncalls": out, "limit": 25, "offset": 0, "more": false, "total": total})),
    )
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
        let rest = Rest::default();
        let app = Router::new()
            .route("/v2/enqueue", post(enqueue))
            .with_state(events.clone())
            .merge(
                Router::new()
                    .route("/oncalls", get(oncalls))
                    .with_state(rest.clone()),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePagerDuty { events, rest, url }
    }

    /// Who schedule `id` puts on call: (name, email) pairs.
    pub fn set_oncall(&self, schedule: &str, people: &[(&str, &str)]) {
        self.rest.oncalls.lock().unwrap().insert(
            schedule.to_string(),
            people
                .iter()
                .map(|(n, e)| (n.to_string(), e.to_string()))
                .collect(),
        );
    }

    /// Makes the REST API answer 503 (or answer again).
    pub fn set_down(&self, down: bool) {
        self.rest
            .down
            .store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many times `/oncalls` was asked.
    pub fn oncalls_asked(&self) -> usize {
        self.rest.asked.load(std::sync::atomic::Ordering::SeqCst)
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
