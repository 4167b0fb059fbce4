//! `llmgov dataset ...`: a client of a running server's Data Vault API, like `git` or
//! `lakectl`. Server and API key come from `--server`/`LLMGOV_SERVER` and
//! `--api-key`/`LLMGOV_API_KEY`.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::cli::{DatasetArgs, DatasetCommand};

mod transfer;
use transfer::{PushArgs, pull, push};

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
