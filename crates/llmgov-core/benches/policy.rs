//! In-process policy evaluation: every template, compiled once with default parameters, run
//! on its passing and its violating example. Prints p50/p99 per template; asserts nothing
//! about speed.
//!
//! `cargo bench -p llmgov-core --bench policy [-- ITERATIONS]` (default 5,000 per input).

use std::time::{Duration, Instant};

use llmgov_core::policy::{rego, templates};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    let limit = Duration::from_millis(100);
    println!(
        "{:<24} {:>10} {:>10} {:>10}   (target p99 < 1 ms)",
        "template", "p50 µs", "p99 µs", "max µs"
    );
    let mut worst = Duration::ZERO;
    for t in templates::all() {
        let source = t.render(&serde_json::Map::new()).unwrap();
        let p = rego::compile(&source).unwrap();
        let mut samples = Vec::with_capacity(2 * n);
        for input in [&t.passing_example, &t.violating_example] {
            // Warm up (first evaluation prepares the engine).
            p.evaluate(input, &t.example_data, limit).unwrap();
            for _ in 0..n {
                let start = Instant::now();
                p.evaluate(input, &t.example_data, limit).unwrap();
                samples.push(start.elapsed());
            }
        }
        samples.sort();
        let p99 = percentile(&samples, 0.99);
        worst = worst.max(p99);
        println!(
            "{:<24} {:>10.1} {:>10.1} {:>10.1}",
            t.id,
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            samples.last().unwrap().as_secs_f64() * 1e6
        );
    }
    println!(
        "worst template p99: {:.1} µs (target < 1 ms: {})",
        worst.as_secs_f64() * 1e6,
        if worst < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
}
