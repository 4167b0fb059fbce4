//! Typed identifiers. A `UserId` cannot be passed where a `WorkspaceId` is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::CoreError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7), so inserts append to indexes.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Parses an id from a path or body; a malformed value is a 400, not a 404.
            pub fn parse(s: &str) -> Result<Self, CoreError> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| CoreError::invalid($what, concat!($what, " must be a UUID")))
            }
        }
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant. Every resource belongs to exactly one.
    WorkspaceId, "workspace_id");
id_type!(UserId, "user_id");
id_type!(RoleId, "role_id");
id_type!(ApiKeyId, "api_key_id");
id_type!(AuditEntryId, "audit_entry_id");
id_type!(PolicyId, "policy_id");
id_type!(ViolationId, "violation_id");
id_type!(EvaluationId, "evaluation_id");
id_type!(DatasetId, "dataset_id");
