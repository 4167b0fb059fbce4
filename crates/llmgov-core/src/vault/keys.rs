//! Envelope encryption (seed 003 ADR-002): each dataset has its own data-encryption key
//! (DEK), stored only wrapped by a key-encryption key (KEK) of a [`KeyProvider`].
//!
//! Rotating the KEK rewraps DEKs; it never re-encrypts data. Key material lives in
//! [`zeroize::Zeroizing`] buffers (wiped on drop) and has no `Debug` output.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::object::aead_key;
use crate::{CoreError, Result};

/// A dataset's data-encryption key (AES-256-GCM).
pub struct Dek {
    raw: Zeroizing<[u8; 32]>,
    aead: LessSafeKey,
    fingerprint_key: Zeroizing<[u8; 32]>,
}

impl Dek {
    pub fn generate() -> Result<Self> {
        let mut raw = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut raw[..]).map_err(|_| CoreError::internal("no randomness"))?;
        Ok(Self::from_raw(raw))
    }

    /// A DEK from its bytes, for key providers outside this crate (an HSM unwraps them).
    pub fn from_raw(raw: Zeroizing<[u8; 32]>) -> Self {
        let aead = aead_key(&raw);
        let fingerprint_key = Zeroizing::new(blake3::derive_key(
            "llmgov vault record fingerprint v1",
            &raw[..],
        ));
        Self {
            raw,
            aead,
            fingerprint_key,
        }
    }

    /// The key's bytes, for a key provider to wrap. Never log or store them unwrapped.
    pub fn raw_bytes(&self) -> &[u8; 32] {
        &self.raw
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.aead
    }

    /// A record's identity within its dataset: keyed, so that equal records of two datasets
    /// cannot be matched by their ids.
    pub fn fingerprint(&self, record: &[u8]) -> [u8; 16] {
        let h = blake3::keyed_hash(&self.fingerprint_key, record);
        h.as_bytes()[..16].try_into().expect("16 of 32 bytes")
    }
}

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dek(..)")
    }
}

/// A DEK wrapped by KEK version `kek_version`.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDek {
    pub kek_version: u32,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for WrappedDek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedDek(v{})", self.kek_version)
    }
}

/// Facts about a provider's keys, for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyStatus {
    /// `local` or `pkcs11`.
    pub provider: String,
    pub current_version: u32,
    /// Versions older than this can no longer unwrap (trimmed or retired).
    pub min_decryption_version: u32,
    pub versions: Vec<u32>,
}

/// A source of key-encryption keys: a sealed local file or an HSM.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    /// Wraps `dek` with the current KEK; `aad` binds the result to its owner.
    async fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<WrappedDek>;
    /// Unwraps with the KEK version the wrapped key names.
    async fn unwrap(&self, wrapped: &WrappedDek, aad: &[u8]) -> Result<Dek>;
    /// Creates a new KEK version and makes it current.
    async fn rotate(&self) -> Result<u32>;
    async fn status(&self) -> Result<KeyStatus>;
    /// Destroys KEK versions below `min` (never the current one); DEKs they wrapped can no
    /// longer be unwrapped, so callers rewrap first. Returns the versions removed.
    async fn trim(&self, min: u32) -> Result<Vec<u32>>;
}

