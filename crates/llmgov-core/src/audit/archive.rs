//! The binary audit archive (`.lgva`): the same entries as a JSON Lines export, laid out so
//! that verifying one costs little more than hashing it.
//!
//! Each record carries the entry's hash *pre-image* (the exact bytes its BLAKE3 entry hash
//! covers after the domain string, see [`super::EntryView::write_preimage`]), so the verifier
//! hashes it with one call and reads the few fields the chain needs at fixed places, instead
//! of parsing JSON and re-encoding every field. The archive embeds the signed checkpoint it
//! was taken at; verification still trusts nothing but the checkpoint public key (or a
//! checkpoint the auditor supplies, which then wins over the embedded one).
//!
//! Format version 1, all integers little-endian:
//!
//! ```text
//! archive    := "LGVA" version:u8(=1) reserved:[u8; 3](=0)
//!               checkpoint_len:u32 checkpoint_json   (length 0: no checkpoint)
//!               record* end
//! record     := body_len:u32(> 0) body
//! body       := preimage_len:u32 preimage entry_hash:[u8; 32]
//!               personal:(0:u8 | 1:u8 len:u32 json)  salt:(0:u8 | 1:u8 len:u8 bytes)
//!               proof_len:u8 proof:[[u8; 32]; proof_len]
//! end        := 0:u32 records:u64
//! ```
//!
//! The end marker makes a cut-off archive fail even when every record carries its own
//! inclusion proof (a filtered archive). A record whose pre-image does not parse exactly
//! (lengths, flags, UTF-8, canonical ids) is refused, so what a verified archive shows is
//! what its hashes commit to.

use std::io::{BufRead, Read};

use super::checkpoint::Checkpoint;
use super::offline::{ExportVerdict, Facts, Line, Proof, check_proof, run};
use super::{AuditEntry, EntryView, pii_digest, preimage_hash};
use crate::ids::{AuditEntryId, UserId, WorkspaceId};
use crate::merkle::{self, Hash};

pub const MAGIC: &[u8; 4] = b"LGVA";
pub const VERSION: u8 = 1;
/// Largest record accepted (an entry's JSON fields are far smaller).
pub const MAX_RECORD: u32 = 16 << 20;
const MAX_CHECKPOINT: u32 = 64 << 10;
/// Bytes of archive per unit of parallel work.
const BATCH_BYTES: usize = 1 << 20;

/// Whether `prefix` (the first bytes of a file) starts an archive.
pub fn is_archive(prefix: &[u8]) -> bool {
    prefix.starts_with(MAGIC)
}

/// The archive header, with the checkpoint it is verified against.
pub fn write_header(out: &mut Vec<u8>, cp: Option<&Checkpoint>) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    let json = cp.map(|c| serde_json::to_vec(c).expect("checkpoint serializes"));
    let json = json.unwrap_or_default();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
}

/// One entry, with its inclusion proof in a filtered archive.
pub fn write_record(out: &mut Vec<u8>, e: &AuditEntry, proof: Option<&[Hash]>) {
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    e.view().write_preimage(out);
    let pre_len = out.len() - at - 8;
    out[at + 4..at + 8].copy_from_slice(&(pre_len as u32).to_le_bytes());
    out.extend_from_slice(&e.entry_hash);
    match &e.personal {
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p.as_bytes());
        }
        None => out.push(0),
    }
    match &e.pii_salt {
        Some(s) => {
            out.push(1);
            out.push(u8::try_from(s.len()).expect("salts are 16 bytes"));
            out.extend_from_slice(s);
        }
        None => out.push(0),
    }
    let proof = proof.unwrap_or_default();
    out.push(u8::try_from(proof.len()).expect("a proof has at most 64 hashes"));
    for h in proof {
        out.extend_from_slice(h);
    }
    let body_len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
}

/// The end marker after `records` records.
pub fn write_end(out: &mut Vec<u8>, records: u64) {
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&records.to_le_bytes());
}

/// Why an archive cannot be read at all (as opposed to entries that do not verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

fn format_err(m: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, FormatError(m.into()))
}

/// Reads the header; returns the embedded checkpoint, if any.
pub fn read_header(input: &mut impl Read) -> std::io::Result<Option<Checkpoint>> {
    let mut head = [0u8; 12];
    if read_full(input, &mut head)? < head.len() || !is_archive(&head) {
        return Err(format_err("not an llmgov audit archive"));
    }
    if head[4] != VERSION {
        return Err(format_err(format!(
            "archive format version {} is not supported (this build reads {VERSION})",
            head[4]
        )));
    }
    let len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_CHECKPOINT {
        return Err(format_err("archive checkpoint is too large"));
    }
    let mut json = vec![0u8; len as usize];
    if read_full(input, &mut json)? < json.len() {
        return Err(format_err("archive ends inside its checkpoint"));
    }
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| format_err(format!("archive checkpoint is not readable: {e}")))
}

