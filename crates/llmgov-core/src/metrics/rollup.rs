//! Mergeable summaries of values (count, sum, min, max, spread and a quantile sketch), the
//! hourly and daily rollups built from them, and the plan that answers a time range from
//! rollups where whole hours or days fit and from raw points only at the ragged edges.

use serde::Serialize;

use super::sketch::Sketch;
use crate::CoreError;

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const HOUR: i64 = 3_600 * MICROS_PER_SEC;
pub const DAY: i64 = 24 * HOUR;

/// Summary of a set of values; two summaries merge into the summary of their union.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Sum of squared deviations from the mean (merged with Chan et al.'s formula, which
    /// stays accurate where a sum of squares would cancel).
    pub m2: f64,
    pub sketch: Sketch,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            m2: 0.0,
            sketch: Sketch::new(),
        }
    }
}

impl Stats {
    pub fn add(&mut self, v: f64) {
        let n = self.count as f64;
        let mean = if self.count == 0 { 0.0 } else { self.sum / n };
        let delta = v - mean;
        self.count += 1;
        self.sum += v;
        self.m2 += delta * (v - self.sum / self.count as f64);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sketch.add(v);
    }

    pub fn merge(&mut self, o: &Stats) {
        self.merge_moments(o.count, o.sum, o.min, o.max, o.m2);
        self.sketch.merge(&o.sketch);
    }

    fn merge_moments(&mut self, count: u64, sum: f64, min: f64, max: f64, m2: f64) {
        if count == 0 {
            return;
        }
        if self.count == 0 {
            (self.count, self.sum, self.min, self.max, self.m2) = (count, sum, min, max, m2);
            return;
        }
        let (na, nb) = (self.count as f64, count as f64);
        let delta = sum / nb - self.sum / na;
        self.m2 += m2 + delta * delta * na * nb / (na + nb);
        self.count += count;
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    /// Merges a stored rollup row, decoding its sketch straight into this one's.
    pub fn merge_row(&mut self, r: &super::store::RollupRow<'_>) -> crate::Result<()> {
        if r.count <= 0 {
            return Ok(());
        }
        self.sketch
            .merge_encoded(r.sketch)
            .ok_or_else(|| CoreError::Internal("a stored rollup sketch does not decode".into()))?;
        self.merge_moments(r.count as u64, r.sum, r.min, r.max, r.m2);
        Ok(())
    }

    /// The value of one aggregation, `None` when it has no value (no points).
    pub fn value(&self, a: &Aggregation) -> Option<f64> {
        if self.count == 0 {
            return (a.kind == AggKind::Count || a.kind == AggKind::Sum).then_some(0.0);
        }
        let n = self.count as f64;
        Some(match a.kind {
            AggKind::Count => n,
            AggKind::Sum => self.sum,
            AggKind::Avg => self.sum / n,
            AggKind::Min => self.min,
            AggKind::Max => self.max,
            AggKind::Stddev => (self.m2 / n).max(0.0).sqrt(),
            AggKind::Quantile => return self.sketch.quantile(a.q),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// Population standard deviation.
    Stddev,
    Quantile,
}

/// An aggregation as asked for: `count`, `sum`, `avg`, `min`, `max`, `stddev`, or a
/// percentile `p<N>` with N in (0, 100] (`p50`, `p95`, `p99.9`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregation {
    #[serde(skip)]
    pub kind: AggKind,
    #[serde(skip)]
    pub q: f64,
    pub name: String,
}

impl Aggregation {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let s = s.trim();
        let kind = match s {
            "count" => AggKind::Count,
            "sum" => AggKind::Sum,
            "avg" | "mean" => AggKind::Avg,
            "min" => AggKind::Min,
            "max" => AggKind::Max,
            "stddev" => AggKind::Stddev,
            _ => {
                let q = s
                    .strip_prefix('p')
                    .filter(|n| !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|q| *q > 0.0 && *q <= 100.0)
                    .ok_or_else(|| {
                        CoreError::invalid(
                            "aggregations",
                            format!("{s:?}: use count, sum, avg, min, max, stddev or a percentile such as p50, p95, p99.9"),
                        )
                    })?;
                return Ok(Self {
                    kind: AggKind::Quantile,
                    q: q / 100.0,
                    name: s.to_string(),
                });
            }
        };
        Ok(Self {
            kind,
            q: 0.0,
            name: if s == "mean" {
                "avg".into()
            } else {
                s.to_string()
            },
        })
    }

    /// A comma-separated list (at most 12, no duplicates).
    pub fn parse_list(s: &str) -> Result<Vec<Self>, CoreError> {
        let mut out: Vec<Self> = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let a = Self::parse(part)?;
            if !out.iter().any(|o| o.name == a.name) {
                out.push(a);
            }
        }
        if out.is_empty() || out.len() > 12 {
            return Err(CoreError::invalid(
                "aggregations",
                "between 1 and 12 aggregations",
            ));
        }
        Ok(out)
    }
}

/// Granularity of stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Raw,
    Hour,
    Day,
}

impl Resolution {
    /// Width in microseconds (0 for raw points).
    pub fn micros(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::Hour => HOUR,
            Resolution::Day => DAY,
        }
    }

    /// Stored code of a rollup resolution.
    pub fn code(self) -> i16 {
        match self {
            Resolution::Raw => 0,
            Resolution::Hour => 1,
            Resolution::Day => 2,
        }
    }

    pub fn of_code(c: i16) -> Option<Self> {
        match c {
            1 => Some(Resolution::Hour),
            2 => Some(Resolution::Day),
            _ => None,
        }
    }
}

