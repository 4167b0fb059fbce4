//! The authenticated caller. The workspace in a principal is the only workspace the
//! services will read or write for it: scoping comes from here, never from request input.

use crate::CoreError;
use crate::access::{Permission, PermissionSet};
use crate::audit::RequestContext;
use crate::ids::{ApiKeyId, UserId, WorkspaceId};

#[derive(Debug, Clone, PartialEq)]
pub enum PrincipalKind {
    /// A person with an access token; `session` is the refresh-token family.
    User {
        session: String,
    },
    ApiKey {
        key_id: ApiKeyId,
    },
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub email: String,
    pub workspace_id: WorkspaceId,
    pub roles: Vec<String>,
    pub permissions: PermissionSet,
    pub kind: PrincipalKind,
}

impl Principal {
    pub fn require(&self, p: Permission) -> Result<(), CoreError> {
        if self.permissions.contains(p) {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                permission: p.to_string(),
            })
        }
    }

    pub fn is_super_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "super_admin")
            && matches!(self.kind, PrincipalKind::User { .. })
    }

    /// Fills the actor fields of a request context.
    pub fn context(&self, mut ctx: RequestContext) -> RequestContext {
        ctx.actor_id = Some(self.user_id);
        match &self.kind {
            PrincipalKind::User { session } => {
                ctx.actor_type = "user";
                ctx.session_id = Some(session.clone());
            }
            PrincipalKind::ApiKey { key_id } => {
                ctx.actor_type = "api_key";
                ctx.session_id = Some(key_id.to_string());
            }
        }
        ctx
    }
}
