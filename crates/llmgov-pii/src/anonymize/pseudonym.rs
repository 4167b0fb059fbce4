//! Pseudonyms: realistic fakes chosen by a keyed seed, keeping formats where it matters (a
//! card passes Luhn with its issuer prefix, an IBAN its mod 97, crypto addresses their
//! checksums, e-mails go to reserved `example` domains).

use std::fmt::Write as _;

use crate::{EntityType, checks, person};

/// SplitMix64: small and good enough to pick fakes from a keyed seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn digit(&mut self) -> char {
        (b'0' + self.below(10) as u8) as char
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn title(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn fake_first(rng: &mut Rng) -> String {
    title(rng.pick(person::first_names()))
}

fn fake_last(rng: &mut Rng) -> String {
    let l = person::surnames();
    title(rng.pick(&l[..l.len().min(2000)]))
}

/// Every letter and digit replaced by a random one of its class; the rest kept.
fn same_shape(value: &str, rng: &mut Rng) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                rng.digit()
            } else if c.is_ascii_uppercase() {
                (b'A' + rng.below(26) as u8) as char
            } else if c.is_alphabetic() {
                (b'a' + rng.below(26) as u8) as char
            } else {
                c
            }
        })
        .collect()
}

/// Digits replaced, in place, by `new` (the same count), the rest kept.
fn put_digits(value: &str, new: &[u8]) -> String {
    let mut it = new.iter();
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                it.next().map_or(c, |d| *d as char)
            } else {
                c
            }
        })
        .collect()
}

pub(super) fn pseudonym(t: &EntityType, value: &str, rng: &mut Rng) -> String {
    match t {
        EntityType::EMAIL_ADDRESS => format!(
            "{}.{}@{}",
            fake_first(rng).to_lowercase(),
            fake_last(rng).to_lowercase(),
            rng.pick(&["example.com", "example.org", "example.net"])
        ),
        EntityType::PHONE_NUMBER => fake_phone(value, rng),
        EntityType::CREDIT_CARD => fake_card(value, rng),
        EntityType::US_SSN => {
            let area = loop {
                let a = rng.range(1, 899);
                if a != 666 {
                    break a;
                }
            };
            let d = format!("{area:03}{:02}{:04}", rng.range(1, 99), rng.range(1, 9999));
            put_digits(value, d.as_bytes())
        }
        EntityType::IP_ADDRESS => {
            if value.contains(':') {
                let g: [u16; 8] = std::array::from_fn(|_| rng.below(65536) as u16);
                let g0 = 0x2000 | (g[0] & 0x0fff);
                std::net::Ipv6Addr::new(g0, g[1], g[2], g[3], g[4], g[5], g[6], g[7]).to_string()
            } else {
                format!(
                    "{}.{}.{}.{}",
                    rng.range(11, 223),
                    rng.below(256),
                    rng.below(256),
                    rng.range(1, 254)
                )
            }
        }
        EntityType::IBAN_CODE => fake_iban(value, rng),
        EntityType::CRYPTO => fake_crypto(value, rng),
        EntityType::STREET_ADDRESS => fake_address(value, rng),
        EntityType::URL => format!("https://www.example.com/p/{:08x}", rng.next() as u32),
        EntityType::MAC_ADDRESS => {
            let sep = if value.contains('-') { '-' } else { ':' };
            let upper = value.chars().any(|c| c.is_ascii_uppercase());
            let mut b: [u8; 6] = std::array::from_fn(|_| rng.below(256) as u8);
            b[0] = (b[0] | 0x02) & !0x01; // locally administered, unicast
            let s: Vec<String> = b
                .iter()
                .map(|x| {
                    if upper {
                        format!("{x:02X}")
                    } else {
                        format!("{x:02x}")
                    }
                })
                .collect();
            s.join(&sep.to_string())
        }
        EntityType::DATE_OF_BIRTH => fake_date(value, rng),
        EntityType::UK_NHS => loop {
            let mut d: Vec<u8> = (0..9).map(|_| rng.digit() as u8).collect();
            d[0] = b'1' + rng.below(9) as u8;
            if let Some(c) = checks::nhs_check(&d) {
                d.push(b'0' + c);
                if checks::nhs(&d) {
                    break put_digits(value, &d);
                }
            }
        },
        EntityType::SECRET => fake_secret(value, rng),
        _ => same_shape(value, rng),
    }
}

