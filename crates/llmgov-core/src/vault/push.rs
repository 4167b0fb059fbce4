//! Writing versions: a streamed JSON Lines import, or records appended as JSON.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::ingest::{Ingest, IngestStats, write_manifest};
use super::jsonl::{LineSplitter, SchemaInference, check_record, is_blank};
use super::manifest::Manifest;
use super::model::{Commit, Dataset, DatasetFormat, RefName};
use super::service::{VaultService, need};
pub use super::sources::SourceRef;
use super::store::BranchUpdate;
use crate::access::Action;
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::time::now;
use crate::{CoreError, Result};

str_enum!(
    /// What an import does with a malformed record: `reject` the whole import (default) or
    /// `skip` the line and report it.
    OnError, "on_error" {
        Reject => "reject",
        Skip => "skip",
    }
);

/// Lines reported per import.
const MAX_REPORTED: usize = 100;

/// A malformed line of an import.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BadLine {
    pub line: u64,
    pub error: String,
}

/// A version about to be committed.
pub(super) struct NewVersion<'a> {
    pub branch: RefName,
    /// The branch head it replaces (`None`: the branch is created).
    pub head: Option<Commit>,
    /// The head's manifest, to detect a version equal to it.
    pub parent: Option<&'a Manifest>,
    pub manifest: Manifest,
    pub stats: IngestStats,
    pub schema: SchemaInference,
    pub message: Option<String>,
    pub transformation: serde_json::Value,
    /// The second parent of a merge.
    pub merged: Option<super::model::CommitId>,
}

/// Where and how a push writes.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub branch: Option<String>,
    pub message: Option<String>,
    pub on_error: OnError,
    /// Versions of other datasets the pushed data was made from (lineage).
    pub sources: Vec<SourceRef>,
}

/// The outcome of a push.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResult {
    pub commit: Commit,
    pub branch: String,
    /// False when the records equal the branch head's: no commit was made.
    pub changed: bool,
    pub stats: IngestStats,
    /// Malformed lines skipped (`on_error=skip`; at most 100 listed).
    pub skipped: Vec<BadLine>,
    pub skipped_count: u64,
    pub blank_lines: u64,
}

impl VaultService {
    /// The branch a push writes to, checked for the caller: protected branches need
    /// `datasets:delete`.
    pub(super) async fn target(
        &self,
        p: &Principal,
        d: &Dataset,
        branch: Option<&str>,
    ) -> Result<(RefName, Option<Commit>)> {
        let name = RefName::parse(branch.unwrap_or(&d.default_branch))?;
        let head = match self.branch(d, name.as_str()).await? {
            Some(r) => {
                if r.protected {
                    need(p, Action::Delete).map_err(|_| CoreError::Forbidden {
                        permission: "datasets:delete (protected branch)".into(),
                    })?;
                }
                Some(
                    self.store
                        .get_commit(d.workspace_id, d.id, r.commit_id.as_str())
                        .await?,
                )
            }
            None => {
                if self
                    .store
                    .get_ref(d.workspace_id, d.id, name.as_str())
                    .await?
                    .is_some()
                {
                    return Err(CoreError::invalid("branch", "that name is a tag"));
                }
                // A new branch other than the default starts from the default branch.
                if name.as_str() != d.default_branch {
                    return Err(CoreError::not_found("ref"));
                }
                None
            }
        };
        Ok((name, head))
    }

