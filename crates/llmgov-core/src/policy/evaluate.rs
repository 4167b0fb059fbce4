//! Evaluations, dry runs, violations and compliance coverage.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::compliance;
use super::engine::{Outcome, applicable, record_of, text_field, violations_of};
use super::facts::FactKind;
use super::model::{Policy, PolicyFilter, PolicyStatus, Violation, ViolationStatus};
use super::service::PolicyService;
use super::store::SpendScope;
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::identity::optional_text;
use crate::ids::{PolicyId, ViolationId};
use crate::page::{Direction, ListQuery, SortKey};
use crate::time::now;
use crate::{CoreError, Result};

/// Inputs replayed by a dry run when none are given, and the most accepted.
pub const DRY_RUN_MAX_INPUTS: usize = 100;

/// What a dry run reports per input.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunItem {
    pub index: usize,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunReport {
    pub inputs: usize,
    /// Inputs that would have had at least one violation.
    pub violating: usize,
    pub items: Vec<DryRunItem>,
}

/// A move of a violation through its lifecycle.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ViolationChange {
    pub status: ViolationStatus,
    pub notes: Option<String>,
}

/// One control's coverage.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ControlCoverage {
    pub id: &'static str,
    pub title: &'static str,
    pub covered: bool,
    pub policies: Vec<CoveringPolicy>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoveringPolicy {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: PolicyId,
    pub name: String,
    pub version: i32,
    /// Evidence: evaluations that ran it, violations it found, those still open, and the
    /// audit entries of its changes.
    pub evaluations: i64,
    pub violations: i64,
    pub open_violations: i64,
    pub audit_entries: i64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    pub framework: &'static str,
    pub name: &'static str,
    pub controls_total: usize,
    pub controls_covered: usize,
    pub controls: Vec<ControlCoverage>,
}

impl PolicyService {
    /// Platform facts for `data.platform`: `now`; the facts of the model and dataset the
    /// input names (`models.<model>`, `datasets.<dataset>`) when a policy reads them; and,
    /// when a policy reads spend, the
    /// spend of the call's team and user today and this month (UTC), as
    /// `spend.team.<team>.day|month` and `spend.user.<user>.day|month`. Spend is the sum of
    /// the `cost` reported with recorded guardrail calls.
    async fn facts(&self, p: &Principal, policies: &[Policy], input: &Value) -> Result<Value> {
        let at = now();
        let mut facts = json!({ "now": at.to_rfc3339() });
        let reads = |word: &str| {
            policies
                .iter()
                .any(|x| x.spec.definition.source.contains(word))
        };
        for kind in [FactKind::Model, FactKind::Dataset] {
            let (key, _) = kind.platform_key();
            if reads(key)
                && let Some(found) = self.facts_for(p, kind, input).await?
            {
                facts[key] = found;
            }
        }
        if !reads("spend") {
            return Ok(facts);
        }
        let today = at.date_naive();
        let mut spend = serde_json::Map::new();
        for (scope, key, name) in [
            (SpendScope::Team, "team", "team"),
            (SpendScope::User, "user", "user"),
        ] {
            let Some(id) = text_field(input, key) else {
                continue;
            };
            let (d, m) = self
                .store()
                .spend(p.workspace_id, scope, &id, today)
                .await?;
            spend.insert(name.into(), json!({ id: {"day": d, "month": m} }));
        }
        facts["spend"] = Value::Object(spend);
        Ok(facts)
    }

    /// Evaluates one policy (any status) on `input`. Violations of an active policy are
    /// recorded; evaluating a draft records nothing.
    pub async fn evaluate_one(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: PolicyId,
        input: Value,
    ) -> Result<Outcome> {
        let policy = self.store().get_policy(p.workspace_id, id).await?;
        let record = policy.spec.status == PolicyStatus::Active;
        self.evaluate_policies(p, ctx, vec![policy], input, record)
            .await
    }

    /// The guardrail call: every active policy that applies, by priority, one decision.
    pub async fn evaluate_all(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        input: Value,
    ) -> Result<Outcome> {
        self.evaluator().check_input(&input)?;
        let policies = applicable(self.store().active_policies(p.workspace_id).await?, &input);
        self.evaluate_policies(p, ctx, policies, input, true).await
    }

