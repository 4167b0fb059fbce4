// Alert rules and alerts.

use llmgov_core::metrics::alert_rules::{Alert, AlertChange, AlertFilter, AlertRule, AlertRuleSpec, AlertSeverity, AlertStore};
use llmgov_core::metrics::alerting::AlertState;

fn alert_rule_from_row(r: &DbRow) -> R<AlertRule> {
    let spec: AlertRuleSpec = serde_json::from_str(&text(r, "spec")?).map_err(llmgov_core::CoreError::internal)?;
    Ok(AlertRule {
        id: uuid_of(r, "id")?,
        spec,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
        created_by: r.try_get::<Option<uuid::Uuid>, _>("created_by").map_err(db_err)?.map(UserId),
    })
}

fn alert_from_row(r: &DbRow) -> R<Alert> {
    Ok(Alert {
        id: uuid_of(r, "id")?,
        rule_id: uuid_of(r, "rule_id")?,
        rule_name: text(r, "rule_name")?,
        group: serde_json::from_str(&text(r, "group_key")?).map_err(llmgov_core::CoreError::internal)?,
        state: AlertState::parse(&text(r, "state")?)?,
        severity: AlertSeverity::parse(&text(r, "severity")?)?,
        value: r.try_get("value").map_err(db_err)?,
        threshold: r.try_get("threshold").map_err(db_err)?,
        started_at: ts(r, "started_at")?,
        fired_at: opt_ts(r, "fired_at")?,
        resolved_at: opt_ts(r, "resolved_at")?,
        acknowledged_at: opt_ts(r, "acknowledged_at")?,
        acknowledged_by: r.try_get::<Option<uuid::Uuid>, _>("acknowledged_by").map_err(db_err)?.map(UserId),
        snoozed_until: opt_ts(r, "snoozed_until")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn group_key(a: &Alert) -> R<String> {
    serde_json::to_string(&a.group).map_err(llmgov_core::CoreError::internal)
}

#[async_trait]
impl AlertStore for crate::SqlStore<Db> {
    async fn put_alert_rule(&self, ws: WorkspaceId, rule: &AlertRule, create: bool, audit: AuditDraft) -> R<()> {
        let spec = serde_json::to_string(&rule.spec).map_err(llmgov_core::CoreError::internal)?;
        let mut tx = begin(&self.write).await?;
        let done = if create {
            sqlx::query("INSERT INTO alert_rules (id, workspace_id, name, enabled, spec, created_at, updated_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(rule.id)
                .bind(ws.0)
                .bind(rule.spec.name.trim())
                .bind(rule.spec.enabled)
                .bind(spec)
                .bind(rule.created_at)
                .bind(rule.updated_at)
                .bind(rule.created_by.map(|u| u.0))
                .execute(&mut *tx)
                .await
        } else {
            sqlx::query("UPDATE alert_rules SET name = $3, enabled = $4, spec = $5, updated_at = $6 WHERE id = $1 AND workspace_id = $2")
                .bind(rule.id)
                .bind(ws.0)
                .bind(rule.spec.name.trim())
                .bind(rule.spec.enabled)
                .bind(spec)
                .bind(rule.updated_at)
                .execute(&mut *tx)
                .await
        }
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(llmgov_core::CoreError::not_found("alert rule"));
        }
        if !create {
            // Alerts carry the rule's name and severity as they were when raised; keep the
            // active ones in step.
            sqlx::query("UPDATE alerts SET rule_name = $2, severity = $3 WHERE rule_id = $1 AND state <> 'resolved'")
                .bind(rule.id)
                .bind(rule.spec.name.trim())
                .bind(rule.spec.severity.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn delete_alert_rule(&self, ws: WorkspaceId, id: uuid::Uuid, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(ws.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(llmgov_core::CoreError::not_found("alert rule"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_alert_rule(&self, ws: WorkspaceId, id: uuid::Uuid) -> R<AlertRule> {
        let row = sqlx::query("SELECT * FROM alert_rules WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(ws.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        alert_rule_from_row(&row.ok_or(llmgov_core::CoreError::not_found("alert rule"))?)
    }

    async fn list_alert_rules(&self, ws: WorkspaceId, q: &ListQuery) -> R<Page<AlertRule>> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_rules WHERE workspace_id = $1")
            .bind(ws.0)
            .fetch_one(&self.read)
            .await
            .map_err(db_err)?;
        let rows = sqlx::query("SELECT * FROM alert_rules WHERE workspace_id = $1 ORDER BY name LIMIT $2 OFFSET $3")
            .bind(ws.0)
            .bind(q.limit as i64)
            .bind(q.offset())
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        Ok(Page::new(rows.iter().map(alert_rule_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn enabled_alert_rules(&self) -> R<Vec<(WorkspaceId, AlertRule)>> {
        let rows = sqlx::query("SELECT * FROM alert_rules WHERE enabled ORDER BY workspace_id, name")
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| Ok((WorkspaceId(uuid_of(r, "workspace_id")?), alert_rule_from_row(r)?))).collect()
    }

    async fn active_alerts(&self, ws: WorkspaceId, rule_id: uuid::Uuid) -> R<Vec<Alert>> {
        let rows = sqlx::query("SELECT * FROM alerts WHERE workspace_id = $1 AND rule_id = $2 AND state <> 'resolved'")
            .bind(ws.0)
            .bind(rule_id)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn apply_alert_changes(&self, ws: WorkspaceId, changes: &[AlertChange], audits: Vec<AuditDraft>, outbox: &[llmgov_core::outbox::OutboxMessage]) -> R<()> {
        let mut tx = begin(&self.write).await?;
        for c in changes {
            match c {
                AlertChange::Insert(a) => {
                    sqlx::query(
                        "INSERT INTO alerts (id, workspace_id, rule_id, rule_name, group_key, state, severity, value, threshold, started_at, fired_at, resolved_at, \
                         acknowledged_at, acknowledged_by, snoozed_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                    )
                    .bind(a.id)
                    .bind(ws.0)
                    .bind(a.rule_id)
                    .bind(&a.rule_name)
                    .bind(group_key(a)?)
                    .bind(a.state.as_str())
                    .bind(a.severity.as_str())
                    .bind(a.value)
                    .bind(a.threshold)
                    .bind(a.started_at)
                    .bind(a.fired_at)
                    .bind(a.resolved_at)
                    .bind(a.acknowledged_at)
                    .bind(a.acknowledged_by.map(|u| u.0))
                    .bind(a.snoozed_until)
                    .bind(a.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                AlertChange::Update(a) => {
                    sqlx::query(
                        "UPDATE alerts SET state = $3, value = $4, fired_at = $5, resolved_at = $6, acknowledged_at = $7, acknowledged_by = $8, \
                         snoozed_until = $9, updated_at = $10 WHERE id = $1 AND workspace_id = $2",
                    )
                    .bind(a.id)
                    .bind(ws.0)
                    .bind(a.state.as_str())
                    .bind(a.value)
                    .bind(a.fired_at)
                    .bind(a.resolved_at)
                    .bind(a.acknowledged_at)
                    .bind(a.acknowledged_by.map(|u| u.0))
                    .bind(a.snoozed_until)
                    .bind(a.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                AlertChange::Delete(id) => {
                    sqlx::query("DELETE FROM alerts WHERE id = $1 AND workspace_id = $2 AND state = 'pending'")
                        .bind(id)
                        .bind(ws.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
            }
        }
        if !audits.is_empty() {
            append_many_in(&mut tx, ws, audits).await?;
        }
        let events = insert_messages(&mut tx, outbox).await?;
        commit(tx).await?;
        if events {
            self.events.wake();
        }
        Ok(())
    }

    async fn list_alerts(&self, ws: WorkspaceId, f: &AlertFilter, q: &ListQuery) -> R<Page<Alert>> {
        let filter = |qb: &mut QueryBuilder<Db>| {
            qb.push(" WHERE workspace_id = ").push_bind(ws.0);
            if let Some(s) = f.state {
                qb.push(" AND state = ").push_bind(s.as_str());
            }
            if let Some(r) = f.rule_id {
                qb.push(" AND rule_id = ").push_bind(r);
            }
            if let Some(s) = f.severity {
                qb.push(" AND severity = ").push_bind(s.as_str());
            }
        };
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM alerts");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.read).await.map_err(db_err)?;
        let mut list = QueryBuilder::<Db>::new("SELECT * FROM alerts");
        filter(&mut list);
        list.push(" ORDER BY updated_at DESC, id DESC LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = list.build().fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(alert_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn get_alert(&self, ws: WorkspaceId, id: uuid::Uuid) -> R<Alert> {
        let row = sqlx::query("SELECT * FROM alerts WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(ws.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        alert_from_row(&row.ok_or(llmgov_core::CoreError::not_found("alert"))?)
    }
}
