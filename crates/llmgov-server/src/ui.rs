//! The web UI: the static single-page app built from `web/` (SvelteKit, adapter-static),
//! served at `/` from a directory.
//!
//! - Hashed assets under `/_app/immutable/` are cached for a year (`immutable`); everything
//!   else is revalidated (`no-cache`), so a new build is picked up at once.
//! - A path that names no file and has no extension is a client-side route: it gets
//!   `index.html` (the SPA fallback). A missing asset is a plain 404.
//! - Pre-compressed `.br` / `.gz` siblings written by the build are sent when the client
//!   accepts them.
//! - When no build is found, every UI path gets a page saying how to build it, never a
//!   blank page.
//!
//! Paths under the API prefixes never reach this handler's files: they answer with the API's
//! JSON 404.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Prefixes that belong to the API; unknown paths under them are API 404s.
const API_PREFIXES: &[&str] = &[
    "/api/",
    "/ws/",
    "/sse/",
    "/health/",
    "/.well-known/",
    "/v1/", // OTLP/HTTP
];

/// Where the built UI is looked for when none is configured: `web/build` under the working
/// directory (a source checkout), then `web` beside the executable (an installed copy).
pub fn locate(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return Some(p.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("web/build")];
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("web"));
    }
    candidates
        .into_iter()
        .find(|c| c.join("index.html").is_file())
}

/// Fallback handler: the UI for GET/HEAD outside the API, the API's 404 otherwise.
pub async fn fallback(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    if API_PREFIXES.iter().any(|p| path.starts_with(p)) || path == "/api" || path == "/metrics" {
        return crate::context::not_found().await.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return crate::error::ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED).into_response();
    }
    let Some(dir) = state.config.ui_dir.as_deref() else {
        return not_built(None);
    };
    if !dir.join("index.html").is_file() {
        return not_built(Some(dir));
    }
    let Some(rel) = safe_relative(path) else {
        return plain(StatusCode::BAD_REQUEST, "bad path");
    };
    let accepts = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut response = match serve_file(dir, &rel, accepts).await {
        Some(r) => r,
        // A client-side route (no extension): the app shell.
        None if rel.extension().is_none() => {
            match serve_file(dir, Path::new("index.html"), accepts).await {
                Some(r) => r,
                None => not_built(Some(dir)),
            }
        }
        None => plain(StatusCode::NOT_FOUND, "not found"),
    };
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

/// `path` as a relative file path inside the UI directory; `None` for anything that could
/// leave it (`..`, absolute components, NUL).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.contains('\0') || trimmed.contains('\\') {
        return None;
    }
    let rel = if trimmed.is_empty() || trimmed.ends_with('/') {
        PathBuf::from(trimmed).join("index.html")
    } else {
        PathBuf::from(trimmed)
    };
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(rel)
}

async fn serve_file(dir: &Path, rel: &Path, accepts: &str) -> Option<Response> {
    let full = dir.join(rel);
    let meta = tokio::fs::metadata(&full).await.ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut encoding = None;
    let mut bytes = None;
    for (enc, ext) in [("br", "br"), ("gzip", "gz")] {
        if accepts
            .split(',')
            .any(|a| a.trim().split(';').next() == Some(enc))
        {
            let mut name = full.clone().into_os_string();
            name.push(".");
            name.push(ext);
            if let Ok(b) = tokio::fs::read(&name).await {
                encoding = Some(enc);
                bytes = Some(b);
                break;
            }
        }
    }
    let bytes = match bytes {
        Some(b) => b,
        None => tokio::fs::read(&full).await.ok()?,
    };
    // The app shell boots with an inline script whose hash the build put in a CSP meta tag;
    // the header says the same (plus what a meta tag cannot say).
    let csp = if rel.extension().is_none_or(|e| e != "html") {
        None
    } else if encoding.is_none() {
        page_csp(&String::from_utf8_lossy(&bytes))
    } else {
        // The body sent is compressed: read the plain page for its meta tag.
        tokio::fs::read(&full)
            .await
            .ok()
            .and_then(|html| page_csp(&String::from_utf8_lossy(&html)))
    };
    let immutable = rel.starts_with("_app/immutable");
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(rel)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    if let Some(enc) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(v) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    security_headers(h);
    Some(r)
}

/// The policy of a page's `<meta http-equiv="content-security-policy">`, with
/// `frame-ancestors 'none'` added; `None` without one (the server's default applies).
fn page_csp(html: &str) -> Option<String> {
    let at = html.find("http-equiv=\"content-security-policy\"")?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[at..tag_end];
    let start = tag.find("content=\"")? + "content=\"".len();
    let len = tag[start..].find('"')?;
    let policy = tag[start..start + len].trim().trim_end_matches(';');
    (!policy.is_empty() && policy.is_ascii()).then(|| format!("{policy}; frame-ancestors 'none'"))
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The page served when the UI has not been built: it says how to build it.
fn not_built(dir: Option<&Path>) -> Response {
    let looked = match dir {
        Some(d) => format!(
            "<p>Looked in <code>{}</code>.</p>",
            escape(&d.display().to_string())
        ),
        None => "<p>Looked in <code>web/build</code> and beside the executable.</p>".into(),
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>llmgov: web UI not built</title></head><body style=\"font-family:sans-serif;\
         max-width:40rem;margin:3rem auto;line-height:1.5\"><h1>The web UI is not built</h1>\
         <p>The API is up (<a href=\"/api/docs\">API docs</a>), but this server has no built \
         web UI to serve.</p>{looked}<p>Build it with Node.js 20 or later:</p>\
         <pre>npm --prefix web ci\nnpm --prefix web run build</pre>\
         <p>or start the platform with <code>scripts/up.sh</code>, which does this for you. \
         Set <code>server.ui_dir</code> (<code>LLMGOV_SERVER__UI_DIR</code>) to serve a build \
         from elsewhere.</p></body></html>"
    );
    let mut r = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    security_headers(r.headers_mut());
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UI's API types are generated from `web/src/lib/api/openapi.json`: it must be the
    /// document this server serves, so that a changed endpoint breaks the UI build.
    #[test]
    fn the_ui_is_typed_against_the_current_openapi_document() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../web/src/lib/api/openapi.json"
        );
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("openapi.json")).unwrap();
        let current: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        assert!(
            committed == current,
            "the API changed: run `llmgov openapi > web/src/lib/api/openapi.json && npm --prefix web run gen:api`, then fix the UI where its build fails"
        );
    }

    #[test]
    fn the_page_csp_comes_from_its_meta_tag() {
        let html = r#"<head><meta http-equiv="content-security-policy" content="default-src 'self'; script-src 'self' 'sha256-abc='"></head>"#;
        assert_eq!(
            page_csp(html).unwrap(),
            "default-src 'self'; script-src 'self' 'sha256-abc='; frame-ancestors 'none'"
        );
        assert_eq!(page_csp("<html></html>"), None);
    }

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(safe_relative("/"), Some(PathBuf::from("index.html")));
        assert_eq!(
            safe_relative("/_app/immutable/a.js"),
            Some(PathBuf::from("_app/immutable/a.js"))
        );
        assert_eq!(safe_relative("/policies"), Some(PathBuf::from("policies")));
        assert_eq!(safe_relative("/../etc/passwd"), None);
        assert_eq!(safe_relative("/a/../../x"), None);
        assert_eq!(safe_relative("/a\\..\\x"), None);
    }
}
