//! Reading versions: pages of records, one record, and streamed exports. Every read is
//! audited with the commit it read.

use std::sync::Arc;

use serde::Serialize;

use super::block::Block;
use super::ingest::read_block;
use super::manifest::Manifest;
use super::model::{Commit, Dataset, DatasetFormat};
use super::object::ObjectId;
use super::service::VaultService;
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::page::{ListQuery, Page};
use crate::{CoreError, Result};

/// One record of a version.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordItem {
    /// Position in the version (0-based).
    pub index: u64,
    /// The record's content id within the dataset (hex of its keyed fingerprint).
    pub record_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Box<serde_json::value::RawValue>,
}

/// The last few decoded blocks of one read. A version edited in place interleaves runs of
/// an old block with runs of the block holding its new records, so one block is not enough.
pub(super) struct BlockCache {
    slots: Vec<(ObjectId, Arc<Block>)>,
    cap: usize,
}

impl BlockCache {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            slots: Vec::with_capacity(cap),
            cap,
        }
    }

    fn lookup(&mut self, id: &ObjectId) -> Option<Arc<Block>> {
        let i = self.slots.iter().position(|(k, _)| k == id)?;
        let hit = self.slots.remove(i);
        let b = Arc::clone(&hit.1);
        self.slots.push(hit);
        Some(b)
    }

    fn insert(&mut self, id: ObjectId, b: Arc<Block>) {
        if self.slots.len() == self.cap {
            self.slots.remove(0);
        }
        self.slots.push((id, b));
    }

    fn contains(&self, id: &ObjectId) -> bool {
        self.slots.iter().any(|(k, _)| k == id)
    }

    pub(super) async fn get(
        &mut self,
        objects: &dyn super::store::ObjectStore,
        dek: &super::keys::Dek,
        owner: super::object::Owner,
        id: &ObjectId,
        max: usize,
    ) -> Result<Arc<Block>> {
        if let Some(i) = self.slots.iter().position(|(k, _)| k == id) {
            let hit = self.slots.remove(i);
            let b = Arc::clone(&hit.1);
            self.slots.push(hit);
            return Ok(b);
        }
        let b = Arc::new(read_block(objects, dek, owner, id, max).await?);
        if self.slots.len() == self.cap {
            self.slots.remove(0);
        }
        self.slots.push((*id, Arc::clone(&b)));
        Ok(b)
    }
}

impl VaultService {
    async fn audit_read(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        event: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        let audit = AuditDraft::new(p.workspace_id, ctx, event, "datasets")
            .resource("dataset", d.id)
            .details(details);
        self.store_audit(audit).await
    }

    /// A page of the records of `reference` (default branch when `None`).
    pub async fn records(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        reference: Option<&str>,
        q: &ListQuery,
    ) -> Result<(Commit, Page<RecordItem>)> {
        let c = self.resolve(d, reference).await?;
        let m = self.manifest_of(d, &c).await?;
        let from = q.offset() as u64;
        let items = self.read_range(d, &m, from, q.limit as u64).await?;
        self.audit_read(
            p,
            ctx,
            d,
            "datasets.read",
            serde_json::json!({ "commit": c.id, "ref": reference, "from": from, "count": items.len() }),
        )
        .await?;
        let total = m.records as i64;
        Ok((c, Page::new(items, total, q)))
    }

    /// A page of the records of `reference` that match `filter` (positions are the
    /// records' positions in the version; `total` counts every match, so the whole version
    /// is read).
    pub async fn records_where(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        reference: Option<&str>,
        filter: &super::filter::Filter,
        q: &ListQuery,
    ) -> Result<(Commit, Page<RecordItem>)> {
        let c = self.resolve(d, reference).await?;
        let m = self.manifest_of(d, &c).await?;
        let dek = self.dek(d).await?;
        let columns = (m.format == DatasetFormat::Csv).then(|| super::csv::parse_row(&m.header));
        let (from, limit) = (q.offset() as u64, q.limit as u64);
        let mut items = Vec::new();
        let (mut matched, mut index) = (0u64, 0u64);
        let mut cache = BlockCache::new(4);
        for s in m.segments(0, m.records) {
            let b = self.segment_block(d, &dek, &mut cache, &s).await?;
            for i in s.start as usize..(s.start + s.count) as usize {
                let text = record_json(columns.as_deref(), b.record(i));
                let not_json =
                    || CoreError::Integrity(format!("a record of block {} is not JSON", s.block));
                let v: serde_json::Value = serde_json::from_slice(&text).map_err(|_| not_json())?;
                if filter.matches(&v) {
                    if matched >= from && (items.len() as u64) < limit {
                        let data = String::from_utf8(text)
                            .ok()
                            .and_then(|t| serde_json::value::RawValue::from_string(t).ok())
                            .ok_or_else(not_json)?;
                        items.push(RecordItem {
                            index,
                            record_id: crate::hex::encode(&b.fingerprint(i)),
                            data,
                        });
                    }
                    matched += 1;
                }
                index += 1;
            }
        }
        self.audit_read(
            p,
            ctx,
            d,
            "datasets.read",
            serde_json::json!({ "commit": c.id, "ref": reference, "filtered": true, "count": items.len() }),
        )
        .await?;
        Ok((c, Page::new(items, matched as i64, q)))
    }

