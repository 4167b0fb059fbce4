//! The vault's two storage seams: metadata (datasets, commits, refs, wrapped keys) in the
//! database, and objects (blocks, manifests) in an object store.

use async_trait::async_trait;

use super::keys::WrappedDek;
use super::model::{Commit, CommitId, Dataset, Ref, RefKind};
use crate::Result;
use crate::audit::AuditDraft;
use crate::ids::{DatasetId, WorkspaceId};
use crate::page::{ListQuery, Page};

/// Filters of the dataset listing.
#[derive(Debug, Clone, Default)]
pub struct DatasetFilter {
    pub name: Option<String>,
    pub tag: Option<String>,
    pub format: Option<super::model::DatasetFormat>,
}

/// How a commit moves its branch: compare-and-swap from `expected` (`None`: the branch must
/// not exist yet, and is created).
#[derive(Debug, Clone)]
pub struct BranchUpdate<'a> {
    pub branch: &'a str,
    pub expected: Option<&'a CommitId>,
}

#[async_trait]
pub trait VaultStore: Send + Sync {
    /// A dataset name already used in the workspace is a `DATASET_EXISTS` conflict.
    async fn create_dataset(&self, d: &Dataset, key: &WrappedDek, audit: AuditDraft) -> Result<()>;
    async fn get_dataset(&self, ws: WorkspaceId, id: DatasetId) -> Result<Dataset>;
    async fn dataset_by_name(&self, ws: WorkspaceId, name: &str) -> Result<Dataset>;
    async fn list_datasets(
        &self,
        ws: WorkspaceId,
        filter: &DatasetFilter,
        q: &ListQuery,
    ) -> Result<Page<Dataset>>;
    /// Stores the descriptive fields and the schema.
    async fn update_dataset(&self, d: &Dataset, audit: AuditDraft) -> Result<()>;
    /// Removes the dataset, its commits, refs and key. Its objects become garbage.
    async fn delete_dataset(&self, ws: WorkspaceId, id: DatasetId, audit: AuditDraft)
    -> Result<()>;
    async fn dataset_key(&self, ws: WorkspaceId, id: DatasetId) -> Result<WrappedDek>;
    /// Every dataset of every workspace (for fsck and garbage collection).
    async fn all_datasets(&self) -> Result<Vec<Dataset>>;
    /// Every commit of a dataset, on any branch or none.
    async fn all_commits(&self, ws: WorkspaceId, ds: DatasetId) -> Result<Vec<Commit>>;
    /// Wrapped keys of every dataset not yet wrapped by KEK version `current`.
    async fn keys_below(
        &self,
        current: u32,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, DatasetId, WrappedDek)>>;
    /// Replaces a dataset's wrapped key if it is still `old` (a concurrent rotation wins once).
    async fn rewrap_key(&self, ds: DatasetId, old: &WrappedDek, new: &WrappedDek) -> Result<bool>;
    /// A workspace's own key (for the PII operators), wrapped like a dataset key.
    async fn workspace_key(&self, ws: WorkspaceId) -> Result<Option<WrappedDek>>;
    /// Stores a workspace's key unless it has one already (a concurrent creator wins once).
    async fn insert_workspace_key(&self, ws: WorkspaceId, key: &WrappedDek) -> Result<()>;
    /// Workspace keys not yet wrapped by KEK version `current`.
    async fn workspace_keys_below(
        &self,
        current: u32,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, WrappedDek)>>;
    /// Replaces a workspace's wrapped key if it is still `old`.
    async fn rewrap_workspace_key(
        &self,
        ws: WorkspaceId,
        old: &WrappedDek,
        new: &WrappedDek,
    ) -> Result<bool>;
    /// Appends an audit entry for a read (reads change nothing else).
    async fn record_access(&self, audit: AuditDraft) -> Result<()>;

    /// Inserts `commit` and moves its branch in one transaction with the audit entry (and
    /// the dataset's new schema, if any). A branch that moved since `update.expected` is a
    /// `BRANCH_MOVED` conflict and changes nothing.
    async fn commit(
        &self,
        ws: WorkspaceId,
        commit: &Commit,
        update: BranchUpdate<'_>,
        schema: Option<&serde_json::Value>,
        audit: AuditDraft,
    ) -> Result<()>;
    /// A commit by full id or unique prefix (at least 4 hex digits).
    async fn get_commit(&self, ws: WorkspaceId, ds: DatasetId, id: &str) -> Result<Commit>;
    /// First-parent history from `from`, newest first.
    async fn log(
        &self,
        ws: WorkspaceId,
        ds: DatasetId,
        from: &CommitId,
        q: &ListQuery,
    ) -> Result<Vec<Commit>>;

    /// Commits of other datasets made from `source` (one version, or any with `None`),
    /// as their `transformation.sources` name them.
    async fn derived(
        &self,
        ws: WorkspaceId,
        source: DatasetId,
        commit: Option<&CommitId>,
    ) -> Result<Vec<Commit>>;
    /// Datasets with a version made from `source`.
    async fn dependents(&self, ws: WorkspaceId, source: DatasetId) -> Result<Vec<Dataset>>;

    /// Commits that name `parent` among their parents.
    async fn children(
        &self,
        ws: WorkspaceId,
        ds: DatasetId,
        parent: &CommitId,
    ) -> Result<Vec<Commit>>;
    async fn get_ref(&self, ws: WorkspaceId, ds: DatasetId, name: &str) -> Result<Option<Ref>>;
    async fn list_refs(&self, ws: WorkspaceId, ds: DatasetId, kind: RefKind) -> Result<Vec<Ref>>;
    /// A name already used by a branch or tag is a `REF_EXISTS` conflict.
    async fn create_ref(
        &self,
        ws: WorkspaceId,
        ds: DatasetId,
        r: &Ref,
        audit: AuditDraft,
    ) -> Result<()>;
    async fn delete_ref(
        &self,
        ws: WorkspaceId,
        ds: DatasetId,
        name: &str,
        kind: RefKind,
        audit: AuditDraft,
    ) -> Result<()>;
    async fn set_branch_protection(
        &self,
        ws: WorkspaceId,
        ds: DatasetId,
        name: &str,
        protected: bool,
        audit: AuditDraft,
    ) -> Result<()>;
}

/// One stored object as listed.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    pub path: String,
    pub size: u64,
    pub modified: crate::time::Timestamp,
}

/// Bytes by path: the local filesystem or S3. Writes are atomic (an object is whole or
/// absent) and idempotent.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, path: &str, bytes: bytes::Bytes) -> Result<()>;
    /// `None` when there is no such object.
    async fn get(&self, path: &str) -> Result<Option<bytes::Bytes>>;
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;
    async fn delete(&self, path: &str) -> Result<()>;
}
