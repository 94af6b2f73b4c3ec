//! servo-sla-bot: a Slack app that watches Servo's backfill jobs against
//! their SLA deadlines and helps the people on call act.
//!
//! # Layout
//!
//! The crate is built in floors, and each floor is folders: every module
//! lives in the folder of its floor, and only `main.rs`, `lib.rs` and
//! `app.rs` stand loose in `src/`. A module may use the modules on its own
//! floor and below, never above, and no modules (nor files inside a
//! module) use each other in a circle. Each item has one path: no module
//! re-exports another module's items. `tests/architecture.rs` reads this
//! table and `src/` and fails otherwise: a new top-level folder must be
//! given a floor here.
//!
//! | floor | name | folders | what they hold |
//! |---|---|---|---|
//! | 0 | ground | `domain`, `runtime` | the types every layer speaks, the risk assessment and the P50/P90 forecaster (pure); injected time, the metrics registry, worker supervision |
//! | 1 | parts | `config`, `store`, `servo`, `slack`, `pagerduty` | the config file and environment, the bot's store, Servo's tables, the outbound Slack client with its limits, templates, directory, charts and uploads, PagerDuty |
//! | 2 | context | `context` | `AppState`: the wiring every flow, command, button and worker shares, and its caches |
//! | 3 | flows | `flows` | what the bot decides, committed with its effects: alerts, escalation, approvals, mitigations, monitoring, preventive checks, the review, repair, a tenant's poll |
//! | 4 | requests and workers | `commands`, `actions`, `workers` | `/backfill` subcommands; buttons and dialogs; the poller, the timer worker and the outbox worker |
//! | 5 | edge | `edge` | the inbound edge: HTTP routes, the signature layer, Socket Mode, the handlers both share |
//! | 6 | top | `app`, `sim` | building, running and stopping the bot; `servo-sla-bot simulate` and its fake Slack |
//!
//! The folders:
//! - [`domain`]: ids, [`domain::job_id::JobId`], [`domain::deadline::DeadlineSpec`], the
//!   runbook's words ([`domain::risk`]), [`domain::secret::Secret`], the Slack text helpers
//!   ([`domain::text`]), the risk assessment ([`domain::assessment`]: ETA, severity, band,
//!   bottlenecks) and the forecaster ([`domain::forecast`]); [`runtime`]: injected time
//!   ([`runtime::clock`]), the Prometheus text served at `/metrics` ([`runtime::metrics`]),
//!   and restarting a worker that panics ([`runtime::supervise`]).
//! - [`config`]: the TOML file and the environment, validated at start;
//!   [`store`]: the bot's own state (alerts, outbox, timers, approvals, intents, audit) on
//!   SQLite or PostgreSQL; [`servo`]: the narrow interface to Servo's tables;
//!   [`slack`]: the outbound Web API client, Block Kit limits, templates, uploads, who is an
//!   operator or stakeholder ([`slack::directory`]) and the charts ([`slack::charts`]);
//!   [`pagerduty`] mirrors pages.
//! - [`context`]: [`context::AppState`], its caches, and the gauges `/metrics` reads.
//! - [`flows`]: [`flows::alerts`] (one message per job and episode),
//!   [`flows::escalation`] (pages the tiers in order), [`flows::approvals`] (extension
//!   requests and decisions), [`flows::mitigations`] (changes to Servo recorded as
//!   intents), [`flows::monitor`] (check-ins), [`flows::preventive`] (the buffer check
//!   and early warning), [`flows::review`] (the weekly SLA review),
//!   [`flows::repair`] (puts back what a crash between two steps left undone),
//!   [`flows::poll`] (one tenant's poll), [`flows::rollup`] (a storm as one incident),
//!   [`flows::incidents`] (widespread slowdowns and system-wide degradation),
//!   [`flows::home`] (each person's App Home), [`flows::acknowledge`] (an
//!   acknowledgement, whole in one commit), [`flows::scaling`] (Request scaling).
//! - [`commands`]: `/backfill` and its subcommands (a job by id, prefix or asset);
//!   [`actions`]: buttons, dialogs and message shortcuts; [`workers`]: the poller, which runs
//!   [`flows::poll`] for each tenant on its schedule, the timer worker (escalation steps,
//!   check-ins, expiries, Home refreshes) and the outbox worker, which delivers the Slack
//!   calls that must not be lost.
//! - [`edge`]: what Slack sends the bot, over HTTP or Socket Mode.
//! - [`app`]: builds the application from config, binds, runs until stopped;
//!   [`sim`]: `servo-sla-bot simulate`, the real bot against a simulated Servo, a
//!   recording fake Slack and a manual clock.

pub mod actions;
pub mod app;
pub mod commands;
pub mod config;
pub mod context;
pub mod domain;
pub mod edge;
pub mod flows;
pub mod pagerduty;
pub mod runtime;
pub mod servo;
pub mod sim;
pub mod slack;
pub mod store;
pub mod workers;
