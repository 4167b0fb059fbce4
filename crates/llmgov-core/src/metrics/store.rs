//! Storage of metric definitions, series, raw points and rollups.

use async_trait::async_trait;

use super::model::{MetricInfo, MetricType, Series, SeriesLabels};
use super::rollup::{Resolution, Stats};
use crate::Result;
use crate::ids::WorkspaceId;

/// A raw point as stored: its series and microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawPoint {
    pub series_id: i64,
    pub ts: i64,
    pub value: f64,
}

/// A partial rollup of one series over one bucket. Writers only ever add such rows (so
/// writers on several instances never wait for each other); compaction later merges the
/// rows of a bucket into one, and readers merge whatever rows they find.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupDelta {
    pub series_id: i64,
    pub resolution: Resolution,
    pub bucket: i64,
    pub stats: Stats,
}

/// A stored rollup row as read, its sketch still encoded.
#[derive(Debug, Clone, Copy)]
pub struct RollupRow<'a> {
    pub series_id: i64,
    pub bucket: i64,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub m2: f64,
    pub sketch: &'a [u8],
}

/// A metric name's type and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDef {
    pub name: String,
    pub metric_type: MetricType,
    pub unit: Option<String>,
}

/// A series to find or create.
#[derive(Debug, Clone)]
pub struct SeriesSpec<'a> {
    pub metric_name: &'a str,
    pub labels: &'a SeriesLabels,
    pub key: [u8; 32],
}

/// What retention removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsPruned {
    pub raw_points: u64,
    pub rollups: u64,
    /// PostgreSQL partitions dropped whole.
    pub partitions: u64,
}

/// A rollup bucket: series id, resolution code, bucket start (microseconds).
pub type RollupKey = (i64, i16, i64);

#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Defines the metric names among `defs` that are not defined yet (a name's first point
    /// fixes its type and unit) and returns the definitions of every name in `defs`.
    async fn define_metrics(&self, ws: WorkspaceId, defs: &[MetricDef]) -> Result<Vec<MetricDef>>;
    /// Ids of the given series (in order), creating the missing ones.
    async fn ensure_series(&self, ws: WorkspaceId, series: &[SeriesSpec<'_>]) -> Result<Vec<i64>>;
    /// Stores raw points, their rollup deltas (as one row of the rollup journal, see
    /// [`super::journal`]) and the events announcing them in one transaction. Series ids
    /// must come from [`MetricStore::ensure_series`] of the same workspace.
    async fn write_points(
        &self,
        points: &[RawPoint],
        deltas: &[RollupDelta],
        events: &[crate::outbox::OutboxMessage],
    ) -> Result<()>;

    /// Every metric of a workspace with its series count and label keys.
    async fn list_metrics(&self, ws: WorkspaceId) -> Result<Vec<MetricInfo>>;
    async fn get_metric(&self, ws: WorkspaceId, name: &str) -> Result<Option<MetricDef>>;
    /// The series of one metric.
    async fn list_series(&self, ws: WorkspaceId, metric_name: &str) -> Result<Vec<Series>>;
    /// Raw points of a metric's series with `from <= ts < to`, at most `limit`.
    async fn read_raw(
        &self,
        ws: WorkspaceId,
        metric_name: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<RawPoint>>;
    /// Hands each rollup row of a metric at `resolution` with `from <= bucket < to` to `f`
    /// as it is read (several rows per bucket until compaction merges them), then the
    /// matching deltas still in the rollup journal, all from one snapshot; rows are not
    /// collected, so memory does not grow with the range. Returns how many rows were read.
    async fn fold_rollups(
        &self,
        ws: WorkspaceId,
        metric_name: &str,
        resolution: Resolution,
        from: i64,
        to: i64,
        f: &mut (dyn for<'r> FnMut(RollupRow<'r>) -> Result<()> + Send),
    ) -> Result<usize>;

    /// Moves the oldest `max_rows` rows of the rollup journal into the rollups (the deltas of
    /// each bucket merged into one row; those of series deleted meanwhile dropped) in one
    /// transaction. Returns how many journal rows it moved; with several instances, each
    /// row is moved by exactly one.
    async fn flush_rollups(&self, max_rows: i64) -> Result<usize>;

    /// Merges the rows of buckets with rows not yet merged, in key order after `after`: up
    /// to `max_keys` buckets and about `max_rows` rows (at least one bucket), in one
    /// transaction. Returns the last bucket merged (`None`: none left after `after`).
    async fn compact_rollups(
        &self,
        after: Option<RollupKey>,
        max_keys: i64,
        max_rows: i64,
    ) -> Result<Option<RollupKey>>;
    /// Deletes raw points before `raw_before`, hourly rollups before `hourly_before` and
    /// daily rollups before `daily_before` (microseconds since the epoch).
    async fn prune_metrics(
        &self,
        raw_before: i64,
        hourly_before: i64,
        daily_before: i64,
    ) -> Result<MetricsPruned>;
}
