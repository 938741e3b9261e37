//! Routes of the configured legacy REST adapters: each adapter file becomes one route on the public listener,
//! answered in its caller's own convention (status and body from the adapter's templates).
//!
//! Order of checks: body size, credentials (and HMAC nonce replay), decoding and mapping, then the one
//! application service. Nothing is stored unless every check before it passed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protofuse_legacy::auth::Presented;
use protofuse_legacy::{Class, LegacyAdapter, Reply};

mod routes;

pub(crate) use routes::LegacyRoutes;
use routes::Route;

use super::body;
use super::state::AppState;
use crate::service::ErrorClass;

/// The public listener's fallback: the legacy route for the request's method and path, else the shared 404 or
/// 405 answer. The route's path is the request's metrics label, as a mounted route's template would be.
pub(super) async fn dispatch(State(app): State<AppState>, request: Request) -> Response {
    let route = match app.legacy.find(request.method(), request.uri().path()) {
        Ok(route) => route,
        Err(refusal) => return refusal.into_response(),
    };
    let label = super::observe::RouteLabel(route.adapter.path().to_owned());
    let mut response = handle(app, route, request).await;
    response.extensions_mut().insert(label);
    response
}

async fn handle(app: AppState, route: Arc<Route>, request: Request) -> Response {
    let adapter = &route.adapter;
    let (parts, body) = request.into_parts();
    let bytes = match body::read_limited(&parts.headers, body, app.body_limit).await {
        Ok(bytes) => bytes,
        Err(e) => return refuse(adapter, Class::Invalid, e.code(), &e.to_string()),
    };
    let presented = Presented {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        body: &bytes,
        now: chrono::Utc::now().timestamp(),
    };
    match adapter.authenticate(presented, |name| parts.headers.get(name).and_then(|v| v.to_str().ok())) {
        Ok(None) => {}
        Ok(Some(nonce)) => {
            let window = adapter.nonce_window().unwrap_or_default();
            if nonce.len() > crate::legacy::MAX_NONCE_BYTES {
                let message = format!("nonce longer than {} bytes", crate::legacy::MAX_NONCE_BYTES);
                return refuse(adapter, Class::Unauthorized, "unauthenticated", &message);
            }
            let first_use = match &app.shared_nonces {
                Some(shared) => match shared.first_use(adapter.path(), &nonce).await {
                    Ok(first) => first,
                    // Without the cluster's memory a replay could pass: refuse, the caller retries.
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster: nonce store unavailable");
                        return refuse(adapter, Class::Unavailable, "unavailable", "replay check unavailable");
                    }
                },
                None => route.nonces.first_use(&nonce, window),
            };
            if !first_use {
                return refuse(adapter, Class::Unauthorized, "replayed", "nonce was already used");
            }
        }
        Err(e) => return refuse(adapter, Class::Unauthorized, "unauthenticated", &e.to_string()),
    }
    let input = if adapter.reads_query() {
        parts.uri.query().unwrap_or("").as_bytes()
    } else {
        &bytes[..]
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let envelope = match adapter.decode(content_type, input) {
        Ok(envelope) => envelope,
        Err(e) => return refuse(adapter, Class::Invalid, e.code(), &e.to_string()),
    };
    match app.service.send(envelope).await {
        Ok(outcome) => render(adapter, Reply::Accepted(&outcome)),
        Err(e) if e.class() == ErrorClass::Unavailable => refuse(adapter, Class::Unavailable, e.code(), &e.to_string()),
        Err(e) => refuse(adapter, Class::Invalid, e.code(), &e.to_string()),
    }
}

fn refuse(adapter: &LegacyAdapter, class: Class, code: &str, message: &str) -> Response {
    render(adapter, Reply::Refused { class, code, message })
}

fn render(adapter: &LegacyAdapter, reply: Reply<'_>) -> Response {
    let rendered = adapter.respond(reply);
    let status = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Body::from(rendered.body)).into_response();
    if let Ok(content_type) = HeaderValue::from_str(&rendered.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    response
}
