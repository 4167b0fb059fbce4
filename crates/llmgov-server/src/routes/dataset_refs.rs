//! `/api/v1/datasets/{id}/commits|branches|tags`: history and refs of a dataset. A branch
//! or tag name containing `/` is sent percent-encoded in the path (`feature%2Fx`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use llmgov_core::vault::diff::{DiffEntry, DiffKind, DiffSummary, SchemaDiff};
use llmgov_core::vault::lineage::{Direction, Lineage};
use llmgov_core::vault::model::{Commit, Ref, RefKind};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::datasets::dataset;
use super::{ListParams, PageDto};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};

fn id_and_name(raw: (String, String)) -> ApiResult<(uuid::Uuid, String)> {
    let id = uuid::Uuid::parse_str(&raw.0)
        .map_err(|_| ApiError::bad_request("INVALID_ID", "the id in the path must be a UUID"))?;
    Ok((id, raw.1))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Branch, tag or commit to start from (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
}

/// History (first parents), newest first.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/commits", tag = "datasets", params(("id" = uuid::Uuid, Path), LogParams),
    responses((status = 200, body = PageDto<Commit>), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:read"])))]
pub async fn list_commits(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
    ApiQuery(l): ApiQuery<LogParams>,
) -> ApiResult<Json<PageDto<Commit>>> {
    let q = ListParams {
        page: l.page,
        limit: l.limit,
        sort: None,
        fields: None,
    }
    .query(&["created_at"], "created_at")?;
    let (v, d) = dataset(&s, &p, id).await?;
    let page = v.log(&d, l.reference.as_deref(), &q).await?;
    Ok(Json(PageDto::from_page(page, |c| c)))
}

/// One commit, by id or unique prefix (at least 4 hex digits), or the commit a ref names.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/commits/{commit}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("commit" = String, Path)),
    responses((status = 200, body = Commit), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:read"])))]
pub async fn get_commit(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    Path(raw): Path<(String, String)>,
) -> ApiResult<Json<Commit>> {
    let (id, commit) = id_and_name(raw)?;
    let (v, d) = dataset(&s, &p, id).await?;
    Ok(Json(v.resolve(&d, Some(&commit)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRef {
    pub name: String,
    /// Branch, tag or commit to start at (default: the default branch).
    pub from: Option<String>,
}

async fn list(
    s: &AppState,
    p: &llmgov_core::identity::Principal,
    id: uuid::Uuid,
    kind: RefKind,
) -> ApiResult<Json<Vec<Ref>>> {
    let (v, d) = dataset(s, p, id).await?;
    Ok(Json(v.list_refs(&d, kind).await?))
}

/// Branches of the dataset.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/branches", tag = "datasets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Ref>), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:read"])))]
pub async fn list_branches(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Vec<Ref>>> {
    list(&s, &p, id, RefKind::Branch).await
}

/// Tags of the dataset.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/tags", tag = "datasets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Ref>), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:read"])))]
pub async fn list_tags(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Vec<Ref>>> {
    list(&s, &p, id, RefKind::Tag).await
}

async fn create(
    s: &AppState,
    p: &llmgov_core::identity::Principal,
    ctx: &llmgov_core::audit::RequestContext,
    id: uuid::Uuid,
    kind: RefKind,
    b: NewRef,
) -> ApiResult<(StatusCode, Json<Ref>)> {
    let (v, d) = dataset(s, p, id).await?;
    let r = v
        .create_ref(p, ctx, &d, kind, &b.name, b.from.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Create a branch at a ref or commit.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/branches", tag = "datasets", params(("id" = uuid::Uuid, Path)), request_body = NewRef,
    responses((status = 201, body = Ref), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn create_branch(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<NewRef>,
) -> ApiResult<(StatusCode, Json<Ref>)> {
    create(&s, &p, &ctx, id, RefKind::Branch, b).await
}

/// Create a tag at a ref or commit.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/tags", tag = "datasets", params(("id" = uuid::Uuid, Path)), request_body = NewRef,
    responses((status = 201, body = Ref), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn create_tag(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<NewRef>,
) -> ApiResult<(StatusCode, Json<Ref>)> {
    create(&s, &p, &ctx, id, RefKind::Tag, b).await
}

/// Delete a branch (not the default one; a protected one needs `datasets:delete`).
#[utoipa::path(delete, path = "/api/v1/datasets/{id}/branches/{name}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn delete_branch(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(raw): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (id, name) = id_and_name(raw)?;
    let (v, d) = dataset(&s, &p, id).await?;
    v.delete_ref(&p, &ctx, &d, RefKind::Branch, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a tag.
#[utoipa::path(delete, path = "/api/v1/datasets/{id}/tags/{name}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:update"])))]
pub async fn delete_tag(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(raw): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (id, name) = id_and_name(raw)?;
    let (v, d) = dataset(&s, &p, id).await?;
    v.delete_ref(&p, &ctx, &d, RefKind::Tag, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchPatch {
    /// Protected branches take pushes and deletion only from `datasets:delete` holders.
    pub protected: bool,
}

/// Protect or unprotect a branch.
#[utoipa::path(patch, path = "/api/v1/datasets/{id}/branches/{name}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("name" = String, Path)), request_body = BranchPatch,
    responses((status = 200, body = Ref), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:delete"])))]
pub async fn update_branch(
    Authz(p, _): Authz<perm::DatasetsDelete>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(raw): Path<(String, String)>,
    ApiJson(b): ApiJson<BranchPatch>,
) -> ApiResult<Json<Ref>> {
    let (id, name) = id_and_name(raw)?;
    let (v, d) = dataset(&s, &p, id).await?;
    Ok(Json(
        v.protect_branch(&p, &ctx, &d, &name, b.protected).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    /// The older side: branch, tag or commit.
    pub from: String,
    /// The newer side: branch, tag or commit.
    pub to: String,
    /// Only `added`, `removed` or `changed` entries.
    pub op: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct DiffPage {
    pub from: String,
    pub to: String,
    pub summary: DiffSummary,
    pub schema: SchemaDiff,
    pub items: Vec<DiffEntry>,
    pub total: i64,
    pub page: u32,
    pub limit: u32,
    pub has_more: bool,
}

/// Records added, removed and changed between two refs, with counts, schema changes and a
/// paginated listing (positions and record ids; read the records with `/records/{index}`).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/diff", tag = "datasets", params(("id" = uuid::Uuid, Path), DiffParams),
    responses((status = 200, body = DiffPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:read"])))]
pub async fn diff_refs(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<DiffParams>,
) -> ApiResult<Json<DiffPage>> {
    let lq = ListParams {
        page: q.page,
        limit: q.limit,
        sort: None,
        fields: None,
    }
    .query(&["index"], "index")?;
    let op = q.op.as_deref().map(DiffKind::parse).transpose()?;
    let (v, d) = dataset(&s, &p, id).await?;
    let diff = v.diff(&d, &q.from, &q.to).await?;
    let all: Vec<DiffEntry> = diff
        .entries
        .into_iter()
        .filter(|e| op.is_none_or(|o| e.op == o))
        .collect();
    let total = all.len() as i64;
    let items: Vec<DiffEntry> = all
        .into_iter()
        .skip(lq.offset() as usize)
        .take(lq.limit as usize)
        .collect();
    let page = llmgov_core::page::Page::new(items, total, &lq);
    Ok(Json(DiffPage {
        from: diff.from,
        to: diff.to,
        summary: diff.summary,
        schema: diff.schema,
        items: page.items,
        total: page.total,
        page: page.page,
        limit: page.limit,
        has_more: page.has_more,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LineageParams {
    /// Branch, tag or commit to start from (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// `upstream` (default: what it came from) or `downstream` (what was made from it).
    pub direction: Option<String>,
    /// Steps to follow, 1 to 100 (default 10).
    pub depth: Option<u32>,
}

/// The lineage graph of a version: commits (with the transformation that made each) and
/// parent edges, upstream or downstream.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/lineage", tag = "datasets", params(("id" = uuid::Uuid, Path), LineageParams),
    responses((status = 200, body = Lineage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:read"])))]
pub async fn get_lineage(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<LineageParams>,
) -> ApiResult<Json<Lineage>> {
    let direction = q
        .direction
        .as_deref()
        .map(Direction::parse)
        .transpose()?
        .unwrap_or(Direction::Upstream);
    let depth = q.depth.unwrap_or(10);
    if !(1..=100).contains(&depth) {
        return Err(llmgov_core::CoreError::invalid("depth", "depth is 1 to 100").into());
    }
    let (v, d) = dataset(&s, &p, id).await?;
    Ok(Json(
        v.lineage(&d, q.reference.as_deref(), direction, depth)
            .await?,
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_lineage))
        .routes(routes!(diff_refs))
        .routes(routes!(list_commits))
        .routes(routes!(get_commit))
        .routes(routes!(list_branches, create_branch))
        .routes(routes!(delete_branch, update_branch))
        .routes(routes!(list_tags, create_tag))
        .routes(routes!(delete_tag))
}
