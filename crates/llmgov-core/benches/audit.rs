//! Audit trail benchmarks that need no database: offline verification of an export and
//! Merkle proof verification. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p llmgov-core --bench audit [-- ENTRIES]` (default 200,000 entries).

use std::time::Instant;

use llmgov_core::audit::checkpoint::CheckpointSigner;
use llmgov_core::audit::export::{ExportLine, ExportVerdict, verify_export};
use llmgov_core::audit::{AuditDraft, GENESIS_HASH, RequestContext};
use llmgov_core::ids::{UserId, WorkspaceId};
use llmgov_core::merkle::{self, Frontier, Hash};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let ws = WorkspaceId::new();
    let ctx = RequestContext {
        actor_id: Some(UserId::new()),
        actor_type: "user",
        client_addr: Some("203.0.113.7".into()),
        user_agent: Some("bench/1.0".into()),
        request_id: Some("0b6f2a8e-5f40-4c56-9d8e-0d1c2b3a4f50".into()),
        session_id: None,
    };
    let t = Instant::now();
    let mut prev = GENESIS_HASH;
    let mut frontier = Frontier::default();
    let mut leaves: Vec<Hash> = Vec::with_capacity(n);
    let mut export = Vec::with_capacity(n * 900);
    for i in 0..n {
        let e = AuditDraft::new(ws, &ctx, "users.update", "access_control")
            .resource("user", i)
            .details(serde_json::json!({"field": "status", "n": i}))
            .before(serde_json::json!({"status": "active", "roles": ["viewer"]}))
            .after(serde_json::json!({"status": "disabled", "roles": ["viewer"]}))
            .seal(i as i64, prev, llmgov_core::time::now());
        prev = e.entry_hash.clone().try_into().unwrap();
        let leaf = merkle::leaf_hash(&e.entry_hash);
        frontier.append(i as u64, leaf);
        leaves.push(leaf);
        serde_json::to_writer(&mut export, &ExportLine::from_entry(&e, None)).unwrap();
        export.push(b'\n');
    }
    let build = t.elapsed();
    let signer =
        CheckpointSigner::from_pkcs8(&CheckpointSigner::generate_pkcs8().unwrap()).unwrap();
    let cp = signer.sign(ws, n as u64, &frontier.root(), llmgov_core::time::now());
    println!(
        "audit bench: {n} entries, export {:.1} MB (built in {:.2} s)",
        export.len() as f64 / 1e6,
        build.as_secs_f64()
    );

    let t = Instant::now();
    let verdict = verify_export(&export[..], &cp, signer.public_key()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        verdict,
        ExportVerdict::Valid {
            entries: n as u64,
            complete: true
        }
    );
    println!(
        "offline export verification (1 thread): {:.0} entries/s, {:.0} MB/s (target >= 1,000,000 entries/s per core)",
        n as f64 / secs,
        export.len() as f64 / secs / 1e6
    );

    // Merkle proofs: generation from a slice here (the server reads O(log n) stored nodes).
    let root = merkle::root(&leaves);
    let samples = 2_000usize;
    let idx: Vec<usize> = (0..samples).map(|k| (k * 7919) % n).collect();
    let proofs: Vec<Vec<Hash>> = idx
        .iter()
        .map(|&i| merkle::inclusion_proof(i, &leaves).unwrap())
        .collect();
    let t = Instant::now();
    for (p, &i) in proofs.iter().zip(&idx) {
        merkle::verify_inclusion(i as u64, n as u64, &leaves[i], p, &root).unwrap();
    }
    println!(
        "inclusion proof verification: {:.2} us each ({} hashes per proof)",
        t.elapsed().as_secs_f64() * 1e6 / samples as f64,
        proofs[0].len()
    );
    let m = n / 3;
    let old_root = merkle::root(&leaves[..m]);
    let c = merkle::consistency_proof(m, &leaves).unwrap();
    let t = Instant::now();
    for _ in 0..samples {
        merkle::verify_consistency(m as u64, n as u64, &old_root, &root, &c).unwrap();
    }
    println!(
        "consistency proof verification: {:.2} us each",
        t.elapsed().as_secs_f64() * 1e6 / samples as f64
    );
}
