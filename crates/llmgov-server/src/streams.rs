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

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use llmgov_core::CoreError;
use llmgov_core::access::{Action, Permission, Resource};
use llmgov_core::audit::RequestContext;
use llmgov_core::events::{ALERTS, Event, METRICS_POINTS, TOPICS, topic_permission};
use llmgov_core::identity::Principal;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::error::ApiError;

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
        .route("/ws/v1/metrics/stream", get(ws_metrics))
        .route("/ws/v1/alerts/stream", get(ws_alerts))
        .route("/ws/v1/events/stream", get(ws_events))
        .route("/sse/v1/metrics/stream", get(sse_metrics))
        .route("/sse/v1/alerts/stream", get(sse_alerts))
        .route("/sse/v1/events/stream", get(sse_events))
}

/// What a subscription lets through, beside its topics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Points of these metrics only.
    #[serde(default)]
    pub metric_name: Vec<String>,
    /// Points of these types only (`counter`, `gauge`, `histogram`).
    #[serde(default)]
    pub metric_type: Vec<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
    /// Points carrying all of these tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Alerts and violations of these severities only.
    #[serde(default)]
    pub severity: Vec<String>,
    /// Alerts of this rule only.
    #[serde(default)]
    pub rule_id: Option<String>,
}

impl Filters {
    fn is_empty(&self) -> bool {
        self.metric_name.is_empty()
            && self.metric_type.is_empty()
            && self.resource_type.is_none()
            && self.resource_id.is_none()
            && self.tags.is_empty()
            && self.severity.is_empty()
            && self.rule_id.is_none()
    }

    fn validate(&self) -> Result<(), StreamError> {
        let bad = |m: &str| StreamError::new("INVALID_FILTER", m);
        if self.metric_name.len() > 100 || self.metric_type.len() > 3 || self.tags.len() > 32 {
            return Err(bad("at most 100 metric names, 3 types and 32 tags"));
        }
        for t in &self.metric_type {
            llmgov_core::metrics::model::MetricType::parse(t)
                .map_err(|_| bad("metric_type is counter, gauge or histogram"))?;
        }
        for s in &self.severity {
            llmgov_core::metrics::alert_rules::AlertSeverity::parse(s)
                .map_err(|_| bad("severity is info, warning or critical"))?;
        }
        Ok(())
    }

    /// Whether a series of a `metrics.points` event passes (its labels are the points').
    fn series_matches(&self, p: &Value) -> bool {
        let s = |k: &str| p.get(k).and_then(Value::as_str);
        (self.metric_name.is_empty()
            || s("metric_name").is_some_and(|n| self.metric_name.iter().any(|m| m == n)))
            && (self.metric_type.is_empty()
                || s("metric_type").is_some_and(|n| self.metric_type.iter().any(|m| m == n)))
            && self
                .resource_type
                .as_deref()
                .is_none_or(|r| s("resource_type") == Some(r))
            && self
                .resource_id
                .as_deref()
                .is_none_or(|r| s("resource_id") == Some(r))
            && self
                .tags
                .iter()
                .all(|(k, v)| p["tags"].get(k).and_then(Value::as_str) == Some(v))
    }

    /// The event's data as this subscription should see it, or `None` to skip it.
    /// `Some(None)` passes the payload unchanged.
    fn apply(&self, e: &Event) -> Option<Option<Value>> {
        if self.is_empty() {
            return Some(None);
        }
        let data = e.data();
        if e.topic == METRICS_POINTS {
            let series: Vec<&Value> = data["series"]
                .as_array()
                .map(|a| a.iter().filter(|s| self.series_matches(s)).collect())
                .unwrap_or_default();
            return (!series.is_empty()).then(|| Some(json!({ "series": series })));
        }
        let subject = if e.topic.starts_with(ALERTS) {
            &data["alert"]
        } else {
            data
        };
        let severity_ok = self.severity.is_empty()
            || subject["severity"]
                .as_str()
                .is_some_and(|s| self.severity.iter().any(|x| x == s));
        let rule_ok = self
            .rule_id
            .as_deref()
            .is_none_or(|r| subject["rule_id"].as_str() == Some(r));
        (severity_ok && rule_ok).then_some(None)
    }
}

/// A refusal sent to the client as an `error` message.
#[derive(Debug)]
pub struct StreamError {
    code: &'static str,
    message: String,
}

impl StreamError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn message(&self, subscription: Option<&str>) -> String {
        json!({"type": "error", "code": self.code, "message": self.message, "subscription": subscription})
            .to_string()
    }
}

