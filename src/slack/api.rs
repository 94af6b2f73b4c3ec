//! The outbound Slack Web API client: slack-morphism over hyper, pointed at
//! `SLACK_API_URL`. One call here is one logical call: it retries 5xx
//! answers and timeouts with backoff, turns `ok: false` into an error, and
//! waits out 429s for as long as `Retry-After` says, within a budget: an
//! interactive call waits inline, the outbox's calls ([`SlackApi::deliver`])
//! hand every 429 back to the row, uploads wait a minute at most.

use crate::config::SlackTuning;
use crate::domain::secret::Secret;
use crate::runtime::metrics::Metrics;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use std::sync::Arc;
use std::time::Duration;

type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// How many 429s one call waits out before it gives up and lets the caller
/// (usually the outbox) try again later.
const MAX_RATE_LIMIT_WAITS: u32 = 10;
/// The longest `Retry-After` honoured inline; longer waits go back to the caller.
const MAX_INLINE_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How much waiting out 429s inline one call (or one upload) may do.
#[derive(Clone, Copy, Debug)]
pub(super) struct Waits {
    count: u32,
    waited: Duration,
    max_total: Duration,
    /// A failure (5xx, timeout) is not retried here: the request may have
    /// been acted on (a post posted), and only the caller can find out.
    once: bool,
}

impl Waits {
    /// Interactive calls: up to [`MAX_RATE_LIMIT_WAITS`] waits of at most
    /// [`MAX_INLINE_RETRY_AFTER`] each.
    pub(super) fn inline() -> Waits {
        Waits {
            count: 0,
            waited: Duration::ZERO,
            max_total: MAX_INLINE_RETRY_AFTER * MAX_RATE_LIMIT_WAITS,
            once: false,
        }
    }

    /// The outbox's calls: every 429 is handed back at once.
    pub(super) fn none() -> Waits {
        Waits {
            max_total: Duration::ZERO,
            ..Waits::inline()
        }
    }

    /// The outbox's uploads: short waits inline (an upload URL left
    /// uncompleted is discarded), a minute in all, far inside the row's claim.
    pub(super) fn upload() -> Waits {
        Waits {
            max_total: Duration::from_secs(60),
            ..Waits::inline()
        }
    }

    /// A `response_url`'s answer: someone is waiting for it, so short waits
    /// inline, a minute in all, then it is given up.
    pub(super) fn respond() -> Waits {
        Waits {
            max_total: Duration::from_secs(60),
            ..Waits::inline()
        }
    }

    /// Whether one more wait of `wait` is allowed; counts it if so.
    fn take(&mut self, wait: Duration) -> bool {
        if self.count >= MAX_RATE_LIMIT_WAITS
            || wait > MAX_INLINE_RETRY_AFTER
            || self.waited + wait > self.max_total
        {
            return false;
        }
        self.count += 1;
        self.waited += wait;
        true
    }
}

/// Methods whose body is a message or a view, fitted to Slack's Block Kit
/// limits before it is sent.
const FITTED_METHODS: &[&str] = &[
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "views.update",
    "views.publish",
    "views.push",
];

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SlackCallError {
    /// Slack refused the call (`ok: false`); retrying the same call will not help.
    #[error("Slack refused {method}: {code}")]
    Refused { method: String, code: String },
    /// Slack could not be reached or kept failing; the same call may work later.
    #[error("Slack is unavailable for {method} after {attempts} attempts: {last}")]
    Unavailable {
        method: String,
        attempts: u32,
        last: String,
        /// How long Slack asked us to wait, when the last failure was a 429.
        retry_after: Option<Duration>,
    },
}

impl SlackCallError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// `ok: false` codes that describe Slack's state rather than the request.
fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout"
            | "ratelimited"
    )
}

/// What one HTTP exchange with Slack came to.
/// How to go on after a step that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Again {
    /// The same call again (after a 429's wait).
    SameStep,
    /// After a failure: a plain call repeats; an upload starts over with a
    /// new upload URL, since Slack discards uploads never completed.
    FromScratch,
}

pub(super) enum Step<T> {
    Ok(T),
    /// Will not heal by retrying: `ok: false` or a 4xx.
    Refused(String),
    /// A 429, with its `Retry-After`.
    RateLimited(Option<Duration>),
    /// 5xx, timeout, transport error, or a Slack-side `ok: false` code.
    Failed(String),
}

