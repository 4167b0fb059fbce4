//! `llmgov pii scan` and `llmgov pii anonymize` on files.

use std::process::Command;

use super::helpers::*;

/// `llmgov pii scan` reads `{"id","text"}` records and writes the scoring tool's format.
#[test]
fn pii_scan_writes_entities_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":\"a\",\"text\":\"é mail ann@example.com or call 415-555-2671\"}\n\n{\"id\":\"b\",\"text\":\"nothing here\"}\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let r = Command::new(BIN)
        .args(["pii", "scan"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&r);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "a");
    let e = &lines[0]["entities"];
    assert_eq!(e[0]["type"], "EMAIL_ADDRESS");
    assert_eq!(
        (e[0]["start"].as_u64(), e[0]["end"].as_u64()),
        (Some(7), Some(22))
    );
    assert_eq!(e[1]["type"], "PHONE_NUMBER");
    assert_eq!(lines[1]["entities"], serde_json::json!([]));
    // A record without text is a clear error naming its line.
    std::fs::write(&input, "{\"id\":\"x\"}\n").unwrap();
    let r = Command::new(BIN)
        .args(["pii", "scan"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("line 1"));
}

/// `llmgov pii anonymize`: operators per type, field rules, a key file for the keyed
/// operators, a token file for `tokenize`, and bad lines reported without stopping.
#[test]
fn pii_anonymize_applies_operators_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut body = b"{\"id\":1,\"text\":\"Mail ann@corp.io, card 4111 1111 1111 1111, ssn 123-45-6789\"}\n{\"user\":{\"email\":\"bob@corp.io\",\"note\":\"call 415-555-2671\"}}\n".to_vec();
    body.extend_from_slice(b"\xff\xfe not utf-8\n{\"id\":3,\"text\":\"ann@corp.io\"}\n");
    std::fs::write(&input, body).unwrap();
    let (key, tokens, out) = (
        dir.path().join("pii.key"),
        dir.path().join("tokens.jsonl"),
        dir.path().join("out.jsonl"),
    );
    let anonymize = |extra: &[&str]| {
        Command::new(BIN)
            .args(["pii", "anonymize"])
            .arg(&input)
            .args([
                "--operator",
                "EMAIL_ADDRESS=tokenize",
                "--operator",
                "CREDIT_CARD=mask:4",
            ])
            .args(["--field", "user.email=hash", "--key-file"])
            .arg(&key)
            .arg("--token-file")
            .arg(&tokens)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let r = anonymize(&[]);
    // The undecodable line is named and skipped; the others are written.
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("line 3: not UTF-8"), "{err}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let text = lines[0]["text"].as_str().unwrap();
    assert!(text.starts_with("Mail tok_"), "{text}");
    assert!(
        text.contains("card **** **** **** 1111, ssn <US_SSN>"),
        "{text}"
    );
    assert_eq!(lines[0]["items"].as_array().unwrap().len(), 3);
    assert!(
        lines[1]["user"]["email"]
            .as_str()
            .unwrap()
            .starts_with("hash_")
    );
    assert_eq!(lines[1]["user"]["note"], "call <PHONE_NUMBER>");
    // The same value has the same token; the token file holds it once, privately.
    let token = text.split(',').next().unwrap().trim_start_matches("Mail ");
    assert_eq!(lines[2]["text"], token);
    let vault = std::fs::read_to_string(&tokens).unwrap();
    assert_eq!(vault.lines().count(), 1);
    assert!(vault.contains("ann@corp.io") && vault.contains(token));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [&key, &tokens] {
            assert_eq!(
                std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
    // The key file is reused: hashes stay the same from one run to the next.
    let first_hash = lines[1]["user"]["email"].clone();
    anonymize(&[]);
    let again: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again["user"]["email"], first_hash);

    // Keyed operators without a key, tokenize without a token file, unknown operators.
    for args in [
        vec!["--operator", "EMAIL_ADDRESS=hash"],
        vec!["--operator", "EMAIL_ADDRESS=tokenize"],
        vec!["--operator", "EMAIL_ADDRESS=shred"],
        vec!["--operator", "lower=redact"],
    ] {
        let r = Command::new(BIN)
            .args(["pii", "anonymize"])
            .arg(&input)
            .args(&args)
            .output()
            .unwrap();
        assert!(!r.status.success(), "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: nothing is written");
    }
}
