//! Watches Servo: every `poll_interval` (or at once when Alertmanager nudges),
//! assesses each tenant's active jobs that have a deadline and reconciles the
//! alerts. A tenant whose Servo query fails is skipped for this round: an
//! unreachable Servo never resolves an alert as recovered.

use crate::alerts::{self, Change};
use crate::app::AppState;
use crate::config::Tenant;
use crate::forecast::Calibration;
use crate::risk::{self, RiskBand, RiskThresholds};
use crate::servo::ServoError;
use crate::store::{Alert, ForecastRecord};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

/// What one poll of one tenant did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TenantPoll {
    pub jobs: usize,
    pub posted: usize,
    pub edited: usize,
    pub resolved: usize,
    /// At-risk jobs by band (`low`, `medium`, `high`, `breached`).
    pub at_risk: BTreeMap<String, usize>,
    /// What the buffer check and early warning did.
    pub watch: crate::watch::WatchOutcome,
}

/// What one poll of every tenant did.
#[derive(Debug, Default)]
pub struct PollOutcome {
    pub tenants: BTreeMap<String, Result<TenantPoll, String>>,
}

#[derive(Clone)]
pub struct Poller {
    pub state: AppState,
}

impl Poller {
    pub fn thresholds(&self) -> RiskThresholds {
        let r = &self.state.config.risk;
        RiskThresholds::new(r.medium_at, r.high_at, r.hysteresis, r.eta_fresh_for)
    }

    /// One poll of every tenant.
    pub async fn tick(&self) -> PollOutcome {
        let now = self.state.clock.now();
        let mut outcome = PollOutcome::default();
        // What a stop between a change to Servo and its record left undone.
        crate::repair::before_poll(&self.state, now).await;
        for tenant in &self.state.config.tenants {
            let result = self.poll_tenant(tenant, now).await;
            if let Err(e) = &result {
                tracing::warn!(tenant = %tenant.id, error = %e, "poll skipped this tenant");
            }
            outcome
                .tenants
                .insert(tenant.id.clone(), result.map_err(|e| e.to_string()));
        }
        self.export_gauges(&outcome);
        // What a crash between two steps of a flow left undone.
        crate::repair::run(&self.state, now).await;
        // The weekly SLA review (when due) and pruning past the retention.
        if let Err(e) = crate::review::weekly(&self.state, now).await {
            tracing::warn!(error = %e, "weekly review or pruning failed; tried again next poll");
        }
        outcome
    }

    fn export_gauges(&self, outcome: &PollOutcome) {
        let mut at_risk = Vec::new();
        let mut breached = Vec::new();
        for (tenant, result) in &outcome.tenants {
            // A failed poll keeps no stale numbers: it reports nothing for the tenant.
            let Ok(poll) = result else { continue };
            for band in ["low", "medium", "high", "breached"] {
                let n = poll.at_risk.get(band).copied().unwrap_or(0);
                at_risk.push((
                    vec![("tenant", tenant.clone()), ("band", band.to_string())],
                    n as f64,
                ));
            }
            breached.push((
                vec![("tenant", tenant.clone())],
                poll.at_risk.get("breached").copied().unwrap_or(0) as f64,
            ));
        }
        self.state.metrics.set_gauge_family(
            "servo_sla_bot_at_risk_jobs",
            "Active jobs at risk of missing their SLA, by tenant and band.",
            at_risk,
        );
        self.state.metrics.set_gauge_family(
            "servo_sla_bot_breached_jobs",
            "Active jobs past their SLA deadline, by tenant.",
            breached,
        );
    }

