//! Anonymization operators, chosen per entity type (and, for structured records, per
//! field): redact, replace, mask, hash, encrypt, pseudonymize, tokenize, keep.
//!
//! Keyed operators take their keys from one 32-byte workspace secret ([`Keys`]):
//!
//! - `hash`: `hash_` and the hex HMAC-SHA256 of the value: equal values hash equally within
//!   a workspace and cannot be recomputed outside it.
//! - `encrypt`: `enc_` and base64url of AES-256-GCM (random nonce) over the type and the
//!   value; [`Keys::decrypt`] reverses it.
//! - `tokenize`: `tok_` and 20 base32 characters of an HMAC of the type and the value, the
//!   same token for the same value; the caller keeps the mapping ([`TokenRecord`]) in its
//!   token vault.
//! - `pseudonymize`: a realistic fake chosen by an HMAC of the scope (a dataset), the type
//!   and the value, so a value has one fake throughout a dataset. Formats are kept where it
//!   matters: a fake card passes Luhn with a real issuer prefix, a fake IBAN has valid
//!   check digits, a fake email is an address at a reserved `example` domain.
//!
//! Surrogates (`hash_…`, `enc_…`, `tok_…`) are never reported by the scanner, so scanning
//! an anonymized text finds no entity of a type anonymized by redact, replace, mask, hash,
//! encrypt or tokenize. Pseudonyms are realistic by design and are found again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Entity, EntityType, Scanner};

/// What is done to one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operator", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operator {
    /// Left as it is.
    Keep,
    /// Removed.
    Redact,
    /// Replaced by `with`, or by `<TYPE>`.
    Replace {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
    },
    /// Letters and digits replaced by `char`, except the last `keep`; separators stay.
    Mask {
        #[serde(default)]
        keep: usize,
        #[serde(default = "star")]
        char: char,
    },
    Hash,
    Encrypt,
    Pseudonymize,
    Tokenize,
}

fn star() -> char {
    '*'
}

impl Default for Operator {
    fn default() -> Self {
        Self::Replace { with: None }
    }
}

impl Operator {
    /// The operator's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Redact => "redact",
            Self::Replace { .. } => "replace",
            Self::Mask { .. } => "mask",
            Self::Hash => "hash",
            Self::Encrypt => "encrypt",
            Self::Pseudonymize => "pseudonymize",
            Self::Tokenize => "tokenize",
        }
    }

    /// Parses the short form of the CLI: `redact`, `replace`, `replace:TEXT`, `mask`,
    /// `mask:4`, `hash`, `encrypt`, `pseudonymize`, `tokenize`, `keep`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let no_arg = |op: Operator| match arg {
            None => Ok(op),
            Some(_) => Err(format!("'{name}' takes no argument")),
        };
        match name {
            "keep" => no_arg(Self::Keep),
            "redact" => no_arg(Self::Redact),
            "replace" => Ok(Self::Replace {
                with: arg.map(str::to_owned),
            }),
            "mask" => Ok(Self::Mask {
                keep: match arg {
                    Some(a) => a
                        .parse()
                        .map_err(|_| format!("mask:N needs a number of characters, not '{a}'"))?,
                    None => 0,
                },
                char: '*',
            }),
            "hash" => no_arg(Self::Hash),
            "encrypt" => no_arg(Self::Encrypt),
            "pseudonymize" => no_arg(Self::Pseudonymize),
            "tokenize" => no_arg(Self::Tokenize),
            _ => Err(format!(
                "unknown operator '{name}' (redact, replace[:TEXT], mask[:N], hash, encrypt, pseudonymize, tokenize, keep)"
            )),
        }
    }

    /// Whether the operator needs the workspace's keys.
    pub fn keyed(&self) -> bool {
        matches!(
            self,
            Self::Hash | Self::Encrypt | Self::Pseudonymize | Self::Tokenize
        )
    }
}

/// A field rule of structured records: the operator applies to the whole value of the
/// field (and of every field below it), without scanning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldRule {
    #[serde(flatten)]
    pub operator: Operator,
    /// The type the value is treated as (pseudonym format, token type); `FIELD` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<EntityType>,
}

