//! servo-sla-bot: a Slack app that watches Servo's backfill jobs against
//! their SLA deadlines and helps the people on call act.
//!
//! # Layout
//!
//! The crate is built in floors. A module may use the modules on its own
//! floor and below, never above, and no modules use each other in a circle.
//! `tests/architecture.rs` reads this table and `src/` and fails otherwise:
//! a new top-level module must be given a floor here.
//!
//! | floor | name | modules | what they hold |
//! |---|---|---|---|
//! | 0 | ground | `domain`, `clock`, `forecast`, `metrics`, `supervise` | the types every layer speaks, injected time, the P50/P90 forecaster, the metrics registry, worker supervision |
//! | 1 | parts | `config`, `store`, `servo`, `risk`, `slack`, `pagerduty`, `people`, `charts`, `outbox` | the config file and environment, the bot's store, Servo's tables, the risk assessment, the outbound Slack client and templates, PagerDuty, the directory, charts, outbox delivery |
//! | 2 | context | `context` | `AppState`: what every flow, command, button and worker shares, and its caches |
//! | 3 | flows | `flows` | what the bot decides, committed with its effects: alerts, escalation, approvals, mitigations, monitoring, preventive checks, the review, repair, a tenant's assessment |
//! | 4 | requests and workers | `commands`, `actions`, `poller`, `timers` | `/backfill` subcommands, buttons and dialogs; the poll schedule and the timer worker |
//! | 5 | edge | `edge` | the inbound edge: HTTP routes, the signature layer, Socket Mode, the handlers both share |
//! | 6 | top | `app`, `sim` | building, running and stopping the bot; `servo-sla-bot simulate` and its fake Slack |
//!
//! The modules:
//! - [`domain`]: ids, [`domain::JobId`], [`domain::DeadlineSpec`], [`domain::RiskBand`],
//!   [`domain::SlaTier`], [`domain::JobState`], [`domain::Secret`], and the Slack text
//!   helpers; [`clock`]: injected time, so tests move it instead of sleeping;
//!   [`forecast`]: P50/P90 completion from the partition history, pure;
//!   [`metrics`]: the Prometheus text served at `/metrics`; [`supervise`]: restarts a
//!   worker that panics.
//! - [`config`]: the TOML file and the environment, validated at start;
//!   [`store`]: the bot's own state (alerts, outbox, timers, approvals, intents, audit) on
//!   SQLite or PostgreSQL; [`servo`]: the narrow interface to Servo's tables;
//!   [`risk`]: ETA, severity, band, bottlenecks, pure; [`slack`]: the outbound Web API
//!   client, Block Kit limits, uploads and templates; [`pagerduty`] mirrors pages;
//!   [`people`]: who is an operator or stakeholder; [`charts`]: burn-down and review
//!   charts; [`outbox`]: delivers the Slack calls that must not be lost.
//! - [`context`]: [`context::AppState`], its caches, and the gauges `/metrics` reads.
//! - [`flows`]: [`flows::alerts`] (one message per job and episode),
//!   [`flows::escalation`] (pages the tiers in order), [`flows::approvals`] (extension
//!   requests and decisions), [`flows::mitigations`] (changes to Servo recorded as
//!   intents), [`flows::monitor`] (check-ins), [`flows::preventive`] (the buffer check
//!   and early warning), [`flows::review`] (the weekly SLA review),
//!   [`flows::repair`] (puts back what a crash between two steps left undone),
//!   [`flows::assess`] (one tenant's poll), [`flows::rollup`] (a storm as one incident),
//!   [`flows::incidents`] (widespread slowdowns and system-wide degradation),
//!   [`flows::home`] (each person's App Home), [`flows::acknowledge`] (an
//!   acknowledgement, whole in one commit), [`flows::scaling`] (Request scaling).
//! - [`commands`]: `/backfill` and its subcommands (a job by id, prefix or asset);
//!   [`actions`]: buttons, dialogs and message shortcuts;
//!   [`poller`]: runs [`flows::assess`] for each tenant on its schedule, then the judgements
//!   across tenants;
//!   [`timers`]: fires due timers (escalation steps, check-ins, expiries, Home refreshes).
//! - [`edge`]: what Slack sends the bot, over HTTP or Socket Mode.
//! - [`app`]: builds the application from config, binds, runs until stopped;
//!   [`sim`]: `servo-sla-bot simulate`, the real bot against a simulated Servo, a
//!   recording fake Slack and a manual clock.

pub mod actions;
pub mod app;
pub mod charts;
pub mod clock;
pub mod commands;
pub mod config;
pub mod context;
pub mod domain;
pub mod edge;
pub mod flows;
pub mod forecast;
pub mod metrics;
pub mod outbox;
pub mod pagerduty;
pub mod people;
pub mod poller;
pub mod risk;
pub mod servo;
pub mod sim;
pub mod slack;
pub mod store;
pub mod supervise;
pub mod timers;
