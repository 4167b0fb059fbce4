//! `/api/v1/pii`: scan and anonymize text and records, detokenize, and the workspace's
//! PII settings. Offsets are Unicode code points (end exclusive).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use llmgov_core::CoreError;
use llmgov_core::ids::DatasetId;
use llmgov_core::pii::{
    DatasetPiiReport, DerivedDataset, Detokenized, PiiSettings, ProfileChoice, ScanOptions,
    StoredSettings, TokenValue,
};
use llmgov_pii::EntityType;
use llmgov_pii::anonymize::Profile;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PathId};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// One text, or
    pub text: Option<String>,
    /// up to 1,000 texts.
    pub texts: Option<Vec<String>>,
    /// Only these types (default: the workspace's settings).
    #[schema(value_type = Option<Vec<String>>)]
    pub types: Option<Vec<EntityType>>,
    /// Drop findings scoring below this (default: the workspace's settings).
    pub min_score: Option<f32>,
}

#[derive(Serialize, ToSchema)]
pub struct EntityOut {
    #[serde(rename = "type")]
    pub kind: String,
    /// Code-point offsets, end exclusive.
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub recognizer: String,
}

#[derive(Serialize, ToSchema)]
pub struct ScanResult {
    pub entities: Vec<EntityOut>,
}

#[derive(Serialize, ToSchema)]
pub struct ScanResponse {
    /// For `text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<EntityOut>>,
    /// For `texts`, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<ScanResult>>,
}

fn one_or_many(text: Option<String>, texts: Option<Vec<String>>) -> ApiResult<(Vec<String>, bool)> {
    match (text, texts) {
        (Some(t), None) => Ok((vec![t], true)),
        (None, Some(ts)) => Ok((ts, false)),
        _ => Err(CoreError::invalid("text", "give either `text` or `texts`").into()),
    }
}

/// Find PII and secrets in text with the workspace's settings.
#[utoipa::path(post, path = "/api/v1/pii/scan", tag = "pii", request_body = ScanBody,
    responses((status = 200, body = ScanResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["pii:execute"])))]
