//! On-call overrides (issue 36): someone on call for a rotation instead of
//! the shift's member, for a time. Each creation and cancellation is one
//! conditional statement committed with its effects (the audit entry, the
//! notes), so every replica decides it once.

use super::once::Arg;
use super::{from_ms, ms, on_pool, Effects, Result, Store};
use chrono::{DateTime, Utc};

/// An override, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredOverride {
    pub id: String,
    pub rotation_id: String,
    pub user_id: String,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<String>,
}

#[derive(sqlx::FromRow)]
struct OverrideRow {
    id: String,
    rotation_id: String,
    user_id: String,
    reason: Option<String>,
    created_by: String,
    created_at_ms: i64,
    starts_at_ms: i64,
    ends_at_ms: i64,
    cancelled_at_ms: Option<i64>,
    cancelled_by: Option<String>,
}

impl TryFrom<OverrideRow> for StoredOverride {
    type Error = super::StoreError;
    fn try_from(r: OverrideRow) -> Result<StoredOverride> {
        Ok(StoredOverride {
            created_at: from_ms(r.created_at_ms, "oncall_overrides.created_at_ms")?,
            starts_at: from_ms(r.starts_at_ms, "oncall_overrides.starts_at_ms")?,
            ends_at: from_ms(r.ends_at_ms, "oncall_overrides.ends_at_ms")?,
            cancelled_at: r
                .cancelled_at_ms
                .map(|m| from_ms(m, "oncall_overrides.cancelled_at_ms"))
                .transpose()?,
            id: r.id,
            rotation_id: r.rotation_id,
            user_id: r.user_id,
            reason: r.reason,
            created_by: r.created_by,
            cancelled_by: r.cancelled_by,
        })
    }
}

impl Store {
    /// Creates `o` (keyed by `dedup_key`) and writes `then`'s effects with
    /// it, in one transaction. A request already made returns the override
    /// it made and `false`, writing nothing.
    pub async fn create_override_with(
        &self,
        o: &StoredOverride,
        dedup_key: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&StoredOverride) -> Effects,
    ) -> Result<(StoredOverride, bool)> {
        let sql = "INSERT INTO oncall_overrides (id, rotation_id, user_id, reason, created_by, \
               created_at_ms, starts_at_ms, ends_at_ms, dedup_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING RETURNING *";
        let args = [
            Arg::text(&o.id),
            Arg::text(&o.rotation_id),
            Arg::text(&o.user_id),
            Arg::Text(o.reason.as_deref()),
            Arg::text(&o.created_by),
            Arg::int(ms(o.created_at)),
            Arg::int(ms(o.starts_at)),
            Arg::int(ms(o.ends_at)),
        ];
        let by_key = "SELECT * FROM oncall_overrides WHERE dedup_key = $1";
        self.created_once::<OverrideRow, _>(sql, &args, by_key, dedup_key, now, then)
            .await
    }

    pub async fn get_override(&self, id: &str) -> Result<Option<StoredOverride>> {
        let sql = "SELECT * FROM oncall_overrides WHERE id = $1";
        let row: Option<OverrideRow> =
            on_pool!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await?);
        row.map(StoredOverride::try_from).transpose()
    }

    /// The overrides not cancelled that end after `after` (of one rotation,
    /// or all), in the order they were made (a later one wins).
    pub async fn overrides_ending_after(
        &self,
        rotation: Option<&str>,
        after: DateTime<Utc>,
    ) -> Result<Vec<StoredOverride>> {
        let sql = "SELECT * FROM oncall_overrides \
             WHERE cancelled_at_ms IS NULL AND ends_at_ms > $1 \
               AND ($2 IS NULL OR rotation_id = $2) ORDER BY created_at_ms, id";
        let rows: Vec<OverrideRow> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(ms(after))
            .bind(rotation)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(StoredOverride::try_from).collect()
    }

    /// Cancels an override once, with `then`'s effects; `None` when it was
    /// cancelled already.
    pub async fn cancel_override_with(
        &self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&StoredOverride) -> Effects,
    ) -> Result<Option<StoredOverride>> {
        let sql = "UPDATE oncall_overrides SET cancelled_at_ms = $2, cancelled_by = $3 \
             WHERE id = $1 AND cancelled_at_ms IS NULL RETURNING *";
        let args = [Arg::text(id), Arg::int(ms(now)), Arg::text(by)];
        self.once::<OverrideRow, _>(sql, &args, now, then).await
    }
}
