//! `llmgov audit verify` in place and offline, and several writers on one log.

use llmgov_store::Backend;
use llmgov_store::testing::TestDb;
use std::process::Command;

use super::helpers::*;

#[tokio::test]
async fn audit_verify_reports_the_first_bad_entry() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        let out = run(
            dir.path(),
            &[
                "admin",
                "create-user",
                "--email",
                &format!("u{i}@example.com"),
                "--username",
                &format!("user{i}"),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ok = run(dir.path(), &["audit", "verify"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("audit trail verified: 1 logs, 4 entries")
    );

    let url = format!("sqlite://{}", dir.path().join("llmgov.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET details = '{\"forged\":true}' WHERE sequence = 2;")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let bad = run(dir.path(), &["audit", "verify"]);
    assert!(!bad.status.success());
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(
        stdout
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .ends_with("sequence 2"),
        "{stdout}"
    );

    let missing = run(tempfile::tempdir().unwrap().path(), &["audit", "verify"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no database"));
}

#[tokio::test]
async fn audit_verify_reads_a_postgres_database() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--email",
            "pg@example.com",
            "--username",
            "pguser",
            "--database-url",
            &db.url,
        ],
    );
    succeeded(&out);
    let ok = run(dir.path(), &["audit", "verify", "--database", &db.url]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("2 entries"));
}

/// The auditor's path in the README: download an export, its checkpoint and the public key,
/// then verify offline; a flipped byte is caught and named.
#[tokio::test]
async fn an_auditor_verifies_an_export_offline() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[("LLMGOV_ADMIN_PASSWORD", "Audit-password-123")],
    );
    let c = reqwest::Client::new();
    let token = access_token(&s.base, "admin@llmgov.local", "Audit-password-123").await;
    let get = |path: &str| {
        let req = c.get(format!("{}{path}", s.base)).bearer_auth(&token);
        async move { req.send().await.unwrap().bytes().await.unwrap().to_vec() }
    };
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let export = text(get("/api/v1/audit/export?format=jsonl").await);
    let lgva = get("/api/v1/audit/export?format=archive").await;
    let checkpoint = text(get("/api/v1/audit/checkpoints/latest").await);
    let key = text(get("/api/v1/audit/checkpoints/public-key").await);
    terminate(s);
    let files = tempfile::tempdir().unwrap();
    let (e, cp, k) = (
        files.path().join("audit.jsonl"),
        files.path().join("checkpoint.json"),
        files.path().join("key.json"),
    );
    std::fs::write(&e, &export).unwrap();
    std::fs::write(&cp, &checkpoint).unwrap();
    std::fs::write(&k, &key).unwrap();
    let verify = |e: &std::path::Path| {
        Command::new(BIN)
            .args(["audit", "verify", "--export"])
            .arg(e)
            .arg("--checkpoint")
            .arg(&cp)
            .arg("--public-key")
            .arg(&k)
            .output()
            .unwrap()
    };
    let ok = verify(&e);
    assert!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("the complete log"));

    let tampered = files.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        export.replacen("\"status\":\"success\"", "\"status\":\"failure\"", 2),
    )
    .unwrap();
    let bad = verify(&tampered);
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("first bad entry: line "),
        "{out}"
    );

    // The binary archive embeds its checkpoint: the public key is all it needs.
    let archive = files.path().join("audit.lgva");
    std::fs::write(&archive, &lgva).unwrap();
    let verify_archive = |a: &std::path::Path| {
        Command::new(BIN)
            .args(["audit", "verify", "--export"])
            .arg(a)
            .arg("--public-key")
            .arg(&k)
            .output()
            .unwrap()
    };
    let ok = verify_archive(&archive);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("the complete log"), "{out}");
    let mut flipped = lgva.to_vec();
    let at = flipped.len() - 100; // inside the last record
    flipped[at] ^= 1;
    let tampered = files.path().join("tampered.lgva");
    std::fs::write(&tampered, &flipped).unwrap();
    let bad = verify_archive(&tampered);
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("first bad entry: record "),
        "{out}"
    );

    // Archive -> JSON Lines gives back the export line for line, and JSON Lines -> archive
    // gives back the archive's records.
    let back = files.path().join("back.jsonl");
    let conv = Command::new(BIN)
        .args(["audit", "convert"])
        .arg(&archive)
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        conv.status.success(),
        "{}",
        String::from_utf8_lossy(&conv.stderr)
    );
    assert_eq!(std::fs::read_to_string(&back).unwrap(), export);
    let again = files.path().join("again.lgva");
    let conv = Command::new(BIN)
        .args(["audit", "convert"])
        .arg(&e)
        .arg(&again)
        .arg("--checkpoint")
        .arg(&cp)
        .output()
        .unwrap();
    assert!(
        conv.status.success(),
        "{}",
        String::from_utf8_lossy(&conv.stderr)
    );
    // Records byte for byte; the headers embed checkpoints that may differ in time only.
    let records =
        |a: &[u8]| a[12 + u32::from_le_bytes(a[8..12].try_into().unwrap()) as usize..].to_vec();
    assert_eq!(records(&std::fs::read(&again).unwrap()), records(&lgva));
}

/// Two instances on one PostgreSQL append concurrently; the logs still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_keep_one_verifiable_log() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LLMGOV_DATABASE__URL", db.url.as_str()),
        ("LLMGOV_ADMIN_PASSWORD", "Twin-password-123"),
    ];
    let a = start(dir.path(), &env);
    let b = start(dir.path(), &env);
    let c = reqwest::Client::new();
    let token = access_token(&a.base, "admin@llmgov.local", "Twin-password-123").await;
    let mut tasks = Vec::new();
    for (n, base) in [
        a.base.clone(),
        b.base.clone(),
        a.base.clone(),
        b.base.clone(),
    ]
    .into_iter()
    .enumerate()
    {
        let (c, token) = (c.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let r = c
                    .post(format!("{base}/api/v1/workspaces"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"name": format!("w{n}-{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), reqwest::StatusCode::CREATED);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Both instances sign with the same key and agree on the log.
    let cp = |base: String| {
        let (c, token) = (c.clone(), token.clone());
        async move {
            let v: serde_json::Value = c
                .get(format!("{base}/api/v1/audit/checkpoints/latest"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    let (ca, cb) = (cp(a.base.clone()).await, cp(b.base.clone()).await);
    assert_eq!(ca["key_id"], cb["key_id"]);
    assert_eq!(ca["tree_size"], cb["tree_size"]);
    assert_eq!(ca["root_hash"], cb["root_hash"]);
    terminate(a);
    terminate(b);
    let out = run(dir.path(), &["audit", "verify", "--database", &db.url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
