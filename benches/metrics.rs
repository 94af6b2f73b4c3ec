//! The cost of the metrics on the request path: one request counts itself
//! once (a counter with two labels) and times itself once (a histogram with
//! one label); a Slack call does the same. Prints nanoseconds per operation
//! and the cost of one `/metrics` render with the series a busy bot has.
//!
//! `cargo bench --bench metrics`. See docs/benchmarks.md.

use servo_sla_bot::runtime::metrics::Metrics;
use std::hint::black_box;
use std::time::Instant;

fn per_op(n: u32, mut f: impl FnMut(u32)) -> f64 {
    for i in 0..n / 10 {
        f(i); // warm-up
    }
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let m = Metrics::new();
    let routes = ["/slack/commands", "/slack/interactions", "/slack/events"];
    let n = 2_000_000;
    let inc = per_op(n, |i| {
        m.inc(
            "servo_sla_bot_http_requests_total",
            &[("route", routes[i as usize % 3]), ("outcome", "ok")],
        )
    });
    println!("counter inc, 2 labels: {inc:.0} ns");
    let observe = observe(&m, n, &routes);
    println!(
        "request path (inc + histogram observe): {:.0} ns",
        inc + observe
    );
    let mut bytes = 0;
    let render = per_op(2_000, |_| bytes = black_box(m.render()).len());
    println!("/metrics render ({bytes} bytes): {:.1} µs", render / 1000.0);
}

/// The histogram observation of a request (absent before the metrics crate).
fn observe(m: &Metrics, n: u32, routes: &[&'static str; 3]) -> f64 {
    let o = per_op(n, |i| {
        m.observe(
            "servo_sla_bot_http_request_duration_seconds",
            &[("route", routes[i as usize % 3])],
            0.000_3 * f64::from(i % 7),
        )
    });
    println!("histogram observe, 1 label: {o:.0} ns");
    o
}
