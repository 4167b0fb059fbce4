//! PostgreSQL backend: production metadata, audit and (later) metrics.

use sqlx::postgres::PgPoolOptions;

use crate::{PgStore, PoolConfig, db_err};
use llmgov_core::CoreError;

type Db = sqlx::Postgres;
const BACKEND: &str = "postgres";
const ROLE_AGG: &str = "string_agg(r.role_name, ',')";

impl PgStore {
    pub async fn connect(url: &str, cfg: &PoolConfig) -> Result<Self, CoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.clamp(1, 512))
            .acquire_timeout(cfg.acquire_timeout)
            .connect(url)
            .await
            .map_err(db_err)?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
        })
    }

    /// Concurrent instances may start together: sqlx takes an advisory lock around migrations.
    pub async fn migrate(&self) -> Result<(), CoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.write)
            .await
            .map_err(|e| CoreError::Unavailable(format!("migration failed: {e}")))
    }
}

include!("sql/common.rs");
include!("sql/workspaces.rs");
include!("sql/users.rs");
include!("sql/roles.rs");
include!("sql/sessions.rs");
include!("sql/api_keys.rs");
include!("sql/signing_keys.rs");
include!("sql/idempotency.rs");
include!("sql/audit.rs");
