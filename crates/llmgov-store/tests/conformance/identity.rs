//! Users, workspaces, roles, isolation, pagination and the user cache.

use llmgov_core::CoreError;
use llmgov_core::identity::{CustomRole, IdentityService};
use llmgov_core::ids::RoleId;
use llmgov_core::page::ListQuery;
use llmgov_core::store::*;
use llmgov_core::time::now;
use llmgov_store::{Backend, PoolConfig};

use crate::*;

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

crate::conformance!(
    bootstrap_happens_once,
    users_are_scoped_to_their_workspace,
    duplicate_email_is_a_conflict_and_writes_nothing,
    updates_are_optimistic,
    custom_roles_are_per_workspace,
    removing_the_last_membership_deletes_the_user,
    lists_paginate_and_sort,
    cached_reads_see_every_change,
);
