//! Policies: lifecycle, versions, evaluation, violations, templates and coverage.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const MODELS_REGO: &str = r#"package llmgov

deny contains sprintf("model %s is not allowed", [input.model]) if {
	not input.model in {"gpt-4o", "claude-sonnet-4"}
}
"#;

fn policy_body(name: &str, status: &str, actions: Value) -> Value {
    json!({
        "name": name,
        "policy_type": "model_lifecycle",
        "status": status,
        "definition": {"language": "rego", "source": MODELS_REGO},
        "actions": actions,
    })
}

async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/policies", &app.admin_token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn a_policy_is_created_versioned_diffed_and_rolled_back(app: TestApp) {
    let p = create(
        &app,
        policy_body("allowed models", "draft", json!([{"type": "block"}])),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["version"], 1);
    assert_eq!(p["status"], "draft");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            Some(json!({"status": "active", "priority": 10, "change_summary": "go live"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let new_source = MODELS_REGO.replace("\"gpt-4o\", ", "");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            Some(json!({"definition": {"language": "rego", "source": new_source}, "expected_version": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 3);
    // A stale expected version changes nothing.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            Some(json!({"priority": 1, "expected_version": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let h = app
        .get(&format!("/api/v1/policies/{id}/history"), &app.admin_token)
        .await;
    assert_eq!(h.body["total"], 3);
    assert_eq!(h.body["items"][0]["version"], 3);
    let d = app
        .get(
            &format!("/api/v1/policies/{id}/diff?from=2&to=3"),
            &app.admin_token,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["changed_fields"], json!(["definition"]));
    assert!(
        d.body["source_diff"]
            .as_str()
            .unwrap()
            .contains("-\tnot input.model in {\"gpt-4o\"")
    );
    let r = app
        .post(
            &format!("/api/v1/policies/{id}/rollback"),
            &app.admin_token,
            json!({"version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 4);
    assert_eq!(r.body["definition"]["source"], MODELS_REGO);
    assert_eq!(r.body["status"], "active");
    let r = app
        .post(
            &format!("/api/v1/policies/{id}/rollback"),
            &app.admin_token,
            json!({"version": 99}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Archive (DELETE) keeps the policy and its history.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/policies/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "archived");
    let events: Vec<String> = app
        .audit_events("policies.update")
        .await
        .iter()
        .map(|e| e["resource_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(events.iter().filter(|r| *r == id).count(), 4);
}

async fn invalid_rego_is_a_422_with_a_position_and_changes_nothing(app: TestApp) {
    let r = app
        .post(
            "/api/v1/policies",
            &app.admin_token,
            json!({"name": "broken", "policy_type": "content", "definition": {"language": "rego", "source": "package llmgov\n\ndeny contains msg if {\n  msg := \n}\n"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.error_code(), "POLICY_INVALID");
    assert!(
        r.body["error"]["details"]["line"].as_u64().is_some(),
        "{}",
        r.body
    );
    for bad in [
        json!({"name": "x", "policy_type": "nope", "definition": {"language": "rego", "source": MODELS_REGO}}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "cel", "source": MODELS_REGO}}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "rego", "source": MODELS_REGO}, "controls": ["made_up:1"]}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "rego", "source": "x".repeat(70_000)}}),
        json!({"name": "x", "policy_type": "content", "definition": {"language": "rego", "source": MODELS_REGO}, "actions": [{"type": "notify", "url": "ftp://x"}]}),
    ] {
        let r = app
            .post("/api/v1/policies", &app.admin_token, bad.clone())
            .await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
    }
    let r = app.get("/api/v1/policies", &app.admin_token).await;
    assert_eq!(r.body["total"], 0);
    assert!(app.audit_events("policies.create").await.is_empty());
}

async fn the_guardrail_combines_applicable_policies_and_records_violations(app: TestApp) {
    create(
        &app,
        policy_body("models", "active", json!([{"type": "block"}])),
    )
    .await;
    let pii = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "pii_in_prompt", "name": "pii", "status": "active"}),
        )
        .await;
    assert_eq!(pii.status, StatusCode::CREATED, "{}", pii.body);
    // A policy for another environment does not apply.
    let mut other = policy_body("prod only", "active", json!([{"type": "block"}]));
    other["definition"]["source"] = json!("package llmgov\ndeny contains \"always\" if true\n");
    other["conditions"] = json!({"environments": ["production"]});
    create(&app, other).await;
    let (_, _, app_token) = app.user_with("guardrail", &["policy_manager"]).await;

    let ok = app
        .post(
            "/api/v1/policies/evaluate",
            &app_token,
            json!({"input": {"model": "gpt-4o", "prompt": "hello", "environment": "staging"}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["decision"], "allow");
    assert_eq!(ok.body["results"].as_array().unwrap().len(), 2);

    let redact = app
        .post("/api/v1/policies/evaluate", &app_token, json!({"input": {"model": "gpt-4o", "prompt": "mail bob@example.com now", "environment": "staging"}}))
        .await;
    assert_eq!(redact.body["decision"], "redact", "{}", redact.body);
    assert_eq!(redact.body["redacted"]["prompt"], "mail [REDACTED] now");

    let deny = app
        .post("/api/v1/policies/evaluate", &app_token, json!({"input": {"model": "llama", "prompt": "mail bob@example.com", "environment": "production"}}))
        .await;
    assert_eq!(deny.body["decision"], "deny", "{}", deny.body);
    assert_eq!(deny.body["results"].as_array().unwrap().len(), 3);
    let rules: Vec<&str> = deny.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"deny") && rules.contains(&"deny_pii"),
        "{rules:?}"
    );

    let v = app
        .get("/api/v1/violations?severity=high", &app.admin_token)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!(
        v.body["total"], 2,
        "model + always, both blocking: {}",
        v.body
    );
    // Recorded violations never carry the prompt text.
    assert!(!v.body.to_string().contains("bob@example.com"));
    let all = app.get("/api/v1/violations", &app.admin_token).await;
    assert_eq!(all.body["total"], 4, "{}", all.body);
    let evals = app.audit_events("policies.evaluate").await;
    assert_eq!(evals.len(), 3);

    // Lifecycle: open → acknowledged → resolved; no way back.
    let vid = v.body["items"][0]["id"].as_str().unwrap();
    let path = format!("/api/v1/violations/{vid}");
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"status": "acknowledged"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"status": "resolved", "notes": "model removed"})),
        )
        .await;
    assert_eq!(r.body["status"], "resolved");
    assert!(r.body["resolved_by"].is_string());
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"status": "open"})),
        )
        .await;
    assert!(r.status.is_client_error());
    let r = app
        .get("/api/v1/violations?status=resolved", &app.admin_token)
        .await;
    assert_eq!(r.body["total"], 1);
}

