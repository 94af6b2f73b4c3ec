//! Roll-ups (issue 22): one incident message per tenant while many of its
//! jobs are at risk together. Table from migration 0011. A roll-up opens
//! with its post, and resolves with its last edit, in one transaction each.

use super::effects::apply_with;
use super::{ms, on_pool, Effects, EscalationPage, Result, Store, StoreError};
use chrono::{DateTime, Utc};

/// The outbox key of a roll-up's post: its message's place is that row's answer.
pub fn rollup_post_key(id: &str) -> String {
    format!("rollup:{id}:post")
}

/// A tenant's roll-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollup {
    pub id: String,
    pub tenant_id: String,
    /// `open` or `resolved`.
    pub status: String,
    /// What its message shows (JSON).
    pub shown: Option<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct RollupRow {
    id: String,
    tenant_id: String,
    status: String,
    shown: Option<String>,
}

impl TryFrom<RollupRow> for Rollup {
    type Error = StoreError;
    fn try_from(r: RollupRow) -> Result<Self> {
        let shown = match r.shown {
            Some(t) => Some(
                serde_json::from_str(&t)
                    .map_err(|e| StoreError::Corrupt(format!("rollup {} shown: {e}", r.id)))?,
            ),
            None => None,
        };
        Ok(Rollup {
            id: r.id,
            tenant_id: r.tenant_id,
            status: r.status,
            shown,
        })
    }
}

impl Store {
    /// The tenant's open roll-up, if it has one.
    pub async fn open_rollup(&self, tenant: &str) -> Result<Option<Rollup>> {
        let row: Option<RollupRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, tenant_id, status, shown FROM rollups \
             WHERE tenant_id = $1 AND status = 'open'")
            .bind(tenant)
            .fetch_optional(p)
            .await?);
        row.map(Rollup::try_from).transpose()
    }

    /// Opens the tenant's roll-up as `id`, showing `shown`, with what opening
    /// it sends (its post), in one transaction. `false` when the tenant
    /// already has an open one (another replica was first): nothing written.
    pub async fn open_rollup_with(
        &self,
        id: &str,
        tenant: &str,
        shown: &serde_json::Value,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        apply_with!(
            self,
            effects,
            now,
            sqlx::query(
                "INSERT INTO rollups (id, tenant_id, status, shown, opened_at_ms, updated_at_ms) \
                 VALUES ($1, $2, 'open', $3, $4, $4) ON CONFLICT DO NOTHING"
            )
            .bind(id)
            .bind(tenant)
            .bind(super::json_text(shown))
            .bind(ms(now))
        )
    }

    /// Records what the open roll-up shows now, with its edit, in one
    /// transaction; `resolve` also closes it. `false`: it was not open.
    pub async fn update_rollup_with(
        &self,
        id: &str,
        shown: &serde_json::Value,
        resolve: bool,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        apply_with!(
            self,
            effects,
            now,
            sqlx::query(
                "UPDATE rollups SET shown = $2, updated_at_ms = $3, \
                   status = CASE WHEN $4 THEN 'resolved' ELSE status END, \
                   resolved_at_ms = CASE WHEN $4 THEN $3 ELSE resolved_at_ms END \
                 WHERE id = $1 AND status = 'open'"
            )
            .bind(id)
            .bind(super::json_text(shown))
            .bind(ms(now))
            .bind(resolve)
        )
    }

    /// Whether the roll-up `id` is open.
    pub async fn rollup_is_open(&self, id: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM rollups WHERE id = $1 AND status = 'open'")
            .bind(id)
            .fetch_one(p)
            .await?);
        Ok(n > 0)
    }

    /// The dedup keys of the outbox rows whose key starts with `prefix` (a
    /// page's, to know whom it went to): one page per person (issue 35).
    pub async fn outbox_keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        // Compared by substr rather than LIKE: `_` and `%` are literal here.
        let len = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let keys: Vec<String> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT dedup_key FROM outbox WHERE substr(dedup_key, 1, $2) = $1")
            .bind(prefix)
            .bind(len)
            .fetch_all(p)
            .await?);
        Ok(keys.into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    /// Which of `keys` name an outbox row (by the dedup key's unique index).
    pub async fn outbox_keys_present(&self, keys: &[String]) -> Result<Vec<String>> {
        let mut found = Vec::new();
        for key in keys {
            let n: i64 = on_pool!(self, p => sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE dedup_key = $1")
                .bind(key)
                .fetch_one(p)
                .await?);
            if n > 0 {
                found.push(key.clone());
            }
        }
        Ok(found)
    }

    /// The pages of the tenant's roll-ups' escalations made from `from` to
    /// `to` (both included; `None`: no end), oldest first: one row per tier
    /// paged, whose `alert_id` is the roll-up's escalation subject
    /// (`rollup:<id>`). Whom each page went to is in its DMs' outbox keys.
    pub async fn rollup_pages_between(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<EscalationPage>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT p.* FROM escalation_pages p JOIN rollups r ON p.alert_id = 'rollup:' || r.id \
             WHERE r.tenant_id = $1 AND p.paged_at_ms >= $2 AND p.paged_at_ms <= $3 \
             ORDER BY p.paged_at_ms, p.alert_id, p.epoch, p.round, p.tier")
            .bind(tenant)
            .bind(ms(from))
            .bind(to.map_or(i64::MAX, ms))
            .fetch_all(p)
            .await?))
    }

    /// The roll-up an alert's post went under, if it did: read from the
    /// post's outbox row (`thread_alert_id` = `rollup:<id>`).
    pub async fn alert_rollup(&self, alert_id: &str) -> Result<Option<String>> {
        let parent: Option<Option<String>> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT thread_alert_id FROM outbox WHERE dedup_key = $1")
            .bind(format!("alert:{alert_id}:post"))
            .fetch_optional(p)
            .await?);
        Ok(parent
            .flatten()
            .and_then(|a| a.strip_prefix("rollup:").map(str::to_string)))
    }
}

