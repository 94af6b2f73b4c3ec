//! Each tenant's forecast calibrations, as the last poll (or a status card)
//! computed them.

use super::AppState;
use crate::forecast::{AssetCalibration, Outcome};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// How many finished jobs per asset and checkpoint calibration learns from.
const CALIBRATE_ON: usize = 20;

/// Each tenant's calibrations as last computed, and when.
pub type CalibrationCache =
    std::sync::Mutex<HashMap<String, (DateTime<Utc>, Arc<HashMap<String, AssetCalibration>>)>>;

/// Each asset's calibration, checkpoint by checkpoint, from its recent
/// finished forecasts (at most 20 per checkpoint): the ratio of
/// the time the jobs really took to what the forecast said, how accurate the
/// forecast was, and how often its P90 covered them (the P90's width is reset
/// when that share leaves 80–95%). Kept for [`recent`].
pub async fn calibrations(
    state: &AppState,
    tenant: &str,
) -> Result<Arc<HashMap<String, AssetCalibration>>, crate::store::StoreError> {
    let now = state.clock.now();
    let mut outcomes: HashMap<String, Vec<(usize, Outcome)>> = HashMap::new();
    for f in state.store.finished_forecasts(tenant, CALIBRATE_ON).await? {
        let Some(done) = f.completed_at else { continue };
        let Ok(checkpoint) = usize::try_from(f.checkpoint) else {
            continue;
        };
        let from = |t: DateTime<Utc>| (t - f.made_at).num_milliseconds() as f64;
        outcomes.entry(f.asset).or_default().push((
            checkpoint,
            Outcome {
                p50_ms: from(f.p50),
                p90_ms: from(f.p90),
                actual_ms: from(done),
            },
        ));
    }
    let computed: Arc<HashMap<String, AssetCalibration>> = Arc::new(
        outcomes
            .into_iter()
            .map(|(asset, o)| (asset, AssetCalibration::from_outcomes(&o)))
            .collect(),
    );
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
) -> Result<Arc<HashMap<String, AssetCalibration>>, crate::store::StoreError> {
    let now = state.clock.now();
    let kept = state
        .calibrations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(tenant)
        .filter(|(at, _)| {
            (now - *at)
                .to_std()
                .is_ok_and(|age| age < state.config.poll_interval)
        })
        .map(|(_, c)| c.clone());
    match kept {
        Some(c) => Ok(c),
        None => calibrations(state, tenant).await,
    }
}
