//! Audit trail benchmarks that need no database: offline verification of an export and
//! Merkle proof verification. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p llmgov-core --bench audit [-- ENTRIES] [--export-only | --archive-only]`
//! (default 200,000 entries).

use std::time::Instant;

use llmgov_core::audit::archive;
use llmgov_core::audit::checkpoint::Checkpoint;
use llmgov_core::audit::checkpoint::CheckpointSigner;
use llmgov_core::audit::export::{ExportLine, ExportVerdict, verify_export_with};
use llmgov_core::audit::{AuditDraft, GENESIS_HASH, RequestContext};
use llmgov_core::ids::{UserId, WorkspaceId};
use llmgov_core::merkle::{self, Frontier, Hash};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let (leaves, _) = export_bench(n, Shape::Update);
    export_bench(n, Shape::Login);
    if std::env::args().any(|a| a == "--export-only" || a == "--archive-only") {
        return;
    }

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

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `users.update` with before/after state and personal data (~940-byte lines).
    Update,
    /// `auth.login` with personal data, no state (~600-byte lines).
    Login,
}

/// Builds an `n`-entry export of `shape` and prints how fast it verifies on one thread and
/// on every core. Returns the leaves for the proof figures.
fn export_bench(n: usize, shape: Shape) -> (Vec<Hash>, Checkpoint) {
    let ws = WorkspaceId::new();
    let ctx = RequestContext {
        actor_id: Some(UserId::new()),
        actor_type: "user",
        client_addr: Some("203.0.113.7".into()),
        user_agent: Some("bench/1.0".into()),
        request_id: Some("0b6f2a8e-5f40-4c56-9d8e-0d1c2b3a4f50".into()),
        session_id: None,
    };
    let mut prev = GENESIS_HASH;
    let mut frontier = Frontier::default();
    let mut leaves: Vec<Hash> = Vec::with_capacity(n);
    let mut export = Vec::with_capacity(n * 900);
    let mut records = Vec::with_capacity(n * 500);
    for i in 0..n {
        let d = match shape {
            Shape::Update => AuditDraft::new(ws, &ctx, "users.update", "access_control")
                .resource("user", i)
                .details(serde_json::json!({"field": "status", "n": i}))
                .before(serde_json::json!({"status": "active", "roles": ["viewer"]}))
                .after(serde_json::json!({"status": "disabled", "roles": ["viewer"]})),
            Shape::Login => AuditDraft::new(ws, &ctx, "auth.login", "authentication")
                .details(serde_json::json!({"method": "password"})),
        };
        let e = d.seal(i as i64, prev, llmgov_core::time::now());
        prev = e.entry_hash.clone().try_into().unwrap();
        let leaf = merkle::leaf_hash(&e.entry_hash);
        frontier.append(i as u64, leaf);
        leaves.push(leaf);
        serde_json::to_writer(&mut export, &ExportLine::from_entry(&e, None)).unwrap();
        archive::write_record(&mut records, &e, None);
        export.push(b'\n');
    }
    let signer =
        CheckpointSigner::from_pkcs8(&CheckpointSigner::generate_pkcs8().unwrap()).unwrap();
    let cp = signer.sign(ws, n as u64, &frontier.root(), llmgov_core::time::now());
    println!(
        "{shape:?} export: {n} entries, {:.1} MB, {} bytes per line",
        export.len() as f64 / 1e6,
        export.len() / n
    );
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    // Verifies `bytes` with `verify` on 1 thread and on every core, and prints the rates.
    let measure = |what: &str, bytes: &[u8], verify: &dyn Fn(usize) -> ExportVerdict| {
        for threads in [1, cores] {
            let t = Instant::now();
            let verdict = verify(threads);
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(
                verdict,
                ExportVerdict::Valid {
                    entries: n as u64,
                    complete: true
                }
            );
            println!(
                "  offline {what} verification, {threads} thread(s): {:.0} entries/s, {:.0} MB/s (target >= 1,000,000 entries/s per core)",
                n as f64 / secs,
                bytes.len() as f64 / secs / 1e6
            );
        }
    };
    let key = signer.public_key();
    if !std::env::args().any(|a| a == "--archive-only") {
        measure("export", &export, &|threads| {
            verify_export_with(&export[..], &cp, key, threads).unwrap()
        });
    }
    let mut lgva = Vec::with_capacity(records.len() + 1024);
    archive::write_header(&mut lgva, Some(&cp));
    lgva.extend_from_slice(&records);
    drop(records);
    archive::write_end(&mut lgva, n as u64);
    println!(
        "{shape:?} archive (.lgva): {:.1} MB, {} bytes per record",
        lgva.len() as f64 / 1e6,
        lgva.len() / n
    );
    measure("archive", &lgva, &|threads| {
        archive::verify_archive(&lgva[..], None, key, threads).unwrap()
    });
    (leaves, cp)
}
