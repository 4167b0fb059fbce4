//! Platform metrics from OpenTelemetry GenAI telemetry (semantic conventions `gen_ai.*`).
//!
//! A span that carries GenAI attributes is one LLM call. It becomes these points, timed at
//! the span's end and tagged with `model`, `provider`, `operation`, and, where present,
//! `service`, `team` and `user`:
//!
//! | metric | type | value |
//! |---|---|---|
//! | `llm.requests` | counter | 1 |
//! | `llm.errors` | counter | 1 when the span's status is an error or it has `error.type` |
//! | `llm.latency_ms` | histogram | span duration |
//! | `llm.time_to_first_token_ms` | histogram | when the span reports it |
//! | `llm.tokens.input`, `llm.tokens.output` | counter | token usage |
//! | `llm.cost_usd` | counter | tokens × the model's price (price table) |
//!
//! Current attribute names and the deprecated ones are both read: `gen_ai.provider.name` or
//! `gen_ai.system`; `gen_ai.usage.input_tokens` or `gen_ai.usage.prompt_tokens`;
//! `gen_ai.usage.output_tokens` or `gen_ai.usage.completion_tokens`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An attribute value as OpenTelemetry carries it (arrays and maps are not used here).
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl Attr {
    fn text(&self) -> String {
        match self {
            Attr::Str(s) => s.clone(),
            Attr::Int(i) => i.to_string(),
            Attr::Double(d) => d.to_string(),
            Attr::Bool(b) => b.to_string(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Attr::Int(i) => Some(*i as f64),
            Attr::Double(d) => Some(*d),
            Attr::Str(s) => s.parse().ok(),
            Attr::Bool(_) => None,
        }
    }
}

/// What the mapping needs of one span.
#[derive(Debug, Clone, Default)]
pub struct SpanFacts {
    pub resource: BTreeMap<String, Attr>,
    pub attributes: BTreeMap<String, Attr>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub error: bool,
}

/// Price of a model in US dollars per million tokens. `model` matches a model name equal to
/// it or starting with it; the longest match wins (`gpt-4o-mini` before `gpt-4o`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub model: String,
    pub input_per_million: f64,
    pub output_per_million: f64,
}

/// A starting price table (list prices in US dollars per million tokens, November 2026);
/// replace it with your negotiated prices in `metrics.prices`.
pub fn default_prices() -> Vec<ModelPrice> {
    [
        ("gpt-4o", 2.5, 10.0),
        ("gpt-4o-mini", 0.15, 0.6),
        ("gpt-4.1", 2.0, 8.0),
        ("gpt-4.1-mini", 0.4, 1.6),
        ("o3", 2.0, 8.0),
        ("claude-3-5-sonnet", 3.0, 15.0),
        ("claude-3-5-haiku", 0.8, 4.0),
        ("claude-sonnet-4", 3.0, 15.0),
        ("claude-opus-4", 15.0, 75.0),
        ("gemini-1.5-pro", 1.25, 5.0),
        ("gemini-1.5-flash", 0.075, 0.3),
    ]
    .into_iter()
    .map(|(m, i, o)| ModelPrice {
        model: m.into(),
        input_per_million: i,
        output_per_million: o,
    })
    .collect()
}

/// The price entry for `model`, if any.
pub fn price_of<'a>(prices: &'a [ModelPrice], model: &str) -> Option<&'a ModelPrice> {
    prices
        .iter()
        .filter(|p| model == p.model || model.starts_with(&p.model))
        .max_by_key(|p| p.model.len())
}

fn first<'a>(attrs: &'a BTreeMap<String, Attr>, names: &[&str]) -> Option<&'a Attr> {
    names.iter().find_map(|n| attrs.get(*n))
}

/// Whether a span is a GenAI call.
pub fn is_genai(s: &SpanFacts) -> bool {
    s.attributes.keys().any(|k| k.starts_with("gen_ai."))
}