type Attempt = Step<Value>;

/// Counts a call by its result, and a 429 or a refusal on its own counter.
pub(super) fn count<T>(
    metrics: &crate::runtime::metrics::Metrics,
    method: &str,
    label: &str,
    step: &Step<T>,
) {
    metrics.inc(
        "servo_sla_bot_slack_api_calls_total",
        &[("method", method), ("result", label)],
    );
    match step {
        Step::RateLimited(_) => metrics.inc(
            "servo_sla_bot_slack_rate_limited_total",
            &[("method", method)],
        ),
        Step::Refused(code) => metrics.inc(
            "servo_sla_bot_slack_refusals_total",
            &[("method", method), ("error", code)],
        ),
        _ => {}
    }
}

/// Sorts a slack-morphism result (or its timeout) into a [`Step`], with the
/// `result` label its metric gets.
pub(super) fn classify<T>(
    result: Result<Result<T, SlackClientError>, tokio::time::error::Elapsed>,
) -> (Step<T>, String) {
    match result {
        Err(_) => (Step::Failed("timed out".into()), "timeout".to_string()),
        Ok(Ok(v)) => (Step::Ok(v), "ok".to_string()),
        Ok(Err(SlackClientError::ApiError(e))) => {
            let label = e.code.clone();
            if transient_code(&e.code) {
                (Step::Failed(format!("ok=false {}", e.code)), label)
            } else {
                (Step::Refused(e.code), label)
            }
        }
        Ok(Err(SlackClientError::RateLimitError(e))) => {
            (Step::RateLimited(e.retry_after), "rate_limited".into())
        }
        Ok(Err(SlackClientError::HttpError(e))) => {
            let status = e.status_code.as_u16();
            let label = format!("http_{status}");
            if e.status_code.is_server_error() || status == 408 {
                (Step::Failed(format!("HTTP {status}")), label)
            } else {
                // 4xx other than 429 (e.g. 404 for an unknown URL) will not heal by retrying.
                (Step::Refused(label.clone()), label)
            }
        }
        Ok(Err(e)) => (Step::Failed(e.to_string()), "transport_error".into()),
    }
}

pub(super) struct Inner {
    pub(super) client: SlackClient<Connector>,
    pub(super) token: SlackApiToken,
    pub(super) tuning: SlackTuning,
    pub(super) metrics: Arc<Metrics>,
}

/// The bot's Slack Web API client. Cheap to clone.
#[derive(Clone)]
pub struct SlackApi {
    pub(super) inner: Arc<Inner>,
}

impl SlackApi {
    /// A client for `base_url` (`https://slack.com/api/`; the method name is appended).
    /// Plain `http://` is accepted so tests can point it at a local fake.
    pub fn new(
        base_url: &str,
        token: &Secret,
        tuning: SlackTuning,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        // slack-morphism joins the base and the method with its own `/`.
        let base = base_url.trim_end_matches('/');
        let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(base);
        Ok(Self {
            inner: Arc::new(Inner {
                client: SlackClient::new(connector),
                token: SlackApiToken::new(SlackApiTokenValue(token.expose().to_string())),
                tuning,
                metrics,
            }),
        })
    }

