//! `GET /api/v1/audit/export`: the workspace's log, streamed page by page (memory stays
//! bounded), up to a signed checkpoint taken at the start of the export. The checkpoint's
//! size and root are in the `X-Audit-Checkpoint-*` headers; fetch the checkpoint itself from
//! `/audit/checkpoints/latest` and verify offline with `llmgov audit verify --export`.
//! A filtered export carries an inclusion proof per entry.
//!
//! `format=archive` sends the same entries as a binary audit archive (`.lgva`, see
//! `llmgov_core::audit::archive`) that embeds its signed checkpoint and verifies several
//! times faster offline.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::stream;
use llmgov_core::audit::archive;
use llmgov_core::audit::export::ExportLine;
use llmgov_core::audit::{AuditEntry, tree};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::routes::audit::AuditFilterFields;

const PAGE: i64 = 500;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `jsonl` (default, verifiable offline), `archive` (binary `.lgva`, verifiable offline,
    /// embeds its checkpoint) or `csv`.
    pub format: Option<String>,
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

const CSV_COLUMNS: &str = "sequence,id,timestamp,event_type,event_category,actor_id,actor_type,action,resource_type,resource_id,status,request_id,ip_address,user_agent,details,entry_hash\n";

/// Quotes a CSV cell, and defuses cells a spreadsheet would run as a formula.
pub(crate) fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_row(e: &AuditEntry) -> String {
    let p = e.personal_map();
    let hex: String = e.entry_hash.iter().map(|b| format!("{b:02x}")).collect();
    let cells = [
        e.sequence.to_string(),
        e.id.to_string(),
        e.timestamp.to_rfc3339(),
        e.event_type.clone(),
        e.event_category.clone(),
        e.actor_id.map(|a| a.to_string()).unwrap_or_default(),
        e.actor_type.clone(),
        e.action.clone(),
        e.resource_type.clone().unwrap_or_default(),
        e.resource_id.clone().unwrap_or_default(),
        e.status.clone(),
        e.request_id.clone().unwrap_or_default(),
        p.get("ip_address").cloned().unwrap_or_default(),
        p.get("user_agent").cloned().unwrap_or_default(),
        e.details.clone(),
        hex,
    ];
    let mut row = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    row.push('\n');
    row
}

/// Export the workspace's audit log (streamed).
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportParams),
    responses((status = 200, description = "JSON Lines or CSV", content_type = "application/x-ndjson"), (status = 400, body = ErrorBody)),
    security(("bearer" = ["audit:read"])))]
pub async fn export_audit_log(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let format = match q.format.as_deref() {
        None | Some("jsonl") => Format::Jsonl,
        Some("archive") => Format::Archive,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                "format must be jsonl, archive or csv",
            ));
        }
    };
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
    let ws = p.workspace_id;
    let cp = tree::checkpoint_now(&*s.store, &s.checkpoints, ws).await?;
    let size = cp.as_ref().map(|c| c.tree_size as i64).unwrap_or(0);
    // After retention pruning the tree cannot be rebuilt from the export: prove every line.
    let (floor, _) = s.store.audit_floor(ws).await?;
    let with_proofs = (!filter.is_empty() || floor > 0) && format != Format::Csv;
    let store = s.store.clone();
    let start = match format {
        Format::Csv => CSV_COLUMNS.as_bytes().to_vec(),
        Format::Archive => {
            let mut h = Vec::new();
            archive::write_header(&mut h, cp.as_ref());
            h
        }
        Format::Jsonl => Vec::new(),
    };
    let state = Cursor {
        next: floor,
        head: Some(start),
        written: 0,
        ended: false,
    };
    let body = stream::unfold(state, move |mut c| {
        let store = store.clone();
        let filter = filter.clone();
        async move {
            if let Some(h) = c.head.take() {
                return Some((Ok::<_, std::io::Error>(h), c));
            }
            if c.next >= size {
                if format != Format::Archive || c.ended {
                    return None;
                }
                c.ended = true;
                let mut end = Vec::new();
                archive::write_end(&mut end, c.written);
                return Some((Ok(end), c));
            }
            let fail = |e: String, mut c: Cursor| {
                // Nothing more is sent, not even an archive's end marker: a cut-off
                // download must not verify.
                c.next = size;
                c.ended = true;
                Some((Err(std::io::Error::other(e)), c))
            };
            let page = match store.audit_range(ws, c.next, PAGE.min(size - c.next)).await {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => return fail("the log ended before its checkpoint".into(), c),
                Err(e) => return fail(e.to_string(), c),
            };
            c.next = page.last().map(|e| e.sequence + 1).unwrap_or(size);
            let mut out = Vec::new();
            for e in page.iter().filter(|e| filter.matches(e)) {
                if format == Format::Csv {
                    out.extend_from_slice(csv_row(e).as_bytes());
                    continue;
                }
                let proof = if with_proofs {
                    match tree::inclusion_proof(&*store, ws, e.sequence as u64, size as u64).await {
                        Ok(p) => Some(p),
                        Err(err) => return fail(err.to_string(), c),
                    }
                } else {
                    None
                };
                if format == Format::Archive {
                    archive::write_record(&mut out, e, proof.as_deref());
                    c.written += 1;
                    continue;
                }
                serde_json::to_writer(&mut out, &ExportLine::from_entry(e, proof))
                    .expect("serializes");
                out.push(b'\n');
            }
            Some((Ok(out), c))
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    let (content_type, name) = match format {
        Format::Csv => (
            "text/csv; charset=utf-8",
            "attachment; filename=\"audit.csv\"",
        ),
        Format::Jsonl => (
            "application/x-ndjson",
            "attachment; filename=\"audit.jsonl\"",
        ),
        Format::Archive => (
            "application/vnd.llmgov.audit-archive",
            "attachment; filename=\"audit.lgva\"",
        ),
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(name));
    if let Some(cp) = cp {
        h.insert("x-audit-checkpoint-size", HeaderValue::from(cp.tree_size));
        h.insert(
            "x-audit-checkpoint-root",
            HeaderValue::from_str(&cp.root_hash).expect("hex is a valid header"),
        );
    }
    Ok(resp)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Archive,
    Csv,
}

/// Where a streamed export is.
struct Cursor {
    /// Next sequence to read.
    next: i64,
    /// What goes out first (CSV columns, archive header).
    head: Option<Vec<u8>>,
    /// Archive records sent, for the end marker.
    written: u64,
    ended: bool,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_audit_log))
}
