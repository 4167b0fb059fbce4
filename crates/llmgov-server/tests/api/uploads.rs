//! Dataset uploads beyond a plain push: Parquet as multipart, and resumable uploads in parts.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::datasets::{chat_lines, create, export, import};
use crate::helpers::*;

/// A Parquet file of `rows` rows (the platform's own writer; the conformance suite reads
/// files of other writers).
fn parquet_rows(rows: usize) -> Vec<u8> {
    use llmgov_core::vault::parquet::ParquetEncoder;
    let lines: String = (0..rows)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"prompt\":\"question {i}\",\"score\":{}.5}}\n",
                i % 10
            )
        })
        .collect();
    let mut enc = ParquetEncoder::new(ParquetEncoder::infer(lines.as_bytes()).unwrap()).unwrap();
    let mut out = enc.feed(lines.as_bytes()).unwrap();
    out.extend(enc.finish().unwrap());
    out
}

async fn parquet_datasets_upload_as_multipart_and_export_in_any_format(app: TestApp) {
    let (_, _, sci) = app.user_with("sci", &["data_scientist"]).await;
    let r = app
        .post(
            "/api/v1/datasets",
            &sci,
            json!({"name": "scores", "format": "parquet"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let file = parquet_rows(2500);
    let boundary = "llmgov-test-boundary";
    let mut body = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"note\"\r\n\r\nignored\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"scores.parquet\"\r\ncontent-type: application/vnd.apache.parquet\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let up = app
        .client
        .post(format!(
            "{}/api/v1/datasets/{id}/import?message=table",
            app.base
        ))
        .bearer_auth(&sci)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let up = TestApp::read(up).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["stats"]["records"], 2500);

    let rec = app
        .get(&format!("/api/v1/datasets/{id}/records/7"), &sci)
        .await;
    assert_eq!(
        rec.body["data"],
        json!({"id": 7, "prompt": "question 7", "score": 7.5})
    );

    // Back as Parquet: the same rows (read with the platform's Parquet reader).
    let r = app
        .client
        .get(format!("{}/api/v1/datasets/{id}/export", app.base))
        .bearer_auth(&sci)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".parquet\"")
    );
    let bytes = r.bytes().await.unwrap();
    let f = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut &f, &bytes).unwrap();
    let mut rows = llmgov_core::vault::parquet::ParquetRows::open(f).unwrap();
    let mut n = 0;
    while let Some(lines) = rows.next_lines().unwrap() {
        n += lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
    }
    assert_eq!(n, 2500);

    let (s, h, csv) = export(&app, &sci, &id, "?format=csv").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.starts_with("id,prompt,score\n0,question 0,0.5\n"),
        "{}",
        &csv[..60]
    );
    assert_eq!(csv.lines().count(), 2501);
    let (_, _, jsonl) = export(&app, &sci, &id, "?format=jsonl").await;
    assert_eq!(jsonl.lines().count(), 2500);

    // Not Parquet: refused, nothing committed.
    let bad = import(&app, &sci, &id, "", "id,prompt\n1,a\n".into()).await;
    assert_eq!(bad.error_code(), "INVALID_PARQUET");
    let no_file = app
        .client
        .post(format!("{}/api/v1/datasets/{id}/import", app.base))
        .bearer_auth(&sci)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"note\"\r\n\r\nx\r\n--{boundary}--\r\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        TestApp::read(no_file).await.error_code(),
        "INVALID_MULTIPART"
    );
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/commits"), &sci)
            .await
            .body["total"],
        1
    );
}

async fn put_part(app: &TestApp, token: &str, path: &str, offset: u64, bytes: &[u8]) -> Resp {
    let r = app
        .client
        .put(format!("{}{path}?offset={offset}", app.base))
        .bearer_auth(token)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    TestApp::read(r).await
}

async fn resumable_uploads_take_parts_at_offsets_and_commit_once(app: TestApp) {
    let (_, _, sci) = app.user_with("sci", &["data_scientist"]).await;
    let (_, _, other) = app.user_with("other", &["data_scientist"]).await;
    let id = create(&app, &sci, "chats").await;
    let file = chat_lines(4000, |_| None).into_bytes();
    let start = app
        .post(&format!("/api/v1/datasets/{id}/uploads"), &sci, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::CREATED, "{}", start.body);
    let upload = start.body["upload_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/datasets/{id}/uploads/{upload}");

    // Parts cut mid-line; the client "crashes" after two and asks where to go on.
    let parts: Vec<&[u8]> = file.chunks(50_000).collect();
    let mut offset = 0u64;
    for part in &parts[..2] {
        let r = put_part(&app, &sci, &path, offset, part).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        offset += part.len() as u64;
        assert_eq!(r.body["received"], offset);
    }
    // A retried part is accepted again; a part at a wrong offset is refused.
    let again = put_part(&app, &sci, &path, 50_000, parts[1]).await;
    assert_eq!(
        (again.status, again.body["received"].clone()),
        (StatusCode::OK, json!(offset))
    );
    let gap = put_part(&app, &sci, &path, offset + 10, parts[2]).await;
    assert_eq!(gap.error_code(), "UPLOAD_OFFSET_MISMATCH");
    // Someone else's upload does not exist for them.
    assert_eq!(
        app.get(&path, &other).await.error_code(),
        "UPLOAD_NOT_FOUND"
    );
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/uploads/not-an-id"), &sci)
            .await
            .error_code(),
        "UPLOAD_NOT_FOUND"
    );
    let status = app.get(&path, &sci).await;
    assert_eq!(status.body["received"], offset);
    for part in &parts[2..] {
        let r = put_part(&app, &sci, &path, offset, part).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        offset += part.len() as u64;
    }
    assert_eq!(offset, file.len() as u64);
    // Nothing is committed before the commit.
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{id}/commits"), &sci)
            .await
            .body["total"],
        0
    );
    let c = app
        .post(&format!("{path}/commit?message=resumed"), &sci, json!({}))
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert_eq!(c.body["stats"]["records"], 4000);
    let (_, _, body) = export(&app, &sci, &id, "").await;
    assert!(
        body.as_bytes() == file.as_slice(),
        "the export differs from the upload"
    );
    // The parts are gone once committed.
    assert_eq!(app.get(&path, &sci).await.error_code(), "UPLOAD_NOT_FOUND");

    // An abandoned upload is deleted with its parts.
    let u2 = app
        .post(&format!("/api/v1/datasets/{id}/uploads"), &sci, json!({}))
        .await;
    let p2 = format!(
        "/api/v1/datasets/{id}/uploads/{}",
        u2.body["upload_id"].as_str().unwrap()
    );
    put_part(&app, &sci, &p2, 0, b"{\"a\":1}\n").await;
    let del = app.call(Method::DELETE, &p2, Some(&sci), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&p2, &sci).await.error_code(), "UPLOAD_NOT_FOUND");
}

crate::both_backends!(
    resumable_uploads_take_parts_at_offsets_and_commit_once,
    parquet_datasets_upload_as_multipart_and_export_in_any_format,
);