/// A named set of operators: per entity type, a default, and per-field rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Operator per entity type name.
    pub operators: BTreeMap<String, Operator>,
    /// For types without an operator of their own: `replace` (`<TYPE>`) unless set.
    pub default: Operator,
    /// Rules per field of structured records. A path is the record's keys joined by `.`;
    /// array elements share their array's path (`messages.content`); a CSV or Parquet
    /// column is its name.
    pub fields: BTreeMap<String, FieldRule>,
}

impl Profile {
    /// The operator for `t`.
    pub fn operator(&self, t: &EntityType) -> &Operator {
        self.operators.get(t.as_str()).unwrap_or(&self.default)
    }

    /// Checks the names of types and fields.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        for k in self.operators.keys() {
            if EntityType::parse(k).is_none() {
                return Err(crate::bad(format!("operators.{k}"), "not an entity type"));
            }
        }
        for (k, r) in &self.fields {
            if k.is_empty() || k.len() > 256 {
                return Err(crate::bad("fields", "a field path has 1 to 256 characters"));
            }
            if let Operator::Replace { with: Some(w) } = &r.operator
                && w.len() > 1024
            {
                return Err(crate::bad(format!("fields.{k}.with"), "at most 1024 bytes"));
            }
        }
        Ok(())
    }

    fn keyed(&self) -> bool {
        self.default.keyed()
            || self.operators.values().any(Operator::keyed)
            || self.fields.values().any(|r| r.operator.keyed())
    }
}

/// A token minted while anonymizing, for the caller's token vault.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: String,
    pub entity_type: EntityType,
    pub value: String,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenRecord({}, {})", self.token, self.entity_type)
    }
}

/// One replaced entity: where it was (code points of the input), what replaced it and
/// where that is (code points of the output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replacement {
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub start: usize,
    pub end: usize,
    pub operator: &'static str,
    pub new_start: usize,
    pub new_end: usize,
}

/// An anonymized text.
#[derive(Debug, Clone, PartialEq)]
pub struct Anonymized {
    pub text: String,
    pub items: Vec<Replacement>,
}

/// Why a profile cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnonymizeError {
    /// The profile uses keyed operators and no keys were given.
    NeedsKeys(&'static str),
    Config(crate::ConfigError),
}

impl std::fmt::Display for AnonymizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NeedsKeys(op) => write!(f, "the '{op}' operator needs the workspace's keys"),
            Self::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AnonymizeError {}

/// Applies a profile with optional keys, within a pseudonym scope (a dataset id).
pub struct Anonymizer<'a> {
    profile: &'a Profile,
    keys: Option<&'a Keys>,
    scope: &'a str,
}

/// Counts of a structured anonymization.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonReport {
    /// Replaced values per entity type (`FIELD` for untyped field rules).
    pub replaced: BTreeMap<String, u64>,
    #[serde(skip)]
    pub tokens: Vec<TokenRecord>,
}

const FIELD: &str = "FIELD";

impl<'a> Anonymizer<'a> {
    pub fn new(
        profile: &'a Profile,
        keys: Option<&'a Keys>,
        scope: &'a str,
    ) -> Result<Self, AnonymizeError> {
        profile.validate().map_err(AnonymizeError::Config)?;
        if keys.is_none() && profile.keyed() {
            let op = std::iter::once(&profile.default)
                .chain(profile.operators.values())
                .chain(profile.fields.values().map(|r| &r.operator))
                .find(|o| o.keyed())
                .map_or("hash", Operator::name);
            return Err(AnonymizeError::NeedsKeys(op));
        }
        Ok(Self {
            profile,
            keys,
            scope,
        })
    }

