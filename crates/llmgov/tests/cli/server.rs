//! Starting and stopping the server, operator commands, configuration, `init` and `--demo`.

use llmgov_store::Backend;
use llmgov_store::testing::TestDb;
use std::process::Command;

use super::helpers::*;

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

/// `serve --demo` fills the workspace through the API; a start after a run that stopped
/// half-way (here: the demo dataset, which is made last, was deleted) makes what is missing
/// without duplicating what exists.
#[tokio::test]
async fn the_demo_fills_a_workspace_and_a_second_run_makes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let token = |base: String, password: String| async move {
        access_token(&base, "demo@llmgov.local", &password).await
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
