//! The Data Vault over HTTP: push, pull, history, refs, permissions and bad input.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) fn chat_lines(n: usize, edit: impl Fn(usize) -> Option<String>) -> String {
    (0..n)
        .map(|i| {
            edit(i).unwrap_or_else(|| {
                format!(
                    r#"{{"id":{i},"messages":[{{"role":"user","content":"hello number {i}"}}]}}"#
                )
            }) + "\n"
        })
        .collect()
}

pub(crate) async fn import(
    app: &TestApp,
    token: &str,
    id: &str,
    query: &str,
    body: String,
) -> Resp {
    let r = app
        .client
        .post(format!("{}/api/v1/datasets/{id}/import{query}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        // A refused upload is answered before its body is read, and the server then closes
        // the connection: never hand it back to the pool for the next request.
        .header("connection", "close")
        .body(body)
        .send()
        .await
        .unwrap();
    TestApp::read(r).await
}

pub(crate) async fn export(
    app: &TestApp,
    token: &str,
    id: &str,
    query: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = app
        .client
        .get(format!("{}/api/v1/datasets/{id}/export{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    (s, h, r.text().await.unwrap())
}

pub(crate) async fn create(app: &TestApp, token: &str, name: &str) -> String {
    let r = app
        .post(
            "/api/v1/datasets",
            token,
            json!({"name": name, "description": "chats", "tags": ["support"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn a_data_scientist_pushes_versions_and_pulls_them_back(app: TestApp) {
    let (_, _, sci) = app.user_with("sci", &["data_scientist"]).await;
    let (_, _, viewer) = app.user_with("viewer", &["viewer"]).await;
    let id = create(&app, &sci, "support-chats").await;

    // Larger than the server's JSON body limit: uploads are streamed, not buffered.
    let v1 = chat_lines(3000, |_| None);
    assert!(v1.len() > 64 * 1024);
    let r1 = import(&app, &sci, &id, "?message=first", v1.clone()).await;
    assert_eq!(r1.status, StatusCode::CREATED, "{}", r1.body);
    assert_eq!(r1.body["stats"]["records"], 3000);
    assert_eq!(r1.body["commit"]["message"], "first");
    let c1 = r1.body["commit"]["id"].as_str().unwrap().to_string();

    let v2 = chat_lines(3000, |i| {
        (i % 50 == 3).then(|| format!(r#"{{"id":{i},"edited":true}}"#))
    });
    let r2 = import(&app, &sci, &id, "?message=second", v2.clone()).await;
    assert_eq!(r2.status, StatusCode::CREATED, "{}", r2.body);
    assert_eq!(r2.body["stats"]["reused_records"], 2940);
    assert!(
        r2.body["stats"]["new_bytes"].as_u64().unwrap() * 5
            < r1.body["stats"]["new_bytes"].as_u64().unwrap(),
        "{}",
        r2.body
    );
    // The same bytes again: no new commit.
    let again = import(&app, &sci, &id, "", v2.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["changed"], false);

    let diff = app
        .get(
            &format!("/api/v1/datasets/{id}/diff?from={c1}&to=main&limit=10"),
            &viewer,
        )
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    assert_eq!(
        diff.body["summary"],
        json!({"added": 0, "removed": 0, "changed": 60, "unchanged": 2940})
    );
    assert_eq!(diff.body["schema"]["added_fields"], json!(["edited"]));
    assert_eq!(diff.body["total"], 60);
    assert_eq!(
        diff.body["items"][0],
        json!({"op": "changed", "from_index": 3, "to_index": 3,
        "from_record_id": diff.body["items"][0]["from_record_id"], "to_record_id": diff.body["items"][0]["to_record_id"]})
    );
    let same = app
        .get(
            &format!("/api/v1/datasets/{id}/diff?from=main&to=main"),
            &viewer,
        )
        .await;
    assert_eq!(same.body["total"], 0);
    assert_eq!(
        app.get(
            &format!("/api/v1/datasets/{id}/diff?from=main&to=main&op=moved"),
            &viewer
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let (s, h, body) = export(&app, &sci, &id, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, v2);
    assert_eq!(h["content-length"].to_str().unwrap(), v2.len().to_string());
    assert_eq!(
        h["x-llmgov-commit"],
        r2.body["commit"]["id"].as_str().unwrap()
    );
    let (_, _, old) = export(&app, &sci, &id, &format!("?ref={}", &c1[..12])).await;
    assert_eq!(old, v1);

    let page = app
        .get(
            &format!("/api/v1/datasets/{id}/records?page=2&limit=50"),
            &sci,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["total"], 3000);
    assert_eq!(page.body["items"][3]["index"], 53);
    assert_eq!(
        page.body["items"][3]["data"],
        json!({"id": 53, "edited": true})
    );
    // Filtered: the edited records (every 50th from 3), second page of 10.
    let edited = app
        .get(
            &format!("/api/v1/datasets/{id}/records?filter=edited=true&page=2&limit=10"),
            &sci,
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["total"], 60);
    assert_eq!(edited.body["items"][0]["index"], 503);
    let hello = app
        .get(
            &format!(
                "/api/v1/datasets/{id}/records?ref={c1}&filter=messages.*.content~NUMBER%2029,id%3C300"
            ),
            &sci,
        )
        .await;
    let ids: Vec<i64> = hello.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![29, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299]
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/datasets/{id}/records?filter=id%3Eten"),
            &sci
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let one = app
        .get(&format!("/api/v1/datasets/{id}/records/7?ref={c1}"), &sci)
        .await;
    assert_eq!(one.body["data"]["id"], 7);
    assert_eq!(one.body["data"]["messages"][0]["content"], "hello number 7");

    let log = app
        .get(&format!("/api/v1/datasets/{id}/commits"), &viewer)
        .await;
    assert_eq!(log.status, StatusCode::OK);
    assert_eq!(log.body["total"], 2);
    assert_eq!(log.body["items"][1]["id"], c1.as_str());
    let ds = app.get(&format!("/api/v1/datasets/{id}"), &viewer).await;
    assert_eq!(ds.body["schema"]["fields"]["edited"], "boolean");

    // Lineage: the second version came from the first, by an import.
    let up = app
        .get(&format!("/api/v1/datasets/{id}/lineage"), &viewer)
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(
        up.body["edges"][0],
        json!({"from": c1, "to": r2.body["commit"]["id"]})
    );
    assert_eq!(up.body["nodes"][1]["transformation"]["type"], "import");
    let down = app
        .get(
            &format!("/api/v1/datasets/{id}/lineage?ref={c1}&direction=downstream&depth=1"),
            &viewer,
        )
        .await;
    assert_eq!(down.body["nodes"][1]["commit"], r2.body["commit"]["id"]);
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/lineage?depth=0"), &viewer)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/datasets/{id}/lineage?direction=sideways"),
            &viewer
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Branches and tags.
    let b = app
        .post(
            &format!("/api/v1/datasets/{id}/branches"),
            &sci,
            json!({"name": "feature/clean", "from": c1}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let t = app
        .post(
            &format!("/api/v1/datasets/{id}/tags"),
            &sci,
            json!({"name": "v1", "from": "main"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED);
    let appended = app
        .post(
            &format!("/api/v1/datasets/{id}/records"),
            &sci,
            json!({"records": [{"id": "new"}], "branch": "feature/clean"}),
        )
        .await;
    assert_eq!(appended.status, StatusCode::CREATED, "{}", appended.body);
    assert_eq!(appended.body["stats"]["records"], 3001);
    let (_, _, feature) = export(&app, &sci, &id, "?ref=feature/clean").await;
    assert_eq!(feature, format!("{v1}{{\"id\":\"new\"}}\n"));
    let branches = app
        .get(&format!("/api/v1/datasets/{id}/branches"), &viewer)
        .await;
    let names: Vec<&str> = branches
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["feature/clean", "main"]);
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/datasets/{id}/branches/feature%2Fclean"),
            Some(&sci),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);

    // Viewers see metadata only; every read of records is audited.
    for path in [
        format!("/api/v1/datasets/{id}/records"),
        format!("/api/v1/datasets/{id}/export"),
        format!("/api/v1/datasets/{id}/records/0"),
    ] {
        let r = app.get(&path, &viewer).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        import(&app, &viewer, &id, "", v1.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let list = app.get("/api/v1/datasets?tag=support", &viewer).await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(
        app.get("/api/v1/datasets?tag=other", &viewer).await.body["total"],
        0
    );
    let exports = app.audit_events("datasets.export").await;
    assert_eq!(exports.len(), 3);
    assert!(
        exports
            .iter()
            .any(|e| e["details"]["commit"] == c1.as_str())
    );
    assert!(!app.audit_events("datasets.read").await.is_empty());
    assert_eq!(app.audit_events("datasets.commit").await.len(), 3);
}

async fn protected_branches_and_bad_input_get_clear_errors(app: TestApp) {
    let (_, _, owner) = app.user_with("owner", &["data_owner"]).await;
    let (_, _, sci) = app.user_with("sci", &["data_scientist"]).await;
    for (body, field) in [
        (json!({"name": "../etc/passwd"}), "name"),
        (json!({"name": "a\u{0}b"}), "name"),
        (json!({"name": "ok", "format": "xml"}), ""),
        (json!({"name": "ok", "metadata": [1]}), "metadata"),
    ] {
        let r = app.post("/api/v1/datasets", &owner, body.clone()).await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
        if !field.is_empty() {
            assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.body);
        }
    }
    let id = create(&app, &owner, "chats").await;
    assert_eq!(
        app.post("/api/v1/datasets", &owner, json!({"name": "chats"}))
            .await
            .error_code(),
        "DATASET_EXISTS"
    );

    let bad = import(
        &app,
        &owner,
        &id,
        "",
        "{\"a\":1}\nnot json\n{\"b\":\n".into(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.error_code(), "INVALID_RECORDS");
    let lines: Vec<Value> = bad.body["error"]["details"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].clone())
        .collect();
    assert_eq!(lines, vec![json!(2), json!(3)]);
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/commits"), &owner)
            .await
            .body["total"],
        0
    );
    let skipped = import(
        &app,
        &owner,
        &id,
        "?on_error=skip",
        "{\"a\":1}\nnot json\n".into(),
    )
    .await;
    assert_eq!(skipped.status, StatusCode::CREATED);
    assert_eq!(skipped.body["skipped"][0]["line"], 2);
    assert_eq!(
        import(&app, &owner, &id, "?on_error=maybe", "{}\n".into())
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        import(&app, &owner, &id, "?bogus=1", "{}\n".into())
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        import(&app, &owner, &id, "?branch=nope", "{}\n".into())
            .await
            .error_code(),
        "REF_NOT_FOUND"
    );

    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/records?ref=nope"), &owner)
            .await
            .error_code(),
        "REF_NOT_FOUND"
    );
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/records/99"), &owner)
            .await
            .error_code(),
        "RECORD_NOT_FOUND"
    );
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/records/x"), &owner)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/api/v1/datasets/not-a-uuid", &owner).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/datasets/{}", uuid::Uuid::new_v4()),
            &owner
        )
        .await
        .error_code(),
        "DATASET_NOT_FOUND"
    );
    assert_eq!(
        export(&app, &owner, &id, "?format=xml").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A protected branch takes pushes from data owners only.
    let p = app
        .call(
            Method::PATCH,
            &format!("/api/v1/datasets/{id}/branches/main"),
            Some(&sci),
            Some(json!({"protected": true})),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = app
        .call(
            Method::PATCH,
            &format!("/api/v1/datasets/{id}/branches/main"),
            Some(&owner),
            Some(json!({"protected": true})),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(
        import(&app, &sci, &id, "", "{\"x\":1}\n".into())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        import(&app, &owner, &id, "", "{\"x\":1}\n".into())
            .await
            .status,
        StatusCode::CREATED
    );
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/datasets/{id}/branches/main"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(del.error_code(), "DEFAULT_BRANCH");
    let dup = app
        .post(
            &format!("/api/v1/datasets/{id}/branches"),
            &owner,
            json!({"name": "main"}),
        )
        .await;
    assert_eq!(dup.error_code(), "REF_EXISTS");
    let bad_ref = app
        .post(
            &format!("/api/v1/datasets/{id}/branches"),
            &owner,
            json!({"name": "../x"}),
        )
        .await;
    assert_eq!(bad_ref.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A CSV dataset round-trips through import and export.
    let csv = app
        .post(
            "/api/v1/datasets",
            &owner,
            json!({"name": "rows", "format": "csv"}),
        )
        .await;
    assert_eq!(csv.status, StatusCode::CREATED, "{}", csv.body);
    let cid = csv.body["id"].as_str().unwrap().to_string();
    let table = "id,text\n1,\"a, b\"\n2,plain\n".to_string();
    assert_eq!(
        import(&app, &owner, &cid, "", table.clone()).await.status,
        StatusCode::CREATED
    );
    let (s, h, body) = export(&app, &owner, &cid, "?format=csv").await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(body, table);
    let row = app
        .get(&format!("/api/v1/datasets/{cid}/records/0"), &owner)
        .await;
    assert_eq!(row.body["data"], json!({"id": "1", "text": "a, b"}));
    let ragged = import(&app, &owner, &cid, "", "id,text\n1\n".into()).await;
    assert_eq!(ragged.error_code(), "INVALID_RECORDS");

    // Merges over HTTP: separate changes combine; the same record changed twice is a 409.
    let b = app
        .post(
            &format!("/api/v1/datasets/{id}/branches"),
            &owner,
            json!({"name": "dev"}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    assert_eq!(
        import(
            &app,
            &owner,
            &id,
            "?branch=dev",
            "{\"a\":1}\n{\"x\":2}\n".into()
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        import(&app, &owner, &id, "", "{\"a\":1}\n{\"x\":3}\n".into())
            .await
            .status,
        StatusCode::CREATED
    );
    let m = app
        .post(
            &format!("/api/v1/datasets/{id}/merge"),
            &owner,
            json!({"source": "dev"}),
        )
        .await;
    assert_eq!(m.status, StatusCode::CONFLICT, "{}", m.body);
    assert_eq!(m.error_code(), "MERGE_CONFLICT");
    assert_eq!(m.body["error"]["details"]["count"], 1);
    let r = app
        .post(
            &format!("/api/v1/datasets/{id}/revert"),
            &owner,
            json!({"commit": "nope"}),
        )
        .await;
    assert_eq!(r.error_code(), "REF_NOT_FOUND");

    // Key rotation: super admins only; data stays readable.
    assert_eq!(
        app.call(Method::POST, "/api/v1/keys/rotate", Some(&owner), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let rot = app
        .call(
            Method::POST,
            "/api/v1/keys/rotate",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{}", rot.body);
    assert!(rot.body["rewrapped"].as_u64().unwrap() >= 1);
    let st = app.get("/api/v1/keys/status", &app.admin_token).await;
    assert_eq!(st.body["current_version"], rot.body["current_version"]);
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/records/0"), &owner)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.audit_events("keys.rotate").await.len(), 1);
    let cur = rot.body["current_version"].as_u64().unwrap();
    let trim = app
        .post(
            "/api/v1/keys/trim",
            &app.admin_token,
            json!({"min_version": cur}),
        )
        .await;
    assert_eq!(trim.status, StatusCode::OK, "{}", trim.body);
    assert_eq!(trim.body["removed"], json!([cur - 1]));
    let too_far = app
        .post(
            "/api/v1/keys/trim",
            &app.admin_token,
            json!({"min_version": cur + 1}),
        )
        .await;
    assert_eq!(too_far.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/records/0"), &owner)
            .await
            .status,
        StatusCode::OK
    );

    // Deleting is for owners; the dataset and its bytes are gone.
    let objects = vault_dir(&app.db.url).join("objects").join(&id);
    assert!(objects.exists());
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/datasets/{id}"),
            Some(&sci),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/datasets/{id}"),
            Some(&owner),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}"), &owner)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        std::fs::read_dir(&objects)
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    );
}

crate::both_backends!(
    a_data_scientist_pushes_versions_and_pulls_them_back,
    protected_branches_and_bad_input_get_clear_errors,
);
