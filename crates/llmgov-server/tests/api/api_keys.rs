//! API keys: shown once, hashed at rest, scoped, revocable.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

async fn api_keys_authenticate_within_their_scopes(app: TestApp) {
    let r = app
        .post(
            "/api/v1/api-keys",
            &app.admin_token,
            json!({"name": "ci", "scopes": ["users:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["key"].as_str().unwrap().to_string();
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(key.starts_with(r.body["prefix"].as_str().unwrap()));
    assert_eq!(r.body["status"], "active");

    assert_eq!(app.get("/api/v1/users", &key).await.status, StatusCode::OK);
    let denied = app.post("/api/v1/users", &key, json!({})).await;
    assert_eq!(
        denied.status,
        StatusCode::FORBIDDEN,
        "a key has only its scopes, not its owner's permissions"
    );
    let me = app.get("/api/v1/auth/me", &key).await;
    assert_eq!(me.body["credential"], "api_key");
    assert_eq!(me.body["permissions"], json!(["users:read"]));
    let mint = app
        .post(
            "/api/v1/api-keys",
            &key,
            json!({"name": "x", "scopes": ["users:read"]}),
        )
        .await;
    assert_eq!(
        mint.status,
        StatusCode::FORBIDDEN,
        "keys cannot mint keys (and lack keys:create)"
    );

    let listed = app.get("/api/v1/api-keys", &app.admin_token).await;
    assert_eq!(listed.body["total"], 1);
    assert!(
        listed.body["items"][0].get("key").is_none(),
        "the secret is never shown again"
    );
    let got = app
        .get(&format!("/api/v1/api-keys/{id}"), &app.admin_token)
        .await;
    assert!(got.body["last_used_at"].is_string());

    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/users", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&format!("/api/v1/api-keys/{id}"), &app.admin_token)
            .await
            .body["status"],
        "revoked"
    );
    assert_eq!(app.audit_events("api_keys.create").await.len(), 1);
    assert_eq!(app.audit_events("api_keys.revoke").await.len(), 1);
    // Tampered and unknown keys.
    let mut wrong = key.clone();
    wrong.pop();
    wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        app.get("/api/v1/users", &wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn key_scopes_cannot_exceed_the_creator_s(app: TestApp) {
    let (_, _, scientist) = app.user_with("sci", &["data_scientist"]).await;
    let r = app
        .post(
            "/api/v1/api-keys",
            &scientist,
            json!({"name": "k", "scopes": ["users:create"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ok = app
        .post(
            "/api/v1/api-keys",
            &scientist,
            json!({"name": "k", "scopes": ["datasets:read"]}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    for bad in [
        json!({"name": "k", "scopes": []}),
        json!({"name": "k", "scopes": ["datasets:fly"]}),
        json!({"name": "", "scopes": ["datasets:read"]}),
        json!({"name": "k", "scopes": ["datasets:read"], "expires_at": "2001-01-01T00:00:00Z"}),
    ] {
        let r = app.post("/api/v1/api-keys", &scientist, bad.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // Others' keys are invisible to a user without users:read.
    app.post(
        "/api/v1/api-keys",
        &app.admin_token,
        json!({"name": "admin's", "scopes": ["users:read"]}),
    )
    .await;
    assert_eq!(
        app.get("/api/v1/api-keys", &scientist).await.body["total"],
        1
    );
}

async fn an_expired_key_is_refused(app: TestApp) {
    let r = app.post("/api/v1/api-keys", &app.admin_token, json!({"name": "short", "scopes": ["users:read"], "expires_at": chrono::Utc::now() + chrono::Duration::days(1)})).await;
    let key = r.body["key"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/users", &key).await.status, StatusCode::OK);
    let id: uuid::Uuid = r.body["id"].as_str().unwrap().parse().unwrap();
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    match app.db.backend {
        llmgov_store::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
                .bind(past)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
        llmgov_store::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
                .bind(past)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    assert_eq!(
        app.get("/api/v1/users", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
}

crate::both_backends!(
    api_keys_authenticate_within_their_scopes,
    key_scopes_cannot_exceed_the_creator_s,
    an_expired_key_is_refused
);