    /// Assesses one tenant's jobs and reconciles its alerts.
    pub async fn poll_tenant(
        &self,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> Result<TenantPoll, PollError> {
        let state = &self.state;
        let thresholds = self.thresholds();
        let mut jobs = state.servo.active_jobs(&tenant.id, true).await?;
        let open: HashMap<String, Alert> = state
            .store
            .list_open_alerts(Some(&tenant.id))
            .await?
            .into_iter()
            .map(|a| (a.job_id.clone(), a))
            .collect();

        // Partition histories cost the most to read: fetch them only for the
        // jobs whose alert shows bottlenecks, or whose ETA depends on them.
        let previous = |job_id: &str| open.get(job_id).and_then(|a| RiskBand::parse(&a.band));
        let needs_history: Vec<Uuid> = jobs
            .iter()
            .filter(|j| {
                j.avg_partition_duration_ms.is_none()
                    || open.contains_key(&j.id.to_string())
                    || near_risk(j, now, &thresholds, previous(&j.id.to_string()))
            })
            .map(|j| j.id)
            .collect();
        let histories = state
            .servo
            .partition_history(&tenant.id, &needs_history)
            .await?;
        let calibrations = calibrations(state, &tenant.id).await?;
        let recorded: std::collections::HashSet<String> = state
            .store
            .open_forecasts(&tenant.id)
            .await?
            .into_iter()
            .map(|f| f.job_id)
            .collect();
        let mut to_record = Vec::new();
        for job in &mut jobs {
            let Some(h) = histories.get(&job.id) else {
                continue;
            };
            let raw = job.attach_history(
                h,
                now,
                &state.config.risk,
                calibrations.get(&job.asset_name),
            );
            // Keep the first forecast made at a quarter done: calibration
            // compares it with when the job really completes.
            let progress = (job.completed_partitions + job.failed_partitions) as f64
                / job.total_partitions.max(1) as f64;
            if let Some(f) = raw.filter(|_| progress >= RECORD_AT_PROGRESS) {
                if !recorded.contains(&job.id.to_string()) {
                    to_record.push(ForecastRecord {
                        tenant_id: tenant.id.clone(),
                        job_id: job.id.to_string(),
                        asset: job.asset_name.clone(),
                        made_at: now,
                        progress,
                        p50: f.p50,
                        p90: f.p90,
                        servo_eta: job.estimated_completion_at,
                        completed_at: None,
                    });
                }
            }
        }
        state.store.record_forecasts(&to_record).await?;
        let active: std::collections::HashSet<String> =
            jobs.iter().map(|j| j.id.to_string()).collect();
        for f in recorded.iter().filter(|id| !active.contains(*id)).take(20) {
            let Ok(id) = f.parse::<Uuid>() else { continue };
            match state.servo.get_job(&tenant.id, id).await? {
                Some(job) if job.state.is_active() => {} // lost its deadline: keep waiting
                Some(job) if job.state == crate::risk::JobState::Completed => {
                    let at = job.completed_at.unwrap_or(now);
                    state.store.close_forecast(&tenant.id, f, at).await?;
                }
                _ => state.store.drop_forecast(&tenant.id, f).await?,
            }
        }

        let mut poll = TenantPoll {
            jobs: jobs.len(),
            ..TenantPoll::default()
        };
        // Open quiet notices: a job among them that goes at risk has its
        // notice's message become the alert.
        let notices = state.store.open_notices_by_job(&tenant.id).await?;
        let mut seen = std::collections::HashSet::new();
        let mut assessed = Vec::with_capacity(jobs.len());
        let mut posted = std::collections::HashSet::new();
        for job in &jobs {
            let key = job.id.to_string();
            seen.insert(key.clone());
            let a = risk::assess(&job.snapshot(), now, &thresholds, previous(&key));
            if a.band.is_at_risk() {
                *poll.at_risk.entry(a.band.as_str().to_string()).or_default() += 1;
            }
            let change = alerts::reconcile(
                state,
                tenant,
                job,
                &a,
                open.get(&key).cloned(),
                notices.get(&key),
                now,
            )
            .await?;
            match change {
                Change::Posted => {
                    poll.posted += 1;
                    posted.insert(job.id);
                }
                Change::Edited => poll.edited += 1,
                Change::Resolved => poll.resolved += 1,
                Change::None => {}
            }
            assessed.push((job, a));
        }

        // Open alerts whose job left the list: it finished, was cancelled, or
        // lost its deadline. Look at the job itself before saying which.
        for (job_id, alert) in open.iter().filter(|(id, _)| !seen.contains(*id)) {
            let Ok(id) = job_id.parse::<Uuid>() else {
                continue;
            };
            // A recreate in progress cancelled this job on purpose: the
            // alert is about to follow the new one, not to end.
            if state.store.intent_applying(&alert.id, "recreate").await? {
                continue;
            }
            let job = state.servo.get_job(&tenant.id, id).await?;
            let how = alerts::ending(job.as_ref());
            match job {
                Some(job) => {
                    let a = risk::assess(&job.snapshot(), now, &thresholds, None);
                    if alerts::resolve(state, alert, &job, &a, &how, now).await? == Change::Resolved
                    {
                        poll.resolved += 1;
                    }
                }
                None => {
                    // Gone from Servo altogether: resolve without a job to show.
                    if state.store.resolve_alert(&alert.id, &how, now).await? {
                        crate::escalation::stop(state, alert, &how)
                            .await
                            .map_err(|e| PollError::Other(e.to_string()))?;
                        alerts::reply_in_thread(
                            state,
                            alert,
                            format!("alert:{}:resolved", alert.id),
                            &how,
                        )
                        .await?;
                        poll.resolved += 1;
                    }
                }
            }
        }
        // Several high-priority jobs at risk at once page from tier 2.
        let open_now: HashMap<String, Alert> = state
            .store
            .list_open_alerts(Some(&tenant.id))
            .await?
            .into_iter()
            .map(|a| (a.job_id.clone(), a))
            .collect();
        let at_risk: Vec<(Alert, crate::servo::Job)> = jobs
            .iter()
            .filter_map(|j| {
                open_now
                    .get(&j.id.to_string())
                    .map(|a| (a.clone(), j.clone()))
            })
            .collect();
        crate::escalation::on_poll(state, tenant, &at_risk)
            .await
            .map_err(|e| PollError::Other(e.to_string()))?;

        // The preventive side: buffer check, early warning, review history.
        // It never holds up the alerts above: a failure is logged.
        match crate::watch::observe(state, tenant, &assessed, &open_now, now).await {
            Ok(w) => poll.watch = w,
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e, "early warning and review history skipped this poll")
            }
        }
        if state.config.review.charts && !posted.is_empty() {
            let charts: Vec<_> = assessed
                .iter()
                .filter(|(j, _)| posted.contains(&j.id))
                .filter_map(|(job, a)| {
                    let alert = open_now.get(&job.id.to_string())?;
                    let history = histories.get(&job.id).map(Vec::as_slice).unwrap_or(&[]);
                    crate::review::burn_down_message(alert, job, a, history, now)
                })
                .collect();
            if let Err(e) = state.enqueue_many(&charts).await {
                tracing::warn!(tenant = %tenant.id, error = %e, "could not enqueue the burn-down charts");
            }
        }