    /// Calls `method` with a JSON body; retries as described at the top.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, SlackCallError> {
        self.call_as(&self.inner.token, method, body).await
    }

    /// `apps.connections.open` with the app-level token: a fresh, single-use
    /// Socket Mode websocket URL.
    pub async fn open_socket_connection(
        &self,
        app_token: &Secret,
    ) -> Result<String, SlackCallError> {
        let token = SlackApiToken::new(SlackApiTokenValue(app_token.expose().to_string()));
        let method = "apps.connections.open";
        let answer = self.call_as(&token, method, &serde_json::json!({})).await?;
        answer
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| SlackCallError::Refused {
                method: method.into(),
                code: "no_url_in_answer".into(),
            })
    }

    /// A call for the outbox: like [`SlackApi::call`], except that a 429 is
    /// not waited out here but handed back at once as
    /// [`SlackCallError::Unavailable`] with its `Retry-After`, for the outbox
    /// to schedule. A wait must never outlive the row's claim, or another
    /// replica would send the same message again.
    ///
    /// A `chat.postMessage` that fails (5xx, timeout) is not sent again here
    /// either: Slack may have posted it, and the outbox looks for it before it
    /// posts again.
    pub async fn deliver(&self, method: &str, body: &Value) -> Result<Value, SlackCallError> {
        let waits = Waits {
            once: method == "chat.postMessage",
            ..Waits::none()
        };
        self.call_waiting(&self.inner.token, method, body, waits)
            .await
    }

    async fn call_as(
        &self,
        token: &SlackApiToken,
        method: &str,
        body: &Value,
    ) -> Result<Value, SlackCallError> {
        self.call_waiting(token, method, body, Waits::inline())
            .await
    }

    /// A call that waits out rate limits within `waits`.
    async fn call_waiting(
        &self,
        token: &SlackApiToken,
        method: &str,
        body: &Value,
        waits: Waits,
    ) -> Result<Value, SlackCallError> {
        // Every message fits Slack's limits by construction: whatever Servo
        // or a person put into it, it is cut to fit rather than refused.
        let fitted;
        let body = if FITTED_METHODS.contains(&method) {
            let mut b = body.clone();
            crate::slack::limits::fit_message(&mut b);
            fitted = b;
            &fitted
        } else {
            body
        };
        let mut failures = 0u32;
        let mut waits = waits;
        loop {
            match self.attempt(token, method, body).await {
                Step::Ok(v) => return Ok(v),
                step => {
                    self.again(method, step, &mut failures, &mut waits).await?;
                }
            }
        }
    }

    /// Applies the retry rules to a call (or an upload step) that did not
    /// succeed: `ok: false` ends it; a 429 waits `Retry-After` while `waits`
    /// allows, else hands it back as `Unavailable` with its `Retry-After`; a
    /// 5xx or timeout backs off, up to `slack.max_attempts`. Otherwise says
    /// how to go on.
    pub(super) async fn again<T>(
        &self,
        method: &str,
        step: Step<T>,
        failures: &mut u32,
        waits: &mut Waits,
    ) -> Result<Again, SlackCallError> {
        let max_attempts = if waits.once {
            1
        } else {
            self.inner.tuning.max_attempts.max(1)
        };
        match step {
            Step::Ok(_) => Ok(Again::SameStep),
            Step::Refused(code) => Err(SlackCallError::Refused {
                method: method.to_string(),
                code,
            }),
            Step::RateLimited(retry_after) => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                if !waits.take(wait) {
                    return Err(SlackCallError::Unavailable {
                        method: method.to_string(),
                        attempts: *failures + waits.count,
                        last: "rate limited".into(),
                        retry_after: Some(wait),
                    });
                }
                tracing::info!(
                    method,
                    wait_ms = wait.as_millis() as u64,
                    "Slack rate limit: waiting Retry-After"
                );
                tokio::time::sleep(wait).await;
                Ok(Again::SameStep)
            }
            Step::Failed(why) => {
                *failures += 1;
                if *failures >= max_attempts {
                    return Err(SlackCallError::Unavailable {
                        method: method.to_string(),
                        attempts: *failures,
                        last: why,
                        retry_after: None,
                    });
                }
                let pause = backoff(*failures);
                tracing::warn!(method, attempt = *failures, error = %why, backoff_ms = pause.as_millis() as u64, "Slack call failed; retrying");
                tokio::time::sleep(pause).await;
                Ok(Again::FromScratch)
            }
        }
    }

    async fn attempt(&self, token: &SlackApiToken, method: &str, body: &Value) -> Attempt {
        let session = self.inner.client.open_session(token);
        let call = session
            .http_session_api
            .http_post::<Value, Value>(method, body, None);
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.inner.tuning.timeout, call).await;
        let (outcome, label) = classify(result);
        self.inner.metrics.observe(
            "servo_sla_bot_slack_api_duration_seconds",
            &[("method", method)],
            started.elapsed().as_secs_f64(),
        );
        count(&self.inner.metrics, method, &label, &outcome);
        outcome
    }

    /// Posts to a slash command's or interaction's `response_url` (a full URL,
    /// not a Web API method). Best effort with the same retry rules; 429s
    /// are waited out within [`Waits::respond`], then it gives up.
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackCallError> {
        let mut fitted = body.clone();
        crate::slack::limits::fit_message(&mut fitted);
        let body = &fitted;
        let url = url::Url::parse(response_url).map_err(|_| SlackCallError::Refused {
            method: "response_url".into(),
            code: "invalid_response_url".into(),
        })?;
        let max_attempts = self.inner.tuning.max_attempts.max(1);
        let mut failures = 0;
        let mut waits = Waits::respond();
        loop {
            let session = self.inner.client.open_session(&self.inner.token);
            let call =
                session
                    .http_session_api
                    .http_post_uri::<Value, Value>(url.clone(), body, None);
            let why = match tokio::time::timeout(self.inner.tuning.timeout, call).await {
                Ok(Ok(_)) => {
                    self.inner.metrics.inc(
                        "servo_sla_bot_slack_api_calls_total",
                        &[("method", "response_url"), ("result", "ok")],
                    );
                    return Ok(());
                }
                Ok(Err(SlackClientError::RateLimitError(e))) => {
                    let wait = e.retry_after.unwrap_or(Duration::from_secs(1));
                    if waits.take(wait) {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    self.inner.metrics.inc(
                        "servo_sla_bot_slack_api_calls_total",
                        &[("method", "response_url"), ("result", "rate_limited")],
                    );
                    return Err(SlackCallError::Unavailable {
                        method: "response_url".into(),
                        attempts: failures + waits.count + 1,
                        last: "rate limited".into(),
                        retry_after: Some(wait),
                    });
                }
                // A 4xx (used five times, expired, unknown) will not change
                // by asking again: say so at once instead of retrying.
                Ok(Err(SlackClientError::HttpError(e))) if e.status_code.is_client_error() => {
                    self.inner.metrics.inc(
                        "servo_sla_bot_slack_api_calls_total",
                        &[("method", "response_url"), ("result", "error")],
                    );
                    return Err(SlackCallError::Refused {
                        method: "response_url".into(),
                        code: e
                            .http_response_body
                            .as_deref()
                            .and_then(|b| serde_json::from_str::<Value>(b).ok())
                            .and_then(|v| {
                                v.get("error").and_then(Value::as_str).map(str::to_string)
                            })
                            .unwrap_or_else(|| e.status_code.as_u16().to_string()),
                    });
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            self.inner.metrics.inc(
                "servo_sla_bot_slack_api_calls_total",
                &[("method", "response_url"), ("result", "error")],
            );
            failures += 1;
            if failures >= max_attempts {
                return Err(SlackCallError::Unavailable {
                    method: "response_url".into(),
                    attempts: failures,
                    last: why,
                    retry_after: None,
                });
            }
            tokio::time::sleep(backoff(failures)).await;
        }
    }
}

/// Exponential backoff, 200 ms doubling up to 5 s, with jitter so replicas
/// that failed together do not retry together.
pub fn backoff(failures: u32) -> Duration {
    let base = 200u64.saturating_mul(1u64 << failures.min(5).saturating_sub(1));
    let capped = base.min(5_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(capped / 2 + nanos % (capped / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 1..10 {
            let b = backoff(n);
            assert!(b <= Duration::from_millis(5_000), "{n}: {b:?}");
        }
        assert!(backoff(1) <= Duration::from_millis(200));
        assert!(backoff(4) >= Duration::from_millis(800));
    }

    /// A `response_url` that answers 429 on and on: `respond` gives up after
    /// a bounded number of waits instead of asking for ever.
    #[tokio::test]
    async fn a_response_url_that_keeps_answering_429_is_given_up_on() {
        use crate::sim::fake_slack::{FakeSlack, Fault};
        let slack = FakeSlack::start().await;
        let api = SlackApi::new(
            &slack.base_url(),
            &Secret::new(slack.token()),
            SlackTuning::default(),
            Arc::new(Metrics::new()),
        )
        .unwrap();
        slack.fail_next(
            "response_url:r1",
            vec![
                Fault::RateLimited {
                    retry_after_secs: 0
                };
                1000
            ],
        );
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            api.respond(
                &slack.response_url("r1"),
                &serde_json::json!({"text": "hi"}),
            ),
        )
        .await
        .expect("respond gives up in time");
        assert!(
            matches!(answer, Err(SlackCallError::Unavailable { .. })),
            "{answer:?}"
        );
        let asked = slack.calls_to("response_url:r1").len();
        assert!(
            asked <= MAX_RATE_LIMIT_WAITS as usize + 1,
            "asked {asked} times"
        );
    }

    #[test]
    fn only_slack_side_codes_are_retried() {
        assert!(transient_code("internal_error"));
        assert!(!transient_code("channel_not_found"));
        assert!(!transient_code("invalid_blocks"));
    }
}
