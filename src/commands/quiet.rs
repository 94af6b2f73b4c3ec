//! `/backfill silence <job|asset|tenant> <duration|until RFC 3339> [reason]
//! [--through-breach]`, `/backfill silences` and `/backfill unsilence <id>`
//! (issue 35): parsed here, decided in [`crate::flows::quiet`].

use super::{ephemeral, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::MIN_PREFIX;
use crate::domain::job_id::{short, JobRef};
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::flows::silences::SilenceRequest;
use crate::store::Scope;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// When a silence ends, as typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Until {
    For(std::time::Duration),
    At(DateTime<Utc>),
}

/// `/backfill silence …`, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct SilenceArgs {
    pub target: String,
    pub until: Until,
    pub reason: Option<String>,
    pub through_breach: bool,
}

pub const SILENCE_USAGE: &str =
    "/backfill silence <job|asset|tenant> <duration|until RFC 3339> [reason] [--through-breach]";

/// Parses the words after `silence`.
pub fn parse_silence(args: &[&str]) -> Result<SilenceArgs, String> {
    let through_breach = args.contains(&"--through-breach");
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|w| *w != "--through-breach")
        .collect();
    let Some(target) = args.first() else {
        return Err(format!(
            "What should be silenced? Usage: `{SILENCE_USAGE}`, e.g. `/backfill silence orders_daily 4h upstream outage`."
        ));
    };
    let (until, rest) = match args.get(1).copied() {
        None => {
            return Err(format!(
                "For how long? Usage: `{SILENCE_USAGE}`: a duration such as `4h` or `until 2026-12-08T09:00:00Z`."
            ))
        }
        Some(w) if w.eq_ignore_ascii_case("until") => match args.get(2) {
            Some(t) => (
                Until::At(rfc3339(t).map_err(|e| format!("{e} Usage: `{SILENCE_USAGE}`."))?),
                &args[3..],
            ),
            None => return Err("`until` needs a time, e.g. `until 2026-12-08T09:00:00Z`.".into()),
        },
        Some(w) => match crate::config::parse_duration(w) {
            Ok(d) if !d.is_zero() => (Until::For(d), &args[2..]),
            _ => match rfc3339(w) {
                Ok(t) => (Until::At(t), &args[2..]),
                Err(_) => {
                    return Err(format!(
                        "`{}` is neither a duration (`30m`, `4h`, `2d`) nor `until` and an RFC 3339 time. Usage: `{SILENCE_USAGE}`.",
                        short(w)
                    ))
                }
            },
        },
    };
    let reason = rest.join(" ");
    Ok(SilenceArgs {
        target: target.trim_matches('`').to_string(),
        until,
        reason: (!reason.is_empty()).then_some(reason),
        through_breach,
    })
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "`{}` is not an RFC 3339 time such as `2026-12-08T09:00:00Z`.",
                short(s)
            )
        })
}

/// Only the tenant's operators silence, lift silences and set maintenance
/// windows; a refusal is audited.
async fn operator(
    state: &AppState,
    tenant: &Tenant,
    cmd: &SlashCommand,
    action: &str,
) -> Option<Value> {
    let what = match action {
        "silence" => "silence alerts",
        "maintenance" => "set maintenance windows",
        "maintenance_cancel" => "cancel maintenance windows",
        _ => "lift silences",
    };
    super::tenancy::operators_only(state, tenant, cmd, action, what).await
}

/// The asset a window is set for, as typed: a glob (`*`, `?`) as it is; a
/// name as Servo spells it when one of the tenant's running jobs has it in
/// another case. Also what the answer says of it: how many running jobs a
/// glob covers now, or that no running job has that asset (the window still
/// covers its jobs when they start: planned work comes before its jobs).
async fn window_asset(state: &AppState, tenant: &Tenant, target: String) -> (String, String) {
    let jobs = match state.servo.active_jobs(&tenant.id, false).await {
        Ok(jobs) => jobs,
        Err(_) => {
            return (
                target,
                " (Servo did not answer, so the asset's name was not checked.)".into(),
            )
        }
    };
    if target.contains(['*', '?']) {
        let n = jobs
            .iter()
            .filter(|j| crate::domain::text::glob_match(&target, &j.asset_name))
            .count();
        let found = if n == 0 {
            format!(
                " No running job's asset matches `{}` now; it covers them when they start.",
                escape_slack(&target)
            )
        } else {
            format!(
                " It covers {} now.",
                crate::domain::text::count(n, "running job", "running jobs")
            )
        };
        return (target, found);
    }
    match jobs
        .iter()
        .find(|j| j.asset_name.eq_ignore_ascii_case(&target))
    {
        Some(job) => (job.asset_name.clone(), String::new()),
        None => {
            let found = format!(
                " No running job has the asset `{}` now (a name as Servo spells it, or a glob such as `orders_*`); the window covers its jobs when they start.",
                escape_slack(&target)
            );
            (target, found)
        }
    }
}

