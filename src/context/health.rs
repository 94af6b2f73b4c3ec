//! The gauges `/metrics` reads at each scrape, from this replica's point of
//! view: the store's counts (outbox backlog and its oldest message, open
//! alerts by band, active escalations, pending approvals), whether Servo
//! answers, and Socket Mode. The poll lease and the at-risk gauges are set
//! by the poller as it goes.

use super::socket_status::SocketState;
use super::AppState;
use std::time::Duration;

/// How long a scrape waits for Servo before reporting it down.
const SERVO_CHECK: Duration = Duration::from_secs(1);

pub async fn export(state: &AppState) {
    let m = &state.metrics;
    match state.store.health_counts(state.clock.now()).await {
        Ok(c) => {
            m.set_gauge("servo_sla_bot_outbox_backlog", &[], c.outbox_backlog as f64);
            m.set_gauge(
                "servo_sla_bot_outbox_oldest_age_seconds",
                &[],
                c.outbox_oldest_age_secs,
            );
            m.set_gauge_family(
                "servo_sla_bot_open_alerts",
                c.open_alerts
                    .into_iter()
                    .map(|(band, n)| (vec![("band", band)], n as f64))
                    .collect(),
            );
            m.set_gauge(
                "servo_sla_bot_active_escalations",
                &[],
                c.active_escalations as f64,
            );
            m.set_gauge(
                "servo_sla_bot_pending_approvals",
                &[],
                c.pending_approvals as f64,
            );
        }
        // The store's own trouble shows in /readyz; the gauges keep their last values.
        Err(e) => tracing::warn!(error = %e, "could not count the store for /metrics"),
    }
    if let Ok(silences) = state.store.active_silences(None, state.clock.now()).await {
        let mut by: std::collections::BTreeMap<String, usize> = Default::default();
        for s in silences {
            *by.entry(s.tenant_id).or_default() += 1;
        }
        m.set_gauge_family(
            "servo_sla_bot_silences_active",
            by.into_iter()
                .map(|(t, n)| (vec![("tenant", t)], n as f64))
                .collect(),
        );
    }
    let servo_up = matches!(
        tokio::time::timeout(SERVO_CHECK, state.servo.ping()).await,
        Ok(Ok(()))
    );
    m.set_gauge("servo_sla_bot_servo_up", &[], f64::from(u8::from(servo_up)));
    let socket = state.socket.get();
    m.set_gauge(
        "servo_sla_bot_socket_mode_enabled",
        &[],
        f64::from(u8::from(socket != SocketState::Disabled)),
    );
    m.set_gauge(
        "servo_sla_bot_socket_connected",
        &[],
        f64::from(u8::from(socket == SocketState::Connected)),
    );
}
