//! Merging a branch into another and reverting a commit, at record level. Both build the
//! new version from the records of existing versions (no record is copied: the manifest
//! points at the blocks that hold them).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::block::Fingerprint;
use super::ingest::{IngestStats, read_block};
use super::jsonl::SchemaInference;
use super::manifest::{BlockRef, Manifest, Run};
use super::merge3::{self, Pick};
use super::model::{Commit, Dataset};
use super::object::ObjectId;
use super::push::{NewVersion, PushResult};
use super::service::VaultService;
use crate::audit::RequestContext;
use crate::identity::Principal;
use crate::{CoreError, Result};

/// Records of one version: fingerprints, and where each record lives.
pub(super) struct Loaded {
    pub fps: Vec<Fingerprint>,
    /// (index in the table's blocks, record index in the block, length in bytes).
    pub at: Vec<(u32, u32, u32)>,
}

/// Blocks read while loading versions, shared so that each is read once.
#[derive(Default)]
pub(super) struct BlockTable {
    index: HashMap<ObjectId, u32>,
    blocks: Vec<BlockRef>,
    records: Vec<Vec<(Fingerprint, u32)>>,
}

/// Most commits walked to find a merge base.
const MAX_WALK: usize = 100_000;

impl VaultService {
    pub(super) async fn load_version(
        &self,
        d: &Dataset,
        m: &Manifest,
        t: &mut BlockTable,
    ) -> Result<Loaded> {
        let dek = self.dek(d).await?;
        let mut out = Loaded {
            fps: Vec::with_capacity(m.records as usize),
            at: Vec::with_capacity(m.records as usize),
        };
        for r in &m.runs {
            let b = m.blocks[r.block as usize];
            let ord = match t.index.get(&b.id) {
                Some(o) => *o,
                None => {
                    let blk = read_block(
                        &*self.objects,
                        &dek,
                        Self::owner(d),
                        &b.id,
                        self.cfg.ingest.max_object_bytes,
                    )
                    .await?;
                    let o = t.blocks.len() as u32;
                    t.index.insert(b.id, o);
                    t.blocks.push(b);
                    t.records.push(
                        (0..blk.len())
                            .map(|i| (blk.fingerprint(i), blk.record(i).len() as u32))
                            .collect(),
                    );
                    o
                }
            };
            let recs = &t.records[ord as usize];
            if (r.start + r.count) as usize > recs.len() {
                return Err(CoreError::Integrity(format!(
                    "block {} is shorter than its manifest says",
                    b.id
                )));
            }
            for i in r.start..r.start + r.count {
                let (fp, len) = recs[i as usize];
                out.fps.push(fp);
                out.at.push((ord, i, len));
            }
        }
        Ok(out)
    }

    /// The nearest common ancestor of two commits (breadth-first over all parents).
    async fn merge_base(&self, d: &Dataset, a: &Commit, b: &Commit) -> Result<Option<Commit>> {
        let mut seen_a = HashSet::new();
        let mut q = VecDeque::from([a.clone()]);
        while let Some(c) = q.pop_front() {
            if seen_a.len() > MAX_WALK {
                return Err(CoreError::invalid(
                    "source",
                    "history too long to find a merge base",
                ));
            }
            if seen_a.insert(c.id.clone()) {
                for p in &c.parents {
                    q.push_back(
                        self.store
                            .get_commit(d.workspace_id, d.id, p.as_str())
                            .await?,
                    );
                }
            }
        }
        let mut seen_b = HashSet::new();
        let mut q = VecDeque::from([b.clone()]);
        while let Some(c) = q.pop_front() {
            if seen_a.contains(&c.id) {
                return Ok(Some(c));
            }
            if seen_b.len() > MAX_WALK {
                break;
            }
            if seen_b.insert(c.id.clone()) {
                for p in &c.parents {
                    q.push_back(
                        self.store
                            .get_commit(d.workspace_id, d.id, p.as_str())
                            .await?,
                    );
                }
            }
        }
        Ok(None)
    }

