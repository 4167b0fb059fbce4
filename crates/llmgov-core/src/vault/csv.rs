//! CSV: rows split from a byte stream with their exact bytes (so an export gives them back
//! as imported), field parsing for reads, and writing rows for records appended as JSON.

use crate::{CoreError, Result};

/// Splits a stream into CSV rows (quoted fields may span lines). Each row is handed over
/// with its raw bytes (without the line ending) and its parsed fields.
pub struct CsvSplitter {
    rdr: csv_core::Reader,
    raw: Vec<u8>,
    out: Vec<u8>,
    ends: Vec<usize>,
    nout: usize,
    nend: usize,
    /// Lines consumed before the current row.
    line: u64,
    max_row: usize,
}

/// A row's fields.
pub struct Fields<'a> {
    out: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Fields<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    pub fn get(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }
}

impl CsvSplitter {
    pub fn new(max_row: usize) -> Self {
        Self {
            rdr: csv_core::Reader::new(),
            raw: Vec::new(),
            out: vec![0; 4096],
            ends: vec![0; 64],
            nout: 0,
            nend: 0,
            line: 0,
            max_row,
        }
    }

    fn too_long(&self) -> CoreError {
        CoreError::Unprocessable {
            code: "RECORD_TOO_LARGE",
            message: format!(
                "the row starting on line {} is longer than the largest record accepted ({} bytes)",
                self.line + 1,
                self.max_row
            ),
            details: [("line".to_string(), (self.line + 1).into())]
                .into_iter()
                .collect(),
        }
    }

    /// Calls `f(line, raw, fields)` for each row the input completes (`line` is the row's
    /// first line, 1-based). An empty `input` ends the stream.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        f: &mut impl FnMut(u64, &[u8], &Fields) -> Result<()>,
    ) -> Result<()> {
        let eof = input.is_empty();
        loop {
            let (res, nin, nout, nend) = self.rdr.read_record(
                input,
                &mut self.out[self.nout..],
                &mut self.ends[self.nend..],
            );
            self.raw.extend_from_slice(&input[..nin]);
            input = &input[nin..];
            self.nout += nout;
            self.nend += nend;
            if self.raw.len() > self.max_row + 2 {
                return Err(self.too_long());
            }
            match res {
                csv_core::ReadRecordResult::InputEmpty => {
                    if !eof {
                        return Ok(());
                    }
                }
                csv_core::ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                csv_core::ReadRecordResult::Record => {
                    let raw = std::mem::take(&mut self.raw);
                    let lines = memchr::memchr_iter(b'\n', &raw).count() as u64;
                    let mut body: &[u8] = &raw;
                    // The bytes between rows: leading blank lines, then the row's ending.
                    let lead = body
                        .iter()
                        .take_while(|b| **b == b'\n' || **b == b'\r')
                        .count();
                    let first_line =
                        self.line + 1 + body[..lead].iter().filter(|b| **b == b'\n').count() as u64;
                    body = &body[lead..];
                    while let Some((&last, rest)) = body.split_last() {
                        if last == b'\n' || last == b'\r' {
                            body = rest;
                        } else {
                            break;
                        }
                    }
                    let fields = Fields {
                        out: &self.out[..self.nout],
                        ends: &self.ends[..self.nend],
                    };
                    let r = f(first_line, body, &fields);
                    self.line += lines;
                    self.nout = 0;
                    self.nend = 0;
                    r?;
                }
                csv_core::ReadRecordResult::End => return Ok(()),
            }
        }
    }
}

/// The fields of one stored row (or header).
pub fn parse_row(raw: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut sp = CsvSplitter::new(usize::MAX / 4);
    let mut take = |_: u64, _: &[u8], f: &Fields| {
        out = (0..f.len())
            .map(|i| String::from_utf8_lossy(f.get(i)).into_owned())
            .collect();
        Ok(())
    };
    let _ = sp
        .feed(raw, &mut take)
        .and_then(|_| sp.feed(b"", &mut take));
    out
}

/// A row as a JSON object written in the header's column order.
pub fn write_row_json(header: &[String], raw: &[u8], out: &mut Vec<u8>) {
    let fields = parse_row(raw);
    out.push(b'{');
    for (i, (k, v)) in header.iter().zip(fields.iter()).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Strings always serialize.
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, v);
    }
    out.push(b'}');
}

/// Writes fields as one CSV row, quoting where needed (RFC 4180).
pub fn write_row(fields: &[&str]) -> Vec<u8> {
    let mut o = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        // A lone empty field is quoted, or the row would read as a blank line.
        let lone_empty = fields.len() == 1 && f.is_empty();
        if lone_empty
            || f.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
            || f.starts_with(' ')
            || f.ends_with(' ')
        {
            o.push(b'"');
            o.extend_from_slice(f.replace('"', "\"\"").as_bytes());
            o.push(b'"');
        } else {
            o.extend_from_slice(f.as_bytes());
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(chunks: &[&[u8]]) -> Vec<(u64, String, Vec<String>)> {
        let mut out = vec![];
        let mut s = CsvSplitter::new(1 << 20);
        let mut f = |n: u64, raw: &[u8], fl: &Fields| {
            out.push((
                n,
                String::from_utf8(raw.to_vec()).unwrap(),
                (0..fl.len())
                    .map(|i| String::from_utf8(fl.get(i).to_vec()).unwrap())
                    .collect(),
            ));
            Ok(())
        };
        for c in chunks {
            s.feed(c, &mut f).unwrap();
        }
        s.feed(b"", &mut f).unwrap();
        out
    }

    #[test]
    fn rows_keep_their_bytes_across_any_chunking() {
        let text = b"id,text\r\n1,\"hello, \"\"world\"\"\"\n\n2,\"two\nlines\"\n3,last";
        let whole = rows(&[text]);
        assert_eq!(whole.len(), 4, "{whole:?}");
        assert_eq!(
            whole[0],
            (1, "id,text".into(), vec!["id".into(), "text".into()])
        );
        assert_eq!(whole[1].1, "1,\"hello, \"\"world\"\"\"");
        assert_eq!(whole[1].2[1], "hello, \"world\"");
        assert_eq!(whole[2].0, 4, "the blank line is skipped and counted");
        assert_eq!(whole[2].2[1], "two\nlines");
        assert_eq!(
            whole[3],
            (6, "3,last".into(), vec!["3".into(), "last".into()])
        );
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(rows(&[a, b]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn written_rows_parse_back() {
        for fields in [
            vec!["a", "b"],
            vec!["x,y", "say \"hi\"", "two\nlines", " pad "],
            vec![""],
        ] {
            let raw = write_row(&fields);
            assert_eq!(parse_row(&raw), fields);
        }
        let h = vec!["t".to_string(), "id".to_string()];
        let mut o = vec![];
        write_row_json(&h, b"\"a,b\",1", &mut o);
        assert_eq!(o, br#"{"t":"a,b","id":"1"}"#, "the header's order");
    }

    #[test]
    fn an_overlong_row_is_refused() {
        let mut s = CsvSplitter::new(10);
        let e = s
            .feed(b"a,b\n\"0123456789012345", &mut |_, _, _| Ok(()))
            .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
