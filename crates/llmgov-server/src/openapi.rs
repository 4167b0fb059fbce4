//! The OpenAPI document, generated from the handlers' annotations.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::routes;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "llmgov API",
        description = "Data Vault and Governance Dashboard. Errors use `{\"error\": {code, message, details, request_id}}`. A security requirement's scope is the permission the route requires."
    ),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

/// Every API route. A route added anywhere else is not documented, and the route-permission
/// test would not see it: add routes here.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::users::router())
        .merge(routes::roles::router())
        .merge(routes::workspaces::router())
        .merge(routes::api_keys::router())
        .merge(routes::audit::router())
        .merge(routes::audit_proofs::router())
        .merge(routes::audit_export::router())
        .merge(routes::policies::router())
        .merge(routes::policy_eval::router())
        .merge(routes::policy_facts::router())
        .merge(routes::audit_report::router())
        .merge(routes::metrics::router())
        .merge(crate::otlp::router())
        .merge(routes::alerts::router())
        .merge(routes::webhooks::router())
        .merge(routes::datasets::router())
        .merge(routes::dataset_refs::router())
        .merge(routes::vault_keys::router())
        .merge(routes::pii::router())
}

/// Routes that stream request bodies of any size: served outside the body limit, the
/// request timeout and the idempotency layer (documented with the rest).
pub fn upload_router() -> OpenApiRouter<AppState> {
    routes::datasets::upload_router()
}

pub fn finish(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT access token or lgv_ API key")
                .build(),
        ),
    );
    doc
}

pub fn docs_router(doc: OpenApi) -> Router<AppState> {
    Router::from(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", doc))
}
