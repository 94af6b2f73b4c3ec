//! The bot's Prometheus metrics, kept by the `prometheus-client` crate (the
//! Prometheus project's own Rust client: OpenMetrics text, histograms,
//! typed families, no global registry). Every family is declared here, with
//! its help and, for a histogram, its buckets; the rest of the bot names a
//! family and its labels (`inc`, `observe`, `set_gauge`), so a call site
//! cannot invent a series nobody declared (it is logged and dropped).
//!
//! Counters are declared with their `_total` name, as they are exposed.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

/// A series' labels, in the order the call site gives them. Label names
/// are the call sites' constants: only the values are owned.
type Labels = Vec<(&'static str, String)>;
type CounterFamily = Family<Labels, Counter<f64, AtomicU64>>;
type GaugeFamily = Family<Labels, Gauge<f64, AtomicU64>>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;
/// One counter series, found once ([`Metrics::counter_series`]): adding to
/// it looks nothing up and allocates nothing.
pub type CounterSeries = Counter<f64, AtomicU64>;
/// One histogram series, found once ([`Metrics::histogram_series`]).
pub type HistogramSeries = Histogram;

/// The counters: name (as exposed), help.
const COUNTERS: &[(&str, &str)] = &[
    ("servo_sla_bot_http_requests_total", "HTTP requests by route and outcome."),
    ("servo_sla_bot_slack_api_calls_total", "Slack Web API calls by method and result."),
    ("servo_sla_bot_slack_rate_limited_total", "Slack Web API calls answered 429 (rate limited), by method."),
    ("servo_sla_bot_slack_refusals_total", "Slack Web API calls refused with ok=false, by method and error."),
    ("servo_sla_bot_socket_envelopes_total", "Socket Mode envelopes by type and outcome (handled, redelivered, busy, retry, store_error)."),
    ("servo_sla_bot_socket_connections_total", "Socket Mode connection events (opened, refreshed, dropped, failed)."),
    ("servo_sla_bot_pagerduty_events_total", "PagerDuty events by result (sent, retry, failed)."),
    ("servo_sla_bot_pagerduty_schedule_failures_total", "Times PagerDuty could not say who a schedule puts on call (the last people known were paged)."),
    ("servo_sla_bot_pages_total", "Pages sent, by escalation tier."),
    ("servo_sla_bot_repairs_total", "Work a stop left unfinished and the repair pass finished, by what."),
    ("servo_sla_bot_reviews_total", "Weekly SLA reviews posted."),
    ("servo_sla_bot_polls_total", "Tenant polls by tenant and outcome (ok, servo_unreachable, servo_error, store_error)."),
    ("servo_sla_bot_outbox_total", "Outbox deliveries by result (sent, found_posted, retry, refused_retry, paced, failed)."),
    ("servo_sla_bot_notices_total", "Quiet notices by kind (tight_deadline, approaching, cleared)."),
    ("servo_sla_bot_rollups_total", "Storm roll-ups by event (opened, resolved)."),
    ("servo_sla_bot_incidents_total", "Incidents wider than one job opened, by kind (widespread:<cause>, system)."),
];

/// The gauges: name, help.
const GAUGES: &[(&str, &str)] = &[
    ("servo_sla_bot_at_risk_jobs", "Active jobs at risk of missing their SLA, by tenant and band (set by the replica that polls)."),
    ("servo_sla_bot_breached_jobs", "Active jobs past their SLA deadline, by tenant (set by the replica that polls)."),
    ("servo_sla_bot_outbox_backlog", "Slack calls and PagerDuty events waiting in the outbox."),
    ("servo_sla_bot_outbox_oldest_age_seconds", "How long the oldest waiting outbox message has waited."),
    ("servo_sla_bot_open_alerts", "Open alerts by band."),
    ("servo_sla_bot_active_escalations", "Escalations paging and waiting for an acknowledgement."),
    ("servo_sla_bot_pending_approvals", "Deadline-extension requests waiting for a decision."),
    ("servo_sla_bot_silences_active", "Silences in force, by tenant (`/backfill silence`)."),
    ("servo_sla_bot_poll_lease_held", "1 while this replica holds the poll lease (it is the one polling Servo)."),
    ("servo_sla_bot_servo_up", "1 when Servo's database answered this replica's last check."),
    ("servo_sla_bot_socket_mode_enabled", "1 when this replica runs Socket Mode (SLACK_APP_TOKEN set)."),
    ("servo_sla_bot_socket_connected", "1 while this replica's Socket Mode connection is up."),
];

/// The gauges with no labels: exported as 0 until set.
const UNLABELLED_GAUGES: &[&str] = &[
    "servo_sla_bot_outbox_backlog",
    "servo_sla_bot_outbox_oldest_age_seconds",
    "servo_sla_bot_active_escalations",
    "servo_sla_bot_pending_approvals",
    "servo_sla_bot_poll_lease_held",
    "servo_sla_bot_servo_up",
    "servo_sla_bot_socket_mode_enabled",
    "servo_sla_bot_socket_connected",
];

/// The histograms: name, help, buckets (seconds).
/// A histogram's declaration: name, help, and how to make one with its buckets.
type HistogramDecl = (&'static str, &'static str, fn() -> Histogram);

const HISTOGRAMS: &[HistogramDecl] = &[
    (
        "servo_sla_bot_http_request_duration_seconds",
        "Time to answer a request, by route (Slack's requests must be answered within 3 s; Socket Mode envelopes as socket:<type>).",
        || Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0]),
    ),
    (
        "servo_sla_bot_poll_duration_seconds",
        "Time to poll one tenant (read, assess, reconcile), by tenant.",
        || Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
    ),
    (
        "servo_sla_bot_servo_query_duration_seconds",
        "Latency of Servo's database, by query.",
        || Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
    ),
    (
        "servo_sla_bot_outbox_delivery_delay_seconds",
        "Time from enqueueing a message to Slack (or PagerDuty) taking it, by method.",
        || Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]),
    ),
    (
        "servo_sla_bot_slack_api_duration_seconds",
        "Latency of one Slack Web API call, by method.",
        || Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]),
    ),
    (
        "servo_sla_bot_timer_lateness_seconds",
        "How late a timer (escalation step, expiry, check-in, Home refresh) fired after its due time, by kind.",
        || Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0]),
    ),
];

