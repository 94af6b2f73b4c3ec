//! Pure completion forecasting for Servo backfill jobs.
//!
//! Nothing in this module does I/O or reads the clock: every function takes
//! the partitions it should look at and the instant it should consider "now".
//!
//! * [`servo_eta`] reproduces Servo's own EWMA estimate exactly.
//! * [`forecast`] produces a P50/P90 completion forecast from the partition
//!   history (see `docs/forecast.md` for the method).
//! * [`Calibration`] corrects a forecast by the bias observed on past jobs of
//!   the same asset.
//! * [`replay`] re-runs a finished job completion by completion, giving the
//!   view Servo had at each moment; [`traces`] generates synthetic jobs and
//!   evaluates the forecaster against Servo on them.

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc};

pub mod heavy;
pub mod kinds;
pub mod pool;
mod rand;
pub mod regime;
pub mod traces;

/// EWMA smoothing factor used by Servo's executor.
pub const SERVO_ALPHA: f64 = 0.3;
/// Below this many completed partitions the forecast falls back to Servo's ETA.
pub const MIN_OBSERVATIONS: usize = 5;
/// In fallback mode P90 is `now + FALLBACK_P90_FACTOR × (servo_eta − now)`.
pub const FALLBACK_P90_FACTOR: f64 = 1.5;
/// Relative model error (fraction of the remaining time, one σ) added to the
/// P90 spread for effects the model cannot see (throughput drift, tails).
pub const MODEL_ERROR: f64 = 0.05;

const Z90: f64 = 1.281_551_6;
/// Slope shrinkage (positive-part James–Stein style): the fitted slope is
/// multiplied by `max(0, 1 − TREND_SHRINK / t²)`, t being its t-statistic in
/// log space, so an insignificant trend is not extrapolated.
const TREND_SHRINK: f64 = 2.0;
/// Extrapolated per-partition cost stays within [level / CLAMP, level × CLAMP].
const LEVEL_CLAMP: f64 = 3.0;
/// A change in pace is declared when the recent partitions' mean log cost
/// differs from the earlier ones' by this many standard errors...
const CHANGE_T: f64 = 3.5;
/// ...and by at least this much in log space (a 35% change in cost).
const CHANGE_MIN_LOG: f64 = 0.3;
/// How far back a change is looked for (completions), and the fewest
/// completions on either side of it.
const CHANGE_LOOKBACK: usize = 120;
const CHANGE_MIN_SIDE: usize = 2;
/// How much better (likelihood ratio, in units of ln n) a step must fit the
/// log costs than a straight line before it counts as a change in pace.
const STEP_OVER_LINE: f64 = 3.0;
/// Until this many completions follow a change, the evidence is mixed: the
/// P90 keeps part of the distance between the old pace and the new.
const CHANGE_SETTLED: f64 = 20.0;

/// State of one row of `backfill_partitions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionState {
    /// Not started yet.
    Pending,
    /// An attempt is in progress.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished unsuccessfully (all attempts used).
    Failed,
    /// Skipped without running.
    Skipped,
}

impl PartitionState {
    /// Parses Servo's state column (case-insensitive, surrounding blanks ignored).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Some(Self::Pending),
            "running" => Some(Self::Running),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }

    /// The column value Servo uses for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// Completed, failed and skipped partitions no longer count as remaining.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Skipped)
    }
}

/// One partition as observed in `backfill_partitions`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionObs {
    /// Partition key, e.g. `2024-01-31`.
    pub key: String,
    /// Current state.
    pub state: PartitionState,
    /// Start of the partition's first attempt, if started.
    pub started_at: Option<DateTime<Utc>>,
    /// End of the partition's last attempt, if done.
    pub completed_at: Option<DateTime<Utc>>,
    /// Duration of the LAST attempt in milliseconds.
    pub duration_ms: Option<i64>,
    /// Number of attempts made (> 1 means retried).
    pub attempt_count: i32,
}

impl PartitionObs {
    /// Estimated work consumed by all attempts, in ms: the last attempt's
    /// duration times the attempt count (earlier attempts are assumed to
    /// have cost as much as the last one). Falls back to the wall-clock span
    /// when `duration_ms` is missing.
    fn work_ms(&self) -> Option<f64> {
        let attempts = f64::from(self.attempt_count.max(1));
        let per_attempt = match (self.duration_ms, self.started_at, self.completed_at) {
            (Some(d), _, _) => d as f64,
            (None, Some(s), Some(c)) => ms_between(s, c) / attempts,
            _ => return None,
        };
        Some(per_attempt.max(0.0) * attempts)
    }

    /// Wall-clock interval during which this done partition occupied a worker.
    fn busy_interval(&self) -> Option<(i64, i64)> {
        let end = self.completed_at?.timestamp_millis();
        let start = match self.started_at {
            Some(s) => s.timestamp_millis(),
            None => end - self.work_ms()? as i64,
        };
        Some((start.min(end), end))
    }
}

/// Class of a partition key, used to model calendar steps in cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyClass {
    /// Daily key (`YYYY-MM-DD…`) on the last day of a month, or monthly key
    /// (`YYYY-MM`) of a quarter-end month (March, June, September, December).
    PeriodEnd,
    /// Any other key, including keys that are not dates.
    Regular,
}

