//! The real binary, as a newcomer and an operator use it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use llmgov_store::Backend;
use llmgov_store::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_llmgov");

struct Server {
    child: Child,
    base: String,
    stdout_lines: Vec<String>,
}

/// Starts `llmgov serve` on a free port and reads stdout until it says where it listens.
fn start(data_dir: &std::path::Path, envs: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .current_dir(data_dir)
        .env_remove("LLMGOV_DATABASE__URL")
        .env_remove("LLMGOV_ADMIN_EMAIL")
        .env_remove("LLMGOV_ADMIN_PASSWORD")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn llmgov");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "llmgov exited before listening: {lines:?}"
        );
        let done = line.contains("listening on http://");
        lines.push(line.trim_end().to_string());
        if done {
            break;
        }
    }
    let last = lines.last().unwrap();
    let base = last
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    Server {
        child,
        base,
        stdout_lines: lines,
    }
}

fn terminate(mut s: Server) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .unwrap();
    s.child.wait().unwrap()
}

/// Starts `llmgov serve --demo` and reads stdout until the demo data is ready; returns the
/// server and the demo user's password.
fn start_demo(data_dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .current_dir(data_dir)
        .env_remove("LLMGOV_DATABASE__URL")
        .env("LLMGOV_ADMIN_PASSWORD", "Demo-admin-password-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn llmgov");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines: Vec<String> = Vec::new();
    let mut next = |lines: &mut Vec<String>| {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "llmgov exited before the demo was ready: {lines:?}"
        );
        lines.push(line.trim_end().to_string());
        line
    };
    while !next(&mut lines).contains("Demo data is ready") {}
    let base = lines
        .last()
        .unwrap()
        .split("Sign in at ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let creds = next(&mut lines);
    let password = creds.trim().rsplit(' ').next().unwrap().to_string();
    std::thread::spawn(move || for _ in reader.lines() {});
    (
        Server {
            child,
            base,
            stdout_lines: lines,
        },
        password,
    )
}

async fn login(base: &str, email: &str, password: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn first_start_prints_a_password_that_logs_in_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]);
    let pw_line = s
        .stdout_lines
        .iter()
        .find(|l| l.contains("Generated password"))
        .expect("password printed");
    let password = pw_line.rsplit(' ').next().unwrap().to_string();
    assert!(
        s.stdout_lines
            .iter()
            .any(|l| l.contains("admin@llmgov.local"))
    );
    assert_eq!(
        login(&s.base, "admin@llmgov.local", &password).await,
        reqwest::StatusCode::OK
    );
    let ready: serde_json::Value = reqwest::get(format!("{}/health/ready", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "healthy");
    assert!(
        dir.path().join("llmgov.db").exists(),
        "embedded database in the data directory"
    );
    assert!(terminate(s).success(), "graceful shutdown exits 0");

    // A second start reuses the database and prints no new password.
    let again = start(dir.path(), &[]);
    assert!(
        !again
            .stdout_lines
            .iter()
            .any(|l| l.contains("Generated password"))
    );
    assert_eq!(
        login(&again.base, "admin@llmgov.local", &password).await,
        reqwest::StatusCode::OK
    );
    terminate(again);
}

#[tokio::test]
async fn admin_credentials_and_database_come_from_the_environment() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            ("LLMGOV_ADMIN_EMAIL", "ops@example.com"),
            ("LLMGOV_ADMIN_PASSWORD", "Ops-password-12345"),
            ("LLMGOV_DATABASE__URL", &db.url),
        ],
    );
    assert!(
        !s.stdout_lines
            .iter()
            .any(|l| l.contains("Generated password"))
    );
    assert_eq!(
        login(&s.base, "ops@example.com", "Ops-password-12345").await,
        reqwest::StatusCode::OK
    );
    let ready: serde_json::Value = reqwest::get(format!("{}/health/ready", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"][0]["name"], "database (postgres)");
    assert!(
        !dir.path().join("llmgov.db").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
    terminate(s);
}

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .current_dir(dir)
        .env_remove("LLMGOV_DATABASE__URL")
        .env("LLMGOV_ADMIN_PASSWORD", "Root-password-12345")
        .output()
        .unwrap()
}

#[tokio::test]
async fn operator_commands_create_users_and_reset_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["migrate"]);
    succeeded(&out);
    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--email",
            "ana@example.com",
            "--username",
            "ana",
            "--role",
            "auditor",
        ],
    );
    succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let generated = stdout
        .lines()
        .find(|l| l.starts_with("Generated password"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let out = run(
        dir.path(),
        &[
            "admin",
            "reset-password",
            "--email",
            "ana@example.com",
            "--password",
            "Reset-password-999",
        ],
    );
    succeeded(&out);
    let bad = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--email",
            "not-an-email",
            "--username",
            "x1x",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("email"));

    let s = start(
        dir.path(),
        &[("LLMGOV_ADMIN_PASSWORD", "Root-password-12345")],
    );
    assert_eq!(
        login(&s.base, "ana@example.com", &generated).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&s.base, "ana@example.com", "Reset-password-999").await,
        reqwest::StatusCode::OK
    );
    terminate(s);
}

