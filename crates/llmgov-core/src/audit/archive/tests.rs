use super::*;
use crate::audit::{AuditDraft, RequestContext};

fn log(n: usize) -> (Vec<AuditEntry>, Checkpoint, Vec<u8>, Vec<Hash>) {
    let ctx = RequestContext {
        actor_id: Some(UserId::new()),
        client_addr: Some("203.0.113.9".into()),
        ..Default::default()
    };
    crate::audit::testing::signed_log(n, |ws, i| {
        let mut d = AuditDraft::new(ws, &ctx, "users.update", "access_control")
            .details(serde_json::json!({"i": i}))
            .before(serde_json::json!({"status": "active"}));
        if i % 3 == 0 {
            d = d.resource("user", i);
        }
        if i % 4 == 1 {
            d.personal.clear();
        }
        d
    })
}

/// Records of `entries` (each with its proof when `proofs`), one `Vec` per record.
fn records(entries: &[AuditEntry], leaves: &[Hash], proofs: bool) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|e| {
            let mut r = Vec::new();
            let p = proofs.then(|| merkle::inclusion_proof(e.sequence as usize, leaves).unwrap());
            write_record(&mut r, e, p.as_deref());
            r
        })
        .collect()
}

fn archive(cp: &Checkpoint, records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, Some(cp));
    for r in records {
        out.extend_from_slice(r);
    }
    write_end(&mut out, records.len() as u64);
    out
}

/// Verifies on one thread and on several with tiny batches, and checks both agree.
fn verify(bytes: &[u8], key: &[u8]) -> ExportVerdict {
    let mut input = bytes;
    let cp = match read_header(&mut input) {
        Ok(Some(cp)) => cp,
        other => panic!("header: {other:?}"),
    };
    let one = verify_records(input, &cp, key, 1, 64).unwrap();
    for (threads, batch) in [(3, 1), (2, 700), (4, 1 << 20)] {
        let many = verify_records(input, &cp, key, threads, batch).unwrap();
        assert_eq!(one, many, "{threads} threads, batches of {batch} bytes");
    }
    assert_eq!(one, verify_archive(bytes, None, key, 2).unwrap());
    one
}

fn bad(v: ExportVerdict) -> (u64, String) {
    match v {
        ExportVerdict::Invalid { line, reason, .. } => (line, reason),
        other => panic!("expected an invalid archive, got {other:?}"),
    }
}

#[test]
fn an_archive_verifies_and_reads_back_as_the_entries() {
    let (entries, cp, key, leaves) = log(11);
    let bytes = archive(&cp, &records(&entries, &leaves, false));
    assert_eq!(
        verify(&bytes, &key),
        ExportVerdict::Valid {
            entries: 11,
            complete: true
        }
    );
    let mut input = &bytes[..];
    assert_eq!(read_header(&mut input).unwrap(), Some(cp.clone()));
    let back: Vec<AuditEntry> = Records::new(input).map(|r| r.unwrap().0).collect();
    assert_eq!(back, entries);
    // The pre-image is what the entry hash covers.
    let mut pre = Vec::new();
    entries[3].view().write_preimage(&mut pre);
    assert_eq!(preimage_hash(&pre).to_vec(), entries[3].entry_hash);
}

#[test]
fn flipped_missing_duplicated_reordered_and_cut_records_are_named() {
    let (entries, cp, key, leaves) = log(9);
    let recs = records(&entries, &leaves, false);
    // A flipped byte anywhere in a record's pre-image or hash is caught at that record.
    for at in [12, 60, 100, recs[4].len() - 40] {
        let mut r = recs.clone();
        r[4][at] ^= 0x20;
        assert_eq!(bad(verify(&archive(&cp, &r), &key)).0, 5, "byte {at}");
    }
    let mut missing = recs.clone();
    missing.remove(3);
    assert_eq!(bad(verify(&archive(&cp, &missing), &key)).0, 4);
    let mut dup = recs.clone();
    dup.insert(6, recs[5].clone());
    assert_eq!(bad(verify(&archive(&cp, &dup), &key)).0, 7);
    let mut reordered = recs.clone();
    reordered.swap(2, 3);
    assert_eq!(bad(verify(&archive(&cp, &reordered), &key)).0, 3);
    assert_eq!(bad(verify(&archive(&cp, &recs[..7]), &key)).0, 8);
    // Personal data edited beside its digest.
    let mut personal = recs.clone();
    let at = personal[2]
        .windows(11)
        .position(|w| w == b"203.0.113.9")
        .unwrap();
    personal[2][at] = b'4';
    assert_eq!(
        bad(verify(&archive(&cp, &personal), &key)),
        (3, "personal data does not match its digest".into())
    );
    // Cut inside a record, and cut before the end marker.
    let whole = archive(&cp, &recs);
    let cut = &whole[..whole.len() - 12 - 30];
    assert_eq!(bad(verify(cut, &key)), (9, "record cut off".into()));
    let no_end = &whole[..whole.len() - 12];
    assert_eq!(
        bad(verify(no_end, &key)),
        (10, "the archive is cut off (no end marker)".into())
    );
    let mut trailing = whole.clone();
    trailing.push(0);
    assert_eq!(bad(verify(&trailing, &key)).1, "data after the end marker");
}

