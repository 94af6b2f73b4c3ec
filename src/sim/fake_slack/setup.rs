//! What a test arranges: people and groups, channels and their state, faults
//! to answer with, and whether rate limits apply.

use super::{FakeSlack, Fault};
use std::collections::HashMap;

impl FakeSlack {
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

    /// A channel people made themselves (not the bot), with its members:
    /// `conversations.invite` and `conversations.setTopic` know it, as
    /// they know the channels the bot creates.
    pub fn add_channel(&self, id: &str, name: &str, members: &[&str]) {
        let mut state = self.state();
        state.created.retain(|c| c.id != id);
        state.created.push(super::CreatedChannel {
            id: id.to_string(),
            name: name.to_string(),
            is_private: false,
            members: members.iter().map(|m| m.to_string()).collect(),
            topic: String::new(),
            archived: false,
        });
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

    /// The email `users.lookupByEmail` finds a user by.
    pub fn set_user_email(&self, user: &str, email: &str) {
        self.state()
            .emails
            .insert(email.trim().to_ascii_lowercase(), user.to_string());
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
}
