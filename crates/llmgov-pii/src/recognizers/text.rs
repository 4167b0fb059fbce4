//! Helpers of the recognizers: how patterns are built and searched inside the byte pass's
//! spans, and the checks of the text around a match (word edges, context words, digits).

use std::ops::Range;

use regex::Regex;
use regex_automata::meta::Regex as Meta;
use regex_automata::{Anchored, Input, Match};

pub(super) fn re(p: &str) -> Regex {
    Regex::new(p).expect("a valid built-in pattern")
}

pub(super) fn meta(p: &str) -> Meta {
    Meta::new(p).expect("a valid built-in pattern")
}

/// A fully compiled DFA (forward and reverse): for the short ASCII number patterns that
/// run many times per record, it has no cache to fetch and nothing to build while it
/// searches.
pub(super) type Dfa = regex_automata::dfa::regex::Regex;

pub(super) fn dfa(p: &str) -> Dfa {
    Dfa::new(p).expect("a valid built-in pattern")
}

/// A pattern searched inside the spans the byte pass gives.
pub(super) trait Search {
    fn find_in(&self, input: Input<'_>) -> Option<Match>;
}

impl Search for Meta {
    fn find_in(&self, input: Input<'_>) -> Option<Match> {
        self.find(input)
    }
}

impl Search for Dfa {
    fn find_in(&self, input: Input<'_>) -> Option<Match> {
        self.find(input)
    }
}

/// The matches of `r` inside `spans` of `text` (the text around a span still decides
/// `\b`), in order.
pub(super) fn within<'a, R: Search, I: Iterator<Item = Range<usize>>>(
    r: &'a R,
    text: &'a str,
    spans: I,
) -> Within<'a, R, I> {
    Within {
        r,
        text,
        spans,
        rest: 0..0,
    }
}

/// The iterator of [`within`]: `rest` is what is left of the span being searched.
pub(super) struct Within<'a, R, I> {
    r: &'a R,
    text: &'a str,
    spans: I,
    rest: Range<usize>,
}

impl<R: Search, I: Iterator<Item = Range<usize>>> Iterator for Within<'_, R, I> {
    type Item = Match;

    fn next(&mut self) -> Option<Match> {
        loop {
            // (No pattern searched this way matches the empty string, so an empty rest
            // holds no match.)
            if !self.rest.is_empty()
                && let Some(m) = self
                    .r
                    .find_in(Input::new(self.text).span(self.rest.clone()))
            {
                debug_assert!(!m.is_empty());
                self.rest.start = m.end();
                return Some(m);
            }
            self.rest = self.spans.next()?;
            // Most spans' match starts where the span does: an anchored search finds it
            // with no search for its start (the leftmost match, when there is one there).
            let input = Input::new(self.text).span(self.rest.clone());
            if let Some(m) = self.r.find_in(input.anchored(Anchored::Yes)) {
                self.rest.start = m.end();
                return Some(m);
            }
        }
    }
}

/// The matches of `r` that start at one of `starts` (ascending), without overlaps, as
/// `find_iter` over the whole text would give them when every match starts at one of them.
pub(super) fn anchored_at<'a>(
    r: &'a impl Search,
    text: &'a str,
    starts: impl IntoIterator<Item = usize> + 'a,
) -> impl Iterator<Item = Match> + 'a {
    let mut next = 0;
    starts.into_iter().filter_map(move |s| {
        if s < next {
            return None;
        }
        let m = r.find_in(Input::new(text).span(s..text.len()).anchored(Anchored::Yes))?;
        next = m.end();
        Some(m)
    })
}

/// The character before byte `at`, if any.
pub(super) fn before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

pub(super) fn after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

/// Neither side touches a letter or digit, nor one of `also` that continues the token (a
/// `.` or `-` followed by more letters or digits: `1.2.3.4.5`, `555-1234-99`); a sentence's
/// final `.` is fine.
pub(super) fn isolated(text: &str, s: usize, e: usize, also: &[char]) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let left = match before(text, s) {
        Some(c) if also.contains(&c) => alnum(before(text, s - c.len_utf8())),
        c => alnum(c),
    };
    let right = match after(text, e) {
        Some(c) if also.contains(&c) => alnum(after(text, e + c.len_utf8())),
        c => alnum(c),
    };
    !left && !right
}

/// Whether one of `words` (lower case) occurs in the 48 bytes before `at`, compared
/// without regard to case.
pub(super) fn context(text: &str, at: usize, words: &[&str]) -> bool {
    context_any(text, at, words)
}

/// Like [`context`], for any list of lower-case words (custom recognizers own theirs).
pub(crate) fn context_any(text: &str, at: usize, words: &[impl AsRef<str>]) -> bool {
    let mut from = at.saturating_sub(48);
    let window = &text.as_bytes()[from..at];
    if !window.is_ascii() {
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let w = text[from..at].to_lowercase();
        return words.iter().any(|x| w.contains(x.as_ref()));
    }
    let mut buf = [0u8; 48];
    let w = &mut buf[..window.len()];
    w.copy_from_slice(window);
    w.make_ascii_lowercase();
    words.iter().any(|x| {
        let x = x.as_ref().as_bytes();
        !x.is_empty() && w.windows(x.len()).any(|s| s[0] == x[0] && s == x)
    })
}

/// The ASCII bytes of `\s` (Unicode white space): tab, line feed, vertical tab, form feed,
/// carriage return and space.
pub(super) fn is_space(c: u8) -> bool {
    matches!(c, b'\t'..=b'\r' | b' ')
}

/// Base58 (Bitcoin's alphabet: no `0`, `O`, `I`, `l`).
pub(super) fn is_base58(c: u8) -> bool {
    matches!(c, b'1'..=b'9' | b'A'..=b'H' | b'J'..=b'N' | b'P'..=b'Z' | b'a'..=b'k' | b'm'..=b'z')
}

/// A whole word shaped like a bech32 address: `bc1`, `tb1` or `ltc1` (any case), then 8
/// to 87 characters of the bech32 alphabet.
pub(super) fn is_bech32(w: &[u8]) -> bool {
    let lower = |i: usize| w[i].to_ascii_lowercase();
    let hrp = if w.len() > 4 && lower(0) == b'l' && lower(1) == b't' && lower(2) == b'c' {
        3
    } else if w.len() > 3 && matches!((lower(0), lower(1)), (b'b', b'c') | (b't', b'b')) {
        2
    } else {
        return false;
    };
    let data = &w[hrp + 1..];
    w[hrp] == b'1'
        && (8..=87).contains(&data.len())
        && data.iter().all(|&c| {
            matches!(c.to_ascii_lowercase(), b'0' | b'2'..=b'9' | b'a' | b'c'..=b'h' | b'j'..=b'n' | b'p'..=b'z')
        })
}

/// The ASCII digits of a match, on the stack (a match with more than 64 is too long for
/// any number pattern, and its first 64 fail their length checks).
pub(super) struct Digits {
    buf: [u8; 64],
    len: usize,
}

impl std::ops::Deref for Digits {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(super) fn digits(s: &str) -> Digits {
    let mut d = Digits {
        buf: [0; 64],
        len: 0,
    };
    for c in s.bytes().filter(u8::is_ascii_digit) {
        if d.len == d.buf.len() {
            break;
        }
        d.buf[d.len] = c;
        d.len += 1;
    }
    d
}
