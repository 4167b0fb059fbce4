//! HTTP conventions: error format everywhere, request ids, headers, health, metrics, docs,
//! idempotency.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

async fn unknown_routes_and_methods_use_the_error_format(app: TestApp) {
    let r = app
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "ROUTE_NOT_FOUND");
    let r = app
        .call(Method::DELETE, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "METHOD_NOT_ALLOWED");
    let r = app.call(Method::GET, "/api/v1/users", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "UNAUTHENTICATED");
}

async fn request_ids_and_security_headers(app: TestApp) {
    let r = app
        .client
        .get(format!("{}/health/live", app.base))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    for h in [
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
        "strict-transport-security",
        "referrer-policy",
    ] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    let r = app
        .client
        .get(format!("{}/api/v1/nope", app.base))
        .header("x-correlation-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-correlation-id"], "trace-abc.123");
    assert_eq!(r.headers()["x-request-id"], "trace-abc.123");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "trace-abc.123");
    let r = app
        .client
        .get(format!("{}/health/live", app.base))
        .header("x-correlation-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
    let r = app
        .client
        .get(format!("{}/api/v1/users", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
}

async fn health_metrics_and_docs(app: TestApp) {
    let live = app.call(Method::GET, "/health/live", None, None).await;
    assert_eq!(
        (live.status, live.body["status"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );
    let ready = app.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );
    assert!(
        ready.body["checks"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("database")
    );
    app.get("/api/v1/users", &app.admin_token).await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "llmgov_http_requests_total{method=\"GET\",route=\"/api/v1/users\",status=\"200\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("llmgov_http_request_duration_seconds_bucket"));
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert!(doc.body["paths"]["/api/v1/users/{id}"]["get"].is_object());
    let ui = app
        .client
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

async fn idempotency_key_replays_the_first_response(app: TestApp) {
    let body = json!({"name": "Idem"});
    let send = |b: serde_json::Value, key: &'static str| {
        app.client
            .post(format!("{}/api/v1/workspaces", app.base))
            .bearer_auth(&app.admin_token)
            .header("idempotency-key", key)
            .json(&b)
            .send()
    };
    let first = TestApp::read(send(body.clone(), "k-1").await.unwrap()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = TestApp::read(send(body.clone(), "k-1").await.unwrap()).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(
        second.body["id"], first.body["id"],
        "same key, same request: the same workspace"
    );
    assert_eq!(second.headers["idempotent-replayed"], "true");
    let other = TestApp::read(send(json!({"name": "Different"}), "k-1").await.unwrap()).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.error_code(), "IDEMPOTENCY_KEY_REUSED");
    let list = app.get("/api/v1/workspaces", &app.admin_token).await;
    assert_eq!(list.body["total"], 2, "bootstrap workspace + one created");
    let bad = app
        .client
        .post(format!("{}/api/v1/workspaces", app.base))
        .bearer_auth(&app.admin_token)
        .header("idempotency-key", "x".repeat(300))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// Without a built web UI, its paths say how to build it; API paths keep the API's errors.
async fn ui_paths_without_a_build_say_how_to_build_it(app: TestApp) {
    for path in ["/", "/policies/123"] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = r.text().await.unwrap();
        assert!(body.contains("npm --prefix web run build"), "{body}");
    }
    let r = app.call(Method::GET, "/api/v2/anything", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "ROUTE_NOT_FOUND");
    let r = app.call(Method::POST, "/policies", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

crate::both_backends!(
    ui_paths_without_a_build_say_how_to_build_it,
    unknown_routes_and_methods_use_the_error_format,
    request_ids_and_security_headers,
    health_metrics_and_docs,
    idempotency_key_replays_the_first_response,
);
