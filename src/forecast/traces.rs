//! Deterministic synthetic backfill traces and the evaluation of the
//! forecaster against Servo's EWMA ETA on them.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use super::{
    checkpoint, median, ms_between, replay, replay_with, AssetCalibration, ClassPrior, Outcome,
    PartitionObs, PartitionState,
};

/// Tiny deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Creates a generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(1e-12);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Lognormal with the given median and log-space sigma.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
}

/// Workload pattern of a synthetic trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Constant median duration.
    Steady,
    /// Durations rise linearly, +100% by the end of the job.
    Drifting,
    /// Daily keys; month-end days take 2x.
    MonthEnd,
    /// 15% of partitions need 2–3 attempts, each costing a full duration.
    Retries,
    /// Four partitions run at once.
    Parallel,
    /// Waits upstream 10–30 min before starting, and pauses 40 min
    /// somewhere between 35% and 65% of the job.
    Paused,
    /// Degrades halfway: from the middle on, partitions take 2.5x.
    Degraded,
    /// Heavy noise: log-space sigma 0.9 instead of 0.35.
    Noisy,
}

impl Pattern {
    /// All patterns, in table order.
    pub const ALL: [Pattern; 8] = [
        Pattern::Steady,
        Pattern::Drifting,
        Pattern::MonthEnd,
        Pattern::Retries,
        Pattern::Parallel,
        Pattern::Paused,
        Pattern::Degraded,
        Pattern::Noisy,
    ];

    /// Short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Steady => "steady",
            Pattern::Drifting => "drifting",
            Pattern::MonthEnd => "month-end",
            Pattern::Retries => "retries",
            Pattern::Parallel => "parallel",
            Pattern::Paused => "paused",
            Pattern::Degraded => "degraded",
            Pattern::Noisy => "noisy",
        }
    }
}

/// A finished synthetic job.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Pattern it was generated with.
    pub pattern: Pattern,
    /// Seed it was generated with.
    pub seed: u64,
    /// Total partitions.
    pub total: i64,
    /// All partitions, completed.
    pub partitions: Vec<PartitionObs>,
}

impl Trace {
    /// Actual completion of the job: the last `completed_at`.
    pub fn actual_completion(&self) -> DateTime<Utc> {
        self.partitions
            .iter()
            .filter_map(|p| p.completed_at)
            .max()
            .unwrap_or_default()
    }
}

/// Median partition duration of the synthetic traces (ms).
pub const BASE_MEDIAN_MS: f64 = 120_000.0;
/// Log-space sigma of the duration noise.
pub const NOISE_SIGMA: f64 = 0.35;
/// Log-space sigma of the heavy-noise kind.
pub const HEAVY_NOISE_SIGMA: f64 = 0.9;
/// How much slower partitions get halfway through the degraded kind.
pub const DEGRADATION: f64 = 2.5;

/// Generates a deterministic trace. Keys are consecutive days from
/// 2023-01-01; partitions are dispatched in key order to the first free
/// worker, with 1–5 s scheduling overhead; retries wait 10–30 s between
/// attempts. `started_at` is the start of the first attempt, `duration_ms`
/// the last attempt's.
pub fn generate(pattern: Pattern, seed: u64) -> Trace {
    let mut rng = SplitMix64::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ pattern as u64);
    let n: usize = match pattern {
        Pattern::MonthEnd => 365,
        Pattern::Parallel => 400,
        _ => 300,
    };
    let workers = if pattern == Pattern::Parallel { 4 } else { 1 };
    let created = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let wait_ms = if pattern == Pattern::Paused {
        rng.uniform(10.0, 30.0) * 60_000.0
    } else {
        10_000.0
    };
    let first = created + ms(wait_ms);
    let pause = (pattern == Pattern::Paused).then(|| {
        let at = (rng.uniform(0.35, 0.65) * n as f64) as usize;
        (at, 40.0 * 60_000.0)
    });
    let sigma = if pattern == Pattern::Noisy {
        HEAVY_NOISE_SIGMA
    } else {
        NOISE_SIGMA
    };
    let day0 = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    let mut free = vec![first; workers];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let date = day0 + Duration::days(i as i64);
        if let Some((_, len)) = pause.filter(|(at, _)| *at == i) {
            let resume = *free.iter().max().unwrap() + ms(len);
            free.iter_mut().for_each(|f| *f = resume);
        }
        let w = (0..workers).min_by_key(|&w| free[w]).unwrap();
        let start = free[w] + ms(rng.uniform(1_000.0, 5_000.0));
        let mut mult = 1.0;
        if pattern == Pattern::Drifting {
            mult += i as f64 / n as f64;
        }
        if pattern == Pattern::Degraded && i >= n / 2 {
            mult *= DEGRADATION;
        }
        let month_end = (date + Duration::days(1)).month() != date.month();
        if pattern == Pattern::MonthEnd && month_end {
            mult *= 2.0;
        }
        let attempts = if pattern == Pattern::Retries && rng.next_f64() < 0.15 {
            if rng.next_f64() < 0.5 {
                2
            } else {
                3
            }
        } else {
            1
        };
        let mut t = start;
        let mut last = 0.0;
        for a in 0..attempts {
            if a > 0 {
                t += ms(rng.uniform(10_000.0, 30_000.0));
            }
            last = rng.lognormal(BASE_MEDIAN_MS * mult, sigma).round();
            t += ms(last);
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

/// Accumulated evaluation figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalResult {
    /// Forecast points evaluated (10%–90% progress).
    pub points: usize,
    /// Sum of |servo_eta − actual| / (actual − at).
    pub servo_err_sum: f64,
    /// Sum of |p50 − actual| / (actual − at).
    pub p50_err_sum: f64,
    /// Points where actual ≤ p90.
    pub p90_covered: usize,
}

