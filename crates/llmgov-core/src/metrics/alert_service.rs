//! Alert rules management and their continuous evaluation.
//!
//! Every enabled rule is evaluated when points arrive (at most once a second) and on a
//! periodic tick (so `for` durations elapse and alerts resolve when data stops). One
//! evaluation of a rule queries its aggregation per group, steps each group's alert through
//! [`super::alerting::step`], and applies the changes in one transaction with an audit entry
//! per alert that fires or resolves and a webhook message per channel (unless snoozed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::alert_rules::{Alert, AlertChange, AlertRule, AlertRuleSpec, Channel};
use super::alerting::{Active, AlertState, Condition, Transition, condition, period_start, step};
use super::query::{MetricQuery, SeriesFilter};
use super::service::MetricService;
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::ids::WorkspaceId;
use crate::outbox::{OutboxMessage, Wakeup};
use crate::time::{Timestamp, now};
use crate::{CoreError, Result};

pub struct AlertService {
    metrics: Arc<MetricService>,
    wakeup: Arc<Wakeup>,
}

impl AlertService {
    pub fn new(metrics: Arc<MetricService>, wakeup: Arc<Wakeup>) -> Self {
        Self { metrics, wakeup }
    }

    fn store(&self) -> &Arc<dyn crate::store::Store> {
        self.metrics.store()
    }

    pub async fn create_rule(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        spec: AlertRuleSpec,
    ) -> Result<AlertRule> {
        spec.compile()?;
        let at = now();
        let rule = AlertRule {
            id: uuid::Uuid::now_v7(),
            spec,
            created_at: at,
            updated_at: at,
            created_by: Some(p.user_id),
        };
        let audit = AuditDraft::new(p.workspace_id, ctx, "alert_rules.create", "metrics")
            .resource("alert_rule", rule.id)
            .after(rule.clone().redacted());
        self.store()
            .put_alert_rule(p.workspace_id, &rule, true, audit)
            .await?;
        Ok(rule)
    }

    pub async fn update_rule(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: uuid::Uuid,
        spec: AlertRuleSpec,
    ) -> Result<AlertRule> {
        spec.compile()?;
        let before = self.store().get_alert_rule(p.workspace_id, id).await?;
        let mut spec = spec;
        spec.keep_secrets(&before.spec);
        let rule = AlertRule {
            spec,
            updated_at: now(),
            ..before.clone()
        };
        let audit = AuditDraft::new(p.workspace_id, ctx, "alert_rules.update", "metrics")
            .resource("alert_rule", id)
            .before(before.clone().redacted())
            .after(rule.clone().redacted());
        self.store()
            .put_alert_rule(p.workspace_id, &rule, false, audit)
            .await?;
        Ok(rule)
    }

    /// Deletes a rule and its alerts.
    pub async fn delete_rule(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: uuid::Uuid,
    ) -> Result<()> {
        let before = self.store().get_alert_rule(p.workspace_id, id).await?;
        let audit = AuditDraft::new(p.workspace_id, ctx, "alert_rules.delete", "metrics")
            .resource("alert_rule", id)
            .before(before.redacted());
        self.store()
            .delete_alert_rule(p.workspace_id, id, audit)
            .await
    }

    /// Marks an alert as seen by the caller.
    pub async fn acknowledge(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: uuid::Uuid,
    ) -> Result<Alert> {
        let before = self.store().get_alert(p.workspace_id, id).await?;
        let at = now();
        let alert = Alert {
            acknowledged_at: Some(at),
            acknowledged_by: Some(p.user_id),
            updated_at: at,
            ..before.clone()
        };
        self.save_manual(p, ctx, "alerts.acknowledge", &before, alert)
            .await
    }

    /// Holds back the alert's notifications until `until` (`None` ends a snooze).
    pub async fn snooze(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: uuid::Uuid,
        until: Option<Timestamp>,
    ) -> Result<Alert> {
        let at = now();
        if until.is_some_and(|u| u <= at || u > at + chrono::Duration::days(30)) {
            return Err(CoreError::invalid("until", "a time in the next 30 days"));
        }
        let before = self.store().get_alert(p.workspace_id, id).await?;
        let alert = Alert {
            snoozed_until: until,
            updated_at: at,
            ..before.clone()
        };
        self.save_manual(p, ctx, "alerts.snooze", &before, alert)
            .await
    }

