//! The audit commands and the checkpointing the server runs: verifying the logs in place,
//! signing checkpoints with the instance's key, verifying and converting exports offline.

use std::sync::Arc;
use std::time::Duration;

use llmgov_core::audit::checkpoint::CheckpointSigner;
use llmgov_store::PoolConfig;

use crate::commands::AnyError;
use crate::config::Config;

/// Verifies the logs in place without changing the database (no migrations, no bootstrap).
pub(crate) async fn audit_verify(cfg: Config) -> Result<(), AnyError> {
    let url = cfg.database_url();
    if cfg.database.url.is_none() && !cfg.data_dir.join("llmgov.db").exists() {
        return Err(format!(
            "no database at {}",
            cfg.data_dir.join("llmgov.db").display()
        )
        .into());
    }
    let store = llmgov_store::open(
        &url,
        &PoolConfig {
            max_connections: 2,
            ..Default::default()
        },
        false,
    )
    .await?;
    let reports = llmgov_core::audit::verify::verify_all(&*store).await?;
    let mut first_bad = None;
    for r in &reports {
        if r.valid {
            println!(
                "workspace {}: {} entries verified, head {}",
                r.workspace_id, r.verified_entries, r.head_hash
            );
        } else {
            println!(
                "workspace {}: INVALID after {} entries: {}",
                r.workspace_id,
                r.verified_entries,
                r.reason.as_deref().unwrap_or("?")
            );
            first_bad.get_or_insert(r);
        }
    }
    match first_bad {
        None => {
            println!(
                "audit trail verified: {} logs, {} entries",
                reports.len(),
                reports.iter().map(|r| r.verified_entries).sum::<i64>()
            );
            Ok(())
        }
        Some(r) => {
            println!(
                "first bad entry: workspace {} sequence {}",
                r.workspace_id,
                r.first_invalid_sequence.unwrap_or(0)
            );
            std::process::exit(1);
        }
    }
}

/// Reads the checkpoint signing key, creating it (mode 0600) on first start.
pub(crate) fn load_checkpoint_key(cfg: &Config) -> Result<CheckpointSigner, AnyError> {
    let path = cfg
        .audit
        .checkpoint_key_file
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("audit-checkpoint.key"));
    match std::fs::read(&path) {
        Ok(der) => {
            Ok(CheckpointSigner::from_pkcs8(&der)
                .map_err(|e| format!("{}: {e}", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let der = CheckpointSigner::generate_pkcs8()?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            match opts.open(&path) {
                Ok(mut f) => {
                    // Written to a fresh file: another instance reading it meanwhile sees it
                    // short and fails loudly rather than using a partial key.
                    std::io::Write::write_all(&mut f, &der)?;
                    f.sync_all()?;
                    tracing::info!(path = %path.display(), "created the audit checkpoint key");
                    Ok(CheckpointSigner::from_pkcs8(&der)?)
                }
                // Another instance created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_checkpoint_key(cfg),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
    }
}

/// Signs a checkpoint of every log that grew, then applies retention, at a fixed interval.
pub(crate) fn spawn_checkpointer(
    store: Arc<dyn llmgov_core::store::Store>,
    signer: Arc<CheckpointSigner>,
    every: Duration,
    retention: Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = llmgov_core::audit::tree::checkpoint_all(&*store, &signer).await {
                tracing::warn!(error = %e, "periodic audit checkpoint failed");
                continue;
            }
            match llmgov_core::audit::retention::prune_all(&*store, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    entries = n,
                    "audit retention pruned entries up to the latest checkpoints"
                ),
                Err(e) => tracing::warn!(error = %e, "audit retention failed"),
            }
        }
    });
}

