//! The subcommands that look at or act on jobs: status, list, pause, resume,
//! extend-deadline. Errors are ephemeral and change nothing; another tenant's
//! job is answered exactly like an unknown one, so nothing leaks.

use super::grammar::{JobId, ListFilter};
use super::{ephemeral, tenancy, Command, SlashCommand};
use crate::config::Tenant;
use crate::context::AppState;
use crate::flows::alerts;
use crate::forecast::Calibration;
use crate::risk::{self, Assessment, JobState, RiskBand};
use crate::servo::{Job, ServoActionError, ServoError};
use crate::slack::render::date_token;
use crate::store::{Alert, AuditEntry};
use serde_json::{json, Value};

const UNREACHABLE: &str = ":warning: Servo is unreachable right now, so I cannot read or change jobs. Nothing was changed. Try again in a minute; the bot's `/readyz` shows when Servo is back.";

fn unknown_job(id: JobId, tenant: &Tenant) -> Value {
    ephemeral(&format!(
        ":grey_question: No job `{id}` in tenant `{}`. Check the id with `/backfill list all`.",
        tenant.id
    ))
}

fn servo_failed(e: &ServoError) -> Value {
    match e {
        ServoError::Unreachable(_) => ephemeral(UNREACHABLE),
        ServoError::Query(q) => {
            tracing::error!(error = %q, "Servo query failed");
            ephemeral(":warning: Servo answered with an error, so nothing was changed. The bot's operators can find the details in its log.")
        }
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
        // The refusal quotes the `--tenant` the user typed: escape it.
        Err(msg) => return ephemeral(&escape(&msg)),
    };
    match command {
        Command::Status(id) => status(state, tenant, id, cmd).await,
        Command::List(filter) => list(state, tenant, filter).await,
        Command::Review(days) => super::review::run(state, tenant, days).await,
        Command::Pause(id) => change(state, tenant, id, cmd, Change::Pause).await,
        Command::Resume(id) => change(state, tenant, id, cmd, Change::Resume).await,
        Command::ExtendDeadline {
            job,
            deadline,
            reason,
        } => match crate::flows::approvals::request(
            state,
            tenant,
            job,
            deadline,
            reason,
            &cmd.user_id,
            "slash command",
        )
        .await
        {
            Ok(text) | Err(text) => ephemeral(&text),
        },
        Command::Help | Command::Unknown(_) | Command::Invalid(_) => {
            ephemeral("This command is handled elsewhere.")
        }
    }
}

/// How accurate the forecast has been for the asset, once it has finished jobs to go by.
fn accuracy_note(c: Option<&Calibration>, asset: &str) -> Option<String> {
    let c = c?;
    let error = c.accuracy()?;
    let bias = c.bias_ratio();
    Some(format!(
        "Forecast accuracy for {asset}: off by a median {:.0}% of the time left over {} finished job(s){}",
        error * 100.0,
        c.pairs(),
        if (bias - 1.0).abs() >= 0.05 {
            format!("; corrected for jobs taking ×{bias:.2} what was forecast")
        } else {
            String::new()
        }
    ))
}

/// A link to the alert's message (and so its thread), when Slack shows one.
pub fn alert_link(alert: Option<&Alert>) -> Option<String> {
    let a = alert?;
    let (channel, ts) = (a.channel.as_ref()?, a.ts.as_ref()?);
    Some(format!(
        "<https://slack.com/archives/{channel}/p{}|Alert thread> in <#{channel}>",
        ts.replace('.', "")
    ))
}

/// The status card for `id`, as answered less than `commands.status_max_age`
/// ago with no job change since, or `None` (then [`run`] reads it afresh).
/// The tenant is resolved exactly as for a fresh answer.
pub async fn status_from_memory(
    state: &AppState,
    id: JobId,
    flag: Option<&str>,
    cmd: &SlashCommand,
) -> Option<bytes::Bytes> {
    let max_age = state.config.status_max_age;
    if max_age.is_zero() {
        return None;
    }
    let tenant = tenancy::resolve(state, &cmd.channel_id, &cmd.user_id, flag)
        .await
        .ok()?;
    state.status_cache.get(
        &tenant.id,
        id.0,
        state.clock.now(),
        max_age,
        crate::servo::writes(),
    )
}

async fn status(state: &AppState, tenant: &Tenant, id: JobId, _cmd: &SlashCommand) -> Value {
    // Taken before reading, so a change made meanwhile leaves this card stale.
    let (read_at, writes) = (state.clock.now(), crate::servo::writes());
    let (job, a, alert, calibration) = match crate::flows::assess::job(state, tenant, id).await {
        Ok(Some(x)) => x,
        Ok(None) => return unknown_job(id, tenant),
        Err(e) => return servo_failed(&e),
    };
    let card = json!({
        "asset": job.asset_name,
        "job_id": job.id.to_string(),
        "state": job.state.as_str().replace('_', " "),
        "completed": job.completed_partitions,
        "failed": job.failed_partitions,
        "skipped": job.skipped_partitions,
        "total": job.total_partitions,
        "emoji": a.band.emoji(),
        "band_label": band_label(a.band),
        "eta": alerts::eta_text(&job, &a, state.clock.now()),
        "deadline": job.sla_deadline_at.map(date_token).unwrap_or_else(|| "none (no SLA)".into()),
        "severity": alerts::severity_text(a.eta, job.sla_deadline_at, state.clock.now(), a.severity),
        "priority": job.priority,
        "tier": a.tier.label(),
        "bottlenecks": a
            .bottlenecks
            .iter()
            .map(|b| b.describe())
            .chain(alerts::disagreement(&job, state.clock.now()))
            .collect::<Vec<_>>(),
        "forecast_note": accuracy_note(calibration.as_ref(), &job.asset_name),
        "alert_link": alert_link(alert.as_ref()),
        "tenant": tenant.id,
        "runbook_url": state.config.runbook_url,
    });
    match state.templates.render("job_card", &card) {
        Ok(answer) => {
            if !state.config.status_max_age.is_zero() {
                if let Ok(body) = serde_json::to_vec(&answer) {
                    state.status_cache.put(
                        &tenant.id,
                        id.0,
                        read_at,
                        writes,
                        state.config.status_max_age,
                        body.into(),
                    );
                }
            }
            answer
        }
        Err(e) => {
            tracing::error!(error = %e, "job card failed to render");
            ephemeral(&format!(
                "{}: {} ({})",
                escape(&job.asset_name),
                job.state.as_str(),
                band_label(a.band)
            ))
        }
    }
}

