//! The Merkle tree over a workspace's log, read from stored nodes: tree heads and proofs at
//! any size up to the current one, in O(log n) node reads.

use crate::ids::WorkspaceId;
use crate::merkle::{self, Hash, NodeId, Span};
use crate::store::Store;
use crate::{CoreError, Result};

/// Current number of leaves (entries) in the workspace's tree.
pub async fn tree_size(store: &dyn Store, ws: WorkspaceId) -> Result<u64> {
    Ok(store
        .audit_head(ws)
        .await?
        .map(|(n, _)| n as u64)
        .unwrap_or(0))
}

async fn span_roots(store: &dyn Store, ws: WorkspaceId, spans: &[Span]) -> Result<Vec<Hash>> {
    let ids = merkle::nodes_for(spans);
    let nodes = store.audit_tree_nodes(ws, &ids).await?;
    if let Some(missing) = ids.iter().find(|id| !nodes.contains_key(id)) {
        return Err(CoreError::internal(format!(
            "audit tree node {missing:?} of {ws} is missing"
        )));
    }
    let node = |id: NodeId| nodes[&id];
    Ok(spans.iter().map(|s| merkle::span_root(*s, &node)).collect())
}

fn check_size(size: u64, current: u64) -> Result<()> {
    if size == 0 || size > current {
        return Err(CoreError::invalid(
            "size",
            format!("size must be between 1 and the tree size {current}"),
        ));
    }
    Ok(())
}

/// Tree head (root hash) of the first `size` entries.
pub async fn root_at(store: &dyn Store, ws: WorkspaceId, size: u64) -> Result<Hash> {
    check_size(size, tree_size(store, ws).await?)?;
    Ok(span_roots(store, ws, &[(0, size)]).await?[0])
}

/// Inclusion proof of entry `index` in the tree of the first `size` entries.
pub async fn inclusion_proof(
    store: &dyn Store,
    ws: WorkspaceId,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>> {
    check_size(size, tree_size(store, ws).await?)?;
    let spans = merkle::inclusion_spans(index, size)
        .ok_or_else(|| CoreError::invalid("entry", "entry must be below size"))?;
    span_roots(store, ws, &spans).await
}

/// Consistency proof between the trees of the first `from` and the first `to` entries.
pub async fn consistency_proof(
    store: &dyn Store,
    ws: WorkspaceId,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>> {
    check_size(to, tree_size(store, ws).await?)?;
    let spans = merkle::consistency_spans(from, to)
        .ok_or_else(|| CoreError::invalid("from", "from must be between 1 and to"))?;
    span_roots(store, ws, &spans).await
}

/// A signed checkpoint of the log as it is now: the latest stored one if the log has not
/// grown since, otherwise a new one (stored, then returned).
pub async fn checkpoint_now(
    store: &dyn Store,
    signer: &crate::audit::checkpoint::CheckpointSigner,
    ws: WorkspaceId,
) -> Result<Option<crate::audit::checkpoint::Checkpoint>> {
    let size = tree_size(store, ws).await?;
    if size == 0 {
        return Ok(None);
    }
    if let Some(cp) = store.latest_checkpoint(ws).await?
        && cp.tree_size >= size
        && cp.key_id == signer.key_id()
    {
        return Ok(Some(cp));
    }
    let root = root_at(store, ws, size).await?;
    store
        .insert_checkpoint(&signer.sign(ws, size, &root, crate::time::now()))
        .await?;
    store.latest_checkpoint(ws).await
}

/// Checkpoints every workspace whose log grew since its last checkpoint.
pub async fn checkpoint_all(
    store: &dyn Store,
    signer: &crate::audit::checkpoint::CheckpointSigner,
) -> Result<usize> {
    let mut n = 0;
    for (ws, _, _) in store.audit_heads().await? {
        if checkpoint_now(store, signer, ws).await?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}
