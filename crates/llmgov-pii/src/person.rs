//! Person names without a neural model: runs of capitalised words, kept when something
//! says they are a name: a title (`Dr.`, `Ms.`), a cue phrase before them ("my name is",
//! "written by", "regards,"), or a known first name (census lists) followed by another
//! capitalised word. A name found once marks its other mentions in the same text. Lists
//! alone never make a single capitalised word a name, and a known surname alone is not
//! enough ("International Bank": Bank is a surname too).

use std::borrow::Cow;

use crate::Candidate;
use crate::recognizers::EntityType;
use crate::swar;

mod lists;
mod table;
use lists::{CUES, NOT_NAMES, PLACE_OR_ORG};
use table::{Cues, Table};

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

/// What the word lists say of a word (bits of [`Names::kind`]).
const FIRST_NAME: u8 = 1;
const SURNAME: u8 = 2;
const NOT_NAME: u8 = 4;
const PLACE_OR_ORG_WORD: u8 = 8;
const TITLE: u8 = 16;

const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "mx",
];

pub(crate) struct Names {
    /// Every listed word (lower case), with the lists it is on: one lookup per word.
    lists: Table,
    cues: Cues,
}

/// The `\p{Lu}` and `\p{Ll}` of the pattern this scanner replaces.
fn is_upper(c: char) -> bool {
    c.is_ascii_uppercase() || (!c.is_ascii() && c.is_uppercase())
}

fn is_lower(c: char) -> bool {
    c.is_ascii_lowercase() || (!c.is_ascii() && c.is_lowercase())
}

/// The character at byte `i` and the byte after it.
fn next(text: &str, i: usize) -> Option<(char, usize)> {
    match text.as_bytes().get(i) {
        Some(&b) if b < 0x80 => Some((char::from(b), i + 1)),
        _ => {
            let c = text.get(i..)?.chars().next()?;
            Some((c, i + c.len_utf8()))
        }
    }
}

fn skip_lower(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    loop {
        i = skip_ascii_lower(b, i);
        match next(text, i) {
            Some((c, j)) if !c.is_ascii() && is_lower(c) => i = j,
            _ => return i,
        }
    }
}

/// The first byte at or after `i` that is not an ASCII lower-case letter, eight bytes at a
/// time.
fn skip_ascii_lower(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let other = !swar::in_range(swar::load(b, i), b'a', b'z') & swar::HIGH;
        if other != 0 {
            return i + swar::first(other);
        }
        i += 8;
    }
    while b.get(i).is_some_and(u8::is_ascii_lowercase) {
        i += 1;
    }
    i
}

/// The end of a capitalised word at byte `i`: `Lu Ll+` with an optional `-`/`'` part
/// (`Jae-won`, `D'Angelo`), or `Lu ' Lu Ll+` (`O'Brien`).
fn word_end(text: &str, i: usize) -> Option<usize> {
    let (c, i) = next(text, i)?;
    if !is_upper(c) {
        return None;
    }
    let (c, j) = next(text, i)?;
    if is_lower(c) {
        let e = skip_lower(text, j);
        if let Some((c, k)) = next(text, e)
            && matches!(c, '-' | '\'' | '\u{2019}')
            && let Some((c, k)) = next(text, k)
            && c.is_alphabetic()
            && let Some((c, k)) = next(text, k)
            && is_lower(c)
        {
            return Some(skip_lower(text, k));
        }
        Some(e)
    } else if matches!(c, '\'' | '\u{2019}') {
        let (c, k) = next(text, j)?;
        let (c2, k2) = next(text, k)?;
        (is_upper(c) && is_lower(c2)).then(|| skip_lower(text, k2))
    } else {
        None
    }
}

/// A run of one to four capitalised words or initials (`C.`) separated by spaces or tabs.
struct Run {
    words: [(usize, usize); 4],
    n: usize,
}

impl Run {
    fn end(&self) -> usize {
        self.words[self.n - 1].1
    }
}

fn run_at(text: &str, i: usize) -> Option<Run> {
    let e = word_end(text, i)?;
    let mut run = Run {
        words: [(i, e); 4],
        n: 1,
    };
    let b = text.as_bytes();
    while run.n < 4 {
        let end = run.end();
        let mut k = end;
        while matches!(b.get(k), Some(b' ' | b'\t')) {
            k += 1;
        }
        if k == end {
            break;
        }
        let word = match next(text, k) {
            Some((c, j)) if is_upper(c) && b.get(j) == Some(&b'.') => (k, j + 1),
            _ => match word_end(text, k) {
                Some(e) => (k, e),
                None => break,
            },
        };
        run.words[run.n] = word;
        run.n += 1;
    }
    Some(run)
}

