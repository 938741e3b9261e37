//! The web channel on the public listener, under `/web/…`: visitors on a site's page chatting over WebSocket,
//! or over Server-Sent Events plus HTTP POST where a WebSocket cannot be opened. One more transport over the
//! same [`Service`]: it never stores, validates or publishes by itself.
//!
//! - `channel.rs`: [`Web`], what every handler reaches; built by `crate::app` when `[web] enabled`.
//! - `session.rs`: `POST /web/session` (anonymous, site-signed user, renewal) and authenticating requests;
//!   `token.rs` the HS256 session and user tokens.
//! - `ws.rs`: `GET /web/ws`; `sse.rs`: `GET /web/events` and `POST /web/messages`.
//! - `replay.rs`: the feed every connection reads (replay from the store, then live, in sequence order).
//! - `inbound.rs`: a visitor's text → `Envelope` → `Service::send`; `answer.rs`: the bot's answers and hand-off.
//! - `frames.rs`: the JSON both transports speak; `error.rs`: refusals; `limits.rs`: connection caps and the
//!   per-visitor message rate; `config.rs`: `[web]`.

mod answer;
mod channel;
mod config;
mod error;
mod frames;
mod inbound;
mod limits;
mod replay;
mod session;
mod sse;
mod token;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub(crate) use channel::Web;
pub use channel::WebSetupError;
pub use config::{Secret, SiteConfig, WebConfig};
pub use token::KeyError;

use super::AppState;

/// `/web/…` served by `web`, to merge into the public routes.
pub(crate) fn routes(web: &Arc<Web>) -> Router<AppState> {
    Router::new()
        .route("/web/session", post(session::create))
        .route("/web/ws", get(ws::upgrade))
        .route("/web/events", get(sse::events))
        .route("/web/messages", post(sse::post_message))
        .with_state(Arc::clone(web))
}
