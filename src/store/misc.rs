//! The audit log, handled Slack events, and leases.

use super::{clocked, json_text, ms, on_pool, AuditEntry, AuditRow, Clocked, Result, Store};
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

    /// How many entries the audit log holds.
    pub async fn audit_count(&self) -> Result<i64> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(p)
            .await?);
        Ok(n)
    }

    /// True only for the first call with this key (Slack retries events and
    /// interactions): the insert that wins is the one that handles it.
    pub async fn first_delivery(&self, key: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO processed_events (event_id, at_ms) VALUES ($1, $2) \
             ON CONFLICT (event_id) DO NOTHING")
            .bind(key)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Forgets handled keys recorded before `older_than` (Slack stops
    /// retrying after minutes); returns how many.
    pub async fn prune_processed(&self, older_than: DateTime<Utc>) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "DELETE FROM processed_events WHERE at_ms < $1")
            .bind(ms(older_than))
            .execute(p)
            .await?
            .rows_affected()))
    }

    /// Takes or extends the lease `name` for `ttl`, if it is free, expired,
    /// or already `holder`'s. One statement, so of racing holders exactly one
    /// gets it. Measured on the database's clock, not the caller's: a
    /// replica whose clock runs ahead cannot take a lease another still
    /// holds, and one whose clock runs behind holds it for the full `ttl`.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<bool> {
        const SQL: Clocked = clocked!(
            "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, ",
            NOW,
            " + $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
             WHERE leases.holder = excluded.holder OR leases.until_ms <= ",
            NOW,
        );
        let sql = self.sql(&SQL);
        let n = on_pool!(self, p => sqlx::query(sql)
            .bind(name)
            .bind(holder)
            .bind(ttl.num_milliseconds())
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Gives the lease up if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Who holds the lease now, by the database's clock (`None` when free
    /// or expired).
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        const SQL: Clocked = clocked!(
            "SELECT holder FROM leases WHERE name = $1 AND until_ms > ",
            NOW
        );
        let sql = self.sql(&SQL);
        Ok(on_pool!(self, p => sqlx::query_scalar(sql)
            .bind(name)
            .fetch_optional(p)
            .await?))
    }
}
