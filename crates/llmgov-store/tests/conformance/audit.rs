//! The audit write path: chaining, append-only storage, fail-closed writes, concurrency.

use llmgov_core::CoreError;
use llmgov_core::identity::Workspace;
use llmgov_core::ids::WorkspaceId;
use llmgov_core::time::now;
use llmgov_store::{Backend, PoolConfig};

use crate::*;

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

/// A log of six entries (0..=5), then `tamper` run as an attacker who dropped the guards.
async fn tampered(fx: &Fx, tamper: &str) -> llmgov_core::audit::verify::LogReport {
    for i in 0..5 {
        fx.store
            .append_audit(audit(fx.ws, "x.y").details(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    let clean = llmgov_core::audit::verify::verify_workspace(&*fx.store, fx.ws)
        .await
        .unwrap();
    assert!(clean.valid, "{clean:?}");
    assert_eq!(clean.verified_entries, 6);
    let unguard = match fx.db.backend {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        Backend::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;",
    };
    raw(&fx.db, unguard).await.unwrap();
    raw(&fx.db, tamper).await.unwrap();
    let r = llmgov_core::audit::verify::verify_workspace(&*fx.store, fx.ws)
        .await
        .unwrap();
    assert!(!r.valid, "tampering went unnoticed: {tamper}");
    r
}

async fn verification_pinpoints_an_altered_entry(fx: Fx) {
    let r = tampered(
        &fx,
        "UPDATE audit_log SET status = 'failure' WHERE sequence = 2",
    )
    .await;
    assert_eq!(r.first_invalid_sequence, Some(2));
    assert_eq!(r.verified_entries, 2);
}

async fn verification_pinpoints_a_deleted_entry(fx: Fx) {
    let r = tampered(&fx, "DELETE FROM audit_log WHERE sequence = 3").await;
    assert_eq!(r.first_invalid_sequence, Some(3));
}

async fn verification_pinpoints_an_inserted_entry(fx: Fx) {
    let new_id = match fx.db.backend {
        Backend::Sqlite => "randomblob(16)",
        Backend::Postgres => "gen_random_uuid()",
    };
    let sql = format!(
        "UPDATE audit_log SET sequence = sequence + 1000 WHERE sequence >= 3;
         UPDATE audit_log SET sequence = sequence - 999 WHERE sequence >= 1000;
         INSERT INTO audit_log (workspace_id, sequence, id, format_version, timestamp, event_type, event_category, actor_id,
             actor_type, action, resource_type, resource_id, status, request_id, session_id, details, before_state,
             after_state, personal, pii_salt, pii_digest, prev_hash, entry_hash)
         SELECT workspace_id, 3, {new_id}, format_version, timestamp, 'users.delete', event_category, actor_id, actor_type,
             action, resource_type, resource_id, status, request_id, session_id, '{{}}', before_state, after_state,
             personal, pii_salt, pii_digest, prev_hash, entry_hash
         FROM audit_log WHERE sequence = 2"
    );
    let r = tampered(&fx, &sql).await;
    assert_eq!(r.first_invalid_sequence, Some(3));
}

async fn verification_pinpoints_reordered_entries(fx: Fx) {
    let r = tampered(
        &fx,
        "UPDATE audit_log SET sequence = -1 WHERE sequence = 1;
         UPDATE audit_log SET sequence = 1 WHERE sequence = 2;
         UPDATE audit_log SET sequence = 2 WHERE sequence = -1;",
    )
    .await;
    assert_eq!(r.first_invalid_sequence, Some(1));
}

async fn verification_pinpoints_a_truncated_tail(fx: Fx) {
    let r = tampered(&fx, "DELETE FROM audit_log WHERE sequence >= 4").await;
    assert_eq!(r.first_invalid_sequence, Some(4));
    assert_eq!(r.verified_entries, 4);
}

async fn verification_pinpoints_an_appended_forgery(fx: Fx) {
    let new_id = match fx.db.backend {
        Backend::Sqlite => "randomblob(16)",
        Backend::Postgres => "gen_random_uuid()",
    };
    let sql = format!(
        "INSERT INTO audit_log (workspace_id, sequence, id, format_version, timestamp, event_type, event_category, actor_id,
             actor_type, action, resource_type, resource_id, status, request_id, session_id, details, before_state,
             after_state, personal, pii_salt, pii_digest, prev_hash, entry_hash)
         SELECT workspace_id, 6, {new_id}, format_version, timestamp, event_type, event_category, actor_id, actor_type,
             action, resource_type, resource_id, status, request_id, session_id, details, before_state, after_state,
             personal, pii_salt, pii_digest, entry_hash, entry_hash
         FROM audit_log WHERE sequence = 5"
    );
    let r = tampered(&fx, &sql).await;
    assert_eq!(r.first_invalid_sequence, Some(6));
}

async fn the_merkle_tree_serves_heads_and_proofs_at_every_size(fx: Fx) {
    use llmgov_core::audit::tree;
    use llmgov_core::merkle;
    for i in 0..20 {
        fx.store
            .append_audit(audit(fx.ws, "x.y").details(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    let entries = fx.store.audit_range(fx.ws, 0, 1000).await.unwrap();
    let leaves: Vec<merkle::Hash> = entries
        .iter()
        .map(|e| merkle::leaf_hash(&e.entry_hash))
        .collect();
    let n = leaves.len() as u64;
    assert_eq!(tree::tree_size(&*fx.store, fx.ws).await.unwrap(), n);
    for size in 1..=n {
        let root = tree::root_at(&*fx.store, fx.ws, size).await.unwrap();
        assert_eq!(root, merkle::root(&leaves[..size as usize]), "size {size}");
        for index in [0, size / 2, size - 1] {
            let p = tree::inclusion_proof(&*fx.store, fx.ws, index, size)
                .await
                .unwrap();
            merkle::verify_inclusion(index, size, &leaves[index as usize], &p, &root).unwrap();
        }
        let head = tree::root_at(&*fx.store, fx.ws, n).await.unwrap();
        let c = tree::consistency_proof(&*fx.store, fx.ws, size, n)
            .await
            .unwrap();
        merkle::verify_consistency(size, n, &root, &head, &c).unwrap();
    }
    for bad in [0, n + 1] {
        assert!(matches!(
            tree::root_at(&*fx.store, fx.ws, bad).await,
            Err(CoreError::Invalid { .. })
        ));
    }
    assert!(
        tree::inclusion_proof(&*fx.store, fx.ws, n, n)
            .await
            .is_err()
    );
    assert!(
        tree::consistency_proof(&*fx.store, fx.ws, 3, n + 1)
            .await
            .is_err()
    );
    assert!(
        tree::consistency_proof(&*fx.store, fx.ws, 5, 4)
            .await
            .is_err()
    );
}

async fn trees_of_older_logs_are_backfilled(fx: Fx) {
    use llmgov_core::audit::tree;
    for i in 0..9 {
        fx.store
            .append_audit(audit(fx.ws, "x.y").details(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    let before = tree::root_at(&*fx.store, fx.ws, 10).await.unwrap();
    // As if the log had been written before the tree existed.
    let reset = match fx.db.backend {
        Backend::Sqlite => {
            "DELETE FROM audit_tree_nodes; UPDATE audit_heads SET frontier = x'', tree_size = 0;"
        }
        Backend::Postgres => {
            "DELETE FROM audit_tree_nodes; UPDATE audit_heads SET frontier = '\\x', tree_size = 0;"
        }
    };
    raw(&fx.db, reset).await.unwrap();
    assert!(
        fx.store.append_audit(audit(fx.ws, "x.y")).await.is_err(),
        "appends wait for the tree to be rebuilt"
    );
    let reopened = llmgov_store::open(&fx.db.url, &PoolConfig::default(), true)
        .await
        .unwrap();
    assert_eq!(tree::root_at(&*reopened, fx.ws, 10).await.unwrap(), before);
    reopened.append_audit(audit(fx.ws, "x.y")).await.unwrap();
    assert_eq!(tree::tree_size(&*reopened, fx.ws).await.unwrap(), 11);
}

async fn batched_appends_chain_and_tree_like_single_ones(fx: Fx) {
    use llmgov_core::audit::tree;
    use llmgov_core::merkle;
    fx.store
        .append_audit(audit(fx.ws, "x.single"))
        .await
        .unwrap();
    let batch: Vec<_> = (0..2_500)
        .map(|i| audit(fx.ws, "x.batch").details(serde_json::json!({"i": i})))
        .collect();
    fx.store.append_audit_batch(fx.ws, batch).await.unwrap();
    fx.store
        .append_audit(audit(fx.ws, "x.single"))
        .await
        .unwrap();
    fx.store
        .append_audit_batch(fx.ws, Vec::new())
        .await
        .unwrap();
    let other = new_workspace(&fx, "other").await;
    assert!(
        fx.store
            .append_audit_batch(fx.ws, vec![audit(other, "x.y")])
            .await
            .is_err(),
        "one batch, one workspace"
    );
    let n = verify_log(&*fx.store, fx.ws).await;
    assert_eq!(
        n,
        1 + 1 + 2_500 + 1 + 1,
        "bootstrap, single, batch, single, workspace creation"
    );
    let report = llmgov_core::audit::verify::verify_workspace(&*fx.store, fx.ws)
        .await
        .unwrap();
    assert!(report.valid, "{report:?}");
    let entries = fx.store.audit_range(fx.ws, 0, 10_000).await.unwrap();
    let leaves: Vec<merkle::Hash> = entries
        .iter()
        .map(|e| merkle::leaf_hash(&e.entry_hash))
        .collect();
    assert_eq!(
        tree::root_at(&*fx.store, fx.ws, n as u64).await.unwrap(),
        merkle::root(&leaves)
    );
    assert_eq!(
        tree::root_at(&*fx.store, fx.ws, 1_000).await.unwrap(),
        merkle::root(&leaves[..1_000])
    );
    // Upper tree levels (subtrees of 1,024 entries and more) come from the node cache once
    // loaded: proofs read twice, at sizes before and after more appends, are still exact.
    for _ in 0..2 {
        for (i, size) in [
            (0usize, n as usize),
            (1_500, n as usize),
            (2_047, 2_048),
            (700, 1_025),
        ] {
            assert_eq!(
                tree::inclusion_proof(&*fx.store, fx.ws, i as u64, size as u64)
                    .await
                    .unwrap(),
                merkle::inclusion_proof(i, &leaves[..size]).unwrap(),
                "entry {i} at size {size}"
            );
        }
    }
    let more: Vec<_> = (0..1_100)
        .map(|i| audit(fx.ws, "x.more").details(serde_json::json!({"i": i})))
        .collect();
    fx.store.append_audit_batch(fx.ws, more).await.unwrap();
    let entries = fx.store.audit_range(fx.ws, 0, 10_000).await.unwrap();
    let leaves: Vec<merkle::Hash> = entries
        .iter()
        .map(|e| merkle::leaf_hash(&e.entry_hash))
        .collect();
    let size = leaves.len();
    for i in [0usize, 2_100, size - 1] {
        assert_eq!(
            tree::inclusion_proof(&*fx.store, fx.ws, i as u64, size as u64)
                .await
                .unwrap(),
            merkle::inclusion_proof(i, &leaves).unwrap(),
            "entry {i} after the log grew"
        );
    }
}

async fn retention_prunes_up_to_a_checkpoint_and_the_rest_still_verifies(fx: Fx) {
    use llmgov_core::audit::checkpoint::CheckpointSigner;
    use llmgov_core::audit::{retention, tree, verify};
    use llmgov_core::merkle;
    let signer =
        CheckpointSigner::from_pkcs8(&CheckpointSigner::generate_pkcs8().unwrap()).unwrap();
    let keep = std::time::Duration::from_secs(3600);
    assert_eq!(
        retention::prune_expired(&*fx.store, fx.ws, keep)
            .await
            .unwrap(),
        0,
        "no checkpoint, nothing pruned"
    );
    for i in 0..10 {
        fx.store
            .append_audit(audit(fx.ws, "x.old").details(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    let cp = tree::checkpoint_now(&*fx.store, &signer, fx.ws)
        .await
        .unwrap()
        .unwrap();
    for i in 0..5 {
        fx.store
            .append_audit(audit(fx.ws, "x.new").details(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    assert_eq!(
        retention::prune_expired(&*fx.store, fx.ws, keep)
            .await
            .unwrap(),
        0,
        "nothing is an hour old"
    );
    // A retention of zero: everything is expired, but only entries up to the checkpoint go.
    let deleted = retention::prune_expired(&*fx.store, fx.ws, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(deleted, cp.tree_size);
    assert_eq!(
        fx.store.audit_floor(fx.ws).await.unwrap().0,
        cp.tree_size as i64
    );
    let kept = fx.store.audit_range(fx.ws, 0, 100).await.unwrap();
    assert_eq!(kept[0].sequence, cp.tree_size as i64);
    let report = verify::verify_workspace(&*fx.store, fx.ws).await.unwrap();
    assert!(report.valid, "{report:?}");
    // Kept entries are still provable against checkpoints old and new.
    let now_cp = tree::checkpoint_now(&*fx.store, &signer, fx.ws)
        .await
        .unwrap()
        .unwrap();
    let e = &kept[2];
    let p = tree::inclusion_proof(&*fx.store, fx.ws, e.sequence as u64, now_cp.tree_size)
        .await
        .unwrap();
    merkle::verify_inclusion(
        e.sequence as u64,
        now_cp.tree_size,
        &merkle::leaf_hash(&e.entry_hash),
        &p,
        &now_cp.root().unwrap(),
    )
    .unwrap();
    let c = tree::consistency_proof(&*fx.store, fx.ws, cp.tree_size, now_cp.tree_size)
        .await
        .unwrap();
    merkle::verify_consistency(
        cp.tree_size,
        now_cp.tree_size,
        &cp.root().unwrap(),
        &now_cp.root().unwrap(),
        &c,
    )
    .unwrap();
    // The floor only covers pruned entries: kept ones still cannot be deleted.
    assert!(
        raw(
            &fx.db,
            &format!("DELETE FROM audit_log WHERE sequence = {}", e.sequence)
        )
        .await
        .is_err()
    );
    assert!(
        fx.store
            .audit_range(fx.ws, 0, 1000)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event_type == "audit.prune")
    );
    assert_eq!(
        retention::prune_expired(&*fx.store, fx.ws, std::time::Duration::ZERO)
            .await
            .unwrap(),
        now_cp.tree_size - cp.tree_size
    );
    assert!(
        verify::verify_workspace(&*fx.store, fx.ws)
            .await
            .unwrap()
            .valid
    );
}

crate::conformance!(
    retention_prunes_up_to_a_checkpoint_and_the_rest_still_verifies,
    batched_appends_chain_and_tree_like_single_ones,
    the_merkle_tree_serves_heads_and_proofs_at_every_size,
    trees_of_older_logs_are_backfilled,
    verification_pinpoints_an_altered_entry,
    verification_pinpoints_a_deleted_entry,
    verification_pinpoints_an_inserted_entry,
    verification_pinpoints_reordered_entries,
    verification_pinpoints_a_truncated_tail,
    verification_pinpoints_an_appended_forgery,
    every_change_appends_one_chained_entry,
    concurrent_appends_form_one_gap_free_sequence,
    audit_rows_cannot_be_changed_or_deleted,
    a_failing_audit_write_rolls_the_change_back,
);
