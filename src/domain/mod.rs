//! The ground floor: the types and helpers every layer speaks, with no
//! dependency on any other module of the crate. Ids ([`ids`], [`JobId`]), a
//! requested deadline ([`DeadlineSpec`]), the runbook's words ([`RiskBand`],
//! [`SlaTier`], [`JobState`]), [`Secret`], and the Slack text helpers
//! ([`escape_slack`], [`date_token`]).

pub mod deadline;
pub mod ids;
pub mod job_id;
pub mod risk;
pub mod secret;
pub mod text;

pub use deadline::{DeadlineSpec, DEADLINE_EXAMPLES};
pub use job_id::{JobId, JobRef};
pub use risk::{JobState, RiskBand, SlaTier};
pub use secret::Secret;
pub use text::{date_token, duration_words, escape_slack};
