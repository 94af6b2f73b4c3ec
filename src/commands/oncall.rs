//! `/backfill oncall [tenant]`, `/backfill oncall override <rotation> @user
//! <from|now> <to|duration>`, `/backfill oncall overrides` and `/backfill
//! oncall cancel <id>` (issue 36): parsed and authorised here, decided in
//! [`crate::flows::oncall`].

use super::{ephemeral, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::short;
use crate::domain::text::{date_token, escape_slack};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub const OVERRIDE_USAGE: &str =
    "/backfill oncall override <rotation> @user <from|now> <to|duration>";

/// When an override starts or ends, as typed.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    Now,
    At(DateTime<Utc>),
    For(std::time::Duration),
}

/// `/backfill oncall …`, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum OnCallArgs {
    /// Who is on call, for this tenant (or the channel's).
    Who(Option<String>),
    Override {
        rotation: String,
        user: String,
        from: When,
        to: When,
    },
    List,
    Cancel(String),
}

/// A user as Slack sends a mention in a command (`<@U123|ada>`), or a bare id.
fn user_id(word: &str) -> Option<String> {
    let inner = word
        .strip_prefix("<@")
        .and_then(|w| w.strip_suffix('>'))
        .map(|w| w.split('|').next().unwrap_or(w))
        .unwrap_or(word);
    match crate::domain::ids::Principal::parse(inner) {
        Ok(crate::domain::ids::Principal::User(u)) => Some(u),
        _ => None,
    }
}

