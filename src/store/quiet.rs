//! Silences and maintenance windows set from Slack (issue 35). Each start
//! and end is one conditional statement committed with its effects (the
//! audit entry, the expiry timer, the thread notes), so every replica
//! decides it once.

use super::once::Arg;
use super::{from_ms, ms, on_pool, Effects, Result, Store};
use chrono::{DateTime, Utc};

/// What a silence or a window covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Job,
    Asset,
    Tenant,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Job => "job",
            Scope::Asset => "asset",
            Scope::Tenant => "tenant",
        }
    }

    /// A stored row's scope; a value the bot never writes is corruption.
    fn stored(s: &str, what: &str, id: &str) -> Result<Scope> {
        Scope::parse(s)
            .ok_or_else(|| super::StoreError::Corrupt(format!("{what} {id} has scope '{s}'")))
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "job" => Some(Scope::Job),
            "asset" => Some(Scope::Asset),
            "tenant" => Some(Scope::Tenant),
            _ => None,
        }
    }

    /// Whether (scope, target) in `tenant` covers this job of this asset.
    pub fn covers(self, target: &str, tenant: &str, job_id: &str, asset: &str) -> bool {
        match self {
            Scope::Job => target == job_id,
            // A window set from Slack may name its assets by a glob, as
            // the config's do; a silence names one asset exactly.
            Scope::Asset => crate::domain::text::glob_match(target, asset),
            Scope::Tenant => target == tenant,
        }
    }
}

/// A silence, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Silence {
    pub id: String,
    pub tenant_id: String,
    pub scope: Scope,
    /// The job id, the asset's name or the tenant id.
    pub target: String,
    pub reason: Option<String>,
    pub created_by: String,
    pub through_breach: bool,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
}

impl Silence {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && self.starts_at <= now && now < self.ends_at
    }

    pub fn covers(&self, tenant: &str, job_id: &str, asset: &str) -> bool {
        self.tenant_id == tenant && self.scope.covers(&self.target, tenant, job_id, asset)
    }
}

#[derive(sqlx::FromRow)]
struct SilenceRow {
    id: String,
    tenant_id: String,
    scope: String,
    target: String,
    reason: Option<String>,
    created_by: String,
    through_breach: i64,
    starts_at_ms: i64,
    ends_at_ms: i64,
    ended_at_ms: Option<i64>,
    ended_by: Option<String>,
}

impl TryFrom<SilenceRow> for Silence {
    type Error = super::StoreError;
    fn try_from(r: SilenceRow) -> Result<Silence> {
        Ok(Silence {
            scope: Scope::stored(&r.scope, "silence", &r.id)?,
            starts_at: from_ms(r.starts_at_ms, "silences.starts_at_ms")?,
            ends_at: from_ms(r.ends_at_ms, "silences.ends_at_ms")?,
            ended_at: r
                .ended_at_ms
                .map(|m| from_ms(m, "silences.ended_at_ms"))
                .transpose()?,
            id: r.id,
            tenant_id: r.tenant_id,
            target: r.target,
            reason: r.reason,
            created_by: r.created_by,
            through_breach: r.through_breach != 0,
            ended_by: r.ended_by,
        })
    }
}

/// The outbox key of a maintenance window's notice (`key` names the
/// window's occurrence): the notice's place is that row's answer.
pub fn maintenance_post_key(key: &str) -> String {
    format!("maintenance:{key}:post")
}

/// A maintenance window set from Slack.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredWindow {
    pub id: String,
    pub tenant_id: String,
    pub scope: Scope,
    pub target: String,
    pub reason: Option<String>,
    pub created_by: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<String>,
}

#[derive(sqlx::FromRow)]
struct WindowRow {
    id: String,
    tenant_id: String,
    scope: String,
    target: String,
    reason: Option<String>,
    created_by: String,
    starts_at_ms: i64,
    ends_at_ms: i64,
    cancelled_at_ms: Option<i64>,
    cancelled_by: Option<String>,
}

impl TryFrom<WindowRow> for StoredWindow {
    type Error = super::StoreError;
    fn try_from(r: WindowRow) -> Result<StoredWindow> {
        Ok(StoredWindow {
            scope: Scope::stored(&r.scope, "window", &r.id)?,
            starts_at: from_ms(r.starts_at_ms, "maintenance_windows.starts_at_ms")?,
            ends_at: from_ms(r.ends_at_ms, "maintenance_windows.ends_at_ms")?,
            cancelled_at: r
                .cancelled_at_ms
                .map(|m| from_ms(m, "maintenance_windows.cancelled_at_ms"))
                .transpose()?,
            id: r.id,
            tenant_id: r.tenant_id,
            target: r.target,
            reason: r.reason,
            created_by: r.created_by,
            cancelled_by: r.cancelled_by,
        })
    }
}

