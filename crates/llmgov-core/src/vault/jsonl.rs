//! JSON Lines: splitting a byte stream into records, validating them and inferring a schema.

use std::collections::BTreeMap;

use crate::{CoreError, Result};

/// Splits a stream of chunks into lines without copying lines that lie within one chunk.
/// A line longer than `max_line` is an error as soon as it is seen, so a 5 GB line is never
/// buffered.
pub struct LineSplitter {
    partial: Vec<u8>,
    line: u64,
    max_line: usize,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            line: 0,
            max_line,
        }
    }

    fn too_long(&self) -> CoreError {
        CoreError::Unprocessable {
            code: "RECORD_TOO_LARGE",
            message: format!(
                "line {} is longer than the largest record accepted ({} bytes)",
                self.line + 1,
                self.max_line
            ),
            details: [("line".to_string(), (self.line + 1).into())]
                .into_iter()
                .collect(),
        }
    }

    /// Calls `f(line_number, line)` (1-based, without the line ending) for every line the
    /// chunk completes.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        f: &mut impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            self.line += 1;
            if self.partial.is_empty() {
                if nl > self.max_line {
                    self.line -= 1;
                    return Err(self.too_long());
                }
                f(self.line, strip_cr(&chunk[..nl]))?;
            } else {
                if self.partial.len() + nl > self.max_line {
                    self.line -= 1;
                    return Err(self.too_long());
                }
                self.partial.extend_from_slice(&chunk[..nl]);
                let line = std::mem::take(&mut self.partial);
                f(self.line, strip_cr(&line))?;
            }
            chunk = &chunk[nl + 1..];
        }
        if self.partial.len() + chunk.len() > self.max_line {
            return Err(self.too_long());
        }
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    /// The last line, when the stream does not end with a newline.
    pub fn finish(mut self, f: &mut impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        if !self.partial.is_empty() {
            self.line += 1;
            let line = std::mem::take(&mut self.partial);
            f(self.line, strip_cr(&line))?;
        }
        Ok(())
    }
}

fn strip_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Whether a line holds only whitespace (blank lines are not records).
pub fn is_blank(l: &[u8]) -> bool {
    l.iter().all(u8::is_ascii_whitespace)
}

/// Checks that `line` is one JSON object; the error says why, for the import report.
pub fn check_record(line: &[u8]) -> std::result::Result<(), String> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err("a record must be a JSON object".into());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(line)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "invalid JSON at column {}: {}",
                e.column(),
                strip_position(&e)
            )
        })
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Field types seen over the first records of an import: field → set of JSON types.
#[derive(Debug, Default, Clone)]
pub struct SchemaInference {
    fields: BTreeMap<String, std::collections::BTreeSet<&'static str>>,
    seen: usize,
}

/// Records looked at to infer a schema.
pub const SCHEMA_SAMPLE: usize = 1000;

impl SchemaInference {
    /// Starts from a stored schema (so a new field or type evolves it).
    pub fn from_schema(v: &serde_json::Value) -> Self {
        let mut s = Self::default();
        s.absorb(v);
        s
    }

    /// A CSV column (its values are strings).
    pub fn column(&mut self, name: &str) {
        self.fields
            .entry(name.to_string())
            .or_default()
            .insert("string");
    }

    /// Adds the fields and types of a stored schema.
    pub fn absorb(&mut self, v: &serde_json::Value) {
        if let Some(m) = v.get("fields").and_then(|f| f.as_object()) {
            for (k, t) in m {
                if let Some(t) = t.as_str() {
                    let set = self.fields.entry(k.clone()).or_default();
                    for part in t.split('|') {
                        if let Some(known) = TYPES.iter().find(|x| **x == part) {
                            set.insert(known);
                        }
                    }
                }
            }
        }
    }

    pub fn wants_more(&self) -> bool {
        self.seen < SCHEMA_SAMPLE
    }

    pub fn observe(&mut self, line: &[u8]) {
        self.seen += 1;
        let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(line)
        else {
            return;
        };
        for (k, v) in m {
            if self.fields.len() >= 1000 && !self.fields.contains_key(&k) {
                continue;
            }
            self.fields.entry(k).or_default().insert(type_of(&v));
        }
    }

    pub fn schema(&self) -> serde_json::Value {
        let fields: serde_json::Map<String, serde_json::Value> = self
            .fields
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.iter().copied().collect::<Vec<_>>().join("|").into(),
                )
            })
            .collect();
        serde_json::json!({ "version": 1, "fields": fields })
    }
}

const TYPES: &[&str] = &[
    "array", "boolean", "integer", "null", "number", "object", "string",
];

fn type_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = vec![];
        let mut s = LineSplitter::new(max);
        let mut f = |n: u64, l: &[u8]| {
            out.push((n, l.to_vec()));
            Ok(())
        };
        for c in chunks {
            s.feed(c, &mut f)?;
        }
        s.finish(&mut f)?;
        Ok(out)
    }

    #[test]
    fn lines_split_across_any_chunking() {
        let text = b"{\"a\":1}\r\n{\"b\":2}\n\n{\"c\":3}";
        let whole = split(&[text], 100).unwrap();
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0], (1, b"{\"a\":1}".to_vec()));
        assert_eq!(whole[2], (3, b"".to_vec()));
        assert_eq!(whole[3], (4, b"{\"c\":3}".to_vec()));
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(split(&[a, b], 100).unwrap(), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split(&bytes, 100).unwrap(), whole);
    }

    #[test]
    fn an_overlong_line_is_refused_without_buffering_it() {
        let e = split(&[b"{\"a\":1}\n", &[b'x'; 50], &[b'x'; 50]], 64).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(split(&[&[b'x'; 64]], 64).is_ok());
    }

    #[test]
    fn records_must_be_json_objects() {
        assert!(check_record(b"{\"a\": [1, 2]}").is_ok());
        assert!(check_record(b"[1]").is_err());
        assert!(
            check_record(b"{\"a\": ")
                .unwrap_err()
                .contains("invalid JSON")
        );
        assert!(check_record(b"{} {}").is_err());
    }

    #[test]
    fn schemas_collect_field_types_and_evolve() {
        let mut s = SchemaInference::default();
        s.observe(b"{\"id\": 1, \"text\": \"hi\"}");
        s.observe(b"{\"id\": 2.5, \"tags\": []}");
        let v = s.schema();
        assert_eq!(v["fields"]["id"], "integer|number");
        assert_eq!(v["fields"]["tags"], "array");
        let mut again = SchemaInference::from_schema(&v);
        again.observe(b"{\"text\": null}");
        assert_eq!(again.schema()["fields"]["text"], "null|string");
    }
}
