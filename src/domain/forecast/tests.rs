//! Unit tests for the forecast module.

use super::kinds::Pattern;
use super::traces::{evaluate, generate};
use super::*;
use chrono::TimeZone;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn secs(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0).round() as i64)
}

fn day_key(i: usize) -> String {
    (NaiveDate::from_ymd_opt(2023, 1, 1).unwrap() + Duration::days(i as i64))
        .format("%Y-%m-%d")
        .to_string()
}

fn pending(key: String) -> PartitionObs {
    PartitionObs {
        key,
        state: PartitionState::Pending,
        started_at: None,
        completed_at: None,
        duration_ms: None,
        attempt_count: 0,
    }
}

/// One worker: each `(key, duration_s, attempts)` starts when the previous
/// one ends, and every attempt costs `duration_s`. Returns the partitions and
/// the completion time of the last one.
fn sequential(
    specs: &[(String, f64, i32)],
    start: DateTime<Utc>,
) -> (Vec<PartitionObs>, DateTime<Utc>) {
    let mut t = start;
    let mut out = Vec::new();
    for (key, d, attempts) in specs {
        let s = t;
        t += secs(d * f64::from(*attempts));
        out.push(PartitionObs {
            key: key.clone(),
            state: PartitionState::Completed,
            started_at: Some(s),
            completed_at: Some(t),
            duration_ms: Some((d * 1000.0).round() as i64),
            attempt_count: *attempts,
        });
    }
    (out, t)
}

fn with_pending(
    mut parts: Vec<PartitionObs>,
    keys: impl Iterator<Item = String>,
) -> Vec<PartitionObs> {
    parts.extend(keys.map(pending));
    parts
}

fn run(parts: &[PartitionObs], total: i64, now: DateTime<Utc>) -> Forecast {
    forecast(&ForecastInput {
        now,
        total_partitions: total,
        partitions: parts,
        servo_eta: servo_eta(parts, total, now),
        paused: false,
        waiting_upstream: false,
        period_end_prior: None,
    })
    .expect("forecast")
}

fn rem_s(t: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (t - now).num_milliseconds() as f64 / 1000.0
}

fn flat(n: usize, d: f64) -> Vec<(String, f64, i32)> {
    (0..n).map(|i| (day_key(i), d, 1)).collect()
}

#[test]
fn servo_eta_matches_hand_computed_ewma() {
    let (mut parts, _) = sequential(
        &[
            (day_key(0), 100.0, 1),
            (day_key(1), 200.0, 1),
            (day_key(2), 100.0, 1),
        ],
        t0(),
    );
    parts.swap(0, 2); // input order must not matter, completed_at order does
    parts.push(PartitionObs {
        state: PartitionState::Failed,
        duration_ms: Some(999_000),
        ..parts[0].clone()
    });
    parts.push(PartitionObs {
        state: PartitionState::Skipped,
        ..pending(day_key(9))
    });
    parts.push(pending(day_key(5)));
    // EWMA: 100 → 0.3·200 + 0.7·100 = 130 → 0.3·100 + 0.7·130 = 121 s.
    // Done: 3 completed + 1 failed + 1 skipped = 5, so 10 − 5 = 5 remain.
    let now = t0() + secs(400.0);
    assert_eq!(servo_eta(&parts, 10, now), Some(now + secs(605.0)));
    assert_eq!(servo_eta(&[pending(day_key(0))], 10, now), None);
}

#[test]
fn rising_trend_forecasts_later_than_flat_extrapolation() {
    // Durations rise from 60 s to ~150 s over the first 150 partitions.
    let specs: Vec<_> = (0..150)
        .map(|i| {
            let wiggle = if i % 2 == 0 { 1.03 } else { 0.97 };
            (day_key(i), (60.0 + 0.6 * i as f64) * wiggle, 1)
        })
        .collect();
    let (parts, now) = sequential(&specs, t0());
    let parts = with_pending(parts, (150..300).map(day_key));
    let f = run(&parts, 300, now);
    let rem = rem_s(f.p50, now);
    // Flat extrapolation at the latest level (~150 s) gives ~22 500 s; the
    // continued trend (150 → 240 s) gives ~29 000 s.
    let flat_rem = 150.0 * 150.0;
    assert!(rem > 1.15 * flat_rem, "p50 remaining {rem}");
    assert!(rem < 1.5 * flat_rem, "p50 remaining {rem}");
    let (flat_parts, flat_now) = sequential(&flat(150, 150.0), t0());
    let flat_parts = with_pending(flat_parts, (150..300).map(day_key));
    let ff = run(&flat_parts, 300, flat_now);
    assert!(rem > rem_s(ff.p50, flat_now) * 1.15);
}

#[test]
fn parallelism_gives_wall_clock_throughput() {
    // Four workers, 100 s partitions, staggered by 25 s.
    let mut parts = Vec::new();
    for i in 0..40 {
        let worker_offset = secs(25.0 * (i % 4) as f64);
        let round = (i / 4) as f64;
        let start = t0() + worker_offset + secs(100.0 * round);
        parts.push(PartitionObs {
            key: day_key(i),
            state: PartitionState::Completed,
            started_at: Some(start),
            completed_at: Some(start + secs(100.0)),
            duration_ms: Some(100_000),
            attempt_count: 1,
        });
    }
    let now = parts.iter().filter_map(|p| p.completed_at).max().unwrap();
    let parts = with_pending(parts, (40..140).map(day_key));
    let f = run(&parts, 140, now);
    // 100 partitions × 100 s / 4 workers = 2 500 s, versus Servo's 10 000 s.
    let rem = rem_s(f.p50, now);
    assert!((rem - 2500.0).abs() < 250.0, "p50 remaining {rem}");
    assert!(
        (f.throughput_per_hour - 144.0).abs() < 144.0 * 0.1,
        "{}",
        f.throughput_per_hour
    );
    let servo_rem = rem_s(servo_eta(&parts, 140, now).unwrap(), now);
    assert!((servo_rem - 10_000.0).abs() < 1.0);
}