#[test]
fn version_and_bad_configuration() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("llmgov "));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("llmgov.toml"), "[server]\nlisen = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["migrate"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));
    let out = Command::new(BIN)
        .args(["migrate", "--database-url", "mysql://x"])
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

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
    let login: serde_json::Value = c
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&serde_json::json!({"email": "admin@llmgov.local", "password": "Audit-password-123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let get = |path: &str| c.get(format!("{}{path}", s.base)).bearer_auth(token).send();
    let export = get("/api/v1/audit/export?format=jsonl")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lgva = get("/api/v1/audit/export?format=archive")
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let checkpoint = get("/api/v1/audit/checkpoints/latest")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = get("/api/v1/audit/checkpoints/public-key")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let token = {
        let r: serde_json::Value = c
            .post(format!("{}/api/v1/auth/login", a.base))
            .json(&serde_json::json!({"email": "admin@llmgov.local", "password": "Twin-password-123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_string()
    };
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

/// The first super admin, from the environment.
const ROOT: [(&str, &str); 2] = [
    ("LLMGOV_ADMIN_EMAIL", "root@example.com"),
    ("LLMGOV_ADMIN_PASSWORD", "Root-password-12345"),
];

/// What a data scientist's key for the dataset commands holds.
const DATASET_SCOPES: &[&str] = &[
    "datasets:create",
    "datasets:read",
    "datasets:update",
    "datasets:execute",
];

/// Asserts a command succeeded, showing its stderr otherwise.
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn token_and_key(base: &str, scopes: &[&str]) -> String {
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "root@example.com", "password": "Root-password-12345"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let key: serde_json::Value = http
        .post(format!("{base}/api/v1/api-keys"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "cli", "scopes": scopes}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    key["key"].as_str().expect("api key").to_string()
}

fn cli(base: &str, key: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["dataset"])
        .args(args)
        .env("LLMGOV_SERVER", base)
        .env("LLMGOV_API_KEY", key)
        .output()
        .unwrap()
}

fn chat_file(path: &std::path::Path, n: usize, tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!("{{\"id\":{i},\"tag\":\"{tag}\",\"messages\":[{{\"role\":\"user\",\"content\":\"message {i} of a conversation\"}}]}}\n")
                .as_bytes(),
        );
    }
    std::fs::write(path, &out).unwrap();
    out
}

fn blocks_on_disk(dir: &std::path::Path) -> usize {
    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.join("objects"))
}

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

#[test]
fn init_prepares_a_deployment_without_starting_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["init"]);
    succeeded(&out);
    assert!(dir.path().join("vault").join("kek.json").exists());
    assert!(dir.path().join("llmgov.db").exists());
    // Idempotent: a second run opens what the first made.
    succeeded(&run(dir.path(), &["init"]));
    let st = run(dir.path(), &["keys", "status"]);
    succeeded(&st);
    assert!(String::from_utf8_lossy(&st.stdout).contains("\"local\""));
}

/// `llmgov pii scan` reads `{"id","text"}` records and writes the scoring tool's format.
#[test]
fn pii_scan_writes_entities_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":\"a\",\"text\":\"é mail ann@example.com or call 415-555-2671\"}\n\n{\"id\":\"b\",\"text\":\"nothing here\"}\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let r = Command::new(BIN)
        .args(["pii", "scan"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&r);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "a");
    let e = &lines[0]["entities"];
    assert_eq!(e[0]["type"], "EMAIL_ADDRESS");
    assert_eq!(
        (e[0]["start"].as_u64(), e[0]["end"].as_u64()),
        (Some(7), Some(22))
    );
    assert_eq!(e[1]["type"], "PHONE_NUMBER");
    assert_eq!(lines[1]["entities"], serde_json::json!([]));
    // A record without text is a clear error naming its line.
    std::fs::write(&input, "{\"id\":\"x\"}\n").unwrap();
    let r = Command::new(BIN)
        .args(["pii", "scan"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("line 1"));
}

