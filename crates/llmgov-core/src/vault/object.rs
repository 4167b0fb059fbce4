//! Stored objects (blocks and manifests): compressed, encrypted, named by their hash.
//!
//! Format version 1 of an object:
//!
//! ```text
//! 0..4    magic "LGVO"
//! 4       format version (1)
//! 5       kind (1 block, 2 manifest)
//! 6..18   AES-256-GCM nonce (random, 96 bits)
//! 18..    AES-256-GCM(zstd(payload)) || 16-byte tag
//! ```
//!
//! The associated data binds the ciphertext to its workspace, dataset and kind, so an object
//! copied into another dataset does not decrypt. The object's name is the BLAKE3 hash of
//! all its bytes: every read recomputes it before decrypting (a mismatch is an integrity
//! error, never served), and `vault fsck` can verify every object without any key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::keys::Dek;
use crate::ids::{DatasetId, WorkspaceId};
use crate::{CoreError, Result};

const MAGIC: &[u8; 4] = b"LGVO";
const VERSION: u8 = 1;
const HEADER: usize = 6 + NONCE_LEN;

/// What an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Block = 1,
    Manifest = 2,
    /// A part of a resumable upload, kept until the upload is committed or expires.
    UploadPart = 3,
    /// The record fingerprints of one block (16 bytes each, in order).
    Fingerprints = 4,
}

impl ObjectKind {
    pub fn dir(self) -> &'static str {
        match self {
            ObjectKind::Block => "blocks",
            ObjectKind::Manifest => "manifests",
            ObjectKind::UploadPart => "uploads",
            ObjectKind::Fingerprints => "fingerprints",
        }
    }
}

/// The BLAKE3 hash of an object's stored bytes: its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
    pub fn hex(&self) -> String {
        crate::hex::encode(&self.0)
    }
    pub fn parse(s: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        crate::hex::decode_into(s, &mut out)
            .ok_or_else(|| CoreError::invalid("object", "an object id is 64 hex digits"))?;
        Ok(Self(out))
    }
    /// Where the object lives under the dataset's prefix: `<kind>/<2 hex>/<64 hex>`.
    pub fn path(&self, kind: ObjectKind) -> String {
        let h = self.hex();
        format!("{}/{}/{}", kind.dir(), &h[..2], h)
    }
}

impl std::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectId({})", &self.hex()[..16])
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Whose object: the associated data of its encryption.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub workspace: WorkspaceId,
    pub dataset: DatasetId,
}

fn aad(owner: Owner, kind: ObjectKind) -> [u8; 4 + 2 + 32] {
    let mut a = [0u8; 38];
    a[..4].copy_from_slice(MAGIC);
    a[4] = VERSION;
    a[5] = kind as u8;
    a[6..22].copy_from_slice(owner.workspace.0.as_bytes());
    a[22..38].copy_from_slice(owner.dataset.0.as_bytes());
    a
}

/// Compresses `payload` with zstd at `level`, encrypts it under `dek` with a fresh random
/// nonce, and returns the object's bytes and name.
///
/// Nonces are random 96-bit values: with one DEK per dataset, the chance of a repeat stays
/// below 2^-32 up to 2^32 objects per dataset (NIST SP 800-38D §8.3).
pub fn seal(
    dek: &Dek,
    owner: Owner,
    kind: ObjectKind,
    payload: &[u8],
    level: i32,
) -> Result<(ObjectId, Vec<u8>)> {
    let bound = zstd::zstd_safe::compress_bound(payload.len());
    let mut out = Vec::with_capacity(HEADER + bound + 16);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind as u8);
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CoreError::internal("no randomness"))?;
    out.extend_from_slice(&nonce);
    out.resize(HEADER + bound, 0);
    let n = zstd::bulk::compress_to_buffer(payload, &mut out[HEADER..], level)
        .map_err(CoreError::internal)?;
    out.truncate(HEADER + n);
    let mut body = out.split_off(HEADER);
    dek.aead()
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(owner, kind)),
            &mut body,
        )
        .map_err(|_| CoreError::internal("encryption failed"))?;
    out.extend_from_slice(&body);
    Ok((ObjectId::of(&out), out))
}

