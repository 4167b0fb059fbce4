//! Audit append throughput with concurrent writers, and proof generation latency from stored
//! tree nodes, on SQLite and PostgreSQL. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p llmgov-store --features testing --bench audit_append [-- WRITERS PER_WRITER BATCH]`

use std::sync::Arc;
use std::time::Instant;

use llmgov_core::audit::{AuditDraft, RequestContext, tree};
use llmgov_core::identity::IdentityService;
use llmgov_store::testing::TestDb;
use llmgov_store::{Backend, PoolConfig};

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let writers = args.first().copied().unwrap_or(16);
    let per_writer = args.get(1).copied().unwrap_or(500);
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let store = llmgov_store::open(
            &db.url,
            &PoolConfig {
                max_connections: 32,
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
        let ws = IdentityService::bootstrap(
            &*store,
            Some("bench@example.com"),
            Some("Bench-password-123"),
        )
        .await
        .unwrap()
        .unwrap()
        .workspace_id;
        let ctx = RequestContext {
            client_addr: Some("203.0.113.1".into()),
            ..Default::default()
        };
        let t = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (store, ctx) = (Arc::clone(&store), ctx.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..per_writer {
                    let d = AuditDraft::new(ws, &ctx, "bench.append", "test")
                        .details(serde_json::json!({"w": w, "i": i}));
                    store.append_audit(d).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let total = writers * per_writer;
        println!(
            "{backend:?}: {total} single appends by {writers} concurrent writers: {:.0} entries/s (one transaction each)",
            total as f64 / secs
        );
        let batch = args.get(2).copied().unwrap_or(500);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (store, ctx) = (Arc::clone(&store), ctx.clone());
            tasks.push(tokio::spawn(async move {
                for b in 0..(per_writer * 4 / batch).max(1) {
                    let drafts = (0..batch)
                        .map(|i| {
                            AuditDraft::new(ws, &ctx, "bench.append", "test")
                                .details(serde_json::json!({"w": w, "b": b, "i": i}))
                        })
                        .collect();
                    store.append_audit_batch(ws, drafts).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let batched = writers * (per_writer * 4 / batch).max(1) * batch;
        let bsecs = t.elapsed().as_secs_f64();
        let size = tree::tree_size(&*store, ws).await.unwrap();
        let t = Instant::now();
        let samples = 200u64;
        for k in 0..samples {
            tree::inclusion_proof(&*store, ws, (k * 7919) % size, size)
                .await
                .unwrap();
        }
        let proof_ms = t.elapsed().as_secs_f64() * 1000.0 / samples as f64;
        println!(
            "{backend:?}: {batched} appends in batches of {batch} by {writers} concurrent writers: {:.0} entries/s (target >= 20,000/s on PostgreSQL with batching)",
            batched as f64 / bsecs
        );
        println!(
            "{backend:?}: inclusion proof generation at {size} entries: {proof_ms:.3} ms (target < 1 ms at 10 million)"
        );
    }
}
