//! Resumable uploads: a large file is sent as parts at byte offsets (each part its own
//! request, so an interrupted transfer resumes from what arrived), then committed as one
//! push. Parts are sealed like every vault object (the dataset's key, associated data
//! naming workspace, dataset and kind) and kept in the object store, not on one server's
//! disk, so any instance behind a load balancer can take the next part or the commit.
//!
//! Layout under the dataset's prefix: `uploads/<upload id>/owner-<user id>` (an empty
//! marker) and `uploads/<upload id>/<offset, 20 digits>-<length>-<object id>` per part. An
//! upload left alone is garbage once older than the garbage collector's grace period.

use futures_util::StreamExt;
use serde::Serialize;

use super::model::Dataset;
use super::object::{ObjectId, ObjectKind, open, seal};
use super::push::{PushOptions, PushResult};
use super::service::VaultService;
use crate::audit::RequestContext;
use crate::identity::Principal;
use crate::{CoreError, Result};

/// Largest part accepted.
pub const MAX_PART_BYTES: usize = 64 << 20;

/// Where an upload stands.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadStatus {
    pub upload_id: String,
    /// Bytes received so far, contiguous from 0: the offset of the next part.
    pub received: u64,
    pub parts: u64,
}

struct Part {
    offset: u64,
    len: u64,
    id: ObjectId,
    path: String,
}

fn not_found() -> CoreError {
    CoreError::not_found("upload")
}

fn check_id(id: &str) -> Result<()> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(not_found())
    }
}

impl VaultService {
    fn upload_prefix(d: &Dataset, id: &str) -> String {
        format!("{}/uploads/{id}/", d.id.0)
    }

