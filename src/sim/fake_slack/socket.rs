//! The fake's Socket Mode side: the websocket server behind the URLs
//! `apps.connections.open` hands out, and the test API that drives it.
//!
//! Like Slack, it accepts each URL once, says `hello` first, and expects
//! every envelope to be acked with its `envelope_id` within
//! [`SOCKET_ACK_DEADLINE`]. Tests push envelopes, read the acks (with how
//! long each took), send `disconnect`, ping, and drop a socket without a
//! closing handshake.

use super::wire::{Refusal, Reply};
use super::{FakeSlack, Shared, Workspace, APP_ID, SOCKET_ACK_DEADLINE};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;

const WAIT_POLL: Duration = Duration::from_millis(10);

/// An envelope as Slack sends it over the socket.
#[derive(Clone, Debug, PartialEq)]
pub struct SocketEnvelope {
    pub envelope_id: String,
    /// `slash_commands`, `interactive` or `events_api`.
    pub kind: String,
    pub payload: Value,
    pub accepts_response_payload: bool,
    pub retry_attempt: u32,
    pub retry_reason: String,
}

impl SocketEnvelope {
    /// A first delivery with a fresh id. Slack lets slash commands and
    /// modal submissions answer in the ack; clicks and events do not.
    pub fn new(kind: &str, payload: Value) -> Self {
        let accepts = match kind {
            "slash_commands" => true,
            "interactive" => payload["type"] == "view_submission",
            _ => false,
        };
        SocketEnvelope {
            envelope_id: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_string(),
            payload,
            accepts_response_payload: accepts,
            retry_attempt: 0,
            retry_reason: String::new(),
        }
    }

    /// A slash command: `fields` are the HTTP form's fields, as a JSON object.
    pub fn slash_command(fields: Value) -> Self {
        Self::new("slash_commands", fields)
    }

    /// A button click or modal submission: the HTTP `payload` field's JSON.
    pub fn interactive(payload: Value) -> Self {
        Self::new("interactive", payload)
    }

    /// An Events API body (`event_callback`).
    pub fn events_api(body: Value) -> Self {
        Self::new("events_api", body)
    }

    /// The same envelope sent again because its ack did not arrive.
    pub fn redelivery(&self) -> Self {
        SocketEnvelope {
            retry_attempt: self.retry_attempt + 1,
            retry_reason: "timeout".into(),
            ..self.clone()
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "envelope_id": self.envelope_id,
            "type": self.kind,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
            "retry_attempt": self.retry_attempt,
            "retry_reason": self.retry_reason,
        })
    }
}

/// An ack the fake received.
#[derive(Clone, Debug, PartialEq)]
pub struct SocketAck {
    pub envelope_id: String,
    /// The ack's `payload`, if it had one.
    pub payload: Option<Value>,
    /// The connection it came in on (1 is the first ever opened).
    pub connection: u32,
    /// How long after the envelope's (last) delivery it arrived.
    pub after: Duration,
}

/// What a test can make the fake do on one connection.
enum Push {
    Text(String),
    Ping,
    /// Close the TCP connection with no closing handshake.
    Drop,
}

struct Live {
    id: u32,
    tx: mpsc::UnboundedSender<Push>,
}

/// The websocket side of the workspace.
#[derive(Default)]
pub(super) struct Sockets {
    /// Unspent tickets from `apps.connections.open`.
    pub(super) tickets: HashSet<String>,
    /// Connections opened so far; also the id of the newest.
    opened: u32,
    live: Vec<Live>,
    /// Connections the bot closed with a close frame.
    closed_by_bot: Vec<u32>,
    /// When each envelope was last sent.
    sent: HashMap<String, Instant>,
    acks: Vec<SocketAck>,
    /// Acks that "did not reach Slack" (see [`FakeSlack::lose_next_socket_ack`]).
    lost: Vec<SocketAck>,
    lose_next_ack: bool,
    pongs: u32,
    /// Handshakes refused for a missing, unknown or spent ticket.
    refused: u32,
}

async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // An error means every sender is gone: stopped too.
    let _ = stopped.wait_for(|s| *s).await;
}