impl KeyClass {
    /// Classifies a partition key.
    pub fn of(key: &str) -> Self {
        let key = key.trim();
        if let Some(day) = key.get(..10).and_then(|d| {
            canonical_date(d).or_else(|| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        }) {
            let next = day.succ_opt().map(|d| d.month());
            return if next != Some(day.month()) {
                Self::PeriodEnd
            } else {
                Self::Regular
            };
        }
        let monthly = (key.len() == 7)
            .then(|| NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d").ok())
            .flatten();
        match monthly {
            Some(month) if month.month() % 3 == 0 => Self::PeriodEnd,
            _ => Self::Regular,
        }
    }
}

/// `YYYY-MM-DD` read digit by digit: the common case of [`KeyClass::of`],
/// which the forecast asks of every partition at every poll, without the
/// cost of a format parser.
fn canonical_date(d: &str) -> Option<NaiveDate> {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

/// Servo's own estimate: EWMA (alpha 0.3, first observation taken as is) of
/// the durations of completed partitions in `completed_at` order, times the
/// remaining partition count (`total − completed − failed − skipped`), added
/// to `now` (Servo uses the completion time of the partition that just
/// finished). Returns `None` when no completed partition has a duration.
pub fn servo_eta(
    history: &[PartitionObs],
    total: i64,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut completed: Vec<&PartitionObs> = history
        .iter()
        .filter(|p| p.state == PartitionState::Completed && p.duration_ms.is_some())
        .collect();
    completed.sort_by_key(|p| p.completed_at);
    let mut avg: Option<f64> = None;
    for p in completed {
        let d = p.duration_ms.unwrap_or_default() as f64;
        avg = Some(match avg {
            None => d,
            Some(a) => SERVO_ALPHA * d + (1.0 - SERVO_ALPHA) * a,
        });
    }
    let avg = avg?;
    let done = history.iter().filter(|p| p.state.is_done()).count() as i64;
    let remaining = (total - done).max(0) as f64;
    Some(add_ms(now, remaining * avg))
}

/// Everything the forecaster may look at.
#[derive(Debug, Clone, Copy)]
pub struct ForecastInput<'a> {
    /// The instant the forecast is made.
    pub now: DateTime<Utc>,
    /// Total partitions of the job.
    pub total_partitions: i64,
    /// Known partitions (done, running, and pending ones with their keys).
    pub partitions: &'a [PartitionObs],
    /// Servo's `estimated_completion_at`, if any.
    pub servo_eta: Option<DateTime<Utc>>,
    /// The job is paused.
    pub paused: bool,
    /// The job is waiting for an upstream dependency.
    pub waiting_upstream: bool,
    /// What the asset's earlier jobs say about its period-end partitions.
    pub period_end_prior: Option<ClassPrior>,
}

/// What an asset's earlier jobs say about its period-end partitions (month-
/// and quarter-end): how much they cost against the regular partitions of the
/// same job, and how many there were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassPrior {
    /// Period-end cost over regular cost; 1 when the history shows no clear
    /// difference.
    pub factor: f64,
    /// Period-end partitions the history holds.
    pub period_end: usize,
}

/// How many of the job's own period-end partitions weigh as much as the
/// asset's history: the history speaks first, the job takes over as its own
/// period-end partitions accrue (half a year of month-ends).
const PRIOR_WEIGHT: usize = 6;

impl ClassPrior {
    /// Learns from the partitions of an asset's earlier jobs. Within each job,
    /// every completed partition's work is taken over the median work of
    /// that job's regular partitions, so a job that ran slower overall does
    /// not count as a period-end effect. `None` without at least 2 period-end
    /// and 3 regular partitions in all.
    pub fn from_jobs(jobs: &[Vec<PartitionObs>]) -> Option<ClassPrior> {
        Self::learn(jobs.iter().map(Vec::as_slice))
    }

    /// What one job's own completed partitions say (see [`Self::from_jobs`]):
    /// recorded with its forecasts, so a new asset can borrow it.
    pub fn of_job(partitions: &[PartitionObs]) -> Option<ClassPrior> {
        Self::learn(std::iter::once(partitions))
    }

    fn learn<'a>(jobs: impl IntoIterator<Item = &'a [PartitionObs]>) -> Option<ClassPrior> {
        let (mut pe, mut reg) = (Vec::new(), Vec::new());
        for job in jobs {
            let done: Vec<(KeyClass, f64)> = job
                .iter()
                .filter(|p| p.state == PartitionState::Completed)
                .filter_map(|p| Some((KeyClass::of(&p.key), p.work_ms()?)))
                .filter(|(_, w)| *w > 0.0)
                .collect();
            let mut regular: Vec<f64> = done
                .iter()
                .filter(|(c, _)| *c == KeyClass::Regular)
                .map(|(_, w)| *w)
                .collect();
            if regular.len() < 3 {
                continue;
            }
            let base = median(&mut regular);
            for (c, w) in done {
                match c {
                    KeyClass::PeriodEnd => pe.push(w / base),
                    KeyClass::Regular => reg.push(w / base),
                }
            }
        }
        if pe.len() < 2 || reg.len() < 3 {
            return None;
        }
        Some(ClassPrior {
            factor: class_factor(&pe, &reg).unwrap_or(1.0),
            period_end: pe.len(),
        })
    }
}

/// Period-end cost over regular cost (ratio of their means) when their log
/// means differ by more than 2 standard errors; `None` otherwise.
fn class_factor(pe: &[f64], reg: &[f64]) -> Option<f64> {
    let logs = |v: &[f64]| v.iter().map(|r| r.max(1e-6).ln()).collect::<Vec<_>>();
    let (lp, lr) = (logs(pe), logs(reg));
    let (mp, mr) = (mean(&lp), mean(&lr));
    let ss: f64 = lp.iter().map(|v| (v - mp).powi(2)).sum::<f64>()
        + lr.iter().map(|v| (v - mr).powi(2)).sum::<f64>();
    let pooled = ss / (lp.len() + lr.len()).saturating_sub(2).max(1) as f64;
    let se = (pooled * (1.0 / lp.len() as f64 + 1.0 / lr.len() as f64)).sqrt();
    ((mp - mr).abs() > 2.0 * se).then(|| (mean(pe) / mean(reg)).clamp(0.25, 8.0))
}

/// Where a forecast came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Fitted on the job's own completion history.
    History,
    /// Too few completions: Servo's EWMA ETA with a widened P90.
    ServoFallback,
}

/// A completion forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Median completion time.
    pub p50: DateTime<Utc>,
    /// 90% quantile of the completion time.
    pub p90: DateTime<Utc>,
    /// What the forecast is based on.
    pub basis: Basis,
    /// Observed partitions completed per active wall-clock hour (recent
    /// window, waits excluded); for the fallback, the rate implied by Servo.
    pub throughput_per_hour: f64,
    /// Number of completed partitions the forecast saw.
    pub observations: usize,
}

/// The most recent change in pace in a series of log costs: the index where
/// the new pace starts, and the log difference (new − old). `None` when no
/// split of the last [`CHANGE_LOOKBACK`] completions differs by
/// [`CHANGE_T`] standard errors and [`CHANGE_MIN_LOG`].
fn change_point(logs: &[f64]) -> Option<(usize, f64)> {
    let n = logs.len();
    if n < 2 * CHANGE_MIN_SIDE + 2 {
        return None;
    }
    // Prefix sums for O(1) segment means and variances.
    let (mut s1, mut s2) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    for (i, l) in logs.iter().enumerate() {
        s1[i + 1] = s1[i] + l;
        s2[i + 1] = s2[i] + l * l;
    }
    let seg = |a: usize, b: usize| {
        let m = (b - a) as f64;
        let mean = (s1[b] - s1[a]) / m;
        let ss = (s2[b] - s2[a]) - m * mean * mean;
        (mean, ss.max(0.0))
    };
    let start = n.saturating_sub(CHANGE_LOOKBACK).max(CHANGE_MIN_SIDE);
    let mut best: Option<(usize, f64, f64)> = None;
    for k in start..=n - CHANGE_MIN_SIDE {
        let (m0, ss0) = seg(0, k);
        let (m1, ss1) = seg(k, n);
        let pooled = (ss0 + ss1) / (n - 2) as f64;
        let se = (pooled * (1.0 / k as f64 + 1.0 / (n - k) as f64)).sqrt();
        let d = m1 - m0;
        if se <= 0.0 || d.abs() < CHANGE_MIN_LOG {
            continue;
        }
        let t = d.abs() / se;
        if t >= CHANGE_T && best.is_none_or(|(_, bt, _)| t > bt) {
            best = Some((k, t, d));
        }
    }
    let (k, _, d) = best?;
    // A step, not a drift: two levels must explain the costs clearly better
    // than one straight line does (a likelihood ratio with a penalty), or a
    // steady drift would be cut into ever shorter "new paces".
    let (_, ss0) = seg(0, k);
    let (_, ss1) = seg(k, n);
    let rss_step = (ss0 + ss1).max(1e-12);
    let xbar = (n - 1) as f64 / 2.0;
    let ybar = s1[n] / n as f64;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (i, l) in logs.iter().enumerate() {
        let dx = i as f64 - xbar;
        sxx += dx * dx;
        sxy += dx * (l - ybar);
    }
    let rss_line = ((s2[n] - n as f64 * ybar * ybar) - sxy * sxy / sxx.max(1e-12)).max(1e-12);
    let lr = n as f64 * (rss_line / rss_step).ln();
    (lr > STEP_OVER_LINE * (n as f64).ln()).then_some((k, d))
}

