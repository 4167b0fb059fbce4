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

pub mod anonymize;
mod checks;
mod person;
#[doc(hidden)]
pub mod properties;
mod recognizers;
mod swar;

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

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

/// What to look for: a workspace's detection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Types reported (all when empty).
    pub types: Vec<EntityType>,
    /// Candidates scoring below this are dropped.
    pub min_score: f32,
    /// Per-type thresholds that replace `min_score` for their type.
    pub thresholds: BTreeMap<String, f32>,
    /// The workspace's own recognizers.
    pub recognizers: Vec<CustomRecognizer>,
    /// Values never reported, whatever found them (compared case-insensitively): a
    /// company's switchboard number, a public support address.
    pub allow_list: Vec<String>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            types: vec![],
            min_score: 0.5,
            thresholds: BTreeMap::new(),
            recognizers: vec![],
            allow_list: vec![],
        }
    }
}

/// A custom recognizer: a pattern (with an optional validator) and/or a deny list of exact
/// words, reported as `entity_type`. Context words near a match raise its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRecognizer {
    pub name: String,
    pub entity_type: EntityType,
    /// A regular expression (the `regex` crate's syntax: linear time, no look-around).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Words always reported (whole words, case-insensitive).
    #[serde(default)]
    pub deny_list: Vec<String>,
    #[serde(default = "default_score")]
    pub score: f32,
    /// Words that, within 48 bytes before a match, raise its score by 0.35 (capped at 1).
    #[serde(default)]
    pub context: Vec<String>,
    /// A check a pattern match must pass.
    #[serde(default)]
    pub validator: Option<Validator>,
}

fn default_score() -> f32 {
    0.6
}

/// Checksums a custom recognizer can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// The digits pass the Luhn check.
    Luhn,
    /// ISO 7064 mod-97 over letters and digits (IBAN-style, check digits in 3rd–4th place).
    Mod97,
    /// The NHS modulus-11 check over ten digits.
    Mod11,
}

/// A configuration that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where, as a JSON path in the configuration (`recognizers[2].pattern`).
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn bad(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// Limits of a configuration, so that one workspace cannot make scans slow for all.
pub const MAX_RECOGNIZERS: usize = 100;
pub const MAX_LIST_WORDS: usize = 10_000;
const MAX_PATTERN_BYTES: usize = 4096;

struct Custom {
    name: &'static str,
    kind: EntityType,
    pattern: Option<Regex>,
    deny: Option<Regex>,
    score: f32,
    context: Vec<String>,
    validator: Option<Validator>,
}

/// Empties a buffer a thread keeps from record to record, and gives back its memory when
/// a huge record made it large (so a 100 MB record does not pin its buffers for good).
pub(crate) fn release<T>(v: &mut Vec<T>) {
    const KEEP: usize = 4096;
    v.clear();
    if v.capacity() > KEEP {
        v.shrink_to(KEEP);
    }
}

/// The built-in recognizers and name lists, compiled on first use.
fn builtins() -> (&'static recognizers::Recognizers, &'static person::Names) {
    static SET: std::sync::OnceLock<recognizers::Recognizers> = std::sync::OnceLock::new();
    static NAMES: std::sync::OnceLock<person::Names> = std::sync::OnceLock::new();
    (
        SET.get_or_init(recognizers::Recognizers::new),
        NAMES.get_or_init(person::Names::new),
    )
}

/// A scanner: build once (the patterns compile), use from many threads.
pub struct Scanner {
    cfg: ScanConfig,
    /// The built-in recognizers: compiled once per process, shared by every scanner (a
    /// workspace's configuration only chooses among them and adds its own).
    set: &'static recognizers::Recognizers,
    names: &'static person::Names,
    custom: Vec<Custom>,
    allow: std::collections::HashSet<String>,
    thresholds: Vec<(EntityType, f32)>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new(ScanConfig::default()).expect("the default configuration is valid")
    }
}

