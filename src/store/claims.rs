//! Claims with a lease, the way the outbox and the timer workers take rows:
//! a worker marks due rows as its own (`claimed_by`) until a lease runs out
//! on the database's clock (`claim_until_ms`), so a crashed worker's rows
//! come back and replicas never take the same row while its lease holds,
//! whatever their own clocks say. One statement pair, one way to run it, one
//! way to renew and to hand every claim back.

use super::{clocked, ms, on_pool, Clocked, Result, Store};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;

/// The two forms of one claim statement, as a [`Clocked`]: `$1` the worker,
/// `$2` the lease in milliseconds (added to the database's clock), `$3` the
/// caller's now, `$4` the limit; binds from `$5` on are the caller's own.
///
/// - `table`, `alias`: the table and the alias its `claimable` condition uses;
/// - `claimable`: a macro taking `sqlite` or `postgres` that gives the
///   condition for a row the claim may take;
/// - `order`: which rows come first under the limit;
/// - `set`: more assignments made with the claim (`", attempts = attempts + 1"`).
///
/// SQLite: one `UPDATE … RETURNING` (run by [`Store::claim_rows`] under the
/// write gate, so the choice and the claim cannot interleave with another
/// claim). PostgreSQL: the chosen rows are locked in the selecting subquery,
/// skipping rows another replica is claiming, so replicas never wait on or
/// double-claim a row; MATERIALIZED keeps the locked choice from being
/// re-planned into the UPDATE (and re-evaluated, possibly beyond the limit).
macro_rules! claim_sql {
    (
        table: $table:literal,
        alias: $alias:literal,
        claimable: $claimable:ident,
        order: $order:literal,
        set: $set:literal $(,)?
    ) => {
        $crate::store::Clocked {
            sqlite: concat!(
                "UPDATE ",
                $table,
                " SET claimed_by = $1, claim_until_ms = ",
                $crate::store::db_now_ms!(sqlite),
                " + $2",
                $set,
                " WHERE id IN (",
                $crate::store::claims::claim_sql!(@pick sqlite, $table, $alias, $claimable, $order),
                ") RETURNING *"
            ),
            postgres: concat!(
                "WITH picked AS MATERIALIZED (",
                $crate::store::claims::claim_sql!(@pick postgres, $table, $alias, $claimable, $order),
                " FOR UPDATE OF ",
                $alias,
                " SKIP LOCKED) UPDATE ",
                $table,
                " SET claimed_by = $1, claim_until_ms = ",
                $crate::store::db_now_ms!(postgres),
                " + $2",
                $set,
                " FROM picked WHERE ",
                $table,
                ".id = picked.id RETURNING ",
                $table,
                ".*"
            ),
        }
    };
    // The ids of the rows to claim, first `$4` of them.
    (@pick $engine:ident, $table:literal, $alias:literal, $claimable:ident, $order:literal) => {
        concat!(
            "SELECT ",
            $alias,
            ".id FROM ",
            $table,
            " ",
            $alias,
            " WHERE ",
            $claimable!($engine),
            " ORDER BY ",
            $order,
            " LIMIT $4"
        )
    };
}
pub(crate) use claim_sql;

/// Who claims, for how long, which rows are due, and how many at most: the
/// binds `$1` to `$4` of a [`claim_sql!`] statement.
pub(super) struct Claim<'a> {
    pub worker: &'a str,
    pub now: DateTime<Utc>,
    pub lease: chrono::Duration,
    pub limit: i64,
}

/// A bind of a claim's own, after the four every claim takes.
pub(super) enum ClaimBind {
    Text(Option<String>),
    Flag(bool),
}

impl Store {
    /// Runs a [`claim_sql!`] statement and returns the rows it claimed, in
    /// no particular order (RETURNING promises none). On SQLite it runs
    /// under the write gate in its own `BEGIN IMMEDIATE` transaction.
    pub(super) async fn claim_rows<R>(
        &self,
        sql: &Clocked,
        claim: Claim<'_>,
        extra: &[ClaimBind],
    ) -> Result<Vec<R>>
    where
        R: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        // The four binds every claim takes, then the caller's own.
        macro_rules! claim_query {
            ($sql:expr) => {{
                let mut query = sqlx::query_as($sql)
                    .bind(claim.worker)
                    .bind(claim.lease.num_milliseconds())
                    .bind(ms(claim.now))
                    .bind(claim.limit);
                for bind in extra {
                    query = match bind {
                        ClaimBind::Text(t) => query.bind(t.clone()),
                        ClaimBind::Flag(f) => query.bind(*f),
                    };
                }
                query
            }};
        }
        let rows = match self {
            Store::Sqlite(p) => {
                let _gate = super::sqlite_write_gate(p).await;
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let rows = claim_query!(sql.sqlite).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
            Store::Postgres(p) => claim_query!(sql.postgres).fetch_all(p).await?,
        };
        Ok(rows)
    }

    /// Extends every claim `worker` holds in `table` to `lease` from now, on
    /// the database's clock; returns how many it still holds.
    pub(super) async fn renew_claims(
        &self,
        table: ClaimTable,
        worker: &str,
        lease: chrono::Duration,
    ) -> Result<u64> {
        let sql = self.sql(&table.renew());
        Ok(on_pool!(self, p => sqlx::query(sql)
            .bind(worker)
            .bind(lease.num_milliseconds())
            .execute(p)
            .await?
            .rows_affected()))
    }

    /// Hands back every claim `worker` holds in `table` (it is shutting
    /// down), so another takes them now rather than when the leases expire.
    pub(super) async fn release_claims(&self, table: ClaimTable, worker: &str) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(table.release())
            .bind(worker)
            .execute(p)
            .await?
            .rows_affected()))
    }
}

/// The tables whose rows are claimed with a lease.
#[derive(Clone, Copy)]
pub(super) enum ClaimTable {
    Outbox,
    Timers,
}

impl ClaimTable {
    /// Renews the pending rows `$1` holds to `$2` milliseconds from now.
    fn renew(self) -> Clocked {
        const OUTBOX: Clocked = clocked!(
            "UPDATE outbox SET claim_until_ms = ",
            NOW,
            " + $2 WHERE claimed_by = $1 AND status = 'pending'",
        );
        const TIMERS: Clocked = clocked!(
            "UPDATE timers SET claim_until_ms = ",
            NOW,
            " + $2 WHERE claimed_by = $1 AND status = 'pending'",
        );
        match self {
            ClaimTable::Outbox => OUTBOX,
            ClaimTable::Timers => TIMERS,
        }
    }

    /// Clears the claims on the pending rows `$1` holds.
    fn release(self) -> &'static str {
        match self {
            ClaimTable::Outbox => {
                "UPDATE outbox SET claimed_by = NULL, claim_until_ms = NULL \
                 WHERE claimed_by = $1 AND status = 'pending'"
            }
            ClaimTable::Timers => {
                "UPDATE timers SET claimed_by = NULL, claim_until_ms = NULL \
                 WHERE claimed_by = $1 AND status = 'pending'"
            }
        }
    }
}
