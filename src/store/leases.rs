//! Leases on the database's clock: which replica runs a singleton job.

use super::{clocked, on_pool, Clocked, Result, Store};

impl Store {
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
