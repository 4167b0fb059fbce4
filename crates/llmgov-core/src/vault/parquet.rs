//! Parquet datasets. A Parquet file keeps its directory in a footer, so an upload is
//! spooled to an anonymous temporary file (memory stays bounded; the file is gone when the
//! import ends, whatever happens) and then read one batch of rows at a time. Each row is
//! stored as a JSON record, like a JSON Lines record, so that deduplication, diffs, merges
//! and the records API work the same for every format. The file's Arrow schema is kept in
//! the version's manifest, and an export writes the rows back with those columns and types.
//!
//! Types that round-trip: booleans, integers, floats, decimals, strings, dates, times,
//! timestamps, lists, structs and maps (the conversions of `arrow-json`). Compressions read:
//! uncompressed, Snappy, gzip, LZ4, zstd; exports are zstd-compressed.

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::properties::WriterProperties;

use futures_util::{Stream, StreamExt};

use super::model::{Dataset, DatasetFormat};
use super::push::{PushOptions, PushResult};
use super::service::VaultService;
use crate::audit::RequestContext;
use crate::identity::Principal;
use crate::{CoreError, Result};

/// Rows per batch read or written.
const BATCH_ROWS: usize = 2048;
/// A row group is written out once its buffered data reaches this size.
const ROW_GROUP_BYTES: usize = 32 << 20;

fn invalid(message: String) -> CoreError {
    CoreError::Unprocessable {
        code: "INVALID_PARQUET",
        message,
        details: Default::default(),
    }
}

/// The schema as stored in a version's manifest (JSON of the Arrow schema, without the
/// file-level metadata such as pandas' index description).
pub fn encode_schema(schema: &Schema) -> Result<Vec<u8>> {
    serde_json::to_vec(&Schema::new(schema.fields().clone())).map_err(CoreError::internal)
}

pub fn decode_schema(header: &[u8]) -> Result<SchemaRef> {
    serde_json::from_slice::<Schema>(header)
        .map(Arc::new)
        .map_err(|e| CoreError::Integrity(format!("the version's Parquet schema: {e}")))
}

/// The rows of a Parquet file as JSON Lines, a batch at a time.
pub struct ParquetRows {
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
    row: u64,
}