/// Verifies an archive: against `checkpoint` if given, else against the one it embeds.
/// Verdicts name records (1-based) where an export names lines.
pub fn verify_archive(
    mut input: impl BufRead,
    checkpoint: Option<&Checkpoint>,
    public_key: &[u8],
    threads: usize,
) -> std::io::Result<ExportVerdict> {
    let embedded = read_header(&mut input)?;
    let Some(cp) = checkpoint.or(embedded.as_ref()) else {
        return Ok(ExportVerdict::BadCheckpoint(
            "the archive holds no checkpoint; pass one".into(),
        ));
    };
    verify_records(input, cp, public_key, threads, BATCH_BYTES)
}

/// Verifies the records of an archive whose header was read already ([`read_header`]).
pub fn verify_archive_records(
    input: impl BufRead,
    cp: &Checkpoint,
    public_key: &[u8],
    threads: usize,
) -> std::io::Result<ExportVerdict> {
    verify_records(input, cp, public_key, threads, BATCH_BYTES)
}

fn verify_records(
    mut input: impl BufRead,
    cp: &Checkpoint,
    public_key: &[u8],
    threads: usize,
    batch_bytes: usize,
) -> std::io::Result<ExportVerdict> {
    let mut state = Reading::Records;
    let verdict = run(
        |buf| next_records(&mut input, batch_bytes, &mut state, buf),
        examine_batch,
        cp,
        public_key,
        threads,
    )?;
    let ExportVerdict::Valid { entries, .. } = verdict else {
        return Ok(verdict);
    };
    let cut = |reason: String| ExportVerdict::Invalid {
        line: entries + 1,
        sequence: None,
        reason,
    };
    Ok(match state {
        Reading::Ended(n) if n == entries => verdict,
        Reading::Ended(n) => cut(format!(
            "the end marker counts {n} records, the archive holds {entries}"
        )),
        Reading::Trailing => cut("data after the end marker".into()),
        // A broken record is reported by the examiner before this is reached.
        Reading::Records | Reading::Broken => cut("the archive is cut off (no end marker)".into()),
    })
}

/// Where the reader of records is.
enum Reading {
    Records,
    /// The end marker was read, with its record count, and nothing followed it.
    Ended(u64),
    Trailing,
    /// A record was cut off or too large; its bytes went to the examiner, which names it.
    Broken,
}

/// Reads whole records into `buf` (emptied first) until `target` bytes, the end marker, or
/// the end of the input. `false` when there is nothing more to examine.
fn next_records(
    input: &mut impl BufRead,
    target: usize,
    state: &mut Reading,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    buf.clear();
    if !matches!(state, Reading::Records) {
        return Ok(false);
    }
    while buf.len() < target {
        let mut len = [0u8; 4];
        let got = read_full(input, &mut len)?;
        if got == 0 {
            break;
        }
        buf.extend_from_slice(&len[..got]);
        if got < 4 {
            *state = Reading::Broken;
            break;
        }
        let n = u32::from_le_bytes(len);
        if n == 0 {
            buf.truncate(buf.len() - 4);
            let mut count = [0u8; 8];
            if read_full(input, &mut count)? < 8 {
                *state = Reading::Broken;
                break;
            }
            let mut more = [0u8; 1];
            *state = if read_full(input, &mut more)? > 0 {
                Reading::Trailing
            } else {
                Reading::Ended(u64::from_le_bytes(count))
            };
            break;
        }
        if n > MAX_RECORD {
            *state = Reading::Broken;
            break;
        }
        let got = input.take(n.into()).read_to_end(buf)?;
        if got < n as usize {
            *state = Reading::Broken;
            break;
        }
    }
    Ok(!buf.is_empty())
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn examine_batch(batch: &[u8], cp: &Checkpoint, root: &Hash, out: &mut Vec<Line>) {
    let mut rest = batch;
    while !rest.is_empty() {
        let unreadable = |reason| Line::Unreadable {
            sequence: None,
            reason,
        };
        let Some((len, after)) = take_u32(rest) else {
            out.push(unreadable("record cut off"));
            break;
        };
        if len > MAX_RECORD {
            out.push(unreadable("record too large"));
            break;
        }
        let Some((body, after)) = after.split_at_checked(len as usize) else {
            out.push(unreadable("record cut off"));
            break;
        };
        out.push(examine(body, cp, root));
        rest = after;
    }
}

/// A record's parts, borrowed from the archive.
pub struct RecordRef<'a> {
    pub preimage: &'a [u8],
    pub entry_hash: Hash,
    pub personal: Option<&'a [u8]>,
    pub salt: Option<&'a [u8]>,
    pub proof: &'a [u8],
}

