//! The subcommands that look at or act on jobs (status, list, pause, resume,
//! extend-deadline, review): the tenant resolved, then each subcommand's own
//! file; and the answers they share. Errors are ephemeral and change nothing;
//! another tenant's job is answered exactly like an unknown one, so nothing
//! leaks.

use super::{ephemeral, tenancy, Command, SlashCommand};
use crate::context::AppState;
use crate::flows::job_changes::JobChange;
use serde_json::Value;

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
        Command::Impact(named) => match found(named).await {
            Ok(id) => super::impact::run(state, tenant, id).await,
            Err(answer) => answer,
        },
        Command::List(filter) => super::list::run(state, tenant, filter).await,
        Command::Review(days) => super::review::run(state, tenant, days).await,
        Command::Pause(named) => match found(named).await {
            Ok(id) => super::change::run(state, tenant, id, cmd, JobChange::Pause).await,
            Err(answer) => answer,
        },
        Command::Resume(named) => match found(named).await {
            Ok(id) => super::change::run(state, tenant, id, cmd, JobChange::Resume).await,
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
        Command::Incident { job, link } => match found(job).await {
            Ok(id) => super::incident::run(state, tenant, id, link, cmd).await,
            Err(answer) => answer,
        },
        Command::Silence(args) => super::quiet::silence(state, tenant, args, cmd).await,
        Command::Silences => super::quiet::list(state, tenant).await,
        Command::Unsilence(id) => super::quiet::unsilence(state, tenant, &id, cmd).await,
        Command::Maintenance(args) => super::quiet::maintenance(state, tenant, args, cmd).await,
        Command::OnCall(args) => super::oncall::run(state, tenant, args, cmd).await,
        Command::Help | Command::Overview | Command::Unknown(_) | Command::Invalid(_) => {
            ephemeral("This command is handled elsewhere.")
        }
    }
}
