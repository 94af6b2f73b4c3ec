//! The store's values: what callers pass in (`New*`), the domain rows they get
//! back, and the raw rows both engines decode into (integers and text), with
//! the checked conversion between them.
//!
//! Status columns are enums in Rust ([`AlertStatus`], [`OutboxStatus`],
//! [`TimerStatus`], [`ApprovalStatus`]) and TEXT in the database, with a
//! CHECK listing the same values; a value outside the set decodes as
//! [`StoreError::Corrupt`]. Each enum has `as_str`/`parse`, prints as its
//! database text, and compares equal to it (`status == "pending"`).

use super::{from_ms, Result, StoreError};
use crate::domain::risk::RiskBand;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt;

/// An enum stored as TEXT: `as_str`, `parse`, `ALL`, `Display`, `FromStr`,
/// equality with its text, and `Default` = the status a new row starts in.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, default = $default:ident, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $text, "`")] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value stored as `text`, if it is one.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = StoreError;
            fn from_str(text: &str) -> Result<$name> {
                $name::parse(text).ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "'{text}' is not a {}",
                        stringify!($name)
                    ))
                })
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }
    };
}

text_enum!(
    /// `alerts.status`.
    AlertStatus, default = Open, { Open => "open", Resolved => "resolved" }
);
text_enum!(
    /// `outbox.status`.
    OutboxStatus, default = Pending, { Pending => "pending", Sent => "sent", Failed => "failed" }
);
text_enum!(
    /// `timers.status`.
    TimerStatus, default = Pending, { Pending => "pending", Fired => "fired", Cancelled => "cancelled" }
);
text_enum!(
    /// `approvals.status`; all but `pending` are final decisions (though
    /// `approved` may be amended to `failed`).
    ApprovalStatus, default = Pending, {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Expired => "expired",
        Superseded => "superseded",
        Moot => "moot",
        Failed => "failed",
    }
);

/// `outbox.link_kind` values: where a delivered message's channel/ts is recorded.
pub const LINK_KINDS: &[&str] = &["alert", "approval"];
/// `outbox.thread_field` values: the payload field filled from the alert's ts.
pub const THREAD_FIELDS: &[&str] = &["thread_ts", "ts"];

/// Decodes a stored status; anything outside the enum is corruption.
fn status<T>(table: &str, id: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("{table} {id} has status '{value}'")))
}

fn json(text: String, what: &str) -> Result<Value> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn opt_json(text: Option<String>, what: &str) -> Result<Option<Value>> {
    text.map(|t| json(t, what)).transpose()
}

fn opt_time(ms: Option<i64>, what: &str) -> Result<Option<DateTime<Utc>>> {
    ms.map(|m| from_ms(m, what)).transpose()
}

// ----------------------------------------------------------------- alerts

/// What the engine knows when a job first looks at risk.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAlert {
    pub tenant_id: String,
    pub job_id: String,
    pub band: RiskBand,
    pub severity: Option<f64>,
    pub eta: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// What the first message will show (JSON), compared later to decide edits.
    pub shown: Option<Value>,
}

impl NewAlert {
    /// The alert as opening it as `id` at `now` will make it (its episode
    /// aside): what a flow renders its first message from before the alert
    /// and that message commit together.
    pub fn prospective(&self, id: &str, now: DateTime<Utc>) -> Alert {
        Alert {
            id: id.to_string(),
            tenant_id: self.tenant_id.clone(),
            job_id: self.job_id.clone(),
            episode: 0,
            status: AlertStatus::Open,
            band: self.band,
            severity: self.severity,
            eta: self.eta,
            deadline: self.deadline,
            shown: self.shown.clone(),
            channel: None,
            ts: None,
            acked_by: None,
            acked_at: None,
            opened_at: now,
            updated_at: now,
            resolved_at: None,
            resolution: None,
            version: 1,
        }
    }
}

