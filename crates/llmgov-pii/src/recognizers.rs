//! The recognizers: a pattern finds candidates, a validator keeps the real ones, context
//! words adjust the score.

use regex::Regex;
use regex_automata::dfa::Automaton;
use regex_automata::meta::Regex as Meta;
use regex_automata::{Anchored, Input};

use crate::Candidate;
use crate::checks;

mod build;
mod entity;
mod keywords;
mod pass;
mod text;
pub use entity::EntityType;
use keywords::{
    KW_ASSIGN, KW_BEARER, KW_BIRTH, KW_LICENSE, KW_NHS, KW_PASSPORT, KW_SSN, Keywords, WORDS, Word,
};
use pass::{CARD, INTL, IPV4, NANP, NHS, SSN, SSN_BARE, TRUNK};
use pass::{Number, Pass};
pub(crate) use text::context_any;
use text::{
    Dfa, after, anchored_at, before, context, digits, is_base58, is_bech32, is_space, isolated,
    within,
};

/// The built-in recognizers. Patterns of type `Dfa` or `Meta` run only where the byte [`Pass`]
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
    url: Meta,
    mac: Meta,
    secrets: Vec<(&'static str, Meta, f32)>,
    assignment: Meta,
    bearer: Meta,
    address: Meta,
    dob: Regex,
    passport: Regex,
    driver_license: Regex,
    nhs: Dfa,
    /// [`WORDS`] (ASCII letters in any case), found in one pass to decide which
    /// recognizers can match: a DFA of the literals, leftmost first, without overlaps.
    words: regex_automata::dfa::dense::DFA<Vec<u32>>,
}

/// Words that say a number is a phone number (the first eight raise a North American
/// number's score; any of them lets a national number with a trunk `0` be reported).
const PHONE_WORDS: &[&str] = &[
    "phone", "call", "tel", "mobile", "cell", "contact", "fax", "text me", "reach", "ring",
    "whatsapp", "hotline", "number", "t\u{e9}l", "telefon",
];

/// Buffers of [`Recognizers::find_with`], kept per thread: the keywords of the record, the
/// spans around its `@`s and the starts of its URLs.
#[derive(Default)]
struct Scratch {
    keywords: Keywords,
    ats: Vec<std::ops::Range<usize>>,
    schemes: Vec<usize>,
}

impl Recognizers {
    /// Fills `g` with the keywords and secret prefixes of `text`.
    fn keywords(&self, text: &str, g: &mut Keywords) {
        g.keywords = 0;
        crate::release(&mut g.secrets);
        crate::release(&mut g.bearer);
        crate::release(&mut g.assign);
        let b = text.as_bytes();
        let mut at = 0;
        while let Some(end) = self
            .words
            .try_search_fwd(&Input::new(text).range(at..))
            .expect("the DFA has no quit bytes")
        {
            let (word, kind) = WORDS[end.pattern().as_usize()];
            // (Each word is a literal of ASCII bytes: its match is as long as it is.)
            let m = end.offset() - word.len()..end.offset();
            at = m.end;
            match kind {
                Word::Keyword(bit) => {
                    g.keywords |= bit;
                    if bit == KW_ASSIGN {
                        g.assign.push(m.start);
                    } else if bit == KW_BEARER {
                        g.bearer.push(m.start);
                    }
                }
                // Secret prefixes are case-sensitive; `SK` takes 32 hex digits.
                Word::Secret(i) => {
                    let exact = &b[m.clone()] == word.as_bytes();
                    let twilio = i != 7
                        || b.get(m.end..m.end + 32)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                    if exact && twilio {
                        g.secrets.push((i, m.start));
                    }
                }
            }
        }
        g.assign.sort_unstable();
        g.assign.dedup();
    }

    pub fn find(&self, text: &str, out: &mut Vec<Candidate>) {
        // The pass and the buffers are reused from record to record (a record allocates
        // nothing here).
        thread_local! {
            static STATE: std::cell::RefCell<(Pass, Scratch)> = std::cell::RefCell::default();
        }
        STATE.with_borrow_mut(|(p, scratch)| {
            p.fill(text);
            self.find_with(text, p, scratch, out);
        });
    }

