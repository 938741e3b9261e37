//! The operator dashboard: `GET /dashboard` (the page), `/dashboard/dashboard.js` and `/dashboard/dashboard.css`
//! on the admin listener. Plain JavaScript and CSS in `dashboard/`, compiled into the binary: no front-end build
//! step, no chart library (sparklines are SVG the script draws).
//!
//! The page itself is public on that listener (it holds nothing); what it shows comes from the `/admin` API
//! with the admin token the operator pastes (destinations, dead letters, importers), and the ingest rate from
//! `/metrics` (the stored-messages counter, sampled at each refresh).
//!
//! Must never: answer data itself, accept a credential, or read its files from disk at run time.

use std::sync::LazyLock;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::server::pages::{self, Asset};

static PAGE: LazyLock<Asset> = LazyLock::new(|| Asset::html(include_str!("dashboard/dashboard.html")));
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::script(include_str!("dashboard/dashboard.js")));
static STYLE: LazyLock<Asset> = LazyLock::new(|| Asset::stylesheet(include_str!("dashboard/dashboard.css")));

/// The dashboard's routes, outside the admin token check (the page calls the API with the operator's token).
pub(super) fn routes() -> Router {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/dashboard.js", get(script))
        .route("/dashboard/dashboard.css", get(style))
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
