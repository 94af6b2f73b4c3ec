//! What the repair pass reads: the places a crash between two steps of a
//! flow could leave the bot's state half done (issue 20). Each query finds
//! work a flow committed without the effect that should follow it.

use super::{ms, on_pool, AlertRow, ApprovalRow, Result, Store};
use super::{Alert, Approval, EscalationRow};
use chrono::{DateTime, Utc};

impl Store {
    /// Active escalations with no pending step, unchanged since `before`:
    /// nothing would ever page them.
    pub async fn escalations_without_step(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<EscalationRow>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT e.* FROM escalations e WHERE e.status = 'active' AND e.updated_at_ms < $1 \
               AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.subject_id = e.alert_id \
                                 AND t.kind = 'escalation_step' AND t.status = 'pending') \
             ORDER BY e.alert_id LIMIT 500")
            .bind(ms(before))
            .fetch_all(p)
            .await?))
    }

    /// Alerts resolved in `[since, before)` whose post went out (or is on its
    /// way; not one Slack refused) but whose resolution edit was never
    /// written to the outbox.
    pub async fn resolved_without_edit(
        &self,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let rows: Vec<AlertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT a.* FROM alerts a WHERE a.status = 'resolved' \
               AND a.resolved_at_ms >= $1 AND a.resolved_at_ms < $2 \
               AND EXISTS (SELECT 1 FROM outbox o WHERE o.link_kind = 'alert' AND o.link_id = a.id \
                             AND o.status <> 'failed') \
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedup_key = 'alert:' || a.id || ':resolved-edit') \
             ORDER BY a.resolved_at_ms LIMIT 500")
            .bind(ms(since))
            .bind(ms(before))
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Alert::try_from).collect()
    }

    /// Pending extension requests older than `before` with no post written
    /// or no pending expiry: a stop between recording one and its effects.
    pub async fn requests_missing_effects(&self, before: DateTime<Utc>) -> Result<Vec<Approval>> {
        let rows: Vec<ApprovalRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT a.* FROM approvals a WHERE a.status = 'pending' AND a.created_at_ms < $1 \
               AND (NOT EXISTS (SELECT 1 FROM outbox o WHERE o.link_kind = 'approval' AND o.link_id = a.id) \
                 OR NOT EXISTS (SELECT 1 FROM timers t WHERE t.subject_id = a.id \
                                  AND t.kind = 'approval_expiry' AND t.status = 'pending')) \
             ORDER BY a.created_at_ms LIMIT 100")
            .bind(ms(before))
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Approval::try_from).collect()
    }

    /// Whether a request's post was ever written to the outbox.
    pub async fn request_post_enqueued(&self, approval_id: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE link_kind = 'approval' AND link_id = $1")
            .bind(approval_id)
            .fetch_one(p)
            .await?);
        Ok(n > 0)
    }
}
