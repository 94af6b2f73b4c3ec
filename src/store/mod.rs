//! The bot's own state: alerts, the outbox of Slack calls, timers, approval
//! requests, the audit log, handled Slack events, Socket Mode envelopes and
//! leases.
//!
//! SQLite is the embedded default (one process); PostgreSQL lets several
//! replicas share the work. Both engines run the same SQL wherever they can
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`, partial unique indexes):
//! each such query is written once and expanded for both pools by
//! `on_pool!`. Only claims differ, where PostgreSQL adds `FOR UPDATE SKIP
//! LOCKED` so replicas never wait on (or take) each other's rows.
//!
//! Every "only one may win" rule (one open alert per job, one acknowledgement,
//! one decision, first delivery, dedup keys, leases) is decided by the
//! database in a single conditional statement, never by a read followed by a
//! write, so it holds across tasks, processes and replicas.
//!
//! Times are epoch milliseconds (`BIGINT`/`INTEGER`) in the database and
//! `DateTime<Utc>` truncated to milliseconds in Rust: SQLite would keep
//! chrono's nanoseconds as text and PostgreSQL microseconds, so integers are
//! what compares and round-trips identically on both.
//!
//! The module uses no other part of the crate: it is mounted as `pub mod store`.

mod alerts;
mod approvals;
mod audit;
mod claims;
mod effects;
mod envelopes;
mod escalation;
#[doc(hidden)]
pub mod fault;
mod forecasts;
mod handled;
mod health;
mod home;
mod incident_channels;
mod incident_lines;
mod intents;
mod leases;
mod mitigations;
mod oncall;
mod once;
mod outbox;
mod quiet;
mod repair;
mod review;
mod rollups;
mod rows;
mod timers;

pub use effects::{Effects, TimerCancel, TimerFired};
pub use envelopes::EnvelopeClaim;
pub use escalation::*;
pub use forecasts::ForecastRecord;
pub use health::HealthCounts;
pub use incident_channels::{Disposition, IncidentChannel};
pub use incident_lines::incident_channel_order;
pub use intents::{Intent, IntentChange};
pub use mitigations::{ScalingClaim, ScalingRequest};
pub use oncall::StoredOverride;
pub use outbox::{permalink_spec, METADATA_EVENT, PERMALINK};
pub use quiet::{maintenance_post_key, Scope, Silence, StoredWindow};
pub use review::*;
pub use rollups::{rollup_post_key, Incident, Rollup};
pub use rows::*;
pub use timers::TimerKinds;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that does not decode into the domain (hand-edited, or a bug).
    #[error("store row is corrupt: {0}")]
    Corrupt(String),
    /// The URL is neither SQLite nor PostgreSQL (already redacted).
    #[error("unsupported store URL {0}: use a file path, sqlite://FILE or postgres://...")]
    UnsupportedUrl(String),
    /// An argument the store refuses before touching the database, e.g. a
    /// decision status that is not a decision, or an unknown link kind.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// A statement failed on purpose (the crash-point tests' fault hook).
    #[error("store fault injected at statement {0}")]
    Injected(u32),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which engine a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store, on one of its two engines. Cheap to clone (a pool inside).
///
/// `Display` and `Debug` show where it points, never a password.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store has, so each query is
/// written once. `Store` must be in scope where it is used.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {{
        $crate::store::fault::check()?;
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    }};
}
pub(crate) use on_pool;

/// The ids of the open alerts of the tenant bound as `$1`, as a subquery for
/// `concat!`: what a poll's one-read-per-tenant queries select their rows by
/// (issue 40), so that "open" means the same in each of them.
macro_rules! open_alert_ids {
    () => {
        "(SELECT id FROM alerts WHERE tenant_id = $1 AND status = 'open')"
    };
}
pub(crate) use open_alert_ids;

/// Runs `$body` with `$tx` a transaction on whichever pool the store has. The
/// body must commit; an early return (`?`) rolls back.
///
/// SQLite starts it with `BEGIN IMMEDIATE`: taking the write lock up front
/// makes a busy writer wait (busy_timeout) instead of failing with
/// SQLITE_BUSY when a deferred transaction tries to upgrade from reading.
macro_rules! in_tx {
    ($store:expr, $tx:ident => $body:expr) => {{
        $crate::store::fault::check()?;
        match $store {
            Store::Sqlite(pool) => {
                let _gate = $crate::store::sqlite_write_gate(pool).await;
                #[allow(unused_mut)]
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                $body
            }
            Store::Postgres(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool.begin().await?;
                $body
            }
        }
    }};
}
pub(crate) use in_tx;

