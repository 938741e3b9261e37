//! `GET /admin/importers`: the progress of each binlog importer (`protofuse-migrate`) writing into this store,
//! read from the checkpoint it commits with every batch: snapshot finished or not, rows and events applied,
//! binlog position, errors, and how long ago the last applied source event was written.
//!
//! Must never: write the importer's tables, or reach the importer's source (the true lag behind the source's
//! head needs the source: `protofuse-migrate status` reports it).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::dispatch::Dispatcher;
use crate::server::error::ApiError;
use protofuse_store::ImportProgress;

/// The route, for the admin API to merge inside its token check.
pub(super) fn routes<S: Clone + Send + Sync + 'static>(dispatcher: Arc<Dispatcher>) -> Router<S> {
    Router::new()
        .route("/admin/importers", get(importers))
        .with_state(dispatcher)
}

#[derive(Serialize)]
struct ImporterView {
    #[serde(flatten)]
    progress: ImportProgress,
    /// Seconds since the last applied source event was written at the source: the lag while the source is busy,
    /// growing while it is quiet.
    last_event_age_seconds: Option<i64>,
}

async fn importers(State(dispatcher): State<Arc<Dispatcher>>) -> Result<Json<serde_json::Value>, ApiError> {
    let progress = dispatcher.store().import_progress().await.map_err(|e| {
        tracing::warn!(error = %e, "admin API: importer progress unreadable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store is unavailable",
        )
    })?;
    let now = chrono::Utc::now().timestamp();
    let views: Vec<ImporterView> = progress
        .into_iter()
        .map(|progress| ImporterView {
            last_event_age_seconds: progress.last_event_at.map(|t| (now - t).max(0)),
            progress,
        })
        .collect();
    Ok(Json(serde_json::json!({ "importers": views })))
}
