//! `/api/v1/datasets`: Data Vault datasets, their records and exports.
//!
//! Permissions: `datasets:read` lists and describes datasets (metadata, history, refs);
//! `datasets:execute` reads their records (pages, single records, exports); `datasets:update`
//! pushes; `datasets:delete` deletes datasets and manages protected branches.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmgov_core::CoreError;
use llmgov_core::ids::DatasetId;
use llmgov_core::policy::model::{Decision, PolicyType};
use llmgov_core::vault::VaultService;
use llmgov_core::vault::model::{Dataset, DatasetFormat, DatasetPatch, DatasetSpec};
use llmgov_core::vault::push::PushResult;
use llmgov_core::vault::read::RecordItem;
use llmgov_core::vault::store::DatasetFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ListParams, PageDto, select_fields};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};

pub(crate) fn vault(s: &AppState) -> ApiResult<&Arc<VaultService>> {
    s.vault.as_ref().ok_or_else(|| {
        ApiError::from(CoreError::Unavailable(
            "the data vault is not configured on this instance".into(),
        ))
    })
}

pub(crate) async fn dataset(
    s: &AppState,
    p: &llmgov_core::identity::Principal,
    id: uuid::Uuid,
) -> ApiResult<(Arc<VaultService>, Dataset)> {
    let v = Arc::clone(vault(s)?);
    let d = v.get_dataset(p, DatasetId(id)).await?;
    Ok((v, d))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DatasetListParams {
    /// Exact name.
    pub name: Option<String>,
    /// Datasets carrying this tag.
    pub tag: Option<String>,
    /// `jsonl`, `csv` or `parquet`.
    pub format: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
    /// `name`, `created_at` or `updated_at`, with `:asc` or `:desc`.
    pub sort: Option<String>,
    pub fields: Option<String>,
}

/// Datasets of the workspace.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", params(DatasetListParams),
    responses((status = 200, body = PageDto<Dataset>), (status = 400, body = ErrorBody)), security(("bearer" = ["datasets:read"])))]
pub async fn list_datasets(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<DatasetListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let l = ListParams {
        page: f.page.clone(),
        limit: f.limit.clone(),
        sort: f.sort.clone(),
        fields: None,
    };
    let q = l.query(&["name", "created_at", "updated_at"], "name")?;
    let filter = DatasetFilter {
        name: f.name.clone(),
        tag: f.tag.clone(),
        format: f.format.as_deref().map(DatasetFormat::parse).transpose()?,
    };
    let page = vault(&s)?.list_datasets(&p, &filter, &q).await?;
    select_fields(PageDto::from_page(page, |d| d), f.fields.as_deref()).map(Json)
}

