// Metric definitions, series, raw points and rollups. Backend-specific: `insert_points`,
// `insert_rollups`, `take_rollup_journal`, `begin_snapshot`, `ensure_point_partitions` and
// `prune_raw_points`.

use llmgov_core::metrics::model::{MetricInfo, MetricType, Series, SeriesLabels};
use llmgov_core::metrics::rollup::{Resolution, Stats};
use llmgov_core::metrics::sketch::Sketch;
use llmgov_core::metrics::store::{MetricDef, MetricStore, MetricsPruned, RawPoint, RollupDelta, RollupKey, RollupRow, SeriesSpec};

fn metric_def_from_row(r: &DbRow) -> R<MetricDef> {
    Ok(MetricDef {
        name: text(r, "name")?,
        metric_type: MetricType::parse(&text(r, "metric_type")?)?,
        unit: opt_text(r, "unit")?,
    })
}

fn series_from_row(r: &DbRow) -> R<Series> {
    let tags: std::collections::BTreeMap<String, String> = serde_json::from_str(&text(r, "tags")?)
        .map_err(|e| CoreError::Internal(format!("series tags: {e}")))?;
    Ok(Series {
        id: r.try_get("id").map_err(db_err)?,
        metric_name: text(r, "metric_name")?,
        labels: SeriesLabels {
            resource_type: opt_text(r, "resource_type")?,
            resource_id: opt_text(r, "resource_id")?,
            tags,
        },
    })
}

fn rollup_stats_from_row(r: &DbRow) -> R<Stats> {
    let count: i64 = r.try_get("value_count").map_err(db_err)?;
    let sketch: Vec<u8> = r.try_get("sketch").map_err(db_err)?;
    Ok(Stats {
        count: count.max(0) as u64,
        sum: r.try_get("value_sum").map_err(db_err)?,
        min: r.try_get("value_min").map_err(db_err)?,
        max: r.try_get("value_max").map_err(db_err)?,
        m2: r.try_get("value_m2").map_err(db_err)?,
        sketch: Sketch::decode(&sketch).ok_or_else(|| CoreError::Internal("a stored rollup sketch does not decode".into()))?,
    })
}

/// Day partitions (days since the epoch) that hold `points`.
fn point_days(points: &[RawPoint]) -> std::collections::BTreeSet<i64> {
    use llmgov_core::metrics::rollup::DAY;
    points.iter().map(|p| p.ts.div_euclid(DAY)).collect()
}

