//! A fake Slack Web API: the integration tests run the bot against it, and
//! `servo-sla-bot simulate` records a scenario's Slack traffic with it.
//!
//! It speaks the parts of Slack's HTTP contract that the bot's client depends
//! on, so the client is exercised end to end rather than mocked:
//!
//! - `POST /api/<method>` with `Authorization: Bearer <token>`, the body JSON
//!   or form-encoded; `ok:false` errors come back on HTTP 200, and every
//!   answer is `Content-Type: application/json` because the client reads
//!   anything else as `{}`.
//! - `POST /response/<id>`: slash-command `response_url`s, usable five times.
//! - Block Kit limits that make real Slack answer `invalid_blocks` (or, for
//!   `views.open`, `invalid_arguments`), reported the way Slack reports them:
//!   `response_metadata.messages` entries ending in `[json-pointer:/...]`.
//! - Queued faults (429, 500, held-then-503, `ok:false`) and, when switched
//!   on, Slack's per-method rate limits.
//! - Files, through Slack's external upload flow:
//!   `files.getUploadURLExternal` (form or query arguments only, as on real
//!   Slack, which ignores a JSON body there) hands out a file ID and an
//!   upload URL back into this fake (`POST /upload/<file_id>`, raw bytes or
//!   multipart, answered `200 OK - <n>`); `files.completeUploadExternal`
//!   shares uploaded files once each. Completed files are kept as
//!   [`UploadedFile`]s ([`FakeSlack::files`]).
//! - Socket Mode: `apps.connections.open` takes only the app-level token
//!   (`xapp-…`) and answers a single-use `ws://127.0.0.1:PORT/link/?ticket=…`
//!   URL; the websocket server behind it says `hello`, lets a test push
//!   envelopes and await their acks (timed against Slack's 3 seconds), send
//!   `disconnect`, ping, or drop the socket abruptly, and counts connections.
//!
//! - People and groups by name: `users.info` answers the display name (and
//!   real name) set with [`FakeSlack::set_user_name`]; `usergroups.list`
//!   every group set with [`FakeSlack::set_usergroup`], with its handle
//!   ([`FakeSlack::set_usergroup_handle`]; the ID lowercased by default) and,
//!   as on Slack, its members only with `include_users=true`.
//! - `chat.getPermalink` (`channel`, `message_ts`; a user ID stands for that
//!   user's DM) links a message that exists, a thread reply's link naming
//!   its thread (`?thread_ts=…&cid=…`); `message_not_found` or
//!   `channel_not_found` otherwise.
//! - A thread reply posted with `reply_broadcast` (JSON `true`, or `"true"`
//!   in a form body) is marked [`Message::broadcast`]; without `thread_ts`
//!   the flag is ignored, as Slack ignores it.
//! - Elements: each block takes only the element types Slack allows there
//!   (an actions block, an input block, a section accessory); `overflow`
//!   holds 2 to 5 plain-text options, `radio_buttons` and `checkboxes` 1 to
//!   10 (plain text or mrkdwn), option texts 75 characters and values 150,
//!   an `initial_option(s)` must be one of the options, and a
//!   `datetimepicker`'s `initial_date_time` is an integer of UNIX seconds.
//!   A top-level `text` over 40,000 characters is `msg_too_long`.
//! - History: `conversations.history` (top-level messages and broadcast
//!   replies, newest first) and `conversations.replies` (a thread: its
//!   parent, then its replies earliest first, as Slack returns them), in
//!   pages of `limit` with `oldest`, `latest`, `inclusive` and cursors, with
//!   each message's `metadata` when `include_all_metadata` is set; and the
//!   faults [`Fault::LostAnswer`], where Slack acts on a call but its answer
//!   never arrives, and [`Fault::HeldAnswer`], where it arrives late.
//! - Membership: a channel set with [`FakeSlack::require_membership`] refuses
//!   posts with `not_in_channel` until the bot joins (`conversations.join`,
//!   public channels only) or is invited ([`FakeSlack::invite_bot`]).
//! - People's own doings: a message someone deleted
//!   ([`FakeSlack::delete_message`]) is gone, and editing it is refused with
//!   `message_not_found`; an archived channel ([`FakeSlack::archive_channel`])
//!   refuses posts and edits with `is_archived` until it is unarchived.
//!
//! Every request, including refused and fault-injected ones, is logged as a
//! [`Call`] so tests can assert on exactly what the bot sent.
//!
//! Posting to a user ID (`U…`/`W…`) lands in that user's DM channel, whose
//! ID (`D` + user ID, see [`FakeSlack::dm_channel_for`]) is what the answer
//! carries and what [`Message::channel`] holds: real Slack does the same, and
//! `chat.update` with the user ID instead of the DM ID fails there too.
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod socket;
use socket::{serve_sockets, Sockets};
pub use socket::{SocketAck, SocketEnvelope};

/// The token [`FakeSlack::start`] accepts.
pub const DEFAULT_TOKEN: &str = "xoxb-test-token";
/// The app-level token `apps.connections.open` accepts.
pub const DEFAULT_APP_TOKEN: &str = "xapp-1-A0TESTAPP-1-0123456789abcdef";
/// The app id the fake's `hello` names.
pub const APP_ID: &str = "A0TESTAPP";
/// Slack's deadline for an envelope's ack; later, it redelivers.
pub const SOCKET_ACK_DEADLINE: Duration = Duration::from_secs(3);

/// Slack's answer-level warning for a message with blocks but no top-level
/// `text` (the fallback used in notifications and by screen readers).
pub const MISSING_TEXT_WARNING: &str = "missing_text_or_fallback_or_blocks";

const MESSAGE_MAX_BLOCKS: usize = 50;
const MODAL_MAX_BLOCKS: usize = 100;
const RESPONSE_URL_MAX_USES: u32 = 5;
/// Far above any message Slack accepts; only guards the fake against a runaway client.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
const WAIT_POLL: Duration = Duration::from_millis(10);
/// A shutdown waits this long for in-flight requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Counter-based timestamps start here so they look like real Slack `ts` values.
const TS_EPOCH_SECS: u64 = 1_700_000_000;

const METHODS: &[&str] = &[
    "apps.connections.open",
    "chat.postMessage",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "chat.update",
    "chat.postEphemeral",
    "conversations.open",
    "views.open",
    "views.update",
    "views.publish",
    "usergroups.users.list",
    "usergroups.list",
    "users.info",
    "chat.getPermalink",
    "conversations.join",
    "conversations.history",
    "conversations.replies",
];

const BLOCK_TYPES: &[&str] = &[
    "section",
    "header",
    "divider",
    "actions",
    "context",
    "image",
    "input",
    "rich_text",
    "markdown",
];

/// Real Slack takes GET (arguments in the query string) for any method; the
/// fake takes it only where the bot uses it, so a GET anywhere else still
/// shows up as a client mistake. slack-morphism asks for an upload URL with GET.
const GET_METHODS: &[&str] = &["files.getUploadURLExternal"];

/// The name [`Call`]s to upload URLs are logged under, and the key that
/// [`FakeSlack::fail_next`] takes for them.
pub const UPLOAD_CALL: &str = "upload_url";

/// Slack's limit on `alt_txt` in `files.getUploadURLExternal`.
const ALT_TXT_MAX_CHARS: usize = 1000;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// One request the fake received, in arrival order.
#[derive(Clone, Debug)]
pub struct Call {
    /// The Web API method, `response_url:{id}` for a response URL, or the
    /// request path for anything else.
    pub method: String,
    /// The arguments as a JSON object (form fields become strings, with
    /// `blocks`/`attachments` JSON text parsed); the raw text when the body
    /// could not be parsed.
    pub body: Value,
    /// When the request arrived.
    pub at: Instant,
    /// `"ok"`, the `error` code answered, `"429"`, `"500"` or `"timeout"`.
    pub outcome: String,
    /// Which rule was broken, for refusals where that is not obvious from
    /// the code (e.g. every Block Kit violation behind `invalid_blocks`).
    pub error_detail: Option<String>,
    /// Warnings sent back with a successful answer.
    pub warnings: Vec<String>,
}

impl Call {
    pub fn is_ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// A message as it currently stands in a channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The channel it is in (a DM's `D…` ID when it was posted to a user ID).
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    /// Empty when none was given.
    pub text: String,
    /// An empty array when none were given.
    pub blocks: Value,
    /// Legacy attachments (the bot puts its alert colour bar and buttons
    /// there); an empty array when none were given.
    pub attachments: Value,
    /// How many successful `chat.update`s it has had.
    pub edits: u32,
    /// A thread reply also shown in the channel (`reply_broadcast: true`).
    pub broadcast: bool,
    /// The message metadata it was posted with (`Value::Null` when none).
    pub metadata: Value,
}

/// A file shared by `files.completeUploadExternal`.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadedFile {
    /// The file ID `files.getUploadURLExternal` gave it.
    pub id: String,
    pub channel: String,
    pub thread_ts: Option<String>,
    pub filename: String,
    /// The title given on completion, else the filename (as Slack does).
    pub title: String,
    /// `alt_txt` from `files.getUploadURLExternal`; empty when none was given.
    pub alt_text: String,
    pub initial_comment: Option<String>,
    pub bytes: Vec<u8>,
}

/// A file between `files.getUploadURLExternal` and its completion.
#[derive(Clone, Debug)]
struct PendingFile {
    filename: String,
    length: usize,
    alt_text: String,
    /// `None` until its bytes arrive at the upload URL.
    bytes: Option<Vec<u8>>,
}

/// A modal opened with `views.open`.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub id: String,
    pub trigger_id: String,
    /// The view as submitted, plus the `id` the fake gave it.
    pub view: Value,
}

/// A failure to answer with instead of handling a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// HTTP 429, `Retry-After: N`, body `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 500, body `{"ok":false,"error":"internal_error"}`.
    ServerError,
    /// Holds the request this long, then answers HTTP 503: long enough holds
    /// make the client's own timeout fire first.
    Timeout(Duration),
    /// HTTP 200 with `{"ok":false,"error":<code>}`.
    Error(String),
    /// Slack accepts the call (a post is posted), but its answer is lost:
    /// HTTP 503 after the work is done, as when the connection drops after
    /// Slack acted.
    LostAnswer,
    /// Slack accepts the call (a post is posted) and holds its answer this
    /// long before giving it: a bot killed meanwhile never learns the `ts`.
    HeldAnswer(Duration),
}

/// A running fake. Clones share one server; it stops when the last clone is
/// dropped or on [`FakeSlack::shutdown`].
#[derive(Clone)]
pub struct FakeSlack {
    handle: Arc<Handle>,
}

/// Owned only by `FakeSlack` clones, never by the server task, so dropping
/// the last clone drops `stop` and that is what tells the server to end.
struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    socket_task: Mutex<Option<JoinHandle<()>>>,
}

impl FakeSlack {
    /// Starts a fake that accepts [`DEFAULT_TOKEN`].
    pub async fn start() -> FakeSlack {
        Self::start_with_token(DEFAULT_TOKEN).await
    }

    /// Starts a fake on `127.0.0.1:0` that accepts only `token` (and
    /// [`DEFAULT_APP_TOKEN`] for `apps.connections.open`).
    pub async fn start_with_token(token: &str) -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Slack: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake Slack: local address");
        let sockets = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Slack: bind the websocket listener");
        let socket_addr = sockets.local_addr().expect("fake Slack: websocket address");
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            token: token.to_string(),
            app_token: DEFAULT_APP_TOKEN.to_string(),
            state: Mutex::new(Workspace {
                socket_addr: Some(socket_addr),
                api_addr: Some(addr),
                ..Workspace::default()
            }),
            stopped: stopped.clone(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let socket_task = tokio::spawn(serve_sockets(sockets, shared.clone(), stopped.clone()));
        let task = tokio::spawn(async move {
            let mut stopped = stopped;
            let signal = async move {
                // An error means every sender is gone: the last clone was dropped.
                let _ = stopped.wait_for(|s| *s).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
        });
        FakeSlack {
            handle: Arc::new(Handle {
                shared,
                addr,
                stop,
                task: Mutex::new(Some(task)),
                socket_task: Mutex::new(Some(socket_task)),
            }),
        }
    }

    /// The DM channel ID the fake uses for `user`, as `conversations.open`
    /// answers and as posting to the user ID resolves to.
    pub fn dm_channel_for(user: &str) -> String {
        format!("D{user}")
    }

    pub fn token(&self) -> String {
        self.handle.shared.token.clone()
    }

    /// The app-level token (`xapp-…`) Socket Mode connects with.
    pub fn app_token(&self) -> String {
        self.handle.shared.app_token.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// `http://127.0.0.1:PORT/api/`; the client appends the method name.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/", self.handle.addr)
    }

    /// A `response_url` for a slash command or interaction payload.
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/response/{id}", self.handle.addr)
    }

