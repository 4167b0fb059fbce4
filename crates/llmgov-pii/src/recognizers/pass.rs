//! One pass over a record's bytes that says which recognizers can match at all, and where.
//!
//! Most patterns can only match inside short stretches of a record: a card, a phone number
//! or an SSN inside a run of digits and number separators, an IPv6 address inside a run of
//! hex digits and colons, a crypto address as one whole long word. The pass finds those
//! stretches; the recognizers then search only them (with the whole record around them for
//! `\b` and context), so a record costs one pass plus work proportional to its candidates,
//! not one automaton walk over the whole record per pattern.

use crate::swar::{HIGH, first, in_range7, load};

/// A run of digits and number separators (` +-.()`), trimmed to start at a digit, `+` or
/// `(` and end at a digit or `)`, holding at least four digits (no number pattern takes
/// fewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Number {
    pub start: usize,
    pub end: usize,
    pub digits: u32,
    /// The number patterns that may match in the run (`CARD`, `SSN`, ...).
    pub may: u8,
}

pub(crate) const CARD: u8 = 1;
pub(crate) const SSN: u8 = 2;
pub(crate) const SSN_BARE: u8 = 4;
pub(crate) const NHS: u8 = 8;
pub(crate) const NANP: u8 = 16;
pub(crate) const IPV4: u8 = 32;
pub(crate) const INTL: u8 = 64;
pub(crate) const TRUNK: u8 = 128;

/// Which number patterns may match in a run, from its groups of digits and the single
/// separators between them. These are necessary conditions only (a pattern that may
/// match still runs), so they never lose a match.
fn shapes(r: &[u8]) -> u8 {
    // (length, the one byte between the group and the next or 0, whether the group starts
    // with a trunk prefix `0` and another digit)
    // (Lengths saturate at 255: every test below is of fewer digits.)
    let mut groups = [(0u8, 0u8, false); 24];
    let mut n = 0;
    let mut i = 0;
    while i < r.len() {
        if !r[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        while i < r.len() && r[i].is_ascii_digit() {
            i += 1;
        }
        if n == groups.len() {
            return u8::MAX;
        }
        let single = i + 1 < r.len() && r[i + 1].is_ascii_digit();
        let trunk = r[s] == b'0' && i - s >= 2 && r[s + 1] != b'0';
        let len = u8::try_from(i - s).unwrap_or(u8::MAX);
        groups[n] = (len, if single { r[i] } else { 0 }, trunk);
        n += 1;
    }
    let g = &groups[..n];
    let sep = |k: usize, set: &[u8]| set.contains(&g[k].1);
    let len = |k: usize| g.get(k).map_or(0, |x| usize::from(x.0));
    let mut may = 0;
    let mut chain = 0;
    let total: usize = g.iter().map(|x| usize::from(x.0)).sum();
    for k in 0..n {
        chain = if k > 0 && sep(k - 1, b" -") {
            chain + len(k)
        } else {
            len(k)
        };
        if chain >= 13 {
            may |= CARD;
        }
        match len(k) {
            9 => may |= SSN_BARE,
            10 => may |= NHS,
            _ => {}
        }
        if len(k) == 3 && sep(k, b" -") && len(k + 1) == 2 && sep(k + 1, b" -") && len(k + 2) == 4 {
            may |= SSN;
        }
        let nhs_two = matches!((len(k), len(k + 1)), (3, 7) | (6, 4));
        let nhs_three =
            len(k) == 3 && len(k + 1) == 3 && k + 1 < n && sep(k + 1, b" -") && len(k + 2) == 4;
        if sep(k, b" -") && (nhs_two || nhs_three) {
            may |= NHS;
        }
        if len(k) >= 3 && sep(k, b" .-") && len(k + 1) >= 4 {
            may |= NANP;
        }
        if g[k].2 && len(k) <= 5 && sep(k, b" .-") && len(k + 1) >= 2 && total >= 10 {
            may |= TRUNK;
        }
        if k + 3 < n
            && (k..k + 4).all(|j| (1..=3).contains(&len(j)))
            && (k..k + 3).all(|j| g[j].1 == b'.')
        {
            may |= IPV4;
        }
    }
    if r.windows(2).any(|w| w[0] == b'+' && w[1].is_ascii_digit()) {
        may |= INTL;
    }
    may
}

#[derive(Debug, Default)]
pub(crate) struct Pass {
    pub colons: usize,
    pub dashes: usize,
    pub at: bool,
    pub upper: bool,
    pub non_ascii: bool,
    pub underscore: bool,
    pub numbers: Vec<Number>,
    /// Runs of hex digits, `:` and `.` with at least two colons: where IPv6 can be.
    pub hex_colons: Vec<(usize, usize)>,
    /// Whole words (ASCII letters, digits, `_`) of 11 bytes or more holding a digit:
    /// where Bitcoin, bech32 and Ethereum addresses can be.
    pub long_words: Vec<(usize, usize)>,
    /// Starts of words shaped `AA00…`: where an IBAN can start.
    pub iban: Vec<usize>,
    /// Starts of house numbers (`12`, `12B`) followed by white space: where a street
    /// address can start.
    pub house: Vec<usize>,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_number(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b' ' | b'+' | b'-' | b'.' | b'(' | b')')
}

/// The run of bytes of a class around byte `at` (which is one of them).
fn around(b: &[u8], at: usize, class: fn(u8) -> bool) -> (usize, usize) {
    let mut s = at;
    while s > 0 && class(b[s - 1]) {
        s -= 1;
    }
    let mut e = at + 1;
    while e < b.len() && class(b[e]) {
        e += 1;
    }
    (s, e)
}

fn is_hex_colon(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const COLON: u8 = 4;
const DASH: u8 = 8;
const AT: u8 = 16;
const UNDERSCORE: u8 = 32;
const NON_ASCII: u8 = 64;

/// The bytes the pass stops at, by class (0: not one of them).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => DIGIT,
            b'A'..=b'Z' => UPPER,
            b':' => COLON,
            b'-' => DASH,
            b'@' => AT,
            b'_' => UNDERSCORE,
            0x80..=0xFF => NON_ASCII,
            _ => 0,
        };
        c += 1;
    }
    t
};

