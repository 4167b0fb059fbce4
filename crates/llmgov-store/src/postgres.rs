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

/// Bulk insert as arrays (`UNNEST`): 23 parameters per batch instead of 23 per entry, which
/// PostgreSQL binds and plans far faster.
async fn insert_entries(
    tx: &mut sqlx::Transaction<'_, Db>,
    entries: &[llmgov_core::audit::AuditEntry],
) -> Result<(), sqlx::Error> {
    use llmgov_core::audit::ENTRY_FORMAT_VERSION;
    if entries.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&llmgov_core::audit::AuditEntry) -> Option<String>| {
        entries.iter().map(f).collect::<Vec<Option<String>>>()
    };
    sqlx::query(
        "INSERT INTO audit_log (workspace_id, sequence, id, format_version, timestamp, event_type, event_category, \
         actor_id, actor_type, action, resource_type, resource_id, status, request_id, session_id, details, \
         before_state, after_state, personal, pii_salt, pii_digest, prev_hash, entry_hash) \
         SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::uuid[], $4::int2[], $5::timestamptz[], $6::text[], $7::text[], \
         $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], \
         $17::text[], $18::text[], $19::text[], $20::bytea[], $21::bytea[], $22::bytea[], $23::bytea[])",
    )
    .bind(entries.iter().map(|e| e.workspace_id.0).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.sequence).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.id.0).collect::<Vec<_>>())
    .bind(vec![ENTRY_FORMAT_VERSION as i16; entries.len()])
    .bind(entries.iter().map(|e| e.timestamp).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.event_type.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.event_category.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.actor_id.map(|a| a.0)).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.actor_type.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.action.clone()).collect::<Vec<_>>())
    .bind(col(|e| e.resource_type.clone()))
    .bind(col(|e| e.resource_id.clone()))
    .bind(entries.iter().map(|e| e.status.clone()).collect::<Vec<_>>())
    .bind(col(|e| e.request_id.clone()))
    .bind(col(|e| e.session_id.clone()))
    .bind(entries.iter().map(|e| e.details.clone()).collect::<Vec<_>>())
    .bind(col(|e| e.before_state.clone()))
    .bind(col(|e| e.after_state.clone()))
    .bind(col(|e| e.personal.clone()))
    .bind(entries.iter().map(|e| e.pii_salt.clone()).collect::<Vec<Option<Vec<u8>>>>())
    .bind(entries.iter().map(|e| e.pii_digest.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.prev_hash.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.entry_hash.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_nodes(
    tx: &mut sqlx::Transaction<'_, Db>,
    ws: llmgov_core::ids::WorkspaceId,
    nodes: &[(llmgov_core::merkle::NodeId, llmgov_core::merkle::Hash)],
) -> Result<(), sqlx::Error> {
    if nodes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO audit_tree_nodes (workspace_id, level, idx, hash) \
         SELECT $1, * FROM UNNEST($2::int2[], $3::int8[], $4::bytea[])",
    )
    .bind(ws.0)
    .bind(
        nodes
            .iter()
            .map(|(id, _)| id.level as i16)
            .collect::<Vec<_>>(),
    )
    .bind(
        nodes
            .iter()
            .map(|(id, _)| id.index as i64)
            .collect::<Vec<_>>(),
    )
    .bind(nodes.iter().map(|(_, h)| h.to_vec()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Tree nodes by id in one prepared statement: the lateral join makes each id a
/// primary-key lookup whatever the planner estimates for the arrays.
async fn select_nodes(
    pool: &sqlx::Pool<Db>,
    ws: llmgov_core::ids::WorkspaceId,
    ids: &[llmgov_core::merkle::NodeId],
) -> Result<Vec<DbRow>, sqlx::Error> {
    sqlx::query(
        "SELECT q.level, q.idx, n.hash FROM UNNEST($2::int2[], $3::int8[]) AS q(level, idx) \
         CROSS JOIN LATERAL (SELECT hash FROM audit_tree_nodes t \
         WHERE t.workspace_id = $1 AND t.level = q.level AND t.idx = q.idx) n",
    )
    .bind(ws.0)
    .bind(ids.iter().map(|id| id.level as i16).collect::<Vec<_>>())
    .bind(ids.iter().map(|id| id.index as i64).collect::<Vec<_>>())
    .fetch_all(pool)
    .await
}

/// Claims due outbox messages; `SKIP LOCKED` lets several instances dispatch at once
/// without taking the same message.
const OUTBOX_CLAIM: &str = "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2 WHERE id IN \
    (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
    RETURNING *";

include!("sql/common.rs");
include!("sql/workspaces.rs");
include!("sql/users.rs");
include!("sql/roles.rs");
include!("sql/sessions.rs");
include!("sql/api_keys.rs");
include!("sql/signing_keys.rs");
include!("sql/idempotency.rs");
include!("sql/audit.rs");
include!("sql/policies.rs");
include!("sql/outbox.rs");
include!("sql/facts.rs");
