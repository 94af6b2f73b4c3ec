//! Approvals: deadline-extension requests, each decided once.

use super::effects::write_effects;
use super::{
    in_tx, ms, on_pool, Approval, ApprovalRow, ApprovalStatus, Effects, NewApproval, Result, Store,
    StoreError,
};
use chrono::{DateTime, Utc};

/// How often `create_approval` retries when a concurrent request for the
/// same job committed between its supersede and its insert (PostgreSQL).
const CREATE_ATTEMPTS: usize = 8;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// A decided status (any but `pending`), as stored.
fn decision(status: &str) -> Result<&'static str> {
    match ApprovalStatus::parse(status) {
        Some(ApprovalStatus::Pending) | None => Err(StoreError::Invalid(format!(
            "'{status}' is not a decision for an approval"
        ))),
        Some(decided) => Ok(decided.as_str()),
    }
}

impl Store {
    /// Creates a pending request and, in the same transaction, supersedes the
    /// job's pending ones (returned, so their messages can say so). A job has
    /// at most one pending request (a partial unique index): of concurrent
    /// requests, the last to commit is the pending one.
    pub async fn create_approval(
        &self,
        new: NewApproval,
        now: DateTime<Utc>,
    ) -> Result<(Approval, Vec<Approval>)> {
        let id = uuid::Uuid::new_v4().to_string();
        let (approval, superseded, _) = self
            .create_approval_then(new, &id, now, |_, _| Effects::new())
            .await?;
        Ok((approval, superseded))
    }

