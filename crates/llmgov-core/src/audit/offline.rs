//! Offline verification of an export, which trusts nothing but a checkpoint and the
//! checkpoint public key.
//!
//! A complete export (sequences 0 to the checkpoint's size − 1) is verified by replaying the
//! hash chain and rebuilding the Merkle tree, whose head must equal the signed checkpoint.
//! A filtered export carries an inclusion proof per entry against the checkpoint.
//!
//! Work is split in two stages. Everything about one line (parsing, its content and
//! personal-data hashes, its leaf hash, its inclusion proof) is independent of the other
//! lines and runs on several threads over batches of lines; what links lines (order, the
//! hash chain, the tree frontier) runs on the calling thread in line order. Memory stays
//! bounded: a few batches per thread in flight, the chain state and the tree's frontier.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::checkpoint::Checkpoint;
use super::{EntryView, GENESIS_HASH, pii_digest};
use crate::ids::{AuditEntryId, UserId, WorkspaceId};
use crate::merkle::{self, Frontier, Hash};
use crate::time::Timestamp;

/// Result of an offline verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportVerdict {
    /// Every line verified; `entries` lines, `complete` if they were the whole log.
    Valid { entries: u64, complete: bool },
    /// `line` is 1-based; `sequence` is the entry's if it could be read.
    Invalid {
        line: u64,
        sequence: Option<i64>,
        reason: String,
    },
    /// The checkpoint itself is not signed by the given key.
    BadCheckpoint(String),
}

/// Verifies an export read from `input` against `checkpoint` and `public_key`, on as many
/// threads as the machine has cores.
pub fn verify_export(
    input: impl BufRead,
    checkpoint: &Checkpoint,
    public_key: &[u8],
) -> std::io::Result<ExportVerdict> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    verify_export_with(input, checkpoint, public_key, threads)
}

/// [`verify_export`] on `threads` threads (1: all on the calling thread).
pub fn verify_export_with(
    input: impl BufRead,
    checkpoint: &Checkpoint,
    public_key: &[u8],
    threads: usize,
) -> std::io::Result<ExportVerdict> {
    verify(input, checkpoint, public_key, threads, BATCH_BYTES)
}

/// Bytes of export per unit of parallel work: large enough to amortise the hand-over.
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued per worker; with the one being worked on, bounds memory per thread.
const DEPTH: usize = 2;

/// One exported line as read: strings borrowed from the line where it has no escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRef<'a> {
    sequence: i64,
    id: AuditEntryId,
    workspace_id: WorkspaceId,
    timestamp: Timestamp,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    event_category: Cow<'a, str>,
    actor_id: Option<UserId>,
    #[serde(borrow)]
    actor_type: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    details: &'a RawValue,
    #[serde(borrow)]
    before_state: Option<&'a RawValue>,
    #[serde(borrow)]
    after_state: Option<&'a RawValue>,
    #[serde(borrow)]
    personal: Option<&'a RawValue>,
    #[serde(borrow)]
    pii_salt: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pii_digest: Cow<'a, str>,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    entry_hash: Cow<'a, str>,
    #[serde(default, borrow)]
    inclusion_proof: Option<Vec<Cow<'a, str>>>,
}

/// A batch of input and the lines examined from it; both buffers go round and are reused.
type Work = (Vec<u8>, Vec<Line>);
/// A worker's batch queue and result queue.
type Worker = (SyncSender<Work>, Receiver<Work>);

/// What the sequential stage needs to know of one line (or archive record).
pub(super) enum Line {
    Blank,
    /// The line cannot be read as an entry.
    Unreadable {
        sequence: Option<i64>,
        reason: &'static str,
    },
    Entry(Facts),
}

pub(super) struct Facts {
    pub sequence: i64,
    pub in_workspace: bool,
    pub prev_hash: Hash,
    pub entry_hash: Hash,
    pub leaf: Hash,
    /// Why the entry's own content or personal data does not match its hashes.
    pub own: Option<&'static str>,
    pub proof: Proof,
}

