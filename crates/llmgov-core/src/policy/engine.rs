//! Evaluation: compiled policies cached by (policy, version), inputs checked against size
//! limits, each policy run under a time limit, results combined by restriction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::model::{Decision, Policy, PolicyStatus, Violation, ViolationStatus};
use super::rego::{self, CompiledPolicy, RuleViolation};
use super::store::EvaluationRecord;
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::ids::{EvaluationId, PolicyId, ViolationId};
use crate::time::now;
use crate::{CoreError, Result};

/// Limits of one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct EvalLimits {
    /// Wall-clock limit per policy.
    pub time: Duration,
    /// Largest input document, serialized, in bytes.
    pub max_input_bytes: usize,
}

impl Default for EvalLimits {
    fn default() -> Self {
        Self {
            time: Duration::from_millis(100),
            max_input_bytes: 256 * 1024,
        }
    }
}

/// Text replacing what a `redact` decision removes.
pub const REDACTED: &str = "[REDACTED]";

/// One policy's result.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyResult {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub policy_id: PolicyId,
    pub policy_name: String,
    pub version: i32,
    pub decision: Decision,
    pub violations: Vec<RuleViolation>,
    /// Evaluation time in microseconds.
    pub duration_us: u64,
}

/// The combined result of evaluating every applicable policy.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcome {
    /// Absent for dry runs, which record nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub evaluation_id: Option<EvaluationId>,
    pub decision: Decision,
    /// Every violation of every policy, in policy order.
    pub violations: Vec<RuleViolation>,
    pub results: Vec<PolicyResult>,
    /// With a `redact` decision: the input's text fields with the flagged text replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub redacted: Option<serde_json::Map<String, Value>>,
    pub duration_us: u64,
}

/// Compiles and caches policies and runs them.
pub struct Evaluator {
    limits: EvalLimits,
    cache: Mutex<HashMap<PolicyId, (i32, CompiledPolicy)>>,
}

impl Evaluator {
    pub fn new(limits: EvalLimits) -> Self {
        Self {
            limits,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> EvalLimits {
        self.limits
    }

    /// The compiled form of `p` at its current version; a new version replaces the old
    /// entry, so a change (seen through the store, from any instance) invalidates it.
    fn compiled(&self, p: &Policy) -> Result<CompiledPolicy> {
        let mut cache = self.cache.lock().expect("policy cache lock");
        if let Some((v, c)) = cache.get(&p.id)
            && *v == p.version
        {
            return Ok(c.clone());
        }
        let c = rego::compile(&p.spec.definition.source)?;
        cache.insert(p.id, (p.version, c.clone()));
        Ok(c)
    }

    /// Checks an input document: an object within the size limit.
    pub fn check_input(&self, input: &Value) -> Result<()> {
        if !input.is_object() {
            return Err(CoreError::invalid("input", "input must be a JSON object"));
        }
        let size = input.to_string().len();
        if size > self.limits.max_input_bytes {
            return Err(CoreError::Unprocessable {
                code: "POLICY_INPUT_TOO_LARGE",
                message: format!(
                    "input is {size} bytes; the limit is {}",
                    self.limits.max_input_bytes
                ),
                details: serde_json::Map::from_iter([(
                    "limit_bytes".to_string(),
                    json!(self.limits.max_input_bytes),
                )]),
            });
        }
        Ok(())
    }

    /// Runs `policies` (already in priority order) on `input`, off the async threads.
    pub async fn run(
        self: &Arc<Self>,
        policies: Vec<Policy>,
        input: Value,
        data: Value,
    ) -> Result<Outcome> {
        self.check_input(&input)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.run_blocking(&policies, &input, &data))
            .await
            .map_err(|e| CoreError::internal(format!("policy evaluation task: {e}")))?
    }

    fn run_blocking(&self, policies: &[Policy], input: &Value, data: &Value) -> Result<Outcome> {
        let started = std::time::Instant::now();
        let mut results = Vec::with_capacity(policies.len());
        let docs = rego::RegoDocs::new(input, data).map_err(CoreError::from)?;
        for p in policies {
            let compiled = self.compiled(p)?;
            let (violations, took) = compiled
                .evaluate_docs(&docs, self.limits.time)
                .map_err(|e| with_policy(e.into(), p))?;
            let decision = if violations.is_empty() {
                Decision::Allow
            } else {
                p.spec.violation_decision()
            };
            results.push(PolicyResult {
                policy_id: p.id,
                policy_name: p.spec.name.clone(),
                version: p.version,
                decision,
                violations,
                duration_us: took.as_micros() as u64,
            });
        }
        let decision = results
            .iter()
            .map(|r| r.decision)
            .max()
            .unwrap_or(Decision::Allow);
        let violations: Vec<RuleViolation> = results
            .iter()
            .flat_map(|r| r.violations.iter().cloned())
            .collect();
        let redacted = (decision == Decision::Redact).then(|| redact(input, &results));
        Ok(Outcome {
            evaluation_id: None,
            decision,
            violations,
            results,
            redacted,
            duration_us: started.elapsed().as_micros() as u64,
        })
    }
}

fn with_policy(e: CoreError, p: &Policy) -> CoreError {
    match e {
        CoreError::Unprocessable {
            code,
            message,
            mut details,
        } => {
            details.insert("policy_id".into(), json!(p.id));
            CoreError::Unprocessable {
                code,
                message: format!("policy {:?}: {message}", p.spec.name),
                details,
            }
        }
        other => other,
    }
}

/// The input's top-level strings with every match of a redacting policy replaced.
fn redact(input: &Value, results: &[PolicyResult]) -> serde_json::Map<String, Value> {
    let mut matches: Vec<&str> = results
        .iter()
        .filter(|r| r.decision == Decision::Redact)
        .flat_map(|r| r.violations.iter())
        .flat_map(|v| v.matches.iter().map(String::as_str))
        .filter(|m| !m.is_empty())
        .collect();
    // Longest first, so that a match inside a longer one does not split it.
    matches.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut out = serde_json::Map::new();
    for (k, v) in input.as_object().into_iter().flatten() {
        if let Value::String(s) = v {
            let mut text = s.clone();
            for m in &matches {
                text = text.replace(m, REDACTED);
            }
            if text != *s {
                out.insert(k.clone(), Value::String(text));
            }
        }
    }
    out
}

/// Policies that apply to `input` now: active, in effect, conditions met.
pub fn applicable(policies: Vec<Policy>, input: &Value) -> Vec<Policy> {
    let at = now();
    policies
        .into_iter()
        .filter(|p| {
            p.spec.status == PolicyStatus::Active
                && p.spec.in_effect(at)
                && p.spec.conditions.applies(input)
        })
        .collect()
}

/// The violations to record for an outcome (every violation of every policy: each policy
/// has at least the `record` action).
pub fn violations_of(
    p: &Principal,
    outcome: &Outcome,
    policies: &[Policy],
    input: &Value,
) -> Vec<Violation> {
    let at = now();
    let resource_type = input
        .get("resource_type")
        .and_then(Value::as_str)
        .unwrap_or("request")
        .chars()
        .take(100)
        .collect::<String>();
    let resource_id = ["resource_id", "request_id", "model", "dataset"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))
        .map(|s| s.chars().take(255).collect::<String>());
    let mut out = Vec::new();
    for r in &outcome.results {
        let Some(policy) = policies.iter().find(|x| x.id == r.policy_id) else {
            continue;
        };
        for v in &r.violations {
            out.push(Violation {
                id: ViolationId::new(),
                workspace_id: p.workspace_id,
                policy_id: r.policy_id,
                policy_version: r.version,
                rule: v.rule.clone(),
                message: v.message.clone(),
                severity: v.severity.unwrap_or_else(|| policy.spec.severity()),
                decision: r.decision,
                resource_type: resource_type.clone(),
                resource_id: resource_id.clone(),
                // The rule's own fields and context; never the prompt or response text.
                details: json!({
                    "fields": v.details,
                    "model": input.get("model"),
                    "provider": input.get("provider"),
                    "team": input.get("team"),
                    "user": input.get("user"),
                    "environment": input.get("environment"),
                    "match_count": v.matches.len(),
                }),
                status: ViolationStatus::Open,
                detected_at: at,
                updated_at: None,
                resolved_by: None,
                resolution_notes: None,
            });
        }
    }
    out
}

