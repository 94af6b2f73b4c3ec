//! `chat.*`: posting, updating, ephemeral messages and permalinks, and the
//! slash commands' `response_url`s.

use crate::sim::fake_slack::blocks::{Check, MESSAGE_MAX_BLOCKS};
use crate::sim::fake_slack::wire::{
    flag, is_user_id, non_empty_array, non_null, str_arg, Answer, BodyError, Refusal, Reply,
};
use crate::sim::fake_slack::{Message, Workspace, MISSING_TEXT_WARNING};
use axum::http::StatusCode;
use serde_json::{json, Value};

const RESPONSE_URL_MAX_USES: u32 = 5;

/// Counter-based timestamps start here so they look like real Slack `ts` values.
const TS_EPOCH_SECS: u64 = 1_700_000_000;

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

impl Workspace {
    pub(super) fn next_ts(&mut self) -> String {
        self.ts_counter += 1;
        let micros = self.ts_counter * 100;
        format!(
            "{}.{:06}",
            TS_EPOCH_SECS + micros / 1_000_000,
            micros % 1_000_000
        )
    }

    pub(super) fn post_message(&mut self, body: &Value) -> Result<Reply, Refusal> {
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
            if !self.has_message(&channel, parent) {
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

    pub(super) fn update(&mut self, body: &Value) -> Result<Reply, Refusal> {
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

    pub(super) fn post_ephemeral(&mut self, body: &Value) -> Result<Reply, Refusal> {
        str_arg(body, "channel").ok_or_else(|| Refusal::new("channel_not_found"))?;
        str_arg(body, "user").ok_or_else(|| Refusal::new("user_not_found"))?;
        let content = message_content(body)?;
        let ts = self.next_ts();
        Ok(Reply {
            body: json!({ "ok": true, "message_ts": ts }),
            warnings: content.warnings,
        })
    }

    /// `chat.getPermalink`: a link to a message that exists, in Slack's shape
    /// (a thread reply's link names its thread).
    /// The channel is the channel ID or, as for `chat.postMessage`, a user
    /// ID standing for that user's DM; asking never opens a DM.
    pub(super) fn permalink(&self, body: &Value) -> Result<Reply, Refusal> {
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

    pub(in crate::sim::fake_slack) fn response_url(
        &mut self,
        id: &str,
        parsed: Result<Value, BodyError>,
    ) -> Answer {
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
            Err(e) => return Answer::refused(e.into()),
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