struct Subscription {
    id: String,
    /// Exact topics, or prefixes (a pattern ending in `*`).
    topics: Vec<String>,
    filters: Filters,
    /// Ids replayed to this subscription that may come again live.
    replayed: HashSet<i64>,
    replayed_upto: i64,
}

impl Subscription {
    fn wants(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| match t.strip_suffix('*') {
            Some(prefix) => topic.starts_with(prefix),
            None => t == topic,
        })
    }
}

/// One client's subscriptions.
pub struct Session {
    principal: Principal,
    kind: Kind,
    subs: Vec<Subscription>,
}

// Parsed once per client message and taken apart at once: the size difference is harmless.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Subscribe {
        id: String,
        #[serde(default)]
        topics: Vec<String>,
        #[serde(default)]
        filters: Filters,
        /// Replay the events after this id first.
        #[serde(default)]
        since: Option<i64>,
    },
    Unsubscribe {
        id: String,
    },
    Ping,
    Acknowledge {
        alert_id: uuid::Uuid,
    },
}

impl Session {
    fn new(principal: Principal, kind: Kind) -> Self {
        Self {
            principal,
            kind,
            subs: Vec::new(),
        }
    }

    /// Checks a subscription request; returns its topic patterns.
    fn check_topics(&self, topics: &[String]) -> Result<Vec<String>, StreamError> {
        let topics: Vec<String> = if topics.is_empty() {
            // The stream's own topics (for the events stream: those the caller may read).
            let mine: Vec<String> = TOPICS
                .iter()
                .filter(|t| self.kind.carries(t))
                .filter(|t| {
                    self.kind != Kind::Events
                        || topic_permission(t).is_some_and(|p| self.principal.require(p).is_ok())
                })
                .map(|t| t.to_string())
                .collect();
            if mine.is_empty() {
                return Err(StreamError::new(
                    "FORBIDDEN_TOPIC",
                    "you may read none of this stream's topics",
                ));
            }
            return Ok(mine);
        } else {
            topics.to_vec()
        };
        if topics.len() > 20 {
            return Err(StreamError::new("INVALID_TOPIC", "at most 20 topics"));
        }
        for t in &topics {
            let matching: Vec<&str> = TOPICS
                .iter()
                .copied()
                .filter(|known| match t.strip_suffix('*') {
                    Some(prefix) => known.starts_with(prefix),
                    None => known == t,
                })
                .filter(|known| self.kind.carries(known))
                .collect();
            if matching.is_empty() {
                return Err(StreamError::new(
                    "UNKNOWN_TOPIC",
                    format!(
                        "unknown topic {t:?} on this stream; topics: {}",
                        TOPICS
                            .iter()
                            .filter(|k| self.kind.carries(k))
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            for known in matching {
                let needed = topic_permission(known).expect("known topics have a permission");
                if self.principal.require(needed).is_err() {
                    return Err(StreamError::new(
                        "FORBIDDEN_TOPIC",
                        format!("reading {known} needs the {needed} permission"),
                    ));
                }
            }
        }
        Ok(topics)
    }

    /// Adds a subscription; returns the messages to send: `subscribed`, then the replay.
    async fn subscribe(
        &mut self,
        state: &AppState,
        id: String,
        topics: &[String],
        filters: Filters,
        since: Option<i64>,
    ) -> Result<Vec<String>, StreamError> {
        if id.is_empty() || id.len() > 64 {
            return Err(StreamError::new(
                "INVALID_SUBSCRIPTION",
                "a subscription id has 1 to 64 characters",
            ));
        }
        if self.subs.iter().any(|s| s.id == id) {
            return Err(StreamError::new(
                "INVALID_SUBSCRIPTION",
                format!("subscription {id:?} exists; unsubscribe first"),
            ));
        }
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(StreamError::new(
                "TOO_MANY_SUBSCRIPTIONS",
                format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
            ));
        }
        let topics = self.check_topics(topics)?;
        filters.validate()?;
        let mut sub = Subscription {
            id,
            topics,
            filters,
            replayed: HashSet::new(),
            replayed_upto: 0,
        };
        let mut out = vec![
            json!({"type": "subscribed", "id": sub.id, "topics": sub.topics, "last_event_id": state.events.last_id()})
                .to_string(),
        ];
        if let Some(since) = since {
            let limit = state.events.config().replay_limit;
            let events = state
                .events
                .replay(self.principal.workspace_id, since.max(0), limit)
                .await
                .map_err(|_| StreamError::new("UNAVAILABLE", "the events cannot be read now"))?;
            let complete = events.len() < limit;
            for e in &events {
                sub.replayed.insert(e.id);
                sub.replayed_upto = e.id;
                if let Some(m) = render(&sub, e) {
                    out.push(m);
                }
            }
            if !complete {
                out.push(
                    StreamError::new(
                        "REPLAY_INCOMPLETE",
                        format!(
                            "more than {limit} events to replay; resume from {} to continue",
                            sub.replayed_upto
                        ),
                    )
                    .message(Some(&sub.id)),
                );
            }
        }
        self.subs.push(sub);
        Ok(out)
    }

    fn unsubscribe(&mut self, id: &str) -> Result<String, StreamError> {
        let before = self.subs.len();
        self.subs.retain(|s| s.id != id);
        if self.subs.len() == before {
            return Err(StreamError::new(
                "INVALID_SUBSCRIPTION",
                format!("no subscription {id:?}"),
            ));
        }
        Ok(json!({"type": "unsubscribed", "id": id}).to_string())
    }

    /// The messages a live event makes for this session's subscriptions.
    fn on_event(&mut self, e: &Event) -> Vec<String> {
        if e.workspace_id != self.principal.workspace_id {
            return Vec::new();
        }
        let mut out = Vec::new();
        for sub in &mut self.subs {
            if e.id <= sub.replayed_upto && sub.replayed.remove(&e.id) {
                continue;
            }
            if e.id > sub.replayed_upto && !sub.replayed.is_empty() {
                sub.replayed = HashSet::new();
            }
            if let Some(m) = render(sub, e) {
                out.push(m);
            }
        }
        out
    }
}

/// The `event` message of `e` for `sub`, or `None` if the subscription does not want it.
fn render(sub: &Subscription, e: &Event) -> Option<String> {
    if !sub.wants(&e.topic) {
        return None;
    }
    let data = sub.filters.apply(e)?;
    let head = json!({
        "type": "event",
        "subscription": sub.id,
        "id": e.id,
        "topic": e.topic,
        "time": e.created_at,
    })
    .to_string();
    // Splice the data in without re-serialising an unfiltered payload.
    let data = match &data {
        Some(v) => v.to_string(),
        None => e.payload.clone(),
    };
    let mut m = String::with_capacity(head.len() + data.len() + 10);
    m.push_str(&head[..head.len() - 1]);
    m.push_str(",\"data\":");
    m.push_str(&data);
    m.push('}');
    Some(m)
}

#[derive(Debug, Deserialize)]
pub struct ConnectParams {
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

async fn ws_metrics(
    state: State<AppState>,
    q: Query<ConnectParams>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    ws_connect(state, q, parts, ws, Kind::Metrics).await
}

async fn ws_alerts(
    state: State<AppState>,
    q: Query<ConnectParams>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    ws_connect(state, q, parts, ws, Kind::Alerts).await
}

async fn ws_events(
    state: State<AppState>,
    q: Query<ConnectParams>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    ws_connect(state, q, parts, ws, Kind::Events).await
}

async fn ws_connect(
    State(state): State<AppState>,
    Query(q): Query<ConnectParams>,
    parts: Parts,
    ws: WebSocketUpgrade,
    kind: Kind,
) -> Response {
    let principal = match authenticate(&state, &parts, q.access_token.as_deref(), kind).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let ctx = crate::context::request_context(&parts, &state);
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| run_ws(socket, state, Session::new(principal, kind), ctx))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    }))
}

