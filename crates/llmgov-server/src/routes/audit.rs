//! `/api/v1/audit/logs`: the workspace's audit trail (read-only; nobody can change it).

use axum::Json;
use axum::extract::State;
use llmgov_core::audit::AuditEntry;
use llmgov_core::ids::UserId;
use llmgov_core::store::AuditFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::{ListParams, PageDto, select_fields};

#[derive(Serialize, ToSchema)]
pub struct AuditEntryDto {
    pub id: uuid::Uuid,
    /// Position in the workspace's log: 0-based and gap-free.
    pub sequence: i64,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub event_type: String,
    pub event_category: String,
    pub actor_id: Option<uuid::Uuid>,
    pub actor_type: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub before_state: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after_state: Option<serde_json::Value>,
    /// Hex BLAKE3 hash of the entry, committing to the previous entry's hash.
    pub entry_hash: String,
    pub prev_hash: String,
}

fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(e: AuditEntry) -> Self {
        let personal = e.personal_map();
        Self {
            id: e.id.0,
            sequence: e.sequence,
            timestamp: e.timestamp,
            event_type: e.event_type,
            event_category: e.event_category,
            actor_id: e.actor_id.map(|a| a.0),
            actor_type: e.actor_type,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            status: e.status,
            ip_address: personal.get("ip_address").cloned(),
            user_agent: personal.get("user_agent").cloned(),
            request_id: e.request_id,
            session_id: e.session_id,
            details: parse_json(&e.details),
            before_state: e.before_state.as_deref().map(parse_json),
            after_state: e.after_state.as_deref().map(parse_json),
            entry_hash: llmgov_core::hex::encode(&e.entry_hash),
            prev_hash: llmgov_core::hex::encode(&e.prev_hash),
        }
    }
}

/// Filters shared by listing, search and export; each narrows the result.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilterFields {
    pub event_type: Option<String>,
    /// e.g. `authentication`, `access_control`, `key_management`, `configuration`.
    pub event_category: Option<String>,
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    /// `success`, `failure` or `denied`.
    pub status: Option<String>,
    pub request_id: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    pub from: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    pub to: Option<String>,
}

impl AuditFilterFields {
    pub(crate) fn parse(self, text: Option<String>) -> ApiResult<AuditFilter> {
        let from = parse_time("from", self.from.as_deref())?;
        let to = parse_time("to", self.to.as_deref())?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                "from must not be after to",
            ));
        }
        if let (Some(f), Some(t)) = (from, to)
            && t - f > chrono::Duration::days(36_525)
        {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                "the time range may span at most 100 years",
            ));
        }
        let short = |field: &str, v: Option<String>| -> ApiResult<Option<String>> {
            match v.filter(|v| !v.is_empty()) {
                Some(v) if v.chars().count() > 256 => Err(ApiError::bad_request(
                    "INVALID_QUERY",
                    format!("{field} is too long"),
                )),
                other => Ok(other),
            }
        };
        Ok(AuditFilter {
            event_type: short("event_type", self.event_type)?,
            event_category: short("event_category", self.event_category)?,
            actor_id: self
                .actor_id
                .as_deref()
                .map(UserId::parse)
                .transpose()
                .map_err(|_| ApiError::bad_request("INVALID_QUERY", "actor_id must be a UUID"))?,
            resource_type: short("resource_type", self.resource_type)?,
            resource_id: short("resource_id", self.resource_id)?,
            action: short("action", self.action)?,
            status: short("status", self.status)?,
            request_id: short("request_id", self.request_id)?,
            from,
            to,
            text,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditListParams {
    pub page: Option<String>,
    pub limit: Option<String>,
    /// Sortable: sequence, timestamp (default `sequence:asc`).
    pub sort: Option<String>,
    pub fields: Option<String>,
    pub event_type: Option<String>,
    pub event_category: Option<String>,
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub request_id: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    pub from: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    pub to: Option<String>,
}

/// Timestamps outside this window are mistakes, not queries.
fn plausible(t: chrono::DateTime<chrono::Utc>) -> bool {
    (0..7_258_118_400).contains(&t.timestamp()) // 1970-01-01 to 2200-01-01
}

pub(crate) fn parse_time(
    field: &str,
    v: Option<&str>,
) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok()
            .filter(|t| plausible(*t))
            .ok_or(())
            .map_err(|_| {
                ApiError::bad_request(
                    "INVALID_QUERY",
                    format!("{field} must be an RFC 3339 timestamp between 1970 and 2200"),
                )
            })
    })
    .transpose()
}