    /// [`Store::create_approval`] under a given id, with what the request
    /// sends, schedules and audits (`then`, given the request and the
    /// requests it superseded), committed with it in one transaction. The
    /// same person asking for the same deadline while their request waits
    /// (a double submission) gets that request back, with `false`:
    /// nothing is superseded, created or sent.
    pub async fn create_approval_then(
        &self,
        new: NewApproval,
        id: &str,
        now: DateTime<Utc>,
        then: impl Fn(&Approval, &[Approval]) -> Effects,
    ) -> Result<(Approval, Vec<Approval>, bool)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_create_approval(&new, id, now, &then).await {
                Err(StoreError::Database(e))
                    if attempt < CREATE_ATTEMPTS && is_unique_violation(&e) =>
                {
                    continue
                }
                other => return other,
            }
        }
    }

    async fn try_create_approval(
        &self,
        new: &NewApproval,
        id: &str,
        now: DateTime<Utc>,
        then: &impl Fn(&Approval, &[Approval]) -> Effects,
    ) -> Result<(Approval, Vec<Approval>, bool)> {
        let (row, superseded, created): (ApprovalRow, Vec<ApprovalRow>, bool) = in_tx!(self, tx => {
            let same: Option<ApprovalRow> = sqlx::query_as(
                "SELECT * FROM approvals WHERE tenant_id = $1 AND job_id = $2 AND status = 'pending' \
                   AND requested_by = $3 AND proposed_deadline_ms = $4 \
                 ORDER BY created_at_ms DESC, id LIMIT 1")
                .bind(&new.tenant_id)
                .bind(&new.job_id)
                .bind(&new.requested_by)
                .bind(ms(new.proposed_deadline))
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(same) = same {
                tx.commit().await?;
                return Ok((Approval::try_from(same)?, Vec::new(), false));
            }
            let superseded: Vec<ApprovalRow> = sqlx::query_as(
                "UPDATE approvals SET status = 'superseded', decided_by = $3, decided_at_ms = $4, \
                   decision_reason = $5 \
                 WHERE tenant_id = $1 AND job_id = $2 AND status = 'pending' RETURNING *")
                .bind(&new.tenant_id)
                .bind(&new.job_id)
                .bind(&new.requested_by)
                .bind(ms(now))
                .bind(format!("superseded by request {id}"))
                .fetch_all(&mut *tx)
                .await?;
            let row: ApprovalRow = sqlx::query_as(
                "INSERT INTO approvals (id, tenant_id, job_id, alert_id, requested_by, reason, \
                   current_deadline_ms, proposed_deadline_ms, status, expires_at_ms, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10) RETURNING *")
                .bind(id)
                .bind(&new.tenant_id)
                .bind(&new.job_id)
                .bind(&new.alert_id)
                .bind(&new.requested_by)
                .bind(&new.reason)
                .bind(ms(new.current_deadline))
                .bind(ms(new.proposed_deadline))
                .bind(ms(new.expires_at))
                .bind(ms(now))
                .fetch_one(&mut *tx)
                .await?;
            let created = Approval::try_from(row.clone())?;
            let mut older: Vec<Approval> = superseded
                .iter()
                .cloned()
                .map(Approval::try_from)
                .collect::<Result<_>>()?;
            older.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            let effects = then(&created, &older);
            effects.check()?;
            write_effects!(tx, &effects, now);
            tx.commit().await?;
            (row, superseded, true)
        });
        let mut superseded: Vec<Approval> = superseded
            .into_iter()
            .map(Approval::try_from)
            .collect::<Result<_>>()?;
        superseded.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok((Approval::try_from(row)?, superseded, created))
    }

    pub async fn get_approval(&self, id: &str) -> Result<Option<Approval>> {
        let row: Option<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?);
        row.map(Approval::try_from).transpose()
    }

    /// The job's pending request, if any (there is at most one).
    pub async fn pending_approval_for_job(
        &self,
        tenant: &str,
        job_id: &str,
    ) -> Result<Option<Approval>> {
        let row: Option<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM approvals WHERE tenant_id = $1 AND job_id = $2 AND status = 'pending' \
             ORDER BY created_at_ms DESC, id LIMIT 1")
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(p)
            .await?);
        row.map(Approval::try_from).transpose()
    }

    /// Records where the request message is; the first delivery wins.
    pub async fn set_approval_message(&self, id: &str, channel: &str, ts: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE approvals SET channel = $2, ts = $3 WHERE id = $1 AND ts IS NULL")
            .bind(id)
            .bind(channel)
            .bind(ts)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Decides a pending request (`to_status` is any status but `pending`).
    /// `Some(updated row)` only for the one call that decided: simultaneous
    /// clicks, or Approve and Reject together, give one decision.
    pub async fn decide_approval(
        &self,
        id: &str,
        to_status: &str,
        decided_by: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Approval>> {
        self.decide_approval_with(id, to_status, decided_by, reason, now, &Effects::new())
            .await
    }

    /// [`Store::decide_approval`] with the decision's effects (its messages,
    /// the expiry timer it cancels, its audit entry), committed with it and
    /// only when this call decided.
    pub async fn decide_approval_with(
        &self,
        id: &str,
        to_status: &str,
        decided_by: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> Result<Option<Approval>> {
        let to_status = decision(to_status)?;
        effects.check()?;
        in_tx!(self, tx => {
            let row: Option<ApprovalRow> = sqlx::query_as(
                "UPDATE approvals SET status = $2, decided_by = $3, decision_reason = $4, \
                   decided_at_ms = $5 \
                 WHERE id = $1 AND status = 'pending' RETURNING *")
                .bind(id)
                .bind(to_status)
                .bind(decided_by)
                .bind(reason)
                .bind(ms(now))
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_some() {
                write_effects!(tx, effects, now);
            }
            tx.commit().await?;
            row.map(Approval::try_from).transpose()
        })
    }

    /// Records that an approved extension was written to Servo; false if it
    /// was already (or is no longer approved).
    pub async fn mark_approval_applied(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        self.mark_approval_applied_with(id, now, &Effects::new())
            .await
    }

    /// [`Store::mark_approval_applied`] with what saying so sends, committed
    /// with it and only by the call that marked it.
    pub async fn mark_approval_applied_with(
        &self,
        id: &str,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> Result<bool> {
        effects.check()?;
        in_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE approvals SET applied_at_ms = $2 \
                 WHERE id = $1 AND status = 'approved' AND applied_at_ms IS NULL")
                .bind(id)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                write_effects!(tx, effects, now);
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Extensions approved before `before` and never marked applied: a stop
    /// between the decision and Servo's write left them so.
    pub async fn approved_unapplied(&self, before: DateTime<Utc>) -> Result<Vec<Approval>> {
        let rows: Vec<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM approvals WHERE status = 'approved' AND applied_at_ms IS NULL \
               AND decided_at_ms < $1 ORDER BY decided_at_ms LIMIT 100")
            .bind(ms(before))
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Approval::try_from).collect()
    }

    /// Changes the outcome of an already decided request (e.g. approved, then
    /// Servo refused the change: `failed`). Conditional on the status it had.
    pub async fn amend_approval(
        &self,
        id: &str,
        from_status: &str,
        to_status: &str,
        reason: &str,
    ) -> Result<bool> {
        self.amend_approval_with(
            id,
            from_status,
            to_status,
            reason,
            Utc::now(),
            &Effects::new(),
        )
        .await
    }

    /// [`Store::amend_approval`] with what saying so sends, committed with it
    /// and only by the call that amended it.
    pub async fn amend_approval_with(
        &self,
        id: &str,
        from_status: &str,
        to_status: &str,
        reason: &str,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> Result<bool> {
        let (from_status, to_status) = (decision(from_status)?, decision(to_status)?);
        effects.check()?;
        in_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE approvals SET status = $3, decision_reason = $4 WHERE id = $1 AND status = $2")
                .bind(id)
                .bind(from_status)
                .bind(to_status)
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                write_effects!(tx, effects, now);
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Expires pending requests whose `expires_at` has come (decided by
    /// `bot`), and returns them: each is returned by exactly one caller.
    pub async fn expire_due_approvals(&self, now: DateTime<Utc>) -> Result<Vec<Approval>> {
        let rows: Vec<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "UPDATE approvals SET status = 'expired', decided_by = 'bot', decided_at_ms = $1, \
               decision_reason = 'expired without a decision' \
             WHERE status = 'pending' AND expires_at_ms <= $1 RETURNING *")
            .bind(ms(now))
            .fetch_all(p)
            .await?);
        let mut expired: Vec<Approval> = rows
            .into_iter()
            .map(Approval::try_from)
            .collect::<Result<_>>()?;
        expired.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
        Ok(expired)
    }

    /// Requests oldest first, filtered by tenant and/or status.
    pub async fn list_approvals(
        &self,
        tenant: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<Approval>> {
        let status = status
            .map(|s| s.parse::<ApprovalStatus>().map(|s| s.as_str()))
            .transpose()?;
        let rows: Vec<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM approvals WHERE ($1 IS NULL OR tenant_id = $1) \
               AND ($2 IS NULL OR status = $2) \
             ORDER BY created_at_ms, id")
            .bind(tenant)
            .bind(status)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Approval::try_from).collect()
    }
}
