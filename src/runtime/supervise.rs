//! Workers (the poller, the outbox, the timers, Socket Mode) run under a
//! supervisor: a panic is logged and counted, the worker starts again after a
//! short backoff, and `/readyz` names a worker that keeps dying. Without it a
//! panicking worker would end quietly while `/readyz` stayed green.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A worker that panicked this often within [`WINDOW`] keeps dying.
pub const KEEPS_DYING: usize = 3;
/// How far back panics count.
pub const WINDOW: Duration = Duration::from_secs(600);

/// Panics per worker, for `/readyz`.
#[derive(Clone, Default)]
pub struct WorkerHealth {
    panics: Arc<Mutex<HashMap<&'static str, Vec<Instant>>>>,
}

impl WorkerHealth {
    fn record(&self, worker: &'static str) -> usize {
        let mut panics = self.panics.lock().unwrap_or_else(|e| e.into_inner());
        let list = panics.entry(worker).or_default();
        list.retain(|at| at.elapsed() < WINDOW);
        list.push(Instant::now());
        list.len()
    }

    /// The workers that keep dying, with their panics within the window.
    pub fn failing(&self) -> Vec<(&'static str, usize)> {
        let panics = self.panics.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(&'static str, usize)> = panics
            .iter()
            .map(|(w, list)| (*w, list.iter().filter(|at| at.elapsed() < WINDOW).count()))
            .filter(|(_, n)| *n >= KEEPS_DYING)
            .collect();
        out.sort();
        out
    }
}

/// Runs `make()` until it returns (shutdown), starting it again whenever it
/// panics, with a backoff of 1 s doubling to 30 s, cancelled by shutdown.
pub async fn supervise<F, Fut>(
    worker: &'static str,
    health: WorkerHealth,
    stop: watch::Receiver<bool>,
    make: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    supervise_from(worker, health, stop, Duration::from_secs(1), make).await
}

/// [`supervise`], with the first backoff given.
async fn supervise_from<F, Fut>(
    worker: &'static str,
    health: WorkerHealth,
    mut stop: watch::Receiver<bool>,
    first_backoff: Duration,
    make: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = first_backoff;
    loop {
        match tokio::spawn(make()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                let recent = health.record(worker);
                tracing::error!(
                    worker,
                    panics_in_10_min = recent,
                    "a worker panicked; starting it again"
                );
            }
            Err(e) => {
                tracing::error!(worker, error = %e, "a worker was cancelled");
                return;
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Runs `work` and, every `every` while it runs, `renew`: how a worker keeps
/// the short lease on the rows it claimed for as long as it is really working
/// on them. A replica that dies stops renewing, so its rows come back to the
/// others within one lease instead of one worst case.
pub async fn while_renewing<T, R, RF>(
    work: impl Future<Output = T>,
    every: Duration,
    mut renew: R,
) -> T
where
    R: FnMut() -> RF,
    RF: Future<Output = ()>,
{
    tokio::pin!(work);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: the claim is fresh
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => renew().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_panicking_worker_starts_again_and_is_named_once_it_keeps_dying() {
        let health = WorkerHealth::default();
        let (_tx, rx) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        supervise_from(
            "poller",
            health.clone(),
            rx,
            Duration::from_millis(1),
            move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        panic!("boom {n}");
                    }
                }
            },
        )
        .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "three panics, then a clean end"
        );
        assert_eq!(health.failing(), vec![("poller", 3)]);
    }

    #[tokio::test]
    async fn shutdown_ends_the_backoff() {
        let health = WorkerHealth::default();
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(supervise("outbox", health.clone(), rx, || async {
            panic!("always")
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the supervisor stops on shutdown")
            .unwrap();
        assert!(
            health.failing().is_empty(),
            "one panic is not 'keeps dying'"
        );
    }
}
