//! Appends ENTRIES audit entries to the system workspace of DATABASE_URL in batches, then
//! prints the inclusion-proof generation latency at that size. Used by
//! `scripts/bench-audit-scale.sh`; prints figures, asserts nothing about speed.

use std::time::Instant;

use llmgov_core::audit::{AuditDraft, RequestContext, tree};
use llmgov_store::PoolConfig;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(url), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: audit_fill DATABASE_URL ENTRIES");
        std::process::exit(2);
    };
    let store = llmgov_store::open(url, &PoolConfig::default(), true)
        .await
        .expect("open");
    let ws = store
        .system_workspace()
        .await
        .unwrap()
        .expect("bootstrapped database");
    let ctx = RequestContext {
        client_addr: Some("203.0.113.5".into()),
        ..Default::default()
    };
    let batch = 5_000u64;
    let t = Instant::now();
    let mut done = 0u64;
    while done < n {
        let k = batch.min(n - done);
        let drafts = (0..k)
            .map(|i| {
                AuditDraft::new(ws, &ctx, "bench.fill", "test")
                    .resource("user", done + i)
                    .details(serde_json::json!({"i": done + i, "note": "scale benchmark"}))
            })
            .collect();
        store.append_audit_batch(ws, drafts).await.unwrap();
        done += k;
        if done.is_multiple_of(500_000) || done == n {
            eprintln!(
                "{done} entries, {:.0}/s",
                done as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    let size = tree::tree_size(&*store, ws).await.unwrap();
    // The first proof also loads the cached upper tree levels (one range read).
    let t = Instant::now();
    tree::inclusion_proof(&*store, ws, size / 3, size)
        .await
        .unwrap();
    println!(
        "first proof (loads the upper tree levels into the node cache): {:.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let samples = 500u64;
    let t = Instant::now();
    for k in 0..samples {
        tree::inclusion_proof(&*store, ws, (k * 1_000_003) % size, size)
            .await
            .unwrap();
    }
    let gen_ms = t.elapsed().as_secs_f64() * 1000.0 / samples as f64;
    let root = tree::root_at(&*store, ws, size).await.unwrap();
    let leaf_entry = store
        .audit_range(ws, (size / 2) as i64, 1)
        .await
        .unwrap()
        .remove(0);
    let proof = tree::inclusion_proof(&*store, ws, size / 2, size)
        .await
        .unwrap();
    let leaf = llmgov_core::merkle::leaf_hash(&leaf_entry.entry_hash);
    let t = Instant::now();
    for _ in 0..samples {
        llmgov_core::merkle::verify_inclusion(size / 2, size, &leaf, &proof, &root).unwrap();
    }
    let ver_us = t.elapsed().as_secs_f64() * 1e6 / samples as f64;
    println!(
        "tree size {size}: inclusion proof generation {gen_ms:.3} ms, verification {ver_us:.1} us ({} hashes)",
        proof.len()
    );
}
