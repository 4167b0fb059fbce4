//! Writing a version: records in, blocks and a manifest out.
//!
//! Records a parent version already holds (same fingerprint) are not stored again: the new
//! manifest points at the parent's block. New records are packed in arrival order into
//! blocks of about `block_bytes`, sealed on blocking threads (compression, encryption and
//! hashing are CPU work) and written while the next block fills; at most `parallel` blocks
//! are in flight, so memory stays bounded whatever the size of the import.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::block::{Block, BlockBuilder, Fingerprint};
use super::keys::Dek;
use super::manifest::{BlockRef, Manifest, Run};
use super::model::DatasetFormat;
use super::object::{self, ObjectId, ObjectKind, Owner};
use super::store::ObjectStore;
use crate::{CoreError, Result};

/// Tuning of the write path.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Raw bytes of records per block.
    pub block_bytes: usize,
    /// zstd level (negative levels are faster and compress less).
    pub zstd_level: i32,
    /// Blocks sealed and written concurrently.
    pub parallel: usize,
    /// Largest decompressed object accepted when reading (a bound against bombs).
    pub max_object_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            block_bytes: 1 << 20,
            zstd_level: 1,
            parallel: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2),
            max_object_bytes: 256 << 20,
        }
    }
}

/// The object path of `id` within a dataset.
pub fn object_path(owner: Owner, kind: ObjectKind, id: &ObjectId) -> String {
    format!("{}/{}", owner.dataset.0, id.path(kind))
}

/// Reads, verifies and opens an object; a missing object is an integrity error too (a
/// manifest or commit names it).
pub async fn read_object(
    store: &dyn ObjectStore,
    dek: &Dek,
    owner: Owner,
    kind: ObjectKind,
    id: &ObjectId,
    max: usize,
) -> Result<Vec<u8>> {
    let bytes = store
        .get(&object_path(owner, kind, id))
        .await?
        .ok_or_else(|| CoreError::Integrity(format!("object {id} is missing")))?;
    object::open(dek, owner, kind, id, &bytes, max)
}

pub async fn read_block(
    store: &dyn ObjectStore,
    dek: &Dek,
    owner: Owner,
    id: &ObjectId,
    max: usize,
) -> Result<Block> {
    Block::decode(read_object(store, dek, owner, ObjectKind::Block, id, max).await?)
}

pub async fn read_manifest(
    store: &dyn ObjectStore,
    dek: &Dek,
    owner: Owner,
    id: &ObjectId,
    max: usize,
) -> Result<Manifest> {
    Manifest::decode(&read_object(store, dek, owner, ObjectKind::Manifest, id, max).await?)
}

/// Figures of one write.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestStats {
    pub records: u64,
    /// Records found in the parent version and not stored again.
    pub reused_records: u64,
    pub new_blocks: u64,
    /// Bytes of the records of the version.
    pub bytes: u64,
    /// Bytes of objects this write stored (blocks and manifest).
    pub new_bytes: u64,
}

type Sealing = tokio::task::JoinHandle<Result<(u32, BlockRef)>>;

pub struct Ingest {
    owner: Owner,
    dek: Arc<Dek>,
    store: Arc<dyn ObjectStore>,
    cfg: IngestConfig,
    /// Records of the parent: fingerprint → (index in `parent_blocks`, record index).
    index: HashMap<Fingerprint, (u32, u32)>,
    parent_blocks: Vec<BlockRef>,
    /// Parent block index → index in `blocks`.
    used_parent: HashMap<u32, u32>,
    blocks: Vec<Option<BlockRef>>,
    runs: Vec<Run>,
    cur: BlockBuilder,
    cur_ord: u32,
    inflight: VecDeque<Sealing>,
    stats: IngestStats,
}

