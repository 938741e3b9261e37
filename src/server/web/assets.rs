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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

/// The widget's source, as committed; `CSS_VERSION_SLOT` is replaced with the stylesheet's version.
const WIDGET_JS: &str = include_str!("assets/widget.js");
const WIDGET_CSS: &str = include_str!("assets/widget.css");
const CSS_VERSION_SLOT: &str = "__PROTOFUSE_CSS_VERSION__";

/// The script: short, so a fixed widget reaches every page within minutes; revalidation is a `304`.
const SCRIPT_CACHE: &str = "public, max-age=300";
/// The stylesheet at its current `?v=`: its contents never change under that URL.
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";

/// One served file: its body and its `ETag`.
struct Asset {
    body: String,
    etag: String,
    content_type: &'static str,
}

impl Asset {
    fn new(body: String, content_type: &'static str) -> Self {
        let etag = format!("\"{}\"", version(&body));
        Self {
            body,
            etag,
            content_type,
        }
    }
}

static CSS: LazyLock<Asset> = LazyLock::new(|| Asset::new(WIDGET_CSS.to_owned(), "text/css; charset=utf-8"));
static JS: LazyLock<Asset> = LazyLock::new(|| {
    let body = WIDGET_JS.replace(CSS_VERSION_SLOT, &version(WIDGET_CSS));
    Asset::new(body, "text/javascript; charset=utf-8")
});

/// A content hash (FNV-1a, 64 bits) in hex: a cache key, not a security property.
fn version(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

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

fn serve(asset: &'static Asset, request: &HeaderMap, cache: &'static str) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| matches_etag(tags, &asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body.as_str()).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    // Pages that isolate themselves (`Cross-Origin-Embedder-Policy: require-corp`) may still embed it.
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `If-None-Match`: a list of tags, weak or strong, or `*` (RFC 9110 §13.1.2, weak comparison).
fn matches_etag(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
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

    #[test]
    fn etags_compare_weakly_and_in_lists() {
        assert!(matches_etag("\"abc\"", "\"abc\""));
        assert!(matches_etag("W/\"x\", W/\"abc\"", "\"abc\""));
        assert!(matches_etag("*", "\"abc\""));
        assert!(!matches_etag("\"abd\"", "\"abc\""));
        assert_ne!(version("a"), version("b"));
    }
}
