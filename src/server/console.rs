//! The agent console: `GET /console` (the page), `/console/console.js`, `/console/console.css` and the shared
//! `/console/desk.js`, on the API listener. Plain JavaScript and CSS in `console/`, compiled into the binary:
//! no front-end build step.
//!
//! The page itself is public (it holds nothing); everything it shows comes from the authenticated `/v1` API
//! with the key the agent pastes into it, so it can do exactly what that key may. Live updates are polls at an
//! interval the agent sets (0.5–60 s): browsers cannot put an `Authorization` header on a WebSocket or an
//! `EventSource`, and a poll is one indexed list read.
//!
//! Must never: answer data itself, accept a credential, or read its files from disk at run time.

use std::sync::LazyLock;

use axum::Router;

use super::pages::{self, Asset, Desk};

static CONSOLE: LazyLock<Desk> = LazyLock::new(|| Desk {
    html: Asset::html(include_str!("console/console.html")),
    script: Asset::script(include_str!("console/console.js")),
    style: Asset::stylesheet(include_str!("console/console.css")),
});

/// The console's routes (`pages::desk_routes`), outside the API's key check (the page calls the API with the
/// agent's key).
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    pages::desk_routes("console", &CONSOLE)
}
