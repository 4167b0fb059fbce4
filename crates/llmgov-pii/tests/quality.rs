//! Detection quality as the scoring tool (`shared/tools/pii_eval.py`) measures it, on two
//! labelled corpora kept in the repository:
//!
//! - `data/independent.jsonl`: hand-written records in styles the generator does not use
//!   (chat turns, logs, configuration files, e-mail headers, CSV, JSON, many languages) and
//!   look-alike negatives (`make_independent.py` there writes it);
//! - `data/generated.jsonl`: 400 records of the dev corpus generator with a seed of its own
//!   (`gen_dev.py --n 400 --seed 4242`).
//!
//! A change that costs recall or precision fails here before it reaches a benchmark. The
//! floors are the quality bars; the figures themselves are in BENCHMARKS.md.

use std::collections::BTreeMap;

use llmgov_pii::Scanner;
use serde_json::Value;

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    hit_predictions: usize,
    predictions: usize,
    hit_gold: usize,
    gold: usize,
}

impl Counts {
    fn f1(&self) -> f64 {
        let p = ratio(self.hit_predictions, self.predictions);
        let r = ratio(self.hit_gold, self.gold);
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

type Span = (String, usize, usize);

/// Partial matching: a prediction is a hit when it overlaps a gold span of its type, and
/// a gold span when a prediction of its type overlaps it. Predictions of types the corpus
/// does not label are ignored.
fn score(corpus: &str) -> (BTreeMap<String, Counts>, Counts) {
    let scanner = Scanner::default();
    let records: Vec<(String, Vec<Span>)> = corpus
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            let spans = v["spans"]
                .as_array()
                .expect("spans")
                .iter()
                .map(|s| {
                    (
                        s["type"].as_str().expect("type").to_string(),
                        s["start"].as_u64().expect("start") as usize,
                        s["end"].as_u64().expect("end") as usize,
                    )
                })
                .collect();
            (v["text"].as_str().expect("text").to_string(), spans)
        })
        .collect();
    let labelled: Vec<String> = {
        let mut t: Vec<String> = records
            .iter()
            .flat_map(|(_, s)| s.iter().map(|x| x.0.clone()))
            .collect();
        t.sort();
        t.dedup();
        t
    };
    let overlaps = |a: &Span, b: &Span| a.0 == b.0 && a.1 < b.2 && b.1 < a.2;
    let mut by_type: BTreeMap<String, Counts> = BTreeMap::new();
    for (text, gold) in &records {
        let predicted: Vec<Span> = scanner
            .scan(text)
            .into_iter()
            .map(|e| (e.kind.to_string(), e.start, e.end))
            .filter(|p| labelled.contains(&p.0))
            .collect();
        for p in &predicted {
            let c = by_type.entry(p.0.clone()).or_default();
            c.predictions += 1;
            c.hit_predictions += usize::from(gold.iter().any(|g| overlaps(p, g)));
        }
        for g in gold {
            let c = by_type.entry(g.0.clone()).or_default();
            c.gold += 1;
            c.hit_gold += usize::from(predicted.iter().any(|p| overlaps(p, g)));
        }
    }
    let mut micro = Counts::default();
    for c in by_type.values() {
        micro.hit_predictions += c.hit_predictions;
        micro.predictions += c.predictions;
        micro.hit_gold += c.hit_gold;
        micro.gold += c.gold;
    }
    (by_type, micro)
}

fn report(by_type: &BTreeMap<String, Counts>, micro: &Counts) -> String {
    let mut s = String::new();
    for (t, c) in by_type {
        s += &format!("{t}: F1 {:.4} ({c:?})\n", c.f1());
    }
    s + &format!("micro: F1 {:.4}", micro.f1())
}

/// The per-type bars (partial match).
fn floor(kind: &str) -> f64 {
    match kind {
        "EMAIL_ADDRESS" | "CREDIT_CARD" | "US_SSN" | "IP_ADDRESS" | "IBAN_CODE" | "CRYPTO" => 0.99,
        "PHONE_NUMBER" | "SECRET" => 0.97,
        "PERSON" => 0.92,
        _ => 0.90,
    }
}

#[test]
fn generated_corpus_meets_every_bar() {
    let (by_type, micro) = score(include_str!("data/generated.jsonl"));
    let r = report(&by_type, &micro);
    assert!(micro.f1() >= 0.97, "{r}");
    for (t, c) in &by_type {
        assert!(c.f1() >= floor(t), "{t} below {}\n{r}", floor(t));
    }
    assert!(by_type.len() >= 10, "the corpus labels every type: {r}");
}

#[test]
fn independent_corpus_meets_the_micro_bar_and_loses_no_type() {
    let (by_type, micro) = score(include_str!("data/independent.jsonl"));
    let r = report(&by_type, &micro);
    // 58 records: one miss moves a type's F1 by several points, so the floor per type is
    // lower than the bar; the micro figure holds the issue's.
    assert!(micro.f1() >= 0.97, "{r}");
    for (t, c) in &by_type {
        assert!(c.f1() >= 0.85, "{t}\n{r}");
    }
}