    /// What `usergroups.users.list` answers for `usergroup`.
    pub fn set_usergroup(&self, usergroup: &str, users: &[&str]) {
        self.state().usergroups.insert(
            usergroup.to_string(),
            users.iter().map(|u| u.to_string()).collect(),
        );
    }

    /// The handle `usergroups.list` gives a group (`oncall` for `@oncall`).
    pub fn set_usergroup_handle(&self, usergroup: &str, handle: &str) {
        self.state()
            .handles
            .insert(usergroup.to_string(), handle.to_string());
    }

    /// The bot is not in `channel`: posts there are refused with
    /// `not_in_channel` until it joins (`conversations.join`, for a public
    /// channel) or, for a private one, until [`FakeSlack::invite_bot`].
    pub fn require_membership(&self, channel: &str, private: bool) {
        self.state()
            .members_only
            .insert(channel.to_string(), private);
    }

    /// Someone invited the bot into `channel`.
    pub fn invite_bot(&self, channel: &str) {
        self.state().members_only.remove(channel);
    }

    /// Someone deleted the message `ts` in `channel` (its thread's replies
    /// stay): `chat.update` on it is refused with `message_not_found`.
    /// False when there was no such message.
    pub fn delete_message(&self, channel: &str, ts: &str) -> bool {
        let mut state = self.state();
        let before = state.messages.len();
        state
            .messages
            .retain(|m| !(m.channel == channel && m.ts == ts));
        state.messages.len() < before
    }

    /// Someone archived `channel`: posts and edits there are refused with
    /// `is_archived` until [`FakeSlack::unarchive_channel`].
    pub fn archive_channel(&self, channel: &str) {
        self.state().archived.insert(channel.to_string());
    }

    /// Someone unarchived `channel`.
    pub fn unarchive_channel(&self, channel: &str) {
        self.state().archived.remove(channel);
    }

    /// The time zone `users.info` gives a user: its name and its offset
    /// east of UTC in seconds.
    pub fn set_user_tz(&self, user: &str, tz: &str, offset_secs: i64) {
        self.state()
            .tzs
            .insert(user.to_string(), (tz.to_string(), offset_secs));
    }

    /// A user's App Home as last published, if ever.
    pub fn home(&self, user: &str) -> Option<Value> {
        self.state().homes.get(user).cloned()
    }

    /// The display name (and real name) `users.info` gives a user.
    pub fn set_user_name(&self, user: &str, display_name: &str) {
        self.state()
            .names
            .insert(user.to_string(), display_name.to_string());
    }

    /// Queues `faults` for the next calls to `method` (a Web API method,
    /// `response_url:{id}`, or `"*"` for any), consumed one per call in order.
    /// A method's own queue is used before the `"*"` queue. `method:channel`
    /// (e.g. `chat.postMessage:U0TIER1`) queues them for the calls whose
    /// `channel` argument is exactly that, used before the method's queue.
    pub fn fail_next(&self, method: &str, faults: Vec<Fault>) {
        self.state()
            .faults
            .entry(method.to_string())
            .or_default()
            .extend(faults);
    }

    /// Switches Slack's rate limits on or off (off by default). Switching on
    /// starts every bucket full.
    pub fn enforce_rate_limits(&self, on: bool) {
        self.state().buckets = on.then(HashMap::new);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls after the first `n`.
    pub fn calls_since(&self, n: usize) -> Vec<Call> {
        let state = self.state();
        state
            .calls
            .get(n..)
            .map(<[Call]>::to_vec)
            .unwrap_or_default()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Calls to `method` that were answered successfully.
    pub fn ok_calls_to(&self, method: &str) -> Vec<Call> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.method == method && c.is_ok())
            .cloned()
            .collect()
    }

    /// Every stored channel message, in posting order.
    pub fn messages(&self) -> Vec<Message> {
        self.state().messages.clone()
    }

    pub fn message(&self, channel: &str, ts: &str) -> Option<Message> {
        self.state()
            .messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
            .cloned()
    }

    /// The replies in the thread under `ts` (not the parent itself), oldest first.
    pub fn thread_replies(&self, channel: &str, ts: &str) -> Vec<Message> {
        self.state()
            .messages
            .iter()
            .filter(|m| m.channel == channel && m.thread_ts.as_deref() == Some(ts))
            .cloned()
            .collect()
    }

    /// Modals opened so far.
    pub fn views(&self) -> Vec<View> {
        self.state().views.clone()
    }

    /// Files shared so far by `files.completeUploadExternal`, in order.
    pub fn files(&self) -> Vec<UploadedFile> {
        self.state().files.clone()
    }

