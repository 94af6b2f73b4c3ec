//! Slack request signatures, checked in a layer in front of every Slack route
//! before anything is parsed (`slack.md`: base string `v0:{ts}:{body}`,
//! HMAC-SHA256 with the signing secret, hex, compared in constant time; a
//! timestamp more than five minutes away is a replay).
//!
//! The headers are checked before the body is read: a request with no
//! signature, or one outside the five minutes, is refused without reading
//! its body or computing anything. Refusals are logged at most once a second
//! (with how many were not), so a flood of forged requests is not a flood of
//! log lines; every one is counted in `servo_sla_bot_http_requests_total`
//! with `outcome="unauthorized"`.

use crate::domain::secret::Secret;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
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
        let signed = Self::check_headers(headers, now)?;
        self.check_body(&signed, body)
    }

    /// What can be checked before the body is read: both headers are there,
    /// and the timestamp is within Slack's five minutes. The timestamp is
    /// public (a header the sender chose), so refusing on it first says
    /// nothing about the signature, which is then compared in constant time.
    pub fn check_headers(headers: &HeaderMap, now: i64) -> Result<Signed<'_>, VerifyError> {
        let ts = headers
            .get(TIMESTAMP_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::MissingTimestamp)?;
        let sig = headers
            .get(SIGNATURE_HEADER)
            .ok_or(VerifyError::MissingSignature)?
            .as_bytes();
        let ts_num: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
        let skew = now.saturating_sub(ts_num);
        if skew.abs() > MAX_SKEW_SECS {
            return Err(VerifyError::Stale(skew));
        }
        Ok(Signed { ts, sig })
    }

    /// The signature against the body: `v0=` and the HMAC's 64 hex digits,
    /// compared as bytes in constant time (nothing allocated).
    pub fn check_body(&self, signed: &Signed<'_>, body: &[u8]) -> Result<(), VerifyError> {
        let mut given = [0u8; 32];
        let well_formed = signed
            .sig
            .strip_prefix(b"v0=")
            .filter(|digits| {
                digits
                    .iter()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
            .is_some_and(|digits| hex::decode_to_slice(digits, &mut given).is_ok());
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"v0:");
        mac.update(signed.ts.as_bytes());
        mac.update(b":");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        // The format is the sender's own; only the comparison must not leak.
        if !well_formed || expected.as_slice().ct_eq(&given).unwrap_u8() != 1 {
            return Err(VerifyError::WrongSignature);
        }
        Ok(())
    }
}

/// A request's signature headers, checked for presence and freshness.
pub struct Signed<'a> {
    ts: &'a str,
    sig: &'a [u8],
}

/// Logs refusals at most once a second, saying how many went unlogged.
#[derive(Default)]
pub struct RefusalLog {
    last_logged: AtomicI64,
    unlogged: AtomicU64,
}

impl RefusalLog {
    pub fn refused(&self, route: &str, reason: &VerifyError, now: i64) {
        let last = self.last_logged.load(Ordering::Relaxed);
        if now > last
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let also = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                route = %route,
                reason = %reason,
                also_refused_unlogged = also,
                "refused an unverified Slack request"
            );
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the verifying layer needs.
#[derive(Clone)]
pub struct VerifyLayerState {
    pub verifier: SlackVerifier,
    /// Slack's payloads are small; anything larger is refused before it is read whole.
    pub max_body_bytes: usize,
    pub refusals: Arc<RefusalLog>,
}

impl VerifyLayerState {
    pub fn new(verifier: SlackVerifier, max_body_bytes: usize) -> Self {
        Self {
            verifier,
            max_body_bytes,
            refusals: Arc::default(),
        }
    }
}

/// The check in front of Slack's routes ([`crate::edge::inbound`] runs it in
/// its layer): checks the headers, reads the body (bounded), verifies it, and
/// passes the same bytes on. A failed check answers 401 and the handler never runs
/// (the request counter records it as `unauthorized`).
pub async fn verified(state: &VerifyLayerState, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let route = parts.uri.path();
    let now = chrono::Utc::now().timestamp();
    let signed = match SlackVerifier::check_headers(&parts.headers, now) {
        Ok(s) => s,
        Err(e) => return refuse(state, route, &e, now),
    };
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
    if let Err(e) = state.verifier.check_body(&signed, &bytes) {
        return refuse(state, route, &e, now);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(state: &VerifyLayerState, route: &str, reason: &VerifyError, now: i64) -> Response {
    state.refusals.refused(route, reason, now);
    (StatusCode::UNAUTHORIZED, "invalid Slack signature").into_response()
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
    fn a_signature_not_in_slacks_format_is_wrong_not_a_panic() {
        let v = SlackVerifier::new(Secret::new("secret"));
        let good = SlackVerifier::sign("secret", "100", b"a=b");
        for bad in [
            "",
            "v0=",
            "v1=00",
            &good[..good.len() - 1],
            &format!("{good}0"),
            &good.replace("v0=", "v1="),
            &good.to_uppercase(),
        ] {
            assert_eq!(
                v.verify(&headers("100", bad), b"a=b", 100),
                Err(VerifyError::WrongSignature),
                "{bad}"
            );
        }
        assert_eq!(v.verify(&headers("100", &good), b"a=b", 100), Ok(()));
    }

    #[test]
    fn a_stale_request_is_refused_whatever_its_signature() {
        let v = SlackVerifier::new(Secret::new("secret"));
        let forged = SlackVerifier::sign("other", "1000", b"x");
        assert_eq!(
            v.verify(&headers("1000", &forged), b"x", 1400),
            Err(VerifyError::Stale(400))
        );
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_second_and_the_rest_counted() {
        let log = RefusalLog::default();
        for _ in 0..5 {
            log.refused("/slack/commands", &VerifyError::MissingSignature, 100);
        }
        // The first at 100 was logged; four were not.
        assert_eq!(log.unlogged.load(Ordering::Relaxed), 4);
        log.refused("/slack/commands", &VerifyError::MissingSignature, 101);
        assert_eq!(log.unlogged.load(Ordering::Relaxed), 0);
        assert_eq!(log.last_logged.load(Ordering::Relaxed), 101);
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
