//! Data Vault: datasets stored as encrypted, content-addressed blocks of records, versioned
//! like git.
//!
//! - [`model`]: datasets, commits, refs.
//! - [`jsonl`]: records from a byte stream.
//! - [`block`], [`manifest`], [`object`]: the storage formats (versioned, documented there).
//! - [`keys`]: envelope encryption (a DEK per dataset wrapped by a provider's KEK).
//! - [`ingest`]: writing a version with record-level deduplication against its parent.
//! - [`service`], [`push`], [`read`], [`refs`]: the operations.
//! - [`store`]: the metadata and object storage seams.

pub mod block;
mod convert;
pub mod csv;
pub mod diff;
pub mod filter;
pub mod ingest;
pub mod jsonl;
pub mod keys;
pub mod lineage;
pub mod maintenance;
pub mod manifest;
pub mod merge;
pub mod merge3;
pub mod model;
pub mod object;
pub mod parquet;
pub mod push;
pub mod read;
pub mod refs;
pub mod rotation;
pub mod service;
pub mod sources;
pub mod store;
pub mod upload;

pub use service::{VaultConfig, VaultService};