/// Exponentially weighted sums of a series (`x`, its cost `y` and log cost
/// `l`), the newest weighing 1 and each older one `decay` times the next: a
/// local linear fit at every point of the series in one pass.
#[derive(Debug, Clone, Copy, Default)]
struct EwSums {
    w: f64,
    w2: f64,
    wx: f64,
    wxx: f64,
    w2x: f64,
    w2xx: f64,
    wy: f64,
    wxy: f64,
    wyy: f64,
    wl: f64,
    wxl: f64,
    wll: f64,
}

impl EwSums {
    fn push(&mut self, decay: f64, x: f64, y: f64) {
        let l = y.max(1.0).ln();
        let d2 = decay * decay;
        self.w = self.w * decay + 1.0;
        self.wx = self.wx * decay + x;
        self.wxx = self.wxx * decay + x * x;
        self.wy = self.wy * decay + y;
        self.wxy = self.wxy * decay + x * y;
        self.wyy = self.wyy * decay + y * y;
        self.wl = self.wl * decay + l;
        self.wxl = self.wxl * decay + x * l;
        self.wll = self.wll * decay + l * l;
        self.w2 = self.w2 * d2 + 1.0;
        self.w2x = self.w2x * d2 + x;
        self.w2xx = self.w2xx * d2 + x * x;
    }

    /// The weighted least-squares line through the costs, the variances of
    /// its level and slope, and its slope's t² in log space (where duration
    /// noise is roughly symmetric and homoscedastic: more power than raw
    /// space). `None` with fewer than two points. `last` is the newest x;
    /// `level_only` fits a level without a slope.
    fn fit(&self, last: f64, level_only: bool) -> Option<LocalFit> {
        if self.w2 <= 1.0 + 1e-12 {
            return None;
        }
        let sw = self.w;
        let xbar = self.wx / sw;
        let ybar = self.wy / sw;
        let lbar = self.wl / sw;
        let sxx = (self.wxx - sw * xbar * xbar).max(0.0);
        let n_eff = sw * sw / self.w2;
        let dof = n_eff / (n_eff - 2.0).max(1.0);
        // Σw²(x − x̄)², for the slope's variance.
        let sxx_w2 = (self.w2xx - 2.0 * xbar * self.w2x + xbar * xbar * self.w2).max(0.0);
        let sloped = sxx > 1e-9 * sw && !level_only;
        let (b, bl) = if sloped {
            (
                (self.wxy - sw * xbar * ybar) / sxx,
                (self.wxl - sw * xbar * lbar) / sxx,
            )
        } else {
            (0.0, 0.0)
        };
        let s2 = ((self.wyy - sw * ybar * ybar).max(0.0) - b * b * sxx).max(0.0) / sw * dof;
        let s2l = ((self.wll - sw * lbar * lbar).max(0.0) - bl * bl * sxx).max(0.0) / sw * dof;
        let (var_b, var_bl) = if sloped {
            (s2 * sxx_w2 / (sxx * sxx), s2l * sxx_w2 / (sxx * sxx))
        } else {
            (0.0, 0.0)
        };
        let t2 = if var_bl > 0.0 {
            bl * bl / var_bl
        } else if bl != 0.0 {
            f64::INFINITY // noise-free trend
        } else {
            0.0
        };
        Some(LocalFit {
            xbar,
            a: ybar,
            b,
            s2,
            var_a: s2 / n_eff,
            var_b,
            t2,
            level_now: (ybar + b * (last - xbar)).max(0.05 * ybar).max(1.0),
        })
    }
}

/// A local linear fit of the cost per partition, `a + b (x − xbar)`.
#[derive(Debug, Clone, Copy)]
struct LocalFit {
    xbar: f64,
    a: f64,
    b: f64,
    /// Residual variance of one partition's cost.
    s2: f64,
    var_a: f64,
    var_b: f64,
    /// The slope's t² in log space.
    t2: f64,
    /// The fitted cost at the newest point.
    level_now: f64,
}

impl LocalFit {
    fn at(&self, x: f64) -> f64 {
        self.a + self.b * (x - self.xbar)
    }

    /// The share of the slope kept: `max(0, 1 − TREND_SHRINK / t²)`, so an
    /// insignificant trend is not extrapolated.
    fn shrink(&self) -> f64 {
        (1.0 - TREND_SHRINK / self.t2.max(1e-9)).max(0.0)
    }

    /// The cost expected at `x`, the slope shrunk by `shrink`, within
    /// [level / LEVEL_CLAMP, level × LEVEL_CLAMP] of the newest level.
    fn level(&self, x: f64, shrink: f64) -> f64 {
        (self.a + shrink * self.b * (x - self.xbar))
            .clamp(self.level_now / LEVEL_CLAMP, self.level_now * LEVEL_CLAMP)
    }
}

/// The half-life of the cost model's weights, in completions, for a job
/// with `n` done: `max(n/2, 30)`.
fn half_life(n: usize) -> f64 {
    (n as f64 / 2.0).max(30.0)
}

/// The cost model through `y` (costs of the completions from index `from`
/// on), weights halving every `half_life` completions back from the newest.
fn local_fit(y: &[f64], from: usize, half_life: f64, level_only: bool) -> Option<LocalFit> {
    let decay = 0.5f64.powf(1.0 / half_life);
    let mut sums = EwSums::default();
    for (i, v) in y.iter().enumerate() {
        sums.push(decay, (from + i) as f64, *v);
    }
    sums.fit((from + y.len()).saturating_sub(1) as f64, level_only)
}

/// The fewest completions a fit in the job's own backtest starts from.
const BACKTEST_FROM: usize = 10;
/// The fewest backtest forecasts whose spread counts.
const BACKTEST_MIN: usize = 5;

