//! Lower-case hexadecimal, the text form of every hash and signature in the API and exports.

pub fn encode(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

/// `None` unless `s` is an even number of hex digits.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Decodes `s` into `out` without allocating; `None` unless `s` is exactly `out.len()`
/// bytes of hex.
pub fn decode_into(s: &str, out: &mut [u8]) -> Option<()> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

/// A 32-byte hash from its hex form.
pub fn decode32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    decode_into(s, &mut out).map(|()| out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_rejects_junk() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(super::encode(&b), "0001abff");
        assert_eq!(super::decode("0001abff").unwrap(), b);
        for bad in ["0", "zz", "0g", "é0"] {
            assert!(super::decode(bad).is_none(), "{bad}");
            assert!(super::decode_into(bad, &mut [0u8; 1]).is_none(), "{bad}");
        }
        let mut out = [0u8; 4];
        assert_eq!(super::decode_into("0001ABff", &mut out), Some(()));
        assert_eq!(out, b);
        assert!(
            super::decode_into("0001ab", &mut out).is_none(),
            "too short"
        );
    }
}
