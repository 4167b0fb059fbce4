//! The authorization layer every route passes through.
//!
//! A handler names its permission in its signature: `Authz<perm::UsersRead>`. The extractor
//! authenticates the bearer credential (access token or API key), checks the permission,
//! records a denial in the audit trail, and hands the handler a [`Principal`] whose workspace
//! scopes everything the handler does. The route-permission test in `tests/api` checks every
//! route of the OpenAPI document against every predefined role, so a route whose declared
//! and enforced permissions differ, or that has none, fails CI.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use llmgov_core::access::Permission;
use llmgov_core::identity::Principal;

use crate::AppState;
use crate::context::request_context;
use crate::error::ApiError;

/// A permission required by a route, as a type.
pub trait RequiredPermission: Send + Sync + 'static {
    const PERMISSION: Permission;
}

macro_rules! permissions {
    ($($name:ident => $res:ident : $act:ident),* $(,)?) => {
        /// Permission marker types, one per `resource:action` used by a route.
        pub mod perm {
            use llmgov_core::access::{Action, Permission, Resource};
            $(
                pub struct $name;
                impl super::RequiredPermission for $name {
                    const PERMISSION: Permission = Permission::new(Resource::$res, Action::$act);
                }
            )*
        }
    };
}

permissions! {
    UsersCreate => Users:Create,
    UsersRead => Users:Read,
    UsersUpdate => Users:Update,
    UsersDelete => Users:Delete,
    RolesCreate => Roles:Create,
    RolesRead => Roles:Read,
    RolesUpdate => Roles:Update,
    RolesDelete => Roles:Delete,
    WorkspacesCreate => Workspaces:Create,
    WorkspacesRead => Workspaces:Read,
    WorkspacesUpdate => Workspaces:Update,
    KeysCreate => Keys:Create,
    KeysRead => Keys:Read,
    KeysDelete => Keys:Delete,
    KeysExecute => Keys:Execute,
    SettingsRead => Settings:Read,
    SettingsUpdate => Settings:Update,
    AuditRead => Audit:Read,
    PoliciesCreate => Policies:Create,
    PoliciesRead => Policies:Read,
    PoliciesUpdate => Policies:Update,
    PoliciesDelete => Policies:Delete,
    PoliciesExecute => Policies:Execute,
    MetricsCreate => Metrics:Create,
    MetricsRead => Metrics:Read,
    MetricsUpdate => Metrics:Update,
    MetricsDelete => Metrics:Delete,
    DatasetsCreate => Datasets:Create,
    DatasetsRead => Datasets:Read,
    DatasetsUpdate => Datasets:Update,
    DatasetsDelete => Datasets:Delete,
    DatasetsExecute => Datasets:Execute,
    PiiExecute => Pii:Execute,
    PiiRead => Pii:Read,
    PiiUpdate => Pii:Update,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let unauth = |m: &str| ApiError::from(llmgov_core::CoreError::Unauthenticated(m.into()));
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| unauth("missing Authorization header"))?;
    let value = value
        .to_str()
        .map_err(|_| unauth("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| unauth("expected 'Authorization: Bearer <token>'"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 4096 {
        return Err(unauth("expected 'Authorization: Bearer <token>'"));
    }
    Ok(token.trim())
}

/// Any authenticated caller, with no particular permission (e.g. `GET /auth/me`).
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(Authenticated(p.clone()));
        }
        let token = bearer(parts)?;
        let principal = state.identity.authenticate(token).await?;
        parts.extensions.insert(principal.clone());
        Ok(Authenticated(principal))
    }
}

/// An authenticated caller holding permission `P`.
pub struct Authz<P: RequiredPermission>(pub Principal, pub PhantomData<P>);

impl<P: RequiredPermission> FromRequestParts<AppState> for Authz<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if let Err(e) = principal.require(P::PERMISSION) {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            let ctx = request_context(parts, state);
            state
                .identity
                .record_denial(&principal, &ctx, &P::PERMISSION.to_string(), &route)
                .await?;
            return Err(e.into());
        }
        Ok(Authz(principal, PhantomData))
    }
}
