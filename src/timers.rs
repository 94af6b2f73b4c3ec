//! Things that must happen at a time (approval expiry, monitor-closely
//! check-ins; escalation steps as they come) are rows in the store with a due time, not
//! sleeping tasks. This worker claims the due ones with a lease, so a restart
//! resumes where it stopped and, on PostgreSQL, replicas each fire a row once.

use crate::app::AppState;
use crate::approvals;
use std::time::Duration;
use tokio::sync::watch;

/// How long a claimed timer stays ours before another worker may take it over.
const LEASE: chrono::Duration = chrono::Duration::minutes(2);
const BATCH: i64 = 50;

#[derive(Clone)]
pub struct TimerWorker {
    pub state: AppState,
    pub worker_id: String,
}

impl TimerWorker {
    /// Fires every timer that is due now; returns how many fired.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let now = self.state.clock.now();
        let due = self
            .state
            .store
            .claim_due_timers(&self.worker_id, now, LEASE, BATCH)
            .await?;
        let mut fired = 0;
        for timer in due {
            let result = match timer.kind.as_str() {
                approvals::EXPIRY_TIMER => approvals::expire(&self.state, &timer.subject_id).await,
                crate::escalation::STEP_TIMER => {
                    let past_last = timer
                        .payload
                        .get("tier")
                        .and_then(|t| t.as_u64())
                        .unwrap_or(0) as usize
                        >= self.state.config.escalation.tiers.len();
                    if past_last {
                        crate::escalation::exhausted(&self.state, &timer.subject_id, &timer.payload)
                            .await
                    } else {
                        crate::escalation::step(&self.state, &timer.subject_id, &timer.payload)
                            .await
                    }
                }
                crate::alerts::MONITOR_TIMER => {
                    crate::actions::mitigations::check_in(
                        &self.state,
                        &timer.subject_id,
                        &timer.payload,
                    )
                    .await
                }
                other => {
                    tracing::warn!(kind = other, "a timer of a kind this version does not know");
                    Ok(())
                }
            };
            match result {
                Ok(()) => {
                    if self
                        .state
                        .store
                        .complete_timer(&timer.id, &self.worker_id, self.state.clock.now())
                        .await?
                    {
                        fired += 1;
                    }
                }
                Err(e) => {
                    // Hand it back: it is tried again on the next round.
                    tracing::error!(timer = %timer.id, kind = %timer.kind, error = %e, "timer failed; will retry");
                    self.state
                        .store
                        .release_timer(&timer.id, &self.worker_id)
                        .await?;
                }
            }
        }
        Ok(fired)
    }

    /// Runs `tick` every second (timers are minutes apart; a second of
    /// lateness is well inside what anyone notices) until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "timer step failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Err(e) = self.state.store.release_timer_claims(&self.worker_id).await {
            tracing::warn!(error = %e, "could not hand back timer claims");
        }
    }
}
