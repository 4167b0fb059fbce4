//! Blocks: groups of consecutive records of one push, the unit of storage.
//!
//! Payload format (inside a sealed [`super::object`], little-endian):
//!
//! ```text
//! u32                 record count n
//! n × [u8; 16]        record fingerprints (keyed BLAKE3, see `Dek::fingerprint`)
//! n × u32             end offset of each record in the data
//! data                the records' bytes, back to back (no separators)
//! ```
//!
//! Fingerprints sit in front so that a later push can learn which records a block holds
//! without touching their bytes.

use crate::{CoreError, Result};

pub type Fingerprint = [u8; 16];

/// Records collected for one block.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    fps: Vec<Fingerprint>,
    ends: Vec<u32>,
    data: Vec<u8>,
}

impl BlockBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            fps: Vec::new(),
            ends: Vec::new(),
            data: Vec::with_capacity(bytes),
        }
    }
    pub fn push(&mut self, fp: Fingerprint, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.fps.push(fp);
        self.ends.push(self.data.len() as u32);
    }
    pub fn records(&self) -> usize {
        self.fps.len()
    }
    pub fn data_len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fps.is_empty()
    }
    /// The fingerprints alone (the payload of the block's fingerprints object).
    pub fn fingerprints(&self) -> Vec<u8> {
        self.fps.concat()
    }
    pub fn encode(&self) -> Vec<u8> {
        let n = self.fps.len();
        let mut out = Vec::with_capacity(4 + n * 20 + self.data.len());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        for f in &self.fps {
            out.extend_from_slice(f);
        }
        for e in &self.ends {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }
}

/// A decoded block.
#[derive(Debug, Clone)]
pub struct Block {
    payload: Vec<u8>,
    n: usize,
}

impl Block {
    /// Checks the layout (counts, monotonic offsets within the data) once, so that record
    /// access never panics on a payload that decrypted but is malformed.
    pub fn decode(payload: Vec<u8>) -> Result<Self> {
        let bad = || CoreError::Integrity("malformed block payload".into());
        let n =
            u32::from_le_bytes(payload.get(..4).ok_or_else(bad)?.try_into().expect("4")) as usize;
        let head = 4usize
            .checked_add(n.checked_mul(20).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        if payload.len() < head {
            return Err(bad());
        }
        let data_len = payload.len() - head;
        let b = Self { payload, n };
        let mut prev = 0usize;
        for i in 0..n {
            let e = b.end(i);
            if e < prev || e > data_len {
                return Err(bad());
            }
            prev = e;
        }
        if prev != data_len {
            return Err(bad());
        }
        Ok(b)
    }
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn fingerprint(&self, i: usize) -> Fingerprint {
        self.payload[4 + i * 16..4 + i * 16 + 16]
            .try_into()
            .expect("16 bytes")
    }
    fn end(&self, i: usize) -> usize {
        let at = 4 + self.n * 16 + i * 4;
        u32::from_le_bytes(self.payload[at..at + 4].try_into().expect("4")) as usize
    }
    fn data_start(&self) -> usize {
        4 + self.n * 20
    }
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        let d = self.data_start();
        &self.payload[d + start..d + self.end(i)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_reject_malformed_payloads() {
        let mut b = BlockBuilder::default();
        b.push([1; 16], b"{\"a\":1}");
        b.push([2; 16], b"");
        b.push([3; 16], b"{\"b\":2}");
        let enc = b.encode();
        let d = Block::decode(enc.clone()).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.record(0), b"{\"a\":1}");
        assert_eq!(d.record(1), b"");
        assert_eq!(d.record(2), b"{\"b\":2}");
        assert_eq!(d.fingerprint(2), [3; 16]);
        assert!(Block::decode(enc[..enc.len() - 1].to_vec()).is_err());
        assert!(Block::decode(vec![255, 255, 255, 255]).is_err());
        let mut bad = enc.clone();
        bad[4 + 48] = 200; // first end offset beyond the data
        assert!(Block::decode(bad).is_err());
    }
}
