use super::*;
use crate::audit::export::ExportLine;
use crate::audit::{AuditDraft, RequestContext};

fn log(n: usize) -> (Vec<String>, Checkpoint, Vec<u8>) {
    let ctx = RequestContext {
        client_addr: Some("203.0.113.9".into()),
        ..Default::default()
    };
    let (entries, cp, key, _) = crate::audit::testing::signed_log(n, |ws, i| {
        AuditDraft::new(ws, &ctx, "users.create", "access_control")
            .details(serde_json::json!({"i": i, "nested": {"b": 1.5, "a": [true, null]}}))
    });
    let lines = entries
        .iter()
        .map(|e| serde_json::to_string(&ExportLine::from_entry(e, None)).unwrap())
        .collect();
    (lines, cp, key)
}

/// Verifies on one thread and on several with tiny batches (so that lines cross batch
/// and worker boundaries), and checks that both give the same verdict.
fn verify(lines: &[String], cp: &Checkpoint, key: &[u8]) -> ExportVerdict {
    let text = lines.join("\n");
    let one = super::verify(text.as_bytes(), cp, key, 1, 64).unwrap();
    for (threads, batch) in [(3, 1), (2, 700), (4, 1 << 20)] {
        let many = super::verify(text.as_bytes(), cp, key, threads, batch).unwrap();
        assert_eq!(one, many, "{threads} threads, batches of {batch} bytes");
    }
    one
}

fn bad_line(v: ExportVerdict) -> u64 {
    match v {
        ExportVerdict::Invalid { line, .. } => line,
        other => panic!("expected an invalid export, got {other:?}"),
    }
}

#[test]
fn a_complete_export_verifies() {
    let (lines, cp, key) = log(9);
    assert_eq!(
        verify(&lines, &cp, &key),
        ExportVerdict::Valid {
            entries: 9,
            complete: true
        }
    );
}

#[test]
fn flipped_missing_duplicated_reordered_and_truncated_lines_are_named() {
    let (lines, cp, key) = log(9);
    let mut flipped = lines.clone();
    flipped[4] = flipped[4].replace("users.create", "users.crEate");
    assert_eq!(bad_line(verify(&flipped, &cp, &key)), 5);
    let mut missing = lines.clone();
    missing.remove(3);
    assert_eq!(
        bad_line(verify(&missing, &cp, &key)),
        4,
        "the line where entry 3 should be"
    );
    let mut dup = lines.clone();
    dup.insert(6, lines[5].clone());
    assert_eq!(bad_line(verify(&dup, &cp, &key)), 7);
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    assert_eq!(bad_line(verify(&reordered, &cp, &key)), 3);
    let truncated = lines[..7].to_vec();
    assert_eq!(bad_line(verify(&truncated, &cp, &key)), 8);
    let mut garbage = lines.clone();
    garbage[0] = "{not json".into();
    assert_eq!(bad_line(verify(&garbage, &cp, &key)), 1);
    let mut personal = lines.clone();
    personal[2] = personal[2].replace("203.0.113.9", "198.51.100.1");
    assert_eq!(bad_line(verify(&personal, &cp, &key)), 3);
}

#[test]
fn a_rewritten_log_with_consistent_hashes_fails_against_the_checkpoint() {
    // Someone rebuilt the whole chain after changing entry 2: every line is
    // self-consistent, but the tree no longer matches the signed checkpoint.
    let (lines, cp, key) = log(6);
    let (other, _, _) = log(6);
    let mut mixed: Vec<ExportLine> = other
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for l in &mut mixed {
        l.workspace_id = cp.workspace_id;
    }
    let mixed: Vec<String> = mixed
        .iter()
        .map(|l| serde_json::to_string(l).unwrap())
        .collect();
    assert!(matches!(
        verify(&mixed, &cp, &key),
        ExportVerdict::Invalid { .. }
    ));
    assert_eq!(
        verify(&lines, &cp, &key),
        ExportVerdict::Valid {
            entries: 6,
            complete: true
        }
    );
}

