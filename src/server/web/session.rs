//! `POST /web/session`: a visitor's session token.
//!
//! Body `{"site"}` issues an anonymous visitor id (when the site allows anonymous visitors); `{"site",
//! "user_token"}` names one of the site's users, in a token the site signed with its key; `{"site", "session"}`
//! renews a session the server issued (same visitor, new expiry). Answer 201 `{"token", "visitor_id", "site",
//! "expires_at", "websocket"}`; a refused token is 401 with a code saying why.
//!
//! Must never: log or echo a token, or issue a session for a site that is not configured.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::channel::Web;
use super::error::WebError;
use super::token::{self, TokenError, Visitor};
use crate::server::body;

/// A session request is a site name and at most two tokens.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// The query a connecting request (`/web/ws`, `/web/events`, `/web/messages`) may carry. Other parameters are
/// ignored: pages and proxies add cache-busters to URLs they fetch.
#[derive(Debug, Deserialize)]
pub(super) struct Connect {
    /// The session token (browsers cannot set headers on WebSockets and `EventSource`).
    pub(super) token: Option<String>,
    /// The last sequence the client saw.
    pub(super) after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    site: String,
    user_token: Option<String>,
    session: Option<String>,
}

/// `POST /web/session`.
pub(super) async fn create(
    State(web): State<Arc<Web>>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, WebError> {
    body::require_json(&headers)?;
    let bytes = body::read_limited(&headers, request_body, MAX_REQUEST_BYTES).await?;
    let request: SessionRequest = serde_json::from_slice(&bytes).map_err(|e| WebError::Invalid(e.to_string()))?;
    if !web.keys.knows(&request.site) {
        return Err(WebError::UnknownSite(request.site));
    }
    let visitor = match (request.user_token, request.session) {
        (Some(_), Some(_)) => {
            return Err(WebError::Invalid("send user_token or session, not both".to_owned()));
        }
        (Some(user_token), None) => web.keys.user(&request.site, &user_token)?,
        (None, Some(session)) => {
            let visitor = web.keys.session(&session)?;
            if visitor.site != request.site {
                return Err(TokenError::Malformed("the session belongs to another site").into());
            }
            visitor
        }
        (None, None) if web.keys.allows_anonymous(&request.site) => {
            // Every listener records the peer; a request without one (served in-process) is not limited.
            if let Some(Extension(ConnectInfo(address))) = client {
                web.limits.anonymous_session(address.ip())?;
            }
            Visitor {
                site: request.site,
                id: token::anonymous_id(),
                name: None,
            }
        }
        (None, None) => return Err(WebError::AnonymousNotAllowed),
    };
    let issued = web.keys.issue(&visitor, chrono::Utc::now());
    let body = json!({
        "token": issued.token,
        "visitor_id": visitor.id,
        "site": visitor.site,
        "expires_at": issued.expires_at,
        "websocket": web.settings.websocket,
    });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // A token is a credential: no cache may keep it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The visitor a request speaks for: the session token in `?token=` (browsers cannot set headers on a
/// WebSocket or an `EventSource`) or in `Authorization: Bearer`.
pub(super) fn authenticate(web: &Web, query_token: Option<&str>, headers: &HeaderMap) -> Result<Visitor, WebError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = query_token
        .or(bearer)
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)?;
    Ok(web.keys.session(token)?)
}