    fn find_with(&self, text: &str, p: &Pass, scratch: &mut Scratch, out: &mut Vec<Candidate>) {
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
        let Scratch {
            keywords: g,
            ats,
            schemes,
        } = scratch;
        self.keywords(text, g);
        let g = &*g;
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
        crate::release(ats);
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
        for m in within(&self.email, text, ats.iter().cloned()) {
            push(T::EMAIL_ADDRESS, m.start(), m.end(), 0.95, "email");
        }

        if !p.numbers.is_empty() {
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
        }

        let ssn_ok = |s: &str| {
            let d = digits(s);
            let n = |r: std::ops::Range<usize>| {
                d[r].iter().fold(0u32, |a, c| a * 10 + (c - b'0') as u32)
            };
            d.len() == 9 && checks::ssn(n(0..3), n(3..5), n(5..9))
        };
        if !p.numbers.is_empty() {
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
        }
        let bare = if g.keywords & KW_SSN != 0 {
            9
        } else {
            u32::MAX
        };
        if !p.numbers.is_empty() {
            for m in within(
                &self.ssn_bare,
                text,
                numbers(bare, |n| n.may & SSN_BARE != 0),
            ) {
                if ssn_ok(&text[m.range()]) && context(text, m.start(), &["ssn", "social security"])
                {
                    push(T::US_SSN, m.start(), m.end(), 0.8, "us_ssn");
                }
            }
        }

        if !p.numbers.is_empty() {
            for m in within(&self.ipv4, text, numbers(4, |n| n.may & IPV4 != 0)) {
                let dotted_more = text[m.end()..].starts_with('.')
                    && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit());
                let version = context(text, m.start(), &["version", " v", "release"])
                    && before(text, m.start()).is_some_and(|c| c == 'v' || c == ' ');
                if !dotted_more && before(text, m.start()).is_none_or(|c| c != '.') && !version {
                    push(T::IP_ADDRESS, m.start(), m.end(), 0.9, "ipv4");
                }
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

        for m in anchored_at(&self.iban, text, p.iban.iter().copied()) {
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

        if !p.numbers.is_empty() {
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
        }
        if !p.numbers.is_empty() {
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
        }
        // National numbers look like many other numbers: reported only with a phone word
        // before them.
        if !p.numbers.is_empty() {
            for m in within(&self.phone_trunk, text, numbers(10, |n| n.may & TRUNK != 0)) {
                let d = digits(&text[m.range()]);
                if (10..=11).contains(&d.len())
                    && isolated(text, m.start(), m.end(), &['-', '.'])
                    && context(text, m.start(), PHONE_WORDS)
                {
                    push(T::PHONE_NUMBER, m.start(), m.end(), 0.8, "phone_national");
                }
            }
        }

        // A URL starts with its scheme right before a `://` (`ftp`, `http`, `https`, or
        // `https` with the long s that folds to `s`): searched only there.
        crate::release(schemes);
        if p.colons > 0 {
            for k in memchr::memchr_iter(b':', b) {
                if b[k + 1..].starts_with(b"//") {
                    schemes.extend([6, 5, 4, 3].iter().filter_map(|&n| k.checked_sub(n)));
                }
            }
            schemes.sort_unstable();
            schemes.dedup();
        }
        for m in anchored_at(&self.url, text, schemes.iter().copied()) {
            let t = text[m.range()].trim_end_matches(['.', ',', ';', ':', '!', '?']);
            push(T::URL, m.start(), m.start() + t.len(), 0.6, "url");
        }

        // A MAC address has its first separator after two hex digits.
        let mac_starts =
            memchr::memchr2_iter(b':', b'-', when(p.colons >= 5 || p.dashes >= 5).as_bytes())
                .filter(|&k| k >= 2 && b[k - 2].is_ascii_hexdigit() && b[k - 1].is_ascii_hexdigit())
                .map(|k| k - 2);
        for m in anchored_at(&self.mac, text, mac_starts) {
            let b = &text.as_bytes()[m.range()];
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

        // A secret pattern starts with its prefix: searched only where one is.
        let secrets = if g.secrets.is_empty() {
            &[][..]
        } else {
            &self.secrets[..]
        };
        for (i, (name, r, score)) in secrets.iter().enumerate() {
            let starts = g.secrets.iter().filter(|s| usize::from(s.0) == i);
            for m in anchored_at(r, text, starts.map(|s| s.1)) {
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
            // The key is the whole run of key characters from `s` (the bytes that may follow
            // it are none of them), then maybe a quote, white space and `:` or `=`: without
            // those, no search.
            let mut j = k;
            while j < b.len() && key_byte(b[j]) {
                j += 1;
            }
            if b.get(j).is_some_and(|&c| c == b'"' || c == b'\'') {
                j += 1;
            }
            while b.get(j).is_some_and(|&c| is_space(c)) {
                j += 1;
            }
            if !b
                .get(j)
                .is_some_and(|&c| c == b':' || c == b'=' || c >= 0x80)
            {
                continue;
            }
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
        // After the house number and white space comes a capital (of a direction or of
        // the street's name); a non-ASCII character is left to the pattern.
        let capital_after = |s: usize| {
            let mut j = s;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_uppercase) {
                j += 1;
            }
            while b.get(j).is_some_and(|&c| is_space(c)) {
                j += 1;
            }
            b.get(j)
                .is_some_and(|&c| c.is_ascii_uppercase() || c >= 0x80)
        };
        let houses = houses.iter().copied().filter(|&s| capital_after(s));
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
        for m in anchored_at(&self.bearer, text, g.bearer.iter().copied()) {
            // The token follows `bearer` and white space.
            let v = text[m.start() + "bearer".len()..m.end()].trim_start();
            if checks::entropy(v) >= 3.5 && !crate::anonymize::is_surrogate(v) {
                push(T::SECRET, m.end() - v.len(), m.end(), 0.85, "bearer_token");
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
        if g.keywords & KW_BIRTH != 0 {
            for m in self.dob.find_iter(text) {
                if checks::plausible_date(m.as_str()) && context(text, m.start(), BIRTH) {
                    push(T::DATE_OF_BIRTH, m.start(), m.end(), 0.85, "date_of_birth");
                }
            }
        }
        if g.keywords & KW_PASSPORT != 0 {
            for m in self.passport.find_iter(text) {
                if context(text, m.start(), &["passport"]) {
                    push(T::US_PASSPORT, m.start(), m.end(), 0.85, "us_passport");
                }
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
        if g.keywords & KW_LICENSE != 0 {
            for m in self.driver_license.find_iter(text) {
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
        }
        let nhs = if g.keywords & KW_NHS != 0 {
            10
        } else {
            u32::MAX
        };
        if !p.numbers.is_empty() {
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
}
