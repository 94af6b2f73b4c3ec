//! Delivery of the Slack calls that must not be lost. Callers write them to
//! the store's outbox first; this worker claims due rows (with a lease, so on
//! PostgreSQL several replicas share the work and each row goes out once),
//! sends them through [`SlackApi`], and records the answer. A restart resumes
//! from the store: nothing is lost, and a delivered row is never sent again.
//!
//! Besides Web API calls a row may be a PagerDuty event
//! ([`crate::pagerduty::OUTBOX_METHOD`]) or a chart to upload
//! ([`crate::slack::charts::UPLOAD_METHOD`]), rendered to PNG when it is delivered.

use crate::runtime::clock::SharedClock;
use crate::runtime::metrics::Metrics;
use crate::slack::api::{backoff, SlackApi, SlackCallError};
use crate::slack::charts::Chart;
use crate::slack::upload::FileUpload;
use crate::store::{OutboxMessage, Store};
use crate::store::{METADATA_EVENT, PERMALINK};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long a claimed row stays ours before another worker may take it over,
/// unless we renew it: the worker renews its claims every [`RENEW_EVERY`]
/// while it delivers, so a call that takes long (timeouts x attempts) keeps
/// its row, and a replica that dies (kill -9) frees its row, and the rows of
/// the same alert ordered behind it, within this lease.
const LEASE: chrono::Duration = chrono::Duration::seconds(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// The longest one delivery may take (Slack's timeouts and retries, an
/// upload's waits, the store's statements) before the worker stops waiting
/// for it: a store or an API that stopped answering mid-call (a blackholed
/// connection) holds the worker this long at most. The row stays claimed
/// with its attempt unsettled, so whoever takes it next looks for the post
/// before sending it again.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(300);
/// How long claiming or renewing may take (the store's statement timeout is
/// 30 s).
const STORE_DEADLINE: Duration = Duration::from_secs(40);
/// Rows claimed at a time. One: a replica that dies (kill -9) then holds
/// only the message it was sending, whose fate is unknown (Slack may have
/// accepted it) until its lease runs out; everything behind it is free for
/// another replica at once. Claiming is one indexed UPDATE, far cheaper than
/// the Slack call it precedes.
const BATCH: i64 = 1;
/// Messages a page when the outbox looks for a post whose answer was lost
/// (Slack recommends no more than 200).
const LOOKUP_PAGE: i64 = 200;
/// Pages of a thread's replies such a look-up reads at most: 5,000 replies,
/// far beyond any alert's thread.
const MAX_REPLY_PAGES: usize = 25;
/// How long to wait for a thread's root message before trying a reply again.
const THREAD_ROOT_WAIT: chrono::Duration = chrono::Duration::seconds(2);

/// How long a payload waits for the message it links to before it goes with
/// the fallback link (the channel): a page is not held back for long.
const PERMALINK_WAIT: chrono::Duration = chrono::Duration::seconds(60);

/// Whether an earlier attempt at this row may have reached Slack: the
/// attempt before this one ended with nothing recorded (the process was
/// killed, or lost its store, during the call or just after it: the claim
/// counted it in `unsettled_attempts`, and whatever error an older attempt
/// recorded says nothing about it), or the last attempt recorded an error
/// that does not say it was not sent (a timeout or a 5xx may come after
/// Slack acted; waiting for its thread or link, a rate limit and a refusal
/// do not).
fn fate_unknown(msg: &OutboxMessage) -> bool {
    msg.unsettled_attempts > 1
        || (msg.attempts > 1
            && !msg.last_error.as_deref().is_some_and(|e| {
                e.starts_with("waiting for")
                    || e.contains("rate limited")
                    || e.starts_with("refused:")
            }))
}

/// Replaces [`PERMALINK`] in every string of a payload.
fn put_link(v: &mut Value, url: &str) {
    match v {
        Value::String(s) if s.contains(PERMALINK) => *s = s.replace(PERMALINK, url),
        Value::Array(a) => a.iter_mut().for_each(|x| put_link(x, url)),
        Value::Object(o) => o.values_mut().for_each(|x| put_link(x, url)),
        _ => {}
    }
}

/// Where an anchored message is: posted, on its way, or gone (never posted:
/// deleted, or refused by Slack for good, with why).
enum Place {
    Posted(String, String),
    Pending,
    Missing(String),
}

/// Refusals of an alert's or a request's post that can pass: the bot can be
/// invited or join, a channel can be unarchived or created. Such a post is
/// tried again (at most a minute apart) for as long as what it posts is still
/// wanted, instead of failing and leaving its thread to wait forever.
const PASSING_REFUSALS: &[&str] = &[
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "restricted_action",
    "team_access_not_granted",
];

/// Refusals of the edit that makes a quiet notice's message the job's alert
/// (issue 33): the notice was deleted, its channel archived or gone, or the
/// message can no longer be edited. The alert then gets a post of its own.
const NOTICE_EDIT_REFUSALS: &[&str] = &[
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "is_archived",
    "channel_not_found",
    "not_in_channel",
];

/// The edit that makes a quiet notice's message the job's alert: the
/// alert's post by another route (it links to the alert).
fn is_promotion(msg: &OutboxMessage) -> bool {
    msg.method == "chat.update"
        && msg.link_kind.as_deref() == Some("alert")
        && msg
            .thread_alert_id
            .as_deref()
            .is_some_and(|a| a.starts_with("notice:"))
}

/// The wait before trying a refused post again: 1 s doubling to a minute.
fn refused_retry_after(attempts: i64) -> chrono::Duration {
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 6)).min(chrono::Duration::minutes(1))
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickOutcome {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
}

