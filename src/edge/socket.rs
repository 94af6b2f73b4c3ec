//! Socket Mode: Slack delivers slash commands, interactions and events over
//! a websocket the bot opens, so the bot needs no public URL.
//!
//! The supervisor ([`SocketMode::run`]) asks `apps.connections.open` (with
//! the app-level token) for a single-use `wss://` URL, connects, and waits
//! for Slack's `hello`. Each connection runs in its own task
//! ([`serve_connection`]): it reads envelopes, hands each to a task that
//! calls the same [`handlers`] as the HTTP routes, and writes the ack
//! (`{"envelope_id"}`, plus the handler's answer as `payload`) on the
//! connection the envelope came in on.
//!
//! Slack's reconnection rules:
//! - `disconnect` with `warning` or `refresh_requested`: open a new connection
//!   at once; the old one keeps serving until the new one says `hello` (or
//!   [`REFRESH_OVERLAP`] passes), then finishes its in-flight acks and closes.
//! - `disconnect` with `link_disabled`: Socket Mode was turned off for the app;
//!   stop reconnecting and say so (`/readyz` reports `link_disabled`).
//! - a dropped socket, a failed connect, no `hello`, or silence: reconnect with
//!   exponential backoff and jitter, capped at [`MAX_BACKOFF`].
//!
//! Slack sends an envelope again (same `envelope_id`) when it did not get the
//! ack, e.g. because the socket dropped first. Each delivery claims the
//! envelope in the store ([`Store::claim_envelope`](crate::store::Store::claim_envelope));
//! only the first handles it, and a redelivery is acked with the answer the
//! first stored, so nothing is handled twice and no answer is lost.

use crate::commands::SlashCommand;
use crate::context::socket_status::SocketState;
use crate::context::AppState;
use crate::domain::secret::Secret;
use crate::edge::handlers::{self, Ack};
use crate::store::EnvelopeClaim;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the websocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack says `hello` as soon as a connection is up; without it, reconnect.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The bot pings this often, so a connection that died silently is noticed...
const PING_EVERY: Duration = Duration::from_secs(30);
/// ...when nothing at all (not even a pong) has arrived for this long.
const SILENCE_LIMIT: Duration = Duration::from_secs(90);
/// After a `disconnect` warning the old connection serves on until the new
/// one is up, but never longer than this (Slack closes it about 10 s after).
pub const REFRESH_OVERLAP: Duration = Duration::from_secs(10);
/// A closing connection waits this long for the acks of envelopes in hand.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// A claimed envelope left unanswered this long is taken over by a
/// redelivery: its handler died (every handler answers within 3 s).
const CLAIM_STALE: Duration = Duration::from_secs(10);
/// A redelivery of an envelope that is still being handled waits this long
/// for the answer to ack with; after that it is left unacked, so Slack tries
/// again later.
const BUSY_WAIT: Duration = Duration::from_secs(2);
/// Envelope ids are kept this long (Slack stops redelivering within minutes).
const ENVELOPE_KEEP: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// The first reconnect waits about this long; each failure doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Exponential backoff with jitter for the `failures`-th reconnect in a row:
/// between half and all of 1 s, 2 s, 4 s, ... capped at [`MAX_BACKOFF`].
pub fn reconnect_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let full = FIRST_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF);
    let half = full / 2;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let jitter = nanos % (half.as_millis() as u64 + 1);
    half + Duration::from_millis(jitter)
}

/// Runs Socket Mode: connects, reconnects by Slack's rules, serves envelopes.
pub struct SocketMode {
    state: AppState,
    app_token: Secret,
}

/// What a connection tells the supervisor.
#[derive(Debug)]
enum ConnEvent {
    Hello,
    /// Slack asked the bot to move to a new connection.
    Refresh(String),
    LinkDisabled,
    /// The connection is gone, and why.
    Ended(String),
}

/// How the supervisor's wait on its current connection ended.
enum Next {
    Refresh,
    Dropped,
    LinkDisabled,
    Stop,
}

impl SocketMode {
    pub fn new(state: AppState, app_token: Secret) -> Self {
        Self { state, app_token }
    }