/// The spread the job has shown so far: the cost model is replayed over the
/// costs seen (`y`, from index `from`), and from every point `k` of the
/// second half of them it forecasts the mean cost of the next `h`
/// partitions (`h` = the partitions left, at most half of what follows `k`'s
/// first point), as the forecast does now. The root mean square of the log
/// errors (what those partitions cost over what was forecast) is the
/// relative spread of the forecast: noise, the pace wandering (a ramp,
/// regimes, steps), the level's and the slope's own error, as far as this job
/// has shown them. Starting from the second half, each fit has seen about as
/// much as the forecast now has. `None` with fewer than [`BACKTEST_MIN`]
/// points to replay from.
fn own_spread(
    y: &[f64],
    from: usize,
    half_life: f64,
    remaining: usize,
    level_only: bool,
) -> Option<f64> {
    let len = y.len();
    let first = BACKTEST_FROM.max(len / 2);
    let h = remaining.min(len.saturating_sub(first) / 2);
    if h == 0 {
        return None;
    }
    let mut prefix = vec![0.0; len + 1];
    for (i, v) in y.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v;
    }
    let decay = 0.5f64.powf(1.0 / half_life);
    let mut sums = EwSums::default();
    let (mut sse, mut count) = (0.0, 0usize);
    for (k, v) in y.iter().enumerate() {
        if k >= first && k + h <= len {
            let x = (from + k) as f64;
            if let Some(f) = sums.fit(x - 1.0, level_only) {
                let centre = x + (h as f64 - 1.0) / 2.0;
                let forecast = f.level(centre, f.shrink()).max(1.0);
                let actual = ((prefix[k + h] - prefix[k]) / h as f64).max(1.0);
                sse += (actual / forecast).ln().powi(2);
                count += 1;
            }
        }
        sums.push(decay, (from + k) as f64, *v);
    }
    (count >= BACKTEST_MIN).then(|| (sse / count as f64).sqrt())
}

/// Cost multiplier of period-end partitions relative to regular ones, or 1
/// when the history does not show a significant difference (needs at least
/// two period-end and three regular observations, and a log-ratio difference
/// above two standard errors).
fn period_end_factor(
    work: &[f64],
    classes: &[KeyClass],
    fit: &LocalFit,
    prior: Option<ClassPrior>,
) -> f64 {
    let (mut pe, mut reg) = (Vec::new(), Vec::new());
    for (i, (w, c)) in work.iter().zip(classes).enumerate() {
        let ratio = (w / fit.at(i as f64).max(1.0)).max(1e-6);
        match c {
            KeyClass::PeriodEnd => pe.push(ratio),
            KeyClass::Regular => reg.push(ratio),
        }
    }
    let Some(prior) = prior else {
        if pe.len() < 2 || reg.len() < 3 {
            return 1.0;
        }
        return class_factor(&pe, &reg).unwrap_or(1.0);
    };
    // The asset's history first; the job's own period-end partitions, as
    // they come, weigh in (in log space) until they outweigh it.
    if pe.is_empty() || reg.len() < 3 {
        return prior.factor;
    }
    let own = (mean(&pe) / mean(&reg)).clamp(0.25, 8.0);
    let (n, w) = (pe.len() as f64, prior.period_end.min(PRIOR_WEIGHT) as f64);
    ((n * own.ln() + w * prior.factor.ln()) / (n + w)).exp()
}

