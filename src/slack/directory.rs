//! Who is who: whether a Slack user is one of a list of principals (users
//! and user groups). Group members come from `usergroups.users.list`
//! (Tier 2, about 20 calls a minute), so they are cached for a few minutes.
//!
//! Also how to *name* someone without notifying them: a mention (`<@U…>`,
//! `<!subteam^S…>`) is a notification wherever it appears, so a message that
//! only says who is on a tier uses the display name (`users.info`) or the
//! group's handle (`usergroups.list`) as plain text.

use crate::domain::ids::Principal;
use crate::domain::zone::UserZone;
use crate::slack::api::{SlackApi, SlackCallError};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a group's member list is trusted.
const MEMBERS_TTL: Duration = Duration::from_secs(300);

/// How long a display name or a group handle is trusted.
const NAMES_TTL: Duration = Duration::from_secs(3600);

/// After a lookup found Slack unavailable (every retry spent), how long names
/// are given as ids, and group members as last known, without asking: a poll
/// that names a hundred people while Slack is down must not wait out a
/// hundred rounds of retries.
const NAMES_QUIET: Duration = Duration::from_secs(30);

/// Group id to (when fetched, members).
type MemberCache = HashMap<String, (Instant, Arc<Vec<String>>)>;
/// User or group id to (when fetched, plain-text name).
type NameCache = HashMap<String, (Instant, String)>;
/// User id to (when fetched, their time zone).
type TzCache = HashMap<String, (Instant, UserZone)>;

#[derive(Clone)]
pub struct Directory {
    slack: SlackApi,
    cache: Arc<Mutex<MemberCache>>,
    names: Arc<Mutex<NameCache>>,
    tzs: Arc<Mutex<TzCache>>,
    /// Until when name lookups are not tried (Slack was found unavailable).
    quiet_until: Arc<Mutex<Option<Instant>>>,
}

impl Directory {
    pub fn new(slack: SlackApi) -> Self {
        Self {
            slack,
            cache: Arc::new(Mutex::new(HashMap::new())),
            names: Arc::new(Mutex::new(HashMap::new())),
            tzs: Arc::new(Mutex::new(HashMap::new())),
            quiet_until: Arc::new(Mutex::new(None)),
        }
    }

