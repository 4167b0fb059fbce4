//! The audit trail fails closed: no entry, no change.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::*;

async fn break_audit_inserts(app: &TestApp) {
    match app.db.backend {
        llmgov_store::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql("CREATE TRIGGER break_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END;").execute(&mut c).await.unwrap();
        }
        llmgov_store::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION break_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END; $$ LANGUAGE plpgsql;
                 CREATE TRIGGER break_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION break_audit();",
            )
            .execute(&mut c)
            .await
            .unwrap();
        }
    }
}

async fn changes_are_refused_when_the_audit_entry_cannot_be_written(app: TestApp) {
    let users_before = app.user_count().await;
    let audit_before = app.audit_count().await;
    break_audit_inserts(&app).await;
    let r = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"email": "n@example.com", "username": "nnn", "password": "User-password-123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "AUDIT_UNAVAILABLE");
    assert!(
        !r.body.to_string().contains("disk full"),
        "database text never reaches the client"
    );
    let ws = app
        .post("/api/v1/workspaces", &app.admin_token, json!({"name": "W"}))
        .await;
    assert_eq!(ws.status, StatusCode::SERVICE_UNAVAILABLE);
    let login = app.login_pair(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        login.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no session without its audit entry"
    );
    assert_eq!(app.user_count().await, users_before);
    assert_eq!(app.audit_count().await, audit_before);
    assert_eq!(
        app.get("/api/v1/workspaces", &app.admin_token).await.body["total"],
        1
    );
}

fn unhex(s: &serde_json::Value) -> [u8; 32] {
    let s = s.as_str().unwrap();
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

async fn proofs_from_the_api_verify_on_the_client(app: TestApp) {
    for i in 0..5 {
        app.post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": format!("w{i}")}),
        )
        .await;
    }
    let head = app.get("/api/v1/audit/tree-head", &app.admin_token).await;
    assert_eq!(head.status, StatusCode::OK);
    let size = head.body["tree_size"].as_u64().unwrap();
    assert!(size >= 7);
    let root = unhex(&head.body["root_hash"]);
    let logs = app
        .get("/api/v1/audit/logs?limit=200", &app.admin_token)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    for entry in [0, size / 2, size - 1] {
        let p = app
            .get(
                &format!("/api/v1/audit/proof/inclusion?entry={entry}&size={size}"),
                &app.admin_token,
            )
            .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        // The client derives the leaf from the entry it already has, not from the proof.
        let entry_hash = unhex(&logs[entry as usize]["entry_hash"]);
        let leaf = llmgov_core::merkle::leaf_hash(&entry_hash);
        let proof: Vec<[u8; 32]> = p.body["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(unhex)
            .collect();
        llmgov_core::merkle::verify_inclusion(entry, size, &leaf, &proof, &root).unwrap();
    }
    let old = app
        .get("/api/v1/audit/tree-head?size=3", &app.admin_token)
        .await;
    let c = app
        .get(
            &format!("/api/v1/audit/proof/consistency?from=3&to={size}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK);
    let proof: Vec<[u8; 32]> = c.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(unhex)
        .collect();
    llmgov_core::merkle::verify_consistency(3, size, &unhex(&old.body["root_hash"]), &root, &proof)
        .unwrap();
    for bad in [
        format!("/api/v1/audit/proof/inclusion?entry={size}&size={size}"),
        format!("/api/v1/audit/proof/inclusion?entry=0&size={}", size + 100),
        "/api/v1/audit/proof/inclusion?entry=-1".into(),
        "/api/v1/audit/proof/inclusion?entry=abc".into(),
        "/api/v1/audit/proof/inclusion".into(),
        format!("/api/v1/audit/proof/consistency?from=0&to={size}"),
        format!(
            "/api/v1/audit/proof/consistency?from={}&to={size}",
            size + 1
        ),
        "/api/v1/audit/tree-head?size=999999".into(),
    ] {
        let r = app.get(&bad, &app.admin_token).await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
        r.error_code();
    }
}

async fn signed_checkpoints_verify_and_stay_consistent(app: TestApp) {
    use llmgov_core::audit::checkpoint::Checkpoint;
    let key = app
        .get("/api/v1/audit/checkpoints/public-key", &app.admin_token)
        .await
        .body;
    assert_eq!(key["algorithm"], "Ed25519");
    let public_key = unhex(&key["public_key"]);
    let first = app
        .get("/api/v1/audit/checkpoints/latest", &app.admin_token)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first: Checkpoint = serde_json::from_value(first.body).unwrap();
    first.verify(&public_key).unwrap();
    let again: Checkpoint = serde_json::from_value(
        app.get("/api/v1/audit/checkpoints/latest", &app.admin_token)
            .await
            .body,
    )
    .unwrap();
    assert!(again.tree_size >= first.tree_size);
    for i in 0..3 {
        app.post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": format!("c{i}")}),
        )
        .await;
    }
    let later: Checkpoint = serde_json::from_value(
        app.get("/api/v1/audit/checkpoints/latest", &app.admin_token)
            .await
            .body,
    )
    .unwrap();
    later.verify(&public_key).unwrap();
    assert!(later.tree_size >= first.tree_size + 3);
    let c = app
        .get(
            &format!(
                "/api/v1/audit/proof/consistency?from={}&to={}",
                first.tree_size, later.tree_size
            ),
            &app.admin_token,
        )
        .await;
    let proof: Vec<[u8; 32]> = c.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(unhex)
        .collect();
    llmgov_core::merkle::verify_consistency(
        first.tree_size,
        later.tree_size,
        &first.root().unwrap(),
        &later.root().unwrap(),
        &proof,
    )
    .unwrap();
    // A server that lies about the newer head cannot make the proof fit.
    let mut forged = later.clone();
    forged.root_hash = "00".repeat(32);
    assert!(forged.verify(&public_key).is_err());
    assert!(
        llmgov_core::merkle::verify_consistency(
            first.tree_size,
            later.tree_size,
            &first.root().unwrap(),
            &forged.root().unwrap(),
            &proof
        )
        .is_err()
    );
}

crate::both_backends!(
    changes_are_refused_when_the_audit_entry_cannot_be_written,
    proofs_from_the_api_verify_on_the_client,
    signed_checkpoints_verify_and_stay_consistent,
);
