//! The store's rows: raw rows as both engines return them (integers, text),
//! and the domain values built from them (times, JSON, status enums).

use super::{from_ms, StoreError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt;

fn parse_json(text: Option<String>, what: &str) -> Result<Option<Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))))
        .transpose()
}

// ----------------------------------------------------------------- alerts

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Resolved,
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlertStatus::Open => "open",
            AlertStatus::Resolved => "resolved",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub tenant_id: String,
    pub job_id: String,
    pub episode: i64,
    pub status: AlertStatus,
    pub band: String,
    pub severity: Option<f64>,
    pub eta: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// What the message shows (JSON), to decide whether an edit is needed.
    pub shown: Option<Value>,
    pub channel: Option<String>,
    pub ts: Option<String>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub version: i64,
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.status == AlertStatus::Open
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
    fn try_from(r: AlertRow) -> Result<Self, StoreError> {
        let status = match r.status.as_str() {
            "open" => AlertStatus::Open,
            "resolved" => AlertStatus::Resolved,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "alert {} has status '{other}'",
                    r.id
                )))
            }
        };
        Ok(Alert {
            shown: parse_json(r.shown, "alert.shown")?,
            id: r.id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            episode: r.episode,
            status,
            band: r.band,
            severity: r.severity,
            eta: r.eta_ms.map(from_ms),
            deadline: r.deadline_ms.map(from_ms),
            channel: r.channel,
            ts: r.ts,
            acked_by: r.acked_by,
            acked_at: r.acked_at_ms.map(from_ms),
            opened_at: from_ms(r.opened_at_ms),
            updated_at: from_ms(r.updated_at_ms),
            resolved_at: r.resolved_at_ms.map(from_ms),
            resolution: r.resolution,
            version: r.version,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewAlert {
    pub tenant_id: String,
    pub job_id: String,
    pub band: String,
    pub severity: Option<f64>,
    pub eta: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub shown: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    Acknowledged,
    AlreadyAcknowledged { by: String, at: DateTime<Utc> },
    NotOpen,
}

// ----------------------------------------------------------------- outbox

#[derive(Clone, Debug, PartialEq)]
pub struct NewOutboxMessage {
    pub dedup_key: Option<String>,
    pub method: String,
    pub payload: Value,
    pub ordering_key: Option<String>,
    pub thread_alert_id: Option<String>,
    pub thread_field: Option<String>,
    pub link_kind: Option<String>,
    pub link_id: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
}

impl NewOutboxMessage {
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

#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    pub id: i64,
    pub dedup_key: Option<String>,
    pub method: String,
    pub payload: Value,
    pub ordering_key: Option<String>,
    pub thread_alert_id: Option<String>,
    pub thread_field: Option<String>,
    pub link_kind: Option<String>,
    pub link_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
    pub claim_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub response: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    pub(crate) id: i64,
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
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        Ok(OutboxMessage {
            payload: parse_json(Some(r.payload), "outbox.payload")?.unwrap_or(Value::Null),
            response: parse_json(r.response, "outbox.response")?,
            id: r.id,
            dedup_key: r.dedup_key,
            method: r.method,
            ordering_key: r.ordering_key,
            thread_alert_id: r.thread_alert_id,
            thread_field: r.thread_field,
            link_kind: r.link_kind,
            link_id: r.link_id,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: from_ms(r.next_attempt_at_ms),
            claimed_by: r.claimed_by,
            claim_until: r.claim_until_ms.map(from_ms),
            last_error: r.last_error,
            created_at: from_ms(r.created_at_ms),
            sent_at: r.sent_at_ms.map(from_ms),
        })
    }
}

// ----------------------------------------------------------------- timers

#[derive(Clone, Debug, PartialEq)]
pub struct NewTimer {
    pub kind: String,
    pub subject_id: String,
    pub payload: Value,
    pub due_at: DateTime<Utc>,
    pub dedup_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Timer {
    pub id: String,
    pub kind: String,
    pub subject_id: String,
    pub payload: Value,
    pub due_at: DateTime<Utc>,
    pub status: String,
    pub dedup_key: Option<String>,
    pub claimed_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct TimerRow {
    id: String,
    kind: String,
    subject_id: String,
    payload: String,
    pub(crate) due_at_ms: i64,
    status: String,
    dedup_key: Option<String>,
    claimed_by: Option<String>,
    #[allow(dead_code)]
    claim_until_ms: Option<i64>,
    created_at_ms: i64,
    fired_at_ms: Option<i64>,
}

impl TryFrom<TimerRow> for Timer {
    type Error = StoreError;
    fn try_from(r: TimerRow) -> Result<Self, StoreError> {
        Ok(Timer {
            payload: parse_json(Some(r.payload), "timer.payload")?.unwrap_or(Value::Null),
            id: r.id,
            kind: r.kind,
            subject_id: r.subject_id,
            due_at: from_ms(r.due_at_ms),
            status: r.status,
            dedup_key: r.dedup_key,
            claimed_by: r.claimed_by,
            created_at: from_ms(r.created_at_ms),
            fired_at: r.fired_at_ms.map(from_ms),
        })
    }
}

// -------------------------------------------------------------- approvals

#[derive(Clone, Debug, PartialEq)]
pub struct NewApproval {
    pub tenant_id: String,
    pub job_id: String,
    pub alert_id: Option<String>,
    pub requested_by: String,
    pub reason: Option<String>,
    pub current_deadline: DateTime<Utc>,
    pub proposed_deadline: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
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
    /// pending | approved | rejected | expired | superseded | moot | failed
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub channel: Option<String>,
    pub ts: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
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
    fn try_from(r: ApprovalRow) -> Result<Self, StoreError> {
        Ok(Approval {
            id: r.id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            alert_id: r.alert_id,
            requested_by: r.requested_by,
            reason: r.reason,
            current_deadline: from_ms(r.current_deadline_ms),
            proposed_deadline: from_ms(r.proposed_deadline_ms),
            status: r.status,
            decided_by: r.decided_by,
            decided_at: r.decided_at_ms.map(from_ms),
            decision_reason: r.decision_reason,
            expires_at: from_ms(r.expires_at_ms),
            channel: r.channel,
            ts: r.ts,
            created_at: from_ms(r.created_at_ms),
        })
    }
}

// ------------------------------------------------------------------ audit

#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub tenant_id: Option<String>,
    /// A Slack user id, or `bot`.
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub outcome: String,
    pub detail: Option<Value>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    #[allow(dead_code)]
    id: i64,
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
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            detail: parse_json(r.detail, "audit.detail")?,
            at: from_ms(r.at_ms),
            tenant_id: r.tenant_id,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            outcome: r.outcome,
        })
    }
}

// ------------------------------------------------------------- escalation

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct EscalationRow {
    pub alert_id: String,
    pub tenant_id: String,
    /// active | acknowledged | stopped
    pub status: String,
    pub tier: i64,
    pub round: i64,
    pub epoch: i64,
    pub reason: Option<String>,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    pub bumped_at_ms: Option<i64>,
    pub pd_triggered: i64,
}
