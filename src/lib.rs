//! servo-sla-bot: a Slack app that watches Servo's backfill jobs against
//! their SLA deadlines and helps the people on call act.
//!
//! The layout, following the flow of data:
//! - [`config`]: the TOML file and the environment, validated at start ([`ids`] parses Slack ids).
//! - [`app`]: builds the application from config, binds, runs until stopped.
//! - [`clock`]: injected time, so tests move it instead of sleeping.
//! - [`servo`]: the narrow interface to Servo's PostgreSQL tables.
//! - [`risk`]: ETA, severity, band, bottlenecks: pure functions; [`forecast`]: P50/P90
//!   completion from the partition history, pure, with its calibration and replay.
//! - [`store`]: the bot's own state (alerts, outbox, timers, approvals, audit) on SQLite or PostgreSQL.
//! - [`slack`]: outbound Web API client, signature layer, inbound routes, templates.
//! - [`commands`]: one file per `/backfill` subcommand; [`actions`]: buttons and modals.
//! - [`poller`]: polls Servo per tenant and hands each assessment to [`alerts`], which
//!   reconciles it with what Slack shows.
//! - [`people`]: who is an operator or stakeholder (user groups resolved and cached).
//! - [`outbox`]: delivers the Slack calls that must not be lost; [`timers`]: fires due timers.
//! - [`repair`]: after each poll, puts back what a crash between two steps left undone;
//!   [`supervise`]: restarts a worker that panics.
//! - [`approvals`]: deadline-extension requests and their decisions.
//! - [`escalation`]: pages the tiers in order until someone acknowledges; [`pagerduty`] mirrors it.
//! - [`metrics`]: the Prometheus text served at `/metrics`.
//! - [`charts`]: burn-down and weekly-review charts as PNG, uploaded to Slack through the outbox.
//! - [`sim`]: `servo-sla-bot simulate`, the real bot against a simulated Servo,
//!   a recording fake Slack and a manual clock.

pub mod actions;
pub mod alerts;
pub mod app;
pub mod approvals;
pub mod charts;
pub mod clock;
pub mod commands;
pub mod config;
pub mod escalation;
pub mod forecast;
pub mod ids;
pub mod metrics;
pub mod outbox;
pub mod pagerduty;
pub mod people;
pub mod poller;
pub mod repair;
pub mod review;
pub mod risk;
pub mod servo;
pub mod sim;
pub mod slack;
pub mod store;
pub mod supervise;
pub mod timers;
pub mod watch;
