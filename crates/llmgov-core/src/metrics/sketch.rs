//! A mergeable quantile sketch with a relative-error guarantee (the DDSketch design of
//! Masson, Rim and Lee, VLDB 2019).
//!
//! A value `v > 0` is counted in bucket `ceil(log_γ v)` with `γ = (1 + α) / (1 − α)`; the
//! bucket's representative `2γ^i / (γ + 1)` is within relative error `α` of every value the
//! bucket holds. Negative values use a mirrored set of buckets and zero (and values too small
//! to index) its own counter. Merging two sketches adds their bucket counts, so a sketch of an
//! hour merges with others into a day, a month, or a group of series, and the answer is as
//! accurate as a sketch of all the values at once.
//!
//! Guarantee: for `q` in [0, 1], [`Sketch::quantile`] returns a value within relative error
//! [`RELATIVE_ACCURACY`] (1%) of the value of rank `floor(q · (n − 1))` in the sorted input,
//! as long as no bucket was collapsed. A sketch keeps at most [`MAX_BUCKETS`] buckets per sign,
//! which covers a ratio of `γ^2048 ≈ 4·10^17` between the smallest and largest magnitude; past
//! that, the lowest buckets are folded together (the high quantiles, which matter for latency
//! and cost, stay exact to α).

/// α: relative error of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Buckets kept per sign before the lowest are folded together.
pub const MAX_BUCKETS: usize = 2048;
/// Magnitudes below this count as zero.
const MIN_INDEXABLE: f64 = 1e-9;
/// Format byte of [`Sketch::encode`].
const FORMAT: u8 = 1;

fn gamma_ln() -> f64 {
    let gamma = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
    gamma.ln()
}

/// Bucket counts of one sign: `counts[k]` is the count of bucket `offset + k` (dense, so
/// adding and merging are array operations, not tree inserts).
#[derive(Debug, Clone, Default)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
}

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        self.bins().eq(other.bins())
    }
}

impl Store {
    /// Non-empty buckets, lowest index first.
    fn bins(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (self.offset + k as i32, *c))
    }

    fn len(&self) -> usize {
        self.bins().count()
    }

    fn add(&mut self, index: i32, count: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(count);
            return;
        }
        if index < self.offset {
            // Indices are bounded (|index| < 36,000 for finite values), and so is the growth.
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let k = (index - self.offset) as usize;
        if k >= self.counts.len() {
            self.counts.resize(k + 1, 0);
        }
        self.counts[k] += count;
        self.collapse();
    }

    /// Folds the lowest buckets into the lowest one kept until at most [`MAX_BUCKETS`] span.
    fn collapse(&mut self) {
        if self.counts.len() <= MAX_BUCKETS {
            return;
        }
        let excess = self.counts.len() - MAX_BUCKETS;
        let folded: u64 = self.counts[..=excess].iter().sum();
        self.counts.drain(..excess);
        self.counts[0] = folded;
        self.offset += excess as i32;
    }

    fn merge(&mut self, other: &Store) {
        for (i, c) in other.bins() {
            self.add(i, c);
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A quantile sketch; see the module documentation for its guarantee.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    positive: Store,
    negative: Store,
    zero: u64,
}

impl Sketch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.zero + self.positive.total() + self.negative.total()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Adds a finite value (non-finite values are ignored: validation rejects them earlier).
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let m = v.abs();
        if m < MIN_INDEXABLE {
            self.zero += 1;
        } else if v > 0.0 {
            self.positive.add(index(m), 1);
        } else {
            self.negative.add(index(m), 1);
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zero += other.zero;
    }

    /// The value of rank `floor(q · (n − 1))`, within relative error α; `None` when empty or
    /// `q` is outside [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (n - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        // Negative values, most negative (largest index) first.
        for (i, c) in self.negative.bins().rev() {
            seen += c;
            if seen > rank {
                return Some(-value(i));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (i, c) in self.positive.bins() {
            seen += c;
            if seen > rank {
                return Some(value(i));
            }
        }
        // Unreachable when counts add up; the largest bucket is the safe answer.
        self.positive.bins().next_back().map(|(i, _)| value(i))
    }

    /// Compact binary form: a format byte, the zero count, then each sign's buckets as
    /// (index delta, count) varints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * (self.positive.len() + self.negative.len()));
        out.push(FORMAT);
        put_varint(&mut out, self.zero);
        for store in [&self.positive, &self.negative] {
            put_varint(&mut out, store.len() as u64);
            let mut prev = 0i64;
            for (i, c) in store.bins() {
                put_varint(&mut out, zigzag(i as i64 - prev));
                put_varint(&mut out, c);
                prev = i as i64;
            }
        }
        out
    }

    /// Reads [`Sketch::encode`]'s form; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Sketch> {
        let mut s = Sketch::default();
        s.merge_encoded(bytes)?;
        Some(s)
    }

    /// Adds the values of an encoded sketch without building it (the fast path of queries,
    /// which merge many stored sketches). `None`, and nothing added, if the bytes are not a
    /// sketch.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> Option<()> {
        let mut parsed: [Vec<(i32, u64)>; 2] = [Vec::new(), Vec::new()];
        let (&format, mut rest) = bytes.split_first()?;
        if format != FORMAT {
            return None;
        }
        let zero = get_varint(&mut rest)?;
        for bins in &mut parsed {
            let n = get_varint(&mut rest)?;
            if n > (MAX_BUCKETS as u64) {
                return None;
            }
            bins.reserve(n as usize);
            let mut prev = 0i64;
            for _ in 0..n {
                let i = prev.checked_add(unzigzag(get_varint(&mut rest)?))?;
                bins.push((i32::try_from(i).ok()?, get_varint(&mut rest)?));
                prev = i;
            }
        }
        if !rest.is_empty() {
            return None;
        }
        self.zero += zero;
        let [pos, neg] = parsed;
        for (store, bins) in [(&mut self.positive, pos), (&mut self.negative, neg)] {
            for (i, c) in bins {
                store.add(i, c);
            }
        }
        Some(())
    }
}

