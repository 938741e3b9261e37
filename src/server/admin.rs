//! The admin listener (`[admin] listen`): `/healthz`, `/readyz` and `/metrics` on a port operators can keep
//! private. The same endpoints stay on the main HTTP listener for existing probes.
//!
//! Must never: serve the API; only health and metrics belong here.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{AppState, StartError, health};

pub(super) async fn spawn(
    addr: SocketAddr,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let bind = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let app = health::routes().with_state(state);
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
