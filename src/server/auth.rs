//! API authentication on HTTP: every request to `/v1` and `/rpc` presents a key (`Authorization: Bearer`, or
//! `X-Api-Key`) with the scope the request needs (`read` for GET, `write` otherwise; `/rpc` needs `read` and
//! `message.send` checks `write` itself), within the key's rate. The caller is put in the request's extensions,
//! where JSON-RPC methods find it (for WebSocket, the upgrade request's caller serves the whole connection).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{AuthError, Scope, presented};
use crate::telemetry::metric;

/// The middleware.
pub(super) async fn require_key(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let scope = if request.uri().path() == "/rpc" || matches!(*request.method(), Method::GET | Method::HEAD) {
        Scope::Read
    } else {
        Scope::Write
    };
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let key = presented(
        text(header::AUTHORIZATION),
        text(header::HeaderName::from_static("x-api-key")),
    );
    match app
        .auth
        .authenticate(key)
        .and_then(|caller| caller.require(scope).map(|()| caller))
    {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => refusal(&e),
    }
}

fn refusal(e: &AuthError) -> Response {
    let outcome = match e {
        AuthError::Missing | AuthError::Invalid => "unauthenticated",
        AuthError::Forbidden(_) => "forbidden",
        AuthError::RateLimited(_) => "rate_limited",
    };
    metrics::counter!(metric::API_REFUSALS, "outcome" => outcome).increment(1);
    match e {
        AuthError::Missing | AuthError::Invalid => {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        AuthError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()).into_response(),
        AuthError::RateLimited(wait) => {
            let mut response =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string()).into_response();
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}