    async fn save_manual(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        event: &str,
        before: &Alert,
        alert: Alert,
    ) -> Result<Alert> {
        if before.state == AlertState::Resolved {
            return Err(CoreError::conflict(
                "ALERT_RESOLVED",
                "the alert is already resolved",
            ));
        }
        let audit = AuditDraft::new(p.workspace_id, ctx, event, "metrics")
            .resource("alert", alert.id)
            .before(before)
            .after(&alert);
        let topic = if event == "alerts.acknowledge" {
            "alerts.acknowledged"
        } else {
            "alerts.snoozed"
        };
        self.store()
            .apply_alert_changes(
                p.workspace_id,
                &[AlertChange::Update(alert.clone())],
                vec![audit],
                &[alert_event(p.workspace_id, topic, &alert)],
            )
            .await?;
        Ok(alert)
    }

    /// Evaluates every enabled rule of every workspace at `at`; returns how many alerts
    /// changed.
    pub async fn evaluate_all(&self, at: Timestamp) -> Result<usize> {
        let mut changed = 0;
        for (ws, rule) in self.store().enabled_alert_rules().await? {
            match self.evaluate_rule(ws, &rule, at).await {
                Ok(n) => changed += n,
                // One broken rule (its metric not defined yet, say) does not stop the others.
                Err(CoreError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(rule = %rule.id, error = %e, "alert rule evaluation failed")
                }
            }
        }
        Ok(changed)
    }

