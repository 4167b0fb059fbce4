//! Roles, workspaces, API keys, signing keys and audit reads.

use crate::access::{PREDEFINED_ROLES, PermissionSet, PredefinedRole};
use serde_json::json;

use crate::audit::{AuditDraft, AuditEntry, RequestContext};
use crate::ids::{ApiKeyId, RoleId, UserId, WorkspaceId};
use crate::page::{ListQuery, Page};
use crate::store::*;
use crate::time::{Timestamp, now};
use crate::{CoreError, Result};

use super::service::*;
use super::tokens::{self};
use super::*;

impl IdentityService {
    // ---------------------------------------------------------------- roles

    pub async fn list_roles(&self, p: &Principal) -> Result<Vec<RoleView>> {
        let mut out: Vec<RoleView> = PREDEFINED_ROLES.iter().map(RoleView::from).collect();
        out.extend(
            self.store
                .list_roles(p.workspace_id)
                .await?
                .into_iter()
                .map(RoleView::from),
        );
        Ok(out)
    }

    pub async fn get_role(&self, p: &Principal, id: uuid::Uuid) -> Result<RoleView> {
        if let Some(r) = PREDEFINED_ROLES.iter().find(|r| r.id == id) {
            return Ok(r.into());
        }
        Ok(self
            .store
            .get_role(p.workspace_id, RoleId(id))
            .await?
            .into())
    }