/// Of eight bytes (little-endian in `w`): those the walk must stop at, digits, `:` and
/// `-` (the high bit of each is set), and the upper-case letters, `@`s, `_`s and non-ASCII
/// bytes among them (the high bits of each, for the record's flags).
fn classify(w: u64) -> (u64, [u64; 4]) {
    let a = w & !HIGH;
    let ascii = !w & HIGH;
    let stops = (in_range7(a, b'0', b':') | in_range7(a, b'-', b'-')) & ascii;
    let flags = [
        in_range7(a, b'A', b'Z') & ascii,
        in_range7(a, b'@', b'@') & ascii,
        in_range7(a, b'_', b'_') & ascii,
        w & HIGH,
    ];
    (stops, flags)
}

/// Where the walk of [`Pass::fill`] is.
#[derive(Default)]
struct Walk {
    seen: u8,
    colons: usize,
    dashes: usize,
    word_end: usize,
    number_end: usize,
}

impl Pass {
    /// Empties the pass's lists, giving back memory a huge record took.
    pub fn release(&mut self) {
        crate::release(&mut self.numbers);
        crate::release(&mut self.hex_colons);
        crate::release(&mut self.long_words);
        crate::release(&mut self.iban);
        crate::release(&mut self.house);
    }

    #[cfg(test)]
    pub fn new(text: &str) -> Self {
        let mut p = Pass::default();
        p.fill(text);
        p
    }

    /// Fills the pass with `text`'s (its vectors are reused from record to record).
    ///
    /// One walk over the bytes: eight at a time while none of them is a digit, `:` or `-`
    /// (most of a prose record), one at a time otherwise; whether upper-case letters, `@`,
    /// `_` or non-ASCII bytes occur is gathered from the same eight-byte words. Every stretch it looks for holds a digit (numbers, IBANs, house numbers,
    /// and the crypto addresses, which start with `1`, `3` or `0x` or hold bech32's `1`), so
    /// the word and the number run around a digit are measured once, when the walk first
    /// reaches them.
    pub fn fill(&mut self, text: &str) {
        let b = text.as_bytes();
        let n = b.len();
        self.release();
        let mut walk = Walk::default();
        let mut i = 0;
        // After a digit, the bytes up to the end of both its word and its number run are
        // digits (the only bytes of both classes) that would change nothing: skipped.
        let skip = |walk: &Walk, j: usize| walk.word_end.min(walk.number_end).max(j + 1);
        // Whether any upper-case letter, `@`, `_` or non-ASCII byte was seen, by class.
        let mut flags = [0u64; 4];
        while i + 8 <= n {
            let (mut m, seen) = classify(load(b, i));
            for (f, s) in flags.iter_mut().zip(seen) {
                *f |= s;
            }
            let mut next = i + 8;
            while m != 0 {
                let j = i + first(m);
                self.visit(b, j, &mut walk);
                let to = skip(&walk, j);
                if to >= i + 8 {
                    next = to;
                    break;
                }
                m &= !0u64 << ((to - i) * 8);
            }
            i = next;
        }
        while i < n {
            self.visit(b, i, &mut walk);
            i = skip(&walk, i);
        }
        for (f, class) in flags.iter().zip([UPPER, AT, UNDERSCORE, NON_ASCII]) {
            if *f != 0 {
                walk.seen |= class;
            }
        }
        let Walk {
            seen,
            colons,
            dashes,
            ..
        } = walk;
        self.colons = colons;
        self.dashes = dashes;
        self.at = seen & AT != 0;
        self.underscore = seen & UNDERSCORE != 0;
        self.upper = seen & UPPER != 0;
        self.non_ascii = seen & NON_ASCII != 0;
        if colons >= 2 {
            let mut i = 0;
            while let Some(k) = b[i..].iter().position(|&c| c == b':') {
                let (s, e) = around(b, i + k, is_hex_colon);
                if b[s..e].iter().filter(|&&c| c == b':').count() >= 2 {
                    self.hex_colons.push((s, e));
                }
                i = e;
            }
        }
    }