async fn evaluation_limits_answer_clear_errors(app: TestApp) {
    let mut slow = policy_body("slow", "active", json!([{"type": "block"}]));
    slow["definition"]["source"] = json!(
        "package llmgov\ndeny contains x if {\n some a in input.xs\n some b in input.xs\n some c in input.xs\n x := a + b + c\n x < 0\n}\n"
    );
    let p = create(&app, slow).await;
    let xs: Vec<u32> = (0..1000).collect();
    let r = app
        .post(
            &format!("/api/v1/policies/{}/evaluate", p["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"input": {"xs": xs}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.error_code(), "POLICY_EVALUATION_TIMEOUT");
    // The input size limit is tested in the engine's unit tests: here the HTTP body limit
    // (64 KiB in tests) answers first, and closes the connection under the sender.
    let r = app
        .post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            json!({"input": [1, 2]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn dry_runs_replay_inputs_and_record_nothing(app: TestApp) {
    create(&app, policy_body("models", "active", json!([]))).await;
    for model in ["gpt-4o", "llama", "mistral"] {
        let r = app
            .post(
                "/api/v1/policies/evaluate",
                &app.admin_token,
                json!({"input": {"model": model}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let violations = app.get("/api/v1/violations", &app.admin_token).await.body["total"].clone();
    let mut draft = policy_body("only claude", "draft", json!([{"type": "block"}]));
    draft["definition"]["source"] = json!(
        "package llmgov\ndeny contains \"not claude\" if input.model != \"claude-sonnet-4\"\n"
    );
    let d = create(&app, draft).await;
    let r = app
        .post(
            &format!("/api/v1/policies/{}/dry-run", d["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"last": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["inputs"], 3);
    assert_eq!(r.body["violating"], 3);
    let r = app
        .post(
            &format!("/api/v1/policies/{}/dry-run", d["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"inputs": [{"model": "claude-sonnet-4"}, {"model": "x"}]}),
        )
        .await;
    assert_eq!(r.body["violating"], 1);
    assert_eq!(
        app.get("/api/v1/violations", &app.admin_token).await.body["total"],
        violations
    );
}

async fn templates_frameworks_and_coverage(app: TestApp) {
    let t = app.get("/api/v1/policy-templates", &app.admin_token).await;
    assert!(t.body["total"].as_i64().unwrap() >= 12);
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "nope", "name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "cost_budget", "name": "budget", "parameters": {"limit": "ten"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "ai_disclosure", "name": "disclose", "status": "active"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(
        r.body["controls"]
            .as_array()
            .unwrap()
            .contains(&json!("eu_ai_act:art_50"))
    );
    let f = app
        .get("/api/v1/compliance/frameworks", &app.admin_token)
        .await;
    assert_eq!(f.body["total"], 4);
    let c = app
        .get(
            "/api/v1/compliance/frameworks/eu_ai_act/coverage",
            &app.admin_token,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let art50 = c.body["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "eu_ai_act:art_50")
        .unwrap()
        .clone();
    assert_eq!(art50["covered"], true);
    assert_eq!(
        art50["policies"][0]["audit_entries"], 1,
        "its creation: {art50}"
    );
    assert!(c.body["controls_covered"].as_i64().unwrap() >= 2);
    let c = app
        .get(
            "/api/v1/compliance/frameworks/sox/coverage",
            &app.admin_token,
        )
        .await;
    assert_eq!(c.status, StatusCode::NOT_FOUND);
    let l = app
        .get(
            "/api/v1/policies?control=eu_ai_act:art_50&status=active",
            &app.admin_token,
        )
        .await;
    assert_eq!(l.body["total"], 1, "{}", l.body);
    let s = app
        .post(
            "/api/v1/policies/search",
            &app.admin_token,
            json!({"text": "DISCL"}),
        )
        .await;
    assert_eq!(s.body["total"], 1, "{}", s.body);
}

async fn policies_are_invisible_to_other_workspaces_and_viewers_cannot_write(app: TestApp) {
    let p = create(&app, policy_body("models", "active", json!([]))).await;
    let id = p["id"].as_str().unwrap();
    let (_, _, viewer) = app.user_with("viewer2", &["viewer"]).await;
    assert_eq!(
        app.get(&format!("/api/v1/policies/{id}"), &viewer)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .post(
            "/api/v1/policies",
            &viewer,
            policy_body("v", "draft", json!([])),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post("/api/v1/policies/evaluate", &viewer, json!({"input": {}}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ws = app
        .post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": "Other"}),
        )
        .await;
    let ws_b = ws.body["id"].as_str().unwrap();
    let u = app
        .post("/api/v1/users", &app.admin_token, json!({"email": "pb@example.com", "username": "policyb", "password": "User-password-123", "roles": ["admin"], "workspace_id": ws_b}))
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    let other = app.login("pb@example.com", "User-password-123").await;
    assert_eq!(
        app.get(&format!("/api/v1/policies/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/policies", &other).await.body["total"], 0);
    let r = app
        .post(
            "/api/v1/policies/evaluate",
            &other,
            json!({"input": {"model": "llama"}}),
        )
        .await;
    assert_eq!(
        r.body["decision"], "allow",
        "another workspace's policy must not apply"
    );
}

async fn an_evaluation_that_cannot_be_audited_is_refused(app: TestApp) {
    create(
        &app,
        policy_body("models", "active", json!([{"type": "block"}])),
    )
    .await;
    crate::audit::break_audit_inserts(&app).await;
    // Several at once: they share a group commit, and every one of them must fail.
    let calls = (0..4).map(|_| {
        app.post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            json!({"input": {"model": "llama"}}),
        )
    });
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert_eq!(r.error_code(), "AUDIT_UNAVAILABLE");
    }
    assert_eq!(
        app.get("/api/v1/violations", &app.admin_token).await.body["total"],
        0
    );
}

async fn a_cost_budget_blocks_from_the_platform_s_own_spend_figures(app: TestApp) {
    let budget = |name: &str, limit: f64| {
        json!({"template_id": "cost_budget", "name": name, "status": "active",
               "parameters": {"scope": "team", "period": "day", "limit": limit}})
    };
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            budget("team budget", 1.0),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let call = |team: &str, cost: f64| {
        app.post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            json!({"input": {"team": team, "model": "gpt-4o", "cost": cost}}),
        )
    };
    // Post-call evaluations report what each call cost; the budget adds them up.
    assert_eq!(call("search", 0.4).await.body["decision"], "allow");
    assert_eq!(call("search", 0.4).await.body["decision"], "allow");
    assert_eq!(
        call("search", 0.4).await.body["decision"],
        "allow",
        "0.8 spent, under 1.0"
    );
    let over = call("search", 0.0).await;
    assert_eq!(over.body["decision"], "deny", "1.2 spent: {}", over.body);
    assert_eq!(
        over.body["violations"][0]["details"]["limit"].as_f64(),
        Some(1.0)
    );
    assert_eq!(
        call("research", 0.0).await.body["decision"],
        "allow",
        "another team's spend"
    );
    // A limit of 0 blocks before anything is spent.
    let r = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            budget("frozen", 0.0),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(call("newteam", 0.0).await.body["decision"], "deny");
}

async fn notify_actions_call_their_webhook_after_the_evaluation_commits(app: TestApp) {
    // A webhook receiver on a random port that hands each request to the test.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(axum::http::HeaderMap, Value)>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, body));
                    StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hook?token=s3cret",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let p = create(
        &app,
        policy_body(
            "notified",
            "active",
            json!([{"type": "block"}, {"type": "notify", "url": url}]),
        ),
    )
    .await;
    let allowed = app
        .post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            json!({"input": {"model": "gpt-4o"}}),
        )
        .await;
    assert_eq!(allowed.body["decision"], "allow");
    let r = app
        .post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            json!({"input": {"model": "llama", "prompt": "secret plans"}}),
        )
        .await;
    assert_eq!(r.body["decision"], "deny");
    let (headers, body) = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("the webhook is called")
        .unwrap();
    assert_eq!(headers["x-llmgov-topic"], "policy.violation");
    assert!(headers.contains_key("x-llmgov-message-id"));
    assert_eq!(body["policy"]["id"], p["id"]);
    assert_eq!(body["evaluation_id"], r.body["evaluation_id"]);
    assert_eq!(body["violations"][0]["rule"], "deny");
    assert!(
        !body.to_string().contains("secret plans"),
        "no prompt text in webhooks"
    );
    assert!(rx.try_recv().is_err(), "the allowed call sent nothing");
}

async fn policies_read_registered_model_and_dataset_facts(app: TestApp) {
    for (t, name) in [
        ("model_evaluation_gate", "deploy gate"),
        ("anonymized_export", "anonymize first"),
    ] {
        let r = app
            .post(
                "/api/v1/policies/from-template",
                &app.admin_token,
                json!({"template_id": t, "name": name, "status": "active"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let put = |path: &'static str, facts: Value| {
        app.call(
            Method::PUT,
            path,
            Some(&app.admin_token),
            Some(json!({"facts": facts})),
        )
    };
    let r = put(
        "/api/v1/policy-facts/models/support-bot-v4",
        json!({"evaluation_score": 0.62}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let deploy = json!({"input": {"event_type": "model.deploy", "model": "support-bot-v4"}});
    let r = app
        .post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            deploy.clone(),
        )
        .await;
    assert_eq!(r.body["decision"], "deny", "score 0.62 < 0.8: {}", r.body);
    put(
        "/api/v1/policy-facts/models/support-bot-v4",
        json!({"evaluation_score": 0.93}),
    )
    .await;
    let r = app
        .post("/api/v1/policies/evaluate", &app.admin_token, deploy)
        .await;
    assert_eq!(r.body["decision"], "allow", "{}", r.body);
    let export = json!({"input": {"event_type": "dataset.export", "dataset": "chats"}});
    assert_eq!(
        app.post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            export.clone()
        )
        .await
        .body["decision"],
        "deny"
    );
    put(
        "/api/v1/policy-facts/datasets/chats",
        json!({"anonymized": true}),
    )
    .await;
    assert_eq!(
        app.post("/api/v1/policies/evaluate", &app.admin_token, export)
            .await
            .body["decision"],
        "allow"
    );
    let l = app
        .get("/api/v1/policy-facts/models", &app.admin_token)
        .await;
    assert_eq!(l.body["total"], 1);
    assert_eq!(
        l.body["items"][0]["facts"]["evaluation_score"].as_f64(),
        Some(0.93)
    );
    assert_eq!(
        put("/api/v1/policy-facts/models/x", json!([1]))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        put("/api/v1/policy-facts/widgets/x", json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (_, _, viewer) = app.user_with("factviewer", &["viewer"]).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/policy-facts/models/x",
            Some(&viewer),
            Some(json!({"facts": {}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/policy-facts/datasets/chats",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.audit_events("policy_facts.update").await.len(), 3);
}

async fn the_guardrail_call_is_idempotent(app: TestApp) {
    create(
        &app,
        policy_body("models", "active", json!([{"type": "block"}])),
    )
    .await;
    let call = || async {
        let r = app
            .client
            .post(format!("{}/api/v1/policies/evaluate", app.base))
            .bearer_auth(&app.admin_token)
            .header("idempotency-key", "req-42")
            .json(&json!({"input": {"model": "llama"}}))
            .send()
            .await
            .unwrap();
        TestApp::read(r).await
    };
    let first = call().await;
    let second = call().await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["evaluation_id"], second.body["evaluation_id"]);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(
        app.get("/api/v1/violations", &app.admin_token).await.body["total"],
        1,
        "recorded once"
    );
}

crate::both_backends!(
    a_policy_is_created_versioned_diffed_and_rolled_back,
    invalid_rego_is_a_422_with_a_position_and_changes_nothing,
    the_guardrail_combines_applicable_policies_and_records_violations,
    evaluation_limits_answer_clear_errors,
    dry_runs_replay_inputs_and_record_nothing,
    templates_frameworks_and_coverage,
    policies_are_invisible_to_other_workspaces_and_viewers_cannot_write,
    an_evaluation_that_cannot_be_audited_is_refused,
    a_cost_budget_blocks_from_the_platform_s_own_spend_figures,
    notify_actions_call_their_webhook_after_the_evaluation_commits,
    policies_read_registered_model_and_dataset_facts,
    the_guardrail_call_is_idempotent,
);

async fn bulk_applies_everything_or_nothing(app: TestApp) {
    let a = create(&app, policy_body("a", "draft", json!([]))).await;
    let a_id = a["id"].as_str().unwrap();
    let ops = |bad: bool| {
        json!({"operations": [
            {"op": "create", "policy": policy_body("b", "active", json!([{"type": "block"}]))},
            {"op": "update", "id": a_id, "changes": {"status": "active", "expected_version": 1}},
            {"op": "create", "policy": {
                "name": "c", "policy_type": "content",
                "definition": {"language": "rego", "source": if bad { "package llmgov\ndeny contains" } else { MODELS_REGO }}
            }},
        ]})
    };
    let r = app
        .post("/api/v1/policies/bulk", &app.admin_token, ops(true))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["operation"], 2, "{}", r.body);
    let list = app.get("/api/v1/policies", &app.admin_token).await;
    assert_eq!(list.body["total"], 1, "nothing applied");
    assert_eq!(list.body["items"][0]["version"], 1);
    let r = app
        .post("/api/v1/policies/bulk", &app.admin_token, ops(false))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["items"][1]["status"], "active");
    let r = app
        .post(
            "/api/v1/policies/bulk",
            &app.admin_token,
            json!({"operations": [{"op": "archive", "id": a_id}, {"op": "archive", "id": a_id}]}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the same policy twice"
    );
    let r = app
        .post(
            "/api/v1/policies/bulk",
            &app.admin_token,
            json!({"operations": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let active = app
        .get("/api/v1/policies?status=active", &app.admin_token)
        .await;
    assert_eq!(active.body["total"], 2, "a and b; c was created as a draft");
}

mod bulk {
    crate::both_backends!(bulk_applies_everything_or_nothing);
    use super::bulk_applies_everything_or_nothing;
}