/// What a silence's target names: the tenant, a job (id or prefix), or an
/// asset (by name, its later jobs too).
async fn resolve(
    state: &AppState,
    tenant: &Tenant,
    target: &str,
) -> Result<(Scope, String), Value> {
    if target == tenant.id {
        return Ok((Scope::Tenant, tenant.id.clone()));
    }
    let named =
        JobRef::parse(target).map_err(|e| ephemeral(&format!(":warning: {}", escape_slack(&e))))?;
    let text = match named {
        JobRef::Id(id) => return Ok((Scope::Job, id.to_string())),
        JobRef::Named(text) => text,
    };
    let jobs = state
        .servo
        .active_jobs(&tenant.id, false)
        .await
        .map_err(|e| super::answers::servo_failed(&e))?;
    let lower = text.to_ascii_lowercase();
    if JobRef::looks_like_prefix(&lower) && lower.len() >= MIN_PREFIX {
        let by_prefix: Vec<_> = jobs
            .iter()
            .filter(|j| j.id.to_string().starts_with(&lower))
            .collect();
        match by_prefix.as_slice() {
            [one] => return Ok((Scope::Job, one.id.to_string())),
            [] => {}
            _ => {
                return Err(ephemeral(&format!(
                    ":warning: `{}` starts the ids of several jobs; give more of the id. Nothing was silenced.",
                    escape_slack(&short(&text))
                )))
            }
        }
    }
    if let Some(job) = jobs
        .iter()
        .find(|j| j.asset_name.eq_ignore_ascii_case(&text))
    {
        return Ok((Scope::Asset, job.asset_name.clone()));
    }
    let alerts = state
        .store
        .list_open_alerts(Some(&tenant.id))
        .await
        .unwrap_or_default();
    if let Some(a) = alerts
        .iter()
        .find(|a| a.asset_name().eq_ignore_ascii_case(&text))
    {
        return Ok((Scope::Asset, a.asset_name()));
    }
    Err(ephemeral(&format!(
        ":grey_question: `{}` is not tenant `{}`, nor the id of one of its jobs, nor an asset with an active job. Nothing was silenced. `/backfill list all` shows the active jobs.",
        escape_slack(&short(&text)),
        tenant.id
    )))
}