    /// Record `index` of `reference`.
    pub async fn record(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        reference: Option<&str>,
        index: u64,
    ) -> Result<(Commit, RecordItem)> {
        let c = self.resolve(d, reference).await?;
        let m = self.manifest_of(d, &c).await?;
        let item = self
            .read_range(d, &m, index, 1)
            .await?
            .pop()
            .ok_or(CoreError::not_found("record"))?;
        self.audit_read(
            p,
            ctx,
            d,
            "datasets.read",
            serde_json::json!({ "commit": c.id, "ref": reference, "from": index, "count": 1 }),
        )
        .await?;
        Ok((c, item))
    }

    /// The decoded block of a segment (through `cache`), checked to hold its records.
    async fn segment_block(
        &self,
        d: &Dataset,
        dek: &super::keys::Dek,
        cache: &mut BlockCache,
        s: &super::manifest::Segment,
    ) -> Result<Arc<Block>> {
        let b = cache
            .get(
                &*self.objects,
                dek,
                Self::owner(d),
                &s.block,
                self.cfg.ingest.max_object_bytes,
            )
            .await?;
        if (s.start + s.count) as usize > b.len() {
            return Err(CoreError::Integrity(format!(
                "block {} is shorter than its manifest says",
                s.block
            )));
        }
        Ok(b)
    }

    /// Records `from..from+count` of commit `c` and the version's record count, for the
    /// platform's own scans (the caller audits them).
    pub async fn system_read(
        &self,
        d: &Dataset,
        c: &Commit,
        from: u64,
        count: u64,
    ) -> Result<(u64, Vec<RecordItem>)> {
        let m = self.manifest_of(d, c).await?;
        let items = self.read_range(d, &m, from, count).await?;
        Ok((m.records, items))
    }

    async fn read_range(
        &self,
        d: &Dataset,
        m: &Manifest,
        from: u64,
        count: u64,
    ) -> Result<Vec<RecordItem>> {
        let dek = self.dek(d).await?;
        let mut out = Vec::with_capacity(count.min(1000) as usize);
        let mut index = from;
        let mut cache = BlockCache::new(4);
        // CSV rows are returned as objects keyed by the version's header.
        let columns = (m.format == super::model::DatasetFormat::Csv)
            .then(|| super::csv::parse_row(&m.header));
        for s in m.segments(from, count) {
            let b = self.segment_block(d, &dek, &mut cache, &s).await?;
            for i in s.start as usize..(s.start + s.count) as usize {
                let text = String::from_utf8(record_json(columns.as_deref(), b.record(i))).ok();
                let data = text
                    .and_then(|t| serde_json::value::RawValue::from_string(t).ok())
                    .ok_or_else(|| {
                        CoreError::Integrity(format!("a record of block {} is not JSON", s.block))
                    })?;
                out.push(RecordItem {
                    index,
                    record_id: crate::hex::encode(&b.fingerprint(i)),
                    data,
                });
                index += 1;
            }
        }
        Ok(out)
    }

    /// Starts an export of `reference` in `format` (default: the dataset's): the commit,
    /// the exact size when it is known before the first byte (an export in the dataset's
    /// own JSON Lines or CSV), and a stream of the bytes. JSON Lines: one record per line,
    /// each ending with `\n`. Blocks are read one ahead of the client; conversions run on a
    /// blocking thread. A block that fails verification ends the stream with an error, so a
    /// client never receives corrupt data as if it were whole.
    pub async fn export(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        reference: Option<&str>,
        format: Option<DatasetFormat>,
    ) -> Result<Export> {
        self.export_with(p, ctx, d, reference, format, None).await
    }

