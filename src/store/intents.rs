//! Intents (issue 20): a change to Servo that cannot join the bot's
//! transaction (pausing a job, recreating one) is recorded first as
//! `applying`, then made in Servo, then finished, in one transaction, with
//! what it means to the bot ([`IntentChange`]) and its effects. The repair
//! pass finishes what a stop left `applying`. Table from migration 0009.

use super::effects::write_effects;
use super::{in_tx, ms, on_pool, Effects, Result, Store, StoreError};
use chrono::{DateTime, TimeZone, Utc};

/// A change the bot set out to make in Servo.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    pub id: String,
    /// `pause` or `recreate`.
    pub kind: String,
    pub alert_id: String,
    pub tenant_id: String,
    pub job_id: String,
    pub actor: String,
    /// `applying`, `done` or `refused`.
    pub status: String,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct IntentRow {
    id: String,
    kind: String,
    alert_id: String,
    tenant_id: String,
    job_id: String,
    actor: String,
    status: String,
    outcome: Option<String>,
    created_at_ms: i64,
}

impl TryFrom<IntentRow> for Intent {
    type Error = StoreError;
    fn try_from(r: IntentRow) -> Result<Intent> {
        Ok(Intent {
            created_at: Utc
                .timestamp_millis_opt(r.created_at_ms)
                .single()
                .ok_or_else(|| StoreError::Corrupt(format!("intent {}: bad time", r.id)))?,
            id: r.id,
            kind: r.kind,
            alert_id: r.alert_id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            actor: r.actor,
            status: r.status,
            outcome: r.outcome,
        })
    }
}

/// What finishing an intent changes in the bot's own state.
#[derive(Clone, Copy, Debug)]
pub enum IntentChange<'a> {
    /// Nothing (a refusal).
    None,
    /// The job is recorded as paused by the bot for the alert, so Resume
    /// offers it.
    Paused,
    /// The alert follows this (recreated) job.
    Retarget { job_id: &'a str },
}

impl Store {
    /// Records that the bot is about to make a change in Servo.
    pub async fn begin_intent(
        &self,
        kind: &str,
        alert_id: &str,
        tenant: &str,
        job_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Intent> {
        let row: IntentRow = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO intents (id, kind, alert_id, tenant_id, job_id, actor, status, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'applying', $7) RETURNING *")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(kind)
            .bind(alert_id)
            .bind(tenant)
            .bind(job_id)
            .bind(actor)
            .bind(ms(now))
            .fetch_one(p)
            .await?);
        Intent::try_from(row)
    }

    /// Whether an alert has an intent of this kind still `applying`.
    pub async fn intent_applying(&self, alert_id: &str, kind: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM intents WHERE alert_id = $1 AND kind = $2 AND status = 'applying'")
            .bind(alert_id)
            .bind(kind)
            .fetch_one(p)
            .await?);
        Ok(n > 0)
    }

    /// Intents still `applying` that were begun before `before`: a stop
    /// left them so.
    pub async fn applying_intents(&self, before: DateTime<Utc>) -> Result<Vec<Intent>> {
        let rows: Vec<IntentRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM intents WHERE status = 'applying' AND created_at_ms < $1 ORDER BY created_at_ms, id")
            .bind(ms(before))
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Intent::try_from).collect()
    }

    /// Finishes an `applying` intent as `done` or `refused`, with `change`
    /// and `effects`, all in one transaction. False, writing nothing, when
    /// it was already finished (the flow and the repair pass raced).
    pub async fn finish_intent(
        &self,
        intent: &Intent,
        status: &str,
        outcome: Option<&str>,
        change: IntentChange<'_>,
        effects: &Effects,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if !matches!(status, "done" | "refused") {
            return Err(StoreError::Invalid(format!(
                "'{status}' does not finish an intent"
            )));
        }
        effects.check()?;
        in_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE intents SET status = $2, outcome = $3, finished_at_ms = $4 \
                 WHERE id = $1 AND status = 'applying'")
                .bind(&intent.id)
                .bind(status)
                .bind(outcome)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                match change {
                    IntentChange::None => {}
                    IntentChange::Paused => {
                        sqlx::query(
                            "INSERT INTO paused_jobs (alert_id, tenant_id, job_id, paused_by, paused_at_ms) \
                             VALUES ($1, $2, $3, $4, $5) \
                             ON CONFLICT (alert_id, job_id) DO UPDATE SET paused_by = excluded.paused_by, \
                               paused_at_ms = excluded.paused_at_ms, resumed_at_ms = NULL")
                            .bind(&intent.alert_id)
                            .bind(&intent.tenant_id)
                            .bind(&intent.job_id)
                            .bind(&intent.actor)
                            .bind(ms(now))
                            .execute(&mut *tx)
                            .await?;
                    }
                    IntentChange::Retarget { job_id } => {
                        sqlx::query(
                            "UPDATE alerts SET job_id = $2, updated_at_ms = $3, version = version + 1 \
                             WHERE id = $1 AND status = 'open'")
                            .bind(&intent.alert_id)
                            .bind(job_id)
                            .bind(ms(now))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                write_effects!(tx, effects, now);
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }
}
