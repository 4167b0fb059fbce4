//! `/api/v1/workspaces`: tenants (super_admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llmgov_core::identity::Workspace;
use llmgov_core::ids::{UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::routes::users::UserDto;
use crate::routes::{ListParams, PageDto, select_fields};

#[derive(Serialize, ToSchema)]
pub struct WorkspaceDto {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Workspace> for WorkspaceDto {
    fn from(w: Workspace) -> Self {
        Self {
            id: w.id.0,
            name: w.name,
            description: w.description,
            created_at: w.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceBody {
    pub name: String,
    pub description: Option<String>,
}

/// Create a workspace.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", request_body = CreateWorkspaceBody,
    responses((status = 201, body = WorkspaceDto), (status = 422, body = ErrorBody)), security(("bearer" = ["workspaces:create"])))]
pub async fn create_workspace(
    Authz(p, _): Authz<perm::WorkspacesCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<CreateWorkspaceBody>,
) -> ApiResult<(StatusCode, Json<WorkspaceDto>)> {
    let ws = s
        .identity
        .create_workspace(&p, &ctx, &b.name, b.description)
        .await?;
    Ok((StatusCode::CREATED, Json(ws.into())))
}

/// List every workspace.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", params(ListParams),
    responses((status = 200, body = PageDto<WorkspaceDto>)), security(("bearer" = ["workspaces:read"])))]
pub async fn list_workspaces(
    Authz(p, _): Authz<perm::WorkspacesRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let query = q.query(&["created_at", "name"], "created_at")?;
    let page = s.identity.list_workspaces(&p, &query).await?;
    Ok(Json(select_fields(
        PageDto::from_page(page, WorkspaceDto::from),
        q.fields.as_deref(),
    )?))
}

/// One workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{id}", tag = "workspaces", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WorkspaceDto), (status = 404, body = ErrorBody)), security(("bearer" = ["workspaces:read"])))]
pub async fn get_workspace(
    Authz(p, _): Authz<perm::WorkspacesRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<WorkspaceDto>> {
    Ok(Json(
        s.identity.get_workspace(&p, WorkspaceId(id)).await?.into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    /// A user of your current workspace.
    pub user_id: uuid::Uuid,
    /// Roles in the target workspace.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Make a user of your workspace a member of another workspace too. They choose it at
/// login with `workspace_id`.
#[utoipa::path(post, path = "/api/v1/workspaces/{id}/members", tag = "workspaces", params(("id" = uuid::Uuid, Path)), request_body = AddMemberBody,
    responses((status = 201, body = UserDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = ["workspaces:update"])))]
pub async fn add_workspace_member(
    Authz(p, _): Authz<perm::WorkspacesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<AddMemberBody>,
) -> ApiResult<(StatusCode, Json<UserDto>)> {
    let user = s
        .identity
        .add_member(&p, &ctx, WorkspaceId(id), UserId(b.user_id), b.roles)
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(get_workspace))
        .routes(routes!(add_workspace_member))
}
