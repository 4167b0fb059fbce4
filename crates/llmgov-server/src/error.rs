//! The one error type of the HTTP layer. Every error response, including those produced by
//! axum itself (unknown route, wrong method, oversized or malformed body), has the shape
//! `{"error": {"code", "message", "details", "request_id"}}`. 5xx causes are logged with the
//! request id and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmgov_core::CoreError;
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    /// Request id of the request being served, for error bodies built far from the request.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(|r| r.clone()).unwrap_or_default()
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
    pub retry_after: Option<u64>,
}

/// Error body, as documented in the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `USER_NOT_FOUND`.
    pub code: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub request_id: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::json!({}),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The error for a bare status produced outside our handlers (axum, tower-http).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, msg) = match status {
            StatusCode::NOT_FOUND => ("ROUTE_NOT_FOUND", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("METHOD_NOT_ALLOWED", "method not allowed on this route")
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "request body is too large"),
            StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "the request took too long"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("UNSUPPORTED_MEDIA_TYPE", "unsupported content type")
            }
            StatusCode::UNAUTHORIZED => ("UNAUTHENTICATED", "authentication required"),
            StatusCode::FORBIDDEN => ("FORBIDDEN", "forbidden"),
            StatusCode::TOO_MANY_REQUESTS => ("TOO_MANY_REQUESTS", "too many requests"),
            s if s.is_server_error() => ("INTERNAL", "internal error"),
            _ => ("BAD_REQUEST", "bad request"),
        };
        Self::new(status, code, msg)
    }
}

fn not_found_code(resource: &str) -> &'static str {
    match resource {
        "user" => "USER_NOT_FOUND",
        "role" => "ROLE_NOT_FOUND",
        "workspace" => "WORKSPACE_NOT_FOUND",
        "api_key" => "API_KEY_NOT_FOUND",
        "dataset" => "DATASET_NOT_FOUND",
        "ref" => "REF_NOT_FOUND",
        "commit" => "COMMIT_NOT_FOUND",
        "record" => "RECORD_NOT_FOUND",
        "upload" => "UPLOAD_NOT_FOUND",
        _ => "NOT_FOUND",
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let details = serde_json::to_value(e.details()).unwrap_or_default();
        let (status, code, message) = match &e {
            CoreError::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_FAILED",
                e.to_string(),
            ),
            CoreError::NotFound { resource } => (
                StatusCode::NOT_FOUND,
                not_found_code(resource),
                e.to_string(),
            ),
            CoreError::Conflict { code, message } => (StatusCode::CONFLICT, *code, message.clone()),
            // A merge conflict is about the state of the resource, with a report to act on.
            CoreError::Unprocessable { code, message, .. } if *code == "MERGE_CONFLICT" => {
                (StatusCode::CONFLICT, *code, message.clone())
            }
            CoreError::Unprocessable { code, message, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, *code, message.clone())
            }
            CoreError::Unauthenticated(m) => {
                (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", m.clone())
            }
            CoreError::Forbidden { .. } => (StatusCode::FORBIDDEN, "FORBIDDEN", e.to_string()),
            CoreError::Throttled { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_ATTEMPTS",
                "too many failed attempts; retry later".into(),
            ),
            CoreError::AuditUnavailable => {
                tracing::error!(request_id = %current_request_id(), "change rejected: audit trail unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "AUDIT_UNAVAILABLE",
                    "the change was not made because the audit trail is unavailable".into(),
                )
            }
            CoreError::Unavailable(cause) => {
                tracing::error!(request_id = %current_request_id(), %cause, "backing service unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "a backing service is unavailable; retry later".into(),
                )
            }
            CoreError::Integrity(cause) => {
                tracing::error!(request_id = %current_request_id(), %cause, "stored data failed verification");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "DATA_INTEGRITY_ERROR",
                    "stored data failed verification and was not served".into(),
                )
            }
            CoreError::Internal(cause) => {
                tracing::error!(request_id = %current_request_id(), %cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error".into(),
                )
            }
        };
        let retry_after = match e {
            CoreError::Throttled { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        Self {
            status,
            code,
            message,
            details,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
                details: self.details,
                request_id: current_request_id(),
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
