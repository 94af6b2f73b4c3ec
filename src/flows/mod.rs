//! The flows: what the bot decides, and the commit of each decision with
//! everything it must send or schedule (see [`crate::store::Effects`]).
//! Flows take the [`crate::context::AppState`]; the edges (slash commands,
//! buttons, the workers) call them. A flow never imports a command, a
//! button, axum or a worker.
//!
//! The files use each other one way (`tests/architecture.rs` rejects a
//! circle), from the bottom up:
//! - [`ids`] (every button's action id and timer kind), [`thread`] (thread
//!   notes, the audit entry, [`thread::AlertError`]), [`paging`] (who a page
//!   goes to, what **Escalate now** pages, PagerDuty keys), [`home_refresh`]
//!   (marks Homes stale), [`quiet`] (may this page now: silences,
//!   maintenance windows, paging hours), [`preventive`], [`rollup`],
//!   [`bought`] (what each mitigation bought before, issue 38), [`review`];
//! - [`poll_reads`]: what a poll reads once for a tenant's open alerts
//!   (issue 40), which the alerts' views and escalations use;
//! - [`alert_view`]: an alert's message, its buttons, its rendering and the
//!   edit that puts it back on Slack;
//! - [`group_paging`]: a storm's roll-up pages once (on [`paging`],
//!   [`quiet`] and [`oncall`]); [`incidents`]: trouble wider than one job
//!   pages once, skipping whom the roll-up paged; the escalation,
//!   acknowledgements and an incident channel's invitations read them;
//! - [`incident_channels`]: an alert episode's own channel (issue 38), its
//!   claim, creation, invitations, timeline and archive, and how the
//!   episode ended;
//! - [`quiet_hold`]: an escalation held while [`quiet`] says not to page;
//!   [`maintenance`]: a window's notice in the channel, its end and its
//!   summary once it has settled;
//! - [`escalation`]: the path's steps; then [`acknowledge`], [`scaling`],
//!   [`monitor`], [`silences`] (silences and windows set from Slack, and
//!   their ends), [`job_changes`] (pause and resume by command);
//! - [`alerts`]: the message's lifecycle (post, update, resolve);
//!   [`approvals`]: an extension request's life; [`home`];
//!   [`mitigations`]; [`lineage`]: downstream owners told of a late job;
//! - [`poll`]: one tenant's poll, which drives alerts, roll-ups, incidents
//!   and moot requests; [`extension_decisions`] (asking for and deciding an
//!   extension, which re-assess the job) and [`repair`] stand above it.

pub mod acknowledge;
pub mod alert_view;
pub mod alerts;
pub mod approvals;
pub mod bought;
pub mod escalation;
pub mod extension_decisions;
pub mod group_paging;
pub mod home;
pub mod home_refresh;
pub mod ids;
pub mod incident_channels;
pub mod incidents;
pub mod job_changes;
pub mod lineage;
pub mod maintenance;
pub mod mitigations;
pub mod monitor;
pub mod oncall;
pub mod paging;
pub mod pd_schedules;
pub mod poll;
pub mod poll_reads;
pub mod preventive;
pub mod quiet;
pub mod quiet_hold;
pub mod repair;
pub mod review;
pub mod rollup;
pub mod scaling;
pub mod silences;
pub mod thread;
