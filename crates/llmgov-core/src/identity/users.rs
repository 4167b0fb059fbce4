//! Users of a workspace: creation, profile and status, roles, removal, passwords.

use serde_json::json;

use crate::access::{PermissionSet, PredefinedRole};
use crate::audit::{AuditDraft, RequestContext};
use crate::ids::UserId;
use crate::page::{ListQuery, Page};
use crate::store::*;
use crate::time::now;
use crate::{CoreError, Result};

use super::service::*;
use super::*;

impl IdentityService {
    // ---------------------------------------------------------------- users

    pub async fn create_user(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        input: CreateUserInput,
    ) -> Result<User> {
        let ws = match input.workspace_id {
            Some(w) if w != p.workspace_id => {
                if !p.is_super_admin() {
                    return Err(CoreError::Forbidden {
                        permission: "super_admin to create users in another workspace".into(),
                    });
                }
                self.store.get_workspace(w).await?.id
            }
            _ => p.workspace_id,
        };
        let email = Email::parse(&input.email)?;
        let username = Username::parse(&input.username)?;
        let pw = Password::parse(&input.password)?;
        let first_name = optional_text("first_name", input.first_name.as_deref(), 100)?;
        let last_name = optional_text("last_name", input.last_name.as_deref(), 100)?;
        let metadata = check_metadata(input.metadata)?;
        let mut roles = input.roles;
        roles.sort();
        roles.dedup();
        self.check_grant(p, ws, &roles).await?;
        let user = NewUser {
            id: UserId::new(),
            email,
            username,
            password_hash: hash_password(pw).await?,
            first_name,
            last_name,
            metadata,
            roles,
            created_at: now(),
        };
        let audit = AuditDraft::new(p.workspace_id, &p.context(ctx.clone()), "users.create", "access_control")
            .resource("user", user.id)
            .after(json!({"id": user.id, "workspace_id": ws, "username": user.username, "roles": user.roles, "status": "active"}))
            .personal("subject_email", user.email.as_str());
        self.store.create_user(ws, &user, audit).await?;
        self.store.get_user(ws, user.id).await
    }

    pub async fn get_user(&self, p: &Principal, id: UserId) -> Result<User> {
        self.store.get_user(p.workspace_id, id).await
    }

    pub async fn list_users(
        &self,
        p: &Principal,
        q: &ListQuery,
        status: Option<UserStatus>,
    ) -> Result<Page<User>> {
        self.store.list_users(p.workspace_id, q, status).await
    }

