//! Identity use cases. Every method that changes state builds the audit draft here and
//! hands it to the store with the change; every read is scoped to the principal's workspace.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::access::{
    Action, PREDEFINED_ROLES, Permission, PermissionSet, PredefinedRole, Resource,
};
use crate::audit::{AuditDraft, AuditEntry, AuditStatus, RequestContext};
use crate::ids::{ApiKeyId, RoleId, UserId, WorkspaceId};
use crate::page::{ListQuery, Page};
use crate::store::*;
use crate::time::{Timestamp, now};
use crate::{CoreError, Result};

use super::throttle::{LoginThrottle, ThrottleConfig};
use super::tokens::{self, Claims, KeyRing};
use super::*;

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub throttle: ThrottleConfig,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            issuer: "llmgov".into(),
            audience: "llmgov-api".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            throttle: ThrottleConfig::default(),
        }
    }
}

pub struct LoginRequest {
    pub email: String,
    pub password: String,
    pub workspace_id: Option<WorkspaceId>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Input of user creation, already deserialized but not yet validated.
#[derive(Debug, Clone, Default)]
pub struct CreateUserInput {
    pub email: String,
    pub username: String,
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub roles: Vec<String>,
    pub workspace_id: Option<WorkspaceId>,
    pub metadata: Option<serde_json::Value>,
}

/// Result of first-start bootstrap.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub email: String,
    /// Set when the password was generated (and must be shown once).
    pub generated_password: Option<String>,
    pub workspace_id: WorkspaceId,
}

pub struct IdentityService {
    store: Arc<dyn Store>,
    cfg: IdentityConfig,
    keys: RwLock<Arc<KeyRing>>,
    last_key_reload: RwLock<Instant>,
    throttle: LoginThrottle,
    verified: VerifiedTokens,
}

/// Access tokens that passed verification, by the BLAKE3 hash of the whole token, until they
/// expire: a repeat request skips the signature check and claims parsing. Any change to a
/// token changes its hash, so a forged token is always fully verified (and fails).
#[derive(Default)]
struct VerifiedTokens(std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, i64)>>);

const VERIFIED_TOKENS_MAX: usize = 50_000;

impl VerifiedTokens {
    fn get(&self, key: &[u8; 32], now: i64) -> Option<Principal> {
        let map = self.0.lock().expect("token cache lock");
        map.get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(p, _)| p.clone())
    }

    fn insert(&self, key: [u8; 32], p: Principal, exp: i64, now: i64) {
        let mut map = self.0.lock().expect("token cache lock");
        if map.len() >= VERIFIED_TOKENS_MAX {
            map.retain(|_, (_, e)| *e > now);
            if map.len() >= VERIFIED_TOKENS_MAX {
                map.clear();
            }
        }
        map.insert(key, (p, exp));
    }
}

fn hash_blocking_error(e: tokio::task::JoinError) -> CoreError {
    CoreError::internal(e)
}

async fn hash_password(pw: Password) -> Result<String> {
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(hash_blocking_error)?
}

async fn verify_password(pw: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
        .await
        .map_err(hash_blocking_error)
}

fn invalid_credentials() -> CoreError {
    CoreError::Unauthenticated("invalid email or password".into())
}

fn invalid_refresh() -> CoreError {
    CoreError::Unauthenticated("invalid or expired refresh token".into())
}

const USERS_READ: Permission = Permission::new(Resource::Users, Action::Read);
const USERS_UPDATE: Permission = Permission::new(Resource::Users, Action::Update);

impl IdentityService {
    /// Loads (or, on first start, creates) the signing keys.
    pub async fn new(store: Arc<dyn Store>, cfg: IdentityConfig) -> Result<Self> {
        if store
            .signing_keys()
            .await?
            .iter()
            .all(|k| k.retired_at.is_some())
        {
            let key = tokens::generate_signing_key(now())?;
            let ws = store.system_workspace().await?;
            if let Some(ws) = ws {
                let audit = AuditDraft::new(
                    ws,
                    &RequestContext::system(),
                    "auth.signing_key_create",
                    "key_management",
                )
                .resource("signing_key", &key.kid);
                store.insert_signing_key(&key, true, audit).await?;
            } else {
                return Err(CoreError::internal(
                    "bootstrap must run before the identity service starts",
                ));
            }
        }
        let ring = Self::load_ring(&*store, &cfg).await?;
        Ok(Self {
            store,
            throttle: LoginThrottle::new(cfg.throttle),
            cfg,
            keys: RwLock::new(Arc::new(ring)),
            last_key_reload: RwLock::new(Instant::now()),
            verified: VerifiedTokens::default(),
        })
    }

