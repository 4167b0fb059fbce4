//! The export format of the audit trail: JSON Lines, one entry per line, each carrying every
//! field its hash covers. Offline verification of an export is in [`super::offline`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::AuditEntry;
pub use super::offline::{ExportVerdict, verify_export, verify_export_with};
use crate::ids::{AuditEntryId, UserId, WorkspaceId};
use crate::merkle::Hash;
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
