//! Subscriptions of one stream client: topics checked against the caller's permissions,
//! filters, replay from an event id, and the `event` messages live events make.

use std::collections::{BTreeMap, HashSet};

use llmgov_core::events::{ALERTS, Event, METRICS_POINTS, TOPICS, topic_permission};
use llmgov_core::identity::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Kind, MAX_SUBSCRIPTIONS};
use crate::AppState;

/// What a subscription lets through, beside its topics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Points of these metrics only.
    #[serde(default)]
    pub metric_name: Vec<String>,
    /// Points of these types only (`counter`, `gauge`, `histogram`).
    #[serde(default)]
    pub metric_type: Vec<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
    /// Points carrying all of these tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Alerts and violations of these severities only.
    #[serde(default)]
    pub severity: Vec<String>,
    /// Alerts of this rule only.
    #[serde(default)]
    pub rule_id: Option<String>,
}

impl Filters {
    fn is_empty(&self) -> bool {
        self.metric_name.is_empty()
            && self.metric_type.is_empty()
            && self.resource_type.is_none()
            && self.resource_id.is_none()
            && self.tags.is_empty()
            && self.severity.is_empty()
            && self.rule_id.is_none()
    }

    fn validate(&self) -> Result<(), StreamError> {
        let bad = |m: &str| StreamError::new("INVALID_FILTER", m);
        if self.metric_name.len() > 100 || self.metric_type.len() > 3 || self.tags.len() > 32 {
            return Err(bad("at most 100 metric names, 3 types and 32 tags"));
        }
        for t in &self.metric_type {
            llmgov_core::metrics::model::MetricType::parse(t)
                .map_err(|_| bad("metric_type is counter, gauge or histogram"))?;
        }
        for s in &self.severity {
            llmgov_core::metrics::alert_rules::AlertSeverity::parse(s)
                .map_err(|_| bad("severity is info, warning or critical"))?;
        }
        Ok(())
    }

    /// Whether a series of a `metrics.points` event passes (its labels are the points').
    fn series_matches(&self, p: &Value) -> bool {
        let s = |k: &str| p.get(k).and_then(Value::as_str);
        (self.metric_name.is_empty()
            || s("metric_name").is_some_and(|n| self.metric_name.iter().any(|m| m == n)))
            && (self.metric_type.is_empty()
                || s("metric_type").is_some_and(|n| self.metric_type.iter().any(|m| m == n)))
            && self
                .resource_type
                .as_deref()
                .is_none_or(|r| s("resource_type") == Some(r))
            && self
                .resource_id
                .as_deref()
                .is_none_or(|r| s("resource_id") == Some(r))
            && self
                .tags
                .iter()
                .all(|(k, v)| p["tags"].get(k).and_then(Value::as_str) == Some(v))
    }

    /// The event's data as this subscription should see it, or `None` to skip it.
    /// `Some(None)` passes the payload unchanged.
    fn apply(&self, e: &Event) -> Option<Option<Value>> {
        if self.is_empty() {
            return Some(None);
        }
        let data = e.data();
        if e.topic == METRICS_POINTS {
            let series: Vec<&Value> = data["series"]
                .as_array()
                .map(|a| a.iter().filter(|s| self.series_matches(s)).collect())
                .unwrap_or_default();
            return (!series.is_empty()).then(|| Some(json!({ "series": series })));
        }
        let subject = if e.topic.starts_with(ALERTS) {
            &data["alert"]
        } else {
            data
        };
        let severity_ok = self.severity.is_empty()
            || subject["severity"]
                .as_str()
                .is_some_and(|s| self.severity.iter().any(|x| x == s));
        let rule_ok = self
            .rule_id
            .as_deref()
            .is_none_or(|r| subject["rule_id"].as_str() == Some(r));
        (severity_ok && rule_ok).then_some(None)
    }
}

/// A refusal sent to the client as an `error` message.
#[derive(Debug)]
pub struct StreamError {
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl StreamError {
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(super) fn message(&self, subscription: Option<&str>) -> String {
        json!({"type": "error", "code": self.code, "message": self.message, "subscription": subscription})
            .to_string()
    }
}

struct Subscription {
    id: String,
    /// Exact topics, or prefixes (a pattern ending in `*`).
    topics: Vec<String>,
    filters: Filters,
    /// Ids replayed to this subscription that may come again live.
    replayed: HashSet<i64>,
    replayed_upto: i64,
}

impl Subscription {
    fn wants(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| match t.strip_suffix('*') {
            Some(prefix) => topic.starts_with(prefix),
            None => t == topic,
        })
    }
}

/// One client's subscriptions.
pub struct Session {
    pub(super) principal: Principal,
    pub(super) kind: Kind,
    subs: Vec<Subscription>,
}

// Parsed once per client message and taken apart at once: the size difference is harmless.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum ClientMessage {
    Subscribe {
        id: String,
        #[serde(default)]
        topics: Vec<String>,
        #[serde(default)]
        filters: Filters,
        /// Replay the events after this id first.
        #[serde(default)]
        since: Option<i64>,
    },
    Unsubscribe {
        id: String,
    },
    Ping,
    Acknowledge {
        alert_id: uuid::Uuid,
    },
}

impl Session {
    pub(super) fn new(principal: Principal, kind: Kind) -> Self {
        Self {
            principal,
            kind,
            subs: Vec::new(),
        }
    }

