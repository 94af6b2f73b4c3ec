//! What a poll reads once for a tenant's open alerts, instead of once per
//! alert (issue 40): their escalations, recent lowest severities, Monitor
//! closely check-ins, jobs the bot paused, incident channels, how they
//! ended, the tenant's silences and maintenance windows, and its open
//! roll-up. A steady poll of 500 open alerts made about fifteen store reads
//! and a write per alert; with these it makes nine reads for the tenant and
//! one write for the severities.
//!
//! Read after the poll's roll-up is reconciled and before its alerts are.
//! An alert whose escalation changes during the poll (a start, a re-arm, a
//! bump) is read afresh afterwards: these are what the alerts were when the
//! poll began, and hold for those the poll does not change.

use crate::config::Tenant;
use crate::context::AppState;
use crate::flows::quiet::Holds;
use crate::store::{Alert, Disposition, EscalationRow, IncidentChannel, Rollup, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A tenant's open alerts' reads, taken once for a poll.
#[derive(Debug)]
pub struct PollReads {
    /// The tenant's open alerts, by id, as they are after the roll-up's
    /// reconciliation.
    pub alerts: HashMap<String, Alert>,
    /// The tenant's open roll-up, if a storm has one.
    pub rollup: Option<Rollup>,
    /// Escalations by alert id.
    pub escalations: HashMap<String, EscalationRow>,
    /// The lowest severity recorded within the tenant's `rise_within`
    /// before the poll, by alert id.
    pub min_severity: HashMap<String, f64>,
    /// Alerts with a pending Monitor closely check-in.
    pub monitoring: HashSet<String>,
    /// Jobs the bot paused for each alert and has not resumed.
    pub paused: HashMap<String, Vec<String>>,
    /// Incident channels by alert id.
    pub incident_channels: HashMap<String, IncidentChannel>,
    /// How each episode ended, where answered.
    pub dispositions: HashMap<String, Disposition>,
    /// The tenant's silences and maintenance windows.
    pub holds: Holds,
    /// Each alert's severity this poll, written in one transaction at the
    /// end of the poll's alerts ([`PollReads::write_severities`]).
    severities: Mutex<Vec<(String, DateTime<Utc>, f64)>>,
}

impl PollReads {
    /// Reads them, in nine queries whatever the number of open alerts.
    pub async fn read(
        state: &AppState,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> Result<PollReads, StoreError> {
        let store = &state.store;
        let cfg = state.config.escalation_for(&tenant.id);
        let window = chrono::Duration::from_std(cfg.rise_within).unwrap_or_default();
        let severity_since = now - window;
        Ok(PollReads {
            alerts: store
                .list_open_alerts(Some(&tenant.id))
                .await?
                .into_iter()
                .map(|a| (a.id.clone(), a))
                .collect(),
            rollup: store.open_rollup(&tenant.id).await?,
            escalations: store.open_alerts_escalations(&tenant.id).await?,
            min_severity: store
                .open_alerts_min_severity_since(&tenant.id, severity_since)
                .await?,
            monitoring: store
                .open_alerts_with_pending_timer(&tenant.id, crate::flows::ids::MONITOR_TIMER)
                .await?,
            paused: store.paused_for_open_alerts(&tenant.id).await?,
            incident_channels: store.open_alerts_incident_channels(&tenant.id).await?,
            dispositions: store.open_alerts_dispositions(&tenant.id).await?,
            holds: Holds::read(state, &tenant.id, now).await?,
            severities: Mutex::new(Vec::new()),
        })
    }

    /// Keeps an alert's severity for [`PollReads::write_severities`].
    pub fn record_severity(&self, alert_id: &str, at: DateTime<Utc>, severity: f64) {
        if let Ok(mut all) = self.severities.lock() {
            all.push((alert_id.to_string(), at, severity));
        }
    }

    /// The lowest severity since the window's start, counting `now_sev`
    /// (recorded this poll).
    pub fn min_severity_since(&self, alert_id: &str, now_sev: f64) -> f64 {
        self.min_severity
            .get(alert_id)
            .map_or(now_sev, |m| m.min(now_sev))
    }

    /// Writes the poll's severities, in one transaction.
    pub async fn write_severities(&self, state: &AppState) -> Result<(), StoreError> {
        let all = self
            .severities
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        state.store.record_severities(&all).await
    }
}
