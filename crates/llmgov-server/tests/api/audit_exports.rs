//! Audit exports: streamed, verified offline against signed checkpoints, and still
//! verifiable after retention pruning.

use reqwest::StatusCode;
use serde_json::json;

use crate::audit::unhex;
use crate::helpers::*;

async fn exports_stream_and_verify_offline(app: TestApp) {
    use llmgov_core::audit::checkpoint::Checkpoint;
    use llmgov_core::audit::export::{ExportVerdict, verify_export};
    let (viewer, _, _) = app.user_with("exported", &["viewer"]).await;
    let key = unhex(
        &app.get("/api/v1/audit/checkpoints/public-key", &app.admin_token)
            .await
            .body["public_key"],
    );
    let r = app
        .client
        .get(format!("{}/api/v1/audit/export?format=jsonl", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let size: u64 = r.headers()["x-audit-checkpoint-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(body.lines().count() as u64, size);
    for (i, line) in body.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["sequence"], i as i64);
    }
    let cp: Checkpoint = serde_json::from_value(
        app.get("/api/v1/audit/checkpoints/latest", &app.admin_token)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        cp.tree_size, size,
        "the export was taken at the latest checkpoint"
    );
    assert_eq!(
        verify_export(body.as_bytes(), &cp, &key).unwrap(),
        ExportVerdict::Valid {
            entries: size,
            complete: true
        }
    );

    // Filtered: only the entries asked for, each with its inclusion proof.
    let f = app
        .client
        .get(format!(
            "{}/api/v1/audit/export?event_type=users.create",
            app.base
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    let filtered = f.text().await.unwrap();
    assert_eq!(filtered.lines().count(), 1);
    assert!(filtered.contains(&viewer));
    assert!(matches!(
        verify_export(filtered.as_bytes(), &cp, &key).unwrap(),
        ExportVerdict::Valid {
            entries: 1,
            complete: false
        }
    ));

    // The binary archive: same entries, its checkpoint embedded; filtered ones carry proofs.
    use llmgov_core::audit::archive;
    let archive_of = |query: &'static str| {
        let c = app.client.clone();
        let url = format!("{}/api/v1/audit/export?{query}", app.base);
        let token = app.admin_token.clone();
        async move {
            let r = c.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(
                r.headers()["content-type"],
                "application/vnd.llmgov.audit-archive"
            );
            r.bytes().await.unwrap().to_vec()
        }
    };
    let whole = archive_of("format=archive").await;
    let mut header = &whole[..];
    let embedded = archive::read_header(&mut header).unwrap().unwrap();
    assert!(embedded.tree_size >= size);
    assert_eq!(
        archive::verify_archive(&whole[..], None, &key, 2).unwrap(),
        ExportVerdict::Valid {
            entries: embedded.tree_size,
            complete: true
        }
    );
    let entries: Vec<_> = archive::Records::new(header)
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(entries.len() as u64, embedded.tree_size);
    assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.sequence == i as i64)
    );
    let picked = archive_of("format=archive&event_type=users.create").await;
    assert!(matches!(
        archive::verify_archive(&picked[..], None, &key, 1).unwrap(),
        ExportVerdict::Valid {
            entries: 1,
            complete: false
        }
    ));
    let mut cut = whole.clone();
    cut.truncate(whole.len() - 12);
    assert!(matches!(
        archive::verify_archive(&cut[..], None, &key, 1).unwrap(),
        ExportVerdict::Invalid { .. }
    ));

    let csv = app
        .client
        .get(format!("{}/api/v1/audit/export?format=csv", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("sequence,id,timestamp,event_type"));
    assert_eq!(csv.lines().count() as u64, size + 1);
    for bad in [
        "format=xml",
        "from=yesterday",
        "actor_id=nobody",
        "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "unknown=1",
    ] {
        let r = app
            .get(&format!("/api/v1/audit/export?{bad}"), &app.admin_token)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (_, _, viewer_token) = app.user_with("noexport", &["viewer"]).await;
    assert_eq!(
        app.get("/api/v1/audit/export", &viewer_token).await.status,
        StatusCode::FORBIDDEN
    );
}

async fn exports_after_retention_pruning_still_verify(app: TestApp) {
    use llmgov_core::audit::checkpoint::Checkpoint;
    use llmgov_core::audit::export::{ExportVerdict, verify_export};
    app.user_with("pruned", &["viewer"]).await;
    let first: Checkpoint = serde_json::from_value(
        app.get("/api/v1/audit/checkpoints/latest", &app.admin_token)
            .await
            .body,
    )
    .unwrap();
    // The retention task, as `serve` runs it, with a retention of zero.
    let store = llmgov_store::open(&app.db.url, &llmgov_store::PoolConfig::default(), false)
        .await
        .unwrap();
    let deleted = llmgov_core::audit::retention::prune_all(&*store, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(deleted >= first.tree_size);
    app.user_with("after", &["viewer"]).await;
    let key = unhex(
        &app.get("/api/v1/audit/checkpoints/public-key", &app.admin_token)
            .await
            .body["public_key"],
    );
    let export = app
        .client
        .get(format!("{}/api/v1/audit/export", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cp: Checkpoint = serde_json::from_value(
        app.get("/api/v1/audit/checkpoints/latest", &app.admin_token)
            .await
            .body,
    )
    .unwrap();
    let first_line: serde_json::Value =
        serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(
        first_line["sequence"].as_u64().unwrap(),
        first.tree_size,
        "the export starts at the retention floor"
    );
    assert!(first_line["inclusion_proof"].is_array());
    assert!(matches!(
        verify_export(export.as_bytes(), &cp, &key).unwrap(),
        ExportVerdict::Valid {
            complete: false,
            ..
        }
    ));
    let v = app
        .post("/api/v1/audit/verify", &app.admin_token, json!({}))
        .await;
    assert_eq!(v.body["valid"], true, "{}", v.body);
}

crate::both_backends!(
    exports_stream_and_verify_offline,
    exports_after_retention_pruning_still_verify,
);