    /// Starts an upload owned by the caller.
    pub async fn start_upload(&self, p: &Principal, d: &Dataset) -> Result<UploadStatus> {
        let mut raw = [0u8; 16];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| CoreError::internal("no randomness"))?;
        let id = crate::hex::encode(&raw);
        self.objects
            .put(
                &format!("{}owner-{}", Self::upload_prefix(d, &id), p.user_id.0),
                bytes::Bytes::new(),
            )
            .await?;
        Ok(UploadStatus {
            upload_id: id,
            received: 0,
            parts: 0,
        })
    }

    /// The parts of an upload of the caller's, in order; an upload of another user is not
    /// found, and a gap (parts collected as garbage) is `410`-like `UPLOAD_EXPIRED`.
    async fn upload_parts(&self, p: &Principal, d: &Dataset, id: &str) -> Result<Vec<Part>> {
        check_id(id)?;
        let prefix = Self::upload_prefix(d, id);
        let mut owner = None;
        let mut parts = vec![];
        for o in self.objects.list(&prefix).await? {
            let name = o.path.rsplit('/').next().unwrap_or("");
            if let Some(u) = name.strip_prefix("owner-") {
                owner = Some(u.to_string());
                continue;
            }
            let mut f = name.splitn(3, '-');
            let (Some(offset), Some(len), Some(oid)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let (Ok(offset), Ok(len), Ok(oid)) = (
                offset.parse::<u64>(),
                len.parse::<u64>(),
                ObjectId::parse(oid),
            ) else {
                continue;
            };
            parts.push(Part {
                offset,
                len,
                id: oid,
                path: o.path.clone(),
            });
        }
        if owner.as_deref() != Some(p.user_id.0.to_string().as_str()) {
            return Err(not_found());
        }
        parts.sort_by_key(|x| x.offset);
        let mut end = 0;
        let mut whole = Vec::with_capacity(parts.len());
        for x in parts {
            if x.offset < end {
                // The same part sent twice (a retry whose answer was lost): keep one.
                continue;
            }
            if x.offset > end {
                return Err(CoreError::conflict(
                    "UPLOAD_EXPIRED",
                    "parts of this upload were collected as garbage; start a new upload",
                ));
            }
            end = x.offset + x.len;
            whole.push(x);
        }
        Ok(whole)
    }

    fn status(id: &str, parts: &[Part]) -> UploadStatus {
        UploadStatus {
            upload_id: id.to_string(),
            received: parts.last().map(|x| x.offset + x.len).unwrap_or(0),
            parts: parts.len() as u64,
        }
    }

    pub async fn upload_status(
        &self,
        p: &Principal,
        d: &Dataset,
        id: &str,
    ) -> Result<UploadStatus> {
        Ok(Self::status(id, &self.upload_parts(p, d, id).await?))
    }

    /// Stores the part that starts at `offset`, which must be the bytes received so far
    /// (`409 UPLOAD_OFFSET_MISMATCH` otherwise, naming them). A part already received at
    /// that offset with the same length is accepted again without change (a retry).
    pub async fn upload_part(
        &self,
        p: &Principal,
        d: &Dataset,
        id: &str,
        offset: u64,
        bytes: bytes::Bytes,
    ) -> Result<UploadStatus> {
        if bytes.is_empty() || bytes.len() > MAX_PART_BYTES {
            return Err(CoreError::invalid(
                "body",
                format!("a part has 1 byte to {} MiB", MAX_PART_BYTES >> 20),
            ));
        }
        let parts = self.upload_parts(p, d, id).await?;
        let received = parts.last().map(|x| x.offset + x.len).unwrap_or(0);
        if offset < received
            && parts
                .iter()
                .any(|x| x.offset == offset && x.len == bytes.len() as u64)
        {
            return Ok(Self::status(id, &parts));
        }
        if offset != received {
            return Err(CoreError::conflict(
                "UPLOAD_OFFSET_MISMATCH",
                format!("this upload has {received} bytes; send the part at offset {received}"),
            ));
        }
        let dek = self.dek(d).await?;
        let owner = Self::owner(d);
        let level = self.cfg.ingest.zstd_level;
        let len = bytes.len();
        let (oid, sealed) = tokio::task::spawn_blocking(move || {
            seal(&dek, owner, ObjectKind::UploadPart, &bytes, level)
        })
        .await
        .map_err(CoreError::internal)??;
        self.objects
            .put(
                &format!(
                    "{}{offset:020}-{len}-{}",
                    Self::upload_prefix(d, id),
                    oid.hex()
                ),
                sealed.into(),
            )
            .await?;
        Ok(UploadStatus {
            upload_id: id.to_string(),
            received: offset + len as u64,
            parts: parts.len() as u64 + 1,
        })
    }

    /// Imports the upload's bytes as one push (any format, as `import`), then removes
    /// the parts. Nothing is committed unless every part reads back intact.
    pub async fn commit_upload(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        id: &str,
        opts: PushOptions,
    ) -> Result<PushResult> {
        let parts = self.upload_parts(p, d, id).await?;
        if parts.is_empty() {
            return Err(CoreError::invalid("upload", "the upload has no parts"));
        }
        let dek = self.dek(d).await?;
        let owner = Self::owner(d);
        let objects = std::sync::Arc::clone(&self.objects);
        let paths: Vec<String> = parts.iter().map(|x| x.path.clone()).collect();
        let body = futures_util::stream::iter(parts)
            .then(move |x| {
                let (objects, dek) = (std::sync::Arc::clone(&objects), std::sync::Arc::clone(&dek));
                async move {
                    let stored = objects.get(&x.path).await?.ok_or_else(|| {
                        CoreError::Integrity(format!("upload part at {} is missing", x.offset))
                    })?;
                    tokio::task::spawn_blocking(move || {
                        open(
                            &dek,
                            owner,
                            ObjectKind::UploadPart,
                            &x.id,
                            &stored,
                            MAX_PART_BYTES,
                        )
                        .map(bytes::Bytes::from)
                    })
                    .await
                    .map_err(CoreError::internal)?
                }
            })
            .map(|r| r.map_err(|e| e.to_string()));
        let r = self.push(p, ctx, d, opts, Box::pin(body)).await;
        // Invalid data will not become valid: drop the parts then too.
        if matches!(r, Ok(_) | Err(CoreError::Unprocessable { .. })) {
            self.remove_upload(d, id, &paths).await;
        }
        r
    }

    /// Abandons an upload of the caller's.
    pub async fn abort_upload(&self, p: &Principal, d: &Dataset, id: &str) -> Result<()> {
        let parts = self.upload_parts(p, d, id).await;
        match parts {
            Ok(_) | Err(CoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let all: Vec<String> = self
            .objects
            .list(&Self::upload_prefix(d, id))
            .await?
            .into_iter()
            .map(|o| o.path)
            .collect();
        self.remove_upload(d, id, &all).await;
        Ok(())
    }

    async fn remove_upload(&self, d: &Dataset, id: &str, parts: &[String]) {
        let mut all = parts.to_vec();
        if let Ok(list) = self.objects.list(&Self::upload_prefix(d, id)).await {
            all.extend(list.into_iter().map(|o| o.path));
        }
        all.sort();
        all.dedup();
        for path in all {
            if let Err(e) = self.objects.delete(&path).await {
                tracing::warn!(dataset = %d.id, error = %e, "could not delete an upload part; garbage collection will");
            }
        }
    }
}
