// Facts about models and datasets for policies.

use llmgov_core::policy::facts::{Fact, FactKind, FactStore};

fn fact_from_row(r: &DbRow) -> R<Fact> {
    let kind = match text(r, "kind")?.as_str() {
        "model" => FactKind::Model,
        "dataset" => FactKind::Dataset,
        other => return Err(llmgov_core::CoreError::internal(format!("stored fact kind {other}"))),
    };
    Ok(Fact {
        kind,
        name: text(r, "name")?,
        facts: json_text(r, "facts")?,
        updated_at: ts(r, "updated_at")?,
        updated_by: r.try_get::<Option<uuid::Uuid>, _>("updated_by").map_err(db_err)?.map(UserId),
    })
}

#[async_trait]
impl FactStore for crate::SqlStore<Db> {
    async fn put_fact(&self, ws: WorkspaceId, fact: &Fact, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        sqlx::query(
            "INSERT INTO platform_facts (workspace_id, kind, name, facts, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (workspace_id, kind, name) DO UPDATE SET facts = excluded.facts, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(ws.0)
        .bind(fact.kind.as_str())
        .bind(&fact.name)
        .bind(fact.facts.to_string())
        .bind(fact.updated_at)
        .bind(fact.updated_by.map(|u| u.0))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_fact(&self, ws: WorkspaceId, kind: FactKind, name: &str) -> R<Fact> {
        let row = sqlx::query("SELECT * FROM platform_facts WHERE workspace_id = $1 AND kind = $2 AND name = $3")
            .bind(ws.0)
            .bind(kind.as_str())
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        fact_from_row(&row.ok_or(llmgov_core::CoreError::not_found("fact"))?)
    }

    async fn list_facts(&self, ws: WorkspaceId, kind: FactKind, q: &ListQuery) -> R<Page<Fact>> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM platform_facts WHERE workspace_id = $1 AND kind = $2")
            .bind(ws.0)
            .bind(kind.as_str())
            .fetch_one(&self.read)
            .await
            .map_err(db_err)?
            .try_get("n")
            .map_err(db_err)?;
        let rows = sqlx::query("SELECT * FROM platform_facts WHERE workspace_id = $1 AND kind = $2 ORDER BY name LIMIT $3 OFFSET $4")
            .bind(ws.0)
            .bind(kind.as_str())
            .bind(q.limit as i64)
            .bind(q.offset())
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        Ok(Page::new(rows.iter().map(fact_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn delete_fact(&self, ws: WorkspaceId, kind: FactKind, name: &str, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let done = sqlx::query("DELETE FROM platform_facts WHERE workspace_id = $1 AND kind = $2 AND name = $3")
            .bind(ws.0)
            .bind(kind.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(llmgov_core::CoreError::not_found("fact"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }
}
