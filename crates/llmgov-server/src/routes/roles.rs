//! `/api/v1/roles`: predefined roles and the workspace's custom roles.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llmgov_core::identity::RoleView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, PathId};

#[derive(Serialize, ToSchema)]
pub struct RoleDto {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    /// Predefined roles cannot be changed or deleted.
    pub predefined: bool,
}

impl From<RoleView> for RoleDto {
    fn from(r: RoleView) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            permissions: r.permissions,
            predefined: r.predefined,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoleListDto {
    pub items: Vec<RoleDto>,
    pub total: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleBody {
    /// 2–64 lower-case letters, digits or `_`.
    pub name: String,
    pub description: Option<String>,
    /// `resource:action` strings; you can only grant what you hold.
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleBody {
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
}

/// Every role usable in this workspace.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", responses((status = 200, body = RoleListDto)), security(("bearer" = ["roles:read"])))]
pub async fn list_roles(
    Authz(p, _): Authz<perm::RolesRead>,
    State(s): State<AppState>,
) -> ApiResult<Json<RoleListDto>> {
    let items: Vec<RoleDto> = s
        .identity
        .list_roles(&p)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(RoleListDto {
        total: items.len() as i64,
        items,
    }))
}

/// Create a custom role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = CreateRoleBody,
    responses((status = 201, body = RoleDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["roles:create"])))]
pub async fn create_role(
    Authz(p, _): Authz<perm::RolesCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<CreateRoleBody>,
) -> ApiResult<(StatusCode, Json<RoleDto>)> {
    let role = s
        .identity
        .create_role(&p, &ctx, &b.name, b.description, &b.permissions)
        .await?;
    Ok((StatusCode::CREATED, Json(role.into())))
}

/// One role.
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RoleDto), (status = 404, body = ErrorBody)), security(("bearer" = ["roles:read"])))]
pub async fn get_role(
    Authz(p, _): Authz<perm::RolesRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<RoleDto>> {
    Ok(Json(s.identity.get_role(&p, id).await?.into()))
}

/// Change a custom role's description or permissions.
#[utoipa::path(put, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = uuid::Uuid, Path)), request_body = UpdateRoleBody,
    responses((status = 200, body = RoleDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = ["roles:update"])))]
pub async fn put_role(
    Authz(p, _): Authz<perm::RolesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<UpdateRoleBody>,
) -> ApiResult<Json<RoleDto>> {
    Ok(Json(
        s.identity
            .update_role(&p, &ctx, id, b.description, b.permissions.as_deref())
            .await?
            .into(),
    ))
}

/// Delete a custom role and its assignments.
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = ["roles:delete"])))]
pub async fn delete_role(
    Authz(p, _): Authz<perm::RolesDelete>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    s.identity.delete_role(&p, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, put_role, delete_role))
}