/// Offline verification of an export: reads only the export, the checkpoint (embedded in
/// an archive) and the public key.
pub(crate) fn verify_export_offline(
    export: &std::path::Path,
    checkpoint: Option<&std::path::Path>,
    public_key: Option<&std::path::Path>,
) -> Result<(), AnyError> {
    use llmgov_core::audit::archive;
    use llmgov_core::audit::export::{ExportVerdict, verify_export};
    use std::io::BufRead;
    let Some(key_path) = public_key else {
        return Err("--export needs --public-key".into());
    };
    let cp = checkpoint.map(read_checkpoint).transpose()?;
    let key_text = std::fs::read_to_string(key_path)?;
    let key_hex = match serde_json::from_str::<serde_json::Value>(&key_text) {
        Ok(v) => v["public_key"]
            .as_str()
            .map(str::to_string)
            .ok_or("public key file has no public_key")?,
        Err(_) => key_text.trim().to_string(),
    };
    let key = llmgov_core::hex::decode(&key_hex).ok_or("public key is not hex")?;
    let mut file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(export)?);
    let is_archive = archive::is_archive(file.fill_buf()?);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (verdict, cp, unit) = if is_archive {
        let embedded = archive::read_header(&mut file)?;
        let Some(cp) = cp.or(embedded) else {
            return Err("the archive holds no checkpoint: pass --checkpoint".into());
        };
        let v = archive::verify_archive_records(file, &cp, &key, threads)?;
        (v, cp, "record")
    } else {
        let Some(cp) = cp else {
            return Err("a JSON Lines export needs --checkpoint".into());
        };
        (verify_export(file, &cp, &key)?, cp, "line")
    };
    match verdict {
        ExportVerdict::Valid { entries, complete } => {
            let what = if complete {
                "the complete log"
            } else {
                "entries with inclusion proofs"
            };
            println!(
                "export verified: {entries} entries ({what}) against checkpoint size {} root {}",
                cp.tree_size, cp.root_hash
            );
            Ok(())
        }
        ExportVerdict::BadCheckpoint(reason) => {
            println!("checkpoint INVALID: {reason}");
            std::process::exit(1);
        }
        ExportVerdict::Invalid {
            line,
            sequence,
            reason,
        } => {
            println!("export INVALID at {unit} {line}: {reason}");
            match sequence {
                Some(s) => println!("first bad entry: {unit} {line} sequence {s}"),
                None => println!("first bad entry: {unit} {line}"),
            }
            std::process::exit(1);
        }
    }
}

pub(crate) fn read_checkpoint(
    path: &std::path::Path,
) -> Result<llmgov_core::audit::checkpoint::Checkpoint, AnyError> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)
        .map_err(|e| format!("{}: not a checkpoint: {e}", path.display()))?)
}

/// `audit convert`: archive → JSON Lines, or JSON Lines → archive.
pub(crate) fn convert_export(
    input: &std::path::Path,
    output: &std::path::Path,
    checkpoint: Option<&std::path::Path>,
) -> Result<(), AnyError> {
    use llmgov_core::audit::archive;
    use llmgov_core::audit::export::ExportLine;
    use std::io::{BufRead, Write};
    let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(input)?);
    let sink: Box<dyn Write> = if output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(output)?)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let mut n = 0u64;
    let mut buf = Vec::new();
    if archive::is_archive(reader.fill_buf()?) {
        if checkpoint.is_some() {
            return Err("--checkpoint is for writing an archive; this input is one".into());
        }
        archive::read_header(&mut reader)?;
        for r in archive::Records::new(reader) {
            let (entry, proof) = r?;
            buf.clear();
            serde_json::to_writer(&mut buf, &ExportLine::from_entry(&entry, proof))?;
            buf.push(b'\n');
            out.write_all(&buf)?;
            n += 1;
        }
    } else {
        let cp = checkpoint.map(read_checkpoint).transpose()?;
        archive::write_header(&mut buf, cp.as_ref());
        out.write_all(&buf)?;
        let mut line = String::new();
        let mut at = 0u64;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            at += 1;
            if line.trim().is_empty() {
                continue;
            }
            let bad = || format!("line {at}: not an export line");
            let l: ExportLine = serde_json::from_str(&line).map_err(|_| bad())?;
            let proof = match &l.inclusion_proof {
                None => None,
                Some(p) => Some(
                    p.iter()
                        .map(|h| llmgov_core::hex::decode32(h))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(bad)?,
                ),
            };
            let entry = l.to_entry().ok_or_else(bad)?;
            buf.clear();
            archive::write_record(&mut buf, &entry, proof.as_deref());
            out.write_all(&buf)?;
            n += 1;
        }
        buf.clear();
        archive::write_end(&mut buf, n);
        out.write_all(&buf)?;
    }
    out.flush()?;
    eprintln!("converted {n} entries");
    Ok(())
}
