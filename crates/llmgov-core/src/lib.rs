//! Domain layer of llmgov: identity, access control and the audit write path.
//!
//! This crate holds the rules and the storage traits. It knows nothing of HTTP or SQL:
//! the server crate speaks HTTP and the store crate speaks SQL. Every mutation is a
//! method of a service here that hands the storage layer an [`audit::AuditDraft`], so a
//! change without its audit entry cannot be expressed.

pub mod access;
pub mod audit;
pub mod error;
pub mod hex;
pub mod identity;
pub mod ids;
pub mod merkle;
pub mod outbox;
pub mod page;
pub mod policy;
pub mod store;
pub mod time;

pub use error::{CoreError, Result};
