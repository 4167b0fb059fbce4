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

/// Destination of messages that go to the real-time event streams (the `events` table)
/// rather than to a webhook.
pub const STREAM: &str = "stream:";

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
    /// Key of the HMAC-SHA256 signature of a webhook's body (never shown by the API).
    #[serde(skip)]
    pub signing_secret: Option<String>,
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
            signing_secret: None,
        }
    }

    /// An event for the real-time streams, written with the change that causes it.
    pub fn event(ws: WorkspaceId, topic: &str, payload: &serde_json::Value) -> Self {
        Self::new(ws, topic, STREAM, payload)
    }

    /// An event whose payload is already JSON text.
    pub fn event_json(ws: WorkspaceId, topic: &str, payload: String) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            workspace_id: ws,
            topic: topic.into(),
            destination: STREAM.into(),
            payload,
            created_at: now(),
            attempts: 0,
            signing_secret: None,
        }
    }

    /// Signs the webhook's body with `secret` at each attempt.
    pub fn signed(mut self, secret: Option<&str>) -> Self {
        self.signing_secret = secret.map(str::to_string);
        self
    }

    pub fn is_event(&self) -> bool {
        self.destination == STREAM
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Delivered,
    /// Try again at `retry_at`, or give up when `None`.
    Failed {
        error: String,
        /// HTTP status of the answer, if there was one.
        status: Option<u16>,
        retry_at: Option<Timestamp>,
    },
    /// Not attempted (the endpoint's circuit is open): try at `retry_at`, without counting
    /// the attempt.
    Deferred {
        reason: String,
        retry_at: Timestamp,
    },
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Attempted and failed; `status` is the HTTP status of the answer, if any.
    Failed { error: String, status: Option<u16> },
    /// Not attempted until `until` (circuit open).
    Deferred { reason: String, until: Timestamp },
}

/// One webhook delivery as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryRecord {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: uuid::Uuid,
    pub topic: String,
    /// The webhook URL, without its query string (which may carry a token).
    pub destination: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub signed: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_attempt_at: Option<Timestamp>,
    /// HTTP status of the last answer.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending messages).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_attempt_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub delivered_at: Option<Timestamp>,
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub topic: Option<String>,
}

/// `url` without its query string and fragment (they may carry tokens).
pub fn redact_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_string()
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Takes up to `limit` pending messages due now, hiding them from other dispatchers
    /// for [`LEASE`] and counting the attempt.
    async fn claim_outbox(&self, limit: i64) -> Result<Vec<OutboxMessage>>;
    async fn settle_outbox(&self, id: uuid::Uuid, outcome: &Delivery) -> Result<()>;
    /// The webhook deliveries of a workspace, newest first.
    async fn list_deliveries(
        &self,
        ws: WorkspaceId,
        f: &DeliveryFilter,
        q: &crate::page::ListQuery,
    ) -> Result<crate::page::Page<DeliveryRecord>>;
    /// Makes a dead (or pending) delivery due again now, with its attempts reset; false if
    /// there is no such delivery in the workspace or it was delivered.
    async fn retry_delivery(
        &self,
        ws: WorkspaceId,
        id: uuid::Uuid,
        audit: crate::audit::AuditDraft,
    ) -> Result<bool>;
}

/// Circuit breakers per webhook endpoint (scheme, host and port): after `threshold`
/// consecutive failures an endpoint is left alone for `open_for` (doubling on each
/// reopening, at most `max_open`); then one trial request decides whether it closes.
/// Deliveries to an open endpoint are deferred without spending their attempts.
pub struct Breakers {
    state: std::sync::Mutex<std::collections::HashMap<String, Breaker>>,
    pub threshold: u32,
    pub open_for: Duration,
    pub max_open: Duration,
}

#[derive(Debug, Default, Clone)]
struct Breaker {
    failures: u32,
    /// Times it opened in a row (for the doubling).
    opened: u32,
    open_until: Option<Timestamp>,
}

impl Default for Breakers {
    fn default() -> Self {
        Self::new(5, Duration::from_secs(60), Duration::from_secs(3600))
    }
}

impl Breakers {
    pub fn new(threshold: u32, open_for: Duration, max_open: Duration) -> Self {
        Self {
            state: Default::default(),
            threshold: threshold.max(1),
            open_for,
            max_open,
        }
    }