#[test]
fn retries_inflate_cost_and_failed_partitions_count_as_done() {
    let (plain, plain_now) = sequential(&flat(40, 100.0), t0());
    let retried_specs: Vec<_> = (0..40)
        .map(|i| (day_key(i), 100.0, 1 + (i % 2) as i32))
        .collect();
    let (retried, retried_now) = sequential(&retried_specs, t0());
    let plain = with_pending(plain, (40..140).map(day_key));
    let retried = with_pending(retried, (40..140).map(day_key));
    let a = rem_s(run(&plain, 140, plain_now).p50, plain_now);
    let b = rem_s(run(&retried, 140, retried_now).p50, retried_now);
    // Half the partitions take two attempts: 1.5× the cost per partition.
    assert!((b / a - 1.5).abs() < 0.1, "ratio {}", b / a);

    // Five of the 45 done partitions failed: 140 − 45 = 95 remain.
    let (mut parts, now) = sequential(&flat(45, 100.0), t0());
    for p in parts.iter_mut().skip(10).step_by(8) {
        p.state = PartitionState::Failed;
    }
    let parts = with_pending(parts, (45..140).map(day_key));
    let rem = rem_s(run(&parts, 140, now).p50, now);
    assert!((rem - 9500.0).abs() < 9500.0 * 0.05, "p50 remaining {rem}");
}

#[test]
fn pause_gap_is_not_counted_as_slowness() {
    let (first, mid) = sequential(&flat(30, 100.0), t0());
    let second_specs: Vec<_> = (30..60).map(|i| (day_key(i), 100.0, 1)).collect();
    let (second, now) = sequential(&second_specs, mid + Duration::hours(5));
    let parts: Vec<_> = first.into_iter().chain(second).collect();
    let parts = with_pending(parts, (60..160).map(day_key));
    let f = run(&parts, 160, now);
    let rem = rem_s(f.p50, now);
    assert!((rem - 10_000.0).abs() < 500.0, "p50 remaining {rem}");
    // 36 partitions per active hour, not 60 / 6.7 h ≈ 9 per hour.
    assert!(
        (f.throughput_per_hour - 36.0).abs() < 2.0,
        "{}",
        f.throughput_per_hour
    );

    // Currently paused for 3 h: counts from now as if work resumed now.
    let later = now + Duration::hours(3);
    let paused = forecast(&ForecastInput {
        now: later,
        total_partitions: 160,
        partitions: &parts,
        servo_eta: servo_eta(&parts, 160, now),
        paused: true,
        waiting_upstream: false,
        period_end_prior: None,
    })
    .unwrap();
    let rem = rem_s(paused.p50, later);
    assert!((rem - 10_000.0).abs() < 500.0, "paused p50 remaining {rem}");
}

#[test]
fn waits_seen_in_the_job_widen_the_p90_but_not_the_p50() {
    // Sixty 100 s partitions, then a hundred to go; once with no wait, once
    // with a 40-minute pause after the thirtieth.
    let specs = |from: usize| {
        (from..from + 30)
            .map(|i| (day_key(i), 100.0, 1))
            .collect::<Vec<_>>()
    };
    let (first, mid) = sequential(&specs(0), t0());
    let (steady, steady_now) = sequential(&specs(30), mid + secs(2.0));
    let (resumed, paused_now) = sequential(&specs(30), mid + Duration::minutes(40));
    let job = |second: Vec<PartitionObs>| {
        with_pending(
            first.iter().cloned().chain(second).collect(),
            (60..160).map(day_key),
        )
    };
    let plain = run(&job(steady), 160, steady_now);
    let paused = run(&job(resumed), 160, paused_now);

    let (p50, p50_paused) = (rem_s(plain.p50, steady_now), rem_s(paused.p50, paused_now));
    assert!(
        (p50 - p50_paused).abs() < 60.0,
        "the pause is not pace: {p50} vs {p50_paused}"
    );
    // One wait per 6,000 busy seconds over 10,000 to go: a mean of 1.7 more,
    // 3 at the 90th percentile, 40 minutes each.
    let gap = rem_s(plain.p90, steady_now) - p50;
    let gap_paused = rem_s(paused.p90, paused_now) - p50_paused;
    assert!(gap < 1_500.0, "no wait seen, a narrow P90: {gap} s");
    assert!(
        (gap_paused - (3.0 * 2_400.0_f64).hypot(gap)).abs() < 120.0,
        "three more 40-minute waits at the P90: {gap_paused} s (without: {gap} s)"
    );
    assert_eq!(poisson_q90(0.0), 0);
    assert_eq!(poisson_q90(0.1), 0);
    assert_eq!(poisson_q90(1.0), 2);
    assert_eq!(poisson_q90(5.0), 8);
}

