//! Versions: deduplicated pushes read back exactly, bad input commits nothing, branches
//! move by compare-and-swap, workspaces are isolated, altered bytes are never served, merges.

#[allow(unused_imports)]
use super::*;

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
                sources: vec![],
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
                sources: vec![],
            },
            stream::iter(chunks),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Invalid { .. }), "{e:?}");
    assert_eq!(commit_count(&v, &d).await, 1);
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
    v.svc
        .delete_dataset(&v.p, &ctx(), d.id, false)
        .await
        .unwrap();
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
    let files = block_paths(&v, &d).await;
    assert!(files.len() > 3, "{} blocks", files.len());
    flip_bit(&v, &files[0], |n| n - 1).await;
    let e = export(&v, &d, None).await.unwrap_err();
    assert!(matches!(e, CoreError::Integrity(_)), "{e:?}");
    v.objects.delete(&files[0]).await.unwrap();
    let e = export(&v, &d, None).await.unwrap_err();
    assert!(matches!(e, CoreError::Integrity(_)), "{e:?}");
    // A push deduplicates from the blocks' fingerprint objects, not the blocks: the same
    // records again need no block at all.
    let same = push(&v, &d, &lines(100, |_| None), 4096).await.unwrap();
    assert!(!same.changed);
    // A damaged fingerprints object is an integrity error for the next push, and fsck
    // names it.
    let fps: Vec<String> = v
        .objects
        .list(&format!("{}/fingerprints/", d.id.0))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(fps.len(), files.len());
    flip_bit(&v, &fps[0], |n| n / 2).await;
    let e = push(&v, &d, &lines(101, |_| None), 4096).await.unwrap_err();
    assert!(matches!(e, CoreError::Integrity(_)), "{e:?}");
    let bad = v.svc.fsck(false).await.unwrap();
    assert!(
        bad.damaged.iter().any(|x| x.object == fps[0]),
        "{:?}",
        bad.damaged
    );
}

pub async fn merges_combine_separate_changes_and_report_conflicts(fx: Fx) {
    let v = vault(&fx, 64);
    // Reverting a root commit takes its records out of the head.
    let root = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("root"))
        .await
        .unwrap();
    let first = push_to(&v, &root, "main", &["x", "y"]).await;
    push_to(&v, &root, "main", &["x", "y", "z"]).await;
    v.svc
        .revert(&v.p, &ctx(), &root, first.commit.id.as_str(), None, None)
        .await
        .unwrap();
    assert_eq!(export(&v, &root, None).await.unwrap(), body(&["z"]));

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
    assert_eq!(commit_count(&v, &d).await, before);
}

async fn push_from(
    v: &Vault,
    d: &llmgov_core::vault::model::Dataset,
    p: &llmgov_core::identity::Principal,
    sources: &[&str],
    records: &[&str],
) -> Result<PushResult, CoreError> {
    let sources = sources
        .iter()
        .map(|s| llmgov_core::vault::push::SourceRef::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    v.svc
        .push(
            p,
            &ctx(),
            d,
            PushOptions {
                branch: None,
                message: Some("derived".into()),
                on_error: OnError::Reject,
                sources,
            },
            stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(body(
                records,
            )))]),
        )
        .await
}