impl EvalResult {
    /// Mean absolute normalised error of Servo's ETA.
    pub fn servo_mae(&self) -> f64 {
        self.servo_err_sum / self.points.max(1) as f64
    }

    /// Mean absolute normalised error of the P50.
    pub fn p50_mae(&self) -> f64 {
        self.p50_err_sum / self.points.max(1) as f64
    }

    /// Fraction of points whose actual completion was at or before P90.
    pub fn p90_coverage(&self) -> f64 {
        self.p90_covered as f64 / self.points.max(1) as f64
    }

    /// Relative reduction of the mean error versus Servo (0.3 = 30% lower).
    pub fn improvement(&self) -> f64 {
        1.0 - self.p50_mae() / self.servo_mae().max(1e-12)
    }

    /// Pools another result into this one.
    pub fn merge(&mut self, o: &EvalResult) {
        self.points += o.points;
        self.servo_err_sum += o.servo_err_sum;
        self.p50_err_sum += o.p50_err_sum;
        self.p90_covered += o.p90_covered;
    }
}

/// One scored point of a trace: Servo's relative error, the P50's, and
/// whether the P90 covered the actual completion.
struct Point {
    servo_err: f64,
    p50_err: f64,
    covered: bool,
}

/// Replays a trace and scores every completion point between 10% and 90%
/// progress. The forecaster only sees what [`replay`] gives it.
/// With a calibration, the P50 and P90 are first corrected by it, as the bot
/// corrects them with what the asset's past jobs taught.
fn points(trace: &Trace, history: Option<&AssetHistory>) -> Vec<Point> {
    let actual = trace.actual_completion();
    let calibration = history.map(|h| &h.calibration);
    replay_with(
        &trace.partitions,
        trace.total,
        history.and_then(|h| h.prior),
    )
    .into_iter()
    .filter(|row| (0.1..=0.9).contains(&(row.completed as f64 / trace.total as f64)))
    .filter_map(|row| {
        let rem = (actual - row.at).num_milliseconds() as f64;
        let (Some(servo), Some(p50), Some(p90)) = (row.servo_eta, row.p50, row.p90) else {
            return None;
        };
        let progress = row.completed as f64 / trace.total as f64;
        let (p50, p90) = match calibration.map(|c| c.for_progress(progress)) {
            Some(c) => {
                let f = c.apply(
                    super::Forecast {
                        p50,
                        p90,
                        basis: super::Basis::History,
                        throughput_per_hour: 0.0,
                        observations: row.completed as usize,
                    },
                    row.at,
                );
                (f.p50, f.p90)
            }
            None => (p50, p90),
        };
        let err = |t: DateTime<Utc>| ((t - actual).num_milliseconds() as f64).abs() / rem;
        (rem > 0.0).then(|| Point {
            servo_err: err(servo),
            p50_err: err(p50),
            covered: actual <= p90,
        })
    })
    .collect()
}

/// Scores a trace by pooled sums (means).
pub fn evaluate(trace: &Trace) -> EvalResult {
    let mut r = EvalResult::default();
    for p in points(trace, None) {
        r.points += 1;
        r.servo_err_sum += p.servo_err;
        r.p50_err_sum += p.p50_err;
        r.p90_covered += usize::from(p.covered);
    }
    r
}

/// One trace scored: the median relative error of Servo's EWMA ETA and of
/// the P50 over its points (10%–90% progress), their ratio, and how many
/// points the P90 covered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceScore {
    pub points: usize,
    pub ewma_median: f64,
    pub p50_median: f64,
    pub covered: usize,
}

impl TraceScore {
    /// P50's median error over EWMA's: below 1 the forecast wins the trace.
    pub fn ratio(&self) -> f64 {
        self.p50_median / self.ewma_median.max(1e-12)
    }
}

