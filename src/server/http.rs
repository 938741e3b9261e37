//! The HTTP listeners: the public one (`[server] listen`: WeChat callbacks, legacy adapter routes, health) and
//! the API (`/v1`, `/rpc`, behind API keys) on `[api] listen`, or on the public one when that is unset. Each is
//! an application of routes behind the request metrics and deadline middleware, served by `listen.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::listen::{self, Limits};
use super::state::AppState;
use super::stream::Streams;
use super::{auth, error, health, legacy, observe, rest, web, wechat};

/// The public routes: what the internet must reach (WeChat callbacks and the web channel when it is on; the
/// legacy adapter routes are the public application's fallback, see [`application`]).
pub(crate) fn public_routes(web: Option<&std::sync::Arc<web::Web>>) -> Router<AppState> {
    let routes = Router::new().merge(wechat::routes());
    match web {
        Some(web) => routes.merge(web::routes(web)),
        None => routes,
    }
}

/// The API's routes (`/v1`, `/rpc`), each behind API authentication.
pub(crate) fn api_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(rest::routes())
        .route(
            "/rpc",
            axum::routing::any(
                |State(app): State<AppState>, request: Request| async move { app.rpc.call(request).await },
            ),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_key))
        .merge(super::console::routes())
}

/// `/healthz`, `/readyz`, and `/metrics` when `with_metrics`.
pub(crate) fn health_routes(with_metrics: bool) -> Router<AppState> {
    health::routes_with(with_metrics)
}

/// Which listener an application serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The public listener: a path no route matches may be a legacy adapter's.
    Public,
    /// The API's own listener.
    Api,
}

/// `routes` as a complete application: the shared error answers (on the public listener after the legacy
/// adapter routes, which a reload swaps), the request deadline, per-route metrics and the panic guard.
pub(crate) fn application(
    routes: Router<AppState>,
    state: AppState,
    request_timeout: Duration,
    listener: Listener,
) -> Router {
    let routes = match listener {
        Listener::Public => routes.fallback(legacy::dispatch),
        Listener::Api => routes.fallback(|| async { error::ApiError::route_not_found() }),
    };
    routes
        .method_not_allowed_fallback(|| async { error::ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            observe::deadline_and_record,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            error::ApiError::internal().into_response()
        }))
        .with_state(state)
}

/// The paths whose `GET` the public listener serves outside hyper (`stream.rs`): the web channel's event stream
/// when the channel is on.
pub(crate) fn public_streams(web: Option<&std::sync::Arc<web::Web>>) -> Streams {
    match web {
        Some(_) => Streams::new(web::STREAM_PATHS),
        None => Streams::NONE,
    }
}

/// Binds `addr` and serves `app` (over TLS when `tls` is given, the `GET`s of `streams` outside hyper) under
/// `limits` until `stop` turns true; requests in flight then finish within `grace`. Returns the bound address
/// and the serving task.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn spawn(
    addr: SocketAddr,
    app: Router,
    streams: Streams,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
    grace: Duration,
    name: &'static str,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let (listener, bound) = listen::bind(addr).await?;
    let https = tls.is_some();
    let task = tokio::spawn(listen::serve(listener, app, streams, limits, tls, stop, grace, name));
    tracing::info!(addr = %bound, listener = name, https, "serving HTTP");
    Ok((bound, task))
}