pub async fn lineage_crosses_datasets_and_a_source_reports_its_dependents(fx: Fx) {
    use llmgov_core::vault::lineage::Direction;
    let v = vault(&fx, 4096);
    let raw = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("raw"))
        .await
        .unwrap();
    let r1 = push_to(&v, &raw, "main", &["a", "b", "c"]).await;
    let r2 = push_to(&v, &raw, "main", &["a", "b", "c", "d"]).await;
    let clean = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("clean"))
        .await
        .unwrap();
    let c1 = push_from(
        &v,
        &clean,
        &v.p,
        &[&format!("raw@{}", &r1.commit.id.0[..12])],
        &["a", "b"],
    )
    .await
    .unwrap();
    assert_eq!(c1.commit.transformation["sources"][0]["dataset"], "raw");
    assert_eq!(
        c1.commit.transformation["sources"][0]["commit"],
        r1.commit.id.0.as_str()
    );

    // Upstream of the clean version: the raw version it was made from.
    let up = v
        .svc
        .lineage(&clean, None, Direction::Upstream, 5)
        .await
        .unwrap();
    let ids: Vec<(&str, Option<&str>)> = up
        .nodes
        .iter()
        .map(|n| (n.commit.as_str(), n.dataset.as_deref()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (c1.commit.id.0.as_str(), Some("clean")),
            (r1.commit.id.0.as_str(), Some("raw"))
        ]
    );
    // Downstream of raw's first version: its child on raw and the clean version.
    let down = v
        .svc
        .lineage(&raw, Some(r1.commit.id.as_str()), Direction::Downstream, 5)
        .await
        .unwrap();
    let mut got: Vec<&str> = down.nodes.iter().map(|n| n.commit.as_str()).collect();
    got.sort();
    let mut want = vec![
        r1.commit.id.0.as_str(),
        r2.commit.id.0.as_str(),
        c1.commit.id.0.as_str(),
    ];
    want.sort();
    assert_eq!(got, want);
    let one = v
        .svc
        .lineage(&raw, Some(r1.commit.id.as_str()), Direction::Downstream, 0)
        .await
        .unwrap();
    assert!(one.truncated && one.nodes.len() == 1);

    // Bad sources: another workspace's dataset, itself, a missing ref.
    let other = crate::new_workspace(&fx, "elsewhere").await;
    let mut p2 = v.p.clone();
    p2.workspace_id = other;
    let theirs = v
        .svc
        .create_dataset(&p2, &ctx(), spec("theirs"))
        .await
        .unwrap();
    push_from(&v, &theirs, &p2, &[], &["x"]).await.unwrap();
    for (src, want) in [
        ("theirs", "not found"),
        ("clean", "invalid"),
        ("raw@nope", "not found"),
    ] {
        let e = push_from(&v, &clean, &v.p, &[src], &["z"])
            .await
            .unwrap_err();
        let ok = match want {
            "not found" => matches!(e, CoreError::NotFound { .. }),
            _ => matches!(e, CoreError::Invalid { .. }),
        };
        assert!(ok, "{src}: {e:?}");
    }

    // Deleting a source: refused while others depend on it, then forced and reported.
    assert_eq!(
        v.svc
            .dependents(&v.p, raw.id)
            .await
            .unwrap()
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        vec!["clean"]
    );
    let e = v
        .svc
        .delete_dataset(&v.p, &ctx(), raw.id, false)
        .await
        .unwrap_err();
    assert!(
        matches!(e, CoreError::Conflict { code: "DATASET_HAS_DEPENDENTS", ref message } if message.contains("clean")),
        "{e:?}"
    );
    let gone = v
        .svc
        .delete_dataset(&v.p, &ctx(), raw.id, true)
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    let entries = fx.store.audit_range(fx.ws, 0, 1000).await.unwrap();
    let del = entries
        .iter()
        .rev()
        .find(|e| e.event_type == "datasets.delete")
        .unwrap();
    assert!(del.details.contains("clean"), "{}", del.details);
    // The derived version still names the deleted source.
    let up = v
        .svc
        .lineage(&clean, None, Direction::Upstream, 5)
        .await
        .unwrap();
    assert_eq!(up.nodes.len(), 2);
    assert_eq!(up.nodes[1].dataset, None);
    assert_eq!(up.nodes[1].commit, r1.commit.id.0);
    assert!(
        v.svc
            .delete_dataset(&v.p, &ctx(), clean.id, false)
            .await
            .is_ok()
    );
}

crate::vault_conformance!(
    lineage_crosses_datasets_and_a_source_reports_its_dependents,
    pushes_store_only_changed_records_and_every_version_reads_back,
    malformed_lines_are_reported_and_nothing_is_committed,
    branches_move_by_compare_and_swap,
    datasets_are_isolated_by_workspace_and_name,
    altered_or_missing_objects_are_integrity_errors,
    merges_combine_separate_changes_and_report_conflicts,
);
