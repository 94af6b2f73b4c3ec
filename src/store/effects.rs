//! A transition's effects, committed with it (issue 20).
//!
//! A flow decides what a transition changes and everything the change must
//! send, schedule and record: Slack calls (outbox rows), timers, timers it
//! cancels, and audit entries. The store then commits the change and its
//! [`Effects`] in one transaction, on both engines, so a crash, a store error
//! or a lost race leaves either all of it or none of it. A conditional change
//! that does not apply (someone else moved the state first) writes none of
//! its effects.

use super::{in_tx, outbox::check_message, AuditEntry, NewOutboxMessage, NewTimer, Result, Store};
use chrono::{DateTime, Utc};

/// Pending timers of one subject (and kind) to cancel.
#[derive(Clone, Debug, PartialEq)]
pub struct TimerCancel {
    pub subject_id: String,
    pub kind: Option<String>,
}

/// The claimed timer a transition carries out: marked fired with it, so the
/// worker does not mark it in a write of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct TimerFired {
    pub id: String,
    /// The worker holding its claim; another's claim is left alone.
    pub worker: String,
    pub at: DateTime<Utc>,
}

/// What one transition sends, schedules, cancels and records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    pub cancel: Vec<TimerCancel>,
    pub timers: Vec<NewTimer>,
    pub outbox: Vec<NewOutboxMessage>,
    pub audit: Vec<AuditEntry>,
    pub fired: Option<TimerFired>,
}

impl Effects {
    pub fn new() -> Effects {
        Effects::default()
    }

    pub fn is_empty(&self) -> bool {
        self.cancel.is_empty()
            && self.timers.is_empty()
            && self.outbox.is_empty()
            && self.audit.is_empty()
            && self.fired.is_none()
    }

    /// A Slack call (or PagerDuty event) to deliver.
    pub fn send(&mut self, msg: NewOutboxMessage) -> &mut Self {
        self.outbox.push(msg);
        self
    }

    pub fn schedule(&mut self, timer: NewTimer) -> &mut Self {
        self.timers.push(timer);
        self
    }

    /// Cancels a subject's pending timers (of one kind, or all) before the
    /// new ones are scheduled.
    pub fn cancel(&mut self, subject_id: &str, kind: Option<&str>) -> &mut Self {
        self.cancel.push(TimerCancel {
            subject_id: subject_id.to_string(),
            kind: kind.map(str::to_string),
        });
        self
    }

    pub fn record(&mut self, entry: AuditEntry) -> &mut Self {
        self.audit.push(entry);
        self
    }

    /// Marks the claimed timer this transition carries out as fired.
    pub fn fire(&mut self, fired: TimerFired) -> &mut Self {
        self.fired = Some(fired);
        self
    }

    pub fn extend(&mut self, other: Effects) -> &mut Self {
        self.cancel.extend(other.cancel);
        self.timers.extend(other.timers);
        self.outbox.extend(other.outbox);
        self.audit.extend(other.audit);
        if other.fired.is_some() {
            self.fired = other.fired;
        }
        self
    }

    /// True when the commit wrote Slack calls the outbox worker should wake for.
    pub fn sends(&self) -> bool {
        !self.outbox.is_empty()
    }

    pub(crate) fn check(&self) -> Result<()> {
        self.outbox.iter().try_for_each(check_message)
    }
}

/// Writes `$effects` on the open transaction `$tx` (either engine): cancels,
/// then timers, outbox rows and audit entries. Dedup keys already used are
/// skipped, as [`Store::enqueue`] and [`Store::schedule_timer`] skip them.
macro_rules! write_effects {
    ($tx:ident, $effects:expr, $now:expr) => {{
        let effects: &$crate::store::Effects = $effects;
        let now: chrono::DateTime<chrono::Utc> = $now;
        for c in &effects.cancel {
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', fired_at_ms = $3, \
                   claimed_by = NULL, claim_until_ms = NULL \
                 WHERE subject_id = $1 AND ($2 IS NULL OR kind = $2) AND status = 'pending'",
            )
            .bind(&c.subject_id)
            .bind(&c.kind)
            .bind($crate::store::ms(now))
            .execute(&mut *$tx)
            .await?;
        }
        // One statement for all of them (a step schedules two).
        for chunk in effects.timers.chunks(400) {
            let rows = chunk.iter().map(|t| (uuid::Uuid::new_v4().to_string(), t));
            $crate::store::timers::insert_timers!(rows, now)
                .build()
                .execute(&mut *$tx)
                .await?;
        }
        // 13 binds a row: 400 rows stay well under SQLite's 32,766 variables.
        for chunk in effects.outbox.chunks(400) {
            let mut qb = $crate::store::outbox::insert_outbox!(chunk, now);
            qb.push(" ON CONFLICT (dedup_key) DO NOTHING");
            qb.build().execute(&mut *$tx).await?;
        }
        // A thread note is also a line in the alert's incident channel.
        let lines = $crate::store::incident_lines::incident_lines!($tx, &effects.outbox);
        if !lines.is_empty() {
            let mut qb = $crate::store::outbox::insert_outbox!(&lines, now);
            qb.push(" ON CONFLICT (dedup_key) DO NOTHING");
            qb.build().execute(&mut *$tx).await?;
        }
        if effects.outbox.iter().any(|m| m.method == "chat.update") {
            $crate::store::outbox::supersede_edits!($tx, now);
        }
        if let Some(f) = &effects.fired {
            sqlx::query($crate::store::timers::COMPLETE_TIMER)
            .bind(&f.id)
            .bind(&f.worker)
            .bind($crate::store::ms(f.at))
            .execute(&mut *$tx)
            .await?;
        }
        for e in &effects.audit {
            sqlx::query(
                "INSERT INTO audit_log (at_ms, tenant_id, actor, action, subject, outcome, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind($crate::store::ms(e.at))
            .bind(&e.tenant_id)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.subject)
            .bind(&e.outcome)
            .bind(e.detail.as_ref().map($crate::store::json_text))
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use write_effects;

/// A conditional transition: runs `$query` (an executable sqlx query) in a
/// transaction and, when it changed a row, writes `$effects` with it.
/// Evaluates to whether it changed one; nothing is written when it did not.
macro_rules! apply_with {
    ($store:expr, $effects:expr, $now:expr, $query:expr) => {{
        $effects.check()?;
        $crate::store::in_tx!($store, tx => {
            let n = $query.execute(&mut *tx).await?.rows_affected();
            if n > 0 {
                $crate::store::effects::write_effects!(tx, $effects, $now);
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }};
}
pub(crate) use apply_with;

impl Store {
    /// Commits effects that go with no state change of their own (or whose
    /// change is an outbox row or a timer), all or nothing.
    pub async fn commit(&self, effects: &Effects, now: DateTime<Utc>) -> Result<()> {
        if effects.is_empty() {
            return Ok(());
        }
        effects.check()?;
        in_tx!(self, tx => {
            write_effects!(tx, effects, now);
            tx.commit().await?;
            Ok(())
        })
    }
}
