//! The Data Vault over each backend: pushes deduplicate against the branch head, every
//! version reads back exactly, branches move by compare-and-swap, workspaces are isolated,
//! and altered bytes are reported, never served.

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

struct Vault {
    svc: VaultService,
    objects: Arc<Objects>,
    p: Principal,
    dir: tempfile::TempDir,
}

impl Vault {
    fn svc_objects(&self) -> &Objects {
        &self.objects
    }
}

fn vault(fx: &Fx, block_bytes: usize) -> Vault {
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
    let objects = Arc::new(Objects::local(&dir.path().join("objects")).unwrap());
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

fn lines(n: usize, edit: impl Fn(usize) -> Option<String>) -> Vec<u8> {
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

async fn push(
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
            },
            stream::iter(chunks),
        )
        .await
}

async fn export(
    v: &Vault,
    d: &llmgov_core::vault::model::Dataset,
    r: Option<&str>,
) -> Result<Vec<u8>, CoreError> {
    let (_, _, mut rx) = v.svc.export(&v.p, &ctx(), d, r).await?;
    let mut out = Vec::new();
    while let Some(c) = rx.recv().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

fn spec(name: &str) -> DatasetSpec {
    serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
}

pub async fn pushes_store_only_changed_records_and_every_version_reads_back(fx: Fx) {
    let v = vault(&fx, 4096);
    let d = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("chats"))
        .await
        .unwrap();
    let v1 = lines(2000, |_| None);
    let r1 = push(&v, &d, &v1, 7919).await.unwrap();
    assert!(r1.changed);
    assert_eq!(r1.stats.records, 2000);
    assert_eq!(r1.stats.reused_records, 0);
    let d = v.svc.get_dataset(&v.p, d.id).await.unwrap();
    assert_eq!(d.schema["fields"]["id"], "integer");

    // 2.5% of records edited and 2.5% inserted, at scattered places.
    let v2 = lines(2000, |i| match i % 40 {
        7 => Some(format!(r#"{{"id":{i},"edited":true}}"#)),
        23 => Some(format!(
            "{{\"id\":{i},\"messages\":[{{\"role\":\"user\",\"content\":\"question number {i} with some padding text\"}}]}}\n{{\"inserted\":{i}}}"
        )),
        _ => None,
    });
    let r2 = push(&v, &d, &v2, 65536).await.unwrap();
    assert_eq!(r2.stats.records, 2050);
    assert_eq!(r2.stats.reused_records, 1950);
    assert_eq!(r2.commit.parents, vec![r1.commit.id.clone()]);
    assert!(
        r2.stats.new_bytes * 10 < r1.stats.new_bytes,
        "version 2 stored {} bytes, version 1 {}",
        r2.stats.new_bytes,
        r1.stats.new_bytes
    );

    // Each version reads back byte for byte, by branch, commit id and prefix.
    assert_eq!(export(&v, &d, None).await.unwrap(), v2);
    assert_eq!(
        export(&v, &d, Some(r1.commit.id.as_str())).await.unwrap(),
        v1
    );
    assert_eq!(
        export(&v, &d, Some(&r1.commit.id.as_str()[..10]))
            .await
            .unwrap(),
        v1
    );
    let q = ListQuery {
        page: 3,
        limit: 10,
        ..Default::default()
    };
    let (c, page) = v
        .svc
        .records(&v.p, &ctx(), &d, Some("main"), &q)
        .await
        .unwrap();
    assert_eq!(c.id, r2.commit.id);
    assert_eq!(page.total, 2050);
    assert_eq!(page.items.len(), 10);
    assert_eq!(page.items[0].index, 20);
    let want: Vec<&[u8]> = v2.split(|b| *b == b'\n').collect();
    for it in &page.items {
        assert_eq!(it.data.get().as_bytes(), want[it.index as usize]);
    }

    // The same content again makes no commit.
    let again = push(&v, &d, &v2, 1 << 20).await.unwrap();
    assert!(!again.changed);
    assert_eq!(again.commit.id, r2.commit.id);

    // History, newest first.
    let log = v.svc.log(&d, None, &ListQuery::default()).await.unwrap();
    assert_eq!(log.total, 2);
    assert_eq!(
        log.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![r2.commit.id.clone(), r1.commit.id.clone()]
    );

    // Every read and the pushes are in the audit trail, which still verifies.
    let entries = fx.store.audit_range(fx.ws, 0, 10_000).await.unwrap();
    assert!(entries.iter().any(|e| e.event_type == "datasets.export"));
    assert!(
        entries
            .iter()
            .filter(|e| e.event_type == "datasets.commit")
            .count()
            == 2
    );
    crate::verify_log(&*fx.store, fx.ws).await;
}

pub async fn malformed_lines_are_reported_and_nothing_is_committed(fx: Fx) {
    let v = vault(&fx, 4096);
    let d = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("bad"))
        .await
        .unwrap();
    let body = b"{\"a\":1}\n{\"a\":\n\n[1,2]\n{\"b\":2}\n";
    let e = push(&v, &d, body, 3).await.unwrap_err();
    match &e {
        CoreError::Unprocessable { code, details, .. } => {
            assert_eq!(*code, "INVALID_RECORDS");
            let lines: Vec<u64> = details["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["line"].as_u64().unwrap())
                .collect();
            assert_eq!(lines, vec![2, 4]);
        }
        e => panic!("{e:?}"),
    }
    assert!(
        v.svc
            .log(&d, None, &ListQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let r = v
        .svc
        .push(
            &v.p,
            &ctx(),
            &d,
            PushOptions {
                branch: None,
                message: None,
                on_error: OnError::Skip,
            },
            stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(
                body,
            ))]),
        )
        .await
        .unwrap();
    assert_eq!(r.stats.records, 2);
    assert_eq!(r.skipped_count, 2);
    assert_eq!(r.blank_lines, 1);

    // An interrupted upload commits nothing.
    let chunks = vec![
        Ok(bytes::Bytes::from_static(b"{\"c\":3}\n")),
        Err(std::io::Error::other("connection reset")),
    ];
    let e = v
        .svc
        .push(
            &v.p,
            &ctx(),
            &d,
            PushOptions {
                branch: None,
                message: None,
                on_error: OnError::Reject,
            },
            stream::iter(chunks),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Invalid { .. }), "{e:?}");
    assert_eq!(
        v.svc
            .log(&d, None, &ListQuery::default())
            .await
            .unwrap()
            .total,
        1
    );
}

