//! What goes over the wire: request bodies and arguments read the way Slack
//! reads them, the bearer token checked, and answers turned into HTTP.

use super::Fault;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The answer decided for one request, before it is turned into HTTP.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Value,
    /// Sent as `text/plain` instead of `body` (the upload endpoint's answers).
    pub(super) text: Option<String>,
    pub(super) retry_after: Option<u64>,
    pub(super) hold: Option<Duration>,
    pub(super) outcome: String,
    pub(super) error_detail: Option<String>,
    pub(super) warnings: Vec<String>,
}

impl Answer {
    /// An answer with nothing but its status, JSON body and outcome.
    fn new(status: StatusCode, body: Value, outcome: String) -> Self {
        Answer {
            status,
            body,
            text: None,
            retry_after: None,
            hold: None,
            outcome,
            error_detail: None,
            warnings: Vec::new(),
        }
    }

    pub(super) fn ok(mut body: Value, warnings: Vec<String>) -> Self {
        if !warnings.is_empty() {
            // Slack's convention: a comma-joined `warning` plus the list.
            body["warning"] = json!(warnings.join(","));
            body["response_metadata"] = json!({ "warnings": warnings });
        }
        Answer {
            warnings,
            ..Self::new(StatusCode::OK, body, "ok".into())
        }
    }

    pub(super) fn error(code: &str) -> Self {
        Self::refused(Refusal::new(code))
    }

    pub(super) fn refused(r: Refusal) -> Self {
        let mut body = json!({ "ok": false, "error": r.code });
        if !r.messages.is_empty() {
            body["response_metadata"] = json!({ "messages": r.messages });
        }
        Answer {
            error_detail: r.detail,
            ..Self::new(StatusCode::OK, body, r.code)
        }
    }

    pub(super) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub(super) fn rate_limited(retry_after_secs: u64, detail: Option<String>) -> Self {
        Answer {
            retry_after: Some(retry_after_secs),
            error_detail: detail,
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "ok": false, "error": "ratelimited" }),
                "429".into(),
            )
        }
    }

    pub(super) fn fault(fault: Fault) -> Self {
        match fault {
            Fault::RateLimited { retry_after_secs } => {
                Self::rate_limited(retry_after_secs, Some("injected fault".into()))
            }
            Fault::ServerError => Answer {
                outcome: "500".into(),
                error_detail: Some("injected fault".into()),
                ..Self::error("internal_error").with_status(StatusCode::INTERNAL_SERVER_ERROR)
            },
            Fault::Timeout(hold) => Answer {
                hold: Some(hold),
                outcome: "timeout".into(),
                error_detail: Some(format!("injected fault: held {hold:?}")),
                ..Self::error("request_timeout").with_status(StatusCode::SERVICE_UNAVAILABLE)
            },
            Fault::Error(code) => Answer {
                error_detail: Some("injected fault".into()),
                ..Self::error(&code)
            },
            // Only a Web API call does work before its answer is lost or held.
            Fault::LostAnswer | Fault::HeldAnswer(_) => Answer {
                outcome: "lost_answer".into(),
                error_detail: Some("injected fault: answer lost".into()),
                ..Self::error("request_timeout").with_status(StatusCode::SERVICE_UNAVAILABLE)
            },
        }
    }

    /// A plain-text answer, as Slack's upload endpoint gives.
    pub(super) fn text(
        status: StatusCode,
        text: String,
        outcome: &str,
        detail: Option<String>,
    ) -> Self {
        Answer {
            text: Some(text),
            error_detail: detail,
            ..Self::new(status, Value::Null, outcome.into())
        }
    }

    pub(super) fn into_response(self) -> Response {
        let (bytes, content_type) = match self.text {
            Some(text) => (text.into_bytes(), "text/plain; charset=utf-8"),
            None => (
                serde_json::to_vec(&self.body).expect("a JSON value serialises"),
                "application/json",
            ),
        };
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A successful method result.
pub(super) struct Reply {
    pub(super) body: Value,
    pub(super) warnings: Vec<String>,
}

impl Reply {
    pub(super) fn new(body: Value) -> Self {
        Reply {
            body,
            warnings: Vec::new(),
        }
    }
}

/// An `ok:false` method result.
pub(super) struct Refusal {
    pub(super) code: String,
    pub(super) detail: Option<String>,
    /// Sent as `response_metadata.messages`, as Slack does for schema errors.
    pub(super) messages: Vec<String>,
}

impl Refusal {
    pub(super) fn new(code: &str) -> Self {
        Refusal {
            code: code.into(),
            detail: None,
            messages: Vec::new(),
        }
    }

    pub(super) fn with_messages(code: &str, messages: Vec<String>) -> Self {
        Refusal {
            code: code.into(),
            detail: Some(messages.join("; ")),
            messages,
        }
    }
}

pub(super) struct BodyError {
    pub(super) code: &'static str,
    pub(super) detail: String,
}

/// An unreadable body is refused with its own code, the reason as detail.
impl From<BodyError> for Refusal {
    fn from(e: BodyError) -> Self {
        Refusal {
            detail: Some(e.detail),
            ..Refusal::new(e.code)
        }
    }
}

/// Both content types Slack's Web API takes, as one JSON object.
pub(super) fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, BodyError> {
    // An argument-less call is legitimate whatever its content type.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Err(BodyError {
            code: "missing_post_type",
            detail: "a body without a Content-Type header".into(),
        });
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" => match serde_json::from_slice::<Value>(bytes) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(BodyError {
                code: "json_not_object",
                detail: "the JSON body is not an object".into(),
            }),
            Err(e) => Err(BodyError {
                code: "invalid_json",
                detail: e.to_string(),
            }),
        },
        "application/x-www-form-urlencoded" => parse_form(bytes),
        other => Err(BodyError {
            code: "invalid_post_type",
            detail: format!("Content-Type {other:?} is not JSON or form-encoded"),
        }),
    }
}

