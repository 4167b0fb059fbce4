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
            partitions: Default::default(),
            events: Default::default(),
            tree_nodes: Default::default(),
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

async fn insert_points(
    tx: &mut sqlx::Transaction<'_, Db>,
    points: &[llmgov_core::metrics::store::RawPoint],
) -> Result<(), sqlx::Error> {
    if points.is_empty() {
        return Ok(());
    }
    sqlx::query("INSERT INTO metric_points (series_id, ts, value) SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::float8[])")
        .bind(points.iter().map(|p| p.series_id).collect::<Vec<_>>())
        .bind(points.iter().map(|p| p.ts).collect::<Vec<_>>())
        .bind(points.iter().map(|p| p.value).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Rollup rows: (series, resolution code, bucket, stats).
async fn insert_rollups(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &[(i64, i16, i64, &llmgov_core::metrics::rollup::Stats)],
    compacted: bool,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO metric_rollups (series_id, resolution, bucket, value_count, value_sum, value_min, value_max, value_m2, sketch, compacted) \
         SELECT *, $10 FROM UNNEST($1::int8[], $2::int2[], $3::int8[], $4::int8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::bytea[])",
    )
    .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.count as i64).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.sum).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.min).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.max).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.m2).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.sketch.encode()).collect::<Vec<_>>())
    .bind(compacted)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes and returns the oldest `limit` rows of the rollup journal. Rows another flush
/// holds are skipped, not waited for.
async fn take_rollup_journal(
    tx: &mut sqlx::Transaction<'_, Db>,
    limit: i64,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM metric_rollup_journal WHERE id IN \
         (SELECT id FROM metric_rollup_journal ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING deltas",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// A read-only transaction whose statements all see one snapshot.
async fn begin_snapshot(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Name of the partition of `day` (days since the epoch): `metric_points_pYYYYMMDD`.
fn partition_name(day: i64) -> Option<String> {
    let d = chrono::DateTime::from_timestamp(day * 86_400, 0)?;
    Some(format!("metric_points_p{}", d.format("%Y%m%d")))
}

/// Creates the day partitions of `days` that this process has not seen yet. Several
/// instances may race to create one: whoever loses finds it there.
async fn ensure_point_partitions(
    store: &PgStore,
    days: &std::collections::BTreeSet<i64>,
) -> llmgov_core::Result<()> {
    use llmgov_core::metrics::rollup::DAY;
    let missing: Vec<i64> = {
        let known = store.partitions.lock().unwrap_or_else(|e| e.into_inner());
        days.iter()
            .copied()
            .filter(|d| !known.contains(d))
            .collect()
    };
    for day in missing {
        let name =
            partition_name(day).ok_or_else(|| CoreError::invalid("timestamp", "out of range"))?;
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF metric_points FOR VALUES FROM ({}) TO ({})",
            day * DAY,
            (day + 1) * DAY
        );
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&store.write)
            .await
        {
            let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(&name)
                .fetch_one(&store.write)
                .await
                .map_err(db_err)?;
            if exists.is_none() {
                return Err(db_err(e));
            }
        }
        store
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(day);
    }
    Ok(())
}

/// Drops the day partitions that end at or before `before`; returns (points, partitions).
async fn prune_raw_points(store: &PgStore, before: i64) -> llmgov_core::Result<(u64, u64)> {
    use llmgov_core::metrics::rollup::DAY;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'metric_points'::regclass ORDER BY 1",
    )
    .fetch_all(&store.write)
    .await
    .map_err(db_err)?;
    let (mut points, mut dropped) = (0u64, 0u64);
    for name in names {
        let Some(day) = name
            .strip_prefix("metric_points_p")
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp() / 86_400)
        else {
            continue;
        };
        if (day + 1) * DAY > before {
            continue;
        }
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {name}")))
                .fetch_one(&store.write)
                .await
                .map_err(db_err)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
            .execute(&store.write)
            .await
            .map_err(db_err)?;
        store
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&day);
        points += n as u64;
        dropped += 1;
    }
    Ok((points, dropped))
}

/// Key of the advisory lock that orders event ids by commit.
const EVENT_LOCK: i64 = 0x6c6c_6d67_6576_7473; // "llmgevts"

/// Takes the event lock (held until the transaction ends), so that no transaction can take
/// a higher event id and commit while a lower one is still open: a reader tailing by id then
/// never skips an event. Events must be the last writes of their transaction so that the
/// lock is held only for the commit.
async fn event_lock(tx: &mut sqlx::Transaction<'_, Db>) -> llmgov_core::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_LOCK)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
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
include!("sql/policies.rs");
include!("sql/outbox.rs");
include!("sql/facts.rs");
include!("sql/metrics.rs");
include!("sql/alerts.rs");
include!("sql/events.rs");
include!("sql/vault.rs");
include!("sql/pii.rs");