/// Scores one trace by medians (the figures the issue tracker quotes).
pub fn score(trace: &Trace) -> TraceScore {
    score_with(trace, None)
}

/// What the bot knows of an asset from its earlier jobs: the calibration of
/// its forecasts and the cost of its period-end partitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetHistory {
    pub calibration: AssetCalibration,
    pub prior: Option<ClassPrior>,
}

/// Scores one trace as the bot forecasts a job whose asset has `history`.
pub fn score_with(trace: &Trace, history: Option<&AssetHistory>) -> TraceScore {
    let pts = points(trace, history);
    let mut ewma: Vec<f64> = pts.iter().map(|p| p.servo_err).collect();
    let mut p50s: Vec<f64> = pts.iter().map(|p| p.p50_err).collect();
    TraceScore {
        points: pts.len(),
        ewma_median: median(&mut ewma),
        p50_median: median(&mut p50s),
        covered: pts.iter().filter(|p| p.covered).count(),
    }
}

/// One kind of job over several seeds: medians over its traces, and the
/// P90's coverage over all its points.
#[derive(Debug, Clone, PartialEq)]
pub struct KindSummary {
    pub pattern: Pattern,
    pub traces: Vec<TraceScore>,
}

impl KindSummary {
    pub fn ewma_median(&self) -> f64 {
        median(
            &mut self
                .traces
                .iter()
                .map(|t| t.ewma_median)
                .collect::<Vec<_>>(),
        )
    }
    pub fn p50_median(&self) -> f64 {
        median(&mut self.traces.iter().map(|t| t.p50_median).collect::<Vec<_>>())
    }
    /// The median of the per-trace ratios.
    pub fn ratio(&self) -> f64 {
        median(
            &mut self
                .traces
                .iter()
                .map(TraceScore::ratio)
                .collect::<Vec<_>>(),
        )
    }
    /// Won: the forecast's median error is below EWMA's on this kind.
    pub fn won(&self) -> bool {
        self.ratio() < 1.0
    }
    pub fn coverage(&self) -> f64 {
        let points: usize = self.traces.iter().map(|t| t.points).sum();
        let covered: usize = self.traces.iter().map(|t| t.covered).sum();
        covered as f64 / points.max(1) as f64
    }
}

/// Scores every kind over the given seeds; also returns the median of all
/// per-trace ratios.
pub fn score_all(seeds: RangeInclusive<u64>) -> (Vec<KindSummary>, f64) {
    let kinds: Vec<KindSummary> = Pattern::ALL
        .iter()
        .map(|&pattern| KindSummary {
            pattern,
            traces: seeds
                .clone()
                .map(|s| score(&generate(pattern, s)))
                .collect(),
        })
        .collect();
    let mut ratios: Vec<f64> = kinds
        .iter()
        .flat_map(|k| k.traces.iter().map(TraceScore::ratio))
        .collect();
    (kinds, median(&mut ratios))
}

/// What the bot would have recorded of a finished job: its first forecast
/// past each checkpoint (a quarter, half and three quarters done), and the
/// time the job then still took.
pub fn outcomes(trace: &Trace) -> Vec<(usize, Outcome)> {
    let actual = trace.actual_completion();
    let mut out: Vec<(usize, Outcome)> = Vec::new();
    for row in replay(&trace.partitions, trace.total) {
        let Some(c) = checkpoint(row.completed as f64 / trace.total as f64) else {
            continue;
        };
        if out.iter().any(|(seen, _)| *seen == c) {
            continue;
        }
        if let (Some(p50), Some(p90)) = (row.p50, row.p90) {
            out.push((
                c,
                Outcome {
                    p50_ms: ms_between(row.at, p50),
                    p90_ms: ms_between(row.at, p90),
                    actual_ms: ms_between(row.at, actual),
                },
            ));
        }
    }
    out
}

/// What an asset of one kind would know after the jobs of `seeds`: its
/// calibration, as `context::calibrations` builds it, and its period-end
/// prior from the last five of them, as the poll reads it from Servo.
pub fn history_for(pattern: Pattern, seeds: RangeInclusive<u64>) -> AssetHistory {
    let jobs: Vec<Trace> = seeds.map(|s| generate(pattern, s)).collect();
    let outcomes: Vec<(usize, Outcome)> = jobs.iter().flat_map(outcomes).collect();
    let last: Vec<Vec<PartitionObs>> = jobs
        .iter()
        .rev()
        .take(5)
        .map(|t| t.partitions.clone())
        .collect();
    AssetHistory {
        calibration: AssetCalibration::from_outcomes(&outcomes),
        prior: ClassPrior::from_jobs(&last),
    }
}

