// Policies, versions, evaluations and violations.

use chrono::Datelike;

use llmgov_core::ids::{PolicyId, ViolationId};
use llmgov_core::policy::model::{Decision, Policy, PolicyFilter, PolicySpec, PolicyVersion, Severity, Violation, ViolationFilter, ViolationStatus};
use llmgov_core::policy::store::{EvaluationRecord, PolicyEvidence, PolicyStore, PolicyWrite, SpendScope};

fn spec_of(r: &DbRow) -> R<PolicySpec> {
    serde_json::from_str(&text(r, "spec")?).map_err(llmgov_core::CoreError::internal)
}

fn spec_json(s: &PolicySpec) -> String {
    serde_json::to_string(s).expect("spec serializes")
}

fn opt_user(r: &DbRow, col: &str) -> R<Option<UserId>> {
    Ok(r.try_get::<Option<uuid::Uuid>, _>(col).map_err(db_err)?.map(UserId))
}

fn policy_from_row(r: &DbRow) -> R<Policy> {
    Ok(Policy {
        id: PolicyId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        spec: spec_of(r)?,
        version: r.try_get("version").map_err(db_err)?,
        created_by: opt_user(r, "created_by")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn version_from_row(r: &DbRow) -> R<PolicyVersion> {
    Ok(PolicyVersion {
        policy_id: PolicyId(uuid_of(r, "policy_id")?),
        version: r.try_get("version").map_err(db_err)?,
        spec: spec_of(r)?,
        changed_by: opt_user(r, "changed_by")?,
        changed_at: ts(r, "changed_at")?,
        change_summary: opt_text(r, "change_summary")?,
    })
}

fn violation_from_row(r: &DbRow) -> R<Violation> {
    let bad = |e: llmgov_core::CoreError| llmgov_core::CoreError::internal(format!("stored violation: {e}"));
    Ok(Violation {
        id: ViolationId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        policy_id: PolicyId(uuid_of(r, "policy_id")?),
        policy_version: r.try_get("policy_version").map_err(db_err)?,
        rule: text(r, "rule")?,
        message: text(r, "message")?,
        severity: Severity::parse(&text(r, "severity")?).map_err(bad)?,
        decision: Decision::parse(&text(r, "decision")?).map_err(bad)?,
        resource_type: text(r, "resource_type")?,
        resource_id: opt_text(r, "resource_id")?,
        details: json_text(r, "details")?,
        status: ViolationStatus::parse(&text(r, "status")?).map_err(bad)?,
        detected_at: ts(r, "detected_at")?,
        updated_at: opt_ts(r, "updated_at")?,
        resolved_by: opt_user(r, "resolved_by")?,
        resolution_notes: opt_text(r, "resolution_notes")?,
    })
}

/// `%text%` for `LIKE ... ESCAPE '\'`, with the wildcards of `text` escaped.
fn like_pattern(text: &str) -> String {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

fn push_policy_filter(qb: &mut QueryBuilder<Db>, ws: WorkspaceId, f: &PolicyFilter) {
    qb.push(" WHERE workspace_id = ").push_bind(ws.0);
    if let Some(s) = f.status {
        qb.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(t) = f.policy_type {
        qb.push(" AND policy_type = ").push_bind(t.as_str());
    }
    if let Some(c) = &f.category {
        qb.push(" AND category = ").push_bind(c.clone());
    }
    if let Some(t) = &f.text {
        let p = like_pattern(t);
        qb.push(" AND (LOWER(name) LIKE ").push_bind(p.clone()).push(" ESCAPE '\\' OR LOWER(COALESCE(description, '')) LIKE ").push_bind(p).push(" ESCAPE '\\')");
    }
    if let Some(c) = &f.control {
        // Control ids are checked against the catalogue before they get here.
        qb.push(" AND spec LIKE ").push_bind(format!("%\"{c}\"%"));
    }
}

fn push_violation_filter(qb: &mut QueryBuilder<Db>, ws: WorkspaceId, f: &ViolationFilter) {
    qb.push(" WHERE workspace_id = ").push_bind(ws.0);
    if let Some(p) = f.policy_id {
        qb.push(" AND policy_id = ").push_bind(p.0);
    }
    if let Some(s) = f.status {
        qb.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(s) = f.severity {
        qb.push(" AND severity = ").push_bind(s.as_str());
    }
    if let Some(t) = &f.resource_type {
        qb.push(" AND resource_type = ").push_bind(t.clone());
    }
    if let Some(i) = &f.resource_id {
        qb.push(" AND resource_id = ").push_bind(i.clone());
    }
    if let Some(from) = f.from {
        qb.push(" AND detected_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(" AND detected_at < ").push_bind(to);
    }
}

async fn insert_version(tx: &mut Tx<'_>, ws: WorkspaceId, v: &PolicyVersion) -> R<()> {
    sqlx::query("INSERT INTO policy_versions (workspace_id, policy_id, version, spec, changed_by, changed_at, change_summary) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(ws.0)
        .bind(v.policy_id.0)
        .bind(v.version)
        .bind(spec_json(&v.spec))
        .bind(v.changed_by.map(|u| u.0))
        .bind(v.changed_at)
        .bind(&v.change_summary)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

async fn write_policy(tx: &mut Tx<'_>, ws: WorkspaceId, w: &PolicyWrite) -> R<()> {
    let p = &w.policy;
    if p.workspace_id != ws || w.version.policy_id != p.id || w.version.version != p.version {
        return Err(llmgov_core::CoreError::internal("inconsistent policy write"));
    }
    let s = &p.spec;
    match w.expected_version {
        None => {
            sqlx::query(
                "INSERT INTO policies (id, workspace_id, name, description, policy_type, category, priority, status, spec, version, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(p.id.0)
            .bind(ws.0)
            .bind(&s.name)
            .bind(&s.description)
            .bind(s.policy_type.as_str())
            .bind(&s.category)
            .bind(s.priority)
            .bind(s.status.as_str())
            .bind(spec_json(s))
            .bind(p.version)
            .bind(p.created_by.map(|u| u.0))
            .bind(p.created_at)
            .bind(p.updated_at)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        }
        Some(expected) => {
            let done = sqlx::query(
                "UPDATE policies SET name = $3, description = $4, policy_type = $5, category = $6, priority = $7, status = $8, spec = $9, version = $10, updated_at = $11 \
                 WHERE workspace_id = $1 AND id = $2 AND version = $12",
            )
            .bind(ws.0)
            .bind(p.id.0)
            .bind(&s.name)
            .bind(&s.description)
            .bind(s.policy_type.as_str())
            .bind(&s.category)
            .bind(s.priority)
            .bind(s.status.as_str())
            .bind(spec_json(s))
            .bind(p.version)
            .bind(p.updated_at)
            .bind(expected)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            if done.rows_affected() != 1 {
                return Err(llmgov_core::CoreError::conflict(
                    "POLICY_VERSION_CONFLICT",
                    format!("policy {} changed since version {expected}; reload it and retry", p.id),
                ));
            }
        }
    }
    insert_version(tx, ws, &w.version).await
}

#[async_trait]
impl PolicyStore for crate::SqlStore<Db> {
    async fn save_policies(&self, ws: WorkspaceId, writes: &[PolicyWrite], audit: Vec<AuditDraft>) -> R<()> {
        let mut tx = begin(&self.write).await?;
        for w in writes {
            write_policy(&mut tx, ws, w).await?;
        }
        append_many_in(&mut tx, ws, audit).await?;
        commit(tx).await
    }

    async fn get_policy(&self, ws: WorkspaceId, id: PolicyId) -> R<Policy> {
        let row = sqlx::query("SELECT * FROM policies WHERE workspace_id = $1 AND id = $2")
            .bind(ws.0)
            .bind(id.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        policy_from_row(&row.ok_or(llmgov_core::CoreError::not_found("policy"))?)
    }

    async fn list_policies(&self, ws: WorkspaceId, filter: &PolicyFilter, q: &ListQuery) -> R<Page<Policy>> {
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) AS n FROM policies");
        push_policy_filter(&mut count, ws, filter);
        let total: i64 = count.build().fetch_one(&self.read).await.map_err(db_err)?.try_get("n").map_err(db_err)?;
        let mut qb = QueryBuilder::<Db>::new("SELECT * FROM policies");
        push_policy_filter(&mut qb, ws, filter);
        qb.push(" ORDER BY ").push(q.order_by("")).push(" LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = qb.build().fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(policy_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn active_policies(&self, ws: WorkspaceId) -> R<Vec<Policy>> {
        let rows = sqlx::query("SELECT * FROM policies WHERE workspace_id = $1 AND status = 'active' ORDER BY priority DESC, id")
            .bind(ws.0)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(policy_from_row).collect()
    }

    async fn policy_versions(&self, ws: WorkspaceId, id: PolicyId) -> R<Vec<PolicyVersion>> {
        let rows = sqlx::query("SELECT * FROM policy_versions WHERE workspace_id = $1 AND policy_id = $2 ORDER BY version DESC")
            .bind(ws.0)
            .bind(id.0)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        if rows.is_empty() {
            return Err(llmgov_core::CoreError::not_found("policy"));
        }
        rows.iter().map(version_from_row).collect()
    }

    async fn policy_version(&self, ws: WorkspaceId, id: PolicyId, version: i32) -> R<PolicyVersion> {
        let row = sqlx::query("SELECT * FROM policy_versions WHERE workspace_id = $1 AND policy_id = $2 AND version = $3")
            .bind(ws.0)
            .bind(id.0)
            .bind(version)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        version_from_row(&row.ok_or(llmgov_core::CoreError::not_found("policy version"))?)
    }

    async fn record_evaluations(&self, ws: WorkspaceId, items: &[(EvaluationRecord, Vec<Violation>)], audit: Vec<AuditDraft>, outbox: &[llmgov_core::outbox::OutboxMessage]) -> R<()> {
        let mut tx = begin(&self.write).await?;
        for (eval, violations) in items {
            if eval.workspace_id != ws || violations.iter().any(|v| v.workspace_id != ws) {
                return Err(llmgov_core::CoreError::internal("an evaluation batch spans workspaces"));
            }
            sqlx::query("INSERT INTO policy_evaluations (id, workspace_id, evaluated_at, decision, policy_ids, violation_count, input, team, user_ref, cost) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                .bind(eval.id.0)
                .bind(eval.workspace_id.0)
                .bind(eval.at)
                .bind(eval.decision.as_str())
                .bind(serde_json::to_string(&eval.policy_ids).expect("ids serialize"))
                .bind(eval.violation_count)
                .bind(&eval.input)
                .bind(&eval.team)
                .bind(&eval.user)
                .bind(eval.cost)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            for v in violations {
                sqlx::query(
                    "INSERT INTO policy_violations (id, workspace_id, policy_id, policy_version, evaluation_id, rule, message, severity, decision, resource_type, resource_id, details, status, detected_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(v.id.0)
                .bind(v.workspace_id.0)
                .bind(v.policy_id.0)
                .bind(v.policy_version)
                .bind(eval.id.0)
                .bind(&v.rule)
                .bind(&v.message)
                .bind(v.severity.as_str())
                .bind(v.decision.as_str())
                .bind(&v.resource_type)
                .bind(&v.resource_id)
                .bind(v.details.to_string())
                .bind(v.status.as_str())
                .bind(v.detected_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        // Spend, summed over the batch first: one row update per team or user and day.
        let mut spend: std::collections::BTreeMap<(SpendScope, &str, String), f64> = std::collections::BTreeMap::new();
        for (e, _) in items.iter().filter(|(e, _)| e.cost > 0.0) {
            let day = e.at.date_naive().to_string();
            for (scope, who) in [(SpendScope::Team, &e.team), (SpendScope::User, &e.user)] {
                if let Some(who) = who {
                    *spend.entry((scope, who.as_str(), day.clone())).or_default() += e.cost;
                }
            }
        }
        for ((scope, who, day), cost) in spend {
            sqlx::query(
                "INSERT INTO policy_spend (workspace_id, scope, subject, day, cost) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (workspace_id, scope, subject, day) DO UPDATE SET cost = policy_spend.cost + excluded.cost",
            )
            .bind(ws.0)
            .bind(scope.as_str())
            .bind(who)
            .bind(day)
            .bind(cost)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        append_many_in(&mut tx, ws, audit).await?;
        let events = insert_messages(&mut tx, outbox).await?;
        commit(tx).await?;
        if events {
            self.events.wake();
        }
        Ok(())
    }

    async fn recent_evaluation_inputs(&self, ws: WorkspaceId, limit: i64) -> R<Vec<String>> {
        let rows = sqlx::query("SELECT input FROM policy_evaluations WHERE workspace_id = $1 ORDER BY evaluated_at DESC, id DESC LIMIT $2")
            .bind(ws.0)
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| text(r, "input")).collect()
    }

    async fn list_violations(&self, ws: WorkspaceId, filter: &ViolationFilter, q: &ListQuery) -> R<Page<Violation>> {
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) AS n FROM policy_violations");
        push_violation_filter(&mut count, ws, filter);
        let total: i64 = count.build().fetch_one(&self.read).await.map_err(db_err)?.try_get("n").map_err(db_err)?;
        let mut qb = QueryBuilder::<Db>::new("SELECT * FROM policy_violations");
        push_violation_filter(&mut qb, ws, filter);
        qb.push(" ORDER BY ").push(q.order_by("")).push(" LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = qb.build().fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(violation_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn get_violation(&self, ws: WorkspaceId, id: ViolationId) -> R<Violation> {
        let row = sqlx::query("SELECT * FROM policy_violations WHERE workspace_id = $1 AND id = $2")
            .bind(ws.0)
            .bind(id.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        violation_from_row(&row.ok_or(llmgov_core::CoreError::not_found("violation"))?)
    }

    async fn update_violation(&self, v: &Violation, from: ViolationStatus, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let done = sqlx::query(
            "UPDATE policy_violations SET status = $3, updated_at = $4, resolved_by = $5, resolution_notes = $6 WHERE workspace_id = $1 AND id = $2 AND status = $7",
        )
        .bind(v.workspace_id.0)
        .bind(v.id.0)
        .bind(v.status.as_str())
        .bind(v.updated_at)
        .bind(v.resolved_by.map(|u| u.0))
        .bind(&v.resolution_notes)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() != 1 {
            return Err(llmgov_core::CoreError::conflict("VIOLATION_CHANGED", "the violation changed meanwhile; reload it and retry"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn spend(&self, ws: WorkspaceId, scope: SpendScope, id: &str, day: chrono::NaiveDate) -> R<(f64, f64)> {
        let first = day.with_day(1).unwrap_or(day);
        let row = sqlx::query(
            "SELECT COALESCE(SUM(cost), 0.0) AS month, COALESCE(SUM(CASE WHEN day = $4 THEN cost ELSE 0.0 END), 0.0) AS today \
             FROM policy_spend WHERE workspace_id = $1 AND scope = $2 AND subject = $3 AND day >= $5 AND day <= $4",
        )
        .bind(ws.0)
        .bind(scope.as_str())
        .bind(id)
        .bind(day.to_string())
        .bind(first.to_string())
        .fetch_one(&self.read)
        .await
        .map_err(db_err)?;
        Ok((row.try_get("today").map_err(db_err)?, row.try_get("month").map_err(db_err)?))
    }

    async fn policy_evidence(&self, ws: WorkspaceId, id: PolicyId) -> R<PolicyEvidence> {
        let v = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN status IN ('open', 'acknowledged') THEN 1 ELSE 0 END), 0) AS open FROM policy_violations WHERE workspace_id = $1 AND policy_id = $2",
        )
        .bind(ws.0)
        .bind(id.0)
        .fetch_one(&self.read)
        .await
        .map_err(db_err)?;
        let e = sqlx::query("SELECT COUNT(*) AS n FROM policy_evaluations WHERE workspace_id = $1 AND policy_ids LIKE $2")
            .bind(ws.0)
            .bind(format!("%{}%", id.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_err)?;
        Ok(PolicyEvidence {
            evaluations: e.try_get("n").map_err(db_err)?,
            violations: v.try_get("n").map_err(db_err)?,
            open_violations: v.try_get::<i64, _>("open").map_err(db_err)?,
        })
    }
}
