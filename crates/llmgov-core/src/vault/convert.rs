//! Exports in another format than the dataset's: the version's records, as JSON objects one
//! per line, are encoded as JSON Lines, CSV or Parquet.

use std::sync::Arc;

use super::model::DatasetFormat;
use super::parquet::ParquetEncoder;
use crate::{CoreError, Result};

/// Encodes whole JSON lines into an export format, a chunk at a time.
pub(super) trait Encode: Send {
    fn feed(&mut self, lines: &[u8]) -> Result<Vec<u8>>;
    fn finish(self: Box<Self>) -> Result<Vec<u8>>;
}

/// An encoder to `target`; `schema` is the version's Parquet schema, when it has one
/// (otherwise a Parquet export infers one from the first records).
pub(super) fn encoder(
    target: DatasetFormat,
    schema: Option<arrow_schema::SchemaRef>,
) -> Result<Box<dyn Encode>> {
    Ok(match target {
        DatasetFormat::Jsonl => Box::new(Passthrough),
        DatasetFormat::Csv => Box::new(CsvEncoder {
            columns: None,
            record: 0,
        }),
        DatasetFormat::Parquet => Box::new(ParquetExport {
            enc: match schema {
                Some(s) => Some(ParquetEncoder::new(s)?),
                None => None,
            },
        }),
    })
}

struct Passthrough;

impl Encode for Passthrough {
    fn feed(&mut self, lines: &[u8]) -> Result<Vec<u8>> {
        Ok(lines.to_vec())
    }
    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        Ok(vec![])
    }
}

fn conversion(message: String) -> CoreError {
    CoreError::Unprocessable {
        code: "FORMAT_CONVERSION_FAILED",
        message,
        details: Default::default(),
    }
}

fn records(lines: &[u8]) -> impl Iterator<Item = &[u8]> {
    lines.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

/// CSV with the columns of the first chunk's records (in first-seen order); nested values
/// are written as JSON text, nulls as empty fields.
struct CsvEncoder {
    columns: Option<Vec<String>>,
    record: u64,
}

impl Encode for CsvEncoder {
    fn feed(&mut self, lines: &[u8]) -> Result<Vec<u8>> {
        let mut objects = Vec::new();
        for l in records(lines) {
            let v: Ordered = serde_json::from_slice(l).map_err(|e| {
                conversion(format!("record {} is not a JSON object: {e}", self.record))
            })?;
            objects.push(v.0);
            self.record += 1;
        }
        let mut out = Vec::with_capacity(lines.len() + 1024);
        if self.columns.is_none() {
            let mut cols: Vec<String> = Vec::new();
            for o in &objects {
                for (k, _) in o {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            out.extend(super::csv::write_row(&refs));
            out.push(b'\n');
            self.columns = Some(cols);
        }
        let cols = self.columns.as_ref().expect("set above");
        let first = self.record - objects.len() as u64;
        for (i, o) in objects.iter().enumerate() {
            let mut values = vec![String::new(); cols.len()];
            for (k, v) in o {
                let Some(c) = cols.iter().position(|c| c == k) else {
                    return Err(conversion(format!(
                        "record {} has a field {k:?} that the CSV's columns (from the first records) lack",
                        first + i as u64
                    )));
                };
                values[c] = match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
            }
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            out.extend(super::csv::write_row(&refs));
            out.push(b'\n');
        }
        Ok(out)
    }
    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        Ok(vec![])
    }
}

struct ParquetExport {
    enc: Option<ParquetEncoder>,
}

impl Encode for ParquetExport {
    fn feed(&mut self, lines: &[u8]) -> Result<Vec<u8>> {
        if self.enc.is_none() {
            self.enc = Some(ParquetEncoder::new(ParquetEncoder::infer(lines)?)?);
        }
        self.enc.as_mut().expect("set above").feed(lines)
    }
    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        match self.enc {
            Some(e) => e.finish(),
            // No records: a file of no rows and no columns is not useful; one text column.
            None => ParquetEncoder::new(Arc::new(arrow_schema::Schema::new(vec![
                arrow_schema::Field::new("record", arrow_schema::DataType::Utf8, true),
            ])))?
            .finish(),
        }
    }
}

/// A JSON object's fields in the order they were written (CSV columns follow it).
pub(super) struct Ordered(pub(super) Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Ordered, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some(e) = m.next_entry::<String, serde_json::Value>()? {
                    out.push(e);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}