/// What ends a connection's writer.
enum Ending {
    Close(u16, String),
    Gone,
}

/// Sends queued messages to the socket; on a close request, sends the close frame after
/// what is already in flight. Gives up when a send blocks for `send_timeout`.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Message>,
    mut ending: tokio::sync::oneshot::Receiver<(u16, String)>,
    queued: Arc<AtomicUsize>,
    send_timeout: Duration,
) {
    loop {
        let next = tokio::select! {
            biased;
            c = &mut ending => match c {
                Ok((code, reason)) => Ending::Close(code, reason),
                Err(_) => Ending::Gone,
            },
            m = queue.recv() => match m {
                None => Ending::Gone,
                Some(m) => {
                    let n = message_len(&m);
                    let sent = tokio::select! {
                        biased;
                        c = &mut ending => Some(match c {
                            Ok((code, reason)) => Ending::Close(code, reason),
                            Err(_) => Ending::Gone,
                        }),
                        r = tokio::time::timeout(send_timeout, sink.send(m)) => match r {
                            Ok(Ok(())) => None,
                            // The client does not read, or is gone.
                            _ => Some(Ending::Gone),
                        },
                    };
                    queued.fetch_sub(n, Ordering::AcqRel);
                    match sent {
                        None => continue,
                        Some(e) => e,
                    }
                }
            },
        };
        if let Ending::Close(code, reason) = next {
            let _ = tokio::time::timeout(send_timeout, sink.send(close(code, &reason))).await;
        }
        return;
    }
}

