//! Key-encryption keys held in a PKCS#11 token (an HSM; SoftHSM2 in tests). KEKs are
//! AES-256 secret keys generated inside the token (sensitive, not extractable), labelled
//! `<key_label>-v<version>`; DEKs are wrapped with AES-256-GCM inside the token, so the KEK
//! never leaves it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use llmgov_core::vault::keys::{Dek, KeyProvider, KeyStatus, WrappedDek, wrap_aad};
use llmgov_core::{CoreError, Result};
use zeroize::Zeroizing;

/// Where the KEKs live.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Label of the token holding the keys.
    pub token_label: String,
    /// The token's user PIN.
    pub pin: String,
    /// Prefix of the KEK labels.
    pub key_label: String,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

pub struct Pkcs11KeyProvider {
    inner: Arc<Inner>,
}

struct Inner {
    session: Mutex<Session>,
    key_label: String,
}

fn hsm_err(what: &str, e: cryptoki::error::Error) -> CoreError {
    CoreError::Unavailable(format!("PKCS#11 {what}: {e}"))
}

/// One context per module for the whole process: a module is initialised once, and
/// finalising it would pull it from under every other user.
fn context(module: &PathBuf) -> Result<Pkcs11> {
    static CONTEXTS: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();
    let mut all = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .expect("pkcs11 contexts");
    if let Some((_, p)) = all.iter().find(|(m, _)| m == module) {
        return Ok(p.clone());
    }
    let p = Pkcs11::new(module)
        .map_err(|e| CoreError::Unavailable(format!("PKCS#11 module {}: {e}", module.display())))?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| hsm_err("initialisation", e))?;
    all.push((module.clone(), p.clone()));
    Ok(p)
}

impl Pkcs11KeyProvider {
    /// Opens the token and logs in; creates the first KEK if the token holds none. A
    /// missing module or token, or a wrong PIN, is a clear error.
    pub fn open(cfg: &Pkcs11Config) -> Result<Self> {
        let p = context(&cfg.module)?;
        let slots = p
            .get_slots_with_token()
            .map_err(|e| hsm_err("slot list", e))?;
        let slot = slots
            .into_iter()
            .find(|s| {
                p.get_token_info(*s)
                    .is_ok_and(|t| t.label().trim() == cfg.token_label)
            })
            .ok_or_else(|| {
                CoreError::Unavailable(format!(
                    "no PKCS#11 token labelled {:?} in {}",
                    cfg.token_label,
                    cfg.module.display()
                ))
            })?;
        let session = p.open_rw_session(slot).map_err(|e| hsm_err("session", e))?;
        session
            .login(UserType::User, Some(&AuthPin::new(cfg.pin.clone().into())))
            // Login state belongs to the process: a second provider on the same token (tests,
            // or a CLI command beside a server thread) finds the user logged in already.
            .or_else(|e| match e {
                cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::UserAlreadyLoggedIn,
                    _,
                ) => Ok(()),
                e => Err(e),
            })
            .map_err(|e| {
                CoreError::Unauthenticated(format!(
                    "PKCS#11 login to token {:?} failed: {e}",
                    cfg.token_label
                ))
            })?;
        let me = Self {
            inner: Arc::new(Inner {
                session: Mutex::new(session),
                key_label: cfg.key_label.clone(),
            }),
        };
        if me.inner.versions()?.is_empty() {
            me.inner.generate(1)?;
        }
        Ok(me)
    }
}

impl Inner {
    fn label(&self, v: u32) -> String {
        format!("{}-v{v}", self.key_label)
    }

    /// KEK versions in the token, ascending.
    fn versions(&self) -> Result<Vec<u32>> {
        let s = self.session.lock().expect("pkcs11 session");
        let handles = s
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
            .map_err(|e| hsm_err("find", e))?;
        let prefix = format!("{}-v", self.key_label);
        let mut out = vec![];
        for h in handles {
            let attrs = s
                .get_attributes(h, &[AttributeType::Label])
                .map_err(|e| hsm_err("attributes", e))?;
            for a in attrs {
                if let Attribute::Label(l) = a
                    && let Some(v) = String::from_utf8_lossy(&l)
                        .strip_prefix(&prefix)
                        .and_then(|v| v.parse::<u32>().ok())
                {
                    out.push(v);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn key(&self, s: &Session, v: u32) -> Result<ObjectHandle> {
        s.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(self.label(v).into_bytes()),
        ])
        .map_err(|e| hsm_err("find", e))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            CoreError::Unavailable(format!(
                "key-encryption key version {v} is not in the token"
            ))
        })
    }