/// Forecasts the completion of a job.
///
/// Returns `None` only when there is nothing to base a forecast on (fewer
/// than [`MIN_OBSERVATIONS`] completions and no Servo ETA). When the job is
/// paused or waiting upstream, the forecast counts from `now` as if work
/// resumed now: the wait's remaining length is unknown and is not added.
pub fn forecast(input: &ForecastInput) -> Option<Forecast> {
    let now = input.now;
    let mut done: Vec<&PartitionObs> = input
        .partitions
        .iter()
        .filter(|p| {
            matches!(p.state, PartitionState::Completed | PartitionState::Failed)
                && p.completed_at.is_some()
                && p.work_ms().is_some()
        })
        .collect();
    done.sort_by_key(|p| p.completed_at);
    let finished = input
        .partitions
        .iter()
        .filter(|p| p.state.is_done())
        .count() as i64;
    let remaining = (input.total_partitions - finished).max(0) as usize;
    let observations = done
        .iter()
        .filter(|p| p.state == PartitionState::Completed)
        .count();
    if observations < MIN_OBSERVATIONS {
        return fallback(input, &done, remaining, observations);
    }
    if remaining == 0 {
        return Some(Forecast {
            p50: now,
            p90: now,
            basis: Basis::History,
            throughput_per_hour: 0.0,
            observations,
        });
    }

    // --- Per-partition cost model: weighted trend on work / class factor.
    let n = done.len();
    let work: Vec<f64> = done.iter().filter_map(|p| p.work_ms()).collect();
    let classes: Vec<KeyClass> = done.iter().map(|p| KeyClass::of(&p.key)).collect();
    let first = local_fit(&work, 0, half_life(n), false)?;
    let pe = period_end_factor(&work, &classes, &first, input.period_end_prior);
    let factor = |c: KeyClass| if c == KeyClass::PeriodEnd { pe } else { 1.0 };
    let norm: Vec<f64> = work
        .iter()
        .zip(&classes)
        .map(|(w, c)| w / factor(*c))
        .collect();
    // A change in pace (a degradation, a recovery): the cost model learns
    // only from the partitions since, so the P50 follows the new pace within
    // a few partitions; while they are few, the P90 keeps part of the gap.
    let all_logs: Vec<f64> = norm.iter().map(|w| w.max(1.0).ln()).collect();
    let change = change_point(&all_logs);
    let from = change.map_or(0, |(k, _)| k);
    // A few dozen partitions at the new pace: their level is evidence, a
    // slope through them is mostly noise.
    let level_only = from > 0 && ((n - from) as f64) < 2.0 * CHANGE_SETTLED;
    let fit = local_fit(&norm[from..], from, half_life(n), level_only)?;
    let shrink = fit.shrink();
    let level = |x: f64| fit.level(x, shrink);

    // --- Remaining partitions: running first, then pending in key order,
    // then partitions Servo has not told us about (average class mix).
    let mut running: Vec<&PartitionObs> = input
        .partitions
        .iter()
        .filter(|p| p.state == PartitionState::Running)
        .collect();
    running.sort_by_key(|p| p.started_at);
    let mut pending: Vec<&PartitionObs> = input
        .partitions
        .iter()
        .filter(|p| p.state == PartitionState::Pending)
        .collect();
    pending.sort_by(|a, b| a.key.cmp(&b.key));
    let mut items: Vec<(f64, f64)> = running
        .iter()
        .map(|p| {
            let elapsed = p.started_at.map_or(0.0, |s| ms_between(s, now).max(0.0));
            (factor(KeyClass::of(&p.key)), elapsed)
        })
        .chain(pending.iter().map(|p| (factor(KeyClass::of(&p.key)), 0.0)))
        .take(remaining)
        .collect();
    let mix = classes.iter().map(|c| factor(*c)).sum::<f64>() / n as f64;
    items.resize(remaining, (mix, 0.0));

    let (mut total_work, mut s1, mut s2, mut sq) = (0.0, 0.0, 0.0, 0.0);
    for (j, (f, elapsed)) in items.iter().enumerate() {
        let xj = (n + j) as f64;
        let pred = level(xj) * f;
        total_work += (pred - elapsed).max(0.1 * pred);
        s1 += f;
        s2 += f * (xj - fit.xbar);
        sq += f * f;
    }
    let mean_pred = total_work / remaining as f64;

    // --- Observed wall-clock time per unit of work (1 / parallelism),
    // over a recent window, with waits (idle gaps far above normal) removed.
    let window = (n / 2).max(20).min(n);
    let mut intervals: Vec<(i64, i64)> = done.iter().filter_map(|p| p.busy_interval()).collect();
    intervals.extend(running.iter().filter_map(|p| {
        p.started_at
            .map(|s| (s.timestamp_millis(), now.timestamp_millis()))
    }));
    let mut durations: Vec<f64> = work.clone();
    let idle_threshold = (2.0 * median(&mut durations)).max(60_000.0);
    let we = done[n - 1].completed_at?.timestamp_millis();
    let first_start = intervals.iter().map(|i| i.0).min().unwrap_or(we);
    let whole = idle(&mut intervals, first_start, we, idle_threshold);
    let active = if window == n {
        whole.active
    } else {
        let ws = done[n - window - 1].completed_at?.timestamp_millis();
        idle(&mut intervals, ws, we, idle_threshold).active
    };
    let window_work: f64 = work[n - window..].iter().sum();
    if active <= 0.0 || window_work <= 0.0 {
        return fallback(input, &done, remaining, observations);
    }
    let rho = (active / window_work).clamp(0.01, 10.0);
    let throughput_per_hour = window as f64 / (active / 3_600_000.0);

    // Last-round imbalance when several partitions run at once.
    let tail = (1.0 - rho).max(0.0) * 0.5 * mean_pred;
    let p50_ms = rho * total_work + tail;

    // --- Spread. The job's own dispersion: how far the cost of its next
    // partitions has strayed from what this model forecast for them, at
    // every point of its second half so far (see `own_spread`), with the
    // model error as a floor. Before the job has shown enough of that, the
    // model's own variances: per-partition noise, level and slope.
    let sd = match own_spread(&norm[from..], from, half_life(n), remaining, level_only) {
        Some(spread) => (spread * p50_ms).hypot(MODEL_ERROR * p50_ms),
        None => {
            let var_work = sq * fit.s2 + s1 * s1 * fit.var_a + s2 * s2 * fit.var_b;
            (rho * rho * var_work + (MODEL_ERROR * p50_ms).powi(2)).sqrt()
        }
    };
    // Mixed evidence right after a change: part of the step may yet turn
    // out to be noise or to continue; it fades as completions accrue. So a
    // step in pace widens the P90 at once, before the job's history shows
    // the new dispersion.
    let unsettled = change.map_or(0.0, |(_, d)| {
        let since = (n - from) as f64;
        (1.0 - since / CHANGE_SETTLED).max(0.0) * (1.0 - (-d.abs()).exp()) * p50_ms * 0.5
    });
    // The part of a rising trend that shrinkage removed from the P50 is
    // added back to the P90 (one-sided: only a later completion).
    let unmodelled = ((1.0 - shrink) * fit.b * s2).max(0.0) * rho;
    // Waits seen in this job may come again: an independent source of
    // delay, added to the noise's spread in quadrature (one-sided: later).
    let waits = pause_allowance(whole, p50_ms);
    let p90_ms = p50_ms + (Z90 * (sd + unsettled)).hypot(waits) + unmodelled;

    Some(Forecast {
        p50: add_ms(now, p50_ms),
        p90: add_ms(now, p90_ms),
        basis: Basis::History,
        throughput_per_hour,
        observations,
    })
}

/// Servo-based forecast for jobs with too few completions.
///
/// Servo wrote its ETA when the last partition completed; if the job is
/// paused or waiting, or the ETA is already in the past, the remaining time
/// Servo estimated then is counted from `now` instead.
fn fallback(
    input: &ForecastInput,
    done: &[&PartitionObs],
    remaining: usize,
    observations: usize,
) -> Option<Forecast> {
    let now = input.now;
    let written_at = done
        .last()
        .and_then(|p| p.completed_at)
        .unwrap_or(now)
        .min(now);
    let eta = input
        .servo_eta
        .or_else(|| servo_eta(input.partitions, input.total_partitions, written_at))?;
    let servo_remaining = ms_between(written_at, eta).max(0.0);
    let stalled = input.paused || input.waiting_upstream || eta < now;
    let p50 = if stalled {
        add_ms(now, servo_remaining)
    } else {
        eta
    };
    let rem = ms_between(now, p50).max(0.0);
    Some(Forecast {
        p50,
        p90: add_ms(now, rem * FALLBACK_P90_FACTOR),
        basis: Basis::ServoFallback,
        throughput_per_hour: if rem > 0.0 {
            remaining as f64 / (rem / 3_600_000.0)
        } else {
            0.0
        },
        observations,
    })
}

/// Time in `[ws, we]` split into busy time and waits: idle gaps (no
/// partition running) longer than `idle_threshold` ms are waits (a pause,
/// waiting upstream); shorter gaps are scheduling overhead and count as busy.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Idle {
    /// Busy time in ms.
    active: f64,
    /// Time spent in waits, in ms.
    waited: f64,
    /// How many waits began in the window.
    waits: usize,
}

fn idle(intervals: &mut [(i64, i64)], ws: i64, we: i64, idle_threshold: f64) -> Idle {
    intervals.sort_unstable();
    let (mut excluded, mut waits) = (0i64, 0usize);
    let mut covered_until: Option<i64> = None;
    for &(s, e) in intervals.iter() {
        if let Some(c) = covered_until {
            if s > c && (s - c) as f64 > idle_threshold {
                let inside = (s.min(we) - c.max(ws)).max(0);
                excluded += inside;
                waits += usize::from(inside > 0);
            }
        }
        covered_until = Some(covered_until.map_or(e, |c| c.max(e)));
    }
    Idle {
        active: ((we - ws) - excluded) as f64,
        waited: excluded as f64,
        waits,
    }
}

/// P(X ≤ k) for X ~ Binomial(n, p).
fn binomial_cdf(k: usize, n: usize, p: f64) -> f64 {
    let (mut term, mut sum) = ((1.0 - p).powi(n as i32), 0.0);
    for i in 0..=k.min(n) {
        if i > 0 {
            term *= (n - i + 1) as f64 / i as f64 * p / (1.0 - p);
        }
        sum += term;
    }
    sum.min(1.0)
}

