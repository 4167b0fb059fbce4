//! The webhook delivery log (`/api/v1/webhooks/deliveries`): every message sent to a webhook
//! (alert channels, `notify` policy actions) with its status, attempts, last HTTP status and
//! error, and a retry for dead deliveries.

use axum::Json;
use axum::extract::State;
use llmgov_core::CoreError;
use llmgov_core::audit::AuditDraft;
use llmgov_core::outbox::{DeliveryFilter, DeliveryRecord};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ListParams, PageDto};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, PathId};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// `pending`, `delivered` or `dead`.
    pub status: Option<String>,
    /// e.g. `alerts.fire`, `policy.violation`.
    pub topic: Option<String>,
}

/// Webhook deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "webhooks", params(DeliveryParams, ListParams),
    responses((status = 200, body = PageDto<DeliveryRecord>), (status = 422, body = ErrorBody)),
    security(("bearer" = ["settings:read"])))]
pub async fn list_deliveries(
    Authz(p, _): Authz<perm::SettingsRead>,
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<DeliveryParams>,
    ApiQuery(l): ApiQuery<ListParams>,
) -> ApiResult<Json<PageDto<DeliveryRecord>>> {
    let q = l.query(&["created_at"], "created_at:desc")?;
    if let Some(st) = &f.status
        && !["pending", "delivered", "dead"].contains(&st.as_str())
    {
        return Err(CoreError::invalid("status", "pending, delivered or dead").into());
    }
    let filter = DeliveryFilter {
        status: f.status,
        topic: f.topic,
    };
    let page = s.store.list_deliveries(p.workspace_id, &filter, &q).await?;
    Ok(Json(PageDto::from_page(page, |d| d)))
}

/// Deliver a dead (or pending) message again now, with fresh attempts.
#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/retry", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    responses((status = 202), (status = 404, body = ErrorBody)), security(("bearer" = ["settings:update"])))]
pub async fn retry_delivery(
    Authz(p, _): Authz<perm::SettingsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
) -> ApiResult<axum::http::StatusCode> {
    let audit = AuditDraft::new(p.workspace_id, &ctx, "webhooks.retry", "integration")
        .resource("webhook_delivery", id);
    if !s.store.retry_delivery(p.workspace_id, id, audit).await? {
        return Err(CoreError::not_found("webhook delivery").into());
    }
    s.policies.outbox_wakeup().wake();
    Ok(axum::http::StatusCode::ACCEPTED)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}
