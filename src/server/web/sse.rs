//! The fallback when a WebSocket cannot be opened: `GET /web/events` (Server-Sent Events, server → visitor)
//! and `POST /web/messages` (visitor → server), with the same session token and the same frames.
//!
//! Each event's `id:` is the message's sequence, so a browser's `EventSource` reconnects with `Last-Event-ID`
//! by itself and resumes exactly after what it saw; `?after=` serves a client switching over from a WebSocket
//! (the header wins: it is the newer of the two). A comment line every `web.heartbeat_interval` keeps proxies
//! from cutting a quiet stream and makes a vanished visitor's stream fail on the next write.
//!
//! Must never: keep a stream open past shutdown, or store anything but through `inbound.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::channel::Web;
use super::error::WebError;
use super::frames::{self, Outgoing};
use super::inbound;
use super::limits::Slot;
use super::replay::Feed;
use super::session::{self, Connect};
use crate::server::body;

/// How long a browser waits before reconnecting a dropped stream (the SSE `retry:` field).
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// `GET /web/events`.
pub(super) async fn events(
    State(web): State<Arc<Web>>,
    query: Result<Query<Connect>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Query(connect) = query.map_err(|e| WebError::Invalid(e.body_text()))?;
    let visitor = session::authenticate(&web, connect.token.as_deref(), &headers)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty());
    let after = frames::parse_seq(last_event_id.or(connect.after.as_deref()))?;
    let slot = web.limits.connect(&visitor)?;
    let ready = SseEvent::default()
        .event("ready")
        .retry(RECONNECT_AFTER)
        .data(frames::ready_frame(&visitor, after, &web.settings.greeting).to_string());
    let feed = Feed::open(web.service.clone(), &web.prompts, visitor, after);
    let stream = stream(feed, slot, web.stop.clone(), ready);
    let keep_alive = KeepAlive::new()
        .interval(web.settings.heartbeat_interval)
        .text("heartbeat");
    let mut response = Sse::new(stream).keep_alive(keep_alive).into_response();
    // nginx buffers proxied responses unless told otherwise, which would hold events back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What the stream carries between polls: the feed, the connection's slot (freed when the stream is dropped)
/// and the events of a batch not yet yielded.
struct Streaming {
    feed: Feed,
    _slot: Slot,
    stop: CancellationToken,
    queued: std::collections::VecDeque<SseEvent>,
    ended: bool,
}

fn message_event(message: &protofuse_model::Message) -> SseEvent {
    SseEvent::default()
        .id(frames::seq(message.id))
        .event("message")
        .data(frames::message_frame(message).to_string())
}

fn stream(
    feed: Feed,
    slot: Slot,
    stop: CancellationToken,
    ready: SseEvent,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let state = Streaming {
        feed,
        _slot: slot,
        stop,
        queued: [ready].into(),
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.queued.pop_front() {
                return Some((Ok(event), state));
            }
            if state.ended {
                return None;
            }
            let batch = tokio::select! {
                () = state.stop.cancelled() => return None,
                batch = state.feed.next() => batch,
            };
            match batch {
                Ok(messages) => state.queued.extend(messages.iter().map(message_event)),
                Err(e) => {
                    // The browser reconnects after `retry` and resumes from its last id.
                    let error = WebError::Service(e);
                    error.count();
                    state.ended = true;
                    state
                        .queued
                        .push_back(SseEvent::default().event("error").data(error.frame(None).to_string()));
                }
            }
        }
    })
}

/// `POST /web/messages`: `{"client_id", "text"}` → 201 `{"seq", "duplicate": false, "message"}`, or 200 with
/// `"duplicate": true` for a resend.
pub(super) async fn post_message(
    State(web): State<Arc<Web>>,
    query: Result<Query<Connect>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, WebError> {
    let Query(connect) = query.map_err(|e| WebError::Invalid(e.body_text()))?;
    let visitor = session::authenticate(&web, connect.token.as_deref(), &headers)?;
    body::require_json(&headers)?;
    let limit = frames::frame_limit(web.settings.max_message_bytes);
    let bytes = body::read_limited(&headers, request_body, limit).await?;
    let outgoing: Outgoing = serde_json::from_slice(&bytes).map_err(|e| WebError::Invalid(e.to_string()))?;
    let outcome = inbound::accept(&web, &visitor, outgoing).await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = json!({
        "seq": frames::seq(outcome.message.id),
        "duplicate": outcome.duplicate,
        "message": frames::message_view(&outcome.message),
    });
    Ok((status, Json(body)).into_response())
}
