// The transactional outbox (`OUTBOX_CLAIM` is backend-specific).

use llmgov_core::outbox::{Delivery, DeliveryFilter, DeliveryRecord, OutboxMessage, OutboxStore, LEASE};

/// Stores `m` inside the caller's transaction: an event goes to the `events` table, a
/// webhook message to the outbox. A transaction must write its events last, just before it
/// commits (see `insert_event`).
async fn insert_outbox(tx: &mut Tx<'_>, m: &OutboxMessage) -> R<()> {
    if m.is_event() {
        return insert_event(tx, m).await;
    }
    sqlx::query(
        "INSERT INTO outbox (id, workspace_id, topic, destination, payload, created_at, status, attempts, next_attempt_at, signing_secret) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $6, $7)",
    )
    .bind(m.id)
    .bind(m.workspace_id.0)
    .bind(&m.topic)
    .bind(&m.destination)
    .bind(&m.payload)
    .bind(m.created_at)
    .bind(&m.signing_secret)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Writes webhook messages first and events last (events take the event lock on PostgreSQL,
/// which is best held for the shortest time).
async fn insert_messages(tx: &mut Tx<'_>, messages: &[OutboxMessage]) -> R<bool> {
    for m in messages.iter().filter(|m| !m.is_event()) {
        insert_outbox(tx, m).await?;
    }
    let mut events = false;
    for m in messages.iter().filter(|m| m.is_event()) {
        insert_event(tx, m).await?;
        events = true;
    }
    Ok(events)
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
        signing_secret: r.try_get("signing_secret").map_err(db_err)?,
    })
}

fn delivery_from_row(r: &DbRow) -> R<DeliveryRecord> {
    let status = text(r, "status")?;
    let last_status: Option<i32> = r.try_get("last_status").map_err(db_err)?;
    let secret: Option<String> = r.try_get("signing_secret").map_err(db_err)?;
    Ok(DeliveryRecord {
        id: uuid_of(r, "id")?,
        topic: text(r, "topic")?,
        destination: llmgov_core::outbox::redact_url(&text(r, "destination")?),
        attempts: r.try_get("attempts").map_err(db_err)?,
        signed: secret.is_some(),
        created_at: ts(r, "created_at")?,
        last_attempt_at: opt_ts(r, "last_attempt_at")?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: r.try_get("last_error").map_err(db_err)?,
        next_attempt_at: if status == "pending" { Some(ts(r, "next_attempt_at")?) } else { None },
        delivered_at: opt_ts(r, "delivered_at")?,
        status,
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
        let at = now();
        let cut = |e: &str| e.chars().take(500).collect::<String>();
        let q = match outcome {
            Delivery::Delivered => sqlx::query(
                "UPDATE outbox SET status = 'delivered', delivered_at = $2, last_attempt_at = $2, last_error = NULL, last_status = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(at),
            Delivery::Failed { error, status, retry_at } => sqlx::query(
                "UPDATE outbox SET status = CASE WHEN $3 THEN 'pending' ELSE 'dead' END, next_attempt_at = COALESCE($2, next_attempt_at), \
                 last_error = $4, last_status = $5, last_attempt_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(*retry_at)
            .bind(retry_at.is_some())
            .bind(cut(error))
            .bind(status.map(i32::from))
            .bind(at),
            // Not attempted: the attempt the claim counted is given back.
            Delivery::Deferred { reason, retry_at } => sqlx::query(
                "UPDATE outbox SET attempts = attempts - 1, next_attempt_at = $2, last_error = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(*retry_at)
            .bind(cut(reason)),
        };
        q.execute(&self.write).await.map_err(db_err)?;
        Ok(())
    }

    async fn list_deliveries(&self, ws: WorkspaceId, f: &DeliveryFilter, q: &ListQuery) -> R<Page<DeliveryRecord>> {
        let filter = |qb: &mut QueryBuilder<Db>| {
            qb.push(" WHERE workspace_id = ").push_bind(ws.0);
            if let Some(s) = &f.status {
                qb.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(t) = &f.topic {
                qb.push(" AND topic = ").push_bind(t.clone());
            }
        };
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM outbox");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.read).await.map_err(db_err)?;
        let mut list = QueryBuilder::<Db>::new("SELECT * FROM outbox");
        filter(&mut list);
        list.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(q.limit as i64).push(" OFFSET ").push_bind(q.offset());
        let rows = list.build().fetch_all(&self.read).await.map_err(db_err)?;
        Ok(Page::new(rows.iter().map(delivery_from_row).collect::<R<Vec<_>>>()?, total, q))
    }

    async fn retry_delivery(&self, ws: WorkspaceId, id: uuid::Uuid, audit: AuditDraft) -> R<bool> {
        let mut tx = begin(&self.write).await?;
        let r = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $3 WHERE id = $1 AND workspace_id = $2 AND status <> 'delivered'",
        )
        .bind(id)
        .bind(ws.0)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        append_in(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }
}
