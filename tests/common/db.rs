//! A fresh database per test: a SQLite file in its own temporary directory,
//! or a new PostgreSQL database created through `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards.
//!
//! If PostgreSQL cannot be reached the test FAILS, saying so: it is never
//! skipped, so a green run means both engines were tested.
#![allow(dead_code)]

use servo_sla_bot::store::{redact_url, Store};
use sqlx::{Connection, PgConnection};
use std::path::PathBuf;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL tests use to create and drop their PostgreSQL databases.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into())
}

/// A database for one test, removed when dropped.
pub struct TestDb {
    /// What [`Store::connect`] takes.
    pub url: String,
    kind: Kind,
}

enum Kind {
    /// The directory holding the file (and its -wal/-shm companions).
    Sqlite(PathBuf),
    /// The database's name, to drop.
    Postgres(String),
}

async fn admin_connection() -> PgConnection {
    let url = admin_url();
    match PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is required for these tests: could not connect to {}: {e}. \
             Start it or set TEST_DATABASE_URL",
            redact_url(&url)
        ),
    }
}

/// `url` with its database (path) replaced by `name`, keeping the query.
pub fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let query_start = rest.find('?').map_or(url.len(), |q| authority_start + q);
    let path_start = url[authority_start..query_start]
        .find('/')
        .map_or(query_start, |s| authority_start + s);
    format!("{}/{name}{}", &url[..path_start], &url[query_start..])
}

impl TestDb {
    /// A new SQLite file in a fresh directory under the system temp dir.
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("sla-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.join("bot.db").display());
        TestDb {
            url,
            kind: Kind::Sqlite(dir),
        }
    }

    /// A new, empty PostgreSQL database `sla_test_<uuid>`.
    pub async fn postgres() -> TestDb {
        let name = format!("sla_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection().await;
        // The name is ours (hex digits), so formatting it into SQL is safe.
        let create = format!("CREATE DATABASE \"{name}\"");
        let mut tries = 0;
        loop {
            tries += 1;
            match sqlx::query(sqlx::AssertSqlSafe(create.clone()))
                .execute(&mut admin)
                .await
            {
                Ok(_) => break,
                // Concurrent CREATE DATABASE can collide on the template
                // ("source database is being accessed by other users").
                Err(e) if tries < 10 && e.to_string().contains("being accessed") => {
                    tokio::time::sleep(std::time::Duration::from_millis(100 * tries)).await;
                }
                Err(e) => panic!("could not create test database {name}: {e}"),
            }
        }
        let _ = admin.close().await;
        TestDb {
            url: with_database(&admin_url(), &name),
            kind: Kind::Postgres(name),
        }
    }

    /// The bot's store on this database, connected and migrated.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect the store at {}: {e}", redact_url(&self.url)));
        store.migrate().await.expect("migrate the store");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.kind {
            Kind::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Kind::Postgres(name) => {
                let name = name.clone();
                // Drop runs inside the test's runtime, where blocking on
                // another future is not allowed: use a thread with its own.
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    rt.block_on(async move {
                        let mut admin = PgConnection::connect(&admin_url()).await?;
                        // FORCE: a store still open (a failed test) must not keep it.
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .execute(&mut admin)
                        .await?;
                        admin.close().await
                    })
                })
                .join();
                if let Ok(Err(e)) = dropped {
                    eprintln!("warning: could not drop a test database: {e}");
                }
            }
        }
    }
}
