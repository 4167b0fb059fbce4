//! Group commit of evaluation records. Every guardrail call must be recorded and audited
//! before it answers (audit fails closed), but one transaction per call serialises on the
//! audit log's head. Calls hand their record to one writer task, which commits whatever has
//! queued meanwhile in one transaction per workspace and then answers each caller with the
//! outcome of its transaction. Under no load a batch is one record, so nothing waits for a
//! timer; under load batches grow and the audit head is taken once per batch.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::model::Violation;
use super::store::EvaluationRecord;
use crate::audit::AuditDraft;
use crate::ids::WorkspaceId;
use crate::outbox::{OutboxMessage, Wakeup};
use crate::store::Store;
use crate::{CoreError, Result};

/// Most records in one transaction.
const MAX_BATCH: usize = 512;
/// Records waiting for the writer before callers wait to queue.
const QUEUE: usize = 4096;

struct Job {
    record: EvaluationRecord,
    violations: Vec<Violation>,
    audit: AuditDraft,
    outbox: Vec<OutboxMessage>,
    done: oneshot::Sender<Result<()>>,
}

/// Hands evaluation records to the writer task, started on first use.
pub struct Recorder {
    store: Arc<dyn Store>,
    wakeup: Arc<Wakeup>,
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl Recorder {
    pub fn new(store: Arc<dyn Store>, wakeup: Arc<Wakeup>) -> Self {
        Self {
            store,
            wakeup,
            queue: OnceLock::new(),
        }
    }

    fn sender(&self) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(write_loop(
                Arc::clone(&self.store),
                Arc::clone(&self.wakeup),
                rx,
            ));
            tx
        })
    }

    /// Records one evaluation; returns once it is committed (or failed with its batch).
    pub async fn record(
        &self,
        record: EvaluationRecord,
        violations: Vec<Violation>,
        audit: AuditDraft,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.sender()
            .send(Job {
                record,
                violations,
                audit,
                outbox,
                done,
            })
            .await
            .map_err(|_| CoreError::AuditUnavailable)?;
        wait.await.map_err(|_| CoreError::AuditUnavailable)?
    }
}

async fn write_loop(store: Arc<dyn Store>, wakeup: Arc<Wakeup>, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut by_ws: BTreeMap<WorkspaceId, Vec<Job>> = BTreeMap::new();
        for job in batch.drain(..) {
            by_ws.entry(job.record.workspace_id).or_default().push(job);
        }
        for (ws, jobs) in by_ws {
            let mut items = Vec::with_capacity(jobs.len());
            let mut audits = Vec::with_capacity(jobs.len());
            let mut waiting = Vec::with_capacity(jobs.len());
            let mut outbox = Vec::new();
            for j in jobs {
                items.push((j.record, j.violations));
                audits.push(j.audit);
                outbox.extend(j.outbox);
                waiting.push(j.done);
            }
            let result = store.record_evaluations(ws, &items, audits, &outbox).await;
            if result.is_ok() && !outbox.is_empty() {
                wakeup.wake();
            }
            for w in waiting {
                let _ = w.send(result.clone());
            }
        }
    }
}