impl Ingest {
    /// A new version made of the records added, deduplicated against `parent`.
    pub async fn new(
        owner: Owner,
        dek: Arc<Dek>,
        store: Arc<dyn ObjectStore>,
        cfg: IngestConfig,
        parent: Option<&Manifest>,
    ) -> Result<Self> {
        let mut index = HashMap::new();
        let mut parent_blocks = vec![];
        if let Some(p) = parent {
            parent_blocks = p.blocks.clone();
            index.reserve(p.records as usize);
            for (bi, b) in p.blocks.iter().enumerate() {
                // Blocks of version 2 manifests have their fingerprints apart: ~16 bytes
                // read per record instead of the record.
                if let Some(f) = &b.fingerprints {
                    let fps = read_object(
                        &*store,
                        &dek,
                        owner,
                        ObjectKind::Fingerprints,
                        f,
                        cfg.max_object_bytes,
                    )
                    .await?;
                    if fps.len() != b.records as usize * 16 {
                        return Err(CoreError::Integrity(format!(
                            "fingerprints {f} do not match block {}",
                            b.id
                        )));
                    }
                    for (i, fp) in fps.chunks_exact(16).enumerate() {
                        index
                            .entry(fp.try_into().expect("16"))
                            .or_insert((bi as u32, i as u32));
                    }
                    continue;
                }
                let block = read_block(&*store, &dek, owner, &b.id, cfg.max_object_bytes).await?;
                for i in 0..block.len() {
                    index
                        .entry(block.fingerprint(i))
                        .or_insert((bi as u32, i as u32));
                }
            }
        }
        Ok(Self::empty(owner, dek, store, cfg, index, parent_blocks))
    }

    /// A new version: every record of `parent`, then the records added.
    pub fn appending(
        owner: Owner,
        dek: Arc<Dek>,
        store: Arc<dyn ObjectStore>,
        cfg: IngestConfig,
        parent: &Manifest,
    ) -> Self {
        let mut me = Self::empty(owner, dek, store, cfg, HashMap::new(), vec![]);
        me.blocks = parent.blocks.iter().copied().map(Some).collect();
        me.runs = parent.runs.clone();
        me.stats.records = parent.records;
        me.stats.reused_records = parent.records;
        me.stats.bytes = parent.bytes;
        me
    }

    fn empty(
        owner: Owner,
        dek: Arc<Dek>,
        store: Arc<dyn ObjectStore>,
        cfg: IngestConfig,
        index: HashMap<Fingerprint, (u32, u32)>,
        parent_blocks: Vec<BlockRef>,
    ) -> Self {
        let cur = BlockBuilder::with_capacity(cfg.block_bytes + cfg.block_bytes / 8);
        Self {
            owner,
            dek,
            store,
            cfg,
            index,
            parent_blocks,
            used_parent: HashMap::new(),
            blocks: vec![],
            runs: vec![],
            cur,
            cur_ord: 0,
            inflight: VecDeque::new(),
            stats: IngestStats::default(),
        }
    }

    fn push_ref(&mut self, block: u32, idx: u32) {
        if let Some(r) = self.runs.last_mut()
            && r.block == block
            && r.start + r.count == idx
        {
            r.count += 1;
            return;
        }
        self.runs.push(Run {
            block,
            start: idx,
            count: 1,
        });
    }

    /// Adds one record (its bytes, without a line ending). A full block starts sealing in
    /// the background; call [`Ingest::throttle`] between batches to bound the blocks in
    /// flight.
    pub fn add(&mut self, record: &[u8]) {
        let fp = self.dek.fingerprint(record);
        self.stats.records += 1;
        self.stats.bytes += record.len() as u64;
        if let Some(&(pb, i)) = self.index.get(&fp) {
            let next = self.blocks.len() as u32;
            let ord = *self.used_parent.entry(pb).or_insert(next);
            if ord == next {
                self.blocks.push(Some(self.parent_blocks[pb as usize]));
            }
            self.stats.reused_records += 1;
            self.push_ref(ord, i);
            return;
        }
        if self.cur.is_empty() {
            self.cur_ord = self.blocks.len() as u32;
            self.blocks.push(None);
        }
        self.cur.push(fp, record);
        let (ord, idx) = (self.cur_ord, self.cur.records() as u32 - 1);
        self.push_ref(ord, idx);
        if self.cur.data_len() >= self.cfg.block_bytes {
            self.seal_current();
        }
    }

