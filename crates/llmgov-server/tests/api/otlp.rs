//! The OTLP/HTTP receiver: the real OpenTelemetry Python SDK exporting GenAI spans and a
//! metric over protobuf, OTLP/JSON (plain and gzip), and bad bodies.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::metrics::metrics_key;

/// The Python with the OpenTelemetry SDK that `scripts/test.sh` installs.
fn python() -> String {
    if let Ok(p) = std::env::var("LLMGOV_TEST_PYTHON") {
        return p;
    }
    let p = format!(
        "{}/.cache/llmgov-venv/bin/python",
        std::env::var("HOME").unwrap_or_else(|_| "/root".into())
    );
    assert!(
        std::path::Path::new(&p).exists(),
        "no Python with the OpenTelemetry SDK at {p}: run scripts/test.sh (it installs it) or set LLMGOV_TEST_PYTHON"
    );
    p
}

async fn aggregate(app: &TestApp, metric: &str, aggs: &str, group_by: &str) -> Value {
    let start = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339()
        .replace('+', "%2B");
    let r = app
        .get(
            &format!("/api/v1/metrics/aggregates?metric_name={metric}&aggregations={aggs}&group_by={group_by}&start={start}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{metric}: {}", r.body);
    r.body
}

fn group<'a>(body: &'a Value, key: &str, value: &str) -> &'a Value {
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"][key] == value)
        .unwrap_or_else(|| panic!("no group {key}={value} in {body}"))
}

async fn the_python_sdk_s_genai_spans_become_llm_metrics(app: TestApp) {
    let key = metrics_key(&app).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/otel_genai_spans.py"
    );
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", base)
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("Authorization=Bearer%20{key}"),
            )
            .output()
    })
    .await
    .unwrap()
    .expect("run the OpenTelemetry script");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let requests = aggregate(&app, "llm.requests", "count,sum", "tag:provider").await;
    assert_eq!(
        group(&requests, "provider", "openai")["values"]["sum"],
        20.0
    );
    assert_eq!(
        group(&requests, "provider", "anthropic")["values"]["sum"],
        10.0,
        "deprecated gen_ai.system"
    );
    let errors = aggregate(&app, "llm.errors", "sum", "tag:model").await;
    assert_eq!(
        group(&errors, "model", "claude-3-5-sonnet")["values"]["sum"],
        2.0
    );
    let latency = aggregate(&app, "llm.latency_ms", "min,max,p50", "tag:model").await;
    let gpt = group(&latency, "model", "gpt-4o");
    assert_eq!(gpt["values"]["min"], 100.0);
    assert_eq!(gpt["values"]["max"], 290.0);
    let tokens = aggregate(&app, "llm.tokens.output", "sum", "tag:model").await;
    assert_eq!(
        group(&tokens, "model", "claude-3-5-sonnet")["values"]["sum"],
        2000.0,
        "deprecated completion_tokens"
    );
    // Input tokens: spans (20 × 100 + 0..19 for gpt-4o) and the delta histogram (300).
    let input = aggregate(&app, "llm.tokens.input", "sum", "tag:model").await;
    assert_eq!(
        group(&input, "model", "gpt-4o")["values"]["sum"],
        (2000 + 190 + 300) as f64
    );
    let cost = aggregate(&app, "llm.cost_usd", "sum", "tag:team").await;
    // gpt-4o: 2,190 input × $2.5 + 1,000 output × $10 per million; claude: 10,000 × $3 + 2,000 × $15.
    let expected = (2_190.0 * 2.5 + 1_000.0 * 10.0 + 10_000.0 * 3.0 + 2_000.0 * 15.0) / 1e6;
    let got = group(&cost, "team", "support")["values"]["sum"]
        .as_f64()
        .unwrap();
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    let hist = aggregate(
        &app,
        "gen_ai.client.token.usage.count",
        "sum",
        "tag:service",
    )
    .await;
    assert_eq!(group(&hist, "service", "support-bot")["values"]["sum"], 3.0);
}

fn json_spans(now_ns: u128) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "rag"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "chat", "kind": 3,
            "startTimeUnixNano": (now_ns - 500_000_000).to_string(), "endTimeUnixNano": now_ns.to_string(),
            "attributes": [
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}}
            ],
            "status": {}
        }]}]
    }]})
}

async fn otlp_json_plain_and_gzip_and_bad_bodies(app: TestApp) {
    let key = metrics_key(&app).await;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let post = |body: Vec<u8>, ct: &'static str, gzip: bool, token: String| {
        let mut r = app
            .client
            .post(format!("{}/v1/traces", app.base))
            .bearer_auth(token)
            .header("content-type", ct)
            .body(body);
        if gzip {
            r = r.header("content-encoding", "gzip");
        }
        r.send()
    };
    let body = serde_json::to_vec(&json_spans(now_ns)).unwrap();
    let r = post(body.clone(), "application/json", false, key.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let r = post(gz.finish().unwrap(), "application/json", true, key.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let input = aggregate(&app, "llm.tokens.input", "sum", "tag:service").await;
    assert_eq!(group(&input, "service", "rag")["values"]["sum"], 84.0);

    let bad = post(
        b"\xff\xff\xff not protobuf".to_vec(),
        "application/x-protobuf",
        false,
        key.clone(),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"]["code"], "INVALID_OTLP");
    let wrong_type = post(body.clone(), "text/plain", false, key.clone())
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, _, viewer) = app.user_with("otlpviewer", &["viewer"]).await;
    assert_eq!(
        post(body.clone(), "application/json", false, viewer)
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(body.clone(), "application/json", false, "nope".into())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Spans too old for the raw retention are refused and counted.
    let old = json_spans(now_ns - 200 * 86_400 * 1_000_000_000u128);
    let r = post(
        serde_json::to_vec(&old).unwrap(),
        "application/json",
        false,
        key.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = r.json().await.unwrap();
    assert!(
        r["partialSuccess"]["rejectedSpans"].as_str().unwrap_or("0") != "0"
            || r["partialSuccess"]["rejectedSpans"].as_i64().unwrap_or(0) > 0,
        "{r}"
    );
}

crate::both_backends!(
    the_python_sdk_s_genai_spans_become_llm_metrics,
    otlp_json_plain_and_gzip_and_bad_bodies,
);
