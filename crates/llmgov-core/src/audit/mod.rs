//! The audit write path: what an entry holds and how entries are chained.
//!
//! Each workspace has one append-only log. Entry `n` commits to entry `n-1` through
//! `prev_hash`, so rewriting, deleting, inserting or reordering an entry breaks every hash
//! after it. Personal data (client address, user agent, e-mail addresses) is not hashed
//! directly: the entry commits to `pii_digest = BLAKE3(salt ‖ personal)`, and `personal` and
//! `salt` are stored beside it. Erasing a person blanks those two columns and the chain
//! still verifies.
//!
//! Entry hash, format version 1 (all integers little-endian, every field length-prefixed):
//! `BLAKE3("llmgov.audit.entry.v1" ‖ prev_hash ‖ workspace ‖ sequence ‖ id ‖ timestamp_us ‖
//! event_type ‖ event_category ‖ actor_type ‖ actor_id ‖ action ‖ resource_type ‖ resource_id ‖
//! status ‖ request_id ‖ session_id ‖ details ‖ before ‖ after ‖ pii_digest)`.

pub mod archive;
pub mod checkpoint;
pub mod export;
pub mod offline;
pub mod report;
pub mod retention;
pub mod tree;
pub mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AuditEntryId, UserId, WorkspaceId};
use crate::time::Timestamp;

pub const ENTRY_FORMAT_VERSION: u16 = 1;
const ENTRY_DOMAIN: &[u8] = b"llmgov.audit.entry.v1";
const PII_DOMAIN: &[u8] = b"llmgov.audit.pii.v1";
/// `prev_hash` of the first entry of every log.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    Success,
    Failure,
    Denied,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Success => "success",
            AuditStatus::Failure => "failure",
            AuditStatus::Denied => "denied",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            "denied" => Some(Self::Denied),
            _ => None,
        }
    }
}

/// Who did it and from where; built once per request by the server.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub actor_id: Option<UserId>,
    /// `user`, `api_key` or `system`.
    pub actor_type: &'static str,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
}

impl RequestContext {
    pub fn system() -> Self {
        Self {
            actor_type: "system",
            ..Default::default()
        }
    }
}

/// An audit entry before it has a place in the log. The storage layer assigns `sequence`
/// and the hashes inside the transaction that makes the change.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    pub workspace_id: WorkspaceId,
    pub event_type: String,
    pub event_category: String,
    pub actor_id: Option<UserId>,
    pub actor_type: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: AuditStatus,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    pub details: serde_json::Value,
    pub before_state: Option<serde_json::Value>,
    pub after_state: Option<serde_json::Value>,
    /// Personal data kept outside the hash (see the module documentation).
    pub personal: BTreeMap<String, String>,
}

