//! Policy management: create, change (each change a new immutable version), archive,
//! roll back, and create from templates. Every change is compiled first and audited in
//! the same transaction.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::compliance::validate_controls;
use super::engine::Evaluator;
use super::model::{
    Action, Conditions, Definition, Policy, PolicySpec, PolicyStatus, PolicyType, PolicyVersion,
    validate_actions,
};
use super::store::PolicyWrite;
use super::{rego, templates};
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::identity::optional_text;
use crate::ids::PolicyId;
use crate::store::Store;
use crate::time::{Timestamp, now};
use crate::{CoreError, Result};

/// The fields of a new policy, or of a full replacement (`PUT`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    pub name: String,
    pub policy_type: PolicyType,
    pub description: Option<String>,
    pub category: Option<String>,
    #[serde(default)]
    pub priority: i32,
    pub status: Option<PolicyStatus>,
    pub definition: Definition,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub effective_from: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub effective_to: Option<Timestamp>,
    #[serde(default)]
    pub controls: Vec<String>,
    /// Why this change was made (kept with the version).
    pub change_summary: Option<String>,
}

/// A partial change (`PATCH`): absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    pub name: Option<String>,
    pub policy_type: Option<PolicyType>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub priority: Option<i32>,
    pub status: Option<PolicyStatus>,
    pub definition: Option<Definition>,
    pub conditions: Option<Conditions>,
    pub actions: Option<Vec<Action>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub effective_from: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub effective_to: Option<Timestamp>,
    pub controls: Option<Vec<String>>,
    pub change_summary: Option<String>,
    /// Refuse the change unless the policy is still at this version.
    pub expected_version: Option<i32>,
}

impl PolicyInput {
    fn into_spec(self, template_id: Option<String>) -> (PolicySpec, Option<String>) {
        (
            PolicySpec {
                name: self.name,
                description: self.description,
                policy_type: self.policy_type,
                category: self.category,
                priority: self.priority,
                status: self.status.unwrap_or(PolicyStatus::Draft),
                definition: self.definition,
                conditions: self.conditions,
                actions: self.actions,
                effective_from: self.effective_from,
                effective_to: self.effective_to,
                controls: self.controls,
                template_id,
            },
            self.change_summary,
        )
    }
}

/// Creating a policy from a template.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FromTemplate {
    pub template_id: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    pub status: Option<PolicyStatus>,
    #[serde(default)]
    pub priority: i32,
    pub conditions: Option<Conditions>,
    /// Replaces the template's default actions.
    pub actions: Option<Vec<Action>>,
}

/// `spec` with the fields `patch` gives replaced.
pub fn patched(spec: &PolicySpec, patch: PolicyPatch) -> PolicySpec {
    let mut s = spec.clone();
    if let Some(v) = patch.name {
        s.name = v;
    }
    if let Some(v) = patch.policy_type {
        s.policy_type = v;
    }
    if patch.description.is_some() {
        s.description = patch.description;
    }
    if patch.category.is_some() {
        s.category = patch.category;
    }
    if let Some(v) = patch.priority {
        s.priority = v;
    }
    if let Some(v) = patch.status {
        s.status = v;
    }
    if let Some(v) = patch.definition {
        s.definition = v;
    }
    if let Some(v) = patch.conditions {
        s.conditions = v;
    }
    if let Some(v) = patch.actions {
        s.actions = v;
    }
    if patch.effective_from.is_some() {
        s.effective_from = patch.effective_from;
    }
    if patch.effective_to.is_some() {
        s.effective_to = patch.effective_to;
    }
    if let Some(v) = patch.controls {
        s.controls = v;
    }
    s
}

/// Checks everything about a spec, compiling its Rego.
pub fn validate_spec(s: &PolicySpec) -> Result<()> {
    let name = s.name.trim();
    if name.is_empty() || s.name.chars().count() > 200 || s.name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "name must be 1-200 characters without control characters",
        ));
    }
    optional_text("description", s.description.as_deref(), 5000)?;
    optional_text("category", s.category.as_deref(), 100)?;
    if !(-1_000_000..=1_000_000).contains(&s.priority) {
        return Err(CoreError::invalid(
            "priority",
            "priority must be between -1000000 and 1000000",
        ));
    }
    if let (Some(f), Some(t)) = (s.effective_from, s.effective_to)
        && f >= t
    {
        return Err(CoreError::invalid(
            "effective_to",
            "effective_to must be after effective_from",
        ));
    }
    s.conditions.validate()?;
    validate_actions(&s.actions)?;
    validate_controls(&s.controls)?;
    s.definition.validate()?;
    rego::compile(&s.definition.source)?;
    Ok(())
}