const SORTABLE: &[&str] = &["sequence", "timestamp"];

/// Audit entries of the caller's workspace.
#[utoipa::path(get, path = "/api/v1/audit/logs", tag = "audit", params(AuditListParams),
    responses((status = 200, body = PageDto<AuditEntryDto>), (status = 400, body = ErrorBody)), security(("bearer" = ["audit:read"])))]
pub async fn list_audit_logs(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AuditListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let query = ListParams {
        page: q.page,
        limit: q.limit,
        sort: q.sort,
        fields: None,
    }
    .query(SORTABLE, "sequence")?;
    let filter = AuditFilterFields {
        event_type: q.event_type,
        event_category: q.event_category,
        actor_id: q.actor_id,
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        action: q.action,
        status: q.status,
        request_id: q.request_id,
        from: q.from,
        to: q.to,
    }
    .parse(None)?;
    let page = s.identity.list_audit(&p, &filter, &query).await?;
    Ok(Json(select_fields(
        PageDto::from_page(page, AuditEntryDto::from),
        q.fields.as_deref(),
    )?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// Words that must all occur in an entry (event, action, status, resource, details).
    pub query: String,
    #[serde(default)]
    pub filters: Option<AuditFilterFields>,
    pub page: Option<u32>,
    pub limit: Option<u32>,
    /// `timestamp:desc`, `sequence:asc`, ...
    pub sort: Option<String>,
}

/// Full-text search over the workspace's audit entries, with the same filters as the list.
#[utoipa::path(post, path = "/api/v1/audit/search", tag = "audit", request_body = SearchBody,
    responses((status = 200, body = PageDto<AuditEntryDto>), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["audit:read"])))]
pub async fn search_audit_logs(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<SearchBody>,
) -> ApiResult<Json<PageDto<AuditEntryDto>>> {
    let text = b.query.trim().to_string();
    if text.is_empty() || text.chars().count() > 256 {
        return Err(
            llmgov_core::CoreError::invalid("query", "query must be 1 to 256 characters").into(),
        );
    }
    let query = ListParams {
        page: b.page.map(|p| p.to_string()),
        limit: b.limit.map(|l| l.to_string()),
        sort: b.sort,
        fields: None,
    }
    .query(SORTABLE, "sequence")?;
    let filter = b.filters.unwrap_or_default().parse(Some(text))?;
    let page = s.identity.list_audit(&p, &filter, &query).await?;
    Ok(Json(PageDto::from_page(page, AuditEntryDto::from)))
}

#[derive(Serialize, ToSchema)]
pub struct VerifyDto {
    /// Whether every entry, the chain between them and the log's end check out.
    pub valid: bool,
    pub verified_entries: i64,
    /// Hex hash of the last verified entry.
    pub head_hash: String,
    /// Sequence of the first altered, missing, inserted or misplaced entry.
    pub first_invalid_sequence: Option<i64>,
    pub reason: Option<String>,
}

/// Verify the workspace's whole audit log on the server.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyDto)), security(("bearer" = ["audit:read"])))]
pub async fn verify_audit_log(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
) -> ApiResult<Json<VerifyDto>> {
    let r = llmgov_core::audit::verify::verify_workspace(&*s.store, p.workspace_id).await?;
    Ok(Json(VerifyDto {
        valid: r.valid,
        verified_entries: r.verified_entries,
        head_hash: r.head_hash,
        first_invalid_sequence: r.first_invalid_sequence,
        reason: r.reason,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit_logs))
        .routes(routes!(search_audit_logs))
        .routes(routes!(verify_audit_log))
}
