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
            // Statement journals and sorts in memory, never in short-lived files.
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(10));
        // Checkpoints run beside the writer (see `spawn_checkpointer`); the writer's own
        // automatic checkpoint is only a backstop against an unbounded WAL.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(cfg.acquire_timeout.max(Duration::from_secs(30)))
            .connect_with(
                opts.clone()
                    .pragma("cache_size", WRITER_CACHE_KIB.to_string())
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
                    .pragma(
                        "journal_size_limit",
                        (WRITER_CHECKPOINT_PAGES * 4096).to_string(),
                    ),
            )
            .await
            .map_err(db_err)?;
        let read = SqlitePoolOptions::new()
            .max_connections(cfg.max_connections.clamp(1, 64))
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(opts.clone().read_only(true))
            .await
            .map_err(db_err)?;
        // One process owns an embedded database, so local invalidation is complete.
        let users = Arc::new(UserCache::new(
            !cfg.user_cache_ttl.is_zero(),
            cfg.user_cache_ttl,
        ));
        if !url.contains(":memory:") && !url.contains("mode=memory") {
            let checkpoint = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.busy_timeout(CHECKPOINT_BUSY))
                .await
                .map_err(db_err)?;
            spawn_checkpointer(checkpoint, Arc::downgrade(&users));
        }
        Ok(Self {
            read,
            write,
            users,
            partitions: Default::default(),
            events: Default::default(),
            tree_nodes: Default::default(),
        })
    }

    pub async fn migrate(&self) -> Result<(), CoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.write)
            .await
            .map_err(|e| CoreError::Unavailable(format!("migration failed: {e}")))?;
        backfill_trees(&self.write).await
    }
}

/// The writer's page cache, in KiB as SQLite's negative `cache_size` means (64 MiB; the
/// default is 2 MiB): ingest touches the index pages of every series and rollup it writes,
/// and every miss is a read from the file.
const WRITER_CACHE_KIB: i64 = -65_536;

/// WAL pages after which the writer checkpoints by itself (64 MiB of 4 KiB pages), when the
/// checkpointer has fallen behind.
const WRITER_CHECKPOINT_PAGES: u32 = 16_384;
/// How often the checkpointer copies the WAL into the database file. A commit that runs
/// while a checkpoint copies and syncs stalls for about as long, and that grows with what
/// the checkpoint copies: at 500 ms (about 40 MB of WAL at 50,000 points/s) commits of 1,000
/// points took up to 70 ms at p99, at 100 ms 33 ms (BENCHMARKS.md, metrics).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// WAL pages after which the checkpointer also restarts the WAL (16 MiB of 4 KiB pages).
const RESTART_PAGES: i64 = 4_096;
/// How long a `RESTART` checkpoint waits for readers to leave the WAL. The writer is held
/// meanwhile, and SQLite's busy handler sleeps in steps of up to 100 ms, so a long wait here
/// stalls every ingest queued behind the writer (it was 100 ms: commits of 1,000 points then
/// took up to 140 ms at the moment of a restart). Past it the checkpoint ends as a passive
/// one and the next tick tries again.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(10);

/// Copies committed WAL frames into the database file from a connection of its own, so that
/// the single writer never stops to do it (SQLite's automatic checkpoint runs inside the
/// commit that crosses the threshold, and its writes and `fsync` stall every writer queued
/// behind it). `PASSIVE` never blocks the writer or readers. Under continuous writes a
/// passive checkpoint seldom finds the WAL fully copied at the moment a writer starts, so the
/// WAL would only grow; past [`RESTART_PAGES`] a `RESTART` checkpoint, right after a passive
/// one has copied almost everything, holds the writer only to copy the rest and rewind the
/// WAL (its connection waits at most [`CHECKPOINT_BUSY`] for readers, then gives up until
/// the next tick).
/// Ends when the store is dropped.
fn spawn_checkpointer(pool: sqlx::SqlitePool, alive: std::sync::Weak<UserCache>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 {
                pool.close().await;
                return;
            }
            let started = std::time::Instant::now();
            let passive: Result<(i64, i64, i64), _> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&pool)
                    .await;
            if let Ok((_, log, copied)) = &passive {
                tracing::debug!(
                    wal_pages = log,
                    copied,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "SQLite passive checkpoint"
                );
            }
            let restart = match &passive {
                Ok((_, log, _)) => *log >= RESTART_PAGES,
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite checkpoint failed");
                    false
                }
            };
            if restart {
                let started = std::time::Instant::now();
                let r: Result<(i64, i64, i64), _> =
                    sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
                        .fetch_one(&pool)
                        .await;
                tracing::debug!(
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "SQLite restart checkpoint"
                );
                if let Err(e) = r {
                    tracing::warn!(error = %e, "SQLite checkpoint failed");
                }
            }
        }
    });
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

/// Rows per multi-row INSERT (SQLite allows 32,766 parameters; 23 per entry).
const AUDIT_INSERT_CHUNK: usize = 1_000;

