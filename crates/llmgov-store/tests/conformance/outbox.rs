//! The transactional outbox: claiming, leases, retries and giving up.

use llmgov_core::audit::AuditDraft;
use llmgov_core::outbox::{Delivery, OutboxMessage};
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
                retry_at: None,
            },
        )
        .await
        .unwrap();
    let again = fx.store.claim_outbox(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[1].id);
    assert_eq!(again[0].attempts, 2);
    let listed = fx.store.list_outbox(fx.ws, 10).await.unwrap();
    let status = |id| listed.iter().find(|(m, _)| m.id == id).unwrap().1.clone();
    assert_eq!(status(first[0].id), "delivered");
    assert_eq!(status(second[0].id), "dead");
    assert_eq!(status(first[1].id), "pending");
    assert_eq!(listed.len(), msgs.len());
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
    let r = fx
        .store
        .record_evaluations(fx.ws, &[(record, vec![v])], vec![audit], &[msg])
        .await;
    assert!(r.is_err());
    assert!(
        fx.store.claim_outbox(10).await.unwrap().is_empty(),
        "no change, no message"
    );
}

crate::conformance!(
    claimed_messages_are_leased_retried_and_settled,
    a_failed_evaluation_record_leaves_no_message,
);
