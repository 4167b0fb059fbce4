//! OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/metrics`, protobuf
//! (`application/x-protobuf`) or JSON (`application/json`), optionally gzip-compressed.
//! Authenticated like the API (`Authorization: Bearer <API key>` with `metrics:create`;
//! set `OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20lgv_...` in the app).
//!
//! GenAI spans become platform metrics ([`llmgov_core::metrics::genai`]); other spans are
//! accepted and ignored. OTLP metrics are stored under their own names: gauges as gauges,
//! monotonic delta sums as counters, cumulative or non-monotonic sums as gauges (the running
//! value), histograms and summaries as `<name>.count` and `<name>.sum` (counters when delta,
//! gauges when cumulative). `gen_ai.client.token.usage` with delta temporality also feeds
//! `llm.tokens.input` and `llm.tokens.output`. The response is the OTLP export response in
//! the request's encoding, with `partial_success` counting what was refused.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmgov_core::metrics::genai::{Attr, SpanFacts, points_of_span};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::error::{ApiError, ApiResult};

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

fn encoding(headers: &HeaderMap) -> ApiResult<Encoding> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "OTLP bodies are application/x-protobuf or application/json",
        )),
    }
}

fn decode<M: Message + Default + serde::de::DeserializeOwned>(
    enc: Encoding,
    body: &[u8],
) -> ApiResult<M> {
    let bad = |e: String| {
        ApiError::bad_request("INVALID_OTLP", format!("not an OTLP export request: {e}"))
    };
    match enc {
        Encoding::Protobuf => M::decode(body).map_err(|e| bad(e.to_string())),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| bad(e.to_string())),
    }
}

fn encode<M: Message + serde::Serialize>(enc: Encoding, m: &M) -> Response {
    let (ct, body) = match enc {
        Encoding::Protobuf => ("application/x-protobuf", m.encode_to_vec()),
        Encoding::Json => (
            "application/json",
            serde_json::to_vec(m).unwrap_or_default(),
        ),
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

fn attr(kv: &KeyValue) -> Option<(String, Attr)> {
    let v = match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Attr::Str(s.clone()),
        any_value::Value::IntValue(i) => Attr::Int(*i),
        any_value::Value::DoubleValue(d) => Attr::Double(*d),
        any_value::Value::BoolValue(b) => Attr::Bool(*b),
        _ => return None,
    };
    Some((kv.key.clone(), v))
}

fn attrs(list: &[KeyValue]) -> std::collections::BTreeMap<String, Attr> {
    list.iter().filter_map(attr).collect()
}

/// Ingests points made from OTLP data in batches; returns (accepted, rejected, first error).
async fn ingest(
    s: &AppState,
    ws: llmgov_core::ids::WorkspaceId,
    points: Vec<Value>,
) -> ApiResult<(usize, usize, String)> {
    let (mut accepted, mut rejected, mut message) = (0, 0, String::new());
    for chunk in points.chunks(llmgov_core::metrics::model::MAX_BATCH_POINTS) {
        match s.metric_service.ingest(ws, chunk, false).await {
            Ok(r) => {
                accepted += r.accepted;
                rejected += r.rejected;
                if let (Some(e), true) = (r.errors.first(), message.is_empty()) {
                    message = format!("{}: {}", e.field, e.message);
                }
            }
            Err(llmgov_core::CoreError::Unprocessable { details, .. }) => {
                rejected += chunk.len();
                if message.is_empty() {
                    message = details
                        .get("errors")
                        .and_then(|e| e.get(0))
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e["field"].as_str().unwrap_or(""),
                                e["message"].as_str().unwrap_or("")
                            )
                        })
                        .unwrap_or_default();
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((accepted, rejected, message))
}

/// OTLP traces (`ExportTraceServiceRequest`, protobuf or JSON): GenAI spans become LLM
/// metrics (`llm.requests`, `llm.latency_ms`, `llm.tokens.*`, `llm.cost_usd`, ...).
#[utoipa::path(post, path = "/v1/traces", tag = "otlp",
    request_body(content = String, content_type = "application/x-protobuf", description = "OTLP ExportTraceServiceRequest (also application/json; gzip allowed)"),
    responses((status = 200, description = "ExportTraceServiceResponse in the request's encoding"), (status = 400, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody)),
    security(("bearer" = ["metrics:create"])))]