/// SQLite has one writer per file. Transactions of this process that write
/// take turns here before `BEGIN IMMEDIATE`, rather than all asking SQLite
/// for the lock at once: SQLite's busy handler makes a writer that finds the
/// lock taken sleep (1, 2, 5, 10 … 100 ms) before it asks again, so with a
/// dozen writers at once most of the time went to those sleeps. Here they
/// queue in order and each starts as soon as the one before commits (a
/// thousand escalation steps due at once, `benches/timers.rs`). Another
/// process on the same file still meets the busy handler.
pub(crate) async fn sqlite_write_gate(pool: &SqlitePool) -> tokio::sync::OwnedMutexGuard<()> {
    type Gates =
        std::collections::HashMap<std::path::PathBuf, std::sync::Arc<tokio::sync::Mutex<()>>>;
    static GATES: std::sync::LazyLock<std::sync::Mutex<Gates>> =
        std::sync::LazyLock::new(Default::default);
    let file = pool.connect_options().get_filename().to_path_buf();
    let gate = GATES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(file)
        .or_default()
        .clone();
    gate.lock_owned().await
}

/// The database's clock, epoch milliseconds, in one engine's SQL
/// (`sqlite` or `postgres`). Claims and leases are measured on it, never on
/// a replica's own clock: who holds an in-flight row, and until when, must
/// read the same on every replica, however far their clocks drift apart.
/// Due times (when a timer or a retry is due) stay on the injected clock,
/// which tests and `simulate` move by hand.
macro_rules! db_now_ms {
    (sqlite) => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
    (postgres) => {
        "(floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint"
    };
}
pub(crate) use db_now_ms;

/// A statement that reads the database's clock, written once: its parts,
/// string literals, `NOW` (the engine's [`db_now_ms!`]) and `KINDS` (a
/// timer kind filter on `$1` and `$2`, see [`TimerKinds`]), concatenated for
/// each engine.
macro_rules! clocked {
    (@part $engine:ident NOW) => {
        $crate::store::db_now_ms!($engine)
    };
    (@part $engine:ident KINDS) => {
        $crate::store::timers::kinds_filter!($engine, "$1", "$2")
    };
    (@part $engine:ident $lit:literal) => {
        $lit
    };
    ($($part:tt),+ $(,)?) => {
        $crate::store::Clocked {
            sqlite: concat!($($crate::store::clocked!(@part sqlite $part)),+),
            postgres: concat!($($crate::store::clocked!(@part postgres $part)),+),
        }
    };
}
pub(crate) use clocked;

/// One statement in each engine's SQL (see [`clocked!`]).
pub(crate) struct Clocked {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Store {
    /// The form of `sql` this store's engine runs.
    pub(crate) fn sql(&self, sql: &Clocked) -> &'static str {
        match self {
            Store::Sqlite(_) => sql.sqlite,
            Store::Postgres(_) => sql.postgres,
        }
    }
}

/// Epoch milliseconds, as stored.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored epoch-millisecond time back to chrono; out of range is corruption.
pub(crate) fn from_ms(ms: i64, what: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: {ms} ms is out of range")))
}

/// What a time reads back as from the store: truncated to the millisecond.
/// Callers compare against this when they check a round trip.
pub fn truncate_to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms(t)).unwrap_or(t)
}

pub(crate) fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

/// `url` with any password replaced by `***`, for logs and errors: the
/// `user:password@` part of a URL, and `password=` in a query string or a
/// key/value connection string.
pub fn redact_url(url: &str) -> String {
    let mut out = match url.find("://") {
        Some(i) => {
            let (scheme, rest) = url.split_at(i + 3);
            // The user info ends at the last '@' before any query or fragment
            // (a raw password may itself hold '@' or '/').
            let head_end = rest.find(['?', '#']).unwrap_or(rest.len());
            match rest[..head_end].rfind('@') {
                Some(at) => {
                    let userinfo = &rest[..at];
                    let masked = match userinfo.find(':') {
                        Some(colon) => format!("{}:***", &userinfo[..colon]),
                        None => userinfo.to_string(),
                    };
                    format!("{scheme}{masked}{}", &rest[at..])
                }
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    // `password=...` (PostgreSQL accepts it in the query and in key/value form).
    let mut search_from = 0;
    while let Some(found) = out[search_from..].to_ascii_lowercase().find("password=") {
        let start = search_from + found;
        let before_ok = start == 0 || matches!(out.as_bytes()[start - 1], b'?' | b'&' | b' ');
        let value_start = start + "password=".len();
        if !before_ok {
            search_from = value_start;
            continue;
        }
        let value_end = out[value_start..]
            .find(['&', ' ', '#'])
            .map_or(out.len(), |e| value_start + e);
        out.replace_range(value_start..value_end, "***");
        search_from = value_start + 3;
    }
    out
}

impl Store {
    /// The database file, for a SQLite store (none for PostgreSQL or in-memory SQLite).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self {
            Store::Sqlite(p) => {
                let options = p.connect_options();
                let f = options.get_filename();
                (!f.as_os_str().is_empty() && f != std::path::Path::new(":memory:"))
                    .then(|| f.to_path_buf())
            }
            Store::Postgres(_) => None,
        }
    }
}

impl fmt::Display for Store {
    /// Built from the pool's options, which the password never enters here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Sqlite(p) => write!(
                f,
                "sqlite://{}",
                p.connect_options().get_filename().display()
            ),
            Store::Postgres(p) => {
                let o = p.connect_options();
                write!(
                    f,
                    "postgres://{}@{}:{}/{}",
                    o.get_username(),
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or("")
                )
            }
        }
    }
}