    /// The platform's own gates: the active policies of type `kind` that apply to `input`
    /// (a dataset export asks the `data` policies), evaluated and recorded like the
    /// guardrail call. `None` when no such policy applies; `input` is built only then.
    pub async fn evaluate_gate<F, Fut>(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        kind: super::model::PolicyType,
        conditions: Value,
        input: F,
    ) -> Result<Option<Outcome>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Value>>,
    {
        let policies: Vec<_> = applicable(
            self.store().active_policies(p.workspace_id).await?,
            &conditions,
        )
        .into_iter()
        .filter(|x| x.spec.policy_type == kind)
        .collect();
        if policies.is_empty() {
            return Ok(None);
        }
        let input = input().await?;
        self.evaluator().check_input(&input)?;
        self.evaluate_policies(p, ctx, policies, input, true)
            .await
            .map(Some)
    }

    async fn evaluate_policies(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        policies: Vec<Policy>,
        input: Value,
        record: bool,
    ) -> Result<Outcome> {
        let facts = self.facts(p, &policies, &input).await?;
        let mut outcome = self
            .evaluator()
            .run(policies.clone(), input.clone(), facts)
            .await?;
        if record {
            let violations = violations_of(p, &outcome, &policies, &input);
            let (rec, audit) = record_of(p, ctx, &outcome, &input, violations.len());
            let id = rec.id;
            let outbox = notifications(p, &outcome, &policies, id);
            self.recorder()
                .record(rec, violations, audit, outbox)
                .await?;
            outcome.evaluation_id = Some(id);
        }
        Ok(outcome)
    }

    /// Evaluates a policy (typically a draft) against `inputs`, or the latest recorded
    /// evaluation inputs, recording nothing.
    pub async fn dry_run(
        &self,
        p: &Principal,
        id: PolicyId,
        inputs: Option<Vec<Value>>,
        last: Option<usize>,
    ) -> Result<DryRunReport> {
        let policy = self.store().get_policy(p.workspace_id, id).await?;
        let inputs = match inputs {
            Some(i) if i.len() > DRY_RUN_MAX_INPUTS => {
                return Err(CoreError::invalid(
                    "inputs",
                    format!("at most {DRY_RUN_MAX_INPUTS} inputs"),
                ));
            }
            Some(i) => i,
            None => {
                let n = last.unwrap_or(20).clamp(1, DRY_RUN_MAX_INPUTS);
                self.store()
                    .recent_evaluation_inputs(p.workspace_id, n as i64)
                    .await?
                    .iter()
                    .filter_map(|s| serde_json::from_str(s).ok())
                    .collect()
            }
        };
        let mut items = Vec::with_capacity(inputs.len());
        let single = std::slice::from_ref(&policy);
        for (index, input) in inputs.into_iter().enumerate() {
            let facts = self.facts(p, single, &input).await?;
            let outcome = self
                .evaluator()
                .run(vec![policy.clone()], input, facts)
                .await
                .map_err(|e| match e {
                    CoreError::Invalid { message, .. } => {
                        CoreError::invalid(format!("inputs[{index}]"), message)
                    }
                    other => other,
                })?;
            items.push(DryRunItem { index, outcome });
        }
        Ok(DryRunReport {
            inputs: items.len(),
            violating: items
                .iter()
                .filter(|i| !i.outcome.violations.is_empty())
                .count(),
            items,
        })
    }

    pub async fn get_violation(&self, p: &Principal, id: ViolationId) -> Result<Violation> {
        self.store().get_violation(p.workspace_id, id).await
    }