pub async fn branches_move_by_compare_and_swap(fx: Fx) {
    let v = vault(&fx, 4096);
    let d = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("cas"))
        .await
        .unwrap();
    let r1 = push(&v, &d, b"{\"a\":1}\n", 64).await.unwrap();
    let b = v
        .svc
        .create_ref(&v.p, &ctx(), &d, RefKind::Branch, "dev", None)
        .await
        .unwrap();
    assert_eq!(b.commit_id, r1.commit.id);
    let t = v
        .svc
        .create_ref(&v.p, &ctx(), &d, RefKind::Tag, "v1", Some("main"))
        .await
        .unwrap();
    assert_eq!(t.commit_id, r1.commit.id);
    assert!(matches!(
        v.svc
            .create_ref(&v.p, &ctx(), &d, RefKind::Branch, "v1", None)
            .await,
        Err(CoreError::Conflict {
            code: "REF_EXISTS",
            ..
        })
    ));
    // A commit whose expected head is stale loses, and changes nothing.
    let r2 = push(&v, &d, b"{\"a\":2}\n", 64).await.unwrap();
    let mut stale = r2.commit.clone();
    stale.message = "racing".into();
    stale.id = stale.compute_id();
    let e = fx
        .store
        .commit(
            fx.ws,
            &stale,
            llmgov_core::vault::store::BranchUpdate {
                branch: "main",
                expected: Some(&r1.commit.id),
            },
            None,
            crate::audit(fx.ws, "datasets.commit"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CoreError::Conflict {
                code: "BRANCH_MOVED",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(v.svc.resolve(&d, None).await.unwrap().id, r2.commit.id);
    assert_eq!(
        v.svc.resolve(&d, Some("v1")).await.unwrap().id,
        r1.commit.id
    );
    assert_eq!(export(&v, &d, Some("dev")).await.unwrap(), b"{\"a\":1}\n");
    assert!(matches!(
        v.svc.resolve(&d, Some("nope")).await,
        Err(CoreError::NotFound { .. })
    ));

    // Protected branches refuse a principal without datasets:delete.
    v.svc
        .protect_branch(&v.p, &ctx(), &d, "main", true)
        .await
        .unwrap();
    let mut writer = v.p.clone();
    writer.permissions = [Action::Create, Action::Read, Action::Update]
        .iter()
        .map(|a| Permission::new(Resource::Datasets, *a))
        .collect();
    let e = v
        .svc
        .append(
            &writer,
            &ctx(),
            &d,
            None,
            None,
            &[serde_json::json!({"x": 1})],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Forbidden { .. }), "{e:?}");
    let ok = v
        .svc
        .append(
            &writer,
            &ctx(),
            &d,
            Some("dev"),
            None,
            &[serde_json::json!({"x": 1})],
        )
        .await
        .unwrap();
    assert_eq!(ok.stats.records, 2);
    assert_eq!(
        export(&v, &d, Some("dev")).await.unwrap(),
        b"{\"a\":1}\n{\"x\":1}\n"
    );
    assert!(matches!(
        v.svc
            .delete_ref(&v.p, &ctx(), &d, RefKind::Branch, "main")
            .await,
        Err(CoreError::Conflict {
            code: "DEFAULT_BRANCH",
            ..
        })
    ));
    v.svc
        .delete_ref(&v.p, &ctx(), &d, RefKind::Tag, "v1")
        .await
        .unwrap();
    assert!(v.svc.list_refs(&d, RefKind::Tag).await.unwrap().is_empty());
}

pub async fn datasets_are_isolated_by_workspace_and_name(fx: Fx) {
    let v = vault(&fx, 4096);
    let d = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("shared-name"))
        .await
        .unwrap();
    assert!(matches!(
        v.svc
            .create_dataset(&v.p, &ctx(), spec("shared-name"))
            .await,
        Err(CoreError::Conflict {
            code: "DATASET_EXISTS",
            ..
        })
    ));
    let other = crate::new_workspace(&fx, "other").await;
    let mut p2 = v.p.clone();
    p2.workspace_id = other;
    v.svc
        .create_dataset(&p2, &ctx(), spec("shared-name"))
        .await
        .unwrap();
    assert!(matches!(
        v.svc.get_dataset(&p2, d.id).await,
        Err(CoreError::NotFound { .. })
    ));
    assert!(matches!(
        fx.store.dataset_key(other, d.id).await,
        Err(CoreError::NotFound { .. })
    ));
    let mine = v
        .svc
        .list_datasets(&v.p, &Default::default(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(mine.total, 1);
    v.svc.delete_dataset(&v.p, &ctx(), d.id).await.unwrap();
    assert_eq!(
        v.svc
            .list_datasets(&v.p, &Default::default(), &ListQuery::default())
            .await
            .unwrap()
            .total,
        0
    );
}

pub async fn altered_or_missing_objects_are_integrity_errors(fx: Fx) {
    let v = vault(&fx, 512);
    let d = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("tamper"))
        .await
        .unwrap();
    push(&v, &d, &lines(100, |_| None), 4096).await.unwrap();
    let blocks = v
        .dir
        .path()
        .join("objects")
        .join(d.id.0.to_string())
        .join("blocks");
    let mut files = vec![];
    for sub in std::fs::read_dir(&blocks).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    assert!(files.len() > 3, "{} blocks", files.len());
    files.sort();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&files[0], bytes).unwrap();
    let e = export(&v, &d, None).await.unwrap_err();
    assert!(matches!(e, CoreError::Integrity(_)), "{e:?}");
    std::fs::remove_file(&files[0]).unwrap();
    let e = export(&v, &d, None).await.unwrap_err();
    assert!(matches!(e, CoreError::Integrity(_)), "{e:?}");
}

