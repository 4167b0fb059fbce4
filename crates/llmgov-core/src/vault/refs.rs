//! History and refs: log, branches (protected or not) and tags.

use super::model::{Commit, Dataset, MAIN, Ref, RefKind, RefName};
use super::service::{VaultService, need};
use crate::access::Action;
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::page::{ListQuery, Page};
use crate::time::now;
use crate::{CoreError, Result};

impl VaultService {
    /// First-parent history of `reference`, newest first.
    pub async fn log(
        &self,
        d: &Dataset,
        reference: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<Commit>> {
        let head = match self.resolve(d, reference).await {
            Ok(c) => c,
            // A dataset nobody pushed to has an empty history.
            Err(CoreError::NotFound { .. }) if reference.is_none() => {
                return Ok(Page::new(vec![], 0, q));
            }
            Err(e) => return Err(e),
        };
        let items = self.store.log(d.workspace_id, d.id, &head.id, q).await?;
        Ok(Page::new(items, head.depth as i64, q))
    }

    pub async fn list_refs(&self, d: &Dataset, kind: RefKind) -> Result<Vec<Ref>> {
        self.store.list_refs(d.workspace_id, d.id, kind).await
    }

    /// Creates a branch or tag at `from` (a ref or commit; the default branch when `None`).
    pub async fn create_ref(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        kind: RefKind,
        name: &str,
        from: Option<&str>,
    ) -> Result<Ref> {
        let name = RefName::parse(name)?;
        let c = self.resolve(d, from).await?;
        let r = Ref {
            name: name.as_str().into(),
            kind,
            commit_id: c.id,
            protected: false,
            updated_at: now(),
        };
        let audit = AuditDraft::new(
            p.workspace_id,
            ctx,
            match kind {
                RefKind::Branch => "datasets.branch_create",
                RefKind::Tag => "datasets.tag_create",
            },
            "datasets",
        )
        .resource("dataset", d.id)
        .details(serde_json::json!({ "name": r.name, "commit": r.commit_id }));
        self.store
            .create_ref(d.workspace_id, d.id, &r, audit)
            .await?;
        Ok(r)
    }

    /// Deletes a branch or tag. The default branch cannot be deleted; a protected branch
    /// needs `datasets:delete`.
    pub async fn delete_ref(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        kind: RefKind,
        name: &str,
    ) -> Result<()> {
        let r = self
            .store
            .get_ref(d.workspace_id, d.id, name)
            .await?
            .filter(|r| r.kind == kind)
            .ok_or(CoreError::not_found("ref"))?;
        if kind == RefKind::Branch && (name == d.default_branch || name == MAIN) {
            return Err(CoreError::conflict(
                "DEFAULT_BRANCH",
                "the default branch cannot be deleted",
            ));
        }
        if r.protected {
            need(p, Action::Delete)?;
        }
        let audit = AuditDraft::new(
            p.workspace_id,
            ctx,
            match kind {
                RefKind::Branch => "datasets.branch_delete",
                RefKind::Tag => "datasets.tag_delete",
            },
            "datasets",
        )
        .resource("dataset", d.id)
        .details(serde_json::json!({ "name": r.name, "commit": r.commit_id }));
        self.store
            .delete_ref(d.workspace_id, d.id, name, kind, audit)
            .await
    }

    /// Protects or unprotects a branch (needs `datasets:delete`).
    pub async fn protect_branch(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        d: &Dataset,
        name: &str,
        protected: bool,
    ) -> Result<Ref> {
        need(p, Action::Delete)?;
        let mut r = self
            .branch(d, name)
            .await?
            .ok_or(CoreError::not_found("ref"))?;
        let audit = AuditDraft::new(p.workspace_id, ctx, "datasets.branch_protect", "datasets")
            .resource("dataset", d.id)
            .details(serde_json::json!({ "name": r.name, "protected": protected }));
        self.store
            .set_branch_protection(d.workspace_id, d.id, name, protected, audit)
            .await?;
        r.protected = protected;
        Ok(r)
    }
}
