//! The recognizers: a pattern finds candidates, a validator keeps the real ones, context
//! words adjust the score.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::Regex;
use regex_automata::meta::Regex as Meta;
use regex_automata::{Anchored, Input, Match};

use crate::Candidate;
use crate::checks;

mod entity;
mod keywords;
mod pass;
pub use entity::EntityType;
use keywords::{
    KW_ASSIGN, KW_BEARER, KW_BIRTH, KW_LICENSE, KW_NHS, KW_PASSPORT, KW_SSN, Keywords, WORDS, Word,
};
use pass::{CARD, INTL, IPV4, NANP, NHS, SSN, SSN_BARE, TRUNK};
use pass::{Number, Pass};

/// The built-in recognizers. Patterns marked `Meta` run only where the byte [`Pass`]
/// says they can match (inside a run of number characters, from a word start); the others
/// run over the whole record when a cheap guard (a byte, a keyword) says they may.
pub(crate) struct Recognizers {
    email: Meta,
    card: Dfa,
    ssn: Dfa,
    ssn_bare: Dfa,
    ipv4: Dfa,
    ipv6: Meta,
    iban: Dfa,
    phone_nanp: Dfa,
    phone_intl: Dfa,
    phone_trunk: Dfa,
    url: Regex,
    mac: Regex,
    secrets: Vec<(&'static str, Regex, f32)>,
    assignment: Meta,
    bearer: Regex,
    address: Meta,
    dob: Regex,
    passport: Regex,
    driver_license: Regex,
    nhs: Dfa,
    /// [`WORDS`], found in one pass to decide which recognizers can match.
    words: AhoCorasick,
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("a valid built-in pattern")
}

fn meta(p: &str) -> Meta {
    Meta::new(p).expect("a valid built-in pattern")
}

/// A fully compiled DFA (forward and reverse): for the short ASCII number patterns that
/// run many times per record, it has no cache to fetch and nothing to build while it
/// searches.
type Dfa = regex_automata::dfa::regex::Regex;

fn dfa(p: &str) -> Dfa {
    Dfa::new(p).expect("a valid built-in pattern")
}

/// A pattern searched inside the spans the byte pass gives.
trait Search {
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
fn within<'a>(
    r: &'a impl Search,
    text: &'a str,
    spans: impl Iterator<Item = Range<usize>> + 'a,
) -> impl Iterator<Item = Match> + 'a {
    spans.flat_map(move |span| {
        let mut at = span.start;
        std::iter::from_fn(move || {
            let m = r.find_in(Input::new(text).span(at..span.end))?;
            // (No pattern searched this way matches the empty string.)
            debug_assert!(!m.is_empty());
            at = m.end().max(at + 1);
            Some(m)
        })
    })
}

/// The matches of `r` that start at one of `starts` (ascending), without overlaps, as
/// `find_iter` over the whole text would give them when every match starts at one of them.
fn anchored_at<'a>(
    r: &'a impl Search,
    text: &'a str,
    starts: &'a [usize],
) -> impl Iterator<Item = Match> + 'a {
    let mut next = 0;
    starts.iter().filter_map(move |&s| {
        if s < next {
            return None;
        }
        let m = r.find_in(Input::new(text).span(s..text.len()).anchored(Anchored::Yes))?;
        next = m.end();
        Some(m)
    })
}

/// The character before byte `at`, if any.
fn before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

