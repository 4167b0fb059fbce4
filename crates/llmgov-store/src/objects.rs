//! The vault's object store over the `object_store` crate: the local filesystem by default
//! (under `DATA_DIR/objects/`), S3 in production.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt;
use llmgov_core::vault::store::{ObjectMeta, ObjectStore};
use llmgov_core::{CoreError, Result};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

pub struct Objects {
    inner: Arc<dyn object_store::ObjectStore>,
}

fn store_err(e: object_store::Error) -> CoreError {
    CoreError::Unavailable(format!("object store: {e}"))
}

fn path(p: &str) -> Result<Path> {
    Path::parse(p).map_err(|e| CoreError::internal(format!("bad object path: {e}")))
}

impl Objects {
    /// Objects as files under `dir` (created if missing). Writes go to a temporary file
    /// that is renamed into place, so an object is whole or absent.
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(store_err)?
            .with_automatic_cleanup(true);
        Ok(Self {
            inner: Arc::new(fs),
        })
    }
}

#[async_trait]
impl ObjectStore for Objects {
    async fn put(&self, p: &str, bytes: bytes::Bytes) -> Result<()> {
        self.inner
            .put(&path(p)?, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(store_err)
    }

    async fn get(&self, p: &str) -> Result<Option<bytes::Bytes>> {
        match self.inner.get(&path(p)?).await {
            Ok(r) => r.bytes().await.map(Some).map_err(store_err),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = path(prefix.trim_end_matches('/'))?;
        let mut s = self.inner.list(Some(&prefix));
        let mut out = vec![];
        while let Some(m) = s.next().await {
            let m = m.map_err(store_err)?;
            out.push(ObjectMeta {
                path: m.location.to_string(),
                size: m.size,
                modified: m.last_modified,
            });
        }
        Ok(out)
    }

    async fn delete(&self, p: &str) -> Result<()> {
        match self.inner.delete(&path(p)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }
}
