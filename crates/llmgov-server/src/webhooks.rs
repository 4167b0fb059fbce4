//! Delivery of outbox messages to webhooks (the `notify` policy action): an HTTP(S) POST of
//! the JSON payload, with the message id for deduplication. Redirects are not followed, so a
//! destination cannot bounce the request elsewhere.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use llmgov_core::outbox::{OutboxMessage, OutboxStore, Sender, run_dispatcher};

use crate::AppState;

pub struct WebhookSender {
    client: reqwest::Client,
}

impl WebhookSender {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("llmgov-webhooks/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client configuration is valid");
        Self { client }
    }
}

impl Default for WebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Sender for WebhookSender {
    async fn send(&self, m: &OutboxMessage) -> Result<(), String> {
        let r = self
            .client
            .post(&m.destination)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-llmgov-message-id", m.id.to_string())
            .header("x-llmgov-topic", &m.topic)
            .body(m.payload.clone())
            // The URL can carry a token: errors are reported without it.
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered HTTP {}", r.status().as_u16()))
        }
    }
}

/// Starts delivering the outbox of `state`'s database; polls every `poll` for retries and
/// for messages written by other instances, and wakes at once for this instance's own.
pub fn spawn_outbox_dispatcher(state: &AppState, poll: Duration) -> tokio::task::JoinHandle<()> {
    let store: Arc<dyn OutboxStore> = state.store.clone();
    tokio::spawn(run_dispatcher(
        store,
        Arc::new(WebhookSender::new()),
        Arc::clone(state.policies.outbox_wakeup()),
        poll,
    ))
}
