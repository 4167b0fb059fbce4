//! Delivery of outbox messages to webhooks (alert channels and the `notify` policy action):
//! an HTTP(S) POST of the JSON payload, with the message id for deduplication and, when the
//! channel has a secret, an HMAC-SHA256 signature computed at each attempt:
//! `X-Llmgov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! Receivers recompute it and reject old timestamps (replays). Redirects are not followed,
//! so a destination cannot bounce the request elsewhere. A circuit breaker per endpoint
//! stops hammering an endpoint that keeps failing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use llmgov_core::outbox::{
    Breakers, OutboxMessage, OutboxStore, SendError, Sender, run_dispatcher,
};
use llmgov_core::time::now;

use crate::AppState;

pub struct WebhookSender {
    client: reqwest::Client,
    breakers: Breakers,
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
        Self {
            client,
            breakers: Breakers::default(),
        }
    }

    /// A sender with its own circuit breaker settings.
    pub fn with_breakers(breakers: Breakers) -> Self {
        Self {
            breakers,
            ..Self::new()
        }
    }
}

impl Default for WebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

/// The signature header value of `body` at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    format!("t={t},v1={}", llmgov_core::hex::encode(ctx.sign().as_ref()))
}

#[async_trait]
impl Sender for WebhookSender {
    async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let endpoint = Breakers::endpoint(&m.destination);
        if let Err(until) = self.breakers.check(&endpoint, now()) {
            return Err(SendError::Deferred {
                reason: format!("circuit open for {endpoint} after repeated failures"),
                until,
            });
        }
        let mut req = self
            .client
            .post(&m.destination)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-llmgov-message-id", m.id.to_string())
            .header("x-llmgov-topic", &m.topic);
        if let Some(secret) = &m.signing_secret {
            req = req.header(
                "x-llmgov-signature",
                signature(secret, now().timestamp(), &m.payload),
            );
        }
        // The URL can carry a token: errors are reported without it.
        let result = match req.body(m.payload.clone()).send().await {
            Err(e) => Err(SendError::Failed {
                error: e.without_url().to_string(),
                status: None,
            }),
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(SendError::Failed {
                error: format!("webhook answered HTTP {}", r.status().as_u16()),
                status: Some(r.status().as_u16()),
            }),
        };
        self.breakers.record(&endpoint, result.is_ok(), now());
        result
    }
}

/// Starts delivering the outbox of `state`'s database; polls every `poll` for retries and
/// for messages written by other instances, and wakes at once for this instance's own.
pub fn spawn_outbox_dispatcher(state: &AppState, poll: Duration) -> tokio::task::JoinHandle<()> {
    spawn_outbox_dispatcher_with(state, poll, Arc::new(WebhookSender::new()))
}

/// [`spawn_outbox_dispatcher`] with a sender of the caller's (e.g. other breaker settings).
pub fn spawn_outbox_dispatcher_with(
    state: &AppState,
    poll: Duration,
    sender: Arc<dyn Sender>,
) -> tokio::task::JoinHandle<()> {
    let store: Arc<dyn OutboxStore> = state.store.clone();
    tokio::spawn(run_dispatcher(
        store,
        sender,
        Arc::clone(state.policies.outbox_wakeup()),
        poll,
    ))
}
