//! The same topics over Server-Sent Events.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use llmgov_core::CoreError;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::{ConnectParams, Filters, Kind, Session, StreamError, authenticate, split};
use crate::AppState;
use crate::error::ApiError;

pub(super) async fn sse_metrics(
    state: State<AppState>,
    q: Query<ConnectParams>,
    headers: HeaderMap,
    parts: Parts,
) -> Response {
    sse_connect(state, q, headers, parts, Kind::Metrics).await
}

pub(super) async fn sse_alerts(
    state: State<AppState>,
    q: Query<ConnectParams>,
    headers: HeaderMap,
    parts: Parts,
) -> Response {
    sse_connect(state, q, headers, parts, Kind::Alerts).await
}

pub(super) async fn sse_events(
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
