//! PagerDuty Events API v2, for tiers that have a routing key. Events go
//! through the outbox like Slack calls (so they survive restarts and are
//! retried); the routing key is looked up from the environment when the
//! event is sent, so it is never written to the store.

use crate::domain::secret::Secret;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// How long one event may take, from connecting to the last byte of the
/// answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The outbox method name of a PagerDuty event.
pub const OUTBOX_METHOD: &str = "pagerduty.enqueue";

#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    /// PagerDuty will not accept it (bad key, bad event): do not retry.
    #[error("PagerDuty refused the event: {0}")]
    Refused(String),
    /// Rate limited, 5xx, or unreachable: try again later.
    #[error("PagerDuty is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Clone)]
pub struct PagerDuty {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: String,
    /// Routing keys by the name of the environment variable that holds them.
    keys: HashMap<String, Secret>,
    /// The REST API (`PAGERDUTY_API_URL`, `PAGERDUTY_API_TOKEN`), for schedules.
    api_url: String,
    api_token: Option<Secret>,
    /// Who each schedule put on call, as last asked: `(when, people)`.
    pub schedules: std::sync::Arc<std::sync::Mutex<HashMap<String, Known>>>,
}

/// The people a schedule was last known to put on call.
#[derive(Clone, Debug)]
pub struct Known {
    pub at: chrono::DateTime<chrono::Utc>,
    pub people: Vec<String>,
    /// When asking last failed (not asked again for a minute).
    pub failed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// PagerDuty's REST API, when `PAGERDUTY_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.pagerduty.com";

impl PagerDuty {
    pub fn new(url: &str, keys: HashMap<String, Secret>) -> anyhow::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            url: url.to_string(),
            keys,
            api_url: DEFAULT_API_URL.to_string(),
            api_token: None,
            schedules: Default::default(),
        })
    }

    /// The REST API to ask schedules of.
    pub fn with_api(mut self, url: &str, token: Option<Secret>) -> Self {
        self.api_url = url.trim_end_matches('/').to_string();
        self.api_token = token;
        self
    }

    /// The email addresses of whoever schedule `id` puts on call now:
    /// `GET /oncalls?schedule_ids[]=<id>&include[]=users&earliest=true`
    /// (PagerDuty's REST API v2, `Authorization: Token token=…`).
    pub async fn oncall_emails(&self, schedule: &str) -> Result<Vec<String>, PagerDutyError> {
        let token = self
            .api_token
            .as_ref()
            .ok_or_else(|| PagerDutyError::Refused("PAGERDUTY_API_TOKEN is not set".into()))?;
        let url = format!(
            "{}/oncalls?schedule_ids%5B%5D={schedule}&include%5B%5D=users&earliest=true",
            self.api_url
        );
        let req = hyper::Request::get(&url)
            .header("accept", "application/vnd.pagerduty+json;version=2")
            .header("authorization", format!("Token token={}", token.expose()))
            .body(Full::new(Bytes::new()))
            .map_err(|e| PagerDutyError::Refused(e.to_string()))?;
        let exchange = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| PagerDutyError::Unavailable(e.to_string()))?;
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| PagerDutyError::Unavailable(e.to_string()))?
                .to_bytes();
            Ok::<_, PagerDutyError>((status, body))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| PagerDutyError::Unavailable("timed out".into()))??;
        match status.as_u16() {
            200..=299 => {}
            429 | 500..=599 => return Err(PagerDutyError::Unavailable(format!("HTTP {status}"))),
            _ => return Err(PagerDutyError::Refused(format!("HTTP {status}"))),
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| PagerDutyError::Unavailable(format!("not JSON: {e}")))?;
        let mut emails: Vec<String> = v["oncalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["schedule"]["id"].as_str().is_none_or(|s| s == schedule))
            .filter_map(|o| o["user"]["email"].as_str().map(str::to_string))
            .collect();
        emails.dedup();
        Ok(emails)
    }

    /// Sends one event. `event` carries `routing_key_env` (the variable's
    /// name), replaced here by the key itself.
    pub async fn send(&self, event: &Value) -> Result<(), PagerDutyError> {
        let mut event = event.clone();
        let env = event
            .as_object_mut()
            .and_then(|o| o.remove("routing_key_env"))
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| PagerDutyError::Refused("no routing_key_env in the event".into()))?;
        let key = self
            .keys
            .get(&env)
            .ok_or_else(|| PagerDutyError::Refused(format!("{env} is not set")))?;
        event["routing_key"] = key.expose().into();
        let req = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(event.to_string())))
            .map_err(|e| PagerDutyError::Refused(e.to_string()))?;
        // One deadline for the whole exchange: connecting, sending, the
        // answer's headers and its body. A PagerDuty that stalls anywhere,
        // the middle of its body included, is unavailable for now.
        let exchange = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| PagerDutyError::Unavailable(e.to_string()))?;
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned());
            Ok::<_, PagerDutyError>((status, body))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| PagerDutyError::Unavailable("timed out".into()))??;
        // A 2xx whose body broke off was still accepted; otherwise the body
        // only explains a refusal.
        let body = body.unwrap_or_default();
        match status.as_u16() {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(PagerDutyError::Unavailable(format!("HTTP {status}"))),
            _ => Err(PagerDutyError::Refused(format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            ))),
        }
    }
}