/// The multiple of the P90's width that the next job should fit in nine
/// times in ten, from `needed` (what each of `n` past jobs needed): the
/// ⌈0.9 (n + 1)⌉th smallest, a conformal bound (the tenth of ten, the 18th of
/// twenty), clamped to [1/MAX_SPREAD, MAX_SPREAD].
fn needed_for_90(needed: &mut [f64]) -> f64 {
    needed.sort_by(f64::total_cmp);
    let n = needed.len();
    let at = ((0.9 * (n + 1) as f64).ceil() as usize).clamp(1, n) - 1;
    needed[at].clamp(1.0 / Calibration::MAX_SPREAD, Calibration::MAX_SPREAD)
}

/// The 90th percentile of a Poisson count with mean `m`.
fn poisson_q90(m: f64) -> u32 {
    if m.is_nan() || m <= 0.0 {
        return 0;
    }
    let (mut k, mut term, mut cdf) = (0u32, (-m).exp(), (-m).exp());
    while cdf < 0.9 && k < 1_000 {
        k += 1;
        term *= m / f64::from(k);
        cdf += term;
    }
    k
}

/// What further waits could add to the P90: the job's own waits so far (after
/// its first start) recur at the rate seen per busy hour, each as long as
/// their mean; the 90th percentile of their count over the remaining busy
/// time `remaining_ms`, times that length. No wait seen, nothing added: a
/// wait that has never happened cannot be priced from the job itself.
fn pause_allowance(seen: Idle, remaining_ms: f64) -> f64 {
    if seen.waits == 0 || seen.active <= 0.0 {
        return 0.0;
    }
    let rate = seen.waits as f64 / seen.active;
    let mean_wait = seen.waited / seen.waits as f64;
    f64::from(poisson_q90(rate * remaining_ms)) * mean_wait
}

/// One finished forecast of an asset's job: the remaining times, from when
/// the forecast was made, that its P50 and P90 gave, and the time the job
/// really took from then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub actual_ms: f64,
}

/// What the tenant's other assets taught at one checkpoint, weighted by how
/// like the asset they are (see [`pool`]): where an asset's calibration
/// starts before its own jobs speak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Borrowed {
    /// The log of the P50's bias ratio (actual / forecast) of like assets.
    pub log_bias: f64,
    /// How many of the asset's own finished jobs the borrowed bias weighs as
    /// (`k` in `n / (n + k)`): many when the tenant's assets agree, few when
    /// each goes its own way.
    pub bias_jobs: f64,
    /// The log of the multiple of the P90's width that like assets needed
    /// for nine in ten of their jobs (see `needed_for_90`).
    pub log_width: f64,
}

/// What an asset's past jobs teach the forecast: a bias correction of the
/// P50 and, when the P90 covered too few or too many of those jobs, a new
/// width for it (the calibration check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pairs: usize,
    bias_ratio: f64,
    accuracy: Option<f64>,
    coverage: Option<f64>,
    spread: f64,
}

impl Calibration {
    /// Pairs needed before the bias ratio is applied.
    pub const MIN_PAIRS: usize = 3;
    /// The bias ratio is clamped to `[MIN_RATIO, MAX_RATIO]`.
    pub const MIN_RATIO: f64 = 0.5;
    /// See [`Calibration::MIN_RATIO`].
    pub const MAX_RATIO: f64 = 2.0;
    /// Finished jobs needed before the P90's width is checked.
    pub const MIN_COVERAGE_PAIRS: usize = 5;
    /// The share of past jobs a P90 should cover. Clearly outside this band
    /// (see [`Self::MISS_EVIDENCE`]), the width is set so that 90% would have
    /// been covered; otherwise it moves part of the way there.
    pub const COVERAGE_BAND: (f64, f64) = (0.80, 0.95);
    /// The P90's width (P90 − P50) is scaled by at most this much either way.
    pub const MAX_SPREAD: f64 = 3.0;
    /// How unlikely the jobs' coverage must be, were the P90's true coverage
    /// at the edge of [`Self::COVERAGE_BAND`], before its width is changed.
    pub const MISS_EVIDENCE: f64 = 0.05;
    /// Short of a clear miss, the model's own width counts as this many jobs
    /// against the width the past jobs needed.
    pub const PRIOR_JOBS: f64 = 5.0;

    /// Builds a calibration from `(forecast_remaining_ms, actual_remaining_ms)`
    /// pairs, with no P90 to check. Pairs with a non-positive or non-finite
    /// forecast, or a negative or non-finite actual, are ignored.
    pub fn from_pairs(pairs: &[(f64, f64)]) -> Calibration {
        let outcomes: Vec<Outcome> = pairs
            .iter()
            .map(|&(p50_ms, actual_ms)| Outcome {
                p50_ms,
                p90_ms: f64::NAN,
                actual_ms,
            })
            .collect();
        Self::from_outcomes(&outcomes)
    }

    /// Builds a calibration from finished forecasts: the P50's bias ratio
    /// (the median of actual / forecast), and the check of the P90. After the
    /// bias correction, the share of jobs the P90 covered is measured. With
    /// [`Self::MIN_COVERAGE_PAIRS`] or more, the width P90 − P50 is scaled
    /// towards what nine in ten new jobs should fit in (see `needed_for_90`): all
    /// the way when the share is clearly outside [`Self::COVERAGE_BAND`],
    /// otherwise by the weight `n / (n + PRIOR_JOBS)` (in log terms).
    pub fn from_outcomes(outcomes: &[Outcome]) -> Calibration {
        Self::from_outcomes_with(outcomes, None)
    }

