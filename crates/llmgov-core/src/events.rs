//! Events for the real-time streams (WebSocket and SSE).
//!
//! A change writes its events through the transactional outbox (destination
//! [`crate::outbox::STREAM`]) in its own transaction, so an event exists if and only if the
//! change committed. Every event gets an increasing id; the [`EventHub`] of each instance
//! broadcasts events to that instance's stream clients in id order, and clients resume
//! after a disconnection by asking for the events after the last id they saw (read back
//! from the database, within the retention).
//!
//! What feeds the hub:
//! - by default ([`EventHub::run_local`]), the hub tails the events table: woken at once by
//!   this instance's commits and polling for other instances' commits;
//! - with NATS JetStream configured, a relay publishes the events table to a JetStream
//!   stream and every instance's hub consumes it (see `llmgov_store::nats`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::access::Permission;
use crate::ids::WorkspaceId;
use crate::outbox::Wakeup;
use crate::time::Timestamp;

/// Topics of the metrics stream (`metrics.points`: batches of ingested points).
pub const METRICS_POINTS: &str = "metrics.points";
/// Prefix of the alert topics: `alerts.pending`, `alerts.firing`, `alerts.resolved`,
/// `alerts.acknowledged`, `alerts.snoozed`.
pub const ALERTS: &str = "alerts.";
/// Policy violations (`policy.violation`).
pub const POLICY_VIOLATION: &str = "policy.violation";

/// One committed event.
#[derive(Debug, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub topic: String,
    pub created_at: Timestamp,
    /// JSON text.
    pub payload: String,
    /// `payload` parsed once, however many clients look at it.
    #[serde(skip)]
    parsed: OnceLock<serde_json::Value>,
}

impl Event {
    pub fn new(
        id: i64,
        workspace_id: WorkspaceId,
        topic: String,
        created_at: Timestamp,
        payload: String,
    ) -> Self {
        Self {
            id,
            workspace_id,
            topic,
            created_at,
            payload,
            parsed: OnceLock::new(),
        }
    }

    /// The payload as JSON (`null` if it is not JSON, which the outbox never writes).
    pub fn data(&self) -> &serde_json::Value {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.payload).unwrap_or_default())
    }
}

/// The permission a caller needs to read a topic, or `None` for an unknown topic.
pub fn topic_permission(topic: &str) -> Option<Permission> {
    use crate::access::{Action, Resource};
    let resource = if topic == METRICS_POINTS || topic.starts_with(ALERTS) {
        Resource::Metrics
    } else if topic.starts_with("policy.") {
        Resource::Policies
    } else {
        return None;
    };
    Some(Permission::new(resource, Action::Read))
}

/// Every topic the streams carry, for validation and documentation.
pub const TOPICS: &[&str] = &[
    METRICS_POINTS,
    "alerts.pending",
    "alerts.firing",
    "alerts.resolved",
    "alerts.acknowledged",
    "alerts.snoozed",
    POLICY_VIOLATION,
];

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Events with `id > after`, oldest first, at most `limit`; of one workspace, or of all
    /// (for relays and hubs).
    async fn events_after(
        &self,
        ws: Option<WorkspaceId>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>>;
    /// The highest event id written so far (0 when none).
    async fn last_event_id(&self) -> Result<i64>;
    /// Deletes events created before `before`, and `metrics.points` events created before
    /// `points_before`, that every live relay has published.
    async fn prune_events(&self, before: Timestamp, points_before: Timestamp) -> Result<u64>;
    /// Takes or renews relay `name`'s lease for `holder`; returns the position up to which
    /// events were published, or `None` while another holder's lease runs. A relay that does
    /// not exist yet starts at the current last event.
    async fn claim_relay(
        &self,
        name: &str,
        holder: uuid::Uuid,
        lease: Duration,
    ) -> Result<Option<i64>>;
    /// Records that events up to `position` were published; false if `holder` lost the lease.
    async fn advance_relay(&self, name: &str, holder: uuid::Uuid, position: i64) -> Result<bool>;
    /// Woken after every commit that wrote events.
    fn event_signal(&self) -> Arc<Wakeup>;
}