pub async fn fsck_finds_damage_and_gc_removes_only_unreachable_objects(fx: Fx) {
    let v = vault(&fx, 512);
    let d = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("kept"))
        .await
        .unwrap();
    push(&v, &d, &lines(200, |_| None), 4096).await.unwrap();
    push(
        &v,
        &d,
        &lines(200, |i| (i % 10 == 0).then(|| format!("{{\"x\":{i}}}"))),
        4096,
    )
    .await
    .unwrap();
    let gone = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("gone"))
        .await
        .unwrap();
    push(&v, &gone, &lines(50, |_| None), 4096).await.unwrap();
    let clean = v.svc.fsck(true).await.unwrap();
    assert!(clean.damaged.is_empty(), "{:?}", clean.damaged);
    assert_eq!((clean.datasets, clean.commits, clean.manifests), (2, 3, 3));

    // Leftovers: a push that never committed (an orphan object) and a deleted dataset.
    let orphan = format!("{}/blocks/00/{}", d.id.0, "0".repeat(64));
    v.svc_objects()
        .put(&orphan, bytes::Bytes::from_static(b"junk"))
        .await
        .unwrap();
    v.svc.delete_dataset(&v.p, &ctx(), gone.id).await.unwrap();
    let leftover = format!("{}/blocks/11/{}", gone.id.0, "1".repeat(64));
    v.svc_objects()
        .put(&leftover, bytes::Bytes::from_static(b"junk"))
        .await
        .unwrap();

    // Young unreachable objects are kept (a push may still be writing them).
    let young = v
        .svc
        .gc(std::time::Duration::from_secs(3600), false)
        .await
        .unwrap();
    assert_eq!((young.deleted, young.kept_young), (0, 2));
    let dry = v.svc.gc(std::time::Duration::ZERO, true).await.unwrap();
    assert_eq!(dry.deleted, 2);
    let r = v.svc.gc(std::time::Duration::ZERO, false).await.unwrap();
    assert_eq!(r.deleted, 2);
    assert!(v.svc_objects().get(&orphan).await.unwrap().is_none());
    // Every version still reads, and fsck still passes.
    let log = v.svc.log(&d, None, &ListQuery::default()).await.unwrap();
    for c in &log.items {
        export(&v, &d, Some(c.id.as_str())).await.unwrap();
    }
    assert!(v.svc.fsck(false).await.unwrap().damaged.is_empty());

    // A flipped byte and a missing block are each reported by path.
    let blocks = v
        .dir
        .path()
        .join("objects")
        .join(d.id.0.to_string())
        .join("blocks");
    let mut files: Vec<_> = std::fs::read_dir(&blocks)
        .unwrap()
        .flat_map(|s| std::fs::read_dir(s.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    let mut b = std::fs::read(&files[0]).unwrap();
    b[20] ^= 1;
    std::fs::write(&files[0], b).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    let bad = v.svc.fsck(false).await.unwrap();
    assert_eq!(bad.damaged.len(), 2, "{:?}", bad.damaged);
    let names: Vec<String> = files[..2]
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    for n in names {
        assert!(bad.damaged.iter().any(|d| d.object.ends_with(&n)), "{n}");
    }
}

pub async fn key_rotation_rewraps_every_dataset_key_and_data_still_reads(fx: Fx) {
    let v = vault(&fx, 4096);
    let a = v.svc.create_dataset(&v.p, &ctx(), spec("a")).await.unwrap();
    let b = v.svc.create_dataset(&v.p, &ctx(), spec("b")).await.unwrap();
    push(&v, &a, b"{\"a\":1}\n", 64).await.unwrap();
    push(&v, &b, b"{\"b\":2}\n", 64).await.unwrap();
    let r = v.svc.rotate_keys(fx.ws, &ctx()).await.unwrap();
    assert_eq!(
        (r.previous_version, r.current_version, r.rewrapped),
        (1, 2, 2)
    );
    assert!(fx.store.keys_below(2, 10).await.unwrap().is_empty());
    assert_eq!(
        fx.store.dataset_key(fx.ws, a.id).await.unwrap().kek_version,
        2
    );
    // Running it again after an interruption rewraps what is left, once.
    assert_eq!(v.svc.rewrap_all(2).await.unwrap(), 0);
    // A fresh instance (no cached keys) opens the file and reads every dataset.
    let keys = LocalKeyProvider::open(&v.dir.path().join("kek.json"), "a test passphrase").unwrap();
    let store: Arc<dyn llmgov_core::vault::store::VaultStore> = fx.store.clone();
    let fresh = Vault {
        svc: VaultService::new(
            store,
            v.objects.clone(),
            Arc::new(keys),
            VaultConfig::default(),
        ),
        objects: v.objects.clone(),
        p: v.p.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(export(&fresh, &a, None).await.unwrap(), b"{\"a\":1}\n");
    assert_eq!(export(&fresh, &b, None).await.unwrap(), b"{\"b\":2}\n");
    let entries = fx.store.audit_range(fx.ws, 0, 1000).await.unwrap();
    let rot = entries
        .iter()
        .find(|e| e.event_type == "keys.rotate")
        .expect("audited");
    assert!(rot.details.contains("\"rewrapped\":2"), "{}", rot.details);
}

fn body(records: &[&str]) -> Vec<u8> {
    records
        .iter()
        .map(|r| format!("{{\"r\":\"{r}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

async fn push_to(
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
            },
            stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(b))]),
        )
        .await
        .unwrap()
}

