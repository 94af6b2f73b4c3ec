//! Test support: fresh databases, a fake Slack, and the real app on port 0.
#![allow(dead_code)]

pub mod bot;
pub mod db;
pub mod fake_pagerduty;
pub use servo_sla_bot::sim::fake_slack;
pub mod servo_fixture;
pub mod slack_ui;
pub mod tcp_proxy;
