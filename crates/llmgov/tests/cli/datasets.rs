//! The dataset commands against a running server: push, pull, resume, key providers, S3, PII.

use std::process::{Command, Stdio};

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_push_and_pull_through_the_cli_and_a_killed_push_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let env = ROOT;
    let s = start(dir.path(), &env);
    let key = token_and_key(&s.base, DATASET_SCOPES).await;

    let v1 = chat_file(&dir.path().join("v1.jsonl"), 20_000, "v1");
    let out = cli(
        &s.base,
        &key,
        &[
            "push",
            dir.path().join("v1.jsonl").to_str().unwrap(),
            "--dataset",
            "chats",
            "-m",
            "first",
        ],
    );
    succeeded(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("20000 records"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let pulled = dir.path().join("pulled.jsonl");
    let out = cli(
        &s.base,
        &key,
        &["pull", "chats", "-o", pulled.to_str().unwrap()],
    );
    succeeded(&out);
    assert_eq!(std::fs::read(&pulled).unwrap(), v1);
    let out = cli(&s.base, &key, &["log", "chats"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("first"));
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"a\":1}\nnot json\n").unwrap();
    let out = cli(
        &s.base,
        &key,
        &["push", bad.to_str().unwrap(), "--dataset", "chats"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second push, killed (SIGKILL) while its blocks are being written.
    let id = {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/datasets?name=chats", s.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["items"][0]["id"].as_str().unwrap().to_string()
    };
    let before = blocks_on_disk(dir.path());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let upload = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/api/v1/datasets/{id}/import", s.base))
            .bearer_auth(&key)
            .body(body)
            .send(),
    );
    let v2: Vec<u8> = (0..40_000)
        .flat_map(|i| {
            format!("{{\"id\":{i},\"tag\":\"v2\",\"text\":\"new text {i}\"}}\n").into_bytes()
        })
        .collect();
    // Feed part of the upload (more than a block, less than the body), wait until the
    // server has stored new blocks, then kill it mid-push.
    for c in v2.chunks(256 * 1024).take(6) {
        tx.send(Ok(c.to_vec())).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while blocks_on_disk(dir.path()) == before {
        assert!(std::time::Instant::now() < deadline, "no block was stored");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut s = s;
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    drop(tx);
    let _ = upload.await;

    // Restarted, the dataset is exactly the first version: no partial commit is visible.
    let s = start(dir.path(), &env);
    let out = cli(&s.base, &key, &["log", "chats"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("commit ")
            .count(),
        1
    );
    let out = cli(
        &s.base,
        &key,
        &["pull", "chats", "-o", pulled.to_str().unwrap()],
    );
    succeeded(&out);
    assert_eq!(std::fs::read(&pulled).unwrap(), v1);
    terminate(s);

    // fsck: every reachable object verifies; then a flipped byte is named, with exit 1.
    let ok = run(dir.path(), &["vault", "fsck", "--deep"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // Key rotation from the command line: the data still reads, status shows version 2.
    succeeded(&run(dir.path(), &["keys", "rotate"]));
    let st = run(dir.path(), &["keys", "status"]);
    succeeded(&st);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["current_version"], 2, "{st}");
    succeeded(&run(dir.path(), &["vault", "fsck", "--deep"]));
    let gc = run(dir.path(), &["vault", "gc", "--grace-secs", "0"]);
    assert!(gc.status.success());
    assert!(
        String::from_utf8_lossy(&gc.stdout).contains("deleted"),
        "{}",
        String::from_utf8_lossy(&gc.stdout)
    );
    let blocks = dir.path().join("objects").join(&id).join("blocks");
    let victim = std::fs::read_dir(&blocks)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut b = std::fs::read(&victim).unwrap();
    b[30] ^= 0xff;
    std::fs::write(&victim, b).unwrap();
    let bad = run(dir.path(), &["vault", "fsck"]);
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_keeps_its_keys_in_a_pkcs11_token_when_configured() {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run scripts/test.sh"))
    };
    let (module, token, pin) = (
        var("LLMGOV_TEST_PKCS11_MODULE"),
        var("LLMGOV_TEST_PKCS11_TOKEN"),
        var("LLMGOV_TEST_PKCS11_PIN"),
    );
    let label = format!("llmgov-cli-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    // A missing token stops the start with a clear error (the check runs `vault fsck`, which
    // opens the keys the way `serve` does, so that a regression cannot leave a server up).
    let out = Command::new(BIN)
        .args(["vault", "fsck", "--data-dir"])
        .arg(dir.path())
        .env_remove("LLMGOV_DATABASE__URL")
        .env("LLMGOV_VAULT__KEY_PROVIDER", "pkcs11")
        .env("LLMGOV_VAULT__PKCS11_MODULE", &module)
        .env("LLMGOV_VAULT__PKCS11_TOKEN", "no-such-token")
        .env("LLMGOV_VAULT__PKCS11_PIN", &pin)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no PKCS#11 token labelled \"no-such-token\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let env = [
        ("LLMGOV_ADMIN_EMAIL", "root@example.com"),
        ("LLMGOV_ADMIN_PASSWORD", "Root-password-12345"),
        ("LLMGOV_VAULT__KEY_PROVIDER", "pkcs11"),
        ("LLMGOV_VAULT__PKCS11_MODULE", module.as_str()),
        ("LLMGOV_VAULT__PKCS11_TOKEN", token.as_str()),
        ("LLMGOV_VAULT__PKCS11_PIN", pin.as_str()),
        ("LLMGOV_VAULT__PKCS11_KEY_LABEL", label.as_str()),
    ];
    let s = start(dir.path(), &env);
    let key = token_and_key(&s.base, DATASET_SCOPES).await;
    let v1 = chat_file(&dir.path().join("v1.jsonl"), 100, "hsm");
    let out = cli(
        &s.base,
        &key,
        &[
            "push",
            dir.path().join("v1.jsonl").to_str().unwrap(),
            "--dataset",
            "hsm",
        ],
    );
    succeeded(&out);
    let pulled = dir.path().join("pulled.jsonl");
    let out = cli(
        &s.base,
        &key,
        &["pull", "hsm", "-o", pulled.to_str().unwrap()],
    );
    succeeded(&out);
    assert_eq!(std::fs::read(&pulled).unwrap(), v1);
    assert!(
        !dir.path().join("vault").join("kek.json").exists(),
        "no local key file with an HSM"
    );
    terminate(s);
}

/// `[storage] backend = "s3"`: dataset bytes go to the S3 server (none under the data
/// directory), and files convert between formats on the way in and out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_live_in_s3_when_configured_and_convert_between_formats() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = llmgov_store::testing::s3_config();
    let prefix = s3.prefix.clone().unwrap();
    let storage = [
        ("LLMGOV_STORAGE__BACKEND", "s3"),
        ("LLMGOV_STORAGE__ENDPOINT", s3.endpoint.as_deref().unwrap()),
        ("LLMGOV_STORAGE__BUCKET", s3.bucket.as_str()),
        ("LLMGOV_STORAGE__PREFIX", prefix.as_str()),
        (
            "LLMGOV_STORAGE__ACCESS_KEY_ID",
            s3.access_key_id.as_deref().unwrap(),
        ),
        (
            "LLMGOV_STORAGE__SECRET_ACCESS_KEY",
            s3.secret_access_key.as_deref().unwrap(),
        ),
    ];
    let mut env = ROOT.to_vec();
    env.extend(storage);
    let s = start(dir.path(), &env);
    let key = token_and_key(&s.base, DATASET_SCOPES).await;
    let csv = dir.path().join("rows.csv");
    let mut rows = String::from("id,prompt,label\n");
    for i in 0..500 {
        rows.push_str(&format!("{i},\"question {i}, with a comma\",ok\n"));
    }
    std::fs::write(&csv, &rows).unwrap();
    succeeded(&cli(
        &s.base,
        &key,
        &["push", csv.to_str().unwrap(), "--dataset", "rows"],
    ));
    assert_eq!(blocks_on_disk(dir.path()), 0, "no object on local disk");

    // CSV in, Parquet out, pushed as a Parquet dataset, CSV out again: the same rows.
    let pq = dir.path().join("rows.parquet");
    succeeded(&cli(
        &s.base,
        &key,
        &["pull", "rows", "-o", pq.to_str().unwrap()],
    ));
    assert_eq!(&std::fs::read(&pq).unwrap()[..4], b"PAR1");
    succeeded(&cli(
        &s.base,
        &key,
        &[
            "push",
            pq.to_str().unwrap(),
            "--dataset",
            "table",
            "--source",
            "rows@main",
        ],
    ));
    let back = dir.path().join("back.csv");
    succeeded(&cli(
        &s.base,
        &key,
        &["pull", "table", "-o", back.to_str().unwrap()],
    ));
    assert!(
        std::fs::read_to_string(&back).unwrap() == rows,
        "the CSV came back different"
    );
    let jsonl = dir.path().join("rows.out");
    succeeded(&cli(
        &s.base,
        &key,
        &[
            "pull",
            "table",
            "--format",
            "jsonl",
            "-o",
            jsonl.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        r#"{"id":"0","prompt":"question 0, with a comma","label":"ok"}"#
    );
    // The source cannot be deleted while "table" was made from it, unless forced.
    let key = token_and_key(&s.base, &["datasets:read", "datasets:delete"]).await;
    let refused = cli(&s.base, &key, &["delete", "rows"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("table"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    succeeded(&cli(&s.base, &key, &["delete", "rows", "--force"]));
    terminate(s);

    // fsck reads the same bucket.
    let out = Command::new(BIN)
        .args(["vault", "fsck", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env_remove("LLMGOV_DATABASE__URL")
        .envs(storage)
        .output()
        .unwrap();
    succeeded(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("checked 1 datasets"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A push larger than a part goes as a resumable upload: interrupted by the server going
/// away, the same command run again sends only what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_push_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("upload-state");
    let env = ROOT;
    let s = start(dir.path(), &env);
    let key = token_and_key(&s.base, DATASET_SCOPES).await;
    let file = dir.path().join("big.jsonl");
    // Many parts, so that the client is far from done when the server goes away.
    let body = chat_file(&file, 250_000, "big");
    assert!(body.len() > 20 << 20, "{} bytes", body.len());
    let push = |base: &str| {
        Command::new(BIN)
            .args(["dataset", "push"])
            .arg(&file)
            .args(["--dataset", "big", "--part-mib", "1", "-m", "resumed"])
            .env("LLMGOV_SERVER", base)
            .env("LLMGOV_API_KEY", &key)
            .env("LLMGOV_UPLOAD_STATE_DIR", &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = push(&s.base);
    // Once the server holds a few parts, it goes away (SIGKILL) under the client.
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(std::time::Instant::now() < deadline, "no part arrived");
        let upload = std::fs::read_dir(&state)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        if let Some(u) = upload {
            let st: serde_json::Value = http
                .get(format!(
                    "{}/api/v1/datasets/{}/uploads/{}",
                    s.base,
                    u["dataset_id"].as_str().unwrap(),
                    u["upload_id"].as_str().unwrap()
                ))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if st["received"].as_u64().unwrap_or(0) >= 2 << 20 {
                // Hold the client while its server is killed.
                Command::new("kill")
                    .args(["-STOP", &first.id().to_string()])
                    .status()
                    .unwrap();
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut s = s;
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    Command::new("kill")
        .args(["-CONT", &first.id().to_string()])
        .status()
        .unwrap();
    let out = first.wait_with_output().unwrap();
    assert!(!out.status.success(), "the push cannot have finished");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run the same command again"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = start(dir.path(), &env);
    let out = push(&s.base).wait_with_output().unwrap();
    succeeded(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let at: u64 = err
        .split("resuming upload ")
        .nth(1)
        .and_then(|r| r.split(" at ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not resumed: {err}"));
    assert!(at >= 2 << 20, "resumed at {at}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("250000 records"));
    let pulled = dir.path().join("pulled.jsonl");
    succeeded(&cli(
        &s.base,
        &key,
        &["pull", "big", "-o", pulled.to_str().unwrap()],
    ));
    assert!(std::fs::read(&pulled).unwrap() == body, "the pull differs");
    // The state is gone once committed.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
    terminate(s);
}

/// The vault's PII commands: findings of a version, an anonymized pull, and an anonymized
/// derived dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_show_pii_and_anonymize_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &ROOT);
    let mut scopes = DATASET_SCOPES.to_vec();
    scopes.push("pii:execute");
    let key = token_and_key(&s.base, &scopes).await;
    // The workspace's profile, set by the root user through the API.
    let http = reqwest::Client::new();
    let root = access_token(&s.base, "root@example.com", "Root-password-12345").await;
    let r = http
        .put(format!("{}/api/v1/pii/config", s.base))
        .bearer_auth(&root)
        .json(&serde_json::json!({"profiles": {"share": {"default": {"operator": "replace"}}}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let file = dir.path().join("chats.jsonl");
    std::fs::write(
        &file,
        "{\"user\":\"ann@corp.io\",\"text\":\"my ssn is 123-45-6789\"}\n{\"user\":\"guest\",\"text\":\"hello\"}\n",
    )
    .unwrap();
    succeeded(&cli(
        &s.base,
        &key,
        &["push", file.to_str().unwrap(), "--dataset", "chats"],
    ));
    let out = cli(&s.base, &key, &["pii", "chats"]);
    succeeded(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 findings in 1 of 2 records"), "{text}");
    assert!(text.contains("field user: EMAIL_ADDRESS 1"), "{text}");

    let pulled = dir.path().join("safe.jsonl");
    succeeded(&cli(
        &s.base,
        &key,
        &[
            "pull",
            "chats",
            "-o",
            pulled.to_str().unwrap(),
            "--profile",
            "share",
        ],
    ));
    let body = std::fs::read_to_string(&pulled).unwrap();
    assert!(
        body.contains("<EMAIL_ADDRESS>") && body.contains("<US_SSN>"),
        "{body}"
    );
    assert!(!body.contains("ann@corp.io"), "{body}");

    let out = cli(
        &s.base,
        &key,
        &[
            "anonymize",
            "chats",
            "--profile",
            "share",
            "--target",
            "chats-safe",
        ],
    );
    succeeded(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(new dataset)"));
    let out = cli(&s.base, &key, &["pii", "chats-safe", "--json"]);
    succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"], 0, "{report}");
    // An unknown profile is a clear error.
    let out = cli(
        &s.base,
        &key,
        &[
            "pull",
            "chats",
            "-o",
            pulled.to_str().unwrap(),
            "--profile",
            "nope",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    terminate(s);
}
