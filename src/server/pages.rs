//! Static files compiled into the binary and served with an `ETag` (a `304` when the browser has them): the
//! widget's script and stylesheet, the agent console and the operator dashboard. What is committed is what is
//! served: no front-end build step, and nothing read from disk at run time.
//!
//! Owns the answer for one file (content type, cache headers, revalidation), the security headers of the
//! pages that hold a credential, and the one serving path of those pages ([`Desk`], [`desk_routes`]) with the
//! script they share (`pages/desk.js`: settings, the API client, the sign-in form). Must never: read files at
//! run time, or decide which pages exist (each page's module does: `console.rs`, `admin/dashboard.rs`).

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the agent console and the operator dashboard share, served to each under its own path.
static DESK_SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::script(include_str!("pages/desk.js")));

/// A page a person signs in to with a pasted credential: its HTML, its script and its stylesheet.
pub(crate) struct Desk {
    pub(crate) html: Asset,
    pub(crate) script: Asset,
    pub(crate) style: Asset,
}

/// `desk` served under `/{name}`: the page at `/{name}` (with [`credential_page`]'s headers), then
/// `/{name}/desk.js` (the shared script, which the page loads first), `/{name}/{name}.js` and
/// `/{name}/{name}.css`. Each page keeps its files under its own path, so it can sit on its own listener.
pub(crate) fn desk_routes<S: Clone + Send + Sync + 'static>(name: &str, desk: &'static LazyLock<Desk>) -> Router<S> {
    Router::new()
        .route(
            &format!("/{name}"),
            get(move |headers: HeaderMap| async move { credential_page(&desk.html, &headers) }),
        )
        .route(
            &format!("/{name}/desk.js"),
            get(|headers: HeaderMap| async move { serve(&DESK_SCRIPT, &headers, REVALIDATE) }),
        )
        .route(
            &format!("/{name}/{name}.js"),
            get(move |headers: HeaderMap| async move { serve(&desk.script, &headers, REVALIDATE) }),
        )
        .route(
            &format!("/{name}/{name}.css"),
            get(move |headers: HeaderMap| async move { serve(&desk.style, &headers, REVALIDATE) }),
        )
}

/// One served file: its body, its `ETag` and its content type.
pub(crate) struct Asset {
    pub(crate) body: String,
    pub(crate) etag: String,
    content_type: &'static str,
}

impl Asset {
    pub(crate) fn new(body: String, content_type: &'static str) -> Self {
        let etag = format!("\"{}\"", version(&body));
        Self {
            body,
            etag,
            content_type,
        }
    }

    /// An HTML page.
    pub(crate) fn html(body: &str) -> Self {
        Self::new(body.to_owned(), "text/html; charset=utf-8")
    }

    /// A script.
    pub(crate) fn script(body: &str) -> Self {
        Self::new(body.to_owned(), "text/javascript; charset=utf-8")
    }

    /// A stylesheet.
    pub(crate) fn stylesheet(body: &str) -> Self {
        Self::new(body.to_owned(), "text/css; charset=utf-8")
    }
}

/// A content hash (FNV-1a, 64 bits) in hex: a cache key, not a security property.
pub(crate) fn version(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// `asset`, or `304` when `request` already holds this version; cached as `cache` says.
pub(crate) fn serve(asset: &'static Asset, request: &HeaderMap, cache: &'static str) -> Response {
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
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Revalidated on every load: a new binary's page is seen at once, an unchanged one costs a `304`.
pub(crate) const REVALIDATE: &str = "no-cache";

/// A page an operator or agent pastes a credential into: only its own scripts run, it calls only its own
/// origin, no other site may frame it (a click on "replay" or "take" is the person's own), and its URL is not
/// sent onward.
pub(crate) fn credential_page(asset: &'static Asset, request: &HeaderMap) -> Response {
    let mut response = serve(asset, request, REVALIDATE);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
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
    fn etags_compare_weakly_and_in_lists() {
        assert!(matches_etag("\"abc\"", "\"abc\""));
        assert!(matches_etag("W/\"x\", W/\"abc\"", "\"abc\""));
        assert!(matches_etag("*", "\"abc\""));
        assert!(!matches_etag("\"abd\"", "\"abc\""));
        assert_ne!(version("a"), version("b"));
    }

    #[test]
    fn a_held_version_is_not_sent_again() {
        let asset: &'static Asset = Box::leak(Box::new(Asset::script("let x = 1;")));
        let mut request = HeaderMap::new();
        assert_eq!(serve(asset, &request, REVALIDATE).status(), StatusCode::OK);
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&asset.etag).unwrap());
        assert_eq!(serve(asset, &request, REVALIDATE).status(), StatusCode::NOT_MODIFIED);
    }
}