fn index(magnitude: f64) -> i32 {
    (magnitude.ln() / gamma_ln()).ceil() as i32
}

/// The representative of bucket `i`: within α of every magnitude in `(γ^(i−1), γ^i]`.
fn value(i: i32) -> f64 {
    let gamma = gamma_ln().exp();
    2.0 * (i as f64 * gamma_ln()).exp() / (gamma + 1.0)
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values over several orders of magnitude (xorshift).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                // Log-normal-ish latencies from 1 ms to 100 s.
                10f64.powf(u * 5.0)
            })
            .collect()
    }

    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn assert_within(est: f64, exact: f64) {
        let err = ((est - exact) / exact).abs();
        assert!(
            err <= RELATIVE_ACCURACY + 1e-9,
            "estimate {est} vs exact {exact}: relative error {err}"
        );
    }

    #[test]
    fn quantiles_are_within_the_relative_error_of_exact_ones() {
        let mut v = values(100_000, 42);
        let mut s = Sketch::new();
        v.iter().for_each(|&x| s.add(x));
        v.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_within(s.quantile(q).unwrap(), exact(&v, q));
        }
        assert_eq!(s.count(), 100_000);
    }

    #[test]
    fn merged_sketches_answer_like_one_sketch_of_everything() {
        let parts: Vec<Vec<f64>> = (0..24).map(|h| values(2_000, 7 + h)).collect();
        let mut merged = Sketch::new();
        let mut whole = Sketch::new();
        for p in &parts {
            let mut s = Sketch::new();
            p.iter().for_each(|&x| {
                s.add(x);
                whole.add(x);
            });
            merged.merge(&s);
        }
        assert_eq!(merged, whole);
        let mut all: Vec<f64> = parts.concat();
        all.sort_by(f64::total_cmp);
        for q in [0.5, 0.95, 0.99] {
            assert_within(merged.quantile(q).unwrap(), exact(&all, q));
        }
    }

    #[test]
    fn negative_zero_and_positive_values_keep_their_order() {
        let mut s = Sketch::new();
        for v in [-100.0, -1.0, 0.0, 0.0, 2.0, 50.0] {
            s.add(v);
        }
        assert_within(s.quantile(0.0).unwrap(), -100.0);
        assert_within(s.quantile(0.2).unwrap(), -1.0);
        assert_eq!(s.quantile(0.4), Some(0.0));
        assert_within(s.quantile(0.8).unwrap(), 2.0);
        assert_within(s.quantile(1.0).unwrap(), 50.0);
        assert_eq!(s.quantile(1.5), None);
        assert_eq!(Sketch::new().quantile(0.5), None);
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut s = Sketch::new();
        values(5_000, 3).iter().for_each(|&x| s.add(x));
        s.add(-3.5);
        s.add(0.0);
        let bytes = s.encode();
        assert_eq!(Sketch::decode(&bytes), Some(s));
        assert!(bytes.len() < 1_500, "{} bytes", bytes.len());
        assert_eq!(Sketch::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Sketch::decode(&[9, 0, 0, 0]), None);
        assert_eq!(Sketch::decode(&[]), None);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Sketch::decode(&trailing), None);
    }

    #[test]
    fn bucket_count_is_bounded_and_high_quantiles_stay_accurate() {
        let mut s = Sketch::new();
        let mut v: Vec<f64> = (0..6_000).map(|i| 1.03f64.powi(i - 3_000)).collect();
        v.iter().for_each(|&x| s.add(x));
        assert!(s.positive.counts.len() <= MAX_BUCKETS);
        v.sort_by(f64::total_cmp);
        assert_within(s.quantile(0.99).unwrap(), exact(&v, 0.99));
        assert_eq!(s.count(), 6_000);
    }
}