impl ParquetRows {
    pub fn open(file: std::fs::File) -> Result<Self> {
        let b = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| invalid(format!("the upload is not a readable Parquet file: {e}")))?;
        let schema = Arc::clone(b.schema());
        if schema.fields().is_empty() {
            return Err(invalid("the Parquet file has no columns".into()));
        }
        let reader = b
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| invalid(format!("the Parquet file cannot be read: {e}")))?;
        Ok(Self {
            reader,
            schema,
            row: 0,
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The next batch of rows, one JSON object per line (nulls explicit, so that every
    /// record names every column).
    pub fn next_lines(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch = batch.map_err(|e| {
            invalid(format!(
                "the Parquet file is damaged after row {}: {e}",
                self.row
            ))
        })?;
        self.row += batch.num_rows() as u64;
        let mut w = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::LineDelimited>(Vec::with_capacity(1 << 20));
        w.write(&batch)
            .and_then(|_| w.finish())
            .map_err(|e| invalid(format!("a row near row {}: {e}", self.row)))?;
        Ok(Some(w.into_inner()))
    }
}

/// Where the Parquet writer's output collects until it is sent.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

/// Turns JSON records (one per line) into a Parquet file of `schema`, streamed: the bytes
/// of each finished row group come out of [`ParquetEncoder::feed`].
pub struct ParquetEncoder {
    decoder: arrow_json::reader::Decoder,
    writer: ArrowWriter<Shared>,
    out: Shared,
    record: u64,
}

impl ParquetEncoder {
    pub fn new(schema: SchemaRef) -> Result<Self> {
        let decoder = arrow_json::ReaderBuilder::new(Arc::clone(&schema))
            .with_batch_size(BATCH_ROWS)
            .build_decoder()
            .map_err(|e| invalid(format!("the schema cannot be written as Parquet: {e}")))?;
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .set_max_row_group_row_count(Some(1 << 20))
            .build();
        let out = Shared::default();
        let writer = ArrowWriter::try_new(out.clone(), schema, Some(props))
            .map_err(|e| invalid(format!("the schema cannot be written as Parquet: {e}")))?;
        Ok(Self {
            decoder,
            writer,
            out,
            record: 0,
        })
    }

    /// An Arrow schema for JSON records that carry none (JSON Lines or CSV datasets),
    /// inferred from the first records.
    pub fn infer(sample: &[u8]) -> Result<SchemaRef> {
        let (schema, _) = arrow_json::reader::infer_json_schema(sample, Some(1000))
            .map_err(|e| invalid(format!("no Parquet schema fits these records: {e}")))?;
        if schema.fields().is_empty() {
            return Err(invalid(
                "the records have no fields to make columns of".into(),
            ));
        }
        // Columns in the order the records name their fields (inference sorts them).
        let mut order: Vec<String> = Vec::new();
        for l in sample
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .take(1000)
        {
            if let Ok(o) = serde_json::from_slice::<super::convert::Ordered>(l) {
                for (k, _) in o.0 {
                    if !order.contains(&k) {
                        order.push(k);
                    }
                }
            }
        }
        let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
        fields.sort_by_key(|f| {
            order
                .iter()
                .position(|k| k == f.name())
                .unwrap_or(usize::MAX)
        });
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Adds whole JSON lines; returns the Parquet bytes ready to send (often none).
    pub fn feed(&mut self, mut lines: &[u8]) -> Result<Vec<u8>> {
        while !lines.is_empty() {
            let n = self
                .decoder
                .decode(lines)
                .map_err(|e| self.record_error(e))?;
            lines = &lines[n..];
            if self.decoder.len() >= BATCH_ROWS {
                self.flush_batch()?;
            }
        }
        if self.writer.in_progress_size() >= ROW_GROUP_BYTES {
            self.writer.flush().map_err(CoreError::internal)?;
        }
        Ok(self.out.take())
    }

    /// The last bytes (the final row group and the footer).
    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.flush_batch()?;
        self.writer.close().map_err(CoreError::internal)?;
        Ok(self.out.take())
    }

    fn flush_batch(&mut self) -> Result<()> {
        let batch: Option<RecordBatch> = self.decoder.flush().map_err(|e| self.record_error(e))?;
        if let Some(b) = batch {
            self.record += b.num_rows() as u64;
            self.writer.write(&b).map_err(CoreError::internal)?;
        }
        Ok(())
    }

    fn record_error(&self, e: arrow_schema::ArrowError) -> CoreError {
        CoreError::Unprocessable {
            code: "FORMAT_CONVERSION_FAILED",
            message: format!(
                "a record after record {} does not fit the Parquet schema: {e}",
                self.record
            ),
            details: Default::default(),
        }
    }
}

/// Checks that JSON records fit a schema (records appended to a Parquet dataset must
/// export back to it).
pub struct RecordCheck {
    schema: SchemaRef,
    decoder: arrow_json::reader::Decoder,
}

impl RecordCheck {
    pub fn new(schema: SchemaRef) -> Result<Self> {
        let decoder = Self::decoder(&schema)?;
        Ok(Self { schema, decoder })
    }

    fn decoder(schema: &SchemaRef) -> Result<arrow_json::reader::Decoder> {
        arrow_json::ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(1)
            .build_decoder()
            .map_err(|e| invalid(format!("the version's schema cannot be read: {e}")))
    }

    pub fn check(&mut self, record: &[u8]) -> std::result::Result<(), String> {
        let r = self
            .decoder
            .decode(record)
            .and_then(|_| self.decoder.decode(b"\n"))
            .and_then(|_| self.decoder.flush());
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                // A decoder that failed is not reused.
                if let Ok(d) = Self::decoder(&self.schema) {
                    self.decoder = d;
                }
                Err(format!(
                    "the record does not fit the dataset's Parquet schema: {e}"
                ))
            }
        }
    }
}

