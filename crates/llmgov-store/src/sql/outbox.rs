// The transactional outbox (`OUTBOX_CLAIM` is backend-specific).

use llmgov_core::outbox::{Delivery, OutboxMessage, OutboxStore, LEASE};

/// Stores `m` inside the caller's transaction.
async fn insert_outbox(tx: &mut Tx<'_>, m: &OutboxMessage) -> R<()> {
    sqlx::query(
        "INSERT INTO outbox (id, workspace_id, topic, destination, payload, created_at, status, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $6)",
    )
    .bind(m.id)
    .bind(m.workspace_id.0)
    .bind(&m.topic)
    .bind(&m.destination)
    .bind(&m.payload)
    .bind(m.created_at)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

fn outbox_from_row(r: &DbRow) -> R<OutboxMessage> {
    Ok(OutboxMessage {
        id: uuid_of(r, "id")?,
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        topic: text(r, "topic")?,
        destination: text(r, "destination")?,
        payload: text(r, "payload")?,
        created_at: ts(r, "created_at")?,
        attempts: r.try_get("attempts").map_err(db_err)?,
    })
}

#[async_trait]
impl OutboxStore for crate::SqlStore<Db> {
    async fn claim_outbox(&self, limit: i64) -> R<Vec<OutboxMessage>> {
        let at = now();
        let lease = at + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let rows = sqlx::query(OUTBOX_CLAIM)
            .bind(at)
            .bind(lease)
            .bind(limit)
            .fetch_all(&self.write)
            .await
            .map_err(db_err)?;
        rows.iter().map(outbox_from_row).collect()
    }

    async fn settle_outbox(&self, id: uuid::Uuid, outcome: &Delivery) -> R<()> {
        let q = match outcome {
            Delivery::Delivered => sqlx::query("UPDATE outbox SET status = 'delivered', delivered_at = $2, last_error = NULL WHERE id = $1")
                .bind(id)
                .bind(now()),
            Delivery::Failed { error, retry_at: Some(at) } => sqlx::query("UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1")
                .bind(id)
                .bind(*at)
                .bind(error.chars().take(500).collect::<String>()),
            Delivery::Failed { error, retry_at: None } => sqlx::query("UPDATE outbox SET status = 'dead', last_error = $2 WHERE id = $1")
                .bind(id)
                .bind(error.chars().take(500).collect::<String>()),
        };
        q.execute(&self.write).await.map_err(db_err)?;
        Ok(())
    }

    async fn list_outbox(&self, ws: WorkspaceId, limit: i64) -> R<Vec<(OutboxMessage, String)>> {
        let rows = sqlx::query("SELECT * FROM outbox WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
            .bind(ws.0)
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| Ok((outbox_from_row(r)?, text(r, "status")?))).collect()
    }
}
