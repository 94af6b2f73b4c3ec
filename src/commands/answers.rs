//! The answers the job subcommands share: an unknown job, and Servo
//! unreachable or failing. Each is ephemeral and says what to do.

use super::ephemeral;
use crate::config::Tenant;
use crate::domain::job_id::JobId;
use crate::servo::ServoError;
use serde_json::Value;

pub(super) const UNREACHABLE: &str = ":warning: Servo is unreachable right now, so I cannot read or change jobs. Nothing was changed. Try again in a minute; the bot's `/readyz` shows when Servo is back.";

pub(super) fn unknown_job(id: JobId, tenant: &Tenant) -> Value {
    ephemeral(&format!(
        ":grey_question: No job `{id}` in tenant `{}`. Check the id with `/backfill list all`.",
        tenant.id
    ))
}

pub(super) fn servo_failed(e: &ServoError) -> Value {
    match e {
        ServoError::Unreachable(_) => ephemeral(UNREACHABLE),
        ServoError::Query(q) => {
            tracing::error!(error = %q, "Servo query failed");
            ephemeral(":warning: Servo answered with an error, so nothing was changed. The bot's operators can find the details in its log.")
        }
        ServoError::RlsBypass(_) => ephemeral(":no_entry: The bot will not read or change Servo's jobs: its database role bypasses the row-level security that keeps tenants apart. Nothing was changed. The bot's operators can find what to fix in its log."),
    }
}
