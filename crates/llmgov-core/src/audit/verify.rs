//! Verification of a workspace's log as stored: every entry's hash, the chain between
//! entries, the gap-free sequence, and the log's end against its head row (so a truncated
//! tail is caught too).

use serde::Serialize;

use super::{ChainBreak, ChainVerifier};
use crate::Result;
use crate::ids::WorkspaceId;
use crate::store::Store;

const BATCH: i64 = 5_000;

/// Outcome of verifying one workspace's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogReport {
    pub workspace_id: WorkspaceId,
    pub valid: bool,
    /// Entries that verified, from sequence 0.
    pub verified_entries: i64,
    /// Hex hash of the last verified entry.
    pub head_hash: String,
    /// Sequence of the first entry that is altered, missing, inserted or out of place.
    pub first_invalid_sequence: Option<i64>,
    pub reason: Option<String>,
}

fn describe(b: &ChainBreak) -> String {
    match b {
        ChainBreak::Sequence { expected, found } => {
            format!("entry {expected} is missing or out of place (found sequence {found})")
        }
        ChainBreak::PrevHash { sequence } => {
            format!("entry {sequence} does not follow the entry before it")
        }
        ChainBreak::Content { sequence } => format!("entry {sequence} was altered"),
        ChainBreak::Personal { sequence } => {
            format!("personal data of entry {sequence} was altered")
        }
    }
}

/// Verifies the log of `ws` whose head says it has `expected_len` entries ending in
/// `head_hash`.
pub async fn verify_log(
    store: &dyn Store,
    ws: WorkspaceId,
    expected_len: i64,
    head_hash: &[u8],
) -> Result<LogReport> {
    // Entries below the retention floor were deleted; the kept part chains from its anchor.
    let (floor, anchor) = store.audit_floor(ws).await?;
    let mut v = match anchor.map(<[u8; 32]>::try_from) {
        Some(Ok(a)) if floor > 0 => ChainVerifier::starting_at(floor, a),
        _ if floor == 0 => ChainVerifier::default(),
        _ => {
            return Ok(LogReport {
                workspace_id: ws,
                valid: false,
                verified_entries: 0,
                head_hash: String::new(),
                first_invalid_sequence: Some(floor),
                reason: Some("the retention anchor is missing".into()),
            });
        }
    };
    let mut last_hash: Vec<u8> = Vec::new();
    let fail = |v: &ChainVerifier, last: &[u8], seq: i64, reason: String| LogReport {
        workspace_id: ws,
        valid: false,
        verified_entries: v.verified(),
        head_hash: crate::hex::encode(last),
        first_invalid_sequence: Some(seq),
        reason: Some(reason),
    };
    loop {
        let batch = store.audit_range(ws, v.verified(), BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            if let Err(b) = v.push(e) {
                return Ok(fail(&v, &last_hash, b.sequence(), describe(&b)));
            }
            last_hash = e.entry_hash.clone();
        }
        if (batch.len() as i64) < BATCH {
            break;
        }
    }
    if v.verified() < expected_len {
        let reason = format!(
            "the log ends after {} entries but its head records {expected_len}",
            v.verified()
        );
        return Ok(fail(&v, &last_hash, v.verified(), reason));
    }
    if v.verified() > expected_len {
        let reason = format!("the log has entries beyond the {expected_len} its head records");
        return Ok(fail(&v, &last_hash, expected_len, reason));
    }
    if expected_len > 0 && last_hash != head_hash {
        let reason = "the log's last entry does not match its head record".to_string();
        return Ok(fail(&v, &last_hash, expected_len - 1, reason));
    }
    Ok(LogReport {
        workspace_id: ws,
        valid: true,
        verified_entries: v.verified(),
        head_hash: crate::hex::encode(&last_hash),
        first_invalid_sequence: None,
        reason: None,
    })
}

/// Verifies one workspace's log, reading its head first.
pub async fn verify_workspace(store: &dyn Store, ws: WorkspaceId) -> Result<LogReport> {
    let (len, head) = store.audit_head(ws).await?.unwrap_or((0, vec![0; 32]));
    verify_log(store, ws, len, &head).await
}

/// Verifies every workspace's log.
pub async fn verify_all(store: &dyn Store) -> Result<Vec<LogReport>> {
    let mut out = Vec::new();
    for (ws, len, head) in store.audit_heads().await? {
        out.push(verify_log(store, ws, len, &head).await?);
    }
    Ok(out)
}
