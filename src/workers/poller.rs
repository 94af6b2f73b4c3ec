//! Watches Servo: every `poll_interval` (or at once when Alertmanager nudges),
//! assesses each tenant's active jobs that have a deadline and reconciles the
//! alerts. A tenant whose Servo query fails is skipped for this round: an
//! unreachable Servo never resolves an alert as recovered.

use crate::config::Tenant;
use crate::context::AppState;
use crate::flows::poll::{PollError, TenantPoll};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

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
    /// One poll of every tenant.
    pub async fn tick(&self) -> PollOutcome {
        let now = self.state.clock.now();
        let mut outcome = PollOutcome::default();
        // What a stop between a change to Servo and its record left undone.
        crate::flows::repair::before_poll(&self.state, now).await;
        let mut fleet = Vec::new();
        for tenant in &self.state.config.tenants {
            let started = std::time::Instant::now();
            let result = crate::flows::poll::tenant_judged(&self.state, tenant, now).await;
            self.state.metrics.observe(
                "servo_sla_bot_poll_duration_seconds",
                &[("tenant", &tenant.id)],
                started.elapsed().as_secs_f64(),
            );
            let outcome_label = match &result {
                Ok(_) => "ok",
                Err(crate::flows::poll::PollError::Servo(
                    crate::servo::ServoError::Unreachable(_),
                )) => "servo_unreachable",
                Err(crate::flows::poll::PollError::Servo(_)) => "servo_error",
                Err(crate::flows::poll::PollError::Store(_)) => "store_error",
                Err(_) => "error",
            };
            self.state.metrics.inc(
                "servo_sla_bot_polls_total",
                &[("tenant", &tenant.id), ("outcome", outcome_label)],
            );
            let result = match result {
                Ok((poll, judged)) => {
                    fleet.push((tenant, judged));
                    if poll.posted + poll.edited + poll.resolved > 0 {
                        // What the tenant's people see in their Home changed.
                        crate::flows::home_refresh::touch(&self.state, &tenant.id).await;
                    }
                    Ok(poll)
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant.id, error = %e, "poll skipped this tenant");
                    Err(e.to_string())
                }
            };
            outcome.tenants.insert(tenant.id.clone(), result);
        }
        self.export_gauges(&outcome);
        // Judged across tenants: high-priority jobs at risk together, and
        // the fleet slowing down as a whole. A tenant whose poll failed is
        // left out (it is not known to be fine, nor in trouble).
        let at_risk: Vec<_> = fleet
            .iter()
            .map(|(t, j)| (*t, j.at_risk.as_slice()))
            .collect();
        let every_tenant = fleet.len() == self.state.config.tenants.len();
        if let Err(e) =
            crate::flows::incidents::high_priority(&self.state, &at_risk, every_tenant, now).await
        {
            tracing::warn!(error = %e, "paging for high-priority jobs at risk together failed; tried again next poll");
        }
        if let Err(e) = crate::flows::incidents::system_wide(&self.state, &fleet, now).await {
            tracing::warn!(error = %e, "the system-wide degradation check failed; tried again next poll");
        }
        // Issue 36: handoffs of announced rotations, told once.
        if let Err(e) = crate::flows::oncall::announce_handoffs(&self.state).await {
            tracing::warn!(error = %e, "announcing on-call handoffs failed; tried again next poll");
        }
        // What a crash between two steps of a flow left undone.
        crate::flows::repair::run(&self.state, now).await;
        // The weekly SLA review (when due) and pruning past the retention.
        if let Err(e) = crate::flows::review::weekly(&self.state, now).await {
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
        self.state
            .metrics
            .set_gauge_family("servo_sla_bot_at_risk_jobs", at_risk);
        self.state
            .metrics
            .set_gauge_family("servo_sla_bot_breached_jobs", breached);
    }

    /// Assesses one tenant's jobs and reconciles its alerts
    /// (see [`crate::flows::poll::tenant`]).
    pub async fn poll_tenant(
        &self,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> Result<TenantPoll, PollError> {
        crate::flows::poll::tenant(&self.state, tenant, now).await
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
                .try_acquire_lease(POLL_LEASE, &worker_id, lease)
                .await
            {
                Ok(mine) => mine,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the store for the poll lease");
                    false
                }
            };
            self.state.metrics.set_gauge(
                "servo_sla_bot_poll_lease_held",
                &[],
                f64::from(u8::from(mine)),
            );
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
        self.state
            .metrics
            .set_gauge("servo_sla_bot_poll_lease_held", &[], 0.0);
        if let Err(e) = self.state.store.release_lease(POLL_LEASE, &worker_id).await {
            tracing::warn!(error = %e, "could not release the poll lease");
        }
    }
}

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
