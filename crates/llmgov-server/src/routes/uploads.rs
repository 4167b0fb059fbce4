//! `/api/v1/datasets/{id}/uploads`: resumable uploads. A client starts an upload, sends the
//! file as parts at byte offsets (`PUT ...?offset=`; after an interruption it asks how much
//! arrived and goes on from there), then commits it as one import. Parts live in the object
//! store, sealed with the dataset's key, so any instance can take any request. Every route
//! needs `datasets:update`, and an upload is visible to the user who started it only.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use llmgov_core::CoreError;
use llmgov_core::vault::push::{OnError, PushOptions, PushResult, SourceRef};
use llmgov_core::vault::upload::{MAX_PART_BYTES, UploadStatus};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::datasets::{ImportParams, dataset};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, PathId};

fn ids(id: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request("INVALID_ID", "the id in the path must be a UUID"))
}

/// Start a resumable upload (then `PUT` its parts and `POST .../commit`). Uploads not
/// committed expire with the garbage collector's grace period (`vault.gc_grace_secs`).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/uploads", tag = "datasets", params(("id" = uuid::Uuid, Path)),
    responses((status = 201, body = UploadStatus), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn start_upload(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, Json<UploadStatus>)> {
    let (v, d) = dataset(&s, &p, id).await?;
    Ok((StatusCode::CREATED, Json(v.start_upload(&p, &d).await?)))
}

/// How much of an upload arrived: `received` is the offset of the next part.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/uploads/{upload}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("upload" = String, Path)),
    responses((status = 200, body = UploadStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn upload_status(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Path((id, upload)): Path<(String, String)>,
) -> ApiResult<Json<UploadStatus>> {
    let (v, d) = dataset(&s, &p, ids(&id)?).await?;
    Ok(Json(v.upload_status(&p, &d, &upload).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PartParams {
    /// Byte offset of the part in the file: the upload's `received`.
    pub offset: u64,
}

/// Send the part of the file that starts at `offset` (1 byte to 64 MiB). A part at another
/// offset than the bytes received so far is `409 UPLOAD_OFFSET_MISMATCH`; the same part sent
/// again is accepted without change.
#[utoipa::path(put, path = "/api/v1/datasets/{id}/uploads/{upload}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("upload" = String, Path), PartParams),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, body = UploadStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn upload_part(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Path((id, upload)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PartParams>,
    body: Body,
) -> ApiResult<Json<UploadStatus>> {
    let (v, d) = dataset(&s, &p, ids(&id)?).await?;
    let bytes = axum::body::to_bytes(body, MAX_PART_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!(
                    "a part has at most {} MiB (or the transfer broke)",
                    MAX_PART_BYTES >> 20
                ),
            )
        })?;
    Ok(Json(v.upload_part(&p, &d, &upload, q.offset, bytes).await?))
}

/// Import the upload's bytes as the new version of a branch (the parameters of `import`);
/// the parts are removed once committed.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/uploads/{upload}/commit", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("upload" = String, Path), ImportParams),
    responses((status = 201, body = PushResult), (status = 200, body = PushResult), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn commit_upload(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, upload)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ImportParams>,
) -> ApiResult<(StatusCode, Json<PushResult>)> {
    let (v, d) = dataset(&s, &p, ids(&id)?).await?;
    let opts = push_options(q)?;
    let r = v.commit_upload(&p, &ctx, &d, &upload, opts).await?;
    if r.changed {
        super::pii::scan_later(&s, &d, &r.commit);
    }
    let status = if r.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r)))
}

/// Abandon an upload and delete its parts.
#[utoipa::path(delete, path = "/api/v1/datasets/{id}/uploads/{upload}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("upload" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = ["datasets:update"])))]
pub async fn abort_upload(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Path((id, upload)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (v, d) = dataset(&s, &p, ids(&id)?).await?;
    v.abort_upload(&p, &d, &upload).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The options of an import from its query parameters.
pub(crate) fn push_options(q: ImportParams) -> Result<PushOptions, CoreError> {
    let on_error = q
        .on_error
        .as_deref()
        .map(OnError::parse)
        .transpose()?
        .unwrap_or(OnError::Reject);
    let sources = q
        .source
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(SourceRef::parse)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(PushOptions {
        branch: q.branch,
        message: q.message,
        on_error,
        sources,
    })
}

/// Outside the request body limit and timeout (parts are large; a commit imports them all).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_upload))
        .routes(routes!(upload_status, upload_part, abort_upload))
        .routes(routes!(commit_upload))
}
