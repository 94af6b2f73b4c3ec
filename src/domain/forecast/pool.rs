//! What a tenant's assets teach each other. The first job of a new asset has
//! no earlier job of its own to calibrate its forecast by; it borrows what the
//! tenant's other assets taught (the P50's bias, the P90's width, the cost of
//! period-end partitions), each asset weighing by how like this one it is in
//! size (partitions, and the typical partition's work). As the asset's own
//! finished jobs accrue, they take over: with `n` of its own, the borrowed
//! bias weighs `k / (n + k)`, `k` being larger when the tenant's assets agree
//! with each other and smaller when each goes its own way (see
//! [`Tenant::borrowed`]).
//!
//! Pure, like the rest of the module: [`Tenant`] is built from the finished
//! forecasts the bot recorded (`context::calibrations` reads them from the
//! store; the evaluation from replayed traces).

use super::{
    median, needed_for_90, AssetCalibration, Borrowed, Calibration, ClassPrior, Outcome,
    PartitionObs, PartitionState, CHECKPOINTS,
};

/// How alike two jobs are in size: how many partitions, and how much work
/// the typical (median) partition takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The job's partitions.
    pub partitions: f64,
    /// The median work of its completed partitions, in ms.
    pub partition_ms: f64,
}

/// A factor of this between two profiles, in partitions or in the typical
/// partition's work, is one unit of unlikeness: a likeness of `e^−½` (0.61)
/// for one unit, 0.14 for two.
const LIKENESS_SCALE: f64 = 3.0;
/// The likeness of an asset whose size is not known (records made before
/// sizes were recorded).
const UNKNOWN_LIKENESS: f64 = 0.25;
/// At most this many of the likest assets are borrowed from.
const MOST_LIKE: usize = 32;
/// The period-end partitions the tenant's like assets weigh as, at most, in a
/// new asset's prior (the job's own count one each; see [`ClassPrior`]).
const POOLED_PERIOD_ENDS: f64 = 3.0;
/// Without enough assets to tell how much they differ, the borrowed bias
/// weighs as many of the asset's own jobs as the model's own P90 width does.
const DEFAULT_BIAS_JOBS: f64 = Calibration::PRIOR_JOBS;
/// The least spread (log) assumed between assets' biases: a tenant's assets
/// are never taken to be exactly alike.
const MIN_ASSET_SPREAD: f64 = 0.05;
/// `k` stays within these bounds.
const BIAS_JOBS: (f64, f64) = (0.5, 20.0);

impl Profile {
    /// The profile of a job: `total` partitions and the median work of those
    /// completed so far. `None` without a completed partition.
    pub fn of(partitions: &[PartitionObs], total: i64) -> Option<Profile> {
        let mut work: Vec<f64> = partitions
            .iter()
            .filter(|p| p.state == PartitionState::Completed)
            .filter_map(|p| p.work_ms())
            .filter(|w| *w > 0.0)
            .collect();
        (total > 0 && !work.is_empty()).then(|| Profile {
            partitions: total as f64,
            partition_ms: median(&mut work),
        })
    }

    /// How like `other` this profile is, from 1 (the same size) towards 0.
    pub fn likeness(&self, other: &Profile) -> f64 {
        let d = |a: f64, b: f64| (a.max(1e-9) / b.max(1e-9)).ln() / LIKENESS_SCALE.ln();
        (-0.5
            * (d(self.partitions, other.partitions).powi(2)
                + d(self.partition_ms, other.partition_ms).powi(2)))
        .exp()
    }
}

/// One finished forecast, as the bot recorded it: whose, at which
/// checkpoint, how it turned out, and what the job looked like then.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub asset: String,
    pub job: String,
    /// An index into [`CHECKPOINTS`].
    pub checkpoint: usize,
    pub outcome: Outcome,
    /// The job's size when the forecast was made.
    pub profile: Option<Profile>,
    /// What the job's own partitions said of its period-end partitions by
    /// then (see [`ClassPrior::from_jobs`]).
    pub period_end: Option<ClassPrior>,
}

