//! `/api/v1/policy-facts/{kind}`: facts about models and datasets that policies read as
//! `data.platform.models.<name>` and `data.platform.datasets.<name>`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use llmgov_core::policy::facts::{Fact, FactKind};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ListParams, PageDto};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactsBody {
    /// Any JSON object (at most 16 KiB), e.g. `{"evaluation_score": 0.91, "risk_level": "high"}`.
    #[schema(value_type = Object)]
    pub facts: serde_json::Value,
}

/// Facts of every model or dataset (`kind`: `models` or `datasets`), by name.
#[utoipa::path(get, path = "/api/v1/policy-facts/{kind}", tag = "policies", params(("kind" = String, Path), ListParams),
    responses((status = 200, body = PageDto<Fact>), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn list_policy_facts(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    Path(kind): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<PageDto<Fact>>> {
    let kind = FactKind::parse_plural(&kind)?;
    let query = q.query(&["name"], "name")?;
    let page = s
        .policies
        .store()
        .list_facts(p.workspace_id, kind, &query)
        .await?;
    Ok(Json(PageDto::from_page(page, |f| f)))
}

/// The facts of one model or dataset.
#[utoipa::path(get, path = "/api/v1/policy-facts/{kind}/{name}", tag = "policies", params(("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Fact), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:read"])))]
pub async fn get_policy_fact(
    Authz(p, _): Authz<perm::PoliciesRead>,
    State(s): State<AppState>,
    Path((kind, name)): Path<(String, String)>,
) -> ApiResult<Json<Fact>> {
    let kind = FactKind::parse_plural(&kind)?;
    Ok(Json(
        s.policies
            .store()
            .get_fact(p.workspace_id, kind, &name)
            .await?,
    ))
}

/// Set the facts of a model or dataset (replacing earlier ones).
#[utoipa::path(put, path = "/api/v1/policy-facts/{kind}/{name}", tag = "policies", params(("kind" = String, Path), ("name" = String, Path)),
    request_body = FactsBody,
    responses((status = 200, body = Fact), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["policies:update"])))]
pub async fn put_policy_fact(
    Authz(p, _): Authz<perm::PoliciesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((kind, name)): Path<(String, String)>,
    ApiJson(b): ApiJson<FactsBody>,
) -> ApiResult<Json<Fact>> {
    let kind = FactKind::parse_plural(&kind)?;
    Ok(Json(
        s.policies.put_fact(&p, &ctx, kind, &name, b.facts).await?,
    ))
}

/// Remove the facts of a model or dataset.
#[utoipa::path(delete, path = "/api/v1/policy-facts/{kind}/{name}", tag = "policies", params(("kind" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = ["policies:update"])))]
pub async fn delete_policy_fact(
    Authz(p, _): Authz<perm::PoliciesUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((kind, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let kind = FactKind::parse_plural(&kind)?;
    s.policies.delete_fact(&p, &ctx, kind, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policy_facts))
        .routes(routes!(
            get_policy_fact,
            put_policy_fact,
            delete_policy_fact
        ))
}