    /// The walk reaches byte `j`.
    #[inline(always)]
    fn visit(&mut self, b: &[u8], j: usize, walk: &mut Walk) {
        let c = CLASS[b[j] as usize];
        walk.seen |= c;
        match c {
            COLON => walk.colons += 1,
            DASH => walk.dashes += 1,
            DIGIT => {
                if j >= walk.word_end {
                    let (s, e) = around(b, j, is_word);
                    self.close_word(b, s, e, b.get(e).copied().unwrap_or(0));
                    walk.word_end = e;
                }
                if j >= walk.number_end {
                    let (s, e) = around(b, j, is_number);
                    self.close_number(b, s, e);
                    walk.number_end = e;
                }
            }
            _ => {}
        }
    }

    fn close_number(&mut self, b: &[u8], mut s: usize, mut e: usize) {
        while s < e && !matches!(b[s], b'0'..=b'9' | b'+' | b'(') {
            s += 1;
        }
        while e > s && !matches!(b[e - 1], b'0'..=b'9' | b')') {
            e -= 1;
        }
        let mut num = Number {
            start: s,
            end: e,
            digits: 0,
            may: 0,
        };
        num.digits = b[s..e].iter().filter(|c| c.is_ascii_digit()).count() as u32;
        // Every number pattern takes four digits or more.
        if num.digits >= 4 {
            num.may = shapes(&b[s..e]);
            self.numbers.push(num);
        }
    }