    /// Checks a subscription request; returns its topic patterns.
    fn check_topics(&self, topics: &[String]) -> Result<Vec<String>, StreamError> {
        let topics: Vec<String> = if topics.is_empty() {
            // The stream's own topics (for the events stream: those the caller may read).
            let mine: Vec<String> = TOPICS
                .iter()
                .filter(|t| self.kind.carries(t))
                .filter(|t| {
                    self.kind != Kind::Events
                        || topic_permission(t).is_some_and(|p| self.principal.require(p).is_ok())
                })
                .map(|t| t.to_string())
                .collect();
            if mine.is_empty() {
                return Err(StreamError::new(
                    "FORBIDDEN_TOPIC",
                    "you may read none of this stream's topics",
                ));
            }
            return Ok(mine);
        } else {
            topics.to_vec()
        };
        if topics.len() > 20 {
            return Err(StreamError::new("INVALID_TOPIC", "at most 20 topics"));
        }
        for t in &topics {
            let matching: Vec<&str> = TOPICS
                .iter()
                .copied()
                .filter(|known| match t.strip_suffix('*') {
                    Some(prefix) => known.starts_with(prefix),
                    None => known == t,
                })
                .filter(|known| self.kind.carries(known))
                .collect();
            if matching.is_empty() {
                return Err(StreamError::new(
                    "UNKNOWN_TOPIC",
                    format!(
                        "unknown topic {t:?} on this stream; topics: {}",
                        TOPICS
                            .iter()
                            .filter(|k| self.kind.carries(k))
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            for known in matching {
                let needed = topic_permission(known).expect("known topics have a permission");
                if self.principal.require(needed).is_err() {
                    return Err(StreamError::new(
                        "FORBIDDEN_TOPIC",
                        format!("reading {known} needs the {needed} permission"),
                    ));
                }
            }
        }
        Ok(topics)
    }

    /// Adds a subscription; returns the messages to send: `subscribed`, then the replay.
    pub(super) async fn subscribe(
        &mut self,
        state: &AppState,
        id: String,
        topics: &[String],
        filters: Filters,
        since: Option<i64>,
    ) -> Result<Vec<String>, StreamError> {
        if id.is_empty() || id.len() > 64 {
            return Err(StreamError::new(
                "INVALID_SUBSCRIPTION",
                "a subscription id has 1 to 64 characters",
            ));
        }
        if self.subs.iter().any(|s| s.id == id) {
            return Err(StreamError::new(
                "INVALID_SUBSCRIPTION",
                format!("subscription {id:?} exists; unsubscribe first"),
            ));
        }
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(StreamError::new(
                "TOO_MANY_SUBSCRIPTIONS",
                format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
            ));
        }
        let topics = self.check_topics(topics)?;
        filters.validate()?;
        let mut sub = Subscription {
            id,
            topics,
            filters,
            replayed: HashSet::new(),
            replayed_upto: 0,
        };
        let mut out = vec![
            json!({"type": "subscribed", "id": sub.id, "topics": sub.topics, "last_event_id": state.events.last_id()})
                .to_string(),
        ];
        if let Some(since) = since {
            let limit = state.events.config().replay_limit;
            let events = state
                .events
                .replay(self.principal.workspace_id, since.max(0), limit)
                .await
                .map_err(|_| StreamError::new("UNAVAILABLE", "the events cannot be read now"))?;
            let complete = events.len() < limit;
            for e in &events {
                sub.replayed.insert(e.id);
                sub.replayed_upto = e.id;
                if let Some(m) = render(&sub, e) {
                    out.push(m);
                }
            }
            if !complete {
                out.push(
                    StreamError::new(
                        "REPLAY_INCOMPLETE",
                        format!(
                            "more than {limit} events to replay; resume from {} to continue",
                            sub.replayed_upto
                        ),
                    )
                    .message(Some(&sub.id)),
                );
            }
        }
        self.subs.push(sub);
        Ok(out)
    }

    pub(super) fn unsubscribe(&mut self, id: &str) -> Result<String, StreamError> {
        let before = self.subs.len();
        self.subs.retain(|s| s.id != id);
        if self.subs.len() == before {
            return Err(StreamError::new(
                "INVALID_SUBSCRIPTION",
                format!("no subscription {id:?}"),
            ));
        }
        Ok(json!({"type": "unsubscribed", "id": id}).to_string())
    }

    /// The messages a live event makes for this session's subscriptions.
    pub(super) fn on_event(&mut self, e: &Event) -> Vec<String> {
        if e.workspace_id != self.principal.workspace_id {
            return Vec::new();
        }
        let mut out = Vec::new();
        for sub in &mut self.subs {
            if e.id <= sub.replayed_upto && sub.replayed.remove(&e.id) {
                continue;
            }
            if e.id > sub.replayed_upto && !sub.replayed.is_empty() {
                sub.replayed = HashSet::new();
            }
            if let Some(m) = render(sub, e) {
                out.push(m);
            }
        }
        out
    }
}

/// The `event` message of `e` for `sub`, or `None` if the subscription does not want it.
fn render(sub: &Subscription, e: &Event) -> Option<String> {
    if !sub.wants(&e.topic) {
        return None;
    }
    let data = sub.filters.apply(e)?;
    let head = json!({
        "type": "event",
        "subscription": sub.id,
        "id": e.id,
        "topic": e.topic,
        "time": e.created_at,
    })
    .to_string();
    // Splice the data in without re-serialising an unfiltered payload.
    let data = match &data {
        Some(v) => v.to_string(),
        None => e.payload.clone(),
    };
    let mut m = String::with_capacity(head.len() + data.len() + 10);
    m.push_str(&head[..head.len() - 1]);
    m.push_str(",\"data\":");
    m.push_str(&data);
    m.push('}');
    Some(m)
}
