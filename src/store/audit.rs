//! The audit log: who did what, when, and how it ended.

use super::{json_text, ms, on_pool, Alert, AuditEntry, AuditRow, Result, Store};
use chrono::{DateTime, Utc};

impl Store {
    /// Appends an entry to the audit log.
    pub async fn audit(&self, e: &AuditEntry) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO audit_log (at_ms, tenant_id, actor, action, subject, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(ms(e.at))
            .bind(&e.tenant_id)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.subject)
            .bind(&e.outcome)
            .bind(e.detail.as_ref().map(json_text))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The newest `limit` entries, newest first (same time: last written
    /// first), optionally for one subject.
    pub async fn list_audit(&self, subject: Option<&str>, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM audit_log WHERE ($1 IS NULL OR subject = $1) \
             ORDER BY at_ms DESC, id DESC LIMIT $2")
            .bind(subject)
            .bind(limit)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(AuditEntry::try_from).collect()
    }

    /// An alert's history in `[from, to]`: the newest `limit` entries, oldest
    /// first, about every job the alert has followed. Audit entries name the
    /// alert's job of the moment, and a *Recreate* moves the alert to the new
    /// job, so the history is the entries of its job now and of each job a
    /// recreate it finished (`intents`, kind `recreate`, `done`) left behind;
    /// in the alert's tenant, or in none.
    pub async fn alert_history(
        &self,
        alert: &Alert,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM audit_log \
             WHERE (subject = $1 OR subject IN (SELECT job_id FROM intents \
                      WHERE alert_id = $2 AND kind = 'recreate' AND status = 'done')) \
               AND (tenant_id IS NULL OR tenant_id = $3) AND at_ms >= $4 AND at_ms <= $5 \
             ORDER BY at_ms DESC, id DESC LIMIT $6")
            .bind(&alert.job_id)
            .bind(&alert.id)
            .bind(&alert.tenant_id)
            .bind(ms(from))
            .bind(ms(to))
            .bind(limit)
            .fetch_all(p)
            .await?);
        let mut entries = rows
            .into_iter()
            .map(AuditEntry::try_from)
            .collect::<Result<Vec<_>>>()?;
        entries.reverse();
        Ok(entries)
    }

    /// How many entries the audit log holds.
    pub async fn audit_count(&self) -> Result<i64> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(p)
            .await?);
        Ok(n)
    }
}