/// `llmgov pii anonymize`: operators per type, field rules, a key file for the keyed
/// operators, a token file for `tokenize`, and bad lines reported without stopping.
#[test]
fn pii_anonymize_applies_operators_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut body = b"{\"id\":1,\"text\":\"Mail ann@corp.io, card 4111 1111 1111 1111, ssn 123-45-6789\"}\n{\"user\":{\"email\":\"bob@corp.io\",\"note\":\"call 415-555-2671\"}}\n".to_vec();
    body.extend_from_slice(b"\xff\xfe not utf-8\n{\"id\":3,\"text\":\"ann@corp.io\"}\n");
    std::fs::write(&input, body).unwrap();
    let (key, tokens, out) = (
        dir.path().join("pii.key"),
        dir.path().join("tokens.jsonl"),
        dir.path().join("out.jsonl"),
    );
    let anonymize = |extra: &[&str]| {
        Command::new(BIN)
            .args(["pii", "anonymize"])
            .arg(&input)
            .args([
                "--operator",
                "EMAIL_ADDRESS=tokenize",
                "--operator",
                "CREDIT_CARD=mask:4",
            ])
            .args(["--field", "user.email=hash", "--key-file"])
            .arg(&key)
            .arg("--token-file")
            .arg(&tokens)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let r = anonymize(&[]);
    // The undecodable line is named and skipped; the others are written.
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("line 3: not UTF-8"), "{err}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let text = lines[0]["text"].as_str().unwrap();
    assert!(text.starts_with("Mail tok_"), "{text}");
    assert!(
        text.contains("card **** **** **** 1111, ssn <US_SSN>"),
        "{text}"
    );
    assert_eq!(lines[0]["items"].as_array().unwrap().len(), 3);
    assert!(
        lines[1]["user"]["email"]
            .as_str()
            .unwrap()
            .starts_with("hash_")
    );
    assert_eq!(lines[1]["user"]["note"], "call <PHONE_NUMBER>");
    // The same value has the same token; the token file holds it once, privately.
    let token = text.split(',').next().unwrap().trim_start_matches("Mail ");
    assert_eq!(lines[2]["text"], token);
    let vault = std::fs::read_to_string(&tokens).unwrap();
    assert_eq!(vault.lines().count(), 1);
    assert!(vault.contains("ann@corp.io") && vault.contains(token));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [&key, &tokens] {
            assert_eq!(
                std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
    // The key file is reused: hashes stay the same from one run to the next.
    let first_hash = lines[1]["user"]["email"].clone();
    anonymize(&[]);
    let again: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again["user"]["email"], first_hash);

    // Keyed operators without a key, tokenize without a token file, unknown operators.
    for args in [
        vec!["--operator", "EMAIL_ADDRESS=hash"],
        vec!["--operator", "EMAIL_ADDRESS=tokenize"],
        vec!["--operator", "EMAIL_ADDRESS=shred"],
        vec!["--operator", "lower=redact"],
    ] {
        let r = Command::new(BIN)
            .args(["pii", "anonymize"])
            .arg(&input)
            .args(&args)
            .output()
            .unwrap();
        assert!(!r.status.success(), "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: nothing is written");
    }
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
    let login: serde_json::Value = http
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&serde_json::json!({"email": "root@example.com", "password": "Root-password-12345"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .put(format!("{}/api/v1/pii/config", s.base))
        .bearer_auth(login["access_token"].as_str().unwrap())
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

/// `serve --demo` fills the workspace through the API; a start after a run that stopped
/// half-way (here: the demo dataset, which is made last, was deleted) makes what is missing
/// without duplicating what exists.
#[tokio::test]
async fn the_demo_fills_a_workspace_and_a_second_run_makes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let token = |base: String, password: String| {
        let c = c.clone();
        async move {
            let r: serde_json::Value = c
                .post(format!("{base}/api/v1/auth/login"))
                .json(&serde_json::json!({"email": "demo@llmgov.local", "password": password}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_string()
        }
    };
    let get = |base: &str, token: &str, path: &str| {
        let req = c.get(format!("{base}{path}")).bearer_auth(token);
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let rules = |v: serde_json::Value| {
        let mut names: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };

    let (s, password) = start_demo(dir.path());
    let t = token(s.base.clone(), password).await;
    let first: serde_json::Value = get(&s.base, &t, "/api/v1/metrics/alerts?limit=100").await;
    let first = rules(first);
    assert_eq!(first.len(), 4, "{first:?}");
    let policies: serde_json::Value = get(&s.base, &t, "/api/v1/policies?limit=100").await;
    assert_eq!(policies["total"], 5);
    let ds: serde_json::Value = get(
        &s.base,
        &t,
        "/api/v1/datasets?name=demo-support-conversations",
    )
    .await;
    let id = ds["items"][0]["id"].as_str().unwrap().to_string();
    let del = c
        .delete(format!("{}/api/v1/datasets/{id}?force=true", s.base))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), reqwest::StatusCode::NO_CONTENT);
    terminate(s);

    let (s, password) = start_demo(dir.path());
    let t = token(s.base.clone(), password).await;
    let again: serde_json::Value = get(&s.base, &t, "/api/v1/metrics/alerts?limit=100").await;
    assert_eq!(rules(again), first, "no rule made twice");
    let policies: serde_json::Value = get(&s.base, &t, "/api/v1/policies?limit=100").await;
    assert_eq!(policies["total"], 5, "no policy made twice");
    let ds: serde_json::Value = get(
        &s.base,
        &t,
        "/api/v1/datasets?name=demo-support-conversations",
    )
    .await;
    assert_eq!(ds["total"], 1, "the missing dataset is made again");
    terminate(s);
}
