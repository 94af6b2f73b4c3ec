//! Forecasts against outcomes: one row per job and checkpoint (a quarter,
//! half and three quarters done, [`crate::domain::forecast::CHECKPOINTS`]), each
//! written once and all closed when the job completes. Calibration and the
//! accuracy report read the closed rows.

use super::{from_ms, in_tx, ms, on_pool, Result, Store};
use crate::domain::forecast::pool::Profile;
use crate::domain::forecast::ClassPrior;
use chrono::{DateTime, Utc};

/// A forecast as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastRecord {
    pub tenant_id: String,
    pub job_id: String,
    /// Which checkpoint the forecast was made at (an index into
    /// [`crate::domain::forecast::CHECKPOINTS`]).
    pub checkpoint: i32,
    pub asset: String,
    pub made_at: DateTime<Utc>,
    pub progress: f64,
    pub p50: DateTime<Utc>,
    pub p90: DateTime<Utc>,
    pub servo_eta: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The job's size when the forecast was made (its partitions and the
    /// median work of those completed): how like other assets' jobs it is.
    pub profile: Option<Profile>,
    /// What the job's own partitions said of its period-end partitions by
    /// then.
    pub period_end: Option<ClassPrior>,
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    job_id: String,
    checkpoint: i32,
    asset: String,
    made_at_ms: i64,
    progress: f64,
    p50_ms: i64,
    p90_ms: i64,
    servo_eta_ms: Option<i64>,
    completed_at_ms: Option<i64>,
    total_partitions: Option<i64>,
    partition_ms: Option<f64>,
    period_end_factor: Option<f64>,
    period_end_count: Option<i64>,
}

impl TryFrom<Row> for ForecastRecord {
    type Error = super::StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(ForecastRecord {
            made_at: from_ms(r.made_at_ms, "forecasts.made_at_ms")?,
            p50: from_ms(r.p50_ms, "forecasts.p50_ms")?,
            p90: from_ms(r.p90_ms, "forecasts.p90_ms")?,
            servo_eta: r
                .servo_eta_ms
                .map(|v| from_ms(v, "forecasts.servo_eta_ms"))
                .transpose()?,
            completed_at: r
                .completed_at_ms
                .map(|v| from_ms(v, "forecasts.completed_at_ms"))
                .transpose()?,
            profile: match (r.total_partitions, r.partition_ms) {
                (Some(partitions), Some(partition_ms)) => Some(Profile {
                    partitions: partitions as f64,
                    partition_ms,
                }),
                _ => None,
            },
            period_end: match (r.period_end_factor, r.period_end_count) {
                (Some(factor), Some(count)) => Some(ClassPrior {
                    factor,
                    period_end: usize::try_from(count).unwrap_or(0),
                }),
                _ => None,
            },
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            checkpoint: r.checkpoint,
            asset: r.asset,
            progress: r.progress,
        })
    }
}

impl Store {
    /// Records a job's forecast at its checkpoint unless one is recorded there
    /// already; true when written.
    pub async fn record_forecast(&self, f: &ForecastRecord) -> Result<bool> {
        Ok(self.record_forecasts(std::slice::from_ref(f)).await? == 1)
    }

    /// Records many jobs' forecasts in one transaction (one commit per poll,
    /// not one per job), each unless one is recorded at its checkpoint
    /// already; how many were written.
    pub async fn record_forecasts(&self, all: &[ForecastRecord]) -> Result<u64> {
        if all.is_empty() {
            return Ok(0);
        }
        in_tx!(self, tx => {
            let mut written = 0;
            for f in all {
                written += sqlx::query(
                    "INSERT INTO forecasts (tenant_id, job_id, asset, made_at_ms, progress, p50_ms, p90_ms, servo_eta_ms, checkpoint, \
                     total_partitions, partition_ms, period_end_factor, period_end_count) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (tenant_id, job_id, checkpoint) DO NOTHING")
                    .bind(&f.tenant_id)
                    .bind(&f.job_id)
                    .bind(&f.asset)
                    .bind(ms(f.made_at))
                    .bind(f.progress)
                    .bind(ms(f.p50))
                    .bind(ms(f.p90))
                    .bind(f.servo_eta.map(ms))
                    .bind(f.checkpoint)
                    .bind(f.profile.map(|p| p.partitions.round() as i64))
                    .bind(f.profile.map(|p| p.partition_ms))
                    .bind(f.period_end.map(|p| p.factor))
                    .bind(f.period_end.map(|p| i64::try_from(p.period_end).unwrap_or(i64::MAX)))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(written)
        })
    }

    /// The tenant's recorded forecasts whose job has not completed (yet).
    pub async fn open_forecasts(&self, tenant: &str) -> Result<Vec<ForecastRecord>> {
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM forecasts WHERE tenant_id = $1 AND completed_at_ms IS NULL ORDER BY made_at_ms")
            .bind(tenant)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(ForecastRecord::try_from).collect()
    }

    /// The job completed at `at`: its forecasts become evidence. True when
    /// any was still open.
    pub async fn close_forecast(
        &self,
        tenant: &str,
        job_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE forecasts SET completed_at_ms = $3 WHERE tenant_id = $1 AND job_id = $2 \
             AND completed_at_ms IS NULL")
            .bind(tenant)
            .bind(job_id)
            .bind(ms(at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n >= 1)
    }

    /// The job failed, was cancelled or vanished: no outcome to learn from.
    pub async fn drop_forecast(&self, tenant: &str, job_id: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query("DELETE FROM forecasts WHERE tenant_id = $1 AND job_id = $2")
            .bind(tenant)
            .bind(job_id)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The tenant's most recent finished forecasts, newest first, at most
    /// `limit` per asset and checkpoint.
    pub async fn finished_forecasts(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<ForecastRecord>> {
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM forecasts WHERE tenant_id = $1 AND completed_at_ms IS NOT NULL \
             ORDER BY completed_at_ms DESC")
            .bind(tenant)
            .fetch_all(p)
            .await?);
        let mut per_asset = std::collections::HashMap::<(String, i32), usize>::new();
        let mut out = Vec::new();
        for r in rows {
            let seen = per_asset
                .entry((r.asset.clone(), r.checkpoint))
                .or_default();
            if *seen < limit {
                *seen += 1;
                out.push(ForecastRecord::try_from(r)?);
            }
        }
        Ok(out)
    }
}
