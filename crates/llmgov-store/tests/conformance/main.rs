//! Behavioural suite every storage backend must pass. Each test runs once on SQLite and once
//! on PostgreSQL, each time on a database of its own.

use std::sync::Arc;

use llmgov_core::audit::{AuditDraft, ChainVerifier, RequestContext};
use llmgov_core::identity::{Email, IdentityService, NewUser, Username, Workspace};
use llmgov_core::ids::{UserId, WorkspaceId};
use llmgov_core::store::*;
use llmgov_core::time::now;
use llmgov_store::testing::TestDb;
use llmgov_store::{Backend, PoolConfig};
use sqlx::Connection;

pub struct Fx {
    pub store: Arc<dyn Store>,
    pub db: TestDb,
    pub ws: WorkspaceId,
    /// Dataset bytes go to the S3 test server rather than the local filesystem.
    pub s3: bool,
}

pub async fn open(backend: Backend) -> Fx {
    let db = TestDb::new(backend).await;
    let store = llmgov_store::open(&db.url, &PoolConfig::default(), true)
        .await
        .expect("open store");
    let b =
        IdentityService::bootstrap(&*store, Some("root@example.com"), Some("Root-password-123"))
            .await
            .unwrap()
            .expect("fresh");
    Fx {
        store,
        db,
        ws: b.workspace_id,
        s3: false,
    }
}

/// Runs raw SQL as someone with direct database access (an operator, or an attacker).
pub async fn raw(db: &TestDb, sql: &str) -> Result<(), sqlx::Error> {
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await
                .map(|_| ())
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await
                .map(|_| ())
        }
    }
}

pub fn ctx() -> RequestContext {
    RequestContext {
        client_addr: Some("192.0.2.1".into()),
        request_id: Some("req-1".into()),
        ..Default::default()
    }
}

pub fn new_user(email: &str, username: &str, roles: &[&str]) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: Email::parse(email).unwrap(),
        username: Username::parse(username).unwrap(),
        password_hash: "$argon2id$placeholder".into(),
        first_name: Some("Ada".into()),
        last_name: None,
        metadata: serde_json::json!({"team": "ml"}),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        created_at: now(),
    }
}

pub fn audit(ws: WorkspaceId, ev: &str) -> AuditDraft {
    AuditDraft::new(ws, &ctx(), ev, "test")
}

pub async fn verify_log(store: &dyn Store, ws: WorkspaceId) -> i64 {
    let mut v = ChainVerifier::default();
    let mut from = 0;
    loop {
        let batch = store.audit_range(ws, from, 500).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            v.push(e).unwrap_or_else(|b| panic!("chain broken: {b:?}"));
        }
        from += batch.len() as i64;
    }
    v.verified()
}

pub async fn new_workspace(fx: &Fx, name: &str) -> WorkspaceId {
    let ws = Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        description: None,
        created_at: now(),
    };
    fx.store
        .create_workspace(&ws, audit(fx.ws, "workspaces.create"))
        .await
        .unwrap();
    ws.id
}

#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::open(llmgov_store::Backend::Sqlite).await).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::open(llmgov_store::Backend::Postgres).await).await } )*
        }
    };
}

mod audit;
mod events;
mod identity;
mod metrics;
mod outbox;
mod sessions;
mod vault;