impl AuditDraft {
    /// Starts a draft for `event_type` (`category.action`, e.g. `users.create`).
    pub fn new(ws: WorkspaceId, ctx: &RequestContext, event_type: &str, category: &str) -> Self {
        let action = event_type
            .rsplit('.')
            .next()
            .unwrap_or(event_type)
            .to_string();
        let mut personal = BTreeMap::new();
        if let Some(a) = &ctx.client_addr {
            personal.insert("ip_address".into(), a.clone());
        }
        if let Some(u) = &ctx.user_agent {
            personal.insert("user_agent".into(), u.chars().take(512).collect());
        }
        Self {
            workspace_id: ws,
            event_type: event_type.into(),
            event_category: category.into(),
            actor_id: ctx.actor_id,
            actor_type: if ctx.actor_type.is_empty() {
                "user".into()
            } else {
                ctx.actor_type.into()
            },
            action,
            resource_type: None,
            resource_id: None,
            status: AuditStatus::Success,
            request_id: ctx.request_id.clone(),
            session_id: ctx.session_id.clone(),
            details: serde_json::Value::Object(Default::default()),
            before_state: None,
            after_state: None,
            personal,
        }
    }
    pub fn resource(mut self, kind: &str, id: impl ToString) -> Self {
        self.resource_type = Some(kind.into());
        self.resource_id = Some(id.to_string());
        self
    }
    pub fn status(mut self, s: AuditStatus) -> Self {
        self.status = s;
        self
    }
    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = d;
        self
    }
    pub fn before(mut self, v: impl Serialize) -> Self {
        self.before_state = serde_json::to_value(v).ok();
        self
    }
    pub fn after(mut self, v: impl Serialize) -> Self {
        self.after_state = serde_json::to_value(v).ok();
        self
    }
    pub fn personal(mut self, key: &str, value: impl Into<String>) -> Self {
        self.personal.insert(key.into(), value.into());
        self
    }

    /// Turns the draft into the entry at `sequence` after `prev_hash`.
    pub fn seal(self, sequence: i64, prev_hash: [u8; 32], timestamp: Timestamp) -> AuditEntry {
        let (personal, pii_salt) = if self.personal.is_empty() {
            (None, None)
        } else {
            let mut salt = [0u8; 16];
            aws_lc_rs::rand::fill(&mut salt).expect("system RNG");
            (
                Some(serde_json::to_string(&self.personal).expect("map serializes")),
                Some(salt.to_vec()),
            )
        };
        let pii_digest = pii_digest(personal.as_deref(), pii_salt.as_deref());
        let mut e = AuditEntry {
            id: AuditEntryId::new(),
            workspace_id: self.workspace_id,
            sequence,
            timestamp,
            event_type: self.event_type,
            event_category: self.event_category,
            actor_id: self.actor_id,
            actor_type: self.actor_type,
            action: self.action,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            status: self.status.as_str().to_string(),
            request_id: self.request_id,
            session_id: self.session_id,
            details: canonical_json(&self.details),
            before_state: self.before_state.as_ref().map(canonical_json),
            after_state: self.after_state.as_ref().map(canonical_json),
            personal,
            pii_salt,
            pii_digest: pii_digest.to_vec(),
            prev_hash: prev_hash.to_vec(),
            entry_hash: Vec::new(),
        };
        e.entry_hash = e.compute_hash().to_vec();
        e
    }
}

/// JSON text with object keys sorted (serde_json's default map), stored byte-for-byte as
/// hashed so that a database's JSON normalisation can never change what was committed.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                // Rebuilt in sorted order, whichever map type serde_json was built with.
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(v)).expect("Value serializes")
}

/// Digest committed by the chain for an entry's personal data; all-zero when there is none.
pub fn pii_digest(personal: Option<&str>, salt: Option<&[u8]>) -> [u8; 32] {
    match (personal, salt) {
        (Some(p), Some(s)) => {
            let mut h = blake3::Hasher::new();
            h.update(PII_DOMAIN);
            field(&mut h, s);
            field(&mut h, p.as_bytes());
            *h.finalize().as_bytes()
        }
        _ => [0u8; 32],
    }
}

/// Where an entry's pre-image goes: a hasher, or a buffer (the binary archive stores the
/// pre-image itself, so the verifier hashes it with one call).
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for blake3::Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

fn field(h: &mut impl Sink, bytes: &[u8]) {
    h.put(&(bytes.len() as u64).to_le_bytes());
    h.put(bytes);
}

fn opt(h: &mut impl Sink, v: Option<&str>) {
    match v {
        None => h.put(&[0]),
        Some(s) => {
            h.put(&[1]);
            field(h, s.as_bytes());
        }
    }
}

/// Every field an entry's hash commits to, borrowed: what both the stored entry and a
/// line of an export being verified hash through, so the two can never disagree.
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'a> {
    pub prev_hash: &'a [u8],
    pub workspace_id: WorkspaceId,
    pub sequence: i64,
    pub id: AuditEntryId,
    pub timestamp: Timestamp,
    pub event_type: &'a str,
    pub event_category: &'a str,
    pub actor_type: &'a str,
    pub actor_id: Option<UserId>,
    pub action: &'a str,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub status: &'a str,
    pub request_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub details: &'a str,
    pub before_state: Option<&'a str>,
    pub after_state: Option<&'a str>,
    pub pii_digest: &'a [u8],
}