    /// A name lookup through Slack, unless Slack was found unavailable less
    /// than [`NAMES_QUIET`] ago; `None` when it cannot be asked.
    async fn ask(&self, method: &str, body: &serde_json::Value) -> Option<serde_json::Value> {
        if self.quiet() {
            return None;
        }
        match self.slack.call(method, body).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                if e.is_transient() {
                    tracing::warn!(error = %e, quiet_s = NAMES_QUIET.as_secs(), "Slack is unavailable for names; ids stand in for a while");
                    *self.quiet_until.lock().expect("quiet poisoned") =
                        Some(Instant::now() + NAMES_QUIET);
                }
                None
            }
        }
    }

    fn cached_name(&self, id: &str) -> Option<String> {
        let names = self.names.lock().expect("cache poisoned");
        names
            .get(id)
            .filter(|(at, _)| at.elapsed() < NAMES_TTL)
            .map(|(_, n)| n.clone())
    }

    /// A user's name as plain text, escaped for Slack: the display name, else
    /// the real name, else the id. Never a mention, so naming notifies nobody.
    /// If Slack cannot be asked just now, the id stands in (and is not cached).
    pub async fn user_name(&self, user: &str) -> String {
        if let Some(n) = self.cached_name(user) {
            return n;
        }
        let Some(answer) = self.ask("users.info", &json!({ "user": user })).await else {
            return user.to_string();
        };
        let pick = |p: &str| {
            answer
                .pointer(p)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let name = pick("/user/profile/display_name")
            .or_else(|| pick("/user/profile/real_name"))
            .or_else(|| pick("/user/real_name"))
            .or_else(|| pick("/user/name"))
            .unwrap_or_else(|| user.to_string());
        let name = crate::domain::text::escape_slack(&name);
        self.names
            .lock()
            .expect("cache poisoned")
            .insert(user.to_string(), (Instant::now(), name.clone()));
        name
    }

    /// The Slack user with this email (`users.lookupByEmail`, which needs
    /// the `users:read.email` scope); `None` when Slack knows no such user
    /// or cannot be asked just now. Found users are cached like names.
    pub async fn user_by_email(&self, email: &str) -> Option<String> {
        let key = format!("email:{}", email.trim().to_ascii_lowercase());
        if let Some(id) = self.cached_name(&key) {
            return Some(id);
        }
        let answer = self
            .ask("users.lookupByEmail", &json!({ "email": email.trim() }))
            .await?;
        let id = answer.pointer("/user/id")?.as_str()?.to_string();
        self.names
            .lock()
            .expect("cache poisoned")
            .insert(key, (Instant::now(), id.clone()));
        Some(id)
    }

    /// A user's time zone (`users.info` `tz`, or `tz_offset` when Slack
    /// names none chrono-tz knows), for times said in their own day ("end
    /// of day", "09:00 tomorrow"); `None` if Slack cannot be asked just now.
    pub async fn zone(&self, user: &str) -> Option<UserZone> {
        if let Some((at, zone)) = self.tzs.lock().expect("cache poisoned").get(user) {
            if at.elapsed() < NAMES_TTL {
                return Some(*zone);
            }
        }
        let answer = self.ask("users.info", &json!({ "user": user })).await?;
        let zone = UserZone::from_slack(
            answer.pointer("/user/tz").and_then(|v| v.as_str()),
            answer.pointer("/user/tz_offset").and_then(|v| v.as_i64()),
        )?;
        self.tzs
            .lock()
            .expect("cache poisoned")
            .insert(user.to_string(), (Instant::now(), zone));
        Some(zone)
    }

    /// A user group's handle as plain text (`@oncall`), from
    /// `usergroups.list`, which names every group in one call; the id if
    /// Slack does not know it or cannot be asked.
    pub async fn group_name(&self, group: &str) -> String {
        if let Some(n) = self.cached_name(group) {
            return n;
        }
        let Some(answer) = self.ask("usergroups.list", &json!({})).await else {
            return group.to_string();
        };
        let mut found = None;
        let mut names = self.names.lock().expect("cache poisoned");
        for g in answer
            .get("usergroups")
            .and_then(|g| g.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(id), Some(handle)) = (
                g.get("id").and_then(|v| v.as_str()),
                g.get("handle")
                    .and_then(|v| v.as_str())
                    .filter(|h| !h.is_empty()),
            ) else {
                continue;
            };
            let name = format!("@{}", crate::domain::text::escape_slack(handle));
            if id == group {
                found = Some(name.clone());
            }
            names.insert(id.to_string(), (Instant::now(), name));
        }
        // A group Slack does not list (a typo in config, a deleted group) is
        // named by its id, and remembered so: asking again at every render
        // would spend `usergroups.list`'s small rate limit for nothing.
        found.unwrap_or_else(|| {
            names.insert(group.to_string(), (Instant::now(), group.to_string()));
            group.to_string()
        })
    }

    /// A principal's plain-text name.
    pub async fn name(&self, p: &Principal) -> String {
        match p {
            Principal::User(u) => self.user_name(u).await,
            Principal::Group(g) => self.group_name(g).await,
        }
    }

    /// Principals named as plain text, joined with commas: "Ada, @oncall".
    pub async fn names(&self, principals: &[Principal]) -> String {
        let mut out = Vec::with_capacity(principals.len());
        for p in principals {
            out.push(self.name(p).await);
        }
        if out.is_empty() {
            "nobody".into()
        } else {
            out.join(", ")
        }
    }

    /// Treats every cached member list as past its time (as if fetched more
    /// than five minutes ago), so the next use asks Slack: for tests of what
    /// happens when Slack cannot answer then.
    #[doc(hidden)]
    pub fn age_member_lists(&self) {
        let old = Instant::now().checked_sub(MEMBERS_TTL);
        let mut cache = self.cache.lock().expect("cache poisoned");
        for (at, _) in cache.values_mut() {
            if let Some(old) = old {
                *at = old;
            }
        }
    }

    /// Whether Slack was found unavailable less than [`NAMES_QUIET`] ago.
    fn quiet(&self) -> bool {
        self.quiet_until
            .lock()
            .expect("quiet poisoned")
            .is_some_and(|until| Instant::now() < until)
    }

    /// The members of a user group.
    ///
    /// While Slack is unavailable, the last list fetched stands, however old
    /// (who was on call an hour ago is a better page than none; the DMs wait
    /// in the outbox for Slack to return). Without one, the error comes at
    /// once during the quiet window after a failure, rather than after a
    /// round of retries per group: a poll that opens five hundred alerts
    /// while Slack is down must not spend five hundred rounds of retries
    /// (their escalation steps are retried by the timer worker).
    pub async fn members(&self, group: &str) -> Result<Arc<Vec<String>>, SlackCallError> {
        let stale = match self.cache.lock().expect("cache poisoned").get(group) {
            Some((at, users)) if at.elapsed() < MEMBERS_TTL => return Ok(users.clone()),
            Some((_, users)) => Some(users.clone()),
            None => None,
        };
        let unavailable = |e: SlackCallError| {
            if let Some(users) = &stale {
                tracing::warn!(group, error = %e, "Slack is unavailable; using the group's last known members");
                return Ok(users.clone());
            }
            Err(e)
        };
        if self.quiet() {
            return unavailable(SlackCallError::Unavailable {
                method: "usergroups.users.list".into(),
                attempts: 0,
                last: "Slack was found unavailable moments ago; not asked again yet".into(),
                retry_after: None,
            });
        }
        let answer = match self
            .slack
            .call("usergroups.users.list", &json!({ "usergroup": group }))
            .await
        {
            Ok(a) => a,
            Err(e) if e.is_transient() => {
                *self.quiet_until.lock().expect("quiet poisoned") =
                    Some(Instant::now() + NAMES_QUIET);
                return unavailable(e);
            }
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
