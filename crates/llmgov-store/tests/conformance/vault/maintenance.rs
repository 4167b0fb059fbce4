//! Keeping a vault: fsck and garbage collection, KEK rotation, keys in a PKCS#11 token.

#[allow(unused_imports)]
use super::*;

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
    v.svc
        .delete_dataset(&v.p, &ctx(), gone.id, false)
        .await
        .unwrap();
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
    let files = block_paths(&v, &d).await;
    flip_bit(&v, &files[0], |_| 20).await;
    v.objects.delete(&files[1]).await.unwrap();
    let bad = v.svc.fsck(false).await.unwrap();
    assert_eq!(bad.damaged.len(), 2, "{:?}", bad.damaged);
    for n in &files[..2] {
        let name = n.rsplit('/').next().unwrap();
        assert!(bad.damaged.iter().any(|d| d.object.ends_with(name)), "{n}");
    }
}

pub async fn key_rotation_rewraps_every_dataset_key_and_data_still_reads(fx: Fx) {
    let v = vault(&fx, 4096);
    let a = v.svc.create_dataset(&v.p, &ctx(), spec("a")).await.unwrap();
    let b = v.svc.create_dataset(&v.p, &ctx(), spec("b")).await.unwrap();
    push(&v, &a, b"{\"a\":1}\n", 64).await.unwrap();
    push(&v, &b, b"{\"b\":2}\n", 64).await.unwrap();
    assert!(
        matches!(
            v.svc.trim_keys(fx.ws, &ctx(), 2).await,
            Err(CoreError::Invalid { .. })
        ),
        "never beyond the current version"
    );
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

    // Trimming: refused while a dataset key still needs an old version, then done.
    assert_eq!(v.svc.keys().rotate().await.unwrap(), 3);
    assert!(matches!(
        v.svc.trim_keys(fx.ws, &ctx(), 3).await,
        Err(CoreError::Conflict {
            code: "KEYS_IN_USE",
            ..
        })
    ));
    assert_eq!(v.svc.rewrap_all(3).await.unwrap(), 2);
    assert_eq!(v.svc.trim_keys(fx.ws, &ctx(), 3).await.unwrap(), vec![1, 2]);
    assert_eq!(export(&fresh, &a, None).await.unwrap(), b"{\"a\":1}\n");
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

crate::vault_conformance!(
    fsck_finds_damage_and_gc_removes_only_unreachable_objects,
    key_rotation_rewraps_every_dataset_key_and_data_still_reads,
    a_key_in_a_pkcs11_token_protects_the_datasets,
);
