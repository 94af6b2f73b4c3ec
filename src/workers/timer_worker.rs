//! Things that must happen at a time (escalation steps, approval expiry,
//! monitor-closely check-ins) are rows in the store with a due time, not
//! sleeping tasks. This worker claims the due ones with a lease, so a restart
//! resumes where it stopped and, on PostgreSQL, replicas each fire a row once.
//! It sleeps until the next row is due (at most a second, so rows written by
//! another replica are seen), and fires many at once so a thousand steps due
//! together are not served one after another.
//!
//! It runs in lanes, each with its own claims and its own bound on how many
//! fire at once: escalation steps (pages), App Home refreshes, and the rest.
//! A lane claims more as soon as one of its timers is done, never waiting for
//! a whole batch, so a Home refresh waiting out Slack's 429s, or a slow name
//! lookup, holds one place in its own lane and never delays a page.

use crate::context::AppState;
use crate::flows::approvals;
use crate::store::{Store, Timer, TimerKinds};
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

/// The longest one timer may take before it is given up and handed back (to
/// be tried again after its backoff): a store that stopped answering in the
/// middle of a statement, or Slack's 429s waited out for too long, holds its
/// place in a lane this long at most. Its flow commits in one transaction,
/// so stopping it half way is as safe as a crash.
const FIRE_DEADLINE: Duration = Duration::from_secs(300);
/// How long a claim, a renewal or a hand-back may take before the lane stops
/// waiting for it and tries again (the store's statement timeout is 30 s).
const STORE_DEADLINE: Duration = Duration::from_secs(40);
/// On shutdown, how long the timers in hand get to finish before they are
/// stopped and handed back.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The timer kinds that page people: escalation steps.
const PAGING: &[&str] = &[crate::flows::ids::STEP_TIMER];
/// App Home refreshes: `views.publish` (Tier 4), often waiting out a 429.
const HOME: &[&str] = &[crate::flows::ids::REFRESH_TIMER];
/// The kinds with a lane of their own; the last lane takes the rest.
const OWN_LANES: &[&str] = &[
    crate::flows::ids::STEP_TIMER,
    crate::flows::ids::REFRESH_TIMER,
];

/// One lane of the timer worker: the kinds it fires and how many at once.
#[derive(Clone, Copy, Debug)]
struct Lane {
    name: &'static str,
    kinds: TimerKinds<'static>,
    postgres: usize,
    sqlite: usize,
}

impl Lane {
    fn concurrency(&self, store: &Store) -> usize {
        match store {
            Store::Postgres(_) => self.postgres,
            Store::Sqlite(_) => self.sqlite,
        }
    }
}

