//! Signed checkpoints: a workspace log's tree size and Merkle root, signed with Ed25519.
//!
//! An auditor who keeps a checkpoint can later demand a consistency proof from it to any
//! newer checkpoint: a log rewritten after the checkpoint was taken cannot produce one, even
//! by someone holding the database. The signing key lives outside the database (a key file
//! by default), and its public key is exported so verification needs no trust in the server.
//!
//! Signed body, format version 1 (UTF-8, one field per line, final newline):
//! `llmgov.audit.checkpoint.v1`, workspace id, tree size, hex root hash, RFC 3339 timestamp.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::ids::WorkspaceId;
use crate::merkle::Hash;
use crate::time::Timestamp;
use crate::{CoreError, Result};

pub const CHECKPOINT_HEADER: &str = "llmgov.audit.checkpoint.v1";

/// Key id of a checkpoint public key: `ed25519:` and the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_key);
    format!("ed25519:{}", &crate::hex::encode(d.as_ref())[..16])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub workspace_id: WorkspaceId,
    pub tree_size: u64,
    /// Hex SHA-256 Merkle tree head.
    pub root_hash: String,
    pub timestamp: Timestamp,
    pub key_id: String,
    /// Hex Ed25519 signature over [`Checkpoint::body`].
    pub signature: String,
}

impl Checkpoint {
    pub fn body(&self) -> String {
        format!(
            "{CHECKPOINT_HEADER}\n{}\n{}\n{}\n{}\n",
            self.workspace_id,
            self.tree_size,
            self.root_hash,
            self.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )
    }

    /// Checks the signature with `public_key` (raw 32-byte Ed25519 key).
    pub fn verify(&self, public_key: &[u8]) -> Result<()> {
        let bad = |m: &str| CoreError::invalid("checkpoint", m.to_string());
        if self.key_id != key_id(public_key) {
            return Err(bad("checkpoint was signed by another key"));
        }
        let sig: Vec<u8> = (0..self.signature.len())
            .step_by(2)
            .map(|i| {
                self.signature
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad("signature is not hex"))?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(self.body().as_bytes(), &sig)
            .map_err(|_| bad("signature does not verify"))
    }

    pub fn root(&self) -> Result<Hash> {
        let v: Vec<u8> = (0..self.root_hash.len())
            .step_by(2)
            .map(|i| {
                self.root_hash
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or_else(|| CoreError::invalid("checkpoint", "root hash is not hex"))?;
        v.try_into()
            .map_err(|_| CoreError::invalid("checkpoint", "root hash is not 32 bytes"))
    }
}

/// Signs checkpoints with an Ed25519 key (PKCS#8).
pub struct CheckpointSigner {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl CheckpointSigner {
    /// A new private key, PKCS#8 DER, to be stored by the caller.
    pub fn generate_pkcs8() -> Result<Vec<u8>> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        Ok(Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(CoreError::internal)?
            .as_ref()
            .to_vec())
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .map_err(|_| CoreError::invalid("checkpoint_key", "not an Ed25519 PKCS#8 key"))?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn sign(
        &self,
        workspace_id: WorkspaceId,
        tree_size: u64,
        root: &Hash,
        timestamp: Timestamp,
    ) -> Checkpoint {
        let mut cp = Checkpoint {
            workspace_id,
            tree_size,
            root_hash: crate::hex::encode(root),
            timestamp,
            key_id: self.key_id.clone(),
            signature: String::new(),
        };
        cp.signature = crate::hex::encode(self.pair.sign(cp.body().as_bytes()).as_ref());
        cp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_verify_only_unaltered_and_with_their_key() {
        let signer =
            CheckpointSigner::from_pkcs8(&CheckpointSigner::generate_pkcs8().unwrap()).unwrap();
        let cp = signer.sign(WorkspaceId::new(), 42, &[7u8; 32], crate::time::now());
        cp.verify(signer.public_key()).unwrap();
        assert_eq!(cp.root().unwrap(), [7u8; 32]);
        let mut grown = cp.clone();
        grown.tree_size = 43;
        assert!(grown.verify(signer.public_key()).is_err());
        let mut moved = cp.clone();
        moved.root_hash = crate::hex::encode(&[8u8; 32]);
        assert!(moved.verify(signer.public_key()).is_err());
        let other =
            CheckpointSigner::from_pkcs8(&CheckpointSigner::generate_pkcs8().unwrap()).unwrap();
        assert!(cp.verify(other.public_key()).is_err());
        let mut resigned = other.sign(cp.workspace_id, 42, &[7u8; 32], cp.timestamp);
        resigned.key_id = cp.key_id.clone();
        assert!(
            resigned.verify(signer.public_key()).is_err(),
            "a signature by another key under our key id"
        );
        let mut garbage = cp.clone();
        garbage.signature = "zz".into();
        assert!(garbage.verify(signer.public_key()).is_err());
        assert!(CheckpointSigner::from_pkcs8(b"not a key").is_err());
    }
}
