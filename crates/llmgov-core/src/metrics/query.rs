//! Metric queries: aggregates over a range and time series by interval, grouped by
//! resource or tags. Data is read at the coarsest resolution that answers exactly: whole
//! days from daily rollups, whole hours from hourly ones, partial hours from raw points.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::model::{Dimension, MetricType, SeriesLabels, valid_metric_name};
use super::rollup::{Aggregation, Resolution, Segment, Stats, bucket_plans, plan};
use super::service::MetricService;
use crate::ids::WorkspaceId;
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{CoreError, Result};

/// Longest queryable range.
const MAX_RANGE_DAYS: i64 = 5 * 366;
/// Most buckets in one time series.
pub const MAX_BUCKETS: usize = 10_000;
/// Most raw points one query reads.
const MAX_RAW_POINTS: i64 = 2_000_000;
/// Most grouping dimensions.
const MAX_GROUP_BY: usize = 8;

/// Which series a query reads: all that match every given label.
#[derive(Debug, Clone, Default)]
pub struct SeriesFilter {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl SeriesFilter {
    pub fn matches(&self, l: &SeriesLabels) -> bool {
        let eq = |f: &Option<String>, v: &Option<String>| f.is_none() || f == v;
        eq(&self.resource_type, &l.resource_type)
            && eq(&self.resource_id, &l.resource_id)
            && self.tags.iter().all(|(k, v)| l.tags.get(k) == Some(v))
    }
}

#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub metric_name: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub filter: SeriesFilter,
    pub group_by: Vec<Dimension>,
    pub aggregations: Vec<Aggregation>,
}

impl MetricQuery {
    fn check(&self) -> Result<()> {
        if !valid_metric_name(&self.metric_name) {
            return Err(CoreError::invalid("metric_name", "not a metric name"));
        }
        if self.end <= self.start {
            return Err(CoreError::invalid("end", "end must be after start"));
        }
        if self.end - self.start > chrono::Duration::days(MAX_RANGE_DAYS) {
            return Err(CoreError::invalid(
                "start",
                format!("a range spans at most {MAX_RANGE_DAYS} days"),
            ));
        }
        if self.group_by.len() > MAX_GROUP_BY {
            return Err(CoreError::invalid(
                "group_by",
                format!("at most {MAX_GROUP_BY} dimensions"),
            ));
        }
        Ok(())
    }
}