        // Pending extension requests of jobs that finished are moot.
        let pending = state
            .store
            .list_approvals(Some(&tenant.id), Some("pending"))
            .await?;
        for request in pending.iter().filter(|r| !seen.contains(&r.job_id)) {
            let Ok(id) = request.job_id.parse::<Uuid>() else {
                continue;
            };
            if let Some(job) = state.servo.get_job(&tenant.id, id).await? {
                if job.state.is_terminal() {
                    let a = risk::assess(&job.snapshot(), now, &thresholds, None);
                    crate::approvals::close_moot(state, tenant, &job, &a)
                        .await
                        .map_err(|e| PollError::Other(e.to_string()))?;
                }
            }
        }
        Ok(poll)
    }

    /// Polls every `poll_interval`, or at once when woken (Alertmanager).
    /// Of several replicas sharing a store, only the holder of the `poller`
    /// lease polls; the others try to take it over every few seconds, so a
    /// replica that dies is replaced within [`poll_lease`] plus that wait.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
        worker_id: String,
    ) {
        let interval = self.state.config.poll_interval;
        let lease = poll_lease(interval);
        let standby = interval.min(LEASE_RETRY);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let mine = match self
                .state
                .store
                .try_acquire_lease(POLL_LEASE, &worker_id, self.state.clock.now(), lease)
                .await
            {
                Ok(mine) => mine,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the store for the poll lease");
                    false
                }
            };
            if mine {
                self.tick().await;
            }
            tokio::select! {
                _ = wake.notified() => tracing::info!("poll requested"),
                _ = tokio::time::sleep(if mine { interval } else { standby }) => {}
                _ = shutdown.changed() => {}
            }
        }
        // Hand the lease over at once rather than make another replica wait it out.
        if let Err(e) = self.state.store.release_lease(POLL_LEASE, &worker_id).await {
            tracing::warn!(error = %e, "could not release the poll lease");
        }
    }
}

/// Progress from which a job's forecast is kept for calibration.
const RECORD_AT_PROGRESS: f64 = 0.25;
/// How many finished jobs per asset calibration learns from.
const CALIBRATE_ON: usize = 20;

/// Each tenant's calibrations as last computed, and when.
pub type CalibrationCache =
    std::sync::Mutex<HashMap<String, (DateTime<Utc>, Arc<HashMap<String, Calibration>>)>>;

/// Each asset's calibration, from its recent finished forecasts: the ratio of
/// the time the jobs really took to what the forecast said, and how accurate
/// the forecast was. Kept for [`recent_calibrations`].
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
pub async fn recent_calibrations(
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

/// Whether a job is at risk, or close enough by Servo's own ETA that the
/// forecaster should look: Servo's EWMA lags a slowdown, so a job it calls on
/// time with less than half its remaining time to spare may be late.
fn near_risk(
    job: &crate::servo::Job,
    now: DateTime<Utc>,
    thresholds: &RiskThresholds,
    previous: Option<RiskBand>,
) -> bool {
    let a = risk::assess(&job.snapshot(), now, thresholds, previous);
    a.band.is_at_risk() || a.severity.is_some_and(|s| s > NEAR_RISK_SEVERITY)
}

/// Severity (negative: time to spare) from which the forecaster looks at a job.
const NEAR_RISK_SEVERITY: f64 = -0.5;

/// The lease that makes one replica the poller.
pub const POLL_LEASE: &str = "poller";
/// How often a replica without the lease tries to take it.
const LEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the poller's lease lasts: a poll interval plus room for a slow
/// poll. A replica that dies stops renewing it; another takes over after it.
pub fn poll_lease(interval: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::minutes(1))
        + chrono::Duration::seconds(15)
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Servo(#[from] ServoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Alert(#[from] alerts::AlertError),
    #[error("{0}")]
    Other(String),
}