    /// Imports a stream in the dataset's format (JSON Lines, CSV or Parquet) as the new
    /// version of a branch (records the branch head already holds are not stored again).
    pub async fn push<S, E>(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        opts: PushOptions,
        body: S,
    ) -> Result<PushResult>
    where
        S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let body = body.map(|c| {
            c.map_err(|e| CoreError::invalid("body", format!("the upload was interrupted: {e}")))
        });
        if d.format == DatasetFormat::Parquet {
            return self.push_parquet(p, ctx, d, opts, body).await;
        }
        self.push_records(p, ctx, d, opts, d.format, None, body)
            .await
    }

    /// Imports records split by `split_as`; `header` (Parquet: the schema) is kept in the
    /// version's manifest.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn push_records<S>(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        opts: PushOptions,
        split_as: DatasetFormat,
        header: Option<Vec<u8>>,
        body: S,
    ) -> Result<PushResult>
    where
        S: Stream<Item = Result<bytes::Bytes>> + Unpin,
    {
        let (branch, head) = self.target(p, d, opts.branch.as_deref()).await?;
        let sources = self.resolve_sources(p, d, &opts.sources).await?;
        let parent = match &head {
            Some(c) => Some(self.manifest_of(d, c).await?),
            None => None,
        };
        let dek = self.dek(d).await?;
        let mut ingest = Ingest::new(
            Self::owner(d),
            Arc::clone(&dek),
            Arc::clone(&self.objects),
            self.cfg.ingest.clone(),
            parent.as_ref(),
        )
        .await?;
        let mut lines = Lines {
            ingest: &mut ingest,
            schema: SchemaInference::from_schema(&d.schema),
            bad: vec![],
            bad_count: 0,
            blank: 0,
            on_error: opts.on_error,
            header: None,
        };
        let mut split = Splitter::new(split_as, self.cfg.max_record_bytes)?;
        let mut body = body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            split.feed(&chunk, &mut lines)?;
            lines.ingest.throttle().await?;
            if opts.on_error == OnError::Reject && lines.bad.len() >= MAX_REPORTED {
                break;
            }
        }
        split.finish(&mut lines)?;
        let Lines {
            schema,
            bad,
            bad_count,
            blank,
            header: csv_header,
            ..
        } = lines;
        let header = header.or(csv_header);
        if opts.on_error == OnError::Reject && !bad.is_empty() {
            return Err(invalid_records(bad, bad_count));
        }
        let header = match (d.format, header) {
            (DatasetFormat::Csv, None) => {
                return Err(CoreError::Unprocessable {
                    code: "INVALID_RECORDS",
                    message: "the CSV has no header row".into(),
                    details: Default::default(),
                });
            }
            (_, h) => h.unwrap_or_default(),
        };
        let (manifest, stats) = ingest.finish(d.format, header).await?;
        let mut transformation = serde_json::json!({ "type": "import", "format": d.format });
        if !sources.is_empty() {
            transformation["sources"] = serde_json::Value::Array(sources);
        }
        let mut result = self
            .commit_version(
                p,
                ctx,
                d,
                NewVersion {
                    branch,
                    head,
                    parent: parent.as_ref(),
                    manifest,
                    stats,
                    schema,
                    message: opts.message,
                    transformation,
                    merged: None,
                },
            )
            .await?;
        result.skipped = bad;
        result.skipped_count = bad_count;
        result.blank_lines = blank;
        Ok(result)
    }

    /// Appends records (JSON objects) to a branch.
    pub async fn append(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        branch: Option<&str>,
        message: Option<String>,
        records: &[serde_json::Value],
    ) -> Result<PushResult> {
        if records.is_empty() {
            return Err(CoreError::invalid("records", "at least one record"));
        }
        let (branch, head) = self.target(p, d, branch).await?;
        let parent = match &head {
            Some(c) => Some(self.manifest_of(d, c).await?),
            None => None,
        };
        let dek = self.dek(d).await?;
        let (owner, objects, cfg) = (
            Self::owner(d),
            Arc::clone(&self.objects),
            self.cfg.ingest.clone(),
        );
        let mut ingest = match &parent {
            Some(m) => Ingest::appending(owner, dek, objects, cfg, m),
            None => Ingest::new(owner, dek, objects, cfg, None).await?,
        };
        let mut schema = SchemaInference::from_schema(&d.schema);
        // CSV: the columns of the head, or of the first record on an empty branch.
        let (header, columns) = match (d.format, &parent) {
            (DatasetFormat::Csv, Some(m)) => (m.header.clone(), super::csv::parse_row(&m.header)),
            (DatasetFormat::Csv, None) => {
                let cols: Vec<String> = records[0]
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
                (super::csv::write_row(&refs), cols)
            }
            (DatasetFormat::Jsonl, _) => (vec![], vec![]),
            (DatasetFormat::Parquet, Some(m)) if !m.header.is_empty() => (m.header.clone(), vec![]),
            (DatasetFormat::Parquet, _) => {
                // An empty branch: the schema is inferred from the records given.
                let mut sample = Vec::new();
                for r in records {
                    serde_json::to_writer(&mut sample, r).map_err(CoreError::internal)?;
                    sample.push(b'\n');
                }
                let schema = super::parquet::ParquetEncoder::infer(&sample)?;
                (super::parquet::encode_schema(&schema)?, vec![])
            }
        };
        let mut fits = match d.format {
            DatasetFormat::Parquet => Some(super::parquet::RecordCheck::new(
                super::parquet::decode_schema(&header)?,
            )?),
            _ => None,
        };
        for c in &columns {
            schema.column(c);
        }
        for (i, r) in records.iter().enumerate() {
            let field = || format!("records[{i}]");
            let Some(obj) = r.as_object() else {
                return Err(CoreError::invalid(
                    field(),
                    "a record must be a JSON object",
                ));
            };
            let line = match d.format {
                DatasetFormat::Csv => {
                    csv_row(obj, &columns).map_err(|m| CoreError::invalid(field(), m))?
                }
                _ => serde_json::to_vec(r).map_err(CoreError::internal)?,
            };
            if let Some(c) = &mut fits {
                c.check(&line).map_err(|m| CoreError::invalid(field(), m))?;
            }
            if line.len() > self.cfg.max_record_bytes {
                return Err(CoreError::invalid(
                    field(),
                    "the record is larger than the largest record accepted",
                ));
            }
            if d.format != DatasetFormat::Csv && schema.wants_more() {
                schema.observe(&line);
            }
            ingest.add(&line);
            ingest.throttle().await?;
        }
        let (manifest, stats) = ingest.finish(d.format, header).await?;
        let transformation = serde_json::json!({ "type": "append", "records": records.len() });
        self.commit_version(
            p,
            ctx,
            d,
            NewVersion {
                branch,
                head,
                parent: parent.as_ref(),
                manifest,
                stats,
                schema,
                message,
                transformation,
                merged: None,
            },
        )
        .await
    }

    /// Stores the manifest and moves the branch (compare-and-swap from `v.head`).
    pub(super) async fn commit_version(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        v: NewVersion<'_>,
    ) -> Result<PushResult> {
        let NewVersion {
            branch,
            head,
            parent,
            manifest,
            mut stats,
            schema,
            message,
            transformation,
            merged,
        } = v;
        if let (Some(h), Some(pm)) = (&head, parent)
            && same_records(pm, &manifest)
        {
            return Ok(PushResult {
                commit: h.clone(),
                branch: branch.as_str().into(),
                changed: false,
                stats,
                skipped: vec![],
                skipped_count: 0,
                blank_lines: 0,
            });
        }
        let message = message.unwrap_or_default();
        if message.chars().count() > 4096 {
            return Err(CoreError::invalid("message", "at most 4096 characters"));
        }
        let dek = self.dek(d).await?;
        let (mid, mbytes) = write_manifest(
            &*self.objects,
            dek,
            Self::owner(d),
            &manifest,
            self.cfg.ingest.zstd_level,
        )
        .await?;
        stats.new_bytes += mbytes;
        let schema = schema.schema();
        let mut c = Commit {
            id: super::model::CommitId(String::new()),
            dataset_id: d.id,
            parents: head.iter().map(|h| h.id.clone()).chain(merged).collect(),
            message,
            author_id: Some(p.user_id),
            author: p.email.clone(),
            created_at: now(),
            manifest: mid.hex(),
            record_count: manifest.records,
            byte_count: manifest.bytes,
            new_bytes: stats.new_bytes,
            transformation,
            schema: schema.clone(),
            depth: head.as_ref().map_or(1, |h| h.depth + 1),
        };
        c.id = c.compute_id();
        let audit = AuditDraft::new(d.workspace_id, ctx, "datasets.commit", "datasets")
            .resource("dataset", d.id)
            .details(serde_json::json!({
                "commit": c.id, "branch": branch.as_str(), "parents": c.parents,
                "records": c.record_count, "new_bytes": c.new_bytes,
                "reused_records": stats.reused_records,
            }));
        let schema_changed = schema != d.schema;
        self.store
            .commit(
                d.workspace_id,
                &c,
                BranchUpdate {
                    branch: branch.as_str(),
                    expected: head.as_ref().map(|h| &h.id),
                },
                schema_changed.then_some(&schema),
                audit,
            )
            .await?;
        Ok(PushResult {
            commit: c,
            branch: branch.as_str().into(),
            changed: true,
            stats,
            skipped: vec![],
            skipped_count: 0,
            blank_lines: 0,
        })
    }
}

