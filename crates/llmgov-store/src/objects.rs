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
    location: String,
}

/// An S3 (or S3-compatible) bucket. Unset credentials come from the usual `AWS_*`
/// environment variables (and instance metadata on AWS).
#[derive(Clone, Default)]
pub struct S3Config {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`, ...; unset: AWS.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Keys are written under this prefix, so that one bucket can serve several deployments.
    pub prefix: Option<String>,
    /// `https://BUCKET.endpoint/KEY` instead of `https://endpoint/BUCKET/KEY`.
    pub virtual_hosted_style: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .finish()
    }
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
            location: dir.display().to_string(),
        })
    }

    /// Objects in an S3 bucket (which must exist). Nothing is sent until the first use;
    /// [`Objects::check`] reaches the bucket at start-up.
    pub fn s3(cfg: &S3Config) -> Result<Self> {
        use object_store::aws::AmazonS3Builder;
        if cfg.bucket.trim().is_empty() {
            return Err(CoreError::invalid(
                "storage.bucket",
                "an S3 bucket is required",
            ));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_virtual_hosted_style_request(cfg.virtual_hosted_style);
        if let Some(e) = &cfg.endpoint {
            b = b
                .with_endpoint(e.trim_end_matches('/'))
                .with_allow_http(e.starts_with("http://"));
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &cfg.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        if let Some(t) = &cfg.session_token {
            b = b.with_token(t);
        }
        let s3 = b
            .build()
            .map_err(|e| CoreError::Unavailable(format!("S3 configuration: {e}")))?;
        let prefix = cfg
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty());
        let location = format!(
            "s3://{}/{}{}",
            cfg.bucket,
            prefix.unwrap_or(""),
            cfg.endpoint
                .as_deref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default()
        );
        let inner: Arc<dyn object_store::ObjectStore> = match prefix {
            Some(p) => Arc::new(object_store::prefix::PrefixStore::new(s3, path(p)?)),
            None => Arc::new(s3),
        };
        Ok(Self { inner, location })
    }

    /// Where the objects are, for logs (never credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Reaches the store once (a listing of one page), so that a wrong endpoint, bucket or
    /// credential is an error at start-up rather than at the first push.
    pub async fn check(&self) -> Result<()> {
        let mut s = self.inner.list(None);
        match s.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(CoreError::Unavailable(format!(
                "object store {}: {e}",
                self.location
            ))),
        }
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
