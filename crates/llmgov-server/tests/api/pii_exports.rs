//! PII at the vault's edges: exports through anonymization profiles, data policies that gate
//! raw PII, and anonymized datasets derived with lineage.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn import_chats(app: &TestApp, token: &str, name: &str) -> String {
    let d = app
        .post("/api/v1/datasets", token, json!({"name": name}))
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    let id = d.body["id"].as_str().unwrap().to_owned();
    let body = [
        json!({"user": "maria@corp.io", "messages": [{"content": "I'm Maria Gonzalez, ssn 123-45-6789"}]}),
        json!({"user": "guest", "messages": [{"content": "call me at (415) 555-2671"}]}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let r = app
        .client
        .post(format!("{}/api/v1/datasets/{id}/import", app.base))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    id
}

async fn export_text(app: &TestApp, token: &str, id: &str, query: &str) -> (StatusCode, String) {
    let r = app
        .client
        .get(format!("{}/api/v1/datasets/{id}/export{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn exports_pass_through_profiles_and_data_policies_gate_raw_pii(app: TestApp) {
    let (_, _, owner) = app.user_with("owner", &["data_owner"]).await;
    let settings = json!({"profiles": {"share": {
        "operators": {"PERSON": {"operator": "pseudonymize"}, "US_SSN": {"operator": "mask", "keep": 4}},
        "default": {"operator": "replace"},
        "fields": {"user": {"operator": "tokenize", "entity_type": "USER"}},
    }}});
    let r = app
        .call(
            Method::PUT,
            "/api/v1/pii/config",
            Some(&owner),
            Some(settings),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = import_chats(&app, &owner, "chats").await;

    // An anonymized export: field rules, then every other string scanned.
    let (status, body) = export_text(&app, &owner, &id, "?profile=share").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["user"].as_str().unwrap().starts_with("tok_"),
        "{body}"
    );
    let content = lines[0]["messages"][0]["content"].as_str().unwrap();
    assert!(
        content.starts_with("I'm ") && content.ends_with(", ssn ***-**-6789"),
        "{content}"
    );
    assert!(!content.contains("Maria Gonzalez"), "{content}");
    assert_eq!(
        lines[1]["messages"][0]["content"],
        "call me at <PHONE_NUMBER>"
    );
    // Its tokens are in the vault before the records leave; the export is audited with it.
    let r = app
        .post(
            "/api/v1/pii/detokenize",
            &owner,
            json!({"text": lines[0]["user"]}),
        )
        .await;
    assert_eq!(r.body["text"], "maria@corp.io");
    let exports = app.audit_events("datasets.export").await;
    assert_eq!(
        exports[0]["details"]["anonymized_with"], "share",
        "{}",
        exports[0]
    );
    // Other formats go through the profile too; an unknown profile is 404.
    let (status, csv) = export_text(&app, &owner, &id, "?profile=share&format=csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.contains("<PHONE_NUMBER>") && !csv.contains("555-2671"),
        "{csv}"
    );
    let (status, _) = export_text(&app, &owner, &id, "?profile=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A data policy from the template requires anonymization before export.
    let r = app
        .post("/api/v1/policies/from-template", &app.admin_token,
            json!({"template_id": "anonymized_export", "name": "anonymize exports", "status": "active"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (status, body) = export_text(&app, &owner, &id, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "EXPORT_DENIED_BY_POLICY");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4 PII findings"),
        "{err}"
    );
    // The violation is recorded like any policy's.
    let v = app.get("/api/v1/violations", &app.admin_token).await;
    assert!(
        v.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["details"]["event_type"] == "dataset.export"
                || x["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("must be anonymized")),
        "{}",
        v.body
    );
    // Through the profile it may leave; a dataset without PII may leave as it is.
    let (status, _) = export_text(&app, &owner, &id, "?profile=share").await;
    assert_eq!(status, StatusCode::OK);
    let clean = app
        .post("/api/v1/datasets", &owner, json!({"name": "clean"}))
        .await;
    let clean_id = clean.body["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/datasets/{clean_id}/records"),
            &owner,
            json!({"records": [{"text": "no personal data"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (status, body) = export_text(&app, &owner, clean_id, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn anonymized_datasets_are_derived_with_lineage(app: TestApp) {
    let (_, _, owner) = app.user_with("owner", &["data_owner"]).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/pii/config",
            Some(&owner),
            Some(json!({"profiles": {"redacted": {"default": {"operator": "replace"}}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = import_chats(&app, &owner, "chats").await;
    let r = app
        .post(
            &format!("/api/v1/datasets/{id}/anonymize"),
            &owner,
            json!({"profile": "redacted", "target": "chats-anon"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["created"], true);
    let anon = r.body["dataset"]["id"].as_str().unwrap().to_owned();
    let source_commit = r.body["source_commit"].as_str().unwrap().to_owned();
    let (_, body) = export_text(&app, &owner, &anon, "").await;
    assert!(
        body.contains("<EMAIL_ADDRESS>") && body.contains("<US_SSN>") && !body.contains("maria"),
        "{body}"
    );
    // The findings of the derived version: nothing left.
    let f = app
        .get(&format!("/api/v1/datasets/{anon}/pii"), &owner)
        .await;
    assert_eq!(f.body["total"], 0, "{}", f.body);
    // Lineage: the source lists the derived dataset; the derived version names its source.
    let deps = app
        .get(&format!("/api/v1/datasets/{id}/dependents"), &owner)
        .await;
    assert_eq!(deps.body["items"][0]["name"], "chats-anon", "{}", deps.body);
    let head = app
        .get(&format!("/api/v1/datasets/{anon}/commits"), &owner)
        .await;
    let sources = &head.body["items"][0]["transformation"]["sources"];
    assert_eq!(
        sources[0]["commit"],
        source_commit.as_str(),
        "{}",
        head.body
    );
    // Again from the same version: no new commit.
    let r = app
        .post(
            &format!("/api/v1/datasets/{id}/anonymize"),
            &owner,
            json!({"profile": "redacted", "target": "chats-anon"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["push"]["changed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{}",
        r.body
    );
    // Bad input: unknown profile, the source as its own target, a viewer.
    let r = app
        .post(
            &format!("/api/v1/datasets/{id}/anonymize"),
            &owner,
            json!({"profile": "nope", "target": "x-anon"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/datasets/{id}/anonymize"),
            &owner,
            json!({"profile": "redacted", "target": "chats"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let (_, _, viewer) = app.user_with("viewer", &["viewer"]).await;
    let r = app
        .post(
            &format!("/api/v1/datasets/{id}/anonymize"),
            &viewer,
            json!({"profile": "redacted", "target": "v-anon"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

crate::both_backends!(
    exports_pass_through_profiles_and_data_policies_gate_raw_pii,
    anonymized_datasets_are_derived_with_lineage,
);
