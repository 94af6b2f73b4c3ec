//! Things that must happen at a time (escalation steps, approval expiry,
//! monitor-closely check-ins) are rows in the store with a due time, not
//! sleeping tasks. This worker claims the due ones with a lease, so a restart
//! resumes where it stopped and, on PostgreSQL, replicas each fire a row once.
//! It sleeps until the next row is due (at most a second, so rows written by
//! another replica are seen), and fires a batch concurrently so a thousand
//! steps due at once are not served one after another.

use crate::context::AppState;
use crate::flows::approvals;
use crate::store::Timer;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a claimed timer stays ours before another worker may take it
/// over, unless renewed: the worker renews its claims every [`RENEW_EVERY`]
/// while it fires them, so a replica that dies delays a page by at most this.
const LEASE: chrono::Duration = chrono::Duration::seconds(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How many due timers one round claims.
const BATCH: i64 = 200;
/// How many fire at the same time (each is a few store writes). PostgreSQL
/// commits each write with a WAL flush, and concurrent commits share one
/// flush, so more at once helps; SQLite has a single writer, so more only
/// queue (measured in `benches/timers.rs`).
const CONCURRENCY_POSTGRES: usize = 32;
const CONCURRENCY_SQLITE: usize = 16;

/// How long a timer that failed `attempts` times before waits for its next
/// try: 1 s, 2 s, 4 s, … at most 5 minutes. Not at once: a failing timer
/// (Slack rate-limiting, the store away) must not spin.
pub fn retry_after(attempts: i64) -> chrono::Duration {
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 9)).min(chrono::Duration::minutes(5))
}

#[derive(Clone)]
pub struct TimerWorker {
    pub state: AppState,
    pub worker_id: String,
}

impl TimerWorker {
    /// Carries out a due timer. True when the flow marked it fired itself,
    /// in the transaction of what it did (an escalation step does).
    async fn fire(&self, timer: &Timer) -> anyhow::Result<bool> {
        let itself = |r: anyhow::Result<()>| r.map(|()| false);
        match timer.kind.as_str() {
            approvals::EXPIRY_TIMER => {
                itself(approvals::expire(&self.state, &timer.subject_id).await)
            }
            crate::flows::escalation::STEP_TIMER if self.past_last(timer) => itself(
                crate::flows::escalation::exhausted(&self.state, &timer.subject_id, &timer.payload)
                    .await,
            ),
            crate::flows::escalation::STEP_TIMER => {
                crate::flows::escalation::fire_step(&self.state, timer, &self.worker_id).await
            }
            crate::flows::home::REFRESH_TIMER => {
                itself(crate::flows::home::publish(&self.state, &timer.subject_id).await)
            }
            crate::flows::alerts::BUTTONS_TIMER => {
                crate::flows::alerts::refresh(&self.state, &timer.subject_id).await?;
                Ok(false)
            }
            crate::flows::alerts::MONITOR_TIMER => itself(
                crate::flows::monitor::check_in(&self.state, &timer.subject_id, &timer.payload)
                    .await,
            ),
            other => {
                tracing::warn!(kind = other, "a timer of a kind this version does not know");
                Ok(false)
            }
        }
    }

    /// A step timer beyond the configured tiers: the path is exhausted.
    fn past_last(&self, timer: &Timer) -> bool {
        timer
            .payload
            .get("tier")
            .and_then(|t| t.as_u64())
            .unwrap_or(0) as usize
            >= self.state.config.escalation.tiers.len()
    }

    /// Fires one claimed timer and marks it; a failure hands it back to be
    /// tried again on the next round. True when it fired.
    async fn run_one(&self, timer: Timer) -> anyhow::Result<bool> {
        if timer.attempts == 0 {
            // Lateness of the first try: a retry is late by its backoff.
            let late = (self.state.clock.now() - timer.due_at)
                .num_milliseconds()
                .max(0);
            self.state.metrics.observe(
                "servo_sla_bot_timer_lateness_seconds",
                &[("kind", &timer.kind)],
                late as f64 / 1000.0,
            );
        }
        match self.fire(&timer).await {
            Ok(true) => Ok(true),
            Ok(false) => Ok(self
                .state
                .store
                .complete_timer(&timer.id, &self.worker_id, self.state.clock.now())
                .await?),
            Err(e) => {
                let wait = retry_after(timer.attempts);
                tracing::error!(timer = %timer.id, kind = %timer.kind, attempts = timer.attempts + 1, retry_in_s = wait.num_seconds(), error = %e, "timer failed; will retry");
                self.state
                    .store
                    .retry_timer(&timer.id, &self.worker_id, self.state.clock.now() + wait)
                    .await?;
                Ok(false)
            }
        }
    }

    /// Fires every timer that is due now; returns how many fired.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let mut fired = 0;
        let concurrency = match &self.state.store {
            crate::store::Store::Postgres(_) => CONCURRENCY_POSTGRES,
            crate::store::Store::Sqlite(_) => CONCURRENCY_SQLITE,
        };
        loop {
            let now = self.state.clock.now();
            let due = self
                .state
                .store
                .claim_due_timers(&self.worker_id, now, LEASE, BATCH)
                .await?;
            let claimed = due.len();
            let work = async {
                let mut fired = 0;
                let mut set = JoinSet::new();
                for timer in due {
                    while set.len() >= concurrency {
                        if let Some(done) = set.join_next().await {
                            fired += matches!(done, Ok(Ok(true))) as usize;
                        }
                    }
                    let me = self.clone();
                    set.spawn(async move { me.run_one(timer).await });
                }
                while let Some(done) = set.join_next().await {
                    fired += matches!(done, Ok(Ok(true))) as usize;
                }
                fired
            };
            fired += crate::supervise::while_renewing(work, RENEW_EVERY, || async {
                let renewed = self.state.store.renew_timer_claims(&self.worker_id, LEASE);
                if let Err(e) = renewed.await {
                    tracing::warn!(error = %e, "could not renew the timer claims");
                }
            })
            .await;
            if (claimed as i64) < BATCH {
                return Ok(fired);
            }
        }
    }

    /// Runs `tick` whenever something is due, until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "timer step failed");
            }
            // Sleep until the next timer is due, but look again within a
            // second: another replica, or a request, may add an earlier one.
            let now = self.state.clock.now();
            let wait = match self.state.store.next_timer_due().await {
                Ok(Some(due)) if due > now => (due - now).to_std().unwrap_or(Duration::ZERO),
                Ok(Some(_)) => Duration::from_millis(50),
                _ => Duration::from_secs(1),
            }
            .min(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Err(e) = self.state.store.release_timer_claims(&self.worker_id).await {
            tracing::warn!(error = %e, "could not hand back timer claims");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::retry_after;

    #[test]
    fn a_failing_timer_backs_off_exponentially_up_to_five_minutes() {
        let secs: Vec<i64> = (0..12).map(|a| retry_after(a).num_seconds()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }
}
