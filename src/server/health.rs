//! Liveness, readiness and metrics endpoints.
//!
//! - `/healthz`: 200 while the process serves HTTP at all (a liveness probe).
//! - `/readyz`: 200 when the store answers and shutdown has not begun; 503 otherwise (a readiness probe).
//! - `/metrics`: Prometheus text exposition.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use crate::service::NotReady;

/// `/healthz` and `/readyz`, plus `/metrics` when `with_metrics` (not on the public listener: metrics reveal
/// traffic volumes).
pub(crate) fn routes_with(with_metrics: bool) -> axum::Router<AppState> {
    let probes = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if with_metrics {
        probes.route("/metrics", get(metrics))
    } else {
        probes
    }
}

/// All three endpoints.
pub(crate) fn routes() -> axum::Router<AppState> {
    routes_with(true)
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(app): State<AppState>) -> Response {
    match app.service.ready().await {
        Ok(()) => axum::Json(json!({"status": "ready", "store": app.service.store_backend()})).into_response(),
        Err(NotReady::Draining) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "shutting down").into_response()
        }
        Err(NotReady::Store(e)) => {
            tracing::warn!(error = %e, "readiness check: store unreachable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "store unreachable",
            )
            .into_response()
        }
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let text = app.metrics.render();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}
