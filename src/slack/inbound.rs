//! The HTTP routes. Slack's three routes sit behind the signature layer
//! ([`super::verify`]); the handlers below only ever see verified bodies.

use crate::app::AppState;
use crate::commands::{self, Command, SlashCommand};
use crate::slack::verify::{verify_slack_request, VerifyLayerState};
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Duration;

/// Slack shows an error if the answer takes more than 3 s; answer from here
/// on and send the real answer to `response_url` when it is ready.
const ACK_BUDGET: Duration = Duration::from_millis(2_500);
/// Slack's payloads are a few KB; refuse anything absurd before reading it.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn router(state: AppState, verify: VerifyLayerState) -> Router {
    let slack = Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .route_layer(middleware::from_fn_with_state(verify, verify_slack_request));
    Router::new()
        .merge(slack)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/alertmanager", post(alertmanager))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Counts every routed request by route and outcome.
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status();
    let outcome = match status.as_u16() {
        200..=299 => "ok",
        401 => "unauthorized",
        413 => "too_large",
        400..=499 => "bad_request",
        _ => "error",
    };
    state.metrics.inc(
        "servo_sla_bot_http_requests_total",
        &[("route", &route), ("outcome", outcome)],
    );
    response
}

/// A 400 that says what was wrong with the request, for Slack's logs.
fn bad_request(what: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, what.into()).into_response()
}

async fn commands(State(state): State<AppState>, body: Bytes) -> Response {
    let cmd: SlashCommand = match serde_urlencoded::from_bytes(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(format!("malformed slash command form: {e}")),
    };
    tracing::info!(user = %cmd.user_id, channel = %cmd.channel_id, text = %cmd.text, "slash command");
    let parsed = Command::parse(&cmd.text);
    // Help, the most common command, is the same bytes for everyone.
    if parsed.command == Command::Help {
        let body = state
            .help_body
            .get_or_init(|| {
                serde_json::to_vec(&commands::help::run(&state, None))
                    .unwrap_or_default()
                    .into()
            })
            .clone();
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    // A status card asked for again within seconds is the same bytes.
    if let Command::Status(id) = parsed.command {
        if let Some(body) =
            commands::jobs::status_from_memory(&state, id, parsed.tenant.as_deref(), &cmd).await
        {
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
    }
    // Mistakes are answered from memory too: no task, no timeout.
    if matches!(
        parsed.command,
        Command::Help | Command::Unknown(_) | Command::Invalid(_)
    ) {
        return Json(commands::run(&state, parsed, &cmd).await).into_response();
    }
    let response_url = cmd.response_url.clone();
    let task_state = state.clone();
    let mut task = tokio::spawn(async move { commands::run(&task_state, parsed, &cmd).await });
    match tokio::time::timeout(ACK_BUDGET, &mut task).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "slash command task failed");
            Json(json!({
                "response_type": "ephemeral",
                "text": ":warning: Something went wrong on our side; nothing was changed. Try again, and tell the bot's operators if it persists."
            }))
            .into_response()
        }
        Err(_) => {
            // Too slow for Slack's 3 s: acknowledge now, answer later.
            let slack = state.slack.clone();
            tokio::spawn(async move {
                match task.await {
                    Ok(answer) if !response_url.is_empty() => {
                        if let Err(e) = slack.respond(&response_url, &answer).await {
                            tracing::warn!(error = %e, "could not deliver a late slash command answer");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "slash command task failed"),
                }
            });
            Json(json!({
                "response_type": "ephemeral",
                "text": ":hourglass_flowing_sand: Working on it; the answer follows in a moment."
            }))
            .into_response()
        }
    }
}

async fn interactions(State(state): State<AppState>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => return bad_request("an interaction must be a form with a `payload` field"),
    };
    let payload: Value = match serde_json::from_str(&form.payload) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_request("the interaction payload is not a JSON object"),
    };
    match crate::actions::handle(&state, payload).await {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => StatusCode::OK.into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

async fn events(State(state): State<AppState>, body: Bytes) -> Response {
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_request("an event must be a JSON object"),
    };
    match event.get("type").and_then(Value::as_str) {
        Some("url_verification") => match event.get("challenge").and_then(Value::as_str) {
            Some(challenge) => Json(json!({ "challenge": challenge })).into_response(),
            None => bad_request("url_verification without a challenge"),
        },
        Some("event_callback") => {
            let Some(id) = event.get("event_id").and_then(Value::as_str) else {
                return bad_request("event_callback without an event_id");
            };
            // Slack retries events it thinks we missed: handle each once.
            match state
                .store
                .first_delivery(&format!("event:{id}"), state.clock.now())
                .await
            {
                Ok(true) => {
                    tracing::info!(event_id = id, "Slack event received");
                    StatusCode::OK.into_response()
                }
                Ok(false) => {
                    tracing::info!(event_id = id, "Slack event already handled (a retry)");
                    StatusCode::OK.into_response()
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record a Slack event");
                    // A 5xx makes Slack retry later, which is what we want.
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                }
            }
        }
        _ => StatusCode::OK.into_response(),
    }
}

/// The alerts that mean "look now". They carry counts, not job ids.
const NUDGING_ALERTS: [&str; 2] = ["ServoBackfillSLAAtRisk", "ServoBackfillSLABreach"];

/// Alertmanager's webhook (payload version 4): a firing SLA alert starts a
/// poll at once. Authenticated by `ALERTMANAGER_TOKEN` as a bearer token.
async fn alertmanager(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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

/// Ready when both the bot's store and Servo's database answer.
async fn readyz(State(state): State<AppState>) -> Response {
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
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: Servo's database does not answer");
            "unreachable".into()
        }
        Err(_) => "timeout".into(),
    };
    let ready = store == "ok" && servo == "ok";
    let body = json!({
        "status": if ready { "ready" } else { "degraded" },
        "store": store,
        "servo": servo,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