/// Stream settings (`[events]`).
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Events kept for replay.
    pub retention: Duration,
    /// `metrics.points` events kept for replay (they carry every ingested point, so they are
    /// kept for less long; older points are read with the query API).
    pub points_retention: Duration,
    /// Events a hub buffers for its clients; a client that falls further behind is dropped.
    pub buffer: usize,
    /// How often a hub tailing the database looks for other instances' events.
    pub poll: Duration,
    /// Most events replayed to one subscription.
    pub replay_limit: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            points_retention: Duration::from_secs(3600),
            buffer: 4096,
            poll: Duration::from_secs(1),
            replay_limit: 10_000,
        }
    }
}

/// Fans committed events out to this instance's stream clients, in id order, each once.
pub struct EventHub {
    tx: tokio::sync::broadcast::Sender<Arc<Event>>,
    store: Arc<dyn EventStore>,
    config: EventsConfig,
    /// Highest id broadcast (events arrive in id order; a lower or equal id is a duplicate).
    last: AtomicI64,
}

impl EventHub {
    pub fn new(store: Arc<dyn EventStore>, config: EventsConfig) -> Arc<Self> {
        Arc::new(Self {
            tx: tokio::sync::broadcast::channel(config.buffer.max(1)).0,
            store,
            config,
            last: AtomicI64::new(0),
        })
    }

    pub fn config(&self) -> &EventsConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Live events from now on. A receiver that falls `buffer` events behind gets
    /// `Lagged` and should be dropped.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Highest event id broadcast so far.
    pub fn last_id(&self) -> i64 {
        self.last.load(Ordering::Acquire)
    }

    /// Broadcasts `e` unless an event with its id or a higher one already went out.
    pub fn deliver(&self, e: Event) -> bool {
        let id = e.id;
        if self.last.fetch_max(id, Ordering::AcqRel) >= id {
            return false;
        }
        let _ = self.tx.send(Arc::new(e));
        true
    }

    /// Starts broadcasting after `id` (events up to it count as delivered).
    pub fn start_after(&self, id: i64) {
        self.last.fetch_max(id, Ordering::AcqRel);
    }

    /// Events of `ws` after `after` from the database, oldest first.
    pub async fn replay(&self, ws: WorkspaceId, after: i64, limit: usize) -> Result<Vec<Event>> {
        self.store
            .events_after(Some(ws), after, limit.min(self.config.replay_limit) as i64)
            .await
    }

    /// Feeds the hub by tailing the events table until the task is dropped: at once after
    /// this instance's commits, and every `poll` for other instances' commits.
    pub async fn run_local(self: Arc<Self>) {
        let signal = self.store.event_signal();
        loop {
            match self.store.last_event_id().await {
                Ok(id) => {
                    self.start_after(id);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event hub: cannot read the last event id");
                    tokio::time::sleep(self.config.poll).await;
                }
            }
        }
        loop {
            match self.store.events_after(None, self.last_id(), 1000).await {
                Ok(batch) => {
                    let full = batch.len() == 1000;
                    for e in batch {
                        self.deliver(e);
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "event hub: reading events failed"),
            }
            signal.wait(self.config.poll).await;
        }
    }

    /// Deletes events past the retention every `every`, until the task is dropped.
    pub async fn run_retention(self: Arc<Self>, every: Duration) {
        loop {
            let at = crate::time::now();
            let ago = |d: Duration| at - chrono::Duration::from_std(d).unwrap_or_default();
            let points_retention = self.config.points_retention.min(self.config.retention);
            match self
                .store
                .prune_events(ago(self.config.retention), ago(points_retention))
                .await
            {
                Ok(n) if n > 0 => tracing::info!(events = n, "pruned events past their retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event retention"),
            }
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_need_the_permission_of_their_resource() {
        use crate::access::{Action, Resource};
        assert_eq!(
            topic_permission("metrics.points"),
            Some(Permission::new(Resource::Metrics, Action::Read))
        );
        assert_eq!(
            topic_permission("alerts.firing"),
            Some(Permission::new(Resource::Metrics, Action::Read))
        );
        assert_eq!(
            topic_permission("policy.violation"),
            Some(Permission::new(Resource::Policies, Action::Read))
        );
        assert_eq!(topic_permission("audit.entry"), None);
        for t in TOPICS {
            assert!(topic_permission(t).is_some(), "{t}");
        }
    }
}
