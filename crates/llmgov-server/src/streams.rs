//! Real-time streams: WebSocket (`/ws/v1/{metrics,alerts,events}/stream`) and the same
//! topics over Server-Sent Events (`/sse/v1/{metrics,alerts,events}/stream`).
//!
//! Authentication: `Authorization: Bearer <token>` or, for browsers (which cannot set
//! headers on a WebSocket), `?access_token=<token>`. Each topic needs the read permission of
//! its resource; a subscription to a topic the caller may not read is refused with an
//! error message and nothing is subscribed.
//!
//! WebSocket protocol (JSON text messages):
//! - client → server: `{"type":"subscribe","id":"s1","topics":["metrics.points"],
//!   "filters":{...},"since":123}`, `{"type":"unsubscribe","id":"s1"}`, `{"type":"ping"}`,
//!   and on the alert stream `{"type":"acknowledge","alert_id":"..."}`;
//! - server → client: `welcome`, `subscribed`, `unsubscribed`, `event` (with the event `id`
//!   to resume from), `heartbeat` (every `heartbeat` seconds, with the last event id),
//!   `pong`, `acknowledged` and `error` (`code`, `message`).
//!
//! A client that falls more than the hub's buffer behind (it does not read) is dropped
//! with close code 4008 and a reason; one that stays silent for three heartbeats is
//! dropped with 4000. Memory per client is bounded either way.

use std::time::Duration;

use axum::Router;
use axum::http::request::Parts;
use axum::routing::get;
use llmgov_core::CoreError;
use llmgov_core::access::{Action, Permission, Resource};
use llmgov_core::events::{ALERTS, METRICS_POINTS};
use llmgov_core::identity::Principal;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;

mod session;
mod sse;
mod ws;

pub use session::{Filters, Session, StreamError};

/// Stream settings.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Heartbeat period; a WebSocket client silent for three periods is dropped.
    pub heartbeat: Duration,
    /// A send blocked this long (the client does not read) drops the client.
    pub send_timeout: Duration,
    /// Bytes queued for one WebSocket client before it is dropped as too slow.
    pub max_queued_bytes: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            send_timeout: Duration::from_secs(10),
            max_queued_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Most subscriptions on one connection.
const MAX_SUBSCRIPTIONS: usize = 32;
/// Largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Which stream an endpoint serves: the topics it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Metrics,
    Alerts,
    Events,
}

impl Kind {
    fn carries(self, topic: &str) -> bool {
        match self {
            Kind::Metrics => topic == METRICS_POINTS,
            Kind::Alerts => topic.starts_with(ALERTS),
            Kind::Events => true,
        }
    }

    /// The permission needed to open the stream at all.
    fn permission(self) -> Option<Permission> {
        match self {
            Kind::Metrics | Kind::Alerts => Some(Permission::new(Resource::Metrics, Action::Read)),
            Kind::Events => None,
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/v1/metrics/stream", get(ws::ws_metrics))
        .route("/ws/v1/alerts/stream", get(ws::ws_alerts))
        .route("/ws/v1/events/stream", get(ws::ws_events))
        .route("/sse/v1/metrics/stream", get(sse::sse_metrics))
        .route("/sse/v1/alerts/stream", get(sse::sse_alerts))
        .route("/sse/v1/events/stream", get(sse::sse_events))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConnectParams {
    access_token: Option<String>,
    /// Replay the events after this id (SSE; WebSocket clients say `since` per subscription).
    last_event_id: Option<i64>,
    /// SSE: comma-separated topics.
    topics: Option<String>,
    /// SSE filters.
    metric_name: Option<String>,
    metric_type: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    severity: Option<String>,
    rule_id: Option<String>,
    /// SSE: `key:value` pairs, comma-separated.
    tags: Option<String>,
}

/// Authenticates a stream request by header or `access_token`, and checks the stream's
/// own permission (a refusal is audited like any other).
async fn authenticate(
    state: &AppState,
    parts: &Parts,
    query_token: Option<&str>,
    kind: Kind,
) -> Result<Principal, ApiError> {
    let unauth = |m: &str| ApiError::from(CoreError::Unauthenticated(m.into()));
    let token = match parts.headers.get(axum::http::header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| unauth("malformed Authorization header"))?;
            match v.split_once(' ') {
                Some((s, t)) if s.eq_ignore_ascii_case("bearer") && !t.is_empty() => {
                    t.trim().to_string()
                }
                _ => return Err(unauth("expected 'Authorization: Bearer <token>'")),
            }
        }
        None => query_token
            .filter(|t| !t.is_empty() && t.len() <= 4096)
            .ok_or_else(|| unauth("missing token: send 'Authorization: Bearer' or ?access_token="))?
            .to_string(),
    };
    let principal = state.identity.authenticate(&token).await?;
    if let Some(needed) = kind.permission()
        && let Err(e) = principal.require(needed)
    {
        let ctx = crate::context::request_context(parts, state);
        state
            .identity
            .record_denial(&principal, &ctx, &needed.to_string(), parts.uri.path())
            .await?;
        return Err(e.into());
    }
    Ok(principal)
}

fn split(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
