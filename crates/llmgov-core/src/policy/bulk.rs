//! `POST /policies/bulk`: many creates, changes and archivals, all or none.

use std::collections::HashSet;

use serde::Deserialize;

use super::model::{Policy, PolicyStatus};
use super::service::{PolicyInput, PolicyPatch, PolicyService, patched};
use crate::audit::RequestContext;
use crate::identity::Principal;
use crate::ids::PolicyId;
use crate::{CoreError, Result};

/// Most operations in one bulk request.
pub const MAX_BULK: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BulkOp {
    Create {
        policy: PolicyInput,
    },
    Update {
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        id: PolicyId,
        changes: PolicyPatch,
    },
    Archive {
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        id: PolicyId,
    },
}

/// Names the operation an error belongs to: `operations[3].definition.source`.
fn at(i: usize, e: CoreError) -> CoreError {
    match e {
        CoreError::Invalid { field, message } => CoreError::invalid(
            format!("operations[{i}].{field}"),
            format!("operation {i}: {message}"),
        ),
        CoreError::Unprocessable {
            code,
            message,
            mut details,
        } => {
            details.insert("operation".into(), i.into());
            CoreError::Unprocessable {
                code,
                message: format!("operation {i}: {message}"),
                details,
            }
        }
        CoreError::NotFound { .. } => CoreError::invalid(
            format!("operations[{i}].id"),
            format!("operation {i}: policy not found"),
        ),
        other => other,
    }
}

impl PolicyService {
    /// Applies every operation in one transaction, or none: the first invalid operation
    /// fails the request and names its index.
    pub async fn bulk(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        ops: Vec<BulkOp>,
    ) -> Result<Vec<Policy>> {
        if ops.is_empty() || ops.len() > MAX_BULK {
            return Err(CoreError::invalid(
                "operations",
                format!("give 1 to {MAX_BULK} operations"),
            ));
        }
        let mut touched = HashSet::new();
        let mut writes = Vec::with_capacity(ops.len());
        let mut audits = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            let w = match op {
                BulkOp::Create { policy } => {
                    self.prepare_create(p, policy).map_err(|e| at(i, e))?
                }
                BulkOp::Update { id, changes } => {
                    let before = self.get(p, id).await.map_err(|e| at(i, e))?;
                    if changes
                        .expected_version
                        .is_some_and(|v| v != before.version)
                    {
                        return Err(CoreError::conflict(
                            "POLICY_VERSION_CONFLICT",
                            format!("operation {i}: policy is at version {}", before.version),
                        ));
                    }
                    let summary = changes.change_summary.clone();
                    let spec = patched(&before.spec, changes);
                    Self::prepare_change(&before, p, spec, summary).map_err(|e| at(i, e))?
                }
                BulkOp::Archive { id } => {
                    let before = self.get(p, id).await.map_err(|e| at(i, e))?;
                    let mut spec = before.spec.clone();
                    spec.status = PolicyStatus::Archived;
                    Self::prepare_change(&before, p, spec, Some("archived".into()))
                        .map_err(|e| at(i, e))?
                }
            };
            if !touched.insert(w.policy.id) {
                return Err(CoreError::invalid(
                    format!("operations[{i}].id"),
                    format!("operation {i}: the policy is already changed by an earlier operation"),
                ));
            }
            audits.push(Self::write_audit(p, ctx, &w));
            writes.push(w);
        }
        self.store()
            .save_policies(p.workspace_id, &writes, audits)
            .await?;
        Ok(writes.into_iter().map(|w| w.policy).collect())
    }
}