    fn generate(&self, v: u32) -> Result<()> {
        let s = self.session.lock().expect("pkcs11 session");
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(self.label(v).into_bytes()),
            ],
        )
        .map_err(|e| hsm_err("key generation", e))?;
        Ok(())
    }

    fn wrap(&self, v: u32, dek: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let s = self.session.lock().expect("pkcs11 session");
        let key = self.key(&s, v)?;
        let mut iv = [0u8; 12];
        aws_lc_rs::rand::fill(&mut iv).map_err(|_| CoreError::internal("no randomness"))?;
        let mut iv_param = iv;
        let params =
            GcmParams::new(&mut iv_param, aad, 128.into()).map_err(|e| hsm_err("parameters", e))?;
        let ct = s
            .encrypt(&Mechanism::AesGcm(params), key, dek)
            .map_err(|e| hsm_err("wrap", e))?;
        Ok([iv.as_slice(), &ct].concat())
    }

    fn unwrap(&self, v: u32, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() < 12 + 16 {
            return Err(CoreError::Integrity(
                "a wrapped data key is malformed".into(),
            ));
        }
        let s = self.session.lock().expect("pkcs11 session");
        let key = self.key(&s, v)?;
        let mut iv: [u8; 12] = wrapped[..12].try_into().expect("12 bytes");
        let params =
            GcmParams::new(&mut iv, aad, 128.into()).map_err(|e| hsm_err("parameters", e))?;
        s.decrypt(&Mechanism::AesGcm(params), key, &wrapped[12..])
            .map(Zeroizing::new)
            .map_err(|_| CoreError::Integrity("a wrapped data key does not unwrap".into()))
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(CoreError::internal)?
}

#[async_trait]
impl KeyProvider for Pkcs11KeyProvider {
    async fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<WrappedDek> {
        let inner = Arc::clone(&self.inner);
        let raw = Zeroizing::new(*dek.raw_bytes());
        let aad = aad.to_vec();
        blocking(move || {
            let v = *inner.versions()?.last().ok_or_else(|| {
                CoreError::Unavailable("the token holds no key-encryption key".into())
            })?;
            Ok(WrappedDek {
                kek_version: v,
                bytes: inner.wrap(v, &raw[..], &wrap_aad(v, &aad))?,
            })
        })
        .await
    }

    async fn unwrap(&self, wrapped: &WrappedDek, aad: &[u8]) -> Result<Dek> {
        let inner = Arc::clone(&self.inner);
        let (w, aad) = (wrapped.clone(), aad.to_vec());
        let raw =
            blocking(move || inner.unwrap(w.kek_version, &w.bytes, &wrap_aad(w.kek_version, &aad)))
                .await?;
        let key: [u8; 32] = raw[..]
            .try_into()
            .map_err(|_| CoreError::Integrity("a wrapped data key has the wrong length".into()))?;
        Ok(Dek::from_raw(Zeroizing::new(key)))
    }

    async fn rotate(&self) -> Result<u32> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let next = inner.versions()?.last().map_or(1, |v| v + 1);
            inner.generate(next)?;
            Ok(next)
        })
        .await
    }

    async fn trim(&self, min: u32) -> Result<Vec<u32>> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let versions = inner.versions()?;
            let current = versions.last().copied().unwrap_or(0);
            if min > current {
                return Err(CoreError::invalid(
                    "min_version",
                    format!("the current key-encryption key is version {current}"),
                ));
            }
            let removed: Vec<u32> = versions.into_iter().filter(|v| *v < min).collect();
            let s = inner.session.lock().expect("pkcs11 session");
            for v in &removed {
                let key = inner.key(&s, *v)?;
                s.destroy_object(key).map_err(|e| hsm_err("destroy", e))?;
            }
            Ok(removed)
        })
        .await
    }

    async fn status(&self) -> Result<KeyStatus> {
        let inner = Arc::clone(&self.inner);
        let versions = blocking(move || inner.versions()).await?;
        Ok(KeyStatus {
            provider: "pkcs11".into(),
            current_version: versions.last().copied().unwrap_or(0),
            min_decryption_version: versions.first().copied().unwrap_or(0),
            versions,
        })
    }
}
