//! The vault's operations: datasets, pushes, reads and refs. Every change is audited in the
//! transaction that makes it; every read of records is audited too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ingest::{IngestConfig, read_manifest};
use super::keys::{Dek, KeyProvider};
use super::manifest::Manifest;
use super::model::{
    Commit, Dataset, DatasetName, DatasetPatch, DatasetSpec, MAIN, Ref, RefKind, check_descriptive,
};
use super::object::{ObjectId, Owner};
use super::store::{DatasetFilter, ObjectStore, VaultStore};
use crate::access::{Action, Permission, Resource};
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::ids::{DatasetId, WorkspaceId};
use crate::page::{ListQuery, Page};
use crate::time::now;
use crate::{CoreError, Result};

/// Settings of the vault.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub ingest: IngestConfig,
    /// Longest record (JSON line) accepted.
    pub max_record_bytes: usize,
    /// How long an unwrapped DEK is kept in memory.
    pub dek_cache_ttl: Duration,
    /// Where Parquet uploads are spooled while they are read (anonymous files, removed when
    /// the import ends); `None`: the system's temporary directory.
    pub spool_dir: Option<std::path::PathBuf>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            ingest: IngestConfig::default(),
            max_record_bytes: 16 << 20,
            dek_cache_ttl: Duration::from_secs(300),
            spool_dir: None,
        }
    }
}

pub struct VaultService {
    pub(super) store: Arc<dyn VaultStore>,
    pub(super) objects: Arc<dyn ObjectStore>,
    keys: Arc<dyn KeyProvider>,
    pub(super) cfg: VaultConfig,
    deks: Mutex<HashMap<DatasetId, (Arc<Dek>, Instant)>>,
    workspace_keys: Mutex<HashMap<WorkspaceId, (Arc<Dek>, Instant)>>,
}

/// Associated data of a dataset's wrapped DEK.
pub(super) fn key_aad(ws: WorkspaceId, ds: DatasetId) -> Vec<u8> {
    let mut a = ws.0.as_bytes().to_vec();
    a.extend_from_slice(ds.0.as_bytes());
    a
}

/// Associated data of a workspace's wrapped key: distinct from every dataset key's.
pub(super) fn workspace_key_aad(ws: WorkspaceId) -> Vec<u8> {
    let mut a = b"llmgov-workspace-key-v1".to_vec();
    a.extend_from_slice(ws.0.as_bytes());
    a
}

pub(super) fn need(p: &Principal, a: Action) -> Result<()> {
    p.require(Permission::new(Resource::Datasets, a))
}

