//! A third trace generator, built unlike the other two: heavy tails and
//! several steps. Per-partition noise is log-t (3 degrees of freedom, scale
//! 0.3, cut at 6 scales), not lognormal or gamma; every job has 0–3 steps in
//! pace of about ±20% at random points; short scheduler hiccups (30–90 s,
//! 1% of partitions) sit between partitions; failed attempts are mostly
//! quick. Sizes are drawn per job: 150–600 partitions (log-uniform;
//! parallel 300–700, month-end 300–420 days from a random date) with a
//! median of 20 s to 10 min. Durations are recorded in 500 ms steps.
//!
//! The eight kinds, each on top of that background:
//! - steady: nothing more;
//! - drifting: an S-shaped (logistic) ramp to ×1.5–2.5, centred between 30%
//!   and 70% of the job, 5–20% of it wide;
//! - month-end: month-end days cost ×1.5–3.5 (drawn per job), quarter-ends
//!   ×1.3 more;
//! - retries: every attempt fails with a probability of 15%, up to 5
//!   attempts; a failed attempt times out after 5–40% of a full one, then a
//!   30 s backoff;
//! - parallel: 4 workers that slow each other (+5% per other busy worker);
//! - paused: 0–60 min waiting upstream, then pauses arriving at random in
//!   busy time (two expected over the job), each 5 min to 3 h (log-uniform);
//! - degraded: from halfway on, partitions take ×2.5;
//! - noisy: a lognormal body (σ 0.3) with 7% spikes of Pareto size
//!   (tail index 1.6, at most ×40).

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};

use super::kinds::{Pattern, Trace};
use super::rand::Pcg32;
use super::{PartitionObs, PartitionState};

/// Generates a deterministic trace of `pattern`.
pub fn generate(pattern: Pattern, seed: u64) -> Trace {
    let mut rng = Pcg32::new(seed ^ 0x00C0_FFEE, 0x7A11 + 17 * pattern as u64);
    let n = match pattern {
        Pattern::MonthEnd => rng.range(300, 420),
        Pattern::Parallel => rng.log_uniform(300.0, 700.0) as usize,
        _ => rng.log_uniform(150.0, 600.0) as usize,
    };
    let base_ms = rng.log_uniform(20_000.0, 600_000.0);
    let workers = if pattern == Pattern::Parallel { 4 } else { 1 };
    let day0 = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap_or_default()
        + Duration::days(rng.range(0, 4 * 365) as i64);
    let created = Utc.with_ymd_and_hms(2025, 2, 10, 22, 30, 0).unwrap();
    // Background steps in pace: (where, log size).
    let steps: Vec<(usize, f64)> = (0..rng.range(0, 3))
        .map(|_| (rng.range(n / 20, 19 * n / 20), 0.2 * rng.normal()))
        .collect();
    let (ramp_mid, ramp_width, ramp_to) = (
        rng.uniform(0.3, 0.7),
        rng.uniform(0.05, 0.2),
        rng.uniform(1.5, 2.5),
    );
    let month_end = rng.uniform(1.5, 3.5);
    let upstream_ms = if pattern == Pattern::Paused {
        rng.uniform(0.0, 60.0) * 60_000.0
    } else {
        rng.uniform(1_000.0, 10_000.0)
    };
    // Pauses arrive in busy time: two expected over the job's busy time.
    let pause_every = n as f64 * base_ms / workers as f64 / 2.0;
    let mut next_pause = rng.exponential(pause_every);
    let mut busy = 0.0;

    let mut free = vec![created + ms(upstream_ms); workers];
    let mut out: Vec<PartitionObs> = Vec::with_capacity(n);
    let mut level = 0.0f64;
    for i in 0..n {
        let date = day0 + Duration::days(i as i64);
        for (_, size) in steps.iter().filter(|(at, _)| *at == i) {
            level += size;
        }
        if pattern == Pattern::Paused && busy >= next_pause {
            let len = rng.log_uniform(5.0, 180.0) * 60_000.0;
            let resume = *free.iter().max().unwrap_or(&created) + ms(len);
            free.iter_mut().for_each(|f| *f = resume);
            next_pause = busy + rng.exponential(pause_every);
        }
        let progress = i as f64 / n as f64;
        let mut mult = level.exp();
        match pattern {
            Pattern::Drifting => {
                let s = 1.0 / (1.0 + (-(progress - ramp_mid) / (ramp_width / 4.0)).exp());
                mult *= 1.0 + (ramp_to - 1.0) * s;
            }
            Pattern::Degraded if i >= n / 2 => mult *= super::kinds::DEGRADATION,
            Pattern::MonthEnd if (date + Duration::days(1)).month() != date.month() => {
                mult *= month_end;
                if date.month().is_multiple_of(3) {
                    mult *= 1.3;
                }
            }
            _ => {}
        }
        let w = (0..workers).min_by_key(|&w| free[w]).unwrap_or(0);
        let mut start = free[w] + ms(rng.uniform(200.0, 2_000.0));
        if rng.chance(0.01) {
            start += ms(rng.uniform(30_000.0, 90_000.0));
        }
        if workers > 1 {
            let others = free
                .iter()
                .enumerate()
                .filter(|(o, f)| *o != w && **f > start)
                .count();
            mult *= 1.0 + 0.05 * others as f64;
        }
        let noise = |rng: &mut Pcg32| {
            if pattern == Pattern::Noisy {
                let body = (0.3 * rng.normal()).exp();
                if rng.chance(0.07) {
                    body * rng.pareto(1.6).min(40.0)
                } else {
                    body
                }
            } else {
                (0.3 * rng.student_t(3.0).clamp(-6.0, 6.0)).exp()
            }
        };
        let mut t = start;
        let mut attempts = 1;
        let mut last;
        loop {
            let full = base_ms * mult * noise(&mut rng);
            let failed = pattern == Pattern::Retries && attempts < 5 && rng.chance(0.15);
            last = if failed {
                full * rng.uniform(0.05, 0.4)
            } else {
                full
            };
            last = (last / 500.0).ceil() * 500.0;
            t += ms(last);
            busy += last;
            if !failed {
                break;
            }
            t += ms(30_000.0);
            attempts += 1;
        }
        free[w] = t;
        out.push(PartitionObs {
            key: date.format("%Y-%m-%d").to_string(),
            state: PartitionState::Completed,
            started_at: Some(start),
            completed_at: Some(t),
            duration_ms: Some(last as i64),
            attempt_count: attempts,
        });
    }
    Trace {
        pattern,
        seed,
        total: n as i64,
        partitions: out,
    }
}

fn ms(v: f64) -> Duration {
    Duration::milliseconds(v.round() as i64)
}