/// Policy management for one deployment.
pub struct PolicyService {
    store: Arc<dyn Store>,
    evaluator: Arc<Evaluator>,
    recorder: super::recorder::Recorder,
    wakeup: Arc<crate::outbox::Wakeup>,
}

impl PolicyService {
    pub fn new(store: Arc<dyn Store>, evaluator: Arc<Evaluator>) -> Self {
        let wakeup = Arc::new(crate::outbox::Wakeup::default());
        Self {
            recorder: super::recorder::Recorder::new(Arc::clone(&store), Arc::clone(&wakeup)),
            store,
            evaluator,
            wakeup,
        }
    }

    /// Woken when an evaluation has added outbox messages (webhooks of `notify` actions).
    pub fn outbox_wakeup(&self) -> &Arc<crate::outbox::Wakeup> {
        &self.wakeup
    }

    pub fn recorder(&self) -> &super::recorder::Recorder {
        &self.recorder
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn evaluator(&self) -> &Arc<Evaluator> {
        &self.evaluator
    }

    fn audit(p: &Principal, ctx: &RequestContext, event: &str) -> AuditDraft {
        AuditDraft::new(p.workspace_id, &p.context(ctx.clone()), event, "policy")
    }

    fn new_policy(p: &Principal, spec: PolicySpec, summary: Option<String>) -> PolicyWrite {
        let t = now();
        let id = PolicyId::new();
        let version = PolicyVersion {
            policy_id: id,
            version: 1,
            spec: spec.clone(),
            changed_by: Some(p.user_id),
            changed_at: t,
            change_summary: summary.or_else(|| Some("created".into())),
        };
        PolicyWrite {
            policy: Policy {
                id,
                workspace_id: p.workspace_id,
                spec,
                version: 1,
                created_by: Some(p.user_id),
                created_at: t,
                updated_at: t,
            },
            version,
            expected_version: None,
        }
    }

    /// Checks a new spec and prepares its write (used alone and by bulk).
    pub fn prepare_create(&self, p: &Principal, input: PolicyInput) -> Result<PolicyWrite> {
        let (mut spec, summary) = input.into_spec(None);
        spec.keep_secrets(&[]);
        validate_spec(&spec)?;
        optional_text("change_summary", summary.as_deref(), 1000)?;
        Ok(Self::new_policy(p, spec, summary))
    }

    /// Checks a changed spec against the stored policy and prepares its write.
    pub fn prepare_change(
        before: &Policy,
        p: &Principal,
        mut spec: PolicySpec,
        summary: Option<String>,
    ) -> Result<PolicyWrite> {
        spec.keep_secrets(&before.spec.actions);
        if !before.spec.status.can_become(spec.status) {
            return Err(CoreError::invalid(
                "status",
                format!(
                    "a policy cannot go from {} to {}",
                    before.spec.status, spec.status
                ),
            ));
        }
        validate_spec(&spec)?;
        optional_text("change_summary", summary.as_deref(), 1000)?;
        let mut policy = before.clone();
        policy.spec = spec.clone();
        policy.version = before.version + 1;
        policy.updated_at = now();
        Ok(PolicyWrite {
            version: PolicyVersion {
                policy_id: before.id,
                version: policy.version,
                spec,
                changed_by: Some(p.user_id),
                changed_at: policy.updated_at,
                change_summary: summary,
            },
            policy,
            expected_version: Some(before.version),
        })
    }

    pub fn write_audit(p: &Principal, ctx: &RequestContext, w: &PolicyWrite) -> AuditDraft {
        let event = match w.expected_version {
            None => "policies.create",
            Some(_) => "policies.update",
        };
        Self::audit(p, ctx, event)
            .resource("policy", w.policy.id)
            .after(json!({
                "name": w.policy.spec.name,
                "version": w.policy.version,
                "status": w.policy.spec.status,
                "policy_type": w.policy.spec.policy_type,
                "source_blake3": blake3::hash(w.policy.spec.definition.source.as_bytes()).to_hex().to_string(),
            }))
    }

    pub async fn create(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        input: PolicyInput,
    ) -> Result<Policy> {
        let w = self.prepare_create(p, input)?;
        let audit = Self::write_audit(p, ctx, &w);
        self.store
            .save_policies(p.workspace_id, std::slice::from_ref(&w), vec![audit])
            .await?;
        Ok(w.policy)
    }

    pub async fn get(&self, p: &Principal, id: PolicyId) -> Result<Policy> {
        self.store.get_policy(p.workspace_id, id).await
    }

    /// `PUT`: replaces every field.
    pub async fn replace(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: PolicyId,
        input: PolicyInput,
    ) -> Result<Policy> {
        let before = self.store.get_policy(p.workspace_id, id).await?;
        let template = before.spec.template_id.clone();
        // A PUT without a status keeps the current one; an explicit status is honoured.
        let keep_status = input.status.is_none();
        let (mut spec, summary) = input.into_spec(template);
        if keep_status {
            spec.status = before.spec.status;
        }
        self.save_change(p, ctx, &before, spec, summary).await
    }

    /// `PATCH`: changes the given fields.
    pub async fn patch(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: PolicyId,
        patch: PolicyPatch,
    ) -> Result<Policy> {
        let before = self.store.get_policy(p.workspace_id, id).await?;
        if let Some(v) = patch.expected_version
            && v != before.version
        {
            return Err(CoreError::conflict(
                "POLICY_VERSION_CONFLICT",
                format!("policy is at version {}, not {v}", before.version),
            ));
        }
        let summary = patch.change_summary.clone();
        let mut s = patched(&before.spec, patch);
        s.keep_secrets(&before.spec.actions);
        if s == before.spec {
            return Ok(before);
        }
        self.save_change(p, ctx, &before, s, summary).await
    }

    async fn save_change(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        before: &Policy,
        spec: PolicySpec,
        summary: Option<String>,
    ) -> Result<Policy> {
        let w = Self::prepare_change(before, p, spec, summary)?;
        let audit = Self::write_audit(p, ctx, &w).before(json!({
            "version": before.version,
            "status": before.spec.status,
        }));
        self.store
            .save_policies(p.workspace_id, std::slice::from_ref(&w), vec![audit])
            .await?;
        Ok(w.policy)
    }

    /// `DELETE`: archives. Policies are never erased, so that violations, evaluations and
    /// the audit trail keep pointing at what was in force.
    pub async fn archive(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: PolicyId,
    ) -> Result<Policy> {
        let before = self.store.get_policy(p.workspace_id, id).await?;
        if before.spec.status == PolicyStatus::Archived {
            return Ok(before);
        }
        let mut spec = before.spec.clone();
        spec.status = PolicyStatus::Archived;
        self.save_change(p, ctx, &before, spec, Some("archived".into()))
            .await
    }

    /// Makes the content of `version` the newest version (the history is kept).
    pub async fn rollback(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: PolicyId,
        version: i32,
    ) -> Result<Policy> {
        let before = self.store.get_policy(p.workspace_id, id).await?;
        let target = self
            .store
            .policy_version(p.workspace_id, id, version)
            .await?;
        let mut spec = target.spec;
        // The status stays: rolling back the rules does not re-activate an archived policy.
        spec.status = before.spec.status;
        self.save_change(
            p,
            ctx,
            &before,
            spec,
            Some(format!("rolled back to version {version}")),
        )
        .await
    }

    pub fn template_spec(&self, req: FromTemplate) -> Result<PolicyInput> {
        let t = templates::find(&req.template_id).ok_or(CoreError::not_found("template"))?;
        let source = t.render(&req.parameters)?;
        Ok(PolicyInput {
            name: req.name,
            policy_type: t.policy_type,
            description: req.description.or_else(|| Some(t.description.to_string())),
            category: Some(t.category.to_string()),
            priority: req.priority,
            status: req.status,
            definition: Definition {
                language: "rego".into(),
                source,
            },
            conditions: req.conditions.unwrap_or_default(),
            actions: req.actions.unwrap_or(t.actions),
            effective_from: None,
            effective_to: None,
            controls: t.controls.iter().map(|c| c.to_string()).collect(),
            change_summary: Some(format!("created from template {}", t.id)),
        })
    }

    pub async fn create_from_template(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        req: FromTemplate,
    ) -> Result<Policy> {
        let template_id = req.template_id.clone();
        let input = self.template_spec(req)?;
        let (mut spec, summary) = input.into_spec(Some(template_id));
        spec.keep_secrets(&[]);
        validate_spec(&spec)?;
        let w = Self::new_policy(p, spec, summary);
        let audit = Self::write_audit(p, ctx, &w);
        self.store
            .save_policies(p.workspace_id, std::slice::from_ref(&w), vec![audit])
            .await?;
        Ok(w.policy)
    }
}
