//! Permissions and workspace isolation.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn a_viewer_cannot_create_users_and_the_denial_is_audited(app: TestApp) {
    let (viewer_id, _, token) = app.user_with("viewer1", &["viewer"]).await;
    let before = app.user_count().await;
    let r = app.post("/api/v1/users", &token, json!({"email": "x@example.com", "username": "xx1", "password": "User-password-123", "roles": []})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "FORBIDDEN");
    assert_eq!(
        r.body["error"]["details"]["required_permission"],
        "users:create"
    );
    assert_eq!(app.user_count().await, before);
    let denials = app.audit_events("access.denied").await;
    assert!(
        denials
            .iter()
            .any(|e| e["actor_id"] == viewer_id.as_str() && e["status"] == "denied")
    );
}

async fn another_workspace_s_user_is_not_found(app: TestApp) {
    let ws = app
        .post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": "Workspace B"}),
        )
        .await;
    assert_eq!(ws.status, StatusCode::CREATED);
    let ws_b = ws.body["id"].as_str().unwrap();
    let u = app
        .post("/api/v1/users", &app.admin_token, json!({"email": "b@example.com", "username": "userb", "password": "User-password-123", "roles": ["admin"], "workspace_id": ws_b}))
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    assert_eq!(u.body["workspace_id"], ws_b);
    let b_id = u.body["id"].as_str().unwrap().to_string();
    // Workspace A's admin (the super admin, even) cannot see B's user: 404, not 403.
    let (_, _, admin_a) = app.user_with("admina", &["admin"]).await;
    for token in [&admin_a, &app.admin_token] {
        let r = app.get(&format!("/api/v1/users/{b_id}"), token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.error_code(), "USER_NOT_FOUND");
        let perms = app
            .get(&format!("/api/v1/users/{b_id}/permissions"), token)
            .await;
        assert_eq!(perms.status, StatusCode::NOT_FOUND);
    }
    // B's admin sees B's user and not A's.
    let b_token = app.login("b@example.com", "User-password-123").await;
    assert_eq!(
        app.get(&format!("/api/v1/users/{b_id}"), &b_token)
            .await
            .status,
        StatusCode::OK
    );
    let list = app.get("/api/v1/users", &b_token).await;
    assert_eq!(list.body["total"], 1);
    let a_user = app.get("/api/v1/auth/me", &admin_a).await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get(&format!("/api/v1/users/{a_user}"), &b_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let put = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{a_user}"),
            Some(&b_token),
            Some(json!({"first_name": "x"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::NOT_FOUND);
}

async fn only_a_super_admin_may_name_another_workspace(app: TestApp) {
    let ws = app
        .post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": "Other"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, admin) = app.user_with("plainadmin", &["admin"]).await;
    let r = app.post("/api/v1/users", &admin, json!({"email": "z@example.com", "username": "zz1", "password": "User-password-123", "workspace_id": ws})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let missing = app
        .post("/api/v1/users", &app.admin_token, json!({"email": "z@example.com", "username": "zz1", "password": "User-password-123", "workspace_id": uuid::Uuid::new_v4()}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn nobody_grants_more_than_they_hold(app: TestApp) {
    let (_, _, admin) = app.user_with("admin2", &["admin"]).await;
    let escalate = app.post("/api/v1/users", &admin, json!({"email": "e@example.com", "username": "esc1", "password": "User-password-123", "roles": ["super_admin"]})).await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);
    let fine = app.post("/api/v1/users", &admin, json!({"email": "e@example.com", "username": "esc1", "password": "User-password-123", "roles": ["viewer"]})).await;
    assert_eq!(fine.status, StatusCode::CREATED);
    let id = fine.body["id"].as_str().unwrap();
    let promote = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{id}/roles"),
            Some(&admin),
            Some(json!({"roles": ["super_admin"]})),
        )
        .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN);
    // A custom role with a permission the admin lacks cannot be created by it either.
    let role = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "keymaster", "permissions": ["settings:update"]}),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED);
    let via_custom = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{id}/roles"),
            Some(&admin),
            Some(json!({"roles": ["keymaster"]})),
        )
        .await;
    assert_eq!(via_custom.status, StatusCode::FORBIDDEN);
    let unknown = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{id}/roles"),
            Some(&app.admin_token),
            Some(json!({"roles": ["no_such_role"]})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn custom_roles_grant_their_permissions(app: TestApp) {
    let r = app.post("/api/v1/roles", &app.admin_token, json!({"name": "user_reader", "description": "reads users", "permissions": ["users:read"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let role_id = r.body["id"].as_str().unwrap().to_string();
    let (id, _, token) = app.user_with("reader", &["user_reader"]).await;
    let perms = app
        .get(&format!("/api/v1/users/{id}/permissions"), &app.admin_token)
        .await;
    assert_eq!(perms.body["permissions"], json!(["users:read"]));
    assert_eq!(
        app.get("/api/v1/users", &token).await.status,
        StatusCode::OK
    );
    let dup = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "user_reader", "permissions": []}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.error_code(), "ROLE_EXISTS");
    let predefined = app.get("/api/v1/roles", &app.admin_token).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "viewer")
        .unwrap()["id"]
        .clone();
    let change = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/roles/{}", predefined.as_str().unwrap()),
            Some(&app.admin_token),
            Some(json!({"permissions": []})),
        )
        .await;
    assert_eq!(change.status, StatusCode::CONFLICT);
    assert_eq!(change.error_code(), "ROLE_PREDEFINED");
    let del = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/roles/{role_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let perms = app
        .get(&format!("/api/v1/users/{id}/permissions"), &app.admin_token)
        .await;
    assert_eq!(perms.body["permissions"], json!([]));
}

async fn a_user_can_belong_to_several_workspaces(app: TestApp) {
    let (id, email, _) = app.user_with("multi", &["viewer"]).await;
    let ws_b = app
        .post("/api/v1/workspaces", &app.admin_token, json!({"name": "B"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let added = app
        .post(
            &format!("/api/v1/workspaces/{ws_b}/members"),
            &app.admin_token,
            json!({"user_id": id, "roles": ["auditor"]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["workspace_id"], ws_b.as_str());
    assert_eq!(added.body["roles"], json!(["auditor"]));
    let again = app
        .post(
            &format!("/api/v1/workspaces/{ws_b}/members"),
            &app.admin_token,
            json!({"user_id": id}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "ALREADY_MEMBER");
    // Login picks the first workspace by default, or the one asked for.
    let in_b = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": "User-password-123", "workspace_id": ws_b})),
        )
        .await;
    assert_eq!(in_b.status, StatusCode::OK);
    let me = app
        .get(
            "/api/v1/auth/me",
            in_b.body["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(me.body["user"]["workspace_id"], ws_b.as_str());
    assert_eq!(me.body["user"]["roles"], json!(["auditor"]));
    assert_eq!(me.body["workspaces"].as_array().unwrap().len(), 2);
    assert!(
        me.body["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "audit:read")
    );
    let stranger = app.call(reqwest::Method::POST, "/api/v1/auth/login", None, Some(json!({"email": email, "password": "User-password-123", "workspace_id": uuid::Uuid::new_v4()}))).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    // Only users the caller can see can be added, and only to workspaces that exist.
    let missing_user = app
        .post(
            &format!("/api/v1/workspaces/{ws_b}/members"),
            &app.admin_token,
            json!({"user_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(missing_user.status, StatusCode::NOT_FOUND);
    let missing_ws = app
        .post(
            &format!("/api/v1/workspaces/{}/members", uuid::Uuid::new_v4()),
            &app.admin_token,
            json!({"user_id": id}),
        )
        .await;
    assert_eq!(missing_ws.status, StatusCode::NOT_FOUND);
}

crate::both_backends!(
    a_user_can_belong_to_several_workspaces,
    a_viewer_cannot_create_users_and_the_denial_is_audited,
    another_workspace_s_user_is_not_found,
    only_a_super_admin_may_name_another_workspace,
    nobody_grants_more_than_they_hold,
    custom_roles_grant_their_permissions,
);
