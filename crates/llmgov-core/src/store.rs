//! Storage traits. Implementations (SQLite, PostgreSQL) live in `llmgov-store` and must
//! pass the same behavioural suite.
//!
//! Rules every implementation keeps:
//! - Every method that changes state takes an [`AuditDraft`] and appends it to the
//!   workspace's audit log *in the same transaction* as the change. If the append fails,
//!   the change is rolled back and [`CoreError::AuditUnavailable`] is returned.
//! - Every read or write of a workspace's resources takes its [`WorkspaceId`] and filters
//!   by it: a resource of another workspace is reported as not found.
//! - Appends to one workspace's log are serialised across processes (several `llmgov`
//!   instances on one database keep one gap-free sequence).

use async_trait::async_trait;

use crate::Result;
use crate::audit::{AuditDraft, AuditEntry};
use crate::identity::{
    ApiKey, Credentials, CustomRole, NewUser, RefreshToken, SigningKeyRecord, User, UserStatus,
    Workspace,
};
use crate::ids::{ApiKeyId, RoleId, UserId, WorkspaceId};
use crate::page::{ListQuery, Page};
use crate::time::Timestamp;

/// Fields a user update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub status: Option<UserStatus>,
    pub metadata: Option<serde_json::Value>,
}

/// Result of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    /// First use: run the request, then complete or release the claim.
    New,
    /// Same key, same request, already answered: replay this response.
    Replay { status: u16, body: Vec<u8> },
    /// Same key and request still running elsewhere.
    InFlight,
    /// Same key used with a different request.
    Mismatch,
}

/// Filters of the audit log listing.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    pub event_category: Option<String>,
    pub actor_id: Option<UserId>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub request_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Full-text query: every word must occur in the entry's text (event, action, status,
    /// resource and details; never personal data).
    pub text: Option<String>,
}

/// Storage of bootstrap and workspaces.
impl AuditFilter {
    /// Whether `e` passes every filter except `text` (which needs the search index).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        let eq = |f: &Option<String>, v: &str| f.as_deref().is_none_or(|f| f == v);
        let eq_opt = |f: &Option<String>, v: &Option<String>| {
            f.as_deref().is_none_or(|f| v.as_deref() == Some(f))
        };
        eq(&self.event_type, &e.event_type)
            && eq(&self.event_category, &e.event_category)
            && self.actor_id.is_none_or(|a| e.actor_id == Some(a))
            && eq_opt(&self.resource_type, &e.resource_type)
            && eq_opt(&self.resource_id, &e.resource_id)
            && eq(&self.action, &e.action)
            && eq(&self.status, &e.status)
            && eq_opt(&self.request_id, &e.request_id)
            && self.from.is_none_or(|f| e.timestamp >= f)
            && self.to.is_none_or(|t| e.timestamp < t)
    }

    pub fn is_empty(&self) -> bool {
        self.event_type.is_none()
            && self.event_category.is_none()
            && self.actor_id.is_none()
            && self.resource_type.is_none()
            && self.resource_id.is_none()
            && self.action.is_none()
            && self.status.is_none()
            && self.request_id.is_none()
            && self.from.is_none()
            && self.to.is_none()
            && self.text.is_none()
    }
}

#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Atomically creates the first workspace and its super admin if the platform has none
    /// yet. Returns `false` (and changes nothing) when it was already bootstrapped.
    async fn bootstrap(&self, ws: &Workspace, admin: &NewUser, audit: AuditDraft) -> Result<bool>;
    /// The workspace that records platform-level events (the bootstrap workspace).
    async fn system_workspace(&self) -> Result<Option<WorkspaceId>>;
    async fn create_workspace(&self, ws: &Workspace, audit: AuditDraft) -> Result<()>;
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace>;
    async fn list_workspaces(&self, q: &ListQuery) -> Result<Page<Workspace>>;
    /// Makes an existing user a member of `ws` with `roles`.
    async fn add_member(
        &self,
        ws: WorkspaceId,
        user: UserId,
        roles: &[String],
        audit: AuditDraft,
    ) -> Result<()>;
    /// Workspaces a user is a member of (for `auth/me`).
    async fn user_workspaces(&self, user: UserId) -> Result<Vec<Workspace>>;
}

