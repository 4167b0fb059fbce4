//! `/api/v1/keys`: the vault's key-encryption keys (the deployment's, not a workspace's).

use axum::Json;
use axum::extract::State;
use llmgov_core::vault::keys::KeyStatus;
use llmgov_core::vault::rotation::RotationReport;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::datasets::vault;
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};

/// The key provider, its current key-encryption key version and the versions it holds.
#[utoipa::path(get, path = "/api/v1/keys/status", tag = "keys",
    responses((status = 200, body = KeyStatus)), security(("bearer" = ["keys:execute"])))]
pub async fn key_status(
    Authz(_p, _): Authz<perm::KeysExecute>,
    State(s): State<AppState>,
) -> ApiResult<Json<KeyStatus>> {
    Ok(Json(vault(&s)?.keys().status().await?))
}

/// Rotate the key-encryption key: a new version becomes current and every dataset key is
/// rewrapped with it (data is not re-encrypted). Audited as `keys.rotate`.
#[utoipa::path(post, path = "/api/v1/keys/rotate", tag = "keys",
    responses((status = 200, body = RotationReport), (status = 503, body = ErrorBody)), security(("bearer" = ["keys:execute"])))]
pub async fn rotate_keys(
    Authz(p, _): Authz<perm::KeysExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<RotationReport>> {
    Ok(Json(vault(&s)?.rotate_keys(p.workspace_id, &ctx).await?))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrimBody {
    /// KEK versions below this are destroyed (it becomes the minimum decryption version).
    pub min_version: u32,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TrimReport {
    pub removed: Vec<u32>,
}

/// Destroy key-encryption key versions below `min_version`, once no dataset key depends on
/// them (`409 KEYS_IN_USE` otherwise: rotate first). Audited as `keys.trim`.
#[utoipa::path(post, path = "/api/v1/keys/trim", tag = "keys", request_body = TrimBody,
    responses((status = 200, body = TrimReport), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["keys:execute"])))]
pub async fn trim_keys(
    Authz(p, _): Authz<perm::KeysExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    crate::extract::ApiJson(b): crate::extract::ApiJson<TrimBody>,
) -> ApiResult<Json<TrimReport>> {
    let removed = vault(&s)?
        .trim_keys(p.workspace_id, &ctx, b.min_version)
        .await?;
    Ok(Json(TrimReport { removed }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(trim_keys))
        .routes(routes!(key_status))
        .routes(routes!(rotate_keys))
}
