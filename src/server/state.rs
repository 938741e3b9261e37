//! [`AppState`]: what every HTTP handler can reach. Built once by the application (`crate::app`).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Authenticator;
use crate::service::Service;
use crate::wechat::Wechat;

/// What every handler can reach: one shared allocation, so that the clones axum makes of it for every request
/// (one per layer and extractor that holds the state) cost one reference count each, not one per field.
#[derive(Clone)]
pub(crate) struct AppState(Arc<AppParts>);

impl AppState {
    pub(crate) fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What an [`AppState`] holds.
pub(crate) struct AppParts {
    /// The application service.
    pub(crate) service: Service,
    /// The Prometheus recorder, rendered at `/metrics`.
    pub(crate) metrics: PrometheusHandle,
    /// `[server] body_limit_bytes`.
    pub(crate) body_limit: usize,
    /// The `/rpc` endpoint.
    pub(crate) rpc: super::jsonrpc::Endpoint,
    /// The WeChat accounts.
    pub(crate) wechat: Arc<Wechat>,
    /// Who may call the API.
    pub(crate) auth: Arc<Authenticator>,
    /// The legacy adapter routes in force.
    pub(crate) legacy: Arc<super::legacy::LegacyRoutes>,
    /// Cluster mode: HMAC nonces every node shares (each legacy route keeps its own otherwise).
    pub(crate) shared_nonces: Option<crate::cluster::SharedNonces>,
}
