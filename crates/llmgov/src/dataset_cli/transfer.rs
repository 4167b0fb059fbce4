//! Moving a dataset's records: `push` (one request, or a resumable upload in parts that
//! survives an interrupted connection) and `pull` (streamed to a file with a progress bar).

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

pub(super) struct PushArgs {
    pub branch: Option<String>,
    pub message: Option<String>,
    pub on_error: String,
    pub sources: Vec<String>,
    pub part_bytes: u64,
}

pub(super) async fn push(
    c: &Client,
    file: &Path,
    name: &str,
    args: PushArgs,
) -> Result<(), AnyError> {
    let PushArgs {
        branch,
        message,
        on_error,
        sources,
        part_bytes,
    } = args;
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let len = f.metadata().await?.len();
    let id = match c.dataset(name).await? {
        Some(d) => d["id"].as_str().unwrap_or_default().to_string(),
        None => {
            let (_, d) = c
                .json(
                    c.req(reqwest::Method::POST, "/api/v1/datasets")
                        .json(&json!({"name": name, "format": format_of(file)})),
                )
                .await?;
            eprintln!("created dataset {name}");
            d["id"].as_str().unwrap_or_default().to_string()
        }
    };
    let mut q = format!("?on_error={}", enc(&on_error));
    if let Some(b) = &branch {
        q.push_str(&format!("&branch={}", enc(b)));
    }
    if let Some(m) = &message {
        q.push_str(&format!("&message={}", enc(m)));
    }
    if !sources.is_empty() {
        q.push_str(&format!("&source={}", enc(&sources.join(","))));
    }
    if len > part_bytes {
        let (status, r) = push_resumable(c, file, &id, len, part_bytes, &q).await?;
        return report_push(status, r);
    }
    let pb = bar(Some(len), "push");
    let pb2 = pb.clone();
    let stream = futures_util::stream::unfold(f, move |mut f| {
        let pb = pb2.clone();
        async move {
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    pb.inc(n as u64);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        }
    });
    let req = c
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/datasets/{id}/import{q}"),
        )
        .header("content-length", len)
        .body(reqwest::Body::wrap_stream(stream));
    let res = c.json(req).await;
    pb.finish_and_clear();
    let (status, r) = res?;
    report_push(status, r)
}

fn report_push(status: reqwest::StatusCode, r: Value) -> Result<(), AnyError> {
    let s = &r["stats"];
    if status == reqwest::StatusCode::OK {
        println!(
            "no change: {} is already at {}",
            r["branch"].as_str().unwrap_or(""),
            r["commit"]["id"].as_str().unwrap_or("")
        );
    } else {
        println!(
            "[{} {}] {} records ({} unchanged), {} bytes stored",
            r["branch"].as_str().unwrap_or(""),
            &r["commit"]["id"].as_str().unwrap_or("")
                [..12.min(r["commit"]["id"].as_str().unwrap_or("").len())],
            s["records"],
            s["reused_records"],
            s["new_bytes"]
        );
    }
    if r["skipped_count"].as_u64().unwrap_or(0) > 0 {
        eprintln!("skipped {} malformed line(s):", r["skipped_count"]);
        for l in r["skipped"].as_array().cloned().unwrap_or_default() {
            eprintln!(
                "  line {}: {}",
                l["line"],
                l["error"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// Downloads into a temporary file beside `out` and renames it when every byte arrived,
/// so an interrupted pull never leaves a file that looks complete.
pub(super) async fn pull(
    c: &Client,
    name: &str,
    reference: Option<&str>,
    format: Option<&str>,
    profile: Option<&str>,
    out: &PathBuf,
) -> Result<(), AnyError> {
    let id = c.dataset_id(name).await?;
    let mut q = vec![];
    if let Some(r) = reference {
        q.push(format!("ref={}", enc(r)));
    }
    if let Some(p) = profile {
        q.push(format!("profile={}", enc(p)));
    }
    if let Some(f) = format.or_else(|| format_for_output(out)) {
        q.push(format!("format={}", enc(f)));
    }
    let q = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    let resp = c
        .req(
            reqwest::Method::GET,
            &format!("/api/v1/datasets/{id}/export{q}"),
        )
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(server_error(status, &resp.json().await.unwrap_or(Value::Null)).into());
    }
    let expected = resp.content_length();
    let commit = resp
        .headers()
        .get("x-llmgov-commit")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let tmp = out.with_extension("llmgov-partial");
    let mut f = tokio::fs::File::create(&tmp).await?;
    let pb = bar(expected, "pull");
    let mut got = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("the transfer failed after {got} bytes: {e}"))?;
        f.write_all(&chunk).await?;
        got += chunk.len() as u64;
        pb.set_position(got);
    }
    f.flush().await?;
    f.sync_all().await?;
    pb.finish_and_clear();
    if let Some(n) = expected
        && n != got
    {
        return Err(format!(
            "the transfer ended after {got} of {n} bytes; {} was not written",
            out.display()
        )
        .into());
    }
    tokio::fs::rename(&tmp, out).await?;
    println!(
        "{} bytes of {name} at {commit} written to {}",
        got,
        out.display()
    );
    Ok(())
}

/// Where the state of a resumable upload of `file` to dataset `id` is kept between runs:
/// `LLMGOV_UPLOAD_STATE_DIR`, else `$XDG_CACHE_HOME/llmgov/uploads`, else
/// `~/.cache/llmgov/uploads`. The name commits to the file's path, size and modification
/// time, so a changed file starts afresh.
fn upload_state_path(id: &str, file: &Path, len: u64) -> Option<PathBuf> {
    let dir = std::env::var_os("LLMGOV_UPLOAD_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("llmgov/uploads"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/llmgov/uploads"))
        })?;
    let canon = std::fs::canonicalize(file).ok()?;
    let mtime = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let key = blake3::hash(format!("{id}\0{}\0{len}\0{mtime}", canon.display()).as_bytes());
    Some(dir.join(format!("{}.json", &key.to_hex()[..32])))
}