/// Splits a record body; `None` if it is not laid out as the format says.
pub fn split_record(body: &[u8]) -> Option<RecordRef<'_>> {
    let (pre_len, rest) = take_u32(body)?;
    let (preimage, rest) = rest.split_at_checked(pre_len as usize)?;
    let (hash, rest) = rest.split_first_chunk::<32>()?;
    let (personal, rest) = match rest.split_first()? {
        (0, rest) => (None, rest),
        (1, rest) => {
            let (len, rest) = take_u32(rest)?;
            let (p, rest) = rest.split_at_checked(len as usize)?;
            (Some(p), rest)
        }
        _ => return None,
    };
    let (salt, rest) = match rest.split_first()? {
        (0, rest) => (None, rest),
        (1, rest) => {
            let (&len, rest) = rest.split_first()?;
            let (s, rest) = rest.split_at_checked(len as usize)?;
            (Some(s), rest)
        }
        _ => return None,
    };
    let (&count, proof) = rest.split_first()?;
    if proof.len() != 32 * count as usize {
        return None;
    }
    Some(RecordRef {
        preimage,
        entry_hash: *hash,
        personal,
        salt,
        proof,
    })
}

/// The fields the chain needs, read at their fixed places in a pre-image: its previous
/// hash, workspace, sequence and personal-data digest. The rest of the pre-image needs no
/// parsing to be verified, because the entry hash covers every byte of it; reading an
/// archive back ([`Records`]) parses it strictly.
struct Head<'a> {
    prev_hash: Hash,
    workspace_id: &'a [u8],
    sequence: i64,
    pii_digest: &'a [u8],
}

fn head(pre: &[u8]) -> Option<Head<'_>> {
    const LEN32: [u8; 8] = 32u64.to_le_bytes();
    const LEN16: [u8; 8] = 16u64.to_le_bytes();
    let (fixed, _) = pre.split_first_chunk::<72>()?;
    let (rest, tail) = pre.split_last_chunk::<40>()?;
    if rest.len() < 72 || fixed[..8] != LEN32 || fixed[40..48] != LEN16 || tail[..8] != LEN32 {
        return None;
    }
    Some(Head {
        prev_hash: fixed[8..40].try_into().expect("32 bytes"),
        workspace_id: &pre[48..64],
        sequence: i64::from_le_bytes(fixed[64..72].try_into().expect("8 bytes")),
        pii_digest: &tail[8..],
    })
}

fn examine(body: &[u8], cp: &Checkpoint, root: &Hash) -> Line {
    let Some(r) = split_record(body) else {
        return Line::Unreadable {
            sequence: None,
            reason: "malformed record",
        };
    };
    let Some(h) = head(r.preimage) else {
        return Line::Unreadable {
            sequence: None,
            reason: "malformed entry",
        };
    };
    let personal = match r.personal.map(std::str::from_utf8) {
        Some(Err(_)) => {
            return Line::Unreadable {
                sequence: Some(h.sequence),
                reason: "malformed entry",
            };
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let mut own = None;
    if (personal.is_some() || r.salt.is_some())
        && pii_digest(personal, r.salt).as_slice() != h.pii_digest
    {
        own = Some("personal data does not match its digest");
    }
    if own.is_none() && preimage_hash(r.preimage) != r.entry_hash {
        own = Some("entry content does not match its hash");
    }
    let leaf = merkle::leaf_hash(&r.entry_hash);
    let proof = if r.proof.is_empty() {
        Proof::Absent
    } else {
        let path: Vec<Hash> = r
            .proof
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        check_proof(h.sequence, &leaf, &path, cp, root)
    };
    Line::Entry(Facts {
        sequence: h.sequence,
        in_workspace: h.workspace_id == cp.workspace_id.0.as_bytes(),
        prev_hash: h.prev_hash,
        entry_hash: r.entry_hash,
        leaf,
        own,
        proof,
    })
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (n, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*n), rest))
}