impl fmt::Debug for Store {
    // Not derived: the pools' Debug shows their options, and we keep the
    // rule "a store prints no password" in one place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({self})")
    }
}

/// How long a pool waits for a free connection before failing the call.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The store's PostgreSQL session limits (see [`pg_session_limits`]): its
/// statements are small, so one that runs 30 s is stuck (a lock, a sick
/// server), and a transaction left open a minute belongs to a bot that is
/// gone.
const STORE_STATEMENT_TIMEOUT: &str = "30s";
const STORE_IDLE_IN_TRANSACTION: &str = "60s";

/// Session settings a PostgreSQL connection of the bot (to its own store,
/// or to Servo) starts with, unless its URL's `options` sets them already:
///
/// - `statement_timeout`: the server ends a statement that runs longer (a
///   lock held by someone else, a server in trouble) instead of letting it
///   hold a worker for minutes;
/// - `idle_in_transaction_session_timeout`: a transaction left open by a
///   client that is gone ends, and its row locks with it;
/// - TCP keepalives on the server's side of the connection
///   (`tcp_keepalives_idle`/`_interval`/`_count`: a probe after 30 s of
///   silence, every 10 s, 3 unanswered and the connection is dropped): the
///   server notices within a minute or so that a replica vanished in a
///   failover or a network cut, and frees its connections and locks.
///
/// The client's own side: the pool's acquire timeout bounds getting a
/// connection (a blackholed idle connection fails its ping within it), and
/// Servo's calls have a deadline of their own ([`pg_statement_timeout`]).
/// (sqlx offers no client-side keepalive or socket option.)
pub fn pg_session_limits(
    options: PgConnectOptions,
    statement_timeout: &str,
    idle_in_transaction: &str,
) -> PgConnectOptions {
    let given = options.get_options().unwrap_or_default().to_string();
    let limits = [
        ("statement_timeout", statement_timeout),
        ("idle_in_transaction_session_timeout", idle_in_transaction),
        ("tcp_keepalives_idle", "30"),
        ("tcp_keepalives_interval", "10"),
        ("tcp_keepalives_count", "3"),
    ];
    let missing: Vec<(&str, &str)> = limits
        .into_iter()
        .filter(|(key, _)| !given.contains(&format!("{key}=")))
        .collect();
    if missing.is_empty() {
        options
    } else {
        options.options(missing)
    }
}

