//! Person names without a neural model: runs of capitalised words, kept when something
//! says they are a name: a title (`Dr.`, `Ms.`), a cue phrase before them ("my name is",
//! "written by", "regards,"), or a known first name (census lists) followed by another
//! capitalised word. A name found once marks its other mentions in the same text. Lists
//! alone never make a single capitalised word a name, and a known surname alone is not
//! enough ("International Bank": Bank is a surname too).

use std::collections::HashSet;

use regex::Regex;

use crate::Candidate;
use crate::recognizers::EntityType;

static FIRST: &str = include_str!("../data/first_names.txt");
static LAST: &str = include_str!("../data/surnames.txt");

/// The first names, sorted (for fakes and lookups).
pub(crate) fn first_names() -> &'static [&'static str] {
    static V: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let mut v: Vec<&str> = FIRST.lines().collect();
        v.sort_unstable();
        v
    })
}

/// The surnames, most frequent first.
pub(crate) fn surnames() -> &'static [&'static str] {
    static V: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    V.get_or_init(|| LAST.lines().collect())
}

/// Capitalised words that start sentences, label roles or name things, never people here.
const NOT_NAMES: &[&str] = &[
    "a",
    "about",
    "account",
    "after",
    "again",
    "all",
    "also",
    "an",
    "and",
    "any",
    "are",
    "as",
    "assistant",
    "at",
    "attn",
    "be",
    "because",
    "before",
    "best",
    "billing",
    "but",
    "by",
    "call",
    "can",
    "card",
    "cc",
    "city",
    "contact",
    "could",
    "customer",
    "dear",
    "do",
    "does",
    "done",
    "each",
    "email",
    "error",
    "every",
    "for",
    "friday",
    "from",
    "reach",
    "good",
    "great",
    "has",
    "have",
    "he",
    "hello",
    "her",
    "here",
    "hey",
    "hi",
    "his",
    "how",
    "i",
    "if",
    "in",
    "info",
    "is",
    "it",
    "its",
    "just",
    "kind",
    "let",
    "many",
    "may",
    "me",
    "monday",
    "more",
    "most",
    "my",
    "name",
    "new",
    "no",
    "not",
    "note",
    "now",
    "of",
    "ok",
    "okay",
    "on",
    "or",
    "order",
    "our",
    "patient",
    "phone",
    "please",
    "regards",
    "re",
    "saturday",
    "she",
    "shipping",
    "should",
    "sincerely",
    "so",
    "some",
    "sorry",
    "street",
    "subject",
    "sunday",
    "sure",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "thursday",
    "to",
    "today",
    "tomorrow",
    "tuesday",
    "user",
    "we",
    "wednesday",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "yes",
    "you",
    "your",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "mr",
    "mrs",
    "ms",
    "miss",
    "dr",
    "prof",
    "sir",
    "madam",
    "appelle",
    "llama",
    "ruf",
    "chiama",
    "translate",
    "french",
    "spanish",
    "german",
    "english",
    "summary",
    "update",
    "invoice",
    "ticket",
    "team",
    "support",
    "admin",
    "server",
    "deploy",
    "script",
    "hr",
];

/// Words that make a capitalised phrase a place or an organisation, not a person.
const PLACE_OR_ORG: &[&str] = &[
    "airport",
    "avenue",
    "bank",
    "bay",
    "beach",
    "bridge",
    "building",
    "center",
    "centre",
    "church",
    "city",
    "college",
    "company",
    "corp",
    "corporation",
    "county",
    "foundation",
    "group",
    "hall",
    "hospital",
    "hotel",
    "house",
    "inc",
    "institute",
    "island",
    "lake",
    "ltd",
    "llc",
    "mountain",
    "museum",
    "park",
    "river",
    "road",
    "school",
    "square",
    "station",
    "street",
    "tower",
    "university",
    "valley",
    "bros",
    "partners",
    "labs",
    "systems",
];