impl EntryView<'_> {
    /// The entry hash (BLAKE3, domain-separated, every field length-prefixed).
    pub fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(ENTRY_DOMAIN);
        self.write(&mut h);
        *h.finalize().as_bytes()
    }

    /// Appends the entry's pre-image (everything hashed after the domain string) to `out`.
    pub fn write_preimage(&self, out: &mut Vec<u8>) {
        self.write(out);
    }

    fn write(&self, h: &mut impl Sink) {
        field(h, self.prev_hash);
        field(h, self.workspace_id.0.as_bytes());
        h.put(&self.sequence.to_le_bytes());
        field(h, self.id.0.as_bytes());
        h.put(&self.timestamp.timestamp_micros().to_le_bytes());
        field(h, self.event_type.as_bytes());
        field(h, self.event_category.as_bytes());
        field(h, self.actor_type.as_bytes());
        let mut actor = [0u8; uuid::fmt::Hyphenated::LENGTH];
        opt(
            h,
            self.actor_id
                .map(|a| &*a.0.hyphenated().encode_lower(&mut actor)),
        );
        field(h, self.action.as_bytes());
        opt(h, self.resource_type);
        opt(h, self.resource_id);
        field(h, self.status.as_bytes());
        opt(h, self.request_id);
        opt(h, self.session_id);
        field(h, self.details.as_bytes());
        opt(h, self.before_state);
        opt(h, self.after_state);
        field(h, self.pii_digest);
    }
}

/// The entry hash of a pre-image written by [`EntryView::write_preimage`].
pub fn preimage_hash(preimage: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(ENTRY_DOMAIN);
    h.update(preimage);
    *h.finalize().as_bytes()
}

/// A sealed entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub workspace_id: WorkspaceId,
    /// Position in the workspace's log: 0-based and gap-free.
    pub sequence: i64,
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
    pub details: String,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
    /// JSON object of personal fields, or `None` once erased (or when there were none).
    pub personal: Option<String>,
    #[serde(skip)]
    pub pii_salt: Option<Vec<u8>>,
    #[serde(skip)]
    pub pii_digest: Vec<u8>,
    #[serde(skip)]
    pub prev_hash: Vec<u8>,
    #[serde(skip)]
    pub entry_hash: Vec<u8>,
}

impl AuditEntry {
    pub fn compute_hash(&self) -> [u8; 32] {
        self.view().hash()
    }

    /// The hashed fields, borrowed.
    pub fn view(&self) -> EntryView<'_> {
        EntryView {
            prev_hash: &self.prev_hash,
            workspace_id: self.workspace_id,
            sequence: self.sequence,
            id: self.id,
            timestamp: self.timestamp,
            event_type: &self.event_type,
            event_category: &self.event_category,
            actor_type: &self.actor_type,
            actor_id: self.actor_id,
            action: &self.action,
            resource_type: self.resource_type.as_deref(),
            resource_id: self.resource_id.as_deref(),
            status: &self.status,
            request_id: self.request_id.as_deref(),
            session_id: self.session_id.as_deref(),
            details: &self.details,
            before_state: self.before_state.as_deref(),
            after_state: self.after_state.as_deref(),
            pii_digest: &self.pii_digest,
        }
    }

    /// Personal fields as a map (empty once erased).
    pub fn personal_map(&self) -> BTreeMap<String, String> {
        self.personal
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default()
    }
}

/// Why a log failed verification, naming the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The sequence numbers skip or repeat: an entry was deleted, inserted or reordered.
    Sequence { expected: i64, found: i64 },
    /// The entry does not commit to the entry before it.
    PrevHash { sequence: i64 },
    /// The entry's content does not match its hash: it was altered.
    Content { sequence: i64 },
    /// The personal data does not match its committed digest.
    Personal { sequence: i64 },
}

impl ChainBreak {
    pub fn sequence(&self) -> i64 {
        match self {
            ChainBreak::Sequence { expected, .. } => *expected,
            ChainBreak::PrevHash { sequence }
            | ChainBreak::Content { sequence }
            | ChainBreak::Personal { sequence } => *sequence,
        }
    }
}

/// Incremental verifier: feed entries in log order.
#[derive(Debug)]
pub struct ChainVerifier {
    next_sequence: i64,
    prev_hash: [u8; 32],
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_sequence: 0,
            prev_hash: GENESIS_HASH,
        }
    }
}

