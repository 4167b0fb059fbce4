//! Entity types: Presidio's names where Presidio has them, and custom ones.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Entity types, with Presidio's names where Presidio has them, plus the types of a
/// workspace's custom recognizers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum EntityType {
    PERSON,
    EMAIL_ADDRESS,
    PHONE_NUMBER,
    CREDIT_CARD,
    US_SSN,
    IP_ADDRESS,
    IBAN_CODE,
    CRYPTO,
    STREET_ADDRESS,
    SECRET,
    URL,
    MAC_ADDRESS,
    DATE_OF_BIRTH,
    US_PASSPORT,
    US_DRIVER_LICENSE,
    UK_NHS,
    /// A custom recognizer's type: upper-case letters, digits and `_`.
    Custom(Arc<str>),
}

impl EntityType {
    /// The built-in types.
    pub const ALL: [EntityType; 16] = [
        Self::PERSON,
        Self::EMAIL_ADDRESS,
        Self::PHONE_NUMBER,
        Self::CREDIT_CARD,
        Self::US_SSN,
        Self::IP_ADDRESS,
        Self::IBAN_CODE,
        Self::CRYPTO,
        Self::STREET_ADDRESS,
        Self::SECRET,
        Self::URL,
        Self::MAC_ADDRESS,
        Self::DATE_OF_BIRTH,
        Self::US_PASSPORT,
        Self::US_DRIVER_LICENSE,
        Self::UK_NHS,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::PERSON => "PERSON",
            Self::EMAIL_ADDRESS => "EMAIL_ADDRESS",
            Self::PHONE_NUMBER => "PHONE_NUMBER",
            Self::CREDIT_CARD => "CREDIT_CARD",
            Self::US_SSN => "US_SSN",
            Self::IP_ADDRESS => "IP_ADDRESS",
            Self::IBAN_CODE => "IBAN_CODE",
            Self::CRYPTO => "CRYPTO",
            Self::STREET_ADDRESS => "STREET_ADDRESS",
            Self::SECRET => "SECRET",
            Self::URL => "URL",
            Self::MAC_ADDRESS => "MAC_ADDRESS",
            Self::DATE_OF_BIRTH => "DATE_OF_BIRTH",
            Self::US_PASSPORT => "US_PASSPORT",
            Self::US_DRIVER_LICENSE => "US_DRIVER_LICENSE",
            Self::UK_NHS => "UK_NHS",
            Self::Custom(s) => s,
        }
    }

    /// A built-in type by name, or a custom type when `s` is a valid type name
    /// (`[A-Z][A-Z0-9_]{0,63}`); `None` otherwise.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(t) = Self::ALL.into_iter().find(|t| t.as_str() == s) {
            return Some(t);
        }
        let valid = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        valid.then(|| Self::Custom(s.into()))
    }

    /// A built-in type by name only.
    pub fn builtin(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EntityType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EntityType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EntityType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{}' is not an entity type (upper-case letters, digits and _)",
                s.chars().take(64).collect::<String>()
            ))
        })
    }
}
