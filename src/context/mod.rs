//! What every flow, command, button and worker shares: the config, the
//! store, Servo, the outbound Slack client, the clock, metrics, templates,
//! the directory, PagerDuty, the outbox wake-up and the caches. Defined
//! here, below the flows, so that everything above can take it; built by
//! [`crate::app`].

pub mod calibrations;
pub mod health;
pub mod home_viewers;
pub mod override_cache;
pub mod socket_status;
pub mod status_cache;

use crate::config::FileConfig;
use crate::domain::secret::Secret;
use crate::runtime::clock::SharedClock;
use crate::runtime::metrics::Metrics;
use crate::servo::Servo;
use crate::slack::api::SlackApi;
use crate::slack::directory::Directory;
use crate::slack::render::Templates;
use crate::store::{NewOutboxMessage, Store, StoreError};
use socket_status::SocketStatus;
use std::sync::Arc;
use tokio::sync::Notify;

/// Each tenant's value as a poll computed it, and when: read again by
/// commands and dialogs between polls ([`AppState::kept_for_a_poll`]).
pub type PerPoll<T> =
    std::sync::Mutex<std::collections::HashMap<String, (chrono::DateTime<chrono::Utc>, Arc<T>)>>;

/// Each tenant's mitigation history, and when it was computed.
pub type BoughtCache = PerPoll<crate::domain::bought::History>;

/// What every handler and worker shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<FileConfig>,
    pub store: Store,
    pub servo: Servo,
    pub slack: SlackApi,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub templates: Arc<Templates>,
    /// Wakes the outbox worker when something is enqueued.
    pub outbox_wake: Arc<Notify>,
    /// Starts a poll at once (Alertmanager's webhook).
    pub poll_wake: Arc<Notify>,
    pub directory: Directory,
    /// The bearer token Alertmanager must present; `None` refuses every webhook.
    pub alertmanager_token: Option<Secret>,
    pub pagerduty: crate::pagerduty::PagerDuty,
    /// `/backfill help`'s answer, rendered once: it depends only on the config.
    pub help: Arc<std::sync::OnceLock<serde_json::Value>>,
    /// The same, serialised: the bytes the slash command route answers with.
    pub help_body: Arc<std::sync::OnceLock<bytes::Bytes>>,
    /// The answer to an unknown subcommand, serialised once around the
    /// places of the word (see [`crate::commands::help::unknown_body`]).
    pub help_unknown: Arc<std::sync::OnceLock<Option<Vec<String>>>>,
    /// `/backfill status` cards answered again for `commands.status_max_age`.
    pub status_cache: Arc<crate::context::status_cache::StatusCache>,
    /// Each tenant's forecast calibrations, as the last poll computed them.
    pub calibrations: Arc<calibrations::CalibrationCache>,
    /// Each asset's period-end prior from its earlier jobs, read hourly.
    pub priors: Arc<calibrations::PriorCache>,
    /// Each tenant's mitigation history (issue 38), as the last poll
    /// computed it (see `crate::flows::bought`).
    pub bought: Arc<BoughtCache>,
    /// Whose App Home shows each tenant, kept for a few seconds.
    pub home_viewers: Arc<home_viewers::HomeViewers>,
    /// Each rotation's on-call overrides, kept for a few seconds.
    pub overrides: Arc<override_cache::OverrideCache>,
    /// When this replica last pruned history past `review.retention` (epoch ms).
    pub last_prune_ms: Arc<std::sync::atomic::AtomicI64>,
    /// Where Socket Mode stands (`disabled` in HTTP-only mode), for `/readyz`.
    pub socket: SocketStatus,
    /// Workers' panics, for `/readyz` (see [`crate::runtime::supervise`]).
    pub workers: crate::runtime::supervise::WorkerHealth,
}

impl AppState {
    /// Writes a Slack call to the outbox and wakes the worker. Returns `None`
    /// when a message with the same dedup key was already enqueued.
    pub async fn enqueue(&self, msg: NewOutboxMessage) -> Result<Option<i64>, StoreError> {
        let id = self.store.enqueue(msg, self.clock.now()).await?;
        if id.is_some() {
            self.outbox_wake.notify_one();
        }
        Ok(id)
    }

    /// Commits a transition's effects (see [`crate::store::Store::commit`])
    /// and wakes the outbox worker when they send anything.
    pub async fn commit(&self, effects: &crate::store::Effects) -> Result<(), StoreError> {
        self.store.commit(effects, self.clock.now()).await?;
        if effects.sends() {
            self.outbox_wake.notify_one();
        }
        Ok(())
    }

    /// A tenant's entry of a [`PerPoll`] cache, when it was computed less
    /// than a poll interval ago.
    pub fn kept_for_a_poll<T>(&self, cache: &PerPoll<T>, tenant: &str) -> Option<Arc<T>> {
        let now = self.clock.now();
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .filter(|(at, _)| {
                (now - *at)
                    .to_std()
                    .is_ok_and(|age| age < self.config.poll_interval)
            })
            .map(|(_, v)| v.clone())
    }

    /// Wakes the outbox worker after a store transition wrote Slack calls.
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// Writes several Slack calls at once (see [`crate::store::Store::enqueue_many`]).
    pub async fn enqueue_many(&self, msgs: &[NewOutboxMessage]) -> Result<usize, StoreError> {
        let n = self.store.enqueue_many(msgs, self.clock.now()).await?;
        if n > 0 {
            self.outbox_wake.notify_one();
        }
        Ok(n)
    }
}
