//! Metrics: ingest, rollups and their journal, queries against exact answers, compaction and
//! retention.

use std::collections::BTreeMap;
use std::sync::Arc;

use llmgov_core::metrics::model::{Dimension, MetricType, SeriesLabels};
use llmgov_core::metrics::query::{MetricQuery, SeriesFilter};
use llmgov_core::metrics::rollup::{Aggregation, DAY, HOUR, Resolution, Stats, floor_to};
use llmgov_core::metrics::store::{MetricDef, RollupDelta, SeriesSpec};
use llmgov_core::metrics::{MetricService, MetricsConfig};
use llmgov_core::time::{Timestamp, from_micros, now, to_micros};
use serde_json::{Value, json};

use crate::Fx;

fn service(fx: &Fx) -> MetricService {
    MetricService::new(Arc::clone(&fx.store), MetricsConfig::default())
}

fn point(t: Timestamp, model: &str, v: f64) -> Value {
    json!({"timestamp": t.to_rfc3339(), "metric_name": "llm.latency", "metric_type": "histogram",
           "value": v, "unit": "ms", "resource_type": "model", "resource_id": model, "tags": {"model": model, "team": "search"}})
}

/// Points every 7 minutes over the last ~3 days for two models; returns them as (time,
/// model, value).
fn history(end: Timestamp) -> Vec<(Timestamp, &'static str, f64)> {
    let mut out = Vec::new();
    let mut t = end - chrono::Duration::days(3);
    let mut i = 0u64;
    while t < end {
        for (m, base) in [("gpt-4o", 100.0), ("claude", 300.0)] {
            i += 1;
            out.push((t, m, base + ((i * 7919) % 997) as f64));
        }
        t += chrono::Duration::minutes(7);
    }
    out
}

async fn ingest_all(svc: &MetricService, fx: &Fx, pts: &[(Timestamp, &str, f64)]) {
    for chunk in pts.chunks(700) {
        let batch: Vec<Value> = chunk.iter().map(|(t, m, v)| point(*t, m, *v)).collect();
        let r = svc.ingest(fx.ws, &batch, false).await.unwrap();
        assert_eq!((r.accepted, r.rejected), (chunk.len(), 0));
    }
}

fn query(start: Timestamp, end: Timestamp, aggs: &str) -> MetricQuery {
    MetricQuery {
        metric_name: "llm.latency".into(),
        start,
        end,
        filter: SeriesFilter::default(),
        group_by: vec![Dimension::parse("tag:model").unwrap()],
        aggregations: Aggregation::parse_list(aggs).unwrap(),
    }
}

fn exact_quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(q * (v.len() - 1) as f64).floor() as usize]
}

async fn aggregates_from_rollups_match_exact_answers(fx: Fx) {
    let svc = service(&fx);
    let end = now();
    let pts = history(end);
    ingest_all(&svc, &fx, &pts).await;
    // A range with ragged edges: 2 days and a few hours, starting mid-hour.
    let start = from_micros(floor_to(to_micros(end), DAY) - 2 * DAY + HOUR / 3);
    let stop = from_micros(to_micros(end) - HOUR / 4);
    for compacted in [false, true] {
        if compacted {
            svc.maintain().await.unwrap();
        }
        let r = svc
            .aggregates(
                fx.ws,
                &query(start, stop, "count,sum,min,max,avg,p50,p95,p99"),
            )
            .await
            .unwrap();
        assert_eq!(r.groups.len(), 2);
        assert!(
            r.sources.daily_rollups > 0 && r.sources.hourly_rollups > 0 && r.sources.raw_points > 0,
            "{:?}",
            r.sources
        );
        assert!(
            r.sources.raw_points < 60,
            "only the edges are raw: {:?}",
            r.sources
        );
        for g in &r.groups {
            let model = g.key["model"].clone().unwrap();
            let vals: Vec<f64> = pts
                .iter()
                .filter(|(t, m, _)| *m == model && *t >= start && *t < stop)
                .map(|(_, _, v)| *v)
                .collect();
            let v = |k: &str| g.values[k].unwrap();
            assert_eq!(v("count") as usize, vals.len());
            assert!((v("sum") - vals.iter().sum::<f64>()).abs() < 1e-6);
            assert_eq!(v("min"), vals.iter().copied().fold(f64::INFINITY, f64::min));
            assert_eq!(
                v("max"),
                vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            );
            for (k, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
                let exact = exact_quantile(vals.clone(), q);
                assert!(
                    ((v(k) - exact) / exact).abs() <= 0.0101,
                    "{model} {k}: {} vs {exact}",
                    v(k)
                );
            }
        }
    }
}

