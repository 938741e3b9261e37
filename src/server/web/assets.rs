//! `GET /web/widget.js` and `GET /web/widget.css`: the embeddable chat widget, plain JavaScript and CSS kept in
//! `assets/` and compiled into the binary, so serving it needs no Node.js, no npm and no files beside the
//! binary. A site's page loads the script with one tag; the script loads the stylesheet.
//!
//! Caching: the script's URL is the one sites paste into their pages, so it cannot carry a version; it is
//! cached briefly and revalidated by `ETag` (a `304` costs no body). The stylesheet's URL carries its content
//! hash (`?v=`, written into the script as it is served), so a matching one is cached for a year and a new
//! binary's stylesheet is a new URL. Both are public and carry no credential: any page may load them (`*`).
//!
//! Must never: read assets from disk at run time, or serve anything but these two files.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::server::pages::{self, Asset, version};

/// The widget's source, as committed; `CSS_VERSION_SLOT` is replaced with the stylesheet's version.
const WIDGET_JS: &str = include_str!("assets/widget.js");
const WIDGET_CSS: &str = include_str!("assets/widget.css");
const CSS_VERSION_SLOT: &str = "__PROTOFUSE_CSS_VERSION__";

/// The script: short, so a fixed widget reaches every page within minutes; revalidation is a `304`.
const SCRIPT_CACHE: &str = "public, max-age=300";
/// The stylesheet at its current `?v=`: its contents never change under that URL.
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";

static CSS: LazyLock<Asset> = LazyLock::new(|| Asset::stylesheet(WIDGET_CSS));
static JS: LazyLock<Asset> =
    LazyLock::new(|| Asset::script(&WIDGET_JS.replace(CSS_VERSION_SLOT, &version(WIDGET_CSS))));

/// The widget's routes; public, outside the channel's CORS list (a `<script>` tag needs none, and a site that
/// loads it with `crossorigin` gets `*`).
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/web/widget.js", get(script))
        .route("/web/widget.css", get(stylesheet))
}

#[derive(Deserialize)]
struct Versioned {
    v: Option<String>,
}

async fn script(headers: HeaderMap) -> Response {
    serve(&JS, &headers, SCRIPT_CACHE)
}

async fn stylesheet(Query(query): Query<Versioned>, headers: HeaderMap) -> Response {
    let current = query.v.is_some_and(|v| CSS.etag.trim_matches('"') == v);
    // An old or missing version gets today's file, cached as briefly as the script that names it.
    serve(&CSS, &headers, if current { VERSIONED_CACHE } else { SCRIPT_CACHE })
}

/// The widget's files are public and carry no credential: any page may load them.
fn serve(asset: &'static Asset, request: &HeaderMap, cache: &'static str) -> Response {
    let mut response = pages::serve(asset, request, cache);
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    // Pages that isolate themselves (`Cross-Origin-Embedder-Policy: require-corp`) may still embed it.
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_the_stylesheet_it_was_built_with() {
        assert!(!JS.body.contains(CSS_VERSION_SLOT));
        assert!(JS.body.contains(&format!("'{}'", CSS.etag.trim_matches('"'))));
        assert_eq!(
            WIDGET_JS.matches(CSS_VERSION_SLOT).count(),
            1,
            "one slot, in the script"
        );
    }
}
