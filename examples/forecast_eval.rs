//! Evaluates the forecaster against Servo's EWMA ETA on the synthetic trace
//! set and prints a markdown table. Run with
//! `cargo run --release --example forecast_eval [SEEDS] [FIRST_SEED]`
//! (default: 10 seeds per pattern starting at seed 1).

use servo_sla_bot::forecast::traces::{evaluate_all, kinds_table, markdown_table, score_all};

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
    let (per, overall) = evaluate_all(first..=last);
    println!("\nMeans, pooled over points:\n");
    print!("{}", markdown_table(&per, &overall));
}
