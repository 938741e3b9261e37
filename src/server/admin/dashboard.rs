//! The operator dashboard: `GET /dashboard` (the page), `/dashboard/dashboard.js`, `/dashboard/dashboard.css` and
//! the shared `/dashboard/desk.js`, on the admin listener. Plain JavaScript and CSS in `dashboard/`, compiled
//! into the binary: no front-end build step, no chart library (sparklines are SVG the script draws).
//!
//! The page itself is public on that listener (it holds nothing); what it shows comes from the `/admin` API
//! with the admin token the operator pastes (destinations, dead letters, importers), and the ingest rate from
//! `/metrics` (the stored-messages counter, sampled at each refresh).
//!
//! Must never: answer data itself, accept a credential, or read its files from disk at run time.

use std::sync::LazyLock;

use axum::Router;

use crate::server::pages::{self, Asset, Desk};

static DASHBOARD: LazyLock<Desk> = LazyLock::new(|| Desk {
    html: Asset::html(include_str!("dashboard/dashboard.html")),
    script: Asset::script(include_str!("dashboard/dashboard.js")),
    style: Asset::stylesheet(include_str!("dashboard/dashboard.css")),
});

/// The dashboard's routes (`pages::desk_routes`), outside the admin token check (the page calls the API with
/// the operator's token).
pub(super) fn routes() -> Router {
    pages::desk_routes("dashboard", &DASHBOARD)
}
