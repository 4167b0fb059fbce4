//! Metric points and series (seed 000 §4.1.2), parsed and validated at the boundary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Most points in one ingest batch.
pub const MAX_BATCH_POINTS: usize = 10_000;
/// Most tags on one point.
pub const MAX_TAGS: usize = 32;
const MAX_NAME: usize = 255;
const MAX_TAG_KEY: usize = 100;
const MAX_TAG_VALUE: usize = 256;
const MAX_UNIT: usize = 50;
const MAX_RESOURCE_TYPE: usize = 100;
const MAX_RESOURCE_ID: usize = 255;
/// How far ahead of the server's clock a point may be (clock skew of senders).
pub const MAX_FUTURE: chrono::Duration = chrono::Duration::minutes(5);

str_enum!(
    /// How a metric's values are meant: a `counter` counts (its sum over a range matters), a
    /// `gauge` is a level, a `histogram` is one observation of a distribution (latency, tokens,
    /// cost of one call).
    MetricType, "metric_type" {
        Counter => "counter",
        Gauge => "gauge",
        Histogram => "histogram",
    }
);

/// One validated point.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: Timestamp,
    pub metric_name: String,
    pub metric_type: MetricType,
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(flatten)]
    pub series: SeriesLabels,
}

/// What tells a metric's series apart: its resource and tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesLabels {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl SeriesLabels {
    /// Stable identity of the series of `metric_name` with these labels: BLAKE3 of an
    /// unambiguous encoding (every part length-prefixed).
    pub fn key(&self, metric_name: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        let mut part = |s: Option<&str>| match s {
            None => {
                h.update(&[0]);
            }
            Some(s) => {
                h.update(&[1]);
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        };
        part(Some(metric_name));
        part(self.resource_type.as_deref());
        part(self.resource_id.as_deref());
        for (k, v) in &self.tags {
            part(Some(k));
            part(Some(v));
        }
        *h.finalize().as_bytes()
    }

    /// The value this series has for a grouping dimension.
    pub fn dimension(&self, d: &Dimension) -> Option<&str> {
        match d {
            Dimension::ResourceType => self.resource_type.as_deref(),
            Dimension::ResourceId => self.resource_id.as_deref(),
            Dimension::Tag(k) => self.tags.get(k).map(String::as_str),
        }
    }
}

/// A stored series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    pub id: i64,
    pub metric_name: String,
    #[serde(flatten)]
    pub labels: SeriesLabels,
}

/// A metric name's definition (its type and unit are fixed by its first point).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricInfo {
    pub name: String,
    pub metric_type: MetricType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Number of series (resource and tag combinations).
    pub series: i64,
    /// Every tag key used by its series.
    pub tag_keys: Vec<String>,
    pub resource_types: Vec<String>,
}

/// A grouping or filtering dimension: `resource_type`, `resource_id` or `tag:<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    ResourceType,
    ResourceId,
    Tag(String),
}

impl Dimension {
    pub fn parse(s: &str) -> Result<Self, crate::CoreError> {
        match s {
            "resource_type" => Ok(Dimension::ResourceType),
            "resource_id" => Ok(Dimension::ResourceId),
            _ => match s.strip_prefix("tag:") {
                Some(k) if valid_tag_key(k) => Ok(Dimension::Tag(k.to_string())),
                _ => Err(crate::CoreError::invalid(
                    "group_by",
                    format!("{s:?}: a dimension is resource_type, resource_id or tag:<key>"),
                )),
            },
        }
    }

    /// The name used in results (`resource_type`, `resource_id`, or the tag's key).
    pub fn label(&self) -> &str {
        match self {
            Dimension::ResourceType => "resource_type",
            Dimension::ResourceId => "resource_id",
            Dimension::Tag(k) => k,
        }
    }
}

/// Why one point of a batch was rejected.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointError {
    /// Position of the point in the batch (0-based).
    pub index: usize,
    pub field: String,
    pub message: String,
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-'))
}

fn valid_tag_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TAG_KEY && valid_name(s)
}

/// Metric names start with a letter or `_` and use letters, digits, `_ . : / -`.
pub fn valid_metric_name(s: &str) -> bool {
    s.len() <= MAX_NAME && valid_name(s)
}

