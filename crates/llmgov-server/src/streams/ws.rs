//! The WebSocket endpoints: one writer task per connection with a byte budget, heartbeats,
//! and the client messages (subscribe, unsubscribe, ping, acknowledge).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use llmgov_core::audit::RequestContext;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::session::ClientMessage;
use super::{ConnectParams, Kind, MAX_CLIENT_MESSAGE, Session, StreamError, authenticate};
use crate::AppState;
use crate::error::ApiError;

pub(super) async fn ws_metrics(
    state: State<AppState>,
    q: Query<ConnectParams>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    ws_connect(state, q, parts, ws, Kind::Metrics).await
}

pub(super) async fn ws_alerts(
    state: State<AppState>,
    q: Query<ConnectParams>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    ws_connect(state, q, parts, ws, Kind::Alerts).await
}

pub(super) async fn ws_events(
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