impl Scanner {
    /// Checks and compiles a configuration.
    pub fn new(cfg: ScanConfig) -> Result<Self, ConfigError> {
        let score_ok = |x: f32| (0.0..=1.0).contains(&x);
        if !score_ok(cfg.min_score) {
            return Err(bad("min_score", "must be between 0 and 1"));
        }
        let mut thresholds = vec![];
        for (k, v) in &cfg.thresholds {
            let t = EntityType::parse(k)
                .ok_or_else(|| bad(format!("thresholds.{k}"), "not an entity type"))?;
            if !score_ok(*v) {
                return Err(bad(format!("thresholds.{k}"), "must be between 0 and 1"));
            }
            thresholds.push((t, *v));
        }
        if cfg.recognizers.len() > MAX_RECOGNIZERS {
            return Err(bad(
                "recognizers",
                format!("at most {MAX_RECOGNIZERS} recognizers"),
            ));
        }
        if cfg.allow_list.len() > MAX_LIST_WORDS {
            return Err(bad(
                "allow_list",
                format!("at most {MAX_LIST_WORDS} values"),
            ));
        }
        let mut custom = vec![];
        for (i, r) in cfg.recognizers.iter().enumerate() {
            let at = |f: &str| format!("recognizers[{i}].{f}");
            if r.name.trim().is_empty() || r.name.len() > 64 {
                return Err(bad(at("name"), "1 to 64 characters"));
            }
            if !score_ok(r.score) {
                return Err(bad(at("score"), "must be between 0 and 1"));
            }
            if r.pattern.is_none() && r.deny_list.is_empty() {
                return Err(bad(at("pattern"), "a pattern or a deny list is required"));
            }
            if r.deny_list.len() > MAX_LIST_WORDS || r.context.len() > 100 {
                return Err(bad(
                    at("deny_list"),
                    format!("at most {MAX_LIST_WORDS} words, 100 context words"),
                ));
            }
            let pattern = match &r.pattern {
                Some(p) if p.len() > MAX_PATTERN_BYTES => {
                    return Err(bad(
                        at("pattern"),
                        format!("at most {MAX_PATTERN_BYTES} bytes"),
                    ));
                }
                Some(p) => Some(
                    RegexBuilder::new(p)
                        .size_limit(1 << 20)
                        .dfa_size_limit(2 << 20)
                        .build()
                        .map_err(|e| bad(at("pattern"), first_line(&e.to_string())))?,
                ),
                None => None,
            };
            let words: Vec<String> = r
                .deny_list
                .iter()
                .map(|w| w.trim())
                .filter(|w| !w.is_empty())
                .map(regex::escape)
                .collect();
            let deny = if words.is_empty() {
                None
            } else {
                Some(
                    RegexBuilder::new(&format!(r"(?i)\b(?:{})\b", words.join("|")))
                        .size_limit(16 << 20)
                        .build()
                        .map_err(|e| bad(at("deny_list"), first_line(&e.to_string())))?,
                )
            };
            custom.push(Custom {
                // Recognizer names live as long as the scanner's entities refer to them.
                name: intern(&r.name),
                kind: r.entity_type.clone(),
                pattern,
                deny,
                score: r.score,
                context: r.context.iter().map(|c| c.to_lowercase()).collect(),
                validator: r.validator,
            });
        }
        let allow = cfg.allow_list.iter().map(|a| a.to_lowercase()).collect();
        Ok(Self {
            cfg,
            set: builtins().0,
            names: builtins().1,
            custom,
            allow,
            thresholds,
        })
    }

    pub fn config(&self) -> &ScanConfig {
        &self.cfg
    }

    fn wanted(&self, t: &EntityType) -> bool {
        self.cfg.types.is_empty() || self.cfg.types.contains(t)
    }

    fn threshold(&self, t: &EntityType) -> f32 {
        self.thresholds
            .iter()
            .find(|(k, _)| k == t)
            .map_or(self.cfg.min_score, |(_, v)| *v)
    }

    /// The entities of `text`, in order of position.
    pub fn scan(&self, text: &str) -> Vec<Entity> {
        let mut c = Vec::with_capacity(16);
        self.set.find(text, &mut c);
        if self.wanted(&EntityType::PERSON) {
            self.names.find(text, &mut c);
        }
        for r in &self.custom {
            r.find(text, &mut c);
        }
        // The anonymizer's own surrogates (`tok_…`, `enc_…`, `hash_…`) are not findings,
        // nor is anything inside them.
        let surrogates = anonymize::surrogate_spans(text);
        c.retain(|x| {
            !surrogates.iter().any(|(s, e)| x.start < *e && *s < x.end)
                && x.score >= self.threshold(&x.kind)
                && self.wanted(&x.kind)
                && (self.allow.is_empty()
                    || !self.allow.contains(&text[x.start..x.end].to_lowercase()))
        });
        let kept = resolve(c);
        to_code_points(text, kept)
    }
}

