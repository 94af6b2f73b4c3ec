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
//! - Channels the app opens: `conversations.create` (names of at most 80
//!   lowercase letters, digits, hyphens and underscores: `name_taken`,
//!   `invalid_name_specials`, `invalid_name_maxlength`,
//!   `invalid_name_required`; the bot is its first member),
//!   `conversations.invite` (`already_in_channel` when all of them were,
//!   `cant_invite_self`, `user_not_found`, `is_archived`),
//!   `conversations.setTopic` (250 characters, `too_long`) and
//!   `conversations.archive` (`already_archived`), read back with
//!   [`FakeSlack::created_channels`].
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
//!
//! The parts: `server.rs` routes requests and answers them from fault
//! queues (the wire format is in `wire.rs`); `methods/` holds
//! the Web API methods by family; `blocks.rs` the Block Kit rules;
//! `limits.rs` the rate limits; `setup.rs` and `inspect.rs` what tests arrange
//! and read back; `socket.rs` Socket Mode.

use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod blocks;
mod inspect;
mod limits;
mod methods;
mod server;
mod setup;
mod socket;
#[cfg(test)]
mod tests;
mod wire;

pub use socket::{SocketAck, SocketEnvelope};

use limits::Bucket;
use methods::PendingFile;
use socket::Sockets;

/// The token [`FakeSlack::start`] accepts.
pub const DEFAULT_TOKEN: &str = "xoxb-test-token";
/// The app-level token `apps.connections.open` accepts.
pub const DEFAULT_APP_TOKEN: &str = "xapp-1-A0TESTAPP-1-0123456789abcdef";
/// The app id the fake's `hello` names.
pub const APP_ID: &str = "A0TESTAPP";
/// The bot's own user ID: inviting it is `cant_invite_self`.
pub const BOT_USER_ID: &str = "U0BOTSLA";
/// Slack's deadline for an envelope's ack; later, it redelivers.
pub const SOCKET_ACK_DEADLINE: Duration = Duration::from_secs(3);

/// Slack's answer-level warning for a message with blocks but no top-level
/// `text` (the fallback used in notifications and by screen readers).
pub const MISSING_TEXT_WARNING: &str = "missing_text_or_fallback_or_blocks";

/// The name [`Call`]s to upload URLs are logged under, and the key that
/// [`FakeSlack::fail_next`] takes for them.
pub const UPLOAD_CALL: &str = "upload_url";

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

/// A channel opened with `conversations.create`.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedChannel {
    pub id: String,
    pub name: String,
    pub is_private: bool,
    /// Its members, the bot (its creator) first, then in invitation order.
    pub members: Vec<String>,
    /// Empty until `conversations.setTopic`.
    pub topic: String,
    pub archived: bool,
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
    /// Email (lowercase) to user id (`users.lookupByEmail`).
    emails: HashMap<String, String>,
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
    /// Channels opened with `conversations.create`, in creation order.
    created: Vec<CreatedChannel>,
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
