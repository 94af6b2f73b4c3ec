//! Who has an App Home, and which tenants it shows (migration 0013).

use super::{ms, on_pool, Result, Store};
use chrono::{DateTime, Utc};

impl Store {
    /// Records that `user`'s Home shows `tenants`, published at `now`.
    pub async fn record_home(
        &self,
        user: &str,
        tenants: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let list = format!(",{},", tenants.join(","));
        on_pool!(self, p => sqlx::query(
            "INSERT INTO home_viewers (user_id, tenants, opened_at_ms, published_at_ms) \
             VALUES ($1, $2, $3, $3) \
             ON CONFLICT (user_id) DO UPDATE SET tenants = excluded.tenants, \
               published_at_ms = excluded.published_at_ms")
            .bind(user)
            .bind(list)
            .bind(ms(now))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Records that `user` opened their Home at `now`.
    pub async fn home_opened(&self, user: &str, now: DateTime<Utc>) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO home_viewers (user_id, tenants, opened_at_ms) VALUES ($1, ',', $2) \
             ON CONFLICT (user_id) DO UPDATE SET opened_at_ms = excluded.opened_at_ms")
            .bind(user)
            .bind(ms(now))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The users whose Home shows `tenant` and who opened it since `since`.
    pub async fn home_viewers_of(&self, tenant: &str, since: DateTime<Utc>) -> Result<Vec<String>> {
        let literal = tenant
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%,{literal},%");
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT user_id FROM home_viewers WHERE tenants LIKE $1 ESCAPE '\\' \
               AND opened_at_ms >= $2 \
             ORDER BY user_id")
            .bind(pattern)
            .bind(ms(since))
            .fetch_all(p)
            .await?))
    }

    /// What `actor` did, newest first.
    pub async fn audit_by_actor(&self, actor: &str, limit: i64) -> Result<Vec<super::AuditEntry>> {
        let rows: Vec<super::AuditRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM audit_log WHERE actor = $1 ORDER BY at_ms DESC, id DESC LIMIT $2")
            .bind(actor)
            .bind(limit)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(super::AuditEntry::try_from).collect()
    }
}