    /// Runs until `stop` turns true (then closes every connection after its
    /// in-flight acks) or Slack disables the link.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let status = self.state.socket.clone();
        let mut connections = JoinSet::new();
        // Retire signals of connections that Slack asked us to move off.
        let mut retiring: Vec<watch::Sender<bool>> = Vec::new();
        let mut failures = 0u32;
        let mut serial = 0u64;
        loop {
            if *stop.borrow() {
                break;
            }
            if status.get() != SocketState::Connected {
                status.set(if serial == 0 {
                    SocketState::Connecting
                } else {
                    SocketState::Reconnecting
                });
            }
            let ws = tokio::select! {
                ws = self.connect() => ws,
                _ = stop.changed() => break,
            };
            let ws = match ws {
                Ok(ws) => ws,
                Err(why) => {
                    failures += 1;
                    let wait = reconnect_backoff(failures);
                    tracing::warn!(error = %why, attempt = failures, wait_ms = wait.as_millis() as u64, "Socket Mode: could not connect; trying again");
                    self.count_connection("failed");
                    // A refresh whose new connection failed: the old one
                    // will soon be closed by Slack, so the bot is reconnecting.
                    status.set(SocketState::Reconnecting);
                    for r in retiring.drain(..) {
                        let _ = r.send(true);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = stop.changed() => break,
                    }
                }
            };
            serial += 1;
            let (events_tx, mut events) = mpsc::unbounded_channel();
            let (retire_tx, retire_rx) = watch::channel(false);
            connections.spawn(serve_connection(
                self.state.clone(),
                ws,
                serial,
                events_tx,
                retire_rx,
                stop.clone(),
            ));
            let next = loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(ConnEvent::Hello) => {
                            failures = 0;
                            status.set(SocketState::Connected);
                            self.count_connection("opened");
                            // The new connection is up: the old ones may go.
                            for r in retiring.drain(..) {
                                let _ = r.send(true);
                            }
                            self.prune().await;
                        }
                        Some(ConnEvent::Refresh(reason)) => {
                            tracing::info!(connection = serial, reason = %reason, "Socket Mode: Slack asked for a new connection");
                            self.count_connection("refreshed");
                            break Next::Refresh;
                        }
                        Some(ConnEvent::LinkDisabled) => break Next::LinkDisabled,
                        Some(ConnEvent::Ended(why)) => {
                            tracing::warn!(connection = serial, reason = %why, "Socket Mode: connection lost");
                            self.count_connection("dropped");
                            break Next::Dropped;
                        }
                        None => break Next::Dropped,
                    },
                    // Reap connections that have closed meanwhile.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    _ = stop.changed() => break Next::Stop,
                }
            };
            match next {
                Next::Refresh => retiring.push(retire_tx),
                Next::Dropped => {
                    failures += 1;
                    status.set(SocketState::Reconnecting);
                    let wait = reconnect_backoff(failures);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => break,
                    }
                }
                Next::LinkDisabled => {
                    status.set(SocketState::LinkDisabled);
                    tracing::error!(
                        "Socket Mode was turned off for this app in Slack (disconnect: link_disabled); \
                         the bot stops reconnecting. Turn Socket Mode on in the app's settings and \
                         restart the bot, or remove SLACK_APP_TOKEN to serve Slack over HTTP"
                    );
                    drop(retire_tx);
                    break;
                }
                Next::Stop => break,
            }
        }
        // Let every connection finish its in-flight acks and close.
        for r in retiring.drain(..) {
            let _ = r.send(true);
        }
        while connections.join_next().await.is_some() {}
    }

    /// `apps.connections.open`, then the websocket handshake.
    async fn connect(&self) -> Result<Ws, String> {
        let url = self
            .state
            .slack
            .open_socket_connection(&self.app_token)
            .await
            .map_err(|e| format!("apps.connections.open: {e}"))?;
        // The URL carries a single-use ticket: log where it goes, not all of it.
        let host = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        tracing::debug!(host = %host, "Socket Mode: connecting");
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(e)) => Err(format!("websocket to {host}: {e}")),
            Err(_) => Err(format!(
                "websocket to {host}: no handshake within {CONNECT_TIMEOUT:?}"
            )),
        }
    }

    /// Forgets envelope ids Slack can no longer redeliver.
    async fn prune(&self) {
        if let Err(e) = self.state.store.prune_envelopes(ENVELOPE_KEEP).await {
            tracing::warn!(error = %e, "Socket Mode: could not prune old envelope ids");
        }
    }

    fn count_connection(&self, event: &str) {
        self.state.metrics.inc(
            "servo_sla_bot_socket_connections_total",
            &[("event", event)],
        );
    }
}