#[test]
fn filtered_exports_need_proofs_and_forged_checkpoints_are_refused() {
    let (lines, cp, key) = log(10);
    let parsed: Vec<ExportLine> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let leaves: Vec<Hash> = parsed
        .iter()
        .map(|l| merkle::leaf_hash(&l.to_entry().unwrap().entry_hash))
        .collect();
    let picked: Vec<String> = [2usize, 5, 9]
        .iter()
        .map(|&i| {
            let mut l = parsed[i].clone();
            l.inclusion_proof = Some(
                merkle::inclusion_proof(i, &leaves)
                    .unwrap()
                    .iter()
                    .map(|h| crate::hex::encode(h))
                    .collect(),
            );
            serde_json::to_string(&l).unwrap()
        })
        .collect();
    assert_eq!(
        verify(&picked, &cp, &key),
        ExportVerdict::Valid {
            entries: 3,
            complete: false
        }
    );
    let mut wrong_proof: ExportLine = serde_json::from_str(&picked[1]).unwrap();
    wrong_proof.inclusion_proof = Some(
        merkle::inclusion_proof(4, &leaves)
            .unwrap()
            .iter()
            .map(|h| crate::hex::encode(h))
            .collect(),
    );
    let tampered = vec![
        picked[0].clone(),
        serde_json::to_string(&wrong_proof).unwrap(),
    ];
    assert_eq!(bad_line(verify(&tampered, &cp, &key)), 2);
    let unproven = vec![lines[2].clone(), lines[5].clone()];
    assert!(matches!(
        verify(&unproven, &cp, &key),
        ExportVerdict::Invalid { .. }
    ));
    let mut forged = cp.clone();
    forged.tree_size = 9;
    assert!(matches!(
        verify(&lines, &forged, &key),
        ExportVerdict::BadCheckpoint(_)
    ));
}

#[test]
fn reformatted_lines_escapes_and_blank_lines_still_verify() {
    let (lines, cp, key) = log(5);
    let mut edited = lines.clone();
    // Personal data written back with spaces: checked in canonical form.
    edited[1] = edited[1].replace(
        "\"personal\":{\"ip_address\":\"203.0.113.9\"}",
        "\"personal\": { \"ip_address\" : \"203.0.113.9\" }",
    );
    assert_ne!(edited[1], lines[1], "the personal object is in the line");
    // A string with an escape that means the same text is not borrowed, but verifies.
    edited[2] = edited[2].replace("\"users.create\"", "\"users\\u002ecreate\"");
    assert_ne!(edited[2], lines[2]);
    edited[3].push('\r');
    edited.insert(4, "   ".into());
    assert_eq!(
        verify(&edited, &cp, &key),
        ExportVerdict::Valid {
            entries: 5,
            complete: true
        }
    );
}

#[test]
fn the_reason_names_what_is_wrong() {
    let (lines, cp, key) = log(6);
    let reason = |v: ExportVerdict| match v {
        ExportVerdict::Invalid { reason, .. } => reason,
        other => panic!("expected an invalid export, got {other:?}"),
    };
    let mut content = lines.clone();
    content[2] = content[2].replace("\"i\":2", "\"i\":7");
    assert_eq!(
        reason(verify(&content, &cp, &key)),
        "entry content does not match its hash"
    );
    let mut hash = lines.clone();
    let l: ExportLine = serde_json::from_str(&hash[3]).unwrap();
    hash[3] = hash[3].replace(&l.prev_hash, &"ab".repeat(32));
    assert_eq!(
        reason(verify(&hash, &cp, &key)),
        "entry does not follow the entry before it"
    );
    let mut short = lines.clone();
    short[3] = short[3].replace(&l.prev_hash, "abcd");
    assert_eq!(reason(verify(&short, &cp, &key)), "malformed hash field");
    let mut extra = lines.clone();
    extra[0] = extra[0].replacen('{', "{\"unknown\":1,", 1);
    assert_eq!(reason(verify(&extra, &cp, &key)), "not an export line");
}
