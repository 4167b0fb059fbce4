// Idempotency keys: the first request claims the key; later ones replay its response.

#[async_trait]
impl IdempotencyStore for crate::SqlStore<Db> {
    async fn claim_idempotency_key(&self, scope: &str, key: &str, request_hash: &[u8], now: Timestamp) -> R<IdempotencyClaim> {
        let mut tx = begin(&self.write).await?;
        // Keys are kept for 24 hours.
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < $3")
            .bind(scope)
            .bind(key)
            .bind(now - chrono::Duration::hours(24))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        let claim = if inserted == 1 {
            IdempotencyClaim::New
        } else {
            let r = sqlx::query("SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2")
                .bind(scope)
                .bind(key)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            let hash: Vec<u8> = r.try_get("request_hash").map_err(db_err)?;
            let status: Option<i32> = r.try_get("status").map_err(db_err)?;
            let body: Option<Vec<u8>> = r.try_get("body").map_err(db_err)?;
            match (hash == request_hash, status) {
                (false, _) => IdempotencyClaim::Mismatch,
                (true, None) => IdempotencyClaim::InFlight,
                (true, Some(s)) => IdempotencyClaim::Replay { status: s as u16, body: body.unwrap_or_default() },
            }
        };
        commit(tx).await?;
        Ok(claim)
    }

    async fn complete_idempotency_key(&self, scope: &str, key: &str, status: u16, body: &[u8]) -> R<()> {
        sqlx::query("UPDATE idempotency_keys SET status = $3, body = $4 WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .bind(status as i32)
            .bind(body)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn release_idempotency_key(&self, scope: &str, key: &str) -> R<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL")
            .bind(scope)
            .bind(key)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
