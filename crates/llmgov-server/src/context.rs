//! Per-request plumbing: request id, security headers, error-format normalisation, access
//! log and RED metrics, and the `Ctx` extractor that carries who/where into the audit trail.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use llmgov_core::audit::RequestContext;

use crate::AppState;
use crate::error::{ApiError, REQUEST_ID};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// The id of this request (the caller's correlation id when it sent a valid one).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn valid_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    .then(|| s.to_string())
}

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

/// Outermost middleware of the API.
pub async fn request_middleware(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let correlation = req.headers().get(&X_CORRELATION_ID).and_then(valid_id);
    let rid = correlation
        .clone()
        .or_else(|| req.headers().get(&X_REQUEST_ID).and_then(valid_id))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(rid.clone()));
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());

    let mut resp = REQUEST_ID
        .scope(rid.clone(), async move {
            let resp = next.run(req).await;
            normalise_error(resp).await
        })
        .await;

    let h = resp.headers_mut();
    let rid_value =
        HeaderValue::from_str(&rid).expect("validated or generated id is a valid header");
    h.insert(X_REQUEST_ID, rid_value.clone());
    if correlation.is_some() {
        h.insert(X_CORRELATION_ID, rid_value);
    }
    for (k, v) in SECURITY_HEADERS {
        h.entry(*k).or_insert(HeaderValue::from_static(v));
    }
    if !h.contains_key(header::CACHE_CONTROL) && route.starts_with("/api/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }

    let status = resp.status().as_u16();
    let secs = started.elapsed().as_secs_f64();
    state.metrics.observe(&method, &route, status, secs);
    tracing::info!(request_id = %rid, %method, %route, status, latency_ms = secs * 1000.0, "request");
    resp
}

/// Rewrites any error response that is not already JSON (axum's 404/405/413, timeouts,
/// panics) into the error format, inside the request-id scope.
async fn normalise_error(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::from_status(status).into_response();
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if let Some(v) = allow {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

/// Client address: the socket peer, or the first `X-Forwarded-For` hop when configured to
/// trust a proxy in front.
pub fn client_addr(
    parts_headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded: bool,
) -> Option<String> {
    if trust_forwarded
        && let Some(first) = parts_headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
    {
        return Some(first.to_string());
    }
    peer.map(|p| p.ip().to_string())
}

/// Who and where, for the audit trail (actor fields are filled from the principal later).
pub struct Ctx(pub RequestContext);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Ctx(request_context(parts, state)))
    }
}

pub fn request_context(parts: &Parts, state: &AppState) -> RequestContext {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    RequestContext {
        actor_id: None,
        actor_type: "user",
        client_addr: client_addr(&parts.headers, peer, state.config.trust_forwarded_for),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        session_id: None,
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::from_status(axum::http::StatusCode::NOT_FOUND)
}