impl TickOutcome {
    pub fn did_work(&self) -> bool {
        self.delivered + self.retried + self.failed > 0
    }
}

#[derive(Clone)]
pub struct OutboxWorker {
    pub pagerduty: crate::pagerduty::PagerDuty,
    pub store: Store,
    pub slack: SlackApi,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub worker_id: String,
    /// Permalinks already asked for, by (channel, ts): a page to five people
    /// asks Slack once.
    pub permalinks: Arc<Permalinks>,
    /// Keeps posts to each channel within Slack's limit.
    pub pacer: Arc<Pacer>,
}

/// How many permalinks the worker keeps: a page to many people links one
/// message many times within minutes; older ones are asked for again.
const PERMALINK_CACHE: usize = 10_000;

/// Permalinks by (channel, ts), at most a bound of them: past it the oldest
/// goes first. A permalink never changes, so one forgotten costs only a
/// `chat.getPermalink` if it is needed again.
pub struct Permalinks {
    capacity: usize,
    /// The links, and their keys oldest first.
    links: Mutex<(HashMap<MessageKey, String>, VecDeque<MessageKey>)>,
}

/// A message: its channel and ts.
type MessageKey = (String, String);

impl Default for Permalinks {
    fn default() -> Self {
        Self::with_capacity(PERMALINK_CACHE)
    }
}

impl Permalinks {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            links: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    pub fn get(&self, key: &MessageKey) -> Option<String> {
        self.links.lock().expect("poisoned").0.get(key).cloned()
    }

