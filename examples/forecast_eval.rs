//! Evaluates the forecaster against Servo's EWMA ETA on the synthetic trace
//! sets and prints markdown tables. Run with
//! `cargo run --release --example forecast_eval [SEEDS] [FIRST_SEED] [GENERATOR]`
//! (default: 10 seeds per kind starting at seed 1, every generator;
//! GENERATOR is `classic`, `regime`, `heavy-tail` or `all`).
//!
//! For each generator, every kind is scored three ways: as a new asset
//! (the tenant's seven other assets, one per other kind, have finished the
//! jobs of seeds 21..=30), with the asset's own earlier jobs too (the same
//! seeds), and knowing nothing (no finished job anywhere).

use servo_sla_bot::domain::forecast::traces::{
    calibrations_table, evaluate_all, kinds_table, markdown_table, score_kinds, Generator,
    KindSummary, Knowing,
};

/// The seeds of the tenant's finished jobs, which calibration learns from:
/// neither tuned on nor reported.
const HISTORY: std::ops::RangeInclusive<u64> = 21..=30;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (seeds, first) = (arg(1, 10).max(1), arg(2, 1));
    let last = first + seeds - 1;
    let generators: Vec<Generator> = match args.get(3).map(String::as_str) {
        None | Some("all") => Generator::ALL.to_vec(),
        Some(name) => match Generator::parse(name) {
            Some(g) => vec![g],
            None => {
                eprintln!("unknown generator {name}: classic, regime, heavy-tail or all");
                std::process::exit(2);
            }
        },
    };
    println!(
        "Seeds {first}..={last} for each kind; the tenant's finished jobs {HISTORY:?}; \
         points between 10% and 90% progress; error = |forecast - actual| / time left.\n"
    );
    for generator in generators {
        for knowing in Knowing::ALL {
            let (kinds, ratio) = score_kinds(generator, knowing, HISTORY, first..=last);
            println!("### {}, {}\n", generator.name(), knowing.name());
            let summaries: Vec<KindSummary> = kinds.iter().map(|(k, _)| k.clone()).collect();
            print!("{}", kinds_table(&summaries, ratio));
            if knowing != Knowing::Nothing {
                println!("\nWhat the bot knew of each kind's asset:\n");
                print!("{}", calibrations_table(&kinds));
            }
            println!();
        }
        if generator == Generator::Classic {
            let (per, overall) = evaluate_all(first..=last);
            println!("### classic, means pooled over points, knowing nothing\n");
            print!("{}", markdown_table(&per, &overall));
            println!();
        }
    }
}
