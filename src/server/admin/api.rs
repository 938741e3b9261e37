//! The admin API on the admin listener, under `/admin/`: destinations with breaker state, counters and queue
//! depth; breaker overrides; dead letters (list, inspect, replay, discard); the triage models in force and
//! their reload; the configuration's reload (`reload.rs`). Guarded by `[admin] token` as a
//! bearer token when one is set.
//!
//! Must never: be mounted on the public listener.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::decisions::Decisions;
use crate::dispatch::{Dispatcher, Override};
use crate::server::error::ApiError;
use protofuse_store::outbox::{DeadLetter, DeadLetterFilter};

/// What the admin API reads and commands.
pub(crate) struct Commands {
    /// The destinations, their fuses and the outbox.
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// Built-in triage, when a WeChat account or a destination uses it.
    pub(crate) decisions: Option<Arc<Decisions>>,
    /// Reads the configuration file again and puts it in force.
    pub(crate) reloader: Arc<crate::reload::Reloader>,
    /// Cluster mode: the other nodes and the commands every node applies.
    pub(crate) control: Option<Arc<crate::cluster::Control>>,
}

#[derive(Clone)]
struct Admin {
    dispatcher: Arc<Dispatcher>,
    decisions: Option<Arc<Decisions>>,
    reloader: Arc<crate::reload::Reloader>,
    control: Option<Arc<crate::cluster::Control>>,
    /// SHA-256 of the token: compared by digest so the comparison's timing does not leak the token's prefix.
    token: Option<[u8; 32]>,
}

/// The `/admin` routes.
pub(super) fn routes(commands: Commands, token: Option<&str>) -> Router {
    let admin = Admin {
        dispatcher: commands.dispatcher,
        decisions: commands.decisions,
        reloader: commands.reloader,
        control: commands.control,
        token: token.map(|t| Sha256::digest(t.as_bytes()).into()),
    };
    Router::new()
        .route("/admin/destinations", get(destinations))
        .route("/admin/destinations/{name}/breaker", put(set_breaker))
        .route("/admin/dead-letters", get(list_dead))
        .route("/admin/dead-letters/replay", post(replay_many))
        .route("/admin/dead-letters/{id}", get(show_dead).delete(discard_dead))
        .route("/admin/dead-letters/{id}/replay", post(replay_one))
        .route("/admin/nodes", get(nodes))
        .route("/admin/triage", get(triage_models))
        .route("/admin/triage/reload", post(reload_triage))
        .route("/admin/reload", post(reload))
        .merge(super::importers::routes(Arc::clone(&admin.dispatcher)))
        .route_layer(axum::middleware::from_fn_with_state(admin.clone(), authorize))
        .with_state(admin)
}

async fn reload(State(admin): State<Admin>) -> Response {
    super::reload::reload(&admin.reloader, admin.control.as_deref()).await
}

async fn authorize(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    if let Some(expected) = admin.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| <[u8; 32]>::from(Sha256::digest(t.as_bytes())));
        if given != Some(expected) {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "admin token missing or wrong").into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

fn unavailable(e: &protofuse_store::StoreError) -> ApiError {
    tracing::warn!(error = %e, "admin API: store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store is unavailable",
    )
}

#[derive(Serialize)]
struct DestinationView {
    name: String,
    #[serde(flatten)]
    fuse: crate::dispatch::FuseSnapshot,
    pending: u64,
    oldest_age_seconds: f64,
    dead_letters: u64,
}

async fn destinations(State(admin): State<Admin>) -> Result<Json<serde_json::Value>, ApiError> {
    let now = chrono::Utc::now();
    let depths = admin
        .dispatcher
        .store()
        .outbox_depth(now)
        .await
        .map_err(|e| unavailable(&e))?;
    let views: Vec<DestinationView> = admin
        .dispatcher
        .destinations()
        .into_iter()
        .map(|d| {
            let depth = depths
                .iter()
                .find(|x| x.destination == d.name)
                .cloned()
                .unwrap_or_default();
            DestinationView {
                name: d.name,
                fuse: d.fuse,
                pending: depth.pending,
                oldest_age_seconds: depth.oldest.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0)),
                dead_letters: depth.dead,
            }
        })
        .collect();
    Ok(Json(serde_json::json!({ "destinations": views })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerRequest {
    r#override: Override,
}

async fn set_breaker(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    body: Result<Json<BreakerRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let fuse = admin.dispatcher.fuse(&name).ok_or_else(|| unknown_destination(&name))?;
    fuse.set_override(body.r#override);
    // Every node's breaker for this destination: one command, not one per node.
    if let Some(control) = &admin.control
        && let Err(e) = control.set_breaker(&name, body.r#override).await
    {
        tracing::warn!(error = %e, "cluster: breaker override not sent to the other nodes");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            "set on this node only: the other nodes could not be told",
        ));
    }
    Ok(Json(
        serde_json::json!({ "name": name, "state": fuse.state(), "override": fuse.override_state() }),
    ))
}

/// The nodes this one hears from (cluster mode), each with its breakers; on a single node, `cluster: false`.
async fn nodes(State(admin): State<Admin>) -> Json<serde_json::Value> {
    match &admin.control {
        Some(control) => Json(serde_json::json!({ "cluster": true, "nodes": control.nodes() })),
        None => Json(serde_json::json!({ "cluster": false, "nodes": [] })),
    }
}

fn triage_of(admin: &Admin) -> Result<Arc<Decisions>, ApiError> {
    admin.decisions.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "triage_not_enabled",
            "built-in triage is not used: no WeChat account or destination has triage",
        )
    })
}

