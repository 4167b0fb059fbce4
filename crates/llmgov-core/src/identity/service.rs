//! Identity use cases. Every method that changes state builds the audit draft here and
//! hands it to the store with the change; every read is scoped to the principal's workspace.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::access::{Action, Permission, PermissionSet, PredefinedRole, Resource};
use crate::audit::{AuditDraft, RequestContext};
use crate::ids::{UserId, WorkspaceId};
use crate::store::*;
use crate::time::now;
use crate::{CoreError, Result};

use super::throttle::{LoginThrottle, ThrottleConfig};
use super::tokens::{self, KeyRing};
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
    pub(super) store: Arc<dyn Store>,
    pub(super) cfg: IdentityConfig,
    pub(super) keys: RwLock<Arc<KeyRing>>,
    pub(super) last_key_reload: RwLock<Instant>,
    pub(super) throttle: LoginThrottle,
    pub(super) verified: VerifiedTokens,
}

/// Access tokens that passed verification, by the BLAKE3 hash of the whole token, until they
/// expire: a repeat request skips the signature check and claims parsing. Any change to a
/// token changes its hash, so a forged token is always fully verified (and fails).
#[derive(Default)]
pub(super) struct VerifiedTokens(
    std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, i64)>>,
);

pub(super) const VERIFIED_TOKENS_MAX: usize = 50_000;

impl VerifiedTokens {
    pub(super) fn get(&self, key: &[u8; 32], now: i64) -> Option<Principal> {
        let map = self.0.lock().expect("token cache lock");
        map.get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(p, _)| p.clone())
    }

    pub(super) fn insert(&self, key: [u8; 32], p: Principal, exp: i64, now: i64) {
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

pub(super) fn hash_blocking_error(e: tokio::task::JoinError) -> CoreError {
    CoreError::internal(e)
}

pub(super) async fn hash_password(pw: Password) -> Result<String> {
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(hash_blocking_error)?
}

pub(super) async fn verify_password(pw: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
        .await
        .map_err(hash_blocking_error)
}

pub(super) fn invalid_credentials() -> CoreError {
    CoreError::Unauthenticated("invalid email or password".into())
}

pub(super) fn invalid_refresh() -> CoreError {
    CoreError::Unauthenticated("invalid or expired refresh token".into())
}

pub(super) const USERS_READ: Permission = Permission::new(Resource::Users, Action::Read);
pub(super) const USERS_UPDATE: Permission = Permission::new(Resource::Users, Action::Update);

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
    pub(super) async fn check_grant(
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
}