/// Values of a group's dimensions, by dimension label (`null` where a series lacks it).
pub type GroupKey = BTreeMap<String, Option<String>>;
/// Aggregation values by name (`null` where there is no data).
pub type Values = BTreeMap<String, Option<f64>>;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub key: GroupKey,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub values: Values,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BucketValues {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub bucket: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub values: Values,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoints {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub key: GroupKey,
    pub points: Vec<BucketValues>,
}

/// What a query read: how many series, raw points and rollup rows.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sources {
    pub series: usize,
    pub raw_points: usize,
    pub hourly_rollups: usize,
    pub daily_rollups: usize,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AggregateResult {
    pub metric_name: String,
    pub metric_type: MetricType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub groups: Vec<Group>,
    pub sources: Sources,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeseriesResult {
    pub metric_name: String,
    pub metric_type: MetricType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Interval in seconds.
    pub interval: i64,
    pub series: Vec<SeriesPoints>,
    pub sources: Sources,
}

/// Parses an interval such as `30s`, `5m`, `1h`, `1d` or `1w` into microseconds.
pub fn parse_interval(s: &str) -> Result<i64> {
    let bad = || {
        CoreError::invalid(
            "interval",
            format!("{s:?}: use a number and s, m, h, d or w, e.g. 5m or 1h"),
        )
    };
    let s = s.trim();
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    if !(1..=100_000).contains(&n) {
        return Err(bad());
    }
    Ok(n * secs * 1_000_000)
}

type Buckets = Vec<(i64, Vec<Segment>)>;

impl MetricService {
    /// Aggregates over the whole range, one result per group.
    pub async fn aggregates(&self, ws: WorkspaceId, q: &MetricQuery) -> Result<AggregateResult> {
        q.check()?;
        let (from, to) = (to_micros(q.start), to_micros(q.end));
        let def = self.definition(ws, &q.metric_name).await?;
        let (mut stats, sources) = self.collect(ws, q, &vec![(from, plan(from, to))]).await?;
        if q.group_by.is_empty() && stats.is_empty() {
            // Ungrouped: one answer even without data (count 0, no average).
            stats.insert((vec![], 0), Stats::default());
        }
        let groups = stats
            .into_iter()
            .map(|((key, _), s)| Group {
                key: label(&q.group_by, key),
                values: values(&s, &q.aggregations),
            })
            .collect();
        Ok(AggregateResult {
            metric_name: q.metric_name.clone(),
            metric_type: def.metric_type,
            unit: def.unit,
            groups,
            sources,
        })
    }

    /// Aggregates per interval bucket (aligned to the epoch), one series per group; empty
    /// buckets are included with `null` values (`0` for count and sum).
    pub async fn timeseries(
        &self,
        ws: WorkspaceId,
        q: &MetricQuery,
        interval: i64,
    ) -> Result<TimeseriesResult> {
        q.check()?;
        let (from, to) = (to_micros(q.start), to_micros(q.end));
        let buckets = bucket_plans(from, to, interval, MAX_BUCKETS)?;
        let def = self.definition(ws, &q.metric_name).await?;
        let (stats, sources) = self.collect(ws, q, &buckets).await?;
        let mut by_group: BTreeMap<Vec<Option<String>>, Vec<Stats>> = BTreeMap::new();
        for ((key, b), s) in stats {
            by_group
                .entry(key)
                .or_insert_with(|| vec![Stats::default(); buckets.len()])[b] = s;
        }
        if q.group_by.is_empty() && by_group.is_empty() {
            by_group.insert(vec![], vec![Stats::default(); buckets.len()]);
        }
        let series = by_group
            .into_iter()
            .map(|(key, list)| SeriesPoints {
                key: label(&q.group_by, key),
                points: buckets
                    .iter()
                    .zip(list)
                    .map(|((start, _), s)| BucketValues {
                        bucket: from_micros(*start),
                        values: values(&s, &q.aggregations),
                    })
                    .collect(),
            })
            .collect();
        Ok(TimeseriesResult {
            metric_name: q.metric_name.clone(),
            metric_type: def.metric_type,
            unit: def.unit,
            interval: interval / 1_000_000,
            series,
            sources,
        })
    }

    async fn definition(&self, ws: WorkspaceId, name: &str) -> Result<super::store::MetricDef> {
        self.store()
            .get_metric(ws, name)
            .await?
            .ok_or_else(|| CoreError::not_found("metric"))
    }

    /// Stats per (group, bucket index) over the planned segments of each bucket.
    async fn collect(
        &self,
        ws: WorkspaceId,
        q: &MetricQuery,
        buckets: &Buckets,
    ) -> Result<(BTreeMap<(Vec<Option<String>>, usize), Stats>, Sources)> {
        let store = self.store();
        let groups: HashMap<i64, Vec<Option<String>>> = store
            .list_series(ws, &q.metric_name)
            .await?
            .into_iter()
            .filter(|s| q.filter.matches(&s.labels))
            .map(|s| {
                let key = q
                    .group_by
                    .iter()
                    .map(|d| s.labels.dimension(d).map(str::to_string))
                    .collect();
                (s.id, key)
            })
            .collect();
        let mut sources = Sources {
            series: groups.len(),
            ..Default::default()
        };
        let mut out: BTreeMap<(Vec<Option<String>>, usize), Stats> = BTreeMap::new();
        if groups.is_empty() {
            return Ok((out, sources));
        }
        let starts: Vec<i64> = buckets.iter().map(|(s, _)| *s).collect();
        // The bucket whose `resolution` segments hold time `t`, if any.
        let locate = |t: i64, r: Resolution| -> Option<usize> {
            let b = starts.partition_point(|s| *s <= t).checked_sub(1)?;
            buckets[b]
                .1
                .iter()
                .any(|s| s.resolution == r && s.from <= t && t < s.to)
                .then_some(b)
        };
        let mut raw_read = 0i64;
        for (r, lo, hi) in runs(buckets) {
            if r == Resolution::Raw {
                let points = store
                    .read_raw(ws, &q.metric_name, lo, hi, MAX_RAW_POINTS + 1 - raw_read)
                    .await?;
                raw_read += points.len() as i64;
                if raw_read > MAX_RAW_POINTS {
                    return Err(CoreError::invalid(
                        "interval",
                        format!(
                            "the query would read more than {MAX_RAW_POINTS} raw points: use an interval of an hour or more, or a shorter range"
                        ),
                    ));
                }
                for p in points {
                    if let (Some(key), Some(b)) = (groups.get(&p.series_id), locate(p.ts, r)) {
                        sources.raw_points += 1;
                        out.entry((key.clone(), b)).or_default().add(p.value);
                    }
                }
            } else {
                let mut used = 0usize;
                store
                    .fold_rollups(ws, &q.metric_name, r, lo, hi, &mut |row| {
                        let (Some(key), Some(b)) =
                            (groups.get(&row.series_id), locate(row.bucket, r))
                        else {
                            return Ok(());
                        };
                        used += 1;
                        out.entry((key.clone(), b)).or_default().merge_row(&row)
                    })
                    .await?;
                match r {
                    Resolution::Hour => sources.hourly_rollups += used,
                    _ => sources.daily_rollups += used,
                }
            }
        }
        Ok((out, sources))
    }
}

/// The time ranges to read per resolution: the buckets' segments of each resolution, with
/// contiguous ones joined (reading one envelope per resolution would read every hourly row
/// between a range's two ragged days).
fn runs(buckets: &Buckets) -> Vec<(Resolution, i64, i64)> {
    let mut segs: Vec<&Segment> = buckets.iter().flat_map(|(_, s)| s).collect();
    segs.sort_by_key(|s| (s.resolution, s.from));
    let mut out: Vec<(Resolution, i64, i64)> = Vec::new();
    for s in segs {
        match out.last_mut() {
            Some((r, _, to)) if *r == s.resolution && *to == s.from => *to = s.to,
            _ => out.push((s.resolution, s.from, s.to)),
        }
    }
    out
}

fn label(dims: &[Dimension], key: Vec<Option<String>>) -> GroupKey {
    dims.iter()
        .map(|d| d.label().to_string())
        .zip(key)
        .collect()
}

fn values(s: &Stats, aggs: &[Aggregation]) -> Values {
    aggs.iter().map(|a| (a.name.clone(), s.value(a))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_join_contiguous_segments_of_a_resolution_only() {
        use super::super::rollup::{DAY, HOUR, bucket_plans};
        let from = 10 * DAY + 90 * 60 * 1_000_000;
        let to = 40 * DAY + 5 * HOUR + 60_000_000;
        let one = vec![(from, super::super::rollup::plan(from, to))];
        let r = runs(&one);
        let hours: Vec<_> = r.iter().filter(|x| x.0 == Resolution::Hour).collect();
        assert_eq!(
            hours.len(),
            2,
            "the ragged first and last days, not the 30 days between: {r:?}"
        );
        assert!(hours.iter().all(|(_, a, b)| b - a < DAY));
        // Daily buckets over the same range: one run per resolution where they touch.
        let daily = bucket_plans(from, to, DAY, 100).unwrap();
        let r = runs(&daily);
        assert_eq!(
            r.iter().filter(|x| x.0 == Resolution::Day).count(),
            1,
            "{r:?}"
        );
    }

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("1h").unwrap(), 3_600_000_000);
        assert_eq!(parse_interval("5m").unwrap(), 300_000_000);
        assert_eq!(parse_interval("2w").unwrap(), 14 * 86_400_000_000);
        for bad in ["", "h", "0m", "-1h", "1y", "1.5h", "99999999d"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
