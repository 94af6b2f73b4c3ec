//! `/backfill pause <job>` and `/backfill resume <job>`: one change to
//! Servo in two directions, so one file.

use super::answers::{servo_failed, unknown_job};
use super::{ephemeral, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::JobId;
use crate::domain::text::escape_slack;
use crate::flows::alert_view::alert_link;
use crate::servo::ServoActionError;
use crate::store::AuditEntry;
use serde_json::{json, Value};

#[derive(Clone, Copy)]
pub(super) enum Change {
    Pause,
    Resume,
}

pub(super) async fn run(
    state: &AppState,
    tenant: &Tenant,
    id: JobId,
    cmd: &SlashCommand,
    what: Change,
) -> Value {
    let now = state.clock.now();
    let action = match what {
        Change::Pause => "pause",
        Change::Resume => "resume",
    };
    let audit = |outcome: &str| AuditEntry {
        at: now,
        tenant_id: Some(tenant.id.clone()),
        actor: cmd.user_id.clone(),
        action: action.into(),
        subject: Some(id.to_string()),
        outcome: outcome.into(),
        detail: Some(json!({ "via": "slash command", "channel": cmd.channel_id })),
    };
    let record = |outcome: String| {
        let entry = audit(&outcome);
        async move {
            if let Err(e) = state.store.audit(&entry).await {
                tracing::error!(error = %e, "could not write the audit log");
            }
        }
    };
    match state
        .directory
        .is_among(&cmd.user_id, &tenant.operators)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            record("refused: not an operator".into()).await;
            return ephemeral(&format!(
                ":no_entry: Only the operators of tenant `{}` can {action} jobs. Ask one of them ({}), or ask to be added to `operators` in the bot's config.",
                tenant.id,
                tenant.operators.iter().map(|p| p.mention()).collect::<Vec<_>>().join(", ")
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check operator membership");
            return ephemeral("I could not check your membership with Slack just now; nothing was changed. Try again in a moment.");
        }
    }
    let result = match what {
        Change::Pause => state.servo.pause(&tenant.id, id.0, now).await,
        Change::Resume => state.servo.resume(&tenant.id, id.0, now).await,
    };
    let job = match result {
        Ok(job) => job,
        Err(ServoActionError::NotFound) => {
            record("refused: unknown job".into()).await;
            return unknown_job(id, tenant);
        }
        Err(ServoActionError::InvalidState { message, .. }) => {
            record(format!("refused: {message}")).await;
            return ephemeral(&format!(":warning: {message} Nothing was changed."));
        }
        Err(ServoActionError::VersionConflict) => {
            record("refused: job changed meanwhile".into()).await;
            return ephemeral(":warning: The job changed while I was working on it; nothing was changed. Run the command again.");
        }
        Err(ServoActionError::Servo(e)) => {
            record(format!("failed: {e}")).await;
            return servo_failed(&e);
        }
    };
    record("ok".into()).await;
    let line = match what {
        Change::Pause => format!(
            ":double_vertical_bar: <@{}> paused *{}* (`{}`) at partition {} of {}; the partition in flight finishes first.",
            cmd.user_id,
            escape_slack(&job.asset_name),
            job.id,
            job.completed_partitions,
            job.total_partitions
        ),
        Change::Resume => format!(
            ":arrow_forward: <@{}> resumed *{}* (`{}`); Servo's executor picks it up from partition {} of {}.",
            cmd.user_id,
            escape_slack(&job.asset_name),
            job.id,
            job.completed_partitions,
            job.total_partitions
        ),
    };
    let alert = state
        .store
        .open_alert_for_job(&tenant.id, &id.to_string())
        .await
        .ok()
        .flatten();
    let mut text = line.clone();
    if let Some(alert) = &alert {
        let key = format!("alert:{}:{action}:v{}", alert.id, job.version);
        if let Err(e) = crate::flows::thread::reply_in_thread(state, alert, key, &line).await {
            tracing::error!(error = %e, "could not note the change in the alert's thread");
        }
        if let Some(link) = alert_link(Some(alert)) {
            text.push_str(&format!("\n{link}"));
        }
    }
    json!({ "response_type": "in_channel", "text": text })
}
