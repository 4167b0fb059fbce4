//! Alert rules and alerts: a threshold rule fires and resolves (audited, webhook called),
//! `for` keeps an alert pending, budgets per team, acknowledge and snooze, bad rules.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::metrics::{metrics_key, pt};

pub async fn ingest(app: &TestApp, key: &str, points: Vec<Value>) {
    let r = app
        .post("/api/v1/metrics/ingest", key, json!({"points": points}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["rejected"], 0, "{}", r.body);
}

pub async fn evaluate(app: &TestApp) -> u64 {
    let r = app
        .post(
            "/api/v1/metrics/alerts/evaluate",
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["changed"].as_u64().unwrap()
}

async fn alerts(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/alerts?{query}"), &app.admin_token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// A webhook receiver on a random port; returns its URL and what it receives.
pub async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    (url, rx)
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("the webhook is called")
        .unwrap()
}

async fn a_threshold_rule_fires_then_resolves_with_notifications(app: TestApp) {
    let key = metrics_key(&app).await;
    let (url, mut hook) = receiver().await;
    let rule = app
        .post(
            "/api/v1/metrics/alerts",
            &app.admin_token,
            json!({"name": "slow model", "metric_name": "llm.latency", "aggregation": "avg", "window": "10m",
                   "comparator": "gt", "threshold": 1000, "group_by": ["tag:model"], "severity": "critical",
                   "channels": [{"type": "webhook", "url": url}]}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);
    assert_eq!(app.audit_events("alert_rules.create").await.len(), 1);
    ingest(
        &app,
        &key,
        vec![pt(1, "gpt-4o", 2000.0), pt(1, "claude", 10.0)],
    )
    .await;
    assert_eq!(evaluate(&app).await, 1);
    let firing = alerts(&app, "state=firing").await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0]["group"]["model"], "gpt-4o");
    assert_eq!(firing[0]["severity"], "critical");
    assert_eq!(firing[0]["value"], 2000.0);
    let fired = next(&mut hook).await;
    assert_eq!(fired["event"], "alerts.fire");
    assert_eq!(fired["alert"]["group"]["model"], "gpt-4o");
    // Still holding: one alert, not two; nothing notified.
    evaluate(&app).await;
    assert_eq!(alerts(&app, "").await.len(), 1);
    // The average drops below the threshold: resolved and notified.
    ingest(&app, &key, (0..30).map(|_| pt(0, "gpt-4o", 10.0)).collect()).await;
    assert_eq!(evaluate(&app).await, 1);
    let resolved = alerts(&app, "state=resolved").await;
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0]["resolved_at"].is_string());
    assert_eq!(next(&mut hook).await["event"], "alerts.resolve");
    assert_eq!(app.audit_events("alerts.fire").await.len(), 1);
    assert_eq!(app.audit_events("alerts.resolve").await.len(), 1);
}

async fn for_keeps_an_alert_pending_and_budgets_fire_per_team(app: TestApp) {
    let key = metrics_key(&app).await;
    let r = app
        .post(
            "/api/v1/metrics/alerts",
            &app.admin_token,
            json!({"name": "slow for an hour", "metric_name": "llm.latency", "aggregation": "max",
                   "comparator": "gte", "threshold": 100, "for": "1h"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let budget = app
        .post(
            "/api/v1/metrics/alerts",
            &app.admin_token,
            json!({"name": "team budget", "budget": {"scope": "team", "period": "day", "limit": 1.0}}),
        )
        .await;
    assert_eq!(budget.status, StatusCode::CREATED, "{}", budget.body);
    ingest(&app, &key, vec![pt(0, "gpt-4o", 500.0)]).await;
    let cost = |team: &str, v: f64| {
        json!({"timestamp": chrono::Utc::now().to_rfc3339(), "metric_name": "llm.cost_usd", "metric_type": "counter",
               "value": v, "unit": "USD", "tags": {"team": team}})
    };
    ingest(
        &app,
        &key,
        vec![cost("search", 0.7), cost("search", 0.5), cost("ml", 0.2)],
    )
    .await;
    evaluate(&app).await;
    let pending = alerts(&app, "state=pending").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["rule_name"], "slow for an hour");
    let firing = alerts(&app, "state=firing").await;
    assert_eq!(firing.len(), 1, "only the team over budget: {firing:?}");
    assert_eq!(firing[0]["group"]["team"], "search");
    assert!((firing[0]["value"].as_f64().unwrap() - 1.2).abs() < 1e-9);

    // Acknowledge and snooze, audited; a resolved alert cannot be changed.
    let id = firing[0]["id"].as_str().unwrap();
    let (_, _, viewer) = app.user_with("alertviewer", &["viewer"]).await;
    let denied = app
        .post(
            &format!("/api/v1/alerts/{id}/acknowledge"),
            &viewer,
            json!({}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let ack = app
        .post(
            &format!("/api/v1/alerts/{id}/acknowledge"),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.body);
    assert!(ack.body["acknowledged_by"].is_string());
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let snoozed = app
        .post(
            &format!("/api/v1/alerts/{id}/snooze"),
            &app.admin_token,
            json!({"until": until}),
        )
        .await;
    assert_eq!(snoozed.status, StatusCode::OK, "{}", snoozed.body);
    assert!(snoozed.body["snoozed_until"].is_string());
    let past = app
        .post(
            &format!("/api/v1/alerts/{id}/snooze"),
            &app.admin_token,
            json!({"until": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.audit_events("alerts.acknowledge").await.len(), 1);
    assert_eq!(app.audit_events("alerts.snooze").await.len(), 1);
    // Deleting the rule removes its alerts.
    let rid = budget.body["id"].as_str().unwrap();
    let del = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/metrics/alerts/{rid}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/alerts/{id}"), &app.admin_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn bad_rules_are_refused(app: TestApp) {
    let t = &app.admin_token;
    let base =
        json!({"name": "r", "metric_name": "llm.latency", "comparator": "gt", "threshold": 1});
    let cases = [
        ("comparator", json!(null)),
        ("comparator", json!("above")),
        ("threshold", json!(null)),
        ("window", json!("10s")),
        ("window", json!("soon")),
        ("aggregation", json!("median")),
        ("group_by", json!(["colour"])),
        ("for", json!("2d")),
        ("channels", json!([{"type": "webhook", "url": "ftp://x"}])),
        ("severity", json!("apocalyptic")),
        ("name", json!("")),
    ];
    for (field, bad) in cases {
        let mut b = base.clone();
        b[field] = bad.clone();
        let r = app.post("/api/v1/metrics/alerts", t, b).await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST,
            "{field} = {bad}: {} {}",
            r.status,
            r.body
        );
    }
    let ok = app.post("/api/v1/metrics/alerts", t, base.clone()).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let dup = app.post("/api/v1/metrics/alerts", t, base.clone()).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.error_code(), "ALERT_RULE_EXISTS");
    let missing = app
        .get(
            &format!("/api/v1/metrics/alerts/{}", uuid::Uuid::new_v4()),
            t,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // A rule on a metric that has no data yet evaluates to nothing, without error.
    assert_eq!(evaluate(&app).await, 0);
}

crate::both_backends!(
    a_threshold_rule_fires_then_resolves_with_notifications,
    for_keeps_an_alert_pending_and_budgets_fire_per_team,
    bad_rules_are_refused,
);