/// Accepts websocket connections until the fake stops.
pub(super) async fn serve_sockets(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    tokio::spawn(connection(shared.clone(), tcp, stopped.clone()));
                }
            }
            _ = until_stopped(&mut stopped) => break,
        }
    }
}

// The handshake callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn connection(shared: Arc<Shared>, tcp: TcpStream, mut stopped: watch::Receiver<bool>) {
    let check = shared.clone();
    // Each URL works once, as Slack's do.
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let ticket = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("ticket="))
            .unwrap_or("");
        let mut ws = check.lock();
        if ws.socket.tickets.remove(ticket) {
            Ok(resp)
        } else {
            ws.socket.refused += 1;
            let mut refusal = ErrorResponse::new(Some("invalid or already used ticket".into()));
            *refusal.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            Err(refusal)
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, count) = {
        let mut w = shared.lock();
        w.socket.opened += 1;
        let id = w.socket.opened;
        w.socket.live.push(Live { id, tx });
        (id, w.socket.live.len())
    };
    let hello = json!({
        "type": "hello",
        "num_connections": count,
        "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": APP_ID},
    });
    if ws.send(Message::text(hello.to_string())).await.is_ok() {
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    None | Some(Err(_)) => break,
                    Some(Ok(Message::Text(text))) => {
                        if record_ack(&shared, id, &text) {
                            // The ack is lost in transit: Slack never saw it.
                            break;
                        }
                    }
                    Some(Ok(Message::Pong(_))) => {
                        shared.lock().socket.pongs += 1;
                    }
                    Some(Ok(Message::Close(_))) => {
                        shared.lock().socket.closed_by_bot.push(id);
                    }
                    Some(Ok(_)) => {}
                },
                push = rx.recv() => {
                    let sent = match push {
                        Some(Push::Text(t)) => ws.send(Message::text(t)).await,
                        Some(Push::Ping) => ws.send(Message::Ping(Default::default())).await,
                        Some(Push::Drop) | None => break,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                _ = until_stopped(&mut stopped) => break,
            }
        }
    }
    // Dropping the stream closes the TCP connection; after a Drop, or a lost
    // ack, without any closing handshake.
    shared.lock().socket.live.retain(|l| l.id != id);
}

/// Records one ack; true when it is to be "lost" and the connection dropped.
fn record_ack(shared: &Shared, connection: u32, text: &str) -> bool {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let Some(id) = frame.get("envelope_id").and_then(Value::as_str) else {
        return false;
    };
    let mut w = shared.lock();
    let after = w
        .socket
        .sent
        .get(id)
        .map(|t| t.elapsed())
        .unwrap_or_default();
    let ack = SocketAck {
        envelope_id: id.to_string(),
        payload: frame.get("payload").cloned(),
        connection,
        after,
    };
    if std::mem::take(&mut w.socket.lose_next_ack) {
        w.socket.lost.push(ack);
        return true;
    }
    w.socket.acks.push(ack);
    false
}

impl FakeSlack {
    /// How many websocket connections have been opened.
    pub fn socket_connections_opened(&self) -> u32 {
        self.state().socket.opened
    }

    /// The ids of the connections open now, oldest first.
    pub fn live_socket_connections(&self) -> Vec<u32> {
        self.state().socket.live.iter().map(|l| l.id).collect()
    }

    /// Connections the bot closed with a closing handshake.
    pub fn socket_connections_closed_by_bot(&self) -> Vec<u32> {
        self.state().socket.closed_by_bot.clone()
    }

    /// Handshakes refused for a bad or spent ticket.
    pub fn socket_handshakes_refused(&self) -> u32 {
        self.state().socket.refused
    }

