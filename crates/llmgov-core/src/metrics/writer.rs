//! Group commit of ingested points (small, urgent calls ahead of bulk ones). Ingest calls hand their validated points to one writer
//! task per process, which takes whatever has queued meanwhile, resolves metric
//! definitions and series (cached: both are immutable once created), and hands the batch to
//! a committer task that stores the raw points with their hourly and daily rollup deltas (one
//! row of the rollup journal, [`super::journal`]) and their `metrics.points` events in one
//! transaction (while the next batch is prepared). Each caller is answered after its points
//! are committed, with the points refused for contradicting their metric's definition. About
//! once a second, between commits, the committer moves the journal into the rollups.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::model::{Point, PointError};
use super::rollup::{Resolution, Stats, floor_to};
use super::store::{MetricDef, RawPoint, RollupDelta, SeriesSpec};
use crate::events::METRICS_POINTS;
use crate::ids::WorkspaceId;
use crate::outbox::OutboxMessage;
use crate::store::Store;
use crate::time::to_micros;
use crate::{CoreError, Result};

/// Most points in one transaction.
const MAX_POINTS: usize = 5_000;
/// How often the committer moves the rollup journal into the rollups (when it has committed
/// anything since), and the most journal rows it moves at once (a backlog goes in steps, so
/// that commits never wait long behind it).
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const FLUSH_ROWS: i64 = 200;
/// Ingest calls of at most this many points are urgent: an application reporting its calls
/// as they happen, or a person watching a dashboard. They are committed on their own, ahead
/// of the bulk batches queued before them (see [`pick`]), so that a backfill or a heavy load
/// delays live data by at most the one commit in progress, not by its whole queue.
const URGENT_POINTS: usize = 100;
/// Ingest calls waiting for the writer before callers wait to queue.
const QUEUE: usize = 256;
/// Cached series ids and definitions kept before the caches are emptied.
const CACHE_LIMIT: usize = 200_000;

/// A batch's points after the writer: where each was refused, and what was stored.
#[derive(Debug, Default)]
pub struct Written {
    pub rejected: Vec<PointError>,
    /// The stored points with their series ids (for the live stream).
    pub stored: Vec<(i64, Point)>,
}

struct Job {
    ws: WorkspaceId,
    /// Points with their index in the caller's batch.
    points: Vec<(usize, Point)>,
    done: oneshot::Sender<Result<Written>>,
}

pub struct Writer {
    store: Arc<dyn Store>,
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl Writer {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            queue: OnceLock::new(),
        }
    }

    /// Stores `points` (each with its index in the caller's batch); returns once committed.
    pub async fn write(&self, ws: WorkspaceId, points: Vec<(usize, Point)>) -> Result<Written> {
        if points.is_empty() {
            return Ok(Written::default());
        }
        let (done, wait) = oneshot::channel();
        let unavailable = || CoreError::Unavailable("metrics writer stopped".into());
        self.queue
            .get_or_init(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(write_loop(Arc::clone(&self.store), rx));
                tx
            })
            .send(Job { ws, points, done })
            .await
            .map_err(|_| unavailable())?;
        wait.await.map_err(|_| unavailable())?
    }
}

#[derive(Default)]
struct Caches {
    /// Definitions by workspace and name (looked up by `&str`, without allocating).
    defs: HashMap<WorkspaceId, HashMap<String, MetricDef>>,
    series: HashMap<(WorkspaceId, [u8; 32]), i64>,
}