/// Parses one point of an ingest batch from JSON, checking every field. `now` and
/// `oldest` bound the timestamp (points older than the raw retention would be dropped at
/// once, so they are refused instead).
pub fn parse_point(
    v: &serde_json::Value,
    now: Timestamp,
    oldest: Timestamp,
) -> Result<Point, (String, String)> {
    let err = |f: &str, m: String| Err((f.to_string(), m));
    let Some(o) = v.as_object() else {
        return err("", "a point is a JSON object".into());
    };
    const FIELDS: [&str; 8] = [
        "timestamp",
        "metric_name",
        "metric_type",
        "value",
        "unit",
        "resource_type",
        "resource_id",
        "tags",
    ];
    if let Some(k) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return err(k, format!("unknown field {k:?}"));
    }
    let timestamp = match o.get("timestamp").and_then(|t| t.as_str()) {
        None => return err("timestamp", "required, an RFC 3339 date-time".into()),
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => crate::time::trunc(t.to_utc()),
            Err(_) => return err("timestamp", format!("{t:?} is not an RFC 3339 date-time")),
        },
    };
    if timestamp > now + MAX_FUTURE {
        return err("timestamp", "more than 5 minutes in the future".into());
    }
    if timestamp < oldest {
        return err(
            "timestamp",
            format!(
                "older than the raw data retention (before {})",
                oldest.to_rfc3339()
            ),
        );
    }
    let metric_name = match o.get("metric_name").and_then(|n| n.as_str()) {
        Some(n) if valid_metric_name(n) => n.to_string(),
        Some(_) => {
            return err(
                "metric_name",
                "1 to 255 characters: a letter or _ then letters, digits, _ . : / -".into(),
            );
        }
        None => return err("metric_name", "required".into()),
    };
    let metric_type = match o.get("metric_type").and_then(|t| t.as_str()) {
        Some(t) => MetricType::parse(t).map_err(|e| ("metric_type".to_string(), e.to_string()))?,
        None => {
            return err(
                "metric_type",
                "required: counter, gauge or histogram".into(),
            );
        }
    };
    let value = match o.get("value") {
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => f,
            _ => return err("value", "must be a finite number".into()),
        },
        Some(_) => {
            return err(
                "value",
                "must be a finite number (NaN and infinities are refused)".into(),
            );
        }
        None => return err("value", "required".into()),
    };
    let text = |f: &str, max: usize| -> Result<Option<String>, (String, String)> {
        match o.get(f) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if !s.is_empty() && s.chars().count() <= max => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err((f.to_string(), format!("a string of 1 to {max} characters"))),
        }
    };
    let unit = text("unit", MAX_UNIT)?;
    let resource_type = text("resource_type", MAX_RESOURCE_TYPE)?;
    let resource_id = text("resource_id", MAX_RESOURCE_ID)?;
    let tags = match o.get("tags") {
        None | Some(serde_json::Value::Null) => BTreeMap::new(),
        Some(serde_json::Value::Object(m)) => parse_tags(m).map_err(|m| ("tags".to_string(), m))?,
        Some(_) => return err("tags", "an object of string values".into()),
    };
    Ok(Point {
        timestamp,
        metric_name,
        metric_type,
        value,
        unit,
        series: SeriesLabels {
            resource_type,
            resource_id,
            tags,
        },
    })
}

/// Tags: at most [`MAX_TAGS`], keys like metric names, values strings (numbers and booleans
/// are taken as their text).
pub fn parse_tags(
    m: &serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, String> {
    if m.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    let mut tags = BTreeMap::new();
    for (k, v) in m {
        if !valid_tag_key(k) {
            return Err(format!(
                "tag key {k:?}: 1 to {MAX_TAG_KEY} characters, a letter or _ then letters, digits, _ . : / -"
            ));
        }
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(format!(
                    "tag {k:?}: the value must be a string, number or boolean"
                ));
            }
        };
        if v.chars().count() > MAX_TAG_VALUE {
            return Err(format!(
                "tag {k:?}: values are at most {MAX_TAG_VALUE} characters"
            ));
        }
        tags.insert(k.clone(), v);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Point, (String, String)> {
        let now = crate::time::now();
        parse_point(&v, now, now - chrono::Duration::days(90))
    }

    fn ok_point() -> serde_json::Value {
        json!({"timestamp": crate::time::now().to_rfc3339(), "metric_name": "llm.latency_ms",
               "metric_type": "histogram", "value": 12.5, "unit": "ms",
               "resource_type": "model", "resource_id": "gpt-4o", "tags": {"team": "search", "stream": true}})
    }

    #[test]
    fn a_valid_point_parses_with_its_tags_as_text() {
        let p = parse(ok_point()).unwrap();
        assert_eq!(p.series.tags["stream"], "true");
        assert_eq!(p.metric_type, MetricType::Histogram);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            ("value", json!("NaN")),
            ("value", json!(null)),
            ("metric_type", json!("meter")),
            ("metric_name", json!("9lives")),
            ("timestamp", json!("yesterday")),
            ("timestamp", json!("2999-01-01T00:00:00Z")),
            ("timestamp", json!("2001-01-01T00:00:00Z")),
            ("tags", json!({"a": {"nested": 1}})),
            ("unit", json!("")),
        ];
        for (field, bad) in cases {
            let mut p = ok_point();
            p[field] = bad.clone();
            assert_eq!(parse(p).unwrap_err().0, field, "{field} = {bad}");
        }
        let mut p = ok_point();
        p["colour"] = json!("red");
        assert_eq!(parse(p).unwrap_err().0, "colour");
        let many: serde_json::Map<_, _> = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        let mut p = ok_point();
        p["tags"] = serde_json::Value::Object(many);
        assert_eq!(parse(p).unwrap_err().0, "tags");
    }

    #[test]
    fn series_keys_separate_labels_unambiguously() {
        let a = SeriesLabels {
            resource_type: Some("ab".into()),
            resource_id: None,
            tags: BTreeMap::new(),
        };
        let b = SeriesLabels {
            resource_type: Some("a".into()),
            resource_id: Some("b".into()),
            tags: BTreeMap::new(),
        };
        assert_ne!(a.key("m"), b.key("m"));
        assert_ne!(a.key("m"), a.key("n"));
        assert_eq!(a.key("m"), a.clone().key("m"));
    }
}
