// Refresh-token sessions.

fn refresh_from_row(r: &DbRow) -> R<RefreshToken> {
    Ok(RefreshToken {
        id: uuid_of(r, "id")?,
        family_id: uuid_of(r, "family_id")?,
        user_id: UserId(uuid_of(r, "user_id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        token_hash: r.try_get("token_hash").map_err(db_err)?,
        created_at: ts(r, "created_at")?,
        expires_at: ts(r, "expires_at")?,
        used_at: opt_ts(r, "used_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
    })
}

async fn insert_refresh(tx: &mut Tx<'_>, t: &RefreshToken) -> R<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, workspace_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(t.id)
    .bind(t.family_id)
    .bind(t.user_id.0)
    .bind(t.workspace_id.0)
    .bind(&t.token_hash)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for crate::SqlStore<Db> {
    async fn record_login(&self, token: &RefreshToken, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        insert_refresh(&mut tx, token).await?;
        sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1").bind(token.user_id.0).bind(token.created_at).execute(&mut *tx).await.map_err(db_err)?;
        // Expired tokens are swept here, where sessions are written anyway.
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at < $2")
            .bind(token.user_id.0)
            .bind(token.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        notify_invalidation(&mut tx, &token.user_id.to_string()).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        self.users.invalidate(token.user_id);
        Ok(())
    }

    async fn get_refresh_token(&self, id: uuid::Uuid) -> R<Option<RefreshToken>> {
        // Read from the write pool: a rotation just committed must be seen.
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE id = $1").bind(id).fetch_optional(&self.write).await.map_err(db_err)?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    async fn rotate_refresh_token(&self, old: uuid::Uuid, new: &RefreshToken, now: Timestamp, audit: AuditDraft) -> R<bool> {
        let mut tx = begin(&self.write).await?;
        let n = sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL")
            .bind(old)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        insert_refresh(&mut tx, new).await?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn revoke_token_family(&self, family: uuid::Uuid, now: Timestamp, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
            .bind(family)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }
}
