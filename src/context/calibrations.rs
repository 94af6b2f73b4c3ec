//! Each tenant's forecast calibrations, as the last poll (or a status card)
//! computed them.

use super::AppState;
use crate::forecast::Calibration;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// How many finished jobs per asset calibration learns from.
const CALIBRATE_ON: usize = 20;

/// Each tenant's calibrations as last computed, and when.
pub type CalibrationCache =
    std::sync::Mutex<HashMap<String, (DateTime<Utc>, Arc<HashMap<String, Calibration>>)>>;

/// Each asset's calibration, from its recent finished forecasts: the ratio of
/// the time the jobs really took to what the forecast said, and how accurate
/// the forecast was. Kept for [`recent`].
pub async fn calibrations(
    state: &AppState,
    tenant: &str,
) -> Result<Arc<HashMap<String, Calibration>>, crate::store::StoreError> {
    let now = state.clock.now();
    let mut pairs: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    for f in state.store.finished_forecasts(tenant, CALIBRATE_ON).await? {
        let Some(done) = f.completed_at else { continue };
        let forecast = (f.p50 - f.made_at).num_milliseconds() as f64;
        let actual = (done - f.made_at).num_milliseconds() as f64;
        pairs.entry(f.asset).or_default().push((forecast, actual));
    }
    let computed: Arc<HashMap<String, Calibration>> = Arc::new(
        pairs
            .into_iter()
            .map(|(asset, p)| (asset, Calibration::from_pairs(&p)))
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
) -> Result<Arc<HashMap<String, Calibration>>, crate::store::StoreError> {
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