/// Phrases after which capitalised words are a name.
const CUES: &[&str] = &[
    "my name is",
    "name is",
    "i'm",
    "i am",
    "this is",
    "called",
    "written by",
    "signed by",
    "by",
    "call",
    "contact",
    "dear",
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank you",
    "sorry to hear that",
    "regards",
    "sincerely",
    "cheers",
    "beneficiary",
    "admin is",
    "manager is",
    "patient",
    "customer",
    "appelle",
    "llama a",
    "ruf",
    "chiama",
    "with",
    "from",
    "to",
    "cc",
    "attn",
    "attendees",
    "participants",
    "present",
    "reach",
    "ask",
    "assigned to",
    "reviewed by",
    "approved by",
    "met",
    "signed",
    "best",
    "warm regards",
    "kind regards",
    "name:",
    "name =",
    "author:",
    "owner:",
    "assignee:",
    "contact:",
];

pub(crate) struct Names {
    first: HashSet<&'static str>,
    last: HashSet<&'static str>,
    not_names: HashSet<&'static str>,
    run: Regex,
}

fn is_title(w: &str) -> bool {
    matches!(
        w.trim_end_matches('.').to_lowercase().as_str(),
        "mr" | "mrs" | "ms" | "miss" | "dr" | "prof" | "sir" | "madam" | "mx"
    )
}

impl Names {
    pub fn new() -> Self {
        Self {
            first: FIRST.lines().collect(),
            last: LAST.lines().collect(),
            not_names: NOT_NAMES.iter().copied().collect(),
            // Runs of capitalised words (with initials like `C.` and hyphens or
            // apostrophes inside: `Jae-won`, `O'Brien`).
            run: Regex::new(&{
                let word = r"\p{Lu}(?:\p{Ll}+(?:[-'’]\p{L}\p{Ll}+)?|['’]\p{Lu}\p{Ll}+)";
                format!(r"{word}(?:[ \t]+(?:\p{{Lu}}\.|{word})){{0,3}}")
            })
            .expect("valid pattern"),
        }
    }

    fn cue_before(&self, text: &str, at: usize) -> (bool, bool) {
        let mut from = at.saturating_sub(40);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let before = text[from..at].to_lowercase();
        let b = before.trim_end();
        let title = b
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .is_some_and(is_title);
        let raw = before.replace('"', "");
        let raw = raw.trim_end();
        let b = b
            .trim_end_matches([',', ':', '(', '"', '\'', '«', '{', '['])
            .trim_end();
        let ends_with_word = |b: &str, c: &str| {
            b.ends_with(c)
                && b[..b.len() - c.len()]
                    .chars()
                    .next_back()
                    .is_none_or(|x| !x.is_alphanumeric())
        };
        let cue = CUES
            .iter()
            .any(|c| ends_with_word(b, c) || ends_with_word(raw, c));
        (title, cue)
    }

