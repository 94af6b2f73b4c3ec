//! Each tenant's forecast calibrations, as the last poll (or a status card)
//! computed them, and each asset's period-end prior.
//!
//! What a tenant's finished forecasts taught is kept per tenant as a
//! [`Tenant`]: each asset's own calibration, checkpoint by checkpoint, and
//! what a new asset borrows from the assets most like it (see
//! [`crate::domain::forecast::pool`]). So the first job of an asset the bot has never
//! seen is calibrated by the tenant's other assets, weighted by likeness in
//! size, and its own finished jobs take over as they accrue.

use super::AppState;
use crate::domain::forecast::pool::{Record, Tenant};
use crate::domain::forecast::ClassPrior;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// How many finished jobs per asset and checkpoint calibration learns from.
const CALIBRATE_ON: usize = 20;

/// Each tenant's calibrations as last computed, and when.
pub type CalibrationCache = super::PerPoll<Tenant>;

/// What the tenant's finished forecasts taught (at most 20 per asset and
/// checkpoint, the most recent): each forecast against when its job really
/// completed, with the job's size and period-end partitions when it was
/// made. Forecasts of jobs not completed yet, or at an unknown checkpoint,
/// teach nothing.
pub async fn learn(store: &Store, tenant: &str) -> Result<Tenant, crate::store::StoreError> {
    let records: Vec<Record> = store
        .finished_forecasts(tenant, CALIBRATE_ON)
        .await?
        .into_iter()
        .filter_map(|f| {
            let done = f.completed_at?;
            let checkpoint = usize::try_from(f.checkpoint).ok()?;
            let from = |t: DateTime<Utc>| (t - f.made_at).num_milliseconds() as f64;
            Some(Record {
                outcome: crate::domain::forecast::Outcome {
                    p50_ms: from(f.p50),
                    p90_ms: from(f.p90),
                    actual_ms: from(done),
                },
                asset: f.asset,
                job: f.job_id,
                checkpoint,
                profile: f.profile,
                period_end: f.period_end,
            })
        })
        .collect();
    Ok(Tenant::from_records(&records))
}

/// Each asset's calibration, checkpoint by checkpoint, from the tenant's
/// recent finished forecasts (see [`learn`]): the ratio of the time the jobs
/// really took to what the forecast said, how accurate the forecast was, and
/// how often its P90 covered them (the P90's width is reset when that share
/// leaves 80–95%); a new asset's borrowed from the assets most like it. Kept
/// for [`recent`].
pub async fn calibrations(
    state: &AppState,
    tenant: &str,
) -> Result<Arc<Tenant>, crate::store::StoreError> {
    let now = state.clock.now();
    let computed = Arc::new(learn(&state.store, tenant).await?);
    state
        .calibrations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(tenant.to_string(), (now, computed.clone()));
    Ok(computed)
}

/// The calibrations a poll computed (or a command read) less than a poll
/// interval ago: they change only when jobs finish, and a status card need not
/// read every finished forecast of the tenant again.
pub async fn recent(
    state: &AppState,
    tenant: &str,
) -> Result<Arc<Tenant>, crate::store::StoreError> {
    match state.kept_for_a_poll(&state.calibrations, tenant) {
        Some(c) => Ok(c),
        None => calibrations(state, tenant).await,
    }
}

/// How many of an asset's last completed jobs its period-end prior learns from.
const PRIOR_JOBS: i64 = 5;

/// How long an asset's period-end prior is kept before Servo is asked again:
/// it changes only when one of the asset's jobs completes.
const PRIOR_MAX_AGE: chrono::Duration = chrono::Duration::hours(1);

/// Each `(tenant, asset)`'s period-end prior, and when it was read.
pub type PriorCache =
    std::sync::Mutex<HashMap<(String, String), (DateTime<Utc>, Option<ClassPrior>)>>;

/// What each asset's earlier jobs say about its period-end partitions (see
/// [`ClassPrior`]), read from Servo at most once an hour per asset. Servo
/// failing to answer costs the forecast its prior, not the poll: it is
/// logged and the assets are asked again next time.
pub async fn period_end_priors(
    state: &AppState,
    tenant: &str,
    assets: &[String],
) -> HashMap<String, ClassPrior> {
    let now = state.clock.now();
    let mut known = HashMap::new();
    let mut missing = Vec::new();
    {
        let cache = state.priors.lock().unwrap_or_else(|p| p.into_inner());
        for asset in assets {
            match cache.get(&(tenant.to_string(), asset.clone())) {
                Some((at, Some(p))) if now - *at < PRIOR_MAX_AGE => {
                    known.insert(asset.clone(), *p);
                }
                Some((at, None)) if now - *at < PRIOR_MAX_AGE => {}
                _ if !missing.contains(asset) => missing.push(asset.clone()),
                _ => {}
            }
        }
    }
    if missing.is_empty() {
        return known;
    }
    match state
        .servo
        .asset_history(tenant, &missing, PRIOR_JOBS)
        .await
    {
        Ok(history) => {
            let mut cache = state.priors.lock().unwrap_or_else(|p| p.into_inner());
            for asset in missing {
                let prior = history
                    .get(&asset)
                    .and_then(|jobs| ClassPrior::from_jobs(jobs));
                if let Some(p) = prior {
                    known.insert(asset.clone(), p);
                }
                cache.insert((tenant.to_string(), asset), (now, prior));
            }
        }
        Err(e) => {
            tracing::warn!(tenant, error = %e, "could not read the assets' earlier jobs; forecasting without their period-end prior");
        }
    }
    known
}
