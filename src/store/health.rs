//! What `/metrics` reports of the store at each scrape: the outbox backlog
//! and its oldest message, open alerts by band, active escalations and
//! pending approvals. Counted in the store, so every replica reports the same.

use super::{ms, on_pool, Result, Store};
use chrono::{DateTime, Utc};

/// The store's counts for the health gauges.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthCounts {
    pub outbox_backlog: i64,
    /// Seconds the oldest pending outbox message has waited (0 when none).
    pub outbox_oldest_age_secs: f64,
    pub open_alerts: Vec<(String, i64)>,
    pub active_escalations: i64,
    pub pending_approvals: i64,
}

impl Store {
    pub async fn health_counts(&self, now: DateTime<Utc>) -> Result<HealthCounts> {
        let (backlog, oldest): (i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at_ms) FROM outbox WHERE status = 'pending'")
            .fetch_one(p)
            .await?);
        let open_alerts: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT band, COUNT(*) FROM alerts WHERE status = 'open' GROUP BY band ORDER BY band")
            .fetch_all(p)
            .await?);
        let active_escalations: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM escalations WHERE status = 'active'")
            .fetch_one(p)
            .await?);
        let pending_approvals: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM approvals WHERE status = 'pending'")
            .fetch_one(p)
            .await?);
        Ok(HealthCounts {
            outbox_backlog: backlog,
            outbox_oldest_age_secs: oldest
                .map(|t| ((ms(now) - t).max(0) as f64) / 1000.0)
                .unwrap_or(0.0),
            open_alerts,
            active_escalations,
            pending_approvals,
        })
    }
}
