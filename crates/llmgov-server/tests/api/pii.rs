//! The PII API: scan, anonymize, detokenize, settings, and the findings of dataset versions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const TEXT: &str =
    "Hi, I'm Maria Gonzalez, mail maria@corp.io or call (415) 555-2671; card 4111 1111 1111 1111.";

fn types(entities: &Value) -> Vec<String> {
    entities
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn scanning_finds_validated_entities_with_code_point_offsets(app: TestApp) {
    let (_, _, ds) = app.user_with("scientist", &["data_scientist"]).await;
    let r = app
        .post("/api/v1/pii/scan", &ds, json!({"text": TEXT}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        types(&r.body["entities"]),
        ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"]
    );
    let email = &r.body["entities"][1];
    let chars: Vec<char> = TEXT.chars().collect();
    let (s, e) = (
        email["start"].as_u64().unwrap() as usize,
        email["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(chars[s..e].iter().collect::<String>(), "maria@corp.io");
    // Offsets count code points, not bytes.
    let r = app
        .post("/api/v1/pii/scan", &ds, json!({"text": "é ann@x.io"}))
        .await;
    assert_eq!(
        (
            r.body["entities"][0]["start"].as_u64(),
            r.body["entities"][0]["end"].as_u64()
        ),
        (Some(2), Some(10))
    );
    // Batches keep their order; a type filter narrows them.
    let r = app
        .post("/api/v1/pii/scan", &ds, json!({"texts": [TEXT, "nothing here", "ssn 123-45-6789"], "types": ["US_SSN", "EMAIL_ADDRESS"]}))
        .await;
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(types(&results[0]["entities"]), ["EMAIL_ADDRESS"]);
    assert!(results[1]["entities"].as_array().unwrap().is_empty());
    assert_eq!(types(&results[2]["entities"]), ["US_SSN"]);

    // Bad input: both or neither of text/texts, unknown types, too many texts.
    for body in [
        json!({}),
        json!({"text": "a", "texts": ["b"]}),
        json!({"text": "a", "types": ["lower case"]}),
        json!({"texts": vec!["x"; 1001]}),
        json!({"text": "a", "min_score": 7}),
    ] {
        let r = app.post("/api/v1/pii/scan", &ds, body.clone()).await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST,
            "{body}: {}",
            r.body
        );
    }
    // A viewer may not scan.
    let (_, _, viewer) = app.user_with("viewer", &["viewer"]).await;
    let r = app
        .post("/api/v1/pii/scan", &viewer, json!({"text": TEXT}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn anonymizing_applies_operators_per_type_and_field(app: TestApp) {
    let (_, _, ds) = app.user_with("scientist", &["data_scientist"]).await;
    let r = app
        .post(
            "/api/v1/pii/anonymize",
            &ds,
            json!({
                "text": TEXT,
                "operators": {
                    "CREDIT_CARD": {"operator": "mask", "keep": 4},
                    "EMAIL_ADDRESS": {"operator": "hash"},
                    "PERSON": {"operator": "pseudonymize"},
                },
                "default": {"operator": "replace", "with": "[removed]"},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let out = r.body["text"].as_str().unwrap();
    assert!(out.contains("card **** **** **** 1111."), "{out}");
    assert!(out.contains("call [removed];"), "{out}");
    assert!(out.contains("mail hash_"), "{out}");
    assert!(
        !out.contains("Maria Gonzalez") && !out.contains("maria@corp.io"),
        "{out}"
    );
    assert_eq!(r.body["items"].as_array().unwrap().len(), 4);
    // Hashes are stable within the workspace; pseudonyms within a scope.
    let again = app
        .post(
            "/api/v1/pii/anonymize",
            &ds,
            json!({"text": "maria@corp.io", "default": {"operator": "hash"}}),
        )
        .await;
    assert!(out.contains(again.body["text"].as_str().unwrap()));

    // Records: field rules replace whole fields; other strings are scanned.
    let r = app
        .post("/api/v1/pii/anonymize", &ds, json!({
            "records": [{"user": {"email": "a@b.io", "id": 7}, "messages": [{"content": "ssn 123-45-6789"}]}],
            "fields": {"user.id": {"operator": "replace", "with": "ID"}, "user.email": {"operator": "redact"}},
        }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["records"][0],
        json!({"user": {"email": "", "id": "ID"}, "messages": [{"content": "ssn <US_SSN>"}]})
    );
    assert_eq!(r.body["replaced"]["US_SSN"], 1);

    // Bad input: unknown operator, unknown profile, a profile and operators at once.
    let r = app
        .post(
            "/api/v1/pii/anonymize",
            &ds,
            json!({"text": "x", "default": {"operator": "shred"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app
        .post(
            "/api/v1/pii/anonymize",
            &ds,
            json!({"text": "x", "profile": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .post(
            "/api/v1/pii/anonymize",
            &ds,
            json!({"text": "x", "profile": "p", "default": {"operator": "redact"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

async fn tokens_and_ciphertexts_come_back_only_with_pii_read_and_are_audited(app: TestApp) {
    let (_, _, ds) = app.user_with("scientist", &["data_scientist"]).await;
    let (_, _, owner) = app.user_with("owner", &["data_owner"]).await;
    let r = app
        .post("/api/v1/pii/anonymize", &ds, json!({
            "text": TEXT,
            "operators": {"EMAIL_ADDRESS": {"operator": "tokenize"}, "CREDIT_CARD": {"operator": "encrypt"}},
            "default": {"operator": "keep"},
        }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let anonymized = r.body["text"].as_str().unwrap().to_owned();
    assert!(
        anonymized.contains("mail tok_") && anonymized.contains("card enc_"),
        "{anonymized}"
    );
    let token: String = anonymized
        .split_whitespace()
        .find(|w| w.starts_with("tok_"))
        .unwrap()
        .to_owned();
    // The token vault holds the value sealed; the audit entry names counts, not values.
    let minted = app.audit_events("pii.tokenize").await;
    assert_eq!(minted.len(), 1);
    assert!(!minted[0].to_string().contains("maria@corp.io"));

    // Detokenizing needs pii:read: the data scientist who tokenized cannot.
    let r = app
        .post("/api/v1/pii/detokenize", &ds, json!({"text": anonymized}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/api/v1/pii/detokenize",
            &owner,
            json!({"text": anonymized}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["text"], TEXT);
    assert_eq!(
        (r.body["restored"].as_u64(), r.body["unknown"].as_u64()),
        (Some(2), Some(0))
    );
    let r = app
        .post(
            "/api/v1/pii/detokenize",
            &owner,
            json!({"tokens": [token, "tok_aaaaaaaaaaaaaaaaaaaa"]}),
        )
        .await;
    assert_eq!(r.body["tokens"][0]["value"], "maria@corp.io");
    assert_eq!(r.body["tokens"][0]["type"], "EMAIL_ADDRESS");
    assert_eq!(r.body["tokens"][1]["value"], Value::Null);
    // Rotating the key-encryption key rewraps the workspace key; trimming the old version
    // then loses nothing.
    let rot = app
        .post("/api/v1/keys/rotate", &app.admin_token, json!({}))
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{}", rot.body);
    assert!(rot.body["rewrapped"].as_u64().unwrap() >= 1, "{}", rot.body);
    let v = rot.body["current_version"].as_u64().unwrap();
    let trim = app
        .post(
            "/api/v1/keys/trim",
            &app.admin_token,
            json!({"min_version": v}),
        )
        .await;
    assert_eq!(trim.status, StatusCode::OK, "{}", trim.body);
    let r = app
        .post(
            "/api/v1/pii/detokenize",
            &owner,
            json!({"text": anonymized}),
        )
        .await;
    assert_eq!(r.body["text"], TEXT);
    let reads = app.audit_events("pii.detokenize").await;
    assert_eq!(reads.len(), 3);
    assert!(
        !reads
            .iter()
            .any(|e| e.to_string().contains("maria@corp.io"))
    );

    // Another workspace's data owner holds neither the token nor the key.
    let ws = app
        .post(
            "/api/v1/workspaces",
            &app.admin_token,
            json!({"name": "Other"}),
        )
        .await;
    let ws_b = ws.body["id"].as_str().unwrap();
    let u = app
        .post("/api/v1/users", &app.admin_token, json!({"email": "ob@example.com", "username": "otherowner", "password": "User-password-123", "roles": ["data_owner"], "workspace_id": ws_b}))
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    let other = app.login("ob@example.com", "User-password-123").await;
    let r = app
        .post(
            "/api/v1/pii/detokenize",
            &other,
            json!({"text": anonymized}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["text"], anonymized.as_str());
    assert_eq!(r.body["unknown"], 2);
}

async fn settings_add_recognizers_and_profiles_with_optimistic_versions(app: TestApp) {
    let (_, _, owner) = app.user_with("owner", &["data_owner"]).await;
    let (_, _, ds) = app.user_with("scientist", &["data_scientist"]).await;
    let r = app.get("/api/v1/pii/config", &ds).await;
    assert_eq!(
        (r.status, r.body["version"].as_i64()),
        (StatusCode::OK, Some(0))
    );
    let settings = json!({
        "scan": {
            "recognizers": [{"name": "employee id", "entity_type": "EMPLOYEE_ID", "pattern": "\\bEMP-\\d{6}\\b", "score": 0.9}],
            "allow_list": ["help@acme.example"],
        },
        "profiles": {"share": {"operators": {"EMPLOYEE_ID": {"operator": "mask", "keep": 2}}, "default": {"operator": "redact"}}},
    });
    // Only pii:update may change them.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/pii/config",
            Some(&ds),
            Some(settings.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/pii/config?version=0",
            Some(&owner),
            Some(settings.clone()),
        )
        .await;
    assert_eq!(
        (r.status, r.body["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{}",
        r.body
    );
    // A change based on an old version is a conflict.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/pii/config?version=0",
            Some(&owner),
            Some(settings.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "PII_SETTINGS_CHANGED");
    assert_eq!(app.audit_events("pii.settings.update").await.len(), 1);

    let r = app
        .post(
            "/api/v1/pii/scan",
            &ds,
            json!({"text": "EMP-123456 wrote to help@acme.example"}),
        )
        .await;
    assert_eq!(types(&r.body["entities"]), ["EMPLOYEE_ID"]);
    let r = app
        .post(
            "/api/v1/pii/anonymize",
            &ds,
            json!({"text": "EMP-123456 and ann@x.io", "profile": "share"}),
        )
        .await;
    assert_eq!(r.body["text"], "***-****56 and ");

    // Invalid settings name the field and change nothing.
    for (bad, field) in [
        (
            json!({"scan": {"recognizers": [{"name": "x", "entity_type": "X", "pattern": "("}]}}),
            "scan.recognizers[0].pattern",
        ),
        (json!({"scan": {"min_score": 2}}), "scan.min_score"),
        (json!({"profiles": {"bad name": {}}}), "profiles"),
        (
            json!({"profiles": {"p": {"operators": {"lower": {"operator": "redact"}}}}}),
            "profiles.p.operators.lower",
        ),
    ] {
        let r = app
            .call(
                Method::PUT,
                "/api/v1/pii/config",
                Some(&owner),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.body);
    }
    let r = app
        .call(
            Method::PUT,
            "/api/v1/pii/config",
            Some(&owner),
            Some(json!({"scan": {"typo": 1}})),
        )
        .await;
    assert!(r.status.is_client_error());
    assert_eq!(app.get("/api/v1/pii/config", &ds).await.body["version"], 1);
}

async fn dataset_versions_report_findings_per_type_and_field(app: TestApp) {
    let (_, _, owner) = app.user_with("owner", &["data_owner"]).await;
    let (_, _, viewer) = app.user_with("viewer", &["viewer"]).await;
    let d = app
        .post("/api/v1/datasets", &owner, json!({"name": "chats"}))
        .await;
    let id = d.body["id"].as_str().unwrap().to_owned();
    let body = [
        json!({"user": "maria@corp.io", "messages": [{"content": "my ssn is 123-45-6789"}]}),
        json!({"user": "guest", "messages": [{"content": "no pii here"}]}),
        json!({"user": "system", "messages": [{"content": "call (415) 555-2671 or bob@corp.io"}]}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let r = app
        .client
        .post(format!("{}/api/v1/datasets/{id}/import", app.base))
        .bearer_auth(&owner)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = app
        .get(&format!("/api/v1/datasets/{id}/pii"), &viewer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = &r.body;
    assert_eq!(
        (
            b["records"].as_u64(),
            b["records_with_pii"].as_u64(),
            b["total"].as_u64()
        ),
        (Some(3), Some(2), Some(4))
    );
    assert_eq!(
        b["counts"],
        json!({"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1, "US_SSN": 1})
    );
    assert_eq!(b["fields"]["user"], json!({"EMAIL_ADDRESS": 1}));
    assert_eq!(
        b["fields"]["messages.content"],
        json!({"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "US_SSN": 1})
    );
    // Records masked on request, for a reader with no PII permission at all.
    let r = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "analyst", "description": "reads datasets", "permissions": ["datasets:read", "datasets:execute"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (_, _, analyst) = app.user_with("analyst", &["analyst"]).await;
    let m = app
        .get(
            &format!("/api/v1/datasets/{id}/records?masked=true"),
            &analyst,
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    assert_eq!(m.body["total"], 3);
    assert_eq!(m.body["items"][0]["data"]["user"], "<EMAIL_ADDRESS>");
    assert_eq!(
        m.body["items"][0]["data"]["messages"][0]["content"],
        "my ssn is <US_SSN>"
    );
    assert_eq!(m.body["items"][1]["data"]["user"], "guest");
    assert!(!m.body.to_string().contains("@corp.io"), "{}", m.body);
    let one = app
        .get(
            &format!("/api/v1/datasets/{id}/records/2?masked=true"),
            &analyst,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(
        one.body["data"]["messages"][0]["content"],
        "call <PHONE_NUMBER> or <EMAIL_ADDRESS>"
    );
    assert_eq!(one.body["index"], 2);
    let raw = app
        .get(&format!("/api/v1/datasets/{id}/records?limit=1"), &analyst)
        .await;
    assert_eq!(raw.body["items"][0]["data"]["user"], "maria@corp.io");
    let bad = app
        .get(
            &format!("/api/v1/datasets/{id}/records?masked=perhaps"),
            &analyst,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(
        app.get(
            &format!("/api/v1/datasets/{id}/records?masked=true"),
            &viewer
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    // Locations without values for a reader without pii:read.
    let samples = b["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4);
    assert!(samples.iter().all(|s| s.get("value").is_none()), "{b}");
    assert!(!b.to_string().contains("maria@corp.io"));
    // With pii:read the values are shown, and that is audited.
    let r = app.get(&format!("/api/v1/datasets/{id}/pii"), &owner).await;
    let values: Vec<&str> = r.body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    assert!(
        values.contains(&"maria@corp.io") && values.contains(&"123-45-6789"),
        "{values:?}"
    );
    assert_eq!(app.audit_events("datasets.pii_read").await.len(), 1);

    // New settings make the findings stale: the next read scans again with them.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/pii/config",
            Some(&owner),
            Some(json!({"scan": {"types": ["US_SSN"]}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .get(&format!("/api/v1/datasets/{id}/pii"), &viewer)
        .await;
    assert_eq!(r.body["settings_version"], 1);
    assert_eq!(r.body["counts"], json!({"US_SSN": 1}));
    // Another ref, and one that does not exist.
    let r = app
        .get(&format!("/api/v1/datasets/{id}/pii?ref=nope"), &viewer)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(
            &format!("/api/v1/datasets/{}/pii", uuid::Uuid::new_v4()),
            &viewer,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

crate::both_backends!(
    scanning_finds_validated_entities_with_code_point_offsets,
    anonymizing_applies_operators_per_type_and_field,
    tokens_and_ciphertexts_come_back_only_with_pii_read_and_are_audited,
    settings_add_recognizers_and_profiles_with_optimistic_versions,
    dataset_versions_report_findings_per_type_and_field,
);