    async fn load_ring(store: &dyn Store, cfg: &IdentityConfig) -> Result<KeyRing> {
        let records = store.signing_keys().await?;
        let max_age = (cfg.access_token_ttl.as_secs() + 60) as i64;
        KeyRing::from_records(&records, &cfg.issuer, &cfg.audience, now(), max_age)
    }

    /// Re-reads the key ring (another instance may have rotated the signing key).
    pub async fn reload_keys(&self) -> Result<()> {
        let ring = Self::load_ring(&*self.store, &self.cfg).await?;
        *self.keys.write().expect("key lock") = Arc::new(ring);
        *self.last_key_reload.write().expect("reload lock") = Instant::now();
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.cfg
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.keys.read().expect("key lock").jwks().clone()
    }

    // ---------------------------------------------------------------- bootstrap

    /// Creates the first workspace and super admin if there are none yet.
    pub async fn bootstrap(
        store: &dyn Store,
        email: Option<&str>,
        password: Option<&str>,
    ) -> Result<Option<Bootstrapped>> {
        if store.system_workspace().await?.is_some() {
            return Ok(None);
        }
        let email = Email::parse(email.unwrap_or("admin@llmgov.local"))?;
        let (pw, generated) = match password {
            Some(p) => (Password::parse(p)?, None),
            None => loop {
                let candidate = format!("Lg-{}", tokens::random_token(18));
                if let Ok(p) = Password::parse(&candidate) {
                    break (p, Some(candidate));
                }
            },
        };
        let t = now();
        let ws = Workspace {
            id: WorkspaceId::new(),
            name: "default".into(),
            description: Some("Created at first start".into()),
            created_at: t,
        };
        let user = NewUser {
            id: UserId::new(),
            email: email.clone(),
            username: Username::parse("admin")?,
            password_hash: hash_password(pw).await?,
            first_name: None,
            last_name: None,
            metadata: json!({}),
            roles: vec!["super_admin".into()],
            created_at: t,
        };
        let audit = AuditDraft::new(
            ws.id,
            &RequestContext::system(),
            "system.bootstrap",
            "configuration",
        )
        .resource("workspace", ws.id)
        .details(json!({"admin_user_id": user.id, "roles": ["super_admin"]}))
        .personal("admin_email", email.as_str());
        if store.bootstrap(&ws, &user, audit).await? {
            Ok(Some(Bootstrapped {
                email: email.as_str().into(),
                generated_password: generated,
                workspace_id: ws.id,
            }))
        } else {
            Ok(None)
        }
    }

    // ---------------------------------------------------------------- permissions

    /// Union of the permissions of `roles` in workspace `ws`.
    pub async fn resolve_permissions(
        &self,
        ws: WorkspaceId,
        roles: &[String],
    ) -> Result<PermissionSet> {
        let mut set = PermissionSet::default();
        let mut custom = Vec::new();
        for r in roles {
            match PredefinedRole::find(r) {
                Some(p) => set.extend(p.permissions().iter()),
                None => custom.push(r.clone()),
            }
        }
        if !custom.is_empty() {
            for role in self.store.roles_by_name(ws, &custom).await? {
                set.extend(role.permissions.iter());
            }
        }
        Ok(set)
    }

    /// Checks that every role exists in `ws` and that `granter` holds every permission the
    /// roles would grant (no one hands out more than they have).
    async fn check_grant(
        &self,
        granter: &Principal,
        ws: WorkspaceId,
        roles: &[String],
    ) -> Result<()> {
        if roles.len() > 32 {
            return Err(CoreError::invalid("roles", "at most 32 roles"));
        }
        let custom: Vec<String> = roles
            .iter()
            .filter(|r| PredefinedRole::find(r).is_none())
            .cloned()
            .collect();
        let found = if custom.is_empty() {
            vec![]
        } else {
            self.store.roles_by_name(ws, &custom).await?
        };
        if let Some(missing) = custom.iter().find(|c| !found.iter().any(|f| &f.name == *c)) {
            return Err(CoreError::invalid(
                "roles",
                format!(
                    "unknown role '{}'",
                    missing.chars().take(64).collect::<String>()
                ),
            ));
        }
        let wanted = self.resolve_permissions(ws, roles).await?;
        if !granter.is_super_admin() && !granter.permissions.is_superset(&wanted) {
            return Err(CoreError::Forbidden {
                permission: "a role granting permissions you do not hold".into(),
            });
        }
        Ok(())
    }

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
        if !p.is_super_admin()
            && !(p.permissions.is_superset(&after.permissions)
                && p.permissions.is_superset(&before.permissions))
        {
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
