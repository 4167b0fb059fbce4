//! The recognizers: a pattern finds candidates, a validator keeps the real ones, context
//! words adjust the score.

use regex::Regex;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Candidate;
use crate::checks;

/// Entity types, with Presidio's names where Presidio has them, plus the types of a
/// workspace's custom recognizers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum EntityType {
    PERSON,
    EMAIL_ADDRESS,
    PHONE_NUMBER,
    CREDIT_CARD,
    US_SSN,
    IP_ADDRESS,
    IBAN_CODE,
    CRYPTO,
    STREET_ADDRESS,
    SECRET,
    URL,
    MAC_ADDRESS,
    DATE_OF_BIRTH,
    US_PASSPORT,
    US_DRIVER_LICENSE,
    UK_NHS,
    /// A custom recognizer's type: upper-case letters, digits and `_`.
    Custom(Arc<str>),
}

impl EntityType {
    /// The built-in types.
    pub const ALL: [EntityType; 16] = [
        Self::PERSON,
        Self::EMAIL_ADDRESS,
        Self::PHONE_NUMBER,
        Self::CREDIT_CARD,
        Self::US_SSN,
        Self::IP_ADDRESS,
        Self::IBAN_CODE,
        Self::CRYPTO,
        Self::STREET_ADDRESS,
        Self::SECRET,
        Self::URL,
        Self::MAC_ADDRESS,
        Self::DATE_OF_BIRTH,
        Self::US_PASSPORT,
        Self::US_DRIVER_LICENSE,
        Self::UK_NHS,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::PERSON => "PERSON",
            Self::EMAIL_ADDRESS => "EMAIL_ADDRESS",
            Self::PHONE_NUMBER => "PHONE_NUMBER",
            Self::CREDIT_CARD => "CREDIT_CARD",
            Self::US_SSN => "US_SSN",
            Self::IP_ADDRESS => "IP_ADDRESS",
            Self::IBAN_CODE => "IBAN_CODE",
            Self::CRYPTO => "CRYPTO",
            Self::STREET_ADDRESS => "STREET_ADDRESS",
            Self::SECRET => "SECRET",
            Self::URL => "URL",
            Self::MAC_ADDRESS => "MAC_ADDRESS",
            Self::DATE_OF_BIRTH => "DATE_OF_BIRTH",
            Self::US_PASSPORT => "US_PASSPORT",
            Self::US_DRIVER_LICENSE => "US_DRIVER_LICENSE",
            Self::UK_NHS => "UK_NHS",
            Self::Custom(s) => s,
        }
    }

    /// A built-in type by name, or a custom type when `s` is a valid type name
    /// (`[A-Z][A-Z0-9_]{0,63}`); `None` otherwise.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(t) = Self::ALL.into_iter().find(|t| t.as_str() == s) {
            return Some(t);
        }
        let valid = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        valid.then(|| Self::Custom(s.into()))
    }

    /// A built-in type by name only.
    pub fn builtin(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EntityType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EntityType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EntityType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{}' is not an entity type (upper-case letters, digits and _)",
                s.chars().take(64).collect::<String>()
            ))
        })
    }
}