/// Storage of users.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, ws: WorkspaceId, user: &NewUser, audit: AuditDraft) -> Result<()>;
    async fn get_user(&self, ws: WorkspaceId, id: UserId) -> Result<User>;
    async fn list_users(
        &self,
        ws: WorkspaceId,
        q: &ListQuery,
        status: Option<UserStatus>,
    ) -> Result<Page<User>>;
    /// Applies `changes` if the user was not modified since `expected_updated_at`.
    async fn update_user(
        &self,
        ws: WorkspaceId,
        id: UserId,
        changes: &UserChanges,
        expected_updated_at: Timestamp,
        now: Timestamp,
        audit: AuditDraft,
    ) -> Result<()>;
    async fn set_user_roles(
        &self,
        ws: WorkspaceId,
        id: UserId,
        roles: &[String],
        audit: AuditDraft,
    ) -> Result<()>;
    /// Removes the user from the workspace; deletes the user when no membership remains.
    async fn remove_user(&self, ws: WorkspaceId, id: UserId, audit: AuditDraft) -> Result<()>;
    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>>;
    async fn credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>>;
    async fn set_password(
        &self,
        ws: WorkspaceId,
        id: UserId,
        hash: &str,
        now: Timestamp,
        audit: AuditDraft,
    ) -> Result<()>;
}

/// Storage of roles.
#[async_trait]
pub trait RoleStore: Send + Sync {
    async fn create_role(&self, role: &CustomRole, audit: AuditDraft) -> Result<()>;
    async fn get_role(&self, ws: WorkspaceId, id: RoleId) -> Result<CustomRole>;
    async fn list_roles(&self, ws: WorkspaceId) -> Result<Vec<CustomRole>>;
    async fn roles_by_name(&self, ws: WorkspaceId, names: &[String]) -> Result<Vec<CustomRole>>;
    async fn update_role(&self, role: &CustomRole, audit: AuditDraft) -> Result<()>;
    /// Deletes the role and its assignments.
    async fn delete_role(&self, ws: WorkspaceId, id: RoleId, audit: AuditDraft) -> Result<()>;
}

/// Storage of sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Records a successful login: stores the first refresh token of a new family and
    /// updates `last_login_at`.
    async fn record_login(&self, token: &RefreshToken, audit: AuditDraft) -> Result<()>;
    async fn get_refresh_token(&self, id: uuid::Uuid) -> Result<Option<RefreshToken>>;
    /// Marks `old` spent and stores `new`, only if `old` was neither spent nor revoked.
    /// Returns `false` when it already was (a reuse), changing nothing.
    async fn rotate_refresh_token(
        &self,
        old: uuid::Uuid,
        new: &RefreshToken,
        now: Timestamp,
        audit: AuditDraft,
    ) -> Result<bool>;
    async fn revoke_token_family(
        &self,
        family: uuid::Uuid,
        now: Timestamp,
        audit: AuditDraft,
    ) -> Result<()>;
}

/// Storage of API keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn create_api_key(&self, key: &ApiKey, audit: AuditDraft) -> Result<()>;
    async fn get_api_key(&self, ws: WorkspaceId, id: ApiKeyId) -> Result<ApiKey>;
    async fn list_api_keys(
        &self,
        ws: WorkspaceId,
        owner: Option<UserId>,
        q: &ListQuery,
    ) -> Result<Page<ApiKey>>;
    async fn revoke_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        now: Timestamp,
        audit: AuditDraft,
    ) -> Result<()>;
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>>;
    /// Updates `last_used_at` (not audited: usage, not a change of state).
    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> Result<()>;
}

