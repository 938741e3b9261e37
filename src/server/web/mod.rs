//! The web channel on the public listener, under `/web/…`: visitors on a site's page chatting over WebSocket,
//! or over Server-Sent Events plus HTTP POST where a WebSocket cannot be opened. One more transport over the
//! same [`Service`]: it never stores, validates or publishes by itself.
//!
//! - `channel.rs`: [`Web`], what every handler reaches; built by `crate::app` when `[web] enabled`.
//! - `session.rs`: `POST /web/session` (anonymous, site-signed user, renewal) and authenticating requests;
//!   `token.rs` the HS256 session and user tokens.
//! - `ws.rs`: `GET /web/ws`; `sse.rs`: `GET /web/events` and `POST /web/messages`.
//! - `replay.rs`: the feed every connection reads (replay from the store, then live, in sequence order);
//!   `prompts.rs`: the one bus subscription that tells each connection its visitor has something new.
//! - `inbound.rs`: a visitor's text → `Envelope` → `Service::send`; `answer.rs`: the bot's answers and hand-off.
//! - `assets.rs`: `GET /web/widget.js` and `/web/widget.css`, the embeddable widget (`assets/`, plain JS and
//!   CSS compiled into the binary: no front-end build step).
//! - `frames.rs`: the JSON both transports speak; `error.rs`: refusals; `limits.rs`: connection caps and the
//!   per-visitor message rate; `config.rs`: `[web]`.

mod answer;
mod assets;
mod channel;
mod config;
mod error;
mod frames;
mod inbound;
mod limits;
mod prompts;
mod replay;
mod session;
mod sse;
mod token;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub(crate) use channel::Web;
pub use channel::WebSetupError;
pub use config::{Secret, SiteConfig, WebConfig};
pub use token::KeyError;

use super::AppState;

/// The channel's routes whose `GET` the public listener serves outside hyper's dispatcher (`server/stream.rs`):
/// responses that last as long as the connection, where hyper's per-connection buffers would be most of what
/// an idle visitor costs.
pub(crate) const STREAM_PATHS: &[&str] = &["/web/events"];

/// How long a browser may cache a CORS preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// `/web/…` served by `web`, to merge into the public routes; callable from the pages of the sites' origins.
pub(crate) fn routes(web: &Arc<Web>) -> Router<AppState> {
    Router::new()
        .route("/web/session", post(session::create).options(preflight))
        .route("/web/ws", get(ws::upgrade))
        .route("/web/events", get(sse::events).options(preflight))
        .route("/web/messages", post(sse::post_message).options(preflight))
        .layer(cors(&web.settings))
        .with_state(Arc::clone(web))
        .merge(assets::routes())
}

/// `OPTIONS`: the CORS layer answers a preflight before this runs. The route needs the method all the same, or
/// the listener's 405 fallback (which replaces each route's own) would answer instead.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The sites' origins may call the channel from a browser. No credentials: the session token is the visitor's
/// credential, never a cookie.
fn cors(config: &WebConfig) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .sites
        .values()
        .flat_map(|site| &site.origins)
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("last-event-id"),
        ])
        // The widget reads it to pace a resend after `429 rate_limited`.
        .expose_headers([header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}