    /// Three-way merge of `theirs` into `ours` from `base`; the merged manifest or a
    /// `MERGE_CONFLICT` error listing the conflicting records.
    /// `None` is the empty version (a merge without common ancestor, a root commit's parent).
    async fn load_commit(
        &self,
        d: &Dataset,
        c: Option<&Commit>,
        t: &mut BlockTable,
    ) -> Result<(Loaded, Vec<u8>)> {
        match c {
            Some(c) => {
                let m = self.manifest_of(d, c).await?;
                Ok((self.load_version(d, &m, t).await?, m.header))
            }
            None => Ok((
                Loaded {
                    fps: vec![],
                    at: vec![],
                },
                vec![],
            )),
        }
    }

    async fn merge_versions(
        &self,
        d: &Dataset,
        base: Option<&Commit>,
        ours: &Commit,
        theirs: Option<&Commit>,
    ) -> Result<Manifest> {
        let mut t = BlockTable::default();
        let (lb, _) = self.load_commit(d, base, &mut t).await?;
        let (lo, header) = self.load_commit(d, Some(ours), &mut t).await?;
        let (lt, _) = self.load_commit(d, theirs, &mut t).await?;
        let (merged, lb, lo, lt) = tokio::task::spawn_blocking(move || {
            let r = merge3::merge(&lb.fps, &lo.fps, &lt.fps, Duration::from_secs(20));
            (r, lb, lo, lt)
        })
        .await
        .map_err(CoreError::internal)?;
        let picks = merged.map_err(|c| conflict_error(&c, &lo, &lt))?;
        let at: Vec<(u32, u32, u32)> = picks
            .iter()
            .map(|p| match *p {
                Pick::Base(i) => lb.at[i],
                Pick::Ours(i) => lo.at[i],
                Pick::Theirs(i) => lt.at[i],
            })
            .collect();
        let mut m = build_manifest(d.format, &t, &at);
        m.header = header;
        Ok(m)
    }

    /// Merges `source` (a ref or commit) into branch `target`: a commit with both heads as
    /// parents. Conflicting changes to the same records are a `409 MERGE_CONFLICT` listing
    /// them; nothing is committed.
    pub async fn merge(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        source: &str,
        target: Option<&str>,
        message: Option<String>,
    ) -> Result<PushResult> {
        let (branch, head) = self.target(p, d, target).await?;
        let head = head
            .ok_or_else(|| CoreError::invalid("target", "the target branch has no commit yet"))?;
        let src = self.resolve(d, Some(source)).await?;
        let base = self.merge_base(d, &head, &src).await?;
        let head_manifest = self.manifest_of(d, &head).await?;
        if base.as_ref().is_some_and(|b| b.id == src.id) || src.manifest == head.manifest {
            return Ok(unchanged(head, branch.as_str()));
        }
        let manifest = self
            .merge_versions(d, base.as_ref(), &head, Some(&src))
            .await?;
        let mut schema = SchemaInference::from_schema(&head.schema);
        schema.absorb(&src.schema);
        let merged_id = src.id.clone();
        let transformation = serde_json::json!({ "type": "merge", "source": source, "source_commit": src.id, "base": base.as_ref().map(|b| &b.id) });
        let message = message.or_else(|| Some(format!("Merge {source} into {}", branch.as_str())));
        self.commit_version(
            p,
            ctx,
            d,
            NewVersion {
                branch,
                head: Some(head),
                parent: Some(&head_manifest),
                stats: stats_of(&manifest),
                manifest,
                schema,
                message,
                transformation,
                merged: Some(merged_id),
            },
        )
        .await
    }

