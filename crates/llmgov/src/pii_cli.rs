//! `llmgov pii ...`: PII and secret detection and anonymization on local files, without a
//! server.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use llmgov_pii::anonymize::{Anonymizer, FieldRule, JsonReport, Keys, Operator, Profile};
use llmgov_pii::{EntityType, ScanConfig, Scanner};
use serde_json::{Value, json};

use crate::cli::PiiCommand;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

pub fn run(command: PiiCommand) -> Result<(), AnyError> {
    match command {
        PiiCommand::Scan {
            file,
            output,
            min_score,
            config,
        } => {
            let mut cfg = read_config(config.as_deref())?;
            cfg.min_score = min_score;
            let scanner = Scanner::new(cfg).map_err(|e| format!("configuration: {e}"))?;
            each_record(&file, output.as_deref(), |rec, n| {
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
                Ok(json!({"id": rec["id"], "entities": entities}))
            })
        }
        PiiCommand::Anonymize {
            file,
            output,
            operators,
            default,
            fields,
            profile,
            config,
            key_file,
            scope,
            token_file,
        } => {
            let profile = match profile {
                Some(p) => {
                    let text = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    serde_json::from_slice::<Profile>(&text)
                        .map_err(|e| format!("{}: {e}", p.display()))?
                }
                None => profile_from_flags(&operators, &default, &fields)?,
            };
            let scanner = Scanner::new(read_config(config.as_deref())?)
                .map_err(|e| format!("configuration: {e}"))?;
            let keys = key_file.as_deref().map(load_or_create_key).transpose()?;
            let tokenizes = std::iter::once(&profile.default)
                .chain(profile.operators.values())
                .chain(profile.fields.values().map(|r| &r.operator))
                .any(|o| *o == Operator::Tokenize);
            if tokenizes && token_file.is_none() {
                return Err("tokenize keeps its tokens in a token vault: give --token-file FILE (or use the server's POST /api/v1/pii/anonymize, whose token vault is encrypted)".into());
            }
            let anonymizer = Anonymizer::new(&profile, keys.as_ref(), &scope).map_err(|e| {
                format!(
                    "{e}{}",
                    if keys.is_none() {
                        " (give --key-file)"
                    } else {
                        ""
                    }
                )
            })?;
            let mut vault = token_file.as_deref().map(open_token_file).transpose()?;
            let mut seen = std::collections::HashSet::new();
            each_record(&file, output.as_deref(), |mut rec, _| {
                let mut tokens = vec![];
                let out = if let Some(text) = rec.get("text").and_then(Value::as_str) {
                    let a = anonymizer.scan_text(&scanner, text, &mut tokens);
                    json!({"id": rec["id"], "text": a.text, "items": a.items})
                } else {
                    let mut report = JsonReport::default();
                    anonymizer.json(&scanner, &mut rec, &mut report);
                    tokens = report.tokens;
                    rec
                };
                if let Some(v) = vault.as_mut() {
                    for t in tokens {
                        if seen.insert(t.token.clone()) {
                            serde_json::to_writer(
                                &mut *v,
                                &json!({"token": t.token, "type": t.entity_type.as_str(), "value": t.value}),
                            )?;
                            v.write_all(b"\n")?;
                        }
                    }
                }
                Ok(out)
            })?;
            if let Some(mut v) = vault {
                v.flush()?;
            }
            Ok(())
        }
    }
}

/// Reads JSON Lines from `file`, writes what `f` makes of each record. A line that is not
/// UTF-8 JSON is reported with its number and skipped; the command then fails at the end,
/// after writing everything else.
fn each_record(
    file: &Path,
    output: Option<&Path>,
    mut f: impl FnMut(Value, u64) -> Result<Value, AnyError>,
) -> Result<(), AnyError> {
    let input = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    let (mut n, mut bad, mut first_bad) = (0u64, 0u64, None);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec = match std::str::from_utf8(&line) {
            Err(e) => Err(format!(
                "line {n}: not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )),
            Ok(s) => serde_json::from_str::<Value>(s)
                .map_err(|e| format!("line {n}: not a JSON record: {e}")),
        };
        let result = rec.map_err(AnyError::from).and_then(|rec| f(rec, n));
        match result {
            Ok(v) => {
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                eprintln!("llmgov: {e}");
                bad += 1;
                first_bad.get_or_insert(e.to_string());
            }
        }
    }
    out.flush()?;
    match first_bad {
        None => Ok(()),
        Some(first) => Err(format!("{bad} of {n} lines were skipped (first: {first})").into()),
    }
}

fn read_config(path: Option<&Path>) -> Result<ScanConfig, AnyError> {
    match path {
        None => Ok(ScanConfig::default()),
        Some(p) => {
            let text = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
    }
}

fn profile_from_flags(
    operators: &[String],
    default: &str,
    fields: &[String],
) -> Result<Profile, AnyError> {
    let mut p = Profile {
        default: Operator::parse(default).map_err(|e| format!("--default: {e}"))?,
        ..Default::default()
    };
    for o in operators {
        let (t, op) = o
            .split_once('=')
            .ok_or_else(|| format!("--operator {o}: expected TYPE=OP"))?;
        let kind = EntityType::parse(t)
            .ok_or_else(|| format!("--operator {o}: '{t}' is not an entity type"))?;
        let op = Operator::parse(op).map_err(|e| format!("--operator {o}: {e}"))?;
        p.operators.insert(kind.as_str().to_owned(), op);
    }
    for f in fields {
        let (path, op) = f
            .split_once('=')
            .ok_or_else(|| format!("--field {f}: expected PATH=OP"))?;
        let operator = Operator::parse(op).map_err(|e| format!("--field {f}: {e}"))?;
        p.fields.insert(
            path.to_owned(),
            FieldRule {
                operator,
                entity_type: None,
            },
        );
    }
    Ok(p)
}

/// The secret of the keyed operators: 64 hex digits in `path`, created if missing.
fn load_or_create_key(path: &Path) -> Result<Keys, AnyError> {
    let shown = path.display();
    let hex = match std::fs::read_to_string(path) {
        Ok(s) => s.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut raw = [0u8; 32];
            aws_lc_rs::rand::fill(&mut raw).map_err(|_| "no system randomness")?;
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let mut f = private_file(path, false)?;
            f.write_all(format!("{hex}\n").as_bytes())?;
            eprintln!(
                "llmgov: created the key file {shown}; keep it to reverse encrypt and to keep hashes and pseudonyms consistent"
            );
            hex
        }
        Err(e) => return Err(format!("{shown}: {e}").into()),
    };
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let raw: [u8; 32] = bytes
        .try_into()
        .ok()
        .filter(|_| hex.len() == 64)
        .ok_or_else(|| format!("{shown}: expected 64 hex digits"))?;
    Ok(Keys::derive(&raw))
}

fn private_file(path: &Path, append: bool) -> Result<std::fs::File, AnyError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true);
    if append {
        o.append(true);
    } else {
        o.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    Ok(o.open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?)
}

fn open_token_file(path: &Path) -> Result<BufWriter<std::fs::File>, AnyError> {
    Ok(BufWriter::new(private_file(path, true)?))
}