/// What a tenant's finished jobs taught, asset by asset.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    assets: Vec<Asset>,
}

#[derive(Debug, Clone)]
struct Asset {
    name: String,
    profile: Option<Profile>,
    outcomes: Vec<(usize, Outcome)>,
    at: [Summary; 3],
    /// The log of its period-end factor, and how many period-end partitions
    /// tell it.
    period_end: Option<(f64, usize)>,
}

/// One asset's outcomes at one checkpoint, summarised.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    n: usize,
    /// The log of the median of actual / forecast (clamped as calibration
    /// clamps it).
    log_bias: f64,
    /// The variance of the log ratios (each clamped likewise).
    var: f64,
    /// The log of the P90 width multiple nine in ten of its jobs needed,
    /// once there are enough of them to tell.
    log_width: Option<f64>,
}

impl Summary {
    fn of(outcomes: &[Outcome]) -> Summary {
        let own = Calibration::from_outcomes(outcomes);
        let logs: Vec<f64> = outcomes
            .iter()
            .filter(|o| o.p50_ms.is_finite() && o.actual_ms.is_finite() && o.p50_ms > 0.0)
            .map(|o| {
                (o.actual_ms / o.p50_ms)
                    .clamp(Calibration::MIN_RATIO, Calibration::MAX_RATIO)
                    .ln()
            })
            .collect();
        if logs.is_empty() {
            return Summary::default();
        }
        let mut sorted = logs.clone();
        let log_bias = median(&mut sorted);
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>()
            / (logs.len() as f64 - 1.0).max(1.0);
        // The need of each job, after this asset's own bias correction, as
        // its calibration measures it.
        let bias = own.bias_ratio();
        let mut needed: Vec<f64> = outcomes
            .iter()
            .filter(|o| {
                o.p50_ms > 0.0
                    && o.actual_ms.is_finite()
                    && o.p90_ms.is_finite()
                    && o.p90_ms > o.p50_ms
            })
            .map(|o| (o.actual_ms - bias * o.p50_ms) / (bias * (o.p90_ms - o.p50_ms)))
            .collect();
        let log_width = (needed.len() >= Calibration::MIN_COVERAGE_PAIRS)
            .then(|| needed_for_90(&mut needed).ln());
        Summary {
            n: logs.len(),
            log_bias,
            var,
            log_width,
        }
    }
}

/// The lower weighted median of `(value, weight)` (the mean of the two
/// middle values when the weights split exactly in half).
fn weighted_median(v: &[(f64, f64)]) -> Option<f64> {
    let mut v: Vec<(f64, f64)> = v
        .iter()
        .copied()
        .filter(|(x, w)| x.is_finite() && *w > 0.0)
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = v.iter().map(|(_, w)| w).sum();
    let mut cum = 0.0;
    for (i, (x, w)) in v.iter().enumerate() {
        cum += w;
        if (cum - total / 2.0).abs() <= 1e-12 * total {
            return Some(v.get(i + 1).map_or(*x, |(y, _)| (x + y) / 2.0));
        }
        if cum > total / 2.0 {
            return Some(*x);
        }
    }
    None
}

