//! One conditional statement committed with its effects: the shape of every
//! decision the store takes once (a silence or window made or ended, an
//! override made or cancelled, an incident channel claimed, opened or
//! archived, how an episode ended). The statement says whether it holds
//! (`INSERT … ON CONFLICT DO NOTHING RETURNING *`, `UPDATE … WHERE <not yet>
//! RETURNING *`); when it returns a row, the caller's effects (audit entry,
//! timers, notes) are written in the same transaction, so every replica
//! decides it once and nothing of it is half done.

use super::effects::write_effects;
use super::{in_tx, on_pool, Effects, Result, Store, StoreError};
use chrono::{DateTime, Utc};

/// A value bound to one of these statements, whichever the backend.
pub(super) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
}

impl<'a> Arg<'a> {
    pub(super) fn text(s: &'a str) -> Arg<'a> {
        Arg::Text(Some(s))
    }

    pub(super) fn int(i: i64) -> Arg<'a> {
        Arg::Int(Some(i))
    }
}

/// A row type read on either backend.
pub(super) trait AnyRow:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + Send
    + Unpin
{
}

impl<R> AnyRow for R where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin
{
}

impl Store {
    /// Runs `sql` with `args`; when it returns a row, writes `then`'s
    /// effects with it in the same transaction and returns it. `None`,
    /// writing nothing, when the statement's condition did not hold.
    pub(super) async fn once<R: AnyRow, T: TryFrom<R, Error = StoreError>>(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
        now: DateTime<Utc>,
        then: impl FnOnce(&T) -> Effects,
    ) -> Result<Option<T>> {
        in_tx!(self, tx => {
            let mut q = sqlx::query_as::<_, R>(sql);
            for a in args {
                q = match a {
                    Arg::Text(t) => q.bind(*t),
                    Arg::Int(i) => q.bind(*i),
                };
            }
            let Some(row) = q.fetch_optional(&mut *tx).await? else {
                return Ok(None);
            };
            let made = T::try_from(row)?;
            let effects = then(&made);
            effects.check()?;
            write_effects!(tx, &effects, now);
            tx.commit().await?;
            Ok(Some(made))
        })
    }

    /// [`Store::once`] for a row keyed by a dedup key (`insert`'s last
    /// bind): a request already made reads what it made with `made_by_key`
    /// and returns `false`, writing nothing.
    pub(super) async fn created_once<R: AnyRow, T: TryFrom<R, Error = StoreError>>(
        &self,
        insert: &'static str,
        args: &[Arg<'_>],
        made_by_key: &'static str,
        dedup_key: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&T) -> Effects,
    ) -> Result<(T, bool)> {
        let mut all: Vec<Arg<'_>> = args
            .iter()
            .map(|a| match a {
                Arg::Text(t) => Arg::Text(*t),
                Arg::Int(i) => Arg::Int(*i),
            })
            .collect();
        all.push(Arg::text(dedup_key));
        if let Some(made) = self.once::<R, T>(insert, &all, now, then).await? {
            return Ok((made, true));
        }
        let row: R = on_pool!(self, p => sqlx::query_as(made_by_key)
            .bind(dedup_key)
            .fetch_one(p)
            .await?);
        Ok((T::try_from(row)?, false))
    }
}
