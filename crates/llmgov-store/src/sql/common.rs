// Shared by both backends (included with `Db`, `BACKEND` and `ROLE_AGG` in scope).
// Imports for every file in `sql/` live here, once.

#[allow(unused_imports)]
use async_trait::async_trait;
#[allow(unused_imports)]
use llmgov_core::access::PermissionSet;
#[allow(unused_imports)]
use llmgov_core::audit::{AuditDraft, AuditEntry, GENESIS_HASH, ENTRY_FORMAT_VERSION};
#[allow(unused_imports)]
use llmgov_core::identity::{ApiKey, Credentials, CustomRole, NewUser, RefreshToken, SigningKeyRecord, User, UserStatus, Workspace};
#[allow(unused_imports)]
use llmgov_core::ids::{ApiKeyId, AuditEntryId, RoleId, UserId, WorkspaceId};
#[allow(unused_imports)]
use llmgov_core::page::{ListQuery, Page};
#[allow(unused_imports)]
use llmgov_core::store::*;
#[allow(unused_imports)]
use llmgov_core::time::{now, Timestamp};
#[allow(unused_imports)]
use llmgov_core::merkle::{self, Frontier};
#[allow(unused_imports)]
use sqlx::{QueryBuilder, Row};
#[allow(unused_imports)]
use crate::errors::audit_err;

type DbRow = <Db as sqlx::Database>::Row;
type Tx<'a> = sqlx::Transaction<'a, Db>;
type R<T> = llmgov_core::Result<T>;

fn uuid_of(r: &DbRow, col: &str) -> R<uuid::Uuid> {
    r.try_get::<uuid::Uuid, _>(col).map_err(db_err)
}

fn text(r: &DbRow, col: &str) -> R<String> {
    r.try_get::<String, _>(col).map_err(db_err)
}

fn opt_text(r: &DbRow, col: &str) -> R<Option<String>> {
    r.try_get::<Option<String>, _>(col).map_err(db_err)
}

fn ts(r: &DbRow, col: &str) -> R<Timestamp> {
    r.try_get::<Timestamp, _>(col).map_err(db_err)
}

fn opt_ts(r: &DbRow, col: &str) -> R<Option<Timestamp>> {
    r.try_get::<Option<Timestamp>, _>(col).map_err(db_err)
}

fn json_text(r: &DbRow, col: &str) -> R<serde_json::Value> {
    serde_json::from_str(&text(r, col)?).map_err(llmgov_core::CoreError::internal)
}

fn perms(r: &DbRow, col: &str) -> R<PermissionSet> {
    let list: Vec<String> = serde_json::from_str(&text(r, col)?).map_err(llmgov_core::CoreError::internal)?;
    PermissionSet::parse_all(&list)
}

fn perms_json(p: &PermissionSet) -> String {
    serde_json::to_string(&p.to_strings()).expect("strings serialize")
}

async fn begin(pool: &sqlx::Pool<Db>) -> R<Tx<'static>> {
    pool.begin().await.map_err(db_err)
}

async fn commit(tx: Tx<'_>) -> R<()> {
    tx.commit().await.map_err(db_err)
}

#[async_trait]
impl Store for crate::SqlStore<Db> {
    async fn ping(&self) -> R<()> {
        sqlx::query("SELECT 1").execute(&self.read).await.map_err(db_err)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}
