use std::sync::Arc;

use llmgov_core::identity::{IdentityConfig, IdentityService};
use llmgov_server::{AppState, ServerConfig};
use llmgov_store::testing::TestDb;
use llmgov_store::{Backend, PoolConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "Root-password-123";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub admin_token: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts the error format and returns the error code.
    pub fn error_code(&self) -> String {
        let e = &self.body["error"];
        assert!(
            e["message"].is_string() && e["details"].is_object() && e["request_id"].is_string(),
            "not an error body: {}",
            self.body
        );
        assert_eq!(
            e["request_id"].as_str().unwrap(),
            self.headers["x-request-id"].to_str().unwrap()
        );
        e["code"].as_str().unwrap().to_string()
    }
}

/// How a test server differs from the defaults.
#[derive(Clone, Default)]
pub struct Options {
    pub events: Option<llmgov_core::events::EventsConfig>,
    pub streams: Option<llmgov_server::streams::StreamConfig>,
    /// Carry events through this NATS server instead of tailing the database.
    pub nats_url: Option<String>,
    /// Webhook circuit breakers: failures before opening, first open period.
    pub breakers: Option<(u32, std::time::Duration)>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, opts: Options) -> TestApp {
    let db = TestDb::new(backend).await;
    let store = llmgov_store::open(&db.url, &PoolConfig::default(), true)
        .await
        .expect("store");
    IdentityService::bootstrap(&*store, Some(ADMIN_EMAIL), Some(ADMIN_PASSWORD))
        .await
        .unwrap()
        .unwrap();
    let base = start_instance(&db.url, &opts).await;
    let mut t = TestApp {
        base,
        client: reqwest::Client::builder()
            .user_agent("llmgov-tests/1")
            .build()
            .unwrap(),
        db,
        admin_token: String::new(),
    };
    t.admin_token = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    t
}

/// Starts one more server on the database at `url` (another instance of a deployment);
/// returns its base URL.
pub async fn start_instance(url: &str, opts: &Options) -> String {
    let store = llmgov_store::open(url, &PoolConfig::default(), true)
        .await
        .expect("store");
    let identity = Arc::new(
        IdentityService::new(store.clone(), IdentityConfig::default())
            .await
            .unwrap(),
    );
    let config = ServerConfig {
        body_limit: 64 * 1024,
        ..Default::default()
    };
    let signer = llmgov_core::audit::checkpoint::CheckpointSigner::from_pkcs8(
        &llmgov_core::audit::checkpoint::CheckpointSigner::generate_pkcs8().unwrap(),
    )
    .unwrap();
    let state = AppState::new(identity, Arc::new(signer), config)
        .with_events_config(
            opts.events.clone().unwrap_or_default(),
            opts.streams.clone().unwrap_or_default(),
        )
        .with_vault(test_vault(url, store));
    let breakers = match opts.breakers {
        Some((threshold, open_for)) => {
            llmgov_core::outbox::Breakers::new(threshold, open_for, open_for * 8)
        }
        None => Default::default(),
    };
    llmgov_server::webhooks::spawn_outbox_dispatcher_with(
        &state,
        std::time::Duration::from_secs(1),
        Arc::new(llmgov_server::webhooks::WebhookSender::with_breakers(
            breakers,
        )),
    );
    match &opts.nats_url {
        Some(nats) => {
            llmgov_store::nats::start(
                llmgov_store::nats::NatsConfig::new(nats.clone()),
                state.store.clone(),
                state.events.clone(),
            )
            .await
            .expect("NATS client");
        }
        None => {
            tokio::spawn(state.events.clone().run_local());
        }
    }
    let app = llmgov_server::app(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(llmgov_server::serve(listener, app, std::future::pending()));
    format!("http://{addr}")
}

/// The vault of the deployment on database `url`: objects and key file in a directory of
/// their own, shared by every instance on that database.
pub fn vault_dir(url: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join("llmgov-test-vault")
        .join(&blake3::hash(url.as_bytes()).to_hex()[..16])
}

fn test_vault(
    url: &str,
    store: Arc<dyn llmgov_core::store::Store>,
) -> llmgov_core::vault::VaultService {
    use llmgov_core::vault::keys::{KdfParams, LocalKeyProvider};
    let dir = vault_dir(url);
    let key_file = dir.join("kek.json");
    let pass = "test vault passphrase";
    let keys = LocalKeyProvider::open(&key_file, pass)
        .or_else(|_| LocalKeyProvider::create(&key_file, pass, KdfParams::minimum()))
        .expect("vault keys");
    let objects = llmgov_store::objects::Objects::local(&dir.join("objects")).expect("objects");
    let mut cfg = llmgov_core::vault::VaultConfig::default();
    cfg.ingest.block_bytes = 4096;
    let vault_store: Arc<dyn llmgov_core::vault::store::VaultStore> = store;
    llmgov_core::vault::VaultService::new(vault_store, Arc::new(objects), Arc::new(keys), cfg)
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        Self::read(r).await
    }

    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn login_pair(&self, email: &str, password: &str) -> Resp {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self.login_pair(email, password).await;
        assert_eq!(r.status, StatusCode::OK, "login failed: {}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// Creates a user with `roles` through the API as the admin; returns (id, email, token).
    pub async fn user_with(&self, name: &str, roles: &[&str]) -> (String, String, String) {
        let email = format!("{name}@example.com");
        let r = self
            .post("/api/v1/users", &self.admin_token, json!({"email": email, "username": name, "password": "User-password-123", "roles": roles}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let token = self.login(&email, "User-password-123").await;
        (r.body["id"].as_str().unwrap().to_string(), email, token)
    }

    /// Number of audit entries in the admin's workspace.
    pub async fn audit_count(&self) -> i64 {
        let r = self
            .get("/api/v1/audit/logs?limit=1", &self.admin_token)
            .await;
        r.body["total"].as_i64().unwrap()
    }

    pub async fn user_count(&self) -> i64 {
        self.get("/api/v1/users?limit=1", &self.admin_token)
            .await
            .body["total"]
            .as_i64()
            .unwrap()
    }

    pub async fn audit_events(&self, event_type: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/v1/audit/logs?limit=200&event_type={event_type}"),
                &self.admin_token,
            )
            .await;
        r.body["items"].as_array().unwrap().clone()
    }
}

/// Runs each listed `async fn(TestApp)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::spawn_app(llmgov_store::Backend::Sqlite).await).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::spawn_app(llmgov_store::Backend::Postgres).await).await } )*
        }
    };
}

/// Checks a webhook's `X-Llmgov-Signature: t=<unix>,v1=<hex>` against `body` and `secret`,
/// and that the same signature does not fit a changed body.
pub fn assert_signed(headers: &axum::http::HeaderMap, body: &str, secret: &str) {
    let sig = headers["x-llmgov-signature"].to_str().unwrap();
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .expect("t=<unix>,v1=<hex>");
    let t: i64 = t.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - t).abs() < 3600);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mac: Vec<u8> = (0..v1.len() / 2)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    aws_lc_rs::hmac::verify(&key, format!("{t}.{body}").as_bytes(), &mac)
        .expect("the signature is the HMAC-SHA256 of t.body with the secret");
    assert!(aws_lc_rs::hmac::verify(&key, format!("{t}.{body} ").as_bytes(), &mac).is_err());
}