#[async_trait]
impl MetricStore for crate::SqlStore<Db> {
    async fn define_metrics(&self, ws: WorkspaceId, defs: &[MetricDef]) -> R<Vec<MetricDef>> {
        let mut tx = self.write.begin().await.map_err(db_err)?;
        let mut out = Vec::with_capacity(defs.len());
        for d in defs {
            sqlx::query("INSERT INTO metric_definitions (workspace_id, name, metric_type, unit, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, name) DO NOTHING")
                .bind(ws.0)
                .bind(&d.name)
                .bind(d.metric_type.as_str())
                .bind(&d.unit)
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let row = sqlx::query("SELECT name, metric_type, unit FROM metric_definitions WHERE workspace_id = $1 AND name = $2")
                .bind(ws.0)
                .bind(&d.name)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            out.push(metric_def_from_row(&row)?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    async fn ensure_series(&self, ws: WorkspaceId, series: &[SeriesSpec<'_>]) -> R<Vec<i64>> {
        let mut tx = self.write.begin().await.map_err(db_err)?;
        let mut ids = Vec::with_capacity(series.len());
        for s in series {
            let tags = serde_json::to_string(&s.labels.tags).map_err(|e| CoreError::Internal(e.to_string()))?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO metric_series (workspace_id, metric_name, series_key, resource_type, resource_id, tags, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (workspace_id, series_key) DO UPDATE SET series_key = excluded.series_key RETURNING id",
            )
            .bind(ws.0)
            .bind(s.metric_name)
            .bind(&s.key[..])
            .bind(&s.labels.resource_type)
            .bind(&s.labels.resource_id)
            .bind(tags)
            .bind(now())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            ids.push(id);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(ids)
    }

    async fn write_points(&self, points: &[RawPoint], deltas: &[RollupDelta], events: &[OutboxMessage]) -> R<()> {
        ensure_point_partitions(self, &point_days(points)).await?;
        let mut tx = self.write.begin().await.map_err(db_err)?;
        if let Err(e) = insert_points(&mut tx, points).await {
            // Perhaps a partition this process knew of was dropped elsewhere: look again next time.
            self.partitions.lock().unwrap_or_else(|e| e.into_inner()).clear();
            return Err(db_err(e));
        }
        // The rollup deltas as one journal row (see `llmgov_core::metrics::journal`).
        if !deltas.is_empty() {
            sqlx::query("INSERT INTO metric_rollup_journal (deltas) VALUES ($1)")
                .bind(llmgov_core::metrics::journal::encode(deltas))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let wrote_events = insert_messages(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)?;
        if wrote_events {
            self.events.wake();
        }
        Ok(())
    }

    async fn list_metrics(&self, ws: WorkspaceId) -> R<Vec<MetricInfo>> {
        use std::collections::{BTreeMap, BTreeSet};
        let defs = sqlx::query("SELECT name, metric_type, unit, created_at FROM metric_definitions WHERE workspace_id = $1 ORDER BY name")
            .bind(ws.0)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        let series = sqlx::query("SELECT id, metric_name, resource_type, resource_id, tags FROM metric_series WHERE workspace_id = $1")
            .bind(ws.0)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        let mut labels: BTreeMap<String, (i64, BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for r in &series {
            let s = series_from_row(r)?;
            let e = labels.entry(s.metric_name).or_default();
            e.0 += 1;
            e.1.extend(s.labels.tags.into_keys());
            e.2.extend(s.labels.resource_type);
        }
        defs.iter()
            .map(|r| {
                let d = metric_def_from_row(r)?;
                let (n, keys, types) = labels.remove(&d.name).unwrap_or_default();
                Ok(MetricInfo {
                    name: d.name,
                    metric_type: d.metric_type,
                    unit: d.unit,
                    created_at: ts(r, "created_at")?,
                    series: n,
                    tag_keys: keys.into_iter().collect(),
                    resource_types: types.into_iter().collect(),
                })
            })
            .collect()
    }

    async fn get_metric(&self, ws: WorkspaceId, name: &str) -> R<Option<MetricDef>> {
        let row = sqlx::query("SELECT name, metric_type, unit FROM metric_definitions WHERE workspace_id = $1 AND name = $2")
            .bind(ws.0)
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        row.as_ref().map(metric_def_from_row).transpose()
    }

    async fn list_series(&self, ws: WorkspaceId, metric_name: &str) -> R<Vec<Series>> {
        let rows = sqlx::query("SELECT id, metric_name, resource_type, resource_id, tags FROM metric_series WHERE workspace_id = $1 AND metric_name = $2 ORDER BY id")
            .bind(ws.0)
            .bind(metric_name)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(series_from_row).collect()
    }

    async fn read_raw(&self, ws: WorkspaceId, metric_name: &str, from: i64, to: i64, limit: i64) -> R<Vec<RawPoint>> {
        let rows = sqlx::query(
            "SELECT p.series_id, p.ts, p.value FROM metric_points p JOIN metric_series s ON s.id = p.series_id \
             WHERE s.workspace_id = $1 AND s.metric_name = $2 AND p.ts >= $3 AND p.ts < $4 LIMIT $5",
        )
        .bind(ws.0)
        .bind(metric_name)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(RawPoint {
                    series_id: r.try_get(0).map_err(db_err)?,
                    ts: r.try_get(1).map_err(db_err)?,
                    value: r.try_get(2).map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn fold_rollups(
        &self,
        ws: WorkspaceId,
        metric_name: &str,
        resolution: Resolution,
        from: i64,
        to: i64,
        f: &mut (dyn for<'r> FnMut(RollupRow<'r>) -> R<()> + Send),
    ) -> R<usize> {
        use futures_util::TryStreamExt;
        // One snapshot for the rollups and the journal, so that a flush moving deltas from
        // one to the other meanwhile neither hides nor doubles them.
        let mut tx = begin_snapshot(&self.read).await.map_err(db_err)?;
        let mut rows = sqlx::query(
            "SELECT r.series_id, r.bucket, r.value_count, r.value_sum, r.value_min, r.value_max, r.value_m2, r.sketch \
             FROM metric_rollups r JOIN metric_series s ON s.id = r.series_id \
             WHERE s.workspace_id = $1 AND s.metric_name = $2 AND r.resolution = $3 AND r.bucket >= $4 AND r.bucket < $5",
        )
        .bind(ws.0)
        .bind(metric_name)
        .bind(resolution.code())
        .bind(from)
        .bind(to)
        .fetch(&mut *tx);
        let mut n = 0;
        while let Some(r) = rows.try_next().await.map_err(db_err)? {
            f(RollupRow {
                series_id: r.try_get(0).map_err(db_err)?,
                bucket: r.try_get(1).map_err(db_err)?,
                count: r.try_get(2).map_err(db_err)?,
                sum: r.try_get(3).map_err(db_err)?,
                min: r.try_get(4).map_err(db_err)?,
                max: r.try_get(5).map_err(db_err)?,
                m2: r.try_get(6).map_err(db_err)?,
                sketch: r.try_get(7).map_err(db_err)?,
            })?;
            n += 1;
        }
        drop(rows);
        // Deltas still in the journal (at most about a second of ingest, unless the writer
        // is behind).
        let journal: Vec<Vec<u8>> = sqlx::query_scalar("SELECT deltas FROM metric_rollup_journal ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        if !journal.is_empty() {
            let series: std::collections::HashSet<i64> =
                sqlx::query_scalar("SELECT id FROM metric_series WHERE workspace_id = $1 AND metric_name = $2")
                    .bind(ws.0)
                    .bind(metric_name)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .into_iter()
                    .collect();
            for bytes in &journal {
                let Some(deltas) = llmgov_core::metrics::journal::decode(bytes) else {
                    return Err(CoreError::Internal("a rollup journal row does not decode".into()));
                };
                for (r, row) in deltas {
                    if r == resolution && (from..to).contains(&row.bucket) && series.contains(&row.series_id) {
                        f(row)?;
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }

    async fn flush_rollups(&self, max_rows: i64) -> R<usize> {
        use std::collections::{BTreeMap, HashSet};
        let mut tx = self.write.begin().await.map_err(db_err)?;
        let taken = take_rollup_journal(&mut tx, max_rows).await.map_err(db_err)?;
        if taken.is_empty() {
            return Ok(0);
        }
        let mut merged: BTreeMap<(i64, i16, i64), Stats> = BTreeMap::new();
        for bytes in &taken {
            let Some(deltas) = llmgov_core::metrics::journal::decode(bytes) else {
                // Written by this code, so never expected; kept from blocking every later row.
                tracing::error!(bytes = bytes.len(), "dropping a rollup journal row that does not decode");
                continue;
            };
            for (r, row) in deltas {
                merged.entry((row.series_id, r.code(), row.bucket)).or_default().merge_row(&row)?;
            }
        }
        // Series deleted since (with their workspace) take their deltas with them.
        let mut ids: Vec<i64> = merged.keys().map(|k| k.0).collect();
        ids.dedup();
        let mut live: HashSet<i64> = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT id FROM metric_series WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(")");
            let found: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *tx).await.map_err(db_err)?;
            live.extend(found);
        }
        let rows: Vec<(i64, i16, i64, &Stats)> = merged
            .iter()
            .filter(|(k, _)| live.contains(&k.0))
            .map(|(k, s)| (k.0, k.1, k.2, s))
            .collect();
        insert_rollups(&mut tx, &rows, false).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(taken.len())
    }

    async fn compact_rollups(&self, after: Option<RollupKey>, max_keys: i64, max_rows: i64) -> R<Option<RollupKey>> {
        let (s, r, b) = after.unwrap_or((i64::MIN, i16::MIN, i64::MIN));
        let found: Vec<(i64, i16, i64, i64)> = sqlx::query_as(
            "SELECT series_id, resolution, bucket, count(*) FROM metric_rollups WHERE NOT compacted \
             AND (series_id, resolution, bucket) > ($1, $2, $3) \
             GROUP BY series_id, resolution, bucket ORDER BY series_id, resolution, bucket LIMIT $4",
        )
        .bind(s)
        .bind(r)
        .bind(b)
        .bind(max_keys)
        // Found on a reader, so that the writer is held only by the transaction below (which
        // deletes what it merges, so a row gone meanwhile is simply not there).
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        // Up to about max_rows rows (each bucket also has its compacted row), one bucket at least.
        let mut rows = 0;
        let keys: Vec<RollupKey> = found
            .iter()
            .take_while(|k| {
                rows += k.3 + 1;
                rows <= max_rows || rows == k.3 + 1
            })
            .map(|k| (k.0, k.1, k.2))
            .collect();
        let Some(&last) = keys.last() else {
            return Ok(None);
        };
        let mut tx = self.write.begin().await.map_err(db_err)?;
        let mut merged: Vec<(i64, i16, i64, Stats)> = Vec::with_capacity(keys.len());
        for (series, res, bucket) in &keys {
            // Deleting first makes concurrent compactors safe: a row is merged by whichever
            // transaction deleted it, and never twice.
            let rows = sqlx::query(
                "DELETE FROM metric_rollups WHERE series_id = $1 AND resolution = $2 AND bucket = $3 \
                 RETURNING value_count, value_sum, value_min, value_max, value_m2, sketch",
            )
            .bind(series)
            .bind(res)
            .bind(bucket)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            let mut s = Stats::default();
            for r in &rows {
                s.merge(&rollup_stats_from_row(r)?);
            }
            if s.count > 0 {
                merged.push((*series, *res, *bucket, s));
            }
        }
        let rows: Vec<(i64, i16, i64, &Stats)> = merged.iter().map(|(a, b, c, s)| (*a, *b, *c, s)).collect();
        insert_rollups(&mut tx, &rows, true).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(last))
    }

    async fn prune_metrics(&self, raw_before: i64, hourly_before: i64, daily_before: i64) -> R<MetricsPruned> {
        let (raw_points, partitions) = prune_raw_points(self, raw_before).await?;
        let mut rollups = 0;
        for (res, before) in [(Resolution::Hour, hourly_before), (Resolution::Day, daily_before)] {
            // Series by series through the (series_id, resolution, bucket) index, not a scan.
            rollups += sqlx::query("DELETE FROM metric_rollups WHERE series_id IN (SELECT id FROM metric_series) AND resolution = $1 AND bucket < $2")
                .bind(res.code())
                .bind(before)
                .execute(&self.write)
                .await
                .map_err(db_err)?
                .rows_affected();
        }
        Ok(MetricsPruned { raw_points, rollups, partitions })
    }
}