/// Two stages, so that the database never waits for CPU work: this task prepares what has
/// queued (definitions, series, rollup deltas, events) while a committer task commits
/// earlier batches, and the committer merges every batch prepared meanwhile into its next
/// transaction.
async fn write_loop(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>) {
    let (commit_tx, commit_rx) = mpsc::channel(READY);
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(commit_loop(
        Arc::clone(&store),
        commit_rx,
        Arc::clone(&failed),
    ));
    let mut caches = Caches::default();
    let mut jobs: Vec<Job> = Vec::new();
    while rx.recv_many(&mut jobs, QUEUE).await > 0 {
        while let Some((batch, urgent)) = take_batch(&mut jobs) {
            // A failed commit may have left series the caches do not know as created.
            if failed.swap(false, std::sync::atomic::Ordering::AcqRel) {
                caches = Caches::default();
            }
            match prepare(&*store, &mut caches, &batch).await {
                Ok((raw, deltas, written)) => {
                    let events = point_events(&batch, &written);
                    let ready = Ready {
                        urgent,
                        jobs: batch,
                        raw,
                        deltas,
                        written,
                        events,
                    };
                    if commit_tx.send(ready).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    for job in batch {
                        let _ = job.done.send(Err(e.clone()));
                    }
                }
            }
        }
        if caches.series.len() + caches.defs.values().map(HashMap::len).sum::<usize>() > CACHE_LIMIT
        {
            caches = Caches::default();
        }
    }
}

/// Prepared batches waiting for the committer (it takes them all at once).
const READY: usize = 16;

/// A prepared batch.
struct Ready {
    /// Made of urgent jobs only.
    urgent: bool,
    jobs: Vec<Job>,
    raw: Vec<RawPoint>,
    deltas: Vec<RollupDelta>,
    written: Vec<Written>,
    events: Vec<OutboxMessage>,
}

impl Ready {
    fn points(&self) -> usize {
        self.raw.len()
    }

    /// Adds `o` to this batch (rollup deltas of the same bucket are merged).
    fn absorb(&mut self, o: Ready) {
        self.urgent &= o.urgent;
        self.jobs.extend(o.jobs);
        self.raw.extend(o.raw);
        self.written.extend(o.written);
        self.events.extend(o.events);
        let mut at: HashMap<(i64, Resolution, i64), usize> = self
            .deltas
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.series_id, d.resolution, d.bucket), i))
            .collect();
        for d in o.deltas {
            match at.get(&(d.series_id, d.resolution, d.bucket)) {
                Some(&i) => self.deltas[i].stats.merge(&d.stats),
                None => {
                    at.insert((d.series_id, d.resolution, d.bucket), self.deltas.len());
                    self.deltas.push(d);
                }
            }
        }
    }
}