fn message_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 16,
    }
}

async fn run_ws(socket: WebSocket, state: AppState, mut session: Session, ctx: RequestContext) {
    let cfg = state.streams.clone();
    let (sink, mut incoming) = socket.split();
    // Subscribed before anything else, so that nothing committed from now on is missed.
    let mut live = state.events.subscribe();
    let (queue, queue_rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
    let (end, end_rx) = tokio::sync::oneshot::channel::<(u16, String)>();
    let queued = Arc::new(AtomicUsize::new(0));
    let mut writer = tokio::spawn(write_loop(
        sink,
        queue_rx,
        end_rx,
        Arc::clone(&queued),
        cfg.send_timeout,
    ));
    let mut end = Some(end);
    // Queues a message; a client whose queue passes the budget is dropped with a reason.
    macro_rules! send {
        ($m:expr) => {{
            let m: Message = $m;
            let n = message_len(&m);
            if queued.fetch_add(n, Ordering::AcqRel) + n > cfg.max_queued_bytes {
                tracing::info!("dropping a stream client that does not read");
                if let Some(end) = end.take() {
                    let _ = end.send((4008, "slow consumer: the client does not read fast enough; reconnect and resume with since".into()));
                }
                let _ = writer.await;
                return;
            }
            if queue.send(m).is_err() {
                return;
            }
        }};
    }
    macro_rules! finish {
        ($code:expr, $reason:expr) => {{
            if let Some(end) = end.take() {
                let _ = end.send(($code, $reason.to_string()));
            }
            let _ = writer.await;
            return;
        }};
    }
    send!(Message::Text(
        json!({
            "type": "welcome",
            "stream": format!("{:?}", session.kind).to_lowercase(),
            "heartbeat_secs": cfg.heartbeat.as_secs_f64(),
            "last_event_id": state.events.last_id(),
        })
        .to_string()
        .into()
    ));
    let mut heartbeat = tokio::time::interval(cfg.heartbeat);
    heartbeat.tick().await;
    let mut silent_beats = 0u32;
    loop {
        tokio::select! {
            _ = &mut writer => return,
            m = incoming.next() => {
                let text = match m {
                    None | Some(Err(_)) => finish!(1000, "bye"),
                    Some(Ok(Message::Close(_))) => finish!(1000, "bye"),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        send!(Message::Text(StreamError::new("INVALID_MESSAGE", "messages are JSON text").message(None).into()));
                        continue;
                    }
                    Some(Ok(_)) => { silent_beats = 0; continue; }
                };
                silent_beats = 0;
                for reply in handle(&state, &mut session, &ctx, &text).await {
                    send!(Message::Text(reply.into()));
                }
            }
            r = live.recv() => match r {
                Ok(e) => {
                    for m in session.on_event(&e) {
                        send!(Message::Text(m.into()));
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "dropping a stream client that does not keep up");
                    finish!(4008, format!("slow consumer: {n} events missed; reconnect and resume with since"));
                }
                Err(RecvError::Closed) => finish!(1001, "server shutting down"),
            },
            _ = heartbeat.tick() => {
                silent_beats += 1;
                if silent_beats > 3 {
                    finish!(4000, "heartbeat timeout: the client answered nothing");
                }
                send!(Message::Text(json!({"type": "heartbeat", "last_event_id": state.events.last_id()}).to_string().into()));
                send!(Message::Ping(Default::default()));
            }
        }
    }
}

/// Handles one client message; returns the replies.
async fn handle(
    state: &AppState,
    session: &mut Session,
    ctx: &RequestContext,
    text: &str,
) -> Vec<String> {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return vec![StreamError::new("INVALID_MESSAGE", format!("{e}")).message(None)];
        }
    };
    match msg {
        ClientMessage::Ping => vec![json!({"type": "pong"}).to_string()],
        ClientMessage::Subscribe {
            id,
            topics,
            filters,
            since,
        } => {
            let sub_id = id.clone();
            match session.subscribe(state, id, &topics, filters, since).await {
                Ok(out) => out,
                Err(e) => {
                    if e.code == "FORBIDDEN_TOPIC" {
                        let _ = state
                            .identity
                            .record_denial(&session.principal, ctx, &e.message, "subscribe")
                            .await;
                    }
                    vec![e.message(Some(&sub_id))]
                }
            }
        }
        ClientMessage::Unsubscribe { id } => match session.unsubscribe(&id) {
            Ok(m) => vec![m],
            Err(e) => vec![e.message(Some(&id))],
        },
        ClientMessage::Acknowledge { alert_id } => {
            if session.kind != Kind::Alerts {
                return vec![
                    StreamError::new("INVALID_MESSAGE", "acknowledge alerts on the alert stream")
                        .message(None),
                ];
            }
            match state
                .alerts
                .acknowledge(&session.principal, ctx, alert_id)
                .await
            {
                Ok(a) => vec![json!({"type": "acknowledged", "alert": a}).to_string()],
                Err(e) => {
                    let e = ApiError::from(e);
                    vec![json!({"type": "error", "code": e.code, "message": e.message}).to_string()]
                }
            }
        }
    }
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