    /// Waits until connection `n` (the `n`-th ever opened) is open.
    pub async fn wait_for_socket_connection(&self, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.live_socket_connections().contains(&n) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "fake Slack: waited {timeout:?} for socket connection #{n}; {} opened, live: {:?}",
                    self.socket_connections_opened(),
                    self.live_socket_connections()
                );
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Waits until connection `n` is closed.
    pub async fn wait_for_socket_closed(&self, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.live_socket_connections().contains(&n) {
            if Instant::now() >= deadline {
                panic!("fake Slack: socket connection #{n} still open after {timeout:?}");
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    fn push(&self, connection: Option<u32>, push: Push) -> u32 {
        let w = self.state();
        let live = match connection {
            Some(id) => w.socket.live.iter().find(|l| l.id == id),
            None => w.socket.live.last(),
        };
        let live = live.unwrap_or_else(|| {
            panic!("fake Slack: no open socket connection {connection:?} to send on")
        });
        let _ = live.tx.send(push);
        live.id
    }

    /// Sends an envelope on the newest connection; returns that connection.
    pub fn send_envelope(&self, envelope: &SocketEnvelope) -> u32 {
        self.send_envelope_on(None, envelope)
    }

    /// Sends an envelope on connection `connection` (`None`: the newest).
    pub fn send_envelope_on(&self, connection: Option<u32>, envelope: &SocketEnvelope) -> u32 {
        self.state()
            .socket
            .sent
            .insert(envelope.envelope_id.clone(), Instant::now());
        self.push(connection, Push::Text(envelope.to_json().to_string()))
    }

    /// Every ack received for `envelope_id`, in order.
    pub fn socket_acks_for(&self, envelope_id: &str) -> Vec<SocketAck> {
        self.state()
            .socket
            .acks
            .iter()
            .filter(|a| a.envelope_id == envelope_id)
            .cloned()
            .collect()
    }

    pub fn socket_acks(&self) -> Vec<SocketAck> {
        self.state().socket.acks.clone()
    }

    /// Waits for the `n`-th ack of `envelope_id`.
    pub async fn wait_for_ack(
        &self,
        envelope_id: &str,
        n: usize,
        timeout: Duration,
    ) -> Option<SocketAck> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ack) = self.socket_acks_for(envelope_id).into_iter().nth(n - 1) {
                return Some(ack);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Sends an envelope on the newest connection and returns its ack,
    /// failing the test unless it came within Slack's 3 seconds.
    pub async fn deliver(&self, envelope: &SocketEnvelope) -> SocketAck {
        let before = self.socket_acks_for(&envelope.envelope_id).len();
        self.send_envelope(envelope);
        let ack = self
            .wait_for_ack(&envelope.envelope_id, before + 1, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "fake Slack: envelope {} ({}) was never acked",
                    envelope.envelope_id, envelope.kind
                )
            });
        assert!(
            ack.after <= SOCKET_ACK_DEADLINE,
            "envelope {} acked after {:?}: Slack would have redelivered it",
            envelope.envelope_id,
            ack.after
        );
        ack
    }

    /// The next ack "does not reach Slack": it is recorded in
    /// [`FakeSlack::lost_socket_acks`], not as an ack, and the connection it
    /// came on is dropped at once (as when the network fails mid-write).
    pub fn lose_next_socket_ack(&self) {
        self.state().socket.lose_next_ack = true;
    }

    pub fn lost_socket_acks(&self) -> Vec<SocketAck> {
        self.state().socket.lost.clone()
    }

    /// Sends `{"type":"disconnect","reason":reason}` on the newest connection.
    pub fn send_disconnect(&self, reason: &str) -> u32 {
        let frame = json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "fake-slack"},
        });
        self.push(None, Push::Text(frame.to_string()))
    }

    /// Drops the newest connection with no closing handshake.
    pub fn drop_socket(&self) -> u32 {
        self.push(None, Push::Drop)
    }

    /// Sends a websocket ping on the newest connection.
    pub fn ping_socket(&self) -> u32 {
        self.push(None, Push::Ping)
    }

    /// Pongs received.
    pub fn socket_pongs(&self) -> u32 {
        self.state().socket.pongs
    }
}

impl Workspace {
    /// A single-use websocket URL; its ticket is spent by the handshake.
    pub(super) fn connections_open(&mut self) -> Result<Reply, Refusal> {
        let addr = self
            .socket_addr
            .ok_or_else(|| Refusal::new("internal_error"))?;
        let ticket = uuid::Uuid::new_v4().simple().to_string();
        self.socket.tickets.insert(ticket.clone());
        Ok(Reply::new(json!({
            "ok": true,
            "url": format!("ws://{addr}/link/?ticket={ticket}&app_id={APP_ID}"),
        })))
    }
}