#[test]
fn few_observations_fall_back_to_servo() {
    let (parts, now) = sequential(&flat(3, 100.0), t0());
    let parts = with_pending(parts, (3..50).map(day_key));
    let eta = now + secs(4700.0);
    let input = ForecastInput {
        now,
        total_partitions: 50,
        partitions: &parts,
        servo_eta: Some(eta),
        paused: false,
        waiting_upstream: false,
        period_end_prior: None,
    };
    let f = forecast(&input).unwrap();
    assert_eq!(f.basis, Basis::ServoFallback);
    assert_eq!(f.observations, 3);
    assert_eq!(f.p50, eta);
    assert_eq!(f.p90, now + secs(4700.0 * FALLBACK_P90_FACTOR));

    // Waiting upstream for an hour: Servo's stale ETA is shifted to now.
    let later = now + Duration::hours(1);
    let f = forecast(&ForecastInput {
        now: later,
        waiting_upstream: true,
        period_end_prior: None,
        ..input
    })
    .unwrap();
    assert_eq!(f.p50, later + secs(4700.0));

    // Nothing completed and no Servo ETA: no forecast.
    let none = [pending(day_key(0))];
    let input = ForecastInput {
        partitions: &none,
        servo_eta: None,
        ..input
    };
    assert!(forecast(&input).is_none());
}

#[test]
fn month_end_partitions_are_costed_by_class() {
    assert_eq!(KeyClass::of("2024-02-29"), KeyClass::PeriodEnd);
    assert_eq!(KeyClass::of("2023-02-28"), KeyClass::PeriodEnd);
    assert_eq!(KeyClass::of("2024-02-28"), KeyClass::Regular);
    assert_eq!(KeyClass::of("2024-12-31T00:00"), KeyClass::PeriodEnd);
    assert_eq!(KeyClass::of("2024-03"), KeyClass::PeriodEnd);
    assert_eq!(KeyClass::of("2024-04"), KeyClass::Regular);
    assert_eq!(KeyClass::of("customer-42"), KeyClass::Regular);

    // January–March done: regular days 100 s, the 3 month-ends 200 s.
    let specs: Vec<_> = (0..90)
        .map(|i| {
            let d = if KeyClass::of(&day_key(i)) == KeyClass::PeriodEnd {
                200.0
            } else {
                100.0
            };
            (day_key(i), d, 1)
        })
        .collect();
    let (done, now) = sequential(&specs, t0());
    // Remaining: the 9 month-ends April–December plus 11 regular days.
    let month_ends: Vec<String> = (90..365)
        .map(day_key)
        .filter(|k| KeyClass::of(k) == KeyClass::PeriodEnd)
        .collect();
    assert_eq!(month_ends.len(), 9);
    let keys = month_ends.into_iter().chain((91..102).map(day_key));
    let parts = with_pending(done, keys);
    let rem = rem_s(run(&parts, 110, now).p50, now);
    let expected = 9.0 * 200.0 + 11.0 * 100.0;
    assert!(
        (rem - expected).abs() < expected * 0.05,
        "p50 remaining {rem}"
    );
}

/// Daily partitions from day `from`, regular days `d` seconds, month-ends
/// `month_end × d`.
fn days(from: usize, to: usize, d: f64, month_end: f64) -> Vec<(String, f64, i32)> {
    (from..to)
        .map(|i| {
            let k = day_key(i);
            let cost = if KeyClass::of(&k) == KeyClass::PeriodEnd {
                d * month_end
            } else {
                d
            };
            (k, cost, 1)
        })
        .collect()
}

#[test]
fn an_assets_earlier_jobs_price_its_month_ends_before_the_job_has_seen_one() {
    // Two earlier jobs of the asset over a year: month-ends took 3x, one job
    // ran slower overall (which is not a period-end effect).
    let earlier = [
        sequential(&days(0, 365, 100.0, 3.0), t0()).0,
        sequential(&days(0, 365, 150.0, 3.0), t0()).0,
    ];
    let prior = ClassPrior::from_jobs(&earlier).expect("a prior");
    assert!((prior.factor - 3.0).abs() < 0.01, "{prior:?}");
    assert_eq!(prior.period_end, 24);
    // No difference in the history: a factor of 1, still a prior.
    let flat_prior = ClassPrior::from_jobs(&[sequential(&days(0, 365, 100.0, 1.0), t0()).0]);
    assert_eq!(flat_prior.map(|p| p.factor), Some(1.0));
    assert_eq!(ClassPrior::from_jobs(&[]), None);

    // This job: 20 days done (no month-end yet), the rest of January to
    // June to go (6 month-ends among 161 days).
    let (done, now) = sequential(&days(0, 20, 100.0, 3.0), t0());
    let parts = with_pending(done, (20..181).map(day_key));
    let with = |prior: Option<ClassPrior>| {
        let f = forecast(&ForecastInput {
            now,
            total_partitions: 181,
            partitions: &parts,
            servo_eta: servo_eta(&parts, 181, now),
            paused: false,
            waiting_upstream: false,
            period_end_prior: prior,
        })
        .unwrap();
        rem_s(f.p50, now)
    };
    let expected = 155.0 * 100.0 + 6.0 * 300.0;
    let priced = with(Some(prior));
    assert!(
        (priced - expected).abs() < expected * 0.02,
        "with the asset's history: {priced} s, expected {expected} s"
    );
    let blind = with(None);
    assert!(
        (blind - 161.0 * 100.0).abs() < 161.0 * 100.0 * 0.02,
        "without it the month-ends cost as much as any day: {blind} s"
    );
}

