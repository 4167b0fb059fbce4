//! Transactional outbox. A message is stored in the transaction of the change that causes
//! it, so it exists if and only if the change committed; a dispatcher delivers it afterwards
//! and retries with backoff. Delivery is at least once: receivers deduplicate by message id
//! (sent as `X-Llmgov-Message-Id`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::Result;
use crate::ids::WorkspaceId;
use crate::time::{Timestamp, now};

/// Attempts before a message is given up (`dead`).
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed message is hidden from other dispatchers while it is being sent.
pub const LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxMessage {
    pub id: uuid::Uuid,
    pub workspace_id: WorkspaceId,
    /// What happened, e.g. `policy.violation`.
    pub topic: String,
    /// Where it goes: a webhook URL.
    pub destination: String,
    /// JSON body.
    pub payload: String,
    pub created_at: Timestamp,
    pub attempts: i32,
}

impl OutboxMessage {
    pub fn new(
        ws: WorkspaceId,
        topic: &str,
        destination: &str,
        payload: &serde_json::Value,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            workspace_id: ws,
            topic: topic.into(),
            destination: destination.into(),
            payload: payload.to_string(),
            created_at: now(),
            attempts: 0,
        }
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Delivered,
    /// Try again at `retry_at`, or give up when `None`.
    Failed {
        error: String,
        retry_at: Option<Timestamp>,
    },
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Takes up to `limit` pending messages due now, hiding them from other dispatchers
    /// for [`LEASE`] and counting the attempt.
    async fn claim_outbox(&self, limit: i64) -> Result<Vec<OutboxMessage>>;
    async fn settle_outbox(&self, id: uuid::Uuid, outcome: &Delivery) -> Result<()>;
    /// Messages of a workspace, newest first (for operators and tests).
    async fn list_outbox(
        &self,
        ws: WorkspaceId,
        limit: i64,
    ) -> Result<Vec<(OutboxMessage, String)>>;
}

/// Sends one message to its destination; `Err` carries a short reason (never secrets).
#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, m: &OutboxMessage) -> std::result::Result<(), String>;
}

/// Delay before attempt `n + 1` after `n` failed attempts: 30 s, 2 min, 8 min, ... capped
/// at 6 h.
pub fn backoff(attempts: i32) -> Duration {
    let secs = 30u64.saturating_mul(4u64.saturating_pow(attempts.clamp(1, 10) as u32 - 1));
    Duration::from_secs(secs.min(6 * 3600))
}

/// Delivers what is due once; returns how many messages it handled.
pub async fn dispatch_once(store: &dyn OutboxStore, sender: &dyn Sender) -> Result<usize> {
    let batch = store.claim_outbox(100).await?;
    for m in &batch {
        let outcome = match sender.send(m).await {
            Ok(()) => Delivery::Delivered,
            Err(error) => {
                tracing::warn!(message = %m.id, topic = %m.topic, attempt = m.attempts, %error, "outbox delivery failed");
                let retry_at = (m.attempts < MAX_ATTEMPTS).then(|| {
                    now() + chrono::Duration::from_std(backoff(m.attempts)).unwrap_or_default()
                });
                Delivery::Failed { error, retry_at }
            }
        };
        store.settle_outbox(m.id, &outcome).await?;
    }
    Ok(batch.len())
}

/// Wakes the dispatcher when a transaction has added messages.
#[derive(Default)]
pub struct Wakeup(tokio::sync::Notify);

impl Wakeup {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Runs the dispatcher until the task is dropped: on every wake-up, and every `poll` for
/// retries and messages written by other instances.
pub async fn run_dispatcher(
    store: Arc<dyn OutboxStore>,
    sender: Arc<dyn Sender>,
    wakeup: Arc<Wakeup>,
    poll: Duration,
) {
    loop {
        loop {
            match dispatch_once(&*store, &*sender).await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "outbox dispatcher");
                    break;
                }
            }
        }
        let _ = tokio::time::timeout(poll, wakeup.0.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(super::backoff(1).as_secs(), 30);
        assert_eq!(super::backoff(2).as_secs(), 120);
        assert!(super::backoff(3) > super::backoff(2));
        assert_eq!(super::backoff(50).as_secs(), 6 * 3600);
    }
}