impl Store {
    /// Creates `silence` (keyed by `dedup_key`) and writes `then`'s effects
    /// with it, in one transaction. A request already made returns the
    /// silence it made and `false`, writing nothing.
    pub async fn create_silence_with(
        &self,
        silence: &Silence,
        dedup_key: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&Silence) -> Effects,
    ) -> Result<(Silence, bool)> {
        let sql = "INSERT INTO silences (id, tenant_id, scope, target, reason, created_by, \
               through_breach, starts_at_ms, ends_at_ms, dedup_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT DO NOTHING RETURNING *";
        let args = [
            Arg::text(&silence.id),
            Arg::text(&silence.tenant_id),
            Arg::text(silence.scope.as_str()),
            Arg::text(&silence.target),
            Arg::Text(silence.reason.as_deref()),
            Arg::text(&silence.created_by),
            Arg::int(silence.through_breach as i64),
            Arg::int(ms(silence.starts_at)),
            Arg::int(ms(silence.ends_at)),
        ];
        let by_key = "SELECT * FROM silences WHERE dedup_key = $1";
        self.created_once::<SilenceRow, _>(sql, &args, by_key, dedup_key, now, then)
            .await
    }

    pub async fn get_silence(&self, id: &str) -> Result<Option<Silence>> {
        let sql = "SELECT * FROM silences WHERE id = $1";
        let row: Option<SilenceRow> =
            on_pool!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await?);
        row.map(Silence::try_from).transpose()
    }

    /// The silences not yet ended and not yet past their end (of one
    /// tenant, or all), soonest end first.
    pub async fn active_silences(
        &self,
        tenant: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Silence>> {
        let sql = "SELECT * FROM silences \
             WHERE ended_at_ms IS NULL AND ends_at_ms > $1 AND starts_at_ms <= $1 \
               AND ($2 IS NULL OR tenant_id = $2) ORDER BY ends_at_ms, id";
        let rows: Vec<SilenceRow> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(ms(now))
            .bind(tenant)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Silence::try_from).collect()
    }

    /// Ends a silence once (`by` a person, or `bot` at its expiry) and
    /// writes `then`'s effects with the end. `None`, writing nothing, when
    /// it had ended already.
    pub async fn end_silence_with(
        &self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&Silence) -> Effects,
    ) -> Result<Option<Silence>> {
        let sql = "UPDATE silences SET ended_at_ms = $2, ended_by = $3 \
             WHERE id = $1 AND ended_at_ms IS NULL RETURNING *";
        let args = [Arg::text(id), Arg::int(ms(now)), Arg::text(by)];
        self.once::<SilenceRow, _>(sql, &args, now, then).await
    }

    /// Creates a maintenance window (keyed by `dedup_key`) with `then`'s
    /// effects; a request already made returns its window and `false`.
    pub async fn create_window_with(
        &self,
        w: &StoredWindow,
        dedup_key: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&StoredWindow) -> Effects,
    ) -> Result<(StoredWindow, bool)> {
        let sql = "INSERT INTO maintenance_windows (id, tenant_id, scope, target, reason, \
               created_by, starts_at_ms, ends_at_ms, dedup_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING RETURNING *";
        let args = [
            Arg::text(&w.id),
            Arg::text(&w.tenant_id),
            Arg::text(w.scope.as_str()),
            Arg::text(&w.target),
            Arg::Text(w.reason.as_deref()),
            Arg::text(&w.created_by),
            Arg::int(ms(w.starts_at)),
            Arg::int(ms(w.ends_at)),
        ];
        let by_key = "SELECT * FROM maintenance_windows WHERE dedup_key = $1";
        self.created_once::<WindowRow, _>(sql, &args, by_key, dedup_key, now, then)
            .await
    }

    pub async fn get_window(&self, id: &str) -> Result<Option<StoredWindow>> {
        let sql = "SELECT * FROM maintenance_windows WHERE id = $1";
        let row: Option<WindowRow> =
            on_pool!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await?);
        row.map(StoredWindow::try_from).transpose()
    }

    /// The windows not cancelled that end after `after` (of one tenant, or
    /// all), soonest start first.
    pub async fn windows_ending_after(
        &self,
        tenant: Option<&str>,
        after: DateTime<Utc>,
    ) -> Result<Vec<StoredWindow>> {
        let sql = "SELECT * FROM maintenance_windows \
             WHERE cancelled_at_ms IS NULL AND ends_at_ms > $1 \
               AND ($2 IS NULL OR tenant_id = $2) ORDER BY starts_at_ms, id";
        let rows: Vec<WindowRow> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(ms(after))
            .bind(tenant)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(StoredWindow::try_from).collect()
    }

    /// Cancels a window once, with `then`'s effects; `None` when it was
    /// cancelled already.
    pub async fn cancel_window_with(
        &self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&StoredWindow) -> Effects,
    ) -> Result<Option<StoredWindow>> {
        let sql = "UPDATE maintenance_windows SET cancelled_at_ms = $2, cancelled_by = $3 \
             WHERE id = $1 AND cancelled_at_ms IS NULL RETURNING *";
        let args = [Arg::text(id), Arg::int(ms(now)), Arg::text(by)];
        self.once::<WindowRow, _>(sql, &args, now, then).await
    }
}
