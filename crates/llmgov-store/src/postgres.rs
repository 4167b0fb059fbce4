//! PostgreSQL backend: production metadata, audit and (later) metrics.

use sqlx::postgres::PgPoolOptions;

use std::sync::{Arc, Weak};

use sqlx::postgres::PgListener;

use crate::cache::{CHANNEL, UserCache};
use crate::{PgStore, PoolConfig, db_err};
use llmgov_core::CoreError;

type Db = sqlx::Postgres;
const BACKEND: &str = "postgres";
const ROLE_AGG: &str = "string_agg(r.role_name, ',')";

impl PgStore {
    pub async fn connect(url: &str, cfg: &PoolConfig) -> Result<Self, CoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.clamp(1, 512))
            .acquire_timeout(cfg.acquire_timeout)
            .connect(url)
            .await
            .map_err(db_err)?;
        let users = Arc::new(UserCache::new(false, cfg.user_cache_ttl));
        if !cfg.user_cache_ttl.is_zero() {
            spawn_invalidation_listener(pool.clone(), Arc::downgrade(&users));
        }
        Ok(Self {
            read: pool.clone(),
            write: pool,
            users,
        })
    }

    /// Concurrent instances may start together: sqlx takes an advisory lock around migrations.
    pub async fn migrate(&self) -> Result<(), CoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.write)
            .await
            .map_err(|e| CoreError::Unavailable(format!("migration failed: {e}")))?;
        backfill_trees(&self.write).await
    }
}

/// Tells every instance (including this one) to evict, when the transaction commits.
async fn notify_invalidation(
    tx: &mut sqlx::Transaction<'_, Db>,
    payload: &str,
) -> llmgov_core::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Keeps a `LISTEN` connection open for cache invalidations. The cache is enabled only while
/// it is connected, and cleared on every (re)connection. Ends when the store is dropped.
fn spawn_invalidation_listener(pool: sqlx::PgPool, cache: Weak<UserCache>) {
    tokio::spawn(async move {
        loop {
            let Some(c) = cache.upgrade() else { return };
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "user cache disabled: cannot LISTEN for invalidations");
                    c.set_enabled(false);
                    drop(c);
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    continue;
                }
            };
            if listener.listen(CHANNEL).await.is_err() {
                c.set_enabled(false);
                continue;
            }
            c.set_enabled(true);
            drop(c);
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => match cache.upgrade() {
                        Some(c) => c.apply(n.payload()),
                        None => return,
                    },
                    // The connection was lost and re-established: notifications may be missing.
                    Ok(None) => match cache.upgrade() {
                        Some(c) => c.clear(),
                        None => return,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "invalidation listener failed; reconnecting");
                        if let Some(c) = cache.upgrade() {
                            c.set_enabled(false);
                        }
                        break;
                    }
                }
            }
        }
    });
}

/// `plainto_tsquery` reads any input as plain words (no query syntax to inject).
fn push_text_search(qb: &mut sqlx::QueryBuilder<Db>, text: &str) {
    qb.push(" AND search @@ plainto_tsquery('simple', ")
        .push_bind(text.to_string())
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