pub(super) fn fake_person(value: &str, word_rng: &dyn Fn(&str) -> Rng) -> String {
    // Word by word, each word seeded by itself, so that "John Smith" and a later "Smith"
    // become "Ada Jones" and "Jones".
    let words: Vec<&str> = value.split(' ').collect();
    let n = words.len();
    let first = person::first_names();
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let bare = w.trim_end_matches([',', '.']);
            let trail = &w[bare.len()..];
            if bare.is_empty()
                || matches!(
                    bare.to_lowercase().as_str(),
                    "mr" | "mrs" | "ms" | "miss" | "dr" | "prof" | "sir" | "mx"
                )
            {
                return (*w).to_owned();
            }
            let mut r = word_rng(bare);
            if bare.chars().count() == 1 {
                return format!("{}{trail}", (b'A' + r.below(26) as u8) as char);
            }
            let is_first = if n == 1 {
                first.binary_search(&bare.to_lowercase().as_str()).is_ok()
            } else {
                i + 1 < n
            };
            let fake = if is_first {
                fake_first(&mut r)
            } else {
                fake_last(&mut r)
            };
            format!("{fake}{trail}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fake_phone(value: &str, rng: &mut Rng) -> String {
    // The country code (after `+`) stays; every group starts with 2-9.
    let mut out = String::with_capacity(value.len());
    let mut in_cc = value.trim_start().starts_with('+');
    let mut group_start = true;
    for c in value.chars() {
        if c.is_ascii_digit() {
            if in_cc {
                out.push(c);
            } else if group_start {
                out.push((b'2' + rng.below(8) as u8) as char);
            } else {
                out.push(rng.digit());
            }
            group_start = false;
        } else {
            if !out.is_empty() && !c.is_ascii_digit() {
                in_cc = false;
            }
            group_start = true;
            out.push(c);
        }
    }
    out
}

fn fake_card(value: &str, rng: &mut Rng) -> String {
    let d: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
    if d.len() < 13 {
        return same_shape(value, rng);
    }
    // The issuer prefix (first four digits) stays; the rest is random with a valid check
    // digit.
    let mut new: Vec<u8> = d[..4].to_vec();
    while new.len() < d.len() - 1 {
        new.push(rng.digit() as u8);
    }
    for c in b'0'..=b'9' {
        new.push(c);
        if checks::luhn(&new) {
            break;
        }
        new.pop();
    }
    put_digits(value, &new)
}

fn fake_iban(value: &str, rng: &mut Rng) -> String {
    let compact: Vec<u8> = value
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if compact.len() < 5 {
        return same_shape(value, rng);
    }
    let mut new = compact.clone();
    for c in new[4..].iter_mut() {
        *c = if c.is_ascii_digit() {
            rng.digit() as u8
        } else {
            b'A' + rng.below(26) as u8
        };
    }
    // Check digits: 98 - mod97(BBAN + country + "00").
    let mut probe = new.clone();
    probe[2] = b'0';
    probe[3] = b'0';
    let rem = mod97_rem(&probe);
    let check = 98 - rem;
    new[2] = b'0' + (check / 10) as u8;
    new[3] = b'0' + (check % 10) as u8;
    let mut it = new.into_iter();
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                it.next().map_or(c, |x| x as char)
            } else {
                c
            }
        })
        .collect()
}

fn mod97_rem(s: &[u8]) -> u32 {
    let mut rem = 0u32;
    for &c in s[4..].iter().chain(&s[..4]) {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            _ => (c - b'A') as u32 + 10,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem
}

const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn fake_crypto(value: &str, rng: &mut Rng) -> String {
    if let Some(hex) = value.strip_prefix("0x") {
        let mut s = String::from("0x");
        for _ in 0..hex.len() {
            let _ = write!(s, "{:x}", rng.below(16));
        }
        return s;
    }
    if value.starts_with('1') || value.starts_with('3') {
        // Base58Check: the same version byte, a random 20-byte payload, its checksum.
        let version = if value.starts_with('1') { 0u8 } else { 5 };
        let mut n = vec![version];
        n.extend((0..20).map(|_| rng.below(256) as u8));
        let h1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n);
        let h2 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, h1.as_ref());
        n.extend_from_slice(&h2.as_ref()[..4]);
        return base58(&n);
    }
    if let Some(sep) = value.to_ascii_lowercase().rfind('1') {
        // Bech32: the same prefix and length, random data, a valid checksum.
        let hrp = value[..sep].to_ascii_lowercase();
        let len = value.len() - sep - 1;
        if len > 6 {
            let mut data: Vec<u8> = (0..len - 6).map(|_| rng.below(32) as u8).collect();
            data[0] = 0; // witness version 0 (bech32)
            let chk = bech32_checksum(&hrp, &data);
            data.extend_from_slice(&chk);
            let mut s = hrp;
            s.push('1');
            s.extend(data.iter().map(|v| BECH32[*v as usize] as char));
            return s;
        }
    }
    same_shape(value, rng)
}