impl VaultService {
    /// A Parquet upload: spooled to an anonymous file, then read a batch of rows at a time
    /// (on a blocking thread) and imported as JSON records with the file's schema.
    pub(super) async fn push_parquet<S>(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        opts: PushOptions,
        mut body: S,
    ) -> Result<PushResult>
    where
        S: Stream<Item = Result<bytes::Bytes>> + Unpin,
    {
        use tokio::io::AsyncWriteExt;
        // Refuse early (before the upload is spooled) when the branch cannot be written.
        self.target(p, d, opts.branch.as_deref()).await?;
        let dir = self
            .cfg
            .spool_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let spool = tempfile::tempfile_in(&dir).map_err(|e| {
            CoreError::Unavailable(format!(
                "spool for Parquet uploads in {}: {e}",
                dir.display()
            ))
        })?;
        let io = |e: std::io::Error| CoreError::Unavailable(format!("Parquet spool: {e}"));
        let mut f = tokio::fs::File::from_std(spool);
        while let Some(chunk) = body.next().await {
            f.write_all(&chunk?).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        let file = f.into_std().await;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes>>(2);
        let (schema_tx, schema_rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
        let reader = tokio::task::spawn_blocking(move || {
            let mut rows = match super::parquet::ParquetRows::open(file)
                .and_then(|r| super::parquet::encode_schema(r.schema()).map(|s| (r, s)))
            {
                Ok((r, schema)) => {
                    let _ = schema_tx.send(schema);
                    r
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            loop {
                match rows.next_lines() {
                    Ok(Some(lines)) => {
                        if tx.blocking_send(Ok(lines.into())).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let lines = tokio_stream_from(rx);
        let schema = schema_rx.await.ok();
        let r = match schema {
            Some(schema) => {
                self.push_records(p, ctx, d, opts, DatasetFormat::Jsonl, Some(schema), lines)
                    .await
            }
            // The file could not be opened: its error is the stream's only item.
            None => {
                let mut lines = lines;
                Err(match lines.next().await {
                    Some(Err(e)) => e,
                    _ => CoreError::internal("the Parquet reader stopped"),
                })
            }
        };
        let _ = reader.await;
        r
    }
}

/// The receiving side of a channel as a stream.
fn tokio_stream_from<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl Stream<Item = T> + Unpin {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parquet_of(lines: &[u8]) -> (SchemaRef, Vec<u8>) {
        let schema = ParquetEncoder::infer(lines).unwrap();
        let mut enc = ParquetEncoder::new(Arc::clone(&schema)).unwrap();
        let mut out = enc.feed(lines).unwrap();
        out.extend(enc.finish().unwrap());
        (schema, out)
    }

    #[test]
    fn rows_round_trip_through_parquet_as_json_records() {
        let lines = b"{\"id\":1,\"name\":\"a\",\"tags\":[\"x\"],\"m\":{\"k\":1.5}}\n{\"id\":2,\"name\":null,\"tags\":[],\"m\":{\"k\":2.0}}\n";
        let (schema, bytes) = parquet_of(lines);
        assert_eq!(&bytes[..4], b"PAR1");
        let f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &f, &bytes).unwrap();
        let mut rows = ParquetRows::open(f).unwrap();
        assert_eq!(rows.schema().fields().len(), schema.fields().len());
        let back = rows.next_lines().unwrap().unwrap();
        assert!(rows.next_lines().unwrap().is_none());
        let got: Vec<serde_json::Value> = back
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(got[0]["name"], "a");
        assert_eq!(got[1]["name"], serde_json::Value::Null);
        assert_eq!(got[1]["m"]["k"], 2.0);
        // The schema survives the manifest.
        let header = encode_schema(&schema).unwrap();
        assert_eq!(decode_schema(&header).unwrap().fields(), schema.fields());
    }

    #[test]
    fn not_parquet_and_misfit_records_are_clear_errors() {
        let f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &f, b"id,name\n1,a\n").unwrap();
        let e = ParquetRows::open(f).err().unwrap();
        assert!(
            matches!(
                e,
                CoreError::Unprocessable {
                    code: "INVALID_PARQUET",
                    ..
                }
            ),
            "{e:?}"
        );
        let (schema, _) = parquet_of(b"{\"id\":1}\n");
        let mut c = RecordCheck::new(schema).unwrap();
        assert!(c.check(b"{\"id\":7}").is_ok());
        assert!(c.check(b"{\"id\":\"seven\"}").is_err());
        assert!(
            c.check(b"{\"id\":8}").is_ok(),
            "a bad record leaves no state behind"
        );
    }
}
