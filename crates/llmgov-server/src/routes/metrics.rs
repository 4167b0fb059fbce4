//! `/api/v1/metrics`: ingest of LLM metric points, metric and series listing, aggregates
//! and time series (seed 000 §2.2.1 "Metrics").

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use llmgov_core::metrics::model::{Dimension, MetricInfo, Series, parse_tags};
use llmgov_core::metrics::query::{
    AggregateResult, MetricQuery, SeriesFilter, Sources, TimeseriesResult, parse_interval,
};
use llmgov_core::metrics::rollup::Aggregation;
use llmgov_core::metrics::service::IngestReport;
use llmgov_core::page::Page;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::audit::parse_time;
use super::{ListParams, PageDto};
use crate::AppState;
use crate::auth::{Authz, perm};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};

const DEFAULT_AGGREGATIONS: &str = "count,avg,min,max,p50,p95,p99";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// 1 to 10,000 points: `{"timestamp": RFC 3339, "metric_name", "metric_type":
    /// counter|gauge|histogram, "value": finite number, "unit"?, "resource_type"?,
    /// "resource_id"?, "tags"?: {string: string}}`.
    #[schema(value_type = Vec<Object>)]
    pub points: Vec<serde_json::Value>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestParams {
    /// `true`: store nothing if any point is refused (default `false`: keep the valid ones).
    pub all_or_nothing: Option<bool>,
}

/// Ingest a batch of points. Valid points are stored and every refused one is reported by
/// index with the field and reason; with `all_or_nothing=true` one refused point stores
/// nothing. A batch with no valid point is a 422 `METRICS_REJECTED` listing the errors.
#[utoipa::path(post, path = "/api/v1/metrics/ingest", tag = "metrics", params(IngestParams), request_body = IngestBody,
    responses((status = 200, body = IngestReport), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = ["metrics:create"])))]
pub async fn ingest(
    Authz(p, _): Authz<perm::MetricsCreate>,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<IngestParams>,
    ApiJson(b): ApiJson<IngestBody>,
) -> ApiResult<Json<IngestReport>> {
    let report = s
        .metric_service
        .ingest(p.workspace_id, &b.points, q.all_or_nothing.unwrap_or(false))
        .await?;
    Ok(Json(report))
}

/// Metric names of the workspace, each with its type, unit, series count and label keys.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(ListParams),
    responses((status = 200, body = PageDto<MetricInfo>)), security(("bearer" = ["metrics:read"])))]
pub async fn list_metrics(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    ApiQuery(l): ApiQuery<ListParams>,
) -> ApiResult<Json<PageDto<MetricInfo>>> {
    let q = l.query(&["name"], "name")?;
    let all = s
        .metric_service
        .store()
        .list_metrics(p.workspace_id)
        .await?;
    Ok(Json(paginate(all, &q)))
}

/// The series of one metric (its resource and tag combinations).
#[utoipa::path(get, path = "/api/v1/metrics/{name}/series", tag = "metrics", params(("name" = String, Path), ListParams),
    responses((status = 200, body = PageDto<Series>), (status = 404, body = ErrorBody)), security(("bearer" = ["metrics:read"])))]
pub async fn list_series(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(l): ApiQuery<ListParams>,
) -> ApiResult<Json<PageDto<Series>>> {
    let q = l.query(&["id"], "id")?;
    let store = s.metric_service.store();
    if store.get_metric(p.workspace_id, &name).await?.is_none() {
        return Err(llmgov_core::CoreError::not_found("metric").into());
    }
    let all = store.list_series(p.workspace_id, &name).await?;
    Ok(Json(paginate(all, &q)))
}

fn paginate<T>(all: Vec<T>, q: &llmgov_core::page::ListQuery) -> PageDto<T> {
    let total = all.len() as i64;
    let items = all
        .into_iter()
        .skip(q.offset() as usize)
        .take(q.limit as usize)
        .collect();
    PageDto::from_page(Page::new(items, total, q), |x| x)
}