/// One frame from Slack, as far as the bot reads it.
#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(rename = "type", default)]
    kind: String,
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    accepts_response_payload: bool,
    #[serde(default)]
    retry_attempt: u32,
    #[serde(default)]
    retry_reason: String,
    /// A `disconnect`'s reason.
    reason: Option<String>,
}

/// One envelope: Slack's delivery of a request.
#[derive(Debug)]
struct Envelope {
    id: String,
    kind: String,
    payload: Value,
    accepts_response_payload: bool,
    retry_attempt: u32,
}

/// Serves one connection until it drops, or until it is told to go
/// (`retire`, after a refresh; `stop`, at shutdown) and its in-flight
/// envelopes have been acked.
async fn serve_connection(
    state: AppState,
    mut ws: Ws,
    serial: u64,
    events: mpsc::UnboundedSender<ConnEvent>,
    mut retire: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    // Each envelope's task sends back its ack frame (`None`: no ack).
    let (acks_tx, mut acks) = mpsc::unbounded_channel::<Option<String>>();
    let mut in_flight = 0usize;
    let started = Instant::now();
    let mut greeted = false;
    let mut last_heard = Instant::now();
    // When Slack's `disconnect` arrived: serve on until the supervisor
    // retires this connection, or until REFRESH_OVERLAP has passed.
    let mut refresh_at: Option<Instant> = None;
    // When closing began: from then on only in-flight acks are awaited.
    let mut closing_at: Option<Instant> = None;
    let (mut retire_seen, mut stop_seen) = (false, false);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let why: String = loop {
        let now = Instant::now();
        if closing_at.is_none()
            && (*stop.borrow()
                || *retire.borrow()
                || refresh_at.is_some_and(|t| now >= t + REFRESH_OVERLAP))
        {
            closing_at = Some(now);
        }
        if let Some(t) = closing_at {
            if in_flight == 0 {
                break "closed by the bot".into();
            }
            if now >= t + DRAIN_LIMIT {
                tracing::warn!(
                    connection = serial,
                    in_flight,
                    "Socket Mode: closing with acks still pending; Slack will redeliver those envelopes"
                );
                break "closed by the bot".into();
            }
        }
        let mut wake = last_heard + SILENCE_LIMIT;
        if !greeted {
            wake = wake.min(started + HELLO_TIMEOUT);
        }
        match (closing_at, refresh_at) {
            (Some(t), _) => wake = wake.min(t + DRAIN_LIMIT),
            (None, Some(t)) => wake = wake.min(t + REFRESH_OVERLAP),
            (None, None) => {}
        }
        if now >= wake {
            if !greeted && now >= started + HELLO_TIMEOUT {
                break format!("no hello within {HELLO_TIMEOUT:?}");
            }
            if now >= last_heard + SILENCE_LIMIT {
                break format!("nothing received for {SILENCE_LIMIT:?}");
            }
        }
        tokio::select! {
            frame = ws.next() => match frame {
                None => break "closed by Slack".into(),
                Some(Err(e)) => break format!("read failed: {e}"),
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    match read_frame(&text) {
                        Read::Hello => {
                            greeted = true;
                            let _ = events.send(ConnEvent::Hello);
                        }
                        Read::Disconnect(reason) if reason == "link_disabled" => {
                            let _ = events.send(ConnEvent::LinkDisabled);
                            closing_at.get_or_insert(Instant::now());
                        }
                        Read::Disconnect(reason) => {
                            if refresh_at.is_none() {
                                refresh_at = Some(Instant::now());
                                let _ = events.send(ConnEvent::Refresh(reason));
                            }
                        }
                        Read::Envelope(envelope) => {
                            in_flight += 1;
                            let state = state.clone();
                            let acks = acks_tx.clone();
                            tokio::spawn(async move {
                                let route = format!("socket:{}", envelope.kind);
                                let started = std::time::Instant::now();
                                let ack = handle_envelope(&state, envelope).await;
                                state.metrics.observe(
                                    "servo_sla_bot_http_request_duration_seconds",
                                    &[("route", &route)],
                                    started.elapsed().as_secs_f64(),
                                );
                                let _ = acks.send(ack);
                            });
                        }
                        Read::Other(what) => {
                            tracing::debug!(connection = serial, what = %what, "Socket Mode: a frame the bot ignores");
                        }
                    }
                }
                // Pings are answered by the websocket layer as it reads.
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            Some(ack) = acks.recv() => {
                in_flight -= 1;
                if let Some(frame) = ack {
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        break format!("sending an ack failed: {e}");
                    }
                }
            }
            _ = ping.tick() => {
                if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                    break format!("sending a ping failed: {e}");
                }
            }
            changed = retire.changed(), if !retire_seen => {
                retire_seen = changed.is_err() || *retire.borrow();
            }
            changed = stop.changed(), if !stop_seen => {
                stop_seen = changed.is_err() || *stop.borrow();
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    };
    if closing_at.is_some() {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        tracing::info!(connection = serial, "Socket Mode: connection closed");
    } else if in_flight > 0 {
        tracing::warn!(
            connection = serial,
            in_flight,
            "Socket Mode: the connection dropped with acks pending; Slack will redeliver those envelopes"
        );
    }
    let _ = events.send(ConnEvent::Ended(why));
}

