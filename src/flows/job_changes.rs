//! `/backfill pause` and `/backfill resume`, decided: the operator check,
//! the change to Servo, its audit entry (whatever the outcome), and the
//! note in the open alert's thread. The command decodes and answers; this
//! flow decides and says what happened as a [`ChangeOutcome`].

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::job_id::JobId;
use crate::domain::text::escape_slack;
use crate::servo::{Job, ServoActionError, ServoError};
use crate::store::{Alert, AuditEntry};
use serde_json::json;

/// Which way a job changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobChange {
    Pause,
    Resume,
}

impl JobChange {
    /// The audit log's action name, and the verb an answer uses.
    pub fn action(self) -> &'static str {
        match self {
            JobChange::Pause => "pause",
            JobChange::Resume => "resume",
        }
    }
}

/// What came of a change asked for by a slash command.
pub enum ChangeOutcome {
    /// The asker is not among the tenant's operators (audited).
    NotOperator,
    /// Slack could not say whether the asker is an operator; nothing changed.
    MembershipUnknown,
    /// No such job in the tenant (audited).
    UnknownJob,
    /// Servo refused the change in the job's state (audited).
    Invalid(String),
    /// The job changed while the bot worked on it (audited).
    Conflict,
    /// Servo failed before the change was committed: nothing changed (audited).
    ServoFailed(ServoError),
    /// The connection to Servo was lost at the commit: the change may have
    /// been made or not (audited as `unconfirmed`).
    Unconfirmed,
    /// Done (audited): the line the thread got, and the alert it went to.
    Done {
        line: String,
        alert: Option<Box<Alert>>,
    },
}

/// Pauses or resumes job `id` of `tenant` for `user`, asked in `channel`.
pub async fn change(
    state: &AppState,
    tenant: &Tenant,
    id: JobId,
    user: &str,
    channel: &str,
    what: JobChange,
) -> ChangeOutcome {
    let now = state.clock.now();
    let action = what.action();
    let record = |outcome: String| {
        let entry = AuditEntry {
            at: now,
            tenant_id: Some(tenant.id.clone()),
            actor: user.to_string(),
            action: action.into(),
            subject: Some(id.to_string()),
            outcome,
            detail: Some(json!({ "via": "slash command", "channel": channel })),
        };
        async move {
            if let Err(e) = state.store.audit(&entry).await {
                tracing::error!(error = %e, "could not write the audit log");
            }
        }
    };
    match state.directory.is_among(user, &tenant.operators).await {
        Ok(true) => {}
        Ok(false) => {
            record("refused: not an operator".into()).await;
            return ChangeOutcome::NotOperator;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check operator membership");
            return ChangeOutcome::MembershipUnknown;
        }
    }
    let result = match what {
        JobChange::Pause => state.servo.pause(&tenant.id, id.0, now).await,
        JobChange::Resume => state.servo.resume(&tenant.id, id.0, now).await,
    };
    let job = match result {
        Ok(job) => job,
        Err(ServoActionError::NotFound) => {
            record("refused: unknown job".into()).await;
            return ChangeOutcome::UnknownJob;
        }
        Err(ServoActionError::InvalidState { message, .. }) => {
            record(format!("refused: {message}")).await;
            return ChangeOutcome::Invalid(message);
        }
        Err(ServoActionError::VersionConflict) => {
            record("refused: job changed meanwhile".into()).await;
            return ChangeOutcome::Conflict;
        }
        Err(ServoActionError::Unconfirmed(e)) => {
            record(format!("unconfirmed: {e}")).await;
            return ChangeOutcome::Unconfirmed;
        }
        Err(ServoActionError::Servo(e)) => {
            record(format!("failed: {e}")).await;
            return ChangeOutcome::ServoFailed(e);
        }
    };
    record("ok".into()).await;
    let line = done_line(user, &job, what);
    let alert = state
        .store
        .open_alert_for_job(&tenant.id, &id.to_string())
        .await
        .ok()
        .flatten();
    if let Some(alert) = &alert {
        let key = format!("alert:{}:{action}:v{}", alert.id, job.version);
        if let Err(e) = crate::flows::thread::reply_in_thread(state, alert, key, &line).await {
            tracing::error!(error = %e, "could not note the change in the alert's thread");
        }
    }
    ChangeOutcome::Done {
        line,
        alert: alert.map(Box::new),
    }
}

fn done_line(user: &str, job: &Job, what: JobChange) -> String {
    match what {
        JobChange::Pause => format!(
            ":double_vertical_bar: <@{user}> paused *{}* (`{}`) at partition {} of {}; the partition in flight finishes first.",
            escape_slack(&job.asset_name),
            job.id,
            job.completed_partitions,
            job.total_partitions
        ),
        JobChange::Resume => format!(
            ":arrow_forward: <@{user}> resumed *{}* (`{}`); Servo's executor picks it up from partition {} of {}.",
            escape_slack(&job.asset_name),
            job.id,
            job.completed_partitions,
            job.total_partitions
        ),
    }
}