    /// Evaluates the enabled rules of one workspace now; returns how many alerts changed.
    pub async fn evaluate_workspace(&self, ws: WorkspaceId) -> Result<usize> {
        let at = now();
        let mut changed = 0;
        for (w, rule) in self.store().enabled_alert_rules().await? {
            if w == ws {
                match self.evaluate_rule(ws, &rule, at).await {
                    Ok(n) => changed += n,
                    Err(CoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(changed)
    }

    async fn evaluate_rule(
        &self,
        ws: WorkspaceId,
        rule: &AlertRule,
        at: Timestamp,
    ) -> Result<usize> {
        let c = rule.spec.compile()?;
        let start = match &rule.spec.budget {
            Some(b) => period_start(b.period, at),
            None => at - chrono::Duration::microseconds(c.window),
        };
        let q = MetricQuery {
            metric_name: c.metric_name.clone(),
            start,
            end: at + chrono::Duration::microseconds(1),
            filter: SeriesFilter {
                resource_type: rule.spec.resource_type.clone(),
                resource_id: rule.spec.resource_id.clone(),
                tags: rule.spec.tags.clone(),
            },
            group_by: c.group_by.clone(),
            aggregations: vec![c.aggregation.clone()],
        };
        let result = self.metrics.aggregates(ws, &q).await?;
        let mut conditions: BTreeMap<String, (BTreeMap<String, Option<String>>, Condition)> =
            BTreeMap::new();
        for g in result.groups {
            let value = g.values.get(&c.aggregation.name).copied().flatten();
            let key = serde_json::to_string(&g.key).unwrap_or_default();
            conditions.insert(key, (g.key, condition(value, c.comparator, c.threshold)));
        }
        let mut active: BTreeMap<String, Alert> = BTreeMap::new();
        for a in self.store().active_alerts(ws, rule.id).await? {
            let key = serde_json::to_string(&a.group).unwrap_or_default();
            conditions
                .entry(key.clone())
                .or_insert_with(|| (a.group.clone(), Condition::NoData));
            active.insert(key, a);
        }
        let (mut changes, mut audits, mut outbox) = (Vec::new(), Vec::new(), Vec::new());
        for (key, (group, cond)) in conditions {
            let current = active.remove(&key);
            let value = match cond {
                Condition::Met(v) | Condition::NotMet(v) => Some(v),
                Condition::NoData => None,
            };
            let state = current.as_ref().map(|a| Active {
                state: a.state,
                since: a.started_at,
            });
            let (alert, is_new) = match (step(state, cond, c.for_duration, at), current) {
                (Transition::Stay, Some(a)) if a.value != value => {
                    changes.push(AlertChange::Update(Alert {
                        value,
                        updated_at: at,
                        ..a
                    }));
                    continue;
                }
                (Transition::Stay, _) => continue,
                (Transition::Cancel, Some(a)) => {
                    changes.push(AlertChange::Delete(a.id));
                    continue;
                }
                (Transition::Pend, _) => {
                    let a = new_alert(rule, group, value, c.threshold, at, AlertState::Pending);
                    outbox.push(alert_event(ws, "alerts.pending", &a));
                    changes.push(AlertChange::Insert(a));
                    continue;
                }
                (Transition::Fire, Some(a)) => (
                    Alert {
                        state: AlertState::Firing,
                        fired_at: Some(at),
                        value,
                        updated_at: at,
                        ..a
                    },
                    false,
                ),
                (Transition::Fire, None) => {
                    let mut a = new_alert(rule, group, value, c.threshold, at, AlertState::Firing);
                    a.fired_at = Some(at);
                    (a, true)
                }
                (Transition::Resolve, Some(a)) => (
                    Alert {
                        state: AlertState::Resolved,
                        resolved_at: Some(at),
                        value,
                        updated_at: at,
                        ..a
                    },
                    false,
                ),
                (_, None) => continue,
            };
            let event = if alert.state == AlertState::Firing {
                "alerts.fire"
            } else {
                "alerts.resolve"
            };
            audits.push(
                AuditDraft::new(ws, &RequestContext::system(), event, "metrics")
                    .resource("alert", alert.id)
                    .details(json!({"rule_id": rule.id, "rule": rule.spec.name, "group": alert.group, "value": alert.value, "threshold": alert.threshold})),
            );
            outbox.push(alert_event(
                ws,
                if alert.state == AlertState::Firing {
                    "alerts.firing"
                } else {
                    "alerts.resolved"
                },
                &alert,
            ));
            if alert.snoozed_until.is_none_or(|u| u <= at) {
                let payload = json!({"event": event, "alert": alert});
                for Channel::Webhook { url, secret, .. } in &rule.spec.channels {
                    outbox.push(
                        OutboxMessage::new(ws, event, url, &payload).signed(secret.as_deref()),
                    );
                }
            }
            changes.push(if is_new {
                AlertChange::Insert(alert)
            } else {
                AlertChange::Update(alert)
            });
        }
        let n = changes.len();
        if n > 0 {
            self.store()
                .apply_alert_changes(ws, &changes, audits, &outbox)
                .await?;
            if outbox.iter().any(|m| !m.is_event()) {
                self.wakeup.wake();
            }
        }
        Ok(n)
    }

    /// Evaluates all rules every `every`, and within a second of points arriving.
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut arrivals = self.metrics.subscribe();
        loop {
            if let Err(e) = self.evaluate_all(now()).await {
                tracing::error!(error = %e, "alert evaluation");
            }
            let tick = tokio::time::sleep(every);
            tokio::pin!(tick);
            tokio::select! {
                _ = &mut tick => {}
                r = arrivals.recv() => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    // Debounce: gather what arrives within a second.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    arrivals = arrivals.resubscribe();
                }
            }
        }
    }
}

fn new_alert(
    rule: &AlertRule,
    group: BTreeMap<String, Option<String>>,
    value: Option<f64>,
    threshold: f64,
    at: Timestamp,
    state: AlertState,
) -> Alert {
    Alert {
        id: uuid::Uuid::now_v7(),
        rule_id: rule.id,
        rule_name: rule.spec.name.clone(),
        group,
        state,
        severity: rule.spec.severity,
        value,
        threshold,
        started_at: at,
        fired_at: None,
        resolved_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        snoozed_until: None,
        updated_at: at,
    }
}

/// The stream event of an alert's change.
fn alert_event(ws: WorkspaceId, topic: &str, alert: &Alert) -> OutboxMessage {
    OutboxMessage::event(ws, topic, &json!({ "alert": alert }))
}
