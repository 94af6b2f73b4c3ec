//! The two decisions people make about a deadline extension: asking for
//! one (**Request deadline extension**, `/backfill extend-deadline`) and
//! approving or rejecting it in the alert's thread. Both assess the job
//! afresh, so they stand above the poll; the request's life after that
//! (its messages, expiry, repair) is in [`crate::flows::approvals`].

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::assessment::{self};
use crate::domain::deadline::DeadlineSpec;
use crate::domain::job_id::JobId;
use crate::domain::text::date_token;
use crate::flows::approvals::{
    admit, apply, as_decided, create, decision_audit, rejection, settle, stakeholders,
};
use crate::flows::ids::EXPIRY_TIMER;
use crate::store::{ApprovalStatus, AuditEntry, Effects};
use serde_json::{json, Value};

/// Creates a request. `Ok` and `Err` both carry the answer for the requester.
pub async fn request(
    state: &AppState,
    tenant: &Tenant,
    id: JobId,
    spec: DeadlineSpec,
    reason: Option<String>,
    user: &str,
    via: &str,
) -> Result<String, String> {
    let now = state.clock.now();
    let audit = |outcome: String, detail: Value| AuditEntry {
        at: now,
        tenant_id: Some(tenant.id.clone()),
        actor: user.to_string(),
        action: "request_extension".into(),
        subject: Some(id.to_string()),
        outcome,
        detail: Some(detail),
    };
    let record = |outcome: String, detail: Value| {
        let e = audit(outcome, detail);
        async move {
            if let Err(err) = state.store.audit(&e).await {
                tracing::error!(error = %err, "could not write the audit log");
            }
        }
    };
    let allowed = state
        .directory
        .is_among(user, &tenant.people())
        .await
        .map_err(|_| "I could not check your membership with Slack just now; nothing was changed. Try again in a moment.".to_string())?;
    if !allowed {
        record(
            "refused: not an operator or stakeholder".into(),
            json!({ "via": via }),
        )
        .await;
        return Err(format!(
            ":no_entry: Only the operators and stakeholders of tenant `{}` can request deadline extensions.",
            tenant.id
        ));
    }
    let (job, a, alert, _) = match crate::flows::poll::job(state, tenant, id).await {
        Ok(Some(x)) => x,
        Ok(None) => {
            record("refused: unknown job".into(), json!({ "via": via })).await;
            return Err(format!(
                ":grey_question: No job `{id}` in tenant `{}`. Check the id with `/backfill list all`.",
                tenant.id
            ));
        }
        Err(e) => {
            record(format!("failed: {e}"), json!({ "via": via })).await;
            return Err(":warning: Servo is unreachable right now, so I cannot read the job. Nothing was changed. Try again in a minute.".into());
        }
    };
    if !job.state.is_active() {
        record("refused: job finished".into(), json!({ "via": via })).await;
        return Err(format!(
            "The job is {}; there is no deadline left to extend.",
            job.state.as_str()
        ));
    }
    let Some(current) = job.sla_deadline_at else {
        record("refused: no deadline".into(), json!({ "via": via })).await;
        return Err("This job has no SLA deadline, so there is nothing to extend.".into());
    };
    let proposed = spec
        .resolve(current, now)
        .map_err(|e| format!(":warning: {e}"))?;
    let (approval, created) = create(
        state,
        tenant,
        &job,
        &a,
        alert.as_ref(),
        current,
        proposed,
        user,
        reason,
        |created| {
            audit(
                "ok".into(),
                json!({ "via": via, "approval_id": created.id, "current": current, "proposed": proposed }),
            )
        },
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "could not create an extension request");
        ":warning: The request could not be recorded; nothing was changed. Try again in a moment."
            .to_string()
    })?;
    if !created {
        record(
            "duplicate: already requested".into(),
            json!({ "via": via, "approval_id": approval.id }),
        )
        .await;
        return Ok(format!(
            ":calendar: You asked for this already: the extension of *{}* to {} has been waiting since {} for a decision. Nothing new was sent.",
            crate::domain::text::escape_slack(&job.asset_name),
            date_token(approval.proposed_deadline),
            date_token(approval.created_at)
        ));
    }
    crate::flows::home_refresh::touch(state, &tenant.id).await;
    let who = stakeholders(&state.config, tenant, &job.asset_name, a.tier);
    Ok(format!(
        ":calendar: Extension requested for *{}*: {} → {}. Waiting for {} to approve or reject it{}. Nothing changes in Servo until then.",
        crate::domain::text::escape_slack(&job.asset_name),
        date_token(current),
        date_token(proposed),
        state.directory.names(&who).await,
        match alert.as_ref().filter(|a| a.is_open()) {
            Some(a) => match crate::flows::alert_view::alert_link(Some(a)) {
                Some(link) => format!(" in the alert's thread ({link})"),
                None => " in the alert's thread".to_string(),
            },
            None => String::new(),
        }
    ))
}

