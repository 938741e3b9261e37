//! The agent console: `GET /console` (the page), `/console/console.js` and `/console/console.css`, on the API
//! listener. Plain JavaScript and CSS in `console/`, compiled into the binary: no front-end build step.
//!
//! The page itself is public (it holds nothing); everything it shows comes from the authenticated `/v1` API
//! with the key the agent pastes into it, so it can do exactly what that key may. Live updates are polls at an
//! interval the agent sets (0.5–60 s): browsers cannot put an `Authorization` header on a WebSocket or an
//! `EventSource`, and a poll is one indexed list read.
//!
//! Must never: answer data itself, accept a credential, or read its files from disk at run time.

use std::sync::LazyLock;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use super::pages::{self, Asset};

static PAGE: LazyLock<Asset> = LazyLock::new(|| Asset::html(include_str!("console/console.html")));
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::script(include_str!("console/console.js")));
static STYLE: LazyLock<Asset> = LazyLock::new(|| Asset::stylesheet(include_str!("console/console.css")));

/// The console's routes, outside the API's key check (the page calls the API with the agent's key).
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(page))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
}

async fn page(headers: HeaderMap) -> Response {
    pages::credential_page(&PAGE, &headers)
}

async fn script(headers: HeaderMap) -> Response {
    pages::serve(&SCRIPT, &headers, pages::REVALIDATE)
}

async fn style(headers: HeaderMap) -> Response {
    pages::serve(&STYLE, &headers, pages::REVALIDATE)
}
