//! Data Vault benchmark: ingest, storage of a lightly edited second version, and export, on
//! seeded chat JSON Lines; restic on the same files when it is installed. Prints figures;
//! asserts nothing about speed.
//!
//! `cargo bench -p llmgov-store --features testing --bench vault [-- SIZE_MB]` (default 300).
//! Version 2 edits 2.5% of the records and inserts 2.5% new ones, at scattered places.
//! `ZSTD_LEVEL=-1` measures another compression level.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use llmgov_core::access::{Action, Permission, PermissionSet, Resource};
use llmgov_core::audit::RequestContext;
use llmgov_core::identity::{IdentityService, Principal, PrincipalKind};
use llmgov_core::ids::UserId;
use llmgov_core::vault::keys::{KdfParams, LocalKeyProvider};
use llmgov_core::vault::model::DatasetSpec;
use llmgov_core::vault::push::{OnError, PushOptions};
use llmgov_core::vault::{VaultConfig, VaultService};
use llmgov_store::objects::Objects;
use llmgov_store::testing::TestDb;
use llmgov_store::{Backend, PoolConfig};

/// xorshift64*: the same data on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "the",
    "model",
    "answer",
    "please",
    "summarize",
    "customer",
    "order",
    "refund",
    "account",
    "password",
    "reset",
    "invoice",
    "shipping",
    "delay",
    "thanks",
    "help",
    "issue",
    "error",
    "update",
    "policy",
    "data",
    "privacy",
    "request",
    "support",
    "ticket",
    "billing",
    "plan",
    "upgrade",
    "cancel",
    "subscription",
    "email",
    "phone",
    "address",
    "delivery",
    "product",
];

