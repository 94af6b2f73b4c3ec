//! Test support: fresh databases, a fake Slack, and the real app on port 0.
#![allow(dead_code)]

pub mod bot;
pub mod db;
pub mod fake_pagerduty;
pub use servo_sla_bot::sim::fake_slack;
pub mod servo_fixture;
pub mod slack_ui;
pub mod tcp_proxy;

/// Runs `async fn $name(backend: Backend)` as two tests, one per store:
/// `$name::on_sqlite` and `$name::on_postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                super::$name($crate::common::bot::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                super::$name($crate::common::bot::Backend::Postgres).await;
            }
        }
    )+};
}
