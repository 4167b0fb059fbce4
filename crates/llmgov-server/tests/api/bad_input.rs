//! Hostile and malformed input: a clear 4xx in the error format, and nothing changes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// Snapshot of what a bad request must not change.
async fn snapshot(app: &TestApp) -> (i64, i64) {
    (app.user_count().await, app.audit_count().await)
}

async fn raw(app: &TestApp, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
    let r = app
        .client
        .request(method, format!("{}{}", app.base, path))
        .bearer_auth(&app.admin_token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    TestApp::read(r).await
}

async fn malformed_bodies_are_rejected_without_effect(app: TestApp) {
    let before = snapshot(&app).await;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("application/json", b"{bad json".to_vec(), StatusCode::BAD_REQUEST, "MALFORMED_JSON"),
        ("application/json", b"".to_vec(), StatusCode::BAD_REQUEST, "MALFORMED_JSON"),
        ("application/json", b"[1,2,3]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
        ("application/json", br#"{"email": 5, "username": "a", "password": "b"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
        ("application/json", br#"{"email": "a@b.co"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
        ("application/json", br#"{"email":"a@b.co","username":"abc","password":"User-password-123","is_admin":true}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
        ("application/json", br#"{"email":"a@b.co","username":"abc","password":"User-password-123","roles":"admin"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
        ("text/plain", br#"{"email":"a@b.co","username":"abc","password":"User-password-123"}"#.to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/json", vec![0xff, 0xfe, 0x00], StatusCode::BAD_REQUEST, "MALFORMED_JSON"),
    ];
    for (ct, body, status, code) in cases {
        let r = raw(&app, Method::POST, "/api/v1/users", ct, body.clone()).await;
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&body));
        assert_eq!(r.error_code(), code);
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn oversized_bodies_get_413(app: TestApp) {
    let before = snapshot(&app).await;
    let huge = json!({"email": "a@b.co", "username": "abc", "password": "User-password-123", "first_name": "x".repeat(80 * 1024)});
    // Just over the 64 KiB test limit, so the whole body fits the loopback socket buffers:
    // the server answers before reading it all and closes the connection, which must not
    // break the write. The request has a connection of its own so none reuses that one.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/users", app.base))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .header("connection", "close")
        .body(serde_json::to_vec(&huge).unwrap())
        .send()
        .await
        .unwrap();
    let r = TestApp::read(r).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "PAYLOAD_TOO_LARGE");
    assert_eq!(snapshot(&app).await, before);
}

async fn invalid_values_are_422_and_change_nothing(app: TestApp) {
    let before = snapshot(&app).await;
    let long = "a".repeat(5000);
    let base =
        json!({"email": "ok@example.com", "username": "okuser", "password": "User-password-123"});
    let bad_fields = [
        ("email", json!("not-an-email")),
        ("email", json!(format!("{long}@example.com"))),
        ("email", json!("a@b.c'; DROP TABLE users; --")),
        ("username", json!("x'; DROP TABLE users; --")),
        ("username", json!(long)),
        ("username", json!("")),
        ("password", json!("short")),
        ("password", json!("alllowercaseletters")),
        ("first_name", json!(long)),
        ("first_name", json!("line\u{0000}break")),
        ("roles", json!(["no_such_role"])),
        ("metadata", json!([1, 2])),
        ("workspace_id", json!("not-a-uuid")),
    ];
    for (field, value) in bad_fields {
        let mut body = base.clone();
        body[field] = value.clone();
        let r = app.post("/api/v1/users", &app.admin_token, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}: {}",
            r.body
        );
        let code = r.error_code();
        assert!(
            code == "VALIDATION_FAILED" || code == "INVALID_BODY",
            "{code}"
        );
    }
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(500)}),
        json!({"name": 12}),
    ] {
        let r = app.post("/api/v1/workspaces", &app.admin_token, bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for bad in [
        json!({"name": "Bad Name", "permissions": []}),
        json!({"name": "ok_name", "permissions": ["users:*"]}),
        json!({"name": "super_admin", "permissions": []}),
    ] {
        let r = app
            .post("/api/v1/roles", &app.admin_token, bad.clone())
            .await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::CONFLICT,
            "{bad}"
        );
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn sql_metacharacters_are_stored_literally(app: TestApp) {
    let nasty = "Robert'); DROP TABLE users; -- \" ` \\ %_ $1 ?";
    let r = app
        .post("/api/v1/users", &app.admin_token, json!({"email": "bobby@example.com", "username": "bobby", "password": "User-password-123", "first_name": nasty, "metadata": {"q": nasty}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let got = app
        .get(
            &format!("/api/v1/users/{}", r.body["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await;
    assert_eq!(got.body["first_name"], nasty);
    assert_eq!(got.body["metadata"]["q"], nasty);
    assert_eq!(app.user_count().await, 2, "the users table is intact");
    // Every other string field of the API, with the same payload.
    let ws = app
        .post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": nasty, "description": nasty}),
        )
        .await;
    assert_eq!(ws.status, StatusCode::CREATED);
    assert_eq!(ws.body["name"], nasty);
    let role = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "quoted_role", "description": nasty, "permissions": []}),
        )
        .await;
    assert_eq!(role.body["description"], nasty);
    assert_eq!(
        app.post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": nasty, "permissions": []})
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let key = app
        .post(
            "/api/v1/api-keys",
            &app.admin_token,
            json!({"name": nasty, "scopes": ["users:read"]}),
        )
        .await;
    assert_eq!(key.body["name"], nasty);
    assert_eq!(
        app.post(
            "/api/v1/api-keys",
            &app.admin_token,
            json!({"name": "k", "scopes": [nasty]})
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.login_pair(nasty, nasty).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_pair(ADMIN_EMAIL, nasty).await.status,
        StatusCode::UNAUTHORIZED
    );
    let rt = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": nasty})),
        )
        .await;
    assert_eq!(rt.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get(
            &format!("/api/v1/users?sort={}", urlencode(nasty)),
            &app.admin_token
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/users?fields={}", urlencode(nasty)),
            &app.admin_token
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/api/v1/workspaces", &app.admin_token).await.body["total"],
        2,
        "the workspaces table is intact"
    );
    assert_eq!(app.user_count().await, 2);
    let q = app
        .get(
            "/api/v1/audit/logs?event_type=x'%20OR%20'1'='1",
            &app.admin_token,
        )
        .await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.body["total"], 0);
}

async fn invalid_ids_and_queries_are_400(app: TestApp) {
    let before = snapshot(&app).await;
    for path in [
        "/api/v1/users/not-a-uuid",
        "/api/v1/users/1",
        "/api/v1/users/%27%20OR%201=1",
        "/api/v1/roles/xyz",
        "/api/v1/api-keys/..%2f..",
        "/api/v1/workspaces/00000000-0000-0000-0000",
    ] {
        let r = app.get(path, &app.admin_token).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.error_code(), "INVALID_ID");
    }
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/users/nope",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for q in [
        "from=0001-01-01T00:00:00Z",
        "to=9999-12-31T00:00:00Z",
        "from=1970-01-01T00:00:00Z&to=2199-01-01T00:00:00Z",
        "from=yesterday",
        "actor_id=me",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "sort=details",
    ] {
        let r = app
            .get(&format!("/api/v1/audit/logs?{q}"), &app.admin_token)
            .await;
        assert!(r.status.is_client_error(), "{q}");
        r.error_code();
    }
    let r = app
        .get(
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(snapshot(&app).await, before);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

crate::both_backends!(
    malformed_bodies_are_rejected_without_effect,
    oversized_bodies_get_413,
    invalid_values_are_422_and_change_nothing,
    sql_metacharacters_are_stored_literally,
    invalid_ids_and_queries_are_400,
);