    /// Waits until at least `n` files have been shared and returns them;
    /// panics after `timeout` with every call received so far.
    pub async fn wait_for_files(&self, n: usize, timeout: Duration) -> Vec<UploadedFile> {
        let deadline = Instant::now() + timeout;
        loop {
            let files = self.files();
            if files.len() >= n {
                return files;
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .calls()
                    .iter()
                    .map(|c| match &c.error_detail {
                        Some(d) => format!("{} -> {} ({d})", c.method, c.outcome),
                        None => format!("{} -> {}", c.method, c.outcome),
                    })
                    .collect();
                panic!(
                    "fake Slack: waited {timeout:?} for {}, got {}; received: {seen:#?}",
                    crate::domain::text::count(n, "shared file", "shared files"),
                    files.len()
                );
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Waits until at least `n` calls to `method` have succeeded and returns
    /// them; panics after `timeout` with everything received so far.
    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.ok_calls_to(method);
            if ok.len() >= n {
                return ok;
            }
            if Instant::now() >= deadline {
                let calls = self.calls();
                let mut log = String::new();
                for c in &calls {
                    log.push_str(&format!("\n  {} -> {}", c.method, c.outcome));
                    if let Some(d) = &c.error_detail {
                        log.push_str(&format!(" ({d})"));
                    }
                }
                if calls.is_empty() {
                    log.push_str("\n  (none)");
                }
                panic!(
                    "fake Slack: waited {timeout:?} for {} to {method}, got {}; \
                     all {} received:{log}",
                    crate::domain::text::count(n, "ok call", "ok calls"),
                    ok.len(),
                    crate::domain::text::count(calls.len(), "call", "calls")
                );
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Waits for at least `n` ok calls whose method starts with `prefix`
    /// (e.g. `response_url:` for any response URL).
    pub async fn wait_for_calls_prefix(
        &self,
        prefix: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let ok: Vec<Call> = self
                .calls()
                .into_iter()
                .filter(|c| c.method.starts_with(prefix) && c.is_ok())
                .collect();
            if ok.len() >= n {
                return ok;
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .calls()
                    .iter()
                    .map(|c| format!("{} -> {}", c.method, c.outcome))
                    .collect();
                panic!(
                    "fake Slack: waited {timeout:?} for {} to {prefix}*, got {}; received: {seen:?}",
                    crate::domain::text::count(n, "ok call", "ok calls"),
                    ok.len()
                );
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Stops accepting connections and waits (boundedly) for in-flight
    /// requests; held [`Fault::Timeout`] requests are cut short. The logs
    /// stay readable afterwards.
    pub async fn shutdown(&self) {
        self.handle.stop.send_replace(true);
        let task = self
            .handle
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut task) = task {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        let socket_task = self
            .handle
            .socket_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = socket_task {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
        }
    }

    fn state(&self) -> MutexGuard<'_, Workspace> {
        self.handle.shared.lock()
    }
}

/// What the server task shares with the test's handles.
struct Shared {
    token: String,
    app_token: String,
    state: Mutex<Workspace>,
    stopped: watch::Receiver<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Workspace> {
        // A panicking test thread must not turn every later assertion into a
        // poison error that hides the real failure.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Workspace {
    calls: Vec<Call>,
    messages: Vec<Message>,
    views: Vec<View>,
    ts_counter: u64,
    view_counter: u64,
    faults: HashMap<String, VecDeque<Fault>>,
    usergroups: HashMap<String, Vec<String>>,
    /// A group's handle (`usergroups.list`); the id lowercased by default.
    handles: HashMap<String, String>,
    /// Display names (`users.info`); the id lowercased by default.
    names: HashMap<String, String>,
    /// Time zones (`users.info` `tz`, `tz_offset` in seconds east of UTC);
    /// Europe/London at +0 by default.
    tzs: HashMap<String, (String, i64)>,
    /// Each user's App Home as last published (`views.publish`).
    homes: HashMap<String, Value>,
    /// Channels that refuse the bot's posts (`not_in_channel`) until it is
    /// in them: public ones it may join, private ones (`true`) it must be
    /// invited to.
    members_only: HashMap<String, bool>,
    /// Archived channels: posts and edits there are refused (`is_archived`).
    archived: HashSet<String>,
    /// Sorted, deduplicated member list -> DM channel ID.
    dms: HashMap<Vec<String>, String>,
    response_url_uses: HashMap<String, u32>,
    /// `None` while rate limits are off.
    buckets: Option<HashMap<String, Bucket>>,
    /// Where the websocket server listens (what `apps.connections.open` hands out).
    socket_addr: Option<SocketAddr>,
    socket: Sockets,
    /// Where the Web API listens (what upload URLs point at).
    api_addr: Option<SocketAddr>,
    file_counter: u64,
    /// Upload tickets handed out and not yet completed, by file ID.
    pending_files: HashMap<String, PendingFile>,
    files: Vec<UploadedFile>,
}

/// The answer decided for one request, before it is turned into HTTP.
struct Answer {
    status: StatusCode,
    body: Value,
    /// Sent as `text/plain` instead of `body` (the upload endpoint's answers).
    text: Option<String>,
    retry_after: Option<u64>,
    hold: Option<Duration>,
    outcome: String,
    error_detail: Option<String>,
    warnings: Vec<String>,
}

impl Answer {
    fn ok(mut body: Value, warnings: Vec<String>) -> Self {
        if !warnings.is_empty() {
            // Slack's convention: a comma-joined `warning` plus the list.
            body["warning"] = json!(warnings.join(","));
            body["response_metadata"] = json!({ "warnings": warnings });
        }
        Answer {
            status: StatusCode::OK,
            body,
            text: None,
            retry_after: None,
            hold: None,
            outcome: "ok".into(),
            error_detail: None,
            warnings,
        }
    }

    fn error(code: &str) -> Self {
        Self::refused(Refusal::new(code))
    }

    fn refused(r: Refusal) -> Self {
        let mut body = json!({ "ok": false, "error": r.code });
        if !r.messages.is_empty() {
            body["response_metadata"] = json!({ "messages": r.messages });
        }
        Answer {
            status: StatusCode::OK,
            body,
            text: None,
            retry_after: None,
            hold: None,
            outcome: r.code,
            error_detail: r.detail,
            warnings: Vec::new(),
        }
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn rate_limited(retry_after_secs: u64, detail: Option<String>) -> Self {
        Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({ "ok": false, "error": "ratelimited" }),
            text: None,
            retry_after: Some(retry_after_secs),
            hold: None,
            outcome: "429".into(),
            error_detail: detail,
            warnings: Vec::new(),
        }
    }

    fn fault(fault: Fault) -> Self {
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
    fn text(status: StatusCode, text: String, outcome: &str, detail: Option<String>) -> Self {
        Answer {
            status,
            body: Value::Null,
            text: Some(text),
            retry_after: None,
            hold: None,
            outcome: outcome.into(),
            error_detail: detail,
            warnings: Vec::new(),
        }
    }

    fn into_response(self) -> Response {
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
struct Reply {
    body: Value,
    warnings: Vec<String>,
}

impl Reply {
    fn new(body: Value) -> Self {
        Reply {
            body,
            warnings: Vec::new(),
        }
    }
}

/// An `ok:false` method result.
struct Refusal {
    code: String,
    detail: Option<String>,
    /// Sent as `response_metadata.messages`, as Slack does for schema errors.
    messages: Vec<String>,
}

impl Refusal {
    fn new(code: &str) -> Self {
        Refusal {
            code: code.into(),
            detail: None,
            messages: Vec::new(),
        }
    }

    fn with_messages(code: &str, messages: Vec<String>) -> Self {
        Refusal {
            code: code.into(),
            detail: Some(messages.join("; ")),
            messages,
        }
    }
}

struct BodyError {
    code: &'static str,
    detail: String,
}

enum Route {
    Api(String),
    ResponseUrl(String),
    /// An upload URL handed out by `files.getUploadURLExternal`.
    Upload(String),
    Other,
}

fn route(path: &str) -> Route {
    if let Some(method) = path.strip_prefix("/api/") {
        if !method.is_empty() && !method.contains('/') {
            return Route::Api(method.to_string());
        }
    }
    if let Some(id) = path.strip_prefix("/response/") {
        if !id.is_empty() && !id.contains('/') {
            return Route::ResponseUrl(id.to_string());
        }
    }
    if let Some(id) = path.strip_prefix("/upload/") {
        if !id.is_empty() && !id.contains('/') {
            return Route::Upload(id.to_string());
        }
    }
    Route::Other
}

/// The only handler: routing by hand keeps every answer, including 404/405
/// and unreadable bodies, JSON and logged, which axum's extractors would not.
async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| e.to_string());
    let answer = shared.process(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        bytes,
        at,
    );
    if let Some(hold) = answer.hold {
        let mut stopped = shared.stopped.clone();
        tokio::select! {
            _ = tokio::time::sleep(hold) => {}
            _ = stopped.wait_for(|s| *s) => {}
        }
    }
    answer.into_response()
}

impl Shared {
    fn process(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        bytes: Result<Bytes, String>,
        at: Instant,
    ) -> Answer {
        let route = route(path);
        if let Route::Upload(id) = &route {
            return self.process_upload(method, id, headers, bytes, at);
        }
        let name = match &route {
            Route::Api(m) => m.clone(),
            Route::ResponseUrl(id) => format!("response_url:{id}"),
            Route::Upload(_) | Route::Other => path.to_string(),
        };
        let takes_get = matches!(&route, Route::Api(m) if GET_METHODS.contains(&m.as_str()));
        let parsed = match &bytes {
            // A GET's arguments are its query string.
            Ok(_) if *method == Method::GET && takes_get => {
                parse_form(query.unwrap_or("").as_bytes())
            }
            Ok(b) => parse_body(headers, b),
            Err(e) => Err(BodyError {
                code: "invalid_form_data",
                detail: format!("body could not be read: {e}"),
            }),
        };
        let logged_body = match (&parsed, &bytes) {
            (Ok(v), _) => v.clone(),
            (Err(_), Ok(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
            (Err(_), Err(_)) => Value::Null,
        };

        let mut ws = self.lock();
        let answer = if matches!(route, Route::Other) {
            Answer::error("not_found").with_status(StatusCode::NOT_FOUND)
        } else if *method != Method::POST && !(*method == Method::GET && takes_get) {
            // Real Slack also takes GET; the bot uses it only for
            // GET_METHODS, so refusing it elsewhere loudly catches a client
            // misconfiguration.
            Answer {
                error_detail: Some(format!("{method} is not supported by the fake")),
                ..Answer::error("method_not_allowed").with_status(StatusCode::METHOD_NOT_ALLOWED)
            }
        } else if let Some((m, after)) = match &route {
            Route::Api(m) => ws.answer_fault(&fault_keys(&name, &parsed)).map(|f| (m, f)),
            _ => None,
        } {
            // Slack did the work; the answer never arrives, or arrives late.
            let done = ws.api(m, &self.token, headers, parsed, at);
            match after {
                Fault::HeldAnswer(hold) => Answer {
                    hold: Some(hold),
                    outcome: "held_answer".into(),
                    error_detail: Some(format!(
                        "injected fault: answer held {hold:?} after {}",
                        done.outcome
                    )),
                    ..done
                },
                _ => Answer {
                    outcome: "lost_answer".into(),
                    error_detail: Some(format!(
                        "injected fault: answer lost after {}",
                        done.outcome
                    )),
                    ..Answer::error("request_timeout").with_status(StatusCode::SERVICE_UNAVAILABLE)
                },
            }
        } else if let Some(fault) = ws.take_fault(&fault_keys(&name, &parsed)) {
            Answer::fault(fault)
        } else {
            match &route {
                Route::Api(m) => {
                    // Socket Mode's method takes the app-level token, and only it.
                    let token = if m == "apps.connections.open" {
                        &self.app_token
                    } else {
                        &self.token
                    };
                    ws.api(m, token, headers, parsed, at)
                }
                Route::ResponseUrl(id) => ws.response_url(id, parsed),
                Route::Upload(_) | Route::Other => unreachable!("answered above"),
            }
        };
        ws.calls.push(Call {
            method: name,
            body: logged_body,
            at,
            outcome: answer.outcome.clone(),
            error_detail: answer.error_detail.clone(),
            warnings: answer.warnings.clone(),
        });
        answer
    }
}

impl Shared {
    /// `POST /upload/<file_id>`: the bytes of a file whose upload URL
    /// `files.getUploadURLExternal` handed out. Answers are plain text, as
    /// Slack's are: `200 OK - <n>`, or a 4xx for an unknown (or already
    /// completed) file ID and for a byte count other than the `length` given.
    fn process_upload(
        &self,
        method: &Method,
        id: &str,
        headers: &HeaderMap,
        bytes: Result<Bytes, String>,
        at: Instant,
    ) -> Answer {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let file = bytes
            .as_ref()
            .map_err(|e| format!("body could not be read: {e}"))
            .and_then(|b| upload_bytes(&content_type, b));
        let mut logged = json!({ "file_id": id, "content_type": content_type });
        if let Ok(f) = &file {
            logged["bytes"] = json!(f.len());
        }
        let mut ws = self.lock();
        let answer = if *method != Method::POST {
            Answer::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed".into(),
                "method_not_allowed",
                Some(format!("{method} to an upload URL")),
            )
        } else if let Some(fault) = ws.take_fault(&[UPLOAD_CALL.to_string(), "*".to_string()]) {
            Answer::fault(fault)
        } else {
            ws.upload(id, file)
        };
        ws.calls.push(Call {
            method: UPLOAD_CALL.to_string(),
            body: logged,
            at,
            outcome: answer.outcome.clone(),
            error_detail: answer.error_detail.clone(),
            warnings: Vec::new(),
        });
        answer
    }
}

/// The file in an upload's body: the body itself, or in a multipart body the
/// part that carries a filename (else the first part).
fn upload_bytes(content_type: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_start().starts_with("multipart/form-data") {
        return Ok(body.to_vec());
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or("a multipart body without a boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, &delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(end) = find(rest, &delimiter) else {
            return Err("a multipart part without its closing boundary".into());
        };
        let part = rest[..end].strip_prefix(b"\r\n").unwrap_or(&rest[..end]);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            return Err("a multipart part without headers".into());
        };
        let head = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        parts.push((head.contains("filename="), part[split + 4..].to_vec()));
        rest = &rest[end..];
    }
    let position = parts.iter().position(|(named, _)| *named).unwrap_or(0);
    parts
        .into_iter()
        .nth(position)
        .map(|(_, bytes)| bytes)
        .ok_or_else(|| "a multipart body without parts".into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Both content types Slack's Web API takes, as one JSON object.
fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, BodyError> {
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
fn parse_form(bytes: &[u8]) -> Result<Value, BodyError> {
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
fn check_auth(headers: &HeaderMap, token: &str) -> Result<(), &'static str> {
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
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// A non-empty string argument.
fn str_arg<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A boolean argument: JSON `true`, or `true`/`1` in a form body.
fn flag(body: &Value, key: &str) -> bool {
    match body.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn is_user_id(id: &str) -> bool {
    id.starts_with('U') || id.starts_with('W')
}

fn non_empty_array(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// The content arguments shared by the message-writing methods.
struct Content {
    text: Option<String>,
    /// `Some` when the `blocks` key was sent (an empty array clears blocks).
    blocks: Option<Value>,
    warnings: Vec<String>,
}

fn message_content(body: &Value) -> Result<Content, Refusal> {
    let text = str_arg(body, "text").map(str::to_string);
    let blocks = body.get("blocks").filter(|b| !b.is_null()).cloned();
    // A malformed (non-array) `blocks` is content that fails validation,
    // not missing content.
    let has_blocks = blocks
        .as_ref()
        .is_some_and(|b| b.as_array().is_none_or(|a| !a.is_empty()));
    if text.is_none() && !has_blocks && !non_empty_array(body.get("attachments")) {
        return Err(Refusal::new("no_text"));
    }
    // Slack keeps at most 40,000 characters of a message's text.
    if text.as_ref().is_some_and(|t| t.chars().count() > 40_000) {
        return Err(Refusal {
            detail: Some("text is longer than 40,000 characters".into()),
            ..Refusal::new("msg_too_long")
        });
    }
    let mut check = Check::default();
    if let Some(b) = &blocks {
        check.blocks(b, "/blocks", MESSAGE_MAX_BLOCKS);
    }
    // Attachments (the coloured bar) carry blocks under the same limits.
    if let Some(attachments) = body.get("attachments").filter(|a| !a.is_null()) {
        match attachments.as_array() {
            Some(list) if list.len() <= 100 => {
                for (i, a) in list.iter().enumerate() {
                    if let Some(b) = a.get("blocks") {
                        check.blocks(b, &format!("/attachments/{i}/blocks"), MESSAGE_MAX_BLOCKS);
                    }
                }
            }
            _ => check.errors.push(
                "[ERROR] attachments must be an array of at most 100 [json-pointer:/attachments]"
                    .into(),
            ),
        }
    }
    if !check.errors.is_empty() {
        return Err(Refusal::with_messages("invalid_blocks", check.errors));
    }
    let mut warnings = Vec::new();
    if has_blocks && text.is_none() {
        warnings.push(MISSING_TEXT_WARNING.to_string());
    }
    Ok(Content {
        text,
        blocks,
        warnings,
    })
}

/// The fault queues a call draws from, first to last: the method's for its
/// `channel` argument (`chat.postMessage:U0TIER1`), the method's, any call's.
fn fault_keys<E>(name: &str, parsed: &Result<Value, E>) -> Vec<String> {
    let channel = parsed
        .as_ref()
        .ok()
        .and_then(|b| b.get("channel"))
        .and_then(Value::as_str);
    let mut keys: Vec<String> = channel.map(|c| format!("{name}:{c}")).into_iter().collect();
    keys.extend([name.to_string(), "*".to_string()]);
    keys
}

impl Workspace {
    /// The next queued fault of the first of `keys` with one queued, when it
    /// is one that lets Slack act first ([`Fault::LostAnswer`],
    /// [`Fault::HeldAnswer`]), taking it.
    fn answer_fault(&mut self, keys: &[String]) -> Option<Fault> {
        for key in keys {
            if let Some(queue) = self.faults.get_mut(key) {
                if matches!(
                    queue.front(),
                    Some(Fault::LostAnswer | Fault::HeldAnswer(_))
                ) {
                    return queue.pop_front();
                }
                if !queue.is_empty() {
                    return None;
                }
            }
        }
        None
    }

    fn take_fault(&mut self, keys: &[String]) -> Option<Fault> {
        for key in keys {
            if let Some(fault) = self.faults.get_mut(key).and_then(VecDeque::pop_front) {
                return Some(fault);
            }
        }
        None
    }

    fn next_ts(&mut self) -> String {
        self.ts_counter += 1;
        let micros = self.ts_counter * 100;
        format!(
            "{}.{:06}",
            TS_EPOCH_SECS + micros / 1_000_000,
            micros % 1_000_000
        )
    }

    /// The DM channel for a set of users, the same ID every time; the bool
    /// says whether it already existed.
    fn dm_channel(&mut self, users: &[&str]) -> (String, bool) {
        let mut key: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        key.sort();
        key.dedup();
        if let Some(id) = self.dms.get(&key) {
            return (id.clone(), true);
        }
        let base = if key.len() == 1 {
            FakeSlack::dm_channel_for(&key[0])
        } else {
            format!("D{}", key.concat())
        };
        // Concatenated IDs can collide ("U1"+"U23" vs "U12"+"U3").
        let mut id = base.clone();
        let mut n = 1;
        while self.dms.values().any(|v| v == &id) {
            n += 1;
            id = format!("{base}_{n}");
        }
        self.dms.insert(key, id.clone());
        (id, false)
    }

    /// A channel argument as Slack resolves it: user IDs mean their DM.
    fn resolve_channel(&mut self, channel: &str) -> String {
        if is_user_id(channel) {
            self.dm_channel(&[channel]).0
        } else {
            channel.to_string()
        }
    }

    /// [`Self::resolve_channel`] for a read: the DM's ID without opening it.
    fn peek_channel(&self, channel: &str) -> String {
        if !is_user_id(channel) {
            return channel.to_string();
        }
        self.dms
            .get(&vec![channel.to_string()])
            .cloned()
            .unwrap_or_else(|| FakeSlack::dm_channel_for(channel))
    }

    fn api(
        &mut self,
        method: &str,
        token: &str,
        headers: &HeaderMap,
        parsed: Result<Value, BodyError>,
        now: Instant,
    ) -> Answer {
        if !METHODS.contains(&method) {
            return Answer::error("unknown_method");
        }
        if let Err(code) = check_auth(headers, token) {
            return Answer::error(code);
        }
        let body = match parsed {
            Ok(b) => b,
            Err(e) => {
                return Answer::refused(Refusal {
                    detail: Some(e.detail),
                    ..Refusal::new(e.code)
                })
            }
        };
        if let Some(retry_after) = self.rate_limit(method, &body, now) {
            return Answer::rate_limited(retry_after, Some("rate limit enforced".into()));
        }
        let result = match method {
            "apps.connections.open" => self.connections_open(),
            "chat.postMessage" => self.post_message(&body),
            "files.getUploadURLExternal" => self.get_upload_url(&body, is_json(headers)),
            "files.completeUploadExternal" => self.complete_upload(&body),
            "chat.update" => self.update(&body),
            "chat.postEphemeral" => self.post_ephemeral(&body),
            "conversations.open" => self.conversations_open(&body),
            "views.open" => self.views_open(&body),
            "views.update" => self.views_update(&body),
            "views.publish" => self.views_publish(&body),
            "usergroups.users.list" => self.usergroup_users(&body),
            "usergroups.list" => Ok(self.usergroups_list(&body)),
            "users.info" => self.users_info(&body),
            "chat.getPermalink" => self.permalink(&body),
            "conversations.join" => self.join(&body),
            "conversations.history" => self.history(&body, None),
            "conversations.replies" => {
                let ts = str_arg(&body, "ts").map(str::to_string);
                match ts {
                    Some(ts) => self.history(&body, Some(ts)),
                    None => Err(Refusal::new("thread_not_found")),
                }
            }
            _ => unreachable!("METHODS and this match list the same methods"),
        };
        match result {
            Ok(reply) => Answer::ok(reply.body, reply.warnings),
            Err(refusal) => Answer::refused(refusal),
        }
    }

    fn rate_limit(&mut self, method: &str, body: &Value, now: Instant) -> Option<u64> {
        let buckets = self.buckets.as_mut()?;
        // chat.postMessage is limited per channel (1/s with short bursts);
        // the tiered methods per method across the workspace.
        let (key, capacity, per_minute) = match method {
            "chat.postMessage" => {
                let channel = body.get("channel").and_then(Value::as_str).unwrap_or("");
                (format!("{method} {channel}"), 3.0, 60.0)
            }
            "chat.update"
            | "conversations.open"
            | "conversations.join"
            | "conversations.history"
            | "conversations.replies" => (method.to_string(), 50.0, 50.0),
            "chat.postEphemeral" | "users.info" | "views.open" | "views.update"
            | "views.publish" | "chat.getPermalink" => (method.to_string(), 100.0, 100.0),
            "usergroups.users.list" | "usergroups.list" => (method.to_string(), 20.0, 20.0),
            "files.getUploadURLExternal" | "files.completeUploadExternal" => {
                (method.to_string(), 100.0, 100.0)
            }
            _ => return None,
        };
        buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(capacity, per_minute / 60.0, now))
            .take(now)
            .err()
    }

    /// A single-use websocket URL; its ticket is spent by the handshake.
    fn connections_open(&mut self) -> Result<Reply, Refusal> {
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

    /// `files.getUploadURLExternal`: a file ID and an upload URL for
    /// `length` bytes named `filename`.
    fn get_upload_url(&mut self, body: &Value, json_body: bool) -> Result<Reply, Refusal> {
        let invalid = |msg: String| Refusal::with_messages("invalid_arguments", vec![msg]);
        if json_body {
            // Slack reads this method's arguments from the form or the query
            // only: a JSON body reaches it as no arguments at all.
            return Err(Refusal {
                detail: Some(
                    "files.getUploadURLExternal does not read a JSON body; send form or query arguments"
                        .into(),
                ),
                ..invalid("[ERROR] missing required field: filename".into())
            });
        }
        let filename = str_arg(body, "filename")
            .ok_or_else(|| invalid("[ERROR] missing required field: filename".into()))?
            .to_string();
        let length = match body.get("length") {
            None | Some(Value::Null) => {
                return Err(invalid("[ERROR] missing required field: length".into()))
            }
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            Some(_) => None,
        }
        .ok_or_else(|| invalid("[ERROR] length must be an integer".into()))?;
        if length == 0 {
            // Slack's documented answer for a zero length.
            return Err(Refusal {
                detail: Some("length is 0".into()),
                ..Refusal::new("missing_argument")
            });
        }
        if length < 0 {
            return Err(invalid(format!(
                "[ERROR] length must be positive, got {length}"
            )));
        }
        let alt_text = str_arg(body, "alt_txt").unwrap_or("").to_string();
        if alt_text.chars().count() > ALT_TXT_MAX_CHARS {
            return Err(Refusal::new("alt_txt_too_large"));
        }
        let addr = self
            .api_addr
            .ok_or_else(|| Refusal::new("internal_error"))?;
        self.file_counter += 1;
        let file_id = format!("F{:010}", self.file_counter);
        self.pending_files.insert(
            file_id.clone(),
            PendingFile {
                filename,
                length: length as usize,
                alt_text,
                bytes: None,
            },
        );
        Ok(Reply::new(json!({
            "ok": true,
            "upload_url": format!("http://{addr}/upload/{file_id}"),
            "file_id": file_id,
        })))
    }

    /// The bytes for a pending file's upload URL.
    fn upload(&mut self, id: &str, file: Result<Vec<u8>, String>) -> Answer {
        let Some(pending) = self.pending_files.get_mut(id) else {
            return Answer::text(
                StatusCode::NOT_FOUND,
                "Not Found".into(),
                "not_found",
                Some(format!("no upload is pending for file {id}")),
            );
        };
        let bytes = match file {
            Ok(b) => b,
            Err(why) => {
                return Answer::text(
                    StatusCode::BAD_REQUEST,
                    "Bad Request".into(),
                    "bad_request",
                    Some(why),
                )
            }
        };
        if bytes.len() != pending.length {
            let detail = format!(
                "{} bytes arrived for file {id}, whose length was given as {}",
                bytes.len(),
                pending.length
            );
            return Answer::text(
                StatusCode::BAD_REQUEST,
                "Bad Request: length mismatch".into(),
                "length_mismatch",
                Some(detail),
            );
        }
        let n = bytes.len();
        pending.bytes = Some(bytes);
        Answer::text(StatusCode::OK, format!("OK - {n}"), "ok", None)
    }

    /// `files.completeUploadExternal`: shares uploaded files in `channel_id`
    /// (in `thread_ts`'s thread if given). Each upload completes once: its
    /// file ID is then unknown, as on Slack (`file_not_found`).
    fn complete_upload(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let invalid = |msg: String| Refusal::with_messages("invalid_arguments", vec![msg]);
        let files = match body.get("files") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(Value::Array(_)) => {
                return Err(invalid("[ERROR] files must name at least one file".into()))
            }
            Some(_) => return Err(invalid("[ERROR] files must be a JSON array".into())),
            None => return Err(invalid("[ERROR] missing required field: files".into())),
        };
        let mut wanted = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let id = f
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("[ERROR] files[{i}] needs an id")))?;
            let title = f.get("title").and_then(Value::as_str).map(str::to_string);
            wanted.push((id.to_string(), title));
        }
        // Slack keeps a file without a channel private; the bot always
        // means to share, so the fake insists on one.
        let channel = str_arg(body, "channel_id").ok_or_else(|| Refusal {
            detail: Some(
                "no channel_id: Slack would keep the file private, which the bot never means"
                    .into(),
            ),
            ..invalid("[ERROR] missing required field: channel_id".into())
        })?;
        if is_user_id(channel) {
            return Err(Refusal {
                detail: Some("channel_id takes a channel ID, not a user ID".into()),
                ..Refusal::new("invalid_channel")
            });
        }
        let channel = channel.to_string();
        let thread_ts = str_arg(body, "thread_ts").map(str::to_string);
        if let Some(parent) = &thread_ts {
            let found = self
                .messages
                .iter()
                .find(|m| m.channel == channel && &m.ts == parent);
            match found {
                None => return Err(Refusal::new("thread_not_found")),
                Some(m) if m.thread_ts.as_ref().is_some_and(|t| t != parent) => {
                    return Err(Refusal {
                        detail: Some("thread_ts names a reply; Slack wants its parent's ts".into()),
                        ..Refusal::new("thread_not_found")
                    })
                }
                Some(_) => {}
            }
        }
        // Check every file before sharing any.
        for (id, _) in &wanted {
            let pending = self.pending_files.get(id).ok_or_else(|| Refusal {
                detail: Some(format!(
                    "{id} was never handed out, or was completed already"
                )),
                ..Refusal::new("file_not_found")
            })?;
            let Some(bytes) = &pending.bytes else {
                return Err(Refusal {
                    detail: Some(format!("nothing was uploaded for {id}")),
                    ..Refusal::new("file_not_found")
                });
            };
            if pending.filename.to_ascii_lowercase().ends_with(".png")
                && !bytes.starts_with(PNG_SIGNATURE)
            {
                // Real Slack would share it as a broken image; this
                // documented code stands in so a test sees it at once.
                return Err(Refusal {
                    detail: Some(format!(
                        "{} is named .png but its bytes are not a PNG",
                        pending.filename
                    )),
                    ..Refusal::new("file_type_not_allowed")
                });
            }
        }
        let initial_comment = str_arg(body, "initial_comment").map(str::to_string);
        let mut shared = Vec::new();
        for (id, title) in wanted {
            let pending = self
                .pending_files
                .remove(&id)
                .expect("checked above that it is pending");
            let bytes = pending.bytes.unwrap_or_default();
            let title = title
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| pending.filename.clone());
            let mimetype = if pending.filename.to_ascii_lowercase().ends_with(".png") {
                "image/png"
            } else {
                "application/octet-stream"
            };
            shared.push(json!({
                "id": id,
                "name": pending.filename,
                "title": title,
                "mimetype": mimetype,
                "size": bytes.len(),
            }));
            self.files.push(UploadedFile {
                id,
                channel: channel.clone(),
                thread_ts: thread_ts.clone(),
                filename: pending.filename,
                title,
                alt_text: pending.alt_text,
                initial_comment: initial_comment.clone(),
                bytes,
            });
        }
        Ok(Reply::new(json!({ "ok": true, "files": shared })))
    }

    fn post_message(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let channel = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        let channel = self.resolve_channel(channel);
        if self.archived.contains(&channel) {
            return Err(Refusal::new("is_archived"));
        }
        if self.members_only.contains_key(&channel) {
            return Err(Refusal::new("not_in_channel"));
        }
        let content = message_content(body)?;
        let thread_ts = str_arg(body, "thread_ts").map(str::to_string);
        if let Some(parent) = &thread_ts {
            if !self
                .messages
                .iter()
                .any(|m| m.channel == channel && &m.ts == parent)
            {
                return Err(Refusal::new("thread_not_found"));
            }
        }
        let ts = self.next_ts();
        let text = content.text.unwrap_or_default();
        let blocks = content.blocks.unwrap_or_else(|| json!([]));
        let attachments = non_null(body.get("attachments"));
        // Ignored without a thread, as Slack does; form bodies say "true".
        let broadcast = thread_ts.is_some() && flag(body, "reply_broadcast");
        let mut message = json!({
            "type": "message",
            "text": text,
            "ts": ts,
            "blocks": blocks,
        });
        if let Some(t) = &thread_ts {
            message["thread_ts"] = json!(t);
        }
        self.messages.push(Message {
            channel: channel.clone(),
            ts: ts.clone(),
            thread_ts,
            text,
            blocks,
            attachments,
            edits: 0,
            broadcast,
            metadata: body
                .get("metadata")
                .filter(|m| m.get("event_type").is_some_and(Value::is_string))
                .cloned()
                .unwrap_or(Value::Null),
        });
        Ok(Reply {
            body: json!({ "ok": true, "channel": channel, "ts": ts, "message": message }),
            warnings: content.warnings,
        })
    }

    fn update(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let channel = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        // Slack requires the DM's ID here; the user ID does not resolve.
        if is_user_id(channel) {
            return Err(Refusal {
                detail: Some("chat.update needs the DM channel ID, not a user ID".into()),
                ..Refusal::new("channel_not_found")
            });
        }
        if self.archived.contains(channel) {
            return Err(Refusal::new("is_archived"));
        }
        let ts = str_arg(body, "ts").ok_or_else(|| Refusal::new("message_not_found"))?;
        let index = self
            .messages
            .iter()
            .position(|m| m.channel == channel && m.ts == ts)
            .ok_or_else(|| Refusal::new("message_not_found"))?;
        let content = message_content(body)?;
        let stored = &mut self.messages[index];
        // The text is replaced outright (an update without one leaves none),
        // while omitted blocks are kept: Slack documents that, and that an
        // empty array is how blocks are removed.
        stored.text = content.text.unwrap_or_default();
        if let Some(blocks) = content.blocks {
            stored.blocks = blocks;
        }
        if body.get("attachments").is_some_and(|a| !a.is_null()) {
            stored.attachments = non_null(body.get("attachments"));
        }
        stored.edits += 1;
        let stored = stored.clone();
        Ok(Reply {
            body: json!({
                "ok": true,
                "channel": stored.channel,
                "ts": stored.ts,
                "text": stored.text,
                "message": { "type": "message", "text": stored.text, "blocks": stored.blocks },
            }),
            warnings: content.warnings,
        })
    }

    fn post_ephemeral(&mut self, body: &Value) -> Result<Reply, Refusal> {
        str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        str_arg(body, "user").ok_or_else(|| Refusal::new("user_not_found"))?;
        let content = message_content(body)?;
        let ts = self.next_ts();
        Ok(Reply {
            body: json!({ "ok": true, "message_ts": ts }),
            warnings: content.warnings,
        })
    }

    fn conversations_open(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let users: Vec<&str> = body
            .get("users")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        if users.is_empty() {
            // Slack also reopens a DM by its channel ID instead of users.
            if let Some(channel) = str_arg(body, "channel") {
                if self.dms.values().any(|id| id == channel) {
                    return Ok(Reply::new(json!({
                        "ok": true, "no_op": true, "already_open": true,
                        "channel": { "id": channel },
                    })));
                }
                return Err(Refusal::new("channel_not_found"));
            }
            return Err(Refusal::new("users_list_not_supplied"));
        }
        let (id, existed) = self.dm_channel(&users);
        let mut reply = json!({ "ok": true, "channel": { "id": id } });
        if existed {
            reply["no_op"] = json!(true);
            reply["already_open"] = json!(true);
        }
        Ok(Reply::new(reply))
    }

    fn views_open(&mut self, body: &Value) -> Result<Reply, Refusal> {
        // Slack reports every views.open argument problem, view schema
        // violations included, as invalid_arguments rather than invalid_blocks.
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        let trigger_id =
            str_arg(body, "trigger_id").ok_or_else(|| invalid("invalid `trigger_id`"))?;
        let mut view = match body.get("view") {
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .map_err(|e| invalid(&format!("`view` is not valid JSON: {e}")))?,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(invalid("`view` must be a JSON object")),
            None => return Err(invalid("missing required field: view")),
        };
        let mut check = Check::default();
        check.modal(&view, "/view");
        if !check.errors.is_empty() {
            return Err(Refusal::with_messages("invalid_arguments", check.errors));
        }
        self.view_counter += 1;
        let id = format!("V{:09}", self.view_counter);
        let fields = view
            .as_object_mut()
            .expect("modal() checked it is an object");
        fields.insert("id".into(), json!(id));
        for key in ["callback_id", "private_metadata", "external_id"] {
            fields.entry(key).or_insert_with(|| json!(""));
        }
        fields.insert("state".into(), json!({ "values": {} }));
        fields.insert("root_view_id".into(), json!(id));
        fields.insert("hash".into(), json!(format!("{}.h1", self.view_counter)));
        self.views.push(View {
            id,
            trigger_id: trigger_id.to_string(),
            view: view.clone(),
        });
        Ok(Reply::new(json!({ "ok": true, "view": view })))
    }

    /// A view argument: a JSON object, or a string holding one.
    fn view_arg(body: &Value) -> Result<Value, Refusal> {
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        match body.get("view") {
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .map_err(|e| invalid(&format!("`view` is not valid JSON: {e}"))),
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            Some(_) => Err(invalid("`view` must be a JSON object")),
            None => Err(invalid("missing required field: view")),
        }
    }

    /// Replaces an open modal, found by `view_id` or `external_id`. A `hash`
    /// that is not the view's current one is refused (`hash_conflict`): the
    /// view changed since the caller read it.
    fn views_update(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        let view_id = str_arg(body, "view_id");
        let external_id = str_arg(body, "external_id");
        if view_id.is_none() && external_id.is_none() {
            return Err(invalid("either `view_id` or `external_id` is required"));
        }
        let mut view = Self::view_arg(body)?;
        let mut check = Check::default();
        check.modal(&view, "/view");
        if !check.errors.is_empty() {
            return Err(Refusal::with_messages("invalid_arguments", check.errors));
        }
        let Some(stored) = self.views.iter_mut().find(|v| {
            Some(v.id.as_str()) == view_id
                || (external_id.is_some()
                    && v.view.get("external_id").and_then(Value::as_str) == external_id)
        }) else {
            return Err(Refusal::new("not_found"));
        };
        let current = stored
            .view
            .get("hash")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(hash) = str_arg(body, "hash") {
            if hash != current {
                return Err(Refusal::new("hash_conflict"));
            }
        }
        let hash = next_hash(&stored.id, current);
        let id = stored.id.clone();
        let fields = view
            .as_object_mut()
            .expect("modal() checked it is an object");
        fields.insert("id".into(), json!(id));
        for key in ["callback_id", "private_metadata", "external_id"] {
            fields.entry(key).or_insert_with(|| json!(""));
        }
        // What the user typed stays: an update does not clear the inputs.
        let state = stored
            .view
            .get("state")
            .cloned()
            .unwrap_or(json!({ "values": {} }));
        fields.insert("state".into(), state);
        fields.insert("root_view_id".into(), json!(id));
        fields.insert("hash".into(), json!(hash));
        stored.view = view.clone();
        Ok(Reply::new(json!({ "ok": true, "view": view })))
    }

    /// Publishes a user's App Home: a view of type `home`, up to 100 blocks.
    fn views_publish(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        let user = str_arg(body, "user_id")
            .ok_or_else(|| invalid("missing required field: user_id"))?
            .to_string();
        let mut view = Self::view_arg(body)?;
        let mut check = Check::default();
        check.home(&view, "/view");
        if !check.errors.is_empty() {
            return Err(Refusal::with_messages("invalid_arguments", check.errors));
        }
        let previous = self.homes.get(&user);
        let current = previous
            .and_then(|v| v.get("hash"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(hash) = str_arg(body, "hash") {
            if hash != current {
                return Err(Refusal::new("hash_conflict"));
            }
        }
        let id = match previous.and_then(|v| v.get("id")).and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                self.view_counter += 1;
                format!("V{:09}", self.view_counter)
            }
        };
        let hash = next_hash(&id, &current);
        let fields = view
            .as_object_mut()
            .expect("home() checked it is an object");
        fields.insert("id".into(), json!(id));
        fields.insert("hash".into(), json!(hash));
        self.homes.insert(user, view.clone());
        Ok(Reply::new(json!({ "ok": true, "view": view })))
    }

    fn usergroup_users(&self, body: &Value) -> Result<Reply, Refusal> {
        let group = str_arg(body, "usergroup").ok_or_else(|| Refusal {
            detail: Some("missing required argument: usergroup".into()),
            ..Refusal::new("invalid_arguments")
        })?;
        let users = self
            .usergroups
            .get(group)
            .ok_or_else(|| Refusal::new("no_such_subteam"))?;
        Ok(Reply::new(json!({ "ok": true, "users": users })))
    }

    /// Every group set with [`FakeSlack::set_usergroup`], with its handle.
    /// As on Slack, members are listed only with `include_users=true` and
    /// counted only with `include_count=true`.
    fn usergroups_list(&self, body: &Value) -> Reply {
        let with_users = flag(body, "include_users");
        let with_count = flag(body, "include_count");
        let mut ids: Vec<&String> = self.usergroups.keys().collect();
        ids.sort();
        let groups: Vec<Value> = ids
            .into_iter()
            .map(|id| {
                let handle = self
                    .handles
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.to_ascii_lowercase());
                let users = &self.usergroups[id];
                let mut group = json!({ "id": id, "handle": handle, "name": handle });
                if with_users {
                    group["users"] = json!(users);
                }
                if with_count {
                    group["user_count"] = json!(users.len());
                }
                group
            })
            .collect();
        Reply::new(json!({ "ok": true, "usergroups": groups }))
    }

    /// `conversations.history` (`thread: None`) or `conversations.replies`
    /// (the thread's parent ts), as Slack documents them: history newest
    /// first; a thread's replies earliest first (the parent, then its
    /// replies in the order they were posted). Only messages after `oldest`
    /// and before `latest` (each exclusive unless `inclusive`), at most
    /// `limit` (default 100) a page; `has_more` and
    /// `response_metadata.next_cursor` lead to the next page, which `cursor`
    /// asks for (a cursor this fake did not give is `invalid_cursor`). Each
    /// message's `metadata` only when `include_all_metadata` is true.
    fn history(&self, body: &Value, thread: Option<String>) -> Result<Reply, Refusal> {
        let channel = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        let channel = self.peek_channel(channel);
        if !self.messages.iter().any(|m| m.channel == channel)
            && !self.dms.values().any(|id| id == &channel)
        {
            return Err(Refusal::new("channel_not_found"));
        }
        let number = |key: &str| -> Option<f64> {
            match body.get(key) {
                Some(Value::String(s)) => s.parse().ok(),
                Some(Value::Number(n)) => n.as_f64(),
                _ => None,
            }
        };
        let inclusive = flag(body, "inclusive");
        let oldest = number("oldest").unwrap_or(0.0);
        let latest = number("latest").unwrap_or(f64::INFINITY);
        let limit = number("limit")
            .map(|l| l as usize)
            .unwrap_or(100)
            .clamp(1, 999);
        // A cursor is where the page starts; this fake's are `page:<offset>`.
        let start = match str_arg(body, "cursor").filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => c
                .strip_prefix("page:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| Refusal::new("invalid_cursor"))?,
        };
        let with_metadata = flag(body, "include_all_metadata");
        if let Some(parent) = &thread {
            if !self
                .messages
                .iter()
                .any(|m| m.channel == channel && &m.ts == parent)
            {
                return Err(Refusal::new("thread_not_found"));
            }
        }
        let in_range = |t: f64| {
            if inclusive {
                oldest <= t && t <= latest
            } else {
                oldest < t && t < latest
            }
        };
        let mut found: Vec<&Message> = self
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .filter(|m| match &thread {
                // Replies: the parent and its thread.
                Some(parent) => &m.ts == parent || m.thread_ts.as_ref() == Some(parent),
                // History: top-level messages and broadcast replies.
                None => m.thread_ts.is_none() || m.broadcast,
            })
            .filter(|m| m.ts.parse::<f64>().is_ok_and(in_range))
            .collect();
        // Every ts has the same shape here, so text order is time order.
        match thread {
            Some(_) => found.sort_by(|a, b| a.ts.cmp(&b.ts)),
            None => found.sort_by(|a, b| b.ts.cmp(&a.ts)),
        }
        let has_more = found.len() > start + limit;
        let messages: Vec<Value> = found
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|m| {
                let mut v = json!({ "type": "message", "ts": m.ts, "text": m.text });
                if let Some(t) = &m.thread_ts {
                    v["thread_ts"] = json!(t);
                }
                if with_metadata && !m.metadata.is_null() {
                    v["metadata"] = m.metadata.clone();
                }
                v
            })
            .collect();
        let next_cursor = if has_more {
            format!("page:{}", start + limit)
        } else {
            String::new()
        };
        Ok(Reply::new(json!({
            "ok": true,
            "messages": messages,
            "has_more": has_more,
            "response_metadata": { "next_cursor": next_cursor },
        })))
    }

    /// `conversations.join`: the bot joins a public channel; a private one
    /// needs an invitation.
    fn join(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let channel = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        if self.members_only.get(channel) == Some(&true) {
            return Err(Refusal::new("method_not_supported_for_channel_type"));
        }
        self.members_only.remove(channel);
        Ok(Reply::new(
            json!({ "ok": true, "channel": { "id": channel, "is_member": true } }),
        ))
    }

    /// `chat.getPermalink`: a link to a message that exists, in Slack's shape
    /// (a thread reply's link names its thread).
    /// The channel is the channel ID or, as for `chat.postMessage`, a user
    /// ID standing for that user's DM; asking never opens a DM.
    fn permalink(&self, body: &Value) -> Result<Reply, Refusal> {
        let channel = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        let channel = self.peek_channel(channel);
        let ts = str_arg(body, "message_ts").ok_or_else(|| Refusal::new("message_not_found"))?;
        let known = self.messages.iter().any(|m| m.channel == channel)
            || self.dms.values().any(|id| id == &channel);
        if !known {
            return Err(Refusal::new("channel_not_found"));
        }
        let message = self
            .messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
            .ok_or_else(|| Refusal::new("message_not_found"))?;
        let mut link = format!(
            "https://fake-slack.test/archives/{channel}/p{}",
            ts.replace('.', "")
        );
        if let Some(parent) = &message.thread_ts {
            link.push_str(&format!("?thread_ts={parent}&cid={channel}"));
        }
        Ok(Reply::new(
            json!({ "ok": true, "channel": channel, "permalink": link }),
        ))
    }

    fn users_info(&self, body: &Value) -> Result<Reply, Refusal> {
        let id = str_arg(body, "user").ok_or_else(|| Refusal::new("user_not_found"))?;
        let set = self.names.get(id).cloned();
        let name = set.clone().unwrap_or_else(|| id.to_ascii_lowercase());
        let real_name = set.unwrap_or_else(|| format!("User {id}"));
        let (tz, tz_offset) = self
            .tzs
            .get(id)
            .cloned()
            .unwrap_or_else(|| ("Europe/London".to_string(), 0));
        Ok(Reply::new(json!({
            "ok": true,
            "user": {
                "id": id,
                "name": name,
                "real_name": real_name,
                "tz": tz,
                "tz_offset": tz_offset,
                "is_bot": false,
                "deleted": false,
                "profile": { "real_name": real_name, "display_name": name },
            },
        })))
    }

    fn response_url(&mut self, id: &str, parsed: Result<Value, BodyError>) -> Answer {
        let uses = self.response_url_uses.get(id).copied().unwrap_or(0);
        if uses >= RESPONSE_URL_MAX_USES {
            return Answer {
                error_detail: Some(format!(
                    "a response_url takes {RESPONSE_URL_MAX_USES} posts"
                )),
                ..Answer::error("used_url").with_status(StatusCode::NOT_FOUND)
            };
        }
        let body = match parsed {
            Ok(b) => b,
            Err(e) => {
                return Answer::refused(Refusal {
                    detail: Some(e.detail),
                    ..Refusal::new(e.code)
                })
            }
        };
        if let Some(blocks) = body.get("blocks").filter(|b| !b.is_null()) {
            let mut check = Check::default();
            check.blocks(blocks, "/blocks", MESSAGE_MAX_BLOCKS);
            if !check.errors.is_empty() {
                return Answer::refused(Refusal::with_messages("invalid_blocks", check.errors));
            }
        }
        // Only accepted posts use the URL up.
        self.response_url_uses.insert(id.to_string(), uses + 1);
        Answer::ok(json!({ "ok": true }), Vec::new())
    }
}

/// A token bucket: `capacity` calls at once, refilled at `per_sec`.
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    fn full(capacity: f64, per_sec: f64, now: Instant) -> Self {
        Bucket {
            tokens: capacity,
            capacity,
            per_sec,
            last: now,
        }
    }

    /// Takes a token, or says how many whole seconds until one is there
    /// (at least 1, as `Retry-After` cannot say "now").
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_sec;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// The select menus, each in its single and multi form.
const SELECT_MENUS: &[&str] = &[
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
];

/// Elements an actions block takes, besides the select menus.
const ACTIONS_ELEMENTS: &[&str] = &[
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "workflow_button",
];

/// Elements an input block takes, besides the select menus.
const INPUT_ELEMENTS: &[&str] = &[
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "file_input",
    "number_input",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "url_text_input",
];

/// Elements a section's accessory may be, besides the select menus.
const ACCESSORY_ELEMENTS: &[&str] = &[
    "button",
    "checkboxes",
    "datepicker",
    "image",
    "overflow",
    "radio_buttons",
    "timepicker",
    "workflow_button",
];

/// Where an element sits: each takes its own set of element types.
#[derive(Clone, Copy)]
enum Place {
    Actions,
    Input,
    Accessory,
}

impl Place {
    fn allows(self, kind: &str) -> bool {
        let own = match self {
            Place::Actions => ACTIONS_ELEMENTS,
            Place::Input => INPUT_ELEMENTS,
            Place::Accessory => ACCESSORY_ELEMENTS,
        };
        own.contains(&kind) || SELECT_MENUS.contains(&kind)
    }

    fn name(self) -> &'static str {
        match self {
            Place::Actions => "an actions block",
            Place::Input => "an input block",
            Place::Accessory => "a section accessory",
        }
    }
}

/// Block Kit validation, collecting every violation in Slack's message
/// format so a test failure names the offending JSON pointer.
#[derive(Default)]
struct Check {
    errors: Vec<String>,
}

impl Check {
    fn fail(&mut self, pointer: &str, what: impl Display) {
        self.errors
            .push(format!("[ERROR] {what} [json-pointer:{pointer}]"));
    }

    fn string(&mut self, value: Option<&Value>, at: &str, min: usize, max: usize) {
        match value {
            None => self.fail(at, "is required"),
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min {
                    self.fail(at, format!("must be more than {} characters", min - 1));
                } else if n > max {
                    self.fail(
                        at,
                        format!("must be less than {} characters, got {n}", max + 1),
                    );
                }
            }
            Some(_) => self.fail(at, "must be a string"),
        }
    }

    fn optional_string(&mut self, value: Option<&Value>, at: &str, max: usize) {
        if value.is_some() {
            self.string(value, at, 0, max);
        }
    }

    /// A text object: `plain_text` (or `mrkdwn` where allowed) with 1..=max chars.
    fn text(&mut self, value: Option<&Value>, at: &str, max: usize, plain_only: bool) {
        let Some(value) = value else {
            self.fail(at, "is required");
            return;
        };
        let Some(obj) = value.as_object() else {
            self.fail(at, "must be a text object");
            return;
        };
        let type_at = format!("{at}/type");
        match obj.get("type").and_then(Value::as_str) {
            Some("plain_text") => {}
            Some("mrkdwn") if !plain_only => {}
            Some(other) if plain_only => {
                self.fail(&type_at, format!("must be plain_text, got {other:?}"))
            }
            Some(other) => self.fail(
                &type_at,
                format!("must be plain_text or mrkdwn, got {other:?}"),
            ),
            None => self.fail(&type_at, "is required"),
        }
        self.string(obj.get("text"), &format!("{at}/text"), 1, max);
    }

    fn style(&mut self, value: Option<&Value>, at: &str) {
        if let Some(style) = value {
            if !matches!(style.as_str(), Some("primary" | "danger")) {
                self.fail(at, format!("must be primary or danger, got {style}"));
            }
        }
    }

    fn blocks(&mut self, blocks: &Value, at: &str, max_blocks: usize) {
        let Some(list) = blocks.as_array() else {
            self.fail(at, "must be an array");
            return;
        };
        if list.len() > max_blocks {
            self.fail(
                at,
                format!(
                    "must have no more than {max_blocks} items, got {}",
                    list.len()
                ),
            );
        }
        let mut block_ids = HashSet::new();
        for (i, block) in list.iter().enumerate() {
            self.block(block, &format!("{at}/{i}"), &mut block_ids);
        }
    }

    fn block(&mut self, block: &Value, at: &str, block_ids: &mut HashSet<String>) {
        let Some(obj) = block.as_object() else {
            self.fail(at, "must be an object");
            return;
        };
        if let Some(id) = obj.get("block_id") {
            let id_at = format!("{at}/block_id");
            self.string(Some(id), &id_at, 0, 255);
            if let Some(id) = id.as_str() {
                if !block_ids.insert(id.to_string()) {
                    self.fail(&id_at, format!("duplicate block_id {id:?} in this message"));
                }
            }
        }
        let Some(kind) = obj.get("type").and_then(Value::as_str) else {
            self.fail(&format!("{at}/type"), "is required");
            return;
        };
        if !BLOCK_TYPES.contains(&kind) {
            self.fail(
                &format!("{at}/type"),
                format!("unknown block type {kind:?}"),
            );
            return;
        }
        // Slack's rule for action_id is uniqueness within the containing
        // block, so the same action may appear in several blocks.
        let mut action_ids = HashSet::new();
        match kind {
            "section" => {
                let text = obj.get("text");
                let fields = obj.get("fields");
                if text.is_none() && fields.is_none() {
                    self.fail(at, "a section needs text or fields");
                }
                if text.is_some() {
                    self.text(text, &format!("{at}/text"), 3000, false);
                }
                if let Some(fields) = fields {
                    let fields_at = format!("{at}/fields");
                    match fields.as_array() {
                        Some(list) => {
                            if list.len() > 10 {
                                self.fail(
                                    &fields_at,
                                    format!("must have no more than 10 items, got {}", list.len()),
                                );
                            }
                            for (j, field) in list.iter().enumerate() {
                                self.text(Some(field), &format!("{fields_at}/{j}"), 2000, false);
                            }
                        }
                        None => self.fail(&fields_at, "must be an array"),
                    }
                }
                if let Some(accessory) = obj.get("accessory") {
                    self.element(
                        accessory,
                        &format!("{at}/accessory"),
                        Place::Accessory,
                        &mut action_ids,
                    );
                }
            }
            "header" => self.text(obj.get("text"), &format!("{at}/text"), 150, true),
            "actions" => {
                if let Some(elements) = self.elements(obj.get("elements"), at, 25) {
                    for (j, el) in elements.iter().enumerate() {
                        self.element(
                            el,
                            &format!("{at}/elements/{j}"),
                            Place::Actions,
                            &mut action_ids,
                        );
                    }
                }
            }
            "context" => {
                self.elements(obj.get("elements"), at, 10);
            }
            "input" => match obj.get("element") {
                Some(el) => {
                    self.element(el, &format!("{at}/element"), Place::Input, &mut action_ids)
                }
                None => self.fail(&format!("{at}/element"), "is required"),
            },
            _ => {}
        }
    }

    fn elements<'v>(
        &mut self,
        value: Option<&'v Value>,
        at: &str,
        max: usize,
    ) -> Option<&'v [Value]> {
        let at = format!("{at}/elements");
        let Some(value) = value else {
            self.fail(&at, "is required");
            return None;
        };
        let Some(list) = value.as_array() else {
            self.fail(&at, "must be an array");
            return None;
        };
        if list.len() > max {
            self.fail(
                &at,
                format!("must have no more than {max} items, got {}", list.len()),
            );
        }
        Some(list)
    }

    fn element(&mut self, el: &Value, at: &str, place: Place, action_ids: &mut HashSet<String>) {
        let Some(obj) = el.as_object() else {
            self.fail(at, "must be an object");
            return;
        };
        if let Some(id) = obj.get("action_id") {
            let id_at = format!("{at}/action_id");
            self.string(Some(id), &id_at, 0, 255);
            if let Some(id) = id.as_str() {
                if !action_ids.insert(id.to_string()) {
                    self.fail(&id_at, format!("duplicate action_id {id:?} in this block"));
                }
            }
        }
        let type_at = format!("{at}/type");
        let Some(kind) = obj.get("type").and_then(Value::as_str) else {
            self.fail(&type_at, "is required");
            return;
        };
        if !place.allows(kind) {
            self.fail(
                &type_at,
                format!("{kind:?} is not a valid element in {}", place.name()),
            );
            return;
        }
        match kind {
            "button" => {
                self.text(obj.get("text"), &format!("{at}/text"), 75, true);
                self.optional_string(obj.get("value"), &format!("{at}/value"), 2000);
                self.optional_string(obj.get("url"), &format!("{at}/url"), 3000);
                self.style(obj.get("style"), &format!("{at}/style"));
            }
            // Secondary actions: 2 to 5 plain-text options.
            "overflow" => self.options(obj, at, 2, 5, true),
            // Their option texts may be mrkdwn, unlike a menu's.
            "radio_buttons" | "checkboxes" => self.options(obj, at, 1, 10, false),
            "static_select" | "multi_static_select" if obj.contains_key("options") => {
                self.options(obj, at, 1, 100, true)
            }
            "datetimepicker" => {
                // UNIX seconds, a JSON integer of at most 10 digits.
                if let Some(initial) = obj.get("initial_date_time") {
                    if initial.as_u64().is_none_or(|secs| secs > 9_999_999_999) {
                        self.fail(
                            &format!("{at}/initial_date_time"),
                            format!("must be an integer of UNIX seconds, got {initial}"),
                        );
                    }
                }
            }
            _ => {}
        }
        if let Some(confirm) = obj.get("confirm") {
            self.confirm(confirm, &format!("{at}/confirm"));
        }
    }

    /// An element's `options` (`min..=max` of them) and any `initial_option`
    /// or `initial_options`, which must each be one of them.
    fn options(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        min: usize,
        max: usize,
        plain_only: bool,
    ) {
        let options_at = format!("{at}/options");
        let Some(value) = obj.get("options") else {
            self.fail(&options_at, "is required");
            return;
        };
        let Some(options) = value.as_array() else {
            self.fail(&options_at, "must be an array");
            return;
        };
        if !(min..=max).contains(&options.len()) {
            self.fail(
                &options_at,
                format!(
                    "must have between {min} and {max} items, got {}",
                    options.len()
                ),
            );
        }
        for (i, option) in options.iter().enumerate() {
            self.option(option, &format!("{options_at}/{i}"), plain_only);
        }
        let same = |a: &Value, b: &Value| {
            a.get("value") == b.get("value") && a.get("text") == b.get("text")
        };
        let initial_at = format!("{at}/initial_option");
        if let Some(initial) = obj.get("initial_option") {
            if !options.iter().any(|o| same(o, initial)) {
                self.fail(&initial_at, "must exactly match one of the options");
            }
        }
        if let Some(initial) = obj.get("initial_options") {
            match initial.as_array() {
                Some(list) => {
                    for (i, chosen) in list.iter().enumerate() {
                        if !options.iter().any(|o| same(o, chosen)) {
                            self.fail(
                                &format!("{at}/initial_options/{i}"),
                                "must exactly match one of the options",
                            );
                        }
                    }
                }
                None => self.fail(&format!("{at}/initial_options"), "must be an array"),
            }
        }
    }

    /// An option object: its text and description 75 characters at most,
    /// its value 150.
    fn option(&mut self, option: &Value, at: &str, plain_only: bool) {
        let Some(obj) = option.as_object() else {
            self.fail(at, "must be an option object");
            return;
        };
        self.text(obj.get("text"), &format!("{at}/text"), 75, plain_only);
        self.string(obj.get("value"), &format!("{at}/value"), 1, 150);
        if obj.contains_key("description") {
            self.text(
                obj.get("description"),
                &format!("{at}/description"),
                75,
                plain_only,
            );
        }
        self.optional_string(obj.get("url"), &format!("{at}/url"), 3000);
    }

    fn confirm(&mut self, confirm: &Value, at: &str) {
        let Some(obj) = confirm.as_object() else {
            self.fail(at, "must be a confirmation dialog object");
            return;
        };
        // Only the body text may be mrkdwn.
        for (key, max, plain_only) in [
            ("title", 100, true),
            ("text", 300, false),
            ("confirm", 30, true),
            ("deny", 30, true),
        ] {
            self.text(obj.get(key), &format!("{at}/{key}"), max, plain_only);
        }
        self.style(obj.get("style"), &format!("{at}/style"));
    }

    /// What every view must be: an object of `kind`, with its ids and
    /// metadata within their lengths. The object, to check the rest of.
    fn view<'v>(
        &mut self,
        view: &'v Value,
        at: &str,
        kind: &str,
    ) -> Option<&'v serde_json::Map<String, Value>> {
        let Some(obj) = view.as_object() else {
            self.fail(at, "must be a view object");
            return None;
        };
        if obj.get("type").and_then(Value::as_str) != Some(kind) {
            self.fail(
                &format!("{at}/type"),
                format!("this method takes a view of type {kind}"),
            );
        }
        self.optional_string(obj.get("callback_id"), &format!("{at}/callback_id"), 255);
        self.optional_string(obj.get("external_id"), &format!("{at}/external_id"), 255);
        self.optional_string(
            obj.get("private_metadata"),
            &format!("{at}/private_metadata"),
            3000,
        );
        Some(obj)
    }