    /// [`Self::from_outcomes`], starting from what the tenant's other assets
    /// taught (`borrowed`) instead of from no correction at all. The bias is
    /// `(n·own + k·borrowed) / (n + k)` in log terms, `n` being this asset's
    /// outcomes and `k` [`Borrowed::bias_jobs`]: with none of its own, the
    /// borrowed bias; as its jobs accrue, its own. The P90's width moves from
    /// the borrowed width (instead of the model's own) towards what this
    /// asset's jobs needed, by the same weight as without. The accuracy, the
    /// coverage and [`Self::pairs`] stay this asset's own.
    pub fn from_outcomes_with(outcomes: &[Outcome], borrowed: Option<Borrowed>) -> Calibration {
        let valid: Vec<Outcome> = outcomes
            .iter()
            .copied()
            .filter(|o| {
                o.p50_ms.is_finite()
                    && o.actual_ms.is_finite()
                    && o.p50_ms > 0.0
                    && o.actual_ms >= 0.0
            })
            .collect();
        let mut ratios: Vec<f64> = valid.iter().map(|o| o.actual_ms / o.p50_ms).collect();
        let mut errors: Vec<f64> = valid
            .iter()
            .filter(|o| o.actual_ms > 0.0)
            .map(|o| (o.p50_ms - o.actual_ms).abs() / o.actual_ms)
            .collect();
        let clamp_log = |r: f64| r.clamp(Self::MIN_RATIO, Self::MAX_RATIO).ln();
        let own_bias = (!ratios.is_empty()).then(|| clamp_log(median(&mut ratios)));
        let n_own = valid.len() as f64;
        let log_bias = match (own_bias, borrowed) {
            (Some(own), Some(b)) => {
                (n_own * own + b.bias_jobs * b.log_bias) / (n_own + b.bias_jobs)
            }
            (None, Some(b)) => b.log_bias,
            (Some(own), None) if valid.len() >= Self::MIN_PAIRS => own,
            _ => 0.0,
        };
        let bias_ratio = log_bias.exp().clamp(Self::MIN_RATIO, Self::MAX_RATIO);
        // What each job would have needed: the multiple of the corrected
        // P90's width that reaches its actual completion.
        let mut needed: Vec<f64> = valid
            .iter()
            .filter(|o| o.p90_ms.is_finite() && o.p90_ms > o.p50_ms)
            .map(|o| (o.actual_ms - bias_ratio * o.p50_ms) / (bias_ratio * (o.p90_ms - o.p50_ms)))
            .collect();
        let covered = needed.iter().filter(|k| **k <= 1.0).count();
        let coverage = (!needed.is_empty()).then(|| covered as f64 / needed.len() as f64);
        let (low, high) = Self::COVERAGE_BAND;
        // Only a clear miss counts: with 10 jobs, 7 covered is within what a
        // P90 that truly covers 80% would show, and 10 of 10 within what one
        // covering 95% would.
        let n = needed.len();
        let clear_miss = n >= Self::MIN_COVERAGE_PAIRS
            && (binomial_cdf(covered, n, low) < Self::MISS_EVIDENCE
                || (covered > 0 && 1.0 - binomial_cdf(covered - 1, n, high) < Self::MISS_EVIDENCE));
        // What 90% would have needed, trusted in proportion to how many jobs
        // tell it: fully on a clear miss, otherwise part of the way (the
        // width the model gives, or the one the tenant's like assets needed,
        // is the prior, worth PRIOR_JOBS jobs). So a P90 that ten jobs show a
        // little too wide or narrow moves towards 90% without being set by a
        // handful of outcomes.
        let prior_width = borrowed.map_or(0.0, |b| b.log_width);
        let spread = match coverage {
            Some(_) if n >= Self::MIN_COVERAGE_PAIRS => {
                let full = needed_for_90(&mut needed).ln();
                let trust = if clear_miss {
                    1.0
                } else {
                    n as f64 / (n as f64 + Self::PRIOR_JOBS)
                };
                (trust * full + (1.0 - trust) * prior_width).exp()
            }
            _ => prior_width.exp(),
        };
        Calibration {
            pairs: valid.len(),
            bias_ratio,
            accuracy: (!errors.is_empty()).then(|| median(&mut errors)),
            coverage,
            spread: spread.clamp(1.0 / Self::MAX_SPREAD, Self::MAX_SPREAD),
        }
    }

    /// Number of usable pairs.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Median of actual/forecast remaining time (clamped), 1 with < 3 pairs.
    pub fn bias_ratio(&self) -> f64 {
        self.bias_ratio
    }

    /// The share of past jobs the (bias-corrected) P90 covered, if any had one.
    pub fn coverage(&self) -> Option<f64> {
        self.coverage
    }

    /// The factor the P90's width is scaled by: 1 when its coverage was in
    /// the band or too few jobs tell.
    pub fn spread(&self) -> f64 {
        self.spread
    }

    /// Scales the remaining time (P50 and P90, measured from `now`) by the
    /// bias ratio, then the P90's width by the spread; the throughput is
    /// divided by the bias ratio.
    pub fn apply(&self, f: Forecast, now: DateTime<Utc>) -> Forecast {
        let scale = |t: DateTime<Utc>| ms_between(now, t).max(0.0) * self.bias_ratio;
        let p50 = scale(f.p50);
        let p90 = p50 + (scale(f.p90) - p50).max(0.0) * self.spread;
        Forecast {
            p50: add_ms(now, p50),
            p90: add_ms(now, p90),
            throughput_per_hour: f.throughput_per_hour / self.bias_ratio,
            ..f
        }
    }

    /// Median absolute relative error `|forecast − actual| / actual` of the
    /// uncorrected forecasts; `None` without a pair with positive actual.
    pub fn accuracy(&self) -> Option<f64> {
        self.accuracy
    }
}

/// How far through a job (share of its partitions done) the bot records its
/// forecast, to learn from once the job completes: a quarter, half and three
/// quarters done.
pub const CHECKPOINTS: [f64; 3] = [0.25, 0.5, 0.75];

/// The last checkpoint a job `progress` done has passed, if any (an index
/// into [`CHECKPOINTS`]).
pub fn checkpoint(progress: f64) -> Option<usize> {
    CHECKPOINTS.iter().rposition(|c| progress >= *c)
}

/// What an asset's past jobs teach, checkpoint by checkpoint: a forecast made
/// at a quarter done is corrected by what forecasts made at a quarter done
/// turned out to be, not by what was learnt later in those jobs (a job whose
/// slope only shows halfway is late at a quarter and right at three quarters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetCalibration {
    at: [Calibration; 3],
}

impl AssetCalibration {
    /// Builds one calibration per checkpoint from `(checkpoint, outcome)`
    /// pairs; outcomes at an unknown checkpoint are ignored.
    pub fn from_outcomes(outcomes: &[(usize, Outcome)]) -> AssetCalibration {
        Self::from_outcomes_with(outcomes, [None; 3])
    }

    /// [`Self::from_outcomes`], each checkpoint starting from what the
    /// tenant's other assets taught there (see [`Calibration::from_outcomes_with`]).
    pub fn from_outcomes_with(
        outcomes: &[(usize, Outcome)],
        borrowed: [Option<Borrowed>; 3],
    ) -> AssetCalibration {
        let at = std::array::from_fn(|i| {
            let mine: Vec<Outcome> = outcomes
                .iter()
                .filter(|(c, _)| *c == i)
                .map(|(_, o)| *o)
                .collect();
            Calibration::from_outcomes_with(&mine, borrowed[i])
        });
        AssetCalibration { at }
    }

    /// The calibration learnt at the checkpoint nearest `progress`.
    pub fn for_progress(&self, progress: f64) -> &Calibration {
        let nearest = (0..CHECKPOINTS.len())
            .min_by(|a, b| {
                (progress - CHECKPOINTS[*a])
                    .abs()
                    .total_cmp(&(progress - CHECKPOINTS[*b]).abs())
            })
            .unwrap_or(0);
        &self.at[nearest]
    }
}

