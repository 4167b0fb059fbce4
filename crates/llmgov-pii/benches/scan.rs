//! PII scan throughput: one thread, then every core, on a JSON Lines corpus of `{"text"}`
//! records (default: `gen_dev.py --bytes 100000000` from `../shared/data/pii/`, generated
//! into the system temp directory when missing). Prints figures; asserts nothing.
//!
//! With Presidio installed (`pip install presidio-analyzer`; `PRESIDIO_PYTHON` names the
//! Python that has it), its rate on the first megabyte of the same corpus is printed too,
//! and the ratio.
//!
//! `cargo bench -p llmgov-pii --bench scan [-- FILE] [--scan-only]`

use std::time::Instant;

use llmgov_pii::Scanner;
use llmgov_pii::anonymize::{Anonymizer, Keys, Operator, Profile};

fn corpus() -> std::path::PathBuf {
    if let Some(p) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        return p.into();
    }
    let p = std::env::temp_dir().join("llmgov-pii-100mb.jsonl");
    if !p.exists() {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/pii/gen_dev.py"
        );
        let ok = std::process::Command::new("python3")
            .args([script, "--bytes", "100000000", "--seed", "11", "--out"])
            .arg(&p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "could not generate the corpus with {script}; pass a file instead"
        );
    }
    p
}

fn main() {
    let path = corpus();
    let raw = std::fs::read_to_string(&path).expect("corpus");
    let texts: Vec<String> = raw
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["text"].as_str().map(str::to_string)
        })
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let scanner = Scanner::default();
    println!(
        "corpus {}: {} records, {:.1} MB of text",
        path.display(),
        texts.len(),
        bytes as f64 / 1e6
    );

    let t = Instant::now();
    let mut found = 0usize;
    for x in &texts {
        found += scanner.scan(x).len();
    }
    let one = t.elapsed().as_secs_f64();
    // `--scan-only` (for profilers): the one-thread scan alone, three times over.
    if std::env::args().any(|a| a == "--scan-only") {
        let t = Instant::now();
        for _ in 0..2 {
            for x in &texts {
                found += scanner.scan(x).len();
            }
        }
        let rate = 3.0 * bytes as f64 / (one + t.elapsed().as_secs_f64()) / 1e6;
        println!(
            "scan, one thread: {rate:.1} MB/s ({} entities per pass)",
            found / 3
        );
        return;
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let chunk = texts.len().div_ceil(cores);
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(|x| scanner.scan(x).len()).sum::<usize>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let all = t.elapsed().as_secs_f64();
    assert_eq!(total, found);
    let presidio = presidio(&path);
    println!("\n| measure | figure | target |\n|---|---:|---|");
    println!(
        "| scan, one thread | {:.1} MB/s ({found} entities) | ≥ 50 MB/s per core |",
        bytes as f64 / one / 1e6
    );
    println!(
        "| scan, {cores} threads | {:.1} MB/s ({:.2}× one thread) | scales with cores |",
        bytes as f64 / all / 1e6,
        one / all
    );

    match presidio {
        Some((rate, presidio_bytes)) => {
            println!(
                "| Presidio (pattern and phone recognizers), one thread | {rate:.3} MB/s (first {:.1} MB) | — |",
                presidio_bytes as f64 / 1e6
            );
            println!(
                "| llmgov / Presidio, one thread | {:.0}× | ≥ 500× |",
                bytes as f64 / one / 1e6 / rate
            );
        }
        None => println!(
            "| Presidio | not installed (`pip install presidio-analyzer`, or PRESIDIO_PYTHON=path/to/python) | — |"
        ),
    }

    // Anonymization: scan, replace, and rescan the result (`scan_text`), one thread.
    let keys = Keys::derive(&[1; 32]);
    for op in ["replace", "hash", "tokenize", "pseudonymize"] {
        let profile = Profile {
            default: Operator::parse(op).expect("operator"),
            ..Default::default()
        };
        let a = Anonymizer::new(&profile, Some(&keys), "bench").expect("profile");
        let mut tokens = vec![];
        let t = Instant::now();
        let mut out = 0usize;
        for x in &texts {
            out += a.scan_text(&scanner, x, &mut tokens).text.len();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "| anonymize ({op}), one thread | {:.1} MB/s ({} tokens, {:.1} MB out) | — |",
            bytes as f64 / secs / 1e6,
            tokens.len(),
            out as f64 / 1e6
        );
    }
}

/// Presidio's rate on the first `PRESIDIO_BYTES` (default 1 MB) of text of the corpus, in
/// MB/s, when the Python given by `PRESIDIO_PYTHON` (default `python3`) has it installed.
fn presidio(corpus: &std::path::Path) -> Option<(f64, usize)> {
    let python = std::env::var("PRESIDIO_PYTHON").unwrap_or_else(|_| "python3".into());
    let bytes = std::env::var("PRESIDIO_BYTES").unwrap_or_else(|_| "1000000".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/presidio.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(corpus)
        .arg(bytes)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout);
    let mut f = line.split_whitespace();
    (f.next()? == "presidio").then_some(())?;
    let rate: f64 = f.next()?.parse().ok()?;
    let bytes: usize = f.next()?.parse().ok()?;
    Some((rate, bytes))
}
