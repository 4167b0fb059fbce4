//! Refresh tokens, API keys and idempotency keys.

use llmgov_core::identity::{ApiKey, RefreshToken};
use llmgov_core::ids::ApiKeyId;
use llmgov_core::page::ListQuery;
use llmgov_core::store::*;
use llmgov_core::time::now;

use crate::*;

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

crate::conformance!(
    refresh_tokens_rotate_once,
    api_keys_are_found_by_prefix_and_revoked,
    idempotency_keys_claim_replay_and_mismatch,
);