    pub fn find(&self, text: &str, out: &mut Vec<Candidate>) {
        let mut found: Vec<(usize, usize)> = vec![];
        let locals = email_local_parts(text);
        for m in self.run.find_iter(text) {
            // A run starts a word (the pattern cannot say so for non-ASCII letters).
            if text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            // Words of the run with their byte ranges.
            let mut words: Vec<(usize, usize)> = vec![];
            let mut i = m.start();
            for w in m.as_str().split_whitespace() {
                let s = text[i..].find(w).map(|k| i + k).expect("word of the run");
                words.push((s, s + w.len()));
                i = s + w.len();
            }
            let low = |(s, e): (usize, usize)| text[s..e].trim_end_matches('.').to_lowercase();
            // Labels and sentence starters in front ("Patient", "Call", "Hi") go.
            while let Some(&w) = words.first() {
                if self.not_names.contains(low(w).as_str()) || is_title(&text[w.0..w.1]) {
                    words.remove(0);
                } else {
                    break;
                }
            }
            while let Some(&w) = words.last() {
                if self.not_names.contains(low(w).as_str()) || text[w.0..w.1].ends_with('.') {
                    words.pop();
                } else {
                    break;
                }
            }
            let (Some(&first), Some(&last)) = (words.first(), words.last()) else {
                continue;
            };
            let (title, mut cue) = self.cue_before(text, first.0);
            // The next name of a list that started with one ("Kwame Mensah, Yuki Tanaka").
            if let Some(&(_, prev_end)) = found.last()
                && matches!(
                    text[prev_end.min(first.0)..first.0].trim(),
                    "," | "and" | ", and" | ";" | "&"
                )
            {
                cue = true;
            }
            // A name whose words are in an e-mail address of the record
            // ("Wei Zhang ... wei.zhang@example.cn").
            if !cue && words.len() > 1 && locals_match(&locals, text, &words) {
                cue = true;
            }
            // "Golden Gate Bridge" is a place; "customer Wei Hall" and "Ms. Park" are people.
            if !title
                && !cue
                && words
                    .iter()
                    .any(|&w| PLACE_OR_ORG.contains(&low(w).as_str()))
            {
                continue;
            }
            let known_first = self.first.contains(low(first).as_str());
            let known_last = words.len() > 1 && self.last.contains(low(last).as_str());
            let score = if title {
                0.9
            } else if cue && (words.len() > 1 || known_first || known_last) {
                0.85
            } else if cue {
                0.7
            } else if words.len() > 1 && known_first {
                0.8
            } else {
                continue;
            };
            out.push(Candidate {
                kind: EntityType::PERSON,
                start: first.0,
                end: last.1,
                score,
                recognizer: "person",
            });
            found.push((first.0, last.1));
        }
        // A table whose header names a column of people (`name`, `full_name`, `customer`):
        // that column's fields.
        let mut lines = text.split_inclusive('\n');
        if let Some(header) = lines.next() {
            let cols: Vec<String> = header
                .trim_end()
                .split(',')
                .map(|c| c.trim().trim_matches('"').to_lowercase())
                .collect();
            let person_col = cols.iter().position(|c| {
                matches!(
                    c.as_str(),
                    "name"
                        | "full_name"
                        | "fullname"
                        | "full name"
                        | "customer"
                        | "customer_name"
                        | "contact"
                        | "contact_name"
                        | "patient"
                        | "employee"
                        | "person"
                )
            });
            if let (Some(k), true) = (person_col, cols.len() > 1) {
                let mut at = header.len();
                for line in lines {
                    let mut field_start = at;
                    for (i, f) in line.trim_end_matches(['\n', '\r']).split(',').enumerate() {
                        if i == k {
                            let t = f.trim().trim_matches('"');
                            if t.chars().any(char::is_alphabetic) && !t.contains('@') {
                                let s = field_start + f.find(t).unwrap_or(0);
                                out.push(Candidate {
                                    kind: EntityType::PERSON,
                                    start: s,
                                    end: s + t.len(),
                                    score: 0.85,
                                    recognizer: "person_column",
                                });
                                found.push((s, s + t.len()));
                            }
                            break;
                        }
                        field_start += f.len() + 1;
                    }
                    at += line.len();
                }
            }
        }
        // Other mentions of a found name's words (a surname alone later in the text).
        let mut words: HashSet<&str> = HashSet::new();
        for &(s, e) in &found {
            for w in text[s..e].split_whitespace() {
                if w.len() >= 3
                    && !w.ends_with('.')
                    && !self.not_names.contains(w.to_lowercase().as_str())
                {
                    words.insert(w);
                }
            }
        }
        for w in words {
            for (at, _) in text.match_indices(w) {
                let end = at + w.len();
                let inside = found.iter().any(|&(s, e)| at >= s && end <= e);
                let bounded = text[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric())
                    && text[end..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_alphanumeric());
                if !inside && bounded {
                    out.push(Candidate {
                        kind: EntityType::PERSON,
                        start: at,
                        end,
                        score: 0.7,
                        recognizer: "person_mention",
                    });
                }
            }
        }
    }
}

/// The words of the local parts of the e-mail addresses in `text` (lower case).
fn email_local_parts(text: &str) -> Vec<String> {
    let mut out = vec![];
    for (at, _) in text.match_indices('@') {
        let local: String = text[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out.extend(
            local
                .split(['.', '_', '-', '+'])
                .filter(|w| w.len() >= 3)
                .map(str::to_ascii_lowercase),
        );
    }
    out
}

/// Whether a word of the run (accents folded, lower case) is a word of an e-mail local
/// part, or starts with one of at least three letters ("Siddharth" and "sid").
fn locals_match(locals: &[String], text: &str, words: &[(usize, usize)]) -> bool {
    if locals.is_empty() {
        return false;
    }
    words.iter().any(|&(s, e)| {
        let w = fold(&text[s..e]);
        w.len() >= 3
            && locals
                .iter()
                .any(|l| w == *l || (l.len() >= 3 && w.starts_with(l.as_str())))
    })
}

/// Lower case with the accents of Latin letters removed.
fn fold(w: &str) -> String {
    w.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            c => c,
        })
        .collect()
}
