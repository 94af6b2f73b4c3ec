//! Timers: escalation steps, monitor-closely check-ins, approval expiry.
//! Rows with a due time, claimed with a lease, so a restart resumes where it
//! stopped and, on PostgreSQL, several replicas each handle a row once.

use super::claims::{claim_sql, Claim, ClaimBind, ClaimTable};
use super::{
    clocked, ms, on_pool, open_alert_ids, Clocked, NewTimer, Result, Store, Timer, TimerRow,
};
use chrono::{DateTime, Utc};

/// New pending timers in one statement, given as `(id, &NewTimer)` pairs,
/// each skipped when its dedup key was used before. 8 binds a row: callers
/// keep to 400 rows, well under SQLite's 32,766 variables.
macro_rules! insert_timers {
    ($rows:expr, $now:expr) => {{
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO timers (id, kind, subject_id, payload, due_at_ms, status, \
               dedup_key, created_at_ms) ",
        );
        qb.push_values(
            $rows,
            |mut row, (id, t): (String, &$crate::store::NewTimer)| {
                row.push_bind(id)
                    .push_bind(&t.kind)
                    .push_bind(&t.subject_id)
                    .push_bind($crate::store::json_text(&t.payload))
                    .push_bind($crate::store::ms(t.due_at))
                    .push_bind("pending")
                    .push_bind(&t.dedup_key)
                    .push_bind($crate::store::ms($now));
            },
        );
        qb.push(" ON CONFLICT (dedup_key) DO NOTHING");
        qb
    }};
}
pub(crate) use insert_timers;

/// Marks a claimed timer fired ($1 id, $2 the worker holding it, $3 when):
/// nothing when it was cancelled, already fired or taken over.
pub(crate) const COMPLETE_TIMER: &str = "UPDATE timers SET status = 'fired', fired_at_ms = $3, \
       claimed_by = NULL, claim_until_ms = NULL \
     WHERE id = $1 AND claimed_by = $2 AND status = 'pending'";

/// Which kinds of timer a claim takes: one lane of the timer worker.
#[derive(Clone, Copy, Debug)]
pub enum TimerKinds<'a> {
    All,
    Only(&'a [&'a str]),
    Except(&'a [&'a str]),
}

impl TimerKinds<'_> {
    /// The binds of [`kinds_filter!`]: the kinds as a JSON array (`None`
    /// for all), and whether a kind must be among them.
    fn binds(&self) -> (Option<String>, bool) {
        match self {
            TimerKinds::All => (None, true),
            TimerKinds::Only(k) => (Some(serde_json::json!(k).to_string()), true),
            TimerKinds::Except(k) => (Some(serde_json::json!(k).to_string()), false),
        }
    }
}

/// Keeps the timers (`t`) of some kinds: `$kinds` a JSON array of kinds, or
/// NULL for all; `$among` whether a kind must be among them or not.
macro_rules! kinds_filter {
    (sqlite, $kinds:literal, $among:literal) => {
        concat!(
            "(",
            $kinds,
            " IS NULL OR (t.kind IN (SELECT value FROM json_each(",
            $kinds,
            "))) = ",
            $among,
            ")"
        )
    };
    (postgres, $kinds:literal, $among:literal) => {
        concat!(
            "(",
            $kinds,
            "::text IS NULL OR (t.kind IN (SELECT jsonb_array_elements_text(",
            $kinds,
            "::jsonb))) = ",
            $among,
            ")"
        )
    };
}
pub(crate) use kinds_filter;

/// Claimable: pending, due by the caller's clock (`$3`), unclaimed or its
/// claim expired by the database's clock, of the kinds `$5`/`$6` keep.
macro_rules! claimable_timer {
    ($engine:ident) => {
        concat!(
            "t.status = 'pending' AND t.due_at_ms <= $3 \
             AND (t.claimed_by IS NULL OR t.claim_until_ms <= ",
            super::db_now_ms!($engine),
            ") AND ",
            kinds_filter!($engine, "$5", "$6")
        )
    };
}

/// Claims due timers of some kinds (`$5`, `$6`), earliest first.
const CLAIM_TIMERS: Clocked = claim_sql!(
    table: "timers",
    alias: "t",
    claimable: claimable_timer,
    order: "t.due_at_ms, t.id",
    set: "",
);

impl Store {
    /// Schedules a timer and returns its id; `None` when its dedup key was
    /// used before (a step is scheduled once, however often it is asked for).
    pub async fn schedule_timer(&self, t: NewTimer, now: DateTime<Utc>) -> Result<Option<String>> {
        let id = uuid::Uuid::new_v4().to_string();
        let n = on_pool!(self, p => insert_timers!(std::iter::once((id.clone(), &t)), now)
            .build()
            .execute(p)
            .await?
            .rows_affected());
        Ok((n == 1).then_some(id))
    }

