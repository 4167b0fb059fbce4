//! The Data Vault over each backend: the fixture (a vault on the test database, a local
//! object store and a local key file) and its scenarios by topic.

use std::sync::Arc;

use futures_util::stream;
use llmgov_core::CoreError;
use llmgov_core::access::{Action, Permission, PermissionSet, Resource};
use llmgov_core::identity::{Principal, PrincipalKind};
use llmgov_core::ids::UserId;
use llmgov_core::page::ListQuery;
use llmgov_core::vault::keys::{KdfParams, LocalKeyProvider};
use llmgov_core::vault::model::{DatasetSpec, RefKind};
use llmgov_core::vault::push::{OnError, PushOptions, PushResult};
use llmgov_core::vault::store::ObjectStore;
use llmgov_core::vault::{VaultConfig, VaultService};
use llmgov_store::objects::Objects;

use crate::{Fx, ctx};

mod formats;
mod maintenance;
mod versions;

pub(crate) struct Vault {
    pub svc: VaultService,
    pub objects: Arc<Objects>,
    pub p: Principal,
    pub dir: tempfile::TempDir,
}

impl Vault {
    pub fn svc_objects(&self) -> &Objects {
        &self.objects
    }
}

pub(crate) fn vault(fx: &Fx, block_bytes: usize) -> Vault {
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyProvider::create(
        &dir.path().join("kek.json"),
        "a test passphrase",
        KdfParams::minimum(),
    )
    .unwrap();
    let mut cfg = VaultConfig::default();
    cfg.ingest.block_bytes = block_bytes;
    let store: Arc<dyn llmgov_core::vault::store::VaultStore> = fx.store.clone();
    let objects = Arc::new(if fx.s3 {
        Objects::s3(&llmgov_store::testing::s3_config()).unwrap()
    } else {
        Objects::local(&dir.path().join("objects")).unwrap()
    });
    let svc = VaultService::new(store, objects.clone(), Arc::new(keys), cfg);
    let p = Principal {
        user_id: UserId::new(),
        email: "owner@example.com".into(),
        workspace_id: fx.ws,
        roles: vec!["data_owner".into()],
        permissions: Action::ALL
            .iter()
            .map(|a| Permission::new(Resource::Datasets, *a))
            .collect::<PermissionSet>(),
        kind: PrincipalKind::User {
            session: "s".into(),
        },
    };
    Vault {
        svc,
        objects,
        p,
        dir,
    }
}

/// Each vault scenario runs on SQLite and PostgreSQL, each with the local and the S3 object
/// store.
#[macro_export]
macro_rules! vault_conformance {
    ($($name:ident),* $(,)?) => {
        $crate::conformance!($($name),*);
        mod sqlite_s3 {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   let mut fx = $crate::open(llmgov_store::Backend::Sqlite).await;
                   fx.s3 = true;
                   super::$name(fx).await
               } )*
        }
        mod postgres_s3 {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   let mut fx = $crate::open(llmgov_store::Backend::Postgres).await;
                   fx.s3 = true;
                   super::$name(fx).await
               } )*
        }
    };
}

/// The block objects of a dataset, sorted by path.
pub(crate) async fn block_paths(v: &Vault, d: &llmgov_core::vault::model::Dataset) -> Vec<String> {
    let mut paths: Vec<String> = v
        .objects
        .list(&format!("{}/blocks/", d.id.0))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    paths.sort();
    paths
}

/// Flips one bit of a stored object, as a failing disk or an attacker would.
pub(crate) async fn flip_bit(v: &Vault, path: &str, at: impl Fn(usize) -> usize) {
    let mut b = v.objects.get(path).await.unwrap().expect("object").to_vec();
    let i = at(b.len());
    b[i] ^= 0x40;
    v.objects.put(path, bytes::Bytes::from(b)).await.unwrap();
}

pub(crate) fn lines(n: usize, edit: impl Fn(usize) -> Option<String>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let l = edit(i).unwrap_or_else(|| {
            format!(r#"{{"id":{i},"messages":[{{"role":"user","content":"question number {i} with some padding text"}}]}}"#)
        });
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

pub(crate) async fn push(
    v: &Vault,
    d: &llmgov_core::vault::model::Dataset,
    body: &[u8],
    chunk: usize,
) -> Result<PushResult, CoreError> {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .chunks(chunk)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    v.svc
        .push(
            &v.p,
            &ctx(),
            d,
            PushOptions {
                branch: None,
                message: Some("push".into()),
                on_error: OnError::Reject,
                sources: vec![],
            },
            stream::iter(chunks),
        )
        .await
}

pub(crate) async fn export(
    v: &Vault,
    d: &llmgov_core::vault::model::Dataset,
    r: Option<&str>,
) -> Result<Vec<u8>, CoreError> {
    let mut rx = v.svc.export(&v.p, &ctx(), d, r, None).await?.rx;
    let mut out = Vec::new();
    while let Some(c) = rx.recv().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

/// Appends JSON records to the default branch.
pub(crate) async fn append(
    v: &Vault,
    d: &llmgov_core::vault::model::Dataset,
    records: &[serde_json::Value],
) -> Result<PushResult, CoreError> {
    v.svc.append(&v.p, &ctx(), d, None, None, records).await
}

/// Commits on the default branch.
pub(crate) async fn commit_count(v: &Vault, d: &llmgov_core::vault::model::Dataset) -> i64 {
    v.svc
        .log(d, None, &ListQuery::default())
        .await
        .unwrap()
        .total
}

pub(crate) fn spec(name: &str) -> DatasetSpec {
    serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
}

pub(crate) fn body(records: &[&str]) -> Vec<u8> {
    records
        .iter()
        .map(|r| format!("{{\"r\":\"{r}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

pub(crate) async fn push_to(
    v: &Vault,
    d: &llmgov_core::vault::model::Dataset,
    branch: &str,
    records: &[&str],
) -> PushResult {
    let b = body(records);
    v.svc
        .push(
            &v.p,
            &ctx(),
            d,
            PushOptions {
                branch: Some(branch.into()),
                message: None,
                on_error: OnError::Reject,
                sources: vec![],
            },
            stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(b))]),
        )
        .await
        .unwrap()
}
