//! A maintenance window in the tenant's channel (issue 35, item 3): one
//! notice when it starts (":wrench: Maintenance of … until …: reason"),
//! edited in place when it ends, and after its settling time one summary of
//! the jobs still at risk (or "all recovered"); those page again by
//! themselves ([`crate::flows::quiet_hold`]'s resume timer).
//!
//! Decided when the poll sees a window start, end or settle ([`reconcile`]),
//! and when a window set from Slack is cancelled ([`cancelled`]). Each
//! message is an outbox row with a dedup key named after the window's
//! occurrence (`maintenance:<key>:post`, `:end`, `:summary`), so every
//! replica and every poll writes it once; the end's edit finds the notice
//! by its post's row (the `maintenance:<key>` anchor).

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::text::{date_token, escape_slack};
use crate::flows::quiet::{window_covers, Subject};
use crate::store::maintenance_post_key;
use crate::store::{Effects, NewOutboxMessage, StoredWindow};
use chrono::{DateTime, Utc};
use serde_json::json;

/// How long after a window settled the poll still says anything about it
/// (a bot down for longer does not bring up old windows).
const LOOKBACK_HOURS: i64 = 24;

/// One occurrence of a window: from the config or set from Slack.
#[derive(Clone, Debug)]
pub struct Occurrence {
    /// Names the occurrence: `w:<id>` (Slack) or `cfg:<tenant>:<n>:<start>`.
    pub key: String,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    pub settle: chrono::Duration,
    pub reason: Option<String>,
    /// What it covers, in words: "tenant `acme`", "assets orders_*".
    pub what: String,
    cover: Cover,
}

#[derive(Clone, Debug)]
enum Cover {
    Config { tenant: String, assets: Vec<String> },
    Stored(StoredWindow),
}

impl Occurrence {
    fn covers(&self, s: &Subject) -> bool {
        match &self.cover {
            Cover::Config { tenant, assets } => {
                *tenant == s.tenant
                    && (assets.is_empty()
                        || assets
                            .iter()
                            .any(|g| crate::domain::text::glob_match(g, &s.asset)))
            }
            Cover::Stored(w) => window_covers(w, s),
        }
    }

    /// A window set from Slack.
    pub fn stored(w: &StoredWindow) -> Occurrence {
        let settle =
            chrono::Duration::from_std(crate::config::quiet::DEFAULT_SETTLE).unwrap_or_default();
        Occurrence {
            key: format!("w:{}", w.id),
            starts: w.starts_at,
            ends: w.ends_at,
            settle,
            reason: w.reason.clone(),
            what: match w.scope {
                crate::store::Scope::Tenant => format!("tenant `{}`", escape_slack(&w.target)),
                _ => format!("{} *{}*", w.scope.as_str(), escape_slack(&w.target)),
            },
            cover: Cover::Stored(w.clone()),
        }
    }

    fn reason_words(&self) -> String {
        self.reason
            .as_deref()
            .map(|r| format!(": {}", escape_slack(r)))
            .unwrap_or_default()
    }

    /// The notice when it starts.
    pub fn start_words(&self) -> String {
        format!(
            ":wrench: Maintenance of {} until {}{}. Nothing of it pages until then.",
            self.what,
            date_token(self.ends),
            self.reason_words()
        )
    }

    /// The notice, edited when it ends (at `at`).
    pub fn end_words(&self, at: DateTime<Utc>, how: &str) -> String {
        format!(
            ":white_check_mark: Maintenance of {} {how} at {}{}. Jobs still at risk page after {}, once ETAs settle.",
            self.what,
            date_token(at),
            self.reason_words(),
            date_token(at + self.settle)
        )
    }
}

