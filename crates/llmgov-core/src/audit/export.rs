//! The export format of the audit trail (JSON Lines, one entry per line) and its offline
//! verification, which trusts nothing but a checkpoint and the checkpoint public key.
//!
//! A complete export (sequences 0 to the checkpoint's size − 1) is verified by replaying the
//! hash chain and rebuilding the Merkle tree, whose head must equal the signed checkpoint.
//! A filtered export carries an inclusion proof per entry against the checkpoint. Memory
//! stays bounded: the verifier keeps only the chain state and the tree's frontier.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use serde_json::value::RawValue;

use super::{AuditEntry, ChainVerifier, pii_digest};
use crate::ids::{AuditEntryId, UserId, WorkspaceId};
use crate::merkle::{self, Frontier, Hash};
use crate::time::Timestamp;

/// One exported entry: every field the entry hash covers, plus its hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    pub sequence: i64,
    pub id: AuditEntryId,
    pub workspace_id: WorkspaceId,
    pub timestamp: Timestamp,
    pub event_type: String,
    pub event_category: String,
    pub actor_id: Option<UserId>,
    pub actor_type: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: String,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    /// JSON exactly as hashed (canonical: sorted keys, no spaces).
    pub details: Box<RawValue>,
    pub before_state: Option<Box<RawValue>>,
    pub after_state: Option<Box<RawValue>>,
    /// Personal fields (client address, user agent, e-mails); absent once erased.
    pub personal: Option<BTreeMap<String, String>>,
    pub pii_salt: Option<String>,
    pub pii_digest: String,
    pub prev_hash: String,
    pub entry_hash: String,
    /// Inclusion proof against the export's checkpoint (filtered exports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<Vec<String>>,
}

impl ExportLine {
    pub fn from_entry(e: &AuditEntry, proof: Option<Vec<Hash>>) -> Self {
        // Stored JSON is canonical text, so it is valid JSON and goes out as it is.
        let raw = |s: &str| {
            RawValue::from_string(s.to_string())
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
        };
        Self {
            sequence: e.sequence,
            id: e.id,
            workspace_id: e.workspace_id,
            timestamp: e.timestamp,
            event_type: e.event_type.clone(),
            event_category: e.event_category.clone(),
            actor_id: e.actor_id,
            actor_type: e.actor_type.clone(),
            action: e.action.clone(),
            resource_type: e.resource_type.clone(),
            resource_id: e.resource_id.clone(),
            status: e.status.clone(),
            request_id: e.request_id.clone(),
            session_id: e.session_id.clone(),
            details: raw(&e.details),
            before_state: e.before_state.as_deref().map(raw),
            after_state: e.after_state.as_deref().map(raw),
            personal: e
                .personal
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            pii_salt: e.pii_salt.as_deref().map(crate::hex::encode),
            pii_digest: crate::hex::encode(&e.pii_digest),
            prev_hash: crate::hex::encode(&e.prev_hash),
            entry_hash: crate::hex::encode(&e.entry_hash),
            inclusion_proof: proof.map(|p| p.iter().map(|h| crate::hex::encode(h)).collect()),
        }
    }

    /// The entry as hashed. `None` if a hash field is not hex.
    pub fn to_entry(&self) -> Option<AuditEntry> {
        Some(AuditEntry {
            id: self.id,
            workspace_id: self.workspace_id,
            sequence: self.sequence,
            timestamp: self.timestamp,
            event_type: self.event_type.clone(),
            event_category: self.event_category.clone(),
            actor_id: self.actor_id,
            actor_type: self.actor_type.clone(),
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            status: self.status.clone(),
            request_id: self.request_id.clone(),
            session_id: self.session_id.clone(),
            details: self.details.get().to_string(),
            before_state: self.before_state.as_ref().map(|v| v.get().to_string()),
            after_state: self.after_state.as_ref().map(|v| v.get().to_string()),
            personal: self
                .personal
                .as_ref()
                .map(|p| serde_json::to_string(p).expect("map serializes")),
            pii_salt: match &self.pii_salt {
                Some(s) => Some(crate::hex::decode(s)?),
                None => None,
            },
            pii_digest: crate::hex::decode(&self.pii_digest)?,
            prev_hash: crate::hex::decode(&self.prev_hash)?,
            entry_hash: crate::hex::decode(&self.entry_hash)?,
        })
    }
}

