//! Who is who: whether a Slack user is one of a list of principals (users
//! and user groups). Group members come from `usergroups.users.list`
//! (Tier 2, about 20 calls a minute), so they are cached for a few minutes.

use crate::ids::Principal;
use crate::slack::api::{SlackApi, SlackCallError};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a group's member list is trusted.
const MEMBERS_TTL: Duration = Duration::from_secs(300);

/// Group id to (when fetched, members).
type MemberCache = HashMap<String, (Instant, Arc<Vec<String>>)>;

#[derive(Clone)]
pub struct Directory {
    slack: SlackApi,
    cache: Arc<Mutex<MemberCache>>,
}

impl Directory {
    pub fn new(slack: SlackApi) -> Self {
        Self {
            slack,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The members of a user group.
    pub async fn members(&self, group: &str) -> Result<Arc<Vec<String>>, SlackCallError> {
        if let Some((at, users)) = self.cache.lock().expect("cache poisoned").get(group) {
            if at.elapsed() < MEMBERS_TTL {
                return Ok(users.clone());
            }
        }
        let answer = match self
            .slack
            .call("usergroups.users.list", &json!({ "usergroup": group }))
            .await
        {
            Ok(a) => a,
            // A group Slack does not know (a typo in config, a deleted group)
            // has no members; say so in the log. An outage is an error instead,
            // so nobody is refused because Slack was briefly away.
            Err(SlackCallError::Refused { code, .. }) => {
                tracing::warn!(group, code = %code, "a configured user group cannot be resolved; treating it as empty");
                json!({ "users": [] })
            }
            Err(e) => return Err(e),
        };
        let users: Vec<String> = answer
            .get("users")
            .and_then(|u| u.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let users = Arc::new(users);
        self.cache
            .lock()
            .expect("cache poisoned")
            .insert(group.to_string(), (Instant::now(), users.clone()));
        Ok(users)
    }

    /// Whether `user` is one of `principals`, directly or through a group.
    pub async fn is_among(
        &self,
        user: &str,
        principals: &[Principal],
    ) -> Result<bool, SlackCallError> {
        if principals
            .iter()
            .any(|p| matches!(p, Principal::User(u) if u == user))
        {
            return Ok(true);
        }
        for p in principals {
            if let Principal::Group(g) = p {
                if self.members(g).await?.iter().any(|m| m == user) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Every user named by `principals`, groups expanded, each once.
    pub async fn expand(&self, principals: &[Principal]) -> Result<Vec<String>, SlackCallError> {
        let mut out = BTreeSet::new();
        for p in principals {
            match p {
                Principal::User(u) => {
                    out.insert(u.clone());
                }
                Principal::Group(g) => out.extend(self.members(g).await?.iter().cloned()),
            }
        }
        Ok(out.into_iter().collect())
    }
}
