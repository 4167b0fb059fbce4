//! `Idempotency-Key` on POST: the first request with a key runs and its response is kept for
//! 24 hours; a retry with the same key and body gets that response again (with
//! `Idempotent-Replayed: true`), a concurrent retry gets 409, and the same key with another
//! body gets 422. Keys are scoped to the credential that sent them. Responses carrying
//! secrets (tokens, new API keys) are never stored, so those routes ignore the header.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use llmgov_core::store::IdempotencyClaim;

use crate::AppState;
use crate::error::ApiError;

const MAX_STORED_RESPONSE: usize = 1024 * 1024;
const SECRET_BEARING: &[&str] = &["/api/v1/auth/", "/api/v1/api-keys"];

pub async fn idempotency_middleware(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST
        || SECRET_BEARING
            .iter()
            .any(|p| req.uri().path().starts_with(p))
    {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    let Some(key) = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
    else {
        return ApiError::bad_request(
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key must be 1-255 visible ASCII characters",
        )
        .into_response();
    };
    let credential = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let scope = format!(
        "{}:{}",
        blake3::hash(&credential).to_hex(),
        req.uri().path()
    );
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, state.config.body_limit).await {
        Ok(b) => b,
        Err(_) => return ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response(),
    };
    let request_hash = blake3::hash(&bytes).as_bytes().to_vec();
    let claim = match state
        .store
        .claim_idempotency_key(&scope, &key, &request_hash, llmgov_core::time::now())
        .await
    {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match claim {
        IdempotencyClaim::Replay { status, body } => {
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            resp
        }
        IdempotencyClaim::InFlight => ApiError::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_KEY_IN_USE",
            "a request with this Idempotency-Key is still being processed",
        )
        .into_response(),
        IdempotencyClaim::Mismatch => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with a different request body",
        )
        .into_response(),
        IdempotencyClaim::New => {
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let status = resp.status();
            // Only definitive answers are kept: server errors and auth failures may succeed on retry.
            if status.is_server_error()
                || status == StatusCode::UNAUTHORIZED
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                let _ = state.store.release_idempotency_key(&scope, &key).await;
                return resp;
            }
            let (rparts, rbody) = resp.into_parts();
            match to_bytes(rbody, MAX_STORED_RESPONSE).await {
                Ok(b) => {
                    if let Err(e) = state
                        .store
                        .complete_idempotency_key(&scope, &key, status.as_u16(), &b)
                        .await
                    {
                        tracing::warn!(error = %e, "could not store idempotent response");
                    }
                    Response::from_parts(rparts, Body::from(b))
                }
                Err(_) => {
                    let _ = state.store.release_idempotency_key(&scope, &key).await;
                    ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
                }
            }
        }
    }
}