pub async fn decide(
    state: &AppState,
    approval_id: &str,
    user: &str,
    approve: bool,
    reason: Option<String>,
) -> anyhow::Result<Option<String>> {
    let now = state.clock.now();
    let action = if approve {
        "approve_extension"
    } else {
        "reject_extension"
    };
    let (approval, tenant, job) = match admit(state, approval_id, user, action, now).await? {
        Ok(admitted) => admitted,
        Err(text) => return Ok(Some(text)),
    };
    let audit = |outcome: &str| decision_audit(&approval, user, action, outcome, now);
    let thresholds = state.config.risk.thresholds();
    let a = assessment::assess(&job.snapshot(), now, &thresholds, None);
    // Decided first, committed once: the decision, its expiry timer
    // cancelled, and (for a rejection, which ends here) its audit entry and
    // every message saying so, in one transaction.
    let (to, status) = if approve {
        ("approved", ApprovalStatus::Approved)
    } else {
        ("rejected", ApprovalStatus::Rejected)
    };
    let mut effects = Effects::new();
    effects.cancel(&approval.id, Some(EXPIRY_TIMER));
    if !approve {
        let decided = as_decided(&approval, status, user, reason.as_deref(), now);
        effects
            .record(audit("ok"))
            .extend(rejection(state, tenant, &job, &a, &decided, user, now).await?);
    }
    let Some(decided) = state
        .store
        .decide_approval_with(&approval.id, to, user, reason.as_deref(), now, &effects)
        .await?
    else {
        // Someone else decided between our read and our update.
        let fresh = state.store.get_approval(&approval.id).await?;
        let (status, by) = fresh
            .map(|a| (a.status, a.decided_by.unwrap_or_default()))
            .unwrap_or_default();
        state
            .store
            .audit(&audit(&format!("refused: already {status}")))
            .await?;
        return Ok(Some(format!(
            "This request was already {status} by <@{by}>."
        )));
    };
    state.wake_outbox();
    crate::flows::home_refresh::touch(state, &approval.tenant_id).await;
    if !approve {
        return Ok(None);
    }
    // Approved: write it to Servo, re-checking that it still makes sense.
    let outcome = apply(state, tenant, &decided, job).await;
    let entry = match &outcome {
        Ok(_) => audit("ok"),
        Err(why) => audit(&format!("failed: {why}")),
    };
    // The decision is recorded: a store failure from here on is finished
    // by the repair pass (`approvals::apply_approved`), so the user is not
    // told that nothing changed.
    match settle(state, tenant, &decided, user, outcome, Some(entry), now).await {
        Ok(Some(line)) => return Ok(Some((&line).into())),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "an approved extension could not be settled; the repair pass finishes it");
            return Ok(Some(
                ":hourglass: Your approval is recorded, but the bot's store did not answer while finishing it. The bot finishes it at its next poll and says so in the alert's thread."
                    .into(),
            ));
        }
    }
    // Re-assess the alert under the new deadline now, not at the next poll.
    if let Err(e) = crate::flows::poll::tenant(state, tenant, now).await {
        tracing::warn!(error = %e, "re-assessing after an approval failed; the next poll will do it");
    }
    Ok(None)
}