pub async fn traces(
    Authz(p, _): Authz<perm::MetricsCreate>,
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let enc = encoding(&headers)?;
    let req: ExportTraceServiceRequest = decode(enc, &body)?;
    let prices = &s.metric_service.config().prices;
    let mut points = Vec::new();
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let facts = SpanFacts {
                    resource: resource.clone(),
                    attributes: attrs(&span.attributes),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    error: span
                        .status
                        .as_ref()
                        .is_some_and(|st| st.code == SpanStatus::Error as i32),
                };
                points.extend(points_of_span(&facts, prices));
            }
        }
    }
    let (_, rejected, message) = ingest(&s, p.workspace_id, points).await?;
    let partial = (rejected > 0).then_some(ExportTracePartialSuccess {
        rejected_spans: rejected as i64,
        error_message: message,
    });
    Ok(encode(
        enc,
        &ExportTraceServiceResponse {
            partial_success: partial,
        },
    ))
}

/// OTLP metrics (`ExportMetricsServiceRequest`, protobuf or JSON), stored under their own
/// names (see the module documentation).
#[utoipa::path(post, path = "/v1/metrics", tag = "otlp",
    request_body(content = String, content_type = "application/x-protobuf", description = "OTLP ExportMetricsServiceRequest (also application/json; gzip allowed)"),
    responses((status = 200, description = "ExportMetricsServiceResponse in the request's encoding"), (status = 400, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody)),
    security(("bearer" = ["metrics:create"])))]
pub async fn metrics(
    Authz(p, _): Authz<perm::MetricsCreate>,
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let enc = encoding(&headers)?;
    let req: ExportMetricsServiceRequest = decode(enc, &body)?;
    let points = metric_points(&req);
    let (_, rejected, message) = ingest(&s, p.workspace_id, points).await?;
    let partial = (rejected > 0).then_some(ExportMetricsPartialSuccess {
        rejected_data_points: rejected as i64,
        error_message: message,
    });
    Ok(encode(
        enc,
        &ExportMetricsServiceResponse {
            partial_success: partial,
        },
    ))
}

fn point(
    name: &str,
    kind: &str,
    value: f64,
    unit: &str,
    time_nano: u64,
    tags: &serde_json::Map<String, Value>,
) -> Value {
    let ts = chrono::DateTime::from_timestamp_nanos(time_nano.min(i64::MAX as u64) as i64);
    let mut p = json!({"timestamp": ts.to_rfc3339(), "metric_name": name, "metric_type": kind, "value": value, "tags": tags});
    if !unit.is_empty() {
        p["unit"] = json!(unit);
    }
    if let Some(m) = tags
        .get("gen_ai.response.model")
        .or_else(|| tags.get("gen_ai.request.model"))
    {
        p["resource_type"] = json!("model");
        p["resource_id"] = m.clone();
    }
    p
}

fn tags_of(resource: &[KeyValue], attributes: &[KeyValue]) -> serde_json::Map<String, Value> {
    let mut tags = serde_json::Map::new();
    if let Some((_, v)) = resource
        .iter()
        .filter_map(attr)
        .find(|(k, _)| k == "service.name")
    {
        tags.insert("service".into(), json!(attr_text(&v)));
    }
    for (k, v) in attributes
        .iter()
        .filter_map(attr)
        .take(llmgov_core::metrics::model::MAX_TAGS - 4)
    {
        tags.insert(k, json!(attr_text(&v)));
    }
    // The short names GenAI spans are tagged with, so both sources group together.
    for (short, names) in [
        ("model", ["gen_ai.response.model", "gen_ai.request.model"]),
        ("provider", ["gen_ai.provider.name", "gen_ai.system"]),
        (
            "operation",
            ["gen_ai.operation.name", "gen_ai.operation.name"],
        ),
    ] {
        if let Some(v) = names.iter().find_map(|n| tags.get(*n)).cloned() {
            tags.insert(short.into(), v);
        }
    }
    tags
}