/// The state of an import between lines.
struct Lines<'a> {
    ingest: &'a mut Ingest,
    schema: SchemaInference,
    bad: Vec<BadLine>,
    bad_count: u64,
    blank: u64,
    on_error: OnError,
    /// CSV: the header row's bytes and column count, once seen.
    header: Option<Vec<u8>>,
}

/// Splits a body into records in the dataset's format.
enum Splitter {
    Jsonl(LineSplitter),
    Csv(Box<super::csv::CsvSplitter>, usize),
}

impl Splitter {
    fn new(format: DatasetFormat, max: usize) -> Result<Self> {
        match format {
            DatasetFormat::Jsonl => Ok(Self::Jsonl(LineSplitter::new(max))),
            DatasetFormat::Csv => Ok(Self::Csv(Box::new(super::csv::CsvSplitter::new(max)), 0)),
            // Parquet arrives here already turned into JSON Lines.
            DatasetFormat::Parquet => Ok(Self::Jsonl(LineSplitter::new(max))),
        }
    }

    fn feed(&mut self, chunk: &[u8], lines: &mut Lines) -> Result<()> {
        match self {
            Splitter::Jsonl(s) => s.feed(chunk, &mut |n, l| {
                lines.take(n, l);
                Ok(())
            }),
            Splitter::Csv(s, columns) => s.feed(chunk, &mut |n, raw, f| {
                lines.take_row(n, raw, f, columns);
                Ok(())
            }),
        }
    }

