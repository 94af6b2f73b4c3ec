//! The repair pass, after every poll: puts back what a crash between two
//! steps of a flow can leave undone (issue 20), so nothing is lost for good.
//! - An active escalation with no pending step (the bot stopped between
//!   starting it and scheduling its first step, or between cancelling a step
//!   and scheduling the one *Escalate now* brought forward) gets its step,
//!   due now. Firing it twice is harmless: a step pages only from where the
//!   escalation stands, under outbox keys that send each page once.
//! - A resolved alert whose resolution edit was never written gets it.
//! - A pending extension request with no post or no expiry gets them.
//! - An extension approved but never written to Servo is written (or
//!   recorded as failed, with why); one already in Servo is marked applied.
//! - A pause or a recreate begun in Servo and never recorded (an intent
//!   left `applying`) is finished from what Servo shows, or recorded as
//!   refused with why, and said in the alert's thread.
//! - (In `alerts::reconcile`) an open alert whose post was never written
//!   gets it.
//!
//! Each repair is logged and counted in `servo_sla_bot_repairs_total{what}`.
//! Work younger than [`SETTLE`] is left alone: its flow may still be running.

use crate::context::AppState;
use chrono::{DateTime, Duration, Utc};

/// How long a flow may take between its steps before its half-done work
/// counts as abandoned.
pub const SETTLE: Duration = Duration::seconds(30);
/// How far back resolutions are checked for their edit.
const RESOLVED_WITHIN: Duration = Duration::days(1);

/// What one pass repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    pub escalation_steps: usize,
    pub resolution_edits: usize,
    pub extensions: usize,
    pub requests: usize,
}

/// The part of the pass that runs before a poll: pauses and recreates
/// begun in Servo and never recorded are finished first, so the poll sees
/// an alert following its recreated job (rather than resolving it for the
/// cancelled one and opening a second alert for the new one). Returns how
/// many were finished.
pub async fn before_poll(state: &AppState, now: DateTime<Utc>) -> usize {
    match crate::flows::mitigations::finish_intents(state, now - SETTLE).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "repair: unfinished pauses and recreates not checked");
            0
        }
    }
}

/// Runs the pass; a failure is logged and tried again at the next poll.
pub async fn run(state: &AppState, now: DateTime<Utc>) -> Repaired {
    let mut done = Repaired::default();
    match escalation_steps(state, now).await {
        Ok(n) => done.escalation_steps = n,
        Err(e) => tracing::warn!(error = %e, "repair: escalation steps not checked"),
    }
    match resolution_edits(state, now).await {
        Ok(n) => done.resolution_edits = n,
        Err(e) => tracing::warn!(error = %e, "repair: resolution edits not checked"),
    }
    match crate::flows::approvals::repair_requests(state, now - SETTLE).await {
        Ok(n) => done.requests = n,
        Err(e) => tracing::warn!(error = %e, "repair: extension requests not checked"),
    }
    match crate::flows::approvals::apply_approved(state, now - SETTLE).await {
        Ok(n) => done.extensions = n,
        Err(e) => tracing::warn!(error = %e, "repair: approved extensions not checked"),
    }
    done
}

async fn escalation_steps(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let stalled = state.store.escalations_without_step(now - SETTLE).await?;
    for esc in &stalled {
        tracing::warn!(alert = %esc.alert_id, tier = esc.tier, epoch = esc.epoch, "repair: an active escalation had no pending step; scheduling it");
        crate::flows::escalation::schedule_repair_step(state, esc, now).await?;
        state.metrics.inc(
            "servo_sla_bot_repairs_total",
            &[("what", "escalation_step")],
        );
    }
    Ok(stalled.len())
}

async fn resolution_edits(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let missing = state
        .store
        .resolved_without_edit(now - RESOLVED_WITHIN, now - SETTLE)
        .await?;
    let mut repaired = 0;
    for alert in &missing {
        let Some(view) = alert
            .shown
            .clone()
            .and_then(|v| serde_json::from_value::<crate::flows::alert_view::AlertView>(v).ok())
        else {
            continue;
        };
        tracing::warn!(alert = %alert.id, "repair: a resolved alert had no resolution edit; writing it");
        let ex = crate::flows::alert_view::extras(state, &alert.id).await?;
        let how = alert
            .resolution
            .clone()
            .unwrap_or_else(|| "Resolved.".into());
        let at = alert.resolved_at.unwrap_or(now);
        crate::flows::alerts::resolved_edit(state, alert, view, &ex, &how, at).await?;
        state.metrics.inc(
            "servo_sla_bot_repairs_total",
            &[("what", "resolution_edit")],
        );
        repaired += 1;
    }
    Ok(repaired)
}