fn band_label(band: RiskBand) -> &'static str {
    match band {
        RiskBand::NoSla => "No SLA",
        RiskBand::Unknown => "ETA unknown",
        b => b.label(),
    }
}

/// How many job lines a list shows; Slack allows 50 blocks of 3000 characters.
const LIST_MAX_JOBS: usize = 100;
const CHUNK_CHARS: usize = 2_800;

async fn list(state: &AppState, tenant: &Tenant, filter: ListFilter) -> Value {
    let mut jobs = match state.servo.active_jobs(&tenant.id, false).await {
        Ok(j) => j,
        Err(e) => return servo_failed(&e),
    };
    let thresholds = state.config.risk.thresholds();
    let now = state.clock.now();
    jobs.retain(|j| match filter {
        ListFilter::All | ListFilter::AtRisk => true,
        ListFilter::Running => matches!(j.state, JobState::Running | JobState::Resuming),
        ListFilter::Paused => j.state == JobState::Paused,
    });
    let mut rows: Vec<(Job, Assessment)> = jobs
        .into_iter()
        .map(|j| {
            let a = risk::assess(&j.snapshot(), now, &thresholds, None);
            (j, a)
        })
        .filter(|(_, a)| filter != ListFilter::AtRisk || a.band.is_at_risk())
        .collect();
    rows.sort_by(|(ja, a), (jb, b)| {
        Assessment::riskiest_first(a, b)
            .then(ja.sla_deadline_at.cmp(&jb.sla_deadline_at))
            .then(jb.priority.cmp(&ja.priority))
    });
    let total = rows.len();
    let shown = total.min(LIST_MAX_JOBS);
    let lines: Vec<String> = rows
        .iter()
        .take(shown)
        .map(|(j, a)| {
            format!(
                "{} *{}* `{}` {} · {}/{} · ETA {} · due {} · {}",
                a.band.emoji(),
                escape(&j.asset_name),
                j.id,
                j.state.as_str().replace('_', " "),
                j.completed_partitions,
                j.total_partitions,
                a.eta.map(date_token).unwrap_or_else(|| "?".into()),
                j.sla_deadline_at
                    .map(date_token)
                    .unwrap_or_else(|| "no SLA".into()),
                band_label(a.band)
            )
        })
        .collect();
    let mut chunks: Vec<String> = Vec::new();
    for line in lines {
        match chunks.last_mut() {
            Some(c) if c.len() + line.len() < CHUNK_CHARS => {
                c.push('\n');
                c.push_str(&line);
            }
            _ => chunks.push(line),
        }
    }
    let what = match filter {
        ListFilter::All => "active jobs",
        ListFilter::Running => "running jobs",
        ListFilter::Paused => "paused jobs",
        ListFilter::AtRisk => "at-risk jobs",
    };
    let title = format!("{total} {what} in tenant {}, riskiest first", tenant.id);
    if chunks.is_empty() {
        chunks.push(format!("No {what}."));
    }
    let footer = if total > shown {
        format!(
            "{} more not shown. Narrow it down with `/backfill list at-risk`, `running` or `paused`.",
            total - shown
        )
    } else {
        "`/backfill status <job_id>` shows one job in full.".to_string()
    };
    state
        .templates
        .render(
            "job_list",
            &json!({ "title": title, "chunks": chunks, "footer": footer }),
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "job list failed to render");
            ephemeral(&title)
        })
}

/// Slack's control characters in text that came from elsewhere.
fn escape(s: &str) -> String {
    crate::slack::render::escape_slack(s)
}

#[derive(Clone, Copy)]
enum Change {
    Pause,
    Resume,
}

async fn change(
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
            escape(&job.asset_name),
            job.id,
            job.completed_partitions,
            job.total_partitions
        ),
        Change::Resume => format!(
            ":arrow_forward: <@{}> resumed *{}* (`{}`); Servo's executor picks it up from partition {} of {}.",
            cmd.user_id,
            escape(&job.asset_name),
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
        if let Err(e) = alerts::reply_in_thread(state, alert, key, &line).await {
            tracing::error!(error = %e, "could not note the change in the alert's thread");
        }
        if let Some(link) = alert_link(Some(alert)) {
            text.push_str(&format!("\n{link}"));
        }
    }
    json!({ "response_type": "in_channel", "text": text })
}
