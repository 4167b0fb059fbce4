//! Storage of policies, their versions, evaluations and violations.

use async_trait::async_trait;

use super::model::{
    Policy, PolicyFilter, PolicyVersion, Violation, ViolationFilter, ViolationStatus,
};
use crate::Result;
use crate::audit::AuditDraft;
use crate::ids::{PolicyId, ViolationId, WorkspaceId};
use crate::page::{ListQuery, Page};
use crate::time::Timestamp;

/// One policy write of a batch: an insert (`expected_version` `None`) or a replacement of
/// the stored policy if it is still at `expected_version`.
#[derive(Debug, Clone)]
pub struct PolicyWrite {
    pub policy: Policy,
    pub version: PolicyVersion,
    pub expected_version: Option<i32>,
}

/// A recorded evaluation: what was asked and what was decided, kept for dry runs and as
/// compliance evidence.
#[derive(Debug, Clone)]
pub struct EvaluationRecord {
    pub id: crate::ids::EvaluationId,
    pub workspace_id: WorkspaceId,
    pub at: Timestamp,
    pub decision: super::model::Decision,
    pub policy_ids: Vec<PolicyId>,
    pub violation_count: i64,
    /// The input document (JSON).
    pub input: String,
    /// The call's `team`, `user` and `cost` (0 when absent): what spend facts add up.
    pub team: Option<String>,
    pub user: Option<String>,
    pub cost: f64,
}

/// Whose spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpendScope {
    Team,
    User,
}

impl SpendScope {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendScope::Team => "team",
            SpendScope::User => "user",
        }
    }
}

/// Evidence of one policy for compliance coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyEvidence {
    pub evaluations: i64,
    pub violations: i64,
    pub open_violations: i64,
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Applies every write and appends every audit entry in one transaction: all or none.
    /// A write whose policy moved past its expected version fails with a conflict.
    async fn save_policies(
        &self,
        ws: WorkspaceId,
        writes: &[PolicyWrite],
        audit: Vec<AuditDraft>,
    ) -> Result<()>;
    async fn get_policy(&self, ws: WorkspaceId, id: PolicyId) -> Result<Policy>;
    async fn list_policies(
        &self,
        ws: WorkspaceId,
        filter: &PolicyFilter,
        q: &ListQuery,
    ) -> Result<Page<Policy>>;
    /// Active policies by descending priority.
    async fn active_policies(&self, ws: WorkspaceId) -> Result<Vec<Policy>>;
    /// Versions, newest first.
    async fn policy_versions(&self, ws: WorkspaceId, id: PolicyId) -> Result<Vec<PolicyVersion>>;
    async fn policy_version(
        &self,
        ws: WorkspaceId,
        id: PolicyId,
        version: i32,
    ) -> Result<PolicyVersion>;
    /// Stores evaluations of workspace `ws`, the violations each produced and their audit
    /// entries in one transaction (group commit of concurrent evaluations).
    async fn record_evaluations(
        &self,
        ws: WorkspaceId,
        items: &[(EvaluationRecord, Vec<Violation>)],
        audit: Vec<AuditDraft>,
        outbox: &[crate::outbox::OutboxMessage],
    ) -> Result<()>;
    /// Inputs of the latest evaluations, newest first.
    async fn recent_evaluation_inputs(&self, ws: WorkspaceId, limit: i64) -> Result<Vec<String>>;
    async fn list_violations(
        &self,
        ws: WorkspaceId,
        filter: &ViolationFilter,
        q: &ListQuery,
    ) -> Result<Page<Violation>>;
    async fn get_violation(&self, ws: WorkspaceId, id: ViolationId) -> Result<Violation>;
    /// Stores `v` if the stored violation is still in status `from`.
    async fn update_violation(
        &self,
        v: &Violation,
        from: ViolationStatus,
        audit: AuditDraft,
    ) -> Result<()>;
    /// Spend of `id` (a team or user): on `day` and in its month up to and including it.
    async fn spend(
        &self,
        ws: WorkspaceId,
        scope: SpendScope,
        id: &str,
        day: chrono::NaiveDate,
    ) -> Result<(f64, f64)>;
    /// Evaluation and violation counts of a policy.
    async fn policy_evidence(&self, ws: WorkspaceId, id: PolicyId) -> Result<PolicyEvidence>;
}
