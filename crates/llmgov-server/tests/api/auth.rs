//! Login, refresh rotation and reuse detection, logout, token validation, key rotation, throttling.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

async fn login_returns_the_token_contract(app: TestApp) {
    let r = app.login_pair(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    assert!(r.body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(r.body["refresh_token"].is_string());
    let me = app
        .get("/api/v1/auth/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.body["user"]["email"], ADMIN_EMAIL);
    assert!(
        me.body["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "users:create")
    );
    let events = app.audit_events("auth.login").await;
    assert!(events.iter().any(|e| e["status"] == "success"
        && e["ip_address"] == "127.0.0.1"
        && e["user_agent"] == "llmgov-tests/1"));
}

async fn wrong_credentials_are_401_and_recorded(app: TestApp) {
    for (email, pw) in [
        (ADMIN_EMAIL, "Wrong-password-123"),
        ("nobody@example.com", "Wrong-password-123"),
        ("not an email", "x"),
    ] {
        let r = app.login_pair(email, pw).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), "UNAUTHENTICATED");
        assert_eq!(
            r.body["error"]["message"], "invalid email or password",
            "the message never says which part was wrong"
        );
    }
    let failures: Vec<_> = app
        .audit_events("auth.login")
        .await
        .into_iter()
        .filter(|e| e["status"] == "failure")
        .collect();
    assert_eq!(failures.len(), 3);
}

async fn repeated_failures_are_throttled_with_retry_after(app: TestApp) {
    for _ in 0..5 {
        assert_eq!(
            app.login_pair(ADMIN_EMAIL, "Wrong-password-123")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = app.login_pair(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits once the account is locked"
    );
    assert_eq!(r.error_code(), "TOO_MANY_ATTEMPTS");
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs > 0 && secs <= 900);
    assert!(
        app.audit_events("auth.login")
            .await
            .iter()
            .any(|e| e["status"] == "denied" && e["details"]["reason"] == "throttled")
    );
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let first = app.login_pair(ADMIN_EMAIL, ADMIN_PASSWORD).await.body;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let second = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt1})),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    let rt2 = second.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    assert_eq!(
        app.get(
            "/api/v1/auth/me",
            second.body["access_token"].as_str().unwrap()
        )
        .await
        .status,
        StatusCode::OK
    );
    // The spent token comes back: a thief or a replay. The whole family dies.
    let reuse = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt1})),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    let after = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt2})),
        )
        .await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the legitimate holder's newer token is revoked too"
    );
    assert_eq!(app.audit_events("auth.refresh_token_reuse").await.len(), 1);
    for bad in [
        "",
        "garbage",
        "00000000000000000000000000000000.abc",
        &rt2[..rt2.len() - 1],
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": bad})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
}

async fn logout_ends_the_session(app: TestApp) {
    let pair = app.login_pair(ADMIN_EMAIL, ADMIN_PASSWORD).await.body;
    let rt = pair["refresh_token"].as_str().unwrap();
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": rt})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let again = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt})),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.audit_events("auth.logout").await.len(), 1);
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

async fn forged_and_malformed_tokens_are_rejected(app: TestApp) {
    let parts: Vec<&str> = app.admin_token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let now = chrono::Utc::now().timestamp();
    let mut forged = Vec::new();
    // alg: none
    forged.push(format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    ));
    // Algorithm confusion: HS256 keyed with the published public key.
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .body;
    let x = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = header["kid"].as_str().map(String::from);
    forged.push(
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(&x)).unwrap(),
    );
    // Claims edited after signing (escalation attempt).
    claims["roles"] = json!(["super_admin"]);
    claims["exp"] = json!(now + 99999);
    forged.push(format!("{}.{}.{}", parts[0], b64(&claims), parts[2]));
    forged.push("not.a.jwt".into());
    forged.push(String::new());
    for t in &forged {
        let r = app.get("/api/v1/users", t).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "token accepted: {t}");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    let no_scheme = app
        .client
        .get(format!("{}/api/v1/users", app.base))
        .header("authorization", app.admin_token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(no_scheme.status(), StatusCode::UNAUTHORIZED);
    let basic = app
        .client
        .get(format!("{}/api/v1/users", app.base))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

async fn signing_key_rotation_keeps_sessions_alive(app: TestApp) {
    let old = app.admin_token.clone();
    let r = app
        .post("/api/v1/auth/signing-keys/rotate", &old, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let kid = r.body["kid"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/v1/users", &old).await.status,
        StatusCode::OK,
        "tokens of the previous key stay valid"
    );
    let fresh = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(fresh.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], kid.as_str());
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .body;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(app.audit_events("auth.signing_key_rotate").await.len(), 1);
}

async fn changing_the_password_ends_other_sessions(app: TestApp) {
    let (_, email, token) = app.user_with("changer", &["viewer"]).await;
    let pair = app.login_pair(&email, "User-password-123").await.body;
    let weak = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": "User-password-123", "new_password": "short"}),
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": "nope-nope-nope", "new_password": "Brand-new-password-1"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = app.post("/api/v1/auth/password", &token, json!({"current_password": "User-password-123", "new_password": "Brand-new-password-1"})).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let refresh = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login_pair(&email, "User-password-123").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_pair(&email, "Brand-new-password-1").await.status,
        StatusCode::OK
    );
}

crate::both_backends!(
    login_returns_the_token_contract,
    wrong_credentials_are_401_and_recorded,
    repeated_failures_are_throttled_with_retry_after,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_ends_the_session,
    forged_and_malformed_tokens_are_rejected,
    signing_key_rotation_keeps_sessions_alive,
    changing_the_password_ends_other_sessions,
);
