//! Which tenant a slash command acts on. People open ad-hoc incident channels,
//! so the channel alone does not always say. In order:
//! 1. `--tenant ID`, allowed only for that tenant's operators and stakeholders;
//! 2. the channel's own tenant (its alert channel or an incident channel:
//!    one listed in the config, or one the bot opened or linked for an
//!    alert);
//! 3. the only tenant, when just one is configured, for its operators and
//!    stakeholders (user groups resolved);
//! 4. the one tenant the user is an operator or stakeholder of.
//!
//! Outside a tenant's channels, then, only its people are answered (the
//! rule docs/commands.md states, the same as `--tenant`'s): a channel is no proof of
//! belonging there, and a DM or a random channel is open to anyone in the
//! workspace. Otherwise the answer says why and how to pick a tenant.

use crate::config::Tenant;
use crate::context::AppState;

/// The configured tenant `id`, or the answer that names the tenants there
/// are (what the user typed escaped).
pub fn named<'a>(state: &'a AppState, id: &str) -> Result<&'a Tenant, String> {
    state.config.tenant(id).ok_or_else(|| {
        format!(
            "There is no tenant `{}`. The tenants are {}.",
            crate::domain::text::escape_slack(&crate::domain::job_id::short(id)),
            ids(state)
        )
    })
}

/// The configured tenants' ids, for an answer.
fn ids(state: &AppState) -> String {
    state
        .config
        .tenants
        .iter()
        .map(|t| format!("`{}`", t.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tenant, or an ephemeral message (Slack text, what the user typed
/// already escaped) saying why there is none.
pub async fn resolve<'a>(
    state: &'a AppState,
    channel: &str,
    user: &str,
    flag: Option<&str>,
) -> Result<&'a Tenant, String> {
    let tenants = &state.config.tenants;
    if let Some(id) = flag {
        let tenant = named(state, id)?;
        return match state.directory.is_among(user, &tenant.people()).await {
            Ok(true) => Ok(tenant),
            Ok(false) => Err(format!(
                ":no_entry: `--tenant {}` is only for that tenant's operators and stakeholders.",
                tenant.id
            )),
            Err(e) => {
                tracing::warn!(error = %e, "could not resolve user groups");
                Err(
                    "I could not check your membership with Slack just now; try again in a moment."
                        .into(),
                )
            }
        };
    }
    if let Some(t) = tenants.iter().find(|t| {
        t.channel.as_str() == channel || t.incident_channels.iter().any(|c| c.as_str() == channel)
    }) {
        return Ok(t);
    }
    // A channel opened or linked as an alert's incident channel (issue 38).
    match state.store.incident_channel_by_slack_id(channel).await {
        Ok(Some(ic)) => {
            if let Some(t) = state.config.tenant(&ic.tenant_id) {
                return Ok(t);
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the incident channels"),
    }
    if let [only] = tenants.as_slice() {
        return match state.directory.is_among(user, &only.people()).await {
            Ok(true) => Ok(only),
            Ok(false) => Err(format!(
                ":no_entry: This channel is not one of tenant `{}`'s, and elsewhere `/backfill` answers only the tenant's operators and stakeholders. Ask in <#{}> (or one of its incident channels), or ask the bot's operators to add you to the tenant's `operators` or `stakeholders`.",
                only.id,
                only.channel.as_str()
            )),
            Err(e) => {
                tracing::warn!(error = %e, "could not resolve user groups");
                Err(format!(
                    "I could not check your membership with Slack just now; try again in a moment, or ask in <#{}>.",
                    only.channel.as_str()
                ))
            }
        };
    }
    let mut mine = Vec::new();
    for t in tenants {
        if state
            .directory
            .is_among(user, &t.people())
            .await
            .unwrap_or(false)
        {
            mine.push(t);
        }
    }
    if mine.len() == 1 {
        return Ok(mine[0]);
    }
    Err(format!(
        "This channel belongs to no tenant, and I cannot tell which one you mean. The tenants are {}. Add `--tenant ID` to the command (e.g. `/backfill list --tenant {}`), or list this channel in the tenant's `incident_channels`.",
        ids(state),
        tenants.first().map(|t| t.id.as_str()).unwrap_or("acme")
    ))
}

/// Only the tenant's operators may do `what` (the words after "can"): `None`
/// for one of them; else the answer, the refusal audited under `action`.
pub async fn operators_only(
    state: &AppState,
    tenant: &Tenant,
    cmd: &super::SlashCommand,
    action: &str,
    what: &str,
) -> Option<serde_json::Value> {
    match state
        .directory
        .is_among(&cmd.user_id, &tenant.operators)
        .await
    {
        Ok(true) => None,
        Ok(false) => {
            crate::flows::silences::audit_refused(
                state,
                tenant,
                &cmd.user_id,
                action,
                &crate::domain::job_id::short(&cmd.text),
            )
            .await;
            Some(super::ephemeral(&format!(
                ":no_entry: Only the operators of tenant `{}` can {what}. Ask one of them ({}).",
                tenant.id,
                tenant.operator_mentions()
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check operator membership");
            Some(super::ephemeral("I could not check your membership with Slack just now; nothing was changed. Try again in a moment."))
        }
    }
}

/// Whether `channel` is one of `tenant`'s: its alert channel, one of its
/// configured incident channels, or an alert's incident channel of its.
/// What a command changed is said there for everyone; elsewhere (a channel
/// of no tenant, where an operator of one tenant is understood too) only to
/// the one who asked.
pub(super) async fn is_tenants_channel(state: &AppState, tenant: &Tenant, channel: &str) -> bool {
    tenant.channel.as_str() == channel
        || tenant
            .incident_channels
            .iter()
            .any(|c| c.as_str() == channel)
        || matches!(
            state.store.incident_channel_by_slack_id(channel).await,
            Ok(Some(ic)) if ic.tenant_id == tenant.id
        )
}
