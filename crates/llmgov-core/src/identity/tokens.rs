//! Access tokens (EdDSA-signed JWTs), refresh tokens and API key secrets.
//!
//! Access tokens are verified against a key ring of every signing key that may still have
//! live tokens, so rotating the signing key logs nobody out. Only `EdDSA` is accepted: a
//! token claiming `none`, `HS256` (algorithm confusion) or anything else is rejected before
//! any key is consulted.

use std::collections::HashMap;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::time::Timestamp;

use super::SigningKeyRecord;

pub const API_KEY_PREFIX: &str = "lgv_";
const SECRET_HASH_CONTEXT: &str = "llmgov 2026-11 secret hash v1";

/// Claims of an access token (seed 000 §7.2.1, plus registered claims).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub email: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub tenant_id: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// Refresh-token family this access token was issued under (the session).
    pub sid: String,
}

/// URL-safe random token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("system RNG");
    URL_SAFE_NO_PAD.encode(buf)
}

/// Hash of a high-entropy secret (API key, refresh token). These secrets carry 256 bits of
/// entropy, so a fast keyed-context hash is enough; passwords use Argon2id instead.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    blake3::derive_key(SECRET_HASH_CONTEXT, secret.as_bytes()).to_vec()
}

/// Constant-time equality for secret hashes.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new API key: `lgv_<10 chars>_<43 chars>`. Returns (full key, visible prefix).
pub fn new_api_key() -> (String, String) {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut raw = [0u8; 10];
    aws_lc_rs::rand::fill(&mut raw).expect("system RNG");
    let id: String = raw
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    let prefix = format!("{API_KEY_PREFIX}{id}");
    (format!("{prefix}_{}", random_token(32)), prefix)
}

/// Splits a presented API key into its prefix; `None` if it is not shaped like one.
pub fn api_key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 10 && secret.len() == 43).then(|| &key[..API_KEY_PREFIX.len() + 10])
}

/// Generates a new Ed25519 signing key.
pub fn generate_signing_key(now: Timestamp) -> Result<SigningKeyRecord, CoreError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(CoreError::internal)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(CoreError::internal)?;
    let public = pair.public_key().as_ref().to_vec();
    let kid = format!("ed25519-{}", &blake3::hash(&public).to_hex()[..16]);
    Ok(SigningKeyRecord {
        kid,
        algorithm: "EdDSA".into(),
        private_key: pkcs8.as_ref().to_vec(),
        public_key: public,
        created_at: now,
        retired_at: None,
    })
}

/// The signing key in use and the verification keys still accepted.
pub struct KeyRing {
    active_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
    validation: Validation,
}

impl KeyRing {
    /// Builds the ring from stored keys: the newest unretired key signs; every key not
    /// retired longer ago than `max_token_age_secs` verifies.
    pub fn from_records(
        records: &[SigningKeyRecord],
        issuer: &str,
        audience: &str,
        now: Timestamp,
        max_token_age_secs: i64,
    ) -> Result<Self, CoreError> {
        let active = records
            .iter()
            .filter(|r| r.retired_at.is_none())
            .max_by_key(|r| r.created_at)
            .ok_or_else(|| CoreError::internal("no active signing key"))?;
        let mut decoding = HashMap::new();
        let mut jwk_list = Vec::new();
        for r in records {
            if r.retired_at
                .is_some_and(|t| (now - t).num_seconds() > max_token_age_secs)
            {
                continue;
            }
            let x = URL_SAFE_NO_PAD.encode(&r.public_key);
            decoding.insert(
                r.kid.clone(),
                DecodingKey::from_ed_components(&x).map_err(CoreError::internal)?,
            );
            jwk_list.push(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": r.kid, "alg": "EdDSA", "use": "sig"}));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Ok(Self {
            active_kid: active.kid.clone(),
            encoding: EncodingKey::from_ed_der(&active.private_key),
            decoding,
            jwks: serde_json::json!({ "keys": jwk_list }),
            validation,
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, CoreError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.active_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(CoreError::internal)
    }

    /// Verifies signature, algorithm, issuer, audience, `exp` and `nbf`.
    pub fn verify(&self, token: &str) -> Result<Claims, CoreError> {
        let bad = || CoreError::Unauthenticated("invalid or expired access token".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad())?;
        if header.alg != Algorithm::EdDSA {
            return Err(bad());
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|k| self.decoding.get(k))
            .ok_or_else(bad)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| bad())
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::now;

    fn claims(iat: i64, exp: i64) -> Claims {
        Claims {
            sub: "u".into(),
            email: "a@b.c".into(),
            roles: vec![],
            permissions: vec![],
            tenant_id: "t".into(),
            iss: "llmgov".into(),
            aud: "llmgov-api".into(),
            iat,
            nbf: iat,
            exp,
            jti: "j".into(),
            sid: "s".into(),
        }
    }

    fn ring(keys: &[SigningKeyRecord]) -> KeyRing {
        KeyRing::from_records(keys, "llmgov", "llmgov-api", now(), 900).unwrap()
    }

    #[test]
    fn sign_verify_and_reject_tampering() {
        let k = generate_signing_key(now()).unwrap();
        let r = ring(std::slice::from_ref(&k));
        let t = now().timestamp();
        let tok = r.sign(&claims(t, t + 900)).unwrap();
        assert_eq!(r.verify(&tok).unwrap().sub, "u");
        let mut parts: Vec<String> = tok.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(t, t + 99999)).unwrap());
        assert!(r.verify(&parts.join(".")).is_err());
    }

