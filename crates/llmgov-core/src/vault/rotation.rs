//! KEK rotation: a new key-encryption key becomes current and every dataset key is
//! rewrapped with it. Data is never re-encrypted.

use serde::Serialize;

use super::service::{VaultService, key_aad};
use crate::Result;
use crate::audit::{AuditDraft, RequestContext};
use crate::ids::WorkspaceId;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotationReport {
    pub provider: String,
    pub previous_version: u32,
    pub current_version: u32,
    /// Dataset keys rewrapped with the new version.
    pub rewrapped: u64,
}

impl VaultService {
    /// Rotates the KEK and rewraps every dataset key (of every workspace: the KEK is the
    /// deployment's). Safe to run again after an interruption: keys already on the current
    /// version are skipped.
    /// The audit entry goes to workspace `ws` (the caller's, or the system workspace).
    pub async fn rotate_keys(
        &self,
        ws: WorkspaceId,
        ctx: &RequestContext,
    ) -> Result<RotationReport> {
        let before = self.keys().status().await?;
        let current = self.keys().rotate().await?;
        let rewrapped = self.rewrap_all(current).await?;
        let status = self.keys().status().await?;
        let report = RotationReport {
            provider: status.provider,
            previous_version: before.current_version,
            current_version: current,
            rewrapped,
        };
        let audit = AuditDraft::new(ws, ctx, "keys.rotate", "keys")
            .resource("key_encryption_key", current)
            .details(serde_json::to_value(&report).unwrap_or_default());
        self.store.record_access(audit).await?;
        Ok(report)
    }

    /// Destroys KEK versions below `min`, once no dataset key depends on them (rotate
    /// first). Audited as `keys.trim`.
    pub async fn trim_keys(
        &self,
        ws: WorkspaceId,
        ctx: &RequestContext,
        min: u32,
    ) -> Result<Vec<u32>> {
        let current = self.keys().status().await?.current_version;
        if min > current {
            return Err(crate::CoreError::invalid(
                "min_version",
                format!("the current key-encryption key is version {current}"),
            ));
        }
        if !self.store.keys_below(min, 1).await?.is_empty()
            || !self.store.workspace_keys_below(min, 1).await?.is_empty()
        {
            return Err(crate::CoreError::conflict(
                "KEYS_IN_USE",
                format!("dataset keys are still wrapped by versions below {min}; rotate first"),
            ));
        }
        let removed = self.keys().trim(min).await?;
        let audit = AuditDraft::new(ws, ctx, "keys.trim", "keys")
            .resource("key_encryption_key", min)
            .details(serde_json::json!({ "min_decryption_version": min, "removed": removed }));
        self.store.record_access(audit).await?;
        Ok(removed)
    }

    /// Rewraps every workspace key below KEK version `current`.
    async fn rewrap_workspace_keys(&self, current: u32) -> Result<u64> {
        let mut n = 0;
        loop {
            let batch = self.store.workspace_keys_below(current, 500).await?;
            if batch.is_empty() {
                return Ok(n);
            }
            for (ws, old) in batch {
                let aad = super::service::workspace_key_aad(ws);
                let key = self.keys().unwrap(&old, &aad).await?;
                let new = self.keys().wrap(&key, &aad).await?;
                if new.kek_version < current {
                    return Err(crate::CoreError::internal(
                        "the provider wrapped with an older key",
                    ));
                }
                if self.store.rewrap_workspace_key(ws, &old, &new).await? {
                    n += 1;
                }
            }
        }
    }

    /// Rewraps every dataset key below KEK version `current`.
    pub async fn rewrap_all(&self, current: u32) -> Result<u64> {
        let mut n = self.rewrap_workspace_keys(current).await?;
        loop {
            let batch = self.store.keys_below(current, 500).await?;
            if batch.is_empty() {
                return Ok(n);
            }
            for (ws, ds, old) in batch {
                let aad = key_aad(ws, ds);
                let dek = self.keys().unwrap(&old, &aad).await?;
                let new = self.keys().wrap(&dek, &aad).await?;
                if new.kek_version < current {
                    return Err(crate::CoreError::internal(
                        "the provider wrapped with an older key",
                    ));
                }
                if self.store.rewrap_key(ds, &old, &new).await? {
                    n += 1;
                }
            }
        }
    }
}
