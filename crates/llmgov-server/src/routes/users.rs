//! `/api/v1/users`: users of the caller's workspace, their roles and permissions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llmgov_core::identity::{CreateUserInput, User, UserStatus};
use llmgov_core::ids::{UserId, WorkspaceId};
use llmgov_core::store::UserChanges;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::routes::{PageDto, select_fields};

#[derive(Serialize, ToSchema)]
pub struct UserDto {
    pub id: uuid::Uuid,
    pub workspace_id: uuid::Uuid,
    pub email: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    pub roles: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            workspace_id: u.workspace_id.0,
            email: u.email,
            username: u.username,
            first_name: u.first_name,
            last_name: u.last_name,
            status: u.status.as_str().into(),
            roles: u.roles,
            metadata: u.metadata,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    pub email: String,
    pub username: String,
    /// At least 12 characters mixing two classes of character.
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Another workspace (super_admin only); default: the caller's.
    pub workspace_id: Option<uuid::Uuid>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// Fields to change; absent fields are left as they are, `null` clears optional ones.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    pub email: Option<String>,
    pub username: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    pub roles: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PermissionsDto {
    pub permissions: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    pub page: Option<String>,
    pub limit: Option<String>,
    /// Sortable: created_at, email, username, status, last_login_at.
    pub sort: Option<String>,
    pub fields: Option<String>,
    /// Filter by status: `active` or `disabled`.
    pub status: Option<String>,
}

const SORTABLE: &[&str] = &["created_at", "email", "username", "status", "last_login_at"];

/// List the workspace's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListParams),
    responses((status = 200, body = PageDto<UserDto>), (status = 400, body = ErrorBody)), security(("bearer" = ["users:read"])))]
pub async fn list_users(
    Authz(p, _): Authz<perm::UsersRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<UserListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let lp = super::ListParams {
        page: q.page,
        limit: q.limit,
        sort: q.sort,
        fields: None,
    };
    let query = lp.query(SORTABLE, "created_at")?;
    let status = q.status.as_deref().map(UserStatus::parse).transpose()?;
    let page = s.identity.list_users(&p, &query, status).await?;
    Ok(Json(select_fields(
        PageDto::from_page(page, UserDto::from),
        q.fields.as_deref(),
    )?))
}

/// Create a user in the caller's workspace (or, for super_admin, in `workspace_id`).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserBody,
    responses((status = 201, body = UserDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["users:create"])))]
pub async fn create_user(
    Authz(p, _): Authz<perm::UsersCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<CreateUserBody>,
) -> ApiResult<(StatusCode, Json<UserDto>)> {
    let input = CreateUserInput {
        email: b.email,
        username: b.username,
        password: b.password,
        first_name: b.first_name,
        last_name: b.last_name,
        roles: b.roles,
        workspace_id: b.workspace_id.map(WorkspaceId),
        metadata: b.metadata,
    };
    let user = s.identity.create_user(&p, &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// One user of the workspace.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)), security(("bearer" = ["users:read"])))]
pub async fn get_user(
    Authz(p, _): Authz<perm::UsersRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(s.identity.get_user(&p, UserId(id)).await?.into()))
}

async fn update(
    p: llmgov_core::identity::Principal,
    s: AppState,
    ctx: llmgov_core::audit::RequestContext,
    id: uuid::Uuid,
    b: UpdateUserBody,
) -> ApiResult<Json<UserDto>> {
    let changes = UserChanges {
        email: b.email,
        username: b.username,
        first_name: b.first_name,
        last_name: b.last_name,
        status: b.status.as_deref().map(UserStatus::parse).transpose()?,
        metadata: b.metadata,
    };
    Ok(Json(
        s.identity
            .update_user(&p, &ctx, UserId(id), changes)
            .await?
            .into(),
    ))
}

/// Update a user's profile or status.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = UpdateUserBody,
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = ["users:update"])))]
pub async fn put_user(
    Authz(p, _): Authz<perm::UsersUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<UpdateUserBody>,
) -> ApiResult<Json<UserDto>> {
    update(p, s, ctx, id, b).await
}

/// Partially update a user (same fields as PUT; absent fields are kept).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = UpdateUserBody,
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)), security(("bearer" = ["users:update"])))]
pub async fn patch_user(
    Authz(p, _): Authz<perm::UsersUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<UpdateUserBody>,
) -> ApiResult<Json<UserDto>> {
    update(p, s, ctx, id, b).await
}

/// Remove a user from the workspace (the account is deleted when no workspace remains).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = ["users:delete"])))]
pub async fn delete_user(
    Authz(p, _): Authz<perm::UsersDelete>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    s.identity.remove_user(&p, &ctx, UserId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a user's roles in this workspace.
#[utoipa::path(put, path = "/api/v1/users/{id}/roles", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = RolesBody,
    responses((status = 200, body = UserDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = ["users:update"])))]
pub async fn put_user_roles(
    Authz(p, _): Authz<perm::UsersUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<RolesBody>,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(
        s.identity
            .set_user_roles(&p, &ctx, UserId(id), b.roles)
            .await?
            .into(),
    ))
}

/// Effective permissions of a user in this workspace.
#[utoipa::path(get, path = "/api/v1/users/{id}/permissions", tag = "users", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PermissionsDto), (status = 404, body = ErrorBody)), security(("bearer" = ["users:read"])))]
pub async fn get_user_permissions(
    Authz(p, _): Authz<perm::UsersRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<PermissionsDto>> {
    Ok(Json(PermissionsDto {
        permissions: s
            .identity
            .user_permissions(&p, UserId(id))
            .await?
            .to_strings(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, put_user, patch_user, delete_user))
        .routes(routes!(put_user_roles))
        .routes(routes!(get_user_permissions))
}
