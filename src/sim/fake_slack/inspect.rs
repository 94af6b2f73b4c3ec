//! What a test reads back: every call, message, view, file and App Home the
//! fake holds, and waits for calls or files to arrive.

use super::{Call, CreatedChannel, FakeSlack, Message, UploadedFile, View};
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT_POLL: Duration = Duration::from_millis(10);

impl FakeSlack {
    /// A user's App Home as last published, if ever.
    pub fn home(&self, user: &str) -> Option<Value> {
        self.state().homes.get(user).cloned()
    }

    /// The channels the bot created (`conversations.create`) and those a
    /// test added ([`FakeSlack::add_channel`]), in order.
    pub fn created_channels(&self) -> Vec<CreatedChannel> {
        self.state().created.clone()
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
}
