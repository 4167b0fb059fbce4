// Workspaces and first-start bootstrap.

const SYSTEM_WORKSPACE_KEY: &str = "system_workspace_id";

fn workspace_from_row(r: &DbRow) -> R<Workspace> {
    Ok(Workspace {
        id: WorkspaceId(uuid_of(r, "id")?),
        name: text(r, "name")?,
        description: opt_text(r, "description")?,
        created_at: ts(r, "created_at")?,
    })
}

async fn insert_workspace(tx: &mut Tx<'_>, ws: &Workspace) -> R<()> {
    sqlx::query("INSERT INTO workspaces (id, name, description, created_at) VALUES ($1, $2, $3, $4)")
        .bind(ws.id.0)
        .bind(&ws.name)
        .bind(&ws.description)
        .bind(ws.created_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    sqlx::query("INSERT INTO audit_heads (workspace_id, next_sequence, head_hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING")
        .bind(ws.id.0)
        .bind(GENESIS_HASH.to_vec())
        .execute(&mut **tx)
        .await
        .map_err(audit_err)?;
    Ok(())
}

#[async_trait]
impl WorkspaceStore for crate::SqlStore<Db> {
    async fn bootstrap(&self, ws: &Workspace, admin: &NewUser, audit: AuditDraft) -> R<bool> {
        let mut tx = begin(&self.write).await?;
        // The settings row is the bootstrap lock: of two instances starting at once, one
        // inserts it and the other finds it taken and rolls back.
        let claimed = sqlx::query("INSERT INTO system_settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(SYSTEM_WORKSPACE_KEY)
            .bind(ws.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if claimed == 0 {
            return Ok(false);
        }
        insert_workspace(&mut tx, ws).await?;
        insert_user(&mut tx, ws.id, admin).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn system_workspace(&self) -> R<Option<WorkspaceId>> {
        let row = sqlx::query("SELECT value FROM system_settings WHERE key = $1")
            .bind(SYSTEM_WORKSPACE_KEY)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(WorkspaceId::parse(&text(&r, "value")?)?)),
        }
    }

    async fn create_workspace(&self, ws: &Workspace, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        insert_workspace(&mut tx, ws).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_workspace(&self, id: WorkspaceId) -> R<Workspace> {
        let row = sqlx::query("SELECT * FROM workspaces WHERE id = $1").bind(id.0).fetch_optional(&self.read).await.map_err(db_err)?;
        workspace_from_row(&row.ok_or(llmgov_core::CoreError::not_found("workspace"))?)
    }

    async fn list_workspaces(&self, q: &ListQuery) -> R<Page<Workspace>> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM workspaces")
            .fetch_one(&self.read)
            .await
            .map_err(db_err)?
            .try_get("n")
            .map_err(db_err)?;
        let sql = format!("SELECT * FROM workspaces ORDER BY {} LIMIT $1 OFFSET $2", q.order_by(""));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(q.limit as i64).bind(q.offset()).fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(workspace_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn add_member(&self, ws: WorkspaceId, user: UserId, roles: &[String], audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let at = now();
        sqlx::query("INSERT INTO memberships (workspace_id, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(ws.0)
            .bind(user.0)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_roles(&mut tx, ws, user, roles, at).await?;
        notify_invalidation(&mut tx, &user.to_string()).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        self.users.invalidate(user);
        Ok(())
    }

    async fn user_workspaces(&self, user: UserId) -> R<Vec<Workspace>> {
        let rows = sqlx::query(
            "SELECT w.* FROM workspaces w JOIN memberships m ON m.workspace_id = w.id WHERE m.user_id = $1 ORDER BY m.created_at, w.id",
        )
        .bind(user.0)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(workspace_from_row).collect()
    }
}
