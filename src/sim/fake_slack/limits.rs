//! Slack's per-method rate limits, when a test switches them on
//! ([`FakeSlack::enforce_rate_limits`](super::FakeSlack::enforce_rate_limits)).

use super::Workspace;
use serde_json::Value;
use std::time::Instant;

impl Workspace {
    pub(super) fn rate_limit(&mut self, method: &str, body: &Value, now: Instant) -> Option<u64> {
        let buckets = self.buckets.as_mut()?;
        // chat.postMessage is limited per channel (1/s with short bursts);
        // the tiered methods per method across the workspace.
        let (key, capacity, per_minute) = match method {
            "chat.postMessage" => {
                let channel = body.get("channel").and_then(Value::as_str).unwrap_or("");
                (format!("{method} {channel}"), 3.0, 60.0)
            }
            "chat.update"
            | "users.lookupByEmail"
            | "conversations.open"
            | "conversations.join"
            | "conversations.history"
            | "conversations.replies"
            | "conversations.invite"
            | "conversations.setTopic"
            | "conversations.archive" => (method.to_string(), 50.0, 50.0),
            "conversations.create" => (method.to_string(), 20.0, 20.0),
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
}

/// A token bucket: `capacity` calls at once, refilled at `per_sec`.
pub(super) struct Bucket {
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
