//! PII and secret detection: a scanner of text that returns entities with their type,
//! position, score and the recognizer that found them. Pure Rust, no I/O, no model
//! download. Every candidate is validated (checksums, number ranges, structure) before it
//! is reported; context words around a candidate raise or lower its score; overlapping
//! candidates are resolved so that one stretch of text has one type.
//!
//! Offsets: [`Entity::start`] and [`Entity::end`] count Unicode code points (end exclusive),
//! the convention of Presidio and of the scoring tool.
//!
//! All patterns use the `regex` crate (finite automata): linear time on any input, so no
//! catastrophic backtracking on a hostile 100 MB line.

mod checks;
mod person;
mod recognizers;

use serde::Serialize;

pub use recognizers::EntityType;

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: EntityType,
    /// Code-point offsets, end exclusive.
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub recognizer: &'static str,
}

/// A candidate in byte offsets, before overlap resolution.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub kind: EntityType,
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub recognizer: &'static str,
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Types reported (all when empty).
    pub types: Vec<EntityType>,
    /// Candidates scoring below this are dropped.
    pub min_score: f32,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            types: vec![],
            min_score: 0.5,
        }
    }
}

/// A scanner: build once (the patterns compile), use from many threads.
pub struct Scanner {
    cfg: ScanConfig,
    set: recognizers::Recognizers,
    names: person::Names,
}

impl Scanner {
    pub fn new(cfg: ScanConfig) -> Self {
        Self {
            cfg,
            set: recognizers::Recognizers::new(),
            names: person::Names::new(),
        }
    }

    /// The entities of `text`, in order of position.
    pub fn scan(&self, text: &str) -> Vec<Entity> {
        let mut c = Vec::new();
        self.set.find(text, &mut c);
        if self.cfg.types.is_empty() || self.cfg.types.contains(&EntityType::PERSON) {
            self.names.find(text, &mut c);
        }
        c.retain(|x| {
            x.score >= self.cfg.min_score
                && (self.cfg.types.is_empty() || self.cfg.types.contains(&x.kind))
        });
        let kept = resolve(c);
        to_code_points(text, kept)
    }
}

/// Keeps, of overlapping candidates, the higher score; at equal scores the longer span.
fn resolve(mut c: Vec<Candidate>) -> Vec<Candidate> {
    c.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Candidate> = Vec::with_capacity(c.len());
    for x in c {
        if kept.iter().all(|k| x.end <= k.start || k.end <= x.start) {
            kept.push(x);
        }
    }
    kept.sort_by_key(|k| k.start);
    kept
}

/// Byte offsets to code-point offsets, in one pass over the text.
fn to_code_points(text: &str, kept: Vec<Candidate>) -> Vec<Entity> {
    let mut marks: Vec<usize> = kept.iter().flat_map(|k| [k.start, k.end]).collect();
    marks.sort_unstable();
    marks.dedup();
    let mut map = std::collections::HashMap::with_capacity(marks.len());
    let (mut cp, mut mi) = (0usize, 0usize);
    for (b, _) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        while mi < marks.len() && marks[mi] <= b {
            map.insert(marks[mi], cp);
            mi += 1;
        }
        cp += 1;
    }
    kept.into_iter()
        .map(|k| Entity {
            kind: k.kind,
            start: map[&k.start],
            end: map[&k.end],
            score: k.score,
            recognizer: k.recognizer,
        })
        .collect()
}

#[cfg(test)]
mod tests;