    /// Claims up to `limit` timers due at `now` (the caller's clock) for
    /// `worker`, for `lease` on the database's clock, earliest first. The
    /// worker acts, then [`Store::complete_timer`]s.
    pub async fn claim_due_timers(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Timer>> {
        self.claim_due_timers_of(worker, now, lease, limit, TimerKinds::All)
            .await
    }

    /// [`Store::claim_due_timers`], of some kinds only: what one lane of the
    /// timer worker fires.
    pub async fn claim_due_timers_of(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
        kinds: TimerKinds<'_>,
    ) -> Result<Vec<Timer>> {
        let (kinds, among) = kinds.binds();
        let claim = Claim {
            worker,
            now,
            lease,
            limit,
        };
        let extra = [ClaimBind::Text(kinds), ClaimBind::Flag(among)];
        let rows: Vec<TimerRow> = self.claim_rows(&CLAIM_TIMERS, claim, &extra).await?;
        let mut timers: Vec<Timer> = rows
            .into_iter()
            .map(Timer::try_from)
            .collect::<Result<_>>()?;
        // RETURNING promises no order.
        timers.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        Ok(timers)
    }

    /// Marks a timer `worker` holds as fired; false if it was cancelled,
    /// already fired, or taken over after the lease expired.
    pub async fn complete_timer(&self, id: &str, worker: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(COMPLETE_TIMER)
            .bind(id)
            .bind(worker)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Hands a timer that failed back, due again at `next_due`, counting the
    /// failure.
    pub async fn retry_timer(
        &self,
        id: &str,
        worker: &str,
        next_due: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE timers SET claimed_by = NULL, claim_until_ms = NULL, due_at_ms = $3, \
               attempts = attempts + 1 \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(ms(next_due))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Hands one claimed timer back (the worker could not act on it now).
    pub async fn release_timer(&self, id: &str, worker: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE timers SET claimed_by = NULL, claim_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Extends every claim `worker` holds to `lease` from now, on the
    /// database's clock: it is still firing them. Returns how many it still
    /// holds.
    pub async fn renew_timer_claims(&self, worker: &str, lease: chrono::Duration) -> Result<u64> {
        self.renew_claims(ClaimTable::Timers, worker, lease).await
    }

    /// Hands back every claim of a worker that is shutting down.
    pub async fn release_timer_claims(&self, worker: &str) -> Result<u64> {
        self.release_claims(ClaimTable::Timers, worker).await
    }

    /// Cancels a subject's pending timers (of one kind, or all); returns how
    /// many. A claimed one is cancelled too: its `complete_timer` then fails.
    pub async fn cancel_timers(
        &self,
        subject_id: &str,
        kind: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE timers SET status = 'cancelled', fired_at_ms = $3, \
               claimed_by = NULL, claim_until_ms = NULL \
             WHERE subject_id = $1 AND ($2 IS NULL OR kind = $2) AND status = 'pending'")
            .bind(subject_id)
            .bind(kind)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected()))
    }

    /// Timers by due time, all or of one subject, in any status.
    pub async fn list_timers(&self, subject_id: Option<&str>) -> Result<Vec<Timer>> {
        // Two statements, not `($1 IS NULL OR subject_id = $1)`: SQLite cannot
        // use the subject index for that form, and every poll asks per alert.
        let rows: Vec<TimerRow> = match subject_id {
            Some(subject) => on_pool!(self, p => sqlx::query_as(
                "SELECT * FROM timers WHERE subject_id = $1 ORDER BY due_at_ms, id")
                .bind(subject)
                .fetch_all(p)
                .await?),
            None => {
                on_pool!(self, p => sqlx::query_as("SELECT * FROM timers ORDER BY due_at_ms, id")
                .fetch_all(p)
                .await?)
            }
        };
        rows.into_iter().map(Timer::try_from).collect()
    }

    /// Which of a tenant's open alerts have a pending timer of `kind` (Monitor
    /// closely's check-ins), in one read.
    pub async fn open_alerts_with_pending_timer(
        &self,
        tenant: &str,
        kind: &str,
    ) -> Result<std::collections::HashSet<String>> {
        let rows: Vec<(String,)> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT DISTINCT subject_id FROM timers WHERE kind = $2 AND status = 'pending' AND subject_id IN ",
            open_alert_ids!()
        ))
            .bind(tenant)
            .bind(kind)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// When the timer worker should look next: the earliest due time of a
    /// pending timer nobody holds. `None` when there is none. A held timer
    /// is left out: its claim runs on the database's clock, not the
    /// caller's, and the worker looks again within a second anyway.
    pub async fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>> {
        self.next_timer_due_of(TimerKinds::All).await
    }

    /// [`Store::next_timer_due`], of some kinds only (one lane's).
    pub async fn next_timer_due_of(&self, kinds: TimerKinds<'_>) -> Result<Option<DateTime<Utc>>> {
        const SQL: Clocked = clocked!(
            "SELECT MIN(t.due_at_ms) FROM timers t WHERE t.status = 'pending' \
               AND (t.claimed_by IS NULL OR t.claim_until_ms <= ",
            NOW,
            ") AND ",
            KINDS,
        );
        let sql = self.sql(&SQL);
        let (kinds, among) = kinds.binds();
        let t: Option<i64> = on_pool!(self, p => sqlx::query_scalar(sql)
            .bind(&kinds)
            .bind(among)
            .fetch_one(p)
            .await?);
        t.map(|t| super::from_ms(t, "timer next due")).transpose()
    }
}
