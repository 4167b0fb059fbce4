//! Alert rules and alerts as stored, and their storage trait.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::alerting::{AlertState, Budget, Comparator};
use super::model::{Dimension, valid_metric_name};
use super::query::parse_interval;
use super::rollup::Aggregation;
use crate::audit::AuditDraft;
use crate::ids::{UserId, WorkspaceId};
use crate::outbox::OutboxMessage;
use crate::page::{ListQuery, Page};
use crate::time::Timestamp;
use crate::{CoreError, Result};

str_enum!(
    /// How urgent an alert is.
    AlertSeverity, "severity" {
        Info => "info",
        Warning => "warning",
        Critical => "critical",
    }
);

/// Where a rule's alerts are announced. Every alert also appears on the live alert stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// A POST of the alert to `url` when it fires and when it resolves. With a `secret`,
    /// the body is signed: `X-Llmgov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
    /// "<t>.<body>">`. The secret is write-only: rules are shown with `secret_set` instead,
    /// and an update that names the same URL without a secret keeps the one it had.
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// Shown instead of the secret (ignored on input).
        #[serde(default)]
        secret_set: bool,
    },
}

impl AlertRule {
    /// The rule as the API and the audit trail show it (no webhook secrets).
    pub fn redacted(self) -> Self {
        Self {
            spec: self.spec.redacted(),
            ..self
        }
    }
}

impl AlertRuleSpec {
    /// The spec as the API shows it: webhook secrets replaced by `secret_set`.
    pub fn redacted(mut self) -> Self {
        for Channel::Webhook {
            secret, secret_set, ..
        } in &mut self.channels
        {
            *secret_set = secret.take().is_some();
        }
        self
    }

    /// Keeps the secrets of `previous`'s webhooks for webhooks of the same URL given
    /// without one (so that a client can send back a rule it read).
    pub fn keep_secrets(&mut self, previous: &AlertRuleSpec) {
        for Channel::Webhook { url, secret, .. } in &mut self.channels {
            if secret.is_none() {
                *secret = previous.channels.iter().find_map(|c| match c {
                    Channel::Webhook {
                        url: u, secret: s, ..
                    } if u == url => s.clone(),
                    _ => None,
                });
            }
        }
    }
}

/// What a rule watches, as given by its author.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertRuleSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The metric (for budget rules, default `llm.cost_usd`).
    #[serde(default)]
    pub metric_name: Option<String>,
    /// Only series with these tags (and resource) count.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
    /// One alert per group: `tag:<key>`, `resource_type`, `resource_id`.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Trailing window, e.g. `5m`, `1h` (not for budget rules).
    #[serde(default)]
    pub window: Option<String>,
    /// `count`, `sum`, `avg`, `min`, `max`, `stddev` or `pNN`.
    #[serde(default)]
    pub aggregation: Option<String>,
    #[serde(default)]
    pub comparator: Option<Comparator>,
    #[serde(default)]
    pub threshold: Option<f64>,
    /// How long the condition must hold before the alert fires (default: at once).
    #[serde(default, rename = "for")]
    pub for_duration: Option<String>,
    #[serde(default = "warning")]
    pub severity: AlertSeverity,
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// A spend budget instead of a metric condition.
    #[serde(default)]
    pub budget: Option<Budget>,
}

fn yes() -> bool {
    true
}

fn warning() -> AlertSeverity {
    AlertSeverity::Warning
}

/// A rule's condition in checked form.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub metric_name: String,
    pub group_by: Vec<Dimension>,
    pub aggregation: Aggregation,
    pub comparator: Comparator,
    pub threshold: f64,
    /// Microseconds (zero for budgets, which use their calendar period).
    pub window: i64,
    pub for_duration: std::time::Duration,
}