/// Reads an entry pre-image back into its fields: exactly the layout
/// [`EntryView::write_preimage`] writes, or `None`.
pub fn parse_preimage(pre: &[u8]) -> Option<EntryView<'_>> {
    let mut c = Cursor(pre);
    let prev_hash = c.field()?;
    let ws = c.field()?;
    let sequence = i64::from_le_bytes(c.fixed::<8>()?);
    let id = c.field()?;
    let micros = i64::from_le_bytes(c.fixed::<8>()?);
    let event_type = c.str()?;
    let event_category = c.str()?;
    let actor_type = c.str()?;
    let actor_id = match c.opt_str()? {
        None => None,
        Some(text) => {
            let id = uuid::Uuid::try_parse(text).ok()?;
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            // Only the canonical spelling hashes the same once shown as JSON.
            if id.hyphenated().encode_lower(&mut buf) != text {
                return None;
            }
            Some(UserId(id))
        }
    };
    let view = EntryView {
        prev_hash: (prev_hash.len() == 32).then_some(prev_hash)?,
        workspace_id: WorkspaceId(uuid::Uuid::from_slice(ws).ok()?),
        sequence,
        id: AuditEntryId(uuid::Uuid::from_slice(id).ok()?),
        timestamp: chrono::DateTime::from_timestamp_micros(micros)?,
        event_type,
        event_category,
        actor_type,
        actor_id,
        action: c.str()?,
        resource_type: c.opt_str()?,
        resource_id: c.opt_str()?,
        status: c.str()?,
        request_id: c.opt_str()?,
        session_id: c.opt_str()?,
        details: c.str()?,
        before_state: c.opt_str()?,
        after_state: c.opt_str()?,
        pii_digest: c.field()?,
    };
    (view.pii_digest.len() == 32 && c.0.is_empty()).then_some(view)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn fixed<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (v, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*v)
    }
    fn field(&mut self) -> Option<&'a [u8]> {
        let len = u64::from_le_bytes(self.fixed::<8>()?);
        let (v, rest) = self.0.split_at_checked(usize::try_from(len).ok()?)?;
        self.0 = rest;
        Some(v)
    }
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.field()?).ok()
    }
    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.fixed::<1>()? {
            [0] => Some(None),
            [1] => self.str().map(Some),
            _ => None,
        }
    }
}

/// Reads the records of an archive back as entries (after [`read_header`]), e.g. to turn an
/// archive into JSON Lines. Reading is not verifying: verify the archive first.
pub struct Records<R> {
    input: R,
    done: bool,
    buf: Vec<u8>,
}

impl<R: Read> Records<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            done: false,
            buf: Vec::new(),
        }
    }

    fn next_record(&mut self) -> std::io::Result<Option<(AuditEntry, Option<Vec<Hash>>)>> {
        let mut len = [0u8; 4];
        if read_full(&mut self.input, &mut len)? < 4 {
            return Err(format_err("the archive is cut off (no end marker)"));
        }
        let n = u32::from_le_bytes(len);
        if n == 0 {
            return Ok(None);
        }
        if n > MAX_RECORD {
            return Err(format_err("record too large"));
        }
        self.buf.resize(n as usize, 0);
        if read_full(&mut self.input, &mut self.buf)? < n as usize {
            return Err(format_err("record cut off"));
        }
        let bad = || format_err("malformed record");
        let r = split_record(&self.buf).ok_or_else(bad)?;
        let v = parse_preimage(r.preimage).ok_or_else(bad)?;
        let personal = match r.personal {
            Some(p) => Some(String::from_utf8(p.to_vec()).map_err(|_| bad())?),
            None => None,
        };
        let entry = AuditEntry {
            id: v.id,
            workspace_id: v.workspace_id,
            sequence: v.sequence,
            timestamp: v.timestamp,
            event_type: v.event_type.into(),
            event_category: v.event_category.into(),
            actor_id: v.actor_id,
            actor_type: v.actor_type.into(),
            action: v.action.into(),
            resource_type: v.resource_type.map(Into::into),
            resource_id: v.resource_id.map(Into::into),
            status: v.status.into(),
            request_id: v.request_id.map(Into::into),
            session_id: v.session_id.map(Into::into),
            details: v.details.into(),
            before_state: v.before_state.map(Into::into),
            after_state: v.after_state.map(Into::into),
            personal,
            pii_salt: r.salt.map(<[u8]>::to_vec),
            pii_digest: v.pii_digest.to_vec(),
            prev_hash: v.prev_hash.to_vec(),
            entry_hash: r.entry_hash.to_vec(),
        };
        let proof = (!r.proof.is_empty()).then(|| {
            r.proof
                .chunks_exact(32)
                .map(|c| c.try_into().expect("32 bytes"))
                .collect()
        });
        Ok(Some((entry, proof)))
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = std::io::Result<(AuditEntry, Option<Vec<Hash>>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_record();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r.transpose()
    }
}

#[cfg(test)]
mod tests;
