//! HTTP resources, one module per URL resource. Handlers are `verb_noun`.

pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod audit_export;
pub mod audit_proofs;
pub mod audit_report;
pub mod auth;
pub mod dataset_refs;
pub mod datasets;
pub mod health;
pub mod metrics;
pub mod pii;
pub mod policies;
pub mod policy_eval;
pub mod policy_facts;
pub mod roles;
pub mod uploads;
pub mod users;
pub mod vault_keys;
pub mod webhooks;
pub mod workspaces;

use llmgov_core::page::{Direction, ListQuery, Page, SortKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};

/// `?page=&limit=&sort=&fields=`, shared by list endpoints.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-based page number (default 1).
    pub page: Option<String>,
    /// Items per page, 1 to 200 (default 20).
    pub limit: Option<String>,
    /// `field:desc,other:asc`.
    pub sort: Option<String>,
    /// Comma-separated fields to return, e.g. `id,email`.
    pub fields: Option<String>,
}

impl ListParams {
    pub fn query(&self, sortable: &[&'static str], default: &'static str) -> ApiResult<ListQuery> {
        Ok(ListQuery::parse(
            self.page.as_deref(),
            self.limit.as_deref(),
            self.sort.as_deref(),
            sortable,
            SortKey {
                column: default,
                direction: Direction::Asc,
            },
        )?)
    }
}

/// One page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageDto<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub limit: u32,
    pub has_more: bool,
}

impl<T> PageDto<T> {
    pub fn from_page<U>(p: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let p = p.map(f);
        Self {
            items: p.items,
            total: p.total,
            page: p.page,
            limit: p.limit,
            has_more: p.has_more,
        }
    }
}

/// Applies `?fields=`: keeps only the named fields of each item. Unknown names are a 400.
pub fn select_fields<T: Serialize>(
    page: PageDto<T>,
    fields: Option<&str>,
) -> ApiResult<serde_json::Value> {
    let mut v = serde_json::to_value(&page)
        .map_err(|e| ApiError::from(llmgov_core::CoreError::internal(e)))?;
    let Some(fields) = fields.filter(|f| !f.is_empty()) else {
        return Ok(v);
    };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
        for item in items.iter_mut() {
            if let Some(obj) = item.as_object_mut() {
                if let Some(bad) = wanted.iter().find(|w| !obj.contains_key(**w)) {
                    return Err(ApiError::bad_request(
                        "INVALID_QUERY",
                        format!(
                            "unknown field '{}' in fields",
                            bad.chars().take(64).collect::<String>()
                        ),
                    ));
                }
                obj.retain(|k, _| wanted.contains(&k.as_str()));
            }
        }
    }
    Ok(v)
}
