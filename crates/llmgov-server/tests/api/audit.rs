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

crate::both_backends!(changes_are_refused_when_the_audit_entry_cannot_be_written);