enum Read {
    Hello,
    Disconnect(String),
    Envelope(Envelope),
    Other(String),
}

fn read_frame(text: &str) -> Read {
    let frame: Frame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return Read::Other(format!("not a Socket Mode frame: {e}")),
    };
    if let Some(id) = frame.envelope_id.filter(|id| !id.is_empty()) {
        if frame.retry_attempt > 0 {
            tracing::info!(envelope_id = %id, kind = %frame.kind, attempt = frame.retry_attempt, reason = %frame.retry_reason, "Socket Mode: a redelivered envelope");
        }
        return Read::Envelope(Envelope {
            id,
            kind: frame.kind,
            payload: frame.payload,
            accepts_response_payload: frame.accepts_response_payload,
            retry_attempt: frame.retry_attempt,
        });
    }
    match frame.kind.as_str() {
        "hello" => Read::Hello,
        "disconnect" => Read::Disconnect(frame.reason.unwrap_or_else(|| "unknown".into())),
        other => Read::Other(other.to_string()),
    }
}

/// Handles one envelope once, however often it is delivered, and returns
/// the ack frame to send (`None`: send none, so Slack redelivers it).
async fn handle_envelope(state: &AppState, envelope: Envelope) -> Option<String> {
    let id = envelope.id.clone();
    let kind = envelope.kind.clone();
    let count = |outcome: &str| {
        state.metrics.inc(
            "servo_sla_bot_socket_envelopes_total",
            &[("type", &kind), ("outcome", outcome)],
        )
    };
    let stale_after = chrono::TimeDelta::from_std(CLAIM_STALE).unwrap_or_default();
    let payload = match state.store.claim_envelope(&id, &kind, stale_after).await {
        Err(e) => {
            // Unacked, Slack sends it again; by then the store may answer.
            tracing::error!(envelope_id = %id, error = %e, "Socket Mode: could not record an envelope");
            count("store_error");
            return None;
        }
        Ok(EnvelopeClaim::Answered(payload)) => {
            tracing::info!(envelope_id = %id, attempt = envelope.retry_attempt, "Socket Mode: already handled; acked again with the same answer");
            count("redelivered");
            payload
        }
        Ok(EnvelopeClaim::Busy) => match wait_for_answer(state, &id).await {
            Some(payload) => {
                count("redelivered");
                payload
            }
            None => {
                tracing::info!(envelope_id = %id, "Socket Mode: still being handled; not acked, so Slack redelivers it");
                count("busy");
                return None;
            }
        },
        Ok(EnvelopeClaim::Claimed) => {
            let accepts_payload = envelope.accepts_response_payload;
            let ack = dispatch(state, envelope).await;
            if let Ack::Malformed(why) = &ack {
                tracing::warn!(envelope_id = %id, kind = %kind, reason = %why, "Socket Mode: a malformed envelope, acked and dropped");
            }
            if ack == Ack::Retry {
                if let Err(e) = state.store.release_envelope(&id).await {
                    tracing::warn!(envelope_id = %id, error = %e, "Socket Mode: could not release an envelope");
                }
                count("retry");
                return None;
            }
            let payload = ack.payload_text().filter(|_| accepts_payload);
            if let Err(e) = state
                .store
                .answer_envelope(&id, payload.as_deref(), state.clock.now())
                .await
            {
                tracing::error!(envelope_id = %id, error = %e, "Socket Mode: handled, but could not record it");
            }
            count("handled");
            payload
        }
    };
    Some(ack_frame(&id, payload.as_deref()))
}

