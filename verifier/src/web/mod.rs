//! The auditor's view: a read-only web console over verdicts, nodes, baselines and the audit
//! log (`vigil serve --web-listen ADDR`, `docs/console.md`).
//!
//! - Server-rendered HTML ([`html::Html`] escapes by construction), no JavaScript, one
//!   stylesheet embedded in the binary; every page is also JSON (`Accept: application/json`
//!   or `?format=json`).
//! - Read-only by construction: only GET and HEAD are routed (anything else is 405 before
//!   routing), and the handlers only run SELECTs through [`Verifier::with_store`].
//! - Behind the same mutual TLS as gRPC: the client CA, server certificate and key come from
//!   the `--tls-dir` files, a handshake without a client certificate from that CA fails, and
//!   the certificate's roles must include auditor, admin or orchestrator (403 otherwise).
//!   `--dev` serves plaintext, on loopback only.
//! - Strict headers on every answer: a Content-Security-Policy without scripts, nosniff,
//!   no referrer, no framing.

pub mod html;
mod pages;
pub mod queries;
mod svg;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vigil_tls::{Caller, Role};

use crate::attest::Verifier;

pub use tls::{WebListener, web_tls_config};

/// The policy every answer carries: nothing but our own stylesheet and data: images.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Roles that may read the console: the ones that may read verdicts and the audit log.
pub const CONSOLE_ROLES: [Role; 3] = [Role::Auditor, Role::Admin, Role::Orchestrator];

/// The stylesheet, embedded so the binary serves the console alone.
const STYLESHEET: &str = include_str!("vigil.css");

/// Who is on the other end of one connection (read once, at the TLS handshake).
#[derive(Debug, Clone)]
pub enum Peer {
    /// `--dev`: plaintext on loopback, no client authentication.
    Dev(SocketAddr),
    /// Mutual TLS: the client certificate's roles, or why it could not be read.
    Tls(SocketAddr, Result<Caller, String>),
}

/// Why a page could not be rendered.
#[derive(Debug)]
pub enum WebError {
    NotFound(String),
    BadRequest(String),
    Internal(String),
}

impl From<rusqlite::Error> for WebError {
    fn from(e: rusqlite::Error) -> Self {
        WebError::Internal(format!("database: {e}"))
    }
}

impl From<vigil_audit::AuditError> for WebError {
    fn from(e: vigil_audit::AuditError) -> Self {
        WebError::Internal(format!("audit log: {e}"))
    }
}

impl From<crate::attest::VerifierError> for WebError {
    fn from(e: crate::attest::VerifierError) -> Self {
        WebError::Internal(e.to_string())
    }
}

/// One rendered page: the same content as HTML and as JSON.
pub struct Page {
    pub title: String,
    pub body: html::Html,
    pub json: serde_json::Value,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct WebState {
    pub verifier: Arc<Verifier>,
}

/// The console's routes and middleware; the caller supplies [`Peer`] as `ConnectInfo`.
pub fn router(verifier: Arc<Verifier>) -> Router {
    use axum::routing::get;
    let state = WebState { verifier };
    Router::new()
        .route("/", get(pages::fleet))
        .route("/nodes", get(pages::fleet))
        .route("/nodes/{id}", get(pages::node))
        .route("/nodes/{id}/verdicts/{verdict}", get(pages::verdict))
        .route("/nodes/{id}/diff", get(pages::diff))
        .route("/baselines", get(pages::baselines))
        .route("/baselines/{name}", get(pages::baseline_versions))
        .route("/baselines/{name}/diff", get(pages::baseline_diff))
        .route("/baselines/{name}/{version}", get(pages::baseline_version))
        .route("/audit", get(pages::audit))
        .route("/audit/consistency", get(pages::consistency))
        .route("/audit/{index}", get(pages::audit_entry))
        .route("/charts", get(pages::charts))
        .route("/static/vigil.css", get(stylesheet))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(guard))
}

