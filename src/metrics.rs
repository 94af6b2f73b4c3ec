//! A small Prometheus registry: labelled counters and gauges rendered in the
//! text exposition format. The bot needs a handful of series, not a metrics
//! framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Family {
    help: &'static str,
    kind: &'static str,
    series: BTreeMap<Labels, f64>,
}

/// The bot's metrics. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self::default();
        m.declare(
            "servo_sla_bot_http_requests_total",
            "counter",
            "HTTP requests by route and outcome.",
        );
        m.declare(
            "servo_sla_bot_slack_api_calls_total",
            "counter",
            "Slack Web API calls by method and result.",
        );
        m.declare(
            "servo_sla_bot_socket_envelopes_total",
            "counter",
            "Socket Mode envelopes by type and outcome (handled, redelivered, busy, retry, store_error).",
        );
        m.declare(
            "servo_sla_bot_socket_connections_total",
            "counter",
            "Socket Mode connection events (opened, refreshed, dropped, failed).",
        );
        m
    }

    fn declare(&self, name: &'static str, kind: &'static str, help: &'static str) {
        let mut f = self.families.lock().expect("metrics poisoned");
        let fam = f.entry(name).or_default();
        fam.help = help;
        fam.kind = kind;
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1.0);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], by: f64) {
        let mut f = self.families.lock().expect("metrics poisoned");
        let fam = f.entry(name).or_insert_with(|| Family {
            help: "",
            kind: "counter",
            series: BTreeMap::new(),
        });
        // Families hold a handful of series: finding one by comparison
        // spares the request path an allocation per label.
        let same = |k: &Labels| {
            k.len() == labels.len()
                && k.iter()
                    .zip(labels)
                    .all(|((a, x), (b, y))| a == b && x == y)
        };
        match fam.series.iter_mut().find(|(k, _)| same(k)) {
            Some((_, v)) => *v += by,
            None => *fam.series.entry(owned(labels)).or_insert(0.0) += by,
        }
    }

    /// Sets a gauge family to exactly these series, dropping the ones not given,
    /// so a tenant with no at-risk job reads 0 rather than a stale count.
    pub fn set_gauge_family(
        &self,
        name: &'static str,
        help: &'static str,
        series: Vec<(Vec<(&'static str, String)>, f64)>,
    ) {
        let mut f = self.families.lock().expect("metrics poisoned");
        let fam = f.entry(name).or_default();
        fam.help = help;
        fam.kind = "gauge";
        fam.series = series.into_iter().collect();
    }

    /// The current value of one series (for tests and `/readyz`).
    pub fn get(&self, name: &str, labels: &[(&'static str, &str)]) -> f64 {
        let f = self.families.lock().expect("metrics poisoned");
        f.get(name)
            .and_then(|fam| fam.series.get(&owned(labels)))
            .copied()
            .unwrap_or(0.0)
    }

    /// The text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let f = self.families.lock().expect("metrics poisoned");
        let mut out = String::new();
        for (name, fam) in f.iter() {
            if !fam.help.is_empty() {
                let _ = writeln!(out, "# HELP {name} {}", fam.help);
            }
            let _ = writeln!(out, "# TYPE {name} {}", fam.kind);
            for (labels, value) in &fam.series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        out
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
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
        assert!(text.contains("# TYPE servo_sla_bot_http_requests_total counter"));
        assert!(text.contains(
            "servo_sla_bot_http_requests_total{route=\"/slack/commands\",outcome=\"ok\"} 2"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.inc("x_total", &[("a", "say \"hi\"\\")]);
        assert!(m.render().contains(r#"x_total{a="say \"hi\"\\"} 1"#));
    }

    #[test]
    fn a_gauge_family_replaces_its_series() {
        let m = Metrics::new();
        m.set_gauge_family("g", "help", vec![(vec![("tenant", "a".into())], 3.0)]);
        m.set_gauge_family("g", "help", vec![(vec![("tenant", "b".into())], 1.0)]);
        assert_eq!(m.get("g", &[("tenant", "a")]), 0.0);
        assert_eq!(m.get("g", &[("tenant", "b")]), 1.0);
    }
}
