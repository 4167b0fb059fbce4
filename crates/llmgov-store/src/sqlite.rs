//! SQLite backend: the embedded default (a file in the data directory).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use std::sync::Arc;

use crate::cache::UserCache;
use crate::{PoolConfig, SqliteStore, db_err};
use llmgov_core::CoreError;

type Db = sqlx::Sqlite;
const BACKEND: &str = "sqlite";
const ROLE_AGG: &str = "group_concat(r.role_name, ',')";

impl SqliteStore {
    pub async fn connect(url: &str, cfg: &PoolConfig) -> Result<Self, CoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| CoreError::invalid("database.url", e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(cfg.acquire_timeout.max(Duration::from_secs(30)))
            .connect_with(opts.clone())
            .await
            .map_err(db_err)?;
        let read = SqlitePoolOptions::new()
            .max_connections(cfg.max_connections.clamp(1, 64))
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(opts.read_only(true))
            .await
            .map_err(db_err)?;
        // One process owns an embedded database, so local invalidation is complete.
        let users = Arc::new(UserCache::new(
            !cfg.user_cache_ttl.is_zero(),
            cfg.user_cache_ttl,
        ));
        Ok(Self { read, write, users })
    }

    pub async fn migrate(&self) -> Result<(), CoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.write)
            .await
            .map_err(|e| CoreError::Unavailable(format!("migration failed: {e}")))?;
        backfill_trees(&self.write).await
    }
}

/// Cross-process invalidation is not needed for an embedded database.
async fn notify_invalidation(
    _tx: &mut sqlx::Transaction<'_, Db>,
    _payload: &str,
) -> llmgov_core::Result<()> {
    Ok(())
}

/// FTS5 match of every word, each quoted so user input is never FTS5 query syntax.
fn push_text_search(qb: &mut sqlx::QueryBuilder<Db>, text: &str) {
    let terms: Vec<String> = text
        .split_whitespace()
        .take(16)
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    qb.push(" AND rowid IN (SELECT rowid FROM audit_fts WHERE audit_fts MATCH ")
        .push_bind(terms.join(" "))
        .push(")");
}

include!("sql/common.rs");
include!("sql/workspaces.rs");
include!("sql/users.rs");
include!("sql/roles.rs");
include!("sql/sessions.rs");
include!("sql/api_keys.rs");
include!("sql/signing_keys.rs");
include!("sql/idempotency.rs");
include!("sql/audit.rs");
