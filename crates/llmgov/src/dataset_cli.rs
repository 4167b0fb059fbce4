//! `llmgov dataset ...`: a client of a running server's Data Vault API, like `git` or
//! `lakectl`. Server and API key come from `--server`/`LLMGOV_SERVER` and
//! `--api-key`/`LLMGOV_API_KEY`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{DatasetArgs, DatasetCommand};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

impl Client {
    fn new(args: &DatasetArgs) -> Result<Self, AnyError> {
        let base = args
            .server
            .clone()
            .ok_or("no server: pass --server URL or set LLMGOV_SERVER")?;
        let key = args
            .api_key
            .clone()
            .ok_or("no API key: pass --api-key KEY or set LLMGOV_API_KEY")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            http: reqwest::Client::builder()
                .user_agent(concat!("llmgov-cli/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    /// Sends and returns the JSON body, or the server's error as a readable message.
    async fn json(
        &self,
        r: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Value), AnyError> {
        let resp = r.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(server_error(status, &body).into());
        }
        Ok((status, body))
    }

    async fn dataset(&self, name: &str) -> Result<Option<Value>, AnyError> {
        let (_, b) = self
            .json(self.req(
                reqwest::Method::GET,
                &format!("/api/v1/datasets?name={}", enc(name)),
            ))
            .await?;
        Ok(b["items"].as_array().and_then(|a| a.first()).cloned())
    }

    async fn dataset_id(&self, name: &str) -> Result<String, AnyError> {
        let d = self
            .dataset(name)
            .await?
            .ok_or_else(|| format!("no dataset named {name:?}"))?;
        Ok(d["id"].as_str().unwrap_or_default().to_string())
    }
}

fn server_error(status: reqwest::StatusCode, body: &Value) -> String {
    let e = &body["error"];
    let mut msg = format!(
        "{} {}: {}",
        status.as_u16(),
        e["code"].as_str().unwrap_or("ERROR"),
        e["message"]
            .as_str()
            .unwrap_or("the server refused the request")
    );
    if let Some(cs) = e["details"]["conflicts"].as_array() {
        for c in cs.iter().take(20) {
            msg.push_str(&format!(
                "\n  conflict: base records {}..{}, ours {}..{}, theirs {}..{}",
                c["base"]["from"],
                c["base"]["to"],
                c["ours"]["from"],
                c["ours"]["to"],
                c["theirs"]["from"],
                c["theirs"]["to"]
            ));
        }
    }
    if let Some(lines) = e["details"]["lines"].as_array() {
        for l in lines.iter().take(20) {
            msg.push_str(&format!(
                "\n  line {}: {}",
                l["line"],
                l["error"].as_str().unwrap_or("")
            ));
        }
    }
    msg
}

/// The format a new dataset gets from its first file's extension.
fn format_of(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => "csv",
        Some("parquet" | "pq") => "parquet",
        _ => "jsonl",
    }
}

/// The export format an output file asks for by its extension (`None`: the dataset's).
fn format_for_output(file: &Path) -> Option<&'static str> {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Some("csv"),
        Some("parquet" | "pq") => Some("parquet"),
        Some("jsonl" | "ndjson") => Some("jsonl"),
        _ => None,
    }
}

fn report_commit(r: Result<(reqwest::StatusCode, Value), AnyError>) -> Result<(), AnyError> {
    let (status, r) = r?;
    let id = r["commit"]["id"].as_str().unwrap_or("");
    if status == reqwest::StatusCode::OK {
        println!(
            "no change: {} is already at {id}",
            r["branch"].as_str().unwrap_or("")
        );
    } else {
        println!(
            "[{} {}] {} records",
            r["branch"].as_str().unwrap_or(""),
            &id[..12.min(id.len())],
            r["stats"]["records"]
        );
    }
    Ok(())
}

fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("template"),
    );
    pb.set_message(what.to_string());
    pb
}

