//! [`LegacyRoutes`]: the legacy adapter routes in force, by method and path, swapped whole by a configuration
//! reload. Owns which adapter answers a request and each route's memory of HMAC nonces; never reads a request.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::Method;
use protofuse_legacy::LegacyAdapter;

use crate::legacy::NonceGuard;
use crate::server::error::ApiError;

pub(super) struct Route {
    pub(super) adapter: LegacyAdapter,
    /// Shared with the route of the same method and path after a reload, so a reload never forgets a nonce.
    pub(super) nonces: Arc<NonceGuard>,
}

/// The legacy adapter routes in force, by method and path. Served by `dispatch` (the public listener's
/// fallback) rather than mounted one by one, so a configuration reload swaps them whole while the listener
/// runs; a request keeps the route it started with.
#[derive(Default)]
pub(crate) struct LegacyRoutes {
    current: ArcSwap<HashMap<(Method, String), Arc<Route>>>,
}

impl LegacyRoutes {
    /// Routes for `adapters`.
    pub(crate) fn new(adapters: Vec<LegacyAdapter>) -> Self {
        let routes = Self::default();
        routes.replace(adapters);
        routes
    }

    /// Puts `adapters` in force; a route with the same method and path keeps its memory of nonces.
    pub(crate) fn replace(&self, adapters: Vec<LegacyAdapter>) -> usize {
        let before = self.current.load();
        let mut routes = HashMap::new();
        for adapter in adapters {
            let key = (method(&adapter), adapter.path().to_owned());
            let nonces = before.get(&key).map_or_else(Arc::default, |r| r.nonces.clone());
            routes.insert(key, Arc::new(Route { adapter, nonces }));
        }
        let count = routes.len();
        self.current.store(Arc::new(routes));
        count
    }

    pub(super) fn find(&self, method: &Method, path: &str) -> Result<Arc<Route>, ApiError> {
        let routes = self.current.load();
        match routes.get(&(method.clone(), path.to_owned())) {
            Some(route) => Ok(route.clone()),
            None if routes.keys().any(|(_, p)| p == path) => Err(ApiError::method_not_allowed()),
            None => Err(ApiError::route_not_found()),
        }
    }
}

fn method(adapter: &LegacyAdapter) -> Method {
    match adapter.method() {
        "GET" => Method::GET,
        "PUT" => Method::PUT,
        _ => Method::POST,
    }
}
