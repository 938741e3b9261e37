//! The admin listener (`[admin] listen`): `/healthz`, `/readyz` and `/metrics` on a port operators can keep
//! private (the same endpoints stay on the main HTTP listener for existing probes), and the operators' API under
//! `/admin/` (see `api.rs`), and the operators' page over it (`/dashboard`, see `dashboard.rs`).
//!
//! Must never: serve the customer-facing API.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::AdminConfig;
use crate::server::AppState;
use crate::server::error::ApiError;

pub(crate) async fn spawn(
    config: &AdminConfig,
    commands: super::Commands,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let app = crate::server::health::routes()
        .with_state(state)
        .merge(super::api::routes(commands, config.token.as_deref()))
        .merge(super::dashboard::routes())
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() });
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    tracing::info!(%addr, "serving admin (health, metrics)");
    Ok((addr, task))
}