#[test]
fn calibration_corrects_bias() {
    let pairs = [
        (1000.0, 1400.0),
        (2000.0, 3000.0),
        (1000.0, 1600.0),
        (4000.0, 6000.0),
    ];
    let cal = Calibration::from_pairs(&pairs);
    assert_eq!(cal.pairs(), 4);
    assert!((cal.bias_ratio() - 1.5).abs() < 1e-9);
    // Relative errors 400/1400, 1000/3000, 600/1600, 2000/6000: median 1/3.
    assert!((cal.accuracy().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    let now = t0();
    let f = history_forecast(now, 1000.0, 2000.0);
    let g = cal.apply(f, now);
    assert_eq!(g.p50, now + secs(1500.0));
    assert_eq!(g.p90, now + secs(3000.0));
    assert!((g.throughput_per_hour - 20.0).abs() < 1e-9);

    // Fewer than three pairs: no correction. Extreme bias: clamped.
    let two = Calibration::from_pairs(&pairs[..2]);
    assert_eq!(two.apply(f, now), f);
    let extreme = Calibration::from_pairs(&[(1.0, 10.0), (1.0, 9.0), (1.0, 12.0), (0.0, 5.0)]);
    assert_eq!(extreme.pairs(), 3);
    assert_eq!(extreme.bias_ratio(), Calibration::MAX_RATIO);
    assert_eq!(Calibration::from_pairs(&[]).accuracy(), None);
}

/// A forecast from the history, `p50_s` and `p90_s` seconds from `now`.
fn history_forecast(now: DateTime<Utc>, p50_s: f64, p90_s: f64) -> Forecast {
    Forecast {
        p50: now + secs(p50_s),
        p90: now + secs(p90_s),
        basis: Basis::History,
        throughput_per_hour: 30.0,
        observations: 10,
    }
}

fn outcomes(p50: f64, p90: f64, actuals: &[f64]) -> Vec<Outcome> {
    actuals
        .iter()
        .map(|&actual_ms| Outcome {
            p50_ms: p50,
            p90_ms: p90,
            actual_ms,
        })
        .collect()
}

#[test]
fn the_calibration_check_moves_the_p90_towards_90_percent_fully_on_a_clear_miss_partly_otherwise() {
    let now = t0();
    let f = history_forecast(now, 1000.0, 1200.0);
    // Ten jobs, half of them far beyond the P90: after the bias correction
    // (the median of actual/forecast, 1.3) only 5 are within it, and a P90
    // covering 80% shows 5 of 10 or fewer 3% of the time.
    let narrow = Calibration::from_outcomes(&outcomes(
        1000.0,
        1200.0,
        &[
            700.0, 800.0, 900.0, 1000.0, 1000.0, 1600.0, 1700.0, 1800.0, 1900.0, 2000.0,
        ],
    ));
    assert!((narrow.bias_ratio() - 1.3).abs() < 1e-9);
    assert_eq!(narrow.coverage(), Some(0.5));
    // Corrected P50 1300, width 260. For a new job to fall within it nine
    // times in ten, the width ten jobs give is the one the ⌈0.9 × (10 + 1)⌉th
    // of them needed (a conformal bound): the tenth, (2000 − 1300) / 260.
    assert!(
        (narrow.spread() - 700.0 / 260.0).abs() < 1e-9,
        "{}",
        narrow.spread()
    );
    let g = narrow.apply(f, now);
    assert_eq!(g.p50, now + secs(1300.0));
    assert_eq!(
        g.p90,
        now + secs(2000.0),
        "all ten jobs would now be covered"
    );

    // 7 of 10 is within chance of a P90 covering 80%: not a clear miss, so
    // the width moves only part of the way to what 90% needed, the model's
    // own width counting as PRIOR_JOBS jobs against the ten.
    let seven = Calibration::from_outcomes(&outcomes(
        1000.0,
        1200.0,
        &[
            800.0, 900.0, 950.0, 1000.0, 1000.0, 1100.0, 1150.0, 1300.0, 1400.0, 1500.0,
        ],
    ));
    assert_eq!(seven.coverage(), Some(0.7));
    // Bias 1.05: P50 1050, width 210; the tenth of the ten needs 450 / 210.
    let trust = 10.0 / (10.0 + Calibration::PRIOR_JOBS);
    let expected = (450.0_f64 / 210.0).powf(trust);
    assert!(
        (seven.spread() - expected).abs() < 1e-9,
        "{}",
        seven.spread()
    );
    assert!(seven.spread() > 1.0 && seven.spread() < 450.0 / 210.0);
    // All ten covered with room to spare: narrowed, but only part of the way
    // (ten jobs cannot show clearly that a P90 is too wide).
    let all = Calibration::from_outcomes(&outcomes(1000.0, 3000.0, &[1000.0; 10]));
    assert_eq!(all.coverage(), Some(1.0));
    let expected = (1.0 / Calibration::MAX_SPREAD).powf(trust);
    assert!((all.spread() - expected).abs() < 1e-9, "{}", all.spread());
    // Sixty jobs all covered, by a P90 twice as wide as they needed: narrowed.
    let wide = Calibration::from_outcomes(&outcomes(1000.0, 3000.0, &[1000.0; 60]));
    assert!(wide.spread() < 1.0, "{}", wide.spread());
    assert_eq!(wide.spread(), 1.0 / Calibration::MAX_SPREAD, "clamped");
    // Four jobs: too few to judge.
    let four = Calibration::from_outcomes(&outcomes(1000.0, 1100.0, &[2000.0; 4]));
    assert_eq!(four.spread(), 1.0);
    // Pairs with no P90 (the old shape) have no coverage.
    assert_eq!(Calibration::from_pairs(&[(1.0, 1.0); 6]).coverage(), None);
}

#[test]
fn an_asset_is_calibrated_checkpoint_by_checkpoint() {
    assert_eq!(checkpoint(0.2), None);
    assert_eq!(checkpoint(0.25), Some(0));
    assert_eq!(checkpoint(0.6), Some(1));
    assert_eq!(checkpoint(1.0), Some(2));
    // Late at a quarter done (the slope showed only later), right at half.
    let mut past: Vec<(usize, Outcome)> = outcomes(1000.0, 1500.0, &[1300.0; 5])
        .into_iter()
        .map(|o| (0, o))
        .collect();
    past.extend(
        outcomes(1000.0, 1500.0, &[1000.0; 5])
            .into_iter()
            .map(|o| (1, o)),
    );
    let cal = AssetCalibration::from_outcomes(&past);
    assert_eq!(cal.for_progress(0.1).bias_ratio(), 1.3);
    assert_eq!(cal.for_progress(0.3).bias_ratio(), 1.3);
    assert_eq!(cal.for_progress(0.45).bias_ratio(), 1.0);
    assert_eq!(
        cal.for_progress(0.9).pairs(),
        0,
        "nothing learnt at three quarters"
    );
    assert_eq!(cal.for_progress(0.9).bias_ratio(), 1.0);
}

/// What the gate expects of one kind: the targets (won, the P90
/// covering 80–95%), or a shortfall documented in `docs/forecast.md`, held
/// to the figures measured so that it does not get worse.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Won, and the P90's coverage within [`FOUR_TRACES_BAND`].
    Targets,
    /// Known short of the targets: the median ratio at most this, the
    /// coverage within this range.
    Short(f64, (f64, f64)),
}

/// Four traces per kind move a kind's coverage by several points: the band
/// 80–95% that twenty held-out traces are held to, with a little room.
const FOUR_TRACES_BAND: (f64, f64) = (0.75, 0.98);

/// The issue-39 gate: on held-out seeds (101–104, never tuned on) of one
/// generator, every kind scored as a new asset (the tenant's seven other
/// kinds' assets have finished the jobs of seeds 21–30) and with the asset's
/// own earlier jobs too: the median per-trace ratio P50/EWMA at most
/// `ratio` (0.60, the target, unless documented), and each kind as
/// `expect` says (the targets, unless documented as short of them).
/// One case of the gate: what the bot knows, the median ratio's bound, and
/// the kinds documented as short of the targets.
type Case<'a> = (super::traces::Knowing, f64, &'a [(Pattern, Expect)]);

