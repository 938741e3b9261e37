//! The middleware every route passes through: the request deadline and per-route request metrics.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::error::ApiError;
use crate::telemetry::metric;

/// Bounds the request by `limit` and records it: counts requests by method, route template and status, and
/// records their latency by method and route. Labels use the route template (`/v1/conversations/{id}`), never
/// the raw path, to keep cardinality bounded.
///
/// A handler still running at the deadline is dropped and the request answered 503 `timeout` (counted as such);
/// a store write already committed stays committed, so a client retrying with its idempotency key learns the
/// outcome. One middleware for both, not two: axum clones the inner service and boxes a future per middleware
/// and request.
pub(super) async fn deadline_and_record(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let matched = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout().into_response(),
    };
    let route = matched
        .or_else(|| response.extensions().get::<RouteLabel>().map(|l| l.0.clone()))
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    metrics::counter!(metric::HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(metric::HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The route a response answered, for a handler that routes by itself (the legacy routes, swapped by a
/// reload): its configured path, as bounded as a template.
#[derive(Debug, Clone)]
pub(super) struct RouteLabel(pub(super) String);

/// Folds recorded histogram samples into the Prometheus recorder's state; without it they accumulate until the
/// next scrape.
pub(crate) async fn upkeep(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {
                crate::telemetry::process_collector().collect();
                handle.run_upkeep();
            }
            _ = stop.changed() => {}
        }
    }
}
