//! The Web API methods, grouped as Slack groups them, and the dispatch from a
//! method's name to its handler.

use super::wire::{check_auth, is_json, str_arg, Answer, BodyError, Refusal};
use super::Workspace;
use axum::http::HeaderMap;
use serde_json::Value;
use std::time::Instant;

mod chat;
mod conversations;
mod files;
mod users;
mod views;

pub(super) use files::PendingFile;

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
    "users.lookupByEmail",
    "chat.getPermalink",
    "conversations.join",
    "conversations.history",
    "conversations.replies",
    "conversations.create",
    "conversations.invite",
    "conversations.setTopic",
    "conversations.archive",
];

impl Workspace {
    pub(super) fn api(
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
            Err(e) => return Answer::refused(e.into()),
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
            "users.lookupByEmail" => self.users_lookup_by_email(&body),
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
            "conversations.create" => self.create_channel(&body),
            "conversations.invite" => self.invite(&body),
            "conversations.setTopic" => self.set_topic(&body),
            "conversations.archive" => self.archive(&body),
            _ => unreachable!("METHODS and this match list the same methods"),
        };
        match result {
            Ok(reply) => Answer::ok(reply.body, reply.warnings),
            Err(refusal) => Answer::refused(refusal),
        }
    }
}