    /// A word `b[s..e]`, followed by the byte `next` (0 at the end).
    fn close_word(&mut self, b: &[u8], s: usize, e: usize, next: u8) {
        let w = &b[s..e];
        if w.len() >= 11 {
            self.long_words.push((s, e));
        }
        if w.len() >= 4
            && w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
        {
            self.iban.push(s);
        }
        // `\d{1,6}[A-Z]?` then white space (ASCII, or a non-ASCII space the pattern
        // decides on).
        let digits = w.iter().take_while(|c| c.is_ascii_digit()).count();
        let house = (1..=6).contains(&digits)
            && (digits == w.len() || (digits + 1 == w.len() && w[digits].is_ascii_uppercase()));
        if house && (next.is_ascii_whitespace() || next >= 0x80) {
            self.house.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_trimmed_runs_with_digits() {
        let t = "call +1 (415) 555-0100. or 4111 1111 1111 1111, v2.3 - ok 1.2.3.4, (123)";
        let p = Pass::new(t);
        let got: Vec<&str> = p.numbers.iter().map(|n| &t[n.start..n.end]).collect();
        // (Fewer than four digits: no number.)
        assert_eq!(got, ["+1 (415) 555-0100", "4111 1111 1111 1111", "1.2.3.4"]);
        assert_eq!(p.numbers[1].digits, 16);
        assert_eq!(p.numbers[0].may, NANP | INTL);
        assert_eq!(p.numbers[1].may & (CARD | SSN | IPV4), CARD);
        assert_eq!(p.numbers[2].may, IPV4);
    }

    #[test]
    fn shapes_admit_every_form_of_each_number() {
        let may = |s: &str| shapes(s.as_bytes());
        assert_eq!(may("078-05-1120") & SSN, SSN);
        assert_eq!(may("078 05 1120") & SSN, SSN);
        assert_eq!(may("078051120"), SSN_BARE);
        for nhs in ["9434765919", "943 476 5919", "943-4765919", "943476 5919"] {
            assert_eq!(may(nhs) & NHS, NHS, "{nhs}");
        }
        assert_eq!(may("192.168.0.1"), IPV4);
        assert_eq!(may("1.2.3"), 0);
        assert_eq!(may("4111-1111-1111-1111") & (CARD | IPV4 | NHS), CARD);
        assert_eq!(may("415.555.0100") & NANP, NANP);
        assert_eq!(may("+44 20 7946 0958") & INTL, INTL);
        assert_eq!(may("1234"), 0);
        assert_eq!(may("020 7946 0123") & TRUNK, TRUNK);
        assert_eq!(may("030-1234-5678") & TRUNK, TRUNK);
        assert_eq!(may("2020 7946 0123") & TRUNK, 0);
        assert_eq!(may("002 7946 0123") & TRUNK, 0);
    }

    #[test]
    fn eight_bytes_are_classified_exactly() {
        let mut bytes = [b'a'; 8];
        for c in 0..=255u8 {
            for at in [0, 3, 7] {
                bytes[at] = c;
                // Non-ASCII neighbours must not disturb the others.
                bytes[(at + 1) % 8] = 0xFF;
                let (stops, flags) = classify(u64::from_le_bytes(bytes));
                let bit = |m: u64| m >> (8 * at + 7) & 1 == 1;
                let class = CLASS[c as usize];
                assert_eq!(
                    bit(stops),
                    class & (DIGIT | COLON | DASH) != 0,
                    "{c:#x} at {at}"
                );
                for (f, want) in flags.iter().zip([UPPER, AT, UNDERSCORE, NON_ASCII]) {
                    assert_eq!(bit(*f), class == want, "{c:#x} at {at}");
                }
                bytes[at] = b'a';
                bytes[(at + 1) % 8] = b'a';
            }
        }
        for s in [b"/;?[]^`{", b"~ ,.!'=+"] {
            assert_eq!(classify(u64::from_le_bytes(*s)), (0, [0; 4]));
        }
    }

    #[test]
    fn the_walk_sees_what_every_byte_says() {
        // Each class once, at every alignment against the eight-byte steps.
        for pad in 0..9 {
            let t = format!(
                "{}x:y:z a-b c@d e_f Word caf\u{e9} 12 and 4111 1111 and 1234567890123-45:6_X",
                " ".repeat(pad)
            );
            let p = Pass::new(&t);
            assert_eq!((p.colons, p.dashes), (3, 2), "{pad}");
            assert!(p.at && p.underscore && p.upper && p.non_ascii, "{pad}");
            let got: Vec<&str> = p.numbers.iter().map(|n| &t[n.start..n.end]).collect();
            assert_eq!(got, ["4111 1111", "1234567890123-45"], "{pad}");
        }
        let p = Pass::new("plain lower case prose, nothing else here at all");
        assert!(!p.at && !p.underscore && !p.upper && !p.non_ascii);
        assert!(p.numbers.is_empty() && p.colons == 0 && p.dashes == 0);
    }

    #[test]
    fn a_huge_record_does_not_keep_its_memory() {
        let mut p = Pass::new(&"4111 1111 1111 1111, ".repeat(100_000));
        assert_eq!(p.numbers.len(), 100_000);
        p.fill("no numbers here");
        assert!(p.numbers.is_empty() && p.numbers.capacity() <= 4096);
    }

    #[test]
    fn words_hex_runs_and_starts() {
        let t = "GB82WEST12345698765432 at 12 Main St, 7B\u{a0}Rue; fe80::1, and 0x52908400098527886E0F7030069857D2E4169EE7";
        let p = Pass::new(t);
        let at = |s: usize| &t[s..];
        assert_eq!(p.iban.len(), 1);
        assert!(at(p.iban[0]).starts_with("GB82"));
        let houses: Vec<&str> = p.house.iter().map(|&s| &at(s)[..2]).collect();
        assert_eq!(houses, ["12", "7B"]);
        let hex: Vec<&str> = p.hex_colons.iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(hex, ["fe80::1"]);
        let long: Vec<&str> = p.long_words.iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(
            long,
            [
                "GB82WEST12345698765432",
                "0x52908400098527886E0F7030069857D2E4169EE7"
            ]
        );
        assert!(p.non_ascii && p.upper && !p.at);
    }
}