pub(super) enum Proof {
    Absent,
    Valid,
    Wrong,
    Malformed,
}

/// Everything about one line that does not depend on the other lines.
fn examine(text: &[u8], cp: &Checkpoint, root: &Hash) -> Line {
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    let Ok(l) = serde_json::from_slice::<LineRef>(text) else {
        return Line::Unreadable {
            sequence: None,
            reason: "not an export line",
        };
    };
    let malformed = Line::Unreadable {
        sequence: Some(l.sequence),
        reason: "malformed hash field",
    };
    let (Some(prev_hash), Some(entry_hash), Some(digest)) = (
        crate::hex::decode32(&l.prev_hash),
        crate::hex::decode32(&l.entry_hash),
        crate::hex::decode32(&l.pii_digest),
    ) else {
        return malformed;
    };
    let mut salt_buf = [0u8; 64];
    let salt = match &l.pii_salt {
        Some(s) if s.len() <= 2 * salt_buf.len() => {
            let salt = &mut salt_buf[..s.len() / 2];
            if crate::hex::decode_into(s, salt).is_none() {
                return malformed;
            }
            Some(&*salt)
        }
        Some(_) => return malformed,
        None => None,
    };
    let mut own = None;
    if (l.personal.is_some() || salt.is_some()) && !personal_matches(l.personal, salt, &digest) {
        own = Some("personal data does not match its digest");
    }
    let view = EntryView {
        prev_hash: &prev_hash,
        workspace_id: l.workspace_id,
        sequence: l.sequence,
        id: l.id,
        timestamp: l.timestamp,
        event_type: &l.event_type,
        event_category: &l.event_category,
        actor_type: &l.actor_type,
        actor_id: l.actor_id,
        action: &l.action,
        resource_type: l.resource_type.as_deref(),
        resource_id: l.resource_id.as_deref(),
        status: &l.status,
        request_id: l.request_id.as_deref(),
        session_id: l.session_id.as_deref(),
        details: l.details.get(),
        before_state: l.before_state.map(RawValue::get),
        after_state: l.after_state.map(RawValue::get),
        pii_digest: &digest,
    };
    if own.is_none() && view.hash() != entry_hash {
        own = Some("entry content does not match its hash");
    }
    let leaf = merkle::leaf_hash(&entry_hash);
    let proof = match &l.inclusion_proof {
        None => Proof::Absent,
        Some(p) => match p
            .iter()
            .map(|h| crate::hex::decode32(h))
            .collect::<Option<Vec<_>>>()
        {
            None => Proof::Malformed,
            Some(path) => check_proof(l.sequence, &leaf, &path, cp, root),
        },
    };
    Line::Entry(Facts {
        sequence: l.sequence,
        in_workspace: l.workspace_id == cp.workspace_id,
        prev_hash,
        entry_hash,
        leaf,
        own,
        proof,
    })
}

/// An inclusion proof of the entry at `sequence` against the checkpoint.
pub(super) fn check_proof(
    sequence: i64,
    leaf: &Hash,
    path: &[Hash],
    cp: &Checkpoint,
    root: &Hash,
) -> Proof {
    if sequence < 0 {
        return Proof::Wrong;
    }
    match merkle::verify_inclusion(sequence as u64, cp.tree_size, leaf, path, root) {
        Ok(()) => Proof::Valid,
        Err(_) => Proof::Wrong,
    }
}

/// Personal data against its digest. The exporter writes the stored text as it is; a file
/// whose object was re-serialised (spacing, key order) is checked in canonical form.
fn personal_matches(personal: Option<&RawValue>, salt: Option<&[u8]>, digest: &Hash) -> bool {
    if pii_digest(personal.map(RawValue::get), salt) == *digest {
        return true;
    }
    let Some(raw) = personal else {
        return false;
    };
    serde_json::from_str::<BTreeMap<String, String>>(raw.get())
        .ok()
        .and_then(|m| serde_json::to_string(&m).ok())
        .is_some_and(|canonical| pii_digest(Some(&canonical), salt) == *digest)
}

