//! The keys of the keyed operators, and the surrogates they write into a text (`hash_…`,
//! `tok_…`, `enc_…`), found again by their shape.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt::Write as _;

use super::pseudonym::Rng;
use crate::EntityType;

/// The keys of the keyed operators, derived from one workspace secret.
pub struct Keys {
    hash: hmac::Key,
    pseudonym: hmac::Key,
    token: hmac::Key,
    aead: LessSafeKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

const ENC_AAD: &[u8] = b"llmgov-pii-encrypt-v1";

impl Keys {
    /// Derives the operators' keys from a 32-byte secret (HMAC-SHA256 of a label each).
    pub fn derive(secret: &[u8; 32]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let sub = |label: &str| hmac::sign(&root, label.as_bytes());
        let key = |label: &str| hmac::Key::new(hmac::HMAC_SHA256, sub(label).as_ref());
        let aead = sub("llmgov pii encrypt v1");
        Self {
            hash: key("llmgov pii hash v1"),
            pseudonym: key("llmgov pii pseudonym v1"),
            token: key("llmgov pii token v1"),
            aead: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, aead.as_ref()).expect("a 32-byte key"),
            ),
        }
    }

    /// `hash_` and the hex HMAC-SHA256 of `value`.
    pub fn hash(&self, value: &str) -> String {
        let tag = hmac::sign(&self.hash, value.as_bytes());
        let mut s = String::with_capacity(69);
        s.push_str("hash_");
        for b in tag.as_ref() {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// The token of a value of type `t`.
    pub fn token(&self, t: &EntityType, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.token);
        ctx.update(t.as_str().as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut s = String::with_capacity(24);
        s.push_str("tok_");
        base32(&tag.as_ref()[..13], &mut s);
        s.truncate(4 + TOKEN_CHARS);
        s
    }

    /// `enc_` and the sealed type and value.
    pub fn encrypt(&self, t: &EntityType, value: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
        let mut body = Vec::with_capacity(t.as_str().len() + 1 + value.len() + 16);
        body.extend_from_slice(t.as_str().as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ENC_AAD),
                &mut body,
            )
            .expect("sealing cannot fail for these sizes");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&body);
        format!("enc_{}", URL_SAFE_NO_PAD.encode(raw))
    }

    /// The type and value of an `enc_…` surrogate made with these keys; `None` if it was
    /// not, or was altered.
    pub fn decrypt(&self, s: &str) -> Option<(EntityType, String)> {
        let raw = URL_SAFE_NO_PAD.decode(s.strip_prefix("enc_")?).ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&raw[..NONCE_LEN]).ok()?;
        let mut body = raw[NONCE_LEN..].to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(ENC_AAD), &mut body)
            .ok()?;
        let sep = plain.iter().position(|b| *b == 0)?;
        let t = EntityType::parse(std::str::from_utf8(&plain[..sep]).ok()?)?;
        let v = String::from_utf8(plain[sep + 1..].to_vec()).ok()?;
        Some((t, v))
    }

    pub(super) fn rng(&self, scope: &str, t: &EntityType, value: &str) -> Rng {
        let mut ctx = hmac::Context::with_key(&self.pseudonym);
        for part in [scope, t.as_str()] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        Rng(u64::from_le_bytes(
            tag.as_ref()[..8].try_into().expect("8 bytes"),
        ))
    }
}

const TOKEN_CHARS: usize = 20;

fn base32(bytes: &[u8], out: &mut String) {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | *b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(A[((acc >> bits) & 31) as usize] as char);
        }
    }
}

/// Whether `v` is exactly a surrogate this module makes (`tok_…`, `enc_…`, `hash_…`).
pub fn is_surrogate(v: &str) -> bool {
    let b = v.as_bytes();
    if let Some(t) = v.strip_prefix("tok_") {
        t.len() == TOKEN_CHARS && t.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7'))
    } else if let Some(h) = v.strip_prefix("hash_") {
        h.len() == 64 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    } else if let Some(e) = v.strip_prefix("enc_") {
        b.len() >= 4 + 38
            && e.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    } else {
        false
    }
}

/// Byte spans of every surrogate in `text` (tokens, encrypted values, hashes).
pub(crate) fn surrogate_spans(text: &str) -> Vec<(usize, usize)> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let b = text.as_bytes();
    if !memchr::memchr_iter(b'_', b).any(|i| {
        let before = &b[..i];
        before.ends_with(b"tok") || before.ends_with(b"enc") || before.ends_with(b"hash")
    }) {
        return vec![];
    }
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"(?-u:\b)(?:(?:tok_[a-z2-7]{20}|hash_[0-9a-f]{64})(?-u:\b)|enc_[A-Za-z0-9_\-]{38,})",
        )
        .expect("valid pattern")
    });
    re.find_iter(text)
        .filter(|m| is_surrogate(m.as_str()))
        .map(|m| (m.start(), m.end()))
        .collect()
}

/// A surrogate found in a text, by byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surrogate {
    pub start: usize,
    pub end: usize,
    pub kind: SurrogateKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurrogateKind {
    Token,
    Encrypted,
}

/// The tokens and encrypted values in `text` (for detokenization).
pub fn find_surrogates(text: &str) -> Vec<Surrogate> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(?-u:\b)(?:tok_[a-z2-7]{20}(?-u:\b)|enc_[A-Za-z0-9_\-]{38,})")
            .expect("valid pattern")
    });
    re.find_iter(text)
        .filter(|m| is_surrogate(m.as_str()))
        .map(|m| Surrogate {
            start: m.start(),
            end: m.end(),
            kind: if m.as_str().starts_with("tok_") {
                SurrogateKind::Token
            } else {
                SurrogateKind::Encrypted
            },
        })
        .collect()
}
