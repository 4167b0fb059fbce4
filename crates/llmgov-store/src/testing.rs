//! Fresh databases for tests: every test gets its own SQLite file or PostgreSQL database.
//!
//! PostgreSQL is reached through `LLMGOV_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); test databases are named `llmgov_t_*`
//! and the test script drops leftovers before a run.

use std::path::PathBuf;

use sqlx::Connection;

use crate::Backend;

pub fn admin_pg_url() -> String {
    std::env::var("LLMGOV_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test. SQLite files are removed on drop.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join("llmgov.db");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    backend,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = admin_pg_url();
                let name = format!("llmgov_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("PostgreSQL for tests (set LLMGOV_TEST_PG_URL)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or(admin);
                Self {
                    url: format!("{base}/{name}"),
                    backend,
                    _dir: None,
                }
            }
        }
    }
}

/// The PKCS#11 token `scripts/test.sh` initialises (SoftHSM2), with KEKs labelled
/// `key_label-v<n>` so that each test keeps its own keys.
pub fn hsm_config(key_label: &str) -> crate::pkcs11::Pkcs11Config {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!(
                "{k} is not set: run scripts/test.sh (it installs SoftHSM2 and initialises a token)"
            )
        })
    };
    crate::pkcs11::Pkcs11Config {
        module: var("LLMGOV_TEST_PKCS11_MODULE").into(),
        token_label: var("LLMGOV_TEST_PKCS11_TOKEN"),
        pin: var("LLMGOV_TEST_PKCS11_PIN"),
        key_label: key_label.into(),
    }
}

/// The S3-compatible server `scripts/test.sh` starts (s3s-fs on loopback), with a key prefix
/// of the test's own so that tests never see each other's objects. Reached through
/// `LLMGOV_TEST_S3_ENDPOINT`, `..._BUCKET`, `..._ACCESS_KEY` and `..._SECRET_KEY`.
pub fn s3_config() -> crate::objects::S3Config {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    crate::objects::S3Config {
        endpoint: Some(var("LLMGOV_TEST_S3_ENDPOINT", "http://127.0.0.1:9900")),
        bucket: var("LLMGOV_TEST_S3_BUCKET", "llmgov-test"),
        region: "us-east-1".into(),
        access_key_id: Some(var("LLMGOV_TEST_S3_ACCESS_KEY", "llmgov-test")),
        secret_access_key: Some(var("LLMGOV_TEST_S3_SECRET_KEY", "llmgov-test-secret")),
        session_token: None,
        prefix: Some(format!("t-{}", uuid::Uuid::new_v4().simple())),
        virtual_hosted_style: false,
    }
}