/// Neither side touches a letter or digit, nor one of `also` that continues the token (a
/// `.` or `-` followed by more letters or digits: `1.2.3.4.5`, `555-1234-99`); a sentence's
/// final `.` is fine.
fn isolated(text: &str, s: usize, e: usize, also: &[char]) -> bool {
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

/// Words that say a number is a phone number (the first eight raise a North American
/// number's score; any of them lets a national number with a trunk `0` be reported).
const PHONE_WORDS: &[&str] = &[
    "phone", "call", "tel", "mobile", "cell", "contact", "fax", "text me", "reach", "ring",
    "whatsapp", "hotline", "number", "t\u{e9}l", "telefon",
];

/// Whether one of `words` (lower case) occurs in the 48 bytes before `at`, compared
/// without regard to case.
fn context(text: &str, at: usize, words: &[&str]) -> bool {
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

/// Base58 (Bitcoin's alphabet: no `0`, `O`, `I`, `l`).
fn is_base58(c: u8) -> bool {
    matches!(c, b'1'..=b'9' | b'A'..=b'H' | b'J'..=b'N' | b'P'..=b'Z' | b'a'..=b'k' | b'm'..=b'z')
}

/// A whole word shaped like a bech32 address: `bc1`, `tb1` or `ltc1` (any case), then 8
/// to 87 characters of the bech32 alphabet.
fn is_bech32(w: &[u8]) -> bool {
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
struct Digits {
    buf: [u8; 64],
    len: usize,
}

impl std::ops::Deref for Digits {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn digits(s: &str) -> Digits {
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

impl Recognizers {
    pub fn new() -> Self {
        let secrets = vec![
            (
                "aws_access_key",
                re(r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}(?-u:\b)"),
                0.95,
            ),
            (
                "github_token",
                re(
                    r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?-u:\b)",
                ),
                0.95,
            ),
            (
                "slack_token",
                re(r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,250}"),
                0.95,
            ),
            (
                "stripe_key",
                re(r"(?-u:\b)(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,247}(?-u:\b)"),
                0.95,
            ),
            (
                "google_api_key",
                re(r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}"),
                0.95,
            ),
            (
                "openai_key",
                re(r"(?-u:\b)sk-(?:proj-|ant-(?:api03-)?)?[A-Za-z0-9_\-]{20,200}"),
                0.9,
            ),
            (
                "sendgrid_key",
                re(r"(?-u:\b)SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}(?-u:\b)"),
                0.95,
            ),
            ("twilio_key", re(r"(?-u:\b)SK[0-9a-fA-F]{32}(?-u:\b)"), 0.8),
            (
                "jwt",
                re(r"(?-u:\b)eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
                0.95,
            ),
            (
                "private_key_block",
                re(
                    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]{16,}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
                ),
                0.99,
            ),
            (
                "azure_storage_key",
                re(r"AccountKey=[A-Za-z0-9+/]{86}=="),
                0.95,
            ),
        ];
        Self {
            email: meta(
                r"(?i)(?-u:\b)[a-z0-9](?:[a-z0-9._%+\-]{0,63})@[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}(?-u:\b)",
            ),
            // Digits are ASCII digits: other scripts' digits are not validated as numbers.
            card: dfa(r"[0-9](?:[ \-]?[0-9]){12,18}"),
            ssn: dfa(r"(?-u:\b)[0-9]{3}[\- ][0-9]{2}[\- ][0-9]{4}(?-u:\b)"),
            ssn_bare: dfa(r"(?-u:\b)[0-9]{9}(?-u:\b)"),
            ipv4: dfa(
                r"(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?-u:\b)",
            ),
            ipv6: meta(
                r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?::(?:[0-9]{1,3}\.){3}[0-9]{1,3})?",
            ),
            iban: dfa(r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}"),
            phone_nanp: dfa(
                r"(?:\+?1[ .\-]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}",
            ),
            // A country code, then maybe the trunk `(0)` some countries write after it.
            phone_intl: dfa(
                r"\+[0-9]{1,3}(?:[ .\-]?\(0\)[0-9]{1,10})?(?:[ .\-]\(?[0-9]{1,10}\)?){1,5}",
            ),
            // A national number with its trunk prefix (`020 7946 0123`, `030-1234-5678`).
            phone_trunk: dfa(r"(?-u:\b)0[1-9][0-9]{0,3}(?:[ .\-][0-9]{2,8}){1,4}(?-u:\b)"),
            url: re(r#"(?i)(?-u:\b)(?:https?|ftp)://[^\s<>"'`()\[\]{}]+"#),
            mac: re(r"(?i)(?-u:\b)[0-9a-f]{2}(?:[:\-][0-9a-f]{2}){5}(?-u:\b)"),
            secrets,
            assignment: meta(
                r#"(?i)(?:[a-z0-9_\-\.]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth|credential|private[_\-]?key)[a-z0-9_\-]*)["']?\s*[:=]\s*["']?(?:[^\s"'`,;]{8,256})"#,
            ),
            bearer: re(r"(?i)(?-u:\b)bearer\s+([A-Za-z0-9\-._~+/]{16,}=*)"),
            // A house number, one to three capitalised words and a street suffix, then
            // optionally a unit, a city, a state and a ZIP code (US style).
            address: meta(
                r"(?-u:\b)[0-9]{1,6}[A-Z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW)\.?\s+)?(?:\p{Lu}[\p{Ll}]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Drive|Dr|Boulevard|Blvd|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Row|Crescent|Close)(?-u:\b)\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|#)\.?\s*[A-Za-z0-9\-]+)?(?:,\s*\p{Lu}[\p{Ll}]+(?:\s\p{Lu}[\p{Ll}]+){0,2},?\s+[A-Z]{2}\s+[0-9]{5}(?:-[0-9]{4})?)?",
            ),
            dob: re(
                r"(?i)(?-u:\b)(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?,?\s+\d{4})(?-u:\b)",
            ),
            passport: re(r"(?-u:\b)[A-Z]?\d{8,9}(?-u:\b)"),
            driver_license: re(
                r"(?-u:\b)(?:[A-Z]{1,2}\d{5,13}|[A-Z]\d{3}-\d{3}-\d{2}-\d{3}-\d|[A-Z]\d{3}-\d{4}-\d{4}|\d{3}-\d{3}-\d{3}|\d{7,12})(?-u:\b)",
            ),
            nhs: dfa(r"(?-u:\b)[0-9]{3}[ \-]?[0-9]{3}[ \-]?[0-9]{4}(?-u:\b)"),
            words: AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .kind(Some(AhoCorasickKind::DFA))
                .prefilter(false)
                .build(WORDS.iter().map(|w| w.0))
                .expect("valid literals"),
        }
    }

    fn keywords(&self, text: &str) -> Keywords {
        let mut g = Keywords {
            keywords: 0,
            secrets: 0,
            assign: vec![],
        };
        let b = text.as_bytes();
        for m in self.words.find_iter(text) {
            let (word, kind) = WORDS[m.pattern().as_usize()];
            match kind {
                Word::Keyword(bit) => {
                    g.keywords |= bit;
                    if bit == KW_ASSIGN {
                        g.assign.push(m.start());
                    }
                }
                // Secret prefixes are case-sensitive; `SK` takes 32 hex digits.
                Word::Secret(i) => {
                    let exact = &b[m.range()] == word.as_bytes();
                    let twilio = i != 7
                        || b.get(m.end()..m.end() + 32)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                    if exact && twilio {
                        g.secrets |= 1 << i;
                    }
                }
            }
        }
        g.assign.sort_unstable();
        g.assign.dedup();
        g
    }

    pub fn find(&self, text: &str, out: &mut Vec<Candidate>) {
        thread_local! {
            static PASS: std::cell::RefCell<Pass> = std::cell::RefCell::default();
        }
        PASS.with_borrow_mut(|p| {
            p.fill(text);
            self.find_with(text, p, out);
        });
    }

    fn find_with(&self, text: &str, p: &Pass, out: &mut Vec<Candidate>) {
        let mut push = |kind, start, end, score, recognizer| {
            out.push(Candidate {
                kind,
                start,
                end,
                score,
                recognizer,
            })
        };
        use EntityType as T;
        // One pass over the bytes and two literal searches say which recognizers can
        // match at all, and where; the others do not run.
        let g = self.keywords(text);
        let when = |c: bool| if c { text } else { "" };
        let numbers = |min: u32, f: fn(&Number) -> bool| {
            p.numbers
                .iter()
                .filter(move |n| n.digits >= min && f(n))
                .map(|n| n.start..n.end)
        };

        // An address is a run of its characters around an `@` (any non-ASCII byte is let
        // in, for the pattern to decide).
        let b = text.as_bytes();
        let email_byte = |c: u8| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'@')
                || c >= 0x80
        };
        let mut ats = vec![];
        let mut i = 0;
        while p.at
            && let Some(k) = b[i..].iter().position(|&c| c == b'@')
        {
            let (mut s, mut e) = (i + k, i + k + 1);
            while s > 0 && email_byte(b[s - 1]) {
                s -= 1;
            }
            while e < b.len() && email_byte(b[e]) {
                e += 1;
            }
            ats.push(s..e);
            i = e;
        }
        for m in within(&self.email, text, ats.into_iter()) {
            push(T::EMAIL_ADDRESS, m.start(), m.end(), 0.95, "email");
        }

        for m in within(&self.card, text, numbers(13, |n| n.may & CARD != 0)) {
            let d = digits(&text[m.range()]);
            if (13..=19).contains(&d.len())
                && isolated(text, m.start(), m.end(), &['-', '.'])
                && checks::luhn(&d)
                && checks::card_issuer(&d)
                && d.iter().any(|x| *x != d[0])
            {
                let ctx = context(
                    text,
                    m.start(),
                    &["card", "visa", "mastercard", "amex", "credit", "debit"],
                );
                push(
                    T::CREDIT_CARD,
                    m.start(),
                    m.end(),
                    if ctx { 0.99 } else { 0.9 },
                    "credit_card",
                );
            }
        }

        let ssn_ok = |s: &str| {
            let d = digits(s);
            let n = |r: std::ops::Range<usize>| {
                d[r].iter().fold(0u32, |a, c| a * 10 + (c - b'0') as u32)
            };
            d.len() == 9 && checks::ssn(n(0..3), n(3..5), n(5..9))
        };
        for m in within(&self.ssn, text, numbers(9, |n| n.may & SSN != 0)) {
            let b = &text.as_bytes()[m.range()];
            if b[3] == b[6]
                && isolated(text, m.start(), m.end(), &['-'])
                && ssn_ok(&text[m.range()])
            {
                let ctx = context(text, m.start(), &["ssn", "social security", "social sec"]);
                push(
                    T::US_SSN,
                    m.start(),
                    m.end(),
                    if ctx { 0.95 } else { 0.8 },
                    "us_ssn",
                );
            }
        }
        let bare = if g.keywords & KW_SSN != 0 {
            9
        } else {
            u32::MAX
        };
        for m in within(
            &self.ssn_bare,
            text,
            numbers(bare, |n| n.may & SSN_BARE != 0),
        ) {
            if ssn_ok(&text[m.range()]) && context(text, m.start(), &["ssn", "social security"]) {
                push(T::US_SSN, m.start(), m.end(), 0.8, "us_ssn");
            }
        }

        for m in within(&self.ipv4, text, numbers(4, |n| n.may & IPV4 != 0)) {
            let dotted_more = text[m.end()..].starts_with('.')
                && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit());
            let version = context(text, m.start(), &["version", " v", "release"])
                && before(text, m.start()).is_some_and(|c| c == 'v' || c == ' ');
            if !dotted_more && before(text, m.start()).is_none_or(|c| c != '.') && !version {
                push(T::IP_ADDRESS, m.start(), m.end(), 0.9, "ipv4");
            }
        }
        let hex = p.hex_colons.iter().map(|&(s, e)| s..e);
        for m in within(&self.ipv6, text, hex) {
            let s = &text[m.range()];
            if s.len() >= 6
                && s.parse::<std::net::Ipv6Addr>().is_ok()
                && isolated(text, m.start(), m.end(), &[':'])
            {
                push(T::IP_ADDRESS, m.start(), m.end(), 0.9, "ipv6");
            }
        }

        for m in anchored_at(&self.iban, text, &p.iban) {
            // Take exactly the country's length of characters (spaces aside).
            let mut compact = Vec::with_capacity(34);
            let mut ends = Vec::with_capacity(34);
            for (i, c) in text[m.range()].bytes().enumerate() {
                if c != b' ' {
                    compact.push(c);
                    ends.push(m.start() + i + 1);
                }
            }
            for len in (15..=compact.len()).rev() {
                if checks::iban(&compact[..len]) {
                    let end = ends[len - 1];
                    if !after(text, end).is_some_and(|c| c.is_ascii_alphanumeric()) {
                        push(T::IBAN_CODE, m.start(), end, 0.95, "iban");
                    }
                    break;
                }
            }
        }

        for m in within(&self.phone_nanp, text, numbers(10, |n| n.may & NANP != 0)) {
            let d = digits(&text[m.range()]);
            let local = &d[d.len() - 10..];
            if (local[0] >= b'2')
                && (local[3] >= b'2')
                && isolated(text, m.start(), m.end(), &['-', '.', '/'])
            {
                let ctx = context(text, m.start(), &PHONE_WORDS[..8]);
                push(
                    T::PHONE_NUMBER,
                    m.start(),
                    m.end(),
                    if ctx { 0.9 } else { 0.75 },
                    "phone_nanp",
                );
            }
        }
        for m in within(&self.phone_intl, text, numbers(8, |n| n.may & INTL != 0)) {
            let mut end = m.end();
            let s = &text[m.range()];
            // A trailing ")" without its "(" is not part of the number.
            if s.ends_with(')') && !s.contains('(') {
                end -= 1;
            }
            let d = digits(&text[m.start()..end]);
            if (8..=15).contains(&d.len()) && isolated(text, m.start(), end, &['-', '.']) {
                push(T::PHONE_NUMBER, m.start(), end, 0.85, "phone_intl");
            }
        }
        // National numbers look like many other numbers: reported only with a phone word
        // before them.
        for m in within(&self.phone_trunk, text, numbers(10, |n| n.may & TRUNK != 0)) {
            let d = digits(&text[m.range()]);
            if (10..=11).contains(&d.len())
                && isolated(text, m.start(), m.end(), &['-', '.'])
                && context(text, m.start(), PHONE_WORDS)
            {
                push(T::PHONE_NUMBER, m.start(), m.end(), 0.8, "phone_national");
            }
        }

        for m in self
            .url
            .find_iter(when(p.colons > 0 && text.contains("://")))
        {
            let t = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?']);
            push(T::URL, m.start(), m.start() + t.len(), 0.6, "url");
        }

        for m in self.mac.find_iter(when(p.colons >= 5 || p.dashes >= 5)) {
            let b = m.as_str().as_bytes();
            if (2..17).step_by(3).all(|i| b[i] == b[2]) {
                push(T::MAC_ADDRESS, m.start(), m.end(), 0.85, "mac");
            }
        }

        // A crypto address is a whole word: its shape says which check to run.
        for &(s, e) in &p.long_words {
            let w = &text[s..e];
            let b = w.as_bytes();
            if (26..=35).contains(&b.len())
                && matches!(b[0], b'1' | b'3')
                && b[1..].iter().all(|&c| is_base58(c))
            {
                if checks::base58check(w) {
                    push(T::CRYPTO, s, e, 0.95, "bitcoin");
                }
            } else if is_bech32(b) {
                if checks::bech32(w) {
                    push(T::CRYPTO, s, e, 0.95, "bech32");
                }
            } else if b.len() == 42
                && w.starts_with("0x")
                && b[2..].iter().all(u8::is_ascii_hexdigit)
            {
                let ctx = context(text, s, &["eth", "wallet", "address", "send", "crypto"]);
                push(T::CRYPTO, s, e, if ctx { 0.95 } else { 0.7 }, "ethereum");
            }
        }

        for (i, (name, r, score)) in self.secrets.iter().enumerate() {
            for m in r.find_iter(when(g.secrets & (1 << i) != 0)) {
                push(T::SECRET, m.start(), m.end(), *score, name);
            }
        }
        // `key = value` with a secret-sounding key: the match starts where the key's
        // characters before a keyword start, so search only there.
        let mut next = 0;
        let key_byte = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
        // Keywords in one run of key characters share its start, searched once (a long run
        // of keywords costs one search, not one per keyword).
        let (mut prev_k, mut prev_s) = (0, usize::MAX);
        for &k in &g.assign {
            if k < next {
                continue;
            }
            let b = text.as_bytes();
            let s = if prev_s != usize::MAX
                && prev_s >= next
                && b[prev_k..k].iter().all(|&c| key_byte(c))
            {
                prev_s
            } else {
                let mut s = k;
                while s > next && key_byte(b[s - 1]) {
                    s -= 1;
                }
                s
            };
            prev_k = k;
            if s == prev_s {
                continue;
            }
            prev_s = s;
            let at = Input::new(text).span(s..text.len()).anchored(Anchored::Yes);
            let Some(m) = self.assignment.find(at) else {
                continue;
            };
            next = m.end();
            // The value ends the match: after the first `:` or `=` (keys hold neither),
            // white space and one quote.
            let sep = s + text[s..m.end()]
                .find([':', '='])
                .expect("the pattern has one");
            let value = text[sep + 1..m.end()]
                .trim_start()
                .strip_prefix(['"', '\''])
                .unwrap_or_else(|| text[sep + 1..m.end()].trim_start());
            let v = m.end() - value.len()..m.end();
            let mixed = value.chars().any(|c| c.is_ascii_digit())
                && value.chars().any(|c| c.is_ascii_alphabetic());
            if checks::entropy(value) >= 3.0
                && mixed
                && !value.contains("***")
                && !crate::anonymize::is_surrogate(value)
            {
                push(T::SECRET, v.start, v.end, 0.8, "secret_assignment");
            }
        }
        let houses: &[usize] = if p.upper || p.non_ascii {
            &p.house
        } else {
            &[]
        };
        for m in anchored_at(&self.address, text, houses) {
            let full = text[m.range()].contains(',');
            let ctx = context(
                text,
                m.start(),
                &[
                    "live at", "address", "ship", "deliver", "located", "mail to", "send to",
                    "billing",
                ],
            );
            let score = match (full, ctx) {
                (true, _) | (_, true) => 0.9,
                _ => 0.7,
            };
            push(
                T::STREET_ADDRESS,
                m.start(),
                m.end(),
                score,
                "street_address",
            );
        }
        for c in self.bearer.captures_iter(when(g.keywords & KW_BEARER != 0)) {
            let v = c.get(1).expect("group");
            if checks::entropy(v.as_str()) >= 3.5 && !crate::anonymize::is_surrogate(v.as_str()) {
                push(T::SECRET, v.start(), v.end(), 0.85, "bearer_token");
            }
        }

        // Identifiers that look like any number: reported only with their context words.
        const BIRTH: &[&str] = &[
            "born",
            "dob",
            "d.o.b",
            "date of birth",
            "birth date",
            "birthdate",
            "birthday",
            "birth:",
        ];
        for m in self.dob.find_iter(when(g.keywords & KW_BIRTH != 0)) {
            if checks::plausible_date(m.as_str()) && context(text, m.start(), BIRTH) {
                push(T::DATE_OF_BIRTH, m.start(), m.end(), 0.85, "date_of_birth");
            }
        }
        for m in self.passport.find_iter(when(g.keywords & KW_PASSPORT != 0)) {
            if context(text, m.start(), &["passport"]) {
                push(T::US_PASSPORT, m.start(), m.end(), 0.85, "us_passport");
            }
        }
        const LICENSE: &[&str] = &[
            "driver's license",
            "driver\u{2019}s license",
            "drivers license",
            "driver license",
            "driving licence",
            "driving license",
            "dl#",
            "dl no",
            "dl number",
            "license number",
            "licence number",
            "license no",
            "license #",
            "lic#",
        ];
        for m in self
            .driver_license
            .find_iter(when(g.keywords & KW_LICENSE != 0))
        {
            if m.as_str().bytes().filter(u8::is_ascii_digit).count() >= 5
                && context(text, m.start(), LICENSE)
            {
                push(
                    T::US_DRIVER_LICENSE,
                    m.start(),
                    m.end(),
                    0.8,
                    "us_driver_license",
                );
            }
        }
        let nhs = if g.keywords & KW_NHS != 0 {
            10
        } else {
            u32::MAX
        };
        for m in within(&self.nhs, text, numbers(nhs, |n| n.may & NHS != 0)) {
            let b = &text.as_bytes()[m.range()];
            let same_separators = b.len() == 10 || (b.len() == 12 && b[3] == b[7]);
            if same_separators
                && isolated(text, m.start(), m.end(), &['-'])
                && checks::nhs(&digits(&text[m.range()]))
                && context(
                    text,
                    m.start(),
                    &["nhs", "health service", "patient number"],
                )
            {
                push(T::UK_NHS, m.start(), m.end(), 0.95, "uk_nhs");
            }
        }
    }
}