/// An open incident: a widespread slowdown in a tenant, or system-wide
/// degradation (scope `*`). Table from migration 0012.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    pub id: String,
    pub scope: String,
    pub kind: String,
}

impl Store {
    /// The open incidents of `scope` (a tenant, or `*`).
    pub async fn open_incidents(&self, scope: &str) -> Result<Vec<Incident>> {
        let rows: Vec<(String, String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, scope, kind FROM incidents WHERE scope = $1 AND status = 'open' ORDER BY kind")
            .bind(scope)
            .fetch_all(p)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(id, scope, kind)| Incident { id, scope, kind })
            .collect())
    }

    /// The incidents of `scope` (a tenant, or `*`) opened from `from` to `to`
    /// (both included; `None`: no end), open or closed, oldest first, each
    /// with what it was opened for (`detail`: the cause, the jobs).
    pub async fn incidents_opened_between(
        &self,
        scope: &str,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<(Incident, Option<serde_json::Value>)>> {
        let rows: Vec<(String, String, String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, scope, kind, detail FROM incidents \
             WHERE scope = $1 AND opened_at_ms >= $2 AND opened_at_ms <= $3 \
             ORDER BY opened_at_ms, id")
            .bind(scope)
            .bind(ms(from))
            .bind(to.map_or(i64::MAX, ms))
            .fetch_all(p)
            .await?);
        rows.into_iter()
            .map(|(id, scope, kind, detail)| {
                let detail =
                    match detail {
                        Some(t) => Some(serde_json::from_str(&t).map_err(|e| {
                            StoreError::Corrupt(format!("incident {id} detail: {e}"))
                        })?),
                        None => None,
                    };
                Ok((Incident { id, scope, kind }, detail))
            })
            .collect()
    }

    /// Opens an incident with its pages, in one transaction. `false` when
    /// one of that scope and kind is already open: nothing written.
    pub async fn open_incident_with(
        &self,
        id: &str,
        scope: &str,
        kind: &str,
        detail: &serde_json::Value,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        apply_with!(
            self,
            effects,
            now,
            sqlx::query(
                "INSERT INTO incidents (id, scope, kind, status, detail, opened_at_ms) \
                 VALUES ($1, $2, $3, 'open', $4, $5) ON CONFLICT DO NOTHING"
            )
            .bind(id)
            .bind(scope)
            .bind(kind)
            .bind(super::json_text(detail))
            .bind(ms(now))
        )
    }

    /// Closes an open incident with what closing it sends. `false`: it was
    /// not open.
    pub async fn close_incident_with(
        &self,
        id: &str,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        apply_with!(
            self,
            effects,
            now,
            sqlx::query(
                "UPDATE incidents SET status = 'closed', closed_at_ms = $2 \
                 WHERE id = $1 AND status = 'open'"
            )
            .bind(id)
            .bind(ms(now))
        )
    }
}