impl AlertRuleSpec {
    /// Checks every field and returns the condition it describes.
    pub fn compile(&self) -> Result<Compiled> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(CoreError::invalid("name", "1 to 200 characters"));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2000)
        {
            return Err(CoreError::invalid("description", "at most 2000 characters"));
        }
        if self.channels.len() > 10 {
            return Err(CoreError::invalid("channels", "at most 10 channels"));
        }
        for Channel::Webhook { url, secret, .. } in &self.channels {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
                return Err(CoreError::invalid(
                    "channels",
                    "a webhook url is an http(s) URL",
                ));
            }
            if secret
                .as_ref()
                .is_some_and(|s| s.len() < 16 || s.len() > 256)
            {
                return Err(CoreError::invalid(
                    "channels",
                    "a webhook secret has 16 to 256 characters",
                ));
            }
        }
        let for_duration = match &self.for_duration {
            None => 0,
            Some(s) if s == "0" || s == "0s" => 0,
            Some(s) => parse_interval(s)
                .map_err(|_| CoreError::invalid("for", "a duration such as 0s, 5m or 1h"))?,
        };
        if for_duration > 86_400_000_000 {
            return Err(CoreError::invalid("for", "at most one day"));
        }
        let mut group_by = self
            .group_by
            .iter()
            .map(|g| Dimension::parse(g))
            .collect::<Result<Vec<_>>>()?;
        let (metric_name, aggregation, comparator, threshold, window) = match &self.budget {
            Some(b) => {
                if !(b.limit.is_finite() && b.limit > 0.0) {
                    return Err(CoreError::invalid("budget.limit", "a positive amount"));
                }
                let scope = Dimension::Tag(b.scope.as_str().to_string());
                if !group_by.contains(&scope) {
                    group_by.insert(0, scope);
                }
                let metric = self
                    .metric_name
                    .clone()
                    .unwrap_or_else(|| "llm.cost_usd".into());
                (
                    metric,
                    Aggregation::parse("sum")?,
                    Comparator::Gte,
                    b.limit,
                    0,
                )
            }
            None => {
                let metric = self
                    .metric_name
                    .clone()
                    .ok_or_else(|| CoreError::invalid("metric_name", "required (or a budget)"))?;
                let aggregation = Aggregation::parse(self.aggregation.as_deref().unwrap_or("avg"))?;
                let comparator = self.comparator.ok_or_else(|| {
                    CoreError::invalid("comparator", "required: gt, gte, lt, lte, eq or ne")
                })?;
                let threshold = self.threshold.filter(|t| t.is_finite()).ok_or_else(|| {
                    CoreError::invalid("threshold", "a finite number is required")
                })?;
                let window = parse_interval(self.window.as_deref().unwrap_or("5m"))?;
                if !(60_000_000..=31 * 86_400_000_000).contains(&window) {
                    return Err(CoreError::invalid("window", "from 1m to 31d"));
                }
                (metric, aggregation, comparator, threshold, window)
            }
        };
        if !valid_metric_name(&metric_name) {
            return Err(CoreError::invalid("metric_name", "not a metric name"));
        }
        if group_by.len() > 4 {
            return Err(CoreError::invalid("group_by", "at most 4 dimensions"));
        }
        Ok(Compiled {
            metric_name,
            group_by,
            aggregation,
            comparator,
            threshold,
            window,
            for_duration: std::time::Duration::from_micros(for_duration as u64),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRule {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: uuid::Uuid,
    #[serde(flatten)]
    pub spec: AlertRuleSpec,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub created_by: Option<UserId>,
}

/// One alert: a rule's condition holding for one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: uuid::Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub rule_id: uuid::Uuid,
    pub rule_name: String,
    /// The group's dimension values (empty without `group_by`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub group: BTreeMap<String, Option<String>>,
    pub state: AlertState,
    pub severity: AlertSeverity,
    /// The last evaluated value.
    pub value: Option<f64>,
    pub threshold: f64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub fired_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub resolved_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub acknowledged_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub acknowledged_by: Option<UserId>,
    /// Notifications are held back until then.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub snoozed_until: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// A change to alerts made by one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    Insert(Alert),
    Update(Alert),
    /// A pending alert whose condition stopped holding.
    Delete(uuid::Uuid),
}

#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub rule_id: Option<uuid::Uuid>,
    pub severity: Option<AlertSeverity>,
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Inserts (`create`) or replaces a rule; a name taken in the workspace is a conflict.
    async fn put_alert_rule(
        &self,
        ws: WorkspaceId,
        rule: &AlertRule,
        create: bool,
        audit: AuditDraft,
    ) -> Result<()>;
    async fn delete_alert_rule(
        &self,
        ws: WorkspaceId,
        id: uuid::Uuid,
        audit: AuditDraft,
    ) -> Result<()>;
    async fn get_alert_rule(&self, ws: WorkspaceId, id: uuid::Uuid) -> Result<AlertRule>;
    async fn list_alert_rules(&self, ws: WorkspaceId, q: &ListQuery) -> Result<Page<AlertRule>>;
    /// Enabled rules of every workspace (for the evaluator).
    async fn enabled_alert_rules(&self) -> Result<Vec<(WorkspaceId, AlertRule)>>;
    /// Pending and firing alerts of a rule.
    async fn active_alerts(&self, ws: WorkspaceId, rule_id: uuid::Uuid) -> Result<Vec<Alert>>;
    /// Applies one evaluation's changes with their audit entries and notifications, in one
    /// transaction.
    async fn apply_alert_changes(
        &self,
        ws: WorkspaceId,
        changes: &[AlertChange],
        audits: Vec<AuditDraft>,
        outbox: &[OutboxMessage],
    ) -> Result<()>;
    async fn list_alerts(
        &self,
        ws: WorkspaceId,
        f: &AlertFilter,
        q: &ListQuery,
    ) -> Result<Page<Alert>>;
    async fn get_alert(&self, ws: WorkspaceId, id: uuid::Uuid) -> Result<Alert>;
}
