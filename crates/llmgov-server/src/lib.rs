//! HTTP API of llmgov. This is the only crate that speaks HTTP: it authenticates, maps
//! domain errors to responses, and documents itself with OpenAPI.

pub mod auth;
pub mod context;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod otlp;
pub mod routes;
pub mod streams;
pub mod ui;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use llmgov_core::identity::IdentityService;
use llmgov_core::store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Requests running longer are answered 408.
    pub request_timeout: Duration,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// The built web UI (`web/build`); `None`: every UI path says how to build it.
    pub ui_dir: Option<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            trust_forwarded_for: false,
            ui_dir: None,
        }
    }
}

/// Shared by every handler. Holds no per-instance state that matters across requests, so any
/// number of instances can serve behind a load balancer.
#[derive(Clone)]
pub struct AppState {
    pub identity: Arc<IdentityService>,
    /// Signs audit checkpoints; its key lives outside the database.
    pub checkpoints: Arc<llmgov_core::audit::checkpoint::CheckpointSigner>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<metrics::Metrics>,
    pub config: Arc<ServerConfig>,
    pub policies: Arc<llmgov_core::policy::service::PolicyService>,
    /// LLM metrics (ingest, rollups, queries); `metrics` above is the server's own.
    pub metric_service: Arc<llmgov_core::metrics::MetricService>,
    /// Alert rules and their evaluation.
    pub alerts: Arc<llmgov_core::metrics::alert_service::AlertService>,
    /// This instance's fan-out of committed events to its stream clients.
    pub events: Arc<llmgov_core::events::EventHub>,
    pub streams: Arc<streams::StreamConfig>,
    /// The Data Vault; `None` on an instance that serves the dashboard alone.
    pub vault: Option<Arc<llmgov_core::vault::VaultService>>,
    /// PII detection and anonymization (keyed operators need the vault's keys).
    pub pii: Arc<llmgov_core::pii::PiiService>,
}

impl AppState {
    pub fn new(
        identity: Arc<IdentityService>,
        checkpoints: Arc<llmgov_core::audit::checkpoint::CheckpointSigner>,
        config: ServerConfig,
    ) -> Self {
        let evaluator = Arc::new(llmgov_core::policy::engine::Evaluator::new(
            llmgov_core::policy::engine::EvalLimits::default(),
        ));
        let store = identity.store().clone();
        let policies = Arc::new(llmgov_core::policy::service::PolicyService::new(
            store.clone(),
            evaluator,
        ));
        let metric_service = Arc::new(llmgov_core::metrics::MetricService::new(
            store.clone(),
            llmgov_core::metrics::MetricsConfig::default(),
        ));
        let alerts = Arc::new(llmgov_core::metrics::alert_service::AlertService::new(
            Arc::clone(&metric_service),
            Arc::clone(policies.outbox_wakeup()),
        ));
        let events = llmgov_core::events::EventHub::new(
            store.clone(),
            llmgov_core::events::EventsConfig::default(),
        );
        Self {
            policies,
            metric_service,
            alerts,
            events,
            streams: Arc::new(streams::StreamConfig::default()),
            vault: None,
            pii: Arc::new(llmgov_core::pii::PiiService::new(store.clone(), None)),
            store,
            identity,
            checkpoints,
            metrics: Arc::new(metrics::Metrics::default()),
            config: Arc::new(config),
        }
    }
}

impl AppState {
    /// Uses `config` for metrics (retention, prices), with alerts evaluated on the same
    /// service so that they wake when its points arrive.
    pub fn with_metrics_config(mut self, config: llmgov_core::metrics::MetricsConfig) -> Self {
        self.metric_service = Arc::new(llmgov_core::metrics::MetricService::new(
            self.store.clone(),
            config,
        ));
        self.alerts = Arc::new(llmgov_core::metrics::alert_service::AlertService::new(
            Arc::clone(&self.metric_service),
            Arc::clone(self.policies.outbox_wakeup()),
        ));
        self
    }
}

impl AppState {
    /// Uses `config` for the event hub (buffer, retention, replay) and `streams` for the
    /// stream endpoints. The hub still has to be fed: `EventHub::run_local` or NATS.
    pub fn with_events_config(
        mut self,
        config: llmgov_core::events::EventsConfig,
        streams: streams::StreamConfig,
    ) -> Self {
        self.events = llmgov_core::events::EventHub::new(self.store.clone(), config);
        self.streams = Arc::new(streams);
        self
    }
}

impl AppState {
    /// Serves the Data Vault from `vault`.
    pub fn with_vault(mut self, vault: llmgov_core::vault::VaultService) -> Self {
        let vault = Arc::new(vault);
        self.pii = Arc::new(llmgov_core::pii::PiiService::new(
            self.store.clone(),
            Some(Arc::clone(&vault)),
        ));
        self.vault = Some(vault);
        self
    }
}

/// The OpenAPI document of the whole API (the one served at `/api/v1/openapi.json`), pretty
/// JSON.
pub fn openapi_json() -> String {
    let (_, mut doc) = openapi::api_router().split_for_parts();
    let (_, upload_doc) = openapi::upload_router().split_for_parts();
    doc.merge(upload_doc);
    openapi::finish(doc)
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

/// The whole application router, with its OpenAPI document served at `/api/v1/openapi.json`,
/// interactive docs at `/api/docs` and the web UI at `/`.
pub fn app(state: AppState) -> Router {
    let (api, mut doc) = openapi::api_router().split_for_parts();
    let (uploads, upload_doc) = openapi::upload_router().split_for_parts();
    doc.merge(upload_doc);
    let doc = openapi::finish(doc);
    let body_limit = state.config.body_limit;
    let timeout = state.config.request_timeout;
    api.merge(openapi::docs_router(doc))
        .merge(streams::router())
        .fallback(ui::fallback)
        .method_not_allowed_fallback(|| async {
            error::ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency_middleware,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .merge(uploads.layer(DefaultBodyLimit::disable()))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_middleware,
        ))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