fn examine_batch(batch: &[u8], cp: &Checkpoint, root: &Hash, out: &mut Vec<Line>) {
    let batch = batch.strip_suffix(b"\n").unwrap_or(batch);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', batch).chain([batch.len()]) {
        out.push(examine(&batch[start..end], cp, root));
        start = end + 1;
    }
}

/// Reads whole lines into `buf` (emptied first): `target` bytes and the rest of the line
/// they end in, or what is left. `false` at the end of the input.
fn next_batch(input: &mut impl BufRead, target: usize, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(!buf.is_empty());
        }
        if buf.len() < target {
            let n = chunk.len().min(target - buf.len());
            buf.extend_from_slice(&chunk[..n]);
            input.consume(n);
        } else if let Some(end) = memchr::memchr(b'\n', chunk) {
            buf.extend_from_slice(&chunk[..=end]);
            input.consume(end + 1);
            return Ok(true);
        } else {
            let n = chunk.len();
            buf.extend_from_slice(chunk);
            input.consume(n);
        }
    }
}

/// The sequential stage: order, chain links and the tree, fed lines in order.
struct Linker<'a> {
    cp: &'a Checkpoint,
    line: u64,
    count: u64,
    prev: Hash,
    frontier: Frontier,
    contiguous: bool,
    all_proven: bool,
    last_seq: Option<i64>,
}

impl Linker<'_> {
    fn feed(&mut self, l: Line) -> Result<(), ExportVerdict> {
        self.line += 1;
        let bad = |sequence: Option<i64>, reason: &str| ExportVerdict::Invalid {
            line: self.line,
            sequence,
            reason: reason.to_string(),
        };
        let f = match l {
            Line::Blank => return Ok(()),
            Line::Unreadable { sequence, reason } => return Err(bad(sequence, reason)),
            Line::Entry(f) => f,
        };
        let seq = Some(f.sequence);
        if !f.in_workspace {
            return Err(bad(seq, "entry of another workspace"));
        }
        if f.sequence < 0 || f.sequence as u64 >= self.cp.tree_size {
            return Err(bad(seq, "entry beyond the checkpoint"));
        }
        if self.last_seq.is_some_and(|s| f.sequence <= s) {
            return Err(bad(seq, "entries out of order or repeated"));
        }
        self.contiguous &= f.sequence == self.count as i64;
        if self.contiguous {
            if f.prev_hash != self.prev {
                return Err(bad(seq, "entry does not follow the entry before it"));
            }
            if let Some(reason) = f.own {
                return Err(bad(seq, reason));
            }
            self.prev = f.entry_hash;
            self.frontier.push(self.count, f.leaf);
        } else if let Some(reason) = f.own {
            return Err(bad(seq, reason));
        }
        match f.proof {
            Proof::Valid => {}
            Proof::Malformed => return Err(bad(seq, "malformed inclusion proof")),
            Proof::Wrong => {
                return Err(bad(seq, "inclusion proof does not lead to the checkpoint"));
            }
            Proof::Absent if !self.contiguous => {
                return Err(bad(seq, "entry missing (gap) and no inclusion proof"));
            }
            Proof::Absent => self.all_proven = false,
        }
        self.last_seq = seq;
        self.count += 1;
        Ok(())
    }

    fn finish(self, root: &Hash) -> ExportVerdict {
        let count = self.count;
        let complete = self.contiguous && count == self.cp.tree_size;
        // Lines without proofs are vouched for by the rebuilt tree, so the export must be whole.
        if !self.all_proven && !complete {
            return ExportVerdict::Invalid {
                line: count + 1,
                sequence: Some(count as i64),
                reason: format!("export ends after {count} of {} entries", self.cp.tree_size),
            };
        }
        if complete && self.frontier.root() != *root {
            return ExportVerdict::Invalid {
                line: count,
                sequence: Some(count as i64 - 1),
                reason: "the rebuilt tree does not match the checkpoint".into(),
            };
        }
        ExportVerdict::Valid {
            entries: count,
            complete,
        }
    }
}