/// An entry's own content and personal data against its hashes (no chain link).
fn self_check(e: &AuditEntry) -> Option<&'static str> {
    if (e.personal.is_some() || e.pii_salt.is_some())
        && pii_digest(e.personal.as_deref(), e.pii_salt.as_deref()).as_slice()
            != e.pii_digest.as_slice()
    {
        return Some("personal data does not match its digest");
    }
    (e.compute_hash().as_slice() != e.entry_hash.as_slice())
        .then_some("entry content does not match its hash")
}

fn describe(b: &super::ChainBreak) -> String {
    match b {
        super::ChainBreak::Content { .. } => "entry content does not match its hash".into(),
        super::ChainBreak::Personal { .. } => "personal data does not match its digest".into(),
        super::ChainBreak::PrevHash { .. } => "entry does not follow the entry before it".into(),
        super::ChainBreak::Sequence { expected, .. } => format!("entry {expected} is missing"),
    }
}

/// Result of an offline verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportVerdict {
    /// Every line verified; `entries` lines, `complete` if they were the whole log.
    Valid { entries: u64, complete: bool },
    /// `line` is 1-based; `sequence` is the entry's if it could be read.
    Invalid {
        line: u64,
        sequence: Option<i64>,
        reason: String,
    },
    /// The checkpoint itself is not signed by the given key.
    BadCheckpoint(String),
}