/// Checks `bytes` against `id` (without any key).
pub fn verify(id: &ObjectId, bytes: &[u8]) -> Result<()> {
    if ObjectId::of(bytes) != *id {
        return Err(CoreError::Integrity(format!(
            "object {id} does not match its hash"
        )));
    }
    Ok(())
}

/// Verifies, decrypts and decompresses an object; `max_payload` bounds the decompressed size.
pub fn open(
    dek: &Dek,
    owner: Owner,
    kind: ObjectKind,
    id: &ObjectId,
    bytes: &[u8],
    max_payload: usize,
) -> Result<Vec<u8>> {
    verify(id, bytes)?;
    let bad = |why: &str| CoreError::Integrity(format!("object {id}: {why}"));
    if bytes.len() < HEADER + 16 || &bytes[..4] != MAGIC {
        return Err(bad("not a vault object"));
    }
    if bytes[4] != VERSION {
        return Err(bad("unknown object format version"));
    }
    if bytes[5] != kind as u8 {
        return Err(bad("object of another kind"));
    }
    let nonce = Nonce::try_assume_unique_for_key(&bytes[6..HEADER]).map_err(|_| bad("nonce"))?;
    let mut body = bytes[HEADER..].to_vec();
    let plain = dek
        .aead()
        .open_in_place(nonce, Aad::from(aad(owner, kind)), &mut body)
        .map_err(|_| bad("does not decrypt with this dataset's key"))?;
    zstd::bulk::decompress(plain, max_payload).map_err(|_| bad("does not decompress"))
}

/// An AES-256-GCM key built from raw key bytes.
pub(crate) fn aead_key(raw: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).expect("32-byte AES-256 key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            workspace: WorkspaceId::new(),
            dataset: DatasetId::new(),
        }
    }

    #[test]
    fn objects_round_trip_and_reject_any_change() {
        let dek = Dek::generate().unwrap();
        let o = owner();
        let payload = b"{\"a\":1}\n".repeat(100);
        let (id, bytes) = seal(&dek, o, ObjectKind::Block, &payload, 1).unwrap();
        assert_eq!(
            open(&dek, o, ObjectKind::Block, &id, &bytes, 1 << 20).unwrap(),
            payload
        );
        // Same payload, new nonce: another object.
        let (id2, _) = seal(&dek, o, ObjectKind::Block, &payload, 1).unwrap();
        assert_ne!(id, id2);
        for i in [0, 5, 10, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(matches!(
                open(&dek, o, ObjectKind::Block, &id, &bad, 1 << 20),
                Err(CoreError::Integrity(_))
            ));
        }
        // Another dataset, another kind or another key: the hash matches but it does not open.
        let other = Owner {
            dataset: DatasetId::new(),
            ..o
        };
        assert!(open(&dek, other, ObjectKind::Block, &id, &bytes, 1 << 20).is_err());
        assert!(open(&dek, o, ObjectKind::Manifest, &id, &bytes, 1 << 20).is_err());
        let dek2 = Dek::generate().unwrap();
        assert!(open(&dek2, o, ObjectKind::Block, &id, &bytes, 1 << 20).is_err());
        // A decompression bomb is refused.
        assert!(open(&dek, o, ObjectKind::Block, &id, &bytes, 10).is_err());
    }

    #[test]
    fn object_paths_fan_out_by_hash_prefix() {
        let id = ObjectId::of(b"x");
        let p = id.path(ObjectKind::Block);
        assert!(p.starts_with(&format!("blocks/{}/", &id.hex()[..2])));
        assert_eq!(ObjectId::parse(&id.hex()).unwrap(), id);
        assert!(ObjectId::parse("zz").is_err());
    }
}
