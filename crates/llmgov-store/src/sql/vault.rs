// Data Vault metadata: datasets, wrapped keys, commits and refs.

use llmgov_core::ids::DatasetId;
use llmgov_core::vault::keys::WrappedDek;
use llmgov_core::vault::model::{Commit, CommitId, Dataset, DatasetFormat, DatasetName, Ref, RefKind};
use llmgov_core::vault::store::{BranchUpdate, DatasetFilter, VaultStore};

fn dataset_from_row(r: &DbRow) -> R<Dataset> {
    Ok(Dataset {
        id: DatasetId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        name: DatasetName::parse(&text(r, "name")?)?,
        description: text(r, "description")?,
        format: DatasetFormat::parse(&text(r, "format")?)?,
        schema: json_text(r, "schema")?,
        tags: serde_json::from_str(&text(r, "tags")?).map_err(llmgov_core::CoreError::internal)?,
        metadata: json_text(r, "metadata")?,
        default_branch: text(r, "default_branch")?,
        created_by: r.try_get::<Option<uuid::Uuid>, _>("created_by").map_err(db_err)?.map(UserId),
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn commit_from_row(r: &DbRow) -> R<Commit> {
    let parents: Vec<String> = serde_json::from_str(&text(r, "parents")?).map_err(llmgov_core::CoreError::internal)?;
    Ok(Commit {
        id: CommitId(text(r, "id")?),
        dataset_id: DatasetId(uuid_of(r, "dataset_id")?),
        parents: parents.into_iter().map(CommitId).collect(),
        message: text(r, "message")?,
        author_id: r.try_get::<Option<uuid::Uuid>, _>("author_id").map_err(db_err)?.map(UserId),
        author: text(r, "author")?,
        created_at: ts(r, "created_at")?,
        manifest: text(r, "manifest")?,
        record_count: r.try_get::<i64, _>("record_count").map_err(db_err)? as u64,
        byte_count: r.try_get::<i64, _>("byte_count").map_err(db_err)? as u64,
        new_bytes: r.try_get::<i64, _>("new_bytes").map_err(db_err)? as u64,
        transformation: json_text(r, "transformation")?,
        schema: json_text(r, "schema")?,
        depth: r.try_get::<i64, _>("depth").map_err(db_err)? as u64,
    })
}

fn ref_from_row(r: &DbRow) -> R<Ref> {
    Ok(Ref {
        name: text(r, "name")?,
        kind: RefKind::parse(&text(r, "kind")?)?,
        commit_id: CommitId(text(r, "commit_id")?),
        protected: r.try_get("protected").map_err(db_err)?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Whether dataset `ds` of workspace `ws` exists, inside `tx` (every vault write checks it,
/// so a dataset of another workspace is never touched).
async fn dataset_in(tx: &mut Tx<'_>, ws: WorkspaceId, ds: DatasetId) -> R<()> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM datasets WHERE id = $1 AND workspace_id = $2")
        .bind(ds.0)
        .bind(ws.0)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
    if n == 0 {
        return Err(llmgov_core::CoreError::not_found("dataset"));
    }
    Ok(())
}

#[async_trait]
impl VaultStore for crate::SqlStore<Db> {
    async fn create_dataset(&self, d: &Dataset, key: &WrappedDek, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        sqlx::query("INSERT INTO datasets (id, workspace_id, name, description, format, schema, tags, metadata, default_branch, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(d.id.0)
            .bind(d.workspace_id.0)
            .bind(d.name.as_str())
            .bind(&d.description)
            .bind(d.format.as_str())
            .bind(d.schema.to_string())
            .bind(serde_json::to_string(&d.tags).map_err(llmgov_core::CoreError::internal)?)
            .bind(d.metadata.to_string())
            .bind(&d.default_branch)
            .bind(d.created_by.map(|u| u.0))
            .bind(d.created_at)
            .bind(d.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("INSERT INTO dataset_keys (dataset_id, kek_version, wrapped, created_at) VALUES ($1, $2, $3, $4)")
            .bind(d.id.0)
            .bind(key.kek_version as i32)
            .bind(&key.bytes)
            .bind(d.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_dataset(&self, ws: WorkspaceId, id: DatasetId) -> R<Dataset> {
        let row = sqlx::query("SELECT * FROM datasets WHERE id = $1 AND workspace_id = $2")
            .bind(id.0)
            .bind(ws.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        dataset_from_row(&row.ok_or(llmgov_core::CoreError::not_found("dataset"))?)
    }

    async fn dataset_by_name(&self, ws: WorkspaceId, name: &str) -> R<Dataset> {
        let row = sqlx::query("SELECT * FROM datasets WHERE name = $1 AND workspace_id = $2")
            .bind(name)
            .bind(ws.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        dataset_from_row(&row.ok_or(llmgov_core::CoreError::not_found("dataset"))?)
    }

    async fn list_datasets(&self, ws: WorkspaceId, f: &DatasetFilter, q: &ListQuery) -> R<Page<Dataset>> {
        let filters = |b: &mut QueryBuilder<Db>| {
            b.push(" WHERE workspace_id = ").push_bind(ws.0);
            if let Some(n) = &f.name {
                b.push(" AND name = ").push_bind(n.clone());
            }
            if let Some(t) = &f.tag {
                let needle = format!("%{}%", like_escape(&serde_json::Value::from(t.as_str()).to_string()));
                b.push(" AND tags LIKE ").push_bind(needle).push(" ESCAPE '\\'");
            }
            if let Some(fm) = f.format {
                b.push(" AND format = ").push_bind(fm.as_str());
            }
        };
        let mut c = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM datasets");
        filters(&mut c);
        let total: i64 = c.build_query_scalar().fetch_one(&self.read).await.map_err(db_err)?;
        let mut b = QueryBuilder::<Db>::new("SELECT * FROM datasets");
        filters(&mut b);
        b.push(" ORDER BY ").push(q.order_by("")).push(" LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = b.build().fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(dataset_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn update_dataset(&self, d: &Dataset, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        let done = sqlx::query("UPDATE datasets SET description = $3, tags = $4, metadata = $5, schema = $6, updated_at = $7 WHERE id = $1 AND workspace_id = $2")
            .bind(d.id.0)
            .bind(d.workspace_id.0)
            .bind(&d.description)
            .bind(serde_json::to_string(&d.tags).map_err(llmgov_core::CoreError::internal)?)
            .bind(d.metadata.to_string())
            .bind(d.schema.to_string())
            .bind(d.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(llmgov_core::CoreError::not_found("dataset"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn delete_dataset(&self, ws: WorkspaceId, id: DatasetId, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        dataset_in(&mut tx, ws, id).await?;
        for table in ["dataset_pii", "dataset_lineage", "dataset_refs", "dataset_commits", "dataset_keys"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE dataset_id = $1")))
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query("DELETE FROM datasets WHERE id = $1 AND workspace_id = $2")
            .bind(id.0)
            .bind(ws.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn dataset_key(&self, ws: WorkspaceId, id: DatasetId) -> R<WrappedDek> {
        let row = sqlx::query("SELECT k.kek_version, k.wrapped FROM dataset_keys k JOIN datasets d ON d.id = k.dataset_id WHERE k.dataset_id = $1 AND d.workspace_id = $2")
            .bind(id.0)
            .bind(ws.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?
            .ok_or(llmgov_core::CoreError::not_found("dataset"))?;
        Ok(WrappedDek {
            kek_version: row.try_get::<i32, _>("kek_version").map_err(db_err)? as u32,
            bytes: row.try_get("wrapped").map_err(db_err)?,
        })
    }

    async fn all_datasets(&self) -> R<Vec<Dataset>> {
        let rows = sqlx::query("SELECT * FROM datasets ORDER BY workspace_id, name")
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(dataset_from_row).collect()
    }

    async fn all_commits(&self, ws: WorkspaceId, ds: DatasetId) -> R<Vec<Commit>> {
        let rows = sqlx::query("SELECT c.* FROM dataset_commits c JOIN datasets d ON d.id = c.dataset_id WHERE c.dataset_id = $1 AND d.workspace_id = $2 ORDER BY c.depth, c.id")
            .bind(ds.0)
            .bind(ws.0)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(commit_from_row).collect()
    }

    async fn keys_below(&self, current: u32, limit: u32) -> R<Vec<(WorkspaceId, DatasetId, WrappedDek)>> {
        let rows = sqlx::query("SELECT d.workspace_id, k.dataset_id, k.kek_version, k.wrapped FROM dataset_keys k JOIN datasets d ON d.id = k.dataset_id WHERE k.kek_version < $1 ORDER BY k.dataset_id LIMIT $2")
            .bind(current as i32)
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    WorkspaceId(uuid_of(r, "workspace_id")?),
                    DatasetId(uuid_of(r, "dataset_id")?),
                    WrappedDek {
                        kek_version: r.try_get::<i32, _>("kek_version").map_err(db_err)? as u32,
                        bytes: r.try_get("wrapped").map_err(db_err)?,
                    },
                ))
            })
            .collect()
    }

    async fn workspace_key(&self, ws: WorkspaceId) -> R<Option<WrappedDek>> {
        let row = sqlx::query("SELECT kek_version, wrapped FROM workspace_keys WHERE workspace_id = $1")
            .bind(ws.0)
            .fetch_optional(&self.write)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(WrappedDek {
                kek_version: r.try_get::<i32, _>("kek_version").map_err(db_err)? as u32,
                bytes: r.try_get("wrapped").map_err(db_err)?,
            })
        })
        .transpose()
    }

    async fn insert_workspace_key(&self, ws: WorkspaceId, key: &WrappedDek) -> R<()> {
        sqlx::query("INSERT INTO workspace_keys (workspace_id, kek_version, wrapped, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(ws.0)
            .bind(key.kek_version as i32)
            .bind(&key.bytes)
            .bind(now())
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn workspace_keys_below(&self, current: u32, limit: u32) -> R<Vec<(WorkspaceId, WrappedDek)>> {
        let rows = sqlx::query("SELECT workspace_id, kek_version, wrapped FROM workspace_keys WHERE kek_version < $1 ORDER BY workspace_id LIMIT $2")
            .bind(current as i32)
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    WorkspaceId(uuid_of(r, "workspace_id")?),
                    WrappedDek {
                        kek_version: r.try_get::<i32, _>("kek_version").map_err(db_err)? as u32,
                        bytes: r.try_get("wrapped").map_err(db_err)?,
                    },
                ))
            })
            .collect()
    }

    async fn rewrap_workspace_key(&self, ws: WorkspaceId, old: &WrappedDek, new: &WrappedDek) -> R<bool> {
        let done = sqlx::query("UPDATE workspace_keys SET kek_version = $2, wrapped = $3, rewrapped_at = $4 WHERE workspace_id = $1 AND kek_version = $5 AND wrapped = $6")
            .bind(ws.0)
            .bind(new.kek_version as i32)
            .bind(&new.bytes)
            .bind(now())
            .bind(old.kek_version as i32)
            .bind(&old.bytes)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rewrap_key(&self, ds: DatasetId, old: &WrappedDek, new: &WrappedDek) -> R<bool> {
        let done = sqlx::query("UPDATE dataset_keys SET kek_version = $2, wrapped = $3, rewrapped_at = $4 WHERE dataset_id = $1 AND kek_version = $5 AND wrapped = $6")
            .bind(ds.0)
            .bind(new.kek_version as i32)
            .bind(&new.bytes)
            .bind(now())
            .bind(old.kek_version as i32)
            .bind(&old.bytes)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_access(&self, audit: AuditDraft) -> R<()> {
        self.append_audit(audit).await
    }

    async fn commit(&self, ws: WorkspaceId, c: &Commit, update: BranchUpdate<'_>, schema: Option<&serde_json::Value>, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        dataset_in(&mut tx, ws, c.dataset_id).await?;
        let moved = || llmgov_core::CoreError::conflict("BRANCH_MOVED", format!("branch {} moved while this commit was being written; pull and retry", update.branch));
        match update.expected {
            Some(expected) => {
                let done = sqlx::query("UPDATE dataset_refs SET commit_id = $3, updated_at = $4 WHERE dataset_id = $1 AND name = $2 AND kind = 'branch' AND commit_id = $5")
                    .bind(c.dataset_id.0)
                    .bind(update.branch)
                    .bind(c.id.as_str())
                    .bind(c.created_at)
                    .bind(expected.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 0 {
                    return Err(moved());
                }
            }
            None => {
                sqlx::query("INSERT INTO dataset_refs (dataset_id, name, kind, commit_id, protected, updated_at) VALUES ($1, $2, 'branch', $3, FALSE, $4)")
                    .bind(c.dataset_id.0)
                    .bind(update.branch)
                    .bind(c.id.as_str())
                    .bind(c.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match db_err(e) {
                        llmgov_core::CoreError::Conflict { .. } => moved(),
                        e => e,
                    })?;
            }
        }
        let parents: Vec<&str> = c.parents.iter().map(|p| p.as_str()).collect();
        sqlx::query("INSERT INTO dataset_commits (dataset_id, id, first_parent, parents, message, author_id, author, created_at, manifest, record_count, byte_count, new_bytes, transformation, schema, depth) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)")
            .bind(c.dataset_id.0)
            .bind(c.id.as_str())
            .bind(parents.first().copied())
            .bind(serde_json::to_string(&parents).map_err(llmgov_core::CoreError::internal)?)
            .bind(&c.message)
            .bind(c.author_id.map(|u| u.0))
            .bind(&c.author)
            .bind(c.created_at)
            .bind(&c.manifest)
            .bind(c.record_count as i64)
            .bind(c.byte_count as i64)
            .bind(c.new_bytes as i64)
            .bind(c.transformation.to_string())
            .bind(c.schema.to_string())
            .bind(c.depth as i64)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // Versions of other datasets this one was made from (resolved in the workspace by
        // the domain before the commit was made).
        for src in c.transformation.get("sources").and_then(|v| v.as_array()).into_iter().flatten() {
            let (Some(sd), Some(sc)) = (
                src.get("dataset_id").and_then(|v| v.as_str()).and_then(|v| uuid::Uuid::parse_str(v).ok()),
                src.get("commit").and_then(|v| v.as_str()),
            ) else {
                return Err(llmgov_core::CoreError::internal("a lineage source without dataset_id and commit"));
            };
            sqlx::query("INSERT INTO dataset_lineage (workspace_id, dataset_id, commit_id, source_dataset_id, source_commit_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(ws.0)
                .bind(c.dataset_id.0)
                .bind(c.id.as_str())
                .bind(sd)
                .bind(sc)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if let Some(s) = schema {
            sqlx::query("UPDATE datasets SET schema = $2, updated_at = $3 WHERE id = $1")
                .bind(c.dataset_id.0)
                .bind(s.to_string())
                .bind(c.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn get_commit(&self, ws: WorkspaceId, ds: DatasetId, id: &str) -> R<Commit> {
        if id.len() < 4 || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(llmgov_core::CoreError::not_found("commit"));
        }
        let rows = sqlx::query("SELECT c.* FROM dataset_commits c JOIN datasets d ON d.id = c.dataset_id WHERE c.dataset_id = $1 AND d.workspace_id = $2 AND c.id >= $3 AND c.id < $4 ORDER BY c.id LIMIT 2")
            .bind(ds.0)
            .bind(ws.0)
            .bind(id)
            .bind(format!("{id}g"))
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        match rows.len() {
            0 => Err(llmgov_core::CoreError::not_found("commit")),
            1 => commit_from_row(&rows[0]),
            _ => Err(llmgov_core::CoreError::invalid("ref", "that commit prefix is ambiguous; give more digits")),
        }
    }

    async fn log(&self, ws: WorkspaceId, ds: DatasetId, from: &CommitId, q: &ListQuery) -> R<Vec<Commit>> {
        let rows = sqlx::query(
            "WITH RECURSIVE chain(id, n) AS ( \
                 SELECT c.id, 0 FROM dataset_commits c JOIN datasets d ON d.id = c.dataset_id \
                 WHERE c.dataset_id = $1 AND d.workspace_id = $2 AND c.id = $3 \
               UNION ALL \
                 SELECT p.first_parent, chain.n + 1 FROM chain JOIN dataset_commits p ON p.dataset_id = $1 AND p.id = chain.id \
                 WHERE p.first_parent IS NOT NULL AND chain.n < $4 \
             ) \
             SELECT c.* FROM chain JOIN dataset_commits c ON c.dataset_id = $1 AND c.id = chain.id \
             WHERE chain.n >= $5 ORDER BY chain.n LIMIT $6",
        )
        .bind(ds.0)
        .bind(ws.0)
        .bind(from.as_str())
        .bind(q.offset() + q.limit as i64)
        .bind(q.offset())
        .bind(q.limit as i64)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(commit_from_row).collect()
    }

    async fn derived(&self, ws: WorkspaceId, source: DatasetId, commit: Option<&CommitId>) -> R<Vec<Commit>> {
        let mut b = QueryBuilder::<Db>::new("SELECT c.* FROM dataset_lineage l JOIN dataset_commits c ON c.dataset_id = l.dataset_id AND c.id = l.commit_id WHERE l.workspace_id = ");
        b.push_bind(ws.0).push(" AND l.source_dataset_id = ").push_bind(source.0);
        if let Some(c) = commit {
            b.push(" AND l.source_commit_id = ").push_bind(c.as_str().to_string());
        }
        b.push(" ORDER BY c.created_at, c.id LIMIT 1000");
        let rows = b.build().fetch_all(&self.read).await.map_err(db_err)?;
        rows.iter().map(commit_from_row).collect()
    }

    async fn dependents(&self, ws: WorkspaceId, source: DatasetId) -> R<Vec<Dataset>> {
        let rows = sqlx::query("SELECT * FROM datasets WHERE workspace_id = $1 AND id <> $2 AND id IN (SELECT dataset_id FROM dataset_lineage WHERE workspace_id = $1 AND source_dataset_id = $2) ORDER BY name")
            .bind(ws.0)
            .bind(source.0)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(dataset_from_row).collect()
    }

    async fn children(&self, ws: WorkspaceId, ds: DatasetId, parent: &CommitId) -> R<Vec<Commit>> {
        // Ids are hex, so the LIKE pattern holds no wildcard.
        let rows = sqlx::query("SELECT c.* FROM dataset_commits c JOIN datasets d ON d.id = c.dataset_id WHERE c.dataset_id = $1 AND d.workspace_id = $2 AND (c.first_parent = $3 OR c.parents LIKE $4) ORDER BY c.created_at, c.id")
            .bind(ds.0)
            .bind(ws.0)
            .bind(parent.as_str())
            .bind(format!("%\"{}\"%", parent.as_str()))
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(commit_from_row).collect()
    }

    async fn get_ref(&self, ws: WorkspaceId, ds: DatasetId, name: &str) -> R<Option<Ref>> {
        let row = sqlx::query("SELECT r.* FROM dataset_refs r JOIN datasets d ON d.id = r.dataset_id WHERE r.dataset_id = $1 AND d.workspace_id = $2 AND r.name = $3")
            .bind(ds.0)
            .bind(ws.0)
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        row.as_ref().map(ref_from_row).transpose()
    }

    async fn list_refs(&self, ws: WorkspaceId, ds: DatasetId, kind: RefKind) -> R<Vec<Ref>> {
        let rows = sqlx::query("SELECT r.* FROM dataset_refs r JOIN datasets d ON d.id = r.dataset_id WHERE r.dataset_id = $1 AND d.workspace_id = $2 AND r.kind = $3 ORDER BY r.name")
            .bind(ds.0)
            .bind(ws.0)
            .bind(kind.as_str())
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(ref_from_row).collect()
    }

    async fn create_ref(&self, ws: WorkspaceId, ds: DatasetId, r: &Ref, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        dataset_in(&mut tx, ws, ds).await?;
        sqlx::query("INSERT INTO dataset_refs (dataset_id, name, kind, commit_id, protected, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(ds.0)
            .bind(&r.name)
            .bind(r.kind.as_str())
            .bind(r.commit_id.as_str())
            .bind(r.protected)
            .bind(r.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn delete_ref(&self, ws: WorkspaceId, ds: DatasetId, name: &str, kind: RefKind, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        dataset_in(&mut tx, ws, ds).await?;
        let done = sqlx::query("DELETE FROM dataset_refs WHERE dataset_id = $1 AND name = $2 AND kind = $3")
            .bind(ds.0)
            .bind(name)
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(llmgov_core::CoreError::not_found("ref"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn set_branch_protection(&self, ws: WorkspaceId, ds: DatasetId, name: &str, protected: bool, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await?;
        dataset_in(&mut tx, ws, ds).await?;
        let done = sqlx::query("UPDATE dataset_refs SET protected = $3 WHERE dataset_id = $1 AND name = $2 AND kind = 'branch'")
            .bind(ds.0)
            .bind(name)
            .bind(protected)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(llmgov_core::CoreError::not_found("ref"));
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await
    }
}
