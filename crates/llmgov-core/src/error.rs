//! Domain outcomes. Each variant maps to one stable error code and HTTP status in the
//! server crate; storage implementations translate database errors into these at their edge.

use std::collections::BTreeMap;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CoreError {
    /// Input that does not parse or breaks a rule; `field` names the offending input.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The resource does not exist *in the caller's workspace* (other workspaces look the same).
    #[error("{resource} not found")]
    NotFound { resource: &'static str },
    /// Well-formed input the domain cannot act on (a policy that does not compile, an
    /// evaluation over its limits), with its own stable code and details.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        details: serde_json::Map<String, serde_json::Value>,
    },
    /// A uniqueness rule or a concurrent change prevented the operation.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Credentials missing, wrong, expired or revoked. The message never says which.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but the permission is missing.
    #[error("missing permission {permission}")]
    Forbidden { permission: String },
    /// Too many attempts; retry after the given number of seconds.
    #[error("too many attempts")]
    Throttled { retry_after_secs: u64 },
    /// The audit entry could not be written, so the change was not made (audit fails closed).
    #[error("audit trail unavailable")]
    AuditUnavailable,
    /// A backing component (database, ...) is unreachable or failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data failed verification (a hash mismatch, a ciphertext that does not
    /// decrypt): it is reported, never served. The text names the object, not its content.
    #[error("integrity error: {0}")]
    Integrity(String),
    /// A bug or unexpected state. The text is logged, never shown to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn not_found(resource: &'static str) -> Self {
        CoreError::NotFound { resource }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        CoreError::Internal(e.to_string())
    }

    /// Machine-readable details for the error body.
    pub fn details(&self) -> BTreeMap<String, serde_json::Value> {
        let mut d = BTreeMap::new();
        match self {
            CoreError::Invalid { field, .. } => {
                d.insert("field".into(), field.clone().into());
            }
            CoreError::Forbidden { permission } => {
                d.insert("required_permission".into(), permission.clone().into());
            }
            CoreError::Throttled { retry_after_secs } => {
                d.insert("retry_after_seconds".into(), (*retry_after_secs).into());
            }
            CoreError::Unprocessable { details, .. } => {
                d.extend(details.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            _ => {}
        }
        d
    }
}
