//! SQLite and PostgreSQL implementations of the `llmgov-core` storage traits.
//!
//! Both backends compile the same SQL sources (`src/sql/*.rs`, included once per backend
//! with `Db` bound to the backend's sqlx database type): the SQL we write is the common
//! dialect (`$n` placeholders, `RETURNING`, `ON CONFLICT`), and the few places that differ
//! read a per-backend constant. Each backend owns its embedded, append-only migrations.
//!
//! Database errors become domain errors here, at the storage edge: unique violations are
//! conflicts with a stable code, connection failures are `Unavailable`, and any failure
//! while appending the audit entry is `AuditUnavailable` (and rolls the change back).

use std::sync::Arc;
use std::time::Duration;

use llmgov_core::CoreError;
use llmgov_core::store::Store;

pub mod cache;
mod errors;
pub mod nats;
pub mod objects;
pub mod pkcs11;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use errors::db_err;

/// Connection settings shared by both backends.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Upper bound on how long a cached user may be served (zero disables the cache).
    pub user_cache_ttl: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            user_cache_ttl: Duration::from_secs(5),
        }
    }
}

/// A store of either backend. `sqlx::Pool`s are cheap handles; `read` and `write` are the
/// same pool on PostgreSQL. On SQLite all writes go through one connection, which avoids
/// `SQLITE_BUSY` on lock upgrades while WAL lets reads run beside it.
pub struct SqlStore<DB: sqlx::Database> {
    pub(crate) read: sqlx::Pool<DB>,
    pub(crate) write: sqlx::Pool<DB>,
    pub(crate) users: Arc<cache::UserCache>,
    /// Days whose metric point partition is known to exist (PostgreSQL).
    pub(crate) partitions: Arc<std::sync::Mutex<std::collections::BTreeSet<i64>>>,
    /// Woken after commits that wrote events.
    pub(crate) events: Arc<llmgov_core::outbox::Wakeup>,
    /// Upper audit tree nodes (immutable once stored).
    pub(crate) tree_nodes: Arc<cache::TreeNodeCache>,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// The pool used for writes (tests use it to inspect or tamper with the database).
    pub fn pool(&self) -> &sqlx::Pool<DB> {
        &self.write
    }
}

pub type SqliteStore = SqlStore<sqlx::Sqlite>;
pub type PgStore = SqlStore<sqlx::Postgres>;

/// Which backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, CoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(CoreError::invalid(
                "database.url",
                "database URL must start with sqlite:, postgres:// or postgresql://",
            ))
        }
    }
}

/// Opens the database at `url`, running migrations first when `migrate` is set.
pub async fn open(url: &str, cfg: &PoolConfig, migrate: bool) -> Result<Arc<dyn Store>, CoreError> {
    Ok(match Backend::of_url(url)? {
        Backend::Sqlite => {
            let s = SqliteStore::connect(url, cfg).await?;
            if migrate {
                s.migrate().await?;
            }
            Arc::new(s)
        }
        Backend::Postgres => {
            let s = PgStore::connect(url, cfg).await?;
            if migrate {
                s.migrate().await?;
            }
            Arc::new(s)
        }
    })
}

/// Runs migrations only (the `llmgov migrate` command).
pub async fn migrate(url: &str) -> Result<(), CoreError> {
    open(
        url,
        &PoolConfig {
            max_connections: 2,
            ..Default::default()
        },
        true,
    )
    .await
    .map(|_| ())
}