async fn insert_entries(
    tx: &mut sqlx::Transaction<'_, Db>,
    entries: &[llmgov_core::audit::AuditEntry],
) -> Result<(), sqlx::Error> {
    use llmgov_core::audit::ENTRY_FORMAT_VERSION;
    for chunk in entries.chunks(AUDIT_INSERT_CHUNK) {
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO audit_log (workspace_id, sequence, id, format_version, timestamp, event_type, event_category, \
             actor_id, actor_type, action, resource_type, resource_id, status, request_id, session_id, details, \
             before_state, after_state, personal, pii_salt, pii_digest, prev_hash, entry_hash) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.workspace_id.0)
                .push_bind(e.sequence)
                .push_bind(e.id.0)
                .push_bind(ENTRY_FORMAT_VERSION as i16)
                .push_bind(e.timestamp)
                .push_bind(e.event_type.clone())
                .push_bind(e.event_category.clone())
                .push_bind(e.actor_id.map(|a| a.0))
                .push_bind(e.actor_type.clone())
                .push_bind(e.action.clone())
                .push_bind(e.resource_type.clone())
                .push_bind(e.resource_id.clone())
                .push_bind(e.status.clone())
                .push_bind(e.request_id.clone())
                .push_bind(e.session_id.clone())
                .push_bind(e.details.clone())
                .push_bind(e.before_state.clone())
                .push_bind(e.after_state.clone())
                .push_bind(e.personal.clone())
                .push_bind(e.pii_salt.clone())
                .push_bind(e.pii_digest.clone())
                .push_bind(e.prev_hash.clone())
                .push_bind(e.entry_hash.clone());
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_nodes(
    tx: &mut sqlx::Transaction<'_, Db>,
    ws: llmgov_core::ids::WorkspaceId,
    nodes: &[(llmgov_core::merkle::NodeId, llmgov_core::merkle::Hash)],
) -> Result<(), sqlx::Error> {
    for chunk in nodes.chunks(AUDIT_INSERT_CHUNK * 4) {
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO audit_tree_nodes (workspace_id, level, idx, hash) ",
        );
        qb.push_values(chunk, |mut b, (id, hash)| {
            b.push_bind(ws.0)
                .push_bind(id.level as i16)
                .push_bind(id.index as i64)
                .push_bind(hash.to_vec());
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Tree nodes by id: one primary-key lookup per node (`UNION ALL`); an `OR` chain makes
/// SQLite scan.
async fn select_nodes(
    pool: &sqlx::Pool<Db>,
    ws: llmgov_core::ids::WorkspaceId,
    ids: &[llmgov_core::merkle::NodeId],
) -> Result<Vec<DbRow>, sqlx::Error> {
    let mut qb = sqlx::QueryBuilder::<Db>::new("");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        qb.push("SELECT level, idx, hash FROM audit_tree_nodes WHERE workspace_id = ")
            .push_bind(ws.0)
            .push(" AND level = ")
            .push_bind(id.level as i16)
            .push(" AND idx = ")
            .push_bind(id.index as i64);
    }
    qb.build().fetch_all(pool).await
}

/// Claims due outbox messages (SQLite serialises writers, so no row locks are needed).
const OUTBOX_CLAIM: &str = "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2 WHERE id IN \
    (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
    RETURNING *";

/// Raw metric points per multi-row INSERT (3 parameters each).
const POINT_INSERT_CHUNK: usize = 10_000;

async fn insert_points(
    tx: &mut sqlx::Transaction<'_, Db>,
    points: &[llmgov_core::metrics::store::RawPoint],
) -> Result<(), sqlx::Error> {
    for chunk in points.chunks(POINT_INSERT_CHUNK) {
        let mut qb =
            sqlx::QueryBuilder::<Db>::new("INSERT INTO metric_points (series_id, ts, value) ");
        qb.push_values(chunk, |mut b, p| {
            b.push_bind(p.series_id).push_bind(p.ts).push_bind(p.value);
        });
        qb.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Rollup rows: (series, resolution code, bucket, stats).
async fn insert_rollups(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &[(i64, i16, i64, &llmgov_core::metrics::rollup::Stats)],
    compacted: bool,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(3_000) {
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO metric_rollups (series_id, resolution, bucket, value_count, value_sum, value_min, value_max, value_m2, sketch, compacted) ",
        );
        qb.push_values(chunk, |mut b, (series, res, bucket, s)| {
            b.push_bind(*series)
                .push_bind(*res)
                .push_bind(*bucket)
                .push_bind(s.count as i64)
                .push_bind(s.sum)
                .push_bind(s.min)
                .push_bind(s.max)
                .push_bind(s.m2)
                .push_bind(s.sketch.encode())
                .push_bind(compacted);
        });
        qb.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Deletes and returns the oldest `limit` rows of the rollup journal.
async fn take_rollup_journal(
    tx: &mut sqlx::Transaction<'_, Db>,
    limit: i64,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM metric_rollup_journal WHERE id IN \
         (SELECT id FROM metric_rollup_journal ORDER BY id LIMIT $1) RETURNING deltas",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// A read transaction: in WAL mode, its statements all see the snapshot of its first read.
async fn begin_snapshot(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

/// SQLite keeps points in one table: nothing to create.
async fn ensure_point_partitions(
    _store: &SqliteStore,
    _days: &std::collections::BTreeSet<i64>,
) -> llmgov_core::Result<()> {
    Ok(())
}

/// Deletes raw points before `before`; returns (points, partitions dropped).
async fn prune_raw_points(store: &SqliteStore, before: i64) -> llmgov_core::Result<(u64, u64)> {
    // Series by series through (series_id, ts): there is no index on time alone.
    let r = sqlx::query(
        "DELETE FROM metric_points WHERE series_id IN (SELECT id FROM metric_series) AND ts < $1",
    )
    .bind(before)
    .execute(&store.write)
    .await
    .map_err(db_err)?;
    Ok((r.rows_affected(), 0))
}

/// Nothing to lock before an event insert: SQLite serialises writing transactions, so ids
/// become visible in increasing order by themselves.
async fn event_lock(_tx: &mut sqlx::Transaction<'_, Db>) -> llmgov_core::Result<()> {
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