impl Tenant {
    /// Groups the records by asset. An asset's size is the median of its
    /// records' sizes; its period-end factor, its jobs' factors (each job's
    /// latest record), weighted by how many period-end partitions each saw.
    pub fn from_records(records: &[Record]) -> Tenant {
        let mut names: Vec<&str> = records.iter().map(|r| r.asset.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let assets = names
            .into_iter()
            .map(|name| {
                let mine: Vec<&Record> = records.iter().filter(|r| r.asset == name).collect();
                let mut parts: Vec<f64> = mine
                    .iter()
                    .filter_map(|r| r.profile.map(|p| p.partitions))
                    .collect();
                let mut work: Vec<f64> = mine
                    .iter()
                    .filter_map(|r| r.profile.map(|p| p.partition_ms))
                    .collect();
                let profile = (!parts.is_empty()).then(|| Profile {
                    partitions: median(&mut parts),
                    partition_ms: median(&mut work),
                });
                let outcomes: Vec<(usize, Outcome)> = mine
                    .iter()
                    .filter(|r| r.checkpoint < CHECKPOINTS.len())
                    .map(|r| (r.checkpoint, r.outcome))
                    .collect();
                let at = std::array::from_fn(|c| {
                    let here: Vec<Outcome> = outcomes
                        .iter()
                        .filter(|(k, _)| *k == c)
                        .map(|(_, o)| *o)
                        .collect();
                    Summary::of(&here)
                });
                // Each job's latest word on its period-end partitions.
                let mut latest: Vec<(&str, usize, ClassPrior)> = Vec::new();
                for r in &mine {
                    let Some(p) = r.period_end else { continue };
                    match latest.iter_mut().find(|(job, _, _)| *job == r.job) {
                        Some(l) if l.1 < r.checkpoint => *l = (&r.job, r.checkpoint, p),
                        Some(_) => {}
                        None => latest.push((&r.job, r.checkpoint, p)),
                    }
                }
                let count: usize = latest.iter().map(|(_, _, p)| p.period_end).sum();
                let period_end = (count > 0).then(|| {
                    let log = latest
                        .iter()
                        .map(|(_, _, p)| p.period_end as f64 * p.factor.ln())
                        .sum::<f64>()
                        / count as f64;
                    (log, count)
                });
                Asset {
                    name: name.to_string(),
                    profile,
                    outcomes,
                    at,
                    period_end,
                }
            })
            .collect();
        Tenant { assets }
    }

    /// The assets that have taught something.
    pub fn assets(&self) -> impl Iterator<Item = &str> {
        self.assets.iter().map(|a| a.name.as_str())
    }

    fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.name == name)
    }

    /// The other assets, likest first (at most [`MOST_LIKE`]), with their
    /// likeness to a job of `profile` (or, without one, to the asset's own
    /// recorded size).
    fn others(&self, asset: &str, profile: Option<Profile>) -> Vec<(&Asset, f64)> {
        let profile = profile.or_else(|| self.asset(asset).and_then(|a| a.profile));
        let mut others: Vec<(&Asset, f64)> = self
            .assets
            .iter()
            .filter(|a| a.name != asset)
            .map(|a| {
                let like = match (profile, a.profile) {
                    (Some(p), Some(q)) => p.likeness(&q),
                    _ => UNKNOWN_LIKENESS,
                };
                (a, like)
            })
            .collect();
        others.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
        others.truncate(MOST_LIKE);
        others
    }

    /// What the tenant's other assets taught at `checkpoint`, for a job of
    /// `asset` sized `profile`; `None` when none has a finished job there.
    ///
    /// - **Bias**: the weighted median of the other assets' (log) biases,
    ///   each weighing its likeness × `m / (m + 2)` for its `m` outcomes
    ///   there. The sum of those weights `S` says how much like evidence
    ///   there is; the borrowed bias is shrunk towards none by `S / (S + 1)`.
    /// - **How many of the asset's own jobs it weighs as** (`k`): the
    ///   within-asset variance of the log ratios over the variance between
    ///   the assets' biases (an empirical-Bayes ratio; this asset's counts once
    ///   it has 3 finished jobs there), within [0.5, 20]: a
    ///   tenant whose assets all run alike teaches a new one a lot, one whose
    ///   assets differ teaches little beyond the first jobs. With fewer than
    ///   three assets of three outcomes each, 5.
    /// - **The P90's width**: the weighted median of the widths nine in ten
    ///   of their jobs needed (assets with 5 outcomes or more, each weighing
    ///   its likeness × `m / (m + 5)`), shrunk likewise.
    pub fn borrowed(
        &self,
        asset: &str,
        profile: Option<Profile>,
        checkpoint: usize,
    ) -> Option<Borrowed> {
        let c = checkpoint.min(CHECKPOINTS.len() - 1);
        let others = self.others(asset, profile);
        let biases: Vec<(f64, f64)> = others
            .iter()
            .filter(|(a, _)| a.at[c].n > 0)
            .map(|(a, like)| {
                let m = a.at[c].n as f64;
                (a.at[c].log_bias, like * m / (m + 2.0))
            })
            .collect();
        let s: f64 = biases.iter().map(|(_, w)| w).sum();
        let log_bias = weighted_median(&biases)? * s / (s + 1.0);
        let widths: Vec<(f64, f64)> = others
            .iter()
            .filter_map(|(a, like)| {
                let m = a.at[c].n as f64;
                a.at[c]
                    .log_width
                    .map(|w| (w, like * m / (m + Calibration::PRIOR_JOBS)))
            })
            .collect();
        let sw: f64 = widths.iter().map(|(_, w)| w).sum();
        let log_width = weighted_median(&widths).map_or(0.0, |w| w * sw / (sw + 1.0));
        // How much the assets differ (this one too, once it has finished
        // jobs enough to tell), against how much one asset's jobs do.
        let told: Vec<&Summary> = self
            .asset(asset)
            .into_iter()
            .map(|a| &a.at[c])
            .chain(others.iter().map(|(a, _)| &a.at[c]))
            .filter(|s| s.n >= Calibration::MIN_PAIRS)
            .collect();
        let bias_jobs = if told.len() >= 3 {
            let k = told.len() as f64;
            let within = told.iter().map(|s| s.var).sum::<f64>() / k;
            let mean = told.iter().map(|s| s.log_bias).sum::<f64>() / k;
            let between = told
                .iter()
                .map(|s| (s.log_bias - mean).powi(2))
                .sum::<f64>()
                / (k - 1.0)
                - told.iter().map(|s| s.var / s.n as f64).sum::<f64>() / k;
            (within / between.max(MIN_ASSET_SPREAD * MIN_ASSET_SPREAD))
                .clamp(BIAS_JOBS.0, BIAS_JOBS.1)
        } else {
            DEFAULT_BIAS_JOBS
        };
        Some(Borrowed {
            log_bias,
            bias_jobs,
            log_width,
        })
    }

    /// The calibration of a job of `asset` sized `profile`: its own finished
    /// jobs, each checkpoint starting from what the tenant's other assets
    /// taught there. `None` when neither it nor any other asset has a
    /// finished job.
    pub fn calibration(&self, asset: &str, profile: Option<Profile>) -> Option<AssetCalibration> {
        let own: &[(usize, Outcome)] = self.asset(asset).map_or(&[], |a| &a.outcomes);
        let borrowed: [Option<Borrowed>; 3] =
            std::array::from_fn(|c| self.borrowed(asset, profile, c));
        (!own.is_empty() || borrowed.iter().any(Option::is_some))
            .then(|| AssetCalibration::from_outcomes_with(own, borrowed))
    }

    /// The period-end prior of a job of `asset` sized `profile`: the asset's
    /// own (`own`, from its earlier jobs' partitions), combined in log space
    /// with the weighted median of the like assets' factors, which weighs as
    /// at most [`POOLED_PERIOD_ENDS`] period-end partitions (by their
    /// likeness × `c / (c + 2)` for the `c` period-end partitions each saw,
    /// `S / (S + 1)` of it). Without either, `own`.
    pub fn period_end_prior(
        &self,
        asset: &str,
        profile: Option<Profile>,
        own: Option<ClassPrior>,
    ) -> Option<ClassPrior> {
        let factors: Vec<(f64, f64)> = self
            .others(asset, profile)
            .iter()
            .filter_map(|(a, like)| {
                let (log, count) = a.period_end?;
                let c = count as f64;
                Some((log, like * c / (c + 2.0)))
            })
            .collect();
        let s: f64 = factors.iter().map(|(_, w)| w).sum();
        let Some(pooled) = weighted_median(&factors) else {
            return own;
        };
        let weight = POOLED_PERIOD_ENDS * s / (s + 1.0);
        if weight < 0.5 {
            return own;
        }
        Some(match own {
            Some(o) => {
                let n = o.period_end as f64;
                ClassPrior {
                    factor: ((n * o.factor.ln() + weight * pooled) / (n + weight)).exp(),
                    period_end: o.period_end + weight.round() as usize,
                }
            }
            None => ClassPrior {
                factor: pooled.exp(),
                period_end: (weight.round() as usize).max(1),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(partitions: f64, partition_ms: f64) -> Option<Profile> {
        Some(Profile {
            partitions,
            partition_ms,
        })
    }

    /// `n` finished jobs of `asset`, at `checkpoint`, each forecast
    /// `p50`/`p90` ms and taking `actual(i)`.
    fn records(
        asset: &str,
        size: Option<Profile>,
        checkpoint: usize,
        n: usize,
        (p50, p90): (f64, f64),
        actual: impl Fn(usize) -> f64,
    ) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                asset: asset.to_string(),
                job: format!("{asset}-{i}"),
                checkpoint,
                outcome: Outcome {
                    p50_ms: p50,
                    p90_ms: p90,
                    actual_ms: actual(i),
                },
                profile: size,
                period_end: None,
            })
            .collect()
    }

    /// A wobble of ±5% around 1, the same for every asset.
    fn wobble(i: usize) -> f64 {
        1.0 + 0.05 * ((i * 7 % 11) as f64 / 5.0 - 1.0)
    }

    /// A wobble of ±20%: one asset's jobs differ from each other that much.
    fn big_wobble(i: usize) -> f64 {
        1.0 + 0.2 * ((i * 7 % 11) as f64 / 5.0 - 1.0)
    }

    #[test]
    fn likeness_falls_with_the_factor_between_sizes() {
        let a = Profile {
            partitions: 300.0,
            partition_ms: 120_000.0,
        };
        assert_eq!(a.likeness(&a), 1.0);
        let three_times = Profile {
            partitions: 900.0,
            ..a
        };
        assert!((a.likeness(&three_times) - (-0.5f64).exp()).abs() < 1e-12);
        let both = Profile {
            partitions: 900.0,
            partition_ms: 40_000.0,
        };
        assert!((a.likeness(&both) - (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(a.likeness(&both), both.likeness(&a), "symmetric");
    }

    #[test]
    fn a_new_asset_borrows_the_bias_of_like_assets_more_than_of_unlike_ones() {
        // Two assets the size of the new one whose jobs take 1.5× what was
        // forecast, one ten times bigger whose forecasts were right.
        let like = profile(300.0, 120_000.0);
        let mut all = records("a", like, 0, 10, (1000.0, 1300.0), |i| 1500.0 * wobble(i));
        all.extend(records("b", like, 0, 10, (1000.0, 1300.0), |i| {
            1500.0 * wobble(i + 3)
        }));
        all.extend(records(
            "big",
            profile(3000.0, 1_200_000.0),
            0,
            10,
            (1000.0, 1300.0),
            |i| 1000.0 * wobble(i),
        ));
        let tenant = Tenant::from_records(&all);
        let b = tenant.borrowed("new", like, 0).expect("borrowed");
        // The like assets weigh 10/12 each, the big one 10/12 × e^−4.4: the
        // median is a like asset's 1.5 (its jobs' median wobble 0.98), shrunk
        // by S / (S + 1) for the little like evidence there is (two assets).
        let s = 2.0 * 10.0 / 12.0 * (1.0 + (-4.39f64).exp());
        let expected = (1.5f64 * 0.98).ln() * s / (s + 1.0);
        assert!(
            (b.log_bias - expected).abs() < 0.02,
            "{b:?} against {expected}"
        );
        assert!(b.log_bias.exp() > 1.25, "{b:?}");
        let cal = tenant.calibration("new", like).expect("a calibration");
        let c = cal.for_progress(0.25);
        assert!((c.bias_ratio() - b.log_bias.exp()).abs() < 1e-9);
        assert_eq!(c.pairs(), 0, "none of its own");
        assert_eq!(c.accuracy(), None, "no accuracy of its own to report");
        // A new asset the size of the big one borrows its bias instead.
        let big = tenant
            .borrowed("new", profile(3000.0, 1_200_000.0), 0)
            .unwrap();
        assert!(big.log_bias.exp() < 1.1, "{big:?}");
        // Nothing learnt at half done: nothing borrowed there.
        assert_eq!(tenant.borrowed("new", like, 1), None);
        assert_eq!(Tenant::default().calibration("new", like), None);
    }

    #[test]
    fn the_assets_own_jobs_take_over_as_they_accrue() {
        // The tenant's assets all run alike (bias 1.5, their jobs ±20%
        // around it); this asset's jobs take 1.2× what was forecast.
        let like = profile(300.0, 120_000.0);
        let mut alike = Vec::new();
        for (a, shift) in [("a", 0), ("b", 1), ("c", 2), ("d", 3)] {
            alike.extend(records(a, like, 0, 10, (1000.0, 1300.0), move |i| {
                1500.0 * big_wobble(i + shift)
            }));
        }
        let with_own = |tenant: &[Record], n: usize| {
            let mut all = tenant.to_vec();
            all.extend(records("mine", like, 0, n, (1000.0, 1300.0), |i| {
                1200.0 * big_wobble(i)
            }));
            let tenant = Tenant::from_records(&all);
            let b = tenant.borrowed("mine", like, 0).unwrap();
            let bias = tenant
                .calibration("mine", like)
                .unwrap()
                .for_progress(0.25)
                .bias_ratio();
            (b, bias)
        };
        let (b0, new) = with_own(&alike, 0);
        assert!((new - b0.log_bias.exp()).abs() < 1e-9);
        let (b3, three) = with_own(&alike, 3);
        let (b20, twenty) = with_own(&alike, 20);
        assert!(new > three && new > twenty, "{new} {three} {twenty}");
        // n / (n + k) exactly, in log terms, against its own median.
        let own = |n: usize| {
            let mut r: Vec<f64> = (0..n).map(|i| 1.2 * big_wobble(i)).collect();
            median(&mut r).ln()
        };
        let expected = |b: Borrowed, n: usize| {
            let n_f = n as f64;
            ((n_f * own(n) + b.bias_jobs * b.log_bias) / (n_f + b.bias_jobs)).exp()
        };
        assert!((three - expected(b3, 3)).abs() < 1e-9, "{three}");
        assert!((twenty - expected(b20, 20)).abs() < 1e-9, "{twenty}");
        assert!(
            (twenty - 1.2).abs() < (new - 1.2).abs() / 2.0,
            "twenty of its own jobs mostly speak for it: {twenty} against {new}"
        );

        // A tenant whose assets each go their own way teaches less: the
        // borrowed bias weighs fewer of the asset's own jobs.
        let mut apart = Vec::new();
        for (a, bias) in [("a", 0.7), ("b", 1.0), ("c", 1.5), ("d", 1.9)] {
            apart.extend(records(a, like, 0, 10, (1000.0, 1300.0), move |i| {
                1000.0 * bias * big_wobble(i)
            }));
        }
        let (b_apart, _) = with_own(&apart, 3);
        assert!(
            b_apart.bias_jobs < b3.bias_jobs / 2.0,
            "alike: k = {}, apart: k = {}",
            b3.bias_jobs,
            b_apart.bias_jobs
        );
    }

    #[test]
    fn the_p90_width_is_borrowed_from_like_assets_and_the_assets_own_jobs_move_it() {
        // Like assets whose P50 was right (their median) but whose P90
        // (width 300) was too narrow: their jobs took 500 to 1500, and all
        // of them needed 500 / 300 of its width.
        let like = profile(300.0, 120_000.0);
        let mut all = Vec::new();
        for a in ["a", "b", "c"] {
            all.extend(records(a, like, 1, 10, (1000.0, 1300.0), |i| {
                1000.0 + 500.0 * (i as f64 - 4.5) / 4.5
            }));
        }
        let tenant = Tenant::from_records(&all);
        let b = tenant.borrowed("new", like, 1).unwrap();
        // Three like assets of ten jobs, S = 3 × 10/15: 2/3 of the way.
        let expected = (500.0f64 / 300.0).ln() * 2.0 / 3.0;
        assert!((b.log_width - expected).abs() < 1e-9, "{b:?}");
        assert!(b.log_bias.abs() < 0.01, "their P50 was right: {b:?}");
        let new = tenant.calibration("new", like).unwrap();
        assert!((new.for_progress(0.5).spread() - b.log_width.exp()).abs() < 1e-9);
        // Ten of its own jobs, all well inside its P90: the width moves from
        // the borrowed one towards theirs by 10 / (10 + 5).
        all.extend(records("new", like, 1, 10, (1000.0, 1300.0), |i| {
            1000.0 + 30.0 * wobble(i)
        }));
        let tenant = Tenant::from_records(&all);
        let own = tenant.calibration("new", like).unwrap();
        assert!(
            own.for_progress(0.5).spread() < 0.8,
            "{:?}",
            own.for_progress(0.5)
        );
    }

    #[test]
    fn a_new_asset_borrows_the_period_end_factor_and_its_own_month_ends_outweigh_it() {
        let like = profile(365.0, 120_000.0);
        let mut all = Vec::new();
        for (a, factor) in [("a", 2.0), ("b", 2.2), ("c", 1.9)] {
            let mut r = records(a, like, 2, 3, (1000.0, 1300.0), |_| 1000.0);
            for x in &mut r {
                x.period_end = Some(ClassPrior {
                    factor,
                    period_end: 9,
                });
            }
            all.extend(r);
        }
        let tenant = Tenant::from_records(&all);
        let pooled = tenant.period_end_prior("new", like, None).unwrap();
        assert!((pooled.factor - 2.0).abs() < 1e-9, "{pooled:?}");
        // Three like assets of 27 month-ends each: S = 3 × 27/29, and they
        // weigh 3 × S / (S + 1) = 2.2 month-ends.
        assert_eq!(pooled.period_end, 2, "{pooled:?}");
        // The asset's own earlier jobs (60 month-ends at ×1.2) outweigh them.
        let own = ClassPrior {
            factor: 1.2,
            period_end: 60,
        };
        let combined = tenant.period_end_prior("new", like, Some(own)).unwrap();
        assert!(
            combined.factor > 1.2 && combined.factor < 1.25,
            "{combined:?}"
        );
        // Unlike assets do not count.
        let far = profile(36_500.0, 1_200.0);
        assert_eq!(tenant.period_end_prior("new", far, None), None);
        assert_eq!(
            Tenant::default().period_end_prior("new", like, Some(own)),
            Some(own)
        );
    }

    #[test]
    fn weighted_median_takes_the_weights_into_account() {
        assert_eq!(
            weighted_median(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]),
            Some(2.0)
        );
        assert_eq!(weighted_median(&[(1.0, 1.0), (3.0, 1.0)]), Some(2.0));
        assert_eq!(
            weighted_median(&[(1.0, 3.0), (2.0, 1.0), (9.0, 1.0)]),
            Some(1.0)
        );
        assert_eq!(weighted_median(&[(1.0, 0.0)]), None);
    }
}