/// Create a dataset (`name`, `description`, `format`, `tags`, `metadata`). Its data key is
/// generated and stored wrapped by the current key-encryption key.
#[utoipa::path(post, path = "/api/v1/datasets", tag = "datasets", request_body = DatasetSpec,
    responses((status = 201, body = Dataset), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:create"])))]
pub async fn create_dataset(
    Authz(p, _): Authz<perm::DatasetsCreate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<DatasetSpec>,
) -> ApiResult<(StatusCode, Json<Dataset>)> {
    let d = vault(&s)?.create_dataset(&p, &ctx, b).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// One dataset.
#[utoipa::path(get, path = "/api/v1/datasets/{id}", tag = "datasets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Dataset), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:read"])))]
pub async fn get_dataset(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Dataset>> {
    Ok(Json(dataset(&s, &p, id).await?.1))
}

/// Change a dataset's description, tags or metadata.
#[utoipa::path(patch, path = "/api/v1/datasets/{id}", tag = "datasets", params(("id" = uuid::Uuid, Path)), request_body = DatasetPatch,
    responses((status = 200, body = Dataset), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn update_dataset(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<DatasetPatch>,
) -> ApiResult<Json<Dataset>> {
    Ok(Json(
        vault(&s)?
            .update_dataset(&p, &ctx, DatasetId(id), b)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// Delete even though other datasets were made from this one.
    pub force: Option<bool>,
}

/// Delete a dataset with its history and key; its stored objects are removed. A dataset
/// that other datasets were made from (see `/dependents`) is a `409 DATASET_HAS_DEPENDENTS`
/// naming them, unless `force=true`.
#[utoipa::path(delete, path = "/api/v1/datasets/{id}", tag = "datasets", params(("id" = uuid::Uuid, Path), DeleteParams),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = ["datasets:delete"])))]
pub async fn delete_dataset(
    Authz(p, _): Authz<perm::DatasetsDelete>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> ApiResult<StatusCode> {
    vault(&s)?
        .delete_dataset(&p, &ctx, DatasetId(id), q.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Dependents {
    /// Datasets with a version made from one of this dataset's versions.
    pub items: Vec<Dataset>,
}

/// Datasets made from this one (their imports named it as a source).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/dependents", tag = "datasets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Dependents), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:read"])))]
pub async fn list_dependents(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Dependents>> {
    Ok(Json(Dependents {
        items: vault(&s)?.dependents(&p, DatasetId(id)).await?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Branch to commit to (default: the dataset's default branch).
    pub branch: Option<String>,
    /// Commit message.
    pub message: Option<String>,
    /// `reject` (default): any malformed line rejects the import, reporting the lines;
    /// `skip`: malformed lines are left out and reported.
    pub on_error: Option<String>,
    /// Versions of other datasets this data was made from, for lineage: `NAME` or
    /// `NAME@REF`, comma-separated (at most 20).
    pub source: Option<String>,
}

fn push_status(r: &PushResult) -> StatusCode {
    if r.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Import a body in the dataset's format (JSON Lines, CSV with a header row, or Parquet; any
/// size, streamed) as the new version of a branch: the raw body, or the first file part of
/// a `multipart/form-data` body. Records the branch head already holds are not stored
/// again. Sending the same content again makes no commit (200 with `changed: false`). An
/// interrupted upload commits nothing.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/import", tag = "datasets", params(("id" = uuid::Uuid, Path), ImportParams),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 201, body = PushResult), (status = 200, body = PushResult), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn import_records(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<ImportParams>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<PushResult>)> {
    let (v, d) = dataset(&s, &p, id).await?;
    let opts = super::uploads::push_options(q)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let r = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let boundary = multer::parse_boundary(content_type).map_err(|e| {
            ApiError::bad_request("INVALID_MULTIPART", format!("multipart body: {e}"))
        })?;
        let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
        // The first part that is a file (or the only part) is the upload.
        let file = loop {
            match parts.next_field().await {
                Ok(Some(f)) if f.file_name().is_some() || f.name() == Some("file") => break f,
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(ApiError::bad_request(
                        "INVALID_MULTIPART",
                        "the multipart body has no file part",
                    ));
                }
                Err(e) => {
                    return Err(ApiError::bad_request(
                        "INVALID_MULTIPART",
                        format!("multipart body: {e}"),
                    ));
                }
            }
        };
        v.push(&p, &ctx, &d, opts, Box::pin(file)).await?
    } else {
        v.push(&p, &ctx, &d, opts, body.into_data_stream()).await?
    };
    if r.changed {
        super::pii::scan_later(&s, &d, &r.commit);
    }
    Ok((push_status(&r), Json(r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendBody {
    /// 1 to 10,000 JSON objects, appended in order.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<serde_json::Value>,
    pub branch: Option<String>,
    pub message: Option<String>,
}

/// Append records to a branch (a new commit).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/records", tag = "datasets", params(("id" = uuid::Uuid, Path)), request_body = AppendBody,
    responses((status = 201, body = PushResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn append_records(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<AppendBody>,
) -> ApiResult<(StatusCode, Json<PushResult>)> {
    if b.records.len() > 10_000 {
        return Err(CoreError::invalid("records", "at most 10,000 records per request").into());
    }
    let (v, d) = dataset(&s, &p, id).await?;
    let r = v
        .append(&p, &ctx, &d, b.branch.as_deref(), b.message, &b.records)
        .await?;
    if r.changed {
        super::pii::scan_later(&s, &d, &r.commit);
    }
    Ok((push_status(&r), Json(r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// Branch, tag or commit to merge.
    pub source: String,
    /// Branch merged into (default: the default branch).
    pub target: Option<String>,
    pub message: Option<String>,
}

/// Merge a ref into a branch at record level: a commit with both heads as parents. Records
/// changed differently on both sides are a `409 MERGE_CONFLICT` listing them (positions and
/// record ids on each side); nothing is committed. Already merged: `200`, `changed: false`.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/merge", tag = "datasets", params(("id" = uuid::Uuid, Path)), request_body = MergeBody,
    responses((status = 201, body = PushResult), (status = 200, body = PushResult), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn merge_refs(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<MergeBody>,
) -> ApiResult<(StatusCode, Json<PushResult>)> {
    let (v, d) = dataset(&s, &p, id).await?;
    let r = v
        .merge(&p, &ctx, &d, &b.source, b.target.as_deref(), b.message)
        .await?;
    Ok((push_status(&r), Json(r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertBody {
    /// The commit whose changes are undone.
    pub commit: String,
    /// Branch to commit the revert to (default: the default branch).
    pub branch: Option<String>,
    pub message: Option<String>,
}

/// Undo a commit's changes on a branch, as a new commit (later changes to the same records
/// are a `409 MERGE_CONFLICT`).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/revert", tag = "datasets", params(("id" = uuid::Uuid, Path)), request_body = RevertBody,
    responses((status = 201, body = PushResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn revert_commit(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<RevertBody>,
) -> ApiResult<(StatusCode, Json<PushResult>)> {
    let (v, d) = dataset(&s, &p, id).await?;
    let r = v
        .revert(&p, &ctx, &d, &b.commit, b.branch.as_deref(), b.message)
        .await?;
    Ok((push_status(&r), Json(r)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    /// Branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
    /// Only records that match: `PATH OP VALUE` conditions joined by `,` (all must hold).
    /// Paths use dots, array indices and `*` (`messages.*.content`); operators `=`, `!=`,
    /// `~` (contains, any case), `>`, `>=`, `<`, `<=`; a bare path: the field is set.
    pub filter: Option<String>,
    /// `true`: personal data in the records is replaced by its type (`<EMAIL_ADDRESS>`),
    /// with the workspace's detection settings. Needs no PII permission: a preview for
    /// people who may read the dataset but should not see who is in it.
    pub masked: Option<bool>,
}

/// Records with their personal data replaced by its type (`PiiService::mask_records`).
async fn masked(
    s: &AppState,
    p: &llmgov_core::identity::Principal,
    items: Vec<RecordItem>,
) -> ApiResult<Vec<RecordItem>> {
    let values = items
        .iter()
        .map(|r| serde_json::from_str(r.data.get()))
        .collect::<Result<Vec<serde_json::Value>, _>>()
        .map_err(CoreError::internal)?;
    let values = s.pii.mask_records(p, values).await?;
    items
        .into_iter()
        .zip(values)
        .map(|(r, v)| {
            Ok(RecordItem {
                data: serde_json::value::to_raw_value(&v).map_err(CoreError::internal)?,
                ..r
            })
        })
        .collect()
}

#[derive(Serialize, ToSchema)]
pub struct RecordPage {
    /// The commit read.
    pub commit: String,
    pub items: Vec<RecordItem>,
    pub total: i64,
    pub page: u32,
    pub limit: u32,
    pub has_more: bool,
}

/// A page of the records of a version, in order; with `filter`, the records that match
/// (`total` counts every match).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/records", tag = "datasets", params(("id" = uuid::Uuid, Path), RecordParams),
    responses((status = 200, body = RecordPage), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:execute"])))]
pub async fn list_records(
    Authz(p, _): Authz<perm::DatasetsExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiQuery(r): ApiQuery<RecordParams>,
) -> ApiResult<Json<RecordPage>> {
    let q = ListParams {
        page: r.page,
        limit: r.limit,
        sort: None,
        fields: None,
    }
    .query(&["index"], "index")?;
    let (v, d) = dataset(&s, &p, id).await?;
    let (c, page) = match r.filter.as_deref() {
        Some(f) => {
            let f = llmgov_core::vault::filter::Filter::parse(f)?;
            v.records_where(&p, &ctx, &d, r.reference.as_deref(), &f, &q)
                .await?
        }
        None => v.records(&p, &ctx, &d, r.reference.as_deref(), &q).await?,
    };
    let items = if r.masked == Some(true) {
        masked(&s, &p, page.items).await?
    } else {
        page.items
    };
    Ok(Json(RecordPage {
        commit: c.id.0,
        items,
        total: page.total,
        page: page.page,
        limit: page.limit,
        has_more: page.has_more,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordParam {
    /// Branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// `true`: personal data replaced by its type (as on the records list).
    pub masked: Option<bool>,
}

/// One record of a version, by its position (0-based).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/records/{index}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("index" = u64, Path), RecordParam),
    responses((status = 200, body = RecordItem), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:execute"])))]
pub async fn get_record(
    Authz(p, _): Authz<perm::DatasetsExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, index)): Path<(String, String)>,
    ApiQuery(r): ApiQuery<RecordParam>,
) -> ApiResult<Json<RecordItem>> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("INVALID_ID", "the id in the path must be a UUID"))?;
    let index: u64 = index.parse().map_err(|_| {
        ApiError::bad_request("INVALID_PATH", "the record index is a non-negative integer")
    })?;
    let (v, d) = dataset(&s, &p, id).await?;
    let item = v
        .record(&p, &ctx, &d, r.reference.as_deref(), index)
        .await?
        .1;
    if r.masked == Some(true) {
        let mut one = masked(&s, &p, vec![item]).await?;
        return Ok(Json(one.remove(0)));
    }
    Ok(Json(item))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// `jsonl`, `csv` or `parquet` (default: the dataset's format). Another format than
    /// the dataset's converts the records: CSV takes the columns of the first records
    /// (nested values as JSON text), Parquet keeps a Parquet dataset's schema or infers one
    /// from the first records.
    pub format: Option<String>,
    /// An anonymization profile of the workspace's PII settings: every record passes
    /// through it (field rules, then every other string scanned) before it is encoded.
    pub profile: Option<String>,
}

/// Stream a version. In the dataset's own JSON Lines or CSV, `Content-Length` is exact;
/// `X-Llmgov-Commit` names the commit. A block failing verification, or a record that does
/// not fit a converted format, aborts the transfer (the body ends short).
///
/// Active policies of type `data` are asked first, with `{"event_type": "dataset.export",
/// "dataset", "dataset_id", "commit", "ref", "format", "anonymized", "profile", "pii":
/// {"total", "records_with_pii", "counts"}}` (the version's PII findings); a `deny` is
/// `403 EXPORT_DENIED_BY_POLICY` naming the violations.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/export", tag = "datasets", params(("id" = uuid::Uuid, Path), ExportParams),
    responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:execute"])))]
pub async fn export_dataset(
    Authz(p, _): Authz<perm::DatasetsExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let (v, d) = dataset(&s, &p, id).await?;
    let format = q.format.as_deref().map(DatasetFormat::parse).transpose()?;
    let c = v.resolve(&d, q.reference.as_deref()).await?;
    let profile = q.profile.clone();
    let conditions =
        serde_json::json!({"event_type": "dataset.export", "dataset": d.name.as_str()});
    let gate = s
        .policies
        .evaluate_gate(&p, &ctx, PolicyType::Data, conditions, || async {
            let pii = match &profile {
                Some(_) => None,
                None => {
                    let r = s.pii.version_report(&d, &c).await?;
                    Some(serde_json::json!({"total": r.total, "records_with_pii": r.records_with_pii, "counts": r.counts}))
                }
            };
            Ok(serde_json::json!({
                "event_type": "dataset.export", "dataset": d.name.as_str(), "dataset_id": d.id,
                "commit": c.id, "ref": q.reference, "format": q.format,
                "anonymized": profile.is_some(), "profile": profile, "pii": pii,
            }))
        })
        .await?;
    if let Some(o) = gate
        && o.decision == Decision::Deny
    {
        let messages: Vec<&str> = o.violations.iter().map(|v| v.message.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "EXPORT_DENIED_BY_POLICY",
            format!("a data policy denies this export: {}", messages.join("; ")),
        )
        .with_details(
            serde_json::json!({ "violations": messages, "evaluation_id": o.evaluation_id }),
        ));
    }
    let transform = match &q.profile {
        Some(name) => Some((
            name.clone(),
            s.pii
                .record_transform(&p, &ctx, name, d.id.to_string())
                .await?,
        )),
        None => None,
    };
    let e = v
        .export_commit(&p, &ctx, &d, c, q.reference.as_deref(), format, transform)
        .await?;
    let mut rx = e.rx;
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))))
    }));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    let (content_type, extension) = match e.format {
        DatasetFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        DatasetFormat::Parquet => ("application/vnd.apache.parquet", "parquet"),
        DatasetFormat::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(size) = e.size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    h.insert(
        "x-llmgov-commit",
        HeaderValue::from_str(e.commit.id.as_str())
            .map_err(|e| ApiError::from(CoreError::internal(e)))?,
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!(
            "attachment; filename=\"{}.{extension}\"",
            d.name.as_str()
        ))
        .map_err(|e| ApiError::from(CoreError::internal(e)))?,
    );
    Ok(resp)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_datasets, create_dataset))
        .routes(routes!(get_dataset, update_dataset, delete_dataset))
        .routes(routes!(list_dependents))
        .routes(routes!(list_records, append_records))
        .routes(routes!(get_record))
        .routes(routes!(export_dataset))
        .routes(routes!(merge_refs))
        .routes(routes!(revert_commit))
}

/// The streamed import and resumable uploads: outside the request body limit, timeout and
/// idempotency layers.
pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_records))
        .merge(super::uploads::router())
}
