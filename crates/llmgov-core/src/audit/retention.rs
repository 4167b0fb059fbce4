//! Retention of the audit trail (default seven years, seed 000 §4.1.3). Entries older than
//! the retention period are deleted, but only up to the latest signed checkpoint: the kept
//! entries keep chaining from a recorded anchor, the tree nodes stay (no personal data in
//! them), so every kept entry remains provable against every checkpoint.

use std::time::Duration;

use serde_json::json;

use super::{AuditDraft, RequestContext};
use crate::Result;
use crate::ids::WorkspaceId;
use crate::store::Store;

/// Prunes `ws`'s entries older than `retention`, up to its latest checkpoint. Returns the
/// number of entries deleted.
pub async fn prune_expired(store: &dyn Store, ws: WorkspaceId, retention: Duration) -> Result<u64> {
    let Some(cp) = store.latest_checkpoint(ws).await? else {
        return Ok(0);
    };
    let cutoff =
        crate::time::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let first_kept = store
        .first_audit_sequence_since(ws, cutoff)
        .await?
        .unwrap_or(i64::MAX)
        .min(cp.tree_size as i64);
    let (floor, _) = store.audit_floor(ws).await?;
    if first_kept <= floor {
        return Ok(0);
    }
    let audit = AuditDraft::new(ws, &RequestContext::system(), "audit.prune", "retention")
        .resource("audit_log", ws)
        .details(json!({
            "pruned_before": first_kept,
            "retention_days": retention.as_secs() / 86_400,
            "checkpoint": {"tree_size": cp.tree_size, "root_hash": cp.root_hash, "key_id": cp.key_id},
        }));
    store.prune_audit(ws, first_kept, audit).await
}

/// Prunes every workspace's log.
pub async fn prune_all(store: &dyn Store, retention: Duration) -> Result<u64> {
    let mut n = 0;
    for (ws, _, _) in store.audit_heads().await? {
        n += prune_expired(store, ws, retention).await?;
    }
    Ok(n)
}