/// Verifies an export read from `input` against `checkpoint` and `public_key`.
pub fn verify_export(
    input: impl BufRead,
    checkpoint: &Checkpoint,
    public_key: &[u8],
) -> std::io::Result<ExportVerdict> {
    if let Err(e) = checkpoint.verify(public_key) {
        return Ok(ExportVerdict::BadCheckpoint(e.to_string()));
    }
    let Ok(root) = checkpoint.root() else {
        return Ok(ExportVerdict::BadCheckpoint(
            "root hash is malformed".into(),
        ));
    };
    let mut chain = ChainVerifier::default();
    let mut frontier = Frontier::default();
    let mut contiguous = true;
    let mut last_seq: Option<i64> = None;
    let mut count = 0u64;
    let mut all_proven = true;
    let bad = |line: u64, sequence: Option<i64>, reason: String| {
        Ok(ExportVerdict::Invalid {
            line,
            sequence,
            reason,
        })
    };
    for (i, text) in input.lines().enumerate() {
        let text = text?;
        let line = i as u64 + 1;
        if text.trim().is_empty() {
            continue;
        }
        let Ok(l) = serde_json::from_str::<ExportLine>(&text) else {
            return bad(line, None, "not an export line".into());
        };
        let Some(e) = l.to_entry() else {
            return bad(line, Some(l.sequence), "malformed hash field".into());
        };
        if e.workspace_id != checkpoint.workspace_id {
            return bad(line, Some(e.sequence), "entry of another workspace".into());
        }
        if e.sequence < 0 || e.sequence as u64 >= checkpoint.tree_size {
            return bad(line, Some(e.sequence), "entry beyond the checkpoint".into());
        }
        if last_seq.is_some_and(|s| e.sequence <= s) {
            return bad(
                line,
                Some(e.sequence),
                "entries out of order or repeated".into(),
            );
        }
        let leaf = merkle::leaf_hash(&e.entry_hash);
        contiguous &= e.sequence == count as i64;
        if contiguous {
            // Checks content, personal data and the link to the previous entry in one pass.
            if let Err(b) = chain.push(&e) {
                return bad(line, Some(e.sequence), describe(&b));
            }
            frontier.append(count, leaf);
        } else if let Some(reason) = self_check(&e) {
            return bad(line, Some(e.sequence), reason.into());
        }
        match &l.inclusion_proof {
            Some(p) => {
                let proof: Option<Vec<Hash>> = p
                    .iter()
                    .map(|h| crate::hex::decode(h).and_then(|v| v.try_into().ok()))
                    .collect();
                let Some(proof) = proof else {
                    return bad(line, Some(e.sequence), "malformed inclusion proof".into());
                };
                if merkle::verify_inclusion(
                    e.sequence as u64,
                    checkpoint.tree_size,
                    &leaf,
                    &proof,
                    &root,
                )
                .is_err()
                {
                    return bad(
                        line,
                        Some(e.sequence),
                        "inclusion proof does not lead to the checkpoint".into(),
                    );
                }
            }
            None if !contiguous => {
                return bad(
                    line,
                    Some(e.sequence),
                    "entry missing (gap) and no inclusion proof".into(),
                );
            }
            None => all_proven = false,
        }
        last_seq = Some(e.sequence);
        count += 1;
    }
    let complete = contiguous && count == checkpoint.tree_size;
    // Lines without proofs are vouched for by the rebuilt tree, so the export must be whole.
    if !all_proven && !complete {
        let reason = format!(
            "export ends after {count} of {} entries",
            checkpoint.tree_size
        );
        return bad(count + 1, Some(count as i64), reason);
    }
    if complete && frontier.root() != root {
        return bad(
            count,
            Some(count as i64 - 1),
            "the rebuilt tree does not match the checkpoint".into(),
        );
    }
    Ok(ExportVerdict::Valid {
        entries: count,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::CheckpointSigner;
    use crate::audit::{AuditDraft, GENESIS_HASH, RequestContext};

    fn log(n: usize) -> (Vec<String>, Checkpoint, Vec<u8>) {
        let ws = WorkspaceId::new();
        let ctx = RequestContext {
            client_addr: Some("203.0.113.9".into()),
            ..Default::default()
        };
        let mut prev = GENESIS_HASH;
        let entries: Vec<AuditEntry> = (0..n)
            .map(|i| {
                let e = AuditDraft::new(ws, &ctx, "users.create", "access_control")
                    .details(serde_json::json!({"i": i, "nested": {"b": 1.5, "a": [true, null]}}))
                    .seal(i as i64, prev, crate::time::now());
                prev = e.entry_hash.clone().try_into().unwrap();
                e
            })
            .collect();
        let leaves: Vec<Hash> = entries
            .iter()
            .map(|e| merkle::leaf_hash(&e.entry_hash))
            .collect();
        let signer =
            CheckpointSigner::from_pkcs8(&CheckpointSigner::generate_pkcs8().unwrap()).unwrap();
        let cp = signer.sign(ws, n as u64, &merkle::root(&leaves), crate::time::now());
        let lines = entries
            .iter()
            .map(|e| serde_json::to_string(&ExportLine::from_entry(e, None)).unwrap())
            .collect();
        (lines, cp, signer.public_key().to_vec())
    }

    fn verify(lines: &[String], cp: &Checkpoint, key: &[u8]) -> ExportVerdict {
        verify_export(lines.join("\n").as_bytes(), cp, key).unwrap()
    }

    fn bad_line(v: ExportVerdict) -> u64 {
        match v {
            ExportVerdict::Invalid { line, .. } => line,
            other => panic!("expected an invalid export, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_export_verifies() {
        let (lines, cp, key) = log(9);
        assert_eq!(
            verify(&lines, &cp, &key),
            ExportVerdict::Valid {
                entries: 9,
                complete: true
            }
        );
    }

    #[test]
    fn flipped_missing_duplicated_reordered_and_truncated_lines_are_named() {
        let (lines, cp, key) = log(9);
        let mut flipped = lines.clone();
        flipped[4] = flipped[4].replace("users.create", "users.crEate");
        assert_eq!(bad_line(verify(&flipped, &cp, &key)), 5);
        let mut missing = lines.clone();
        missing.remove(3);
        assert_eq!(
            bad_line(verify(&missing, &cp, &key)),
            4,
            "the line where entry 3 should be"
        );
        let mut dup = lines.clone();
        dup.insert(6, lines[5].clone());
        assert_eq!(bad_line(verify(&dup, &cp, &key)), 7);
        let mut reordered = lines.clone();
        reordered.swap(2, 3);
        assert_eq!(bad_line(verify(&reordered, &cp, &key)), 3);
        let truncated = lines[..7].to_vec();
        assert_eq!(bad_line(verify(&truncated, &cp, &key)), 8);
        let mut garbage = lines.clone();
        garbage[0] = "{not json".into();
        assert_eq!(bad_line(verify(&garbage, &cp, &key)), 1);
        let mut personal = lines.clone();
        personal[2] = personal[2].replace("203.0.113.9", "198.51.100.1");
        assert_eq!(bad_line(verify(&personal, &cp, &key)), 3);
    }

    #[test]
    fn a_rewritten_log_with_consistent_hashes_fails_against_the_checkpoint() {
        // Someone rebuilt the whole chain after changing entry 2: every line is
        // self-consistent, but the tree no longer matches the signed checkpoint.
        let (lines, cp, key) = log(6);
        let (other, _, _) = log(6);
        let mut mixed: Vec<ExportLine> = other
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for l in &mut mixed {
            l.workspace_id = cp.workspace_id;
        }
        let mixed: Vec<String> = mixed
            .iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect();
        assert!(matches!(
            verify(&mixed, &cp, &key),
            ExportVerdict::Invalid { .. }
        ));
        assert_eq!(
            verify(&lines, &cp, &key),
            ExportVerdict::Valid {
                entries: 6,
                complete: true
            }
        );
    }

    #[test]
    fn filtered_exports_need_proofs_and_forged_checkpoints_are_refused() {
        let (lines, cp, key) = log(10);
        let parsed: Vec<ExportLine> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let leaves: Vec<Hash> = parsed
            .iter()
            .map(|l| merkle::leaf_hash(&l.to_entry().unwrap().entry_hash))
            .collect();
        let picked: Vec<String> = [2usize, 5, 9]
            .iter()
            .map(|&i| {
                let mut l = parsed[i].clone();
                l.inclusion_proof = Some(
                    merkle::inclusion_proof(i, &leaves)
                        .unwrap()
                        .iter()
                        .map(|h| crate::hex::encode(h))
                        .collect(),
                );
                serde_json::to_string(&l).unwrap()
            })
            .collect();
        assert_eq!(
            verify(&picked, &cp, &key),
            ExportVerdict::Valid {
                entries: 3,
                complete: false
            }
        );
        let mut wrong_proof: ExportLine = serde_json::from_str(&picked[1]).unwrap();
        wrong_proof.inclusion_proof = Some(
            merkle::inclusion_proof(4, &leaves)
                .unwrap()
                .iter()
                .map(|h| crate::hex::encode(h))
                .collect(),
        );
        let tampered = vec![
            picked[0].clone(),
            serde_json::to_string(&wrong_proof).unwrap(),
        ];
        assert_eq!(bad_line(verify(&tampered, &cp, &key)), 2);
        let unproven = vec![lines[2].clone(), lines[5].clone()];
        assert!(matches!(
            verify(&unproven, &cp, &key),
            ExportVerdict::Invalid { .. }
        ));
        let mut forged = cp.clone();
        forged.tree_size = 9;
        assert!(matches!(
            verify(&lines, &forged, &key),
            ExportVerdict::BadCheckpoint(_)
        ));
    }
}
