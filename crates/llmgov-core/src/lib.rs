//! Domain layer of llmgov: identity, access control and the audit write path.
//!
//! This crate holds the rules and the storage traits. It knows nothing of HTTP or SQL:
//! the server crate speaks HTTP and the store crate speaks SQL. Every mutation is a
//! method of a service here that hands the storage layer an [`audit::AuditDraft`], so a
//! change without its audit entry cannot be expressed.

/// A string enum parsed at the boundary: `as_str`, `parse` (an `Invalid` error naming the
/// field and the accepted values), `ALL` and `Display`.
macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> Result<Self, $crate::CoreError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::CoreError::invalid(
                        $field,
                        format!(concat!($field, " must be one of: {}"),
                            [$($text),+].join(", ")),
                    )),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod access;
pub mod audit;
pub mod error;
pub mod events;
pub mod hex;
pub mod identity;
pub mod ids;
pub mod merkle;
pub mod metrics;
pub mod outbox;
pub mod page;
pub mod pii;
pub mod policy;
pub mod store;
pub mod time;
pub mod vault;

pub use error::{CoreError, Result};
