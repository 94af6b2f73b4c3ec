//! Slack request signatures, checked in a layer in front of every Slack route
//! before anything is parsed (`slack.md`: base string `v0:{ts}:{body}`,
//! HMAC-SHA256 with the signing secret, hex, compared in constant time; a
//! timestamp more than five minutes away is a replay).

use crate::domain::secret::Secret;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Slack's replay window.
pub const MAX_SKEW_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("no X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("no X-Slack-Signature header")]
    MissingSignature,
    #[error("the timestamp is not a number")]
    BadTimestamp,
    #[error("the timestamp is {0} s away from now (a replay, or a clock problem)")]
    Stale(i64),
    #[error("the signature does not match")]
    WrongSignature,
}

/// Checks Slack's request signatures with the app's signing secret.
#[derive(Clone)]
pub struct SlackVerifier {
    secret: Secret,
}

impl SlackVerifier {
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// `v0=<hex>` for a body sent at `timestamp`, as Slack computes it.
    pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Verifies headers and raw body against `now` (unix seconds).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
        let ts = headers
            .get(TIMESTAMP_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::MissingTimestamp)?;
        let sig = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::MissingSignature)?;
        let ts_num: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
        let expected = Self::sign(self.secret.expose(), ts, body);
        // Compare first, in constant time, so the answer's timing says nothing
        // about the signature; then refuse replays.
        if expected.as_bytes().ct_eq(sig.as_bytes()).unwrap_u8() != 1 {
            return Err(VerifyError::WrongSignature);
        }
        let skew = now.saturating_sub(ts_num);
        if skew.abs() > MAX_SKEW_SECS {
            return Err(VerifyError::Stale(skew));
        }
        Ok(())
    }
}

/// What the verifying layer needs.
#[derive(Clone)]
pub struct VerifyLayerState {
    pub verifier: SlackVerifier,
    /// Slack's payloads are small; anything larger is refused before it is read whole.
    pub max_body_bytes: usize,
}

/// The axum middleware: reads the body (bounded), verifies it, and passes the
/// same bytes on. A failed check answers 401 and the handler never runs
/// (the request counter records it as `unauthorized`).
pub async fn verify_slack_request(
    State(state): State<VerifyLayerState>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let route = parts.uri.path();
    let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(e) if is_over_limit(&e) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        }
        // A body that ends before its Content-Length, or bad chunked framing:
        // the client's fault, and not a body that is too large.
        Err(e) => {
            tracing::warn!(route = %route, error = %e, "could not read a Slack request's body");
            return (
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
                .into_response();
        }
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = state.verifier.verify(&parts.headers, &bytes, now) {
        tracing::warn!(route = %route, reason = %e, "refused an unverified Slack request");
        return (StatusCode::UNAUTHORIZED, "invalid Slack signature").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether reading the body failed because it went past the limit (the
/// error is wrapped by axum, so look along its chain of sources).
fn is_over_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(ts).unwrap());
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).unwrap());
        h
    }

    #[test]
    fn slacks_documented_example_signature_verifies() {
        // The example from Slack's "Verifying requests from Slack" guide.
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let v = SlackVerifier::new(Secret::new(secret));
        let h = headers(
            "1531420618",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        );
        assert_eq!(v.verify(&h, body, 1531420618 + 10), Ok(()));
    }

    #[test]
    fn a_forged_signature_is_refused() {
        let v = SlackVerifier::new(Secret::new("secret"));
        let sig = SlackVerifier::sign("other-secret", "100", b"a=b");
        assert_eq!(
            v.verify(&headers("100", &sig), b"a=b", 100),
            Err(VerifyError::WrongSignature)
        );
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let v = SlackVerifier::new(Secret::new("secret"));
        let sig = SlackVerifier::sign("secret", "100", b"a=b");
        assert_eq!(
            v.verify(&headers("100", &sig), b"a=c", 100),
            Err(VerifyError::WrongSignature)
        );
    }

    #[test]
    fn requests_older_or_newer_than_five_minutes_are_replays() {
        let v = SlackVerifier::new(Secret::new("secret"));
        let sig = SlackVerifier::sign("secret", "1000", b"x");
        let h = headers("1000", &sig);
        assert_eq!(v.verify(&h, b"x", 1300), Ok(()));
        assert_eq!(v.verify(&h, b"x", 1301), Err(VerifyError::Stale(301)));
        assert_eq!(v.verify(&h, b"x", 699), Err(VerifyError::Stale(-301)));
    }

    #[test]
    fn missing_headers_are_named() {
        let v = SlackVerifier::new(Secret::new("secret"));
        assert_eq!(
            v.verify(&HeaderMap::new(), b"", 0),
            Err(VerifyError::MissingTimestamp)
        );
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_static("1"));
        assert_eq!(v.verify(&h, b"", 1), Err(VerifyError::MissingSignature));
        assert_eq!(
            v.verify(&headers("soon", "v0=00"), b"", 1),
            Err(VerifyError::BadTimestamp)
        );
    }
}