    /// An export whose records pass through `transform` (named in the audit entry), in
    /// chunks of whole records as JSON, before they are encoded: an anonymized export. An
    /// error of the transform ends the stream with it.
    pub async fn export_with(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        reference: Option<&str>,
        format: Option<DatasetFormat>,
        transform: Option<(String, RecordTransform)>,
    ) -> Result<Export> {
        let c = self.resolve(d, reference).await?;
        self.export_commit(p, ctx, d, c, reference, format, transform)
            .await
    }

    /// [`Self::export_with`] of a commit already resolved.
    #[allow(clippy::too_many_arguments)]
    pub async fn export_commit(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        c: Commit,
        reference: Option<&str>,
        format: Option<DatasetFormat>,
        transform: Option<(String, RecordTransform)>,
    ) -> Result<Export> {
        let m = self.manifest_of(d, &c).await?;
        let target = format.unwrap_or(m.format);
        let (transform_name, mut transform) = match transform {
            Some((n, t)) => (Some(n), Some(t)),
            None => (None, None),
        };
        // The encoder is made before anything is sent, so that a bad schema is an error
        // response rather than a broken stream.
        let native = target == m.format && target != DatasetFormat::Parquet && transform.is_none();
        let encoder = if native {
            None
        } else {
            let schema = match (m.format, m.header.is_empty()) {
                (DatasetFormat::Parquet, false) => Some(super::parquet::decode_schema(&m.header)?),
                _ => None,
            };
            Some(super::convert::encoder(target, schema)?)
        };
        self.audit_read(
            p,
            ctx,
            d,
            "datasets.export",
            serde_json::json!({ "commit": c.id, "ref": reference, "records": m.records, "format": target, "anonymized_with": transform_name }),
        )
        .await?;
        let dek = self.dek(d).await?;
        let objects = Arc::clone(&self.objects);
        let owner = Self::owner(d);
        let max = self.cfg.ingest.max_object_bytes;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let Some(encoder) = encoder else {
            let header = if m.header.is_empty() {
                vec![]
            } else {
                [m.header.as_slice(), b"\n"].concat()
            };
            let size = header.len() as u64 + m.bytes + m.records;
            tokio::spawn(async move {
                if !header.is_empty() && tx.send(Ok(header.into())).await.is_err() {
                    return;
                }
                let _ = send_records(&objects, &dek, owner, max, &m, None, &tx).await;
            });
            return Ok(Export {
                commit: c,
                format: target,
                size: Some(size),
                rx,
            });
        };
        // Records as JSON lines (CSV rows as objects) → the encoder's thread → the client.
        let (mid_tx, mut mid_rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes>>(2);
        let columns = (m.format == DatasetFormat::Csv).then(|| super::csv::parse_row(&m.header));
        tokio::spawn(async move {
            if let Err(e) = send_records(&objects, &dek, owner, max, &m, columns, &mid_tx).await {
                let _ = mid_tx.send(Err(e)).await;
            }
        });
        tokio::task::spawn_blocking(move || {
            let mut enc = encoder;
            while let Some(chunk) = mid_rx.blocking_recv() {
                let chunk = match transform.as_mut() {
                    Some(t) => chunk.and_then(|c| transform_lines(&c, t)),
                    None => chunk.map(|c| c.to_vec()),
                };
                let out = chunk.and_then(|c| enc.feed(&c));
                match out {
                    Ok(b) if b.is_empty() => {}
                    Ok(b) => {
                        if tx.blocking_send(Ok(b.into())).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(dataset = %owner.dataset, error = %e, "export stopped");
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            let last = enc.finish();
            let _ = tx.blocking_send(last.map(Into::into));
        });
        Ok(Export {
            commit: c,
            format: target,
            size: None,
            rx,
        })
    }
}

/// Changes a chunk of records (JSON values) in place; see [`VaultService::export_with`].
pub type RecordTransform = Box<dyn FnMut(&mut [serde_json::Value]) -> Result<()> + Send>;

/// JSON lines through a transform, back to JSON lines.
fn transform_lines(chunk: &[u8], t: &mut RecordTransform) -> Result<Vec<u8>> {
    let mut records = chunk
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .map_err(|_| CoreError::Integrity("a record is not JSON".into()))
        })
        .collect::<Result<Vec<serde_json::Value>>>()?;
    t(&mut records)?;
    let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 4);
    for r in &records {
        serde_json::to_writer(&mut out, r).map_err(CoreError::internal)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// A started export.
pub struct Export {
    pub commit: Commit,
    pub format: DatasetFormat,
    /// Exact size in bytes, when known before the transfer.
    pub size: Option<u64>,
    pub rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes>>,
}

/// A record as JSON text: CSV rows (when `columns` is given) become objects keyed by the
/// header, in its order; other records are JSON already.
fn record_json(columns: Option<&[String]>, record: &[u8]) -> Vec<u8> {
    match columns {
        Some(cols) => {
            let mut o = Vec::with_capacity(record.len() + 64);
            super::csv::write_row_json(cols, record, &mut o);
            o
        }
        None => record.to_vec(),
    }
}

/// Blocks decoded ahead of an export.
const READ_AHEAD: usize = 2;

/// Sends the records of `m` in chunks of about 256 KiB of whole lines; CSV rows become
/// JSON objects when `columns` is given. Errors that end the export early are sent, and
/// returned when the client is gone.
async fn send_records(
    objects: &Arc<dyn super::store::ObjectStore>,
    dek: &Arc<super::keys::Dek>,
    owner: super::object::Owner,
    max: usize,
    m: &Manifest,
    columns: Option<Vec<String>>,
    tx: &tokio::sync::mpsc::Sender<Result<bytes::Bytes>>,
) -> Result<()> {
    let mut cache = BlockCache::new(4);
    let mut buf = Vec::with_capacity(256 << 10);
    let segments = m.segments(0, m.records);
    // Blocks the next segments need are fetched, verified, decrypted and decompressed
    // ahead (on blocking threads) while this task copies records out.
    let mut inflight: std::collections::VecDeque<(
        ObjectId,
        tokio::task::JoinHandle<Result<Block>>,
    )> = std::collections::VecDeque::new();
    let mut ahead = 0usize;
    let fetch = |id: ObjectId| {
        let (objects, dek) = (Arc::clone(objects), Arc::clone(dek));
        tokio::spawn(async move {
            let path = super::ingest::object_path(owner, super::object::ObjectKind::Block, &id);
            let bytes = objects
                .get(&path)
                .await?
                .ok_or_else(|| CoreError::Integrity(format!("object {id} is missing")))?;
            tokio::task::spawn_blocking(move || {
                super::object::open(
                    &dek,
                    owner,
                    super::object::ObjectKind::Block,
                    &id,
                    &bytes,
                    max,
                )
                .and_then(Block::decode)
            })
            .await
            .map_err(CoreError::internal)?
        })
    };
    for (si, s) in segments.iter().enumerate() {
        ahead = ahead.max(si);
        while inflight.len() < READ_AHEAD && ahead < segments.len() {
            let id = segments[ahead].block;
            ahead += 1;
            if !cache.contains(&id) && !inflight.iter().any(|(x, _)| *x == id) {
                inflight.push_back((id, fetch(id)));
            }
        }
        let got = match cache.lookup(&s.block) {
            Some(b) => Ok(b),
            None => {
                let h = match inflight.iter().position(|(x, _)| *x == s.block) {
                    Some(i) => inflight.remove(i).expect("present").1,
                    // Fetched ahead but evicted since: fetch it again.
                    None => fetch(s.block),
                };
                match h.await.map_err(CoreError::internal) {
                    Ok(Ok(b)) => {
                        let b = Arc::new(b);
                        cache.insert(s.block, Arc::clone(&b));
                        Ok(b)
                    }
                    Ok(Err(e)) | Err(e) => Err(e),
                }
            }
        };
        let b = match got {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(dataset = %owner.dataset, error = %e, "export stopped");
                for (_, h) in &inflight {
                    h.abort();
                }
                let _ = tx.send(Err(e)).await;
                return Ok(());
            }
        };
        if (s.start + s.count) as usize > b.len() {
            let _ = tx
                .send(Err(CoreError::Integrity(format!(
                    "block {} is shorter than its manifest says",
                    s.block
                ))))
                .await;
            return Ok(());
        }
        for i in s.start..s.start + s.count {
            match &columns {
                Some(cols) => super::csv::write_row_json(cols, b.record(i as usize), &mut buf),
                None => buf.extend_from_slice(b.record(i as usize)),
            }
            buf.push(b'\n');
            if buf.len() >= 256 << 10 {
                if tx.send(Ok(std::mem::take(&mut buf).into())).await.is_err() {
                    return Ok(());
                }
                buf.reserve(256 << 10);
            }
        }
    }
    if !buf.is_empty() {
        let _ = tx.send(Ok(buf.into())).await;
    }
    Ok(())
}