pub(crate) struct Recognizers {
    email: Regex,
    card: Regex,
    ssn: Regex,
    ssn_bare: Regex,
    ipv4: Regex,
    ipv6: Regex,
    iban: Regex,
    phone_nanp: Regex,
    phone_intl: Regex,
    url: Regex,
    mac: Regex,
    btc: Regex,
    bech32: Regex,
    eth: Regex,
    secrets: Vec<(&'static str, Regex, f32)>,
    assignment: Regex,
    bearer: Regex,
    address: Regex,
    dob: Regex,
    passport: Regex,
    driver_license: Regex,
    nhs: Regex,
    /// Context keywords, found in one pass to decide which recognizers can match.
    keywords: Regex,
    /// The secret patterns' literal prefixes, likewise.
    secret_prefixes: Regex,
}

/// What one pass over a record found, to skip recognizers that cannot match.
struct Guards {
    digits: usize,
    colons: usize,
    dashes: usize,
    at: bool,
    plus: bool,
    dot: bool,
    upper: bool,
    non_ascii: bool,
    bech32_hrp: bool,
    /// `KW_*` bits.
    keywords: u8,
    /// Bit `i`: secret pattern `i` may match.
    secrets: u32,
}

const KW_ASSIGN: u8 = 1;
const KW_BEARER: u8 = 2;
const KW_BIRTH: u8 = 4;
const KW_PASSPORT: u8 = 8;
const KW_LICENSE: u8 = 16;
const KW_NHS: u8 = 32;
const KW_SSN: u8 = 64;

fn re(p: &str) -> Regex {
    Regex::new(p).expect("a valid built-in pattern")
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

/// Whether one of `words` occurs in the 48 bytes before `at` (case-insensitive).
fn context(text: &str, at: usize, words: &[&str]) -> bool {
    let mut from = at.saturating_sub(48);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let w = text[from..at].to_lowercase();
    words.iter().any(|x| w.contains(x))
}

/// Like [`context`], with owned, lower-case words (custom recognizers).
pub(crate) fn context_any(text: &str, at: usize, words: &[String]) -> bool {
    let mut from = at.saturating_sub(48);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let w = text[from..at].to_lowercase();
    words.iter().any(|x| w.contains(x.as_str()))
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_digit).collect()
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
            email: re(
                r"(?i)(?-u:\b)[a-z0-9](?:[a-z0-9._%+\-]{0,63})@[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}(?-u:\b)",
            ),
            card: re(r"\d(?:[ \-]?\d){12,18}"),
            ssn: re(r"(?-u:\b)\d{3}[\- ]\d{2}[\- ]\d{4}(?-u:\b)"),
            ssn_bare: re(r"(?-u:\b)\d{9}(?-u:\b)"),
            ipv4: re(
                r"(?-u:\b)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?-u:\b)",
            ),
            ipv6: re(r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?::(?:\d{1,3}\.){3}\d{1,3})?"),
            iban: re(r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}"),
            phone_nanp: re(r"(?:\+?1[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}"),
            phone_intl: re(r"\+\d{1,3}(?:[ .\-]\(?\d{1,10}\)?){1,5}"),
            url: re(r#"(?i)(?-u:\b)(?:https?|ftp)://[^\s<>"'`()\[\]{}]+"#),
            mac: re(r"(?i)(?-u:\b)[0-9a-f]{2}(?:[:\-][0-9a-f]{2}){5}(?-u:\b)"),
            btc: re(r"(?-u:\b)[13][1-9A-HJ-NP-Za-km-z]{25,34}(?-u:\b)"),
            bech32: re(r"(?i)(?-u:\b)(?:bc|tb|ltc)1[02-9ac-hj-np-z]{8,87}(?-u:\b)"),
            eth: re(r"(?-u:\b)0x[0-9a-fA-F]{40}(?-u:\b)"),
            secrets,
            assignment: re(
                r#"(?i)([a-z0-9_\-\.]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth|credential|private[_\-]?key)[a-z0-9_\-]*)["']?\s*[:=]\s*["']?([^\s"'`,;]{8,256})"#,
            ),
            bearer: re(r"(?i)(?-u:\b)bearer\s+([A-Za-z0-9\-._~+/]{16,}=*)"),
            // A house number, one to three capitalised words and a street suffix, then
            // optionally a unit, a city, a state and a ZIP code (US style).
            address: re(
                r"(?-u:\b)\d{1,6}[A-Z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW)\.?\s+)?(?:\p{Lu}[\p{Ll}]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Drive|Dr|Boulevard|Blvd|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Row|Crescent|Close)(?-u:\b)\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|#)\.?\s*[A-Za-z0-9\-]+)?(?:,\s*\p{Lu}[\p{Ll}]+(?:\s\p{Lu}[\p{Ll}]+){0,2},?\s+[A-Z]{2}\s+\d{5}(?:-\d{4})?)?",
            ),
            dob: re(
                r"(?i)(?-u:\b)(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?,?\s+\d{4})(?-u:\b)",
            ),
            passport: re(r"(?-u:\b)[A-Z]?\d{8,9}(?-u:\b)"),
            driver_license: re(
                r"(?-u:\b)(?:[A-Z]{1,2}\d{5,13}|[A-Z]\d{3}-\d{3}-\d{2}-\d{3}-\d|[A-Z]\d{3}-\d{4}-\d{4}|\d{3}-\d{3}-\d{3}|\d{7,12})(?-u:\b)",
            ),
            nhs: re(r"(?-u:\b)\d{3}[ \-]?\d{3}[ \-]?\d{4}(?-u:\b)"),
            keywords: re(
                r"(?i)password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth|credential|private[_\-]?key|bearer|born|dob|d\.o\.b|birth|passport|licen[cs]e|dl#|dl no|dl number|lic#|nhs|health service|patient number|ssn|social sec",
            ),
            secret_prefixes: re(
                r"AKIA|ASIA|AGPA|AIDA|AROA|gh[pousr]_|github_pat_|xox[abposr]-|[srp]k_(?:live|test)_|AIza|sk-|SG\.|SK[0-9a-fA-F]{32}|eyJ|-----BEGIN|AccountKey=",
            ),
        }
    }