pub async fn merges_combine_separate_changes_and_report_conflicts(fx: Fx) {
    let v = vault(&fx, 64);
    let d = v.svc.create_dataset(&v.p, &ctx(), spec("m")).await.unwrap();
    push_to(&v, &d, "main", &["a", "b", "c", "d", "e", "f", "g", "h"]).await;
    v.svc
        .create_ref(&v.p, &ctx(), &d, RefKind::Branch, "dev", None)
        .await
        .unwrap();
    push_to(&v, &d, "dev", &["a", "B", "c", "d", "e", "f", "g", "h"]).await;
    let edit = push_to(
        &v,
        &d,
        "main",
        &["a", "b", "c", "d", "e", "f", "G", "h", "i"],
    )
    .await;

    let m = v
        .svc
        .merge(&v.p, &ctx(), &d, "dev", None, None)
        .await
        .unwrap();
    assert!(m.changed);
    assert_eq!(m.commit.parents.len(), 2);
    assert_eq!(
        export(&v, &d, None).await.unwrap(),
        body(&["a", "B", "c", "d", "e", "f", "G", "h", "i"])
    );
    assert!(
        !v.svc
            .merge(&v.p, &ctx(), &d, "dev", None, None)
            .await
            .unwrap()
            .changed
    );

    // Revert main's edit of g (and its append of i); dev's edit of b stays.
    let r = v
        .svc
        .revert(&v.p, &ctx(), &d, edit.commit.id.as_str(), None, None)
        .await
        .unwrap();
    assert!(r.changed);
    assert_eq!(
        export(&v, &d, None).await.unwrap(),
        body(&["a", "B", "c", "d", "e", "f", "g", "h"])
    );

    // The same record changed differently on both sides: a conflict, nothing committed.
    push_to(
        &v,
        &d,
        "dev",
        &["a", "B", "c", "d", "X", "f", "G", "h", "i"],
    )
    .await;
    push_to(&v, &d, "main", &["a", "B", "c", "d", "Y", "f", "g", "h"]).await;
    let before = v
        .svc
        .log(&d, None, &ListQuery::default())
        .await
        .unwrap()
        .total;
    match v
        .svc
        .merge(&v.p, &ctx(), &d, "dev", Some("main"), None)
        .await
        .unwrap_err()
    {
        CoreError::Unprocessable { code, details, .. } => {
            assert_eq!(code, "MERGE_CONFLICT");
            let c = &details["conflicts"][0];
            assert_eq!(c["base"]["from"], 4);
            assert_eq!(c["ours"]["record_ids"].as_array().unwrap().len(), 1);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        v.svc
            .log(&d, None, &ListQuery::default())
            .await
            .unwrap()
            .total,
        before
    );
}

pub async fn csv_datasets_round_trip_rows_and_report_ragged_ones(fx: Fx) {
    let v = vault(&fx, 256);
    let spec: DatasetSpec =
        serde_json::from_value(serde_json::json!({"name": "rows", "format": "csv"})).unwrap();
    let d = v.svc.create_dataset(&v.p, &ctx(), spec).await.unwrap();
    let mut v1 = String::from("id,prompt,label\n");
    for i in 0..300 {
        v1.push_str(&format!("{i},\"question {i}, with a comma\",ok\n"));
    }
    v1.push_str("300,\"two\nlines and \"\"quotes\"\"\",ok\n");
    let r1 = push(&v, &d, v1.as_bytes(), 100).await.unwrap();
    assert_eq!(r1.stats.records, 301);
    assert_eq!(export(&v, &d, None).await.unwrap(), v1.as_bytes());
    let d = v.svc.get_dataset(&v.p, d.id).await.unwrap();
    assert_eq!(d.schema["fields"]["prompt"], "string");
    let q = ListQuery {
        page: 1,
        limit: 1,
        ..Default::default()
    };
    let (_, last) = v
        .svc
        .records(
            &v.p,
            &ctx(),
            &d,
            None,
            &ListQuery {
                page: 301,
                ..q.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(last.items[0].data.get()).unwrap(),
        serde_json::json!({"id": "300", "prompt": "two\nlines and \"quotes\"", "label": "ok"})
    );

    // One row edited: little is stored again.
    let v2 = v1.replace(
        "7,\"question 7, with a comma\",ok",
        "7,\"question 7, edited\",bad",
    );
    let r2 = push(&v, &d, v2.as_bytes(), 4096).await.unwrap();
    assert_eq!(r2.stats.reused_records, 300);
    assert_eq!(export(&v, &d, None).await.unwrap(), v2.as_bytes());

    // Records appended as JSON become rows under the header.
    let a = v
        .svc
        .append(
            &v.p,
            &ctx(),
            &d,
            None,
            None,
            &[serde_json::json!({"id": 301, "prompt": "x,y", "label": null})],
        )
        .await
        .unwrap();
    assert_eq!(a.stats.records, 302);
    let all = export(&v, &d, None).await.unwrap();
    assert!(
        all.ends_with(b"301,\"x,y\",\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    let bad = v
        .svc
        .append(
            &v.p,
            &ctx(),
            &d,
            None,
            None,
            &[serde_json::json!({"nope": 1})],
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, CoreError::Invalid { .. }), "{bad:?}");

    // A ragged row is reported with its line; nothing is committed.
    let e = push(&v, &d, b"id,prompt,label\n1,a,b\n2,c\n3,d,e,f\n", 7)
        .await
        .unwrap_err();
    match e {
        CoreError::Unprocessable { code, details, .. } => {
            assert_eq!(code, "INVALID_RECORDS");
            let lines: Vec<u64> = details["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["line"].as_u64().unwrap())
                .collect();
            assert_eq!(lines, vec![3, 4]);
        }
        e => panic!("{e:?}"),
    }
    let e = push(&v, &d, b"", 7).await.unwrap_err();
    assert!(e.to_string().contains("header"), "{e}");
    let e = push(&v, &d, b"id,id\n1,2\n", 7).await.unwrap_err();
    assert!(matches!(e, CoreError::Unprocessable { .. }), "{e:?}");
    let parquet: DatasetSpec =
        serde_json::from_value(serde_json::json!({"name": "pq", "format": "parquet"})).unwrap();
    assert!(matches!(
        v.svc.create_dataset(&v.p, &ctx(), parquet).await,
        Err(CoreError::Unprocessable {
            code: "FORMAT_NOT_SUPPORTED",
            ..
        })
    ));
}

pub async fn a_key_in_a_pkcs11_token_protects_the_datasets(fx: Fx) {
    let hsm = llmgov_store::pkcs11::Pkcs11KeyProvider::open(&llmgov_store::testing::hsm_config(
        &format!("llmgov-vault-{}", uuid::Uuid::new_v4()),
    ))
    .unwrap();
    let v = vault(&fx, 4096);
    let store: Arc<dyn llmgov_core::vault::store::VaultStore> = fx.store.clone();
    let hv = Vault {
        svc: VaultService::new(
            store,
            v.objects.clone(),
            Arc::new(hsm),
            VaultConfig::default(),
        ),
        objects: v.objects.clone(),
        p: v.p.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let d = hv
        .svc
        .create_dataset(&hv.p, &ctx(), spec("hsm"))
        .await
        .unwrap();
    let body = lines(50, |_| None);
    push(&hv, &d, &body, 1000).await.unwrap();
    assert_eq!(
        fx.store.dataset_key(fx.ws, d.id).await.unwrap().kek_version,
        1
    );
    let r = hv.svc.rotate_keys(fx.ws, &ctx()).await.unwrap();
    assert_eq!(
        (r.provider.as_str(), r.current_version, r.rewrapped),
        ("pkcs11", 2, 1)
    );
    assert_eq!(export(&hv, &d, None).await.unwrap(), body);
    // The local provider of the other fixture cannot unwrap what the token wrapped.
    assert!(export(&v, &d, None).await.is_err());
}

crate::conformance!(
    a_key_in_a_pkcs11_token_protects_the_datasets,
    csv_datasets_round_trip_rows_and_report_ragged_ones,
    merges_combine_separate_changes_and_report_conflicts,
    key_rotation_rewraps_every_dataset_key_and_data_still_reads,
    fsck_finds_damage_and_gc_removes_only_unreachable_objects,
    pushes_store_only_changed_records_and_every_version_reads_back,
    malformed_lines_are_reported_and_nothing_is_committed,
    branches_move_by_compare_and_swap,
    datasets_are_isolated_by_workspace_and_name,
    altered_or_missing_objects_are_integrity_errors,
);
