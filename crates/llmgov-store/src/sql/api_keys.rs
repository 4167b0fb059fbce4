// API keys: only the hash of a key is stored.

fn key_from_row(r: &DbRow) -> R<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        user_id: UserId(uuid_of(r, "user_id")?),
        name: text(r, "name")?,
        prefix: text(r, "key_prefix")?,
        scopes: perms(r, "scopes")?,
        expires_at: opt_ts(r, "expires_at")?,
        last_used_at: opt_ts(r, "last_used_at")?,
        created_at: ts(r, "created_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
        key_hash: r.try_get("key_hash").map_err(db_err)?,
    })
}

#[async_trait]
impl ApiKeyStore for crate::SqlStore<Db> {
    async fn create_api_key(&self, k: &ApiKey, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, user_id, name, key_prefix, key_hash, scopes, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(k.id.0)
        .bind(k.workspace_id.0)
        .bind(k.user_id.0)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.key_hash)
        .bind(perms_json(&k.scopes))
        .bind(k.expires_at)
        .bind(k.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_api_key(&self, ws: WorkspaceId, id: ApiKeyId) -> R<ApiKey> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE workspace_id = $1 AND id = $2")
            .bind(ws.0)
            .bind(id.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        key_from_row(&row.ok_or(llmgov_core::CoreError::not_found("api_key"))?)
    }

    async fn list_api_keys(&self, ws: WorkspaceId, owner: Option<UserId>, q: &ListQuery) -> R<Page<ApiKey>> {
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ");
        count.push_bind(ws.0);
        if let Some(o) = owner {
            count.push(" AND user_id = ").push_bind(o.0);
        }
        let total: i64 = count.build().fetch_one(&self.read).await.map_err(db_err)?.try_get("n").map_err(db_err)?;
        let mut qb = QueryBuilder::<Db>::new("SELECT * FROM api_keys WHERE workspace_id = ");
        qb.push_bind(ws.0);
        if let Some(o) = owner {
            qb.push(" AND user_id = ").push_bind(o.0);
        }
        qb.push(" ORDER BY ").push(q.order_by("")).push(" LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = qb.build().fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(key_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn revoke_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Timestamp, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let n = sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL")
            .bind(ws.0)
            .bind(id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            return Err(llmgov_core::CoreError::not_found("api_key"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> R<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_prefix = $1").bind(prefix).fetch_optional(&self.read).await.map_err(db_err)?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> R<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1").bind(id.0).bind(now).execute(&self.write).await.map_err(db_err)?;
        Ok(())
    }
}