pub async fn scan_text(
    Authz(p, _): Authz<perm::PiiExecute>,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<ScanBody>,
) -> ApiResult<Json<ScanResponse>> {
    let (texts, single) = one_or_many(b.text, b.texts)?;
    let opts = ScanOptions {
        types: b.types,
        min_score: b.min_score,
    };
    let found = s.pii.scan(&p, &texts, &opts).await?;
    let mut results: Vec<ScanResult> = found
        .into_iter()
        .map(|es| ScanResult {
            entities: es
                .into_iter()
                .map(|e| EntityOut {
                    kind: e.kind.as_str().to_owned(),
                    start: e.start,
                    end: e.end,
                    score: (e.score * 100.0).round() / 100.0,
                    recognizer: e.recognizer.to_owned(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(if single {
        ScanResponse {
            entities: results.pop().map(|r| r.entities),
            results: None,
        }
    } else {
        ScanResponse {
            entities: None,
            results: Some(results),
        }
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnonymizeBody {
    /// One text, or
    pub text: Option<String>,
    /// up to 1,000 texts, or
    pub texts: Option<Vec<String>>,
    /// up to 1,000 JSON records (field rules apply; every other string is scanned).
    #[schema(value_type = Option<Vec<Object>>)]
    pub records: Option<Vec<serde_json::Value>>,
    /// A profile of the workspace's settings, or
    pub profile: Option<String>,
    /// operators per type (`{"EMAIL_ADDRESS": {"operator": "hash"}}`),
    #[schema(value_type = Option<Object>)]
    pub operators: Option<BTreeMap<String, llmgov_pii::anonymize::Operator>>,
    /// the operator of other types (default `replace`),
    #[schema(value_type = Option<Object>)]
    pub default: Option<llmgov_pii::anonymize::Operator>,
    /// and per-field rules of records.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<BTreeMap<String, llmgov_pii::anonymize::FieldRule>>,
    /// Pseudonyms are consistent within a scope (default: the workspace).
    pub scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AnonymizedText {
    pub text: String,
    /// What was replaced: input offsets (`start`, `end`) and output offsets (`new_start`,
    /// `new_end`), in code points.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<llmgov_pii::anonymize::Replacement>,
}

#[derive(Serialize, ToSchema)]
pub struct AnonymizeResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub items: Option<Vec<llmgov_pii::anonymize::Replacement>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<AnonymizedText>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub records: Option<Vec<serde_json::Value>>,
    /// Replaced values per type (records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<BTreeMap<String, u64>>,
}

/// Anonymize text or records with a named profile or inline operators. `tokenize` keeps
/// the values in the workspace's encrypted token vault (audited as `pii.tokenize`).
#[utoipa::path(post, path = "/api/v1/pii/anonymize", tag = "pii", request_body = AnonymizeBody,
    responses((status = 200, body = AnonymizeResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = ["pii:execute"])))]
pub async fn anonymize(
    Authz(p, _): Authz<perm::PiiExecute>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<AnonymizeBody>,
) -> ApiResult<Json<AnonymizeResponse>> {
    let inline = b.operators.is_some() || b.default.is_some() || b.fields.is_some();
    let choice = match (b.profile, inline) {
        (Some(_), true) => {
            return Err(CoreError::invalid(
                "profile",
                "give a profile name or inline operators, not both",
            )
            .into());
        }
        (Some(name), false) => ProfileChoice::Named(name),
        (None, _) => ProfileChoice::Inline(Profile {
            operators: b.operators.unwrap_or_default(),
            default: b.default.unwrap_or_default(),
            fields: b.fields.unwrap_or_default(),
        }),
    };
    let scope = b.scope.unwrap_or_default();
    if scope.len() > 256 {
        return Err(CoreError::invalid("scope", "at most 256 bytes").into());
    }
    if let Some(records) = b.records {
        if b.text.is_some() || b.texts.is_some() {
            return Err(CoreError::invalid("records", "give `records`, `text` or `texts`").into());
        }
        let (records, replaced) = s
            .pii
            .anonymize_records(&p, &ctx, records, &choice, &scope)
            .await?;
        return Ok(Json(AnonymizeResponse {
            text: None,
            items: None,
            results: None,
            records: Some(records),
            replaced: Some(replaced),
        }));
    }
    let (texts, single) = one_or_many(b.text, b.texts)?;
    let mut out = s
        .pii
        .anonymize_texts(&p, &ctx, texts, &choice, &scope)
        .await?;
    Ok(Json(if single {
        let a = out
            .pop()
            .ok_or_else(|| ApiError::from(CoreError::internal("no result")))?;
        AnonymizeResponse {
            text: Some(a.text),
            items: Some(a.items),
            results: None,
            records: None,
            replaced: None,
        }
    } else {
        AnonymizeResponse {
            text: None,
            items: None,
            results: Some(
                out.into_iter()
                    .map(|a| AnonymizedText {
                        text: a.text,
                        items: a.items,
                    })
                    .collect(),
            ),
            records: None,
            replaced: None,
        }
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeBody {
    /// A text whose tokens (`tok_…`) and encrypted values (`enc_…`) are restored, or
    pub text: Option<String>,
    /// up to 1,000 tokens to look up.
    pub tokens: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct DetokenizeResponse {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub text: Option<Detokenized>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<TokenValue>>,
}

/// Restore tokenized and encrypted values. Needs `pii:read` (held by data owners and
/// super admins only); every call is audited as `pii.detokenize`.
#[utoipa::path(post, path = "/api/v1/pii/detokenize", tag = "pii", request_body = DetokenizeBody,
    responses((status = 200, body = DetokenizeResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["pii:read"])))]
pub async fn detokenize(
    Authz(p, _): Authz<perm::PiiRead>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<DetokenizeBody>,
) -> ApiResult<Json<DetokenizeResponse>> {
    match (b.text, b.tokens) {
        (Some(t), None) => Ok(Json(DetokenizeResponse {
            text: Some(s.pii.detokenize_text(&p, &ctx, &t).await?),
            tokens: None,
        })),
        (None, Some(ts)) => Ok(Json(DetokenizeResponse {
            text: None,
            tokens: Some(s.pii.detokenize_tokens(&p, &ctx, &ts).await?),
        })),
        _ => Err(CoreError::invalid("text", "give either `text` or `tokens`").into()),
    }
}

/// The workspace's PII settings (version 0: the built-in defaults).
#[utoipa::path(get, path = "/api/v1/pii/config", tag = "pii",
    responses((status = 200, body = StoredSettings), (status = 403, body = ErrorBody)),
    security(("bearer" = ["pii:execute"])))]
pub async fn get_config(
    Authz(p, _): Authz<perm::PiiExecute>,
    State(s): State<AppState>,
) -> ApiResult<Json<StoredSettings>> {
    Ok(Json(s.pii.settings(&p).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigParams {
    /// The version the change is based on; a newer stored version is `409
    /// PII_SETTINGS_CHANGED`.
    pub version: Option<i64>,
}

/// Replace the workspace's PII settings: detection (`scan`: types, `min_score`,
/// `thresholds`, custom `recognizers`, `allow_list`) and anonymization `profiles`. Every
/// dataset version is scanned again with the new settings when its findings are next read.
/// Audited as `pii.settings.update`.
#[utoipa::path(put, path = "/api/v1/pii/config", tag = "pii", params(ConfigParams), request_body = PiiSettings,
    responses((status = 200, body = StoredSettings), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = ["pii:update"])))]
pub async fn put_config(
    Authz(p, _): Authz<perm::PiiUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(q): ApiQuery<ConfigParams>,
    ApiJson(b): ApiJson<PiiSettings>,
) -> ApiResult<Json<StoredSettings>> {
    Ok(Json(s.pii.put_settings(&p, &ctx, b, q.version).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PiiParams {
    /// Branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// The PII findings of a dataset version: counts per type and per field, and sample
/// locations. Sample values are shown to holders of `pii:read` only (audited as
/// `datasets.pii_read`). A version is scanned after its import, or now if its findings are
/// missing or were made with older settings.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/pii", tag = "datasets", params(("id" = uuid::Uuid, Path), PiiParams),
    responses((status = 200, body = DatasetPiiReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = ["datasets:read"])))]
pub async fn dataset_pii(
    Authz(p, _): Authz<perm::DatasetsRead>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<PiiParams>,
) -> ApiResult<Json<DatasetPiiReport>> {
    Ok(Json(
        s.pii
            .dataset_report(&p, &ctx, DatasetId(id), q.reference.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeriveBody {
    /// The anonymization profile (of the workspace's PII settings).
    pub profile: String,
    /// The dataset that receives the anonymized version (created if missing, in the
    /// source's format, tagged `anonymized`).
    pub target: String,
    /// The source version (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The target's branch (default: its default branch).
    pub branch: Option<String>,
}

/// Make an anonymized version of a dataset in another dataset: every record of the source
/// version goes through the profile, and the new version names the source version in its
/// lineage (`GET .../lineage`, `GET .../dependents`). Sending it again with the same source
/// version makes no new commit. Needs `datasets:read` on the source, `datasets:update` (and
/// `datasets:create` for a new target) and `pii:execute`.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/anonymize", tag = "datasets", params(("id" = uuid::Uuid, Path)),
    request_body = DeriveBody,
    responses((status = 201, body = DerivedDataset), (status = 200, body = DerivedDataset), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["datasets:update"])))]
pub async fn derive_anonymized(
    Authz(p, _): Authz<perm::DatasetsUpdate>,
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    PathId(id): PathId,
    ApiJson(b): ApiJson<DeriveBody>,
) -> ApiResult<(axum::http::StatusCode, Json<DerivedDataset>)> {
    let r = s
        .pii
        .derive_anonymized(
            &p,
            &ctx,
            DatasetId(id),
            b.reference.as_deref(),
            &b.profile,
            &b.target,
            b.branch,
        )
        .await?;
    if r.push.changed {
        scan_later(&s, &r.dataset, &r.push.commit);
    }
    let status = if r.push.changed {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Json(r)))
}

/// Scans a new version in the background, so that its findings are ready when asked for.
pub(crate) fn scan_later(
    s: &AppState,
    d: &llmgov_core::vault::model::Dataset,
    c: &llmgov_core::vault::model::Commit,
) {
    let (pii, d, c) = (s.pii.clone(), d.clone(), c.clone());
    tokio::spawn(async move {
        if let Err(e) = pii.scan_version(&d, &c).await {
            tracing::warn!(dataset = %d.id, commit = %c.id, error = %e, "PII scan of a new version failed");
        }
    });
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(scan_text))
        .routes(routes!(anonymize))
        .routes(routes!(detokenize))
        .routes(routes!(get_config, put_config))
        .routes(routes!(dataset_pii))
        .routes(routes!(derive_anonymized))
}
