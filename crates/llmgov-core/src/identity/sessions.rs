//! Login, token refresh and rotation, logout, and authentication of bearer credentials.

use std::time::Duration;

use serde_json::json;

use crate::access::PermissionSet;
use crate::audit::{AuditDraft, AuditStatus, RequestContext};
use crate::ids::{UserId, WorkspaceId};
use crate::time::{Timestamp, now};
use crate::{CoreError, Result};

use super::service::*;
use super::tokens::{self, Claims};
use super::*;

impl IdentityService {
    // ---------------------------------------------------------------- login and sessions

    async fn audit_workspace_for(&self, creds: Option<&Credentials>) -> Result<WorkspaceId> {
        if let Some(ws) = creds.and_then(|c| c.workspaces.first()) {
            return Ok(*ws);
        }
        self.store
            .system_workspace()
            .await?
            .ok_or_else(|| CoreError::internal("no system workspace"))
    }

    pub async fn login(&self, req: LoginRequest, ctx: &RequestContext) -> Result<TokenPair> {
        let account = req
            .email
            .trim()
            .to_lowercase()
            .chars()
            .take(254)
            .collect::<String>();
        let addr = ctx.client_addr.as_deref();
        if let Some(wait) = self.throttle.check(&account, addr) {
            let ws = self.audit_workspace_for(None).await?;
            let audit = AuditDraft::new(ws, ctx, "auth.login", "authentication")
                .status(AuditStatus::Denied)
                .details(json!({"reason": "throttled"}))
                .personal("attempted_email", &account);
            self.store.append_audit(audit).await?;
            return Err(CoreError::Throttled {
                retry_after_secs: wait,
            });
        }
        let creds = match Email::parse(&req.email) {
            Ok(e) => self.store.credentials_by_email(e.as_str()).await?,
            Err(_) => None,
        };
        let hash = creds
            .as_ref()
            .map(|c| c.password_hash.clone())
            .unwrap_or_else(|| password::dummy_hash().to_string());
        let password_ok = verify_password(req.password, hash).await? && creds.is_some();
        let failure = match &creds {
            _ if !password_ok => Some("bad_credentials"),
            Some(c) if c.status != UserStatus::Active => Some("account_disabled"),
            Some(c) if c.workspaces.is_empty() => Some("no_workspace"),
            Some(c) if req.workspace_id.is_some_and(|w| !c.workspaces.contains(&w)) => {
                Some("not_a_member")
            }
            _ => None,
        };
        if let Some(reason) = failure {
            self.throttle.record_failure(&account, addr);
            let ws = self.audit_workspace_for(creds.as_ref()).await?;
            let mut audit = AuditDraft::new(ws, ctx, "auth.login", "authentication")
                .status(AuditStatus::Failure)
                .details(json!({"reason": reason}))
                .personal("attempted_email", &account);
            if let Some(c) = &creds {
                audit = audit.resource("user", c.user_id);
            }
            self.store.append_audit(audit).await?;
            return Err(invalid_credentials());
        }
        let creds = creds.expect("checked above");
        let ws = req.workspace_id.unwrap_or(creds.workspaces[0]);
        let t = now();
        let (refresh, rt) = self.new_refresh_token(creds.user_id, ws, uuid::Uuid::new_v4(), t);
        let mut ctx = ctx.clone();
        ctx.actor_id = Some(creds.user_id);
        ctx.session_id = Some(rt.family_id.to_string());
        let audit = AuditDraft::new(ws, &ctx, "auth.login", "authentication")
            .resource("user", creds.user_id)
            .personal("email", &creds.email);
        self.store.record_login(&rt, audit).await?;
        self.throttle.record_success(&account);
        let access = self
            .issue_access_token(creds.user_id, ws, rt.family_id, t)
            .await?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: self.cfg.access_token_ttl.as_secs(),
        })
    }

    fn new_refresh_token(
        &self,
        user: UserId,
        ws: WorkspaceId,
        family: uuid::Uuid,
        t: Timestamp,
    ) -> (String, RefreshToken) {
        let id = uuid::Uuid::new_v4();
        let token = format!("{}.{}", id.simple(), tokens::random_token(32));
        let rt = RefreshToken {
            id,
            family_id: family,
            user_id: user,
            workspace_id: ws,
            token_hash: tokens::hash_secret(&token),
            created_at: t,
            expires_at: t + chrono::Duration::from_std(self.cfg.refresh_token_ttl)
                .expect("ttl fits"),
            used_at: None,
            revoked_at: None,
        };
        (token, rt)
    }

    async fn issue_access_token(
        &self,
        user: UserId,
        ws: WorkspaceId,
        family: uuid::Uuid,
        t: Timestamp,
    ) -> Result<String> {
        let u = self.store.get_user(ws, user).await?;
        let perms = self.resolve_permissions(ws, &u.roles).await?;
        let iat = t.timestamp();
        let claims = Claims {
            sub: user.to_string(),
            email: u.email,
            roles: u.roles,
            permissions: perms.to_strings(),
            tenant_id: ws.to_string(),
            iss: self.cfg.issuer.clone(),
            aud: self.cfg.audience.clone(),
            iat,
            nbf: iat,
            exp: iat + self.cfg.access_token_ttl.as_secs() as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: family.to_string(),
        };
        let ring = self.keys.read().expect("key lock").clone();
        ring.sign(&claims)
    }

    /// Looks up a presented refresh token and checks its secret.
    async fn find_refresh(&self, token: &str) -> Result<Option<RefreshToken>> {
        let Some((id, _)) = token.split_once('.') else {
            return Ok(None);
        };
        let Ok(id) = uuid::Uuid::parse_str(id) else {
            return Ok(None);
        };
        let Some(rt) = self.store.get_refresh_token(id).await? else {
            return Ok(None);
        };
        Ok(tokens::secrets_equal(&rt.token_hash, &tokens::hash_secret(token)).then_some(rt))
    }

    /// Exchanges a refresh token for a new pair. Presenting a token that was already
    /// exchanged revokes its whole family: one of the two holders is a thief.
    pub async fn refresh(&self, token: &str, ctx: &RequestContext) -> Result<TokenPair> {
        let rt = self
            .find_refresh(token)
            .await?
            .ok_or_else(invalid_refresh)?;
        let t = now();
        let mut ctx = ctx.clone();
        ctx.actor_id = Some(rt.user_id);
        ctx.session_id = Some(rt.family_id.to_string());
        if rt.revoked_at.is_some() || rt.expires_at <= t {
            return Err(invalid_refresh());
        }
        if rt.used_at.is_some() {
            self.revoke_reused(&rt, &ctx, t).await?;
            return Err(invalid_refresh());
        }
        let creds = self.store.credentials_by_id(rt.user_id).await?;
        let active = creds.is_some_and(|c| {
            c.status == UserStatus::Active && c.workspaces.contains(&rt.workspace_id)
        });
        if !active {
            return Err(invalid_refresh());
        }
        let (refresh, new) = self.new_refresh_token(rt.user_id, rt.workspace_id, rt.family_id, t);
        let audit = AuditDraft::new(rt.workspace_id, &ctx, "auth.refresh", "authentication")
            .resource("user", rt.user_id);
        if !self
            .store
            .rotate_refresh_token(rt.id, &new, t, audit)
            .await?
        {
            self.revoke_reused(&rt, &ctx, t).await?;
            return Err(invalid_refresh());
        }
        let access = self
            .issue_access_token(rt.user_id, rt.workspace_id, rt.family_id, t)
            .await?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: self.cfg.access_token_ttl.as_secs(),
        })
    }

    async fn revoke_reused(
        &self,
        rt: &RefreshToken,
        ctx: &RequestContext,
        t: Timestamp,
    ) -> Result<()> {
        let audit = AuditDraft::new(rt.workspace_id, ctx, "auth.refresh_token_reuse", "security")
            .status(AuditStatus::Denied)
            .resource("user", rt.user_id)
            .details(json!({"family_id": rt.family_id, "action_taken": "family_revoked"}));
        self.store.revoke_token_family(rt.family_id, t, audit).await
    }

    /// Revokes the session of a refresh token. Unknown tokens are ignored (logout is idempotent).
    pub async fn logout(&self, token: &str, ctx: &RequestContext) -> Result<()> {
        let Some(rt) = self.find_refresh(token).await? else {
            return Ok(());
        };
        if rt.revoked_at.is_some() {
            return Ok(());
        }
        let mut ctx = ctx.clone();
        ctx.actor_id = Some(rt.user_id);
        ctx.session_id = Some(rt.family_id.to_string());
        let audit = AuditDraft::new(rt.workspace_id, &ctx, "auth.logout", "authentication")
            .resource("user", rt.user_id);
        self.store
            .revoke_token_family(rt.family_id, now(), audit)
            .await
    }

    /// Authenticates a bearer credential: an API key (`lgv_...`) or an access token.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if let Some(prefix) = tokens::api_key_prefix(bearer) {
            return self.authenticate_api_key(prefix, bearer).await;
        }
        let cache_key = *blake3::hash(bearer.as_bytes()).as_bytes();
        let now_secs = chrono::Utc::now().timestamp();
        if let Some(p) = self.verified.get(&cache_key, now_secs) {
            return Ok(p);
        }
        let ring = self.keys.read().expect("key lock").clone();
        let claims = match ring.verify(bearer) {
            Ok(c) => c,
            Err(e) => {
                // A token signed by a key this instance has not loaded yet (rotated elsewhere).
                let stale = self.last_key_reload.read().expect("reload lock").elapsed()
                    > Duration::from_secs(5);
                let unknown_kid = jsonwebtoken::decode_header(bearer)
                    .ok()
                    .and_then(|h| h.kid)
                    .is_some_and(|k| !ring.jwks().to_string().contains(&k));
                if stale && unknown_kid {
                    self.reload_keys().await?;
                    self.keys.read().expect("key lock").clone().verify(bearer)?
                } else {
                    return Err(e);
                }
            }
        };
        let bad = || CoreError::Unauthenticated("invalid or expired access token".into());
        let principal = Principal {
            user_id: UserId::parse(&claims.sub).map_err(|_| bad())?,
            email: claims.email,
            workspace_id: WorkspaceId::parse(&claims.tenant_id).map_err(|_| bad())?,
            roles: claims.roles,
            permissions: PermissionSet::parse_all(&claims.permissions).map_err(|_| bad())?,
            kind: PrincipalKind::User {
                session: claims.sid,
            },
        };
        self.verified
            .insert(cache_key, principal.clone(), claims.exp, now_secs);
        Ok(principal)
    }

    async fn authenticate_api_key(&self, prefix: &str, presented: &str) -> Result<Principal> {
        let bad = || CoreError::Unauthenticated("invalid, expired or revoked API key".into());
        let key = self
            .store
            .api_key_by_prefix(prefix)
            .await?
            .ok_or_else(bad)?;
        let t = now();
        if !tokens::secrets_equal(&key.key_hash, &tokens::hash_secret(presented))
            || key.status(t) != "active"
        {
            return Err(bad());
        }
        let creds = self
            .store
            .credentials_by_id(key.user_id)
            .await?
            .ok_or_else(bad)?;
        if creds.status != UserStatus::Active || !creds.workspaces.contains(&key.workspace_id) {
            return Err(bad());
        }
        // The key never carries more than its owner holds today.
        let user = self.store.get_user(key.workspace_id, key.user_id).await?;
        let held = self
            .resolve_permissions(key.workspace_id, &user.roles)
            .await?;
        if key.last_used_at.is_none_or(|u| (t - u).num_seconds() >= 60) {
            self.store.touch_api_key(key.id, t).await?;
        }
        Ok(Principal {
            user_id: key.user_id,
            email: creds.email,
            workspace_id: key.workspace_id,
            roles: user.roles,
            permissions: key.scopes.intersection(&held),
            kind: PrincipalKind::ApiKey { key_id: key.id },
        })
    }

    /// Records a permission denial in the audit trail.
    pub async fn record_denial(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        permission: &str,
        route: &str,
    ) -> Result<()> {
        let audit = AuditDraft::new(
            p.workspace_id,
            &p.context(ctx.clone()),
            "access.denied",
            "access_control",
        )
        .status(AuditStatus::Denied)
        .details(json!({"required_permission": permission, "route": route}));
        self.store.append_audit(audit).await
    }
}