/// Storage of signing keys.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Stores `key` as the active key and retires the others, unless another instance
    /// already created an active key and `only_if_none` is set.
    async fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        only_if_none: bool,
        audit: AuditDraft,
    ) -> Result<bool>;
}

/// Storage of idempotency.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_hash: &[u8],
        now: Timestamp,
    ) -> Result<IdempotencyClaim>;
    async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<()>;
    async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<()>;
}

/// Storage of audit.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Writes an audit entry that accompanies no other change (failed login, denial).
    async fn append_audit(&self, audit: AuditDraft) -> Result<()>;
    /// Appends many entries of one workspace, in order, in one transaction (events that
    /// arrive in bulk, such as evaluations or ingest): one lock and one tree update per batch.
    async fn append_audit_batch(&self, ws: WorkspaceId, drafts: Vec<AuditDraft>) -> Result<()>;

    async fn list_audit(
        &self,
        ws: WorkspaceId,
        filter: &AuditFilter,
        q: &ListQuery,
    ) -> Result<Page<AuditEntry>>;
    /// Every workspace that has an audit log, with its head: (next sequence, hash of the
    /// last entry).
    async fn audit_heads(&self) -> Result<Vec<(WorkspaceId, i64, Vec<u8>)>>;
    /// One workspace's head: (next sequence, hash of the last entry), if it has a log.
    async fn audit_head(&self, ws: WorkspaceId) -> Result<Option<(i64, Vec<u8>)>>;
    /// Where a log's kept part starts: (first kept sequence, the hash it chains from).
    /// `(0, None)` when nothing was pruned.
    async fn audit_floor(&self, ws: WorkspaceId) -> Result<(i64, Option<Vec<u8>>)>;
    /// The first sequence whose timestamp is at or after `t`, if any.
    async fn first_audit_sequence_since(
        &self,
        ws: WorkspaceId,
        t: Timestamp,
    ) -> Result<Option<i64>>;
    /// Deletes the entries below `before` (raising the floor), appending `audit` in the same
    /// transaction. Returns how many entries were deleted (0 if the floor was already there).
    async fn prune_audit(&self, ws: WorkspaceId, before: i64, audit: AuditDraft) -> Result<u64>;
    /// Stored Merkle tree nodes of a workspace's log (absent ids are left out).
    async fn audit_tree_nodes(
        &self,
        ws: WorkspaceId,
        ids: &[crate::merkle::NodeId],
    ) -> Result<std::collections::HashMap<crate::merkle::NodeId, crate::merkle::Hash>>;
    /// Stores a checkpoint unless one exists for that workspace and size.
    async fn insert_checkpoint(&self, cp: &crate::audit::checkpoint::Checkpoint) -> Result<()>;
    /// The checkpoint of the largest tree size.
    async fn latest_checkpoint(
        &self,
        ws: WorkspaceId,
    ) -> Result<Option<crate::audit::checkpoint::Checkpoint>>;
    /// Entries of a workspace's log from `from_sequence`, in order, at most `limit`.
    async fn audit_range(
        &self,
        ws: WorkspaceId,
        from_sequence: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>>;
}

/// Everything the domain needs from a backend.
#[async_trait]
pub trait Store:
    WorkspaceStore
    + UserStore
    + RoleStore
    + SessionStore
    + ApiKeyStore
    + SigningKeyStore
    + IdempotencyStore
    + AuditStore
    + crate::policy::store::PolicyStore
    + crate::outbox::OutboxStore
    + crate::events::EventStore
    + crate::policy::facts::FactStore
    + crate::vault::store::VaultStore
    + crate::pii::PiiStore
    + crate::metrics::store::MetricStore
    + crate::metrics::alert_rules::AlertStore
    + Send
    + Sync
    + 'static
{
    /// Cheap round trip used by readiness checks.
    async fn ping(&self) -> Result<()>;
    /// Name of the backend (`sqlite`, `postgres`) for health output.
    fn backend(&self) -> &'static str;
}
