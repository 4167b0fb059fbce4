//! `/api/v1/policies`: policy management and versions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llmgov_core::ids::PolicyId;
use llmgov_core::policy::bulk::BulkOp;
use llmgov_core::policy::model::{Policy, PolicyFilter, PolicyStatus, PolicyType, PolicyVersion};
use llmgov_core::policy::service::{FromTemplate, PolicyInput, PolicyPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{PageDto, select_fields};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PolicyListParams {
    pub page: Option<String>,
    pub limit: Option<String>,
    /// Sortable: name, priority, status, policy_type, created_at, updated_at.
    pub sort: Option<String>,
    pub fields: Option<String>,
    /// `draft`, `active` or `archived`.
    pub status: Option<String>,
    /// `content`, `cost`, `model_lifecycle`, `data`, `access`, `compliance`, `security`.
    #[serde(alias = "type")]
    pub policy_type: Option<String>,
    pub category: Option<String>,
    /// Case-insensitive text in the name or description.
    #[serde(alias = "q")]
    pub text: Option<String>,
    /// A compliance control id the policy implements (`eu_ai_act:art_50`).
    pub control: Option<String>,
}

const SORTABLE: &[&str] = &[
    "name",
    "priority",
    "status",
    "policy_type",
    "created_at",
    "updated_at",
];

fn filter_of(q: &PolicyListParams) -> ApiResult<PolicyFilter> {
    let text = q.text.as_deref().filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 200) {
        return Err(
            llmgov_core::CoreError::invalid("text", "text must be at most 200 characters").into(),
        );
    }
    if let Some(c) = q.control.as_deref()
        && llmgov_core::policy::compliance::control(c).is_none()
    {
        return Err(llmgov_core::CoreError::invalid("control", "unknown control id").into());
    }
    Ok(PolicyFilter {
        status: q.status.as_deref().map(PolicyStatus::parse).transpose()?,
        policy_type: q
            .policy_type
            .as_deref()
            .map(PolicyType::parse)
            .transpose()?,
        category: q.category.clone().filter(|c| !c.is_empty()),
        text: text.map(String::from),
        control: q.control.clone(),
    })
}

async fn list(
    s: &AppState,
    p: &llmgov_core::identity::Principal,
    q: PolicyListParams,
) -> ApiResult<Json<serde_json::Value>> {
    let lp = super::ListParams {
        page: q.page.clone(),
        limit: q.limit.clone(),
        sort: q.sort.clone(),
        fields: None,
    };
    let query = lp.query(SORTABLE, "name")?;
    let filter = filter_of(&q)?;
    let page = s
        .policies
        .store()
        .list_policies(p.workspace_id, &filter, &query)
        .await?;
    Ok(Json(select_fields(
        PageDto::from_page(page, Policy::redacted),
        q.fields.as_deref(),
    )?))
}

