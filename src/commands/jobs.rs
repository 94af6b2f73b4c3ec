//! The subcommands that look at or act on jobs (status, list, pause, resume,
//! extend-deadline, review): the tenant resolved, then each subcommand's own
//! file; and the answers they share. Errors are ephemeral and change nothing;
//! another tenant's job is answered exactly like an unknown one, so nothing
//! leaks.

use super::change::Change;
use super::grammar::JobId;
use super::{ephemeral, tenancy, Command, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
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

pub async fn run(
    state: &AppState,
    command: Command,
    flag: Option<&str>,
    cmd: &SlashCommand,
) -> Value {
    let tenant = match tenancy::resolve(state, &cmd.channel_id, &cmd.user_id, flag).await {
        Ok(t) => t,
        // Slack text, with what the user typed already escaped.
        Err(msg) => return ephemeral(&msg),
    };
    // The job as the person named it: an id, a prefix of one, an asset.
    let found = |named| async move { super::lookup::job(state, tenant, &named).await };
    match command {
        Command::Status(named) => match found(named).await {
            Ok(id) => super::status::card(state, tenant, id).await,
            Err(answer) => answer,
        },
        Command::List(filter) => super::list::run(state, tenant, filter).await,
        Command::Review(days) => super::review::run(state, tenant, days).await,
        Command::Pause(named) => match found(named).await {
            Ok(id) => super::change::run(state, tenant, id, cmd, Change::Pause).await,
            Err(answer) => answer,
        },
        Command::Resume(named) => match found(named).await {
            Ok(id) => super::change::run(state, tenant, id, cmd, Change::Resume).await,
            Err(answer) => answer,
        },
        Command::ExtendDeadline {
            job,
            deadline,
            reason,
        } => match found(job).await {
            Ok(id) => super::extend::run(state, tenant, id, deadline, reason, cmd).await,
            Err(answer) => answer,
        },
        Command::Silence(args) => super::quiet::silence(state, tenant, args, cmd).await,
        Command::Silences => super::quiet::list(state, tenant).await,
        Command::Unsilence(id) => super::quiet::unsilence(state, tenant, &id, cmd).await,
        Command::Maintenance(args) => super::quiet::maintenance(state, tenant, args, cmd).await,
        Command::Help | Command::Overview | Command::Unknown(_) | Command::Invalid(_) => {
            ephemeral("This command is handled elsewhere.")
        }
    }
}

pub use crate::flows::alerts::alert_link;

/// Slack's control characters in text that came from elsewhere.
pub(super) fn escape(s: &str) -> String {
    crate::slack::render::escape_slack(s)
}
