//! What the CLI tests share: starting the real binary, running commands, test data.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_llmgov");

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) stdout_lines: Vec<String>,
}

/// Starts `llmgov serve` on a free port and reads stdout until it says where it listens.
pub(crate) fn start(data_dir: &std::path::Path, envs: &[(&str, &str)]) -> Server {
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

pub(crate) fn terminate(mut s: Server) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .unwrap();
    s.child.wait().unwrap()
}

/// Starts `llmgov serve --demo` and reads stdout until the demo data is ready; returns the
/// server and the demo user's password.
pub(crate) fn start_demo(data_dir: &std::path::Path) -> (Server, String) {
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

pub(crate) async fn login(base: &str, email: &str, password: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

pub(crate) fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
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

/// The first super admin, from the environment.
pub(crate) const ROOT: [(&str, &str); 2] = [
    ("LLMGOV_ADMIN_EMAIL", "root@example.com"),
    ("LLMGOV_ADMIN_PASSWORD", "Root-password-12345"),
];

/// What a data scientist's key for the dataset commands holds.
pub(crate) const DATASET_SCOPES: &[&str] = &[
    "datasets:create",
    "datasets:read",
    "datasets:update",
    "datasets:execute",
];

/// Asserts a command succeeded, showing its stderr otherwise.
pub(crate) fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs in through the API and returns the access token.
pub(crate) async fn access_token(base: &str, email: &str, password: &str) -> String {
    let login: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {login}"))
        .to_string()
}

pub(crate) async fn token_and_key(base: &str, scopes: &[&str]) -> String {
    let http = reqwest::Client::new();
    let token = &access_token(base, "root@example.com", "Root-password-12345").await;
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

pub(crate) fn cli(base: &str, key: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["dataset"])
        .args(args)
        .env("LLMGOV_SERVER", base)
        .env("LLMGOV_API_KEY", key)
        .output()
        .unwrap()
}

pub(crate) fn chat_file(path: &std::path::Path, n: usize, tag: &str) -> Vec<u8> {
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

pub(crate) fn blocks_on_disk(dir: &std::path::Path) -> usize {
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
