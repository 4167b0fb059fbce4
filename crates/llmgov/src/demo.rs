//! `llmgov serve --demo`: sample data for a newcomer, made through the platform's own HTTP
//! API (so it exercises it: validation, authorization, audit, events), never written behind
//! its back.
//!
//! A demo user (`demo@llmgov.local`, super admin) is created by the operator path with a
//! fresh password printed at start (reset at every start). On the first start it fills its
//! workspace with a week of LLM metrics for several models and teams, policies from
//! templates with violations, alert rules with firing and resolved alerts, and a dataset
//! with several versions containing PII (and an anonymized copy). Everything it makes is
//! marked: names end in "(demo)" or start with `demo-`, metric points carry `demo=true`.
//! While the server runs it keeps sending live points and an occasional guardrail call, so
//! the dashboard moves.

use std::time::Duration;

use llmgov_core::identity::{CreateUserInput, IdentityService};
use llmgov_core::store::Store;
use reqwest::{Client, Method};
use serde_json::{Value, json};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

pub const DEMO_EMAIL: &str = "demo@llmgov.local";
const DEMO_DATASET: &str = "demo-support-conversations";
const LIVE_KEY_NAME: &str = "demo-live-generator";

const MODELS: &[(&str, &str, f64, f64, f64)] = &[
    // model, provider, relative traffic, median latency ms, USD per 1k tokens
    ("gpt-4o", "openai", 1.0, 900.0, 0.0075),
    ("gpt-4o-mini", "openai", 2.2, 450.0, 0.0004),
    ("claude-3-5-sonnet", "anthropic", 0.8, 1100.0, 0.009),
    ("llama-3.1-70b", "self-hosted", 0.6, 1900.0, 0.0009),
];
const TEAMS: &[(&str, f64)] = &[("search", 1.0), ("support", 1.6), ("marketing", 0.5)];

