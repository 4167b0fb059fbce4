//! Validators: what makes a pattern match a real value rather than a look-alike.

/// The Luhn checksum of a card number's digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = (d - b'0') as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Issuer prefixes and lengths of the common card networks.
pub fn card_issuer(d: &[u8]) -> bool {
    let n = d.len();
    let p = |k: usize| -> u32 { d[..k].iter().fold(0, |a, c| a * 10 + (c - b'0') as u32) };
    match d[0] {
        b'4' => matches!(n, 13 | 16 | 19),                // Visa
        b'5' => (51..=55).contains(&p(2)) && n == 16,     // Mastercard
        b'2' => (2221..=2720).contains(&p(4)) && n == 16, // Mastercard 2-series
        b'3' => {
            matches!(p(2), 34 | 37) && n == 15                       // Amex
            || (3528..=3589).contains(&p(4)) && (16..=19).contains(&n)   // JCB
            || matches!(p(2), 36 | 38 | 39) && (14..=19).contains(&n)    // Diners
            || (300..=305).contains(&p(3)) && (14..=19).contains(&n)
        }
        b'6' => {
            (p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)))
            && (16..=19).contains(&n)                                    // Discover
            || p(2) == 62 && (16..=19).contains(&n)
        } // UnionPay
        _ => false,
    }
}

/// A US SSN's area, group and serial are in the issued ranges.
pub fn ssn(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// IBAN lengths by country (ISO 13616 registry).
fn iban_length(cc: &[u8]) -> Option<usize> {
    Some(match cc {
        b"AD" => 24,
        b"AE" => 23,
        b"AL" => 28,
        b"AT" => 20,
        b"AZ" => 28,
        b"BA" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BR" => 29,
        b"BY" => 28,
        b"CH" => 21,
        b"CR" => 22,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DK" => 18,
        b"DO" => 28,
        b"EE" => 20,
        b"EG" => 29,
        b"ES" => 24,
        b"FI" => 18,
        b"FO" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GE" => 22,
        b"GI" => 23,
        b"GL" => 18,
        b"GR" => 27,
        b"GT" => 28,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IQ" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"JO" => 30,
        b"KW" => 30,
        b"KZ" => 20,
        b"LB" => 28,
        b"LC" => 32,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"MC" => 27,
        b"MD" => 24,
        b"ME" => 22,
        b"MK" => 19,
        b"MR" => 27,
        b"MT" => 31,
        b"MU" => 30,
        b"NL" => 18,
        b"NO" => 15,
        b"PK" => 24,
        b"PL" => 28,
        b"PS" => 29,
        b"PT" => 25,
        b"QA" => 29,
        b"RO" => 24,
        b"RS" => 22,
        b"SA" => 24,
        b"SC" => 31,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"ST" => 25,
        b"SV" => 28,
        b"TL" => 23,
        b"TN" => 24,
        b"TR" => 26,
        b"UA" => 29,
        b"VA" => 22,
        b"VG" => 24,
        b"XK" => 20,
        _ => return None,
    })
}

/// An IBAN (spaces removed): the country's length and the ISO 7064 mod-97 check.
pub fn iban(s: &[u8]) -> bool {
    if s.len() < 15 || iban_length(&s[..2]) != Some(s.len()) {
        return false;
    }
    mod97(s)
}

/// ISO 7064 mod-97-10 of upper-case letters and digits, the first four moved to the end.
pub fn mod97(s: &[u8]) -> bool {
    if s.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &c in s[4..].iter().chain(&s[..4]) {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A Base58Check string (Bitcoin P2PKH/P2SH): 25 bytes whose last 4 are the double
/// SHA-256 of the first 21.
pub fn base58check(s: &str) -> bool {
    // The value of each base58 digit (0xFF: not one).
    static VALUE: [u8; 256] = {
        let mut t = [0xFF; 256];
        let mut i = 0;
        while i < B58.len() {
            t[B58[i] as usize] = i as u8;
            i += 1;
        }
        t
    };
    // The number in 32-bit limbs, least significant first; 25 bytes are 200 bits.
    let mut limbs = [0u32; 7];
    for c in s.bytes() {
        let v = VALUE[c as usize];
        if v == 0xFF {
            return false;
        }
        let mut carry = u64::from(v);
        for l in &mut limbs {
            let x = u64::from(*l) * 58 + carry;
            *l = x as u32;
            carry = x >> 32;
        }
        if carry != 0 || limbs[6] >> 8 != 0 {
            return false;
        }
    }
    let mut n = [0u8; 25];
    for (i, b) in n.iter_mut().enumerate() {
        let bit = (24 - i) * 8;
        *b = (limbs[bit / 32] >> (bit % 32)) as u8;
    }
    let h1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n[..21]);
    let h2 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, h1.as_ref());
    h2.as_ref()[..4] == n[21..]
}

/// A bech32 / bech32m string (BIP 173/350) with a valid checksum.
pub fn bech32(s: &str) -> bool {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let s = s.to_ascii_lowercase();
    let Some(sep) = s.rfind('1') else {
        return false;
    };
    let (hrp, data) = (&s[..sep], &s[sep + 1..]);
    if hrp.is_empty() || data.len() < 6 {
        return false;
    }
    let mut values: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|c| c & 31));
    for c in data.bytes() {
        let Some(v) = CHARSET.iter().position(|&x| x == c) else {
            return false;
        };
        values.push(v as u8);
    }
    let chk = bech32_polymod(&values);
    chk == 1 || chk == 0x2bc8_30a3
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    // The bytes present, to visit only them (in the order of their values, as a walk over
    // every count would: the sum is the same to the last bit).
    let mut present = [0u64; 4];
    for b in s.bytes() {
        counts[b as usize] += 1;
        present[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    let n = s.len() as f64;
    // Bytes seen equally often add equal terms: each small count's term is computed once.
    let mut terms = [f64::NAN; 16];
    let term = |c: u32| {
        let p = c as f64 / n;
        -p * p.log2()
    };
    let mut sum = -0.0; // (where `Iterator::sum` of floats starts)
    for (k, mut bits) in present.into_iter().enumerate() {
        while bits != 0 {
            let b = k * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let c = counts[b];
            sum += match terms.get_mut(c as usize) {
                Some(t) if t.is_nan() => {
                    *t = term(c);
                    *t
                }
                Some(t) => *t,
                None => term(c),
            };
        }
    }
    sum
}

/// A UK NHS number's modulus-11 check digit (10 digits).
pub fn nhs(d: &[u8]) -> bool {
    if d.len() != 10 || d.iter().all(|x| *x == d[0]) {
        return false;
    }
    nhs_check(&d[..9]) == Some(d[9] - b'0')
}

/// The check digit of an NHS number's first nine digits (`None`: no valid number).
pub fn nhs_check(d: &[u8]) -> Option<u8> {
    let sum: u32 = d
        .iter()
        .enumerate()
        .map(|(i, c)| (c - b'0') as u32 * (10 - i as u32))
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c as u8),
    }
}