    pub fn insert(&self, key: MessageKey, url: String) {
        let mut guard = self.links.lock().expect("poisoned");
        let (links, order) = &mut *guard;
        if links.insert(key.clone(), url).is_none() {
            order.push_back(key);
        }
        while links.len() > self.capacity {
            match order.pop_front() {
                Some(oldest) => {
                    links.remove(&oldest);
                }
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.links.lock().expect("poisoned").0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Slack takes about one `chat.postMessage` a second per channel, with short
/// bursts; over that it answers 429. The pacer keeps a token bucket per
/// channel (`slack.post_burst` tokens, one more every `slack.post_interval`):
/// a post finds a token and goes, or is handed back until one is due and
/// another channel's message goes first. On the injected clock (so the
/// simulator paces in simulated time), per replica: replicas sharing a
/// channel can still meet a 429, which waits as before.
pub struct Pacer {
    burst: f64,
    interval: Duration,
    buckets: Mutex<HashMap<String, (f64, chrono::DateTime<chrono::Utc>)>>,
}

impl Pacer {
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            interval,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_config(slack: &crate::config::SlackTuning) -> Self {
        Self::new(slack.post_burst, slack.post_interval)
    }

    /// Takes a token for a post to `channel` at `now`: `None` to post now, or
    /// how long until the channel has one.
    pub fn take(&self, channel: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
        if self.interval.is_zero() {
            return None;
        }
        let mut buckets = self.buckets.lock().expect("poisoned");
        // Forget channels that have been quiet long enough to be full again.
        if buckets.len() > 10_000 {
            let full_after = self.interval.mul_f64(self.burst);
            buckets.retain(|_, (_, at)| (now - *at).to_std().unwrap_or_default() < full_after);
        }
        let (tokens, at) = buckets
            .entry(channel.to_string())
            .or_insert((self.burst, now));
        let elapsed = (now - *at).to_std().unwrap_or_default();
        let refill = elapsed.as_secs_f64() / self.interval.as_secs_f64();
        *tokens = (*tokens + refill).min(self.burst);
        *at = (*at).max(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            Some(self.interval.mul_f64(1.0 - *tokens))
        }
    }
}

impl OutboxWorker {
    /// Claims what is due and delivers it.
    pub async fn tick(&self) -> anyhow::Result<TickOutcome> {
        let now = self.clock.now();
        let claim = self
            .store
            .claim_due_outbox(&self.worker_id, now, LEASE, BATCH);
        let batch = tokio::time::timeout(STORE_DEADLINE, claim)
            .await
            .map_err(|_| anyhow::anyhow!("claiming outbox messages timed out"))??;
        let work = async {
            let mut outcome = TickOutcome::default();
            for msg in batch {
                let (id, method, enqueued) = (msg.id, msg.method.clone(), msg.created_at);
                let delivered = tokio::time::timeout(DELIVERY_DEADLINE, self.deliver(msg)).await;
                let Ok(delivered) = delivered else {
                    // Its fate is unknown: the claim runs out, and the next
                    // attempt looks for the post before posting again.
                    tracing::error!(id, method = %method, deadline_s = DELIVERY_DEADLINE.as_secs(), "an outbox delivery outlasted its deadline; left to its claim");
                    anyhow::bail!("outbox delivery {id} outlasted its deadline");
                };
                match delivered? {
                    Delivery::Sent => {
                        outcome.delivered += 1;
                        let waited = (self.clock.now() - enqueued).num_milliseconds().max(0);
                        self.metrics.observe(
                            "servo_sla_bot_outbox_delivery_delay_seconds",
                            &[("method", &method)],
                            waited as f64 / 1000.0,
                        );
                    }
                    Delivery::Retry => outcome.retried += 1,
                    Delivery::Failed => outcome.failed += 1,
                }
            }
            Ok(outcome)
        };
        crate::runtime::supervise::while_renewing(work, RENEW_EVERY, || async {
            let renewed = self.store.renew_outbox_claims(&self.worker_id, LEASE);
            match tokio::time::timeout(STORE_DEADLINE, renewed).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the outbox claims"),
                Err(_) => tracing::warn!("renewing the outbox claims timed out"),
            }
        })
        .await
    }

    /// Where the message named by an anchor (an alert id, `approval:<id>`,
    /// `notice:<id>`, `maintenance:<key>`) is.
    async fn place(&self, anchor: &str) -> anyhow::Result<Place> {
        let place = if let Some(id) = anchor.strip_prefix("approval:") {
            self.store
                .get_approval(id)
                .await?
                .map(|a| (a.channel, a.ts))
        } else if let Some(id) = anchor.strip_prefix("rollup:") {
            // A storm's roll-up: its place is its post's answer.
            posted_place(
                self.store
                    .post_place(&crate::store::rollup_post_key(id))
                    .await?,
            )
        } else if let Some(key) = anchor.strip_prefix("maintenance:") {
            // A maintenance window's notice: its place is its post's answer.
            posted_place(
                self.store
                    .post_place(&crate::store::maintenance_post_key(key))
                    .await?,
            )
        } else if let Some(id) = anchor.strip_prefix("notice:") {
            // A quiet notice: its place is its post's answer.
            posted_place(self.store.notice_place(id).await?)
        } else {
            self.store
                .get_alert(anchor)
                .await?
                .map(|a| (a.channel, a.ts))
        };
        Ok(match place {
            Some((Some(channel), Some(ts))) => Place::Posted(channel, ts),
            Some(_) => match self.store.anchor_refused(anchor).await? {
                Some(why) => Place::Missing(format!(
                    "the message it refers to was refused by Slack ({why})"
                )),
                None => Place::Pending,
            },
            None => Place::Missing("the message it refers to no longer exists".into()),
        })
    }

    /// The link a payload's `_permalink` asks for: the message's permalink,
    /// or the fallback when it cannot be had (or has been waited for long
    /// enough). `None`: wait a little for the message to be posted.
    async fn permalink(&self, spec: &Value, msg: &OutboxMessage) -> anyhow::Result<Option<String>> {
        let fallback = spec
            .get("fallback")
            .and_then(Value::as_str)
            .unwrap_or("https://slack.com/")
            .to_string();
        let anchor = spec.get("anchor").and_then(Value::as_str).unwrap_or("");
        let waited_enough = self.clock.now() - msg.created_at >= PERMALINK_WAIT;
        let (channel, ts) = match self.place(anchor).await? {
            Place::Posted(channel, ts) => (channel, ts),
            Place::Pending if !waited_enough => return Ok(None),
            Place::Pending | Place::Missing(_) => return Ok(Some(fallback)),
        };
        let key = (channel.clone(), ts.clone());
        if let Some(url) = self.permalinks.get(&key) {
            return Ok(Some(url));
        }
        match self
            .slack
            .call(
                "chat.getPermalink",
                &json!({ "channel": channel, "message_ts": ts }),
            )
            .await
        {
            Ok(answer) => match answer.get("permalink").and_then(Value::as_str) {
                Some(url) => {
                    self.permalinks.insert(key, url.to_string());
                    Ok(Some(url.to_string()))
                }
                None => Ok(Some(fallback)),
            },
            Err(SlackCallError::Unavailable { .. }) if !waited_enough => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "no permalink for a linked message; linking its channel");
                Ok(Some(fallback))
            }
        }
    }

    /// Hands a row back for a moment: the message it needs is not posted yet.
    /// Nothing was sent, so an earlier attempt's unknown fate stays unknown.
    async fn wait_for_anchor(&self, msg: &OutboxMessage, why: &str) -> anyhow::Result<Delivery> {
        self.store
            .mark_outbox_waiting(
                msg.id,
                &self.worker_id,
                self.clock.now() + THREAD_ROOT_WAIT,
                why,
            )
            .await?;
        Ok(Delivery::Retry)
    }

    /// The post carrying `key` in its metadata, if Slack has it: the answer
    /// Slack would have given (`channel`, `ts`). Looked up in the channel's
    /// recent history, or to the newest end of the thread's replies. `None`
    /// when it is not there, or Slack cannot be asked (the post then goes
    /// out: at least once rather than never).
    async fn already_posted(&self, payload: &Value, key: &str) -> Option<Value> {
        let mut channel = payload.get("channel")?.as_str()?.to_string();
        if matches!(
            crate::domain::ids::Principal::parse(&channel),
            Ok(crate::domain::ids::Principal::User(_))
        ) {
            // A DM: its channel id, from conversations.open.
            let open = self
                .slack
                .deliver("conversations.open", &json!({ "users": channel }))
                .await
                .ok()?;
            channel = open.pointer("/channel/id")?.as_str()?.to_string();
        }
        let found = |answer: &Value| -> Option<Value> {
            answer
                .get("messages")?
                .as_array()?
                .iter()
                .find(|m| {
                    m.pointer("/metadata/event_type").and_then(Value::as_str)
                        == Some(METADATA_EVENT)
                        && m.pointer("/metadata/event_payload/outbox_key")
                            .and_then(Value::as_str)
                            == Some(key)
                })?
                .get("ts")
                .cloned()
        };
        // No `oldest` in either look-up: the bot's clock and Slack's need
        // not agree.
        let ts = match payload.get("thread_ts").and_then(Value::as_str) {
            // A thread's replies come earliest first (the parent, then its
            // replies), a page at a time: the post looked for is at the
            // newest end, so the look-up reads on to the last page.
            Some(thread) => {
                let mut cursor: Option<String> = None;
                let mut pages = 0;
                loop {
                    let mut args = json!({
                        "channel": channel,
                        "ts": thread,
                        "limit": LOOKUP_PAGE,
                        "include_all_metadata": true,
                    });
                    if let Some(c) = &cursor {
                        args["cursor"] = c.as_str().into();
                    }
                    let answer = self.look("conversations.replies", &args).await?;
                    if let Some(ts) = found(&answer) {
                        break ts;
                    }
                    pages += 1;
                    // No next page: the thread's end, and it is not there.
                    let next = answer
                        .pointer("/response_metadata/next_cursor")
                        .and_then(Value::as_str)
                        .filter(|c| !c.is_empty())?;
                    cursor = Some(next.to_string());
                    if pages >= MAX_REPLY_PAGES {
                        tracing::warn!(
                            key,
                            pages,
                            "a thread too long to read to its end; posting again"
                        );
                        return None;
                    }
                }
            }
            // The channel's newest messages: the post looked for went out
            // minutes ago (a row is retried within minutes), so it is among
            // them unless the channel is flooded, and then the post goes
            // out again (at least once rather than never).
            None => {
                let args = json!({
                    "channel": channel,
                    "limit": LOOKUP_PAGE,
                    "include_all_metadata": true,
                });
                found(&self.look("conversations.history", &args).await?)?
            }
        };
        Some(json!({ "ok": true, "channel": channel, "ts": ts, "found_in_history": true }))
    }

    /// One page of a look-up for a post; `None` (and a warning) when Slack
    /// cannot be asked.
    async fn look(&self, method: &str, args: &Value) -> Option<Value> {
        match self.slack.deliver(method, args).await {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "could not look for a post whose answer was lost; posting it");
                None
            }
        }
    }

    /// Whether the alert, request or roll-up a post is for is still wanted:
    /// the alert open, the request pending, the roll-up open. Other posts are
    /// not retried.
    async fn still_wanted(&self, msg: &OutboxMessage) -> anyhow::Result<bool> {
        // A storm's roll-up: wanted while it is open (its alerts wait for it).
        if let Some(id) = msg
            .dedup_key
            .as_deref()
            .and_then(|k| k.strip_prefix("rollup:"))
            .and_then(|k| k.strip_suffix(":post"))
        {
            return Ok(self.store.rollup_is_open(id).await?);
        }
        let (Some(kind), Some(id)) = (msg.link_kind.as_deref(), msg.link_id.as_deref()) else {
            return Ok(false);
        };
        Ok(match kind {
            "alert" => self.store.get_alert(id).await?.is_some_and(|a| a.is_open()),
            "approval" => self
                .store
                .get_approval(id)
                .await?
                .is_some_and(|a| a.status == crate::store::ApprovalStatus::Pending),
            _ => false,
        })
    }

    /// `conversations.join`: the way into a public channel the bot was
    /// refused from. False when it cannot (a private channel needs an
    /// invitation; the scope may be missing).
    async fn join(&self, payload: &Value) -> bool {
        let Some(channel) = payload.get("channel").and_then(Value::as_str) else {
            return false;
        };
        match self
            .slack
            .deliver("conversations.join", &json!({ "channel": channel }))
            .await
        {
            Ok(_) => {
                tracing::info!(channel, "joined the channel to post in it");
                true
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "could not join the channel; invite the bot to it");
                false
            }
        }
    }

    /// The notice's message cannot become the alert (`why`): the alert is
    /// posted on its own, in the channel the notice was in, with the content
    /// the edit carried. The post is written before the edit is given up,
    /// so the alert's thread notes (ordered behind the edit) find it on its
    /// way and follow it; a stop in between writes it again (same key).
    async fn post_promoted_alert(
        &self,
        msg: &OutboxMessage,
        mut payload: Value,
        why: &str,
    ) -> anyhow::Result<Delivery> {
        let alert = msg.link_id.clone().unwrap_or_default();
        let channel = match payload.get("channel").and_then(Value::as_str) {
            Some(c) => Some(c.to_string()),
            None => {
                let notice = msg
                    .thread_alert_id
                    .as_deref()
                    .and_then(|a| a.strip_prefix("notice:"))
                    .unwrap_or_default();
                self.store.notice_channel(notice).await?
            }
        };
        if let (Some(channel), Some(p)) = (channel, payload.as_object_mut()) {
            p.remove("ts");
            p.insert("channel".into(), channel.into());
            tracing::warn!(id = msg.id, alert = %alert, why, "the quiet notice's message could not become the alert; posting the alert on its own");
            self.store
                .enqueue(
                    crate::store::NewOutboxMessage {
                        dedup_key: Some(format!("alert:{alert}:own-post")),
                        method: "chat.postMessage".into(),
                        payload,
                        // Nothing of its thread goes ahead of it: its notes
                        // wait for it by the alert's place.
                        ordering_key: None,
                        thread_alert_id: None,
                        thread_field: None,
                        link_kind: Some("alert".into()),
                        link_id: Some(alert),
                        not_before: None,
                    },
                    self.clock.now(),
                )
                .await?;
        }
        self.store
            .mark_outbox_failed(msg.id, &self.worker_id, why, self.clock.now())
            .await?;
        self.metrics
            .inc("servo_sla_bot_outbox_total", &[("result", "failed")]);
        Ok(Delivery::Failed)
    }

    async fn deliver(&self, msg: OutboxMessage) -> anyhow::Result<Delivery> {
        let mut payload = msg.payload.clone();
        // A link to a message that may have gone out only moments ago.
        if let Some(spec) = payload.as_object_mut().and_then(|o| o.remove("_permalink")) {
            match self.permalink(&spec, &msg).await? {
                Some(url) => put_link(&mut payload, &url),
                None => {
                    return self
                        .wait_for_anchor(&msg, "waiting for the message it links to to be posted")
                        .await
                }
            }
        }
        if msg.method == crate::pagerduty::OUTBOX_METHOD {
            return self.deliver_pagerduty(msg, payload).await;
        }
        // A reply or an edit names its alert (or request), not a ts: the
        // message it refers to may have gone out only moments ago, by this
        // or another replica.
        if let (Some(anchor), Some(field)) = (&msg.thread_alert_id, &msg.thread_field) {
            // A reply to an alert that is itself a reply in a roll-up's
            // thread goes in that thread: Slack threads do not nest.
            let parent = match (field.as_str(), anchor.contains(':')) {
                ("thread_ts", false) => self
                    .store
                    .alert_rollup(anchor)
                    .await?
                    .map(|r| format!("rollup:{r}")),
                _ => None,
            };
            let mut place = self.place(parent.as_deref().unwrap_or(anchor)).await?;
            if parent.is_some() && matches!(place, Place::Missing(_)) {
                // The roll-up's post was refused for good: the alert went out
                // on its own, and its notes go in its own thread.
                place = self.place(anchor).await?;
            }
            match place {
                // An alert whose roll-up was refused for good goes out on its
                // own rather than not at all.
                Place::Missing(why) if field == "thread_ts" && anchor.starts_with("rollup:") => {
                    tracing::warn!(id = msg.id, why = %why, "a storm's roll-up was not posted; posting the alert on its own");
                }
                Place::Posted(channel, ts) => {
                    payload[field.as_str()] = ts.into();
                    if payload.get("channel").is_none_or(|c| c.is_null()) {
                        payload["channel"] = channel.into();
                    }
                }
                Place::Missing(why) if is_promotion(&msg) => {
                    return self.post_promoted_alert(&msg, payload, &why).await;
                }
                Place::Missing(why) => {
                    tracing::warn!(id = msg.id, method = %msg.method, why = %why, "an outbox message cannot be delivered; it fails too");
                    self.store
                        .mark_outbox_failed(msg.id, &self.worker_id, &why, self.clock.now())
                        .await?;
                    return Ok(Delivery::Failed);
                }
                Place::Pending => {
                    return self
                        .wait_for_anchor(&msg, "waiting for the message it refers to to be posted")
                        .await
                }
            }
        }
        if msg.method == "chat.postMessage" {
            let channel = payload.get("channel").and_then(Value::as_str).unwrap_or("");
            if let Some(wait) = self.pacer.take(channel, self.clock.now()) {
                let until = self.clock.now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
                self.store
                    .defer_outbox(msg.id, &self.worker_id, until)
                    .await?;
                self.metrics
                    .inc("servo_sla_bot_outbox_total", &[("result", "paced")]);
                return Ok(Delivery::Retry);
            }
            let key = msg
                .dedup_key
                .clone()
                .unwrap_or_else(|| format!("outbox:{}", msg.id));
            if payload.get("metadata").is_none_or(Value::is_null) {
                payload["metadata"] = json!({
                    "event_type": METADATA_EVENT,
                    "event_payload": { "outbox_key": key },
                });
            }
            // An earlier attempt may have been posted with its answer lost
            // (a timeout, a 5xx, or a process that died holding the row):
            // look before posting again.
            if fate_unknown(&msg) {
                if let Some(found) = self.already_posted(&payload, &key).await {
                    tracing::warn!(id = msg.id, key = %key, "a post whose answer was lost was found in the channel; not posting it again");
                    self.store
                        .mark_outbox_sent(msg.id, &self.worker_id, &found, self.clock.now())
                        .await?;
                    self.metrics
                        .inc("servo_sla_bot_outbox_total", &[("result", "found_posted")]);
                    return Ok(Delivery::Sent);
                }
            }
        }
        let result = if msg.method == crate::slack::charts::UPLOAD_METHOD {
            match chart_upload(&payload).await {
                Ok(upload) => self.slack.upload_file(&upload).await,
                Err(why) => {
                    tracing::error!(id = msg.id, error = %why, "a chart upload cannot be delivered; it will not be retried");
                    self.store
                        .mark_outbox_failed(msg.id, &self.worker_id, &why, self.clock.now())
                        .await?;
                    self.metrics
                        .inc("servo_sla_bot_outbox_total", &[("result", "failed")]);
                    return Ok(Delivery::Failed);
                }
            }
        } else {
            self.slack.deliver(&msg.method, &payload).await
        };
        match result {
            Ok(response) => {
                self.store
                    .mark_outbox_sent(msg.id, &self.worker_id, &response, self.clock.now())
                    .await?;
                self.metrics
                    .inc("servo_sla_bot_outbox_total", &[("result", "sent")]);
                Ok(Delivery::Sent)
            }
            Err(e @ SlackCallError::Unavailable { .. }) => {
                let wait = match &e {
                    SlackCallError::Unavailable {
                        retry_after: Some(r),
                        ..
                    } => *r,
                    _ => backoff(msg.attempts.clamp(1, 30) as u32 + 2),
                };
                let next = self.clock.now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(5));
                tracing::warn!(id = msg.id, method = %msg.method, error = %e, "outbox delivery will be retried");
                self.store
                    .mark_outbox_retry(msg.id, &self.worker_id, next, &e.to_string())
                    .await?;
                self.metrics
                    .inc("servo_sla_bot_outbox_total", &[("result", "retry")]);
                Ok(Delivery::Retry)
            }
            Err(SlackCallError::Refused { code, .. })
                if PASSING_REFUSALS.contains(&code.as_str())
                    && msg.method == "chat.postMessage"
                    && self.still_wanted(&msg).await? =>
            {
                // The post others refer to: joining the channel may be all
                // it takes; else it is tried again while it is wanted.
                let joined = code == "not_in_channel" && self.join(&payload).await;
                let wait = if joined {
                    chrono::Duration::zero()
                } else {
                    refused_retry_after(msg.attempts)
                };
                tracing::warn!(id = msg.id, code = %code, joined, retry_in_s = wait.num_seconds(), "Slack refused a post others refer to; trying again");
                self.store
                    .mark_outbox_retry(
                        msg.id,
                        &self.worker_id,
                        self.clock.now() + wait,
                        &format!("refused: {code}; tried again while it is wanted"),
                    )
                    .await?;
                self.metrics
                    .inc("servo_sla_bot_outbox_total", &[("result", "refused_retry")]);
                Ok(Delivery::Retry)
            }
            Err(e @ SlackCallError::Refused { .. })
                if is_promotion(&msg)
                    && matches!(&e, SlackCallError::Refused { code, .. } if NOTICE_EDIT_REFUSALS.contains(&code.as_str())) =>
            {
                self.post_promoted_alert(&msg, payload, &e.to_string())
                    .await
            }
            Err(e) => {
                tracing::error!(id = msg.id, method = %msg.method, error = %e, "Slack refused an outbox message; it will not be retried");
                self.store
                    .mark_outbox_failed(msg.id, &self.worker_id, &e.to_string(), self.clock.now())
                    .await?;
                self.metrics
                    .inc("servo_sla_bot_outbox_total", &[("result", "failed")]);
                Ok(Delivery::Failed)
            }
        }
    }

    async fn deliver_pagerduty(
        &self,
        msg: OutboxMessage,
        payload: Value,
    ) -> anyhow::Result<Delivery> {
        use crate::pagerduty::PagerDutyError;
        match self.pagerduty.send(&payload).await {
            Ok(()) => {
                self.store
                    .mark_outbox_sent(
                        msg.id,
                        &self.worker_id,
                        &serde_json::json!({ "ok": true }),
                        self.clock.now(),
                    )
                    .await?;
                self.metrics.inc(
                    "servo_sla_bot_pagerduty_events_total",
                    &[("result", "sent")],
                );
                Ok(Delivery::Sent)
            }
            Err(PagerDutyError::Unavailable(why)) => {
                let next = self.clock.now()
                    + chrono::Duration::from_std(backoff(msg.attempts.clamp(1, 30) as u32 + 2))
                        .unwrap_or(chrono::Duration::seconds(5));
                self.store
                    .mark_outbox_retry(msg.id, &self.worker_id, next, &why)
                    .await?;
                self.metrics.inc(
                    "servo_sla_bot_pagerduty_events_total",
                    &[("result", "retry")],
                );
                Ok(Delivery::Retry)
            }
            Err(e @ PagerDutyError::Refused(_)) => {
                tracing::error!(id = msg.id, error = %e, "PagerDuty refused an event");
                self.store
                    .mark_outbox_failed(msg.id, &self.worker_id, &e.to_string(), self.clock.now())
                    .await?;
                self.metrics.inc(
                    "servo_sla_bot_pagerduty_events_total",
                    &[("result", "failed")],
                );
                Ok(Delivery::Failed)
            }
        }
    }

    /// The loop around [`tick`](Self::tick): runs again at once after work,
    /// otherwise when woken by a new message or after a second. On shutdown
    /// it finishes the message in hand and hands its claims back.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let did_work = match self.tick().await {
                Ok(o) => o.did_work(),
                Err(e) => {
                    tracing::error!(error = %e, "outbox step failed");
                    false
                }
            };
            if did_work {
                continue;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Err(e) = self.store.release_outbox_claims(&self.worker_id).await {
            tracing::warn!(error = %e, "could not hand back outbox claims");
        }
    }
}

