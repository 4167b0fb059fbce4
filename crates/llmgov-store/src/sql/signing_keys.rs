// JWT signing keys, shared by every instance through the database.

#[async_trait]
impl SigningKeyStore for crate::SqlStore<Db> {
    async fn signing_keys(&self) -> R<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at").fetch_all(&self.write).await.map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: text(r, "kid")?,
                    algorithm: text(r, "algorithm")?,
                    private_key: r.try_get("private_key").map_err(db_err)?,
                    public_key: r.try_get("public_key").map_err(db_err)?,
                    created_at: ts(r, "created_at")?,
                    retired_at: opt_ts(r, "retired_at")?,
                })
            })
            .collect()
    }

    async fn insert_signing_key(&self, k: &SigningKeyRecord, only_if_none: bool, audit: AuditDraft) -> R<bool> {
        let mut tx = begin(&self.write).await?;
        if only_if_none {
            // Serialise first-start key creation of concurrent instances on the audit head.
            sqlx::query("UPDATE audit_heads SET next_sequence = next_sequence WHERE workspace_id = $1")
                .bind(audit.workspace_id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let active = sqlx::query("SELECT 1 AS one FROM signing_keys WHERE retired_at IS NULL").fetch_optional(&mut *tx).await.map_err(db_err)?;
            if active.is_some() {
                return Ok(false);
            }
        }
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL").bind(k.created_at).execute(&mut *tx).await.map_err(db_err)?;
        sqlx::query("INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&k.kid)
            .bind(&k.algorithm)
            .bind(&k.private_key)
            .bind(&k.public_key)
            .bind(k.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }
}
