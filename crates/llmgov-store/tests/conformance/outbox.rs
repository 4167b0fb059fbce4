//! The transactional outbox: claiming, leases, retries and giving up.

use llmgov_core::audit::AuditDraft;
use llmgov_core::outbox::{Delivery, DeliveryFilter, OutboxMessage};
use llmgov_core::page::ListQuery;
use llmgov_core::policy::model::Decision;
use llmgov_core::policy::store::EvaluationRecord;
use llmgov_core::time::now;
use serde_json::json;

use crate::Fx;

/// Writes `n` messages the way an evaluation does: in its transaction.
async fn enqueue(fx: &Fx, n: usize) -> Vec<OutboxMessage> {
    let msgs: Vec<OutboxMessage> = (0..n)
        .map(|i| {
            OutboxMessage::new(
                fx.ws,
                "policy.violation",
                "http://127.0.0.1:9/hook",
                &json!({"i": i}),
            )
        })
        .collect();
    let record = EvaluationRecord {
        id: llmgov_core::ids::EvaluationId::new(),
        workspace_id: fx.ws,
        at: now(),
        decision: Decision::Deny,
        policy_ids: vec![],
        violation_count: 0,
        input: "{}".into(),
        team: None,
        user: None,
        cost: 0.0,
    };
    let audit = AuditDraft::new(fx.ws, &crate::ctx(), "policies.evaluate", "policy");
    fx.store
        .record_evaluations(fx.ws, &[(record, vec![])], vec![audit], &msgs)
        .await
        .unwrap();
    msgs
}

async fn claimed_messages_are_leased_retried_and_settled(fx: Fx) {
    let msgs = enqueue(&fx, 3).await;
    let first = fx.store.claim_outbox(2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|m| m.attempts == 1));
    // Leased: another dispatcher gets only the third.
    let second = fx.store.claim_outbox(10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert!(fx.store.claim_outbox(10).await.unwrap().is_empty());
    fx.store
        .settle_outbox(first[0].id, &Delivery::Delivered)
        .await
        .unwrap();
    // Due again at once: claimed again, attempt 2.
    fx.store
        .settle_outbox(
            first[1].id,
            &Delivery::Failed {
                error: "HTTP 500".into(),
                status: Some(500),
                retry_at: Some(now()),
            },
        )
        .await
        .unwrap();
    fx.store
        .settle_outbox(
            second[0].id,
            &Delivery::Failed {
                error: "refused".into(),
                status: None,
                retry_at: None,
            },
        )
        .await
        .unwrap();
    let again = fx.store.claim_outbox(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[1].id);
    assert_eq!(again[0].attempts, 2);
    let q = ListQuery {
        page: 1,
        limit: 50,
        sort: vec![],
    };
    let listed = fx
        .store
        .list_deliveries(fx.ws, &DeliveryFilter::default(), &q)
        .await
        .unwrap();
    assert_eq!(listed.total, msgs.len() as i64);
    let rec = |id| listed.items.iter().find(|d| d.id == id).unwrap().clone();
    assert_eq!(rec(first[0].id).status, "delivered");
    assert!(rec(first[0].id).delivered_at.is_some());
    assert_eq!(rec(second[0].id).status, "dead");
    assert_eq!(rec(second[0].id).last_error.as_deref(), Some("refused"));
    assert_eq!(rec(first[1].id).status, "pending");
    assert_eq!(rec(first[1].id).last_status, Some(500));
    assert!(rec(first[1].id).last_attempt_at.is_some());
    // Filters.
    let dead = fx
        .store
        .list_deliveries(
            fx.ws,
            &DeliveryFilter {
                status: Some("dead".into()),
                topic: None,
            },
            &q,
        )
        .await
        .unwrap();
    assert_eq!(dead.total, 1);
    // A dead delivery can be retried; a delivered one cannot; another workspace sees none.
    assert!(
        fx.store
            .retry_delivery(fx.ws, second[0].id, crate::audit(fx.ws, "webhooks.retry"))
            .await
            .unwrap()
    );
    assert!(
        !fx.store
            .retry_delivery(fx.ws, first[0].id, crate::audit(fx.ws, "webhooks.retry"))
            .await
            .unwrap()
    );
    assert!(
        !fx.store
            .retry_delivery(
                llmgov_core::ids::WorkspaceId(uuid::Uuid::now_v7()),
                second[0].id,
                crate::audit(fx.ws, "webhooks.retry"),
            )
            .await
            .unwrap()
    );
    let retried = fx.store.claim_outbox(10).await.unwrap();
    assert!(
        retried
            .iter()
            .any(|m| m.id == second[0].id && m.attempts == 1)
    );
}

