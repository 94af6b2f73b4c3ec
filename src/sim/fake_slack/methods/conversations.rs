//! `conversations.*`: DMs, joining, history and threads, and how a channel
//! argument resolves (a user ID means that user's DM).

use crate::sim::fake_slack::wire::{flag, is_user_id, str_arg, Refusal, Reply};
use crate::sim::fake_slack::{CreatedChannel, FakeSlack, Message, Workspace, BOT_USER_ID};
use serde_json::{json, Value};

impl Workspace {
    /// Whether `channel` holds a message `ts` (a thread's parent, say).
    pub(super) fn has_message(&self, channel: &str, ts: &str) -> bool {
        self.messages
            .iter()
            .any(|m| m.channel == channel && m.ts == ts)
    }

    /// The DM channel for a set of users, the same ID every time; the bool
    /// says whether it already existed.
    pub(super) fn dm_channel(&mut self, users: &[&str]) -> (String, bool) {
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
    pub(super) fn resolve_channel(&mut self, channel: &str) -> String {
        if is_user_id(channel) {
            self.dm_channel(&[channel]).0
        } else {
            channel.to_string()
        }
    }

    /// [`Self::resolve_channel`] for a read: the DM's ID without opening it.
    pub(super) fn peek_channel(&self, channel: &str) -> String {
        if !is_user_id(channel) {
            return channel.to_string();
        }
        self.dms
            .get(&vec![channel.to_string()])
            .cloned()
            .unwrap_or_else(|| FakeSlack::dm_channel_for(channel))
    }

    pub(super) fn conversations_open(&mut self, body: &Value) -> Result<Reply, Refusal> {
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

    /// `conversations.history` (`thread: None`) or `conversations.replies`
    /// (the thread's parent ts), as Slack documents them: history newest
    /// first; a thread's replies earliest first (the parent, then its
    /// replies in the order they were posted). Only messages after `oldest`
    /// and before `latest` (each exclusive unless `inclusive`), at most
    /// `limit` (default 100) a page; `has_more` and
    /// `response_metadata.next_cursor` lead to the next page, which `cursor`
    /// asks for (a cursor this fake did not give is `invalid_cursor`). Each
    /// message's `metadata` only when `include_all_metadata` is true.
    pub(super) fn history(&self, body: &Value, thread: Option<String>) -> Result<Reply, Refusal> {
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
            if !self.has_message(&channel, parent) {
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
    pub(super) fn join(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let channel = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        if self.members_only.get(channel) == Some(&true) {
            return Err(Refusal::new("method_not_supported_for_channel_type"));
        }
        self.members_only.remove(channel);
        Ok(Reply::new(
            json!({ "ok": true, "channel": { "id": channel, "is_member": true } }),
        ))
    }

    /// `conversations.create`: a new channel, the bot its first member.
    pub(super) fn create_channel(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let name = str_arg(body, "name").ok_or_else(|| Refusal::new("invalid_name_required"))?;
        if name.chars().count() > 80 {
            return Err(Refusal::new("invalid_name_maxlength"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(Refusal::new("invalid_name_specials"));
        }
        if self.created.iter().any(|c| c.name == name) {
            return Err(Refusal::new("name_taken"));
        }
        let is_private = flag(body, "is_private");
        let id = format!(
            "{}0NEW{:04}",
            if is_private { 'G' } else { 'C' },
            self.created.len() + 1
        );
        self.created.push(CreatedChannel {
            id: id.clone(),
            name: name.to_string(),
            is_private,
            members: vec![BOT_USER_ID.to_string()],
            topic: String::new(),
            archived: false,
        });
        Ok(Reply::new(json!({
            "ok": true,
            "channel": {
                "id": id, "name": name, "is_channel": !is_private,
                "is_private": is_private, "is_member": true, "creator": BOT_USER_ID,
            },
        })))
    }

    /// A channel the bot opened, by ID, refused when archived.
    fn open_channel(&mut self, body: &Value) -> Result<&mut CreatedChannel, Refusal> {
        let id = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        let archived = self.archived.contains(id);
        let channel = self
            .created
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| Refusal::new("channel_not_found"))?;
        if channel.archived || archived {
            return Err(Refusal::new("is_archived"));
        }
        Ok(channel)
    }

    /// `conversations.invite`: `already_in_channel` only when every one of
    /// them already was; the bot itself is `cant_invite_self`.
    pub(super) fn invite(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let users: Vec<String> = str_arg(body, "users")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        let channel = self.open_channel(body)?;
        if users.is_empty() {
            return Err(Refusal::new("no_user"));
        }
        if users.len() > 1000 {
            return Err(Refusal::new("too_many_users"));
        }
        if users.iter().any(|u| u == BOT_USER_ID) {
            return Err(Refusal::new("cant_invite_self"));
        }
        if users.iter().any(|u| !is_user_id(u)) {
            return Err(Refusal::new("user_not_found"));
        }
        if users.iter().all(|u| channel.members.contains(u)) {
            return Err(Refusal::new("already_in_channel"));
        }
        for u in users {
            if !channel.members.contains(&u) {
                channel.members.push(u);
            }
        }
        let channel = channel.clone();
        Ok(Reply::new(json!({
            "ok": true,
            "channel": { "id": channel.id, "name": channel.name },
        })))
    }

    /// `conversations.setTopic`: at most 250 characters.
    pub(super) fn set_topic(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let topic = body.get("topic").and_then(Value::as_str).unwrap_or("");
        if topic.chars().count() > 250 {
            return Err(Refusal::new("too_long"));
        }
        let topic = topic.to_string();
        let channel = self.open_channel(body)?;
        channel.topic = topic.clone();
        Ok(Reply::new(json!({
            "ok": true,
            "channel": { "id": channel.id, "topic": { "value": topic } },
        })))
    }

    /// `conversations.archive`: `already_archived` the second time; posts
    /// to it are refused (`is_archived`) from then on.
    pub(super) fn archive(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let id = str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        if self.archived.contains(id) {
            return Err(Refusal::new("already_archived"));
        }
        if let Some(c) = self.created.iter_mut().find(|c| c.id == id) {
            c.archived = true;
        } else if !self.messages.iter().any(|m| m.channel == id) {
            return Err(Refusal::new("channel_not_found"));
        }
        self.archived.insert(id.to_string());
        Ok(Reply::new(json!({ "ok": true })))
    }
}
