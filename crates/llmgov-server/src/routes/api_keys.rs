//! `/api/v1/api-keys`: credentials for machines. The secret is shown once, at creation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llmgov_core::identity::ApiKey;
use llmgov_core::ids::ApiKeyId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::routes::{ListParams, PageDto, select_fields};

#[derive(Serialize, ToSchema)]
pub struct ApiKeyDto {
    pub id: uuid::Uuid,
    pub name: String,
    /// Visible start of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub user_id: uuid::Uuid,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ApiKey> for ApiKeyDto {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.0,
            status: k.status(llmgov_core::time::now()).into(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.to_strings(),
            user_id: k.user_id.0,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKeyDto {
    #[serde(flatten)]
    pub api_key: ApiKeyDto,
    /// The secret. It is shown only in this response; store it now.
    pub key: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyBody {
    pub name: String,
    /// Permissions of the key (a subset of yours).
    pub scopes: Vec<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Create an API key for yourself.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyBody,
    responses((status = 201, body = CreatedApiKeyDto), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["keys:create"])))]
pub async fn create_api_key(
    Authz(p, _): Authz<perm::KeysCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<CreateApiKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedApiKeyDto>)> {
    let expires = b
        .expires_at
        .map(|t| chrono::SubsecRound::trunc_subsecs(t, 6));
    let (key, secret) = s
        .identity
        .create_api_key(&p, &ctx, &b.name, &b.scopes, expires)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyDto {
            api_key: key.into(),
            key: secret,
        }),
    ))
}

/// List API keys: all of the workspace's with `users:read`, otherwise your own.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(ListParams),
    responses((status = 200, body = PageDto<ApiKeyDto>)), security(("bearer" = ["keys:read"])))]
pub async fn list_api_keys(
    Authz(p, _): Authz<perm::KeysRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let query = q.query(
        &["created_at", "name", "last_used_at", "expires_at"],
        "created_at",
    )?;
    let page = s.identity.list_api_keys(&p, &query).await?;
    Ok(Json(select_fields(
        PageDto::from_page(page, ApiKeyDto::from),
        q.fields.as_deref(),
    )?))
}

/// One API key (never its secret).
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ApiKeyDto), (status = 404, body = ErrorBody)), security(("bearer" = ["keys:read"])))]
pub async fn get_api_key(
    Authz(p, _): Authz<perm::KeysRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<ApiKeyDto>> {
    Ok(Json(s.identity.get_api_key(&p, ApiKeyId(id)).await?.into()))
}

/// Revoke an API key (yours, or any with `users:update`).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = ["keys:delete"])))]
pub async fn delete_api_key(
    Authz(p, _): Authz<perm::KeysDelete>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    s.identity.revoke_api_key(&p, &ctx, ApiKeyId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(get_api_key, delete_api_key))
}
