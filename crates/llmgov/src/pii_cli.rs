//! `llmgov pii ...`: PII and secret detection on local files, without a server.

use std::io::{BufRead, BufReader, BufWriter, Write};

use llmgov_pii::{ScanConfig, Scanner};
use serde_json::{Value, json};

use crate::cli::PiiCommand;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

pub fn run(command: PiiCommand) -> Result<(), AnyError> {
    match command {
        PiiCommand::Scan {
            file,
            output,
            min_score,
        } => {
            let input =
                std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let out: Box<dyn Write> = match &output {
                Some(p) => {
                    Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?)
                }
                None => Box::new(std::io::stdout().lock()),
            };
            let mut out = BufWriter::new(out);
            let scanner = Scanner::new(ScanConfig {
                min_score,
                ..Default::default()
            });
            let mut reader = BufReader::new(input);
            let mut line = Vec::new();
            let mut n = 0u64;
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                n += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let rec: Value = serde_json::from_slice(&line)
                    .map_err(|e| format!("line {n}: not a JSON record: {e}"))?;
                let text = rec["text"]
                    .as_str()
                    .ok_or_else(|| format!("line {n}: the record has no \"text\" string"))?;
                let entities: Vec<Value> = scanner
                    .scan(text)
                    .into_iter()
                    .map(|e| {
                        json!({"type": e.kind.as_str(), "start": e.start, "end": e.end,
                            "score": (e.score * 100.0).round() / 100.0, "recognizer": e.recognizer})
                    })
                    .collect();
                serde_json::to_writer(&mut out, &json!({"id": rec["id"], "entities": entities}))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(())
        }
    }
}
