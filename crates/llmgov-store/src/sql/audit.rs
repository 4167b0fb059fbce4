// Audit log storage: appends inside the caller's transaction, reads for listing.

/// Appends `draft` to its workspace's log inside `tx`. Locking the head row serialises
/// appends to one log across connections and processes; the caller commits.
async fn append_in(tx: &mut Tx<'_>, draft: AuditDraft) -> R<AuditEntry> {
    let ws = draft.workspace_id;
    let mut sealed = append_many_in(tx, ws, vec![draft]).await?;
    sealed.pop().ok_or(llmgov_core::CoreError::AuditUnavailable)
}

/// Appends `drafts` (all of workspace `ws`) in order inside `tx`, claiming their sequence
/// numbers with one update of the head row. One lock, one tree update and a few multi-row
/// inserts per batch, however many entries it holds.
async fn append_many_in(tx: &mut Tx<'_>, ws: WorkspaceId, drafts: Vec<AuditDraft>) -> R<Vec<AuditEntry>> {
    if drafts.iter().any(|d| d.workspace_id != ws) {
        return Err(llmgov_core::CoreError::internal("a batch of audit entries spans workspaces"));
    }
    let n = drafts.len() as i64;
    if n == 0 {
        return Ok(Vec::new());
    }
    let claim = "UPDATE audit_heads SET next_sequence = next_sequence + $2 WHERE workspace_id = $1 \
                 RETURNING next_sequence - $2 AS seq, head_hash, frontier, tree_size";
    let mut row = sqlx::query(claim).bind(ws.0).bind(n).fetch_optional(&mut **tx).await.map_err(audit_err)?;
    if row.is_none() {
        sqlx::query("INSERT INTO audit_heads (workspace_id, next_sequence, head_hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING")
            .bind(ws.0)
            .bind(GENESIS_HASH.to_vec())
            .execute(&mut **tx)
            .await
            .map_err(audit_err)?;
        row = sqlx::query(claim).bind(ws.0).bind(n).fetch_optional(&mut **tx).await.map_err(audit_err)?;
    }
    let row = row.ok_or(llmgov_core::CoreError::AuditUnavailable)?;
    let first: i64 = row.try_get("seq").map_err(audit_err)?;
    let prev: Vec<u8> = row.try_get("head_hash").map_err(audit_err)?;
    let mut prev: [u8; 32] = prev.try_into().map_err(|_| llmgov_core::CoreError::AuditUnavailable)?;
    let tree_size: i64 = row.try_get("tree_size").map_err(audit_err)?;
    let frontier: Vec<u8> = row.try_get("frontier").map_err(audit_err)?;
    if tree_size != first {
        tracing::error!(workspace = %ws, tree_size, first, "audit tree is behind its log; run `llmgov migrate`");
        return Err(llmgov_core::CoreError::AuditUnavailable);
    }
    let mut frontier = Frontier::from_bytes(&frontier).ok_or(llmgov_core::CoreError::AuditUnavailable)?;
    let at = now();
    let mut entries = Vec::with_capacity(drafts.len());
    let mut nodes = Vec::new();
    for (i, d) in drafts.into_iter().enumerate() {
        let e = d.seal(first + i as i64, prev, at);
        prev = e.entry_hash.clone().try_into().map_err(|_| llmgov_core::CoreError::AuditUnavailable)?;
        nodes.extend(frontier.append(e.sequence as u64, merkle::leaf_hash(&e.entry_hash)));
        entries.push(e);
    }
    insert_entries(tx, &entries).await.map_err(audit_err)?;
    insert_nodes(tx, ws, &nodes).await.map_err(audit_err)?;
    sqlx::query("UPDATE audit_heads SET head_hash = $2, frontier = $3, tree_size = $4 WHERE workspace_id = $1")
        .bind(ws.0)
        .bind(prev.to_vec())
        .bind(frontier.to_bytes())
        .bind(first + n)
        .execute(&mut **tx)
        .await
        .map_err(audit_err)?;
    Ok(entries)
}


