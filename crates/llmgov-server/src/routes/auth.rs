//! `/api/v1/auth`: login, token refresh, logout, the caller's identity, password change,
//! signing-key rotation; and the public key set at `/.well-known/jwks.json`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llmgov_core::identity::LoginRequest;
use llmgov_core::ids::WorkspaceId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authenticated, Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::users::UserDto;
use crate::routes::workspaces::WorkspaceDto;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
    /// Workspace to sign in to (default: the user's first).
    pub workspace_id: Option<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenPairDto {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<llmgov_core::identity::TokenPair> for TokenPairDto {
    fn from(t: llmgov_core::identity::TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: t.token_type.into(),
            expires_in: t.expires_in,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Exchange e-mail and password for tokens.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = TokenPairDto), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn post_login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult<Json<TokenPairDto>> {
    if b.email.len() > 320 || b.password.len() > 1024 {
        return Err(
            llmgov_core::CoreError::Unauthenticated("invalid email or password".into()).into(),
        );
    }
    let req = LoginRequest {
        email: b.email,
        password: b.password,
        workspace_id: b.workspace_id.map(WorkspaceId),
    };
    Ok(Json(s.identity.login(req, &ctx).await?.into()))
}

/// Exchange a refresh token for a new pair (the old refresh token is spent).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = TokenPairDto), (status = 401, body = ErrorBody)))]
pub async fn post_refresh(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenPairDto>> {
    Ok(Json(
        s.identity.refresh(&b.refresh_token, &ctx).await?.into(),
    ))
}

/// End the session of a refresh token (its whole family is revoked).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshBody, responses((status = 204)))]
pub async fn post_logout(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<RefreshBody>,
) -> ApiResult<StatusCode> {
    s.identity.logout(&b.refresh_token, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MeDto {
    pub user: UserDto,
    pub permissions: Vec<String>,
    pub workspaces: Vec<WorkspaceDto>,
    /// `user` or `api_key`.
    pub credential: String,
}

/// The caller: profile, permissions in the current workspace, and workspaces.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeDto), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_me(
    Authenticated(p): Authenticated,
    State(s): State<AppState>,
) -> ApiResult<Json<MeDto>> {
    let user = s.identity.get_user(&p, p.user_id).await?;
    let workspaces = s.identity.my_workspaces(&p).await?;
    Ok(Json(MeDto {
        user: user.into(),
        permissions: p.permissions.to_strings(),
        workspaces: workspaces.into_iter().map(Into::into).collect(),
        credential: match p.kind {
            llmgov_core::identity::PrincipalKind::User { .. } => "user".into(),
            llmgov_core::identity::PrincipalKind::ApiKey { .. } => "api_key".into(),
        },
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// Change the caller's password; every session of the user ends.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordBody,
    responses((status = 204), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn post_password(
    Authenticated(p): Authenticated,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    s.identity
        .change_password(&p, &ctx, b.current_password, &b.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RotatedKeyDto {
    /// Key id of the new signing key.
    pub kid: String,
}

/// Rotate the token signing key. Tokens signed by the previous key stay valid until they expire.
#[utoipa::path(post, path = "/api/v1/auth/signing-keys/rotate", tag = "auth",
    responses((status = 200, body = RotatedKeyDto), (status = 403, body = ErrorBody)), security(("bearer" = ["settings:update"])))]
pub async fn post_rotate_signing_key(
    Authz(p, _): Authz<perm::SettingsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<RotatedKeyDto>> {
    Ok(Json(RotatedKeyDto {
        kid: s.identity.rotate_signing_key(&p, &ctx).await?,
    }))
}

/// Public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Object)))]
pub async fn get_jwks(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(s.identity.jwks())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_login))
        .routes(routes!(post_refresh))
        .routes(routes!(post_logout))
        .routes(routes!(get_me))
        .routes(routes!(post_password))
        .routes(routes!(post_rotate_signing_key))
        .routes(routes!(get_jwks))
}
