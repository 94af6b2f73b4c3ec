//! Slack events and interactions already handled: Slack retries them, and
//! the first delivery of each key is the one that counts.

use super::{ms, on_pool, Result, Store};
use chrono::{DateTime, Utc};

impl Store {
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
}