/// Form-encoded arguments (a body or a query string) as a JSON object.
pub(super) fn parse_form(bytes: &[u8]) -> Result<Value, BodyError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(bytes).map_err(|e| BodyError {
            code: "invalid_form_data",
            detail: e.to_string(),
        })?;
    let mut map = Map::new();
    for (k, v) in pairs {
        // Slack documents these as "JSON-based arrays presented as
        // URL-encoded strings"; text that is not JSON stays a string
        // and fails validation like Slack would.
        let value = match k.as_str() {
            "blocks" | "attachments" | "files" => match serde_json::from_str::<Value>(&v) {
                Ok(parsed @ (Value::Array(_) | Value::Object(_))) => parsed,
                _ => Value::String(v),
            },
            _ => Value::String(v),
        };
        map.insert(k, value);
    }
    Ok(Value::Object(map))
}

/// Checks the bearer token the way Slack distinguishes "none" from "wrong".
pub(super) fn check_auth(headers: &HeaderMap, token: &str) -> Result<(), &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("not_authed");
    };
    let value = value.to_str().map_err(|_| "invalid_auth")?.trim();
    if value.is_empty() {
        return Err("not_authed");
    }
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("invalid_auth");
    }
    match credential.trim() {
        "" => Err("not_authed"),
        c if c == token => Ok(()),
        _ => Err("invalid_auth"),
    }
}

/// Whether a request's body is JSON.
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// A non-empty string argument.
pub(super) fn str_arg<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A boolean argument: JSON `true`, or `true`/`1` in a form body.
pub(super) fn flag(body: &Value, key: &str) -> bool {
    match body.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

pub(super) fn is_user_id(id: &str) -> bool {
    id.starts_with('U') || id.starts_with('W')
}

pub(super) fn non_empty_array(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// An argument's JSON, or an empty array when it is absent or null.
pub(super) fn non_null(v: Option<&Value>) -> Value {
    v.filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!([]))
}
