//! Manifests: what one version of a dataset holds, in order.
//!
//! A version is a sequence of records. The manifest lists the blocks it uses and *runs*: a
//! run is `count` consecutive records of one block starting at `start`. Unchanged records of
//! a new version point into the blocks of earlier pushes, so a version that edits 5% of
//! its records at scattered places costs the new records plus about two runs per edit
//! (12 bytes each), not a copy. Reading a version needs only its manifest and the blocks it
//! names, never another version.
//!
//! Payload format version 2 (inside a sealed manifest object, little-endian):
//!
//! ```text
//! "LGVM" u8 version
//! u8 format            1 jsonl, 2 csv, 3 parquet
//! u64 records  u64 bytes
//! u32 header length, header bytes (a CSV header line, a Parquet schema; empty otherwise)
//! u32 block count, per block: [u8; 32] object id, u32 records, u64 stored bytes,
//!                             [u8; 32] fingerprints object id (zeros: none)
//! u32 run count,   per run:   u32 block index, u32 start, u32 count
//! ```
//!
//! Version 1 (still read) has no fingerprints object id. A block's fingerprints object holds
//! the 16-byte fingerprints of its records in order, so that a push deduplicates against the
//! head by reading about 16 bytes per record rather than every block.

use super::model::DatasetFormat;
use super::object::ObjectId;
use crate::{CoreError, Result};

const MAGIC: &[u8; 4] = b"LGVM";
const VERSION: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub id: ObjectId,
    pub records: u32,
    /// Size of the stored object.
    pub stored_bytes: u64,
    /// The object holding the block's record fingerprints (`None` in version 1 manifests).
    pub fingerprints: Option<ObjectId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub block: u32,
    pub start: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub format: DatasetFormat,
    pub records: u64,
    /// Bytes of the records themselves (no separators).
    pub bytes: u64,
    pub header: Vec<u8>,
    pub blocks: Vec<BlockRef>,
    pub runs: Vec<Run>,
}

/// A slice of a version: records `start..start+count` of block `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub block: ObjectId,
    pub start: u32,
    pub count: u32,
}

