//! The audit log: who did what, when, and how it ended.

use super::{json_text, ms, on_pool, AuditEntry, AuditRow, Result, Store};

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

    /// How many entries the audit log holds.
    pub async fn audit_count(&self) -> Result<i64> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(p)
            .await?);
        Ok(n)
    }
}
