//! Eight bytes at a time in a `u64` ("SIMD within a register"): the scanner's byte loops
//! ask of eight bytes at once which of them are in a range, and look at those only.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bytes `i..i + 8` of `b`, little-endian (the first byte lowest).
pub(crate) fn load(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"))
}

/// The high bit of each byte of `w` that is ASCII and at least `lo` and at most `hi`
/// (both ASCII). Exact: the additions work on the low seven bits of each byte, so none
/// carries into the next.
pub(crate) fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
    in_range7(w & !HIGH, lo, hi) & !w & HIGH
}

/// [`in_range`] of the low seven bits `a` (`w & !HIGH`) of eight bytes, before masking
/// out the non-ASCII ones and the low bits (for callers that test several ranges of one
/// word and mask once).
pub(crate) fn in_range7(a: u64, lo: u8, hi: u8) -> u64 {
    debug_assert!(lo <= hi && hi < 0x80 && a & HIGH == 0);
    (a + ONES * u64::from(0x80 - lo)) & !(a + ONES * u64::from(0x7F - hi))
}

/// The index of the first byte whose high bit is set in `m` (not zero).
pub(crate) fn first(m: u64) -> usize {
    (m.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_exactly_their_bytes_whatever_the_neighbours() {
        for (lo, hi) in [
            (b'0', b'9'),
            (b'A', b'Z'),
            (b'a', b'z'),
            (b'@', b'@'),
            (0, 0x7F),
        ] {
            for c in 0..=255u8 {
                for at in [0, 3, 7] {
                    for other in [b'a', 0xFF, 0x80, b'Z'] {
                        let mut bytes = [other; 8];
                        bytes[at] = c;
                        let m = in_range(u64::from_le_bytes(bytes), lo, hi);
                        let want = (lo..=hi).contains(&c);
                        assert_eq!(m >> (8 * at + 7) & 1 == 1, want, "{c:#x} at {at}");
                        let others = (lo..=hi).contains(&other);
                        assert_eq!(m & !(0x80 << (8 * at)) != 0, others, "{c:#x} {other:#x}");
                    }
                }
            }
        }
        assert_eq!(first(0x80 << 24), 3);
    }
}
