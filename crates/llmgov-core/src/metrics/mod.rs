//! LLM metrics: ingest, storage with hourly and daily rollups, and queries.
//!
//! Points are validated one by one at ingest ([`model::parse_point`]); a batch keeps its
//! valid points and reports each refused one with its index, field and reason (or, with
//! `all_or_nothing`, stores nothing if any point is refused). Stored raw points are
//! partitioned by day on PostgreSQL. Every write also records hourly and daily rollup deltas
//! (count, sum, min, max, spread and a [`sketch::Sketch`]; in the rollup [`journal`] first),
//! so percentiles over any range are computed from rollups: [`rollup::plan`] reads whole days
//! and hours from rollups and only the partial hours at a range's edges from raw points.

pub mod alert_rules;
pub mod alert_service;
pub mod alerting;
pub mod genai;
pub mod journal;
pub mod model;
pub mod query;
pub mod rollup;
pub mod service;
pub mod sketch;
pub mod store;
pub mod writer;

pub use service::{MetricService, MetricsConfig};
