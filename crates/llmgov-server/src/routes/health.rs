//! Liveness and readiness (seed 003 §7.4), and Prometheus metrics.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct ComponentHealth {
    pub name: String,
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub latency_ms: f64,
    pub message: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    pub checks: Vec<ComponentHealth>,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub version: String,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = HealthStatus)))]
pub async fn get_live() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "healthy".into(),
        checks: vec![],
        timestamp: chrono::Utc::now(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Ready to serve: every configured component answers.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, body = HealthStatus), (status = 503, body = HealthStatus)))]
pub async fn get_ready(State(state): State<AppState>) -> impl IntoResponse {
    let started = Instant::now();
    let db = state.store.ping().await;
    let check = ComponentHealth {
        name: format!("database ({})", state.store.backend()),
        status: if db.is_ok() { "healthy" } else { "unhealthy" }.into(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        message: db.err().map(|_| "database did not answer".to_string()),
    };
    let healthy = check.status == "healthy";
    let body = HealthStatus {
        status: if healthy { "healthy" } else { "unhealthy" }.into(),
        checks: vec![check],
        timestamp: chrono::Utc::now(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    (
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// Prometheus text exposition of the RED metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_live))
        .routes(routes!(get_ready))
        .routes(routes!(get_metrics))
}