/// Start of the bucket of width `w` holding `t` (all times in microseconds since the epoch).
pub fn floor_to(t: i64, w: i64) -> i64 {
    t.div_euclid(w) * w
}

fn ceil_to(t: i64, w: i64) -> i64 {
    let f = floor_to(t, w);
    if f == t { t } else { f + w }
}

/// A part of a time range `[from, to)` read at one resolution; rollup parts are aligned to
/// their resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub resolution: Resolution,
    pub from: i64,
    pub to: i64,
}

/// Splits `[from, to)` into raw edges, hourly parts and whole days, so that every complete
/// hour or day comes from a rollup and only the partial hours at the edges from raw points.
pub fn plan(from: i64, to: i64) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut push = |resolution, from: i64, to: i64| {
        if from < to {
            out.push(Segment {
                resolution,
                from,
                to,
            });
        }
    };
    let (h0, h1) = (ceil_to(from, HOUR), floor_to(to, HOUR));
    if h0 >= h1 {
        push(Resolution::Raw, from, to);
        return out;
    }
    push(Resolution::Raw, from, h0);
    let (d0, d1) = (ceil_to(h0, DAY), floor_to(h1, DAY));
    if d0 < d1 {
        push(Resolution::Hour, h0, d0);
        push(Resolution::Day, d0, d1);
        push(Resolution::Hour, d1, h1);
    } else {
        push(Resolution::Hour, h0, h1);
    }
    push(Resolution::Raw, h1, to);
    out
}

/// The buckets `[start, end)` of width `interval` (aligned to the epoch) covering a range,
/// each with its plan. At most `max` buckets.
pub fn bucket_plans(
    from: i64,
    to: i64,
    interval: i64,
    max: usize,
) -> Result<Vec<(i64, Vec<Segment>)>, CoreError> {
    if interval <= 0 {
        return Err(CoreError::invalid("interval", "must be positive"));
    }
    let first = floor_to(from, interval);
    let n = ((to - first) + interval - 1) / interval;
    if n as usize > max {
        return Err(CoreError::invalid(
            "interval",
            format!("the range holds {n} intervals; at most {max}: choose a larger interval"),
        ));
    }
    Ok((0..n)
        .map(|i| {
            let b = first + i * interval;
            (b, plan(b.max(from), (b + interval).min(to)))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_stats_equal_stats_of_the_union() {
        let values: Vec<f64> = (0..1000).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let mut whole = Stats::default();
        values.iter().for_each(|&v| whole.add(v));
        let mut a = Stats::default();
        let mut b = Stats::default();
        values[..300].iter().for_each(|&v| a.add(v));
        values[300..].iter().for_each(|&v| b.add(v));
        a.merge(&b);
        assert_eq!(a.count, whole.count);
        assert!((a.m2 - whole.m2).abs() / whole.m2 < 1e-6);
        let sd = Aggregation::parse("stddev").unwrap();
        let mean = values.iter().sum::<f64>() / 1000.0;
        let exact = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 1000.0).sqrt();
        assert!((a.value(&sd).unwrap() - exact).abs() < 1e-6);
        assert_eq!(a.min, whole.min);
        assert_eq!(a.max, whole.max);
    }

    #[test]
    fn aggregations_parse_and_refuse_nonsense() {
        let list = Aggregation::parse_list("count,avg,p95,p99.9,avg").unwrap();
        assert_eq!(list.len(), 4);
        assert!((list[3].q - 0.999).abs() < 1e-12);
        for bad in ["p0", "p101", "median", "p", "p9x", ""] {
            assert!(Aggregation::parse_list(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Stats::default().value(&Aggregation::parse("avg").unwrap()),
            None
        );
        assert_eq!(
            Stats::default().value(&Aggregation::parse("count").unwrap()),
            Some(0.0)
        );
    }

    #[test]
    fn plans_use_days_and_hours_inside_and_raw_at_the_edges() {
        let t0 = 10 * DAY;
        // 10 min past an hour, 2 days and 3 hours later plus 5 min.
        let from = t0 + 5 * HOUR + 10 * 60 * MICROS_PER_SEC;
        let to = t0 + 2 * DAY + 3 * HOUR + 5 * 60 * MICROS_PER_SEC;
        let p = plan(from, to);
        let res: Vec<_> = p.iter().map(|s| s.resolution).collect();
        use Resolution::*;
        assert_eq!(res, vec![Raw, Hour, Day, Hour, Raw]);
        // Contiguous and covering.
        assert_eq!(p[0].from, from);
        assert_eq!(p.last().unwrap().to, to);
        assert!(p.windows(2).all(|w| w[0].to == w[1].from));
        assert!(p.iter().all(|s| s.resolution == Raw
            || (s.from % s.resolution.micros() == 0 && s.to % s.resolution.micros() == 0)));
        // Inside one hour: raw only.
        assert_eq!(
            plan(from, from + 60)
                .iter()
                .map(|s| s.resolution)
                .collect::<Vec<_>>(),
            vec![Raw]
        );
        // Whole hours: no raw.
        assert_eq!(
            plan(t0 + HOUR, t0 + 3 * HOUR)
                .iter()
                .map(|s| s.resolution)
                .collect::<Vec<_>>(),
            vec![Hour]
        );
    }

    #[test]
    fn bucket_plans_cover_the_range_and_are_bounded() {
        let b = bucket_plans(HOUR / 2, 3 * HOUR, HOUR, 100).unwrap();
        assert_eq!(
            b.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![0, HOUR, 2 * HOUR]
        );
        assert_eq!(b[0].1[0].from, HOUR / 2);
        assert!(bucket_plans(0, DAY, MICROS_PER_SEC, 1000).is_err());
        assert!(bucket_plans(0, DAY, 0, 1000).is_err());
    }
}