    fn finish(self, lines: &mut Lines) -> Result<()> {
        match self {
            Splitter::Jsonl(s) => s.finish(&mut |n, l| {
                lines.take(n, l);
                Ok(())
            }),
            Splitter::Csv(mut s, mut columns) => s.feed(b"", &mut |n, raw, f| {
                lines.take_row(n, raw, f, &mut columns);
                Ok(())
            }),
        }
    }
}

/// A JSON object as a CSV row of `columns` (every key must be a column; scalars only).
fn csv_row(
    obj: &serde_json::Map<String, serde_json::Value>,
    columns: &[String],
) -> std::result::Result<Vec<u8>, String> {
    if let Some(k) = obj.keys().find(|k| !columns.contains(k)) {
        return Err(format!(
            "{k:?} is not a column of this dataset ({})",
            columns.join(", ")
        ));
    }
    let mut values = Vec::with_capacity(columns.len());
    for c in columns {
        values.push(match obj.get(c) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
            Some(_) => return Err(format!("column {c:?} takes a string, number or boolean")),
        });
    }
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    Ok(super::csv::write_row(&refs))
}

impl Lines<'_> {
    /// Validates one line and adds it; after a malformed line under `reject`, lines are
    /// still checked (to report them) but nothing more is stored.
    fn take(&mut self, n: u64, l: &[u8]) {
        if is_blank(l) {
            self.blank += 1;
            return;
        }
        if let Err(error) = check_record(l) {
            self.bad_line(n, error);
            return;
        }
        if self.on_error == OnError::Reject && self.bad_count > 0 {
            return;
        }
        if self.schema.wants_more() {
            self.schema.observe(l);
        }
        self.ingest.add(l);
    }

    fn bad_line(&mut self, line: u64, error: String) {
        self.bad_count += 1;
        if self.bad.len() < MAX_REPORTED {
            self.bad.push(BadLine { line, error });
        }
    }

    /// One CSV row: the first is the header (named, distinct columns); every other row
    /// must have as many fields.
    fn take_row(&mut self, n: u64, raw: &[u8], f: &super::csv::Fields, columns: &mut usize) {
        if self.header.is_none() {
            let names: Vec<String> = (0..f.len())
                .map(|i| String::from_utf8_lossy(f.get(i)).into_owned())
                .collect();
            let distinct: std::collections::HashSet<&String> = names.iter().collect();
            if names.iter().any(|c| c.trim().is_empty()) || distinct.len() != names.len() {
                self.bad_line(
                    n,
                    "the header row needs distinct, non-empty column names".into(),
                );
            }
            for c in &names {
                self.schema.column(c);
            }
            *columns = f.len();
            self.header = Some(raw.to_vec());
            return;
        }
        if f.len() != *columns {
            self.bad_line(
                n,
                format!("the row has {} fields, the header {}", f.len(), columns),
            );
            return;
        }
        if std::str::from_utf8(raw).is_err() {
            self.bad_line(n, "the row is not UTF-8".into());
            return;
        }
        if self.on_error == OnError::Reject && self.bad_count > 0 {
            return;
        }
        self.ingest.add(raw);
    }
}

fn invalid_records(bad: Vec<BadLine>, count: u64) -> CoreError {
    let first = bad[0].line;
    CoreError::Unprocessable {
        code: "INVALID_RECORDS",
        message: format!(
            "{count} malformed record(s), the first on line {first}; nothing was committed (use on_error=skip to skip them)"
        ),
        details: [
            (
                "lines".to_string(),
                serde_json::to_value(&bad).unwrap_or_default(),
            ),
            ("count".to_string(), count.into()),
        ]
        .into_iter()
        .collect(),
    }
}

/// Whether two versions hold the same records in the same order.
fn same_records(a: &Manifest, b: &Manifest) -> bool {
    a.records == b.records && a.segments(0, a.records) == b.segments(0, b.records)
}