pub async fn silence(
    state: &AppState,
    tenant: &Tenant,
    args: SilenceArgs,
    cmd: &SlashCommand,
) -> Value {
    if let Some(answer) = operator(state, tenant, cmd, "silence").await {
        return answer;
    }
    let (scope, target) = match resolve(state, tenant, &args.target).await {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let now = state.clock.now();
    let until = match args.until {
        Until::At(t) => t,
        Until::For(d) => now + chrono::Duration::from_std(d).unwrap_or_default(),
    };
    let dedup_key = if cmd.trigger_id.is_empty() {
        format!(
            "cmd:{}:{}:{}:{target}:{}",
            cmd.user_id,
            tenant.id,
            scope.as_str(),
            until.timestamp_millis()
        )
    } else {
        // One command's retries make one silence; another target is another.
        format!(
            "cmd:{}:{}:{}:{target}",
            cmd.trigger_id,
            cmd.user_id,
            scope.as_str()
        )
    };
    let req = SilenceRequest {
        tenant: tenant.id.clone(),
        scope,
        target: target.clone(),
        until,
        reason: args.reason,
        by: cmd.user_id.clone(),
        through_breach: args.through_breach,
        dedup_key,
    };
    match crate::flows::silences::silence(state, req).await {
        Ok(Ok((s, created))) => ephemeral(&format!(
            ":mute: {} {} *{}* until {} (id `{}`){}. Its alerts still update; nothing pages{}. Lift it with `/backfill unsilence {}`.",
            if created { "Silenced" } else { "Already silenced:" },
            scope.as_str(),
            escape_slack(&target),
            date_token(s.ends_at),
            s.id,
            s.reason.as_deref().map(|r| format!(": {}", escape_slack(r))).unwrap_or_default(),
            if s.through_breach { ", not even a breach" } else { " unless a job breaches its deadline" },
            s.id
        )),
        Ok(Err(refused)) => ephemeral(&format!(":warning: Not silenced: {refused}.")),
        Err(e) => {
            tracing::error!(error = %e, "could not silence");
            ephemeral(":warning: The bot's store did not answer, so nothing was silenced. Try again in a moment.")
        }
    }
}

pub async fn list(state: &AppState, tenant: &Tenant) -> Value {
    match state
        .store
        .active_silences(Some(&tenant.id), state.clock.now())
        .await
    {
        Ok(all) if all.is_empty() => ephemeral(&format!(
            "No silences in force for tenant `{}`. `{SILENCE_USAGE}` sets one.",
            tenant.id
        )),
        Ok(all) => {
            let lines: Vec<String> = all.iter().map(crate::flows::quiet::silence_line).collect();
            ephemeral(&format!(
                "*Silences in force for tenant `{}`*\n{}\nLift one with `/backfill unsilence <id>`.",
                tenant.id,
                crate::slack::limits::join_capped(&lines, "\n", 2_800, |n| format!("…and {n} more"))
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not list silences");
            ephemeral(":warning: The bot's store did not answer. Try again in a moment.")
        }
    }
}

pub async fn unsilence(state: &AppState, tenant: &Tenant, id: &str, cmd: &SlashCommand) -> Value {
    if let Some(answer) = operator(state, tenant, cmd, "silence_end").await {
        return answer;
    }
    let id = id.trim_matches('`');
    let found = match state.store.get_silence(id).await {
        Ok(s) => s.filter(|s| s.tenant_id == tenant.id),
        Err(e) => {
            tracing::error!(error = %e, "could not read the silence");
            return ephemeral(":warning: The bot's store did not answer. Try again in a moment.");
        }
    };
    let Some(s) = found else {
        return ephemeral(&format!(
            ":grey_question: No silence `{}` in tenant `{}`. `/backfill silences` lists them with their ids.",
            escape_slack(&short(id)),
            tenant.id
        ));
    };
    if s.ended_at.is_some() || s.ends_at <= state.clock.now() {
        return ephemeral(&format!("The silence `{}` has already ended.", s.id));
    }
    match crate::flows::silences::end_silence(state, &s.id, Some(&cmd.user_id)).await {
        Ok(Some(_)) => ephemeral(&format!(
            ":bell: Lifted the silence `{}` on {} *{}*. Jobs still at risk page again from the first tier.",
            s.id,
            s.scope.as_str(),
            escape_slack(&s.target)
        )),
        Ok(None) => ephemeral(&format!("The silence `{}` has already ended.", s.id)),
        Err(e) => {
            tracing::error!(error = %e, "could not end the silence");
            ephemeral(":warning: The bot's store did not answer, so the silence stands. Try again in a moment.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_takes_a_target_a_duration_or_until_a_reason_and_the_flag() {
        let a =
            parse_silence(&["orders_daily", "4h", "vendor", "outage", "--through-breach"]).unwrap();
        assert_eq!(a.target, "orders_daily");
        assert_eq!(
            a.until,
            Until::For(std::time::Duration::from_secs(4 * 3600))
        );
        assert_eq!(a.reason.as_deref(), Some("vendor outage"));
        assert!(a.through_breach);
        let b = parse_silence(&["acme", "until", "2026-12-08T09:00:00Z"]).unwrap();
        assert_eq!(b.until, Until::At("2026-12-08T09:00:00Z".parse().unwrap()));
        assert!(!b.through_breach && b.reason.is_none());
        assert!(parse_silence(&[])
            .unwrap_err()
            .contains("What should be silenced"));
        assert!(parse_silence(&["acme"])
            .unwrap_err()
            .contains("For how long"));
        assert!(parse_silence(&["acme", "soon"])
            .unwrap_err()
            .contains("neither a duration"));
        assert!(parse_silence(&["acme", "until", "tomorrow"])
            .unwrap_err()
            .contains("RFC 3339"));
    }
}

/// `/backfill maintenance …`, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum MaintenanceArgs {
    List,
    Cancel(String),
    Open {
        target: String,
        /// `None`: now.
        from: Option<DateTime<Utc>>,
        to: Until,
        reason: Option<String>,
    },
}

pub const MAINTENANCE_USAGE: &str =
    "/backfill maintenance <tenant|asset> <now|RFC 3339> <RFC 3339|duration> [reason]";

pub fn parse_maintenance(args: &[&str]) -> Result<MaintenanceArgs, String> {
    match args {
        [w] if w.eq_ignore_ascii_case("list") => Ok(MaintenanceArgs::List),
        [w, id] if w.eq_ignore_ascii_case("cancel") => Ok(MaintenanceArgs::Cancel(id.to_string())),
        [w, ..] if w.eq_ignore_ascii_case("cancel") => {
            Err("Which window? Usage: `/backfill maintenance cancel <id>`; `/backfill maintenance list` shows the ids.".into())
        }
        [target, from, to, rest @ ..] => {
            let from = if from.eq_ignore_ascii_case("now") {
                None
            } else {
                Some(rfc3339(from).map_err(|e| format!("{e} Usage: `{MAINTENANCE_USAGE}`."))?)
            };
            let to = match crate::config::parse_duration(to) {
                Ok(d) if !d.is_zero() => Until::For(d),
                _ => Until::At(rfc3339(to).map_err(|_| {
                    format!(
                        "`{}` is neither a duration (`3h`) nor an RFC 3339 time. Usage: `{MAINTENANCE_USAGE}`.",
                        short(to)
                    )
                })?),
            };
            let reason = rest.join(" ");
            Ok(MaintenanceArgs::Open {
                target: target.trim_matches('`').to_string(),
                from,
                to,
                reason: (!reason.is_empty()).then_some(reason),
            })
        }
        _ => Err(format!(
            "Usage: `{MAINTENANCE_USAGE}`, `/backfill maintenance list` or `/backfill maintenance cancel <id>`, e.g. `/backfill maintenance acme now 3h warehouse upgrade`."
        )),
    }
}

pub async fn maintenance(
    state: &AppState,
    tenant: &Tenant,
    args: MaintenanceArgs,
    cmd: &SlashCommand,
) -> Value {
    let now = state.clock.now();
    match args {
        MaintenanceArgs::List => {
            let windows = match state
                .store
                .windows_ending_after(Some(&tenant.id), now)
                .await
            {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "could not list maintenance windows");
                    return ephemeral(
                        ":warning: The bot's store did not answer. Try again in a moment.",
                    );
                }
            };
            let mut lines: Vec<String> = windows
                .iter()
                .map(|w| {
                    format!(
                        "• `{}` {} *{}* from {} to {} by <@{}>{}",
                        w.id,
                        w.scope.as_str(),
                        escape_slack(&w.target),
                        date_token(w.starts_at),
                        date_token(w.ends_at),
                        w.created_by,
                        w.reason
                            .as_deref()
                            .map(|r| format!(": {}", escape_slack(r)))
                            .unwrap_or_default()
                    )
                })
                .collect();
            for m in state
                .config
                .quiet
                .maintenance
                .iter()
                .filter(|m| m.tenant == tenant.id)
            {
                let when = match &m.when {
                    crate::config::quiet::When::Once { from, to } => {
                        format!("from {} to {}", date_token(*from), date_token(*to))
                    }
                    crate::config::quiet::When::Weekly { at, length, tz, .. } => format!(
                        "weekly at {} {} for {}",
                        at.format("%H:%M"),
                        tz,
                        crate::domain::text::duration_words(
                            chrono::Duration::from_std(*length).unwrap_or_default()
                        )
                    ),
                };
                lines.push(format!(
                    "• (config) {} {when}",
                    if m.assets.is_empty() {
                        "every asset".to_string()
                    } else {
                        escape_slack(&m.assets.join(", "))
                    }
                ));
            }
            if lines.is_empty() {
                return ephemeral(&format!(
                    "No maintenance windows ahead for tenant `{}`.",
                    tenant.id
                ));
            }
            ephemeral(&format!(
                "*Maintenance windows of tenant `{}`*\n{}",
                tenant.id,
                crate::slack::limits::join_capped(&lines, "\n", 2_800, |n| format!(
                    "…and {n} more"
                ))
            ))
        }
        MaintenanceArgs::Cancel(id) => {
            if let Some(answer) = operator(state, tenant, cmd, "maintenance_cancel").await {
                return answer;
            }
            let id = id.trim_matches('`');
            match state.store.get_window(id).await {
                Ok(Some(w)) if w.tenant_id == tenant.id => {}
                Ok(_) => {
                    return ephemeral(&format!(
                        ":grey_question: No maintenance window `{}` in tenant `{}`. `/backfill maintenance list` shows them.",
                        escape_slack(&short(id)),
                        tenant.id
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not read the window");
                    return ephemeral(":warning: The bot's store did not answer. Try again in a moment.");
                }
            }
            match crate::flows::silences::cancel_window(state, id, &cmd.user_id).await {
                Ok(Some(_)) => ephemeral(&format!(
                    ":bell: Cancelled the maintenance window `{id}`; its jobs page as usual again."
                )),
                Ok(None) => ephemeral(&format!(
                    "The maintenance window `{id}` was cancelled already."
                )),
                Err(e) => {
                    tracing::error!(error = %e, "could not cancel the window");
                    ephemeral(":warning: The bot's store did not answer, so the window stands. Try again in a moment.")
                }
            }
        }
        MaintenanceArgs::Open {
            target,
            from,
            to,
            reason,
        } => {
            if let Some(answer) = operator(state, tenant, cmd, "maintenance").await {
                return answer;
            }
            let (scope, target, found) = if target == tenant.id {
                (Scope::Tenant, tenant.id.clone(), String::new())
            } else {
                let (target, found) = window_asset(state, tenant, target).await;
                (Scope::Asset, target, found)
            };
            let from = from.unwrap_or(now);
            let to = match to {
                Until::At(t) => t,
                Until::For(d) => from + chrono::Duration::from_std(d).unwrap_or_default(),
            };
            if to <= from || to <= now {
                return ephemeral(
                    ":warning: Not set: the window must end after it starts, and in the future.",
                );
            }
            let max =
                chrono::Duration::from_std(state.config.quiet.silence_max).unwrap_or_default();
            if to - from > max {
                return ephemeral(&format!(
                    ":warning: Not set: a window lasts at most {} (`silences.max_duration`).",
                    crate::domain::text::duration_words(max)
                ));
            }
            let dedup_key = format!(
                "cmd:{}:{}:{}:{target}:{}",
                cmd.trigger_id,
                cmd.user_id,
                scope.as_str(),
                from.timestamp_millis()
            );
            let req = crate::flows::silences::WindowRequest {
                tenant: tenant.id.clone(),
                scope,
                target: target.clone(),
                from,
                to,
                reason,
                by: cmd.user_id.clone(),
                dedup_key,
            };
            match crate::flows::silences::open_window(state, req).await {
                Ok((w, _)) => ephemeral(&format!(
                    ":construction: Maintenance window `{}` for {} *{}* from {} to {}: nothing of it pages, then it settles for {} before anything does.{found} `/backfill maintenance cancel {}` ends it.",
                    w.id,
                    scope.as_str(),
                    escape_slack(&target),
                    date_token(w.starts_at),
                    date_token(w.ends_at),
                    crate::domain::text::duration_words(chrono::Duration::from_std(crate::config::quiet::DEFAULT_SETTLE).unwrap_or_default()),
                    w.id
                )),
                Err(e) => {
                    tracing::error!(error = %e, "could not set the window");
                    ephemeral(":warning: The bot's store did not answer, so no window was set. Try again in a moment.")
                }
            }
        }
    }
}
