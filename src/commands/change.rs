//! `/backfill pause <job>` and `/backfill resume <job>`: one change to
//! Servo in two directions, so one file. The change is decided by
//! [`crate::flows::job_changes`]; this answers with what came of it.

use super::answers::{servo_failed, unknown_job};
use super::{ephemeral, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::JobId;
use crate::flows::alert_view::alert_link;
use crate::flows::job_changes::{ChangeOutcome, JobChange};
use serde_json::{json, Value};

pub(super) async fn run(
    state: &AppState,
    tenant: &Tenant,
    id: JobId,
    cmd: &SlashCommand,
    what: JobChange,
) -> Value {
    let action = what.action();
    match crate::flows::job_changes::change(state, tenant, id, &cmd.user_id, &cmd.channel_id, what).await {
        ChangeOutcome::NotOperator => ephemeral(&format!(
            ":no_entry: Only the operators of tenant `{}` can {action} jobs. Ask one of them ({}), or ask to be added to `operators` in the bot's config.",
            tenant.id,
            tenant.operator_mentions()
        )),
        ChangeOutcome::MembershipUnknown => ephemeral("I could not check your membership with Slack just now; nothing was changed. Try again in a moment."),
        ChangeOutcome::UnknownJob => unknown_job(id, tenant),
        ChangeOutcome::Invalid(message) => ephemeral(&format!(":warning: {message} Nothing was changed.")),
        ChangeOutcome::Conflict => ephemeral(":warning: The job changed while I was working on it; nothing was changed. Run the command again."),
        ChangeOutcome::ServoFailed(e) => servo_failed(&e),
        ChangeOutcome::Unconfirmed => ephemeral(&format!(
            ":grey_question: Servo did not confirm the {action}: the connection was lost as it was being committed, so it may or may not have been made. Check with `/backfill status {id}` in a minute before asking again."
        )),
        ChangeOutcome::Done { line, alert } => {
            let mut text = line;
            if let Some(link) = alert_link(alert.as_deref()) {
                text.push_str(&format!("\n{link}"));
            }
            // Said for everyone in the tenant's channels; elsewhere the
            // job's details stay with the one who asked (the alert's
            // thread has the change either way).
            let public = super::tenancy::is_tenants_channel(state, tenant, &cmd.channel_id).await;
            json!({ "response_type": if public { "in_channel" } else { "ephemeral" }, "text": text })
        }
    }
}