    fn guards(&self, text: &str) -> Guards {
        let mut g = Guards {
            digits: 0,
            colons: 0,
            dashes: 0,
            at: false,
            plus: false,
            dot: false,
            upper: false,
            non_ascii: false,
            bech32_hrp: false,
            keywords: 0,
            secrets: 0,
        };
        let mut prev = 0u8;
        for &b in text.as_bytes() {
            match b {
                b'0'..=b'9' => {
                    g.digits += 1;
                    if b == b'1' && matches!(prev, b'c' | b'C' | b'b' | b'B') {
                        g.bech32_hrp = true;
                    }
                }
                b':' => g.colons += 1,
                b'-' => g.dashes += 1,
                b'@' => g.at = true,
                b'+' => g.plus = true,
                b'.' => g.dot = true,
                b'A'..=b'Z' => g.upper = true,
                0x80.. => g.non_ascii = true,
                _ => {}
            }
            prev = b;
        }
        for m in self.keywords.find_iter(text) {
            let w = m.as_str().to_ascii_lowercase();
            g.keywords |= match w.as_str() {
                "bearer" => KW_BEARER,
                "born" | "dob" | "d.o.b" | "birth" => KW_BIRTH,
                "passport" => KW_PASSPORT,
                "nhs" | "health service" | "patient number" => KW_NHS,
                "ssn" | "social sec" => KW_SSN,
                _ if w.starts_with("licen") || w.starts_with("dl") || w == "lic#" => KW_LICENSE,
                _ => KW_ASSIGN,
            };
        }
        for m in self.secret_prefixes.find_iter(text) {
            let w = m.as_str();
            let i = if w.starts_with("AccountKey=") {
                10
            } else if w.starts_with("-----") {
                9
            } else if w.starts_with("eyJ") {
                8
            } else if w.starts_with("SK") {
                7
            } else if w.starts_with("SG.") {
                6
            } else if w.starts_with("sk-") {
                5
            } else if w.starts_with("AIza") {
                4
            } else if w.ends_with('_') && w.len() >= 8 && w.as_bytes()[2] == b'_' {
                3
            } else if w.starts_with("xox") {
                2
            } else if w.starts_with("gh") || w.starts_with("github") {
                1
            } else {
                0
            };
            g.secrets |= 1 << i;
        }
        g
    }