    pub async fn create_role(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        name: &str,
        description: Option<String>,
        permissions: &[String],
    ) -> Result<RoleView> {
        let name = parse_role_name(name)?;
        if PredefinedRole::find(&name).is_some() {
            return Err(CoreError::conflict(
                "ROLE_EXISTS",
                "a predefined role has that name",
            ));
        }
        let description = optional_text("description", description.as_deref(), 2000)?;
        let perms = parse_permissions(permissions)?;
        if !p.is_super_admin() && !p.permissions.is_superset(&perms) {
            return Err(CoreError::Forbidden {
                permission: "every permission the role grants".into(),
            });
        }
        let t = now();
        let role = CustomRole {
            id: RoleId::new(),
            workspace_id: p.workspace_id,
            name,
            description,
            permissions: perms,
            created_at: t,
            updated_at: t,
        };
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "roles.create",
            "access_control",
        )
        .resource("role", role.id)
        .after(&role);
        self.store.create_role(&role, audit).await?;
        Ok(role.into())
    }

    pub async fn update_role(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: uuid::Uuid,
        description: Option<String>,
        permissions: Option<&[String]>,
    ) -> Result<RoleView> {
        if PREDEFINED_ROLES.iter().any(|r| r.id == id) {
            return Err(CoreError::conflict(
                "ROLE_PREDEFINED",
                "predefined roles cannot be changed",
            ));
        }
        let before = self.store.get_role(p.workspace_id, RoleId(id)).await?;
        let mut after = before.clone();
        if let Some(d) = description {
            after.description = optional_text("description", Some(&d), 2000)?;
        }
        if let Some(ps) = permissions {
            after.permissions = parse_permissions(ps)?;
        }
        let holds_both = p.permissions.is_superset(&after.permissions)
            && p.permissions.is_superset(&before.permissions);
        if !p.is_super_admin() && !holds_both {
            return Err(CoreError::Forbidden {
                permission: "every permission the role grants".into(),
            });
        }
        after.updated_at = now();
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "roles.update",
            "access_control",
        )
        .resource("role", id)
        .before(&before)
        .after(&after);
        self.store.update_role(&after, audit).await?;
        Ok(after.into())
    }

    pub async fn delete_role(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: uuid::Uuid,
    ) -> Result<()> {
        if PREDEFINED_ROLES.iter().any(|r| r.id == id) {
            return Err(CoreError::conflict(
                "ROLE_PREDEFINED",
                "predefined roles cannot be deleted",
            ));
        }
        let before = self.store.get_role(p.workspace_id, RoleId(id)).await?;
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "roles.delete",
            "access_control",
        )
        .resource("role", id)
        .before(&before);
        self.store
            .delete_role(p.workspace_id, RoleId(id), audit)
            .await
    }

    // ---------------------------------------------------------------- workspaces

    pub async fn create_workspace(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        name: &str,
        description: Option<String>,
    ) -> Result<Workspace> {
        let ws = Workspace {
            id: WorkspaceId::new(),
            name: Name::parse("name", name)?.as_str().to_string(),
            description: optional_text("description", description.as_deref(), 2000)?,
            created_at: now(),
        };
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "workspaces.create",
            "configuration",
        )
        .resource("workspace", ws.id)
        .after(&ws);
        self.store.create_workspace(&ws, audit).await?;
        Ok(ws)
    }

    pub async fn list_workspaces(&self, _p: &Principal, q: &ListQuery) -> Result<Page<Workspace>> {
        self.store.list_workspaces(q).await
    }

    pub async fn get_workspace(&self, _p: &Principal, id: WorkspaceId) -> Result<Workspace> {
        self.store.get_workspace(id).await
    }

    /// Adds a user of the caller's workspace to workspace `ws` with `roles` there.
    pub async fn add_member(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        ws: WorkspaceId,
        user: UserId,
        roles: Vec<String>,
    ) -> Result<User> {
        self.store.get_workspace(ws).await?;
        self.store.get_user(p.workspace_id, user).await?;
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        self.check_grant(p, ws, &roles).await?;
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "workspaces.member_add",
            "access_control",
        )
        .resource("user", user)
        .after(json!({"workspace_id": ws, "roles": roles}));
        self.store.add_member(ws, user, &roles, audit).await?;
        self.store.get_user(ws, user).await
    }

    pub async fn my_workspaces(&self, p: &Principal) -> Result<Vec<Workspace>> {
        self.store.user_workspaces(p.user_id).await
    }

    // ---------------------------------------------------------------- API keys

    pub async fn create_api_key(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        name: &str,
        scopes: &[String],
        expires_at: Option<Timestamp>,
    ) -> Result<(ApiKey, String)> {
        if !matches!(p.kind, PrincipalKind::User { .. }) {
            return Err(CoreError::Forbidden {
                permission: "a user session (API keys cannot mint API keys)".into(),
            });
        }
        let name = Name::parse("name", name)?;
        let scopes = parse_permissions(scopes)?;
        if scopes.is_empty() {
            return Err(CoreError::invalid(
                "scopes",
                "at least one scope is required",
            ));
        }
        if !p.permissions.is_superset(&scopes) {
            return Err(CoreError::Forbidden {
                permission: "every scope given to the key".into(),
            });
        }
        let t = now();
        if let Some(e) = expires_at {
            if e <= t {
                return Err(CoreError::invalid(
                    "expires_at",
                    "expires_at must be in the future",
                ));
            }
            if e > t + chrono::Duration::days(3 * 366) {
                return Err(CoreError::invalid(
                    "expires_at",
                    "expires_at must be within three years",
                ));
            }
        }
        let (secret, prefix) = tokens::new_api_key();
        let key = ApiKey {
            id: ApiKeyId::new(),
            workspace_id: p.workspace_id,
            user_id: p.user_id,
            name: name.as_str().into(),
            prefix,
            scopes,
            expires_at,
            last_used_at: None,
            created_at: t,
            revoked_at: None,
            key_hash: tokens::hash_secret(&secret),
        };
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "api_keys.create",
            "key_management",
        )
        .resource("api_key", key.id)
        .after(&key);
        self.store.create_api_key(&key, audit).await?;
        Ok((key, secret))
    }

    fn key_owner_filter(p: &Principal) -> Option<UserId> {
        (!p.permissions.contains(USERS_READ)).then_some(p.user_id)
    }

    pub async fn list_api_keys(&self, p: &Principal, q: &ListQuery) -> Result<Page<ApiKey>> {
        self.store
            .list_api_keys(p.workspace_id, Self::key_owner_filter(p), q)
            .await
    }

    pub async fn get_api_key(&self, p: &Principal, id: ApiKeyId) -> Result<ApiKey> {
        let key = self.store.get_api_key(p.workspace_id, id).await?;
        match Self::key_owner_filter(p) {
            Some(owner) if owner != key.user_id => Err(CoreError::not_found("api_key")),
            _ => Ok(key),
        }
    }

    pub async fn revoke_api_key(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: ApiKeyId,
    ) -> Result<()> {
        let key = self.get_api_key(p, id).await?;
        if key.user_id != p.user_id && !p.permissions.contains(USERS_UPDATE) {
            return Err(CoreError::Forbidden {
                permission: USERS_UPDATE.to_string(),
            });
        }
        if key.revoked_at.is_some() {
            return Ok(());
        }
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "api_keys.revoke",
            "key_management",
        )
        .resource("api_key", id)
        .before(&key);
        self.store
            .revoke_api_key(p.workspace_id, id, now(), audit)
            .await
    }

    // ---------------------------------------------------------------- signing keys

    pub async fn rotate_signing_key(&self, p: &Principal, ctx: &RequestContext) -> Result<String> {
        let key = tokens::generate_signing_key(now())?;
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "auth.signing_key_rotate",
            "key_management",
        )
        .resource("signing_key", &key.kid);
        self.store.insert_signing_key(&key, false, audit).await?;
        self.reload_keys().await?;
        Ok(key.kid)
    }

    // ---------------------------------------------------------------- audit (read)

    pub async fn list_audit(
        &self,
        p: &Principal,
        filter: &AuditFilter,
        q: &ListQuery,
    ) -> Result<Page<AuditEntry>> {
        self.store.list_audit(p.workspace_id, filter, q).await
    }
}

fn parse_permissions(items: &[String]) -> Result<PermissionSet> {
    if items.len() > 64 {
        return Err(CoreError::invalid("permissions", "at most 64 permissions"));
    }
    PermissionSet::parse_all(items)
}