/// One Slack message per job and risk episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub tenant_id: String,
    pub job_id: String,
    /// 1, 2, ... per tenant and job: a recovery ends an episode, a relapse opens the next.
    pub episode: i64,
    pub status: AlertStatus,
    pub band: RiskBand,
    pub severity: Option<f64>,
    pub eta: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// What the message currently shows (JSON); an edit is needed only when it changes.
    pub shown: Option<Value>,
    /// Where the message is, once delivered.
    pub channel: Option<String>,
    pub ts: Option<String>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    /// Bumped on every change, so edits can be named (and deduplicated) by version.
    pub version: i64,
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.status == AlertStatus::Open
    }

    /// The asset's name as the message shows it; the job id before the
    /// first render.
    pub fn asset_name(&self) -> String {
        self.shown
            .as_ref()
            .and_then(|v| v.get("asset"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.job_id.clone())
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: String,
    tenant_id: String,
    job_id: String,
    episode: i64,
    status: String,
    band: String,
    severity: Option<f64>,
    eta_ms: Option<i64>,
    deadline_ms: Option<i64>,
    shown: Option<String>,
    channel: Option<String>,
    ts: Option<String>,
    acked_by: Option<String>,
    acked_at_ms: Option<i64>,
    opened_at_ms: i64,
    updated_at_ms: i64,
    resolved_at_ms: Option<i64>,
    resolution: Option<String>,
    version: i64,
}

impl TryFrom<AlertRow> for Alert {
    type Error = StoreError;
    fn try_from(r: AlertRow) -> Result<Self> {
        Ok(Alert {
            band: RiskBand::parse(&r.band).ok_or_else(|| {
                StoreError::Corrupt(format!("alert {} has band '{}'", r.id, r.band))
            })?,
            status: status("alert", &r.id, &r.status, AlertStatus::parse)?,
            shown: opt_json(r.shown, "alert.shown")?,
            eta: opt_time(r.eta_ms, "alert.eta_ms")?,
            deadline: opt_time(r.deadline_ms, "alert.deadline_ms")?,
            acked_at: opt_time(r.acked_at_ms, "alert.acked_at_ms")?,
            opened_at: from_ms(r.opened_at_ms, "alert.opened_at_ms")?,
            updated_at: from_ms(r.updated_at_ms, "alert.updated_at_ms")?,
            resolved_at: opt_time(r.resolved_at_ms, "alert.resolved_at_ms")?,
            id: r.id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            episode: r.episode,
            severity: r.severity,
            channel: r.channel,
            ts: r.ts,
            acked_by: r.acked_by,
            resolution: r.resolution,
            version: r.version,
        })
    }
}

/// The result of an acknowledgement click.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// This call won.
    Acknowledged,
    /// Someone was first (possibly the same user clicking twice).
    AlreadyAcknowledged { by: String, at: DateTime<Utc> },
    /// The alert is resolved, or does not exist.
    NotOpen,
}

// ----------------------------------------------------------------- outbox

/// A Slack call to deliver later, with retries, exactly once in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOutboxMessage {
    /// Enqueueing the same logical message twice is a no-op.
    pub dedup_key: Option<String>,
    /// `chat.postMessage`, `chat.update`, ...
    pub method: String,
    pub payload: Value,
    /// Messages with the same key are delivered strictly in enqueue order.
    pub ordering_key: Option<String>,
    /// Fill `payload[thread_field]` from this alert's `ts` at delivery time.
    pub thread_alert_id: Option<String>,
    /// `thread_ts` (a reply in the alert's thread) or `ts` (an edit of it).
    pub thread_field: Option<String>,
    /// On success record the response's channel/ts on this row: `alert` | `approval`.
    pub link_kind: Option<String>,
    pub link_id: Option<String>,
    /// Not before this time (default: now).
    pub not_before: Option<DateTime<Utc>>,
}