/// List the workspace's policies.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", params(PolicyListParams),
    responses((status = 200, body = PageDto<Policy>), (status = 422, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn list_policies(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PolicyListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    list(&s, &p, q).await
}

/// Search policies with the list filters in a body.
#[utoipa::path(post, path = "/api/v1/policies/search", tag = "policies", request_body = PolicyListParams,
    responses((status = 200, body = PageDto<Policy>), (status = 422, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn search_policies(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    ApiJson(q): ApiJson<PolicyListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    list(&s, &p, q).await
}

/// Create a policy. The Rego is compiled first: a policy that does not compile is a 422
/// with the line and column.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = PolicyInput,
    responses((status = 201, body = Policy), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:create"])))]
pub async fn create_policy(
    Authz(p, _): Authz<perm::PoliciesCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<PolicyInput>,
) -> ApiResult<(StatusCode, Json<Policy>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.policies.create(&p, &ctx, b).await?.redacted()),
    ))
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn get_policy(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Policy>> {
    Ok(Json(s.policies.get(&p, PolicyId(id)).await?.redacted()))
}

/// Replace a policy (a new version).
#[utoipa::path(put, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = uuid::Uuid, Path)), request_body = PolicyInput,
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:update"])))]
pub async fn put_policy(
    Authz(p, _): Authz<perm::PoliciesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<PolicyInput>,
) -> ApiResult<Json<Policy>> {
    Ok(Json(
        s.policies
            .replace(&p, &ctx, PolicyId(id), b)
            .await?
            .redacted(),
    ))
}

/// Change some fields of a policy (a new version unless nothing changes).
#[utoipa::path(patch, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = uuid::Uuid, Path)), request_body = PolicyPatch,
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:update"])))]
pub async fn patch_policy(
    Authz(p, _): Authz<perm::PoliciesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<PolicyPatch>,
) -> ApiResult<Json<Policy>> {
    Ok(Json(
        s.policies
            .patch(&p, &ctx, PolicyId(id), b)
            .await?
            .redacted(),
    ))
}

/// Archive a policy. Policies are never erased: violations and the audit trail keep
/// pointing at what was in force.
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:delete"])))]
pub async fn delete_policy(
    Authz(p, _): Authz<perm::PoliciesDelete>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
) -> ApiResult<Json<Policy>> {
    Ok(Json(
        s.policies.archive(&p, &ctx, PolicyId(id)).await?.redacted(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct HistoryDto {
    pub items: Vec<PolicyVersion>,
    pub total: i64,
}

/// Every version of a policy, newest first.
#[utoipa::path(get, path = "/api/v1/policies/{id}/history", tag = "policies", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = HistoryDto), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn get_policy_history(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<HistoryDto>> {
    let items = s
        .policies
        .store()
        .policy_versions(p.workspace_id, PolicyId(id))
        .await?
        .into_iter()
        .map(PolicyVersion::redacted)
        .collect::<Vec<_>>();
    Ok(Json(HistoryDto {
        total: items.len() as i64,
        items,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    pub from: i32,
    pub to: i32,
}

#[derive(Serialize, ToSchema)]
pub struct DiffDto {
    pub from: i32,
    pub to: i32,
    /// Fields whose values differ (`definition` covers the source).
    pub changed_fields: Vec<String>,
    /// Unified diff of the Rego source.
    pub source_diff: String,
}

/// What changed between two versions.
#[utoipa::path(get, path = "/api/v1/policies/{id}/diff", tag = "policies", params(("id" = uuid::Uuid, Path), DiffParams),
    responses((status = 200, body = DiffDto), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn get_policy_diff(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<DiffParams>,
) -> ApiResult<Json<DiffDto>> {
    let store = s.policies.store();
    let a = store
        .policy_version(p.workspace_id, PolicyId(id), q.from)
        .await?;
    let b = store
        .policy_version(p.workspace_id, PolicyId(id), q.to)
        .await?;
    // Compared as shown: a changed secret is not revealed, only whether one is set.
    let (va, vb) = (
        serde_json::to_value(a.spec.clone().redacted()).unwrap_or_default(),
        serde_json::to_value(b.spec.clone().redacted()).unwrap_or_default(),
    );
    let mut changed_fields: Vec<String> = va
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| vb.get(k.as_str()) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    changed_fields.sort();
    let source_diff =
        similar::TextDiff::from_lines(&a.spec.definition.source, &b.spec.definition.source)
            .unified_diff()
            .header(&format!("version {}", q.from), &format!("version {}", q.to))
            .to_string();
    Ok(Json(DiffDto {
        from: q.from,
        to: q.to,
        changed_fields,
        source_diff,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version whose content becomes the newest version.
    pub version: i32,
}

/// Make an earlier version's content the newest version (history is kept).
#[utoipa::path(post, path = "/api/v1/policies/{id}/rollback", tag = "policies", params(("id" = uuid::Uuid, Path)), request_body = RollbackBody,
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:update"])))]
pub async fn rollback_policy(
    Authz(p, _): Authz<perm::PoliciesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<RollbackBody>,
) -> ApiResult<Json<Policy>> {
    if b.version < 1 {
        return Err(llmgov_core::CoreError::invalid(
            "version",
            "version must be a positive integer",
        )
        .into());
    }
    Ok(Json(
        s.policies
            .rollback(&p, &ctx, PolicyId(id), b.version)
            .await?
            .redacted(),
    ))
}

/// Create a policy from a template with parameters.
#[utoipa::path(post, path = "/api/v1/policies/from-template", tag = "policies", request_body = FromTemplate,
    responses((status = 201, body = Policy), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:create"])))]
pub async fn create_policy_from_template(
    Authz(p, _): Authz<perm::PoliciesCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<FromTemplate>,
) -> ApiResult<(StatusCode, Json<Policy>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.policies
                .create_from_template(&p, &ctx, b)
                .await?
                .redacted(),
        ),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// 1 to 100 operations: `{"op": "create", "policy": {...}}`,
    /// `{"op": "update", "id": "...", "changes": {...}}`, `{"op": "archive", "id": "..."}`.
    pub operations: Vec<BulkOp>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkDto {
    /// The policies as written, in operation order.
    pub items: Vec<Policy>,
    pub total: i64,
}

/// Create, change and archive many policies in one transaction: all or none. An invalid
/// operation fails the request and names its index.
#[utoipa::path(post, path = "/api/v1/policies/bulk", tag = "policies", request_body = BulkBody,
    responses((status = 200, body = BulkDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:update"])))]
pub async fn bulk_policies(
    Authz(p, _): Authz<perm::PoliciesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<BulkBody>,
) -> ApiResult<Json<BulkDto>> {
    // Creating needs policies:create as well; archiving is an update here.
    if b.operations
        .iter()
        .any(|o| matches!(o, BulkOp::Create { .. }))
    {
        p.require(llmgov_core::access::Permission::new(
            llmgov_core::access::Resource::Policies,
            llmgov_core::access::Action::Create,
        ))?;
    }
    let items: Vec<Policy> = s
        .policies
        .bulk(&p, &ctx, b.operations)
        .await?
        .into_iter()
        .map(Policy::redacted)
        .collect();
    Ok(Json(BulkDto {
        total: items.len() as i64,
        items,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(search_policies))
        .routes(routes!(bulk_policies))
        .routes(routes!(create_policy_from_template))
        .routes(routes!(get_policy, put_policy, patch_policy, delete_policy))
        .routes(routes!(get_policy_history))
        .routes(routes!(get_policy_diff))
        .routes(routes!(rollback_policy))
}