/// Pages first and never behind anything else; Home refreshes a few at a
/// time; the rest (button refreshes, check-ins, expiries, kinds this version
/// does not know) in between.
const LANES: [Lane; 3] = [
    Lane {
        name: "paging",
        kinds: TimerKinds::Only(PAGING),
        postgres: CONCURRENCY_POSTGRES,
        sqlite: CONCURRENCY_SQLITE,
    },
    Lane {
        name: "home",
        kinds: TimerKinds::Only(HOME),
        postgres: 4,
        sqlite: 4,
    },
    Lane {
        name: "other",
        kinds: TimerKinds::Except(OWN_LANES),
        postgres: 16,
        sqlite: 8,
    },
];

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
            crate::flows::ids::EXPIRY_TIMER => {
                itself(approvals::expire(&self.state, &timer.subject_id).await)
            }
            crate::flows::ids::STEP_TIMER if self.past_last(timer).await? => itself(
                crate::flows::escalation::exhausted(&self.state, &timer.subject_id, &timer.payload)
                    .await,
            ),
            crate::flows::ids::STEP_TIMER => {
                crate::flows::escalation::fire_step(&self.state, timer, &self.worker_id).await
            }
            crate::flows::ids::REFRESH_TIMER => {
                itself(crate::flows::home::publish(&self.state, &timer.subject_id).await)
            }
            crate::flows::ids::BUTTONS_TIMER => {
                crate::flows::alert_view::refresh(&self.state, &timer.subject_id).await?;
                Ok(false)
            }
            crate::flows::ids::RESUME_TIMER => {
                itself(crate::flows::silences::resume(&self.state, &timer.subject_id).await)
            }
            crate::flows::ids::SILENCE_END_TIMER => itself(
                crate::flows::silences::silence_expired(&self.state, &timer.subject_id).await,
            ),
            crate::flows::ids::INCIDENT_CHANNEL_TIMER => itself(
                crate::flows::incident_channels::create(
                    &self.state,
                    &timer.subject_id,
                    &timer.payload,
                )
                .await,
            ),
            crate::flows::ids::ARCHIVE_CHECK_TIMER => itself(
                crate::flows::incident_channels::archive_checked(
                    &self.state,
                    &timer.subject_id,
                    &timer.payload,
                )
                .await,
            ),
            crate::flows::ids::MONITOR_TIMER => itself(
                crate::flows::monitor::check_in(&self.state, &timer.subject_id, &timer.payload)
                    .await,
            ),
            other => {
                tracing::warn!(kind = other, "a timer of a kind this version does not know");
                Ok(false)
            }
        }
    }

    /// A step timer beyond the configured tiers (of the path of the
    /// escalation's tenant): the path is exhausted.
    async fn past_last(&self, timer: &Timer) -> anyhow::Result<bool> {
        let tenant = match self.state.store.get_escalation(&timer.subject_id).await? {
            Some(esc) => esc.tenant_id,
            None => String::new(),
        };
        Ok(timer
            .payload
            .get("tier")
            .and_then(|t| t.as_u64())
            .unwrap_or(0) as usize
            >= self.state.config.escalation_for(&tenant).tiers.len())
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
            fired += crate::runtime::supervise::while_renewing(work, RENEW_EVERY, || async {
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

    /// [`run_one`](Self::run_one) within [`FIRE_DEADLINE`]; a timer that
    /// outlasts it is stopped and handed back.
    async fn run_bounded(&self, timer: Timer) {
        let (id, kind, attempts) = (timer.id.clone(), timer.kind.clone(), timer.attempts);
        match tokio::time::timeout(FIRE_DEADLINE, self.run_one(timer)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(timer = %id, kind = %kind, error = %e, "could not record a timer's outcome; its claim runs out");
            }
            Err(_) => {
                let wait = retry_after(attempts);
                tracing::error!(timer = %id, kind = %kind, deadline_s = FIRE_DEADLINE.as_secs(), retry_in_s = wait.num_seconds(), "a timer outlasted its deadline; stopped and handed back");
                let next = self.state.clock.now() + wait;
                let handed = self.state.store.retry_timer(&id, &self.worker_id, next);
                if !matches!(
                    tokio::time::timeout(STORE_DEADLINE, handed).await,
                    Ok(Ok(_))
                ) {
                    tracing::warn!(timer = %id, "could not hand a timer back; its claim runs out");
                }
            }
        }
    }

    /// One lane: keeps up to its bound of its timers firing, claiming more
    /// as soon as one is done, until shutdown; then lets those in hand
    /// finish (within [`SHUTDOWN_GRACE`]).
    async fn run_lane(&self, lane: Lane, mut shutdown: watch::Receiver<bool>) {
        let bound = lane.concurrency(&self.state.store);
        let mut firing: JoinSet<()> = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = bound.saturating_sub(firing.len());
            // Look again within a second: another replica, or a request, may
            // add an earlier one.
            let mut wait = Duration::from_secs(1);
            if free > 0 {
                let now = self.state.clock.now();
                let next = self.state.store.next_timer_due_of(lane.kinds);
                match tokio::time::timeout(STORE_DEADLINE, next).await {
                    Ok(Ok(Some(due))) if due > now => {
                        wait = (due - now).to_std().unwrap_or(wait).min(wait);
                    }
                    Ok(Ok(Some(_))) => {
                        let claim = self.state.store.claim_due_timers_of(
                            &self.worker_id,
                            now,
                            LEASE,
                            free as i64,
                            lane.kinds,
                        );
                        match tokio::time::timeout(STORE_DEADLINE, claim).await {
                            Ok(Ok(due)) => {
                                let claimed = due.len();
                                for timer in due {
                                    let me = self.clone();
                                    firing.spawn(async move { me.run_bounded(timer).await });
                                }
                                if claimed == free {
                                    // Full, or more due: look again once
                                    // one is done (or at once if there is room).
                                    continue;
                                }
                                // Another replica took the rest: look again soon.
                                wait = Duration::from_millis(50);
                            }
                            Ok(Err(e)) => {
                                tracing::error!(lane = lane.name, error = %e, "could not claim due timers");
                            }
                            Err(_) => {
                                tracing::error!(lane = lane.name, "claiming due timers timed out");
                            }
                        }
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(lane = lane.name, error = %e, "could not read when timers are due");
                    }
                    Err(_) => {
                        tracing::error!(lane = lane.name, "reading when timers are due timed out");
                    }
                }
            }
            tokio::select! {
                Some(_) = firing.join_next(), if !firing.is_empty() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        let finish = async { while firing.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, finish).await.is_err() {
            tracing::warn!(
                lane = lane.name,
                left = firing.len(),
                "timers still firing at shutdown are stopped and handed back"
            );
            firing.shutdown().await;
        }
    }

    /// Runs the lanes until shutdown, renewing this worker's claims while
    /// they run; then hands back whatever it still holds.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let lanes = futures_util::future::join_all(
            LANES
                .iter()
                .map(|lane| self.run_lane(*lane, shutdown.clone())),
        );
        crate::runtime::supervise::while_renewing(lanes, RENEW_EVERY, || async {
            let renewed = self.state.store.renew_timer_claims(&self.worker_id, LEASE);
            match tokio::time::timeout(STORE_DEADLINE, renewed).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the timer claims"),
                Err(_) => tracing::warn!("renewing the timer claims timed out"),
            }
        })
        .await;
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
