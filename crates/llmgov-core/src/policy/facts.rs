//! Facts about models and datasets that policies read as `data.platform.models.<name>` and
//! `data.platform.datasets.<name>`: an evaluation score, a risk level, a retention period,
//! whether a dataset is anonymized. Set through the API; other parts add their own.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::service::PolicyService;
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::ids::{UserId, WorkspaceId};
use crate::page::{ListQuery, Page};
use crate::time::{Timestamp, now};
use crate::{CoreError, Result};

/// Largest facts object, serialized.
pub const MAX_FACTS_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    Model,
    Dataset,
}

impl FactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::Model => "model",
            FactKind::Dataset => "dataset",
        }
    }

    /// From the URL segment (`models`, `datasets`).
    pub fn parse_plural(s: &str) -> Result<Self> {
        match s {
            "models" => Ok(FactKind::Model),
            "datasets" => Ok(FactKind::Dataset),
            _ => Err(CoreError::not_found("fact kind")),
        }
    }

    /// The key of `data.platform` that holds this kind, and the input field naming one.
    pub fn platform_key(self) -> (&'static str, &'static str) {
        match self {
            FactKind::Model => ("models", "model"),
            FactKind::Dataset => ("datasets", "dataset"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fact {
    pub kind: FactKind,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub facts: serde_json::Value,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub updated_by: Option<UserId>,
}

#[async_trait]
pub trait FactStore: Send + Sync {
    async fn put_fact(&self, ws: WorkspaceId, fact: &Fact, audit: AuditDraft) -> Result<()>;
    async fn get_fact(&self, ws: WorkspaceId, kind: FactKind, name: &str) -> Result<Fact>;
    async fn list_facts(
        &self,
        ws: WorkspaceId,
        kind: FactKind,
        q: &ListQuery,
    ) -> Result<Page<Fact>>;
    async fn delete_fact(
        &self,
        ws: WorkspaceId,
        kind: FactKind,
        name: &str,
        audit: AuditDraft,
    ) -> Result<()>;
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "name must be 1-200 characters without control characters",
        ));
    }
    Ok(())
}

impl PolicyService {
    /// Sets the facts of a model or dataset (replacing earlier ones).
    pub async fn put_fact(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        kind: FactKind,
        name: &str,
        facts: serde_json::Value,
    ) -> Result<Fact> {
        check_name(name)?;
        if !facts.is_object() {
            return Err(CoreError::invalid("facts", "facts must be a JSON object"));
        }
        if facts.to_string().len() > MAX_FACTS_BYTES {
            return Err(CoreError::invalid(
                "facts",
                format!("facts must be at most {MAX_FACTS_BYTES} bytes"),
            ));
        }
        let fact = Fact {
            kind,
            name: name.to_string(),
            facts,
            updated_at: now(),
            updated_by: Some(p.user_id),
        };
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "policy_facts.update",
            "policy",
        )
        .resource(kind.as_str(), name)
        .after(json!({"facts": fact.facts}));
        self.store().put_fact(p.workspace_id, &fact, audit).await?;
        Ok(fact)
    }

    pub async fn delete_fact(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        kind: FactKind,
        name: &str,
    ) -> Result<()> {
        check_name(name)?;
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "policy_facts.delete",
            "policy",
        )
        .resource(kind.as_str(), name);
        self.store()
            .delete_fact(p.workspace_id, kind, name, audit)
            .await
    }

    /// `{"<name>": facts}` for the model or dataset the input names, when a policy reads
    /// this kind; otherwise nothing.
    pub(crate) async fn facts_for(
        &self,
        p: &Principal,
        kind: FactKind,
        input: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>> {
        let (_, field) = kind.platform_key();
        let Some(name) = input.get(field).and_then(|v| v.as_str()) else {
            return Ok(None);
        };
        match self.store().get_fact(p.workspace_id, kind, name).await {
            Ok(f) => Ok(Some(json!({ name: f.facts }))),
            Err(CoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