impl NewOutboxMessage {
    /// What goes first in a storm (lower first): pages (a DM to a person, a
    /// PagerDuty event, a page's note in the thread) and new posts (an alert,
    /// an extension request, a roll-up) 0, in the order they were enqueued (a
    /// page links to the alert posted just before it); other replies 1;
    /// edits and other calls 2; charts and check-ins 3. A storm's roll-up
    /// page DMs are 1: the channel names the storm's jobs first (issue 35).
    /// One ordering key's rows still go strictly in order.
    pub fn priority(&self) -> i64 {
        let key = self.dedup_key.as_deref().unwrap_or("");
        let to_person = self
            .payload
            .get("channel")
            .and_then(Value::as_str)
            .is_some_and(|c| c.starts_with('U') || c.starts_with('W'));
        match self.method.as_str() {
            "pagerduty.enqueue" => 0,
            "chat.postMessage" if key.starts_with("page:rollup:") && to_person => 1,
            "chat.postMessage" if key.starts_with("page:") || to_person => 0,
            "chat.postMessage" if self.link_kind.is_some() => 0,
            "chat.postMessage" if key.starts_with("rollup:") && key.ends_with(":post") => 0,
            "chat.postMessage" if key.starts_with("monitor:") => 3,
            "chat.postMessage" => 1,
            "files.upload_chart" => 3,
            _ => 2,
        }
    }

    /// A plain call with a dedup key and nothing else.
    pub fn call(method: &str, payload: Value, dedup_key: impl Into<String>) -> Self {
        Self {
            dedup_key: Some(dedup_key.into()),
            method: method.into(),
            payload,
            ordering_key: None,
            thread_alert_id: None,
            thread_field: None,
            link_kind: None,
            link_id: None,
            not_before: None,
        }
    }
}

/// An outbox row; see [`NewOutboxMessage`] for the fields it was enqueued with.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    /// Increasing: the delivery order within an ordering key.
    pub id: i64,
    pub dedup_key: Option<String>,
    pub method: String,
    pub payload: Value,
    pub ordering_key: Option<String>,
    pub thread_alert_id: Option<String>,
    pub thread_field: Option<String>,
    pub link_kind: Option<String>,
    pub link_id: Option<String>,
    pub status: OutboxStatus,
    /// Claims so far (incremented by each claim, i.e. each delivery attempt).
    pub attempts: i64,
    /// Attempts begun (claimed) since the last one whose end was recorded:
    /// 1 while an attempt runs; 2 or more in a claim means the attempt
    /// before it ended with nothing recorded, so what it sent may have
    /// reached Slack.
    pub unsettled_attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
    pub claim_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Slack's answer once sent.
    pub response: Option<Value>,
    pub created_at: DateTime<Utc>,
    /// When it was sent, or given up on.
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    id: i64,
    dedup_key: Option<String>,
    method: String,
    payload: String,
    ordering_key: Option<String>,
    thread_alert_id: Option<String>,
    thread_field: Option<String>,
    link_kind: Option<String>,
    link_id: Option<String>,
    status: String,
    attempts: i64,
    unsettled_attempts: i64,
    next_attempt_at_ms: i64,
    claimed_by: Option<String>,
    claim_until_ms: Option<i64>,
    last_error: Option<String>,
    response: Option<String>,
    created_at_ms: i64,
    sent_at_ms: Option<i64>,
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self> {
        let id = r.id.to_string();
        Ok(OutboxMessage {
            status: status("outbox", &id, &r.status, OutboxStatus::parse)?,
            payload: json(r.payload, "outbox.payload")?,
            response: opt_json(r.response, "outbox.response")?,
            next_attempt_at: from_ms(r.next_attempt_at_ms, "outbox.next_attempt_at_ms")?,
            claim_until: opt_time(r.claim_until_ms, "outbox.claim_until_ms")?,
            created_at: from_ms(r.created_at_ms, "outbox.created_at_ms")?,
            sent_at: opt_time(r.sent_at_ms, "outbox.sent_at_ms")?,
            id: r.id,
            dedup_key: r.dedup_key,
            method: r.method,
            ordering_key: r.ordering_key,
            thread_alert_id: r.thread_alert_id,
            thread_field: r.thread_field,
            link_kind: r.link_kind,
            link_id: r.link_id,
            attempts: r.attempts,
            unsettled_attempts: r.unsettled_attempts,
            claimed_by: r.claimed_by,
            last_error: r.last_error,
        })
    }
}