/// The occurrences of a tenant's windows worth a word at `now`: begun, and
/// settled no longer than [`LOOKBACK_HOURS`] ago.
async fn occurrences(
    state: &AppState,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Occurrence>> {
    let lookback = chrono::Duration::hours(LOOKBACK_HOURS);
    let mut out = Vec::new();
    for (n, w) in state.config.quiet.maintenance.iter().enumerate() {
        if w.tenant != tenant.id {
            continue;
        }
        let settle = chrono::Duration::from_std(w.settle).unwrap_or_default();
        for (starts, ends) in w.occurrences(now) {
            if starts > now || ends + settle + lookback < now {
                continue;
            }
            out.push(Occurrence {
                key: format!("cfg:{}:{n}:{}", tenant.id, starts.timestamp_millis()),
                starts,
                ends,
                settle,
                reason: w.reason.clone(),
                what: if w.assets.is_empty() {
                    format!("tenant `{}`", escape_slack(&tenant.id))
                } else {
                    format!(
                        "{} {}",
                        if w.assets.len() == 1 {
                            "asset"
                        } else {
                            "assets"
                        },
                        escape_slack(&w.assets.join(", "))
                    )
                },
                cover: Cover::Config {
                    tenant: w.tenant.clone(),
                    assets: w.assets.clone(),
                },
            });
        }
    }
    for w in state
        .store
        .windows_ending_after(Some(&tenant.id), now - lookback)
        .await?
    {
        let o = Occurrence::stored(&w);
        if o.starts <= now && o.ends + o.settle + lookback >= now {
            out.push(o);
        }
    }
    Ok(out)
}

fn post(tenant: &Tenant, o: &Occurrence) -> NewOutboxMessage {
    let payload = json!({ "channel": tenant.channel.as_str(), "text": o.start_words() });
    let mut m = NewOutboxMessage::call("chat.postMessage", payload, maintenance_post_key(&o.key));
    m.ordering_key = Some(format!("maintenance:{}", o.key));
    m
}

fn end_edit(tenant: &Tenant, o: &Occurrence, at: DateTime<Utc>, how: &str) -> NewOutboxMessage {
    let payload = json!({ "channel": tenant.channel.as_str(), "text": o.end_words(at, how) });
    let mut m =
        NewOutboxMessage::call("chat.update", payload, format!("maintenance:{}:end", o.key));
    m.ordering_key = Some(format!("maintenance:{}", o.key));
    m.thread_alert_id = Some(format!("maintenance:{}", o.key));
    m.thread_field = Some("ts".into());
    m
}

/// The notice of a window that began and ended between two polls: posted
/// once, already saying it ended (under the end's key: nothing edits it).
fn ran(tenant: &Tenant, o: &Occurrence) -> NewOutboxMessage {
    let how = format!("ran from {} and ended", date_token(o.starts));
    let payload = json!({ "channel": tenant.channel.as_str(), "text": o.end_words(o.ends, &how) });
    let mut m = NewOutboxMessage::call(
        "chat.postMessage",
        payload,
        format!("maintenance:{}:end", o.key),
    );
    m.ordering_key = Some(format!("maintenance:{}", o.key));
    m
}

/// The keys of the window's messages already in the outbox (posted or on
/// their way): each is written once, and its end and summary only after
/// its notice.
async fn written(state: &AppState, o: &Occurrence) -> anyhow::Result<Vec<String>> {
    let keys: Vec<String> = ["post", "end", "summary"]
        .iter()
        .map(|what| format!("maintenance:{}:{what}", o.key))
        .collect();
    Ok(state.store.outbox_keys_present(&keys).await?)
}

/// The summary after the settling time: the covered jobs still at risk.
async fn summary(
    state: &AppState,
    tenant: &Tenant,
    o: &Occurrence,
) -> anyhow::Result<NewOutboxMessage> {
    let mut at_risk: Vec<crate::store::Alert> = state
        .store
        .list_open_alerts(Some(&tenant.id))
        .await?
        .into_iter()
        .filter(|a| a.band.is_at_risk() && o.covers(&Subject::of(a)))
        .collect();
    at_risk.sort_by_key(|a| std::cmp::Reverse(a.band));
    let text = if at_risk.is_empty() {
        format!(
            ":white_check_mark: After the maintenance of {}: all recovered, nothing is at risk.",
            o.what
        )
    } else {
        let lines: Vec<String> = at_risk
            .iter()
            .map(|a| {
                format!(
                    "• *{}* (`{}`): {}",
                    escape_slack(&a.asset_name()),
                    a.job_id.chars().take(8).collect::<String>(),
                    a.band.label()
                )
            })
            .collect();
        format!(
            ":warning: After the maintenance of {} and its settling time, {} {} still at risk; {} page now:\n{}",
            o.what,
            at_risk.len(),
            if at_risk.len() == 1 { "job is" } else { "jobs are" },
            if at_risk.len() == 1 { "it may" } else { "they may" },
            crate::slack::limits::join_capped(&lines, "\n", 2_800, |n| format!("…and {n} more"))
        )
    };
    let payload = json!({ "channel": tenant.channel.as_str(), "text": text });
    let mut m = NewOutboxMessage::call(
        "chat.postMessage",
        payload,
        format!("maintenance:{}:summary", o.key),
    );
    m.ordering_key = Some(format!("maintenance:{}", o.key));
    Ok(m)
}

/// The poll's step: the notice of each window that has begun, its edit
/// when it has ended, and its summary when it has settled; each once.
pub async fn reconcile(
    state: &AppState,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut effects = Effects::new();
    for o in occurrences(state, tenant, now).await? {
        let written = written(state, &o).await?;
        let has = |what: &str| written.contains(&format!("maintenance:{}:{what}", o.key));
        if now < o.ends {
            if !has("post") {
                effects.send(post(tenant, &o));
            }
            continue;
        }
        if !has("post") && !has("end") {
            if now > o.ends + o.settle {
                // Long over before the bot looked (it was down): not news.
                continue;
            }
            // Begun and ended between two looks: one notice that it ran.
            effects.send(ran(tenant, &o));
        } else if !has("end") {
            effects.send(end_edit(tenant, &o, o.ends, "ended"));
        }
        if now >= o.ends + o.settle && !has("summary") {
            effects.send(summary(state, tenant, &o).await?);
        }
    }
    if !effects.is_empty() {
        state.store.commit(&effects, now).await?;
        state.wake_outbox();
    }
    Ok(())
}

/// A window set from Slack was cancelled: its notice, if it was posted,
/// says it ended (no summary: its jobs page again at once).
pub async fn cancelled(
    state: &AppState,
    tenant: &Tenant,
    w: &StoredWindow,
    by: &str,
) -> anyhow::Result<()> {
    let now = state.clock.now();
    let o = Occurrence::stored(w);
    if !written(state, &o)
        .await?
        .contains(&maintenance_post_key(&o.key))
    {
        return Ok(());
    }
    let mut o = o;
    o.settle = chrono::Duration::zero();
    let mut effects = Effects::new();
    effects.send(end_edit(
        tenant,
        &o,
        now,
        &format!("ended (cancelled by <@{by}>)"),
    ));
    state.store.commit(&effects, now).await?;
    state.wake_outbox();
    Ok(())
}
