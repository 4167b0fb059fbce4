//! Webhooks: signed deliveries with their log, retries, and a failing endpoint's circuit
//! breaker with deferred deliveries that keep their attempts.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::alerts::{evaluate, ingest, receiver};
use crate::helpers::*;
use crate::metrics::{metrics_key, pt};
use crate::streams::WAIT;

/// A webhook receiver on a random port that hands each request's headers and raw body to the
/// test; its URL carries `?token=` so tests can check the query string is never logged.
pub(crate) async fn raw_receiver(
    token: &str,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, String)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hook?token={token}",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, hook).await });
    (url, rx)
}

async fn webhooks_are_signed_and_every_delivery_is_logged(app: TestApp) {
    let key = metrics_key(&app).await;
    let secret = "webhook-secret-0123456789";
    let (url, mut hook) = raw_receiver("abc").await;
    let (plain_url, mut plain) = receiver().await;
    let rule = app
        .post(
            "/api/v1/metrics/alerts",
            &app.admin_token,
            json!({"name": "slow", "metric_name": "llm.latency", "aggregation": "max", "window": "10m",
                   "comparator": "gt", "threshold": 1000,
                   "channels": [{"type": "webhook", "url": url, "secret": secret}, {"type": "webhook", "url": plain_url}]}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);
    // The secret is write-only.
    assert_eq!(rule.body["channels"][0]["secret_set"], true);
    assert!(rule.body["channels"][0].get("secret").is_none());
    assert_eq!(rule.body["channels"][1]["secret_set"], false);
    let id = rule.body["id"].as_str().unwrap().to_string();
    // Sending the rule back unchanged keeps the secret.
    let mut back = rule.body.clone();
    for k in ["id", "created_at", "updated_at", "created_by"] {
        back.as_object_mut().unwrap().remove(k);
    }
    let put = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/metrics/alerts/{id}"),
            Some(&app.admin_token),
            Some(back),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["channels"][0]["secret_set"], true);
    ingest(&app, &key, vec![pt(1, "gpt-4o", 2000.0)]).await;
    assert_eq!(evaluate(&app).await, 1);
    let (headers, body) = tokio::time::timeout(WAIT, hook.recv())
        .await
        .unwrap()
        .unwrap();
    assert_signed(&headers, &body, secret);
    assert!(headers.get("x-llmgov-message-id").is_some());
    let fired: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(fired["event"], "alerts.fire");
    // The unsigned channel gets no signature.
    let _ = tokio::time::timeout(WAIT, plain.recv())
        .await
        .unwrap()
        .unwrap();
    // The delivery log: both delivered, one signed, no secret and no query token shown.
    let log = loop {
        let r = app
            .get(
                "/api/v1/webhooks/deliveries?status=delivered",
                &app.admin_token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["total"] == 2 {
            break r;
        }
        tokio::task::yield_now().await;
    };
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.iter().filter(|d| d["signed"] == true).count(), 1);
    assert!(
        items
            .iter()
            .all(|d| d["attempts"] == 1 && d["topic"] == "alerts.fire")
    );
    let text = log.body.to_string();
    assert!(
        !text.contains(secret) && !text.contains("token=abc"),
        "{text}"
    );
    // Neither the audit trail nor the rule listing shows the secret.
    let audit = app
        .get("/api/v1/audit/logs?limit=200", &app.admin_token)
        .await;
    assert!(!audit.body.to_string().contains(secret));
    let rules = app.get("/api/v1/metrics/alerts", &app.admin_token).await;
    assert!(!rules.body.to_string().contains(secret));
    // Bad input and permissions.
    let r = app
        .get("/api/v1/webhooks/deliveries?status=lost", &app.admin_token)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            &format!("/api/v1/webhooks/deliveries/{}/retry", uuid::Uuid::now_v7()),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get("/api/v1/webhooks/deliveries", &key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/api/v1/metrics/alerts",
            &app.admin_token,
            json!({"name": "short", "metric_name": "llm.latency", "aggregation": "max", "window": "10m",
                   "comparator": "gt", "threshold": 1, "channels": [{"type": "webhook", "url": url, "secret": "short"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A webhook endpoint answering `status` (changeable), counting its calls.
async fn flaky_receiver() -> (
    String,
    Arc<std::sync::atomic::AtomicU16>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering::SeqCst;
    let status = Arc::new(std::sync::atomic::AtomicU16::new(500));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s, c) = (status.clone(), calls.clone());
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (s, c) = (s.clone(), c.clone());
            async move {
                c.fetch_add(1, SeqCst);
                StatusCode::from_u16(s.load(SeqCst)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    (url, status, calls)
}

/// The only delivery of the log once `done` holds for it.
async fn delivery_when(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app
            .get("/api/v1/webhooks/deliveries", &app.admin_token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let d = r.body["items"][0].clone();
        if done(&d) {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery never reached the expected state: {d}"
        );
        tokio::task::yield_now().await;
    }
}

async fn a_failing_endpoint_opens_its_circuit_and_deferred_deliveries_keep_their_attempts(
    backend: llmgov_store::Backend,
) {
    use std::sync::atomic::Ordering::SeqCst;
    // Two failures open the circuit for 3 s.
    let app = spawn_app_with(
        backend,
        Options {
            breakers: Some((2, Duration::from_secs(3))),
            ..Default::default()
        },
    )
    .await;
    let key = metrics_key(&app).await;
    let (url, status, calls) = flaky_receiver().await;
    let rule = app
        .post(
            "/api/v1/metrics/alerts",
            &app.admin_token,
            json!({"name": "slow", "metric_name": "llm.latency", "aggregation": "max", "window": "10m",
                   "comparator": "gt", "threshold": 1000, "channels": [{"type": "webhook", "url": url}]}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);
    ingest(&app, &key, vec![pt(1, "gpt-4o", 2000.0)]).await;
    assert_eq!(evaluate(&app).await, 1);
    // First failure: the next attempt waits for the backoff.
    let d = delivery_when(&app, |d| d["last_status"] == 500).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"], 1);
    let id = d["id"].as_str().unwrap().to_string();
    let retry = format!("/api/v1/webhooks/deliveries/{id}/retry");
    // Retried at once by an operator: the second failure opens the circuit.
    assert_eq!(
        app.post(&retry, &app.admin_token, json!({})).await.status,
        StatusCode::ACCEPTED
    );
    let first = d["last_attempt_at"].clone();
    let d = delivery_when(&app, |d| d["last_attempt_at"] != first).await;
    // (attempts restart from 0 on a manual retry, so this is the retry's first failure)
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(calls.load(SeqCst), 2);
    // While it is open, deliveries are deferred without calling the endpoint and without
    // spending attempts.
    assert_eq!(
        app.post(&retry, &app.admin_token, json!({})).await.status,
        StatusCode::ACCEPTED
    );
    let d = delivery_when(&app, |d| {
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("circuit open"))
    })
    .await;
    assert_eq!(d["attempts"], 0, "{d}");
    assert_eq!(d["status"], "pending");
    assert!(d["next_attempt_at"].is_string());
    assert_eq!(calls.load(SeqCst), 2, "the endpoint was left alone");
    // The endpoint recovers; after the open period one trial goes through and closes it.
    status.store(204, SeqCst);
    let d = delivery_when(&app, |d| d["status"] == "delivered").await;
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(calls.load(SeqCst), 3);
}

crate::both_backends!(webhooks_are_signed_and_every_delivery_is_logged);

mod own_servers {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_circuit_breaker() {
        super::a_failing_endpoint_opens_its_circuit_and_deferred_deliveries_keep_their_attempts(
            llmgov_store::Backend::Sqlite,
        )
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_circuit_breaker() {
        super::a_failing_endpoint_opens_its_circuit_and_deferred_deliveries_keep_their_attempts(
            llmgov_store::Backend::Postgres,
        )
        .await
    }
}
