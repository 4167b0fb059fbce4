//! The metrics service: ingest, retention and compaction. Queries are in [`super::query`].

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::model::{MAX_BATCH_POINTS, Point, PointError, parse_point};
use super::store::MetricsPruned;
use super::writer::Writer;
use crate::ids::WorkspaceId;
use crate::store::Store;
use crate::time::{Timestamp, now, to_micros};
use crate::{CoreError, Result};

/// Retention of metric data (seed 000 §4.1.2: raw 90 days, hourly 1 year).
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub raw_retention: Duration,
    pub hourly_retention: Duration,
    pub daily_retention: Duration,
    /// Model prices for the cost of GenAI calls received over OTLP.
    pub prices: Vec<super::genai::ModelPrice>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            raw_retention: Duration::from_secs(90 * DAY),
            hourly_retention: Duration::from_secs(365 * DAY),
            daily_retention: Duration::from_secs(5 * 365 * DAY),
            prices: super::genai::default_prices(),
        }
    }
}

/// The outcome of an ingest call.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestReport {
    pub accepted: usize,
    pub rejected: usize,
    /// One entry per refused point, by index in the batch.
    pub errors: Vec<PointError>,
}

/// Points a commit stored: their workspace, and each with its series id.
pub type StoredPoints = Arc<(WorkspaceId, Vec<(i64, Point)>)>;

pub struct MetricService {
    store: Arc<dyn Store>,
    writer: Writer,
    config: MetricsConfig,
    /// Points stored by this instance, for the live stream (subscribers may lag and miss).
    points: tokio::sync::broadcast::Sender<StoredPoints>,
}

/// Rollup buckets, and about how many rows, merged per compaction transaction: a backlog of
/// buckets with a row or two each goes in large steps, while buckets that gathered many rows
/// under continuous ingest go a few at a time.
const COMPACT_KEYS: i64 = 1_000;
/// Rollup journal rows (ingest commits) moved into the rollups per transaction by maintenance.
const FLUSH_ROWS: i64 = 200;
const COMPACT_ROWS: i64 = 500;

impl MetricService {
    pub fn new(store: Arc<dyn Store>, config: MetricsConfig) -> Self {
        Self {
            writer: Writer::new(Arc::clone(&store)),
            store,
            config,
            points: tokio::sync::broadcast::channel(1024).0,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// Stored points as they are committed by this instance.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StoredPoints> {
        self.points.subscribe()
    }

    /// The oldest timestamp raw data is kept for.
    pub fn raw_horizon(&self, at: Timestamp) -> Timestamp {
        at - chrono::Duration::from_std(self.config.raw_retention).unwrap_or(chrono::Duration::MAX)
    }

    /// Validates and stores a batch of points given as JSON values. Valid points are kept
    /// and refused ones reported, unless `all_or_nothing` (then any refusal stores nothing).
    /// A batch of which no point is valid is an error.
    pub async fn ingest(
        &self,
        ws: WorkspaceId,
        points: &[serde_json::Value],
        all_or_nothing: bool,
    ) -> Result<IngestReport> {
        if points.is_empty() || points.len() > MAX_BATCH_POINTS {
            return Err(CoreError::invalid(
                "points",
                format!("a batch holds 1 to {MAX_BATCH_POINTS} points"),
            ));
        }
        let at = now();
        let oldest = self.raw_horizon(at);
        let mut valid = Vec::with_capacity(points.len());
        let mut errors = Vec::new();
        for (index, v) in points.iter().enumerate() {
            match parse_point(v, at, oldest) {
                Ok(p) => valid.push((index, p)),
                Err((field, message)) => errors.push(PointError {
                    index,
                    field,
                    message,
                }),
            }
        }
        if valid.is_empty() || (all_or_nothing && !errors.is_empty()) {
            return Err(rejected(errors));
        }
        let written = self.writer.write(ws, valid).await?;
        errors.extend(written.rejected);
        errors.sort_by_key(|e| e.index);
        if written.stored.is_empty() {
            return Err(rejected(errors));
        }
        let accepted = written.stored.len();
        let _ = self.points.send(Arc::new((ws, written.stored)));
        Ok(IngestReport {
            accepted,
            rejected: errors.len(),
            errors,
        })
    }

    /// Moves the rollup journal into the rollups, merges rollup rows and applies retention
    /// once. Compaction commits every [`COMPACT_ROWS`] rows or so, so that ingest, which
    /// shares the database's writer, never waits long behind it.
    pub async fn maintain(&self) -> Result<MetricsPruned> {
        // What the writer has not moved out of the rollup journal yet (all of it after a
        // restart), in bounded steps.
        while self.store.flush_rollups(FLUSH_ROWS).await? == FLUSH_ROWS as usize {}
        // One pass over the buckets in key order, so that it ends under continuous ingest.
        let mut after = None;
        let mut step = std::time::Instant::now();
        while let Some(last) = self
            .store
            .compact_rollups(after, COMPACT_KEYS, COMPACT_ROWS)
            .await?
        {
            tracing::debug!(
                ms = step.elapsed().as_secs_f64() * 1e3,
                "rollup compaction step"
            );
            step = std::time::Instant::now();
            after = Some(last);
        }
        let at = now();
        let before = |d: Duration| {
            to_micros(at - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
        };
        self.store
            .prune_metrics(
                before(self.config.raw_retention),
                before(self.config.hourly_retention),
                before(self.config.daily_retention),
            )
            .await
    }

    /// Runs [`MetricService::maintain`] every `every` until the task is dropped.
    pub async fn run_maintenance(self: Arc<Self>, every: Duration) {
        loop {
            match self.maintain().await {
                Ok(p) if p != MetricsPruned::default() => {
                    tracing::info!(
                        raw_points = p.raw_points,
                        rollups = p.rollups,
                        partitions = p.partitions,
                        "metrics retention applied"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "metrics maintenance"),
            }
            tokio::time::sleep(every).await;
        }
    }
}

fn rejected(errors: Vec<PointError>) -> CoreError {
    let mut details = serde_json::Map::new();
    details.insert(
        "errors".into(),
        serde_json::to_value(&errors).unwrap_or_default(),
    );
    CoreError::Unprocessable {
        code: "METRICS_REJECTED",
        message: format!("{} point(s) refused; nothing was stored", errors.len()),
        details,
    }
}