async fn timeseries_buckets_cover_the_range(fx: Fx) {
    let svc = service(&fx);
    let end = now();
    let pts = history(end);
    ingest_all(&svc, &fx, &pts).await;
    let start = from_micros(floor_to(to_micros(end), HOUR) - 6 * HOUR);
    let mut q = query(start, end, "count,avg");
    q.group_by.clear();
    let r = svc.timeseries(fx.ws, &q, HOUR).await.unwrap();
    assert_eq!(r.series.len(), 1);
    let buckets = &r.series[0].points;
    assert_eq!(buckets.len(), 7, "6 whole hours and the current one");
    assert_eq!(buckets[0].bucket, start);
    let total: f64 = buckets.iter().map(|b| b.values["count"].unwrap()).sum();
    let expected = pts
        .iter()
        .filter(|(t, _, _)| *t >= start && *t < end)
        .count();
    assert_eq!(total as usize, expected);
    // Too many buckets is refused.
    assert!(svc.timeseries(fx.ws, &q, 1_000_000).await.is_err());
}

async fn points_contradicting_their_metric_are_refused(fx: Fx) {
    let svc = service(&fx);
    let t = now();
    let mut gauge = point(t, "gpt-4o", 1.0);
    gauge["metric_type"] = json!("gauge");
    let mut seconds = point(t, "gpt-4o", 1.0);
    seconds["unit"] = json!("s");
    let batch = vec![
        point(t, "gpt-4o", 5.0),
        gauge,
        json!({"value": "NaN"}),
        seconds,
    ];
    let r = svc.ingest(fx.ws, &batch, false).await.unwrap();
    assert_eq!((r.accepted, r.rejected), (1, 3));
    let idx: Vec<(usize, &str)> = r
        .errors
        .iter()
        .map(|e| (e.index, e.field.as_str()))
        .collect();
    assert_eq!(idx, vec![(1, "metric_type"), (2, "timestamp"), (3, "unit")]);
    // All or nothing: one bad point stores nothing.
    let err = svc
        .ingest(fx.ws, &[point(t, "gpt-4o", 6.0), json!({})], true)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        llmgov_core::CoreError::Unprocessable {
            code: "METRICS_REJECTED",
            ..
        }
    ));
    let r = svc
        .aggregates(
            fx.ws,
            &query(
                t - chrono::Duration::minutes(1),
                now() + chrono::Duration::seconds(1),
                "count",
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.groups[0].values["count"], Some(1.0));
}

async fn metrics_of_another_workspace_are_invisible(fx: Fx) {
    let svc = service(&fx);
    let other = crate::new_workspace(&fx, "other").await;
    let t = now();
    svc.ingest(fx.ws, &[point(t, "gpt-4o", 5.0)], false)
        .await
        .unwrap();
    assert!(fx.store.list_metrics(other).await.unwrap().is_empty());
    assert!(
        fx.store
            .list_series(other, "llm.latency")
            .await
            .unwrap()
            .is_empty()
    );
    let q = query(
        t - chrono::Duration::minutes(1),
        now() + chrono::Duration::seconds(1),
        "count",
    );
    assert!(matches!(
        svc.aggregates(other, &q).await,
        Err(llmgov_core::CoreError::NotFound { .. })
    ));
    // The same metric name in the other workspace is its own.
    let mut g = point(t, "gpt-4o", 1.0);
    g["metric_type"] = json!("gauge");
    assert_eq!(svc.ingest(other, &[g], false).await.unwrap().accepted, 1);
    let listed = fx.store.list_metrics(fx.ws).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tag_keys, vec!["model", "team"]);
    assert_eq!(listed[0].series, 1);
}

