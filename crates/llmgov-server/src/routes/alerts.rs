//! Alert rules (`/api/v1/metrics/alerts`) and alerts (`/api/v1/alerts`): threshold and
//! budget rules on metrics, evaluated continuously; alerts pend, fire and resolve, and can be
//! acknowledged and snoozed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llmgov_core::metrics::alert_rules::{
    Alert, AlertFilter, AlertRule, AlertRuleSpec, AlertSeverity,
};
use llmgov_core::metrics::alerting::AlertState;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::audit::parse_time;
use super::{ListParams, PageDto};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};

/// Alert rules of the workspace.
#[utoipa::path(get, path = "/api/v1/metrics/alerts", tag = "alerts", params(ListParams),
    responses((status = 200, body = PageDto<AlertRule>)), security(("bearer" = ["metrics:read"])))]
pub async fn list_rules(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    ApiQuery(l): ApiQuery<ListParams>,
) -> ApiResult<Json<PageDto<AlertRule>>> {
    let q = l.query(&["name"], "name")?;
    let page = s
        .metric_service
        .store()
        .list_alert_rules(p.workspace_id, &q)
        .await?;
    Ok(Json(PageDto::from_page(page, AlertRule::redacted)))
}

/// Create an alert rule: a metric condition (`metric_name`, `aggregation`, `window`,
/// `comparator`, `threshold`, `for`, `group_by`, filters) or a `budget` (spend per team,
/// user or model per day or month), with a severity and channels.
#[utoipa::path(post, path = "/api/v1/metrics/alerts", tag = "alerts", request_body = AlertRuleSpec,
    responses((status = 201, body = AlertRule), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["metrics:create"])))]
pub async fn create_rule(
    Authz(p, _): Authz<perm::MetricsCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<AlertRuleSpec>,
) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.alerts.create_rule(&p, &ctx, b).await?.redacted()),
    ))
}

/// One alert rule.
#[utoipa::path(get, path = "/api/v1/metrics/alerts/{id}", tag = "alerts", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = AlertRule), (status = 404, body = ErrorBody)), security(("bearer" = ["metrics:read"])))]
pub async fn get_rule(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(
        s.metric_service
            .store()
            .get_alert_rule(p.workspace_id, id)
            .await?
            .redacted(),
    ))
}

/// Replace an alert rule (its active alerts keep their state).
#[utoipa::path(put, path = "/api/v1/metrics/alerts/{id}", tag = "alerts", params(("id" = uuid::Uuid, Path)), request_body = AlertRuleSpec,
    responses((status = 200, body = AlertRule), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["metrics:update"])))]
pub async fn update_rule(
    Authz(p, _): Authz<perm::MetricsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<AlertRuleSpec>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(
        s.alerts.update_rule(&p, &ctx, id, b).await?.redacted(),
    ))
}

/// Delete an alert rule and its alerts.
#[utoipa::path(delete, path = "/api/v1/metrics/alerts/{id}", tag = "alerts", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = ["metrics:delete"])))]
pub async fn delete_rule(
    Authz(p, _): Authz<perm::MetricsDelete>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    s.alerts.delete_rule(&p, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Evaluated {
    /// Alerts created, changed or dropped.
    pub changed: usize,
}

/// Evaluate the workspace's rules now (they are also evaluated as points arrive and
/// periodically).
#[utoipa::path(post, path = "/api/v1/metrics/alerts/evaluate", tag = "alerts",
    responses((status = 200, body = Evaluated)), security(("bearer" = ["metrics:update"])))]
pub async fn evaluate(
    Authz(p, _): Authz<perm::MetricsUpdate>,
    State(s): State<AppState>,
) -> ApiResult<Json<Evaluated>> {
    Ok(Json(Evaluated {
        changed: s.alerts.evaluate_workspace(p.workspace_id).await?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// `pending`, `firing` or `resolved`.
    pub state: Option<String>,
    pub rule_id: Option<uuid::Uuid>,
    /// `info`, `warning` or `critical`.
    pub severity: Option<String>,
}

/// Alerts, most recently changed first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertParams, ListParams),
    responses((status = 200, body = PageDto<Alert>), (status = 422, body = ErrorBody)), security(("bearer" = ["metrics:read"])))]
pub async fn list_alerts(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<AlertParams>,
    ApiQuery(l): ApiQuery<ListParams>,
) -> ApiResult<Json<PageDto<Alert>>> {
    let q = l.query(&["updated_at"], "updated_at")?;
    let filter = AlertFilter {
        state: f.state.as_deref().map(AlertState::parse).transpose()?,
        rule_id: f.rule_id,
        severity: f
            .severity
            .as_deref()
            .map(AlertSeverity::parse)
            .transpose()?,
    };
    let page = s
        .metric_service
        .store()
        .list_alerts(p.workspace_id, &filter, &q)
        .await?;
    Ok(Json(PageDto::from_page(page, |a| a)))
}

/// One alert.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)), security(("bearer" = ["metrics:read"])))]
pub async fn get_alert(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Alert>> {
    Ok(Json(
        s.metric_service
            .store()
            .get_alert(p.workspace_id, id)
            .await?,
    ))
}

/// Acknowledge an alert (records who saw it; it keeps firing until its condition clears).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = ["metrics:update"])))]
pub async fn acknowledge(
    Authz(p, _): Authz<perm::MetricsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
) -> ApiResult<Json<Alert>> {
    Ok(Json(s.alerts.acknowledge(&p, &ctx, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeBody {
    /// RFC 3339, within 30 days; `null` ends the snooze.
    pub until: Option<String>,
}

/// Snooze an alert's notifications until a time.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/snooze", tag = "alerts", params(("id" = uuid::Uuid, Path)), request_body = SnoozeBody,
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["metrics:update"])))]
pub async fn snooze(
    Authz(p, _): Authz<perm::MetricsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<SnoozeBody>,
) -> ApiResult<Json<Alert>> {
    let until = parse_time("until", b.until.as_deref())?;
    Ok(Json(s.alerts.snooze(&p, &ctx, id, until).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(evaluate))
        .routes(routes!(list_alerts))
        .routes(routes!(get_alert))
        .routes(routes!(acknowledge))
        .routes(routes!(snooze))
}
