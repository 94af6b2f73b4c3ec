//! The HTTP routes. Slack's three routes sit behind the signature layer
//! ([`crate::edge::verify`]); the handlers below only ever see verified bodies,
//! parse them and hand them to [`crate::edge::handlers`], which Socket Mode
//! ([`crate::edge::socket`]) calls too.

use crate::commands::SlashForm;
use crate::context::socket_status::SocketState;
use crate::context::AppState;
use crate::edge::handlers::{self, Ack};
use crate::edge::verify::{self, VerifyLayerState};
use crate::runtime::metrics::{CounterSeries, HistogramSeries, Metrics};
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Slack's payloads are a few KB; refuse anything absurd before reading it.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Every route, for the request metrics' series.
const ROUTES: [&str; 7] = [
    "/slack/commands",
    "/slack/interactions",
    "/slack/events",
    "/healthz",
    "/readyz",
    "/metrics",
    "/alertmanager",
];

/// The handlers share the state behind one `Arc`: extracting it per request
/// is one reference count, not a clone of every field.
type Shared = Arc<AppState>;

pub fn router(state: AppState, verify: VerifyLayerState) -> Router {
    let edge = Arc::new(Edge {
        verify,
        requests: RequestSeries::new(state.metrics.clone()),
    });
    // One layer per request: Slack's routes are counted and verified by the
    // same one, the others only counted.
    let slack = Router::new()
        .route(ROUTES[0], post(commands))
        .route(ROUTES[1], post(interactions))
        .route(ROUTES[2], post(events))
        .route_layer(middleware::from_fn_with_state(edge.clone(), slack_layer));
    let rest = Router::new()
        .route(ROUTES[3], get(healthz))
        .route(ROUTES[4], get(readyz))
        .route(ROUTES[5], get(metrics))
        .route(ROUTES[6], post(alertmanager))
        .route_layer(middleware::from_fn_with_state(edge, count_layer));
    Router::new()
        .merge(slack)
        .merge(rest)
        .with_state(Arc::new(state))
}

/// What the layers in front of the routes need.
struct Edge {
    verify: VerifyLayerState,
    requests: RequestSeries,
}

/// A request's outcome, as the request counter labels it.
const OUTCOMES: [&str; 5] = ["ok", "unauthorized", "too_large", "bad_request", "error"];

