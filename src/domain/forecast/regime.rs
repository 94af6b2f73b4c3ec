//! A second trace generator, built unlike the first (`traces.rs`): the pace
//! of a job is a hidden Markov chain of regimes (quiet ×0.8, normal, busy
//! ×1.3, each lasting some 25 partitions), under autocorrelated (AR(1))
//! log noise, with gamma-distributed per-partition noise instead of
//! lognormal. Sizes are drawn per job: 180–480 partitions (parallel
//! 300–600, month-end a year of days from a random month) with a median of
//! 40 s to 5 min. Durations are recorded in 500 ms steps, as Servo's
//! executor records them.
//!
//! The eight kinds, each on top of that background:
//! - steady: nothing more;
//! - drifting: a slow ramp to ×1.6–2.4, starting between 10% and 40% of the
//!   job and lasting 30–60% of it;
//! - month-end: month-end days cost ×1.7–2.8 (drawn per job);
//! - retries: every attempt fails with a probability of 8–20% (drawn per
//!   job), up to 4 attempts; a failed attempt costs 20–100% of a full one,
//!   with exponential backoff (15 s, 30 s, 60 s);
//! - parallel: 4 workers of their own speed (±10%);
//! - paused: 5–45 min waiting upstream, then 1–3 pauses of 10–150 min
//!   (log-uniform) at random points;
//! - degraded: from halfway on, partitions take ×2.5;
//! - noisy: gamma shape 0.9 (a coefficient of variation near 1) instead of 5.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};

use super::kinds::{Pattern, Trace};
use super::rand::Pcg32;
use super::{PartitionObs, PartitionState};

/// The regimes' cost multipliers.
const REGIMES: [f64; 3] = [0.8, 1.0, 1.3];
/// The chance per partition that the regime changes (a mean stay of 25).
const SWITCH: f64 = 0.04;
/// AR(1) log noise: persistence and innovation.
const AR_PHI: f64 = 0.7;
const AR_SD: f64 = 0.12;
/// Gamma shape of the per-partition noise, and of the noisy kind's.
const SHAPE: f64 = 5.0;
const NOISY_SHAPE: f64 = 0.9;

/// Generates a deterministic trace of `pattern`.
pub fn generate(pattern: Pattern, seed: u64) -> Trace {
    let mut rng = Pcg32::new(seed, 0x5EED_0000 + pattern as u64);
    let n = match pattern {
        Pattern::MonthEnd => 365,
        Pattern::Parallel => rng.range(300, 600),
        _ => rng.range(180, 480),
    };
    let base_ms = rng.log_uniform(40_000.0, 300_000.0);
    let workers = if pattern == Pattern::Parallel { 4 } else { 1 };
    let speed: Vec<f64> = (0..workers)
        .map(|_| {
            if workers > 1 {
                rng.uniform(0.9, 1.1)
            } else {
                1.0
            }
        })
        .collect();
    // Keys: days from the first of a random month of 2021–2022.
    let day0 = NaiveDate::from_ymd_opt(2021 + rng.range(0, 1) as i32, rng.range(1, 12) as u32, 1)
        .unwrap_or_default();
    let created = Utc.with_ymd_and_hms(2024, 6, 3, 8, 0, 0).unwrap();
    let upstream_ms = if pattern == Pattern::Paused {
        rng.uniform(5.0, 45.0) * 60_000.0
    } else {
        rng.uniform(2_000.0, 20_000.0)
    };
    let pauses: Vec<(usize, f64)> = if pattern == Pattern::Paused {
        let k = rng.range(1, 3);
        (0..k)
            .map(|_| {
                (
                    rng.range(n / 10, 9 * n / 10),
                    rng.log_uniform(10.0, 150.0) * 60_000.0,
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let (ramp_from, ramp_len, ramp_to) = (
        rng.uniform(0.1, 0.4),
        rng.uniform(0.3, 0.6),
        rng.uniform(1.6, 2.4),
    );
    let month_end = rng.uniform(1.7, 2.8);
    let fail = rng.uniform(0.08, 0.2);
    let shape = if pattern == Pattern::Noisy {
        NOISY_SHAPE
    } else {
        SHAPE
    };

    let mut regime = 1usize;
    let mut ar = 0.0f64;
    let mut free = vec![created + ms(upstream_ms); workers];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let date = day0 + Duration::days(i as i64);
        for (_, len) in pauses.iter().filter(|(at, _)| *at == i) {
            let resume = *free.iter().max().unwrap_or(&created) + ms(*len);
            free.iter_mut().for_each(|f| *f = resume);
        }
        if rng.chance(SWITCH) {
            // To a neighbouring regime, or from an edge back to normal.
            regime = match regime {
                0 | 2 => 1,
                _ if rng.chance(0.5) => 0,
                _ => 2,
            };
        }
        ar = AR_PHI * ar + AR_SD * rng.normal();
        let progress = i as f64 / n as f64;
        let mut mult = REGIMES[regime] * ar.exp();
        match pattern {
            Pattern::Drifting => {
                let into = ((progress - ramp_from) / ramp_len).clamp(0.0, 1.0);
                mult *= 1.0 + (ramp_to - 1.0) * into;
            }
            Pattern::Degraded if i >= n / 2 => mult *= super::kinds::DEGRADATION,
            Pattern::MonthEnd if (date + Duration::days(1)).month0() != date.month0() => {
                mult *= month_end
            }
            _ => {}
        }
        let w = (0..workers).min_by_key(|&w| free[w]).unwrap_or(0);
        let start = free[w] + ms(500.0 + rng.exponential(3_000.0));
        let full = base_ms * mult * speed[w];
        let mut t = start;
        let mut attempts = 1;
        let mut last;
        loop {
            let cost = full * rng.gamma(shape, 1.0);
            let failed = pattern == Pattern::Retries && attempts < 4 && rng.chance(fail);
            last = if failed {
                cost * rng.uniform(0.2, 1.0)
            } else {
                cost
            };
            last = (last / 500.0).ceil() * 500.0;
            t += ms(last);
            if !failed {
                break;
            }
            t += ms(15_000.0 * f64::from(1 << (attempts - 1)));
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