/// A date whose numbers can be a day, a month and a year (`03/15/1984`, `15.03.84`,
/// `1984-03-15`, `March 15, 1984`, `15 March 1984`).
pub fn plausible_date(s: &str) -> bool {
    let nums: Vec<u32> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .filter_map(|x| x.parse().ok())
        .collect();
    let day_month = |a: u32, b: u32| {
        ((1..=12).contains(&a) && (1..=31).contains(&b))
            || ((1..=31).contains(&a) && (1..=12).contains(&b))
    };
    let year = |y: u32| (1900..=2100).contains(&y);
    match nums.as_slice() {
        // A month name and two numbers: a day and a year.
        [d, y] => (1..=31).contains(d) && year(*y),
        [y, m, d] if *y >= 1000 => year(*y) && (1..=12).contains(m) && (1..=31).contains(d),
        [a, b, y] => day_month(*a, *b) && (*y < 100 || year(*y)),
        _ => false,
    }
}

/// The BIP 173 checksum polynomial over 5-bit values.
pub fn bech32_polymod(values: &[u8]) -> u32 {
    let mut chk: u32 = 1;
    for &v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ff_ffff) << 5) ^ v as u32;
        for (i, g) in [
            0x3b6a_57b2u32,
            0x2650_8e6d,
            0x1ea1_19fa,
            0x3d42_33dd,
            0x2a14_62b3,
        ]
        .iter()
        .enumerate()
        {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

#[cfg(test)]
mod tests {
    /// The textbook form: every byte value's term, in order.
    fn entropy_by_every_count(s: &str) -> f64 {
        let mut counts = [0u32; 256];
        for b in s.bytes() {
            counts[b as usize] += 1;
        }
        let n = s.len() as f64;
        counts
            .iter()
            .filter(|c| **c > 0)
            .map(|&c| {
                let p = c as f64 / n;
                -p * p.log2()
            })
            .sum()
    }

    #[test]
    fn entropy_is_the_textbook_sum_to_the_last_bit() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut samples: Vec<String> = vec![
            String::new(),
            "a".into(),
            "abcdefgh".into(),
            "Xk3$9vLq2!mZ".into(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab".into(),
            "caf\u{e9} \u{65e5}\u{672c}".into(),
        ];
        for len in [7, 16, 40, 255, 1000] {
            for alphabet in [4u64, 16, 62, 95] {
                let s: String = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        char::from(b' ' + (x % alphabet) as u8)
                    })
                    .collect();
                samples.push(s);
            }
        }
        for s in &samples {
            assert_eq!(
                super::entropy(s).to_bits(),
                entropy_by_every_count(s).to_bits(),
                "{s:?}"
            );
        }
    }
}