/// Sends `file` as parts of a resumable upload and commits it. The upload's id is kept in
/// a state file until the commit, so that running the same command after an interruption
/// asks the server how much arrived and sends only the rest.
async fn push_resumable(
    c: &Client,
    file: &Path,
    id: &str,
    len: u64,
    part_bytes: u64,
    query: &str,
) -> Result<(reqwest::StatusCode, Value), AnyError> {
    use tokio::io::AsyncSeekExt;
    let state = upload_state_path(id, file, len);
    let base = format!("/api/v1/datasets/{id}/uploads");
    let mut resumed = None;
    if let Some(s) = &state
        && let Ok(text) = std::fs::read_to_string(s)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && let Some(upload) = v["upload_id"].as_str()
    {
        // Gone or expired on the server: start again.
        if let Ok((_, st)) = c
            .json(c.req(reqwest::Method::GET, &format!("{base}/{upload}")))
            .await
        {
            resumed = Some((upload.to_string(), st["received"].as_u64().unwrap_or(0)));
        }
    }
    let (upload, mut offset) = match resumed {
        Some((u, received)) => {
            eprintln!("resuming upload {u} at {received} of {len} bytes");
            (u, received)
        }
        None => {
            let (_, st) = c
                .json(c.req(reqwest::Method::POST, &base).json(&json!({})))
                .await?;
            let u = st["upload_id"]
                .as_str()
                .ok_or("the server did not start an upload")?
                .to_string();
            if let Some(s) = &state {
                if let Some(dir) = s.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(s, json!({"upload_id": u, "dataset_id": id}).to_string())?;
            }
            (u, 0)
        }
    };
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let pb = bar(Some(len), "push");
    pb.set_position(offset);
    let interrupted = |at: u64, e: &dyn std::fmt::Display| {
        format!(
            "the upload was interrupted after {at} of {len} bytes ({e}); run the same command again to resume"
        )
    };
    while offset < len {
        let want = part_bytes.min(len - offset) as usize;
        let mut buf = vec![0u8; want];
        f.read_exact(&mut buf).await?;
        let r = c
            .json(
                c.req(
                    reqwest::Method::PUT,
                    &format!("{base}/{upload}?offset={offset}"),
                )
                .body(buf),
            )
            .await;
        match r {
            Ok((_, st)) => {
                offset = st["received"].as_u64().unwrap_or(offset + want as u64);
                pb.set_position(offset);
            }
            Err(e) => {
                pb.abandon();
                return Err(interrupted(offset, &e).into());
            }
        }
    }
    pb.finish_and_clear();
    let r = c
        .json(c.req(
            reqwest::Method::POST,
            &format!("{base}/{upload}/commit{query}"),
        ))
        .await;
    // Committed, or refused for its content (the server dropped the parts): forget it.
    let done = match &r {
        Ok(_) => true,
        Err(e) => e.to_string().contains("422"),
    };
    if done && let Some(s) = &state {
        let _ = std::fs::remove_file(s);
    }
    r
}
