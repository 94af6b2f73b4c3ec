//! `/backfill incident <job>` opens the job's alert episode its incident
//! channel; `/backfill incident link <job>`, run in an existing channel,
//! makes that channel the episode's (issue 38). Operators only; decided by
//! [`crate::flows::incident_channels`].

use super::{ephemeral, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::JobId;
use crate::flows::incident_channels::{opened_words, OpenOutcome};
use serde_json::{json, Value};

pub(super) async fn run(
    state: &AppState,
    tenant: &Tenant,
    id: JobId,
    link: bool,
    cmd: &SlashCommand,
) -> Value {
    let alert = match state
        .store
        .open_alert_for_job(&tenant.id, &id.to_string())
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => {
            let short: String = id.to_string().chars().take(8).collect();
            return ephemeral(&format!(
                "Job `{}` has no open alert: an incident channel belongs to an alert's episode. `/backfill status {}` shows how it stands.",
                short,
                short
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "reading an alert failed");
            return ephemeral(
                ":warning: Something went wrong on our side; nothing changed. Try again.",
            );
        }
    };
    match state
        .directory
        .is_among(&cmd.user_id, &tenant.operators)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            crate::flows::thread::audit(
                state,
                &alert,
                &cmd.user_id,
                if link {
                    "incident_channel_link"
                } else {
                    "incident_channel_open"
                },
                "refused: not an operator",
                json!({ "alert_id": alert.id }),
            )
            .await;
            return ephemeral(&format!(
                ":no_entry: Only the operators of tenant `{}` can open or link an incident channel.",
                tenant.id
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check operator membership");
            return ephemeral("I could not check your membership with Slack just now; nothing changed. Try again in a moment.");
        }
    }
    let channel = cmd.channel_id.as_str();
    if link
        && (channel == tenant.channel.as_str()
            || channel.starts_with('D')
            || alert.channel.as_deref() == Some(channel))
    {
        return ephemeral(":warning: Run `/backfill incident link <job>` in the channel to link: not in a DM or the alerts channel itself. Nothing changed.");
    }
    match crate::flows::incident_channels::open(
        state,
        &alert,
        &cmd.user_id,
        link.then_some(channel),
    )
    .await
    {
        Ok(outcome @ OpenOutcome::Linked { .. }) => {
            json!({ "response_type": "in_channel", "text": opened_words(&outcome) })
        }
        Ok(outcome) => ephemeral(&opened_words(&outcome)),
        Err(e) => {
            tracing::error!(error = %e, "opening an incident channel failed");
            ephemeral(":warning: Something went wrong on our side; nothing changed. Try again.")
        }
    }
}