    #[test]
    fn rejects_expired_future_none_and_hs256() {
        let k = generate_signing_key(now()).unwrap();
        let r = ring(std::slice::from_ref(&k));
        let t = now().timestamp();
        assert!(
            r.verify(&r.sign(&claims(t - 2000, t - 1000)).unwrap())
                .is_err()
        );
        let mut future = claims(t, t + 9000);
        future.nbf = t + 3000;
        assert!(r.verify(&r.sign(&future).unwrap()).is_err());
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(t, t + 900)).unwrap());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            body
        );
        assert!(r.verify(&none).is_err());
        // HS256 signed with the public key bytes as the HMAC secret: the classic confusion.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(k.kid.clone());
        let forged = jsonwebtoken::encode(
            &h,
            &claims(t, t + 900),
            &EncodingKey::from_secret(&k.public_key),
        )
        .unwrap();
        assert!(r.verify(&forged).is_err());
    }

    #[test]
    fn rejects_wrong_issuer_and_audience() {
        let k = generate_signing_key(now()).unwrap();
        let t = now().timestamp();
        let tok = ring(std::slice::from_ref(&k))
            .sign(&claims(t, t + 900))
            .unwrap();
        let other_issuer = KeyRing::from_records(
            std::slice::from_ref(&k),
            "someone-else",
            "llmgov-api",
            now(),
            900,
        )
        .unwrap();
        assert!(other_issuer.verify(&tok).is_err());
        let other_audience = KeyRing::from_records(
            std::slice::from_ref(&k),
            "llmgov",
            "another-api",
            now(),
            900,
        )
        .unwrap();
        assert!(other_audience.verify(&tok).is_err());
        let unknown_key = ring(&[generate_signing_key(now()).unwrap()]);
        assert!(
            unknown_key.verify(&tok).is_err(),
            "a token signed by a key not in the ring"
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let old = generate_signing_key(now()).unwrap();
        let t = now().timestamp();
        let tok = ring(std::slice::from_ref(&old))
            .sign(&claims(t, t + 900))
            .unwrap();
        let mut retired = old.clone();
        retired.retired_at = Some(now());
        let mut new = generate_signing_key(now()).unwrap();
        new.created_at = now() + chrono::Duration::seconds(1);
        let r2 = ring(&[retired, new.clone()]);
        assert_eq!(r2.active_kid(), new.kid);
        assert!(r2.verify(&tok).is_ok());
        assert_eq!(r2.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn api_keys_have_a_recognisable_shape() {
        let (key, prefix) = new_api_key();
        assert_eq!(api_key_prefix(&key), Some(prefix.as_str()));
        assert!(api_key_prefix("lgv_short_x").is_none());
        assert!(secrets_equal(&hash_secret(&key), &hash_secret(&key)));
        assert!(!secrets_equal(&hash_secret(&key), &hash_secret("other")));
    }
}
