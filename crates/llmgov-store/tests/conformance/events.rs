//! Events of the real-time streams: written with their change, read back in id order per
//! workspace, never skipped by a reader tailing by id, pruned by age but not before a relay
//! published them; relay leases.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use llmgov_core::audit::AuditDraft;
use llmgov_core::events::METRICS_POINTS;
use llmgov_core::ids::WorkspaceId;
use llmgov_core::outbox::OutboxMessage;
use llmgov_core::store::Store;
use llmgov_core::time::now;
use serde_json::json;

use crate::Fx;

/// Commits one change (an empty evaluation batch) carrying `events`.
async fn commit_events(store: &dyn Store, ws: WorkspaceId, events: &[OutboxMessage]) {
    let audit = AuditDraft::new(ws, &crate::ctx(), "policies.evaluate", "policy");
    store
        .record_evaluations(ws, &[], vec![audit], events)
        .await
        .unwrap();
}

async fn events_are_read_back_in_order_per_workspace(fx: Fx) {
    let signal = fx.store.event_signal();
    let other = crate::new_workspace(&fx, "other").await;
    let ev = |ws, i: i32| OutboxMessage::event(ws, "policy.violation", &json!({ "i": i }));
    commit_events(&*fx.store, fx.ws, &[ev(fx.ws, 1), ev(fx.ws, 2)]).await;
    // The writer woke the hub.
    tokio::time::timeout(Duration::from_secs(5), signal.wait(Duration::from_secs(60)))
        .await
        .expect("woken");
    commit_events(&*fx.store, other, &[ev(other, 3)]).await;
    let theirs = fx.store.events_after(Some(other), 0, 10).await.unwrap();
    assert_eq!(theirs.len(), 1);
    commit_events(&*fx.store, fx.ws, &[ev(fx.ws, 4)]).await;
    let mine = fx.store.events_after(Some(fx.ws), 0, 10).await.unwrap();
    let values: Vec<i64> = mine
        .iter()
        .map(|e| e.data()["i"].as_i64().unwrap())
        .collect();
    assert_eq!(values, vec![1, 2, 4]);
    assert!(mine.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        mine.iter()
            .all(|e| e.topic == "policy.violation" && e.workspace_id == fx.ws)
    );
    let after_first = fx
        .store
        .events_after(Some(fx.ws), mine[0].id, 10)
        .await
        .unwrap();
    assert_eq!(after_first.len(), 2);
    assert_eq!(
        fx.store
            .events_after(Some(fx.ws), 0, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let last = fx.store.last_event_id().await.unwrap();
    assert!(last >= mine[2].id);
    assert_eq!(
        fx.store
            .events_after(None, 0, 100)
            .await
            .unwrap()
            .last()
            .unwrap()
            .id,
        last
    );
}

/// Several writers commit events concurrently while a reader tails by id: the reader sees
/// every event (on PostgreSQL thanks to the event lock; SQLite serialises writers).
async fn a_reader_tailing_by_id_never_skips_an_event(fx: Fx) {
    let store = fx.store.clone();
    let ws = fx.ws;
    let writers = 6;
    let per = 15;
    let tail = tokio::spawn({
        let store = store.clone();
        async move {
            let mut seen = BTreeSet::new();
            let mut cursor = 0;
            while seen.len() < writers * per {
                for e in store.events_after(Some(ws), cursor, 1000).await.unwrap() {
                    cursor = e.id;
                    seen.insert(e.id);
                }
                tokio::task::yield_now().await;
            }
            seen
        }
    });
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store: Arc<dyn Store> = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let m = OutboxMessage::event(ws, "policy.violation", &json!({"w": w, "i": i}));
                commit_events(&*store, ws, &[m]).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), tail)
        .await
        .expect("the tailer saw every event (none skipped)")
        .unwrap();
    let all: BTreeSet<i64> = store
        .events_after(Some(ws), 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(seen, all);
}

async fn relay_leases_have_one_holder_and_pruning_waits_for_the_relay(fx: Fx) {
    let m = |i: i32| OutboxMessage::event(fx.ws, "policy.violation", &json!({ "i": i }));
    commit_events(&*fx.store, fx.ws, &[m(1)]).await;
    let first = fx.store.last_event_id().await.unwrap();
    let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    // A new relay starts at the current last event.
    assert_eq!(
        fx.store
            .claim_relay("nats", a, Duration::from_secs(30))
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        fx.store
            .claim_relay("nats", b, Duration::from_secs(30))
            .await
            .unwrap(),
        None
    );
    commit_events(&*fx.store, fx.ws, &[m(2)]).await;
    commit_events(&*fx.store, fx.ws, &[m(3)]).await;
    let last = fx.store.last_event_id().await.unwrap();
    assert!(
        !fx.store.advance_relay("nats", b, last).await.unwrap(),
        "not the holder"
    );
    // Everything is old enough, but the relay has published only up to `first`.
    let later = now() + chrono::Duration::hours(1);
    assert_eq!(fx.store.prune_events(later, later).await.unwrap(), 1);
    assert_eq!(
        fx.store
            .events_after(Some(fx.ws), 0, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(fx.store.advance_relay("nats", a, last).await.unwrap());
    assert_eq!(
        fx.store
            .claim_relay("nats", a, Duration::ZERO)
            .await
            .unwrap(),
        Some(last),
        "renewed by its holder (here with a lease that ends at once)"
    );
    // The lease ran out: another instance takes over where it stopped.
    assert_eq!(
        fx.store
            .claim_relay("nats", b, Duration::from_secs(30))
            .await
            .unwrap(),
        Some(last)
    );
    assert!(
        !fx.store.advance_relay("nats", a, last + 1).await.unwrap(),
        "a lost its lease"
    );
    assert_eq!(fx.store.prune_events(later, later).await.unwrap(), 2);
    // Pruning never reuses ids: new events keep increasing.
    commit_events(&*fx.store, fx.ws, &[m(4)]).await;
    assert!(fx.store.last_event_id().await.unwrap() > last);
}

async fn point_events_have_a_shorter_retention_and_are_pruned_in_batches(fx: Fx) {
    let violation = |i: i32| OutboxMessage::event(fx.ws, "policy.violation", &json!({ "i": i }));
    let points =
        |i: i32| OutboxMessage::event(fx.ws, METRICS_POINTS, &json!({ "series": [], "i": i }));
    // More point events than one delete statement takes (5,000), so pruning loops.
    let many: Vec<OutboxMessage> = (0..5_200).map(points).collect();
    commit_events(&*fx.store, fx.ws, &many).await;
    commit_events(&*fx.store, fx.ws, &[violation(1)]).await;
    let (past, future) = (
        now() - chrono::Duration::hours(1),
        now() + chrono::Duration::hours(1),
    );
    assert_eq!(
        fx.store.prune_events(past, past).await.unwrap(),
        0,
        "all are recent"
    );
    // Points past their horizon go; other topics stay until theirs.
    assert_eq!(fx.store.prune_events(past, future).await.unwrap(), 5_200);
    let left = fx.store.events_after(Some(fx.ws), 0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].topic, "policy.violation");
    assert_eq!(fx.store.prune_events(future, future).await.unwrap(), 1);
}

crate::conformance!(
    events_are_read_back_in_order_per_workspace,
    point_events_have_a_shorter_retention_and_are_pruned_in_batches,
    a_reader_tailing_by_id_never_skips_an_event,
    relay_leases_have_one_holder_and_pruning_waits_for_the_relay,
);
