//! Events through NATS JetStream, so that a client connected to one instance sees what
//! another instance committed.
//!
//! - **Relay.** One instance at a time (a lease in `event_relays`) publishes the events
//!   table to the JetStream stream in id order, each message with its event id as
//!   `Nats-Msg-Id` (JetStream drops a duplicate within its window), and records how far it
//!   got only after JetStream acknowledged. While NATS is down nothing advances: the events
//!   wait in the database and go out when it is back, so nothing is lost.
//! - **Consumers.** Every instance reads the stream with an ordered push consumer and hands
//!   the events to its [`EventHub`], which drops an id it already delivered (so a republished
//!   event never reaches a client twice). After a disconnection the consumer is recreated
//!   from the stream sequence after the last one it saw.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use llmgov_core::events::{Event, EventHub, EventStore};

/// The relay's name in `event_relays`.
const RELAY: &str = "nats";
/// Events per publish round.
const BATCH: usize = 500;

#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    /// JetStream stream name.
    pub stream: String,
    /// Subjects are `<prefix>.<workspace>.<topic>`.
    pub subject_prefix: String,
    /// How long the stream keeps messages.
    pub max_age: Duration,
    /// How often the relay looks for events other instances committed.
    pub poll: Duration,
    /// The relay lease (another instance takes over when it runs out).
    pub lease: Duration,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: "LLMGOV_EVENTS".into(),
            subject_prefix: "llmgov.events".into(),
            max_age: Duration::from_secs(24 * 3600),
            poll: Duration::from_millis(250),
            lease: Duration::from_secs(30),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects (retrying in the background while NATS is unreachable) and starts the relay and
/// the consumer feeding `hub`. The tasks run until aborted.
pub async fn start(
    cfg: NatsConfig,
    store: Arc<dyn EventStore>,
    hub: Arc<EventHub>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BoxError> {
    let client = async_nats::ConnectOptions::new()
        .name("llmgov")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(cfg.url.as_str())
        .await?;
    let js = jetstream::new(client.clone());
    let cfg = Arc::new(cfg);
    let relay = tokio::spawn(run_relay(js.clone(), Arc::clone(&cfg), store));
    let consume = tokio::spawn(run_consumer(js, client, cfg, hub));
    Ok(vec![relay, consume])
}

async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> Result<stream::Stream, BoxError> {
    Ok(js
        .get_or_create_stream(stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![format!("{}.>", cfg.subject_prefix)],
            max_age: cfg.max_age,
            duplicate_window: Duration::from_secs(120),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?)
}

/// Publishes the events table, in order, while this instance holds the relay lease.
async fn run_relay(js: jetstream::Context, cfg: Arc<NatsConfig>, store: Arc<dyn EventStore>) {
    let holder = uuid::Uuid::now_v7();
    let signal = store.event_signal();
    let mut stream_ready = false;
    let mut retry = Duration::from_millis(100);
    // The position and until when the lease is surely ours (renewed at half time).
    let mut lease: Option<(i64, tokio::time::Instant)> = None;
    loop {
        let round = async {
            if !stream_ready {
                ensure_stream(&js, &cfg).await?;
                stream_ready = true;
            }
            let now = tokio::time::Instant::now();
            let position = match lease {
                Some((p, until)) if until > now => p,
                _ => match store.claim_relay(RELAY, holder, cfg.lease).await? {
                    Some(p) => {
                        lease = Some((p, now + cfg.lease / 2));
                        p
                    }
                    None => {
                        lease = None;
                        return Ok::<bool, BoxError>(false);
                    }
                },
            };
            let batch = store.events_after(None, position, BATCH as i64).await?;
            if batch.is_empty() {
                return Ok(false);
            }
            let mut acks = Vec::with_capacity(batch.len());
            for e in &batch {
                let subject = format!(
                    "{}.{}.{}",
                    cfg.subject_prefix,
                    e.workspace_id.0.simple(),
                    e.topic
                );
                let publish = jetstream::message::PublishMessage::build()
                    .payload(serde_json::to_vec(e)?.into())
                    .message_id(e.id.to_string());
                acks.push(js.send_publish(subject, publish).await?);
            }
            for ack in acks {
                ack.await?;
            }
            let last = batch.last().map_or(position, |e| e.id);
            if store.advance_relay(RELAY, holder, last).await? {
                if let Some((p, _)) = &mut lease {
                    *p = last;
                }
            } else {
                lease = None;
            }
            Ok(batch.len() == BATCH)
        };
        match round.await {
            Ok(true) => continue,
            Ok(false) => {
                retry = Duration::from_millis(100);
                signal.wait(cfg.poll).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "event relay to NATS: will retry");
                stream_ready = false;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Feeds `hub` from the stream, resuming after the last sequence seen.
async fn run_consumer(
    js: jetstream::Context,
    client: async_nats::Client,
    cfg: Arc<NatsConfig>,
    hub: Arc<EventHub>,
) {
    let mut last_seq: u64 = 0;
    let mut retry = Duration::from_millis(100);
    loop {
        let messages = async {
            let stream = ensure_stream(&js, &cfg).await?;
            let deliver_policy = if last_seq == 0 {
                consumer::DeliverPolicy::New
            } else {
                consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: last_seq + 1,
                }
            };
            let consumer = stream
                .create_consumer(consumer::push::OrderedConfig {
                    deliver_subject: client.new_inbox(),
                    filter_subject: format!("{}.>", cfg.subject_prefix),
                    deliver_policy,
                    ..Default::default()
                })
                .await?;
            Ok::<_, BoxError>(consumer.messages().await?)
        };
        match messages.await {
            Ok(mut messages) => {
                retry = Duration::from_millis(100);
                while let Some(m) = messages.next().await {
                    match m {
                        Ok(m) => {
                            if let Ok(info) = m.info() {
                                last_seq = info.stream_sequence;
                            }
                            match serde_json::from_slice::<Event>(&m.payload) {
                                Ok(e) => {
                                    hub.deliver(e);
                                }
                                Err(e) => tracing::warn!(error = %e, "unreadable event on NATS"),
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "NATS event consumer: recreating");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "NATS event consumer: will retry"),
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}