/// Builds the Merkle tree of logs written before the tree existed (migration 0002), in
/// batches, holding each log's head row while it works.
async fn backfill_trees(pool: &sqlx::Pool<Db>) -> R<()> {
    let behind = sqlx::query("SELECT workspace_id FROM audit_heads WHERE tree_size < next_sequence")
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    for row in behind {
        let ws = WorkspaceId(uuid_of(&row, "workspace_id")?);
        loop {
            let mut tx = begin(pool).await?;
            let head = sqlx::query(
                "UPDATE audit_heads SET tree_size = tree_size WHERE workspace_id = $1 RETURNING tree_size, next_sequence, frontier",
            )
            .bind(ws.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            let size: i64 = head.try_get("tree_size").map_err(db_err)?;
            let next: i64 = head.try_get("next_sequence").map_err(db_err)?;
            if size >= next {
                break;
            }
            let bytes: Vec<u8> = head.try_get("frontier").map_err(db_err)?;
            let mut frontier = Frontier::from_bytes(&bytes).ok_or_else(|| llmgov_core::CoreError::internal("bad frontier"))?;
            let rows = sqlx::query("SELECT sequence, entry_hash FROM audit_log WHERE workspace_id = $1 AND sequence >= $2 ORDER BY sequence LIMIT 2000")
                .bind(ws.0)
                .bind(size)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut at = size;
            let mut nodes = Vec::new();
            for r in &rows {
                let seq: i64 = r.try_get("sequence").map_err(db_err)?;
                if seq != at {
                    return Err(llmgov_core::CoreError::internal(format!("audit log of {ws} has a gap at {at}")));
                }
                let h: Vec<u8> = r.try_get("entry_hash").map_err(db_err)?;
                nodes.extend(frontier.append(at as u64, merkle::leaf_hash(&h)));
                at += 1;
            }
            if rows.is_empty() {
                return Err(llmgov_core::CoreError::internal(format!("audit log of {ws} ends before its head")));
            }
            insert_nodes(&mut tx, ws, &nodes).await.map_err(db_err)?;
            sqlx::query("UPDATE audit_heads SET frontier = $2, tree_size = $3 WHERE workspace_id = $1")
                .bind(ws.0)
                .bind(frontier.to_bytes())
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            commit(tx).await?;
        }
    }
    Ok(())
}

/// Columns of an entry (not the search index).
const AUDIT_COLUMNS: &str = "workspace_id, sequence, id, timestamp, event_type, event_category, actor_id, actor_type, action, resource_type, resource_id, status, request_id, session_id, details, before_state, after_state, personal, pii_salt, pii_digest, prev_hash, entry_hash";

fn audit_from_row(r: &DbRow) -> R<AuditEntry> {
    Ok(AuditEntry {
        id: AuditEntryId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        sequence: r.try_get("sequence").map_err(db_err)?,
        timestamp: ts(r, "timestamp")?,
        event_type: text(r, "event_type")?,
        event_category: text(r, "event_category")?,
        actor_id: r.try_get::<Option<uuid::Uuid>, _>("actor_id").map_err(db_err)?.map(UserId),
        actor_type: text(r, "actor_type")?,
        action: text(r, "action")?,
        resource_type: opt_text(r, "resource_type")?,
        resource_id: opt_text(r, "resource_id")?,
        status: text(r, "status")?,
        request_id: opt_text(r, "request_id")?,
        session_id: opt_text(r, "session_id")?,
        details: text(r, "details")?,
        before_state: opt_text(r, "before_state")?,
        after_state: opt_text(r, "after_state")?,
        personal: opt_text(r, "personal")?,
        pii_salt: r.try_get("pii_salt").map_err(db_err)?,
        pii_digest: r.try_get("pii_digest").map_err(db_err)?,
        prev_hash: r.try_get("prev_hash").map_err(db_err)?,
        entry_hash: r.try_get("entry_hash").map_err(db_err)?,
    })
}

fn push_audit_filter(qb: &mut QueryBuilder<Db>, ws: WorkspaceId, f: &AuditFilter) {
    qb.push(" WHERE workspace_id = ").push_bind(ws.0);
    let exact = [
        ("event_type", &f.event_type),
        ("event_category", &f.event_category),
        ("resource_type", &f.resource_type),
        ("resource_id", &f.resource_id),
        ("action", &f.action),
        ("status", &f.status),
        ("request_id", &f.request_id),
    ];
    for (column, value) in exact {
        if let Some(v) = value {
            qb.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    if let Some(a) = f.actor_id {
        qb.push(" AND actor_id = ").push_bind(a.0);
    }
    if let Some(text) = &f.text {
        push_text_search(qb, text);
    }
    if let Some(from) = f.from {
        qb.push(" AND timestamp >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(" AND timestamp < ").push_bind(to);
    }
}

#[async_trait]
impl AuditStore for crate::SqlStore<Db> {
    async fn append_audit_batch(&self, ws: WorkspaceId, drafts: Vec<AuditDraft>) -> R<()> {
        let mut tx = begin(&self.write).await.map_err(|_| llmgov_core::CoreError::AuditUnavailable)?;
        append_many_in(&mut tx, ws, drafts).await?;
        tx.commit().await.map_err(audit_err)
    }

    async fn append_audit(&self, audit: AuditDraft) -> R<()> {
        let mut tx = begin(&self.write).await.map_err(|_| llmgov_core::CoreError::AuditUnavailable)?;
        append_in(&mut tx, audit).await?;
        tx.commit().await.map_err(audit_err)
    }

    async fn list_audit(&self, ws: WorkspaceId, filter: &AuditFilter, q: &ListQuery) -> R<Page<AuditEntry>> {
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) AS n FROM audit_log");
        push_audit_filter(&mut count, ws, filter);
        let total: i64 = count.build().fetch_one(&self.read).await.map_err(db_err)?.try_get("n").map_err(db_err)?;
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log"));
        push_audit_filter(&mut qb, ws, filter);
        qb.push(" ORDER BY ").push(q.order_by("")).push(" LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = qb.build().fetch_all(&self.read).await.map_err(db_err)?;
        let items = rows.iter().map(audit_from_row).collect::<R<Vec<_>>>()?;
        Ok(Page::new(items, total, q))
    }

    async fn audit_heads(&self) -> R<Vec<(WorkspaceId, i64, Vec<u8>)>> {
        let rows = sqlx::query("SELECT workspace_id, next_sequence, head_hash FROM audit_heads ORDER BY workspace_id")
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    WorkspaceId(uuid_of(r, "workspace_id")?),
                    r.try_get("next_sequence").map_err(db_err)?,
                    r.try_get("head_hash").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn audit_tree_nodes(&self, ws: WorkspaceId, ids: &[merkle::NodeId]) -> R<std::collections::HashMap<merkle::NodeId, merkle::Hash>> {
        let node_of = |r: &DbRow| -> R<(merkle::NodeId, merkle::Hash)> {
            let level: i16 = r.try_get("level").map_err(db_err)?;
            let idx: i64 = r.try_get("idx").map_err(db_err)?;
            let hash: Vec<u8> = r.try_get("hash").map_err(db_err)?;
            let hash: merkle::Hash = hash.try_into().map_err(|_| llmgov_core::CoreError::internal("tree node is not 32 bytes"))?;
            Ok((merkle::NodeId { level: level as u32, index: idx as u64 }, hash))
        };
        let cached = crate::cache::TreeNodeCache::MIN_LEVEL;
        if ids.iter().any(|id| id.level >= cached) && self.tree_nodes.needs_warming(ws) {
            let rows = sqlx::query(
                "SELECT level, idx, hash FROM audit_tree_nodes WHERE workspace_id = $1 AND level >= $2 \
                 ORDER BY level DESC, idx LIMIT $3",
            )
            .bind(ws.0)
            .bind(cached as i16)
            .bind(crate::cache::TreeNodeCache::WARM_LIMIT)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
            let upper = rows.iter().map(node_of).collect::<R<std::collections::HashMap<_, _>>>()?;
            self.tree_nodes.keep(ws, &upper);
        }
        let (mut out, missing) = self.tree_nodes.split(ws, ids);
        let mut read = std::collections::HashMap::new();
        for chunk in missing.chunks(200) {
            for r in select_nodes(&self.read, ws, chunk).await.map_err(db_err)? {
                let (id, hash) = node_of(&r)?;
                read.insert(id, hash);
            }
        }
        self.tree_nodes.keep(ws, &read);
        out.extend(read);
        Ok(out)
    }

    async fn insert_checkpoint(&self, cp: &llmgov_core::audit::checkpoint::Checkpoint) -> R<()> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (workspace_id, tree_size, root_hash, timestamp, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(cp.workspace_id.0)
        .bind(cp.tree_size as i64)
        .bind(&cp.root_hash)
        .bind(cp.timestamp)
        .bind(&cp.key_id)
        .bind(&cp.signature)
        .execute(&self.write)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn latest_checkpoint(&self, ws: WorkspaceId) -> R<Option<llmgov_core::audit::checkpoint::Checkpoint>> {
        let row = sqlx::query("SELECT * FROM audit_checkpoints WHERE workspace_id = $1 ORDER BY tree_size DESC LIMIT 1")
            .bind(ws.0)
            .fetch_optional(&self.write)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(llmgov_core::audit::checkpoint::Checkpoint {
                workspace_id: WorkspaceId(uuid_of(&r, "workspace_id")?),
                tree_size: r.try_get::<i64, _>("tree_size").map_err(db_err)? as u64,
                root_hash: text(&r, "root_hash")?,
                timestamp: ts(&r, "timestamp")?,
                key_id: text(&r, "key_id")?,
                signature: text(&r, "signature")?,
            })
        })
        .transpose()
    }

    async fn audit_head(&self, ws: WorkspaceId) -> R<Option<(i64, Vec<u8>)>> {
        let row = sqlx::query("SELECT next_sequence, head_hash FROM audit_heads WHERE workspace_id = $1")
            .bind(ws.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        row.map(|r| Ok((r.try_get("next_sequence").map_err(db_err)?, r.try_get("head_hash").map_err(db_err)?)))
            .transpose()
    }

    async fn audit_floor(&self, ws: WorkspaceId) -> R<(i64, Option<Vec<u8>>)> {
        let row = sqlx::query("SELECT pruned_before, pruned_anchor FROM audit_heads WHERE workspace_id = $1")
            .bind(ws.0)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        match row {
            None => Ok((0, None)),
            Some(r) => Ok((r.try_get("pruned_before").map_err(db_err)?, r.try_get("pruned_anchor").map_err(db_err)?)),
        }
    }

    async fn first_audit_sequence_since(&self, ws: WorkspaceId, t: Timestamp) -> R<Option<i64>> {
        let row = sqlx::query("SELECT MIN(sequence) AS s FROM audit_log WHERE workspace_id = $1 AND timestamp >= $2")
            .bind(ws.0)
            .bind(t)
            .fetch_one(&self.read)
            .await
            .map_err(db_err)?;
        row.try_get::<Option<i64>, _>("s").map_err(db_err)
    }

    async fn prune_audit(&self, ws: WorkspaceId, before: i64, audit: AuditDraft) -> R<u64> {
        let mut tx = begin(&self.write).await?;
        let head = sqlx::query("UPDATE audit_heads SET pruned_before = pruned_before WHERE workspace_id = $1 RETURNING pruned_before, next_sequence")
            .bind(ws.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(llmgov_core::CoreError::not_found("audit log"))?;
        let floor: i64 = head.try_get("pruned_before").map_err(db_err)?;
        let next: i64 = head.try_get("next_sequence").map_err(db_err)?;
        if before <= floor {
            return Ok(0);
        }
        if before > next {
            return Err(llmgov_core::CoreError::invalid("before", "cannot prune past the end of the log"));
        }
        let anchor: Vec<u8> = sqlx::query("SELECT entry_hash FROM audit_log WHERE workspace_id = $1 AND sequence = $2")
            .bind(ws.0)
            .bind(before - 1)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?
            .try_get("entry_hash")
            .map_err(db_err)?;
        sqlx::query("UPDATE audit_heads SET pruned_before = $2, pruned_anchor = $3 WHERE workspace_id = $1")
            .bind(ws.0)
            .bind(before)
            .bind(anchor)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let deleted = sqlx::query("DELETE FROM audit_log WHERE workspace_id = $1 AND sequence < $2")
            .bind(ws.0)
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(deleted)
    }

    async fn audit_range(&self, ws: WorkspaceId, from_sequence: i64, limit: i64) -> R<Vec<AuditEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE workspace_id = $1 AND sequence >= $2 ORDER BY sequence LIMIT $3")))
            .bind(ws.0)
            .bind(from_sequence)
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(audit_from_row).collect()
    }
}