fn sentence(r: &mut Rng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[r.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn record(r: &mut Rng, id: u64) -> String {
    let turns = 2 + r.below(4);
    let msgs: Vec<String> = (0..turns)
        .map(|t| {
            let role = if t % 2 == 0 { "user" } else { "assistant" };
            let n = 8 + r.below(60) as usize;
            format!(r#"{{"role":"{role}","content":"{}"}}"#, sentence(r, n))
        })
        .collect();
    format!(
        r#"{{"id":"conv-{id:08}","model":"gpt-4o","created":{},"messages":[{}],"tokens":{}}}"#,
        1_700_000_000 + id * 37,
        msgs.join(","),
        r.below(4000)
    )
}

/// Writes version 1 (`size` bytes or a little more) and version 2; returns record counts.
fn generate(dir: &Path, size: u64) -> (u64, u64) {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut v1 = BufWriter::new(std::fs::File::create(dir.join("v1.jsonl")).unwrap());
    let mut v2 = BufWriter::new(std::fs::File::create(dir.join("v2.jsonl")).unwrap());
    let mut edit = Rng(42);
    let (mut written, mut n1, mut n2) = (0u64, 0u64, 0u64);
    let mut next_id = 1u64 << 40;
    while written < size {
        let line = record(&mut r, n1);
        written += line.len() as u64 + 1;
        writeln!(v1, "{line}").unwrap();
        n1 += 1;
        match edit.below(1000) {
            0..25 => {
                let mut e = Rng(n1 + 7);
                writeln!(v2, "{}", record(&mut e, n1 - 1)).unwrap();
            }
            25..50 => {
                writeln!(v2, "{line}").unwrap();
                let mut e = Rng(next_id);
                writeln!(v2, "{}", record(&mut e, next_id)).unwrap();
                next_id += 1;
                n2 += 1;
            }
            _ => writeln!(v2, "{line}").unwrap(),
        }
        n2 += 1;
    }
    v1.flush().unwrap();
    v2.flush().unwrap();
    (n1, n2)
}

fn cpu_secs() -> f64 {
    let t = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = t
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_peak_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn du(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(d) = std::fs::read_dir(p) {
        for e in d.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
    }
    n
}

fn file_stream(
    path: &Path,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin {
    let mut f = std::fs::File::open(path).unwrap();
    Box::pin(futures_util::stream::iter(std::iter::from_fn(move || {
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(bytes::Bytes::from(buf)))
            }
            Err(e) => Some(Err(e)),
        }
    })))
}

/// CPU time per byte of each stage of the write path, on one core over the first 64 MB:
/// where an ingest's time goes.
fn stages(v1: &Path) {
    use llmgov_core::vault::object::{ObjectKind, Owner, seal};
    let mut data = Vec::new();
    std::fs::File::open(v1)
        .unwrap()
        .take(64 << 20)
        .read_to_end(&mut data)
        .unwrap();
    let cut = data.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    data.truncate(cut);
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let n = data.len() as f64;
    let dek = llmgov_core::vault::keys::Dek::generate().unwrap();
    let owner = Owner {
        workspace: llmgov_core::ids::WorkspaceId::new(),
        dataset: llmgov_core::ids::DatasetId::new(),
    };
    let level: i32 = std::env::var("ZSTD_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let mut sink = 0u64;
    let split = time(&mut || {
        sink += data.split(|b| *b == b'\n').count() as u64;
    });
    let validate = time(&mut || {
        for l in &lines {
            sink += llmgov_core::vault::jsonl::check_record(l).is_ok() as u64;
        }
    });
    let fingerprint = time(&mut || {
        for l in &lines {
            sink += dek.fingerprint(l)[0] as u64;
        }
    });
    let compress = time(&mut || {
        for c in data.chunks(1 << 20) {
            sink += zstd::bulk::compress(c, level).unwrap().len() as u64;
        }
    });
    let sealed = time(&mut || {
        for c in data.chunks(1 << 20) {
            sink += seal(&dek, owner, ObjectKind::Block, c, level)
                .unwrap()
                .1
                .len() as u64;
        }
    });
    std::hint::black_box(sink);
    println!(
        "\nCPU per stage (one core, {:.0} MB of v1, zstd level {level}):",
        n / 1e6
    );
    println!("| stage | ns/byte | MB/s |\n|---|---:|---:|");
    for (name, secs) in [
        ("split lines", split),
        ("validate JSON (serde_json, IgnoredAny)", validate),
        ("fingerprint (keyed BLAKE3)", fingerprint),
        ("zstd alone", compress),
        ("seal = zstd + AES-256-GCM + BLAKE3 name", sealed),
    ] {
        println!("| {name} | {:.2} | {:.0} |", secs * 1e9 / n, n / secs / 1e6);
    }
    let total = split + validate + fingerprint + sealed;
    println!(
        "| sum of the write path | {:.2} | {:.0} |\n",
        total * 1e9 / n,
        n / total / 1e6
    );
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

#[tokio::main]
async fn main() {
    let size_mb: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let work = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (n1, n2) = generate(work.path(), size_mb * 1_000_000);
    let (s1, s2) = (
        std::fs::metadata(work.path().join("v1.jsonl"))
            .unwrap()
            .len(),
        std::fs::metadata(work.path().join("v2.jsonl"))
            .unwrap()
            .len(),
    );
    println!(
        "data: v1 {:.1} MB ({n1} records), v2 {:.1} MB ({n2} records), generated in {:.1} s",
        mb(s1),
        mb(s2),
        t.elapsed().as_secs_f64()
    );

    stages(&work.path().join("v1.jsonl"));

    let db = TestDb::new(Backend::Sqlite).await;
    let store = llmgov_store::open(&db.url, &PoolConfig::default(), true)
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
    let keys = LocalKeyProvider::create(
        &work.path().join("kek.json"),
        "bench passphrase",
        KdfParams::minimum(),
    )
    .unwrap();
    let objects_dir = work.path().join("objects");
    let vs: Arc<dyn llmgov_core::vault::store::VaultStore> = store.clone();
    let mut cfg = VaultConfig::default();
    if let Some(l) = std::env::var("ZSTD_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.ingest.zstd_level = l;
    }
    println!("zstd level {} (env ZSTD_LEVEL)", cfg.ingest.zstd_level);
    let svc = VaultService::new(
        vs,
        Arc::new(Objects::local(&objects_dir).unwrap()),
        Arc::new(keys),
        cfg,
    );
    let p = Principal {
        user_id: UserId::new(),
        email: "bench@example.com".into(),
        workspace_id: ws,
        roles: vec![],
        permissions: Action::ALL
            .iter()
            .map(|a| Permission::new(Resource::Datasets, *a))
            .collect::<PermissionSet>(),
        kind: PrincipalKind::User {
            session: "bench".into(),
        },
    };
    let ctx = RequestContext::system();
    let spec: DatasetSpec = serde_json::from_value(serde_json::json!({"name": "bench"})).unwrap();
    let d = svc.create_dataset(&p, &ctx, spec).await.unwrap();
    let opts = || PushOptions {
        branch: None,
        message: None,
        on_error: OnError::Reject,
        sources: vec![],
    };

    let base_peak = rss_peak_mib();
    reset_peak();
    let (c0, t) = (cpu_secs(), Instant::now());
    let r1 = svc
        .push(
            &p,
            &ctx,
            &d,
            opts(),
            file_stream(&work.path().join("v1.jsonl")),
        )
        .await
        .unwrap();
    let (w1, cpu1) = (t.elapsed().as_secs_f64(), cpu_secs() - c0);
    let peak1 = rss_peak_mib();
    let stored1 = du(&objects_dir);
    let (c0, t) = (cpu_secs(), Instant::now());
    let r2 = svc
        .push(
            &p,
            &ctx,
            &d,
            opts(),
            file_stream(&work.path().join("v2.jsonl")),
        )
        .await
        .unwrap();
    let (w2, cpu2) = (t.elapsed().as_secs_f64(), cpu_secs() - c0);
    let stored2 = du(&objects_dir) - stored1;
    let (c0, t) = (cpu_secs(), Instant::now());
    let mut rx = svc.export(&p, &ctx, &d, None, None).await.unwrap().rx;
    let mut out = 0u64;
    while let Some(c) = rx.recv().await {
        out += c.unwrap().len() as u64;
    }
    let (we, cpue) = (t.elapsed().as_secs_f64(), cpu_secs() - c0);
    assert_eq!(out, s2, "export size");
    assert_eq!(r2.stats.records, n2);

    println!("\n| measure | llmgov | target |\n|---|---:|---|");
    println!(
        "| ingest v1 | {:.0} MB/s wall, {:.0} MB per CPU-second ({:.1} s, {:.1} CPU-s) | ≥ 300 MB/s per core |",
        mb(s1) / w1,
        mb(s1) / cpu1,
        w1,
        cpu1
    );
    println!(
        "| stored for v1 | {:.1} MB ({:.1}% of v1) | — |",
        mb(stored1),
        100.0 * stored1 as f64 / s1 as f64
    );
    println!(
        "| ingest v2 (2.5% edited, 2.5% inserted) | {:.0} MB/s wall, {:.0} MB per CPU-second | — |",
        mb(s2) / w2,
        mb(s2) / cpu2
    );
    println!(
        "| stored for v2 | {:.2} MB ({:.2}% of v2; {} of {} records reused) | ≤ 10% |",
        mb(stored2),
        100.0 * stored2 as f64 / s2 as f64,
        r2.stats.reused_records,
        r2.stats.records
    );
    println!(
        "| export v2 | {:.0} MB/s wall, {:.0} MB per CPU-second | ≥ 500 MB/s |",
        mb(s2) / we,
        mb(s2) / cpue
    );
    println!(
        "| peak memory during the v1 ingest | {peak1:.0} MiB (process before: {base_peak:.0} MiB) | ≤ 256 MiB (at 2 GB) |"
    );
    let _ = r1;

    // restic, when installed, on the same files.
    if std::process::Command::new("restic")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let repo = work.path().join("restic");
        let restic = |args: &[&str]| {
            std::process::Command::new("restic")
                .args(args)
                .env("RESTIC_REPOSITORY", &repo)
                .env("RESTIC_PASSWORD", "bench")
                .env("RESTIC_CACHE_DIR", work.path().join("restic-cache"))
                .output()
                .unwrap()
        };
        assert!(restic(&["init"]).status.success());
        let t = Instant::now();
        restic(&[
            "backup",
            "--compression",
            "auto",
            work.path().join("v1.jsonl").to_str().unwrap(),
        ]);
        let rw1 = t.elapsed().as_secs_f64();
        let rs1 = du(&repo);
        std::fs::rename(work.path().join("v2.jsonl"), work.path().join("v1.jsonl")).unwrap();
        restic(&[
            "backup",
            "--compression",
            "auto",
            work.path().join("v1.jsonl").to_str().unwrap(),
        ]);
        let rs2 = du(&repo) - rs1;
        println!(
            "| restic (compression auto) | ingest v1 {:.0} MB/s wall; v2 stored {:.2} MB ({:.1}% of v2) | ratio llmgov/restic: ingest {:.2}x, v2 bytes {:.3}x |",
            mb(s1) / rw1,
            mb(rs2),
            100.0 * rs2 as f64 / s2 as f64,
            (mb(s1) / w1) / (mb(s1) / rw1),
            stored2 as f64 / rs2 as f64
        );
    } else {
        println!("(restic not installed: `apt-get install restic` to compare)");
    }
}