/// The bot's metrics. Cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    counters: HashMap<&'static str, CounterFamily>,
    gauges: HashMap<&'static str, GaugeFamily>,
    histograms: HashMap<&'static str, HistogramFamily>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, escape_label(v))).collect()
}

/// The exposition's escapes in a label value. The client writes values as
/// given, and ours come from config (tier names), Slack (error codes) and
/// routes: a `"` would break the whole scrape.
fn escape_label(v: &str) -> String {
    if !v.contains(['\\', '"', '\n']) {
        return v.to_string();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut counters = HashMap::new();
        for (name, help) in COUNTERS {
            let family = CounterFamily::default();
            // The client adds `_total` to a counter's name.
            let base = name.strip_suffix("_total").unwrap_or(name);
            registry.register(base, help.trim_end_matches('.'), family.clone());
            counters.insert(*name, family);
        }
        let mut gauges = HashMap::new();
        for (name, help) in GAUGES {
            let family = GaugeFamily::default();
            registry.register(*name, help.trim_end_matches('.'), family.clone());
            if UNLABELLED_GAUGES.contains(name) {
                // Present from the start: "no replica polls" reads 0, not absent.
                family.get_or_create(&Vec::new()).set(0.0);
            }
            gauges.insert(*name, family);
        }
        let mut histograms = HashMap::new();
        for (name, help, buckets) in HISTOGRAMS {
            let family = HistogramFamily::new_with_constructor(*buckets);
            registry.register(*name, help.trim_end_matches('.'), family.clone());
            histograms.insert(*name, family);
        }
        registry.register(
            "servo_sla_bot_build",
            "The running build: its version",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        Self {
            registry,
            counters,
            gauges,
            histograms,
        }
    }

    /// Every declared family as exposed: its name (a counter's without
    /// `_total`, as in `# TYPE`) and type. A family shows in the exposition
    /// once it has a series.
    pub fn families() -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = COUNTERS
            .iter()
            .map(|(n, _)| (n.strip_suffix("_total").unwrap_or(n).to_string(), "counter"))
            .collect();
        out.extend(GAUGES.iter().map(|(n, _)| (n.to_string(), "gauge")));
        out.extend(
            HISTOGRAMS
                .iter()
                .map(|(n, _, _)| (n.to_string(), "histogram")),
        );
        out.push(("servo_sla_bot_build".to_string(), "info"));
        out
    }

    fn undeclared(name: &str) {
        tracing::warn!(metric = name, "a metric that was never declared; dropped");
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1.0);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], by: f64) {
        match self.counters.get(name) {
            Some(f) => {
                f.get_or_create(&owned(labels)).inc_by(by);
            }
            None => Self::undeclared(name),
        }
    }

    /// A counter's series, to keep and add to without a look-up (the series
    /// is created, as by [`Metrics::inc`], so it shows from now on).
    pub fn counter_series(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Option<CounterSeries> {
        match self.counters.get(name) {
            Some(f) => Some(f.get_or_create(&owned(labels)).clone()),
            None => {
                Self::undeclared(name);
                None
            }
        }
    }

    /// A histogram's series, to keep and observe without a look-up.
    pub fn histogram_series(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Option<HistogramSeries> {
        match self.histograms.get(name) {
            Some(f) => Some(f.get_or_create(&owned(labels)).clone()),
            None => {
                Self::undeclared(name);
                None
            }
        }
    }

    /// Records one observation (seconds) in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        match self.histograms.get(name) {
            Some(f) => f.get_or_create(&owned(labels)).observe(value),
            None => Self::undeclared(name),
        }
    }

    /// Sets one gauge series.
    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        match self.gauges.get(name) {
            Some(f) => {
                f.get_or_create(&owned(labels)).set(value);
            }
            None => Self::undeclared(name),
        }
    }

    /// Sets a gauge family to exactly these series, dropping the ones not given,
    /// so a tenant with no at-risk job reads 0 rather than a stale count.
    pub fn set_gauge_family(
        &self,
        name: &'static str,
        series: Vec<(Vec<(&'static str, String)>, f64)>,
    ) {
        let Some(f) = self.gauges.get(name) else {
            return Self::undeclared(name);
        };
        f.clear();
        for (labels, value) in series {
            let labels: Labels = labels
                .into_iter()
                .map(|(k, v)| (k, escape_label(&v)))
                .collect();
            f.get_or_create(&labels).set(value);
        }
    }

    /// The current value of a counter or gauge series (for tests and `/readyz`).
    pub fn get(&self, name: &str, labels: &[(&'static str, &str)]) -> f64 {
        let labels = owned(labels);
        if let Some(f) = self.counters.get(name) {
            return f.get(&labels).map(|c| c.get()).unwrap_or(0.0);
        }
        if let Some(f) = self.gauges.get(name) {
            return f.get(&labels).map(|g| g.get()).unwrap_or(0.0);
        }
        0.0
    }

    /// The OpenMetrics text exposition (which Prometheus reads).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format_with_their_total_names() {
        let m = Metrics::new();
        m.inc(
            "servo_sla_bot_http_requests_total",
            &[("route", "/slack/commands"), ("outcome", "ok")],
        );
        m.inc(
            "servo_sla_bot_http_requests_total",
            &[("route", "/slack/commands"), ("outcome", "ok")],
        );
        let text = m.render();
        assert!(
            text.contains("# TYPE servo_sla_bot_http_requests counter"),
            "{text}"
        );
        assert!(
            text.contains(
                "servo_sla_bot_http_requests_total{route=\"/slack/commands\",outcome=\"ok\"} 2"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(
            m.get(
                "servo_sla_bot_http_requests_total",
                &[("route", "/slack/commands"), ("outcome", "ok")]
            ),
            2.0
        );
    }

    #[test]
    fn a_kept_series_is_the_one_the_names_find() {
        let m = Metrics::new();
        let labels = [("route", "/slack/commands"), ("outcome", "ok")];
        let kept = m
            .counter_series("servo_sla_bot_http_requests_total", &labels)
            .unwrap();
        kept.inc_by(1.0);
        m.inc("servo_sla_bot_http_requests_total", &labels);
        assert_eq!(m.get("servo_sla_bot_http_requests_total", &labels), 2.0);
        let h = m
            .histogram_series(
                "servo_sla_bot_http_request_duration_seconds",
                &[("route", "/slack/commands")],
            )
            .unwrap();
        h.observe(0.001);
        assert!(m.render().contains(
            "servo_sla_bot_http_request_duration_seconds_count{route=\"/slack/commands\"} 1"
        ));
        assert!(m
            .counter_series("servo_sla_bot_no_such_total", &[])
            .is_none());
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.inc("servo_sla_bot_pages_total", &[("tier", "say \"hi\"\\")]);
        assert!(
            m.render()
                .contains(r#"servo_sla_bot_pages_total{tier="say \"hi\"\\"} 1"#),
            "{}",
            m.render()
        );
    }

    #[test]
    fn a_gauge_family_replaces_its_series() {
        let m = Metrics::new();
        let g = "servo_sla_bot_breached_jobs";
        m.set_gauge_family(g, vec![(vec![("tenant", "a".into())], 3.0)]);
        m.set_gauge_family(g, vec![(vec![("tenant", "b".into())], 1.0)]);
        assert_eq!(m.get(g, &[("tenant", "a")]), 0.0);
        assert_eq!(m.get(g, &[("tenant", "b")]), 1.0);
        assert!(!m.render().contains("tenant=\"a\""));
    }

    #[test]
    fn histograms_count_observations_into_buckets() {
        let m = Metrics::new();
        let h = "servo_sla_bot_slack_api_duration_seconds";
        m.observe(h, &[("method", "chat.postMessage")], 0.03);
        m.observe(h, &[("method", "chat.postMessage")], 0.3);
        let text = m.render();
        assert!(text.contains("# TYPE servo_sla_bot_slack_api_duration_seconds histogram"));
        assert!(
            text.contains("servo_sla_bot_slack_api_duration_seconds_bucket{le=\"0.05\",method=\"chat.postMessage\"} 1")
                || text.contains("servo_sla_bot_slack_api_duration_seconds_bucket{method=\"chat.postMessage\",le=\"0.05\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "servo_sla_bot_slack_api_duration_seconds_count{method=\"chat.postMessage\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("servo_sla_bot_build_info{version=\""),
            "{text}"
        );
    }

    #[test]
    fn an_undeclared_metric_is_dropped_not_invented() {
        let m = Metrics::new();
        m.inc("made_up_total", &[]);
        assert!(!m.render().contains("made_up"));
    }
}