/// The runs of capitalised words of `text`, leftmost first, without overlaps (a run may
/// start inside a word: callers check).
fn runs(text: &str) -> impl Iterator<Item = Run> + '_ {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while let Some(j) = next_capital(b, i) {
            // (A capital word needs a lower-case letter or an apostrophe after the capital:
            // most capitals of codes and acronyms fail at a glance.)
            let fails = b[j] < 0x80
                && b.get(j + 1)
                    .is_none_or(|&c| c < 0x80 && !c.is_ascii_lowercase() && c != b'\'');
            if !fails && let Some(run) = run_at(text, j) {
                i = run.end();
                return Some(run);
            }
            i = j + 1;
        }
        None
    })
}

/// The first byte at or after `i` that may start a capitalised word: an ASCII capital or
/// the first byte of a non-ASCII character, eight bytes at a time.
fn next_capital(b: &[u8], mut i: usize) -> Option<usize> {
    while i + 8 <= b.len() {
        let w = swar::load(b, i);
        // A lead byte of UTF-8 has its two high bits set.
        let m = swar::in_range(w, b'A', b'Z') | (w & (w << 1) & swar::HIGH);
        if m != 0 {
            return Some(i + swar::first(m));
        }
        i += 8;
    }
    (i..b.len()).find(|&j| b[j].is_ascii_uppercase() || b[j] >= 0xC0)
}

impl Names {
    pub fn new() -> Self {
        let sets: [(&mut dyn Iterator<Item = &'static str>, u8); 5] = [
            (&mut FIRST.lines(), FIRST_NAME),
            (&mut LAST.lines(), SURNAME),
            (&mut NOT_NAMES.iter().copied(), NOT_NAME),
            (&mut PLACE_OR_ORG.iter().copied(), PLACE_OR_ORG_WORD),
            (&mut TITLES.iter().copied(), TITLE),
        ];
        Self {
            lists: Table::new(
                sets.into_iter()
                    .flat_map(|(list, bit)| list.map(move |w| (w, bit))),
            ),
            cues: Cues::new(CUES),
        }
    }

    /// The lists a word (any case; a final `.` aside) is on.
    fn kind(&self, w: &str) -> u8 {
        self.lists.get(w.trim_end_matches('.'))
    }

    /// Whether a title ends the text before `at`, and whether a cue phrase does.
    fn cue_before(&self, text: &str, at: usize) -> (bool, bool) {
        let mut from = at.saturating_sub(40);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let mut buf = [0u8; 40];
        let window = &mut buf[..at - from];
        window.copy_from_slice(&text.as_bytes()[from..at]);
        window.make_ascii_lowercase();
        if window.is_ascii() {
            return self.cue_before_ascii(window);
        }
        let before = std::str::from_utf8(window).expect("a slice of a str at char boundaries");
        let b = before.trim_end();
        let title = b
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .is_some_and(|w| TITLES.contains(&w.trim_end_matches('.')));
        let raw: Cow<str> = if before.contains('"') {
            Cow::Owned(before.replace('"', ""))
        } else {
            Cow::Borrowed(before)
        };
        let raw = raw.trim_end();
        let b = b
            .trim_end_matches([',', ':', '(', '"', '\'', '\u{ab}', '{', '['])
            .trim_end();
        (
            title,
            self.ends_with_cue(b) || (raw != b && self.ends_with_cue(raw)),
        )
    }

    /// [`Self::cue_before`] of an ASCII window (lower case): the same steps on bytes.
    fn cue_before_ascii(&self, before: &[u8]) -> (bool, bool) {
        let space = |c: &u8| matches!(c, b'\t'..=b'\r' | b' ');
        let trim = |s: &[u8]| s.len() - s.iter().rev().take_while(|c| space(c)).count();
        let b = &before[..trim(before)];
        let last = &b[b.iter().rposition(space).map_or(0, |i| i + 1)..];
        let last = &last[..last.len() - last.iter().rev().take_while(|&&c| c == b'.').count()];
        let title = TITLES.iter().any(|t| t.as_bytes() == last);
        let mut unquoted = [0u8; 40];
        let raw = if before.contains(&b'"') {
            let mut n = 0;
            for &c in before.iter().filter(|&&c| c != b'"') {
                unquoted[n] = c;
                n += 1;
            }
            &unquoted[..trim(&unquoted[..n])]
        } else {
            b
        };
        let punct = b
            .iter()
            .rev()
            .take_while(|c| matches!(c, b',' | b':' | b'(' | b'"' | b'\'' | b'{' | b'['))
            .count();
        let b = &b[..b.len() - punct];
        let b = &b[..trim(b)];
        let ends = |s: &[u8]| {
            self.cues.ends(s, |j| {
                s[j].is_ascii_alphabetic() && (j == 0 || !s[j - 1].is_ascii_alphanumeric())
            })
        };
        (title, ends(b) || (raw != b && ends(raw)))
    }

    /// Whether `s` ends with a cue phrase that starts a word.
    fn ends_with_cue(&self, s: &str) -> bool {
        let b = s.as_bytes();
        // Cues start with an ASCII letter that starts a word.
        let word_start = |j: usize| match j.checked_sub(1).map(|k| b[k]) {
            None => true,
            Some(c) if c < 0x80 => !c.is_ascii_alphanumeric(),
            Some(_) => s[..j]
                .chars()
                .next_back()
                .is_none_or(|x| !x.is_alphanumeric()),
        };
        self.cues
            .ends(b, |j| b[j].is_ascii_alphabetic() && word_start(j))
    }

    pub fn find(&self, text: &str, out: &mut Vec<Candidate>) {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
        }
        SCRATCH.with_borrow_mut(|s| {
            crate::release(&mut s.found);
            crate::release(&mut s.known);
            crate::release(&mut s.words);
            crate::release(&mut s.reach);
            self.find_in(text, out, s);
        });
    }