pub async fn run(args: DatasetArgs) -> Result<(), AnyError> {
    let c = Client::new(&args)?;
    match args.command {
        DatasetCommand::Push {
            file,
            dataset,
            branch,
            message,
            on_error,
            sources,
            part_mib,
        } => {
            let opts = PushArgs {
                branch,
                message,
                on_error,
                sources,
                part_bytes: part_mib << 20,
            };
            push(&c, &file, &dataset, opts).await
        }
        DatasetCommand::Delete { name, force } => {
            let id = c.dataset_id(&name).await?;
            let q = if force { "?force=true" } else { "" };
            c.json(c.req(
                reqwest::Method::DELETE,
                &format!("/api/v1/datasets/{id}{q}"),
            ))
            .await?;
            println!("deleted dataset {name}");
            Ok(())
        }
        DatasetCommand::Pull {
            name,
            reference,
            output,
            format,
            profile,
        } => {
            pull(
                &c,
                &name,
                reference.as_deref(),
                format.as_deref(),
                profile.as_deref(),
                &output,
            )
            .await
        }
        DatasetCommand::Pii {
            name,
            reference,
            json,
        } => {
            let id = c.dataset_id(&name).await?;
            let q = reference
                .map(|r| format!("?ref={}", enc(&r)))
                .unwrap_or_default();
            let (_, b) = c
                .json(c.req(
                    reqwest::Method::GET,
                    &format!("/api/v1/datasets/{id}/pii{q}"),
                ))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&b)?);
                return Ok(());
            }
            let commit = b["commit"].as_str().unwrap_or("");
            println!(
                "{name}@{}: {} findings in {} of {} records",
                &commit[..12.min(commit.len())],
                b["total"],
                b["records_with_pii"],
                b["records"]
            );
            for (t, n) in b["counts"].as_object().cloned().unwrap_or_default() {
                println!("  {t:<20} {n}");
            }
            for (field, counts) in b["fields"].as_object().cloned().unwrap_or_default() {
                let parts: Vec<String> = counts
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect();
                println!(
                    "  field {}: {}",
                    if field.is_empty() { "(record)" } else { &field },
                    parts.join(", ")
                );
            }
            Ok(())
        }
        DatasetCommand::Anonymize {
            name,
            profile,
            target,
            reference,
        } => {
            let id = c.dataset_id(&name).await?;
            let (_, b) = c
                .json(
                    c.req(
                        reqwest::Method::POST,
                        &format!("/api/v1/datasets/{id}/anonymize"),
                    )
                    .json(&json!({"profile": profile, "target": target, "ref": reference})),
                )
                .await?;
            let commit = b["push"]["commit"]["id"].as_str().unwrap_or("");
            let source = b["source_commit"].as_str().unwrap_or("");
            if b["push"]["changed"] == true {
                println!(
                    "{target}@{} made from {name}@{} with the profile {profile}{}",
                    &commit[..12.min(commit.len())],
                    &source[..12.min(source.len())],
                    if b["created"] == true {
                        " (new dataset)"
                    } else {
                        ""
                    }
                );
            } else {
                println!(
                    "{target} already holds {name}@{} anonymized with {profile}",
                    &source[..12.min(source.len())]
                );
            }
            Ok(())
        }
        DatasetCommand::Log {
            name,
            reference,
            limit,
        } => {
            let id = c.dataset_id(&name).await?;
            let mut q = format!("?limit={limit}");
            if let Some(r) = reference {
                q.push_str(&format!("&ref={}", enc(&r)));
            }
            let (_, b) = c
                .json(c.req(
                    reqwest::Method::GET,
                    &format!("/api/v1/datasets/{id}/commits{q}"),
                ))
                .await?;
            for cm in b["items"].as_array().cloned().unwrap_or_default() {
                println!(
                    "commit {}\nAuthor: {}\nDate:   {}\nRecords: {}\n\n    {}\n",
                    cm["id"].as_str().unwrap_or(""),
                    cm["author"].as_str().unwrap_or(""),
                    cm["created_at"].as_str().unwrap_or(""),
                    cm["record_count"],
                    cm["message"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        DatasetCommand::Diff {
            name,
            from,
            to,
            limit,
        } => {
            let id = c.dataset_id(&name).await?;
            let (_, b) = c
                .json(c.req(
                    reqwest::Method::GET,
                    &format!(
                        "/api/v1/datasets/{id}/diff?from={}&to={}&limit={}",
                        enc(&from),
                        enc(&to),
                        limit.clamp(1, 200)
                    ),
                ))
                .await?;
            let s = &b["summary"];
            println!(
                "{} -> {}: {} added, {} removed, {} changed, {} unchanged",
                &b["from"].as_str().unwrap_or("")[..12.min(b["from"].as_str().unwrap_or("").len())],
                &b["to"].as_str().unwrap_or("")[..12.min(b["to"].as_str().unwrap_or("").len())],
                s["added"],
                s["removed"],
                s["changed"],
                s["unchanged"]
            );
            for f in b["schema"]["added_fields"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                println!("schema: + {}", f.as_str().unwrap_or(""));
            }
            for f in b["schema"]["removed_fields"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                println!("schema: - {}", f.as_str().unwrap_or(""));
            }
            for e in b["items"].as_array().cloned().unwrap_or_default() {
                let at = |v: &Value| {
                    v.as_u64()
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into())
                };
                println!(
                    "{:8} {:>8} {:>8}",
                    e["op"].as_str().unwrap_or(""),
                    at(&e["from_index"]),
                    at(&e["to_index"])
                );
            }
            if b["has_more"] == true {
                println!("... {} entries in all", b["total"]);
            }
            Ok(())
        }
        DatasetCommand::Merge {
            name,
            source,
            into,
            message,
        } => {
            let id = c.dataset_id(&name).await?;
            let body = json!({"source": source, "target": into, "message": message});
            let r = c
                .json(
                    c.req(
                        reqwest::Method::POST,
                        &format!("/api/v1/datasets/{id}/merge"),
                    )
                    .json(&body),
                )
                .await;
            report_commit(r)
        }
        DatasetCommand::Revert {
            name,
            commit,
            branch,
            message,
        } => {
            let id = c.dataset_id(&name).await?;
            let body = json!({"commit": commit, "branch": branch, "message": message});
            let r = c
                .json(
                    c.req(
                        reqwest::Method::POST,
                        &format!("/api/v1/datasets/{id}/revert"),
                    )
                    .json(&body),
                )
                .await;
            report_commit(r)
        }
        DatasetCommand::List => {
            let (_, b) = c
                .json(c.req(reqwest::Method::GET, "/api/v1/datasets?limit=200"))
                .await?;
            for d in b["items"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{}\t{}\t{}",
                    d["name"].as_str().unwrap_or(""),
                    d["format"].as_str().unwrap_or(""),
                    d["id"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        DatasetCommand::Branch {
            name,
            create,
            from,
            delete,
        } => {
            let id = c.dataset_id(&name).await?;
            if let Some(b) = create {
                c.json(
                    c.req(
                        reqwest::Method::POST,
                        &format!("/api/v1/datasets/{id}/branches"),
                    )
                    .json(&json!({"name": b, "from": from})),
                )
                .await?;
                println!("created branch {b}");
            } else if let Some(b) = delete {
                let r = c
                    .req(
                        reqwest::Method::DELETE,
                        &format!("/api/v1/datasets/{id}/branches/{}", enc(&b)),
                    )
                    .send()
                    .await?;
                if !r.status().is_success() {
                    let s = r.status();
                    return Err(server_error(s, &r.json().await.unwrap_or(Value::Null)).into());
                }
                println!("deleted branch {b}");
            } else {
                let (_, l) = c
                    .json(c.req(
                        reqwest::Method::GET,
                        &format!("/api/v1/datasets/{id}/branches"),
                    ))
                    .await?;
                for r in l.as_array().cloned().unwrap_or_default() {
                    println!(
                        "{}\t{}{}",
                        r["name"].as_str().unwrap_or(""),
                        r["commit_id"].as_str().unwrap_or(""),
                        if r["protected"] == true {
                            "\tprotected"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(())
        }
        DatasetCommand::Tag {
            name,
            tag,
            reference,
        } => {
            let id = c.dataset_id(&name).await?;
            let (_, r) = c
                .json(
                    c.req(
                        reqwest::Method::POST,
                        &format!("/api/v1/datasets/{id}/tags"),
                    )
                    .json(&json!({"name": tag, "from": reference})),
                )
                .await?;
            println!("tagged {} as {tag}", r["commit_id"].as_str().unwrap_or(""));
            Ok(())
        }
    }
}

struct PushArgs {
    branch: Option<String>,
    message: Option<String>,
    on_error: String,
    sources: Vec<String>,
    part_bytes: u64,
}

async fn push(c: &Client, file: &Path, name: &str, args: PushArgs) -> Result<(), AnyError> {
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
async fn pull(
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