async fn concurrent_compaction_neither_loses_nor_doubles(fx: Fx) {
    let svc = Arc::new(service(&fx));
    let end = now();
    let pts = history(end);
    ingest_all(&svc, &fx, &pts).await;
    fx.store.flush_rollups(i64::MAX).await.unwrap();
    let a = tokio::spawn({
        let s = Arc::clone(&fx.store);
        async move { s.compact_rollups(None, 50, 2_000).await }
    });
    let b = tokio::spawn({
        let s = Arc::clone(&fx.store);
        async move { s.compact_rollups(None, 50, 2_000).await }
    });
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    svc.maintain().await.unwrap();
    let total = count_since_four_days(&svc, &fx, end).await;
    assert_eq!(total as usize, pts.len());
}

/// Points counted over the four days up to `end`, all series together.
async fn count_since_four_days(svc: &MetricService, fx: &Fx, end: Timestamp) -> f64 {
    let start = end - chrono::Duration::days(4);
    let r = svc
        .aggregates(
            fx.ws,
            &query(start, end + chrono::Duration::seconds(1), "count"),
        )
        .await
        .unwrap();
    r.groups.iter().map(|g| g.values["count"].unwrap()).sum()
}

async fn compaction_walks_the_buckets_once_in_key_order(fx: Fx) {
    let svc = service(&fx);
    let end = now();
    let pts = history(end);
    ingest_all(&svc, &fx, &pts).await;
    fx.store.flush_rollups(i64::MAX).await.unwrap();
    // A second write of the same points gives every bucket a second, unmerged row.
    ingest_all(&svc, &fx, &pts).await;
    fx.store.flush_rollups(i64::MAX).await.unwrap();
    // At most one bucket per transaction when one bucket already passes max_rows.
    let mut after = None;
    let mut seen = Vec::new();
    while let Some(last) = fx.store.compact_rollups(after, 1_000, 1).await.unwrap() {
        assert!(
            after.is_none_or(|a| last > a),
            "key order: {last:?} after {after:?}"
        );
        seen.push(last);
        after = Some(last);
    }
    assert!(seen.len() > 2, "{seen:?}");
    // Nothing is left to merge, and a whole pass in large steps finds nothing.
    assert_eq!(
        fx.store.compact_rollups(None, 1_000, 2_000).await.unwrap(),
        None
    );
    let total = count_since_four_days(&svc, &fx, end).await;
    assert_eq!(total as usize, 2 * pts.len());
}