    fn modal(&mut self, view: &Value, at: &str) {
        let Some(obj) = self.view(view, at, "modal") else {
            return;
        };
        self.text(obj.get("title"), &format!("{at}/title"), 24, true);
        for key in ["submit", "close"] {
            if obj.contains_key(key) {
                self.text(obj.get(key), &format!("{at}/{key}"), 24, true);
            }
        }
        match obj.get("blocks") {
            Some(blocks) => {
                self.blocks(blocks, &format!("{at}/blocks"), MODAL_MAX_BLOCKS);
                let has_input = blocks.as_array().is_some_and(|list| {
                    list.iter()
                        .any(|b| b.get("type").and_then(Value::as_str) == Some("input"))
                });
                if has_input && !obj.contains_key("submit") {
                    self.fail(at, "must provide a submit property when using input blocks");
                }
            }
            None => self.fail(&format!("{at}/blocks"), "is required"),
        }
    }

    /// An App Home view: type `home`, up to 100 blocks; no title, submit or close.
    fn home(&mut self, view: &Value, at: &str) {
        let Some(obj) = self.view(view, at, "home") else {
            return;
        };
        for key in ["submit", "close", "title"] {
            if obj.contains_key(key) {
                self.fail(&format!("{at}/{key}"), "is not allowed in a home view");
            }
        }
        match obj.get("blocks") {
            Some(blocks) => self.blocks(blocks, &format!("{at}/blocks"), MODAL_MAX_BLOCKS),
            None => self.fail(&format!("{at}/blocks"), "is required"),
        }
    }
}

