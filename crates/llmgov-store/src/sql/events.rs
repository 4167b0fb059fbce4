// Events of the real-time streams (`event_lock` is backend-specific).

use llmgov_core::events::{Event, EventStore};

/// Appends an event in the caller's transaction (after the backend's `event_lock`).
async fn insert_event(tx: &mut Tx<'_>, m: &llmgov_core::outbox::OutboxMessage) -> R<()> {
    event_lock(tx).await?;
    sqlx::query("INSERT INTO events (workspace_id, topic, payload, created_at) VALUES ($1, $2, $3, $4)")
        .bind(m.workspace_id.0)
        .bind(&m.topic)
        .bind(&m.payload)
        .bind(m.created_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Events deleted per statement by `prune_events`.
const PRUNE_BATCH: i64 = 5_000;

fn event_from_row(r: &DbRow) -> R<Event> {
    Ok(Event::new(
        r.try_get("id").map_err(db_err)?,
        WorkspaceId(uuid_of(r, "workspace_id")?),
        text(r, "topic")?,
        ts(r, "created_at")?,
        text(r, "payload")?,
    ))
}

#[async_trait]
impl EventStore for crate::SqlStore<Db> {
    async fn events_after(&self, ws: Option<WorkspaceId>, after: i64, limit: i64) -> R<Vec<Event>> {
        let rows = match ws {
            Some(ws) => sqlx::query("SELECT * FROM events WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(ws.0)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.read)
                .await,
            None => sqlx::query("SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.read)
                .await,
        }
        .map_err(db_err)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn last_event_id(&self) -> R<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(&self.read)
            .await
            .map_err(db_err)?;
        Ok(id.unwrap_or(0))
    }

    async fn prune_events(&self, before: Timestamp, points_before: Timestamp) -> R<u64> {
        // Keep what a live relay (lease renewed within a day) has not published yet. Delete
        // in batches so that the writer is never held for long.
        let live = now() - chrono::Duration::days(1);
        let mut total = 0;
        loop {
            let r = sqlx::query(
                "DELETE FROM events WHERE id IN (SELECT id FROM events \
                 WHERE (created_at < $1 OR (topic = $3 AND created_at < $4)) \
                 AND id <= COALESCE((SELECT MIN(position) FROM event_relays WHERE lease_until > $2), 9223372036854775807) \
                 ORDER BY id LIMIT $5)",
            )
            .bind(before)
            .bind(live)
            .bind(llmgov_core::events::METRICS_POINTS)
            .bind(points_before)
            .bind(PRUNE_BATCH)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
            total += r.rows_affected();
            if r.rows_affected() < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    async fn claim_relay(&self, name: &str, holder: uuid::Uuid, lease: std::time::Duration) -> R<Option<i64>> {
        let at = now();
        let until = at + chrono::Duration::from_std(lease).unwrap_or_default();
        sqlx::query(
            "INSERT INTO event_relays (name, position, lease_until) SELECT $1, COALESCE(MAX(id), 0), $2 FROM events WHERE true \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(at)
        .execute(&self.write)
        .await
        .map_err(db_err)?;
        let position: Option<i64> = sqlx::query_scalar(
            "UPDATE event_relays SET holder = $2, lease_until = $3 WHERE name = $1 AND (holder = $2 OR holder IS NULL OR lease_until < $4) RETURNING position",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(at)
        .fetch_optional(&self.write)
        .await
        .map_err(db_err)?;
        Ok(position)
    }

    async fn advance_relay(&self, name: &str, holder: uuid::Uuid, position: i64) -> R<bool> {
        let r = sqlx::query("UPDATE event_relays SET position = $3 WHERE name = $1 AND holder = $2 AND position < $3")
            .bind(name)
            .bind(holder)
            .bind(position)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 1 {
            return Ok(true);
        }
        let still: Option<i64> = sqlx::query_scalar("SELECT position FROM event_relays WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .fetch_optional(&self.write)
            .await
            .map_err(db_err)?;
        Ok(still.is_some())
    }

    fn event_signal(&self) -> std::sync::Arc<llmgov_core::outbox::Wakeup> {
        self.events.clone()
    }
}
