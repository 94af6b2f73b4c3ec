//! A fresh database per test: a SQLite file in a temporary directory, or a new
//! PostgreSQL database created from `TEST_DATABASE_URL` and dropped afterwards.
//! If PostgreSQL cannot be reached the test fails, saying so: never skipped.
#![allow(dead_code)]

use servo_sla_bot::config::redact_url;
use servo_sla_bot::store::Store;
use sqlx::{Connection, PgConnection};

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    pub url: String,
    kind: Kind,
}

enum Kind {
    Sqlite(tempfile::TempDir),
    Postgres { name: String },
}

async fn admin_connection() -> PgConnection {
    let url = admin_url();
    match PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is required for these tests: could not connect to {}: {e}. \
             Start it (CI's .ci/run does) or set TEST_DATABASE_URL.",
            redact_url(&url)
        ),
    }
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("bot.db").display());
        TestDb {
            url,
            kind: Kind::Sqlite(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        let name = format!("sla_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("could not create test database {name}: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDb {
            url: url.to_string(),
            kind: Kind::Postgres { name },
        }
    }

    /// The bot's store on this database, migrated.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect the store");
        store.migrate().await.expect("migrate the store");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Postgres { name } = &self.kind {
            let name = name.clone();
            // Drop runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(async move {
                    if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .execute(&mut admin)
                        .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}