// ----------------------------------------------------------------- timers

/// Something that must happen at a time: an escalation step, a check-in, an expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTimer {
    pub kind: String,
    /// The alert or approval it belongs to (what [`super::Store::cancel_timers`] names).
    pub subject_id: String,
    pub payload: Value,
    pub due_at: DateTime<Utc>,
    /// Scheduling the same step twice is a no-op.
    pub dedup_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Timer {
    pub id: String,
    pub kind: String,
    pub subject_id: String,
    pub payload: Value,
    pub due_at: DateTime<Utc>,
    pub status: TimerStatus,
    pub dedup_key: Option<String>,
    pub claimed_by: Option<String>,
    pub claim_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When it fired or was cancelled.
    pub fired_at: Option<DateTime<Utc>>,
    /// Failed attempts so far (each puts the next try further off).
    pub attempts: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct TimerRow {
    id: String,
    kind: String,
    subject_id: String,
    payload: String,
    due_at_ms: i64,
    status: String,
    dedup_key: Option<String>,
    claimed_by: Option<String>,
    claim_until_ms: Option<i64>,
    created_at_ms: i64,
    fired_at_ms: Option<i64>,
    attempts: i64,
}

impl TryFrom<TimerRow> for Timer {
    type Error = StoreError;
    fn try_from(r: TimerRow) -> Result<Self> {
        Ok(Timer {
            status: status("timer", &r.id, &r.status, TimerStatus::parse)?,
            payload: json(r.payload, "timer.payload")?,
            due_at: from_ms(r.due_at_ms, "timer.due_at_ms")?,
            claim_until: opt_time(r.claim_until_ms, "timer.claim_until_ms")?,
            created_at: from_ms(r.created_at_ms, "timer.created_at_ms")?,
            fired_at: opt_time(r.fired_at_ms, "timer.fired_at_ms")?,
            id: r.id,
            kind: r.kind,
            subject_id: r.subject_id,
            dedup_key: r.dedup_key,
            claimed_by: r.claimed_by,
            attempts: r.attempts,
        })
    }
}

// -------------------------------------------------------------- approvals

/// A request to move a job's deadline, decided once.
#[derive(Clone, Debug, PartialEq)]
pub struct NewApproval {
    pub tenant_id: String,
    pub job_id: String,
    /// The alert whose thread holds the request, if one is open.
    pub alert_id: Option<String>,
    pub requested_by: String,
    pub reason: Option<String>,
    pub current_deadline: DateTime<Utc>,
    pub proposed_deadline: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl NewApproval {
    /// The request as the store will hold it under `id`, pending, made at
    /// `now`: what its messages are built from before it is stored.
    pub fn as_pending(&self, id: &str, now: DateTime<Utc>) -> Approval {
        Approval {
            id: id.to_string(),
            tenant_id: self.tenant_id.clone(),
            job_id: self.job_id.clone(),
            alert_id: self.alert_id.clone(),
            requested_by: self.requested_by.clone(),
            reason: self.reason.clone(),
            current_deadline: self.current_deadline,
            proposed_deadline: self.proposed_deadline,
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            decision_reason: None,
            expires_at: self.expires_at,
            channel: None,
            ts: None,
            created_at: now,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Approval {
    pub id: String,
    pub tenant_id: String,
    pub job_id: String,
    pub alert_id: Option<String>,
    pub requested_by: String,
    pub reason: Option<String>,
    pub current_deadline: DateTime<Utc>,
    pub proposed_deadline: DateTime<Utc>,
    pub status: ApprovalStatus,
    /// A Slack user id, or `bot` (expiry).
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Where the request message is, once delivered.
    pub channel: Option<String>,
    pub ts: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Approval {
    pub fn is_pending(&self) -> bool {
        self.status == ApprovalStatus::Pending
    }
}

#[derive(sqlx::FromRow, Clone)]
pub(crate) struct ApprovalRow {
    id: String,
    tenant_id: String,
    job_id: String,
    alert_id: Option<String>,
    requested_by: String,
    reason: Option<String>,
    current_deadline_ms: i64,
    proposed_deadline_ms: i64,
    status: String,
    decided_by: Option<String>,
    decided_at_ms: Option<i64>,
    decision_reason: Option<String>,
    expires_at_ms: i64,
    channel: Option<String>,
    ts: Option<String>,
    created_at_ms: i64,
}

impl TryFrom<ApprovalRow> for Approval {
    type Error = StoreError;
    fn try_from(r: ApprovalRow) -> Result<Self> {
        Ok(Approval {
            status: status("approval", &r.id, &r.status, ApprovalStatus::parse)?,
            current_deadline: from_ms(r.current_deadline_ms, "approval.current_deadline_ms")?,
            proposed_deadline: from_ms(r.proposed_deadline_ms, "approval.proposed_deadline_ms")?,
            decided_at: opt_time(r.decided_at_ms, "approval.decided_at_ms")?,
            expires_at: from_ms(r.expires_at_ms, "approval.expires_at_ms")?,
            created_at: from_ms(r.created_at_ms, "approval.created_at_ms")?,
            id: r.id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            alert_id: r.alert_id,
            requested_by: r.requested_by,
            reason: r.reason,
            decided_by: r.decided_by,
            decision_reason: r.decision_reason,
            channel: r.channel,
            ts: r.ts,
        })
    }
}

// ------------------------------------------------------------------ audit

/// Who did what, when, with what outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub tenant_id: Option<String>,
    /// A Slack user id, or `bot`.
    pub actor: String,
    pub action: String,
    /// Usually the job id; what [`super::Store::list_audit`] filters on.
    pub subject: Option<String>,
    pub outcome: String,
    pub detail: Option<Value>,
}

impl AuditEntry {
    /// A decision taken (`outcome` "ok") on `subject` in `tenant`.
    pub fn ok(
        at: DateTime<Utc>,
        tenant: &str,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Value,
    ) -> AuditEntry {
        AuditEntry {
            at,
            tenant_id: Some(tenant.to_string()),
            actor: actor.into(),
            action: action.into(),
            subject: Some(subject.to_string()),
            outcome: "ok".into(),
            detail: Some(detail),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    at_ms: i64,
    tenant_id: Option<String>,
    actor: String,
    action: String,
    subject: Option<String>,
    outcome: String,
    detail: Option<String>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self> {
        Ok(AuditEntry {
            at: from_ms(r.at_ms, "audit_log.at_ms")?,
            detail: opt_json(r.detail, "audit_log.detail")?,
            tenant_id: r.tenant_id,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            outcome: r.outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_text() {
        for s in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(*s));
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(s.as_str().parse::<ApprovalStatus>().unwrap(), *s);
        }
        assert_eq!(AlertStatus::parse("closed"), None);
        assert!(matches!(
            "closed".parse::<AlertStatus>(),
            Err(StoreError::Invalid(_))
        ));
        assert!(AlertStatus::Open == "open" && "resolved" == AlertStatus::Resolved);
        assert_ne!(OutboxStatus::Sent, "pending");
        assert_eq!(TimerStatus::default(), TimerStatus::Pending);
        assert_eq!(AlertStatus::default(), AlertStatus::Open);
    }
}
