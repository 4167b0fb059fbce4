//! Identity records and the newtypes that validate their fields at the boundary.

use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::access::{PermissionSet, PredefinedRole};
use crate::ids::{ApiKeyId, RoleId, UserId, WorkspaceId};
use crate::time::Timestamp;

fn check_text(field: &str, s: &str, max: usize) -> Result<(), CoreError> {
    if s.chars().count() > max {
        return Err(CoreError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(CoreError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// A lower-cased, syntactically plausible e-mail address of at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let s = s.trim().to_lowercase();
        check_text("email", &s, 254)?;
        let bad = || CoreError::invalid("email", "email must look like name@domain.tld");
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let ok_local =
            !local.is_empty() && local.len() <= 64 && !local.contains(char::is_whitespace);
        let ok_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if !ok_local || !ok_domain || local.contains('@') {
            return Err(bad());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 3–64 characters of letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let n = s.chars().count();
        if !(3..=64).contains(&n)
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(CoreError::invalid(
                "username",
                "username must be 3-64 letters, digits, '.', '_' or '-'",
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the minimum policy: 12–256 characters, not all one class of
/// character, and not one of the commonest passwords.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

const COMMON_PASSWORDS: &[&str] = &[
    "password1234",
    "123456789012",
    "qwertyuiop12",
    "passwordpassword",
    "administrator",
    "letmeinletmein",
    "changeme1234",
    "welcome12345",
    "iloveyou1234",
    "password123!",
];

impl Password {
    pub const MIN_LEN: usize = 12;

    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let n = s.chars().count();
        if n < Self::MIN_LEN {
            return Err(CoreError::invalid(
                "password",
                format!("password must have at least {} characters", Self::MIN_LEN),
            ));
        }
        if n > 256 {
            return Err(CoreError::invalid(
                "password",
                "password must have at most 256 characters",
            ));
        }
        let classes = [
            s.chars().any(|c| c.is_lowercase()),
            s.chars().any(|c| c.is_uppercase()),
            s.chars().any(|c| c.is_numeric()),
            s.chars().any(|c| !c.is_alphanumeric()),
        ];
        if classes.iter().filter(|b| **b).count() < 2 {
            return Err(CoreError::invalid(
                "password",
                "password must mix at least two of: lower case, upper case, digits, symbols",
            ));
        }
        if COMMON_PASSWORDS.contains(&s.to_lowercase().as_str()) {
            return Err(CoreError::invalid("password", "password is too common"));
        }
        Ok(Self(s.to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Free-text name fields (workspace, role, key names): 1–128 characters, no control chars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &str, s: &str) -> Result<Self, CoreError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(CoreError::invalid(
                field,
                format!("{field} must not be empty"),
            ));
        }
        check_text(field, t, 128)?;
        Ok(Self(t.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Optional profile text (first/last name, description).
pub fn optional_text(
    field: &str,
    s: Option<&str>,
    max: usize,
) -> Result<Option<String>, CoreError> {
    match s {
        None => Ok(None),
        Some(s) => {
            check_text(field, s, max)?;
            Ok(Some(s.to_string()))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err(CoreError::invalid(
                "status",
                "status must be active or disabled",
            )),
        }
    }
}

/// A user as seen from one workspace (its roles are that workspace's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub status: UserStatus,
    pub roles: Vec<String>,
    pub metadata: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
}

/// What the store needs to insert a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub password_hash: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub metadata: serde_json::Value,
    pub roles: Vec<String>,
    pub created_at: Timestamp,
}

/// What login needs: found by e-mail across workspaces.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: UserId,
    pub email: String,
    pub password_hash: String,
    pub status: UserStatus,
    /// Workspaces the user belongs to, oldest membership first.
    pub workspaces: Vec<WorkspaceId>,
}

/// A custom role of one workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomRole {
    pub id: RoleId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: Option<String>,
    pub permissions: PermissionSet,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A role as listed: predefined (code) or custom (database).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleView {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub predefined: bool,
}

impl From<&PredefinedRole> for RoleView {
    fn from(r: &PredefinedRole) -> Self {
        Self {
            id: r.id,
            name: r.name.into(),
            description: Some(r.description.into()),
            permissions: r.permissions().to_strings(),
            predefined: true,
        }
    }
}

impl From<CustomRole> for RoleView {
    fn from(r: CustomRole) -> Self {
        Self {
            id: r.id.0,
            name: r.name,
            description: r.description,
            permissions: r.permissions.to_strings(),
            predefined: false,
        }
    }
}

/// A role name: lower-case letters, digits and `_`, 2–64 characters.
pub fn parse_role_name(s: &str) -> Result<String, CoreError> {
    let n = s.len();
    if !(2..=64).contains(&n)
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(CoreError::invalid(
            "name",
            "role name must be 2-64 lower-case letters, digits or '_'",
        ));
    }
    Ok(s.to_string())
}

/// A stored API key. The secret itself is never stored: only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub name: String,
    /// The visible, non-secret start of the key, e.g. `lgv_3k9d2m1x`.
    pub prefix: String,
    pub scopes: PermissionSet,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    #[serde(skip)]
    pub key_hash: Vec<u8>,
}

impl ApiKey {
    pub fn status(&self, now: Timestamp) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// A refresh token row. Tokens of one login form a family; reusing a spent token revokes
/// the whole family (the stolen-token signal of OAuth 2.0 Security BCP §4.14).
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub id: uuid::Uuid,
    pub family_id: uuid::Uuid,
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub token_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A JWT signing key. Private keys are PKCS#8 DER.
#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: String,
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: Timestamp,
    /// Set when a newer key took over; the key still verifies tokens until they expire.
    pub retired_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "", "a", "a@b", "@b.c", "a@.c", "a@b.", "a b@c.d", "a@b@c.d", "a@b_c.d", "a\n@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@b.co", "a".repeat(300))).is_err());
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("short1A").is_err());
        assert!(Password::parse("alllowercaseletters").is_err());
        assert!(
            Password::parse("Password1234").is_err() || Password::parse("password1234").is_err()
        );
        assert!(Password::parse("correct horse battery").is_ok());
        assert!(Password::parse(&"aA1".repeat(100)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("Secret-password-1").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn usernames_and_role_names() {
        assert!(Username::parse("ada.l").is_ok());
        for bad in ["ab", "a b c", "ada'; --", &"x".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_role_name("ml_reviewer").is_ok());
        assert!(parse_role_name("Admin").is_err());
    }
}
