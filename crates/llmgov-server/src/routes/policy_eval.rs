//! Policy evaluation (the guardrail call, one policy, dry runs), violations, templates and
//! compliance coverage.

use axum::Json;
use axum::extract::{Path, State};
use llmgov_core::ids::{PolicyId, ViolationId};
use llmgov_core::policy::compliance::{FRAMEWORKS, Framework};
use llmgov_core::policy::engine::Outcome;
use llmgov_core::policy::evaluate::{Coverage, DryRunReport, ViolationChange};
use llmgov_core::policy::model::{Severity, Violation, ViolationFilter, ViolationStatus};
use llmgov_core::policy::templates::{self, Template};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::audit::parse_time;
use super::{PageDto, select_fields};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateBody {
    /// The request context: `model`, `provider`, `user`, `team`, `prompt`, `response`,
    /// `tokens` {`input`, `output`}, `cost`, `dataset`, `environment`, `event_type`, ...
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

/// The guardrail call: evaluates every active policy that applies to the input, by
/// priority, and returns one decision. Idempotent with `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/policies/evaluate", tag = "policies", request_body = EvaluateBody,
    responses((status = 200, body = Outcome), (status = 422, body = ErrorBody)), security(("bearer" = ["policies:execute"])))]
pub async fn evaluate_policies(
    Authz(p, _): Authz<perm::PoliciesExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<EvaluateBody>,
) -> ApiResult<Json<Outcome>> {
    Ok(Json(s.policies.evaluate_all(&p, &ctx, b.input).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateBody {
    /// Rego source, as in a policy's `definition.source`.
    pub source: String,
}

/// Whether a Rego source compiles as a policy; where it does not, the first error and its
/// position (1-based line and column, when regorus reports one).
#[derive(Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// Compiles a policy source without saving anything (editors call it as the user types).
/// A source that does not compile is a `200` with `valid: false`; only a request that is
/// itself wrong (too large, not JSON) is a `4xx`.
#[utoipa::path(post, path = "/api/v1/policies/validate", tag = "policies", request_body = ValidateBody,
    responses((status = 200, body = Validation), (status = 422, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn validate_policy(
    Authz(_caller, _): Authz<perm::PoliciesRead>,
    ApiJson(b): ApiJson<ValidateBody>,
) -> ApiResult<Json<Validation>> {
    use llmgov_core::policy::model::MAX_SOURCE_BYTES;
    if b.source.len() > MAX_SOURCE_BYTES {
        return Err(llmgov_core::CoreError::invalid(
            "source",
            format!("at most {MAX_SOURCE_BYTES} bytes"),
        )
        .into());
    }
    let r = tokio::task::spawn_blocking(move || {
        llmgov_core::policy::rego::compile(&b.source).map(|_| ())
    })
    .await
    .map_err(llmgov_core::CoreError::internal)?;
    Ok(Json(match r {
        Ok(()) => Validation {
            valid: true,
            message: None,
            line: None,
            column: None,
        },
        Err(e) => Validation {
            valid: false,
            message: Some(e.message),
            line: e.line,
            column: e.column,
        },
    }))
}

/// Evaluates one policy (any status) on an input. Violations of an active policy are
/// recorded.
#[utoipa::path(post, path = "/api/v1/policies/{id}/evaluate", tag = "policies", params(("id" = uuid::Uuid, Path)), request_body = EvaluateBody,
    responses((status = 200, body = Outcome), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:execute"])))]
pub async fn evaluate_policy(
    Authz(p, _): Authz<perm::PoliciesExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<EvaluateBody>,
) -> ApiResult<Json<Outcome>> {
    Ok(Json(
        s.policies
            .evaluate_one(&p, &ctx, PolicyId(id), b.input)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunBody {
    /// Inputs to try (at most 100). Without them, the latest recorded evaluation inputs.
    #[schema(value_type = Option<Vec<Object>>)]
    pub inputs: Option<Vec<serde_json::Value>>,
    /// How many recorded inputs to replay when `inputs` is absent (default 20, at most 100).
    pub last: Option<usize>,
}

/// What a policy (typically a draft) would have flagged; records nothing.
#[utoipa::path(post, path = "/api/v1/policies/{id}/dry-run", tag = "policies", params(("id" = uuid::Uuid, Path)), request_body = DryRunBody,
    responses((status = 200, body = DryRunReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:execute"])))]
pub async fn dry_run_policy(
    Authz(p, _): Authz<perm::PoliciesExecute>,
    State(s): State<AppState>,
    PathId(id): PathId,
    ApiJson(b): ApiJson<DryRunBody>,
) -> ApiResult<Json<DryRunReport>> {
    Ok(Json(
        s.policies
            .dry_run(&p, PolicyId(id), b.inputs, b.last)
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ViolationListParams {
    pub page: Option<String>,
    pub limit: Option<String>,
    /// Sortable: detected_at, severity, status.
    pub sort: Option<String>,
    pub fields: Option<String>,
    /// `open`, `acknowledged`, `resolved`, `false_positive`.
    pub status: Option<String>,
    /// `low`, `medium`, `high`, `critical`.
    pub severity: Option<String>,
    pub policy_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// RFC 3339; detected at or after.
    pub from: Option<String>,
    /// RFC 3339; detected before.
    pub to: Option<String>,
}

async fn list_violations_with(
    s: &AppState,
    p: &llmgov_core::identity::Principal,
    q: ViolationListParams,
    policy: Option<PolicyId>,
) -> ApiResult<Json<serde_json::Value>> {
    let lp = super::ListParams {
        page: q.page.clone(),
        limit: q.limit.clone(),
        sort: q.sort.clone().or_else(|| Some("detected_at:desc".into())),
        fields: None,
    };
    let query = lp.query(&["detected_at", "severity", "status"], "detected_at")?;
    let from = parse_time("from", q.from.as_deref())?;
    let to = parse_time("to", q.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(llmgov_core::CoreError::invalid("from", "from must not be after to").into());
    }
    let policy_id = match (policy, q.policy_id.as_deref()) {
        (Some(p), _) => Some(p),
        (None, Some(id)) => Some(PolicyId::parse(id)?),
        (None, None) => None,
    };
    if let Some(id) = policy {
        // 404 for a policy that is not in this workspace, rather than an empty list.
        s.policies.get(p, id).await?;
    }
    let filter = ViolationFilter {
        policy_id,
        status: q
            .status
            .as_deref()
            .map(ViolationStatus::parse)
            .transpose()?,
        severity: q.severity.as_deref().map(Severity::parse).transpose()?,
        resource_type: q.resource_type.clone(),
        resource_id: q.resource_id.clone(),
        from,
        to,
    };
    let page = s
        .policies
        .store()
        .list_violations(p.workspace_id, &filter, &query)
        .await?;
    Ok(Json(select_fields(
        PageDto::from_page(page, |v| v),
        q.fields.as_deref(),
    )?))
}

/// Violations in the workspace, newest first.
#[utoipa::path(get, path = "/api/v1/violations", tag = "violations", params(ViolationListParams),
    responses((status = 200, body = PageDto<Violation>), (status = 422, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn list_violations(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ViolationListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    list_violations_with(&s, &p, q, None).await
}

/// Violations of one policy, newest first.
#[utoipa::path(get, path = "/api/v1/policies/{id}/violations", tag = "violations", params(("id" = uuid::Uuid, Path), ViolationListParams),
    responses((status = 200, body = PageDto<Violation>), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn list_policy_violations(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<ViolationListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    list_violations_with(&s, &p, q, Some(PolicyId(id))).await
}

/// One violation.
#[utoipa::path(get, path = "/api/v1/violations/{id}", tag = "violations", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Violation), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn get_violation(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Violation>> {
    Ok(Json(s.policies.get_violation(&p, ViolationId(id)).await?))
}

/// Move a violation along `open` → `acknowledged` → `resolved` | `false_positive`.
#[utoipa::path(patch, path = "/api/v1/violations/{id}", tag = "violations", params(("id" = uuid::Uuid, Path)), request_body = ViolationChange,
    responses((status = 200, body = Violation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = ["policies:update"])))]
pub async fn patch_violation(
    Authz(p, _): Authz<perm::PoliciesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<ViolationChange>,
) -> ApiResult<Json<Violation>> {
    Ok(Json(
        s.policies
            .change_violation(&p, &ctx, ViolationId(id), b)
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct TemplateListDto {
    pub items: Vec<Template>,
    pub total: i64,
}

/// Built-in policy templates, with their parameters and example inputs.
#[utoipa::path(get, path = "/api/v1/policy-templates", tag = "policies",
    responses((status = 200, body = TemplateListDto)), security(("bearer" = ["policies:read"])))]
pub async fn list_policy_templates(
    Authz(_p, _): Authz<perm::PoliciesRead>,
) -> Json<TemplateListDto> {
    let items = templates::all();
    Json(TemplateListDto {
        total: items.len() as i64,
        items,
    })
}

#[derive(Serialize, ToSchema)]
pub struct FrameworkListDto {
    pub items: Vec<Framework>,
    pub total: i64,
}

/// Built-in compliance frameworks and their controls.
#[utoipa::path(get, path = "/api/v1/compliance/frameworks", tag = "compliance",
    responses((status = 200, body = FrameworkListDto)), security(("bearer" = ["policies:read"])))]
pub async fn list_frameworks(Authz(_p, _): Authz<perm::PoliciesRead>) -> Json<FrameworkListDto> {
    Json(FrameworkListDto {
        items: FRAMEWORKS.to_vec(),
        total: FRAMEWORKS.len() as i64,
    })
}

/// Which controls of a framework active policies cover, with evidence.
#[utoipa::path(get, path = "/api/v1/compliance/frameworks/{id}/coverage", tag = "compliance", params(("id" = String, Path)),
    responses((status = 200, body = Coverage), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn get_framework_coverage(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Coverage>> {
    Ok(Json(s.policies.coverage(&p, &id).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(evaluate_policies))
        .routes(routes!(validate_policy))
        .routes(routes!(evaluate_policy))
        .routes(routes!(dry_run_policy))
        .routes(routes!(list_violations))
        .routes(routes!(list_policy_violations))
        .routes(routes!(get_violation, patch_violation))
        .routes(routes!(list_policy_templates))
        .routes(routes!(list_frameworks))
        .routes(routes!(get_framework_coverage))
}
