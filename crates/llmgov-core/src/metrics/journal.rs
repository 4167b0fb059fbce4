//! The rollup journal. An ingest commit stores the rollup deltas of its points as one
//! journal row (a single append) rather than as a row per series and bucket (each an insert
//! into the rollups' indexes, where a commit over 100 series dirtied some 200 index pages,
//! and compaction then had to merge about 50 rows per bucket and second). The metrics
//! writer moves journal rows into the rollups about once a second
//! ([`super::store::MetricStore::flush_rollups`]: deltas of a bucket merged into one row),
//! maintenance moves whatever is left, and readers fold the journal's deltas in with the
//! rollup rows, so queries never miss a committed point and a crash loses nothing.
//!
//! Format (version 1): a version byte, the number of deltas, then per delta the series id,
//! resolution code, bucket (zig-zag varints), count (varint), sum, min, max and m2 (f64
//! little-endian) and the encoded sketch with its length.

use super::rollup::Resolution;
use super::sketch::{get_varint, put_varint, unzigzag, zigzag};
use super::store::{RollupDelta, RollupRow};

const FORMAT: u8 = 1;

/// A journal row's bytes for `deltas`.
pub fn encode(deltas: &[RollupDelta]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + deltas.len() * 64);
    out.push(FORMAT);
    put_varint(&mut out, deltas.len() as u64);
    for d in deltas {
        put_varint(&mut out, zigzag(d.series_id));
        put_varint(&mut out, zigzag(i64::from(d.resolution.code())));
        put_varint(&mut out, zigzag(d.bucket));
        put_varint(&mut out, d.stats.count);
        for v in [d.stats.sum, d.stats.min, d.stats.max, d.stats.m2] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let sketch = d.stats.sketch.encode();
        put_varint(&mut out, sketch.len() as u64);
        out.extend_from_slice(&sketch);
    }
    out
}

/// The deltas of a journal row, as rollup rows with their resolution (sketches still
/// encoded); `None` if the bytes are not a journal row.
pub fn decode(bytes: &[u8]) -> Option<Vec<(Resolution, RollupRow<'_>)>> {
    let (&format, mut rest) = bytes.split_first()?;
    if format != FORMAT {
        return None;
    }
    let n = usize::try_from(get_varint(&mut rest)?).ok()?;
    // Every delta takes at least 37 bytes: a count beyond that is corrupt.
    let mut out = Vec::with_capacity(n.min(rest.len() / 37 + 1));
    let f64_at = |rest: &mut &[u8]| -> Option<f64> {
        let (b, tail) = rest.split_first_chunk::<8>()?;
        *rest = tail;
        Some(f64::from_le_bytes(*b))
    };
    for _ in 0..n {
        let series_id = unzigzag(get_varint(&mut rest)?);
        let resolution =
            Resolution::of_code(i16::try_from(unzigzag(get_varint(&mut rest)?)).ok()?)?;
        let bucket = unzigzag(get_varint(&mut rest)?);
        let count = i64::try_from(get_varint(&mut rest)?).ok()?;
        let (sum, min, max, m2) = (
            f64_at(&mut rest)?,
            f64_at(&mut rest)?,
            f64_at(&mut rest)?,
            f64_at(&mut rest)?,
        );
        let len = usize::try_from(get_varint(&mut rest)?).ok()?;
        if len > rest.len() {
            return None;
        }
        let (sketch, tail) = rest.split_at(len);
        rest = tail;
        out.push((
            resolution,
            RollupRow {
                series_id,
                bucket,
                count,
                sum,
                min,
                max,
                m2,
                sketch,
            },
        ));
    }
    rest.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::rollup::Stats;

    fn delta(series_id: i64, resolution: Resolution, bucket: i64, values: &[f64]) -> RollupDelta {
        let mut stats = Stats::default();
        for v in values {
            stats.add(*v);
        }
        RollupDelta {
            series_id,
            resolution,
            bucket,
            stats,
        }
    }

    #[test]
    fn deltas_survive_the_round_trip() {
        let deltas = vec![
            delta(1, Resolution::Hour, 3_600_000_000, &[1.0, 2.5, 1e9]),
            delta(
                i64::MAX,
                Resolution::Day,
                -86_400_000_000,
                &[-3.0, 0.0, 7.25],
            ),
            delta(42, Resolution::Hour, 0, &[]),
        ];
        let bytes = encode(&deltas);
        let rows = decode(&bytes).expect("decodes");
        assert_eq!(rows.len(), deltas.len());
        for ((r, row), d) in rows.iter().zip(&deltas) {
            assert_eq!(*r, d.resolution);
            assert_eq!((row.series_id, row.bucket), (d.series_id, d.bucket));
            let mut back = Stats::default();
            back.merge_row(row).unwrap();
            assert_eq!(back.count, d.stats.count);
            if d.stats.count > 0 {
                assert_eq!(back, d.stats);
            }
        }
        assert_eq!(decode(&encode(&[])).unwrap().len(), 0);
    }

    #[test]
    fn damaged_rows_are_refused() {
        let bytes = encode(&[delta(7, Resolution::Hour, 0, &[1.0, 2.0])]);
        // Truncated anywhere, a trailing byte, or another format: refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(decode(&other).is_none());
        // A count far beyond the bytes does not allocate for it.
        let mut huge = vec![FORMAT];
        put_varint(&mut huge, u64::MAX >> 1);
        assert!(decode(&huge).is_none());
    }
}