fn attr_text(a: &Attr) -> String {
    match a {
        Attr::Str(s) => s.clone(),
        Attr::Int(i) => i.to_string(),
        Attr::Double(d) => d.to_string(),
        Attr::Bool(b) => b.to_string(),
    }
}

/// A histogram-like data point (histogram, exponential histogram or summary): its count and
/// sum are what is kept.
struct Summarised<'a> {
    count: u64,
    sum: Option<f64>,
    time_unix_nano: u64,
    attributes: &'a [KeyValue],
}

fn metric_points(req: &ExportMetricsServiceRequest) -> Vec<Value> {
    let mut out = Vec::new();
    let delta = AggregationTemporality::Delta as i32;
    let kind_of = |temporality: i32| {
        if temporality == delta {
            "counter"
        } else {
            "gauge"
        }
    };
    for rm in &req.resource_metrics {
        let resource: &[KeyValue] = rm
            .resource
            .as_ref()
            .map(|r| &r.attributes[..])
            .unwrap_or(&[]);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let name = m.name.as_str();
                let (numbers, kind): (Vec<_>, &str) = match &m.data {
                    Some(Data::Gauge(g)) => (g.data_points.iter().collect(), "gauge"),
                    Some(Data::Sum(s)) => (
                        s.data_points.iter().collect(),
                        if s.is_monotonic {
                            kind_of(s.aggregation_temporality)
                        } else {
                            "gauge"
                        },
                    ),
                    _ => (Vec::new(), "gauge"),
                };
                for dp in numbers {
                    if let Some(v) = number(&dp.value) {
                        out.push(point(
                            name,
                            kind,
                            v,
                            &m.unit,
                            dp.time_unix_nano,
                            &tags_of(resource, &dp.attributes),
                        ));
                    }
                }
                let (summaries, kind): (Vec<Summarised>, &str) = match &m.data {
                    Some(Data::Histogram(h)) => (
                        h.data_points
                            .iter()
                            .map(|d| Summarised {
                                count: d.count,
                                sum: d.sum,
                                time_unix_nano: d.time_unix_nano,
                                attributes: &d.attributes,
                            })
                            .collect(),
                        kind_of(h.aggregation_temporality),
                    ),
                    Some(Data::ExponentialHistogram(h)) => (
                        h.data_points
                            .iter()
                            .map(|d| Summarised {
                                count: d.count,
                                sum: d.sum,
                                time_unix_nano: d.time_unix_nano,
                                attributes: &d.attributes,
                            })
                            .collect(),
                        kind_of(h.aggregation_temporality),
                    ),
                    Some(Data::Summary(s)) => (
                        s.data_points
                            .iter()
                            .map(|d| Summarised {
                                count: d.count,
                                sum: Some(d.sum),
                                time_unix_nano: d.time_unix_nano,
                                attributes: &d.attributes,
                            })
                            .collect(),
                        "gauge",
                    ),
                    _ => (Vec::new(), "gauge"),
                };
                for s in summaries {
                    let tags = tags_of(resource, s.attributes);
                    out.push(point(
                        &format!("{name}.count"),
                        kind,
                        s.count as f64,
                        "",
                        s.time_unix_nano,
                        &tags,
                    ));
                    let Some(sum) = s.sum else { continue };
                    out.push(point(
                        &format!("{name}.sum"),
                        kind,
                        sum,
                        &m.unit,
                        s.time_unix_nano,
                        &tags,
                    ));
                    if name == "gen_ai.client.token.usage" && kind == "counter" {
                        let metric = match tags.get("gen_ai.token.type").and_then(Value::as_str) {
                            Some("input") => "llm.tokens.input",
                            Some("output") => "llm.tokens.output",
                            _ => continue,
                        };
                        out.push(point(
                            metric,
                            "counter",
                            sum,
                            "tokens",
                            s.time_unix_nano,
                            &tags,
                        ));
                    }
                }
            }
        }
    }
    out
}

fn number(v: &Option<number_data_point::Value>) -> Option<f64> {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => Some(*d),
        Some(number_data_point::Value::AsInt(i)) => Some(*i as f64),
        None => None,
    }
}

/// The OTLP routes (outside `/api/v1`, where OTLP exporters look for them), with gzip
/// request bodies decompressed.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(traces))
        .routes(utoipa_axum::routes!(metrics))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
}