    pub fn find(&self, text: &str, out: &mut Vec<Candidate>) {
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
        // Cheap guards: one pass over the bytes and two literal searches say which
        // recognizers can match at all; the others do not run.
        let g = self.guards(text);
        let when = |c: bool| if c { text } else { "" };

        for m in self.email.find_iter(when(g.at)) {
            push(T::EMAIL_ADDRESS, m.start(), m.end(), 0.95, "email");
        }

        for m in self.card.find_iter(when(g.digits >= 13)) {
            let d = digits(m.as_str());
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
        for m in self.ssn.find_iter(when(g.digits >= 9)) {
            let b = m.as_str().as_bytes();
            if b[3] == b[6] && isolated(text, m.start(), m.end(), &['-']) && ssn_ok(m.as_str()) {
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
        for m in self
            .ssn_bare
            .find_iter(when(g.digits >= 9 && g.keywords & KW_SSN != 0))
        {
            if ssn_ok(m.as_str()) && context(text, m.start(), &["ssn", "social security"]) {
                push(T::US_SSN, m.start(), m.end(), 0.8, "us_ssn");
            }
        }

        for m in self.ipv4.find_iter(when(g.digits >= 4 && g.dot)) {
            let dotted_more = text[m.end()..].starts_with('.')
                && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit());
            let version = context(text, m.start(), &["version", " v", "release"])
                && before(text, m.start()).is_some_and(|c| c == 'v' || c == ' ');
            if !dotted_more && before(text, m.start()).is_none_or(|c| c != '.') && !version {
                push(T::IP_ADDRESS, m.start(), m.end(), 0.9, "ipv4");
            }
        }
        for m in self.ipv6.find_iter(when(g.colons >= 2)) {
            let s = m.as_str();
            if s.len() >= 6
                && s.parse::<std::net::Ipv6Addr>().is_ok()
                && isolated(text, m.start(), m.end(), &[':'])
            {
                push(T::IP_ADDRESS, m.start(), m.end(), 0.9, "ipv6");
            }
        }

        for m in self.iban.find_iter(when(g.digits >= 2 && g.upper)) {
            // Take exactly the country's length of characters (spaces aside).
            let mut compact = Vec::with_capacity(34);
            let mut ends = Vec::with_capacity(34);
            for (i, c) in m.as_str().bytes().enumerate() {
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

        for m in self.phone_nanp.find_iter(when(g.digits >= 10)) {
            let d = digits(m.as_str());
            let local = &d[d.len() - 10..];
            if (local[0] >= b'2')
                && (local[3] >= b'2')
                && isolated(text, m.start(), m.end(), &['-', '.', '/'])
            {
                let ctx = context(
                    text,
                    m.start(),
                    &[
                        "phone", "call", "tel", "mobile", "cell", "contact", "fax", "text me",
                    ],
                );
                push(
                    T::PHONE_NUMBER,
                    m.start(),
                    m.end(),
                    if ctx { 0.9 } else { 0.75 },
                    "phone_nanp",
                );
            }
        }
        for m in self.phone_intl.find_iter(when(g.plus && g.digits >= 8)) {
            let mut end = m.end();
            // A trailing ")" without its "(" is not part of the number.
            if m.as_str().ends_with(')') && !m.as_str().contains('(') {
                end -= 1;
            }
            let d = digits(&text[m.start()..end]);
            if (8..=15).contains(&d.len()) && isolated(text, m.start(), end, &['-', '.']) {
                push(T::PHONE_NUMBER, m.start(), end, 0.85, "phone_intl");
            }
        }

        for m in self
            .url
            .find_iter(when(g.colons > 0 && text.contains("://")))
        {
            let t = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?']);
            push(T::URL, m.start(), m.start() + t.len(), 0.6, "url");
        }

        for m in self.mac.find_iter(when(g.colons >= 5 || g.dashes >= 5)) {
            let b = m.as_str().as_bytes();
            if (2..17).step_by(3).all(|i| b[i] == b[2]) {
                push(T::MAC_ADDRESS, m.start(), m.end(), 0.85, "mac");
            }
        }

        for m in self.btc.find_iter(when(g.digits > 0)) {
            if checks::base58check(m.as_str()) {
                push(T::CRYPTO, m.start(), m.end(), 0.95, "bitcoin");
            }
        }
        for m in self.bech32.find_iter(when(g.bech32_hrp)) {
            if checks::bech32(m.as_str()) {
                push(T::CRYPTO, m.start(), m.end(), 0.95, "bech32");
            }
        }
        for m in self
            .eth
            .find_iter(when(g.digits > 0 && text.contains("0x")))
        {
            let ctx = context(
                text,
                m.start(),
                &["eth", "wallet", "address", "send", "crypto"],
            );
            push(
                T::CRYPTO,
                m.start(),
                m.end(),
                if ctx { 0.95 } else { 0.7 },
                "ethereum",
            );
        }

        for (i, (name, r, score)) in self.secrets.iter().enumerate() {
            for m in r.find_iter(when(g.secrets & (1 << i) != 0)) {
                push(T::SECRET, m.start(), m.end(), *score, name);
            }
        }
        for c in self
            .assignment
            .captures_iter(when(g.keywords & KW_ASSIGN != 0))
        {
            let v = c.get(2).expect("group");
            let value = v.as_str();
            let mixed = value.chars().any(|c| c.is_ascii_digit())
                && value.chars().any(|c| c.is_ascii_alphabetic());
            if checks::entropy(value) >= 3.0
                && mixed
                && !value.contains("***")
                && !crate::anonymize::is_surrogate(value)
            {
                push(T::SECRET, v.start(), v.end(), 0.8, "secret_assignment");
            }
        }
        for m in self
            .address
            .find_iter(when(g.digits > 0 && (g.upper || g.non_ascii)))
        {
            let full = m.as_str().contains(',');
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
        for m in self
            .nhs
            .find_iter(when(g.digits >= 10 && g.keywords & KW_NHS != 0))
        {
            let b = m.as_str().as_bytes();
            let same_separators = b.len() == 10 || (b.len() == 12 && b[3] == b[7]);
            if same_separators
                && isolated(text, m.start(), m.end(), &['-'])
                && checks::nhs(&digits(m.as_str()))
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