/// A view's next `hash`: `<id>.h<n>`, one more than the current one's `n`.
fn next_hash(id: &str, current: &str) -> String {
    let n = current
        .rsplit_once(".h")
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{id}.h{}", n + 1)
}

/// An argument's JSON, or an empty array when it is absent or null.
fn non_null(v: Option<&Value>) -> Value {
    v.filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!([]))
}

#[cfg(test)]
mod tests {
    //! The rules checked request by request, straight through the fake's
    //! request processing (no sockets): permalinks, group handles,
    //! broadcasts in form bodies, rate limits, and Block Kit limits.
    use super::*;

    struct Fake {
        shared: Shared,
        _stop: watch::Sender<bool>,
    }

    fn fake() -> Fake {
        let (stop, stopped) = watch::channel(false);
        Fake {
            shared: Shared {
                token: DEFAULT_TOKEN.into(),
                app_token: DEFAULT_APP_TOKEN.into(),
                state: Mutex::new(Workspace::default()),
                stopped,
            },
            _stop: stop,
        }
    }

    impl Fake {
        fn send(&self, method: &str, content_type: &str, body: Vec<u8>) -> Answer {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {DEFAULT_TOKEN}")).unwrap(),
            );
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).unwrap(),
            );
            self.shared.process(
                &Method::POST,
                &format!("/api/{method}"),
                None,
                &headers,
                Ok(Bytes::from(body)),
                Instant::now(),
            )
        }

        fn json(&self, method: &str, body: Value) -> Answer {
            self.send(method, "application/json", body.to_string().into_bytes())
        }

        fn form(&self, method: &str, fields: &[(&str, &str)]) -> Answer {
            let body = serde_urlencoded::to_string(fields).unwrap();
            self.send(
                method,
                "application/x-www-form-urlencoded",
                body.into_bytes(),
            )
        }

        fn post(&self, channel: &str, text: &str) -> String {
            let a = self.json(
                "chat.postMessage",
                json!({ "channel": channel, "text": text }),
            );
            assert_eq!(a.outcome, "ok", "{:?}", a.error_detail);
            a.body["ts"].as_str().unwrap().to_string()
        }

        /// The outcome of posting these blocks (with a top-level text).
        fn blocks(&self, blocks: Value) -> Answer {
            self.json(
                "chat.postMessage",
                json!({ "channel": "C1", "text": "t", "blocks": blocks }),
            )
        }

        fn state(&self) -> MutexGuard<'_, Workspace> {
            self.shared.lock()
        }
    }

    /// The answer's code, and for `invalid_blocks` the pointers it names.
    fn refused_at(a: &Answer) -> (String, Vec<String>) {
        let pointers = a.body["response_metadata"]["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str()?.split("[json-pointer:").nth(1))
            .map(|p| p.trim_end_matches(']').to_string())
            .collect();
        (a.outcome.clone(), pointers)
    }

    fn assert_refused(a: &Answer, code: &str, pointer: &str) {
        let (got, pointers) = refused_at(a);
        assert_eq!(got, code, "{:?}", a.body);
        assert!(
            pointers.iter().any(|p| p == pointer),
            "no error at {pointer}: {pointers:?}"
        );
    }

    fn assert_ok(a: &Answer) {
        assert_eq!(a.outcome, "ok", "{:?}", a.body);
    }

    fn plain(text: &str) -> Value {
        json!({ "type": "plain_text", "text": text })
    }

    fn option(text: &str, value: &str) -> Value {
        json!({ "text": plain(text), "value": value })
    }

    fn options(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| option(&format!("Option {i}"), &format!("v{i}")))
            .collect()
    }

    fn actions(elements: Value) -> Value {
        json!([{ "type": "actions", "elements": elements }])
    }

    #[test]
    fn a_permalink_to_a_dm_takes_the_user_id_or_the_dm_id_and_opens_nothing() {
        let f = fake();
        let ts = f.post("U1", "hello");
        let by_user = f.json(
            "chat.getPermalink",
            json!({ "channel": "U1", "message_ts": ts }),
        );
        let by_dm = f.json(
            "chat.getPermalink",
            json!({ "channel": "DU1", "message_ts": ts }),
        );
        assert_ok(&by_user);
        assert_eq!(by_user.body, by_dm.body);
        assert_eq!(by_user.body["channel"], "DU1");
        assert_eq!(
            by_user.body["permalink"],
            format!(
                "https://fake-slack.test/archives/DU1/p{}",
                ts.replace('.', "")
            )
        );
        let stranger = f.json(
            "chat.getPermalink",
            json!({ "channel": "U9", "message_ts": ts }),
        );
        assert_eq!(stranger.outcome, "channel_not_found");
        assert_eq!(f.state().dms.len(), 1, "asking opened no DM");
        let no_channel = f.json("chat.getPermalink", json!({ "message_ts": ts }));
        assert_eq!(no_channel.outcome, "channel_not_found");
        let no_ts = f.json("chat.getPermalink", json!({ "channel": "DU1" }));
        assert_eq!(no_ts.outcome, "message_not_found");
        // A DM that is open but empty exists; its messages do not.
        assert_ok(&f.json("conversations.open", json!({ "users": "U2" })));
        let empty = f.json(
            "chat.getPermalink",
            json!({ "channel": "DU2", "message_ts": ts }),
        );
        assert_eq!(empty.outcome, "message_not_found");
        // Form bodies too.
        assert_ok(&f.form(
            "chat.getPermalink",
            &[("channel", "DU1"), ("message_ts", &ts)],
        ));
    }

    #[test]
    fn permalinks_and_group_lists_have_their_tiers_rate_limits() {
        let f = fake();
        let ts = f.post("C1", "hello");
        f.state().buckets = Some(HashMap::new());
        for i in 0..100 {
            let a = f.json(
                "chat.getPermalink",
                json!({ "channel": "C1", "message_ts": ts }),
            );
            assert_eq!(a.outcome, "ok", "call {i}");
        }
        let over = f.json(
            "chat.getPermalink",
            json!({ "channel": "C1", "message_ts": ts }),
        );
        assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(over.retry_after.is_some_and(|s| s >= 1));
        for i in 0..20 {
            assert_eq!(
                f.json("usergroups.list", json!({})).outcome,
                "ok",
                "call {i}"
            );
        }
        let over = f.json("usergroups.list", json!({}));
        assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(over.body["error"], "ratelimited");
    }

    #[test]
    fn a_group_list_names_members_only_when_asked_to() {
        let f = fake();
        {
            let mut ws = f.state();
            ws.usergroups
                .insert("S0ONCALL".into(), vec!["U1".into(), "U2".into()]);
            ws.handles.insert("S0ONCALL".into(), "oncall".into());
        }
        let plain = f.json("usergroups.list", json!({}));
        assert_eq!(
            plain.body["usergroups"],
            json!([{ "id": "S0ONCALL", "handle": "oncall", "name": "oncall" }])
        );
        let with_users = f.json("usergroups.list", json!({ "include_users": true }));
        assert_eq!(
            with_users.body["usergroups"][0]["users"],
            json!(["U1", "U2"])
        );
        let form = f.form(
            "usergroups.list",
            &[("include_users", "true"), ("include_count", "true")],
        );
        assert_eq!(form.body["usergroups"][0]["users"], json!(["U1", "U2"]));
        assert_eq!(form.body["usergroups"][0]["user_count"], 2);
    }

    #[test]
    fn a_form_body_broadcasts_with_the_string_true_and_only_in_a_thread() {
        let f = fake();
        let root = f.post("C1", "root");
        for (thread, flag, want) in [
            (true, "true", true),
            (true, "1", true),
            (true, "false", false),
            (false, "true", false),
        ] {
            let mut fields = vec![
                ("channel", "C1"),
                ("text", "reply"),
                ("reply_broadcast", flag),
            ];
            if thread {
                fields.push(("thread_ts", &root));
            }
            let a = f.form("chat.postMessage", &fields);
            assert_ok(&a);
            let ts = a.body["ts"].as_str().unwrap();
            let stored = f
                .state()
                .messages
                .iter()
                .find(|m| m.ts == ts)
                .cloned()
                .unwrap();
            assert_eq!(
                stored.broadcast, want,
                "thread {thread}, reply_broadcast={flag}"
            );
        }
        let a = f.json(
            "chat.postMessage",
            json!({ "channel": "C1", "text": "r", "thread_ts": root, "reply_broadcast": false }),
        );
        assert_ok(&a);
        assert!(!f.state().messages.last().unwrap().broadcast);
    }

    #[test]
    fn an_overflow_menu_is_held_to_slacks_limits() {
        let f = fake();
        let menu =
            |opts: Vec<Value>| json!({ "type": "overflow", "action_id": "more", "options": opts });
        assert_ok(&f.blocks(actions(json!([menu(options(2))]))));
        assert_ok(&f.blocks(actions(json!([menu(options(5))]))));
        // A section accessory, with a confirmation.
        let mut confirmed = menu(options(3));
        confirmed["confirm"] = json!({
            "title": plain("Sure?"), "text": plain("Really"),
            "confirm": plain("Yes"), "deny": plain("No"),
        });
        assert_ok(&f.blocks(json!([{
            "type": "section", "text": plain("x"), "accessory": confirmed.clone()
        }])));
        for (opts, pointer) in [
            (options(1), "/blocks/0/elements/0/options"),
            (options(6), "/blocks/0/elements/0/options"),
        ] {
            assert_refused(
                &f.blocks(actions(json!([menu(opts)]))),
                "invalid_blocks",
                pointer,
            );
        }
        let mut long = options(2);
        long[1] = option(&"x".repeat(76), "v");
        assert_refused(
            &f.blocks(actions(json!([menu(long)]))),
            "invalid_blocks",
            "/blocks/0/elements/0/options/1/text/text",
        );
        let mut at_limit = options(2);
        at_limit[1] = option(&"x".repeat(75), &"v".repeat(150));
        assert_ok(&f.blocks(actions(json!([menu(at_limit)]))));
        let mut rich = options(2);
        rich[0]["text"]["type"] = json!("mrkdwn");
        assert_refused(
            &f.blocks(actions(json!([menu(rich)]))),
            "invalid_blocks",
            "/blocks/0/elements/0/options/0/text/type",
        );
        let mut no_value = options(2);
        no_value[0].as_object_mut().unwrap().remove("value");
        assert_refused(
            &f.blocks(actions(json!([menu(no_value)]))),
            "invalid_blocks",
            "/blocks/0/elements/0/options/0/value",
        );
        let twice = json!([
            { "type": "button", "action_id": "more", "text": plain("Go") },
            menu(options(2)),
        ]);
        assert_refused(
            &f.blocks(actions(twice)),
            "invalid_blocks",
            "/blocks/0/elements/1/action_id",
        );
        confirmed["confirm"]["title"] = plain(&"t".repeat(101));
        assert_refused(
            &f.blocks(actions(json!([confirmed]))),
            "invalid_blocks",
            "/blocks/0/elements/0/confirm/title/text",
        );
        // chat.update holds it to the same rules.
        let ts = f.post("C1", "x");
        let update = f.json(
            "chat.update",
            json!({ "channel": "C1", "ts": ts, "text": "t", "blocks": actions(json!([menu(options(6))])) }),
        );
        assert_refused(&update, "invalid_blocks", "/blocks/0/elements/0/options");
    }

    fn modal(element: Value) -> Value {
        json!({
            "trigger_id": "1.2.abc",
            "view": {
                "type": "modal", "title": plain("Pick"), "submit": plain("Go"),
                "blocks": [{ "type": "input", "block_id": "b", "label": plain("L"), "element": element }],
            },
        })
    }

    #[test]
    fn radio_buttons_and_checkboxes_take_one_to_ten_options_in_either_text() {
        let f = fake();
        for kind in ["radio_buttons", "checkboxes"] {
            let mut opts = options(10);
            opts[0]["text"] = json!({ "type": "mrkdwn", "text": "*bold*" });
            let el = json!({ "type": kind, "action_id": "pick", "options": opts });
            assert_ok(&f.json("views.open", modal(el.clone())));
            assert_ok(&f.blocks(actions(json!([el]))));
            for n in [0, 11] {
                let el = json!({ "type": kind, "action_id": "pick", "options": options(n) });
                let a = f.json("views.open", modal(el.clone()));
                assert_refused(&a, "invalid_arguments", "/view/blocks/0/element/options");
                assert_refused(
                    &f.blocks(actions(json!([el]))),
                    "invalid_blocks",
                    "/blocks/0/elements/0/options",
                );
            }
            let mut long = options(2);
            long[0]["text"] = json!({ "type": "mrkdwn", "text": "x".repeat(76) });
            let el = json!({ "type": kind, "options": long });
            assert_refused(
                &f.blocks(actions(json!([el]))),
                "invalid_blocks",
                "/blocks/0/elements/0/options/0/text/text",
            );
        }
        let chosen = json!({ "type": "radio_buttons", "options": options(3), "initial_option": option("Option 1", "v1") });
        assert_ok(&f.json("views.open", modal(chosen)));
        let stranger = json!({ "type": "radio_buttons", "options": options(3), "initial_option": option("Other", "v9") });
        assert_refused(
            &f.json("views.open", modal(stranger)),
            "invalid_arguments",
            "/view/blocks/0/element/initial_option",
        );
        let ticked = json!({ "type": "checkboxes", "options": options(3), "initial_options": [option("Option 9", "v9")] });
        assert_refused(
            &f.blocks(actions(json!([ticked]))),
            "invalid_blocks",
            "/blocks/0/elements/0/initial_options/0",
        );
    }

    #[test]
    fn a_home_is_published_per_user_within_100_blocks_and_a_stale_hash_is_refused() {
        let f = fake();
        let section = json!({ "type": "section", "text": plain("x") });
        let home = |n: usize| json!({ "type": "home", "blocks": vec![section.clone(); n] });
        let first = f.json(
            "views.publish",
            json!({ "user_id": "U1", "view": home(100) }),
        );
        assert_ok(&first);
        let hash = first.body["view"]["hash"].as_str().unwrap().to_string();
        assert_refused(
            &f.json(
                "views.publish",
                json!({ "user_id": "U1", "view": home(101) }),
            ),
            "invalid_arguments",
            "/view/blocks",
        );
        assert_refused(
            &f.json(
                "views.publish",
                json!({ "user_id": "U1", "view": { "type": "modal", "blocks": [] } }),
            ),
            "invalid_arguments",
            "/view/type",
        );
        assert_eq!(
            f.json("views.publish", json!({ "view": home(1) })).outcome,
            "invalid_arguments"
        );
        // Published again with the hash read: fine; with the old hash: refused.
        let again = f.json(
            "views.publish",
            json!({ "user_id": "U1", "view": home(2), "hash": hash }),
        );
        assert_ok(&again);
        assert_eq!(
            again.body["view"]["id"], first.body["view"]["id"],
            "one Home per user"
        );
        assert_eq!(
            f.json(
                "views.publish",
                json!({ "user_id": "U1", "view": home(3), "hash": hash })
            )
            .outcome,
            "hash_conflict"
        );
        assert_eq!(f.state().homes["U1"]["blocks"].as_array().unwrap().len(), 2);
        assert!(!f.state().homes.contains_key("U2"));
    }

    #[test]
    fn a_modal_is_updated_by_view_id_and_a_stale_hash_is_refused() {
        let f = fake();
        let opened = f.json(
            "views.open",
            modal(json!({ "type": "plain_text_input", "action_id": "v" })),
        );
        assert_ok(&opened);
        let id = opened.body["view"]["id"].as_str().unwrap().to_string();
        let hash = opened.body["view"]["hash"].as_str().unwrap().to_string();
        let next = modal(json!({ "type": "datetimepicker", "action_id": "when" }));
        let updated = f.json(
            "views.update",
            json!({ "view_id": id, "hash": hash, "view": next["view"] }),
        );
        assert_ok(&updated);
        assert_eq!(updated.body["view"]["id"], id.as_str());
        assert_eq!(
            f.json(
                "views.update",
                json!({ "view_id": id, "hash": hash, "view": next["view"] })
            )
            .outcome,
            "hash_conflict"
        );
        assert_eq!(
            f.json(
                "views.update",
                json!({ "view_id": "V999", "view": next["view"] })
            )
            .outcome,
            "not_found"
        );
        assert_eq!(
            f.json("views.update", json!({ "view": next["view"] }))
                .outcome,
            "invalid_arguments"
        );
        assert_eq!(
            f.state().views[0].view["blocks"][0]["element"]["type"],
            "datetimepicker"
        );
    }

    #[test]
    fn a_datetimepicker_takes_unix_seconds_in_inputs_and_actions_only() {
        let f = fake();
        let picker = json!({ "type": "datetimepicker", "action_id": "when", "initial_date_time": 1_767_000_000 });
        assert_ok(&f.json("views.open", modal(picker.clone())));
        assert_ok(&f.blocks(actions(json!([picker.clone()]))));
        assert_ok(&f.blocks(actions(json!([{ "type": "datetimepicker" }]))));
        for bad in [
            json!("1767000000"),
            json!(-1),
            json!(1.5),
            json!(99_999_999_999u64),
        ] {
            let el = json!({ "type": "datetimepicker", "initial_date_time": bad });
            assert_refused(
                &f.json("views.open", modal(el)),
                "invalid_arguments",
                "/view/blocks/0/element/initial_date_time",
            );
        }
        let accessory = json!([{ "type": "section", "text": plain("x"), "accessory": picker }]);
        assert_refused(
            &f.blocks(accessory),
            "invalid_blocks",
            "/blocks/0/accessory/type",
        );
    }

    #[test]
    fn an_element_needs_a_known_type_for_its_place() {
        let f = fake();
        assert_refused(
            &f.blocks(actions(json!([{ "type": "sparkle_button" }]))),
            "invalid_blocks",
            "/blocks/0/elements/0/type",
        );
        assert_refused(
            &f.blocks(actions(json!([{ "action_id": "x", "text": plain("Go") }]))),
            "invalid_blocks",
            "/blocks/0/elements/0/type",
        );
        // A text input belongs in an input block, not an actions block.
        assert_refused(
            &f.blocks(actions(json!([{ "type": "plain_text_input" }]))),
            "invalid_blocks",
            "/blocks/0/elements/0/type",
        );
        assert_ok(&f.json(
            "views.open",
            modal(json!({ "type": "plain_text_input", "action_id": "v" })),
        ));
        assert_refused(
            &f.json(
                "views.open",
                modal(json!({ "type": "button", "text": plain("Go") })),
            ),
            "invalid_arguments",
            "/view/blocks/0/element/type",
        );
    }

    #[test]
    fn message_limits_are_slacks() {
        let f = fake();
        let section = |n: usize| json!([{ "type": "section", "text": { "type": "mrkdwn", "text": "x".repeat(n) } }]);
        assert_ok(&f.blocks(section(3000)));
        assert_refused(
            &f.blocks(section(3001)),
            "invalid_blocks",
            "/blocks/0/text/text",
        );
        let header = |n: usize| json!([{ "type": "header", "text": plain(&"h".repeat(n)) }]);
        assert_ok(&f.blocks(header(150)));
        assert_refused(
            &f.blocks(header(151)),
            "invalid_blocks",
            "/blocks/0/text/text",
        );
        let dividers = |n: usize| Value::Array(vec![json!({ "type": "divider" }); n]);
        assert_ok(&f.blocks(dividers(50)));
        assert_refused(&f.blocks(dividers(51)), "invalid_blocks", "/blocks");
        let button = |n: usize| {
            actions(json!([{ "type": "button", "action_id": "b", "text": plain(&"b".repeat(n)) }]))
        };
        assert_ok(&f.blocks(button(75)));
        assert_refused(
            &f.blocks(button(76)),
            "invalid_blocks",
            "/blocks/0/elements/0/text/text",
        );
        let context = |n: usize| json!([{ "type": "context", "elements": vec![json!({ "type": "mrkdwn", "text": "c" }); n] }]);
        assert_ok(&f.blocks(context(10)));
        assert_refused(
            &f.blocks(context(11)),
            "invalid_blocks",
            "/blocks/0/elements",
        );
        let text = |n: usize| json!({ "channel": "C1", "text": "t".repeat(n) });
        assert_ok(&f.json("chat.postMessage", text(40_000)));
        assert_eq!(
            f.json("chat.postMessage", text(40_001)).outcome,
            "msg_too_long"
        );
        let ts = f.post("C1", "short");
        let mut long = text(40_001);
        long["ts"] = json!(ts);
        assert_eq!(f.json("chat.update", long).outcome, "msg_too_long");
        assert_eq!(f.state().messages.last().unwrap().text, "short");
    }
}
