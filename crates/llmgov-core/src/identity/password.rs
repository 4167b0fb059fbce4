//! Password hashing with Argon2id (RFC 9106 defaults of the `argon2` crate: 19 MiB, t=2, p=1).
//! Hashing is CPU-bound for tens of milliseconds, so callers run it on a blocking thread.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::CoreError;

use super::Password;

pub fn hash(password: &Password) -> Result<String, CoreError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|h| h.to_string())
        .map_err(CoreError::internal)
}

/// Constant-time verification against a PHC string. A malformed stored hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A valid hash of a random password, verified against when the account does not exist so
/// that a login for an unknown e-mail costs as long as one for a known e-mail.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw = Password::parse(&super::tokens::random_token(24))
            .expect("random token is a valid password");
        hash(&pw).expect("hashing works")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let pw = Password::parse("Correct-horse-battery-9").unwrap();
        let h = hash(&pw).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Correct-horse-battery-9", &h));
        assert!(!verify("Correct-horse-battery-8", &h));
        assert!(!verify("anything", "not a phc string"));
    }
}