/// The evaluation record and its audit entry.
pub fn record_of(
    p: &Principal,
    ctx: &RequestContext,
    outcome: &Outcome,
    input: &Value,
    violations: usize,
) -> (EvaluationRecord, AuditDraft) {
    let id = EvaluationId::new();
    let record = EvaluationRecord {
        id,
        workspace_id: p.workspace_id,
        at: now(),
        decision: outcome.decision,
        policy_ids: outcome.results.iter().map(|r| r.policy_id).collect(),
        violation_count: violations as i64,
        input: input.to_string(),
        team: text_field(input, "team"),
        user: text_field(input, "user"),
        cost: input
            .get("cost")
            .and_then(Value::as_f64)
            .filter(|c| c.is_finite() && *c >= 0.0)
            .unwrap_or(0.0),
    };
    let audit = AuditDraft::new(
        p.workspace_id,
        &p.context(ctx.clone()),
        "policies.evaluate",
        "policy",
    )
    .resource("policy_evaluation", id)
    .details(json!({
        "decision": outcome.decision,
        "policies": outcome.results.iter().map(|r| json!({"id": r.policy_id, "version": r.version, "decision": r.decision})).collect::<Vec<_>>(),
        "violations": violations,
    }));
    (record, audit)
}

/// A short string field of the input (ids of teams and users), if present.
pub fn text_field(input: &Value, key: &str) -> Option<String> {
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_must_be_objects_within_the_size_limit() {
        let e = Evaluator::new(EvalLimits {
            time: Duration::from_millis(50),
            max_input_bytes: 1024,
        });
        assert!(e.check_input(&json!({"prompt": "short"})).is_ok());
        assert!(matches!(
            e.check_input(&json!([1, 2])),
            Err(CoreError::Invalid { .. })
        ));
        match e.check_input(&json!({"prompt": "x".repeat(2000)})) {
            Err(CoreError::Unprocessable { code, details, .. }) => {
                assert_eq!(code, "POLICY_INPUT_TOO_LARGE");
                assert_eq!(details["limit_bytes"], 1024);
            }
            other => panic!("expected a size error, got {other:?}"),
        }
    }

    #[test]
    fn redaction_replaces_longest_matches_first() {
        let r = PolicyResult {
            policy_id: PolicyId::new(),
            policy_name: "p".into(),
            version: 1,
            decision: Decision::Redact,
            violations: vec![RuleViolation {
                rule: "deny_pii".into(),
                message: "m".into(),
                severity: None,
                matches: vec!["bob".into(), "bob@example.com".into()],
                details: serde_json::Map::new(),
            }],
            duration_us: 0,
        };
        let out = redact(&json!({"prompt": "mail bob@example.com", "n": 1}), &[r]);
        assert_eq!(out["prompt"], "mail [REDACTED]");
        assert!(!out.contains_key("n"));
    }
}