async fn retention_removes_old_points_and_rollups(fx: Fx) {
    let svc = service(&fx);
    let end = now();
    let pts = history(end);
    ingest_all(&svc, &fx, &pts).await;
    fx.store.flush_rollups(i64::MAX).await.unwrap();
    let far = to_micros(end) + 2 * DAY;
    // Keep rollups, drop every raw point.
    let pruned = fx.store.prune_metrics(far, 0, 0).await.unwrap();
    assert_eq!(pruned.raw_points as usize, pts.len());
    if fx.db.backend == llmgov_store::Backend::Postgres {
        assert!(pruned.partitions >= 3, "{pruned:?}");
    }
    assert!(
        fx.store
            .read_raw(fx.ws, "llm.latency", 0, far, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Whole days are still answered from rollups.
    let day0 = from_micros(floor_to(to_micros(end), DAY) - DAY);
    let r = svc
        .aggregates(
            fx.ws,
            &query(day0, from_micros(to_micros(day0) + DAY), "count"),
        )
        .await
        .unwrap();
    assert!(r.groups.iter().all(|g| g.values["count"].unwrap() > 0.0));
    // Then the rollups go too.
    let pruned = fx.store.prune_metrics(far, far, far).await.unwrap();
    assert!(pruned.rollups > 0);
    let r = svc
        .aggregates(
            fx.ws,
            &query(day0, from_micros(to_micros(day0) + DAY), "count"),
        )
        .await
        .unwrap();
    assert!(r.groups.iter().all(|g| g.values["count"] == Some(0.0)) || r.groups.is_empty());
    // Ingest still works after partitions were dropped.
    assert_eq!(
        svc.ingest(fx.ws, &[point(now(), "gpt-4o", 1.0)], false)
            .await
            .unwrap()
            .accepted,
        1
    );
}

/// Per bucket of `resolution`, the merged stats of one series as `fold_rollups` reads them.
async fn folded(
    fx: &Fx,
    resolution: Resolution,
    from: i64,
    to: i64,
) -> (usize, BTreeMap<i64, Stats>) {
    let mut out: BTreeMap<i64, Stats> = BTreeMap::new();
    let rows = fx
        .store
        .fold_rollups(fx.ws, "journal.m", resolution, from, to, &mut |row| {
            out.entry(row.bucket).or_default().merge_row(&row)
        })
        .await
        .unwrap();
    (rows, out)
}

async fn the_rollup_journal_is_read_until_moved_and_moved_once(fx: Fx) {
    // Deltas written straight to the store: no metrics writer moves them meanwhile.
    fx.store
        .define_metrics(
            fx.ws,
            &[MetricDef {
                name: "journal.m".into(),
                metric_type: MetricType::Histogram,
                unit: None,
            }],
        )
        .await
        .unwrap();
    let labels = SeriesLabels::default();
    let ids = fx
        .store
        .ensure_series(
            fx.ws,
            &[SeriesSpec {
                metric_name: "journal.m",
                labels: &labels,
                key: [7; 32],
            }],
        )
        .await
        .unwrap();
    let day = floor_to(to_micros(now()), DAY) - 2 * DAY;
    for commit in 0..4 {
        let mut deltas = Vec::new();
        let mut whole = Stats::default();
        for h in 0..6 {
            let mut stats = Stats::default();
            for i in 0..5 {
                let v = f64::from(commit * 100 + h * 10 + i);
                stats.add(v);
                whole.add(v);
            }
            deltas.push(RollupDelta {
                series_id: ids[0],
                resolution: Resolution::Hour,
                bucket: day + i64::from(h) * HOUR,
                stats,
            });
        }
        deltas.push(RollupDelta {
            series_id: ids[0],
            resolution: Resolution::Day,
            bucket: day,
            stats: whole,
        });
        fx.store.write_points(&[], &deltas, &[]).await.unwrap();
    }
    let (rows, hours) = folded(&fx, Resolution::Hour, day, day + DAY).await;
    assert_eq!(rows, 24, "four journal rows of six hourly deltas each");
    assert_eq!(hours.len(), 6);
    assert!(hours.values().all(|s| s.count == 20));
    let (_, days) = folded(&fx, Resolution::Day, day, day + DAY).await;
    assert_eq!(days[&day].count, 120);
    // Buckets outside the range, and other resolutions, stay out.
    assert_eq!(
        folded(&fx, Resolution::Hour, day + 6 * HOUR, day + DAY)
            .await
            .0,
        0
    );

    // Two flushes at once move different rows; the rest follows; nothing is left.
    let (a, b) = tokio::join!(fx.store.flush_rollups(1), fx.store.flush_rollups(1));
    assert_eq!(a.unwrap() + b.unwrap(), 2);
    assert_eq!(fx.store.flush_rollups(10).await.unwrap(), 2);
    assert_eq!(fx.store.flush_rollups(10).await.unwrap(), 0);
    // Read from the rollups now, each journal row's deltas counted once.
    let (rows, moved) = folded(&fx, Resolution::Hour, day, day + DAY).await;
    assert!(rows < 24, "merged per bucket: {rows} rows");
    assert_eq!(moved, hours);
    let (_, moved_days) = folded(&fx, Resolution::Day, day, day + DAY).await;
    assert_eq!(moved_days, days);
    // And compaction leaves one row per bucket with the same figures.
    while fx
        .store
        .compact_rollups(None, 1_000, 2_000)
        .await
        .unwrap()
        .is_some()
    {}
    assert_eq!(
        folded(&fx, Resolution::Hour, day, day + DAY).await,
        (6, hours)
    );
}

crate::conformance!(
    the_rollup_journal_is_read_until_moved_and_moved_once,
    aggregates_from_rollups_match_exact_answers,
    timeseries_buckets_cover_the_range,
    points_contradicting_their_metric_are_refused,
    metrics_of_another_workspace_are_invisible,
    concurrent_compaction_neither_loses_nor_doubles,
    compaction_walks_the_buckets_once_in_key_order,
    retention_removes_old_points_and_rollups,
);