    fn find_in(&self, text: &str, out: &mut Vec<Candidate>, scratch: &mut Scratch) {
        let Scratch {
            found,
            known,
            words: mentioned,
            reach,
        } = scratch;
        let mut locals: Option<Vec<String>> = None;
        for run in runs(text) {
            let start = run.words[0].0;
            // A run starts a word.
            if text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            // What the lists say of each word, looked up once.
            let mut kinds = [0u8; 4];
            for (k, &(s, e)) in kinds.iter_mut().zip(&run.words[..run.n]) {
                *k = self.kind(&text[s..e]);
            }
            // Labels and sentence starters in front ("Patient", "Call", "Hi") go.
            let (mut lo, mut hi) = (0, run.n);
            while lo < hi && kinds[lo] & (NOT_NAME | TITLE) != 0 {
                lo += 1;
            }
            while hi > lo
                && (kinds[hi - 1] & NOT_NAME != 0 || {
                    let (s, e) = run.words[hi - 1];
                    text[s..e].ends_with('.')
                })
            {
                hi -= 1;
            }
            let words = &run.words[lo..hi];
            let kinds = &kinds[lo..hi];
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
            if !cue
                && words.len() > 1
                && locals_match(
                    locals.get_or_insert_with(|| email_local_parts(text)),
                    text,
                    words,
                )
            {
                cue = true;
            }
            // "Golden Gate Bridge" is a place; "customer Wei Hall" and "Ms. Park" are people.
            if !title && !cue && kinds.iter().any(|k| k & PLACE_OR_ORG_WORD != 0) {
                continue;
            }
            let known_first = kinds[0] & FIRST_NAME != 0;
            let known_last = words.len() > 1 && kinds[kinds.len() - 1] & SURNAME != 0;
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
            known.extend(words.iter().zip(kinds).map(|(w, &k)| (w.0, k)));
        }
        // A table whose header names a column of people (`name`, `full_name`, `customer`):
        // that column's fields.
        // (Only a text of two lines or more can be a table, with a comma in its header.)
        let first_line_end = memchr::memchr(b'\n', text.trim_end_matches(['\n', '\r']).as_bytes());
        if let Some(nl) = first_line_end
            && let header = &text[..nl + 1]
            && memchr::memchr(b',', header.as_bytes()).is_some()
        {
            let lines = text[nl + 1..].split_inclusive('\n');
            const PERSON_COLUMNS: &[&str] = &[
                "name",
                "full_name",
                "fullname",
                "full name",
                "customer",
                "customer_name",
                "contact",
                "contact_name",
                "patient",
                "employee",
                "person",
            ];
            // (No column name holds a letter whose lower case is ASCII but itself is not.)
            let person_col = header.trim_end().split(',').position(|c| {
                let c = c.trim().trim_matches('"');
                PERSON_COLUMNS.iter().any(|p| c.eq_ignore_ascii_case(p))
            });
            // (The header has two columns or more: it holds a comma.)
            if let Some(k) = person_col {
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
        // (At most 64 distinct words: each is one search of the text.)
        for &(s, e) in found.iter().take(256) {
            for w in text[s..e].split_whitespace() {
                let at = w.as_ptr() as usize - text.as_ptr() as usize;
                let kind = || match known.iter().find(|k| k.0 == at) {
                    Some(k) => k.1,
                    None => self.kind(w),
                };
                if w.len() >= 3
                    && !w.ends_with('.')
                    && mentioned.len() < 64
                    && !mentioned.iter().any(|&(s, e)| &text[s..e] == w)
                    && kind() & NOT_NAME == 0
                {
                    mentioned.push((at, at + w.len()));
                }
            }
        }
        // Whether a span lies inside a found one: by start, with the furthest end so far.
        found.sort_unstable();
        reach.extend(found.iter().scan(0, |r, &(_, e)| {
            *r = e.max(*r);
            Some(*r)
        }));
        for &(s, e) in mentioned.iter() {
            let w = &text[s..e];
            for at in occurrences(text.as_bytes(), w.as_bytes()) {
                let end = at + w.len();
                let before = found.partition_point(|&(s, _)| s <= at);
                let inside = before > 0 && reach[before - 1] >= end;
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

/// The buffers of [`Names::find`], kept per thread, so that a record allocates nothing:
/// names found (spans), what the lists say of their words (by word start), the words whose
/// other mentions are searched, and the furthest end of the found spans so far.
#[derive(Default)]
struct Scratch {
    found: Vec<(usize, usize)>,
    known: Vec<(usize, u8)>,
    words: Vec<(usize, usize)>,
    reach: Vec<usize>,
}

/// Where `w` (not empty) occurs in `text`, leftmost first, without overlaps (as
/// `match_indices`, at less cost for a short text: one `memchr` for the first byte).
fn occurrences<'a>(text: &'a [u8], w: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    memchr::memchr_iter(w[0], text).filter(move |&at| {
        let hit = at >= from && text[at..].starts_with(w);
        if hit {
            from = at + w.len();
        }
        hit
    })
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

#[cfg(test)]
mod tests {
    #[test]
    fn next_capital_finds_capitals_and_non_ascii_characters_only() {
        let text = "the quick brown fox @[`{ jumps Over the lazy dog; caf\u{e9} \u{c9}mile Z";
        let b = text.as_bytes();
        let want: Vec<usize> = (0..b.len())
            .filter(|&j| b[j].is_ascii_uppercase() || b[j] >= 0xC0)
            .collect();
        let mut got = vec![];
        let mut i = 0;
        while let Some(j) = super::next_capital(b, i) {
            got.push(j);
            i = j + 1;
        }
        assert_eq!(got, want);
        // Every byte value, at every position of an eight-byte block.
        for c in 0..=255u8 {
            for at in 0..16 {
                let mut b = [b'a'; 16];
                b[at] = c;
                let want = (c.is_ascii_uppercase() || c >= 0xC0).then_some(at);
                assert_eq!(super::next_capital(&b, 0), want, "{c:#x} at {at}");
            }
        }
    }

    #[test]
    fn lower_case_runs_end_at_the_first_other_byte() {
        for c in 0..=255u8 {
            for at in 0..12 {
                let mut b = [b'q'; 12];
                b[at] = c;
                let want = if c.is_ascii_lowercase() { 12 } else { at };
                assert_eq!(super::skip_ascii_lower(&b, 0), want, "{c:#x} at {at}");
            }
        }
        assert_eq!(super::skip_ascii_lower(b"Ab", 1), 2);
        assert_eq!(super::skip_ascii_lower(b"", 0), 0);
    }

    #[test]
    fn occurrences_are_those_of_match_indices() {
        for (text, w) in [
            ("ab-ab-ab", "ab-ab"),
            ("Lee met Lee; Leeds", "Lee"),
            ("aaaa", "aa"),
            ("", "x"),
            ("José and Josée", "José"),
        ] {
            let want: Vec<usize> = text.match_indices(w).map(|m| m.0).collect();
            let got: Vec<usize> = super::occurrences(text.as_bytes(), w.as_bytes()).collect();
            assert_eq!(got, want, "{w:?} in {text:?}");
        }
    }
}