fn when(word: &str, durations: bool) -> Option<When> {
    if word.eq_ignore_ascii_case("now") {
        return Some(When::Now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(word) {
        return Some(When::At(t.with_timezone(&Utc)));
    }
    match crate::config::parse_duration(word) {
        Ok(d) if durations && !d.is_zero() => Some(When::For(d)),
        _ => None,
    }
}

/// Parses the words after `oncall`.
pub fn parse(args: &[&str]) -> Result<OnCallArgs, String> {
    match args {
        [] => Ok(OnCallArgs::Who(None)),
        [w] if w.eq_ignore_ascii_case("overrides") => Ok(OnCallArgs::List),
        [w, id] if w.eq_ignore_ascii_case("cancel") => {
            Ok(OnCallArgs::Cancel(id.trim_matches('`').to_string()))
        }
        [w] if w.eq_ignore_ascii_case("cancel") => Err(
            "Which override? Usage: `/backfill oncall cancel <id>`; `/backfill oncall overrides` lists them with their ids.".into(),
        ),
        [w, rest @ ..] if w.eq_ignore_ascii_case("override") => {
            let [rotation, user, from, to] = rest else {
                return Err(format!(
                    "Usage: `{OVERRIDE_USAGE}`, e.g. `/backfill oncall override acme-primary @bo now 8h` or `… @bo 2026-12-24T18:00:00Z 2026-12-27T09:00:00Z`."
                ));
            };
            let Some(user) = user_id(user) else {
                return Err(format!(
                    "`{}` is not a person: mention them (`@bo`). Usage: `{OVERRIDE_USAGE}`.",
                    short(user)
                ));
            };
            let Some(from) = when(from, false) else {
                return Err(format!(
                    "`{}` is not a start: write `now` or an RFC 3339 time such as `2026-12-24T18:00:00Z`. Usage: `{OVERRIDE_USAGE}`.",
                    short(from)
                ));
            };
            let Some(to) = when(to, true).filter(|t| *t != When::Now) else {
                return Err(format!(
                    "`{}` is not an end: write a duration (`8h`, `2d`) or an RFC 3339 time. Usage: `{OVERRIDE_USAGE}`.",
                    short(to)
                ));
            };
            Ok(OnCallArgs::Override {
                rotation: rotation.trim_matches('`').to_string(),
                user,
                from,
                to,
            })
        }
        [tenant] => Ok(OnCallArgs::Who(Some(tenant.to_string()))),
        _ => Err(format!(
            "Usage: `/backfill oncall [tenant]`, `{OVERRIDE_USAGE}`, `/backfill oncall overrides` or `/backfill oncall cancel <id>`."
        )),
    }
}

/// What only the tenant's operators may do here (a refusal is audited
/// under `oncall_override` or `oncall_override_cancel`).
const OPERATORS_ONLY: &str = "change who is on call";

/// `/backfill oncall <tenant>`: who is on call for a tenant named, for
/// anyone who belongs to it as the App Home counts them (its operators and
/// stakeholders, and the people on its escalation path, rotations
/// included), wherever they ask.
pub async fn who_for(state: &AppState, tenant_id: &str, cmd: &SlashCommand) -> Value {
    let tenant = match super::tenancy::named(state, tenant_id) {
        Ok(tenant) => tenant,
        Err(why) => return ephemeral(&why),
    };
    let mut people = tenant.people();
    for tier in &state.config.escalation_for(&tenant.id).tiers {
        people.extend(crate::flows::oncall::anyone_on(state, tier).await);
    }
    match state.directory.is_among(&cmd.user_id, &people).await {
        Ok(true) => ephemeral(&crate::flows::oncall::who_is_on_call(state, &tenant.id).await),
        Ok(false) => ephemeral(&format!(
            ":no_entry: Who is on call for `{}` is for its operators, its stakeholders and the people on its escalation path. Ask one of its operators ({}).",
            tenant.id,
            state.directory.names(&tenant.operators).await
        )),
        Err(e) => {
            tracing::warn!(error = %e, "could not resolve user groups");
            ephemeral("I could not check your membership with Slack just now; try again in a moment.")
        }
    }
}

pub async fn run(state: &AppState, tenant: &Tenant, args: OnCallArgs, cmd: &SlashCommand) -> Value {
    match args {
        OnCallArgs::Who(_) => {
            ephemeral(&crate::flows::oncall::who_is_on_call(state, &tenant.id).await)
        }
        OnCallArgs::Override {
            rotation,
            user,
            from,
            to,
        } => set(state, tenant, rotation, user, from, to, cmd).await,
        OnCallArgs::List => list(state, tenant).await,
        OnCallArgs::Cancel(id) => cancel(state, tenant, &id, cmd).await,
    }
}

async fn set(
    state: &AppState,
    tenant: &Tenant,
    rotation: String,
    user: String,
    from: When,
    to: When,
    cmd: &SlashCommand,
) -> Value {
    if let Some(answer) =
        super::tenancy::operators_only(state, tenant, cmd, "oncall_override", OPERATORS_ONLY).await
    {
        return answer;
    }
    let ours = crate::flows::oncall::rotations_of(state, &tenant.id);
    if !ours.iter().any(|r| r.id == rotation) {
        let names: Vec<String> = ours.iter().map(|r| format!("`{}`", r.id)).collect();
        return ephemeral(&format!(
            ":grey_question: Tenant `{}`'s path names no rotation `{}`. {}",
            tenant.id,
            escape_slack(&short(&rotation)),
            if names.is_empty() {
                "Its path names no rotation at all.".to_string()
            } else {
                format!("Its rotations: {}.", names.join(", "))
            }
        ));
    }
    let now = state.clock.now();
    let start = match from {
        When::At(t) => t,
        _ => now,
    };
    let until = match to {
        When::At(t) => t,
        When::For(d) => start + chrono::Duration::from_std(d).unwrap_or_default(),
        When::Now => now,
    };
    let dedup_key = if cmd.trigger_id.is_empty() {
        format!(
            "oncall:{}:{rotation}:{user}:{}:{}",
            cmd.user_id,
            start.timestamp_millis(),
            until.timestamp_millis()
        )
    } else {
        format!("oncall:{}:{}:{rotation}", cmd.trigger_id, cmd.user_id)
    };
    let req = crate::flows::oncall::OverrideRequest {
        tenant: tenant.id.clone(),
        rotation: rotation.clone(),
        user: user.clone(),
        from: start,
        until,
        by: cmd.user_id.clone(),
        dedup_key,
    };
    match crate::flows::oncall::create_override(state, req).await {
        Ok(Ok((o, _))) => ephemeral(&format!(
            ":pager: {} is on call for `{}` from {} until {} instead of the shift (id `{}`). Cancel it with `/backfill oncall cancel {}`.",
            escape_slack(&state.directory.user_name(&o.user_id).await),
            escape_slack(&o.rotation_id),
            date_token(o.starts_at),
            date_token(o.ends_at),
            o.id,
            o.id
        )),
        Ok(Err(why)) => ephemeral(&format!(":warning: No override: {why}.")),
        Err(e) => {
            tracing::error!(error = %e, "could not store the override");
            ephemeral(":warning: The bot's store did not answer, so nothing changed. Try again in a moment.")
        }
    }
}

async fn list(state: &AppState, tenant: &Tenant) -> Value {
    let now = state.clock.now();
    let mut lines = Vec::new();
    for r in crate::flows::oncall::rotations_of(state, &tenant.id) {
        match state.store.overrides_ending_after(Some(&r.id), now).await {
            Ok(all) => {
                for o in all {
                    lines.push(format!(
                        "• `{}` {} on `{}` from {} until {}, set by {}",
                        o.id,
                        escape_slack(&state.directory.user_name(&o.user_id).await),
                        escape_slack(&o.rotation_id),
                        date_token(o.starts_at),
                        date_token(o.ends_at),
                        escape_slack(&state.directory.user_name(&o.created_by).await)
                    ));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not list overrides");
                return ephemeral(
                    ":warning: The bot's store did not answer. Try again in a moment.",
                );
            }
        }
    }
    if lines.is_empty() {
        return ephemeral(&format!(
            "No on-call overrides for tenant `{}`. `{OVERRIDE_USAGE}` sets one.",
            tenant.id
        ));
    }
    ephemeral(&format!(
        "*On-call overrides for tenant `{}`*\n{}\nCancel one with `/backfill oncall cancel <id>`.",
        tenant.id,
        crate::slack::limits::join_capped(&lines, "\n", 2_800, |n| format!("…and {n} more"))
    ))
}

async fn cancel(state: &AppState, tenant: &Tenant, id: &str, cmd: &SlashCommand) -> Value {
    if let Some(answer) =
        super::tenancy::operators_only(state, tenant, cmd, "oncall_override_cancel", OPERATORS_ONLY)
            .await
    {
        return answer;
    }
    let ours = crate::flows::oncall::rotations_of(state, &tenant.id);
    let found = match state.store.get_override(id).await {
        Ok(o) => o.filter(|o| ours.iter().any(|r| r.id == o.rotation_id)),
        Err(e) => {
            tracing::error!(error = %e, "could not read the override");
            return ephemeral(":warning: The bot's store did not answer. Try again in a moment.");
        }
    };
    let Some(o) = found else {
        return ephemeral(&format!(
            ":grey_question: No override `{}` in tenant `{}`. `/backfill oncall overrides` lists them with their ids.",
            escape_slack(&short(id)),
            tenant.id
        ));
    };
    if o.cancelled_at.is_some() || o.ends_at <= state.clock.now() {
        return ephemeral(&format!("The override `{}` has already ended.", o.id));
    }
    match crate::flows::oncall::cancel_override(state, &tenant.id, &o.id, &cmd.user_id).await {
        Ok(Some(_)) => ephemeral(&format!(
            ":pager: Cancelled the override `{}`: `{}` follows its shifts again.",
            o.id,
            escape_slack(&o.rotation_id)
        )),
        Ok(None) => ephemeral(&format!("The override `{}` has already ended.", o.id)),
        Err(e) => {
            tracing::error!(error = %e, "could not cancel the override");
            ephemeral(":warning: The bot's store did not answer, so the override stands. Try again in a moment.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oncall_takes_a_tenant_or_an_override_a_list_or_a_cancel() {
        assert_eq!(parse(&[]), Ok(OnCallArgs::Who(None)));
        assert_eq!(parse(&["acme"]), Ok(OnCallArgs::Who(Some("acme".into()))));
        assert_eq!(parse(&["overrides"]), Ok(OnCallArgs::List));
        assert_eq!(
            parse(&["cancel", "ab12cd34"]),
            Ok(OnCallArgs::Cancel("ab12cd34".into()))
        );
        assert_eq!(
            parse(&["override", "acme-primary", "<@U0BO|bo>", "now", "8h"]),
            Ok(OnCallArgs::Override {
                rotation: "acme-primary".into(),
                user: "U0BO".into(),
                from: When::Now,
                to: When::For(std::time::Duration::from_secs(8 * 3600)),
            })
        );
        let at = parse(&[
            "override",
            "r",
            "U0BO",
            "2026-12-24T18:00:00Z",
            "2026-12-27T09:00:00Z",
        ]);
        assert!(matches!(
            at,
            Ok(OnCallArgs::Override {
                from: When::At(_),
                to: When::At(_),
                ..
            })
        ));
        assert!(parse(&["override", "r", "bo", "now", "8h"])
            .unwrap_err()
            .contains("not a person"));
        assert!(parse(&["override", "r", "U0BO", "soon", "8h"])
            .unwrap_err()
            .contains("not a start"));
        assert!(parse(&["override", "r", "U0BO", "now", "now"])
            .unwrap_err()
            .contains("not an end"));
        assert!(parse(&["override", "r"]).unwrap_err().contains("Usage"));
    }
}
