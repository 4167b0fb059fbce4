//! Real-time streams: WebSocket and SSE delivery with filters, replay from an event id,
//! permissions per topic, slow clients, alert acknowledgement over the stream, and events
//! carried by NATS JetStream between two instances, across a NATS outage. (Webhooks:
//! `webhooks.rs`.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::alerts::{evaluate, ingest};
use crate::helpers::*;
use crate::metrics::{metrics_key, pt};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Upper bound on waiting for a message that must come (a failure guard, not a timing
/// assertion).
pub(crate) const WAIT: Duration = Duration::from_secs(30);

fn ws_url(base: &str, path: &str, token: &str) -> String {
    format!(
        "{}{path}?access_token={token}",
        base.replacen("http", "ws", 1)
    )
}

async fn connect(base: &str, path: &str, token: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(base, path, token))
        .await
        .expect("WebSocket connects");
    ws
}

/// The next JSON message that is not a heartbeat.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message arrives")
            .expect("the stream is open")
            .expect("a valid frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "heartbeat" {
                return v;
            }
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn subscribe(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    next(ws).await
}

/// Points received on `ws` until `n` have arrived, each with its series' labels; returns
/// them with the event ids.
async fn points(ws: &mut Ws, n: usize) -> (Vec<Value>, Vec<i64>) {
    let (mut pts, mut ids) = (Vec::new(), Vec::new());
    while pts.len() < n {
        let e = next(ws).await;
        assert_eq!(e["type"], "event", "{e}");
        assert_eq!(e["topic"], "metrics.points");
        ids.push(e["id"].as_i64().unwrap());
        pts.extend(flatten_series(&e["data"]));
    }
    assert_eq!(pts.len(), n, "no more points than sent");
    (pts, ids)
}

/// The points of a `metrics.points` event (`{"series":[{labels..., "points":[{"timestamp",
/// "value"}]}]}`), each with its series' labels.
fn flatten_series(data: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for s in data["series"].as_array().expect("series") {
        assert!(s["series_id"].as_i64().is_some(), "{s}");
        let points = s["points"].as_array().expect("points");
        assert!(!points.is_empty(), "a series comes with its points: {s}");
        for p in points {
            let mut full = s.clone();
            full.as_object_mut().unwrap().remove("points");
            full["timestamp"] = p["timestamp"].clone();
            full["value"] = p["value"].clone();
            out.push(full);
        }
    }
    out
}

fn named(metric: &str, model: &str, v: f64) -> Value {
    let mut p = pt(0, model, v);
    p["metric_name"] = json!(metric);
    p
}