/// The `statement_timeout` a connection's options set (the last one wins,
/// as on the server), in PostgreSQL's units: milliseconds by default, or
/// `us`, `ms`, `s`, `min`, `h`, `d`. `Some(ZERO)`: none (0 turns it off).
/// `None`: not set, or not a value this reads.
pub fn pg_statement_timeout(options: &PgConnectOptions) -> Option<Duration> {
    let given = options.get_options()?;
    let at = given.rfind("statement_timeout=")? + "statement_timeout=".len();
    let value = given[at..]
        .split(|c: char| c.is_whitespace() || c == '\\')
        .next()?
        .trim_matches(|c| c == '\'' || c == '"');
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let n: u64 = value[..digits].parse().ok()?;
    let ms = match value[digits..].trim() {
        "" | "ms" => n,
        "us" => n / 1000,
        "s" => n * 1000,
        "min" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

impl Store {
    /// Opens the store named by `url`; does not migrate (see [`Store::migrate`]).
    ///
    /// `postgres://` or `postgresql://` is PostgreSQL, its sessions limited
    /// as [`pg_session_limits`] says (a 30 s statement timeout). `sqlite:...` or a plain
    /// path (`servo-sla-bot.db`) is a SQLite file, created on first use, in
    /// WAL mode (readers do not block the writer), with a 5 s busy timeout
    /// (concurrent writers wait rather than fail) and foreign keys enforced.
    pub async fn connect(url: &str) -> Result<Store> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = pg_session_limits(
                PgConnectOptions::from_str(url)?.application_name("servo-sla-bot"),
                STORE_STATEMENT_TIMEOUT,
                STORE_IDLE_IN_TRANSACTION,
            );
            // Room for the timer worker's 32 concurrent steps, the poller, the
            // outbox and the Slack handlers; 20 per replica.
            let pool = PgPoolOptions::new()
                .max_connections(20)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Store::Postgres(pool)
        } else {
            let options = if url.starts_with("sqlite:") {
                SqliteConnectOptions::from_str(url)?
            } else if url.is_empty() || url.contains("://") {
                return Err(StoreError::UnsupportedUrl(redact_url(url)));
            } else {
                SqliteConnectOptions::new().filename(url)
            };
            // WAL with synchronous=NORMAL: a commit survives a crash of the
            // process (the WAL is written before the commit returns); only a
            // power loss can lose the last commits. FULL would fsync every
            // commit, which made 1,000 escalation steps due at once take ~5 s.
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Store::Sqlite(pool)
        };
        tracing::info!(store = %store, "store connected");
        Ok(store)
    }

    /// Applies the embedded migrations for this engine; a no-op when they are
    /// applied. On PostgreSQL sqlx holds an advisory lock meanwhile, so every
    /// replica can migrate at start; a migration (an index on a big table)
    /// may run past the store's statement timeout, so it runs on a
    /// connection of its own without one.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await?,
            Store::Postgres(p) => {
                // The last `-c` wins: the store's options, timeout off.
                let options = (*p.connect_options())
                    .clone()
                    .options([("statement_timeout", "0")]);
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                let migrated = sqlx::migrate!("migrations/postgres").run(&pool).await;
                pool.close().await;
                migrated?;
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// `SELECT 1`: the database answers (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(p) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_masks_passwords() {
        assert_eq!(
            redact_url("postgres://u:p@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("sqlite://bot.db"), "sqlite://bot.db");
        assert_eq!(redact_url("servo-sla-bot.db"), "servo-sla-bot.db");
        assert_eq!(
            redact_url("postgres://u:p%40ss@h/db?sslmode=require"),
            "postgres://u:***@h/db?sslmode=require"
        );
        // A raw '@' or '/' in the password must not leak its tail.
        assert_eq!(
            redact_url("postgresql://u:p@s/s@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u:@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=secret&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=h user=u password=secret dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
        assert_eq!(redact_url(""), "");
    }

    #[tokio::test]
    async fn a_store_prints_no_password() {
        let pool = PgPoolOptions::new()
            .connect_lazy("postgres://bot:s3cret@db.internal:6543/sla")
            .expect("a lazy pool");
        let store = Store::Postgres(pool);
        let shown = format!("{store} {store:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://bot@db.internal:6543/sla"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn unsupported_urls_are_refused_redacted() {
        let err = Store::connect("mysql://u:hunter2@h/db").await.unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(
            Store::connect("").await,
            Err(StoreError::UnsupportedUrl(_))
        ));
    }

    #[test]
    fn a_statement_timeout_is_read_from_a_connections_options() {
        let read = |options: &str| {
            let url = format!("postgres://h/db?options={}", options.replace(' ', "%20"));
            pg_statement_timeout(&PgConnectOptions::from_str(&url).unwrap())
        };
        let ms = Duration::from_millis;
        assert_eq!(read("-c statement_timeout=2s"), Some(ms(2_000)));
        assert_eq!(read("-c statement_timeout=1500"), Some(ms(1_500)));
        assert_eq!(read("-c statement_timeout=250ms"), Some(ms(250)));
        assert_eq!(read("-c statement_timeout=5min"), Some(ms(300_000)));
        assert_eq!(read("-c statement_timeout=0"), Some(Duration::ZERO));
        assert_eq!(
            read("-c statement_timeout=1s -c statement_timeout=3s"),
            Some(ms(3_000)),
            "the last one wins, as on the server"
        );
        assert_eq!(read("-c lock_timeout=1s"), None);
        assert_eq!(read("-c statement_timeout=soon"), None);
        // The bot's limits come after what the URL says, and never over it.
        let given =
            PgConnectOptions::from_str("postgres://h/db?options=-c%20statement_timeout%3D2s")
                .unwrap();
        let limited = pg_session_limits(given, "15s", "30s");
        assert_eq!(pg_statement_timeout(&limited), Some(ms(2_000)));
        assert!(limited
            .get_options()
            .unwrap()
            .contains("idle_in_transaction_session_timeout=30s"));
        let limited = pg_session_limits(PgConnectOptions::new(), "15s", "30s");
        assert_eq!(pg_statement_timeout(&limited), Some(ms(15_000)));
    }

    #[test]
    fn times_truncate_to_milliseconds() {
        let t = DateTime::from_timestamp(1_900_000_000, 123_456_789).unwrap();
        let back = from_ms(ms(t), "t").unwrap();
        assert_eq!(back, truncate_to_ms(t));
        assert_eq!(back.timestamp_subsec_nanos(), 123_000_000);
        assert!(matches!(
            from_ms(i64::MAX, "t"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
