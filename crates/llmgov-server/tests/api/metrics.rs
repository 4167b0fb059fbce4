//! Metrics over HTTP: ingest with an API key scoped `metrics:create`, per-point errors,
//! listing, aggregates, time series and the query endpoint.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

pub async fn metrics_key(app: &TestApp) -> String {
    let r = app
        .post(
            "/api/v1/api-keys",
            &app.admin_token,
            json!({"name": "ingest", "scopes": ["metrics:create"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["key"].as_str().unwrap().to_string()
}

pub fn pt(minutes_ago: i64, model: &str, v: f64) -> Value {
    let t = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    json!({"timestamp": t.to_rfc3339(), "metric_name": "llm.latency", "metric_type": "histogram",
           "value": v, "unit": "ms", "resource_type": "model", "resource_id": model, "tags": {"model": model}})
}

async fn an_api_key_ingests_and_readers_query(app: TestApp) {
    let key = metrics_key(&app).await;
    let points: Vec<Value> = (0..300)
        .map(|i| pt(i, if i % 2 == 0 { "gpt-4o" } else { "claude" }, i as f64))
        .collect();
    let r = app
        .post("/api/v1/metrics/ingest", &key, json!({"points": points}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["accepted"], 300);
    assert_eq!(r.body["rejected"], 0);
    // The ingest key cannot read; a viewer can read but not ingest.
    assert_eq!(
        app.get("/api/v1/metrics", &key).await.status,
        StatusCode::FORBIDDEN
    );
    let (_, _, viewer) = app.user_with("viewer1", &["viewer"]).await;
    let denied = app
        .post(
            "/api/v1/metrics/ingest",
            &viewer,
            json!({"points": [pt(0, "x", 1.0)]}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let list = app.get("/api/v1/metrics", &viewer).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["items"][0]["name"], "llm.latency");
    assert_eq!(list.body["items"][0]["series"], 2);
    assert_eq!(list.body["items"][0]["tag_keys"], json!(["model"]));
    let series = app.get("/api/v1/metrics/llm.latency/series", &viewer).await;
    assert_eq!(series.body["total"], 2, "{}", series.body);

    let start = (chrono::Utc::now() - chrono::Duration::hours(6)).to_rfc3339();
    let end = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let q = |extra: &str| {
        format!(
            "metric_name=llm.latency&start={}&end={}{extra}",
            urlencode(&start),
            urlencode(&end)
        )
    };
    let agg = app
        .get(
            &format!(
                "/api/v1/metrics/aggregates?{}",
                q("&aggregations=count,avg,min,max,p50,p95,p99&group_by=tag:model")
            ),
            &viewer,
        )
        .await;
    assert_eq!(agg.status, StatusCode::OK, "{}", agg.body);
    let groups = agg.body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let gpt = groups
        .iter()
        .find(|g| g["key"]["model"] == "gpt-4o")
        .unwrap();
    assert_eq!(gpt["values"]["count"], 150.0);
    assert_eq!(gpt["values"]["min"], 0.0);
    assert_eq!(gpt["values"]["max"], 298.0);
    // Even values 0..298: the exact p50 (rank 74) is 148.
    let p50 = gpt["values"]["p50"].as_f64().unwrap();
    assert!((p50 - 148.0).abs() / 148.0 <= 0.0101, "{p50}");

    let ts = app
        .get(
            &format!(
                "/api/v1/metrics/timeseries?{}",
                q("&interval=1h&aggregation=count")
            ),
            &viewer,
        )
        .await;
    assert_eq!(ts.status, StatusCode::OK, "{}", ts.body);
    let points = ts.body["points"].as_array().unwrap();
    assert!(points.len() >= 6);
    let total: f64 = points
        .iter()
        .map(|p| p["value"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(total, 300.0);

    let posted = app
        .post(
            "/api/v1/metrics/query",
            &viewer,
            json!({"metric_name": "llm.latency", "start": start, "end": end,
                   "filters": {"tags": {"model": "claude"}}, "aggregations": ["count", "max"]}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    assert_eq!(posted.body["groups"][0]["values"]["count"], 150.0);
    assert_eq!(posted.body["groups"][0]["values"]["max"], 299.0);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn bad_points_are_reported_by_index_and_nothing_bad_is_stored(app: TestApp) {
    let key = metrics_key(&app).await;
    let mut nan = pt(0, "gpt-4o", 1.0);
    nan["value"] = json!("NaN");
    let mut future = pt(0, "gpt-4o", 1.0);
    future["timestamp"] = json!("2999-01-01T00:00:00Z");
    let mut kind = pt(0, "gpt-4o", 1.0);
    kind["metric_type"] = json!("meter");
    let huge: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("k{i}"), json!("v"))).collect();
    let mut tags = pt(0, "gpt-4o", 1.0);
    tags["tags"] = Value::Object(huge);
    let r = app
        .post(
            "/api/v1/metrics/ingest",
            &key,
            json!({"points": [pt(0, "gpt-4o", 2.0), nan, future, kind, tags]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["accepted"], 1);
    let fields: Vec<(u64, String)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            (1, "value".into()),
            (2, "timestamp".into()),
            (3, "metric_type".into()),
            (4, "tags".into())
        ]
    );
    // Nothing valid: 422 with the errors, nothing stored.
    let all_bad = app
        .post(
            "/api/v1/metrics/ingest",
            &key,
            json!({"points": [{"value": 1}]}),
        )
        .await;
    assert_eq!(all_bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(all_bad.error_code(), "METRICS_REJECTED");
    assert_eq!(
        all_bad.body["error"]["details"]["errors"][0]["field"],
        "timestamp"
    );
    let strict = app
        .post(
            "/api/v1/metrics/ingest?all_or_nothing=true",
            &key,
            json!({"points": [pt(0, "gpt-4o", 3.0), {"value": 1}]}),
        )
        .await;
    assert_eq!(strict.status, StatusCode::UNPROCESSABLE_ENTITY);
    let empty = app
        .post("/api/v1/metrics/ingest", &key, json!({"points": []}))
        .await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    let agg = app
        .get(
            "/api/v1/metrics/aggregates?metric_name=llm.latency&aggregations=count",
            &app.admin_token,
        )
        .await;
    assert_eq!(
        agg.body["groups"][0]["values"]["count"], 1.0,
        "{}",
        agg.body
    );
}

async fn bad_queries_get_clear_errors(app: TestApp) {
    let key = metrics_key(&app).await;
    app.post(
        "/api/v1/metrics/ingest",
        &key,
        json!({"points": [pt(0, "gpt-4o", 1.0)]}),
    )
    .await;
    let t = &app.admin_token;
    let cases = [
        (
            "/api/v1/metrics/aggregates?metric_name=nope",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/metrics/aggregates?metric_name=llm.latency&aggregations=median",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/metrics/aggregates?metric_name=llm.latency&group_by=colour",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/metrics/aggregates?metric_name=llm.latency&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/metrics/aggregates?metric_name=llm.latency&start=1990-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/metrics/aggregates?metric_name=llm.latency&start=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/metrics/timeseries?metric_name=llm.latency&interval=1s&start=2026-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/metrics/timeseries?metric_name=llm.latency&interval=fortnight",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/metrics/timeseries?metric_name=llm.latency&aggregation=avg,max",
            StatusCode::BAD_REQUEST,
        ),
        // Missing metric_name: the query string does not parse.
        ("/api/v1/metrics/aggregates", StatusCode::BAD_REQUEST),
        ("/api/v1/metrics/nope/series", StatusCode::NOT_FOUND),
    ];
    for (path, status) in cases {
        let r = app.get(path, t).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{path}: {}", r.body);
    }
    let r = app
        .post(
            "/api/v1/metrics/query",
            t,
            json!({"metric_name": "llm.latency", "group_by": ["tag:"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

crate::both_backends!(
    an_api_key_ingests_and_readers_query,
    bad_points_are_reported_by_index_and_nothing_bad_is_stored,
    bad_queries_get_clear_errors,
);