#[test]
fn filtered_archives_carry_proofs_and_forged_proofs_fail() {
    let (entries, cp, key, leaves) = log(10);
    let recs = records(&entries, &leaves, true);
    let picked = vec![recs[2].clone(), recs[5].clone(), recs[9].clone()];
    assert_eq!(
        verify(&archive(&cp, &picked), &key),
        ExportVerdict::Valid {
            entries: 3,
            complete: false
        }
    );
    // Record 5 with the proof of entry 4: the proof does not lead to the checkpoint.
    let mut forged = Vec::new();
    let p4 = merkle::inclusion_proof(4, &leaves).unwrap();
    write_record(&mut forged, &entries[5], Some(&p4));
    let tampered = vec![recs[2].clone(), forged];
    assert_eq!(
        bad(verify(&archive(&cp, &tampered), &key)),
        (2, "inclusion proof does not lead to the checkpoint".into())
    );
    // Dropping the last proven record is caught by the end marker's count.
    let mut bytes = archive(&cp, &picked[..2]);
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(&3u64.to_le_bytes());
    assert_eq!(bad(verify(&bytes, &key)).0, 3);
    // Unproven records of a partial log do not verify.
    let unproven = records(&entries[..4], &leaves, false);
    assert!(matches!(
        verify(&archive(&cp, &unproven[2..]), &key),
        ExportVerdict::Invalid { .. }
    ));
}

#[test]
fn a_forged_checkpoint_or_a_foreign_file_is_refused() {
    let (entries, cp, key, leaves) = log(4);
    let recs = records(&entries, &leaves, false);
    let mut forged = cp.clone();
    forged.tree_size = 3;
    let bytes = archive(&forged, &recs[..3]);
    assert!(matches!(
        verify_archive(&bytes[..], None, &key, 1).unwrap(),
        ExportVerdict::BadCheckpoint(_)
    ));
    // The auditor's own checkpoint wins over the embedded one.
    let good = archive(&forged, &recs);
    assert!(matches!(
        verify_archive(&good[..], Some(&cp), &key, 1).unwrap(),
        ExportVerdict::Valid { entries: 4, .. }
    ));
    let e = verify_archive(&b"{\"sequence\":0}\n"[..], None, &key, 1).unwrap_err();
    assert_eq!(e.to_string(), "not an llmgov audit archive");
    let mut v2 = archive(&cp, &recs);
    v2[4] = 2;
    assert!(
        verify_archive(&v2[..], None, &key, 1)
            .unwrap_err()
            .to_string()
            .contains("version 2")
    );
}

#[test]
fn hostile_records_are_refused_not_trusted() {
    let (entries, cp, key, leaves) = log(3);
    let recs = records(&entries, &leaves, false);
    // A length field claiming more than the record holds.
    let mut r = recs.clone();
    r[1][4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert_eq!(
        bad(verify(&archive(&cp, &r), &key)),
        (2, "malformed record".into())
    );
    // A huge record length is refused before anything is allocated for it.
    let mut huge = Vec::new();
    write_header(&mut huge, Some(&cp));
    huge.extend_from_slice(&(MAX_RECORD + 1).to_le_bytes());
    assert_eq!(bad(verify(&huge, &key)), (1, "record too large".into()));
    // A non-canonical actor id (upper case) does not parse, though lengths line up.
    let mut pre = Vec::new();
    entries[0].view().write_preimage(&mut pre);
    let actor = entries[0].actor_id.unwrap().to_string();
    let at = pre
        .windows(actor.len())
        .position(|w| w == actor.as_bytes())
        .unwrap();
    pre[at..at + actor.len()].make_ascii_uppercase();
    assert!(parse_preimage(&pre).is_none());
    assert!(parse_preimage(&pre[..pre.len() - 1]).is_none());
}