    /// Waits until at most `parallel` blocks are in flight (and reports a failed write).
    pub async fn throttle(&mut self) -> Result<()> {
        while self.inflight.len() > self.cfg.parallel {
            self.settle_one().await?;
        }
        Ok(())
    }

    fn seal_current(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        let full = std::mem::replace(
            &mut self.cur,
            BlockBuilder::with_capacity(self.cfg.block_bytes + self.cfg.block_bytes / 8),
        );
        let (dek, owner, store, level, ord) = (
            Arc::clone(&self.dek),
            self.owner,
            Arc::clone(&self.store),
            self.cfg.zstd_level,
            self.cur_ord,
        );
        let records = full.records() as u32;
        let task = tokio::spawn(async move {
            let ((id, bytes), (fid, fbytes)) = tokio::task::spawn_blocking(move || {
                Ok::<_, CoreError>((
                    object::seal(&dek, owner, ObjectKind::Block, &full.encode(), level)?,
                    // Random bytes do not compress: the fastest level.
                    object::seal(
                        &dek,
                        owner,
                        ObjectKind::Fingerprints,
                        &full.fingerprints(),
                        -7,
                    )?,
                ))
            })
            .await
            .map_err(CoreError::internal)??;
            let stored = (bytes.len() + fbytes.len()) as u64;
            // The fingerprints first: a manifest never names a block whose fingerprints
            // are missing.
            store
                .put(
                    &object_path(owner, ObjectKind::Fingerprints, &fid),
                    fbytes.into(),
                )
                .await?;
            store
                .put(&object_path(owner, ObjectKind::Block, &id), bytes.into())
                .await?;
            Ok((
                ord,
                BlockRef {
                    id,
                    records,
                    stored_bytes: stored,
                    fingerprints: Some(fid),
                },
            ))
        });
        self.inflight.push_back(task);
    }

    async fn settle_one(&mut self) -> Result<()> {
        if let Some(t) = self.inflight.pop_front() {
            let (ord, r) = t.await.map_err(CoreError::internal)??;
            self.stats.new_blocks += 1;
            self.stats.new_bytes += r.stored_bytes;
            self.blocks[ord as usize] = Some(r);
        }
        Ok(())
    }

    /// Records added so far (with the parent's, when appending).
    pub fn records(&self) -> u64 {
        self.stats.records
    }

    /// Seals the last block and waits for every write. The manifest is not stored yet: the
    /// caller may find the version unchanged.
    pub async fn finish(
        mut self,
        format: DatasetFormat,
        header: Vec<u8>,
    ) -> Result<(Manifest, IngestStats)> {
        self.seal_current();
        while !self.inflight.is_empty() {
            self.settle_one().await?;
        }
        let blocks = std::mem::take(&mut self.blocks)
            .into_iter()
            .map(|b| b.ok_or_else(|| CoreError::internal("unsealed block")))
            .collect::<Result<Vec<_>>>()?;
        let manifest = Manifest {
            format,
            records: self.stats.records,
            bytes: self.stats.bytes,
            header,
            blocks,
            runs: std::mem::take(&mut self.runs),
        };
        Ok((manifest, self.stats.clone()))
    }
}

/// Seals and stores a manifest; returns its id and stored size.
pub async fn write_manifest(
    store: &dyn ObjectStore,
    dek: Arc<Dek>,
    owner: Owner,
    manifest: &Manifest,
    level: i32,
) -> Result<(ObjectId, u64)> {
    let payload = manifest.encode();
    let (id, bytes) = tokio::task::spawn_blocking(move || {
        object::seal(&dek, owner, ObjectKind::Manifest, &payload, level)
    })
    .await
    .map_err(CoreError::internal)??;
    let n = bytes.len() as u64;
    store
        .put(&object_path(owner, ObjectKind::Manifest, &id), bytes.into())
        .await?;
    Ok((id, n))
}

impl Drop for Ingest {
    /// An abandoned write stops its in-flight blocks (they become garbage for GC).
    fn drop(&mut self) {
        for t in &self.inflight {
            t.abort();
        }
    }
}