/// Every kind scored on `seeds`, each as the bot forecasts it once its asset
/// has finished the jobs of `history` (its calibration and period-end prior).
pub fn score_all_calibrated(
    history: RangeInclusive<u64>,
    seeds: RangeInclusive<u64>,
) -> (Vec<(KindSummary, AssetHistory)>, f64) {
    let kinds: Vec<(KindSummary, AssetHistory)> = Pattern::ALL
        .iter()
        .map(|&pattern| {
            let known = history_for(pattern, history.clone());
            let traces = seeds
                .clone()
                .map(|s| score_with(&generate(pattern, s), Some(&known)))
                .collect();
            (KindSummary { pattern, traces }, known)
        })
        .collect();
    let mut ratios: Vec<f64> = kinds
        .iter()
        .flat_map(|(k, _)| k.traces.iter().map(TraceScore::ratio))
        .collect();
    (kinds, median(&mut ratios))
}

/// The per-kind table: median errors as a share of the remaining time,
/// the median per-trace ratio, and the P90's coverage.
pub fn kinds_table(kinds: &[KindSummary], overall_ratio: f64) -> String {
    let mut s = String::from(
        "| kind | traces | EWMA median error | P50 median error | P50/EWMA (median per trace) | won | P90 coverage |\n\
         |---|---:|---:|---:|---:|---|---:|\n",
    );
    for k in kinds {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.2} | {} | {:.1}% |\n",
            k.pattern.name(),
            k.traces.len(),
            k.ewma_median(),
            k.p50_median(),
            k.ratio(),
            if k.won() { "yes" } else { "**no**" },
            100.0 * k.coverage()
        ));
    }
    let won = kinds.iter().filter(|k| k.won()).count();
    let points: usize = kinds.iter().flat_map(|k| &k.traces).map(|t| t.points).sum();
    let covered: usize = kinds
        .iter()
        .flat_map(|k| &k.traces)
        .map(|t| t.covered)
        .sum();
    s.push_str(&format!(
        "| **all** | {} | | | **{:.2}** | {won} of {} | {:.1}% |\n",
        kinds.iter().map(|k| k.traces.len()).sum::<usize>(),
        overall_ratio,
        kinds.len(),
        100.0 * covered as f64 / points.max(1) as f64
    ));
    s
}

/// What each kind's asset learnt from its past jobs, checkpoint by
/// checkpoint: the P50's bias ratio, the share of those jobs its P90
/// covered, and the P90 width it now uses.
pub fn calibrations_table(kinds: &[(KindSummary, AssetHistory)]) -> String {
    let mut s = String::from("| kind | period-end factor | at | past jobs | bias ratio | their P90 coverage | P90 width × |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (k, known) in kinds {
        let factor = known
            .prior
            .map_or("–".to_string(), |p| format!("{:.2}", p.factor));
        for at in super::CHECKPOINTS {
            let c = known.calibration.for_progress(at);
            s.push_str(&format!(
                "| {} | {} | {:.0}% | {} | {:.2} | {} | {:.2} |\n",
                k.pattern.name(),
                factor,
                100.0 * at,
                c.pairs(),
                c.bias_ratio(),
                c.coverage()
                    .map_or("–".into(), |v| format!("{:.0}%", 100.0 * v)),
                c.spread()
            ));
        }
    }
    s
}

/// Evaluates every pattern over the given seeds; returns per-pattern
/// results and the pooled overall result.
pub fn evaluate_all(seeds: RangeInclusive<u64>) -> (Vec<(Pattern, EvalResult)>, EvalResult) {
    let mut overall = EvalResult::default();
    let per: Vec<(Pattern, EvalResult)> = Pattern::ALL
        .iter()
        .map(|&p| {
            let mut acc = EvalResult::default();
            for seed in seeds.clone() {
                acc.merge(&evaluate(&generate(p, seed)));
            }
            overall.merge(&acc);
            (p, acc)
        })
        .collect();
    (per, overall)
}

/// Markdown table of evaluation results; besides the pooled overall row it
/// shows the pool without the parallel pattern, whose huge Servo error would
/// otherwise dominate the overall mean.
pub fn markdown_table(per: &[(Pattern, EvalResult)], overall: &EvalResult) -> String {
    let mut s = String::from(
        "| pattern | points | Servo EWMA MAE | P50 MAE | P50 vs Servo | P90 coverage |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let row = |name: &str, r: &EvalResult| {
        format!(
            "| {name} | {} | {:.3} | {:.3} | {:+.0}% | {:.1}% |\n",
            r.points,
            r.servo_mae(),
            r.p50_mae(),
            -100.0 * r.improvement(),
            100.0 * r.p90_coverage()
        )
    };
    for (p, r) in per {
        s.push_str(&row(p.name(), r));
    }
    let mut serial = EvalResult::default();
    for (_, r) in per.iter().filter(|(p, _)| *p != Pattern::Parallel) {
        serial.merge(r);
    }
    s.push_str(&row("overall without parallel", &serial));
    s.push_str(&row("**overall**", overall));
    s
}