    /// Moves a violation along `open` → `acknowledged` → `resolved` | `false_positive`.
    pub async fn change_violation(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: ViolationId,
        change: ViolationChange,
    ) -> Result<Violation> {
        let before = self.store().get_violation(p.workspace_id, id).await?;
        if !before.status.can_become(change.status) {
            return Err(CoreError::conflict(
                "VIOLATION_STATUS",
                format!(
                    "a violation cannot go from {} to {}",
                    before.status, change.status
                ),
            ));
        }
        let notes = optional_text("notes", change.notes.as_deref(), 5000)?;
        let mut after = before.clone();
        after.status = change.status;
        after.updated_at = Some(now());
        if notes.is_some() {
            after.resolution_notes = notes;
        }
        if matches!(
            change.status,
            ViolationStatus::Resolved | ViolationStatus::FalsePositive
        ) {
            after.resolved_by = Some(p.user_id);
        }
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "violations.update",
            "policy",
        )
        .resource("policy_violation", id)
        .before(json!({"status": before.status}))
        .after(json!({"status": after.status, "notes": after.resolution_notes}));
        self.store()
            .update_violation(&after, before.status, audit)
            .await?;
        Ok(after)
    }

    /// Which controls of `framework` active policies cover, with evidence.
    pub async fn coverage(&self, p: &Principal, framework: &str) -> Result<Coverage> {
        let fw = compliance::framework(framework).ok_or(CoreError::not_found("framework"))?;
        let q = ListQuery {
            page: 1,
            limit: crate::page::MAX_LIMIT,
            sort: vec![SortKey {
                column: "priority",
                direction: Direction::Desc,
            }],
        };
        let filter = PolicyFilter {
            status: Some(PolicyStatus::Active),
            ..Default::default()
        };
        let mut active = Vec::new();
        for page in 1.. {
            let got = self
                .store()
                .list_policies(p.workspace_id, &filter, &ListQuery { page, ..q.clone() })
                .await?;
            let more = got.has_more;
            active.extend(got.items);
            if !more {
                break;
            }
        }
        let mut controls = Vec::new();
        for c in fw.controls {
            let mut policies = Vec::new();
            for pol in active
                .iter()
                .filter(|x| x.spec.controls.iter().any(|id| id == c.id))
            {
                let e = self.store().policy_evidence(p.workspace_id, pol.id).await?;
                let filter = crate::store::AuditFilter {
                    resource_type: Some("policy".into()),
                    resource_id: Some(pol.id.to_string()),
                    ..Default::default()
                };
                let one = ListQuery {
                    page: 1,
                    limit: 1,
                    sort: vec![],
                };
                let audit = self
                    .store()
                    .list_audit(p.workspace_id, &filter, &one)
                    .await?
                    .total;
                policies.push(CoveringPolicy {
                    id: pol.id,
                    name: pol.spec.name.clone(),
                    version: pol.version,
                    evaluations: e.evaluations,
                    violations: e.violations,
                    open_violations: e.open_violations,
                    audit_entries: audit,
                });
            }
            controls.push(ControlCoverage {
                id: c.id,
                title: c.title,
                covered: !policies.is_empty(),
                policies,
            });
        }
        Ok(Coverage {
            framework: fw.id,
            name: fw.name,
            controls_total: controls.len(),
            controls_covered: controls.iter().filter(|c| c.covered).count(),
            controls,
        })
    }
}

/// One webhook message per `notify` action of each policy that found violations. The body
/// names the policy and the violations; never the prompt or response text.
fn notifications(
    p: &Principal,
    outcome: &Outcome,
    policies: &[Policy],
    evaluation: crate::ids::EvaluationId,
) -> Vec<crate::outbox::OutboxMessage> {
    let mut out = Vec::new();
    for r in outcome.results.iter().filter(|r| !r.violations.is_empty()) {
        let Some(policy) = policies.iter().find(|x| x.id == r.policy_id) else {
            continue;
        };
        let payload = json!({
            "topic": "policy.violation",
            "workspace_id": p.workspace_id,
            "evaluation_id": evaluation,
            "policy": {"id": r.policy_id, "name": r.policy_name, "version": r.version},
            "decision": r.decision,
            "severity": policy.spec.severity(),
            "violations": r.violations.iter().map(|v| json!({
                "rule": v.rule, "message": v.message, "severity": v.severity,
            })).collect::<Vec<_>>(),
            "occurred_at": now(),
        });
        // Every violation is announced on the event stream.
        out.push(crate::outbox::OutboxMessage::event(
            p.workspace_id,
            crate::events::POLICY_VIOLATION,
            &payload,
        ));
        for action in &policy.spec.actions {
            if let super::model::Action::Notify { url, secret, .. } = action {
                out.push(
                    crate::outbox::OutboxMessage::new(
                        p.workspace_id,
                        "policy.violation",
                        url,
                        &payload,
                    )
                    .signed(secret.as_deref()),
                );
            }
        }
    }
    out
}