    /// Replaces `entities` (code-point offsets, as the scanner reports them) in `text`.
    /// Tokens minted are appended to `tokens`.
    pub fn text(
        &self,
        text: &str,
        entities: &[Entity],
        tokens: &mut Vec<TokenRecord>,
    ) -> Anonymized {
        let mut out = String::with_capacity(text.len());
        let mut items = Vec::with_capacity(entities.len());
        let mut ents: Vec<&Entity> = entities.iter().filter(|e| e.end > e.start).collect();
        ents.sort_by_key(|e| e.start);
        let bytes = byte_offsets(text, &ents);
        let (mut at, mut out_cp, mut last_end) = (0usize, 0usize, 0usize);
        for e in ents {
            let (Some(&s), Some(&end)) = (bytes.get(&e.start), bytes.get(&e.end)) else {
                continue; // beyond the text
            };
            if e.start < last_end {
                continue; // overlaps the previous one
            }
            let gap = &text[at..s];
            out.push_str(gap);
            out_cp += gap.chars().count();
            let op = self.profile.operator(&e.kind);
            let new = self.apply(op, &e.kind, &text[s..end], tokens);
            let n = new.chars().count();
            items.push(Replacement {
                kind: e.kind.clone(),
                start: e.start,
                end: e.end,
                operator: op.name(),
                new_start: out_cp,
                new_end: out_cp + n,
            });
            out.push_str(&new);
            out_cp += n;
            at = end;
            last_end = e.end;
        }
        out.push_str(&text[at..]);
        Anonymized { text: out, items }
    }

    /// Scans `text` and anonymizes what it finds, again until nothing of an anonymized
    /// type is left: replacing a value can expose a neighbour a recognizer had rejected
    /// (a phone number glued to an e-mail address, a URL around one). Items give spans of
    /// `text` and of the result.
    pub fn scan_text(
        &self,
        scanner: &Scanner,
        text: &str,
        tokens: &mut Vec<TokenRecord>,
    ) -> Anonymized {
        let mut out = self.text(text, &scanner.scan(text), tokens);
        for _ in 0..4 {
            let left: Vec<Entity> = scanner
                .scan(&out.text)
                .into_iter()
                .filter(|e| self.anonymizes(&e.kind))
                .collect();
            if left.is_empty() {
                break;
            }
            let next = self.text(&out.text, &left, tokens);
            out = merge(out, next);
        }
        out
    }

    /// Whether the profile hides values of type `t` (pseudonyms are realistic on purpose).
    pub fn anonymizes(&self, t: &EntityType) -> bool {
        !matches!(
            self.profile.operator(t),
            Operator::Keep | Operator::Pseudonymize
        )
    }

    /// Scans every string of a JSON record with `scanner` and anonymizes what it finds;
    /// fields with a rule are replaced whole.
    pub fn json(&self, scanner: &Scanner, v: &mut Value, report: &mut JsonReport) {
        let mut path = String::new();
        self.walk(scanner, v, &mut path, None, report);
    }