impl VaultService {
    pub fn new(
        store: Arc<dyn VaultStore>,
        objects: Arc<dyn ObjectStore>,
        keys: Arc<dyn KeyProvider>,
        cfg: VaultConfig,
    ) -> Self {
        Self {
            store,
            objects,
            keys,
            cfg,
            deks: Mutex::new(HashMap::new()),
            workspace_keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn VaultStore> {
        &self.store
    }

    pub fn keys(&self) -> &Arc<dyn KeyProvider> {
        &self.keys
    }

    pub(super) fn owner(d: &Dataset) -> Owner {
        Owner {
            workspace: d.workspace_id,
            dataset: d.id,
        }
    }

    /// The dataset's DEK, from the cache or unwrapped by the key provider.
    pub(super) async fn dek(&self, d: &Dataset) -> Result<Arc<Dek>> {
        if let Some((k, at)) = self.deks.lock().expect("dek cache").get(&d.id)
            && at.elapsed() < self.cfg.dek_cache_ttl
        {
            return Ok(Arc::clone(k));
        }
        let wrapped = self.store.dataset_key(d.workspace_id, d.id).await?;
        let dek = Arc::new(
            self.keys
                .unwrap(&wrapped, &key_aad(d.workspace_id, d.id))
                .await?,
        );
        let mut cache = self.deks.lock().expect("dek cache");
        cache.retain(|_, (_, at)| at.elapsed() < self.cfg.dek_cache_ttl);
        cache.insert(d.id, (Arc::clone(&dek), Instant::now()));
        Ok(dek)
    }

    /// The workspace's own key (the PII operators' secret), created on first use: one
    /// per workspace even when instances race, wrapped by the KEK and rotated with it.
    pub async fn workspace_key(&self, ws: WorkspaceId) -> Result<Arc<Dek>> {
        if let Some((k, at)) = self.workspace_keys.lock().expect("key cache").get(&ws)
            && at.elapsed() < self.cfg.dek_cache_ttl
        {
            return Ok(Arc::clone(k));
        }
        let aad = workspace_key_aad(ws);
        let wrapped = match self.store.workspace_key(ws).await? {
            Some(w) => w,
            None => {
                let fresh = Dek::generate()?;
                let w = self.keys.wrap(&fresh, &aad).await?;
                self.store.insert_workspace_key(ws, &w).await?;
                // Another instance may have won the race: use what is stored.
                self.store
                    .workspace_key(ws)
                    .await?
                    .ok_or_else(|| crate::CoreError::internal("the workspace key vanished"))?
            }
        };
        let key = Arc::new(self.keys.unwrap(&wrapped, &aad).await?);
        let mut cache = self.workspace_keys.lock().expect("key cache");
        cache.retain(|_, (_, at)| at.elapsed() < self.cfg.dek_cache_ttl);
        cache.insert(ws, (Arc::clone(&key), Instant::now()));
        Ok(key)
    }

    pub(super) async fn store_audit(&self, audit: AuditDraft) -> Result<()> {
        self.store.record_access(audit).await
    }

    pub(super) async fn manifest_of(&self, d: &Dataset, c: &Commit) -> Result<Manifest> {
        let dek = self.dek(d).await?;
        let id = ObjectId::parse(&c.manifest)?;
        read_manifest(
            &*self.objects,
            &dek,
            Self::owner(d),
            &id,
            self.cfg.ingest.max_object_bytes,
        )
        .await
    }

    pub async fn create_dataset(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        spec: DatasetSpec,
    ) -> Result<Dataset> {
        let name = DatasetName::parse(&spec.name)?;
        check_descriptive(&spec.description, &spec.tags, &spec.metadata)?;
        let at = now();
        let d = Dataset {
            id: DatasetId::new(),
            workspace_id: p.workspace_id,
            name,
            description: spec.description,
            format: spec.format,
            schema: serde_json::json!({}),
            tags: spec.tags,
            metadata: spec.metadata,
            default_branch: MAIN.into(),
            created_by: Some(p.user_id),
            created_at: at,
            updated_at: at,
        };
        let dek = Dek::generate()?;
        let wrapped = self.keys.wrap(&dek, &key_aad(d.workspace_id, d.id)).await?;
        let audit = AuditDraft::new(p.workspace_id, ctx, "datasets.create", "datasets")
            .resource("dataset", d.id)
            .after(&d)
            .details(serde_json::json!({ "kek_version": wrapped.kek_version }));
        self.store.create_dataset(&d, &wrapped, audit).await?;
        Ok(d)
    }

    pub async fn get_dataset(&self, p: &Principal, id: DatasetId) -> Result<Dataset> {
        self.store.get_dataset(p.workspace_id, id).await
    }

    pub async fn list_datasets(
        &self,
        p: &Principal,
        filter: &DatasetFilter,
        q: &ListQuery,
    ) -> Result<Page<Dataset>> {
        self.store.list_datasets(p.workspace_id, filter, q).await
    }

    pub async fn update_dataset(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: DatasetId,
        patch: DatasetPatch,
    ) -> Result<Dataset> {
        let before = self.store.get_dataset(p.workspace_id, id).await?;
        let mut d = before.clone();
        if let Some(v) = patch.description {
            d.description = v;
        }
        if let Some(v) = patch.tags {
            d.tags = v;
        }
        if let Some(v) = patch.metadata {
            d.metadata = v;
        }
        check_descriptive(&d.description, &d.tags, &d.metadata)?;
        d.updated_at = now();
        let audit = AuditDraft::new(p.workspace_id, ctx, "datasets.update", "datasets")
            .resource("dataset", d.id)
            .before(&before)
            .after(&d);
        self.store.update_dataset(&d, audit).await?;
        Ok(d)
    }

    /// Datasets with a version made from one of `id`'s (downstream lineage).
    pub async fn dependents(&self, p: &Principal, id: DatasetId) -> Result<Vec<Dataset>> {
        self.store.get_dataset(p.workspace_id, id).await?;
        self.store.dependents(p.workspace_id, id).await
    }

    /// Deletes a dataset. A dataset other datasets were made from is refused
    /// (`409 DATASET_HAS_DEPENDENTS`, naming them) unless `force`; the audit entry lists
    /// the dependents either way. Returns them.
    pub async fn delete_dataset(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: DatasetId,
        force: bool,
    ) -> Result<Vec<Dataset>> {
        let d = self.store.get_dataset(p.workspace_id, id).await?;
        let dependents = self.store.dependents(p.workspace_id, id).await?;
        if !dependents.is_empty() && !force {
            let names: Vec<&str> = dependents
                .iter()
                .take(10)
                .map(|x| x.name.as_str())
                .collect();
            return Err(CoreError::conflict(
                "DATASET_HAS_DEPENDENTS",
                format!(
                    "{} dataset(s) were made from this one ({}{}); delete with force=true to delete it anyway (their lineage will show it as deleted)",
                    dependents.len(),
                    names.join(", "),
                    if dependents.len() > names.len() {
                        ", ..."
                    } else {
                        ""
                    }
                ),
            ));
        }
        let audit = AuditDraft::new(p.workspace_id, ctx, "datasets.delete", "datasets")
            .resource("dataset", d.id)
            .before(&d)
            .details(serde_json::json!({
                "dependents": dependents
                    .iter()
                    .map(|x| serde_json::json!({"id": x.id, "name": x.name.as_str()}))
                    .collect::<Vec<_>>(),
            }));
        self.store.delete_dataset(p.workspace_id, id, audit).await?;
        self.deks.lock().expect("dek cache").remove(&id);
        // The objects are unreachable now; removing them is best effort (GC finds leftovers).
        let prefix = format!("{}/", id.0);
        match self.objects.list(&prefix).await {
            Ok(list) => {
                for o in list {
                    if let Err(e) = self.objects.delete(&o.path).await {
                        tracing::warn!(dataset = %id, error = %e, "could not delete an object of a deleted dataset");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(dataset = %id, error = %e, "could not list the objects of a deleted dataset")
            }
        }
        Ok(dependents)
    }

    /// The commit `reference` names: a branch, a tag, or a commit id (or unique prefix).
    /// `None` means the dataset's default branch.
    pub async fn resolve(&self, d: &Dataset, reference: Option<&str>) -> Result<Commit> {
        let name = reference.unwrap_or(&d.default_branch);
        if name.is_empty() || name.len() > 100 {
            return Err(CoreError::invalid("ref", "a ref has 1 to 100 characters"));
        }
        if let Some(r) = self.store.get_ref(d.workspace_id, d.id, name).await? {
            return self
                .store
                .get_commit(d.workspace_id, d.id, r.commit_id.as_str())
                .await;
        }
        if name.len() >= 4 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self
                .store
                .get_commit(d.workspace_id, d.id, &name.to_ascii_lowercase())
                .await
                .map_err(|e| match e {
                    CoreError::NotFound { .. } => ref_not_found(name),
                    e => e,
                });
        }
        Err(ref_not_found(name))
    }

    pub(super) async fn branch(&self, d: &Dataset, name: &str) -> Result<Option<Ref>> {
        Ok(self
            .store
            .get_ref(d.workspace_id, d.id, name)
            .await?
            .filter(|r| r.kind == RefKind::Branch))
    }
}

pub(super) fn ref_not_found(_name: &str) -> CoreError {
    CoreError::not_found("ref")
}