    /// The endpoint of `url`: scheme, host and port.
    pub fn endpoint(url: &str) -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        )
    }

    /// `Err(until)` while the endpoint's circuit is open. When it has been open long
    /// enough, lets one trial through (others wait until the trial has settled).
    pub fn check(&self, endpoint: &str, at: Timestamp) -> std::result::Result<(), Timestamp> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(b) = state.get_mut(endpoint) else {
            return Ok(());
        };
        match b.open_until {
            Some(until) if until > at => Err(until),
            Some(_) => {
                // Half-open: this caller is the trial; hold others back meanwhile.
                b.open_until =
                    Some(at + chrono::Duration::from_std(self.open_for).unwrap_or_default());
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records the outcome of a request to the endpoint.
    pub fn record(&self, endpoint: &str, ok: bool, at: Timestamp) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            state.remove(endpoint);
            return;
        }
        if state.len() > 10_000 && !state.contains_key(endpoint) {
            state.retain(|_, b| b.open_until.is_some());
        }
        let b = state.entry(endpoint.to_string()).or_default();
        b.failures += 1;
        if b.open_until.is_some() || b.failures >= self.threshold {
            let factor = 2u32.saturating_pow(b.opened.min(16));
            let open = self.open_for.saturating_mul(factor).min(self.max_open);
            b.opened += 1;
            b.open_until = Some(at + chrono::Duration::from_std(open).unwrap_or_default());
        }
    }
}

/// Sends one message to its destination; `Err` carries a short reason (never secrets).
#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, m: &OutboxMessage) -> std::result::Result<(), SendError>;
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
            Err(SendError::Failed { error, status }) => {
                tracing::warn!(message = %m.id, topic = %m.topic, attempt = m.attempts, %error, "outbox delivery failed");
                let retry_at = (m.attempts < MAX_ATTEMPTS).then(|| {
                    now() + chrono::Duration::from_std(backoff(m.attempts)).unwrap_or_default()
                });
                Delivery::Failed {
                    error,
                    status,
                    retry_at,
                }
            }
            Err(SendError::Deferred { reason, until }) => Delivery::Deferred {
                reason,
                retry_at: until,
            },
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

    /// Waits for a wake-up (or one that came since the last wait), at most `timeout`.
    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.0.notified()).await;
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
    use super::*;

    #[test]
    fn endpoints_are_scheme_host_and_port() {
        assert_eq!(
            Breakers::endpoint("https://User:pw@Hooks.Example.com:8443/a/b?token=x"),
            "https://hooks.example.com:8443"
        );
        assert_eq!(Breakers::endpoint("http://h/x"), "http://h");
        assert_eq!(redact_url("https://h/x?token=secret#f"), "https://h/x");
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_closes_after_a_good_trial() {
        let b = Breakers::new(3, Duration::from_secs(60), Duration::from_secs(600));
        let t0 = now();
        let e = "https://h";
        for _ in 0..2 {
            assert!(b.check(e, t0).is_ok());
            b.record(e, false, t0);
        }
        assert!(b.check(e, t0).is_ok(), "two failures leave it closed");
        b.record(e, false, t0);
        let until = b.check(e, t0).unwrap_err();
        assert_eq!(until, t0 + chrono::Duration::seconds(60));
        // Half-open: one trial, the others wait.
        let t1 = t0 + chrono::Duration::seconds(61);
        assert!(b.check(e, t1).is_ok());
        assert!(b.check(e, t1).is_err());
        // The trial fails: open again, twice as long.
        b.record(e, false, t1);
        assert_eq!(
            b.check(e, t1).unwrap_err(),
            t1 + chrono::Duration::seconds(120)
        );
        // A later trial succeeds: closed, failures forgotten.
        let t2 = t1 + chrono::Duration::seconds(121);
        assert!(b.check(e, t2).is_ok());
        b.record(e, true, t2);
        assert!(b.check(e, t2).is_ok());
        b.record(e, false, t2);
        assert!(
            b.check(e, t2).is_ok(),
            "one failure after closing does not reopen"
        );
        // Other endpoints are unaffected.
        assert!(b.check("https://other", t0).is_ok());
    }

    #[test]
    fn open_time_is_capped() {
        let b = Breakers::new(1, Duration::from_secs(60), Duration::from_secs(300));
        let mut t = now();
        for _ in 0..10 {
            b.record("e", false, t);
            let until = b.check("e", t).unwrap_err();
            assert!(until - t <= chrono::Duration::seconds(300));
            t = until;
            assert!(b.check("e", t).is_ok());
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(super::backoff(1).as_secs(), 30);
        assert_eq!(super::backoff(2).as_secs(), 120);
        assert!(super::backoff(3) > super::backoff(2));
        assert_eq!(super::backoff(50).as_secs(), 6 * 3600);
    }
}
