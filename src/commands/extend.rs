//! `/backfill extend-deadline <job> <deadline> [reason]`: a request for a
//! stakeholder to decide in the alert's thread (see [`crate::flows::approvals`]).

use super::{ephemeral, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::deadline::DeadlineSpec;
use crate::domain::job_id::JobId;
use serde_json::Value;

pub(super) async fn run(
    state: &AppState,
    tenant: &Tenant,
    job: JobId,
    deadline: DeadlineSpec,
    reason: Option<String>,
    cmd: &SlashCommand,
) -> Value {
    match crate::flows::extension_decisions::request(
        state,
        tenant,
        job,
        deadline,
        reason,
        &cmd.user_id,
        "slash command",
    )
    .await
    {
        Ok(text) | Err(text) => ephemeral(&text),
    }
}