/// Polls for the answer of an envelope another delivery is handling.
async fn wait_for_answer(state: &AppState, id: &str) -> Option<Option<String>> {
    let deadline = Instant::now() + BUSY_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(Some(answer)) = state.store.envelope_answer(id).await {
            return Some(answer);
        }
    }
    None
}

/// The same handlers as the HTTP routes, fed from the envelope's payload.
async fn dispatch(state: &AppState, envelope: Envelope) -> Ack {
    match envelope.kind.as_str() {
        "slash_commands" => match serde_json::from_value::<SlashCommand>(envelope.payload) {
            Ok(cmd) => handlers::slash_command(state, cmd).await,
            Err(e) => Ack::Malformed(format!("malformed slash command payload: {e}")),
        },
        "interactive" => handlers::interaction(state, envelope.payload).await,
        "events_api" => handlers::event(state, envelope.payload).await,
        other => {
            tracing::info!(
                kind = other,
                "Socket Mode: an envelope type the bot does not handle"
            );
            Ack::Empty
        }
    }
}

/// `{"envelope_id": id}`, with `"payload"` when there is an answer (JSON text).
fn ack_frame(id: &str, payload: Option<&str>) -> String {
    let id = Value::from(id).to_string();
    match payload {
        Some(p) => format!("{{\"envelope_id\":{id},\"payload\":{p}}}"),
        None => format!("{{\"envelope_id\":{id}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn acks_carry_the_envelope_id_and_the_answer_as_json() {
        let plain: Value = serde_json::from_str(&ack_frame("e\"1", None)).unwrap();
        assert_eq!(plain, json!({"envelope_id": "e\"1"}));
        let with: Value = serde_json::from_str(&ack_frame("e1", Some(r#"{"text":"hi"}"#))).unwrap();
        assert_eq!(
            with,
            json!({"envelope_id": "e1", "payload": {"text": "hi"}})
        );
    }

    #[test]
    fn frames_are_told_apart() {
        assert!(matches!(
            read_frame(r#"{"type":"hello","num_connections":1}"#),
            Read::Hello
        ));
        assert!(matches!(
            read_frame(r#"{"type":"disconnect","reason":"refresh_requested"}"#),
            Read::Disconnect(r) if r == "refresh_requested"
        ));
        match read_frame(
            r#"{"envelope_id":"abc","type":"interactive","payload":{"type":"block_actions"},"accepts_response_payload":false,"retry_attempt":1,"retry_reason":"timeout"}"#,
        ) {
            Read::Envelope(e) => {
                assert_eq!(e.id, "abc");
                assert_eq!(e.kind, "interactive");
                assert_eq!(e.payload["type"], "block_actions");
                assert!(!e.accepts_response_payload);
                assert_eq!(e.retry_attempt, 1);
            }
            _ => panic!("an envelope"),
        }
        assert!(matches!(read_frame("not json"), Read::Other(_)));
    }

    #[test]
    fn reconnect_backoff_grows_with_jitter_and_is_capped() {
        for n in 1..40 {
            let b = reconnect_backoff(n);
            assert!(b <= MAX_BACKOFF, "{n}: {b:?}");
            assert!(b >= Duration::from_millis(500), "{n}: {b:?}");
        }
        assert!(reconnect_backoff(1) <= Duration::from_secs(1));
        assert!(reconnect_backoff(4) >= Duration::from_secs(4));
        assert!(reconnect_backoff(30) >= MAX_BACKOFF / 2);
    }
}