/// The platform points of a GenAI span, as ingest JSON (validated by the ingest path like
/// any other point). Not a GenAI span: no points.
pub fn points_of_span(s: &SpanFacts, prices: &[ModelPrice]) -> Vec<Value> {
    if !is_genai(s) {
        return Vec::new();
    }
    let a = &s.attributes;
    let lookup = |names: &[&str]| first(a, names).or_else(|| first(&s.resource, names));
    let model = lookup(&["gen_ai.response.model", "gen_ai.request.model"])
        .map(Attr::text)
        .unwrap_or_else(|| "unknown".into());
    let mut tags = serde_json::Map::new();
    tags.insert("model".into(), json!(model));
    let mut tag = |key: &str, names: &[&str]| {
        if let Some(v) = lookup(names) {
            let v = v.text();
            if !v.is_empty() && v.chars().count() <= 256 {
                tags.insert(key.into(), json!(v));
            }
        }
    };
    tag("provider", &["gen_ai.provider.name", "gen_ai.system"]);
    tag("operation", &["gen_ai.operation.name"]);
    tag("service", &["service.name"]);
    tag("team", &["llmgov.team", "team"]);
    tag("user", &["enduser.id", "user.id", "llmgov.user"]);
    let ts = chrono::DateTime::from_timestamp_nanos(s.end_unix_nano.min(i64::MAX as u64) as i64);
    let point = |name: &str, kind: &str, value: f64, unit: Option<&str>| {
        let mut p = json!({"timestamp": ts.to_rfc3339(), "metric_name": name, "metric_type": kind,
            "value": value, "resource_type": "model", "resource_id": model, "tags": tags});
        if let Some(u) = unit {
            p["unit"] = json!(u);
        }
        p
    };
    let mut out = vec![point("llm.requests", "counter", 1.0, None)];
    if s.error || a.contains_key("error.type") {
        out.push(point("llm.errors", "counter", 1.0, None));
    }
    if s.end_unix_nano >= s.start_unix_nano && s.start_unix_nano > 0 {
        let ms = (s.end_unix_nano - s.start_unix_nano) as f64 / 1e6;
        out.push(point("llm.latency_ms", "histogram", ms, Some("ms")));
    }
    if let Some(ttft) = first(
        a,
        &[
            "gen_ai.server.time_to_first_token",
            "gen_ai.response.time_to_first_chunk",
        ],
    )
    .and_then(Attr::number)
    {
        // Seconds, as the conventions measure durations.
        out.push(point(
            "llm.time_to_first_token_ms",
            "histogram",
            ttft * 1e3,
            Some("ms"),
        ));
    }
    let tokens = |names: &[&str]| first(a, names).and_then(Attr::number).filter(|n| *n >= 0.0);
    let input = tokens(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"]);
    let output = tokens(&[
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
    ]);
    if let Some(n) = input {
        out.push(point("llm.tokens.input", "counter", n, Some("tokens")));
    }
    if let Some(n) = output {
        out.push(point("llm.tokens.output", "counter", n, Some("tokens")));
    }
    if let (Some(p), true) = (
        price_of(prices, &model),
        input.is_some() || output.is_some(),
    ) {
        let cost = (input.unwrap_or(0.0) * p.input_per_million
            + output.unwrap_or(0.0) * p.output_per_million)
            / 1e6;
        out.push(point("llm.cost_usd", "counter", cost, Some("USD")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(attrs: &[(&str, Attr)]) -> SpanFacts {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap() as u64;
        SpanFacts {
            resource: [("service.name".to_string(), Attr::Str("chatbot".into()))].into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            start_unix_nano: now - 250_000_000,
            end_unix_nano: now,
            error: false,
        }
    }

    fn by_name(points: &[Value]) -> BTreeMap<String, &Value> {
        points
            .iter()
            .map(|p| (p["metric_name"].as_str().unwrap().to_string(), p))
            .collect()
    }

    #[test]
    fn current_attribute_names_map_to_points_with_cost() {
        let s = span(&[
            ("gen_ai.operation.name", Attr::Str("chat".into())),
            ("gen_ai.provider.name", Attr::Str("openai".into())),
            ("gen_ai.request.model", Attr::Str("gpt-4o".into())),
            (
                "gen_ai.response.model",
                Attr::Str("gpt-4o-mini-2024-07-18".into()),
            ),
            ("gen_ai.usage.input_tokens", Attr::Int(1000)),
            ("gen_ai.usage.output_tokens", Attr::Int(500)),
        ]);
        let pts = points_of_span(&s, &default_prices());
        let m = by_name(&pts);
        assert_eq!(m["llm.requests"]["tags"]["model"], "gpt-4o-mini-2024-07-18");
        assert_eq!(m["llm.requests"]["tags"]["provider"], "openai");
        assert_eq!(m["llm.requests"]["tags"]["service"], "chatbot");
        assert_eq!(m["llm.tokens.input"]["value"], 1000.0);
        assert!((m["llm.latency_ms"]["value"].as_f64().unwrap() - 250.0).abs() < 1e-6);
        // The longest price prefix (gpt-4o-mini) applies: 1000 × 0.15 + 500 × 0.6 per million.
        let cost = m["llm.cost_usd"]["value"].as_f64().unwrap();
        assert!((cost - 0.00045).abs() < 1e-12, "{cost}");
        assert!(!m.contains_key("llm.errors"));
    }

    #[test]
    fn deprecated_names_and_errors_are_understood() {
        let mut s = span(&[
            ("gen_ai.system", Attr::Str("anthropic".into())),
            (
                "gen_ai.request.model",
                Attr::Str("claude-3-5-sonnet".into()),
            ),
            ("gen_ai.usage.prompt_tokens", Attr::Int(10)),
            ("gen_ai.usage.completion_tokens", Attr::Str("20".into())),
        ]);
        s.error = true;
        let pts = points_of_span(&s, &[]);
        let m = by_name(&pts);
        assert_eq!(m["llm.requests"]["tags"]["provider"], "anthropic");
        assert_eq!(m["llm.tokens.output"]["value"], 20.0);
        assert!(m.contains_key("llm.errors"));
        assert!(!m.contains_key("llm.cost_usd"), "no price, no cost");
    }

    #[test]
    fn other_spans_make_no_points() {
        assert!(points_of_span(&span(&[("http.method", Attr::Str("GET".into()))]), &[]).is_empty());
    }
}