    pub async fn update_user(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: UserId,
        mut changes: UserChanges,
    ) -> Result<User> {
        let before = self.store.get_user(p.workspace_id, id).await?;
        if let Some(e) = &changes.email {
            changes.email = Some(Email::parse(e)?.as_str().to_string());
        }
        if let Some(u) = &changes.username {
            changes.username = Some(Username::parse(u)?.as_str().to_string());
        }
        if let Some(f) = &changes.first_name {
            optional_text("first_name", f.as_deref(), 100)?;
        }
        if let Some(l) = &changes.last_name {
            optional_text("last_name", l.as_deref(), 100)?;
        }
        if changes.metadata.is_some() {
            changes.metadata = Some(check_metadata(changes.metadata.take())?);
        }
        if changes.status == Some(UserStatus::Disabled) && id == p.user_id {
            return Err(CoreError::conflict(
                "CANNOT_DISABLE_SELF",
                "you cannot disable your own account",
            ));
        }
        // Changing a more privileged user's profile would let a lesser admin take it over.
        let target_perms = self
            .resolve_permissions(p.workspace_id, &before.roles)
            .await?;
        if !p.is_super_admin() && !p.permissions.is_superset(&target_perms) {
            return Err(CoreError::Forbidden {
                permission: "permissions at least those of the user being changed".into(),
            });
        }
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "users.update",
            "access_control",
        )
        .resource("user", id)
        .before(redact_user(&before));
        let t = now();
        self.store
            .update_user(
                p.workspace_id,
                id,
                &changes,
                before.updated_at,
                t,
                with_after(audit, &changes, &before),
            )
            .await?;
        self.store.get_user(p.workspace_id, id).await
    }

    pub async fn set_user_roles(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: UserId,
        roles: Vec<String>,
    ) -> Result<User> {
        let before = self.store.get_user(p.workspace_id, id).await?;
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        self.check_grant(p, p.workspace_id, &roles).await?;
        let current = self
            .resolve_permissions(p.workspace_id, &before.roles)
            .await?;
        if !p.is_super_admin() && !p.permissions.is_superset(&current) {
            return Err(CoreError::Forbidden {
                permission: "permissions at least those of the user being changed".into(),
            });
        }
        if id == p.user_id
            && before.roles.iter().any(|r| r == "super_admin")
            && !roles.iter().any(|r| r == "super_admin")
        {
            return Err(CoreError::conflict(
                "CANNOT_DEMOTE_SELF",
                "you cannot remove your own super_admin role",
            ));
        }
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "users.roles_update",
            "access_control",
        )
        .resource("user", id)
        .before(json!({"roles": before.roles}))
        .after(json!({"roles": roles}));
        self.store
            .set_user_roles(p.workspace_id, id, &roles, audit)
            .await?;
        self.store.get_user(p.workspace_id, id).await
    }

    pub async fn remove_user(&self, p: &Principal, ctx: &RequestContext, id: UserId) -> Result<()> {
        if id == p.user_id {
            return Err(CoreError::conflict(
                "CANNOT_DELETE_SELF",
                "you cannot delete your own account",
            ));
        }
        let before = self.store.get_user(p.workspace_id, id).await?;
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "users.delete",
            "access_control",
        )
        .resource("user", id)
        .before(redact_user(&before));
        self.store.remove_user(p.workspace_id, id, audit).await
    }

    pub async fn user_permissions(&self, p: &Principal, id: UserId) -> Result<PermissionSet> {
        let user = self.store.get_user(p.workspace_id, id).await?;
        self.resolve_permissions(p.workspace_id, &user.roles).await
    }

    pub async fn change_password(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        current: String,
        new: &str,
    ) -> Result<()> {
        if !matches!(p.kind, PrincipalKind::User { .. }) {
            return Err(CoreError::Forbidden {
                permission: "a user session (not an API key)".into(),
            });
        }
        let creds = self
            .store
            .credentials_by_id(p.user_id)
            .await?
            .ok_or_else(|| CoreError::not_found("user"))?;
        let new = Password::parse(new)?;
        if !verify_password(current, creds.password_hash).await? {
            return Err(CoreError::invalid(
                "current_password",
                "current password is wrong",
            ));
        }
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "auth.password_change",
            "authentication",
        )
        .resource("user", p.user_id);
        self.store
            .set_password(
                p.workspace_id,
                p.user_id,
                &hash_password(new).await?,
                now(),
                audit,
            )
            .await
    }

    /// Operator reset from the CLI (no principal: the operator has the database).
    pub async fn reset_password(store: &dyn Store, email: &str, new: &str) -> Result<UserId> {
        let email = Email::parse(email)?;
        let pw = Password::parse(new)?;
        let creds = store
            .credentials_by_email(email.as_str())
            .await?
            .ok_or_else(|| CoreError::not_found("user"))?;
        let ws = *creds
            .workspaces
            .first()
            .ok_or_else(|| CoreError::not_found("user"))?;
        let audit = AuditDraft::new(
            ws,
            &RequestContext {
                actor_type: "operator",
                ..Default::default()
            },
            "auth.password_reset",
            "authentication",
        )
        .resource("user", creds.user_id);
        store
            .set_password(ws, creds.user_id, &hash_password(pw).await?, now(), audit)
            .await?;
        Ok(creds.user_id)
    }

    /// Operator user creation from the CLI, in the system workspace unless one is named.
    pub async fn create_user_as_operator(
        store: &dyn Store,
        input: CreateUserInput,
    ) -> Result<UserId> {
        let ws = match input.workspace_id {
            Some(w) => store.get_workspace(w).await?.id,
            None => store
                .system_workspace()
                .await?
                .ok_or_else(|| CoreError::internal("not bootstrapped"))?,
        };
        for r in &input.roles {
            if PredefinedRole::find(r).is_none()
                && store
                    .roles_by_name(ws, std::slice::from_ref(r))
                    .await?
                    .is_empty()
            {
                return Err(CoreError::invalid("roles", format!("unknown role '{r}'")));
            }
        }
        let user = NewUser {
            id: UserId::new(),
            email: Email::parse(&input.email)?,
            username: Username::parse(&input.username)?,
            password_hash: hash_password(Password::parse(&input.password)?).await?,
            first_name: None,
            last_name: None,
            metadata: json!({}),
            roles: input.roles,
            created_at: now(),
        };
        let audit = AuditDraft::new(
            ws,
            &RequestContext {
                actor_type: "operator",
                ..Default::default()
            },
            "users.create",
            "access_control",
        )
        .resource("user", user.id)
        .after(json!({"id": user.id, "roles": user.roles}))
        .personal("subject_email", user.email.as_str());
        store.create_user(ws, &user, audit).await?;
        Ok(user.id)
    }
}

fn check_metadata(m: Option<serde_json::Value>) -> Result<serde_json::Value> {
    let m = m.unwrap_or_else(|| json!({}));
    if !m.is_object() {
        return Err(CoreError::invalid(
            "metadata",
            "metadata must be a JSON object",
        ));
    }
    if m.to_string().len() > 16 * 1024 {
        return Err(CoreError::invalid(
            "metadata",
            "metadata must be at most 16 KiB",
        ));
    }
    Ok(m)
}

/// A user's state for the audit trail, without personal fields (those belong in `personal`).
fn redact_user(u: &User) -> serde_json::Value {
    json!({"id": u.id, "username": u.username, "status": u.status, "roles": u.roles, "metadata": u.metadata})
}

fn with_after(audit: AuditDraft, c: &UserChanges, before: &User) -> AuditDraft {
    let mut after = redact_user(before);
    if let Some(u) = &c.username {
        after["username"] = json!(u);
    }
    if let Some(s) = c.status {
        after["status"] = json!(s);
    }
    if let Some(m) = &c.metadata {
        after["metadata"] = m.clone();
    }
    let mut audit = audit.after(after);
    if let Some(e) = &c.email {
        audit = audit.personal("new_email", e.clone());
    }
    audit
}
