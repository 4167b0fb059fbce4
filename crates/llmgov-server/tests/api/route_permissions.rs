//! Every route of the OpenAPI document, called with a token of every predefined role.
//!
//! A route must either be in `PUBLIC` or declare a bearer security requirement; if it
//! names a permission, every role lacking it gets 403 and every role holding it does not.
//! So a new route without a permission, or with a declared permission different from the
//! one its handler enforces, fails here.

use llmgov_core::access::{PREDEFINED_ROLES, Permission};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

const PUBLIC: &[(&str, &str)] = &[
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
];

async fn every_route_enforces_its_declared_permission(app: TestApp) {
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    let mut tokens = Vec::new();
    for role in PREDEFINED_ROLES {
        let (_, _, token) = app
            .user_with(&format!("r_{}", role.name), &[role.name])
            .await;
        tokens.push((role, token));
    }
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
            let security = op
                .get("security")
                .and_then(|s| s.as_array())
                .cloned()
                .unwrap_or_default();
            if security.is_empty() {
                assert!(
                    PUBLIC.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} has no permission and is not declared public"
                );
                continue;
            }
            let scopes = security[0]["bearer"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path}: bearer security expected"));
            let required = scopes
                .first()
                .map(|s| Permission::parse(s.as_str().unwrap()).unwrap());
            let anon = app.call(m.clone(), &concrete, None, body.clone()).await;
            assert_eq!(
                anon.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a token"
            );
            for (role, token) in &tokens {
                let r = app
                    .call(m.clone(), &concrete, Some(token), body.clone())
                    .await;
                let holds = required.is_none_or(|p| role.permissions().contains(p));
                if holds {
                    assert!(
                        r.status != StatusCode::FORBIDDEN && r.status != StatusCode::UNAUTHORIZED,
                        "{} should reach {method} {path}, got {}: {}",
                        role.name,
                        r.status,
                        r.body
                    );
                } else {
                    assert_eq!(
                        r.status,
                        StatusCode::FORBIDDEN,
                        "{} must not reach {method} {path}",
                        role.name
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 20 * PREDEFINED_ROLES.len(),
        "only {checked} checks: is the OpenAPI document complete?"
    );
}

crate::both_backends!(every_route_enforces_its_declared_permission);