fn verify(
    mut input: impl BufRead,
    cp: &Checkpoint,
    public_key: &[u8],
    threads: usize,
    batch_bytes: usize,
) -> std::io::Result<ExportVerdict> {
    run(
        |buf| next_batch(&mut input, batch_bytes, buf),
        examine_batch,
        cp,
        public_key,
        threads,
    )
}

/// Examines one batch (whole lines or records), appending what it finds to the vector.
pub(super) type Examine = fn(&[u8], &Checkpoint, &Hash, &mut Vec<Line>);

/// Checks the checkpoint, then verifies the batches `next` reads into the buffer it is given
/// (`false` at the end), each turned into [`Line`]s by `examine` on worker threads and
/// linked in order here. Buffers are reused, so memory stays flat however long the input.
pub(super) fn run(
    mut next: impl FnMut(&mut Vec<u8>) -> std::io::Result<bool>,
    examine: Examine,
    cp: &Checkpoint,
    public_key: &[u8],
    threads: usize,
) -> std::io::Result<ExportVerdict> {
    if let Err(e) = cp.verify(public_key) {
        return Ok(ExportVerdict::BadCheckpoint(e.to_string()));
    }
    let Ok(root) = cp.root() else {
        return Ok(ExportVerdict::BadCheckpoint(
            "root hash is malformed".into(),
        ));
    };
    let mut linker = Linker {
        cp,
        line: 0,
        count: 0,
        prev: GENESIS_HASH,
        frontier: Frontier::default(),
        contiguous: true,
        all_proven: true,
        last_seq: None,
    };
    if threads <= 1 {
        let (mut batch, mut lines) = (Vec::new(), Vec::new());
        while next(&mut batch)? {
            examine(&batch, cp, &root, &mut lines);
            for l in lines.drain(..) {
                if let Err(v) = linker.feed(l) {
                    return Ok(v);
                }
            }
        }
        return Ok(linker.finish(&root));
    }
    std::thread::scope(|s| {
        // Batch i goes to worker i % threads, and results are taken back in the same
        // round-robin order, so they arrive in line order without reordering.
        let mut workers: Vec<Worker> = Vec::new();
        for _ in 0..threads {
            let (to_worker, batches) = sync_channel::<Work>(DEPTH);
            let (results, from_worker) = sync_channel::<Work>(DEPTH);
            let root = &root;
            s.spawn(move || {
                for (batch, mut lines) in batches {
                    examine(&batch, cp, root, &mut lines);
                    if results.send((batch, lines)).is_err() {
                        break;
                    }
                }
            });
            workers.push((to_worker, from_worker));
        }
        let (mut sent, mut taken) = (0usize, 0usize);
        let mut free: Vec<Work> = Vec::new();
        // A worker only stops early if it panicked; its batches then never come back.
        let failed = || std::io::Error::other("verification worker failed");
        let take = |taken: &mut usize, linker: &mut Linker, free: &mut Vec<Work>| {
            let (batch, mut lines) = workers[*taken % threads].1.recv().map_err(|_| failed())?;
            *taken += 1;
            let bad = lines.drain(..).find_map(|l| linker.feed(l).err());
            free.push((batch, lines));
            Ok::<_, std::io::Error>(bad)
        };
        loop {
            if sent - taken == threads * DEPTH
                && let Some(v) = take(&mut taken, &mut linker, &mut free)?
            {
                return Ok(v);
            }
            let (mut batch, lines) = free.pop().unwrap_or_default();
            if !next(&mut batch)? {
                break;
            }
            workers[sent % threads]
                .0
                .send((batch, lines))
                .map_err(|_| failed())?;
            sent += 1;
        }
        while taken < sent {
            if let Some(v) = take(&mut taken, &mut linker, &mut free)? {
                return Ok(v);
            }
        }
        Ok(linker.finish(&root))
    })
}

#[cfg(test)]
mod tests;