impl Custom {
    fn find(&self, text: &str, out: &mut Vec<Candidate>) {
        let boost = |at: usize| {
            if !self.context.is_empty() && recognizers::context_any(text, at, &self.context) {
                (self.score + 0.35).min(1.0)
            } else {
                self.score
            }
        };
        if let Some(p) = &self.pattern {
            for m in p.find_iter(text) {
                if m.is_empty() || !self.validator.is_none_or(|v| v.check(m.as_str())) {
                    continue;
                }
                out.push(Candidate {
                    kind: self.kind.clone(),
                    start: m.start(),
                    end: m.end(),
                    score: boost(m.start()),
                    recognizer: self.name,
                });
            }
        }
        if let Some(d) = &self.deny {
            for m in d.find_iter(text) {
                out.push(Candidate {
                    kind: self.kind.clone(),
                    start: m.start(),
                    end: m.end(),
                    score: boost(m.start()).max(0.85),
                    recognizer: self.name,
                });
            }
        }
    }
}

impl Validator {
    fn check(self, s: &str) -> bool {
        let d: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
        match self {
            Self::Luhn => !d.is_empty() && checks::luhn(&d),
            Self::Mod11 => checks::nhs(&d),
            Self::Mod97 => {
                let c: Vec<u8> = s
                    .bytes()
                    .filter(u8::is_ascii_alphanumeric)
                    .map(|b| b.to_ascii_uppercase())
                    .collect();
                checks::mod97(&c)
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .chars()
        .take(200)
        .collect()
}

/// Recognizer names of custom configurations, leaked once per distinct name (a handful
/// per workspace) so that entities can carry `&'static str` like the built-in ones.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    if names.len() >= 10_000 {
        return "custom";
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(n);
    n
}

/// Keeps, of overlapping candidates, the higher score; at equal scores the longer span.
fn resolve(mut c: Vec<Candidate>) -> Vec<Candidate> {
    c.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    // The kept ones gather at the front, in the same vector. Kept spans never overlap, so
    // while they are few a look at each is quickest; past that, `taken` maps the start of
    // each kept span to its end, and a candidate overlaps one exactly when the last kept
    // span starting before its end reaches past its start.
    const FEW: usize = 16;
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut kept = 0;
    for i in 0..c.len() {
        let (s, e) = (c[i].start, c[i].end);
        let free = if kept < FEW {
            c[..kept].iter().all(|k| k.end <= s || e <= k.start)
        } else {
            if taken.is_empty() {
                taken.extend(c[..kept].iter().map(|k| (k.start, k.end)));
            }
            taken
                .range(..e)
                .next_back()
                .is_none_or(|(_, &end)| end <= s)
        };
        if free {
            if kept >= FEW {
                taken.insert(s, e);
            }
            c.swap(kept, i);
            kept += 1;
        }
    }
    c.truncate(kept);
    c.sort_by_key(|k| k.start);
    c
}

/// Byte offsets to code-point offsets, in one pass over the text.
fn to_code_points(text: &str, kept: Vec<Candidate>) -> Vec<Entity> {
    if text.is_ascii() {
        return kept
            .into_iter()
            .map(|k| Entity {
                kind: k.kind,
                start: k.start,
                end: k.end,
                score: k.score,
                recognizer: k.recognizer,
            })
            .collect();
    }
    let mut marks: Vec<usize> = kept.iter().flat_map(|k| [k.start, k.end]).collect();
    marks.sort_unstable();
    marks.dedup();
    // The code-point offset of each mark, in the same order.
    let mut cps = Vec::with_capacity(marks.len());
    let ends = text.char_indices().map(|(b, _)| b).chain([text.len()]);
    for (cp, b) in ends.enumerate() {
        while cps.len() < marks.len() && marks[cps.len()] <= b {
            cps.push(cp);
        }
    }
    let at = |b: usize| cps[marks.binary_search(&b).expect("a mark")];
    kept.into_iter()
        .map(|k| Entity {
            kind: k.kind,
            start: at(k.start),
            end: at(k.end),
            score: k.score,
            recognizer: k.recognizer,
        })
        .collect()
}

#[cfg(test)]
mod tests;
