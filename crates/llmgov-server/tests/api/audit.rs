//! The audit trail fails closed: no entry, no change.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::*;

pub(crate) async fn break_audit_inserts(app: &TestApp) {
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

pub(crate) fn unhex(s: &serde_json::Value) -> [u8; 32] {
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

async fn audit_entries_can_be_filtered_and_searched(app: TestApp) {
    let (id, email, _) = app.user_with("quokka", &["viewer"]).await;
    app.user_with("wombat", &["auditor"]).await;
    let r = app
        .post(
            "/api/v1/audit/search",
            &app.admin_token,
            json!({"query": "quokka"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e.to_string().contains("quokka")));
    assert!(
        items
            .iter()
            .any(|e| e["event_type"] == "users.create" && e["resource_id"] == id.as_str())
    );
    let both = app
        .post(
            "/api/v1/audit/search",
            &app.admin_token,
            json!({"query": "quokka viewer", "filters": {"event_type": "users.create"}}),
        )
        .await;
    assert_eq!(both.body["total"], 1);
    let none = app
        .post(
            "/api/v1/audit/search",
            &app.admin_token,
            json!({"query": "quokka auditor"}),
        )
        .await;
    assert_eq!(none.body["total"], 0, "every word must match");
    // Personal data is not indexed, so erasing a person leaves nothing searchable behind.
    let personal = app
        .post(
            "/api/v1/audit/search",
            &app.admin_token,
            json!({"query": email}),
        )
        .await;
    assert_eq!(personal.status, StatusCode::OK);
    assert_eq!(personal.body["total"], 0);
    for hostile in [
        "\"",
        "NEAR(a b)",
        "quokka OR 1=1",
        "*",
        "a:b",
        "') DROP TABLE audit_log; --",
        "quo*",
    ] {
        let r = app
            .post(
                "/api/v1/audit/search",
                &app.admin_token,
                json!({"query": hostile}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{hostile}: {}", r.body);
    }
    for bad in [
        json!({"query": ""}),
        json!({"query": "x".repeat(300)}),
        json!({"query": "a", "filters": {"from": "never"}}),
        json!({"query": "a", "bogus": 1}),
    ] {
        let r = app
            .post("/api/v1/audit/search", &app.admin_token, bad.clone())
            .await;
        assert!(r.status.is_client_error(), "{bad}");
        r.error_code();
    }
    // Filters on the list.
    let denied = app
        .get(
            "/api/v1/audit/logs?status=success&event_category=access_control&resource_type=user",
            &app.admin_token,
        )
        .await;
    assert!(denied.body["total"].as_i64().unwrap() >= 2);
    let by_resource = app
        .get(
            &format!("/api/v1/audit/logs?resource_id={id}"),
            &app.admin_token,
        )
        .await;
    assert!(
        by_resource.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["resource_id"] == id.as_str())
    );
    let rid = by_resource.body["items"][0]["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_request = app
        .get(
            &format!("/api/v1/audit/logs?request_id={rid}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(by_request.body["total"], 1);
}

async fn compliance_reports_show_the_evidence_against_a_checkpoint(app: TestApp) {
    use llmgov_core::audit::checkpoint::Checkpoint;
    let (_, _, viewer) = app.user_with("reported", &["viewer"]).await;
    assert_eq!(
        app.login_pair("reported@example.com", "Wrong-password-1")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post("/api/v1/users", &viewer, json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    app.post(
        "/api/v1/api-keys",
        &app.admin_token,
        json!({"name": "<script>alert(1)</script>", "scopes": ["users:read"]}),
    )
    .await;
    app.post(
        "/api/v1/workspaces",
        &app.admin_token,
        json!({"name": "Reported"}),
    )
    .await;
    let key = unhex(
        &app.get("/api/v1/audit/checkpoints/public-key", &app.admin_token)
            .await
            .body["public_key"],
    );

    let r = app
        .get(
            "/api/v1/audit/compliance-report?framework=soc2",
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cp: Checkpoint = serde_json::from_value(r.body["checkpoint"].clone()).unwrap();
    cp.verify(&key).unwrap();
    let section = |id: &str| {
        r.body["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(section("failed_logins")["count"], 1);
    assert_eq!(section("access_denials")["count"], 1);
    assert!(section("permission_changes")["count"].as_u64().unwrap() >= 1);
    assert!(
        section("key_operations")["count"].as_u64().unwrap() >= 2,
        "signing key creation and the API key"
    );
    assert!(
        section("policy_and_configuration_changes")["count"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let cc61 = r.body["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "CC6.1")
        .unwrap()
        .clone();
    let expected = ["permission_changes", "failed_logins", "access_denials"]
        .iter()
        .map(|s| section(s)["count"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(cc61["evidence_count"], expected);
    // Entries behind a section are provably in the checkpointed log.
    let e = &section("failed_logins")["entries"][0];
    let seq = e["sequence"].as_u64().unwrap();
    let p = app
        .get(
            &format!(
                "/api/v1/audit/proof/inclusion?entry={seq}&size={}",
                cp.tree_size
            ),
            &app.admin_token,
        )
        .await;
    let proof: Vec<[u8; 32]> = p.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(unhex)
        .collect();
    let leaf = llmgov_core::merkle::leaf_hash(&unhex(&e["entry_hash"]));
    llmgov_core::merkle::verify_inclusion(seq, cp.tree_size, &leaf, &proof, &cp.root().unwrap())
        .unwrap();

    for f in ["gdpr", "hipaa", "eu_ai_act"] {
        let r = app
            .get(
                &format!("/api/v1/audit/compliance-report?framework={f}"),
                &app.admin_token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{f}");
        assert!(!r.body["controls"].as_array().unwrap().is_empty());
    }
    let html = app
        .client
        .get(format!(
            "{}/api/v1/audit/compliance-report?framework=hipaa&format=html",
            app.base
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = html.text().await.unwrap();
    assert!(html.contains("<h1>HIPAA compliance report</h1>") && html.contains(&cp.root_hash));
    assert!(!html.contains("<script>"), "values are escaped");
    let csv = app
        .client
        .get(format!(
            "{}/api/v1/audit/compliance-report?framework=gdpr&format=csv",
            app.base
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("section,sequence,timestamp")
    );
    // An empty period reports nothing; bad parameters are 400s.
    let empty = app.get("/api/v1/audit/compliance-report?framework=soc2&from=2001-01-01T00:00:00Z&to=2001-02-01T00:00:00Z", &app.admin_token).await;
    assert_eq!(empty.body["entries_in_period"], 0);
    for bad in [
        "framework=iso9001",
        "framework=soc2&format=pdf",
        "framework=soc2&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "framework=soc2&from=1900-01-01T00:00:00Z",
        "framework=soc2&to=tomorrow",
        "",
    ] {
        let r = app
            .get(
                &format!("/api/v1/audit/compliance-report?{bad}"),
                &app.admin_token,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        r.error_code();
    }
    assert_eq!(
        app.get("/api/v1/audit/compliance-report?framework=soc2", &viewer)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

crate::both_backends!(
    changes_are_refused_when_the_audit_entry_cannot_be_written,
    proofs_from_the_api_verify_on_the_client,
    signed_checkpoints_verify_and_stay_consistent,
    audit_entries_can_be_filtered_and_searched,
    compliance_reports_show_the_evidence_against_a_checkpoint,
);