async fn the_metrics_stream_filters_and_resumes_from_an_event_id(app: TestApp) {
    let key = metrics_key(&app).await;
    let mut ws = connect(&app.base, "/ws/v1/metrics/stream", &app.admin_token).await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    assert!(welcome["heartbeat_secs"].as_f64().unwrap() > 0.0);
    let ok = subscribe(
        &mut ws,
        json!({"type": "subscribe", "id": "lat", "filters": {"metric_name": ["llm.latency"], "tags": {"model": "gpt-4o"}}}),
    )
    .await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    assert_eq!(ok["topics"], json!(["metrics.points"]));
    // Only gpt-4o latency points get through.
    let mut batch: Vec<Value> = (0..5).map(|i| pt(0, "gpt-4o", i as f64)).collect();
    batch.extend((0..4).map(|i| pt(0, "claude", i as f64)));
    batch.push(named("llm.tokens", "gpt-4o", 7.0));
    ingest(&app, &key, batch).await;
    let (pts, ids) = points(&mut ws, 5).await;
    assert!(
        pts.iter()
            .all(|p| p["metric_name"] == "llm.latency" && p["tags"]["model"] == "gpt-4o")
    );
    let seen = *ids.last().unwrap();
    drop(ws);
    // Points arrive while the client is away; it resumes from the last id it saw.
    ingest(
        &app,
        &key,
        (0..3).map(|i| pt(0, "gpt-4o", 100.0 + i as f64)).collect(),
    )
    .await;
    let mut ws = connect(&app.base, "/ws/v1/metrics/stream", &app.admin_token).await;
    next(&mut ws).await;
    let ok = subscribe(
        &mut ws,
        json!({"type": "subscribe", "id": "lat", "since": seen, "filters": {"metric_name": ["llm.latency"], "tags": {"model": "gpt-4o"}}}),
    )
    .await;
    assert_eq!(ok["type"], "subscribed");
    let (replayed, replay_ids) = points(&mut ws, 3).await;
    assert!(replay_ids.iter().all(|id| *id > seen));
    assert_eq!(replayed[0]["value"], 100.0);
    // Then live, each event once: the next event is the new batch, not a repeat.
    ingest(
        &app,
        &key,
        vec![pt(0, "gpt-4o", 500.0), pt(0, "gpt-4o", 501.0)],
    )
    .await;
    let (live, live_ids) = points(&mut ws, 2).await;
    assert!(live_ids.iter().all(|id| id > replay_ids.last().unwrap()));
    assert_eq!(live[0]["value"], 500.0);
    // Unsubscribe, ping.
    let r = subscribe(&mut ws, json!({"type": "unsubscribe", "id": "lat"})).await;
    assert_eq!(r["type"], "unsubscribed");
    let r = subscribe(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(r["type"], "pong");
    let r = subscribe(&mut ws, json!({"type": "unsubscribe", "id": "lat"})).await;
    assert_eq!(r["code"], "INVALID_SUBSCRIPTION");
}

async fn streams_check_tokens_topics_and_messages(app: TestApp) {
    let key = metrics_key(&app).await; // metrics:create only
    // No token, a bad token: refused before the upgrade.
    for url in [
        format!("{}/ws/v1/events/stream", app.base.replacen("http", "ws", 1)),
        ws_url(&app.base, "/ws/v1/events/stream", "not-a-token"),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 401)
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
    // The metrics stream needs metrics:read.
    match tokio_tungstenite::connect_async(ws_url(&app.base, "/ws/v1/metrics/stream", &key)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    // On the events stream, each topic needs its own permission.
    let mut ws = connect(&app.base, "/ws/v1/events/stream", &key).await;
    next(&mut ws).await;
    for (msg, code) in [
        (
            json!({"type": "subscribe", "id": "a", "topics": ["metrics.points"]}),
            "FORBIDDEN_TOPIC",
        ),
        (
            json!({"type": "subscribe", "id": "a", "topics": ["alerts.*"]}),
            "FORBIDDEN_TOPIC",
        ),
        (json!({"type": "subscribe", "id": "a"}), "FORBIDDEN_TOPIC"),
        (
            json!({"type": "subscribe", "id": "a", "topics": ["audit.secrets"]}),
            "UNKNOWN_TOPIC",
        ),
        (
            json!({"type": "subscribe", "id": "", "topics": ["metrics.points"]}),
            "INVALID_SUBSCRIPTION",
        ),
        (json!({"type": "launch"}), "INVALID_MESSAGE"),
        (
            json!({"type": "acknowledge", "alert_id": uuid::Uuid::now_v7()}),
            "INVALID_MESSAGE",
        ),
    ] {
        let r = subscribe(&mut ws, msg.clone()).await;
        assert_eq!(r["type"], "error", "{msg} -> {r}");
        assert_eq!(r["code"], code, "{msg} -> {r}");
    }
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "INVALID_MESSAGE");
    // Nothing was subscribed: points ingested now do not reach this client.
    ingest(&app, &key, vec![pt(0, "gpt-4o", 1.0)]).await;
    let r = subscribe(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(r["type"], "pong", "no event came before the pong: {r}");
    // Unknown topics on the metrics stream, filters checked.
    let mut ws = connect(&app.base, "/ws/v1/metrics/stream", &app.admin_token).await;
    next(&mut ws).await;
    let r = subscribe(
        &mut ws,
        json!({"type": "subscribe", "id": "a", "topics": ["alerts.firing"]}),
    )
    .await;
    assert_eq!(r["code"], "UNKNOWN_TOPIC");
    let r = subscribe(
        &mut ws,
        json!({"type": "subscribe", "id": "a", "filters": {"metric_type": ["weird"]}}),
    )
    .await;
    assert_eq!(r["code"], "INVALID_FILTER");
    // A subscription with no topics gets the stream's own.
    let mut ws = connect(&app.base, "/ws/v1/metrics/stream", &app.admin_token).await;
    next(&mut ws).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": "all"})).await;
    ingest(&app, &key, vec![pt(0, "gpt-4o", 2.0)]).await;
    // (The point of 1.0 may still be on its way to this newer client; skip it.)
    loop {
        let (p, _) = points(&mut ws, 1).await;
        if p[0]["value"] == 2.0 {
            break;
        }
        assert_eq!(p[0]["value"], 1.0);
    }
}

async fn the_alert_stream_announces_changes_and_acknowledges(app: TestApp) {
    let key = metrics_key(&app).await;
    let mut ws = connect(&app.base, "/ws/v1/alerts/stream", &app.admin_token).await;
    next(&mut ws).await;
    let ok = subscribe(
        &mut ws,
        json!({"type": "subscribe", "id": "crit", "filters": {"severity": ["critical"]}}),
    )
    .await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    let rule = app
        .post(
            "/api/v1/metrics/alerts",
            &app.admin_token,
            json!({"name": "slow", "metric_name": "llm.latency", "aggregation": "avg", "window": "10m",
                   "comparator": "gt", "threshold": 1000, "severity": "critical"}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED);
    ingest(&app, &key, vec![pt(1, "gpt-4o", 2000.0)]).await;
    assert_eq!(evaluate(&app).await, 1);
    let fired = next(&mut ws).await;
    assert_eq!(fired["topic"], "alerts.firing", "{fired}");
    assert_eq!(fired["data"]["alert"]["severity"], "critical");
    let id = fired["data"]["alert"]["id"].as_str().unwrap().to_string();
    let r = subscribe(&mut ws, json!({"type": "acknowledge", "alert_id": id})).await;
    // The reply and the event may come in either order.
    let other = next(&mut ws).await;
    let (reply, event) = if r["type"] == "acknowledged" {
        (r, other)
    } else {
        (other, r)
    };
    assert_eq!(reply["type"], "acknowledged", "{reply}");
    assert!(reply["alert"]["acknowledged_at"].is_string());
    assert_eq!(event["topic"], "alerts.acknowledged");
    assert_eq!(app.audit_events("alerts.acknowledge").await.len(), 1);
}

/// Reads SSE events (`event`, `id`, `data`) from a response until `n` have come.
async fn sse_events(r: &mut reqwest::Response, n: usize) -> Vec<(String, Option<i64>, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(WAIT, r.chunk())
            .await
            .expect("SSE data arrives")
            .unwrap()
            .expect("the stream is open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.into();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !data.is_empty() {
                out.push((event, id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

async fn sse_streams_the_same_topics_and_resumes_with_last_event_id(app: TestApp) {
    let key = metrics_key(&app).await;
    let url = format!(
        "{}/sse/v1/metrics/stream?metric_name=llm.latency&tags=model:gpt-4o",
        app.base
    );
    let mut r = app
        .client
        .get(&url)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let first = sse_events(&mut r, 1).await;
    assert_eq!(first[0].0, "subscribed");
    ingest(&app, &key, vec![pt(0, "gpt-4o", 1.0), pt(0, "claude", 2.0)]).await;
    let ev = sse_events(&mut r, 1).await;
    assert_eq!(ev[0].0, "metrics.points");
    let id = ev[0].1.expect("events carry their id");
    assert_eq!(flatten_series(&ev[0].2["data"]).len(), 1);
    drop(r);
    ingest(&app, &key, vec![pt(0, "gpt-4o", 3.0)]).await;
    let mut r = app
        .client
        .get(&url)
        .bearer_auth(&app.admin_token)
        .header("last-event-id", id.to_string())
        .send()
        .await
        .unwrap();
    let ev = sse_events(&mut r, 2).await;
    assert_eq!(ev[1].0, "metrics.points");
    assert!(ev[1].1.unwrap() > id);
    assert_eq!(flatten_series(&ev[1].2["data"])[0]["value"], 3.0);
    // Topics the caller may not read: 403 before streaming.
    let r = app
        .client
        .get(format!(
            "{}/sse/v1/events/stream?topics=policy.violation",
            app.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .get(format!("{}/sse/v1/metrics/stream", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn a_client_that_does_not_read_is_dropped_with_a_reason(backend: llmgov_store::Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            streams: Some(llmgov_server::streams::StreamConfig {
                max_queued_bytes: 256 * 1024,
                send_timeout: Duration::from_secs(60),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let key = metrics_key(&app).await;
    // A client with a tiny receive buffer that stops reading after subscribing.
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(
        ws_url(&app.base, "/ws/v1/metrics/stream", &app.admin_token),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    next(&mut ws).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": "all"})).await;
    // 100 series with long labels: each event is about 40 KiB, 12 MiB in all, far more
    // than the socket buffers and the client's budget can hold.
    let batch: Vec<Value> = (0..100)
        .map(|i| pt(0, &format!("model-{i:03}-{}", "x".repeat(120)), i as f64))
        .collect();
    for _ in 0..300 {
        ingest(&app, &key, batch.clone()).await;
    }
    // Now it reads: what was in flight, then the close frame with its reason (heartbeats
    // would keep a per-message timeout alive, so the deadline is for the whole read).
    let deadline = tokio::time::Instant::now() + WAIT;
    let close = loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the server closes")
        {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close reason"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 4008);
    assert!(close.reason.contains("slow consumer"), "{}", close.reason);
}

/// A NATS server of the test's own (so that it can be stopped and started again).
struct Nats {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl Nats {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut n = Nats {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        n.up().await;
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn up(&mut self) {
        let bin = std::env::var("LLMGOV_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = tokio::process::Command::new(&bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{bin} must be installed (scripts/test.sh installs it): {e}")
            });
        self.child = Some(child);
        // Ready when it accepts connections.
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not start");
    }

    async fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.unwrap();
        }
    }
}

async fn nats_carries_events_between_instances_and_across_an_outage(
    backend: llmgov_store::Backend,
) {
    let mut nats = Nats::start().await;
    let opts = Options {
        nats_url: Some(nats.url()),
        ..Default::default()
    };
    let a = spawn_app_with(backend, opts.clone()).await;
    let b = start_instance(&a.db.url, &opts).await;
    let key = metrics_key(&a).await;
    let mut ws = connect(&a.base, "/ws/v1/metrics/stream", &a.admin_token).await;
    next(&mut ws).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": "all"})).await;
    let ingest_on_b = |values: Vec<f64>| {
        let client = a.client.clone();
        let (b, key) = (b.clone(), key.clone());
        async move {
            let points: Vec<Value> = values.iter().map(|v| pt(0, "gpt-4o", *v)).collect();
            let r = client
                .post(format!("{b}/api/v1/metrics/ingest"))
                .bearer_auth(&key)
                .json(&json!({ "points": points }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    // A point ingested on B reaches a client of A.
    ingest_on_b(vec![1.0]).await;
    let (p, mut ids) = points(&mut ws, 1).await;
    assert_eq!(p[0]["value"], 1.0);
    // NATS goes down; points keep being committed on B.
    nats.down().await;
    for v in [2.0, 3.0, 4.0] {
        ingest_on_b(vec![v]).await;
    }
    // It comes back: everything written meanwhile arrives, in order, once.
    nats.up().await;
    ingest_on_b(vec![5.0]).await;
    let (p, more) = points(&mut ws, 4).await;
    let values: Vec<f64> = p.iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(values, vec![2.0, 3.0, 4.0, 5.0]);
    ids.extend(more);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates: {ids:?}"
    );
    let r = subscribe(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(r["type"], "pong", "nothing more came: {r}");
}

crate::both_backends!(
    the_metrics_stream_filters_and_resumes_from_an_event_id,
    streams_check_tokens_topics_and_messages,
    the_alert_stream_announces_changes_and_acknowledges,
    sse_streams_the_same_topics_and_resumes_with_last_event_id,
);

mod own_servers {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_slow_client() {
        super::a_client_that_does_not_read_is_dropped_with_a_reason(llmgov_store::Backend::Sqlite)
            .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_slow_client() {
        super::a_client_that_does_not_read_is_dropped_with_a_reason(llmgov_store::Backend::Postgres)
            .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_nats() {
        super::nats_carries_events_between_instances_and_across_an_outage(
            llmgov_store::Backend::Sqlite,
        )
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_nats() {
        super::nats_carries_events_between_instances_and_across_an_outage(
            llmgov_store::Backend::Postgres,
        )
        .await
    }
}
