//! `/api/v1/audit/tree-head` and `/api/v1/audit/proof/*`: the Merkle tree over the
//! workspace's log (RFC 9162). A leaf is `SHA-256(0x00 ‖ entry_hash)`, where `entry_hash` is
//! the entry's hash as listed by `/audit/logs`; clients verify proofs against a tree head.

use axum::Json;
use axum::extract::State;
use llmgov_core::audit::tree;
use llmgov_core::merkle;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{Authz, perm};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;

fn number(field: &str, v: Option<&str>) -> ApiResult<Option<u64>> {
    v.map(|s| {
        s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "INVALID_QUERY",
                format!("{field} must be a non-negative integer"),
            )
        })
    })
    .transpose()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TreeHeadParams {
    /// Tree size (default: the whole log).
    pub size: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TreeHeadDto {
    pub tree_size: u64,
    /// Hex SHA-256 Merkle tree head.
    pub root_hash: String,
}

/// Merkle tree head of the workspace's log at a size.
#[utoipa::path(get, path = "/api/v1/audit/tree-head", tag = "audit", params(TreeHeadParams),
    responses((status = 200, body = TreeHeadDto), (status = 422, body = ErrorBody)), security(("bearer" = ["audit:read"])))]
pub async fn get_tree_head(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<TreeHeadParams>,
) -> ApiResult<Json<TreeHeadDto>> {
    let current = tree::tree_size(&*s.store, p.workspace_id).await?;
    let size = number("size", q.size.as_deref())?.unwrap_or(current);
    let root = if size == 0 && current == 0 {
        merkle::empty_root()
    } else {
        tree::root_at(&*s.store, p.workspace_id, size).await?
    };
    Ok(Json(TreeHeadDto {
        tree_size: size,
        root_hash: llmgov_core::hex::encode(&root),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    /// The entry's `sequence`.
    pub entry: String,
    /// Tree size to prove against (default: the whole log).
    pub size: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionDto {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub entry_hash: String,
    /// `SHA-256(0x00 ‖ entry_hash)`.
    pub leaf_hash: String,
    pub root_hash: String,
    pub proof: Vec<String>,
}

/// Proof that an entry is in the log at a tree size.
#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", tag = "audit", params(InclusionParams),
    responses((status = 200, body = InclusionDto), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["audit:read"])))]
pub async fn get_inclusion_proof(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<InclusionParams>,
) -> ApiResult<Json<InclusionDto>> {
    let ws = p.workspace_id;
    let index = number("entry", Some(&q.entry))?.expect("given");
    let size = match number("size", q.size.as_deref())? {
        Some(n) => n,
        None => tree::tree_size(&*s.store, ws).await?,
    };
    let proof = tree::inclusion_proof(&*s.store, ws, index, size).await?;
    let root = tree::root_at(&*s.store, ws, size).await?;
    let entry = s
        .store
        .audit_range(ws, index as i64, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::from(llmgov_core::CoreError::not_found("audit entry")))?;
    Ok(Json(InclusionDto {
        leaf_index: index,
        tree_size: size,
        leaf_hash: llmgov_core::hex::encode(&merkle::leaf_hash(&entry.entry_hash)),
        entry_hash: llmgov_core::hex::encode(&entry.entry_hash),
        root_hash: llmgov_core::hex::encode(&root),
        proof: proof.iter().map(|h| llmgov_core::hex::encode(h)).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older tree size.
    pub from: String,
    /// The newer tree size (default: the whole log).
    pub to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyDto {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

/// Proof that the log at one size is a prefix of the log at a later size.
#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", tag = "audit", params(ConsistencyParams),
    responses((status = 200, body = ConsistencyDto), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["audit:read"])))]
pub async fn get_consistency_proof(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyParams>,
) -> ApiResult<Json<ConsistencyDto>> {
    let ws = p.workspace_id;
    let from = number("from", Some(&q.from))?.expect("given");
    let to = match number("to", q.to.as_deref())? {
        Some(n) => n,
        None => tree::tree_size(&*s.store, ws).await?,
    };
    let proof = tree::consistency_proof(&*s.store, ws, from, to).await?;
    Ok(Json(ConsistencyDto {
        from,
        to,
        from_root: llmgov_core::hex::encode(&tree::root_at(&*s.store, ws, from).await?),
        to_root: llmgov_core::hex::encode(&tree::root_at(&*s.store, ws, to).await?),
        proof: proof.iter().map(|h| llmgov_core::hex::encode(h)).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointDto {
    pub workspace_id: uuid::Uuid,
    pub tree_size: u64,
    pub root_hash: String,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub key_id: String,
    /// Hex Ed25519 signature over `body`.
    pub signature: String,
    /// The exact signed text.
    pub body: String,
}

/// The latest signed checkpoint of the workspace's log (a new one if the log has grown).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints/latest", tag = "audit",
    responses((status = 200, body = CheckpointDto), (status = 404, body = ErrorBody)), security(("bearer" = ["audit:read"])))]
pub async fn get_latest_checkpoint(
    Authz(p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
) -> ApiResult<Json<CheckpointDto>> {
    let cp = tree::checkpoint_now(&*s.store, &s.checkpoints, p.workspace_id)
        .await?
        .ok_or_else(|| ApiError::from(llmgov_core::CoreError::not_found("checkpoint")))?;
    Ok(Json(CheckpointDto {
        body: cp.body(),
        workspace_id: cp.workspace_id.0,
        tree_size: cp.tree_size,
        root_hash: cp.root_hash,
        timestamp: cp.timestamp,
        key_id: cp.key_id,
        signature: cp.signature,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PublicKeyDto {
    pub key_id: String,
    /// Always `Ed25519`.
    pub algorithm: String,
    /// Raw 32-byte public key, hex.
    pub public_key: String,
}

/// The key that verifies checkpoints: fetch it once and keep it, so later verification needs
/// no trust in the server.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints/public-key", tag = "audit",
    responses((status = 200, body = PublicKeyDto)), security(("bearer" = ["audit:read"])))]
pub async fn get_checkpoint_public_key(
    Authz(_p, _): Authz<perm::AuditRead>,
    State(s): State<AppState>,
) -> Json<PublicKeyDto> {
    Json(PublicKeyDto {
        key_id: s.checkpoints.key_id().into(),
        algorithm: "Ed25519".into(),
        public_key: llmgov_core::hex::encode(s.checkpoints.public_key()),
    })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_tree_head))
        .routes(routes!(get_inclusion_proof))
        .routes(routes!(get_consistency_proof))
        .routes(routes!(get_latest_checkpoint))
        .routes(routes!(get_checkpoint_public_key))
}