/// Method and role checks before routing, security headers after.
async fn guard(request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "405: the console is read-only (GET and HEAD only)\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return secure(response);
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.clone());
    let refusal = match &peer {
        // Plaintext on loopback: only for pages asked for by a loopback name, so a web page
        // elsewhere cannot read the console through DNS rebinding.
        Some(Peer::Dev(_)) => (!loopback_host(request.headers()))
            .then(|| "403: in --dev mode the console answers only to Host 127.0.0.1, [::1] or localhost\n".to_owned()),
        Some(Peer::Tls(_, Ok(caller))) => {
            if CONSOLE_ROLES.iter().any(|role| caller.has_role(*role)) {
                None
            } else {
                Some(format!(
                    "403: this certificate ({}) holds no role that may read the console (auditor, admin or orchestrator)\n",
                    caller.subject
                ))
            }
        }
        Some(Peer::Tls(_, Err(reason))) => {
            Some(format!("403: unreadable client certificate: {reason}\n"))
        }
        None => Some("403: no connection identity\n".to_owned()),
    };
    if let Some(text) = refusal {
        return secure(plain(StatusCode::FORBIDDEN, &text));
    }
    secure(next.run(request).await)
}

/// Whether the Host header names the loopback interface (any port).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// Adds the security headers to an answer.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

async fn not_found(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let format = uri
        .query()
        .map(|q| q.split('&').any(|p| p == "format=json"))
        .unwrap_or(false);
    respond(
        Err(WebError::NotFound(format!("no page at {}", uri.path()))),
        &headers,
        &HashMap::from([(
            "format".to_owned(),
            if format { "json" } else { "" }.to_owned(),
        )]),
    )
}

/// JSON when the query says `format=json` or the client prefers `application/json`.
pub fn wants_json(headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    if let Some(format) = query.get("format") {
        return format == "json";
    }
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(|accept| {
            accept
                .split(',')
                .next()
                .is_some_and(|first| first.trim().starts_with("application/json"))
        })
        .unwrap_or(false)
}

/// Turns a page (or an error) into HTML or JSON, as the client asked.
pub fn respond(
    result: Result<Page, WebError>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Response {
    let json = wants_json(headers, query);
    let (status, page) = match result {
        Ok(page) => (StatusCode::OK, page),
        Err(error) => {
            let (status, message) = match error {
                WebError::NotFound(m) => (StatusCode::NOT_FOUND, m),
                WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
                WebError::Internal(m) => {
                    tracing::warn!(error = %m, "web console: cannot render a page");
                    (StatusCode::INTERNAL_SERVER_ERROR, m)
                }
            };
            let mut body = html::Html::new();
            body.elem("p", &[("class", "error")], &message);
            (
                status,
                Page {
                    title: status.canonical_reason().unwrap_or("error").to_owned(),
                    body,
                    json: serde_json::json!({ "error": message, "status": status.as_u16() }),
                },
            )
        }
    };
    if json {
        let text = serde_json::to_string_pretty(&page.json).unwrap_or_else(|_| "null".to_owned());
        return (status, [(header::CONTENT_TYPE, "application/json")], text).into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        layout(&page),
    )
        .into_response()
}

/// The frame around every page: title, navigation, footer.
fn layout(page: &Page) -> String {
    let mut out = html::Html::new();
    out.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<link rel=\"stylesheet\" href=\"/static/vigil.css\">");
    out.elem("title", &[], &format!("{} · Vigil", page.title));
    out.raw("</head><body><header><span class=\"brand\">Vigil</span><nav>")
        .raw("<a href=\"/nodes\">Fleet</a><a href=\"/charts\">Charts</a>")
        .raw("<a href=\"/baselines\">Baselines</a><a href=\"/audit\">Audit log</a>")
        .raw("</nav><span class=\"readonly\">read-only</span></header><main>");
    out.elem("h1", &[], &page.title);
    out.append(&page.body);
    out.raw("</main><footer>Every page is also JSON: add <code>?format=json</code>.</footer></body></html>\n");
    out.into_string()
}

/// Serves the console on `listener` until `shutdown` completes.
pub async fn serve(
    listener: WebListener,
    verifier: Arc<Verifier>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(verifier).into_make_service_with_connect_info::<Peer>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, WebListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, WebListener>) -> Self {
        stream.remote_addr().clone()
    }
}

#[cfg(test)]
mod tests;