async fn sse_metrics(
    state: State<AppState>,
    q: Query<ConnectParams>,
    headers: HeaderMap,
    parts: Parts,
) -> Response {
    sse_connect(state, q, headers, parts, Kind::Metrics).await
}

async fn sse_alerts(
    state: State<AppState>,
    q: Query<ConnectParams>,
    headers: HeaderMap,
    parts: Parts,
) -> Response {
    sse_connect(state, q, headers, parts, Kind::Alerts).await
}

async fn sse_events(
    state: State<AppState>,
    q: Query<ConnectParams>,
    headers: HeaderMap,
    parts: Parts,
) -> Response {
    sse_connect(state, q, headers, parts, Kind::Events).await
}

/// The same topics over Server-Sent Events: one subscription given by the query string;
/// each event carries its id, so `EventSource` resumes by itself (`Last-Event-ID`).
async fn sse_connect(
    State(state): State<AppState>,
    Query(q): Query<ConnectParams>,
    headers: HeaderMap,
    parts: Parts,
    kind: Kind,
) -> Response {
    let principal = match authenticate(&state, &parts, q.access_token.as_deref(), kind).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(q.last_event_id);
    let mut tags = BTreeMap::new();
    for pair in split(&q.tags) {
        match pair.split_once(':') {
            Some((k, v)) => {
                tags.insert(k.to_string(), v.to_string());
            }
            None => {
                return ApiError::from(CoreError::invalid("tags", "key:value pairs"))
                    .into_response();
            }
        }
    }
    let filters = Filters {
        metric_name: split(&q.metric_name),
        metric_type: split(&q.metric_type),
        resource_type: q.resource_type.clone(),
        resource_id: q.resource_id.clone(),
        tags,
        severity: split(&q.severity),
        rule_id: q.rule_id.clone(),
    };
    let mut session = Session::new(principal, kind);
    let mut live = state.events.subscribe();
    let first = match session
        .subscribe(&state, "sse".into(), &split(&q.topics), filters, since)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            let status = if e.code == "FORBIDDEN_TOPIC" {
                axum::http::StatusCode::FORBIDDEN
            } else {
                axum::http::StatusCode::BAD_REQUEST
            };
            let ctx = crate::context::request_context(&parts, &state);
            if status == axum::http::StatusCode::FORBIDDEN {
                let _ = state
                    .identity
                    .record_denial(&session.principal, &ctx, &e.message, parts.uri.path())
                    .await;
            }
            return ApiError::new(status, e.code, e.message).into_response();
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(64);
    let send_timeout = state.streams.send_timeout;
    tokio::spawn(async move {
        let to_sse = |m: String| {
            let v: Value = serde_json::from_str(&m).unwrap_or_default();
            let kind = v["type"].as_str().unwrap_or("message").to_string();
            let mut ev = SseEvent::default().event(if kind == "event" {
                v["topic"].as_str().unwrap_or("event").to_string()
            } else {
                kind
            });
            if let Some(id) = v["id"].as_i64().filter(|_| v["type"] == "event") {
                ev = ev.id(id.to_string());
            }
            ev.data(m)
        };
        for m in first {
            if tokio::time::timeout(send_timeout, tx.send(to_sse(m)))
                .await
                .is_err()
            {
                return;
            }
        }
        loop {
            tokio::select! {
                r = live.recv() => match r {
                    Ok(e) => {
                        for m in session.on_event(&e) {
                            match tokio::time::timeout(send_timeout, tx.send(to_sse(m))).await {
                                Ok(Ok(())) => {}
                                _ => return,
                            }
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        let m = StreamError::new("SLOW_CONSUMER", format!("{n} events missed; reconnect with Last-Event-ID")).message(Some("sse"));
                        let _ = tx.try_send(SseEvent::default().event("error").data(m));
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|e| (Ok::<_, std::convert::Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(state.streams.heartbeat))
        .into_response()
}
