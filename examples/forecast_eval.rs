//! Evaluates the forecaster against Servo's EWMA ETA on the synthetic trace
//! set and prints a markdown table. Run with
//! `cargo run --release --example forecast_eval [SEEDS] [FIRST_SEED]`
//! (default: 10 seeds per pattern starting at seed 1).

use servo_sla_bot::forecast::traces::{
    calibrations_table, evaluate_all, kinds_table, markdown_table, score_all, score_all_calibrated,
};

/// The seeds of each kind's earlier jobs, which its calibration learns from.
const HISTORY: std::ops::RangeInclusive<u64> = 21..=30;

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (seeds, first) = (arg(1, 10).max(1), arg(2, 1));
    let last = first + seeds - 1;
    println!("Seeds {first}..={last} for each kind; points between 10% and 90% progress.\n");
    let (kinds, ratio) = score_all(first..=last);
    println!("Medians (error = |forecast - actual| / time left):\n");
    print!("{}", kinds_table(&kinds, ratio));
    // The calibration check: each kind's asset has finished ten earlier jobs
    // (seeds 21..=30, neither tuned on nor held out; one recorded forecast
    // each at a quarter, half and three quarters done) and corrects its
    // forecasts by what they taught.
    let (calibrated, cal_ratio) = score_all_calibrated(HISTORY, first..=last);
    println!("\nCalibrated by the asset's past jobs (seeds {HISTORY:?}):\n");
    print!("{}", calibrations_table(&calibrated));
    println!();
    let summaries: Vec<_> = calibrated.into_iter().map(|(k, _)| k).collect();
    print!("{}", kinds_table(&summaries, cal_ratio));
    let (per, overall) = evaluate_all(first..=last);
    println!("\nMeans, pooled over points:\n");
    print!("{}", markdown_table(&per, &overall));
}
