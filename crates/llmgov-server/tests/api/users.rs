//! User lifecycle through the API, and its audit trail.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

async fn user_lifecycle_is_audited_with_before_and_after(app: TestApp) {
    let created = app
        .post("/api/v1/users", &app.admin_token, json!({"email": "Ada@Example.com", "username": "ada", "password": "User-password-123", "roles": ["viewer"], "first_name": "Ada"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["email"], "ada@example.com");
    assert_eq!(created.body["roles"], json!(["viewer"]));
    assert!(created.body.get("password_hash").is_none() && created.body.get("password").is_none());
    let rid = created.headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let got = app
        .get(&format!("/api/v1/users/{id}"), &app.admin_token)
        .await;
    assert_eq!(got.body["username"], "ada");
    let perms = app
        .get(&format!("/api/v1/users/{id}/permissions"), &app.admin_token)
        .await;
    assert_eq!(
        perms.body,
        json!({"permissions": ["datasets:read", "metrics:read", "policies:read"]})
    );

    let put = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{id}"),
            Some(&app.admin_token),
            Some(json!({"last_name": "Lovelace", "status": "disabled"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["status"], "disabled");
    assert_eq!(put.body["first_name"], "Ada", "absent fields are kept");
    assert_eq!(
        app.login_pair("ada@example.com", "User-password-123")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "disabled users cannot log in"
    );
    let patch = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&app.admin_token),
            Some(json!({"first_name": null, "status": "active"})),
        )
        .await;
    assert_eq!(patch.body["first_name"], serde_json::Value::Null);
    let roles = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{id}/roles"),
            Some(&app.admin_token),
            Some(json!({"roles": ["auditor", "viewer"]})),
        )
        .await;
    assert_eq!(roles.body["roles"], json!(["auditor", "viewer"]));
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/users/{id}"), &app.admin_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let create = app.audit_events("users.create").await;
    let entry = create
        .iter()
        .find(|e| e["resource_id"] == id.as_str())
        .expect("users.create entry");
    assert_eq!(
        entry["request_id"],
        rid.as_str(),
        "the entry names the request that made the change"
    );
    assert_eq!(entry["after_state"]["roles"], json!(["viewer"]));
    assert_eq!(entry["actor_type"], "user");
    let update = app.audit_events("users.update").await;
    assert_eq!(update[0]["before_state"]["status"], "active");
    assert_eq!(update[0]["after_state"]["status"], "disabled");
    assert_eq!(
        app.audit_events("users.roles_update").await[0]["after_state"]["roles"],
        json!(["auditor", "viewer"])
    );
    assert_eq!(app.audit_events("users.delete").await.len(), 1);
    let verified = app
        .post("/api/v1/audit/verify", &app.admin_token, json!({}))
        .await;
    assert_eq!(verified.body["valid"], true, "{}", verified.body);
    assert!(verified.body["verified_entries"].as_i64().unwrap() >= 7);
    // Sequences are gap-free from 0.
    let all = app
        .get("/api/v1/audit/logs?limit=200", &app.admin_token)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["sequence"], i as i64);
    }
}

async fn lists_paginate_sort_filter_and_select_fields(app: TestApp) {
    for i in 0..4 {
        app.user_with(&format!("list{i}"), &["viewer"]).await;
    }
    let r = app
        .get(
            "/api/v1/users?page=2&limit=2&sort=username:asc",
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (
            r.body["total"].as_i64(),
            r.body["page"].as_i64(),
            r.body["limit"].as_i64(),
            r.body["has_more"].as_bool()
        ),
        (Some(5), Some(2), Some(2), Some(true))
    );
    let names: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["list1", "list2"]);
    let fields = app
        .get("/api/v1/users?fields=id,email&limit=1", &app.admin_token)
        .await;
    let item = fields.body["items"][0].as_object().unwrap();
    assert_eq!(item.keys().collect::<Vec<_>>(), ["email", "id"]);
    let disabled = app
        .get("/api/v1/users?status=disabled", &app.admin_token)
        .await;
    assert_eq!(disabled.body["total"], 0);
    for bad in [
        "?limit=0",
        "?limit=1000",
        "?page=-1",
        "?sort=password_hash",
        "?sort=email:sideways",
        "?fields=password_hash",
        "?status=sleeping",
        "?bogus=1",
    ] {
        let r = app
            .get(&format!("/api/v1/users{bad}"), &app.admin_token)
            .await;
        assert!(r.status.is_client_error(), "{bad} gave {}", r.status);
        r.error_code();
    }
}

async fn you_cannot_lock_yourself_out(app: TestApp) {
    let me = app.get("/api/v1/auth/me", &app.admin_token).await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{me}"),
            Some(&app.admin_token),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{me}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{me}/roles"),
            Some(&app.admin_token),
            Some(json!({"roles": ["viewer"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

async fn duplicates_are_conflicts(app: TestApp) {
    app.user_with("twin", &[]).await;
    let r = app.post("/api/v1/users", &app.admin_token, json!({"email": "TWIN@example.com", "username": "twin2", "password": "User-password-123"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "EMAIL_TAKEN");
}

crate::both_backends!(
    user_lifecycle_is_audited_with_before_and_after,
    lists_paginate_sort_filter_and_select_fields,
    you_cannot_lock_yourself_out,
    duplicates_are_conflicts,
);