/// One row of a replay: what Servo and the forecaster said at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRow {
    /// Completion time of the partition that triggered the row.
    pub at: DateTime<Utc>,
    /// Partitions done (completed, failed or skipped) at that point.
    pub completed: i64,
    /// Servo's EWMA ETA.
    pub servo_eta: Option<DateTime<Utc>>,
    /// Forecast P50.
    pub p50: Option<DateTime<Utc>>,
    /// Forecast P90.
    pub p90: Option<DateTime<Utc>>,
}

/// Replays a job in `completed_at` order, emitting one row per done
/// partition. At each row the forecaster sees only what Servo knew then:
/// partitions done so far as they are, partitions started but not done as
/// running (attempt 1, no duration), everything else pending with its key.
pub fn replay(partitions: &[PartitionObs], total: i64) -> Vec<ReplayRow> {
    replay_with(partitions, total, None)
}

/// [`replay`], with what the asset's earlier jobs say about its period-end
/// partitions.
pub fn replay_with(
    partitions: &[PartitionObs],
    total: i64,
    period_end_prior: Option<ClassPrior>,
) -> Vec<ReplayRow> {
    replay_knowing(partitions, total, |_| true, |_, _| (period_end_prior, None))
}

/// [`replay`] as the bot forecasts: only at the completions `wanted` (by the
/// count done), each with what the bot knows then (`know`, given the view of
/// the job at that moment and its progress): the period-end prior, and the
/// calibration that corrects the forecast once it is based on the job's
/// history, as `Job::attach_history` corrects it.
pub fn replay_knowing(
    partitions: &[PartitionObs],
    total: i64,
    wanted: impl Fn(i64) -> bool,
    mut know: impl FnMut(&[PartitionObs], f64) -> (Option<ClassPrior>, Option<Calibration>),
) -> Vec<ReplayRow> {
    let mut order: Vec<usize> = (0..partitions.len())
        .filter(|&i| partitions[i].state.is_done() && partitions[i].completed_at.is_some())
        .collect();
    order.sort_by_key(|&i| (partitions[i].completed_at, i));
    let mut rank = vec![usize::MAX; partitions.len()];
    for (k, &i) in order.iter().enumerate() {
        rank[i] = k;
    }
    let mut rows = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if !wanted((k + 1) as i64) {
            continue;
        }
        let at = partitions[i].completed_at.unwrap_or_default();
        let view: Vec<PartitionObs> = partitions
            .iter()
            .zip(&rank)
            .map(|(p, &r)| {
                if r <= k {
                    p.clone()
                } else {
                    let started = p.started_at.filter(|s| *s <= at);
                    PartitionObs {
                        key: p.key.clone(),
                        state: if started.is_some() {
                            PartitionState::Running
                        } else {
                            PartitionState::Pending
                        },
                        started_at: started,
                        completed_at: None,
                        duration_ms: None,
                        attempt_count: i32::from(started.is_some()),
                    }
                }
            })
            .collect();
        let (period_end_prior, calibration) = know(&view, (k + 1) as f64 / total.max(1) as f64);
        let servo = servo_eta(&view, total, at);
        let fc = forecast(&ForecastInput {
            now: at,
            total_partitions: total,
            partitions: &view,
            servo_eta: servo,
            paused: false,
            waiting_upstream: false,
            period_end_prior,
        })
        .map(|f| match calibration {
            Some(c) if f.basis == Basis::History => c.apply(f, at),
            _ => f,
        });
        rows.push(ReplayRow {
            at,
            completed: (k + 1) as i64,
            servo_eta: servo,
            p50: fc.map(|f| f.p50),
            p90: fc.map(|f| f.p90),
        });
    }
    rows
}

/// Header expected by [`parse_trace_csv`] and written by [`trace_csv`].
pub const TRACE_HEADER: &str =
    "partition_key,state,started_at,completed_at,duration_ms,attempt_count";

/// Parses a trace exported from `backfill_partitions`. Times are RFC 3339,
/// empty fields are NULL (an empty attempt_count means 0). Keys must not
/// contain commas. Errors name the 1-based line number.
pub fn parse_trace_csv(text: &str) -> Result<Vec<PartitionObs>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == TRACE_HEADER => {}
        Some((_, h)) => {
            return Err(format!(
                "line 1: expected header '{TRACE_HEADER}', got '{}'",
                h.trim()
            ));
        }
        None => return Err("line 1: empty input, expected a header".to_string()),
    }
    let mut out = Vec::new();
    for (idx, line) in lines {
        let no = idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 6 {
            return Err(format!("line {no}: expected 6 fields, got {}", f.len()));
        }
        let state = PartitionState::parse(f[1])
            .ok_or_else(|| format!("line {no}: unknown state '{}'", f[1]))?;
        let time = |name: &str, v: &str| -> Result<Option<DateTime<Utc>>, String> {
            if v.is_empty() {
                return Ok(None);
            }
            DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| format!("line {no}: invalid {name} '{v}': {e}"))
        };
        let duration_ms = if f[4].is_empty() {
            None
        } else {
            Some(
                f[4].parse::<i64>()
                    .map_err(|e| format!("line {no}: invalid duration_ms '{}': {e}", f[4]))?,
            )
        };
        let attempt_count = if f[5].is_empty() {
            0
        } else {
            f[5].parse::<i32>()
                .map_err(|e| format!("line {no}: invalid attempt_count '{}': {e}", f[5]))?
        };
        out.push(PartitionObs {
            key: f[0].to_string(),
            state,
            started_at: time("started_at", f[2])?,
            completed_at: time("completed_at", f[3])?,
            duration_ms,
            attempt_count,
        });
    }
    Ok(out)
}

/// Writes partitions in the format read by [`parse_trace_csv`].
pub fn trace_csv(partitions: &[PartitionObs]) -> String {
    let mut s = format!("{TRACE_HEADER}\n");
    for p in partitions {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            p.key,
            p.state.as_str(),
            fmt_time(p.started_at),
            fmt_time(p.completed_at),
            p.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
            p.attempt_count
        ));
    }
    s
}

/// Formats replay rows as CSV: `at,completed,servo_eta,p50,p90`, times in
/// RFC 3339 UTC with seconds precision, empty when unknown.
pub fn replay_csv(rows: &[ReplayRow]) -> String {
    let mut s = String::from("at,completed,servo_eta,p50,p90\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{}\n",
            fmt_time(Some(r.at)),
            r.completed,
            fmt_time(r.servo_eta),
            fmt_time(r.p50),
            fmt_time(r.p90)
        ));
    }
    s
}

fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64
}

/// `t + ms`, saturating at ±100 years to stay within chrono's range.
fn add_ms(t: DateTime<Utc>, ms: f64) -> DateTime<Utc> {
    const LIMIT: f64 = 100.0 * 365.0 * 86_400_000.0;
    t + Duration::milliseconds(ms.clamp(-LIMIT, LIMIT).round() as i64)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests;