async fn deferred_deliveries_keep_their_attempts_and_secrets_stay_private(fx: Fx) {
    let msg = OutboxMessage::new(
        fx.ws,
        "alerts.fire",
        "https://hooks.example.com/x?token=abc",
        &json!({}),
    )
    .signed(Some("0123456789abcdef"));
    let audit = AuditDraft::new(fx.ws, &crate::ctx(), "policies.evaluate", "policy");
    fx.store
        .record_evaluations(fx.ws, &[], vec![audit], std::slice::from_ref(&msg))
        .await
        .unwrap();
    let claimed = fx.store.claim_outbox(10).await.unwrap();
    assert_eq!(
        claimed[0].signing_secret.as_deref(),
        Some("0123456789abcdef")
    );
    assert_eq!(claimed[0].attempts, 1);
    fx.store
        .settle_outbox(
            msg.id,
            &Delivery::Deferred {
                reason: "circuit open".into(),
                retry_at: now(),
            },
        )
        .await
        .unwrap();
    let again = fx.store.claim_outbox(10).await.unwrap();
    assert_eq!(
        again[0].attempts, 1,
        "a deferred delivery spends no attempt"
    );
    let q = ListQuery {
        page: 1,
        limit: 50,
        sort: vec![],
    };
    let listed = fx
        .store
        .list_deliveries(fx.ws, &DeliveryFilter::default(), &q)
        .await
        .unwrap();
    let d = &listed.items[0];
    assert!(d.signed);
    assert_eq!(
        d.destination, "https://hooks.example.com/x",
        "no query string"
    );
    assert_eq!(d.last_error.as_deref(), Some("circuit open"));
    let shown = serde_json::to_string(d).unwrap();
    assert!(!shown.contains("0123456789abcdef") && !shown.contains("token=abc"));
}

async fn a_failed_evaluation_record_leaves_no_message(fx: Fx) {
    crate::raw(&fx.db, "DROP TABLE policy_violations")
        .await
        .unwrap();
    let record = EvaluationRecord {
        id: llmgov_core::ids::EvaluationId::new(),
        workspace_id: fx.ws,
        at: now(),
        decision: Decision::Deny,
        policy_ids: vec![],
        violation_count: 1,
        input: "{}".into(),
        team: None,
        user: None,
        cost: 0.0,
    };
    let v = llmgov_core::policy::model::Violation {
        id: llmgov_core::ids::ViolationId::new(),
        workspace_id: fx.ws,
        policy_id: llmgov_core::ids::PolicyId::new(),
        policy_version: 1,
        rule: "deny".into(),
        message: "m".into(),
        severity: llmgov_core::policy::model::Severity::High,
        decision: Decision::Deny,
        resource_type: "request".into(),
        resource_id: None,
        details: json!({}),
        status: llmgov_core::policy::model::ViolationStatus::Open,
        detected_at: now(),
        updated_at: None,
        resolved_by: None,
        resolution_notes: None,
    };
    let msg = OutboxMessage::new(
        fx.ws,
        "policy.violation",
        "http://127.0.0.1:9/hook",
        &json!({}),
    );
    let audit = AuditDraft::new(fx.ws, &crate::ctx(), "policies.evaluate", "policy");
    let event = OutboxMessage::event(fx.ws, "policy.violation", &json!({}));
    let r = fx
        .store
        .record_evaluations(fx.ws, &[(record, vec![v])], vec![audit], &[msg, event])
        .await;
    assert!(r.is_err());
    assert!(
        fx.store.claim_outbox(10).await.unwrap().is_empty(),
        "no change, no message"
    );
    assert_eq!(
        fx.store.last_event_id().await.unwrap(),
        0,
        "no change, no event"
    );
}

crate::conformance!(
    claimed_messages_are_leased_retried_and_settled,
    deferred_deliveries_keep_their_attempts_and_secrets_stay_private,
    a_failed_evaluation_record_leaves_no_message,
);