/// Query parameters shared by `aggregates` and `timeseries`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    pub metric_name: String,
    /// RFC 3339; default: 24 hours before `end`.
    pub start: Option<String>,
    /// RFC 3339; default: now.
    pub end: Option<String>,
    /// Comma-separated dimensions: `resource_type`, `resource_id`, `tag:<key>`.
    pub group_by: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Tag filters `key:value,key:value` (every one must match).
    pub tags: Option<String>,
}

impl RangeParams {
    fn query(&self, aggregations: &str) -> ApiResult<MetricQuery> {
        let end = parse_time("end", self.end.as_deref())?.unwrap_or_else(llmgov_core::time::now);
        let start = parse_time("start", self.start.as_deref())?
            .unwrap_or(end - chrono::Duration::hours(24));
        let mut tags = BTreeMap::new();
        for pair in self
            .tags
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once(':').ok_or_else(|| {
                ApiError::bad_request("INVALID_QUERY", "tags: key:value pairs separated by commas")
            })?;
            tags.insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
        let tags = parse_tags(&tags.into_iter().collect())
            .map_err(|m| llmgov_core::CoreError::invalid("tags", m))?;
        let group_by = self
            .group_by
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|g| !g.is_empty())
            .map(|g| Dimension::parse(g.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MetricQuery {
            metric_name: self.metric_name.clone(),
            start,
            end,
            filter: SeriesFilter {
                resource_type: self.resource_type.clone(),
                resource_id: self.resource_id.clone(),
                tags,
            },
            group_by,
            aggregations: Aggregation::parse_list(aggregations)?,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AggregateParams {
    /// Comma-separated: count, sum, avg, min, max, stddev, p<N> (default
    /// `count,avg,min,max,p50,p95,p99`).
    pub aggregations: Option<String>,
}

/// Aggregates of a metric over a range, per group. Whole days and hours come from rollups
/// and only partial hours at the edges from raw points (`sources` says what was read).
/// Percentiles are within 1% relative error of the exact value.
#[utoipa::path(get, path = "/api/v1/metrics/aggregates", tag = "metrics", params(RangeParams, AggregateParams),
    responses((status = 200, body = AggregateResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = ["metrics:read"])))]
pub async fn aggregates(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    ApiQuery(r): ApiQuery<RangeParams>,
    ApiQuery(a): ApiQuery<AggregateParams>,
) -> ApiResult<Json<AggregateResult>> {
    let q = r.query(a.aggregations.as_deref().unwrap_or(DEFAULT_AGGREGATIONS))?;
    Ok(Json(s.metric_service.aggregates(p.workspace_id, &q).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeseriesParams {
    /// Bucket width: `30s`, `5m`, `1h`, `1d`, `1w` (default `1h`); at most 10,000 buckets.
    pub interval: Option<String>,
    /// One aggregation (default `avg`).
    pub aggregation: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TimeseriesPoint {
    #[schema(value_type = String, format = DateTime)]
    pub bucket: DateTime<Utc>,
    pub value: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct TimeseriesGroup {
    #[schema(value_type = Object)]
    pub key: BTreeMap<String, Option<String>>,
    pub points: Vec<TimeseriesPoint>,
}

#[derive(Serialize, ToSchema)]
pub struct TimeseriesDto {
    pub metric_name: String,
    pub aggregation: String,
    /// Bucket width in seconds.
    pub interval: i64,
    /// Buckets of the whole metric (no `group_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<TimeseriesPoint>>,
    /// One series per group (with `group_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<TimeseriesGroup>>,
    pub sources: Sources,
}

/// A metric's values per interval bucket (aligned to the epoch); empty buckets have `null`.
#[utoipa::path(get, path = "/api/v1/metrics/timeseries", tag = "metrics", params(RangeParams, TimeseriesParams),
    responses((status = 200, body = TimeseriesDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = ["metrics:read"])))]
pub async fn timeseries(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    ApiQuery(r): ApiQuery<RangeParams>,
    ApiQuery(t): ApiQuery<TimeseriesParams>,
) -> ApiResult<Json<TimeseriesDto>> {
    let aggregation = t.aggregation.as_deref().unwrap_or("avg");
    if aggregation.contains(',') {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "aggregation: exactly one",
        ));
    }
    let q = r.query(aggregation)?;
    let interval = parse_interval(t.interval.as_deref().unwrap_or("1h"))?;
    let result = s
        .metric_service
        .timeseries(p.workspace_id, &q, interval)
        .await?;
    let name = q.aggregations[0].name.clone();
    let grouped = !q.group_by.is_empty();
    let mut series: Vec<TimeseriesGroup> = result
        .series
        .into_iter()
        .map(|g| TimeseriesGroup {
            key: g.key,
            points: g
                .points
                .into_iter()
                .map(|b| TimeseriesPoint {
                    bucket: b.bucket,
                    value: b.values.get(&name).copied().flatten(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(TimeseriesDto {
        metric_name: result.metric_name,
        aggregation: name,
        interval: result.interval,
        points: (!grouped).then(|| series.pop().map(|g| g.points).unwrap_or_default()),
        series: grouped.then_some(series),
        sources: result.sources,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryFilters {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tags: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    pub metric_name: String,
    /// RFC 3339; default: 24 hours before `end`.
    pub start: Option<String>,
    /// RFC 3339; default: now.
    pub end: Option<String>,
    pub filters: Option<QueryFilters>,
    /// Dimensions: `resource_type`, `resource_id`, `tag:<key>`.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// With an interval (`5m`, `1h`, `1d`): a time series per group; without: aggregates.
    pub interval: Option<String>,
    /// Default `count,avg,min,max,p50,p95,p99`.
    pub aggregations: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum QueryResult {
    Aggregates(AggregateResult),
    Timeseries(TimeseriesResult),
}

/// A metric query: filters on resource and tags, group by, aggregations, and with an
/// `interval` a time series per group.
#[utoipa::path(post, path = "/api/v1/metrics/query", tag = "metrics", request_body = QueryBody,
    responses((status = 200, body = QueryResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = ["metrics:read"])))]
pub async fn query(
    Authz(p, _): Authz<perm::MetricsRead>,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<QueryBody>,
) -> ApiResult<Json<QueryResult>> {
    let f = b.filters.unwrap_or(QueryFilters {
        resource_type: None,
        resource_id: None,
        tags: None,
    });
    let end = parse_time("end", b.end.as_deref())?.unwrap_or_else(llmgov_core::time::now);
    let start =
        parse_time("start", b.start.as_deref())?.unwrap_or(end - chrono::Duration::hours(24));
    let aggs = b
        .aggregations
        .map(|a| a.join(","))
        .unwrap_or_else(|| DEFAULT_AGGREGATIONS.into());
    let q = MetricQuery {
        metric_name: b.metric_name,
        start,
        end,
        filter: SeriesFilter {
            resource_type: f.resource_type,
            resource_id: f.resource_id,
            tags: parse_tags(&f.tags.unwrap_or_default())
                .map_err(|m| llmgov_core::CoreError::invalid("filters.tags", m))?,
        },
        group_by: b
            .group_by
            .iter()
            .map(|g| Dimension::parse(g))
            .collect::<Result<_, _>>()?,
        aggregations: Aggregation::parse_list(&aggs)?,
    };
    let svc = &s.metric_service;
    Ok(Json(match b.interval {
        None => QueryResult::Aggregates(svc.aggregates(p.workspace_id, &q).await?),
        Some(i) => QueryResult::Timeseries(
            svc.timeseries(p.workspace_id, &q, parse_interval(&i)?)
                .await?,
        ),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest))
        .routes(routes!(list_metrics))
        .routes(routes!(list_series))
        .routes(routes!(aggregates))
        .routes(routes!(timeseries))
        .routes(routes!(query))
}