fn gate(generator: super::traces::Generator, expected: [Case; 2]) {
    use super::traces::TenantTraces;
    let tenant = TenantTraces::new(generator, 21..=30);
    let mut failures = Vec::new();
    for (knowing, ratio_bound, exceptions) in expected {
        let (kinds, ratio) = tenant.score(generator, knowing, 101..=104);
        let case = format!("{}, {}", generator.name(), knowing.name());
        if ratio > ratio_bound {
            failures.push(format!(
                "{case}: median ratio {ratio:.3} above {ratio_bound}"
            ));
        }
        for (k, _) in &kinds {
            let expect = exceptions
                .iter()
                .find(|(p, _)| *p == k.pattern)
                .map_or(Expect::Targets, |(_, e)| *e);
            let (ratio_max, (low, high)) = match expect {
                Expect::Targets => (1.0, FOUR_TRACES_BAND),
                Expect::Short(r, band) => (r, band),
            };
            let (r, c) = (k.ratio(), k.coverage());
            // Won is strictly below 1; a documented shortfall at most its bound.
            let ratio_ok = match expect {
                Expect::Targets => r < ratio_max,
                Expect::Short(..) => r <= ratio_max,
            };
            if !ratio_ok || !(low..=high).contains(&c) {
                failures.push(format!(
                    "{case}, {}: ratio {r:.3} (at most {ratio_max}), P90 coverage {:.1}% \
                     (expected {:.0}-{:.0}%)",
                    k.pattern.name(),
                    100.0 * c,
                    100.0 * low,
                    100.0 * high
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The step of the degraded kind comes unannounced halfway: before it, a job
/// of that kind is drawn exactly like a steady one, so a new asset's
/// forecast cannot foresee it (see docs/forecast.md), and its P90 covers
/// about half the points.
const UNFORESEEABLE_STEP: Expect = Expect::Short(1.3, (0.35, 0.98));

#[test]
fn on_held_out_classic_traces_the_forecast_meets_its_targets_but_for_a_new_assets_unforeseeable_step(
) {
    use super::traces::{Generator, Knowing};
    gate(
        Generator::Classic,
        [
            (
                Knowing::NewAsset,
                0.60,
                &[(Pattern::Degraded, UNFORESEEABLE_STEP)],
            ),
            (Knowing::History, 0.60, &[]),
        ],
    );
}

#[test]
fn on_held_out_regime_traces_the_forecast_meets_its_targets_with_history_and_falls_short_as_a_new_asset(
) {
    use super::traces::{Generator, Knowing};
    gate(
        Generator::Regime,
        [
            (
                Knowing::NewAsset,
                // 0.67 on seeds 101-120: the regimes' noise, see docs/forecast.md.
                0.75,
                &[
                    (Pattern::Degraded, UNFORESEEABLE_STEP),
                    // A ramp that starts unannounced between 10% and 40%.
                    (Pattern::Drifting, Expect::Short(1.0, (0.6, 0.98))),
                ],
            ),
            (
                Knowing::History,
                0.60,
                // 93.5% on the twenty held-out traces.
                &[(Pattern::Paused, Expect::Short(1.0, (0.75, 1.0)))],
            ),
        ],
    );
}

#[test]
fn on_held_out_heavy_tailed_traces_the_forecast_falls_short_where_docs_forecast_md_says() {
    use super::traces::{Generator, Knowing};
    gate(
        Generator::HeavyTail,
        [
            (
                Knowing::NewAsset,
                // 0.77 on seeds 101-120.
                0.9,
                &[
                    (Pattern::Degraded, UNFORESEEABLE_STEP),
                    // An S-shaped ramp, unannounced: lost on the twenty (1.07).
                    (Pattern::Drifting, Expect::Short(1.4, (0.6, 0.98))),
                    // Won on the twenty (0.75), lost on these four (1.09).
                    (Pattern::Steady, Expect::Short(1.2, FOUR_TRACES_BAND)),
                    // Pauses not seen yet cannot be priced (87% on the twenty).
                    (Pattern::Paused, Expect::Short(1.0, (0.65, 0.98))),
                    // 94.8% on the twenty.
                    (Pattern::Parallel, Expect::Short(1.0, (0.75, 1.0))),
                ],
            ),
            (
                Knowing::History,
                // 0.60 on seeds 101-120.
                0.7,
                &[
                    // Won on the twenty (0.96), lost on these four (1.02).
                    (Pattern::Drifting, Expect::Short(1.15, FOUR_TRACES_BAND)),
                    // Lost on the twenty (1.39): earlier jobs' pauses, of other
                    // lengths against jobs of other sizes, mislead the bias.
                    (Pattern::Paused, Expect::Short(1.2, FOUR_TRACES_BAND)),
                ],
            ),
        ],
    );
}

#[test]
fn csv_round_trips_and_errors_name_the_line() {
    let (parts, _) = sequential(&flat(3, 100.0), t0());
    let mut parts = with_pending(parts, (3..5).map(day_key));
    parts[1].attempt_count = 2;
    let text = trace_csv(&parts);
    assert_eq!(parse_trace_csv(&text).unwrap(), parts);

    let bad_header = parse_trace_csv("key,state\n").unwrap_err();
    assert!(bad_header.starts_with("line 1:"), "{bad_header}");
    let body = format!(
        "{TRACE_HEADER}\n2023-01-01,completed,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z,60000,1\n\
         2023-01-02,completed,yesterday,,,1\n"
    );
    let err = parse_trace_csv(&body).unwrap_err();
    assert!(
        err.starts_with("line 3:") && err.contains("started_at"),
        "{err}"
    );
    let err = parse_trace_csv(&format!("{TRACE_HEADER}\n2023-01-01,done,,,,1\n")).unwrap_err();
    assert!(err.starts_with("line 2:") && err.contains("done"), "{err}");
    let err = parse_trace_csv(&format!("{TRACE_HEADER}\n\n2023-01-01,pending,,\n")).unwrap_err();
    assert!(
        err.starts_with("line 3:") && err.contains("6 fields"),
        "{err}"
    );
}

#[test]
fn replay_emits_one_row_per_completion_without_look_ahead() {
    let trace = generate(Pattern::Parallel, 7);
    let parts = &trace.partitions[..60];
    let rows = replay(parts, 60);
    assert_eq!(rows.len(), 60);
    let mut times: Vec<_> = parts.iter().filter_map(|p| p.completed_at).collect();
    times.sort();
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row.completed, k as i64 + 1);
        assert_eq!(row.at, times[k]);
        assert!(row.servo_eta.is_some() && row.p50.is_some() && row.p90 >= row.p50);
    }
    // Make the last partition absurdly slow: rows before it completes are
    // unchanged, so nothing leaks from the future.
    let mut changed = parts.to_vec();
    let last = changed.iter_mut().max_by_key(|p| p.completed_at).unwrap();
    last.duration_ms = Some(50_000_000);
    last.attempt_count = 3;
    let changed_rows = replay(&changed, 60);
    assert_eq!(rows[..59], changed_rows[..59]);

    let csv = replay_csv(&rows[..1]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("at,completed,servo_eta,p50,p90"));
    let first = lines.next().unwrap();
    assert!(
        first.starts_with(&format!("{},1,", fmt_time(Some(times[0])))),
        "{first}"
    );
    assert!(first.ends_with('Z') && !first.contains('.'), "{first}");
}

#[test]
fn traces_are_deterministic_and_show_their_pattern() {
    let a = generate(Pattern::Steady, 3);
    assert_eq!(a.partitions, generate(Pattern::Steady, 3).partitions);
    assert_ne!(a.partitions, generate(Pattern::Steady, 4).partitions);
    assert!(a
        .partitions
        .iter()
        .all(|p| p.state == PartitionState::Completed));

    let mean = |v: &[PartitionObs]| {
        v.iter().map(|p| p.duration_ms.unwrap() as f64).sum::<f64>() / v.len() as f64
    };
    let d = generate(Pattern::Drifting, 3);
    assert!(mean(&d.partitions[250..]) > 1.6 * mean(&d.partitions[..50]));

    let m = generate(Pattern::MonthEnd, 3);
    let (pe, reg): (Vec<_>, Vec<_>) = m
        .partitions
        .iter()
        .cloned()
        .partition(|p| KeyClass::of(&p.key) == KeyClass::PeriodEnd);
    assert_eq!(pe.len(), 12);
    let ratio = mean(&pe) / mean(&reg);
    assert!((1.6..2.5).contains(&ratio), "{ratio}");

    let r = generate(Pattern::Retries, 3);
    let retried = r.partitions.iter().filter(|p| p.attempt_count > 1).count();
    assert!((25..=65).contains(&retried), "{retried}");

    let p = generate(Pattern::Parallel, 3);
    let busy: i64 = p
        .partitions
        .iter()
        .map(|p| (p.completed_at.unwrap() - p.started_at.unwrap()).num_milliseconds())
        .sum();
    let first = p
        .partitions
        .iter()
        .filter_map(|p| p.started_at)
        .min()
        .unwrap();
    let wall = (p.actual_completion() - first).num_milliseconds();
    let concurrency = busy as f64 / wall as f64;
    assert!((3.5..=4.0).contains(&concurrency), "{concurrency}");

    let z = generate(Pattern::Paused, 3);
    let mut ends: Vec<_> = z.partitions.iter().filter_map(|p| p.completed_at).collect();
    ends.sort();
    let longest = ends.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(longest >= Duration::minutes(40), "{longest}");

    let g = generate(Pattern::Degraded, 3);
    assert!(mean(&g.partitions[160..]) > 2.0 * mean(&g.partitions[..140]));
    let noisy = generate(Pattern::Noisy, 3);
    let logs: Vec<f64> = noisy
        .partitions
        .iter()
        .map(|p| (p.duration_ms.unwrap() as f64).ln())
        .collect();
    let m = logs.iter().sum::<f64>() / logs.len() as f64;
    let sd = (logs.iter().map(|l| (l - m).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
    assert!((0.75..1.05).contains(&sd), "{sd}");
}

#[test]
fn evaluation_beats_servo_on_a_steady_trace() {
    let r = evaluate(&generate(Pattern::Steady, 5));
    assert_eq!(r.points, 241);
    assert!(r.p50_mae() < 0.8 * r.servo_mae(), "{r:?}");
    assert!(r.p90_coverage() > 0.6, "{r:?}");
}

/// A degradation: 100 partitions at ~120 s, then some at ~300 s, 100 left.
/// The forecast follows the new pace within a few partitions, and its P90
/// is wider while the evidence is mixed than once it has settled.
#[test]
fn after_a_degradation_the_p50_follows_the_new_pace_within_a_few_partitions() {
    let wobble = |i: usize| 1.0 + 0.05 * ((i * 7 % 11) as f64 / 10.0 - 0.5);
    let forecast_after = |slow: usize| {
        let specs: Vec<(String, f64, i32)> = (0..100 + slow)
            .map(|i| {
                let base = if i < 100 { 120.0 } else { 300.0 };
                (day_key(i), base * wobble(i), 1)
            })
            .collect();
        let (done, end) = sequential(&specs, t0());
        let parts = with_pending(done, (100 + slow..200 + slow).map(day_key));
        let f = forecast(&ForecastInput {
            now: end,
            total_partitions: (200 + slow) as i64,
            partitions: &parts,
            servo_eta: None,
            paused: false,
            waiting_upstream: false,
            period_end_prior: None,
        })
        .unwrap();
        let p50 = ms_between(end, f.p50) / 1000.0;
        let p90 = ms_between(end, f.p90) / 1000.0;
        (p50, p90)
    };
    let truth = 100.0 * 300.0;
    let (p50, early_p90) = forecast_after(6);
    assert!(
        (p50 - truth).abs() / truth < 0.15,
        "6 partitions after the change: P50 {p50:.0} s against {truth:.0} s"
    );
    let (p50, late_p90) = forecast_after(40);
    assert!((p50 - truth).abs() / truth < 0.08, "{p50:.0}");
    assert!(
        early_p90 - truth > 1.3 * (late_p90 - truth),
        "wider while mixed: {early_p90:.0} against {late_p90:.0}"
    );
}

#[test]
fn a_step_is_a_change_in_pace_and_a_steady_drift_is_not() {
    let step: Vec<f64> = (0..120)
        .map(|i| if i < 100 { 4.8 } else { 5.7 } + 0.05 * ((i * 7 % 11) as f64 / 10.0 - 0.5))
        .collect();
    let (k, d) = change_point(&step).expect("a step");
    assert!((98..=102).contains(&k), "{k}");
    assert!((0.8..1.0).contains(&d), "{d}");
    let drift: Vec<f64> = (0..200)
        .map(|i| 4.8 + (1.0 + i as f64 / 200.0).ln() + 0.05 * ((i * 7 % 11) as f64 / 10.0 - 0.5))
        .collect();
    assert_eq!(change_point(&drift), None);
    let flat: Vec<f64> = (0..200)
        .map(|i| 4.8 + 0.3 * ((i * 7 % 11) as f64 / 10.0 - 0.5))
        .collect();
    assert_eq!(change_point(&flat), None);
}

/// Two jobs whose partitions cost the same, ±10% around 120 s, 200 done and
/// 100 to go: in one the cost alternates from partition to partition, in the
/// other it wanders in runs of 50. The P90 follows what each job has shown:
/// narrow for the first (down to the floor of model error a job as regular
/// as clockwork gets), wide for the second.
#[test]
fn the_p90_follows_the_spread_the_job_has_shown_with_a_floor() {
    let width = |cost: &dyn Fn(usize) -> f64| {
        let specs: Vec<(String, f64, i32)> = (0..200).map(|i| (day_key(i), cost(i), 1)).collect();
        let (done, now) = sequential(&specs, t0());
        let parts = with_pending(done, (200..300).map(day_key));
        let f = run(&parts, 300, now);
        let p50 = rem_s(f.p50, now);
        ((rem_s(f.p90, now) - p50) / p50, p50)
    };
    let (alternating, p50) = width(&|i| if i % 2 == 0 { 132.0 } else { 108.0 });
    assert!((p50 - 12_000.0).abs() < 600.0, "{p50}");
    let (wandering, _) = width(&|i| if (i / 50) % 2 == 0 { 132.0 } else { 108.0 });
    let (clockwork, _) = width(&|_| 120.0);
    // The floor: the model error (5% of the time left, one σ) at the 90th
    // percentile.
    let floor = Z90 * MODEL_ERROR;
    assert!(
        (clockwork - floor).abs() < 0.01,
        "clockwork: {clockwork:.3} against the floor {floor:.3}"
    );
    assert!(
        alternating < 1.5 * floor,
        "cost that alternates averages out: {alternating:.3}"
    );
    assert!(
        wandering > 2.0 * alternating,
        "runs of 50 at ±10% leave the next hundred partitions' mean uncertain: \
         {wandering:.3} against {alternating:.3}"
    );
}

/// The second and third generators draw the same eight kinds as the first,
/// deterministically, each built its own way (see `regime.rs`, `heavy.rs`).
#[test]
fn the_regime_and_heavy_tailed_generators_draw_the_eight_kinds() {
    use super::traces::Generator;
    let mean = |v: &[PartitionObs]| {
        v.iter()
            .map(|p| p.duration_ms.unwrap() as f64 * f64::from(p.attempt_count))
            .sum::<f64>()
            / v.len() as f64
    };
    // Coefficient of variation of the durations.
    let cv = |v: &[PartitionObs]| {
        let d: Vec<f64> = v.iter().map(|p| p.duration_ms.unwrap() as f64).collect();
        let m = d.iter().sum::<f64>() / d.len() as f64;
        (d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / d.len() as f64).sqrt() / m
    };
    for g in [Generator::Regime, Generator::HeavyTail] {
        for pattern in Pattern::ALL {
            let t = g.generate(pattern, 3);
            let name = format!("{} {}", g.name(), pattern.name());
            assert_eq!(t.partitions, g.generate(pattern, 3).partitions, "{name}");
            assert_ne!(t.partitions, g.generate(pattern, 4).partitions, "{name}");
            assert_eq!(t.total as usize, t.partitions.len());
            assert!(t.total >= 150, "{name}: {}", t.total);
            assert!(t
                .partitions
                .iter()
                .all(|p| p.state == PartitionState::Completed
                    && p.duration_ms.is_some_and(|d| d > 0 && d % 500 == 0)));
            let mut keys: Vec<&str> = t.partitions.iter().map(|p| p.key.as_str()).collect();
            keys.dedup();
            assert_eq!(keys.len(), t.partitions.len(), "{name}: one key per day");
        }
        let n = |t: &super::kinds::Trace| t.partitions.len();
        let d = g.generate(Pattern::Drifting, 3);
        let fifth = n(&d) / 5;
        assert!(
            mean(&d.partitions[4 * fifth..]) > 1.3 * mean(&d.partitions[..fifth]),
            "{} drifting",
            g.name()
        );
        let m = g.generate(Pattern::MonthEnd, 3);
        let (pe, reg): (Vec<_>, Vec<_>) = m
            .partitions
            .iter()
            .cloned()
            .partition(|p| KeyClass::of(&p.key) == KeyClass::PeriodEnd);
        assert!(pe.len() >= 9, "{}", pe.len());
        assert!(mean(&pe) > 1.3 * mean(&reg), "{} month-end", g.name());
        let r = g.generate(Pattern::Retries, 3);
        assert!(
            r.partitions.iter().filter(|p| p.attempt_count > 1).count() > r.partitions.len() / 20
        );
        let p = g.generate(Pattern::Parallel, 3);
        let busy: i64 = p
            .partitions
            .iter()
            .map(|p| (p.completed_at.unwrap() - p.started_at.unwrap()).num_milliseconds())
            .sum();
        let first = p
            .partitions
            .iter()
            .filter_map(|p| p.started_at)
            .min()
            .unwrap();
        let concurrency = busy as f64 / (p.actual_completion() - first).num_milliseconds() as f64;
        assert!(
            (3.3..=4.0).contains(&concurrency),
            "{} {concurrency}",
            g.name()
        );
        // Pauses of several lengths, after the first start.
        let paused_seeds = (1..=6)
            .filter(|&s| {
                let z = g.generate(Pattern::Paused, s);
                let mut ends: Vec<_> = z.partitions.iter().filter_map(|p| p.completed_at).collect();
                ends.sort();
                ends.windows(2)
                    .any(|w| w[1] - w[0] >= Duration::minutes(10))
            })
            .count();
        assert!(
            paused_seeds >= 4,
            "{}: {paused_seeds} of 6 paused",
            g.name()
        );
        let deg = g.generate(Pattern::Degraded, 3);
        let half = n(&deg) / 2;
        assert!(
            mean(&deg.partitions[half..]) > 1.8 * mean(&deg.partitions[..half]),
            "{} degraded",
            g.name()
        );
        let (noisy, steady) = (
            g.generate(Pattern::Noisy, 3).partitions,
            g.generate(Pattern::Steady, 3).partitions,
        );
        assert!(
            cv(&noisy) > 1.5 * cv(&steady),
            "{} noisy: {} against {}",
            g.name(),
            cv(&noisy),
            cv(&steady)
        );
    }
}
