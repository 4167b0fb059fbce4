// Custom roles of a workspace.

fn role_from_row(r: &DbRow) -> R<CustomRole> {
    Ok(CustomRole {
        id: RoleId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        name: text(r, "name")?,
        description: opt_text(r, "description")?,
        permissions: perms(r, "permissions")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

#[async_trait]
impl RoleStore for crate::SqlStore<Db> {
    async fn create_role(&self, role: &CustomRole, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        sqlx::query(
            "INSERT INTO roles (id, workspace_id, name, description, permissions, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(role.id.0)
        .bind(role.workspace_id.0)
        .bind(&role.name)
        .bind(&role.description)
        .bind(perms_json(&role.permissions))
        .bind(role.created_at)
        .bind(role.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_role(&self, ws: WorkspaceId, id: RoleId) -> R<CustomRole> {
        let row = sqlx::query("SELECT * FROM roles WHERE workspace_id = $1 AND id = $2")
            .bind(ws.0)
            .bind(id.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        role_from_row(&row.ok_or(llmgov_core::CoreError::not_found("role"))?)
    }

    async fn list_roles(&self, ws: WorkspaceId) -> R<Vec<CustomRole>> {
        let rows = sqlx::query("SELECT * FROM roles WHERE workspace_id = $1 ORDER BY name").bind(ws.0).fetch_all(&self.read).await.map_err(db_err)?;
        rows.iter().map(role_from_row).collect()
    }

    async fn roles_by_name(&self, ws: WorkspaceId, names: &[String]) -> R<Vec<CustomRole>> {
        let mut qb = QueryBuilder::<Db>::new("SELECT * FROM roles WHERE workspace_id = ");
        qb.push_bind(ws.0).push(" AND name IN (");
        let mut sep = qb.separated(", ");
        for n in names {
            sep.push_bind(n.as_str());
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&self.read).await.map_err(db_err)?;
        rows.iter().map(role_from_row).collect()
    }

    async fn update_role(&self, role: &CustomRole, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let n = sqlx::query("UPDATE roles SET description = $3, permissions = $4, updated_at = $5 WHERE workspace_id = $1 AND id = $2")
            .bind(role.workspace_id.0)
            .bind(role.id.0)
            .bind(&role.description)
            .bind(perms_json(&role.permissions))
            .bind(role.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            return Err(llmgov_core::CoreError::not_found("role"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn delete_role(&self, ws: WorkspaceId, id: RoleId, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let row = sqlx::query("DELETE FROM roles WHERE workspace_id = $1 AND id = $2 RETURNING name")
            .bind(ws.0)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(llmgov_core::CoreError::not_found("role"))?;
        sqlx::query("DELETE FROM user_roles WHERE workspace_id = $1 AND role_name = $2")
            .bind(ws.0)
            .bind(text(&row, "name")?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        notify_invalidation(&mut tx, "*").await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        self.users.clear();
        Ok(())
    }
}
