// Users, memberships and role assignments.

fn user_select() -> String {
    format!(
        "SELECT u.id, u.email, u.username, u.first_name, u.last_name, u.status, u.metadata, u.created_at, \
         u.updated_at, u.last_login_at, m.workspace_id, \
         COALESCE((SELECT {ROLE_AGG} FROM user_roles r WHERE r.workspace_id = m.workspace_id AND r.user_id = u.id), '') AS roles \
         FROM users u JOIN memberships m ON m.user_id = u.id"
    )
}

fn user_from_row(r: &DbRow) -> R<User> {
    let mut roles: Vec<String> = text(r, "roles")?.split(',').filter(|s| !s.is_empty()).map(String::from).collect();
    roles.sort();
    Ok(User {
        id: UserId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        email: text(r, "email")?,
        username: text(r, "username")?,
        first_name: opt_text(r, "first_name")?,
        last_name: opt_text(r, "last_name")?,
        status: UserStatus::parse(&text(r, "status")?)?,
        roles,
        metadata: json_text(r, "metadata")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
        last_login_at: opt_ts(r, "last_login_at")?,
    })
}

async fn insert_user(tx: &mut Tx<'_>, ws: WorkspaceId, u: &NewUser) -> R<()> {
    sqlx::query(
        "INSERT INTO users (id, email, username, password_hash, first_name, last_name, status, metadata, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $8)",
    )
    .bind(u.id.0)
    .bind(u.email.as_str())
    .bind(u.username.as_str())
    .bind(&u.password_hash)
    .bind(&u.first_name)
    .bind(&u.last_name)
    .bind(u.metadata.to_string())
    .bind(u.created_at)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    sqlx::query("INSERT INTO memberships (workspace_id, user_id, created_at) VALUES ($1, $2, $3)")
        .bind(ws.0)
        .bind(u.id.0)
        .bind(u.created_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    insert_roles(tx, ws, u.id, &u.roles, u.created_at).await
}

async fn insert_roles(tx: &mut Tx<'_>, ws: WorkspaceId, user: UserId, roles: &[String], at: Timestamp) -> R<()> {
    for role in roles {
        sqlx::query("INSERT INTO user_roles (workspace_id, user_id, role_name, assigned_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(ws.0)
            .bind(user.0)
            .bind(role)
            .bind(at)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

async fn is_member(tx: &mut Tx<'_>, ws: WorkspaceId, user: UserId) -> R<bool> {
    Ok(sqlx::query("SELECT 1 AS one FROM memberships WHERE workspace_id = $1 AND user_id = $2")
        .bind(ws.0)
        .bind(user.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .is_some())
}

async fn credentials_where(pool: &sqlx::Pool<Db>, column: &str, value: impl sqlx::Encode<'_, Db> + sqlx::Type<Db> + Send + 'static) -> R<Option<Credentials>> {
    let sql = format!("SELECT id, email, password_hash, status FROM users WHERE {column} = $1");
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).fetch_optional(pool).await.map_err(db_err)? else {
        return Ok(None);
    };
    let id = uuid_of(&r, "id")?;
    let ws = sqlx::query("SELECT workspace_id FROM memberships WHERE user_id = $1 ORDER BY created_at, workspace_id")
        .bind(id)
        .fetch_all(pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|w| uuid_of(w, "workspace_id").map(WorkspaceId))
        .collect::<R<Vec<_>>>()?;
    Ok(Some(Credentials {
        user_id: UserId(id),
        email: text(&r, "email")?,
        password_hash: text(&r, "password_hash")?,
        status: UserStatus::parse(&text(&r, "status")?)?,
        workspaces: ws,
    }))
}

#[async_trait]
impl UserStore for crate::SqlStore<Db> {
    async fn create_user(&self, ws: WorkspaceId, user: &NewUser, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        insert_user(&mut tx, ws, user).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_user(&self, ws: WorkspaceId, id: UserId) -> R<User> {
        if let Some(u) = self.users.get(ws, id) {
            return Ok(u);
        }
        let generation = self.users.generation();
        let sql = format!("{} WHERE m.workspace_id = $1 AND u.id = $2", user_select());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ws.0).bind(id.0).fetch_optional(&self.read).await.map_err(db_err)?;
        let user = user_from_row(&row.ok_or(llmgov_core::CoreError::not_found("user"))?)?;
        self.users.insert_if(generation, &user);
        Ok(user)
    }

    async fn list_users(&self, ws: WorkspaceId, q: &ListQuery, status: Option<UserStatus>) -> R<Page<User>> {
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) AS n FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.workspace_id = ");
        count.push_bind(ws.0);
        if let Some(s) = status {
            count.push(" AND u.status = ").push_bind(s.as_str());
        }
        let total: i64 = count.build().fetch_one(&self.read).await.map_err(db_err)?.try_get("n").map_err(db_err)?;
        let mut qb = QueryBuilder::<Db>::new(user_select());
        qb.push(" WHERE m.workspace_id = ").push_bind(ws.0);
        if let Some(s) = status {
            qb.push(" AND u.status = ").push_bind(s.as_str());
        }
        qb.push(" ORDER BY ").push(q.order_by("u.")).push(" LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = qb.build().fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(user_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn update_user(&self, ws: WorkspaceId, id: UserId, c: &UserChanges, expected: Timestamp, now: Timestamp, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        if !is_member(&mut tx, ws, id).await? {
            return Err(llmgov_core::CoreError::not_found("user"));
        }
        let mut qb = QueryBuilder::<Db>::new("UPDATE users SET updated_at = ");
        qb.push_bind(now);
        if let Some(v) = &c.email {
            qb.push(", email = ").push_bind(v.as_str());
        }
        if let Some(v) = &c.username {
            qb.push(", username = ").push_bind(v.as_str());
        }
        if let Some(v) = &c.first_name {
            qb.push(", first_name = ").push_bind(v.as_deref());
        }
        if let Some(v) = &c.last_name {
            qb.push(", last_name = ").push_bind(v.as_deref());
        }
        if let Some(v) = c.status {
            qb.push(", status = ").push_bind(v.as_str());
        }
        if let Some(v) = &c.metadata {
            qb.push(", metadata = ").push_bind(v.to_string());
        }
        qb.push(" WHERE id = ").push_bind(id.0).push(" AND updated_at = ").push_bind(expected);
        let n = qb.build().execute(&mut *tx).await.map_err(db_err)?.rows_affected();
        if n == 0 {
            return Err(llmgov_core::CoreError::conflict("CONCURRENT_UPDATE", "the user was changed by someone else; reload and retry"));
        }
        if c.status == Some(UserStatus::Disabled) {
            // A disabled account keeps no sessions.
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(id.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        notify_invalidation(&mut tx, &id.to_string()).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        self.users.invalidate(id);
        Ok(())
    }

    async fn set_user_roles(&self, ws: WorkspaceId, id: UserId, roles: &[String], audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        if !is_member(&mut tx, ws, id).await? {
            return Err(llmgov_core::CoreError::not_found("user"));
        }
        sqlx::query("DELETE FROM user_roles WHERE workspace_id = $1 AND user_id = $2").bind(ws.0).bind(id.0).execute(&mut *tx).await.map_err(db_err)?;
        insert_roles(&mut tx, ws, id, roles, now()).await?;
        notify_invalidation(&mut tx, &id.to_string()).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        self.users.invalidate(id);
        Ok(())
    }

    async fn remove_user(&self, ws: WorkspaceId, id: UserId, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let n = sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(ws.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            return Err(llmgov_core::CoreError::not_found("user"));
        }
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND workspace_id = $2").bind(id.0).bind(ws.0).execute(&mut *tx).await.map_err(db_err)?;
        sqlx::query("DELETE FROM users WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = $1)")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        notify_invalidation(&mut tx, &id.to_string()).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        self.users.invalidate(id);
        Ok(())
    }

    async fn credentials_by_email(&self, email: &str) -> R<Option<Credentials>> {
        credentials_where(&self.read, "email", email.to_string()).await
    }

    async fn credentials_by_id(&self, id: UserId) -> R<Option<Credentials>> {
        credentials_where(&self.read, "id", id.0).await
    }

    async fn set_password(&self, ws: WorkspaceId, id: UserId, hash: &str, now: Timestamp, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        if !is_member(&mut tx, ws, id).await? {
            return Err(llmgov_core::CoreError::not_found("user"));
        }
        let n = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id.0)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            return Err(llmgov_core::CoreError::not_found("user"));
        }
        // A new password ends every session.
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL").bind(id.0).bind(now).execute(&mut *tx).await.map_err(db_err)?;
        notify_invalidation(&mut tx, &id.to_string()).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        self.users.invalidate(id);
        Ok(())
    }
}
