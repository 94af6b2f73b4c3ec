//! The flows: what the bot decides, and the commit of each decision with
//! everything it must send or schedule (see [`crate::store::Effects`]).
//! Flows take the [`crate::context::AppState`]; the edges (slash commands,
//! buttons, the workers) call them. A flow never imports a command, a
//! button, axum or a worker.

pub mod acknowledge;
pub mod alerts;
pub mod approvals;
pub mod assess;
pub mod escalation;
pub mod home;
pub mod incidents;
pub mod mitigations;
pub mod monitor;
pub mod preventive;
pub mod quiet;
pub mod repair;
pub mod review;
pub mod rollup;
pub mod scaling;