impl Manifest {
    pub fn empty(format: DatasetFormat) -> Self {
        Self {
            format,
            records: 0,
            bytes: 0,
            header: vec![],
            blocks: vec![],
            runs: vec![],
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(64 + self.blocks.len() * 76 + self.runs.len() * 12);
        o.extend_from_slice(MAGIC);
        o.push(VERSION);
        o.push(self.format.code());
        o.extend_from_slice(&self.records.to_le_bytes());
        o.extend_from_slice(&self.bytes.to_le_bytes());
        o.extend_from_slice(&(self.header.len() as u32).to_le_bytes());
        o.extend_from_slice(&self.header);
        o.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        for b in &self.blocks {
            o.extend_from_slice(&b.id.0);
            o.extend_from_slice(&b.records.to_le_bytes());
            o.extend_from_slice(&b.stored_bytes.to_le_bytes());
            o.extend_from_slice(&b.fingerprints.map_or([0u8; 32], |f| f.0));
        }
        o.extend_from_slice(&(self.runs.len() as u32).to_le_bytes());
        for r in &self.runs {
            o.extend_from_slice(&r.block.to_le_bytes());
            o.extend_from_slice(&r.start.to_le_bytes());
            o.extend_from_slice(&r.count.to_le_bytes());
        }
        o
    }

    /// Parses and checks a manifest: every run within its block, counts adding up.
    pub fn decode(p: &[u8]) -> Result<Self> {
        let bad = || CoreError::Integrity("malformed manifest".into());
        let mut r = Reader { p, at: 0 };
        if r.take(4).ok_or_else(bad)? != MAGIC {
            return Err(bad());
        }
        let version = r.u8().ok_or_else(bad)?;
        if !(1..=VERSION).contains(&version) {
            return Err(bad());
        }
        let format = DatasetFormat::from_code(r.u8().ok_or_else(bad)?).ok_or_else(bad)?;
        let records = r.u64().ok_or_else(bad)?;
        let bytes = r.u64().ok_or_else(bad)?;
        let hl = r.u32().ok_or_else(bad)? as usize;
        let header = r.take(hl).ok_or_else(bad)?.to_vec();
        let nb = r.u32().ok_or_else(bad)? as usize;
        let mut blocks = Vec::with_capacity(nb.min(p.len() / 44));

        for _ in 0..nb {
            let id = ObjectId(r.take(32).ok_or_else(bad)?.try_into().expect("32"));
            let recs = r.u32().ok_or_else(bad)?;
            let stored = r.u64().ok_or_else(bad)?;
            let fingerprints = if version >= 2 {
                let f: [u8; 32] = r.take(32).ok_or_else(bad)?.try_into().expect("32");
                (f != [0u8; 32]).then_some(ObjectId(f))
            } else {
                None
            };
            blocks.push(BlockRef {
                id,
                records: recs,
                stored_bytes: stored,
                fingerprints,
            });
        }
        let nr = r.u32().ok_or_else(bad)? as usize;
        let mut runs = Vec::with_capacity(nr.min(p.len() / 12));
        let mut total = 0u64;
        for _ in 0..nr {
            let run = Run {
                block: r.u32().ok_or_else(bad)?,
                start: r.u32().ok_or_else(bad)?,
                count: r.u32().ok_or_else(bad)?,
            };
            let b = blocks.get(run.block as usize).ok_or_else(bad)?;
            if run.count == 0 || run.start as u64 + run.count as u64 > b.records as u64 {
                return Err(bad());
            }
            total += run.count as u64;
            runs.push(run);
        }
        if total != records || r.at != p.len() {
            return Err(bad());
        }
        Ok(Self {
            format,
            records,
            bytes,
            header,
            blocks,
            runs,
        })
    }

    /// The segments holding records `from..from+count` (clamped to the version).
    pub fn segments(&self, from: u64, count: u64) -> Vec<Segment> {
        let mut out = Vec::new();
        let end = (from.saturating_add(count)).min(self.records);
        let mut pos = 0u64;
        for r in &self.runs {
            let (rs, re) = (pos, pos + r.count as u64);
            pos = re;
            if re <= from {
                continue;
            }
            if rs >= end {
                break;
            }
            let s = from.max(rs);
            let e = end.min(re);
            out.push(Segment {
                block: self.blocks[r.block as usize].id,
                start: r.start + (s - rs) as u32,
                count: (e - s) as u32,
            });
        }
        out
    }

    /// Bytes of the stored objects this version uses.
    pub fn stored_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.stored_bytes).sum()
    }
}

struct Reader<'a> {
    p: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.p.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let b = |i: u8, n| BlockRef {
            id: ObjectId([i; 32]),
            records: n,
            stored_bytes: 100,
            fingerprints: i.is_multiple_of(2).then_some(ObjectId([i + 100; 32])),
        };
        Manifest {
            format: DatasetFormat::Jsonl,
            records: 7,
            bytes: 70,
            header: vec![],
            blocks: vec![b(1, 5), b(2, 3)],
            runs: vec![
                Run {
                    block: 0,
                    start: 0,
                    count: 2,
                },
                Run {
                    block: 1,
                    start: 0,
                    count: 3,
                },
                Run {
                    block: 0,
                    start: 3,
                    count: 2,
                },
            ],
        }
    }

    #[test]
    fn manifests_round_trip_and_reject_inconsistent_runs() {
        let m = sample();
        let e = m.encode();
        assert_eq!(Manifest::decode(&e).unwrap(), m);
        assert!(Manifest::decode(&e[..e.len() - 1]).is_err());
        let mut bad = m.clone();
        bad.runs[0].count = 9;
        bad.records = 14;
        assert!(Manifest::decode(&bad.encode()).is_err());
        let mut bad = m.clone();
        bad.records = 8;
        assert!(Manifest::decode(&bad.encode()).is_err());
    }

    #[test]
    fn segments_cover_exactly_the_requested_records() {
        let m = sample();
        let s = m.segments(1, 5);
        let got: Vec<(u8, u32, u32)> = s.iter().map(|s| (s.block.0[0], s.start, s.count)).collect();
        assert_eq!(got, vec![(1, 1, 1), (2, 0, 3), (1, 3, 1)]);
        assert_eq!(m.segments(6, 100).len(), 1);
        assert!(m.segments(7, 1).is_empty());
        let all: u32 = m.segments(0, u64::MAX).iter().map(|s| s.count).sum();
        assert_eq!(all, 7);
    }
}
