//! The HTTP listener (`[server] listen`): the router of every HTTP protocol (REST, JSON-RPC, WeChat callbacks,
//! legacy adapter routes, health and metrics) behind the request metrics and deadline middleware, and its
//! graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::state::AppState;
use super::{error, health, legacy, observe, rest, wechat};
use crate::service::Service;

/// Binds `addr` and serves `state`'s application until `stop` fires; then in-flight requests finish within
/// `grace`. Returns the bound address and the serving task.
pub(crate) async fn spawn(
    addr: SocketAddr,
    state: AppState,
    request_timeout: Duration,
    adapters: Vec<protofuse_legacy::LegacyAdapter>,
    stop: oneshot::Receiver<()>,
    grace: Duration,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let service = state.service.clone();
    let app = router(state, request_timeout, adapters);
    let upkeep = tokio::spawn(observe::upkeep(crate::telemetry::metrics_handle()));
    let task = tokio::spawn(async move {
        serve(listener, app, service, stop, grace).await;
        upkeep.abort();
    });
    Ok((addr, task))
}

/// The full HTTP application.
fn router(state: AppState, request_timeout: Duration, adapters: Vec<protofuse_legacy::LegacyAdapter>) -> Router {
    Router::new()
        .merge(rest::routes())
        .route(
            "/rpc",
            axum::routing::any(|State(app): State<AppState>, request: Request| app.rpc.call(request)),
        )
        .merge(health::routes())
        .merge(legacy::routes(adapters))
        .merge(wechat::routes())
        .fallback(|| async { error::ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { error::ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(request_timeout, observe::deadline))
        .layer(axum::middleware::from_fn(observe::record))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            error::ApiError::internal().into_response()
        }))
        .with_state(state)
}

async fn serve(listener: TcpListener, app: Router, service: Service, stop: oneshot::Receiver<()>, grace: Duration) {
    let (begun_tx, begun_rx) = oneshot::channel::<()>();
    let draining = service.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.await;
        draining.start_draining();
        let _ = begun_tx.send(());
    });
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return log_exit(result),
        _ = begun_rx => tracing::info!(grace = ?grace, "shutting down: finishing in-flight requests"),
    }
    match tokio::time::timeout(grace, server).await {
        Ok(result) => log_exit(result),
        Err(_) => {
            tracing::warn!(grace = ?grace, "shutdown grace elapsed; closing remaining connections");
        }
    }
}

fn log_exit(result: std::io::Result<()>) {
    match result {
        Ok(()) => tracing::info!("HTTP server stopped"),
        Err(e) => tracing::error!(error = %e, "HTTP server failed"),
    }
}