fn seal_with(key: &LessSafeKey, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CoreError::internal("no randomness"))?;
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| CoreError::internal("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

fn open_with(key: &LessSafeKey, sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    if sealed.len() != NONCE_LEN + 32 + 16 {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
    let mut body = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut body).ok()?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(plain);
    Some(out)
}

/// The associated data of a wrapped DEK: a fixed prefix, the KEK version and the owner.
pub fn wrap_aad(version: u32, aad: &[u8]) -> Vec<u8> {
    let mut a = b"llmgov-dek-v1".to_vec();
    a.extend_from_slice(&version.to_be_bytes());
    a.extend_from_slice(aad);
    a
}

// ---------------------------------------------------------------------------------------
// Local provider: KEKs in a file sealed with a key derived from an operator passphrase.

/// Argon2id cost of deriving the sealing key from the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes: about a quarter of a second here, once per start.
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

impl KdfParams {
    /// The lowest cost the file accepts (tests use it to start many servers quickly).
    pub fn minimum() -> Self {
        Self {
            m_kib: 8 * 1024,
            t: 1,
            p: 1,
        }
    }
}

/// The KEK file, format version 1 (JSON).
#[derive(Serialize, Deserialize)]
struct KekFile {
    format: u32,
    kdf: String,
    params: KdfParams,
    /// Hex.
    salt: String,
    min_decryption_version: u32,
    keys: Vec<SealedKek>,
}

#[derive(Serialize, Deserialize, Clone)]
struct SealedKek {
    version: u32,
    created_at: crate::time::Timestamp,
    /// Hex of nonce || ciphertext || tag.
    sealed: String,
}

struct LocalKeys {
    seal_key: LessSafeKey,
    file: KekFile,
    /// Unsealed KEKs by version.
    keks: Vec<(u32, Arc<LessSafeKey>)>,
}

/// KEKs kept in a local file, sealed with an Argon2id-derived key (created by `llmgov init`
/// or on first start).
pub struct LocalKeyProvider {
    path: PathBuf,
    passphrase: Zeroizing<String>,
    keys: RwLock<LocalKeys>,
}

fn kek_aad(version: u32) -> Vec<u8> {
    let mut a = b"llmgov-kek-v1".to_vec();
    a.extend_from_slice(&version.to_be_bytes());
    a
}

fn derive(passphrase: &str, salt: &[u8], p: KdfParams) -> Result<LessSafeKey> {
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
        .map_err(|e| CoreError::invalid("kdf", format!("bad key file parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase.as_bytes(), salt, &mut out[..])
        .map_err(CoreError::internal)?;
    Ok(aead_key(&out))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io =
        |e: std::io::Error| CoreError::Unavailable(format!("key file {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

impl LocalKeyProvider {
    /// Creates a key file with one KEK at `path`; fails if one exists.
    pub fn create(path: &Path, passphrase: &str, params: KdfParams) -> Result<Self> {
        if path.exists() {
            return Err(CoreError::conflict(
                "KEY_FILE_EXISTS",
                format!("{} already exists", path.display()),
            ));
        }
        check_passphrase(passphrase)?;
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| CoreError::internal("no randomness"))?;
        let seal_key = derive(passphrase, &salt, params)?;
        let file = KekFile {
            format: 1,
            kdf: "argon2id".into(),
            params,
            salt: crate::hex::encode(&salt),
            min_decryption_version: 1,
            keys: vec![],
        };
        let mut keys = LocalKeys {
            seal_key,
            file,
            keks: vec![],
        };
        add_kek(&mut keys, 1)?;
        write_atomically(
            path,
            &serde_json::to_vec_pretty(&keys.file).map_err(CoreError::internal)?,
        )?;
        Ok(Self {
            path: path.to_path_buf(),
            passphrase: Zeroizing::new(passphrase.to_string()),
            keys: RwLock::new(keys),
        })
    }

    /// Opens the key file at `path`; a wrong passphrase is a clear error.
    pub fn open(path: &Path, passphrase: &str) -> Result<Self> {
        let keys = load(path, passphrase)?;
        Ok(Self {
            path: path.to_path_buf(),
            passphrase: Zeroizing::new(passphrase.to_string()),
            keys: RwLock::new(keys),
        })
    }

    /// Re-reads the file (another instance may have rotated).
    fn reload(&self) -> Result<()> {
        let fresh = load(&self.path, &self.passphrase)?;
        *self.keys.write().expect("key lock") = fresh;
        Ok(())
    }

    fn kek(&self, version: u32) -> Option<Arc<LessSafeKey>> {
        let k = self.keys.read().expect("key lock");
        if version < k.file.min_decryption_version {
            return None;
        }
        k.keks
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, key)| Arc::clone(key))
    }
}

fn check_passphrase(p: &str) -> Result<()> {
    if p.chars().count() < 12 {
        return Err(CoreError::invalid(
            "passphrase",
            "the vault passphrase must have at least 12 characters",
        ));
    }
    Ok(())
}

fn add_kek(keys: &mut LocalKeys, version: u32) -> Result<()> {
    let mut raw = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut raw[..]).map_err(|_| CoreError::internal("no randomness"))?;
    let sealed = seal_with(&keys.seal_key, &raw[..], &kek_aad(version))?;
    keys.file.keys.push(SealedKek {
        version,
        created_at: crate::time::now(),
        sealed: crate::hex::encode(&sealed),
    });
    keys.keks.push((version, Arc::new(aead_key(&raw))));
    Ok(())
}

fn load(path: &Path, passphrase: &str) -> Result<LocalKeys> {
    let bytes = std::fs::read(path)
        .map_err(|e| CoreError::Unavailable(format!("key file {}: {e}", path.display())))?;
    let file: KekFile = serde_json::from_slice(&bytes).map_err(|e| {
        CoreError::invalid(
            "key_file",
            format!("{} is not a key file: {e}", path.display()),
        )
    })?;
    if file.format != 1 || file.kdf != "argon2id" {
        return Err(CoreError::invalid("key_file", "unknown key file format"));
    }
    let salt =
        crate::hex::decode(&file.salt).ok_or_else(|| CoreError::invalid("key_file", "bad salt"))?;
    let seal_key = derive(passphrase, &salt, file.params)?;
    let mut keks = Vec::new();
    for k in &file.keys {
        let sealed = crate::hex::decode(&k.sealed)
            .ok_or_else(|| CoreError::invalid("key_file", "bad sealed key"))?;
        let raw = open_with(&seal_key, &sealed, &kek_aad(k.version)).ok_or_else(|| {
            CoreError::Unauthenticated(format!(
                "wrong vault passphrase for {} (or the file was altered)",
                path.display()
            ))
        })?;
        keks.push((k.version, Arc::new(aead_key(&raw))));
    }
    if keks.is_empty() {
        return Err(CoreError::invalid("key_file", "the key file holds no key"));
    }
    Ok(LocalKeys {
        seal_key,
        file,
        keks,
    })
}

#[async_trait]
impl KeyProvider for LocalKeyProvider {
    async fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<WrappedDek> {
        let (version, kek) = {
            let k = self.keys.read().expect("key lock");
            let (v, key) = k.keks.last().expect("at least one key");
            (*v, Arc::clone(key))
        };
        Ok(WrappedDek {
            kek_version: version,
            bytes: seal_with(&kek, &dek.raw[..], &wrap_aad(version, aad))?,
        })
    }

    async fn unwrap(&self, wrapped: &WrappedDek, aad: &[u8]) -> Result<Dek> {
        let kek = match self.kek(wrapped.kek_version) {
            Some(k) => k,
            None => {
                self.reload()?;
                self.kek(wrapped.kek_version).ok_or_else(|| {
                    CoreError::Unavailable(format!(
                        "key-encryption key version {} is not available",
                        wrapped.kek_version
                    ))
                })?
            }
        };
        let raw = open_with(&kek, &wrapped.bytes, &wrap_aad(wrapped.kek_version, aad))
            .ok_or_else(|| CoreError::Integrity("a wrapped data key does not unwrap".into()))?;
        Ok(Dek::from_raw(raw))
    }

    async fn rotate(&self) -> Result<u32> {
        self.reload()?;
        let mut k = self.keys.write().expect("key lock");
        let next = k.keks.last().map(|(v, _)| v + 1).unwrap_or(1);
        add_kek(&mut k, next)?;
        write_atomically(
            &self.path,
            &serde_json::to_vec_pretty(&k.file).map_err(CoreError::internal)?,
        )?;
        Ok(next)
    }

    async fn trim(&self, min: u32) -> Result<Vec<u32>> {
        self.reload()?;
        let mut k = self.keys.write().expect("key lock");
        let current = k.keks.last().map(|(v, _)| *v).unwrap_or(0);
        if min > current {
            return Err(CoreError::invalid(
                "min_version",
                format!("the current key-encryption key is version {current}"),
            ));
        }
        let removed: Vec<u32> = k
            .keks
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| *v < min)
            .collect();
        k.keks.retain(|(v, _)| *v >= min);
        k.file.keys.retain(|s| s.version >= min);
        k.file.min_decryption_version = k.file.min_decryption_version.max(min);
        write_atomically(
            &self.path,
            &serde_json::to_vec_pretty(&k.file).map_err(CoreError::internal)?,
        )?;
        Ok(removed)
    }

    async fn status(&self) -> Result<KeyStatus> {
        let k = self.keys.read().expect("key lock");
        Ok(KeyStatus {
            provider: "local".into(),
            current_version: k.keks.last().map(|(v, _)| *v).unwrap_or(0),
            min_decryption_version: k.file.min_decryption_version,
            versions: k.keks.iter().map(|(v, _)| *v).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_keys_wrap_unwrap_rotate_and_refuse_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/kek.json");
        let p =
            LocalKeyProvider::create(&path, "correct horse battery", KdfParams::minimum()).unwrap();
        assert!(
            LocalKeyProvider::create(&path, "correct horse battery", KdfParams::minimum()).is_err()
        );
        let dek = Dek::generate().unwrap();
        let w = p.wrap(&dek, b"ws|ds").await.unwrap();
        assert_eq!(w.kek_version, 1);
        let back = p.unwrap(&w, b"ws|ds").await.unwrap();
        assert_eq!(back.fingerprint(b"r"), dek.fingerprint(b"r"));
        // Bound to its owner.
        assert!(p.unwrap(&w, b"ws|other").await.is_err());

        assert_eq!(p.rotate().await.unwrap(), 2);
        let w2 = p.wrap(&dek, b"ws|ds").await.unwrap();
        assert_eq!(w2.kek_version, 2);
        // Another instance opening the same file sees both versions.
        let again = LocalKeyProvider::open(&path, "correct horse battery").unwrap();
        assert!(again.unwrap(&w, b"ws|ds").await.is_ok());
        assert!(again.unwrap(&w2, b"ws|ds").await.is_ok());
        assert_eq!(again.status().await.unwrap().versions, vec![1, 2]);
        // Trimming version 1: what it wrapped no longer unwraps, anywhere.
        assert!(again.trim(3).await.is_err(), "never the current version");
        assert_eq!(again.trim(2).await.unwrap(), vec![1]);
        assert!(again.unwrap(&w, b"ws|ds").await.is_err());
        assert!(again.unwrap(&w2, b"ws|ds").await.is_ok());
        let st = LocalKeyProvider::open(&path, "correct horse battery")
            .unwrap()
            .status()
            .await
            .unwrap();
        assert_eq!((st.min_decryption_version, st.versions), (2, vec![2]));

        assert!(matches!(
            LocalKeyProvider::open(&path, "wrong passphrase!!"),
            Err(CoreError::Unauthenticated(_))
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&crate::hex::encode(&dek.raw[..])));
        assert!(
            LocalKeyProvider::create(&dir.path().join("x"), "short", KdfParams::minimum()).is_err()
        );
    }
}