    fn walk(
        &self,
        scanner: &Scanner,
        v: &mut Value,
        path: &mut String,
        rule: Option<&FieldRule>,
        report: &mut JsonReport,
    ) {
        let rule = rule.or_else(|| self.profile.fields.get(path.as_str()));
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    self.walk(scanner, child, path, rule, report);
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for child in items {
                    self.walk(scanner, child, path, rule, report);
                }
            }
            Value::String(s) => match rule {
                Some(r) if r.operator == Operator::Keep => {}
                Some(r) => {
                    let t = r
                        .entity_type
                        .clone()
                        .unwrap_or(EntityType::Custom(FIELD.into()));
                    *s = self.apply(&r.operator, &t, s, &mut report.tokens);
                    *report.replaced.entry(t.as_str().to_owned()).or_default() += 1;
                }
                None => {
                    let a = self.scan_text(scanner, s, &mut report.tokens);
                    for it in &a.items {
                        if it.operator != "keep" {
                            *report
                                .replaced
                                .entry(it.kind.as_str().to_owned())
                                .or_default() += 1;
                        }
                    }
                    *s = a.text;
                }
            },
            Value::Number(n) => {
                if let Some(r) = rule.filter(|r| r.operator != Operator::Keep) {
                    let t = r
                        .entity_type
                        .clone()
                        .unwrap_or(EntityType::Custom(FIELD.into()));
                    let new = self.apply(&r.operator, &t, &n.to_string(), &mut report.tokens);
                    *report.replaced.entry(t.as_str().to_owned()).or_default() += 1;
                    *v = Value::String(new);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// One value through one operator.
    pub fn apply(
        &self,
        op: &Operator,
        t: &EntityType,
        value: &str,
        tokens: &mut Vec<TokenRecord>,
    ) -> String {
        let keys = || self.keys.expect("checked by Anonymizer::new");
        match op {
            Operator::Keep => value.to_owned(),
            Operator::Redact => String::new(),
            Operator::Replace { with: Some(w) } => w.clone(),
            Operator::Replace { with: None } => format!("<{}>", t.as_str()),
            Operator::Mask { keep, char } => mask(value, *keep, *char),
            Operator::Hash => keys().hash(value),
            Operator::Encrypt => keys().encrypt(t, value),
            Operator::Tokenize => {
                let token = keys().token(t, value);
                // Recent repeats are skipped here; callers that keep many records dedupe
                // them as they store (a token is a pure function of type and value).
                if !tokens.iter().rev().take(64).any(|x| x.token == token) {
                    tokens.push(TokenRecord {
                        token: token.clone(),
                        entity_type: t.clone(),
                        value: value.to_owned(),
                    });
                }
                token
            }
            Operator::Pseudonymize => {
                let k = keys();
                if *t == EntityType::PERSON {
                    // Word by word, so that a surname mentioned alone keeps its fake.
                    fake_person(value, &|w| k.rng(self.scope, t, &w.to_lowercase()))
                } else {
                    pseudonym(t, value, &mut k.rng(self.scope, t, value))
                }
            }
        }
    }
}

/// Combines two passes: `second` anonymized `first.text`. Items of the first pass that the
/// second replaced are absorbed; the others move with the second pass's changes; the second
/// pass's items are mapped back to the original text.
fn merge(first: Anonymized, second: Anonymized) -> Anonymized {
    // A position of `first.text` in the original text.
    let back = |p: usize, end: bool| -> usize {
        let mut shift = 0isize;
        for it in &first.items {
            let inside = if end {
                p > it.new_start && p <= it.new_end
            } else {
                p >= it.new_start && p < it.new_end
            };
            if inside {
                return if end { it.end } else { it.start };
            }
            let after = if end {
                it.new_start >= p
            } else {
                it.new_start > p
            };
            if after {
                break;
            }
            shift = it.end as isize - it.new_end as isize;
        }
        (p as isize + shift).max(0) as usize
    };
    let mut items: Vec<Replacement> = vec![];
    for it in &first.items {
        let absorbed = second.items.iter().any(|s| {
            if it.new_start == it.new_end {
                s.start < it.new_start && it.new_start < s.end
            } else {
                s.start < it.new_end && it.new_start < s.end
            }
        });
        if absorbed {
            continue;
        }
        let delta: isize = second
            .items
            .iter()
            .filter(|s| s.end <= it.new_start)
            .map(|s| (s.new_end - s.new_start) as isize - (s.end - s.start) as isize)
            .sum();
        let mut moved = it.clone();
        moved.new_start = (it.new_start as isize + delta) as usize;
        moved.new_end = (it.new_end as isize + delta) as usize;
        items.push(moved);
    }
    for s in &second.items {
        let mut mapped = s.clone();
        mapped.start = back(s.start, false);
        mapped.end = back(s.end, true).max(mapped.start);
        items.push(mapped);
    }
    items.sort_by_key(|i| (i.new_start, i.start));
    Anonymized {
        text: second.text,
        items,
    }
}

/// Byte offsets of the entities' code-point offsets, in one pass over the text.
fn byte_offsets(text: &str, ents: &[&Entity]) -> std::collections::HashMap<usize, usize> {
    let mut marks: Vec<usize> = ents.iter().flat_map(|e| [e.start, e.end]).collect();
    marks.sort_unstable();
    marks.dedup();
    let mut map = std::collections::HashMap::with_capacity(marks.len());
    let mut mi = 0;
    for (cp, (b, _)) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
        .enumerate()
    {
        while mi < marks.len() && marks[mi] == cp {
            map.insert(cp, b);
            mi += 1;
        }
        if mi == marks.len() {
            break;
        }
    }
    map
}

fn mask(value: &str, keep: usize, c: char) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let mut seen = 0;
    value
        .chars()
        .map(|x| {
            if x.is_alphanumeric() {
                seen += 1;
                if seen > total.saturating_sub(keep) {
                    x
                } else {
                    c
                }
            } else {
                x
            }
        })
        .collect()
}

mod keys;
mod pseudonym;

pub(crate) use keys::surrogate_spans;
pub use keys::{Keys, Surrogate, SurrogateKind, find_surrogates, is_surrogate};
use pseudonym::{fake_person, pseudonym};

#[cfg(test)]
mod tests;
