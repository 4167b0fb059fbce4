//! Behavioural suite every storage backend must pass. Each test runs once on SQLite and once
//! on PostgreSQL, each time on a database of its own.

use std::sync::Arc;

use llmgov_core::CoreError;
use llmgov_core::audit::{AuditDraft, ChainVerifier, RequestContext};
use llmgov_core::identity::{
    ApiKey, CustomRole, Email, IdentityService, NewUser, RefreshToken, Username, Workspace,
};
use llmgov_core::ids::{ApiKeyId, RoleId, UserId, WorkspaceId};
use llmgov_core::page::ListQuery;
use llmgov_core::store::*;
use llmgov_core::time::now;
use llmgov_store::testing::TestDb;
use llmgov_store::{Backend, PoolConfig};
use sqlx::Connection;

struct Fx {
    store: Arc<dyn Store>,
    db: TestDb,
    ws: WorkspaceId,
}

async fn open(backend: Backend) -> Fx {
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
    }
}

/// Runs raw SQL as someone with direct database access (an operator, or an attacker).
async fn raw(db: &TestDb, sql: &str) -> Result<(), sqlx::Error> {
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

fn ctx() -> RequestContext {
    RequestContext {
        client_addr: Some("192.0.2.1".into()),
        request_id: Some("req-1".into()),
        ..Default::default()
    }
}

fn new_user(email: &str, username: &str, roles: &[&str]) -> NewUser {
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

fn audit(ws: WorkspaceId, ev: &str) -> AuditDraft {
    AuditDraft::new(ws, &ctx(), ev, "test")
}

async fn verify_log(store: &dyn Store, ws: WorkspaceId) -> i64 {
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

async fn new_workspace(fx: &Fx, name: &str) -> WorkspaceId {
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

async fn bootstrap_happens_once(fx: Fx) {
    assert_eq!(fx.store.system_workspace().await.unwrap(), Some(fx.ws));
    let again = IdentityService::bootstrap(
        &*fx.store,
        Some("other@example.com"),
        Some("Other-password-123"),
    )
    .await
    .unwrap();
    assert!(again.is_none());
    let creds = fx
        .store
        .credentials_by_email("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let user = fx.store.get_user(fx.ws, creds.user_id).await.unwrap();
    assert_eq!(user.roles, vec!["super_admin".to_string()]);
    assert!(
        fx.store
            .credentials_by_email("other@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

async fn users_are_scoped_to_their_workspace(fx: Fx) {
    let b = new_workspace(&fx, "b").await;
    let u = new_user("b@example.com", "userb", &["viewer"]);
    fx.store
        .create_user(b, &u, audit(b, "users.create"))
        .await
        .unwrap();
    assert!(fx.store.get_user(b, u.id).await.is_ok());
    assert!(matches!(
        fx.store.get_user(fx.ws, u.id).await,
        Err(CoreError::NotFound { .. })
    ));
    let page = fx
        .store
        .list_users(fx.ws, &ListQuery::default(), None)
        .await
        .unwrap();
    assert!(page.items.iter().all(|x| x.id != u.id));
    assert_eq!(page.total, 1);
    assert!(matches!(
        fx.store
            .set_user_roles(fx.ws, u.id, &[], audit(fx.ws, "x"))
            .await,
        Err(CoreError::NotFound { .. })
    ));
    assert!(matches!(
        fx.store.remove_user(fx.ws, u.id, audit(fx.ws, "x")).await,
        Err(CoreError::NotFound { .. })
    ));
}

async fn duplicate_email_is_a_conflict_and_writes_nothing(fx: Fx) {
    let u = new_user("dup@example.com", "dup1", &[]);
    fx.store
        .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
        .await
        .unwrap();
    let before = verify_log(&*fx.store, fx.ws).await;
    let again = new_user("DUP@example.com", "dup2", &[]);
    match fx
        .store
        .create_user(fx.ws, &again, audit(fx.ws, "users.create"))
        .await
    {
        Err(CoreError::Conflict { code, .. }) => assert_eq!(code, "EMAIL_TAKEN"),
        other => panic!("expected conflict, got {other:?}"),
    }
    let same_name = new_user("other@example.com", "dup1", &[]);
    assert!(matches!(
        fx.store
            .create_user(fx.ws, &same_name, audit(fx.ws, "x"))
            .await,
        Err(CoreError::Conflict {
            code: "USERNAME_TAKEN",
            ..
        })
    ));
    assert_eq!(
        verify_log(&*fx.store, fx.ws).await,
        before,
        "a failed change leaves no audit entry"
    );
}

async fn every_change_appends_one_chained_entry(fx: Fx) {
    let start = verify_log(&*fx.store, fx.ws).await;
    let u = new_user("c@example.com", "chain", &["viewer"]);
    fx.store
        .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
        .await
        .unwrap();
    fx.store
        .set_user_roles(
            fx.ws,
            u.id,
            &["auditor".into()],
            audit(fx.ws, "users.roles_update"),
        )
        .await
        .unwrap();
    fx.store
        .append_audit(audit(fx.ws, "auth.login").personal("email", "c@example.com"))
        .await
        .unwrap();
    fx.store
        .remove_user(fx.ws, u.id, audit(fx.ws, "users.delete"))
        .await
        .unwrap();
    assert_eq!(verify_log(&*fx.store, fx.ws).await, start + 4);
    let entries = fx.store.audit_range(fx.ws, start, 10).await.unwrap();
    let types: Vec<_> = entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "users.create",
            "users.roles_update",
            "auth.login",
            "users.delete"
        ]
    );
    assert_eq!(
        entries[2].personal_map().get("email").map(String::as_str),
        Some("c@example.com")
    );
    assert_eq!(
        entries[2]
            .personal_map()
            .get("ip_address")
            .map(String::as_str),
        Some("192.0.2.1")
    );
}

async fn concurrent_appends_form_one_gap_free_sequence(fx: Fx) {
    let start = verify_log(&*fx.store, fx.ws).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = fx.store.clone();
        let ws = fx.ws;
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                store
                    .append_audit(
                        audit(ws, "load.append").details(serde_json::json!({"t": t, "i": i})),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(verify_log(&*fx.store, fx.ws).await, start + 120);
}

async fn audit_rows_cannot_be_changed_or_deleted(fx: Fx) {
    fx.store
        .append_audit(audit(fx.ws, "x.y").personal("email", "p@example.com"))
        .await
        .unwrap();
    assert!(raw(&fx.db, "DELETE FROM audit_log").await.is_err());
    assert!(
        raw(&fx.db, "UPDATE audit_log SET status = 'failure'")
            .await
            .is_err()
    );
    assert!(
        raw(&fx.db, "UPDATE audit_log SET details = '{}'")
            .await
            .is_err()
    );
    // Erasing personal data is the one permitted update, and the chain still verifies.
    raw(
        &fx.db,
        "UPDATE audit_log SET personal = NULL, pii_salt = NULL",
    )
    .await
    .unwrap();
    verify_log(&*fx.store, fx.ws).await;
}

async fn a_failing_audit_write_rolls_the_change_back(fx: Fx) {
    let trigger = match fx.db.backend {
        Backend::Sqlite => "CREATE TRIGGER break_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit broken'); END;",
        Backend::Postgres => {
            "CREATE FUNCTION break_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit broken'; END; $$ LANGUAGE plpgsql;
             CREATE TRIGGER break_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION break_audit();"
        }
    };
    raw(&fx.db, trigger).await.unwrap();
    let u = new_user("nope@example.com", "nope", &[]);
    assert!(matches!(
        fx.store
            .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
            .await,
        Err(CoreError::AuditUnavailable)
    ));
    assert!(
        fx.store
            .credentials_by_email("nope@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let ws = Workspace {
        id: WorkspaceId::new(),
        name: "w".into(),
        description: None,
        created_at: now(),
    };
    assert!(matches!(
        fx.store
            .create_workspace(&ws, audit(fx.ws, "workspaces.create"))
            .await,
        Err(CoreError::AuditUnavailable)
    ));
    assert!(fx.store.get_workspace(ws.id).await.is_err());
}

async fn updates_are_optimistic(fx: Fx) {
    let u = new_user("o@example.com", "optimist", &[]);
    fx.store
        .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
        .await
        .unwrap();
    let before = fx.store.get_user(fx.ws, u.id).await.unwrap();
    let change = UserChanges {
        first_name: Some(None),
        status: Some(llmgov_core::identity::UserStatus::Disabled),
        ..Default::default()
    };
    fx.store
        .update_user(
            fx.ws,
            u.id,
            &change,
            before.updated_at,
            now(),
            audit(fx.ws, "users.update"),
        )
        .await
        .unwrap();
    let after = fx.store.get_user(fx.ws, u.id).await.unwrap();
    assert_eq!(after.first_name, None);
    assert_eq!(after.status, llmgov_core::identity::UserStatus::Disabled);
    let stale = fx
        .store
        .update_user(
            fx.ws,
            u.id,
            &change,
            before.updated_at,
            now(),
            audit(fx.ws, "users.update"),
        )
        .await;
    assert!(matches!(
        stale,
        Err(CoreError::Conflict {
            code: "CONCURRENT_UPDATE",
            ..
        })
    ));
}

async fn refresh_tokens_rotate_once(fx: Fx) {
    let creds = fx
        .store
        .credentials_by_email("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let t = now();
    let mk = |family| RefreshToken {
        id: uuid::Uuid::new_v4(),
        family_id: family,
        user_id: creds.user_id,
        workspace_id: fx.ws,
        token_hash: vec![1, 2, 3],
        created_at: t,
        expires_at: t + chrono::Duration::hours(1),
        used_at: None,
        revoked_at: None,
    };
    let family = uuid::Uuid::new_v4();
    let first = mk(family);
    fx.store
        .record_login(&first, audit(fx.ws, "auth.login"))
        .await
        .unwrap();
    let second = mk(family);
    assert!(
        fx.store
            .rotate_refresh_token(first.id, &second, now(), audit(fx.ws, "auth.refresh"))
            .await
            .unwrap()
    );
    assert!(
        !fx.store
            .rotate_refresh_token(first.id, &mk(family), now(), audit(fx.ws, "auth.refresh"))
            .await
            .unwrap()
    );
    fx.store
        .revoke_token_family(family, now(), audit(fx.ws, "auth.logout"))
        .await
        .unwrap();
    assert!(
        fx.store
            .get_refresh_token(second.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        fx.store
            .get_user(fx.ws, creds.user_id)
            .await
            .unwrap()
            .last_login_at
            .is_some()
    );
}

async fn api_keys_are_found_by_prefix_and_revoked(fx: Fx) {
    let creds = fx
        .store
        .credentials_by_email("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let key = ApiKey {
        id: ApiKeyId::new(),
        workspace_id: fx.ws,
        user_id: creds.user_id,
        name: "ci".into(),
        prefix: "lgv_abcdefghjk".into(),
        scopes: llmgov_core::access::PermissionSet::parse_all(&["metrics:create"]).unwrap(),
        expires_at: None,
        last_used_at: None,
        created_at: now(),
        revoked_at: None,
        key_hash: vec![9; 32],
    };
    fx.store
        .create_api_key(&key, audit(fx.ws, "api_keys.create"))
        .await
        .unwrap();
    let found = fx
        .store
        .api_key_by_prefix("lgv_abcdefghjk")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, key);
    let other = new_workspace(&fx, "other").await;
    assert!(fx.store.get_api_key(other, key.id).await.is_err());
    assert!(
        fx.store
            .revoke_api_key(other, key.id, now(), audit(other, "x"))
            .await
            .is_err()
    );
    fx.store
        .revoke_api_key(fx.ws, key.id, now(), audit(fx.ws, "api_keys.revoke"))
        .await
        .unwrap();
    assert!(
        fx.store
            .get_api_key(fx.ws, key.id)
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
    fx.store.touch_api_key(key.id, now()).await.unwrap();
    let page = fx
        .store
        .list_api_keys(fx.ws, Some(creds.user_id), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
}

async fn custom_roles_are_per_workspace(fx: Fx) {
    let t = now();
    let role = CustomRole {
        id: RoleId::new(),
        workspace_id: fx.ws,
        name: "reviewer".into(),
        description: None,
        permissions: llmgov_core::access::PermissionSet::parse_all(&[
            "policies:read",
            "audit:read",
        ])
        .unwrap(),
        created_at: t,
        updated_at: t,
    };
    fx.store
        .create_role(&role, audit(fx.ws, "roles.create"))
        .await
        .unwrap();
    let dup = CustomRole {
        id: RoleId::new(),
        ..role.clone()
    };
    assert!(matches!(
        fx.store
            .create_role(&dup, audit(fx.ws, "roles.create"))
            .await,
        Err(CoreError::Conflict {
            code: "ROLE_EXISTS",
            ..
        })
    ));
    let other = new_workspace(&fx, "other").await;
    assert!(
        fx.store
            .roles_by_name(other, &["reviewer".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let u = new_user("r@example.com", "reviewer1", &["reviewer"]);
    fx.store
        .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
        .await
        .unwrap();
    fx.store
        .delete_role(fx.ws, role.id, audit(fx.ws, "roles.delete"))
        .await
        .unwrap();
    assert!(
        fx.store
            .get_user(fx.ws, u.id)
            .await
            .unwrap()
            .roles
            .is_empty()
    );
}

async fn idempotency_keys_claim_replay_and_mismatch(fx: Fx) {
    let t = now();
    assert_eq!(
        fx.store
            .claim_idempotency_key("s", "k", b"h1", t)
            .await
            .unwrap(),
        IdempotencyClaim::New
    );
    assert_eq!(
        fx.store
            .claim_idempotency_key("s", "k", b"h1", t)
            .await
            .unwrap(),
        IdempotencyClaim::InFlight
    );
    fx.store
        .complete_idempotency_key("s", "k", 201, b"{}")
        .await
        .unwrap();
    assert_eq!(
        fx.store
            .claim_idempotency_key("s", "k", b"h1", t)
            .await
            .unwrap(),
        IdempotencyClaim::Replay {
            status: 201,
            body: b"{}".to_vec()
        }
    );
    assert_eq!(
        fx.store
            .claim_idempotency_key("s", "k", b"h2", t)
            .await
            .unwrap(),
        IdempotencyClaim::Mismatch
    );
    assert_eq!(
        fx.store
            .claim_idempotency_key("other", "k", b"h2", t)
            .await
            .unwrap(),
        IdempotencyClaim::New
    );
    fx.store
        .release_idempotency_key("other", "k")
        .await
        .unwrap();
    assert_eq!(
        fx.store
            .claim_idempotency_key("other", "k", b"h2", t)
            .await
            .unwrap(),
        IdempotencyClaim::New
    );
}

async fn removing_the_last_membership_deletes_the_user(fx: Fx) {
    let u = new_user("gone@example.com", "gone", &["viewer"]);
    fx.store
        .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
        .await
        .unwrap();
    fx.store
        .remove_user(fx.ws, u.id, audit(fx.ws, "users.delete"))
        .await
        .unwrap();
    assert!(fx.store.credentials_by_id(u.id).await.unwrap().is_none());
}

async fn lists_paginate_and_sort(fx: Fx) {
    for i in 0..5 {
        fx.store
            .create_user(
                fx.ws,
                &new_user(&format!("p{i}@example.com"), &format!("page{i}"), &[]),
                audit(fx.ws, "users.create"),
            )
            .await
            .unwrap();
    }
    let q = ListQuery::parse(
        Some("2"),
        Some("2"),
        Some("username:desc"),
        &["username"],
        ListQuery::default().sort[0],
    )
    .unwrap();
    let page = fx.store.list_users(fx.ws, &q, None).await.unwrap();
    assert_eq!(page.total, 6);
    assert!(page.has_more);
    let names: Vec<_> = page.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(
        names,
        ["page2", "page1"],
        "desc order: page4 page3 | page2 page1 | page0 admin"
    );
}

/// Two `llmgov` instances are two stores (two pools) on one database: their appends must
/// still form one gap-free chain. PostgreSQL only: the embedded SQLite serves one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_instances_share_one_chain() {
    let fx = open(Backend::Postgres).await;
    let second = llmgov_store::open(&fx.db.url, &PoolConfig::default(), true)
        .await
        .unwrap();
    let start = verify_log(&*fx.store, fx.ws).await;
    let mut tasks = Vec::new();
    for (n, store) in [fx.store.clone(), second.clone(), fx.store.clone(), second]
        .into_iter()
        .enumerate()
    {
        let ws = fx.ws;
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let u = new_user(
                    &format!("i{n}u{i}@example.com"),
                    &format!("i{n}u{i}"),
                    &["viewer"],
                );
                store
                    .create_user(ws, &u, audit(ws, "users.create"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(verify_log(&*fx.store, fx.ws).await, start + 100);
}

/// A change made through one instance is seen by another that had the user cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cached_users_are_invalidated_across_instances() {
    let fx = open(Backend::Postgres).await;
    let second = llmgov_store::open(&fx.db.url, &PoolConfig::default(), true)
        .await
        .unwrap();
    let u = new_user("cache@example.com", "cached", &["viewer"]);
    fx.store
        .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
        .await
        .unwrap();
    // Wait until the second instance's listener is up and its cache holds the user.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let before = second.get_user(fx.ws, u.id).await.unwrap();
    fx.store
        .set_user_roles(
            fx.ws,
            u.id,
            &["auditor".into()],
            audit(fx.ws, "users.roles_update"),
        )
        .await
        .unwrap();
    loop {
        let seen = second.get_user(fx.ws, u.id).await.unwrap();
        if seen.roles == ["auditor"] {
            break;
        }
        assert_eq!(seen.roles, before.roles);
        assert!(
            std::time::Instant::now() < deadline,
            "the invalidation never arrived"
        );
        tokio::task::yield_now().await;
    }
}

async fn cached_reads_see_every_change(fx: Fx) {
    let u = new_user("fresh@example.com", "fresh", &["viewer"]);
    fx.store
        .create_user(fx.ws, &u, audit(fx.ws, "users.create"))
        .await
        .unwrap();
    assert_eq!(
        fx.store.get_user(fx.ws, u.id).await.unwrap().roles,
        ["viewer"]
    );
    fx.store
        .set_user_roles(fx.ws, u.id, &["auditor".into()], audit(fx.ws, "x"))
        .await
        .unwrap();
    assert_eq!(
        fx.store.get_user(fx.ws, u.id).await.unwrap().roles,
        ["auditor"]
    );
    let cur = fx.store.get_user(fx.ws, u.id).await.unwrap();
    let change = UserChanges {
        username: Some("fresher".into()),
        ..Default::default()
    };
    fx.store
        .update_user(
            fx.ws,
            u.id,
            &change,
            cur.updated_at,
            now(),
            audit(fx.ws, "x"),
        )
        .await
        .unwrap();
    assert_eq!(
        fx.store.get_user(fx.ws, u.id).await.unwrap().username,
        "fresher"
    );
    fx.store
        .remove_user(fx.ws, u.id, audit(fx.ws, "x"))
        .await
        .unwrap();
    assert!(fx.store.get_user(fx.ws, u.id).await.is_err());
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::open(llmgov_store::Backend::Sqlite).await).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::open(llmgov_store::Backend::Postgres).await).await } )*
        }
    };
}

conformance!(
    bootstrap_happens_once,
    users_are_scoped_to_their_workspace,
    duplicate_email_is_a_conflict_and_writes_nothing,
    every_change_appends_one_chained_entry,
    concurrent_appends_form_one_gap_free_sequence,
    audit_rows_cannot_be_changed_or_deleted,
    a_failing_audit_write_rolls_the_change_back,
    updates_are_optimistic,
    refresh_tokens_rotate_once,
    api_keys_are_found_by_prefix_and_revoked,
    custom_roles_are_per_workspace,
    idempotency_keys_claim_replay_and_mismatch,
    removing_the_last_membership_deletes_the_user,
    lists_paginate_and_sort,
    cached_reads_see_every_change,
);
