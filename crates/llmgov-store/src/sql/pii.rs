// PII engine state: settings, the token vault and the findings of dataset versions.

use llmgov_core::pii::{PiiSettings, PiiStore, SealedToken, StoredReport, StoredSettings};

#[async_trait]
impl PiiStore for crate::SqlStore<Db> {
    async fn pii_settings(&self, ws: WorkspaceId) -> R<Option<StoredSettings>> {
        let row = sqlx::query("SELECT settings, version, updated_at FROM pii_settings WHERE workspace_id = $1")
            .bind(ws.0)
            .fetch_optional(&self.write)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(StoredSettings {
                settings: serde_json::from_str(&text(&r, "settings")?).map_err(llmgov_core::CoreError::internal)?,
                version: r.try_get::<i64, _>("version").map_err(db_err)?,
                updated_at: Some(ts(&r, "updated_at")?),
            })
        })
        .transpose()
    }

    async fn put_pii_settings(&self, ws: WorkspaceId, settings: &PiiSettings, expected: i64, audit: AuditDraft) -> R<StoredSettings> {
        let actor = audit.actor_id;
        let json = serde_json::to_string(settings).map_err(llmgov_core::CoreError::internal)?;
        let at = now();
        let mut tx = begin(&self.write).await?;
        let done = if expected == 0 {
            sqlx::query("INSERT INTO pii_settings (workspace_id, settings, version, updated_at, updated_by) VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING")
                .bind(ws.0)
                .bind(&json)
                .bind(at)
                .bind(actor.map(|a| a.0))
                .execute(&mut *tx)
                .await
        } else {
            sqlx::query("UPDATE pii_settings SET settings = $2, version = version + 1, updated_at = $3, updated_by = $4 WHERE workspace_id = $1 AND version = $5")
                .bind(ws.0)
                .bind(&json)
                .bind(at)
                .bind(actor.map(|a| a.0))
                .bind(expected)
                .execute(&mut *tx)
                .await
        }
        .map_err(db_err)?;
        if done.rows_affected() != 1 {
            return Err(llmgov_core::CoreError::conflict(
                "PII_SETTINGS_CHANGED",
                "the PII settings changed since they were read; read them again",
            ));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(StoredSettings { settings: settings.clone(), version: expected + 1, updated_at: Some(at) })
    }

    async fn put_tokens(&self, ws: WorkspaceId, tokens: &[SealedToken], audit: AuditDraft) -> R<()> {
        let at = now();
        let mut tx = begin(&self.write).await?;
        for chunk in tokens.chunks(200) {
            let mut q = QueryBuilder::<Db>::new("INSERT INTO pii_tokens (workspace_id, token, entity_type, sealed, created_at) ");
            q.push_values(chunk, |mut b, t| {
                b.push_bind(ws.0).push_bind(&t.token).push_bind(&t.entity_type).push_bind(&t.sealed).push_bind(at);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_tokens(&self, ws: WorkspaceId, tokens: &[String]) -> R<Vec<SealedToken>> {
        let mut out = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(200) {
            let mut q = QueryBuilder::<Db>::new("SELECT token, entity_type, sealed FROM pii_tokens WHERE workspace_id = ");
            q.push_bind(ws.0);
            q.push(" AND token IN (");
            let mut sep = q.separated(", ");
            for t in chunk {
                sep.push_bind(t);
            }
            q.push(")");
            let rows = q.build().fetch_all(&self.read).await.map_err(db_err)?;
            for r in rows {
                out.push(SealedToken { token: text(&r, "token")?, entity_type: text(&r, "entity_type")?, sealed: text(&r, "sealed")? });
            }
        }
        Ok(out)
    }

    async fn dataset_pii(&self, ws: WorkspaceId, ds: llmgov_core::ids::DatasetId, commit_id: &str) -> R<Option<StoredReport>> {
        let row = sqlx::query("SELECT settings_version, report, scanned_at FROM dataset_pii WHERE workspace_id = $1 AND dataset_id = $2 AND commit_id = $3")
            .bind(ws.0)
            .bind(ds.0)
            .bind(commit_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(StoredReport {
                settings_version: r.try_get::<i64, _>("settings_version").map_err(db_err)?,
                report: json_text(&r, "report")?,
                scanned_at: ts(&r, "scanned_at")?,
            })
        })
        .transpose()
    }

    async fn put_dataset_pii(&self, ws: WorkspaceId, ds: llmgov_core::ids::DatasetId, commit_id: &str, settings_version: i64, report: &serde_json::Value) -> R<()> {
        sqlx::query("INSERT INTO dataset_pii (workspace_id, dataset_id, commit_id, settings_version, report, scanned_at) SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM datasets WHERE id = $2 AND workspace_id = $1) ON CONFLICT (dataset_id, commit_id) DO UPDATE SET settings_version = excluded.settings_version, report = excluded.report, scanned_at = excluded.scanned_at")
            .bind(ws.0)
            .bind(ds.0)
            .bind(commit_id)
            .bind(settings_version)
            .bind(report.to_string())
            .bind(now())
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