    /// Undoes the changes `commit` made, on branch `branch`, as a new commit.
    pub async fn revert(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        commit: &str,
        branch: Option<&str>,
        message: Option<String>,
    ) -> Result<PushResult> {
        let (branch, head) = self.target(p, d, branch).await?;
        let head =
            head.ok_or_else(|| CoreError::invalid("branch", "the branch has no commit yet"))?;
        let c = self.resolve(d, Some(commit)).await?;
        let parent = match c.parents.first() {
            Some(id) => Some(
                self.store
                    .get_commit(d.workspace_id, d.id, id.as_str())
                    .await?,
            ),
            None => None,
        };
        let head_manifest = self.manifest_of(d, &head).await?;
        // Three-way: from the reverted commit, to the head on one side and to its parent on
        // the other.
        let manifest = self
            .merge_versions(d, Some(&c), &head, parent.as_ref())
            .await?;
        let schema = SchemaInference::from_schema(&head.schema);
        let transformation = serde_json::json!({ "type": "revert", "reverted": c.id });
        let message = message.or_else(|| Some(format!("Revert {}", &c.id.as_str()[..12])));
        self.commit_version(
            p,
            ctx,
            d,
            NewVersion {
                branch,
                head: Some(head),
                parent: Some(&head_manifest),
                stats: stats_of(&manifest),
                manifest,
                schema,
                message,
                transformation,
                merged: None,
            },
        )
        .await
    }
}

fn unchanged(head: Commit, branch: &str) -> PushResult {
    PushResult {
        stats: IngestStats {
            records: head.record_count,
            reused_records: head.record_count,
            bytes: head.byte_count,
            ..Default::default()
        },
        commit: head,
        branch: branch.into(),
        changed: false,
        skipped: vec![],
        skipped_count: 0,
        blank_lines: 0,
    }
}

fn stats_of(m: &Manifest) -> IngestStats {
    IngestStats {
        records: m.records,
        reused_records: m.records,
        new_blocks: 0,
        bytes: m.bytes,
        new_bytes: 0,
    }
}

/// A manifest of the records at `l.at`, in order.
fn build_manifest(
    format: super::model::DatasetFormat,
    t: &BlockTable,
    at: &[(u32, u32, u32)],
) -> Manifest {
    let mut local: HashMap<u32, u32> = HashMap::new();
    let mut m = Manifest::empty(format);
    for &(ord, idx, len) in at {
        let next = m.blocks.len() as u32;
        let b = *local.entry(ord).or_insert(next);
        if b == next {
            m.blocks.push(t.blocks[ord as usize]);
        }
        m.records += 1;
        m.bytes += len as u64;
        match m.runs.last_mut() {
            Some(r) if r.block == b && r.start + r.count == idx => r.count += 1,
            _ => m.runs.push(Run {
                block: b,
                start: idx,
                count: 1,
            }),
        }
    }
    m
}

fn conflict_error(conflicts: &[merge3::Conflict], ours: &Loaded, theirs: &Loaded) -> CoreError {
    let ids = |l: &Loaded, (a, b): (usize, usize)| -> Vec<String> {
        l.fps
            .get(a..b)
            .unwrap_or(&[])
            .iter()
            .take(10)
            .map(|f| crate::hex::encode(f))
            .collect()
    };
    let list: Vec<serde_json::Value> = conflicts
        .iter()
        .take(100)
        .map(|c| {
            serde_json::json!({
                "base": {"from": c.base.0, "to": c.base.1},
                "ours": {"from": c.ours.0, "to": c.ours.1, "record_ids": ids(ours, c.ours)},
                "theirs": {"from": c.theirs.0, "to": c.theirs.1, "record_ids": ids(theirs, c.theirs)},
            })
        })
        .collect();
    CoreError::Unprocessable {
        code: "MERGE_CONFLICT",
        message: format!(
            "{} conflict(s): the same records were changed differently on both sides; nothing was committed",
            conflicts.len()
        ),
        details: [
            ("conflicts".to_string(), serde_json::Value::Array(list)),
            ("count".to_string(), conflicts.len().into()),
        ]
        .into_iter()
        .collect(),
    }
}
