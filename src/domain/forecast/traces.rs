//! Deterministic synthetic backfill traces and the evaluation of the
//! forecaster against Servo's EWMA ETA on them.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use super::kinds::{Pattern, Trace, BASE_MEDIAN_MS, DEGRADATION, HEAVY_NOISE_SIGMA, NOISE_SIGMA};
use super::pool::{Profile, Record, Tenant};
use super::{
    checkpoint, median, ms_between, replay_knowing, AssetCalibration, Calibration, ClassPrior,
    Outcome, PartitionObs, PartitionState, CHECKPOINTS,
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

/// What the bot knows at a moment of a job: the period-end prior and the
/// calibration, given the job as seen then and its progress.
type Know<'a> = dyn FnMut(&[PartitionObs], f64) -> (Option<ClassPrior>, Option<Calibration>) + 'a;

/// Replays a trace and scores every completion point between 10% and 90%
/// progress. The forecaster only sees what [`replay`] gives it, and knows
/// what `know` says (the bot's calibration is applied to the forecast).
fn points(trace: &Trace, know: &mut Know) -> Vec<Point> {
    let actual = trace.actual_completion();
    let total = trace.total as f64;
    replay_knowing(
        &trace.partitions,
        trace.total,
        |done| (0.1..=0.9).contains(&(done as f64 / total)),
        know,
    )
    .into_iter()
    .filter_map(|row| {
        let rem = (actual - row.at).num_milliseconds() as f64;
        let (Some(servo), Some(p50), Some(p90)) = (row.servo_eta, row.p50, row.p90) else {
            return None;
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

/// Scores a trace by pooled sums (means), knowing nothing of its asset.
pub fn evaluate(trace: &Trace) -> EvalResult {
    let mut r = EvalResult::default();
    for p in points(trace, &mut |_, _| (None, None)) {
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

/// Scores one trace by medians, knowing nothing of its asset.
pub fn score(trace: &Trace) -> TraceScore {
    score_knowing(trace, &mut |_, _| (None, None))
}

fn score_knowing(trace: &Trace, know: &mut Know) -> TraceScore {
    let pts = points(trace, know);
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

/// Which trace generator: the project's first (`traces.rs`), the regime-
/// switching one (`regime.rs`) or the heavy-tailed one (`heavy.rs`). Each
/// draws the same eight kinds of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generator {
    Classic,
    Regime,
    HeavyTail,
}

impl Generator {
    /// All generators, in report order.
    pub const ALL: [Generator; 3] = [Generator::Classic, Generator::Regime, Generator::HeavyTail];

    /// Short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Generator::Classic => "classic",
            Generator::Regime => "regime",
            Generator::HeavyTail => "heavy-tail",
        }
    }

    /// The generator of that name.
    pub fn parse(name: &str) -> Option<Generator> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }

    /// A trace of `pattern` for `seed`, deterministic.
    pub fn generate(self, pattern: Pattern, seed: u64) -> Trace {
        match self {
            Generator::Classic => generate(pattern, seed),
            Generator::Regime => super::regime::generate(pattern, seed),
            Generator::HeavyTail => super::heavy::generate(pattern, seed),
        }
    }
}

/// What the bot knows of the asset whose job it forecasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Knowing {
    /// Nothing: no finished job anywhere in the tenant (its first asset),
    /// the case `servo-sla-bot forecast` without `--history` replays.
    Nothing,
    /// A new asset: no finished job of its own; the tenant's other assets
    /// (one of each other kind) have finished theirs.
    NewAsset,
    /// The asset has finished earlier jobs too.
    History,
}

impl Knowing {
    pub const ALL: [Knowing; 3] = [Knowing::NewAsset, Knowing::History, Knowing::Nothing];

    pub fn name(self) -> &'static str {
        match self {
            Knowing::Nothing => "nothing",
            Knowing::NewAsset => "new asset",
            Knowing::History => "with history",
        }
    }
}

/// The finished forecasts the bot would have recorded of a finished job:
/// its first forecast past each checkpoint (a quarter, half and three
/// quarters done), the time the job then still took, the job's size and what
/// its partitions said of period-end partitions by then.
pub fn records(trace: &Trace, asset: &str, job: &str) -> Vec<Record> {
    records_of(&trace.partitions, trace.total, asset, job)
}

/// [`records`] of a finished job given by its partitions and total.
pub fn records_of(partitions: &[PartitionObs], total: i64, asset: &str, job: &str) -> Vec<Record> {
    let Some(actual) = partitions.iter().filter_map(|p| p.completed_at).max() else {
        return Vec::new();
    };
    let first_past: Vec<i64> = CHECKPOINTS
        .iter()
        .map(|c| (c * total as f64).ceil().max(1.0) as i64)
        .collect();
    let mut done: Vec<&PartitionObs> = partitions
        .iter()
        .filter(|p| p.state.is_done() && p.completed_at.is_some())
        .collect();
    done.sort_by_key(|p| p.completed_at);
    let mut out: Vec<Record> = Vec::new();
    for row in replay_knowing(
        partitions,
        total,
        |k| first_past.contains(&k),
        |_, _| (None, None),
    ) {
        let Some(c) = checkpoint(row.completed as f64 / total as f64) else {
            continue;
        };
        if out.iter().any(|r| r.checkpoint == c) {
            continue;
        }
        let (Some(p50), Some(p90)) = (row.p50, row.p90) else {
            continue;
        };
        let so_far: Vec<PartitionObs> = done[..row.completed as usize]
            .iter()
            .map(|p| (*p).clone())
            .collect();
        out.push(Record {
            asset: asset.to_string(),
            job: job.to_string(),
            checkpoint: c,
            outcome: Outcome {
                p50_ms: ms_between(row.at, p50),
                p90_ms: ms_between(row.at, p90),
                actual_ms: ms_between(row.at, actual),
            },
            profile: Profile::of(&so_far, total),
            period_end: ClassPrior::of_job(&so_far),
        });
    }
    out
}

/// What the bot would have recorded of a finished job, as `(checkpoint,
/// outcome)`.
pub fn outcomes(trace: &Trace) -> Vec<(usize, Outcome)> {
    records(trace, "", "")
        .into_iter()
        .map(|r| (r.checkpoint, r.outcome))
        .collect()
}

/// A tenant of one asset per kind (named after the kind), each of which has
/// finished the jobs of some seeds: the forecasts the bot recorded of them,
/// and each asset's period-end prior from its last five jobs, as the poll
/// reads it from Servo.
#[derive(Debug, Clone)]
pub struct TenantTraces {
    records: Vec<Record>,
    own_priors: Vec<(Pattern, Option<ClassPrior>)>,
}

impl TenantTraces {
    /// The tenant of `generator` whose assets have finished the jobs of `seeds`.
    pub fn new(generator: Generator, seeds: RangeInclusive<u64>) -> TenantTraces {
        let mut records_all = Vec::new();
        let mut own_priors = Vec::new();
        for pattern in Pattern::ALL {
            let jobs: Vec<Trace> = seeds
                .clone()
                .map(|s| generator.generate(pattern, s))
                .collect();
            for t in &jobs {
                records_all.extend(records(
                    t,
                    pattern.name(),
                    &format!("{}-{}", pattern.name(), t.seed),
                ));
            }
            let last: Vec<Vec<PartitionObs>> = jobs
                .iter()
                .rev()
                .take(5)
                .map(|t| t.partitions.clone())
                .collect();
            own_priors.push((pattern, ClassPrior::from_jobs(&last)));
        }
        TenantTraces {
            records: records_all,
            own_priors,
        }
    }

    /// What the bot knows of `pattern`'s asset: its own jobs and the other
    /// assets' ([`Knowing::History`]), or the other assets' only
    /// ([`Knowing::NewAsset`]), or nothing.
    pub fn knowing(&self, pattern: Pattern, knowing: Knowing) -> Known {
        let keep: Vec<Record> = match knowing {
            Knowing::Nothing => Vec::new(),
            Knowing::NewAsset => self
                .records
                .iter()
                .filter(|r| r.asset != pattern.name())
                .cloned()
                .collect(),
            Knowing::History => self.records.clone(),
        };
        let own = match knowing {
            Knowing::History => self
                .own_priors
                .iter()
                .find(|(p, _)| *p == pattern)
                .and_then(|(_, prior)| *prior),
            _ => None,
        };
        Known {
            asset: pattern.name().to_string(),
            tenant: Tenant::from_records(&keep),
            own_prior: own,
        }
    }
}

/// What the bot knows when it forecasts a job of one asset.
#[derive(Debug, Clone)]
pub struct Known {
    asset: String,
    tenant: Tenant,
    own_prior: Option<ClassPrior>,
}

impl Known {
    /// What the bot would know of an asset from finished jobs (each all its
    /// partitions, done): the asset's own (`own`, oldest first) and the
    /// tenant's other assets' (`others`, by asset). Each job's forecasts at
    /// the checkpoints are replayed and recorded as the bot records them; the
    /// asset's period-end prior comes from its last five jobs, as the poll
    /// reads it from Servo.
    pub fn from_jobs(
        own: &[Vec<PartitionObs>],
        others: &[(String, Vec<Vec<PartitionObs>>)],
    ) -> Known {
        const ASSET: &str = "this asset";
        let total = |job: &[PartitionObs]| job.len() as i64;
        let mut all: Vec<Record> = own
            .iter()
            .enumerate()
            .flat_map(|(i, job)| records_of(job, total(job), ASSET, &format!("own-{i}")))
            .collect();
        for (asset, jobs) in others {
            for (i, job) in jobs.iter().enumerate() {
                // Another asset of the same name as this one is still another.
                let name = format!("other: {asset}");
                all.extend(records_of(job, total(job), &name, &format!("{asset}-{i}")));
            }
        }
        let last: Vec<Vec<PartitionObs>> = own.iter().rev().take(5).cloned().collect();
        Known {
            asset: ASSET.to_string(),
            tenant: Tenant::from_records(&all),
            own_prior: ClassPrior::from_jobs(&last),
        }
    }

    /// The period-end prior and the calibration for the job as seen now, as
    /// the poll gives them: both for the job's size so far.
    pub fn at(
        &self,
        view: &[PartitionObs],
        total: i64,
        progress: f64,
    ) -> (Option<ClassPrior>, Option<Calibration>) {
        let profile = Profile::of(view, total);
        let prior = self
            .tenant
            .period_end_prior(&self.asset, profile, self.own_prior);
        let calibration = self
            .tenant
            .calibration(&self.asset, profile)
            .map(|c| *c.for_progress(progress));
        (prior, calibration)
    }

    /// The calibration at the asset's own recorded size (for the tables).
    pub fn calibration(&self) -> Option<AssetCalibration> {
        self.tenant.calibration(&self.asset, None)
    }

    /// The period-end prior at the asset's own recorded size.
    pub fn prior(&self) -> Option<ClassPrior> {
        self.tenant
            .period_end_prior(&self.asset, None, self.own_prior)
    }
}

/// Scores one trace as the bot forecasts it, knowing `known`.
pub fn score_with(trace: &Trace, known: &Known) -> TraceScore {
    let total = trace.total;
    score_knowing(trace, &mut |view, progress| known.at(view, total, progress))
}

/// Every kind of `generator` scored on `seeds`, as the bot forecasts it
/// knowing what `knowing` says (the tenant's assets having finished the jobs
/// of `history`); also the median of all per-trace ratios, and what each
/// kind's asset knew.
pub fn score_kinds(
    generator: Generator,
    knowing: Knowing,
    history: RangeInclusive<u64>,
    seeds: RangeInclusive<u64>,
) -> (Vec<(KindSummary, Known)>, f64) {
    TenantTraces::new(generator, history).score(generator, knowing, seeds)
}

impl TenantTraces {
    /// [`score_kinds`] for this tenant (of `generator`).
    pub fn score(
        &self,
        generator: Generator,
        knowing: Knowing,
        seeds: RangeInclusive<u64>,
    ) -> (Vec<(KindSummary, Known)>, f64) {
        score_tenant(self, generator, knowing, seeds)
    }
}

fn score_tenant(
    tenant: &TenantTraces,
    generator: Generator,
    knowing: Knowing,
    seeds: RangeInclusive<u64>,
) -> (Vec<(KindSummary, Known)>, f64) {
    let kinds: Vec<(KindSummary, Known)> = Pattern::ALL
        .iter()
        .map(|&pattern| {
            let known = tenant.knowing(pattern, knowing);
            let traces = seeds
                .clone()
                .map(|s| score_with(&generator.generate(pattern, s), &known))
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

/// What each kind's asset knew, checkpoint by checkpoint: its period-end
/// prior, its own past jobs, the P50's bias ratio, the share of those jobs
/// its P90 covered, and the P90 width it now uses.
pub fn calibrations_table(kinds: &[(KindSummary, Known)]) -> String {
    let mut s = String::from("| kind | period-end factor | at | own past jobs | bias ratio | their P90 coverage | P90 width × |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (k, known) in kinds {
        let factor = known
            .prior()
            .map_or("–".to_string(), |p| format!("{:.2}", p.factor));
        let Some(cal) = known.calibration() else {
            continue;
        };
        for at in super::CHECKPOINTS {
            let c = cal.for_progress(at);
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