async fn triage_models(State(admin): State<Admin>) -> Result<Json<crate::decisions::Models>, ApiError> {
    Ok(Json(triage_of(&admin)?.models()))
}

/// Loads the triage models again from their files and swaps them in; a file that does not load is a `422` and
/// the models in force stay.
async fn reload_triage(State(admin): State<Admin>) -> Result<Json<crate::decisions::Models>, ApiError> {
    let decisions = triage_of(&admin)?;
    let reloaded = tokio::task::spawn_blocking(move || decisions.reload())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reload_failed",
                "the reload panicked",
            )
        })?;
    reloaded.map(Json).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "triage_not_reloaded",
            format!("{}; the models in force stay", crate::decisions::error_chain(&e)),
        )
    })
}

fn unknown_destination(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "destination_not_found",
        format!("no destination named `{name}`"),
    )
}

#[derive(Serialize)]
struct DeadLetterView {
    id: i64,
    message_id: String,
    destination: String,
    attempts: u32,
    last_error: String,
    created_at: String,
    dead_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<protofuse_model::Message>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(d: DeadLetter) -> Self {
        Self {
            id: d.id,
            message_id: d.message_id,
            destination: d.destination,
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at.to_rfc3339(),
            dead_at: d.dead_at.to_rfc3339(),
            message: d.message,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    destination: Option<String>,
    #[serde(default)]
    after: i64,
    limit: Option<u32>,
}

async fn list_dead(
    State(admin): State<Admin>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    let items = admin
        .dispatcher
        .store()
        .dead_letters(q.destination.as_deref(), q.after, limit)
        .await
        .map_err(|e| unavailable(&e))?;
    let next = (items.len() >= limit.clamp(1, 500) as usize)
        .then(|| items.last().map(|d| d.id))
        .flatten();
    let items: Vec<DeadLetterView> = items.into_iter().map(Into::into).collect();
    Ok(Json(serde_json::json!({ "items": items, "next_after": next })))
}

async fn show_dead(
    State(admin): State<Admin>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<DeadLetterView>, ApiError> {
    let id = dead_letter_id(id)?;
    let found = admin
        .dispatcher
        .store()
        .dead_letter(id)
        .await
        .map_err(|e| unavailable(&e))?;
    found.map(|d| Json(d.into())).ok_or_else(|| dead_letter_not_found(id))
}

/// A dead letter's id from the path; anything but a number is the shared 400, not axum's plain-text rejection.
fn dead_letter_id(id: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|_| ApiError::bad_request("invalid_id", "a dead letter id is a number"))
}

fn dead_letter_not_found(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "dead_letter_not_found",
        format!("no dead letter {id}"),
    )
}

/// `{"ids": [..]}`, `{"destination": ".."}`, or `{"all": true}`; an empty body is refused so that a stray call
/// cannot replay everything.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    ids: Option<Vec<i64>>,
    destination: Option<String>,
    #[serde(default)]
    all: bool,
}

async fn replay_many(
    State(admin): State<Admin>,
    body: Result<Json<ReplayRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    if body.ids.is_none() && body.destination.is_none() && !body.all {
        return Err(ApiError::bad_request(
            "invalid_request",
            "say which dead letters to replay: ids, destination, or all: true",
        ));
    }
    let filter = DeadLetterFilter {
        ids: body.ids,
        destination: body.destination,
    };
    replay(&admin, &filter).await
}

async fn replay_one(State(admin): State<Admin>, id: Result<Path<i64>, PathRejection>) -> Result<Response, ApiError> {
    let id = dead_letter_id(id)?;
    let filter = DeadLetterFilter {
        ids: Some(vec![id]),
        destination: None,
    };
    let answer = replay(&admin, &filter).await?;
    if answer.0["replayed"] == 0 {
        return Err(dead_letter_not_found(id));
    }
    Ok(answer.into_response())
}

async fn replay(admin: &Admin, filter: &DeadLetterFilter) -> Result<Json<serde_json::Value>, ApiError> {
    let store = admin.dispatcher.store();
    let moved = store
        .replay_dead_letters(filter, chrono::Utc::now())
        .await
        .map_err(|e| unavailable(&e))?;
    tracing::info!(replayed = moved, "dead letters replayed by operator");
    for d in admin.dispatcher.destinations() {
        admin.dispatcher.wake(&[d.name]);
    }
    Ok(Json(serde_json::json!({ "replayed": moved })))
}

async fn discard_dead(
    State(admin): State<Admin>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = dead_letter_id(id)?;
    let filter = DeadLetterFilter {
        ids: Some(vec![id]),
        destination: None,
    };
    let gone = admin
        .dispatcher
        .store()
        .discard_dead_letters(&filter)
        .await
        .map_err(|e| unavailable(&e))?;
    if gone == 0 {
        return Err(dead_letter_not_found(id));
    }
    Ok(StatusCode::NO_CONTENT)
}