fn outcome(status: StatusCode) -> usize {
    match status.as_u16() {
        200..=299 => 0,
        401 => 1,
        413 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// One route's series: found on first use (so a series shows once it has
/// counted something, as before) and kept, so counting a request looks
/// nothing up and allocates nothing.
#[derive(Default)]
struct RouteSeries {
    duration: OnceLock<Option<HistogramSeries>>,
    outcomes: [OnceLock<Option<CounterSeries>>; OUTCOMES.len()],
}

struct RequestSeries {
    metrics: Arc<Metrics>,
    routes: HashMap<&'static str, RouteSeries>,
}

const REQUESTS: &str = "servo_sla_bot_http_requests_total";
const DURATION: &str = "servo_sla_bot_http_request_duration_seconds";

impl RequestSeries {
    fn new(metrics: Arc<Metrics>) -> Self {
        let routes = ROUTES
            .iter()
            .map(|r| (*r, RouteSeries::default()))
            .collect();
        Self { metrics, routes }
    }

    /// Counts a request by route and outcome, and its duration by route.
    fn count(&self, matched: Option<&MatchedPath>, started: Instant, status: StatusCode) {
        let route = matched.map_or("unmatched", MatchedPath::as_str);
        let seconds = started.elapsed().as_secs_f64();
        let o = outcome(status);
        let Some((route, series)) = self.routes.get_key_value(route) else {
            self.metrics.observe(DURATION, &[("route", route)], seconds);
            self.metrics
                .inc(REQUESTS, &[("route", route), ("outcome", OUTCOMES[o])]);
            return;
        };
        let duration = series
            .duration
            .get_or_init(|| self.metrics.histogram_series(DURATION, &[("route", route)]));
        if let Some(h) = duration {
            h.observe(seconds);
        }
        let counter = series.outcomes[o].get_or_init(|| {
            self.metrics
                .counter_series(REQUESTS, &[("route", route), ("outcome", OUTCOMES[o])])
        });
        if let Some(c) = counter {
            c.inc_by(1.0);
        }
    }
}

/// Slack's routes: counted, and verified before the handler runs.
async fn slack_layer(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    // A clone of the matched path shares its string: nothing is allocated.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = verify::verified(&edge.verify, req, next).await;
    edge.requests
        .count(matched.as_ref(), started, response.status());
    response
}

/// The other routes: counted.
async fn count_layer(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(req).await;
    edge.requests
        .count(matched.as_ref(), started, response.status());
    response
}

/// A 400 that says what was wrong with the request, for Slack's logs.
fn bad_request(what: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, what.into()).into_response()
}

/// The HTTP form of an [`Ack`].
fn respond(ack: Ack) -> Response {
    match ack {
        Ack::Empty => StatusCode::OK.into_response(),
        Ack::Body(body) => Json(body).into_response(),
        // A static header value: nothing is copied or checked per answer.
        Ack::Bytes(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Ack::Malformed(what) => bad_request(what),
        // A 5xx makes Slack retry later.
        Ack::Retry => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn commands(State(state): State<Shared>, body: Bytes) -> Response {
    // Read in place: a field is decoded when it is asked for.
    let form = match SlashForm::parse(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(format!("malformed slash command form: {e}")),
    };
    respond(handlers::slash_form(&state, &form).await)
}

async fn interactions(State(state): State<Shared>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => return bad_request("an interaction must be a form with a `payload` field"),
    };
    let payload: Value = match serde_json::from_str(&form.payload) {
        Ok(v) => v,
        Err(_) => return bad_request("the interaction payload is not a JSON object"),
    };
    respond(handlers::interaction(&state, payload).await)
}

async fn events(State(state): State<Shared>, body: Bytes) -> Response {
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return bad_request("an event must be a JSON object"),
    };
    respond(handlers::event(&state, event).await)
}

/// The alerts that mean "look now". They carry counts, not job ids.
const NUDGING_ALERTS: [&str; 2] = ["ServoBackfillSLAAtRisk", "ServoBackfillSLABreach"];

/// Alertmanager's webhook (payload version 4): a firing SLA alert starts a
/// poll at once. Authenticated by `ALERTMANAGER_TOKEN` as a bearer token.
async fn alertmanager(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    use subtle::ConstantTimeEq;
    let Some(expected) = &state.alertmanager_token else {
        tracing::warn!("an Alertmanager webhook arrived, but ALERTMANAGER_TOKEN is not set");
        return (
            StatusCode::UNAUTHORIZED,
            "ALERTMANAGER_TOKEN is not set on the bot",
        )
            .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if given
        .as_bytes()
        .ct_eq(expected.expose().as_bytes())
        .unwrap_u8()
        != 1
    {
        return (StatusCode::UNAUTHORIZED, "wrong or missing bearer token").into_response();
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_request("the webhook body is not a JSON object"),
    };
    let Some(alerts) = payload.get("alerts").and_then(Value::as_array) else {
        return bad_request(
            "the webhook body has no `alerts` array (Alertmanager payload version 4)",
        );
    };
    let nudge = alerts.iter().any(|a| {
        let firing = a.get("status").and_then(Value::as_str).unwrap_or("firing") == "firing";
        let name = a
            .pointer("/labels/alertname")
            .and_then(Value::as_str)
            .unwrap_or("");
        firing && NUDGING_ALERTS.contains(&name)
    });
    if nudge {
        tracing::info!("Alertmanager asked for a poll");
        state.poll_wake.notify_one();
    }
    Json(json!({ "poll": nudge })).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when both the bot's store and Servo's database answer and, in
/// Socket Mode, the socket is connected.
async fn readyz(State(state): State<Shared>) -> Response {
    let limit = Duration::from_secs(2);
    let store = match tokio::time::timeout(limit, state.store.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: the store does not answer");
            "unreachable".into()
        }
        Err(_) => "timeout".into(),
    };
    let servo = match tokio::time::timeout(limit, state.servo.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(crate::servo::ServoError::RlsBypass(_))) => {
            "refused: its role bypasses row-level security".into()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: Servo's database does not answer");
            "unreachable".into()
        }
        Err(_) => "timeout".into(),
    };
    // In Socket Mode, Slack's requests arrive only while the socket is up.
    let socket = state.socket.get();
    let socket_ok = matches!(socket, SocketState::Disabled | SocketState::Connected);
    // A worker that keeps panicking (its supervisor restarts it each time).
    let failing = state.workers.failing();
    let ready = store == "ok" && servo == "ok" && socket_ok && failing.is_empty();
    let workers: serde_json::Map<String, serde_json::Value> = failing
        .iter()
        .map(|(w, n)| {
            (
                w.to_string(),
                json!(format!("keeps dying: {n} panics in 10 minutes")),
            )
        })
        .collect();
    let body = json!({
        "status": if ready { "ready" } else { "degraded" },
        "store": store,
        "servo": servo,
        "socket": socket.as_str(),
        "workers": if workers.is_empty() { json!("ok") } else { serde_json::Value::Object(workers) },
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    crate::context::health::export(&state).await;
    (
        [(header::CONTENT_TYPE, crate::runtime::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
