//! Policies: lifecycle, versions, bulk changes, templates, coverage and isolation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) const MODELS_REGO: &str = r#"package llmgov

deny contains sprintf("model %s is not allowed", [input.model]) if {
	not input.model in {"gpt-4o", "claude-sonnet-4"}
}
"#;

pub(crate) fn policy_body(name: &str, status: &str, actions: Value) -> Value {
    json!({
        "name": name,
        "policy_type": "model_lifecycle",
        "status": status,
        "definition": {"language": "rego", "source": MODELS_REGO},
        "actions": actions,
    })
}

pub(crate) async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/policies", &app.admin_token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn a_policy_is_created_versioned_diffed_and_rolled_back(app: TestApp) {
    let p = create(
        &app,
        policy_body("allowed models", "draft", json!([{"type": "block"}])),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["version"], 1);
    assert_eq!(p["status"], "draft");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            Some(json!({"status": "active", "priority": 10, "change_summary": "go live"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let new_source = MODELS_REGO.replace("\"gpt-4o\", ", "");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            Some(json!({"definition": {"language": "rego", "source": new_source}, "expected_version": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 3);
    // A stale expected version changes nothing.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            Some(json!({"priority": 1, "expected_version": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let h = app
        .get(&format!("/api/v1/policies/{id}/history"), &app.admin_token)
        .await;
    assert_eq!(h.body["total"], 3);
    assert_eq!(h.body["items"][0]["version"], 3);
    let d = app
        .get(
            &format!("/api/v1/policies/{id}/diff?from=2&to=3"),
            &app.admin_token,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["changed_fields"], json!(["definition"]));
    assert!(
        d.body["source_diff"]
            .as_str()
            .unwrap()
            .contains("-\tnot input.model in {\"gpt-4o\"")
    );
    let r = app
        .post(
            &format!("/api/v1/policies/{id}/rollback"),
            &app.admin_token,
            json!({"version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 4);
    assert_eq!(r.body["definition"]["source"], MODELS_REGO);
    assert_eq!(r.body["status"], "active");
    let r = app
        .post(
            &format!("/api/v1/policies/{id}/rollback"),
            &app.admin_token,
            json!({"version": 99}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Archive (DELETE) keeps the policy and its history.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "archived");
    let events: Vec<String> = app
        .audit_events("policies.update")
        .await
        .iter()
        .map(|e| e["resource_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(events.iter().filter(|r| *r == id).count(), 4);
}

async fn invalid_rego_is_a_422_with_a_position_and_changes_nothing(app: TestApp) {
    let r = app
        .post(
            "/api/v1/policies",
            &app.admin_token,
            json!({"name": "broken", "policy_type": "content", "definition": {"language": "rego", "source": "package llmgov\n\ndeny contains msg if {\n  msg := \n}\n"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.error_code(), "POLICY_INVALID");
    assert!(
        r.body["error"]["details"]["line"].as_u64().is_some(),
        "{}",
        r.body
    );
    for bad in [
        json!({"name": "x", "policy_type": "nope", "definition": {"language": "rego", "source": MODELS_REGO}}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "cel", "source": MODELS_REGO}}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "rego", "source": MODELS_REGO}, "controls": ["made_up:1"]}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "rego", "source": "x".repeat(70_000)}}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "rego", "source": MODELS_REGO}, "actions": [{"type": "notify", "url": "ftp://x"}]}),
    ] {
        // Each on a connection of its own: the oversized one is answered (413) before the
        // server reads it all and its connection is closed, which must not break another
        // request's write on a pooled connection.
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/policies", app.base))
            .bearer_auth(&app.admin_token)
            .header("connection", "close")
            .json(&bad)
            .send()
            .await
            .unwrap();
        let r = TestApp::read(r).await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
    }
    // Validation without saving, as an editor calls it while the user types.
    let (_, _, viewer) = app.user_with("validator", &["viewer"]).await;
    let before = app.audit_count().await;
    let v = app
        .post(
            "/api/v1/policies/validate",
            &viewer,
            json!({"source": "package llmgov\n\ndeny contains msg if {\n  msg := \n}\n"}),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!(v.body["valid"], false);
    assert!(
        v.body["line"]
            .as_u64()
            .is_some_and(|l| (3..=5).contains(&l)),
        "{}",
        v.body
    );
    assert!(!v.body["message"].as_str().unwrap().is_empty());
    let v = app
        .post(
            "/api/v1/policies/validate",
            &viewer,
            json!({"source": MODELS_REGO}),
        )
        .await;
    assert_eq!(v.body, json!({"valid": true}));
    let v = app
        .post(
            "/api/v1/policies/validate",
            &viewer,
            json!({"source": "package other\n\ndeny contains 1 if { true }\n"}),
        )
        .await;
    assert_eq!(v.body["valid"], false);
    assert!(
        v.body["message"]
            .as_str()
            .unwrap()
            .contains("package llmgov"),
        "{}",
        v.body
    );
    for bad in [
        json!({"source": "x".repeat(70_000)}),
        json!({"rego": "x"}),
        json!({}),
    ] {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/policies/validate", app.base))
            .bearer_auth(&viewer)
            .header("connection", "close")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    assert_eq!(
        app.audit_count().await,
        before,
        "validating changes nothing"
    );

    let r = app.get("/api/v1/policies", &app.admin_token).await;
    assert_eq!(r.body["total"], 0);
    assert!(app.audit_events("policies.create").await.is_empty());
}

async fn templates_frameworks_and_coverage(app: TestApp) {
    let t = app.get("/api/v1/policy-templates", &app.admin_token).await;
    assert!(t.body["total"].as_i64().unwrap() >= 12);
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "nope", "name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "cost_budget", "name": "budget", "parameters": {"limit": "ten"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "ai_disclosure", "name": "disclose", "status": "active"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(
        r.body["controls"]
            .as_array()
            .unwrap()
            .contains(&json!("eu_ai_act:art_50"))
    );
    let f = app
        .get("/api/v1/compliance/frameworks", &app.admin_token)
        .await;
    assert_eq!(f.body["total"], 4);
    let c = app
        .get(
            "/api/v1/compliance/frameworks/eu_ai_act/coverage",
            &app.admin_token,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let art50 = c.body["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "eu_ai_act:art_50")
        .unwrap()
        .clone();
    assert_eq!(art50["covered"], true);
    assert_eq!(
        art50["policies"][0]["audit_entries"], 1,
        "its creation: {art50}"
    );
    assert!(c.body["controls_covered"].as_i64().unwrap() >= 2);
    let c = app
        .get(
            "/api/v1/compliance/frameworks/sox/coverage",
            &app.admin_token,
        )
        .await;
    assert_eq!(c.status, StatusCode::NOT_FOUND);
    let l = app
        .get(
            "/api/v1/policies?control=eu_ai_act:art_50&status=active",
            &app.admin_token,
        )
        .await;
    assert_eq!(l.body["total"], 1, "{}", l.body);
    let s = app
        .post(
            "/api/v1/policies/search",
            &app.admin_token,
            json!({"text": "DISCL"}),
        )
        .await;
    assert_eq!(s.body["total"], 1, "{}", s.body);
}

async fn policies_are_invisible_to_other_workspaces_and_viewers_cannot_write(app: TestApp) {
    let p = create(&app, policy_body("models", "active", json!([]))).await;
    let id = p["id"].as_str().unwrap();
    let (_, _, viewer) = app.user_with("viewer2", &["viewer"]).await;
    assert_eq!(
        app.get(&format!("/api/v1/policies/{id}"), &viewer)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .post(
            "/api/v1/policies",
            &viewer,
            policy_body("v", "draft", json!([])),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post("/api/v1/policies/evaluate", &viewer, json!({"input": {}}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ws = app
        .post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": "Other"}),
        )
        .await;
    let ws_b = ws.body["id"].as_str().unwrap();
    let u = app
        .post("/api/v1/users", &app.admin_token, json!({"email": "pb@example.com", "username": "policyb", "password": "User-password-123", "roles": ["admin"], "workspace_id": ws_b}))
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    let other = app.login("pb@example.com", "User-password-123").await;
    assert_eq!(
        app.get(&format!("/api/v1/policies/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/policies", &other).await.body["total"], 0);
    let r = app
        .post(
            "/api/v1/policies/evaluate",
            &other,
            json!({"input": {"model": "llama"}}),
        )
        .await;
    assert_eq!(
        r.body["decision"], "allow",
        "another workspace's policy must not apply"
    );
}

crate::both_backends!(
    a_policy_is_created_versioned_diffed_and_rolled_back,
    invalid_rego_is_a_422_with_a_position_and_changes_nothing,
    templates_frameworks_and_coverage,
    policies_are_invisible_to_other_workspaces_and_viewers_cannot_write,
);

async fn bulk_applies_everything_or_nothing(app: TestApp) {
    let a = create(&app, policy_body("a", "draft", json!([]))).await;
    let a_id = a["id"].as_str().unwrap();
    let ops = |bad: bool| {
        json!({"operations": [
            {"op": "create", "policy": policy_body("b", "active", json!([{"type": "block"}]))},
            {"op": "update", "id": a_id, "changes": {"status": "active", "expected_version": 1}},
            {"op": "create", "policy": {
                "name": "c", "policy_type": "content",
                "definition": {"language": "rego", "source": if bad { "package llmgov\ndeny contains" } else { MODELS_REGO }}
            }},
        ]})
    };
    let r = app
        .post("/api/v1/policies/bulk", &app.admin_token, ops(true))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["operation"], 2, "{}", r.body);
    let list = app.get("/api/v1/policies", &app.admin_token).await;
    assert_eq!(list.body["total"], 1, "nothing applied");
    assert_eq!(list.body["items"][0]["version"], 1);
    let r = app
        .post("/api/v1/policies/bulk", &app.admin_token, ops(false))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["items"][1]["status"], "active");
    let r = app
        .post(
            "/api/v1/policies/bulk",
            &app.admin_token,
            json!({"operations": [{"op": "archive", "id": a_id}, {"op": "archive", "id": a_id}]}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the same policy twice"
    );
    let r = app
        .post(
            "/api/v1/policies/bulk",
            &app.admin_token,
            json!({"operations": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let active = app
        .get("/api/v1/policies?status=active", &app.admin_token)
        .await;
    assert_eq!(active.body["total"], 2, "a and b; c was created as a draft");
}

mod bulk {
    crate::both_backends!(bulk_applies_everything_or_nothing);
    use super::bulk_applies_everything_or_nothing;
}
