//! The admin listener (`[admin] listen`): `/healthz`, `/readyz` and `/metrics` on a port operators can keep
//! private (the same endpoints stay on the main HTTP listener for existing probes), and the operators' API under
//! `/admin/` (see [`super::admin_api`]).
//!
//! Must never: serve the customer-facing API.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{AppState, StartError, health};
use crate::dispatch::Dispatcher;
use crate::server::AdminConfig;

pub(super) async fn spawn(
    config: &AdminConfig,
    dispatcher: Arc<Dispatcher>,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let addr = config.listen;
    let bind = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let app = health::routes()
        .with_state(state)
        .merge(super::admin_api::routes(dispatcher, config.token.as_deref()));
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
