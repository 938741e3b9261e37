//! The HTTP listener: the native REST API ([`rest`]), JSON-RPC at `/rpc` ([`jsonrpc`]), the WeChat callback URL
//! ([`wechat`]), the legacy adapters' routes ([`legacy`]), health and metrics ([`health`]), behind the request
//! metrics and deadline middleware ([`observe`]). Beside it: the gRPC listener ([`grpc`]) and the admin listener
//! ([`admin`]).
//!
//! [`start`] opens the store, binds the listener and serves in the background; [`Running::shutdown`] stops
//! accepting, lets in-flight requests finish within `server.shutdown_grace`, then returns.

mod admin;
mod admin_api;
mod body;
pub mod error;
mod grpc;
mod grpc_edge;
mod health;
pub mod jsonrpc;
mod jsonrpc_http;
mod jsonrpc_notify;
mod legacy;
mod observe;
mod rest;
mod wechat;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::service::Service;
use crate::store::{self, StoreError, StoreSettings};
use crate::telemetry;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    service: Service,
    metrics: PrometheusHandle,
    body_limit: usize,
    rpc: jsonrpc_http::Endpoint,
    wechat: Arc<crate::wechat::Wechat>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened or migrated.
    #[error("cannot open the conversation store")]
    Store(#[from] StoreError),
    /// A legacy adapter file is missing or invalid.
    #[error(transparent)]
    Adapters(#[from] crate::legacy::AdapterFilesError),
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The WeChat accounts could not be set up.
    #[error("cannot set up the wechat accounts")]
    Wechat(#[from] crate::wechat::WechatError),
    /// Triage is configured but its model or knowledge base could not be loaded.
    #[error("cannot load triage")]
    Triage(#[source] protofuse_triage::TriageError),
    /// A dispatch destination could not be built.
    #[error(transparent)]
    Dispatch(#[from] crate::dispatch::DispatchError),
}

/// A server serving in the background.
pub struct Running {
    addr: SocketAddr,
    service: Service,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    /// Stops the gRPC and admin listeners and live subscriptions.
    stop_others: watch::Sender<bool>,
    rpc_stop: jsonrpsee::server::ServerHandle,
    others: Vec<JoinHandle<()>>,
    grace: Duration,
    dispatcher: Arc<Dispatcher>,
    wechat: Arc<crate::wechat::Wechat>,
}

impl Running {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The application service the server calls, for in-process use (tests, embedding).
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound admin (health, metrics) address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Stops accepting, waits for in-flight requests up to the grace period, and returns.
    pub async fn shutdown(self) {
        self.service.start_draining();
        let _ = self.stop_others.send(true);
        let _ = self.rpc_stop.stop();
        let _ = self.stop.send(());
        let _ = self.task.await;
        for task in self.others {
            let abort = task.abort_handle();
            if tokio::time::timeout(self.grace, task).await.is_err() {
                tracing::warn!("shutdown grace elapsed; closing remaining gRPC/admin connections");
                abort.abort();
            }
        }
        // Ingress is closed: late WeChat answers finish (they store replies, which queue deliveries), then
        // in-flight deliveries drain and the rest stays queued.
        self.wechat.drain(self.grace).await;
        self.dispatcher.shutdown().await;
    }
}

/// Opens the store named in `config`, binds `config.server.listen` and serves until shut down.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    // Installs the recorder first: metric handles taken before it exists (the fuses take theirs when built)
    // would record nothing.
    let metrics = telemetry::metrics_handle();
    let settings = store_settings(config);
    let adapters = crate::legacy::load_adapters(&config.legacy.adapters)?;
    let store: Arc<dyn store::Store> = Arc::from(store::open(&settings).await?);
    let kf = crate::wechat::kf_clients(&config.wechat)?;
    let triage = load_triage(config)?;
    let events = crate::events::EventBus::new(crate::events::DEFAULT_CAPACITY);
    let outbound = crate::dispatch::Outbound {
        adapters: &adapters,
        kf: &kf,
        triage: triage.as_ref(),
        events: Some(&events),
    };
    let dispatcher = Arc::new(Dispatcher::build(&config.dispatch, &outbound, store.clone())?);
    let service = Service::with_dispatcher(store, dispatcher.clone(), events);
    let wechat = Arc::new(crate::wechat::Wechat::build(
        &config.wechat,
        triage.as_ref(),
        service.clone(),
        &kf,
    )?);
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let (rpc_stop_handle, rpc_stop) = jsonrpsee::server::stop_channel();
    let state = AppState {
        service: service.clone(),
        metrics,
        body_limit: config.server.body_limit_bytes,
        rpc: jsonrpc_http::Endpoint::new(&config.jsonrpc, service.clone(), rpc_stop_handle),
        wechat: Arc::clone(&wechat),
    };
    let (stop_others, stopping) = watch::channel(false);
    let (grpc_addr, grpc_task) = grpc::spawn(&config.grpc, service.clone(), stopping.clone()).await?;
    let (admin_addr, admin_task) = admin::spawn(&config.admin, dispatcher.clone(), state.clone(), stopping).await?;
    let app = router(state, config.server.request_timeout, adapters);
    dispatcher.start();
    let (stop, stopped) = oneshot::channel();
    let draining = service.clone();
    let upkeep = tokio::spawn(observe::upkeep(telemetry::metrics_handle()));
    let grace = config.server.shutdown_grace;
    let task = tokio::spawn(async move {
        serve(listener, app, draining, stopped, grace).await;
        upkeep.abort();
    });
    tracing::info!(%addr, store = service.store_backend(), "serving HTTP");
    Ok(Running {
        addr,
        service,
        stop,
        task,
        grpc_addr,
        admin_addr,
        stop_others,
        rpc_stop,
        others: vec![grpc_task, admin_task],
        grace,
        dispatcher,
        wechat,
    })
}

/// Loads triage once if a WeChat account or a dispatch destination uses it.
fn load_triage(config: &Config) -> Result<Option<Arc<protofuse_triage::Triage>>, StartError> {
    let wanted = config.wechat.accounts.iter().any(|a| a.triage)
        || config
            .dispatch
            .destinations
            .iter()
            .any(|d| d.kind == crate::config::DestinationKind::Triage);
    if !wanted {
        return Ok(None);
    }
    let triage = protofuse_triage::Triage::load(&config.triage).map_err(StartError::Triage)?;
    Ok(Some(Arc::new(triage)))
}

/// The store settings of `config`.
pub fn store_settings(config: &Config) -> StoreSettings {
    StoreSettings {
        url: config.store.url.clone(),
        max_connections: config.store.max_connections,
        acquire_timeout: config.store.acquire_timeout,
        sqlite_synchronous: config.store.sqlite_synchronous,
    }
}

/// The full HTTP application.
pub(crate) fn router(
    state: AppState,
    request_timeout: Duration,
    adapters: Vec<protofuse_legacy::LegacyAdapter>,
) -> Router {
    Router::new()
        .merge(rest::routes())
        .merge(jsonrpc_http::routes())
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
