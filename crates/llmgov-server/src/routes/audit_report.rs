//! `GET /api/v1/audit/compliance-report`: SOC 2, GDPR, HIPAA and EU AI Act views of the
//! workspace's audit trail for a period, as JSON, CSV or a printable HTML page. Each report
//! names the signed checkpoint it was computed against.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use llmgov_core::audit::report::{self, FRAMEWORKS, Report};
use llmgov_core::audit::tree;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::routes::audit::{AuditEntryDto, parse_time};
use crate::routes::audit_export::csv_cell;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// `soc2`, `gdpr`, `hipaa` or `eu_ai_act`.
    pub framework: String,
    /// RFC 3339 start (inclusive); default: 30 days before `to`.
    pub from: Option<String>,
    /// RFC 3339 end (exclusive); default: now.
    pub to: Option<String>,
    /// `json` (default), `csv` or `html`.
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SectionDto {
    pub id: String,
    pub title: String,
    pub count: u64,
    /// The first entries (at most 500); `truncated` says whether there were more.
    pub entries: Vec<AuditEntryDto>,
    pub truncated: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ReportDto {
    pub framework: String,
    pub framework_name: String,
    pub workspace_id: uuid::Uuid,
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub entries_in_period: u64,
    /// The signed checkpoint the report was computed against.
    #[schema(value_type = Object)]
    pub checkpoint: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub controls: serde_json::Value,
    pub sections: Vec<SectionDto>,
}

fn to_dto(r: Report) -> ReportDto {
    ReportDto {
        framework: r.framework,
        framework_name: r.framework_name.into(),
        workspace_id: r.workspace_id.0,
        from: r.from,
        to: r.to,
        generated_at: r.generated_at,
        entries_in_period: r.entries_in_period,
        checkpoint: serde_json::to_value(&r.checkpoint).unwrap_or_default(),
        controls: serde_json::to_value(&r.controls).unwrap_or_default(),
        sections: r
            .sections
            .into_iter()
            .map(|s| SectionDto {
                id: s.id.into(),
                title: s.title.into(),
                count: s.count,
                truncated: s.truncated,
                entries: s.entries.into_iter().map(AuditEntryDto::from).collect(),
            })
            .collect(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(r: &ReportDto) -> String {
    let cp = &r.checkpoint;
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name} report</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}}\
         th,td{{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}}th{{background:#f2f2f2}}\
         code{{font-size:12px;word-break:break-all}}@media print{{body{{margin:0}}}}</style></head><body>\
         <h1>{name} compliance report</h1><p>Workspace <code>{ws}</code>, period {from} to {to}; generated {gen}.<br>\
         Computed against signed checkpoint: tree size {size}, root <code>{root}</code>, key <code>{key}</code>.</p>\
         <p>{n} audit entries in the period.</p><h2>Controls</h2><table><tr><th>Control</th><th>Title</th><th>Evidence</th><th>Entries</th></tr>",
        name = esc(&r.framework_name),
        ws = r.workspace_id,
        from = r.from.to_rfc3339(),
        to = r.to.to_rfc3339(),
        gen = r.generated_at.to_rfc3339(),
        size = cp["tree_size"],
        root = esc(cp["root_hash"].as_str().unwrap_or("")),
        key = esc(cp["key_id"].as_str().unwrap_or("")),
        n = r.entries_in_period,
    );
    for c in r.controls.as_array().into_iter().flatten() {
        let sections: Vec<String> = c["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .map(esc)
            .collect();
        out += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(c["id"].as_str().unwrap_or("")),
            esc(c["title"].as_str().unwrap_or("")),
            sections.join(", "),
            c["evidence_count"]
        );
    }
    out += "</table>";
    for s in &r.sections {
        out += &format!(
            "<h2 id=\"{}\">{} ({})</h2>",
            esc(&s.id),
            esc(&s.title),
            s.count
        );
        if s.entries.is_empty() {
            out += "<p>No entries in the period.</p>";
            continue;
        }
        out += "<table><tr><th>#</th><th>Time</th><th>Event</th><th>Actor</th><th>Resource</th><th>Status</th></tr>";
        for e in &s.entries {
            out += &format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{} {}</td><td>{}</td></tr>",
                e.sequence,
                e.timestamp.to_rfc3339(),
                esc(&e.event_type),
                e.actor_id
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| esc(&e.actor_type)),
                esc(e.resource_type.as_deref().unwrap_or("")),
                esc(e.resource_id.as_deref().unwrap_or("")),
                esc(&e.status)
            );
        }
        out += "</table>";
        if s.truncated {
            out += "<p>Only the first 500 entries are listed; export the log for all of them.</p>";
        }
    }
    out + "</body></html>"
}

fn csv(r: &ReportDto) -> String {
    let cp = &r.checkpoint;
    let mut out = format!(
        "# {} report, workspace {}, {} to {}, checkpoint size {} root {} key {}\nsection,sequence,timestamp,event_type,actor_id,action,resource_type,resource_id,status\n",
        r.framework_name,
        r.workspace_id,
        r.from.to_rfc3339(),
        r.to.to_rfc3339(),
        cp["tree_size"],
        cp["root_hash"].as_str().unwrap_or(""),
        cp["key_id"].as_str().unwrap_or("")
    );
    for s in &r.sections {
        for e in &s.entries {
            let cells = [
                s.id.clone(),
                e.sequence.to_string(),
                e.timestamp.to_rfc3339(),
                e.event_type.clone(),
                e.actor_id.map(|a| a.to_string()).unwrap_or_default(),
                e.action.clone(),
                e.resource_type.clone().unwrap_or_default(),
                e.resource_id.clone().unwrap_or_default(),
                e.status.clone(),
            ];
            out += &cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(",");
            out.push('\n');
        }
    }
    out
}

/// Compliance report of the workspace's audit trail for a framework and period.
#[utoipa::path(get, path = "/api/v1/audit/compliance-report", tag = "audit", params(ReportParams),
    responses((status = 200, body = ReportDto), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["audit:read"])))]
pub async fn get_compliance_report(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ReportParams>,
) -> ApiResult<Response> {
    if report::framework(&q.framework).is_none() {
        let known: Vec<&str> = FRAMEWORKS.iter().map(|(f, _, _)| *f).collect();
        return Err(ApiError::bad_request(
            "UNKNOWN_FRAMEWORK",
            format!("framework must be one of: {}", known.join(", ")),
        ));
    }
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "format must be json, csv or html",
        ));
    }
    let to = parse_time("to", q.to.as_deref())?.unwrap_or_else(chrono::Utc::now);
    let from = parse_time("from", q.from.as_deref())?.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "from must be before to",
        ));
    }
    if to - from > chrono::Duration::days(366 * 10) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "the period may span at most ten years",
        ));
    }
    let ws = p.workspace_id;
    let cp = tree::checkpoint_now(&*s.store, &s.checkpoints, ws)
        .await?
        .ok_or_else(|| ApiError::from(llmgov_core::CoreError::not_found("checkpoint")))?;
    let dto = to_dto(report::build(&*s.store, ws, &q.framework, from, to, cp).await?);
    Ok(match format {
        "html" => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html(&dto),
        )
            .into_response(),
        "csv" => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            )],
            csv(&dto),
        )
            .into_response(),
        _ => Json(dto).into_response(),
    })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_compliance_report))
}
