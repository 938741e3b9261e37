//! `POST /admin/reload`: reads the configuration file again and puts it in force ([`crate::reload`]); in
//! cluster mode on every node, each reading its own file, with each node's outcome in the answer.
//!
//! Answers: `200` with what changed (one node) or every node's outcome (cluster); `422 invalid_config` with every
//! problem in `error.issues`, the running configuration unchanged; in cluster mode `422 reload_refused` when any
//! node refused or did not answer, with `nodes` saying which.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::cluster::Control;
use crate::reload::{ReloadError, Reloader};
use crate::server::error::ApiError;

/// Reloads this node, or in cluster mode (`control`) every node.
pub(super) async fn reload(reloader: &Reloader, control: Option<&Control>) -> Response {
    if let Some(control) = control {
        return match control.reload_all().await {
            Ok(nodes) if nodes.iter().all(|n| n.ok) => Json(json!({ "nodes": nodes })).into_response(),
            Ok(nodes) => {
                let refused = nodes.iter().filter(|n| !n.ok).count();
                let message = format!("{refused} of {} nodes did not reload; see nodes", nodes.len());
                let body = json!({
                    "error": { "code": "reload_refused", "message": message },
                    "nodes": nodes,
                });
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster: reload not sent to the nodes");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cluster_unavailable",
                    "the nodes could not be told to reload; nothing was reloaded by this request",
                )
                .into_response()
            }
        };
    }
    match reloader.reload().await {
        Ok(reloaded) => Json(reloaded).into_response(),
        Err(e) => refusal(&e).into_response(),
    }
}

/// The answer to a refused reload: `409` when there is no file to read, else `422`, with every problem.
fn refusal(e: &ReloadError) -> (StatusCode, Json<serde_json::Value>) {
    let status = match e {
        ReloadError::NoFile => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(json!({ "error": e.detail() })))
}
