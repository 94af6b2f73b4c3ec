//! **Acknowledge** on a storm's roll-up (its message, or its page's DM):
//! acknowledges the paging of all its jobs. This file decodes the click and
//! checks who clicked; the decision and what it sends commit together in
//! [`crate::flows::group_paging::acknowledge`].

use super::{tell, Click};
use crate::context::AppState;
use crate::flows::group_paging::{self, RollupAcked};
use serde_json::json;

pub async fn run(state: &AppState, click: &Click) {
    if let Err(e) = try_run(state, click).await {
        tracing::error!(error = %e, "acknowledging a roll-up failed");
        tell(
            state,
            click,
            ":warning: The acknowledgement could not be recorded; nothing changed. Try again in a moment.",
        )
        .await;
    }
}

async fn try_run(state: &AppState, click: &Click) -> anyhow::Result<()> {
    let id = click.value.as_str();
    // Only ids the bot rendered: a UUID's characters, bounded.
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        tell(
            state,
            click,
            "This button does not name a roll-up; nothing changed.",
        )
        .await;
        return Ok(());
    }
    let Some(esc) = group_paging::escalation_of(state, id).await? else {
        tell(
            state,
            click,
            "Nothing pages for this roll-up (yet); nothing to acknowledge.",
        )
        .await;
        return Ok(());
    };
    let Some(tenant) = state.config.tenant(&esc.tenant_id) else {
        tell(
            state,
            click,
            "This roll-up's tenant is no longer configured.",
        )
        .await;
        return Ok(());
    };
    if !group_paging::may_respond(state, tenant, &click.user).await {
        state
            .store
            .audit(&crate::store::AuditEntry {
                at: state.clock.now(),
                tenant_id: Some(tenant.id.clone()),
                actor: click.user.clone(),
                action: "rollup_acknowledge".into(),
                subject: Some(group_paging::subject(id)),
                outcome: "refused: not an operator".into(),
                detail: Some(json!({ "rollup": id })),
            })
            .await?;
        let who = state.directory.names(&tenant.operators).await;
        tell(
            state,
            click,
            &format!(
                ":no_entry: Only the operators of tenant `{}` ({who}) and the people on the escalation path can acknowledge its paging.",
                tenant.id
            ),
        )
        .await;
        return Ok(());
    }
    match group_paging::acknowledge(state, id, &click.user, None).await? {
        RollupAcked::Acknowledged => {}
        RollupAcked::NotPaging => {
            tell(
                state,
                click,
                "The roll-up's paging is not running (already acknowledged, ended, or not started); nothing changed.",
            )
            .await
        }
        RollupAcked::NotOpen => {
            tell(
                state,
                click,
                "This roll-up is resolved; nothing to acknowledge.",
            )
            .await
        }
    }
    Ok(())
}
