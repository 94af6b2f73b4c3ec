//! `users.info`, `users.lookupByEmail` and `usergroups.*`: people and
//! groups by name.

use crate::sim::fake_slack::wire::{flag, str_arg, Refusal, Reply};
use crate::sim::fake_slack::Workspace;
use serde_json::{json, Value};

impl Workspace {
    pub(super) fn usergroup_users(&self, body: &Value) -> Result<Reply, Refusal> {
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
    pub(super) fn usergroups_list(&self, body: &Value) -> Reply {
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

    /// `users.lookupByEmail` (needs `users:read.email`): the user whose
    /// email was set with [`FakeSlack::set_user_email`], as `users.info`
    /// gives it with the address in its profile, else `users_not_found`
    /// (Slack's error, also for a malformed address).
    pub(super) fn users_lookup_by_email(&self, body: &Value) -> Result<Reply, Refusal> {
        let email = str_arg(body, "email").ok_or_else(|| Refusal {
            detail: Some("missing required argument: email".into()),
            ..Refusal::new("invalid_arguments")
        })?;
        let id = self
            .emails
            .get(&email.trim().to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| Refusal::new("users_not_found"))?;
        let mut answer = self.users_info(&json!({ "user": id }))?;
        answer.body["user"]["profile"]["email"] = email.into();
        Ok(answer)
    }

    pub(super) fn users_info(&self, body: &Value) -> Result<Reply, Refusal> {
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
}