impl ChainVerifier {
    /// A verifier for a log whose entries below `sequence` were pruned under retention;
    /// `prev_hash` is the hash the entry at `sequence` chains from (recorded when pruning).
    pub fn starting_at(sequence: i64, prev_hash: [u8; 32]) -> Self {
        Self {
            next_sequence: sequence,
            prev_hash,
        }
    }

    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        if e.sequence != self.next_sequence {
            return Err(ChainBreak::Sequence {
                expected: self.next_sequence,
                found: e.sequence,
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(ChainBreak::PrevHash {
                sequence: e.sequence,
            });
        }
        if e.personal.is_some() || e.pii_salt.is_some() {
            let d = pii_digest(e.personal.as_deref(), e.pii_salt.as_deref());
            if d.as_slice() != e.pii_digest.as_slice() {
                return Err(ChainBreak::Personal {
                    sequence: e.sequence,
                });
            }
        }
        let h = e.compute_hash();
        if h.as_slice() != e.entry_hash.as_slice() {
            return Err(ChainBreak::Content {
                sequence: e.sequence,
            });
        }
        self.prev_hash = h;
        self.next_sequence += 1;
        Ok(())
    }

    pub fn verified(&self) -> i64 {
        self.next_sequence
    }
}

/// Signed logs for the tests of the verifiers.
#[cfg(test)]
pub(crate) mod testing {
    use super::checkpoint::{Checkpoint, CheckpointSigner};
    use super::{AuditDraft, AuditEntry, GENESIS_HASH};
    use crate::ids::WorkspaceId;
    use crate::merkle::{self, Hash};

    /// A log of `n` entries, entry `i` sealed from `draft(workspace, i)`, with a checkpoint
    /// over all of it: the entries, the checkpoint, its public key and the tree's leaves.
    pub(crate) fn signed_log(
        n: usize,
        draft: impl Fn(WorkspaceId, usize) -> AuditDraft,
    ) -> (Vec<AuditEntry>, Checkpoint, Vec<u8>, Vec<Hash>) {
        let ws = WorkspaceId::new();
        let mut prev = GENESIS_HASH;
        let entries: Vec<AuditEntry> = (0..n)
            .map(|i| {
                let e = draft(ws, i).seal(i as i64, prev, crate::time::now());
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
        (entries, cp, signer.public_key().to_vec(), leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: usize) -> Vec<AuditEntry> {
        let ws = WorkspaceId::new();
        let ctx = RequestContext {
            client_addr: Some("10.0.0.1".into()),
            ..Default::default()
        };
        let mut prev = GENESIS_HASH;
        (0..n)
            .map(|i| {
                let e = AuditDraft::new(ws, &ctx, "users.create", "access_control")
                    .resource("user", i)
                    .details(json!({"i": i, "b": [1, 2]}))
                    .seal(i as i64, prev, crate::time::now());
                prev = e.entry_hash.clone().try_into().unwrap();
                e
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry]) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.push(e)?;
        }
        Ok(v.verified())
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn altering_any_field_is_detected_at_that_entry() {
        let mut c = chain(5);
        c[2].details = "{\"i\":99}".into();
        assert_eq!(verify(&c), Err(ChainBreak::Content { sequence: 2 }));
        let mut c = chain(5);
        c[3].status = "failure".into();
        assert_eq!(verify(&c), Err(ChainBreak::Content { sequence: 3 }));
    }

    #[test]
    fn deletion_insertion_and_reordering_are_detected() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(
            verify(&c),
            Err(ChainBreak::Sequence {
                expected: 1,
                found: 2
            })
        );
        let mut c = chain(5);
        c.swap(1, 2);
        assert_eq!(verify(&c).unwrap_err().sequence(), 1);
        let mut c = chain(5);
        let mut forged = c[1].clone();
        forged.sequence = 2;
        c.insert(2, forged);
        assert!(verify(&c).is_err());
    }

    #[test]
    fn erasing_personal_data_keeps_the_chain_valid_but_editing_it_does_not() {
        let mut c = chain(3);
        c[1].personal = None;
        c[1].pii_salt = None;
        assert_eq!(verify(&c), Ok(3));
        let mut c = chain(3);
        c[1].personal = Some("{\"ip_address\":\"10.9.9.9\"}".into());
        assert_eq!(verify(&c), Err(ChainBreak::Personal { sequence: 1 }));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": {"d": 2, "c": 3}})),
            r#"{"a":{"c":3,"d":2},"b":1}"#
        );
    }
}
