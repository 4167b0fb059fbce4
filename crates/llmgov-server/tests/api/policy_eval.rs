//! Policy evaluation: the guardrail call, limits, dry runs, violations, spend and facts,
//! webhooks, idempotency and fail-closed recording.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::policies::{create, policy_body};

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
    let (url, mut rx) = crate::webhooks::raw_receiver("s3cret").await;

    let secret = "notify-secret-0123456789";
    let p = create(
        &app,
        policy_body(
            "notified",
            "active",
            json!([{"type": "block"}, {"type": "notify", "url": url, "secret": secret}]),
        ),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    // The secret is write-only: no response shows it, only that one is set.
    assert_eq!(p["actions"][1]["secret_set"], true, "{p}");
    assert!(p["actions"][1].get("secret").is_none());
    let path = format!("/api/v1/policies/{id}");
    // Sending the policy back as read (a PUT that changes the description) keeps the secret.
    let mut back = app.get(&path, &app.admin_token).await.body;
    for k in [
        "id",
        "version",
        "created_at",
        "updated_at",
        "created_by",
        "template_id",
    ] {
        back.as_object_mut().unwrap().remove(k);
    }
    back["description"] = json!("sent back as read");
    let put = app
        .call(Method::PUT, &path, Some(&app.admin_token), Some(back))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["version"], 2);
    assert_eq!(put.body["actions"][1]["secret_set"], true);
    for shown in [
        app.get(&path, &app.admin_token).await.body,
        app.get(&format!("{path}/history"), &app.admin_token)
            .await
            .body,
        app.get("/api/v1/policies", &app.admin_token).await.body,
        app.get(&format!("{path}/diff?from=1&to=2"), &app.admin_token)
            .await
            .body,
    ] {
        assert!(!shown.to_string().contains(secret), "{shown}");
    }
    let audit = app
        .get("/api/v1/audit/logs?limit=100", &app.admin_token)
        .await;
    assert!(!audit.body.to_string().contains(secret));

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
    let (headers, raw) = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("the webhook is called")
        .unwrap();
    assert_signed(&headers, &raw, secret);
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(headers["x-llmgov-topic"], "policy.violation");
    assert!(headers.contains_key("x-llmgov-message-id"));
    assert_eq!(body["policy"]["id"], p["id"]);
    assert_eq!(body["policy"]["version"], 2);
    assert_eq!(body["evaluation_id"], r.body["evaluation_id"]);
    assert_eq!(body["violations"][0]["rule"], "deny");
    assert!(!raw.contains("secret plans"), "no prompt text in webhooks");
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

async fn the_pii_template_asks_the_pii_engine(app: TestApp) {
    let pii = app
        .post(
            "/api/v1/policies/from-template",
            &app.admin_token,
            json!({"template_id": "pii_in_prompt", "name": "pii", "status": "active"}),
        )
        .await;
    assert_eq!(pii.status, StatusCode::CREATED, "{}", pii.body);
    // `llmgov.pii` finds a phone number and a name with no pattern in the policy; a
    // "card" that fails Luhn is not one.
    let r = app
        .post(
            "/api/v1/policies/evaluate",
            &app.admin_token,
            json!({"input": {"model": "gpt-4o",
            "prompt": "I'm Maria Gonzalez, call (415) 555-2671; order 4111 1111 1111 1112"}}),
        )
        .await;
    assert_eq!(r.body["decision"], "redact", "{}", r.body);
    assert_eq!(
        r.body["redacted"]["prompt"],
        "I'm [REDACTED], call [REDACTED]; order 4111 1111 1111 1112"
    );
    let kinds: Vec<&str> = r.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["details"]["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds.len(), 2, "{}", r.body);
}

crate::both_backends!(
    the_pii_template_asks_the_pii_engine,
    the_guardrail_combines_applicable_policies_and_records_violations,
    evaluation_limits_answer_clear_errors,
    dry_runs_replay_inputs_and_record_nothing,
    an_evaluation_that_cannot_be_audited_is_refused,
    a_cost_budget_blocks_from_the_platform_s_own_spend_figures,
    notify_actions_call_their_webhook_after_the_evaluation_commits,
    policies_read_registered_model_and_dataset_facts,
    the_guardrail_call_is_idempotent,
);