/// Deterministic pseudo-random numbers (xorshift64*), so that every demo looks alike.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An authenticated client of the running server.
struct Api {
    http: Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AnyError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            return Err(format!("demo: {method} {path} answered {status}: {text}").into());
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }
    async fn get(&self, path: &str) -> Result<Value, AnyError> {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Result<Value, AnyError> {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// Makes the demo user (or gives it a new password), fills the workspace on the first
/// start, prints how to sign in, and keeps live data flowing. `base` is the server's URL.
pub async fn run(store: std::sync::Arc<dyn Store>, base: String) -> Result<(), AnyError> {
    let password = format!("Demo-{}", uuid::Uuid::new_v4().simple());
    match store.credentials_by_email(DEMO_EMAIL).await? {
        Some(_) => {
            IdentityService::reset_password(&*store, DEMO_EMAIL, &password).await?;
        }
        None => {
            IdentityService::create_user_as_operator(
                &*store,
                CreateUserInput {
                    email: DEMO_EMAIL.into(),
                    username: "demo".into(),
                    password: password.clone(),
                    first_name: Some("Demo".into()),
                    last_name: Some("User".into()),
                    roles: vec!["super_admin".into()],
                    workspace_id: None,
                    metadata: Some(json!({"demo": true})),
                },
            )
            .await?;
        }
    }
    let http = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": DEMO_EMAIL, "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .ok_or("demo: no access token")?;
    let api = Api {
        http,
        base,
        token: token.into(),
    };
    // The dataset is made last: without it, the demo data is (re)made.
    let existing = api
        .get(&format!("/api/v1/datasets?name={DEMO_DATASET}"))
        .await?;
    if existing["total"].as_i64().unwrap_or(0) == 0 {
        println!(
            "demo: filling the workspace with sample data (a week of metrics, policies, alerts, a dataset)..."
        );
        seed(&api).await?;
    }
    println!("------------------------------------------------------------");
    println!("Demo data is ready. Sign in at {} as", api.base);
    println!("  {DEMO_EMAIL} / {password}");
    println!("(the demo password is new at every start with --demo)");
    println!("------------------------------------------------------------");
    live(&api).await
}

async fn seed(api: &Api) -> Result<(), AnyError> {
    // An earlier run that stopped half-way may have made some of it: each part that would
    // otherwise be made twice (metrics counted twice, rules refused as duplicates) is skipped.
    let metrics = api.get("/api/v1/metrics?limit=100").await?;
    let has_metrics = metrics["items"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["name"] == "llm.requests");
    if !has_metrics {
        metrics_week(api).await?;
    }
    policies(api).await?;
    alerts(api).await?;
    dataset(api).await?;
    Ok(())
}

/// One set of points for every model and team at `t` (unix seconds), `scale` requests per
/// 15 minutes at the daily peak.
fn points_at(rng: &mut Rng, t: i64, scale: f64, out: &mut Vec<Value>) {
    let hour = (t % 86_400) as f64 / 3600.0;
    // Busy in the (UTC) working day, quiet at night.
    let daily = 0.35 + 0.65 * (((hour - 14.0) / 24.0 * std::f64::consts::TAU).cos() * 0.5 + 0.5);
    let ts = chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339();
    for &(model, provider, weight, latency, price) in MODELS {
        for &(team, tw) in TEAMS {
            let requests = (scale * weight * tw * daily * (0.8 + 0.4 * rng.next())).round();
            if requests < 1.0 {
                continue;
            }
            let tags = json!({"model": model, "provider": provider, "team": team, "demo": "true"});
            let point = |name: &str, kind: &str, value: f64, unit: Option<&str>| {
                json!({"timestamp": ts, "metric_name": name, "metric_type": kind, "value": value,
                       "unit": unit, "resource_type": "model", "resource_id": model, "tags": tags})
            };
            out.push(point("llm.requests", "counter", requests, None));
            let error_rate = if model == "llama-3.1-70b" {
                0.04
            } else {
                0.008
            };
            let errors = (requests * error_rate * 2.0 * rng.next()).round();
            if errors > 0.0 {
                out.push(point("llm.errors", "counter", errors, None));
            }
            for _ in 0..3 {
                // Log-normal-ish spread around the model's median.
                let l =
                    latency * (0.6 + rng.next() * 0.8) * if rng.next() > 0.93 { 2.4 } else { 1.0 };
                out.push(point("llm.latency_ms", "histogram", l.round(), Some("ms")));
            }
            let input = requests * (350.0 + 500.0 * rng.next());
            let output = requests * (120.0 + 300.0 * rng.next());
            out.push(point(
                "llm.tokens.input",
                "counter",
                input.round(),
                Some("tokens"),
            ));
            out.push(point(
                "llm.tokens.output",
                "counter",
                output.round(),
                Some("tokens"),
            ));
            out.push(point(
                "llm.cost_usd",
                "counter",
                ((input + output) / 1000.0 * price * 10_000.0).round() / 10_000.0,
                Some("USD"),
            ));
        }
    }
}

async fn ingest(api: &Api, points: &mut Vec<Value>) -> Result<(), AnyError> {
    for chunk in points.chunks(2_000) {
        api.post("/api/v1/metrics/ingest", json!({"points": chunk}))
            .await?;
    }
    points.clear();
    Ok(())
}

async fn metrics_week(api: &Api) -> Result<(), AnyError> {
    let now = chrono::Utc::now().timestamp();
    let step = 900;
    let start = (now - 7 * 86_400) / step * step + step;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut points = Vec::new();
    let mut t = start;
    while t <= now {
        points_at(&mut rng, t, 40.0, &mut points);
        if points.len() >= 20_000 {
            ingest(api, &mut points).await?;
        }
        t += step;
    }
    ingest(api, &mut points).await?;
    println!("demo: a week of LLM metrics sent");
    Ok(())
}

async fn policies(api: &Api) -> Result<(), AnyError> {
    let templates = api.get("/api/v1/policy-templates").await?;
    let list = templates["items"]
        .as_array()
        .or_else(|| templates.as_array())
        .cloned()
        .unwrap_or_default();
    let wanted = [
        "pii_in_prompt",
        "allowed_models",
        "max_tokens",
        "prompt_injection",
        "cost_budget",
    ];
    let mut made = Vec::new();
    for t in list
        .iter()
        .filter(|t| t["id"].as_str().is_some_and(|id| wanted.contains(&id)))
    {
        let id = t["id"].as_str().unwrap_or_default();
        let title = t["name"].as_str().unwrap_or(id);
        let name = format!("{title} (demo)");
        let p = match api
            .post(
                "/api/v1/policies/from-template",
                json!({"template_id": id, "name": name, "parameters": {}}),
            )
            .await
        {
            Ok(p) => p,
            // Made by an earlier, interrupted run.
            Err(e) if e.to_string().contains("409") => continue,
            Err(e) => return Err(e),
        };
        made.push((p, t.clone()));
    }
    // Activate them and send the templates' examples through the guardrail call: the
    // violating ones become violations.
    let mut evaluations = 0;
    for (p, t) in &made {
        let pid = p["id"].as_str().unwrap_or_default();
        if p["status"] != "active" {
            api.call(
                Method::PATCH,
                &format!("/api/v1/policies/{pid}"),
                Some(json!({"status": "active"})),
            )
            .await?;
        }
        for key in ["violating_example", "passing_example"] {
            if let Some(input) = t.get(key).filter(|v| v.is_object()) {
                for _ in 0..if key == "violating_example" { 3 } else { 1 } {
                    api.post("/api/v1/policies/evaluate", json!({"input": input}))
                        .await?;
                    evaluations += 1;
                }
            }
        }
    }
    // Work on some of the violations, as a team would.
    let open = api.get("/api/v1/violations?status=open&limit=10").await?;
    for (i, v) in open["items"].as_array().into_iter().flatten().enumerate() {
        let id = v["id"].as_str().unwrap_or_default();
        let (status, notes) = match i {
            0 => ("acknowledged", "Looking into it (demo)."),
            1 => ("resolved", "Prompt template fixed (demo)."),
            2 => ("false_positive", "Test traffic (demo)."),
            _ => break,
        };
        api.call(
            Method::PATCH,
            &format!("/api/v1/violations/{id}"),
            Some(json!({"status": status, "notes": notes})),
        )
        .await?;
    }
    println!(
        "demo: {} policies from templates, {evaluations} guardrail evaluations",
        made.len()
    );
    Ok(())
}

async fn alerts(api: &Api) -> Result<(), AnyError> {
    let rules = [
        json!({"name": "Slow model (demo)", "metric_name": "llm.latency_ms", "aggregation": "p95",
               "window": "1h", "comparator": "gt", "threshold": 2500, "for": "0s",
               "group_by": ["tag:model"], "severity": "critical",
               "description": "p95 latency above 2.5 s over the last hour"}),
        json!({"name": "Error burst (demo)", "metric_name": "llm.errors", "aggregation": "sum",
               "window": "1h", "comparator": "gt", "threshold": 8, "for": "0s",
               "group_by": ["tag:model"], "severity": "warning"}),
        json!({"name": "Team daily budget (demo)", "budget": {"scope": "team", "period": "day", "limit": 2},
               "severity": "warning"}),
    ];
    let existing = api.get("/api/v1/metrics/alerts?limit=100").await?;
    let names: Vec<&str> = existing["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for r in rules {
        if !names.iter().any(|n| r["name"] == *n) {
            api.post("/api/v1/metrics/alerts", r).await?;
        }
    }
    if names.contains(&"Request surge (demo)") {
        return Ok(());
    }
    // One that fires and then resolves, so the history has both.
    let flaky = api
        .post(
            "/api/v1/metrics/alerts",
            json!({"name": "Request surge (demo)", "metric_name": "llm.requests", "aggregation": "sum",
                   "window": "1h", "comparator": "gt", "threshold": 1, "for": "0s",
                   "severity": "info"}),
        )
        .await?;
    api.post("/api/v1/metrics/alerts/evaluate", json!({}))
        .await?;
    let id = flaky["id"].as_str().unwrap_or_default();
    let mut spec = flaky.clone();
    if let Some(o) = spec.as_object_mut() {
        o.retain(|k, _| {
            [
                "name",
                "description",
                "metric_name",
                "aggregation",
                "window",
                "comparator",
                "for",
                "group_by",
                "severity",
                "enabled",
            ]
            .contains(&k.as_str())
        });
        o.insert("threshold".into(), json!(1e12));
    }
    api.call(
        Method::PUT,
        &format!("/api/v1/metrics/alerts/{id}"),
        Some(spec),
    )
    .await?;
    api.post("/api/v1/metrics/alerts/evaluate", json!({}))
        .await?;
    println!("demo: 4 alert rules evaluated");
    Ok(())
}

const FIRST: &[&str] = &[
    "Maria", "James", "Aiko", "Lukas", "Fatima", "Noah", "Chen", "Sofia", "Omar", "Emma",
];
const LAST: &[&str] = &[
    "Garcia", "Smith", "Tanaka", "Müller", "Khan", "Johnson", "Wei", "Rossi", "Haddad", "Brown",
];

fn conversation(rng: &mut Rng, i: usize) -> Value {
    let pick =
        |rng: &mut Rng, xs: &[&'static str]| xs[(rng.next() * xs.len() as f64) as usize % xs.len()];
    let (first, last) = (pick(rng, FIRST), pick(rng, LAST));
    let email = format!(
        "{}.{}@example.com",
        first.to_lowercase(),
        last.to_lowercase().replace('ü', "u")
    );
    let phone = format!("+1 415 555 {:04}", (rng.next() * 10_000.0) as u32);
    let question = match i % 5 {
        0 => {
            format!("Hi, I'm {first} {last}. My order hasn't arrived, can you email me at {email}?")
        }
        1 => format!(
            "Please call me back on {phone}, the refund for my card 4111 1111 1111 1111 is missing."
        ),
        2 => "How do I export my chat history?".to_string(),
        3 => format!("This is {first}. I moved, my new address is 12 Baker Street, London."),
        _ => "Can your assistant summarise the attached contract?".to_string(),
    };
    json!({
        "id": format!("conv-{i:05}"),
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": "Thanks for reaching out. I have forwarded this to our support team."}
        ],
        "meta": {"model": MODELS[i % MODELS.len()].0, "team": "support", "rating": (i % 5) + 1}
    })
}

async fn dataset(api: &Api) -> Result<(), AnyError> {
    let d = api
        .post(
            "/api/v1/datasets",
            json!({"name": DEMO_DATASET, "description": "Demo: support conversations with personal data",
                   "format": "jsonl", "tags": ["demo", "support"]}),
        )
        .await?;
    let id = d["id"]
        .as_str()
        .ok_or("demo: dataset without id")?
        .to_string();
    let mut rng = Rng(0xDA7A_5E7D_0000_0042);
    let mut n = 0;
    for (count, message) in [
        (200, "Import October support conversations (demo)"),
        (80, "Add November conversations (demo)"),
        (40, "Add escalations (demo)"),
    ] {
        let records: Vec<Value> = (n..n + count).map(|i| conversation(&mut rng, i)).collect();
        n += count;
        api.post(
            &format!("/api/v1/datasets/{id}/records"),
            json!({"records": records, "message": message}),
        )
        .await?;
        if n == 200 {
            api.post(
                &format!("/api/v1/datasets/{id}/tags"),
                json!({"name": "v1.0"}),
            )
            .await?;
        }
    }
    // An anonymized copy for sharing, which shows up in the lineage graph.
    api.call(
        Method::PUT,
        "/api/v1/pii/config",
        Some(
            json!({"profiles": {"share": {"operators": {"PERSON": {"operator": "pseudonymize"}},
                                           "default": {"operator": "replace"}}}}),
        ),
    )
    .await?;
    api.post(
        &format!("/api/v1/datasets/{id}/anonymize"),
        json!({"profile": "share", "target": "demo-support-conversations-anonymized"}),
    )
    .await?;
    println!("demo: dataset {DEMO_DATASET} with 3 versions and an anonymized copy");
    Ok(())
}

/// Keeps the dashboard moving: points every 10 seconds, a guardrail call now and then.
async fn live(api: &Api) -> Result<(), AnyError> {
    // A key of its own, so that the generator outlives the access token.
    let keys = api.get("/api/v1/api-keys?limit=200").await?;
    for k in keys["items"].as_array().into_iter().flatten() {
        if k["name"] == LIVE_KEY_NAME && k["revoked_at"].is_null() {
            let kid = k["id"].as_str().unwrap_or_default();
            let _ = api
                .call(Method::DELETE, &format!("/api/v1/api-keys/{kid}"), None)
                .await;
        }
    }
    let key = api
        .post(
            "/api/v1/api-keys",
            json!({"name": LIVE_KEY_NAME, "scopes": ["metrics:create", "policies:execute"]}),
        )
        .await?;
    let secret = key["key"]
        .as_str()
        .or_else(|| key["secret"].as_str())
        .ok_or("demo: no key secret in the answer")?;
    let api = Api {
        http: api.http.clone(),
        base: api.base.clone(),
        token: secret.into(),
    };
    let mut rng = Rng(0x11FE_0000_0000_0007);
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let mut points = Vec::new();
        // 10 seconds' worth of a 15-minute volume.
        points_at(
            &mut rng,
            chrono::Utc::now().timestamp(),
            40.0 / 90.0 * 4.0,
            &mut points,
        );
        if let Err(e) = ingest(&api, &mut points).await {
            tracing::warn!(error = %e, "demo: live points not sent");
        }
        n += 1;
        if n.is_multiple_of(6) {
            let input = json!({"model": "gpt-4o", "team": "support", "environment": "production",
                               "prompt": "Send the invoice to maria.garcia@example.com please",
                               "tokens": {"input": 900, "output": 0}});
            if let Err(e) = api
                .post("/api/v1/policies/evaluate", json!({"input": input}))
                .await
            {
                tracing::warn!(error = %e, "demo: live evaluation failed");
            }
        }
    }
}
