//! Keeping the object store honest: `fsck` verifies every reachable object, `gc` removes
//! objects nothing reaches.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use super::ingest::{object_path, read_manifest};
use super::object::{ObjectId, ObjectKind, verify};
use super::service::VaultService;
use crate::time::now;
use crate::{CoreError, Result};

/// A damaged object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Damage {
    pub dataset: String,
    /// The object's path in the store.
    pub object: String,
    pub problem: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FsckReport {
    pub datasets: u64,
    pub commits: u64,
    pub manifests: u64,
    pub blocks: u64,
    pub bytes: u64,
    pub damaged: Vec<Damage>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub reachable: u64,
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Unreachable objects younger than the grace period, left for a later run.
    pub kept_young: u64,
}

impl VaultService {
    /// Verifies every object a commit reaches: each manifest is read, verified and
    /// decrypted; each block is checked against its hash (`deep`: also decrypted and decoded).
    pub async fn fsck(&self, deep: bool) -> Result<FsckReport> {
        let mut r = FsckReport::default();
        for d in self.store.all_datasets().await? {
            r.datasets += 1;
            let owner = Self::owner(&d);
            let dek = self.dek(&d).await?;
            let mut seen = HashSet::new();
            for c in self.store.all_commits(d.workspace_id, d.id).await? {
                r.commits += 1;
                let mid = ObjectId::parse(&c.manifest)?;
                if !seen.insert(mid) {
                    continue;
                }
                r.manifests += 1;
                let m = match read_manifest(
                    &*self.objects,
                    &dek,
                    owner,
                    &mid,
                    self.cfg.ingest.max_object_bytes,
                )
                .await
                {
                    Ok(m) => m,
                    Err(e) => {
                        r.damaged.push(Damage {
                            dataset: d.name.as_str().into(),
                            object: object_path(owner, ObjectKind::Manifest, &mid),
                            problem: problem(&e),
                        });
                        continue;
                    }
                };
                for b in &m.blocks {
                    if !seen.insert(b.id) {
                        continue;
                    }
                    r.blocks += 1;
                    let mut objects = vec![(ObjectKind::Block, b.id)];
                    objects.extend(b.fingerprints.map(|f| (ObjectKind::Fingerprints, f)));
                    for (kind, id) in objects {
                        let path = object_path(owner, kind, &id);
                        if let Err(e) = self
                            .check_object(&dek, owner, kind, &id, b.records, deep, &mut r.bytes)
                            .await
                        {
                            r.damaged.push(Damage {
                                dataset: d.name.as_str().into(),
                                object: path,
                                problem: problem(&e),
                            });
                        }
                    }
                }
            }
        }
        Ok(r)
    }

    /// One block or fingerprints object: present and matching its hash; `deep`: also
    /// decrypted and holding `records` records.
    #[allow(clippy::too_many_arguments)]
    async fn check_object(
        &self,
        dek: &super::keys::Dek,
        owner: super::object::Owner,
        kind: ObjectKind,
        id: &ObjectId,
        records: u32,
        deep: bool,
        bytes_seen: &mut u64,
    ) -> Result<()> {
        let path = object_path(owner, kind, id);
        let Some(bytes) = self.objects.get(&path).await? else {
            return Err(CoreError::Integrity(format!("object {id} is missing")));
        };
        *bytes_seen += bytes.len() as u64;
        if !deep {
            return verify(id, &bytes);
        }
        let payload = super::object::open(
            dek,
            owner,
            kind,
            id,
            &bytes,
            self.cfg.ingest.max_object_bytes,
        )?;
        let count = match kind {
            ObjectKind::Fingerprints => payload.len() / 16,
            _ => super::block::Block::decode(payload)?.len(),
        };
        if count != records as usize {
            return Err(CoreError::Integrity(
                "record count differs from the manifest".into(),
            ));
        }
        Ok(())
    }

    /// Mark and sweep: deletes objects no commit reaches (including those of deleted
    /// datasets) once they are older than `grace`, so that the blocks of a push still in
    /// progress are never touched. `dry_run` only counts.
    pub async fn gc(&self, grace: Duration, dry_run: bool) -> Result<GcReport> {
        let mut live: HashSet<String> = HashSet::new();
        let mut reachable_ok = true;
        for d in self.store.all_datasets().await? {
            let owner = Self::owner(&d);
            let dek = self.dek(&d).await?;
            for c in self.store.all_commits(d.workspace_id, d.id).await? {
                let mid = ObjectId::parse(&c.manifest)?;
                live.insert(object_path(owner, ObjectKind::Manifest, &mid));
                match read_manifest(
                    &*self.objects,
                    &dek,
                    owner,
                    &mid,
                    self.cfg.ingest.max_object_bytes,
                )
                .await
                {
                    Ok(m) => {
                        for b in m.blocks {
                            live.insert(object_path(owner, ObjectKind::Block, &b.id));
                            if let Some(f) = &b.fingerprints {
                                live.insert(object_path(owner, ObjectKind::Fingerprints, f));
                            }
                        }
                    }
                    // A damaged manifest hides what it reaches: delete nothing this run.
                    Err(e) => {
                        tracing::error!(dataset = %d.id, error = %e, "gc: a manifest does not read; nothing is deleted");
                        reachable_ok = false;
                    }
                }
            }
        }
        if !reachable_ok {
            return Err(CoreError::Integrity(
                "a manifest failed verification; run `llmgov vault fsck` (garbage collection deleted nothing)".into(),
            ));
        }
        let cutoff = now() - chrono::Duration::from_std(grace).map_err(CoreError::internal)?;
        let mut r = GcReport {
            reachable: live.len() as u64,
            ..Default::default()
        };
        for o in self.objects.list("").await? {
            if live.contains(&o.path) {
                continue;
            }
            if o.modified > cutoff {
                r.kept_young += 1;
                continue;
            }
            if !dry_run {
                self.objects.delete(&o.path).await?;
            }
            r.deleted += 1;
            r.deleted_bytes += o.size;
        }
        Ok(r)
    }
}

fn problem(e: &CoreError) -> String {
    match e {
        CoreError::Integrity(m) => m.clone(),
        e => e.to_string(),
    }
}