/// Where a message posted by an outbox row is, as [`OutboxWorker::place`]
/// reads an anchor: its channel and ts, not yet (`(None, None)`), or gone.
fn posted_place(p: crate::store::NoticePlace) -> Option<(Option<String>, Option<String>)> {
    match p {
        crate::store::NoticePlace::Posted { channel, ts } => Some((Some(channel), Some(ts))),
        crate::store::NoticePlace::Pending => Some((None, None)),
        crate::store::NoticePlace::Missing => None,
    }
}

enum Delivery {
    Sent,
    Retry,
    Failed,
}

/// The upload a [`crate::slack::charts::UPLOAD_METHOD`] row stands for, its chart
/// rendered now. An error (a payload without what it needs, a chart that
/// does not draw) is final: the same row would fail the same way again.
/// Drawing runs on the blocking pool, where it neither holds up the
/// runtime's other work nor, should plotters panic, takes the worker down.
async fn chart_upload(payload: &serde_json::Value) -> Result<FileUpload, String> {
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let required = |key: &str| {
        text(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("chart upload: no {key} in the payload"))
    };
    let chart: Chart = serde_json::from_value(payload.get("chart").cloned().unwrap_or_default())
        .map_err(|e| format!("chart upload: the chart does not parse: {e}"))?;
    let channel = required("channel")?;
    let filename = required("filename")?;
    let bytes = tokio::task::spawn_blocking(move || chart.render_png())
        .await
        .map_err(|e| format!("chart upload: drawing the chart panicked: {e}"))?
        .map_err(|e| format!("chart upload: the chart did not render: {e:#}"))?;
    Ok(FileUpload {
        channel,
        thread_ts: text("thread_ts").filter(|s| !s.is_empty()),
        title: text("title").unwrap_or_else(|| filename.clone()),
        filename,
        alt_text: text("alt_text").unwrap_or_default(),
        initial_comment: text("initial_comment").filter(|s| !s.is_empty()),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ts: usize) -> (String, String) {
        ("C0ALERTS".to_string(), format!("1700000000.{ts:06}"))
    }

    #[test]
    fn the_permalink_cache_keeps_the_newest_within_its_bound() {
        let cache = Permalinks::with_capacity(3);
        for i in 0..5 {
            cache.insert(key(i), format!("https://x/{i}"));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(0)), None, "the oldest went first");
        assert_eq!(cache.get(&key(1)), None);
        assert_eq!(cache.get(&key(4)).as_deref(), Some("https://x/4"));
        // The same message again neither grows it nor pushes another out.
        cache.insert(key(4), "https://x/4".into());
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(2)).as_deref(), Some("https://x/2"));
    }

    #[test]
    fn the_workers_permalink_cache_is_bounded_by_default() {
        let cache = Permalinks::default();
        for i in 0..PERMALINK_CACHE + 100 {
            cache.insert(key(i), String::new());
        }
        assert_eq!(cache.len(), PERMALINK_CACHE);
    }
}