fn base58(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = vec![];
    for b in bytes {
        let mut carry = *b as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    std::iter::repeat_n('1', zeros)
        .chain(digits.iter().rev().map(|d| B58[*d as usize] as char))
        .collect()
}

fn bech32_checksum(hrp: &str, data: &[u8]) -> [u8; 6] {
    let mut values: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|c| c & 31));
    values.extend_from_slice(data);
    values.extend_from_slice(&[0; 6]);
    let chk = checks::bech32_polymod(&values);
    let m = chk ^ 1;
    std::array::from_fn(|i| ((m >> (5 * (5 - i))) & 31) as u8)
}

const STREET_WORDS: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "drive",
    "dr",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "way",
    "court",
    "ct",
    "place",
    "pl",
    "terrace",
    "ter",
    "parkway",
    "pkwy",
    "circle",
    "cir",
    "highway",
    "hwy",
    "square",
    "sq",
    "trail",
    "trl",
    "alley",
    "row",
    "crescent",
    "close",
    "apt",
    "apartment",
    "suite",
    "ste",
    "unit",
    "fl",
    "floor",
    "n",
    "s",
    "e",
    "w",
    "ne",
    "nw",
    "se",
    "sw",
];

fn fake_address(value: &str, rng: &mut Rng) -> String {
    value
        .split(' ')
        .map(|w| {
            let bare = w.trim_end_matches([',', '.']);
            let trail = &w[bare.len()..];
            let lower = bare.to_lowercase();
            if bare.is_empty()
                || STREET_WORDS.contains(&lower.as_str())
                || (bare.len() == 2 && bare.bytes().all(|c| c.is_ascii_uppercase()))
            {
                (*w).to_owned()
            } else if bare.starts_with(|c: char| c.is_ascii_digit()) {
                let mut s = same_shape(bare, rng);
                if s.starts_with('0') {
                    s.replace_range(0..1, "1");
                }
                format!("{s}{trail}")
            } else if bare.starts_with(char::is_uppercase) {
                format!("{}{trail}", fake_last(rng))
            } else {
                (*w).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fake_date(value: &str, rng: &mut Rng) -> String {
    // Every number changes within what keeps the date valid; month names stay.
    let mut out = String::with_capacity(value.len());
    let mut num = String::new();
    let flush = |num: &mut String, out: &mut String, rng: &mut Rng| {
        if num.is_empty() {
            return;
        }
        let n: u64 = num.parse().unwrap_or(0);
        let w = num.len();
        let new = if w == 4 {
            let shift = rng.range(1, 6);
            if n > 1950 { n - shift } else { n + shift }
        } else if n > 12 {
            rng.range(13, 28)
        } else {
            rng.range(1, 12)
        };
        let _ = write!(out, "{new:0w$}");
        num.clear();
    };
    for c in value.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            flush(&mut num, &mut out, rng);
            out.push(c);
        }
    }
    flush(&mut num, &mut out, rng);
    out
}

fn fake_secret(value: &str, rng: &mut Rng) -> String {
    if value.starts_with("-----BEGIN") {
        return value
            .split('\n')
            .map(|l| {
                if l.starts_with("-----") {
                    l.to_owned()
                } else {
                    same_shape(l, rng)
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    // A provider prefix (letters before the first `_` or `-`, or four characters) stays.
    let keep = value
        .find(['_', '-'])
        .filter(|i| *i <= 12)
        .map_or(4.min(value.len()), |i| i + 1);
    let keep = (0..=keep)
        .rev()
        .find(|k| value.is_char_boundary(*k))
        .unwrap_or(0);
    format!("{}{}", &value[..keep], same_shape(&value[keep..], rng))
}