/// Commits what has been prepared, merged into one transaction of up to about
/// [`MAX_POINTS`] points, urgent batches first; answers each job after its commit.
async fn commit_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Ready>,
    failed: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut queued: VecDeque<Ready> = Default::default();
    let mut buf = Vec::new();
    let mut last_urgent = false;
    let mut journal = Journal::default();
    loop {
        if queued.is_empty() {
            // Idle: the journal is moved when it is due, even if nothing else comes.
            let next = match journal.due_in() {
                Some(wait) => tokio::time::timeout(wait, rx.recv_many(&mut buf, READY))
                    .await
                    .ok(),
                None => Some(rx.recv_many(&mut buf, READY).await),
            };
            match next {
                Some(0) => return,
                Some(_) => {}
                None => {
                    journal.flush(&*store).await;
                    continue;
                }
            }
        } else {
            while let Ok(r) = rx.try_recv() {
                buf.push(r);
            }
        }
        queued.extend(buf.drain(..));
        let mut picked = pick(&mut queued, |r| (r.urgent, r.points()), last_urgent).into_iter();
        let mut next = picked.next().expect("one batch at least");
        for r in picked {
            next.absorb(r);
        }
        last_urgent = next.urgent;
        let Ready {
            urgent: _,
            jobs,
            raw,
            deltas,
            written,
            events,
        } = next;
        let started = std::time::Instant::now();
        let res = store.write_points(&raw, &deltas, &events).await;
        tracing::debug!(
            points = raw.len(),
            rollups = deltas.len(),
            events = events.len(),
            callers = jobs.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "metrics commit"
        );
        match res {
            Ok(()) => {
                for (job, w) in jobs.into_iter().zip(written) {
                    let _ = job.done.send(Ok(w));
                }
                journal.committed();
                if journal.due_in() == Some(std::time::Duration::ZERO) {
                    journal.flush(&*store).await;
                }
            }
            Err(e) => {
                failed.store(true, std::sync::atomic::Ordering::Release);
                for job in jobs {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// When the committer last moved the rollup journal, and whether it has committed since.
struct Journal {
    last: std::time::Instant,
    pending: bool,
}

impl Default for Journal {
    fn default() -> Self {
        Self {
            last: std::time::Instant::now(),
            pending: false,
        }
    }
}

impl Journal {
    fn committed(&mut self) {
        self.pending = true;
    }

    /// How long until the journal is due to be moved; `None` when nothing was committed.
    fn due_in(&self) -> Option<std::time::Duration> {
        self.pending
            .then(|| FLUSH_EVERY.saturating_sub(self.last.elapsed()))
    }

    /// Moves up to [`FLUSH_ROWS`] journal rows; what is left (a backlog) waits for the next
    /// time, or for maintenance. A failure is logged and retried next time: the journal
    /// keeps the deltas, and queries read them there meanwhile.
    async fn flush(&mut self, store: &dyn Store) {
        let started = std::time::Instant::now();
        match store.flush_rollups(FLUSH_ROWS).await {
            Ok(rows) => {
                tracing::debug!(
                    rows,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "rollup journal moved"
                );
                self.pending = rows == FLUSH_ROWS as usize;
            }
            Err(e) => tracing::warn!(error = %e, "moving the rollup journal failed"),
        }
        self.last = std::time::Instant::now();
    }
}

/// What the next transaction commits, out of `queued` (not empty), given by `(urgent,
/// points)`: every queued urgent batch, unless the previous transaction was urgent and bulk
/// batches wait (so that a stream of urgent batches can slow bulk ones by half at most, never
/// starve them); otherwise the oldest batches up to [`MAX_POINTS`] points (at least one).
fn pick<T>(
    queued: &mut VecDeque<T>,
    key: impl Fn(&T) -> (bool, usize),
    last_urgent: bool,
) -> Vec<T> {
    let bulk_waits = queued.iter().any(|t| !key(t).0);
    if queued.iter().any(|t| key(t).0) && !(last_urgent && bulk_waits) {
        let (urgent, rest): (VecDeque<T>, VecDeque<T>) =
            std::mem::take(queued).into_iter().partition(|t| key(t).0);
        *queued = rest;
        return urgent.into();
    }
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(t) = queued.front() {
        let p = key(t).1;
        if !out.is_empty() && n + p > MAX_POINTS {
            break;
        }
        n += p;
        out.push(queued.pop_front().expect("checked"));
    }
    out
}

/// Takes the next batch to prepare out of the queued jobs, and whether it is urgent: the
/// urgent jobs first when there are any, else the oldest jobs up to [`MAX_POINTS`] points (at
/// least one).
fn take_batch(jobs: &mut Vec<Job>) -> Option<(Vec<Job>, bool)> {
    if jobs.is_empty() {
        return None;
    }
    if jobs.iter().any(|j| j.points.len() <= URGENT_POINTS)
        && jobs.iter().any(|j| j.points.len() > URGENT_POINTS)
    {
        let (urgent, rest) = std::mem::take(jobs)
            .into_iter()
            .partition(|j| j.points.len() <= URGENT_POINTS);
        *jobs = rest;
        return Some((urgent, true));
    }
    let mut n = 0;
    let mut k = 0;
    while k < jobs.len() && (k == 0 || n + jobs[k].points.len() <= MAX_POINTS) {
        n += jobs[k].points.len();
        k += 1;
    }
    let urgent = jobs[..k].iter().all(|j| j.points.len() <= URGENT_POINTS);
    Some((jobs.drain(..k).collect(), urgent))
}

/// Points per `metrics.points` event.
const POINTS_PER_EVENT: usize = 1000;

/// One series in a `metrics.points` event: its labels once, then its points.
#[derive(serde::Serialize)]
struct SeriesPoints<'a> {
    series_id: i64,
    metric_name: &'a str,
    metric_type: super::model::MetricType,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    #[serde(flatten)]
    labels: &'a super::model::SeriesLabels,
    points: Vec<TimedValue>,
}

#[derive(serde::Serialize)]
struct TimedValue {
    timestamp: crate::time::Timestamp,
    value: f64,
}

/// The events announcing the stored points: per workspace, in chunks of about
/// [`POINTS_PER_EVENT`] points, each grouped by series so that labels are written once per
/// series (`{"series":[{"series_id", "metric_name", ..., "tags", "points":[{"timestamp",
/// "value"}]}]}`).
fn point_events(jobs: &[Job], written: &[Written]) -> Vec<OutboxMessage> {
    #[derive(serde::Serialize)]
    struct Payload<'a> {
        series: Vec<SeriesPoints<'a>>,
    }
    let mut by_ws: BTreeMap<WorkspaceId, Vec<&(i64, Point)>> = BTreeMap::new();
    for (j, w) in jobs.iter().zip(written) {
        by_ws.entry(j.ws).or_default().extend(w.stored.iter());
    }
    let mut out = Vec::new();
    for (ws, points) in by_ws {
        for chunk in points.chunks(POINTS_PER_EVENT) {
            // Series in the order of their first point; points in batch order.
            let mut series: Vec<SeriesPoints<'_>> = Vec::new();
            let mut at: HashMap<i64, usize> = HashMap::new();
            for (id, p) in chunk.iter().map(|x| (x.0, &x.1)) {
                let i = *at.entry(id).or_insert_with(|| {
                    series.push(SeriesPoints {
                        series_id: id,
                        metric_name: &p.metric_name,
                        metric_type: p.metric_type,
                        unit: p.unit.as_deref(),
                        labels: &p.series,
                        points: Vec::new(),
                    });
                    series.len() - 1
                });
                series[i].points.push(TimedValue {
                    timestamp: p.timestamp,
                    value: p.value,
                });
            }
            let payload = serde_json::to_string(&Payload { series }).expect("points serialize");
            out.push(OutboxMessage::event_json(ws, METRICS_POINTS, payload));
        }
    }
    out
}

type Prepared = (Vec<RawPoint>, Vec<RollupDelta>, Vec<Written>);

async fn prepare(store: &dyn Store, caches: &mut Caches, jobs: &[Job]) -> Result<Prepared> {
    // Metric definitions: the first point of an unknown name defines it.
    let mut by_ws: BTreeMap<WorkspaceId, Vec<MetricDef>> = BTreeMap::new();
    for j in jobs {
        for (_, p) in &j.points {
            let known = caches
                .defs
                .get(&j.ws)
                .is_some_and(|m| m.contains_key(&p.metric_name));
            let list = by_ws.entry(j.ws).or_default();
            if !known && !list.iter().any(|d| d.name == p.metric_name) {
                list.push(MetricDef {
                    name: p.metric_name.clone(),
                    metric_type: p.metric_type,
                    unit: p.unit.clone(),
                });
            }
        }
    }
    for (ws, defs) in by_ws {
        if !defs.is_empty() {
            for d in store.define_metrics(ws, &defs).await? {
                caches.defs.entry(ws).or_default().insert(d.name.clone(), d);
            }
        }
    }
    // Refuse points that contradict their definition; find or create series of the rest.
    let mut written: Vec<Written> = Vec::with_capacity(jobs.len());
    let mut accepted: Vec<(usize, WorkspaceId, [u8; 32], &Point)> = Vec::new();
    for (ji, j) in jobs.iter().enumerate() {
        let mut w = Written::default();
        for (index, p) in &j.points {
            let def = caches
                .defs
                .get(&j.ws)
                .and_then(|m| m.get(&p.metric_name))
                .ok_or_else(|| CoreError::Internal("metric definition missing".into()))?;
            if def.metric_type != p.metric_type {
                w.rejected.push(PointError {
                    index: *index,
                    field: "metric_type".into(),
                    message: format!(
                        "{} is a {}, not a {}",
                        p.metric_name, def.metric_type, p.metric_type
                    ),
                });
            } else if p.unit.is_some() && p.unit != def.unit {
                w.rejected.push(PointError {
                    index: *index,
                    field: "unit".into(),
                    message: format!(
                        "{} is measured in {}",
                        p.metric_name,
                        def.unit.as_deref().unwrap_or("no unit")
                    ),
                });
            } else {
                accepted.push((ji, j.ws, p.series.key(&p.metric_name), p));
            }
        }
        written.push(w);
    }
    let mut missing: BTreeMap<WorkspaceId, Vec<SeriesSpec<'_>>> = BTreeMap::new();
    for (_, ws, key, p) in &accepted {
        if !caches.series.contains_key(&(*ws, *key)) {
            let list = missing.entry(*ws).or_default();
            if !list.iter().any(|s| s.key == *key) {
                list.push(SeriesSpec {
                    metric_name: &p.metric_name,
                    labels: &p.series,
                    key: *key,
                });
            }
        }
    }
    for (ws, specs) in missing {
        let ids = store.ensure_series(ws, &specs).await?;
        for (s, id) in specs.iter().zip(ids) {
            caches.series.insert((ws, s.key), id);
        }
    }
    // Raw points and rollup deltas.
    let mut raw = Vec::with_capacity(accepted.len());
    let mut rollups: BTreeMap<(i64, Resolution, i64), Stats> = BTreeMap::new();
    for (ji, ws, key, p) in accepted {
        let series_id = caches.series[&(ws, key)];
        let ts = to_micros(p.timestamp);
        raw.push(RawPoint {
            series_id,
            ts,
            value: p.value,
        });
        for r in [Resolution::Hour, Resolution::Day] {
            rollups
                .entry((series_id, r, floor_to(ts, r.micros())))
                .or_default()
                .add(p.value);
        }
        written[ji].stored.push((series_id, p.clone()));
    }
    let deltas = rollups
        .into_iter()
        .map(|((series_id, resolution, bucket), stats)| RollupDelta {
            series_id,
            resolution,
            bucket,
            stats,
        })
        .collect();
    Ok((raw, deltas, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick_all(queued: &[(bool, usize)], last_urgent: bool) -> (Vec<usize>, Vec<usize>) {
        let mut q: VecDeque<(usize, bool, usize)> = queued
            .iter()
            .enumerate()
            .map(|(i, &(u, n))| (i, u, n))
            .collect();
        let picked = pick(&mut q, |t| (t.1, t.2), last_urgent);
        (
            picked.into_iter().map(|t| t.0).collect(),
            q.into_iter().map(|t| t.0).collect(),
        )
    }

    #[test]
    fn urgent_batches_commit_first_but_never_starve_bulk_ones() {
        let q = [
            (false, MAX_POINTS / 4),
            (true, 1),
            (false, MAX_POINTS / 4),
            (true, 3),
        ];
        // Urgent batches jump the queue, together and alone.
        assert_eq!(pick_all(&q, false), (vec![1, 3], vec![0, 2]));
        // Right after an urgent commit, the oldest batches go first (urgent ones among them).
        assert_eq!(pick_all(&q, true), (vec![0, 1, 2, 3], vec![]));
        let full = [(false, MAX_POINTS), (true, 1)];
        assert_eq!(pick_all(&full, true), (vec![0], vec![1]));
        // With nothing else waiting, urgent batches follow each other.
        assert_eq!(pick_all(&[(true, 1)], true), (vec![0], vec![]));
        // Bulk batches are merged oldest first up to the cap, and one alone may exceed it.
        let big = [(false, MAX_POINTS / 2), (false, MAX_POINTS / 2), (false, 1)];
        assert_eq!(pick_all(&big, false), (vec![0, 1], vec![2]));
        assert_eq!(
            pick_all(&[(false, MAX_POINTS + 1), (false, 1)], false),
            (vec![0], vec![1])
        );
    }
}
