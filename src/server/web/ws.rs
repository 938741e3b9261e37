//! `GET /web/ws?token=…&after=<seq>`: one visitor's WebSocket, both directions in JSON frames (`frames.rs`).
//!
//! The visitor is authenticated and given a connection slot before the upgrade, so a refusal is an HTTP answer
//! with a JSON body. Then one loop serves the socket: frames from the visitor (messages, pings), the feed's
//! messages, a ping every `web.ping_interval`, eviction after `web.idle_timeout` without a frame from the
//! visitor, and the server's shutdown (close 1001, the client reconnects elsewhere and resumes).
//!
//! Must never: answer a bad frame by closing the socket (an error frame says what was wrong), or write a
//! message to the visitor that the feed did not give it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use protofuse_model::MessageId;
use serde_json::Value;
use tokio::time::Instant;

use super::channel::Web;
use super::error::WebError;
use super::frames::{self, Incoming, Outgoing};
use super::inbound;
use super::limits::Slot;
use super::replay::Feed;
use super::session::{self, Connect};
use super::token::Visitor;

/// Authenticates, takes a slot and upgrades; any refusal is JSON over HTTP.
pub(super) async fn upgrade(
    State(web): State<Arc<Web>>,
    query: Result<Query<Connect>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match prepare(&web, query, &headers) {
        Ok((visitor, after, slot)) => match upgrade {
            Ok(upgrade) => sized(upgrade, web.settings.max_message_bytes)
                .on_upgrade(move |socket| serve(web, visitor, after, slot, socket)),
            Err(e) => WebError::Invalid(e.body_text()).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// What each socket reads into, at most, per read call; its read buffer starts at this size.
///
/// tungstenite's default, 128 KiB, suits bulk transfer, not thousands of idle chat sockets: before every read
/// it zero-fills the read buffer up to that capacity, so each open socket held 128 KiB of resident memory from
/// its first read on. `benches/web_visitors.rs` (BENCHMARKS.md, "Idle web visitors") measured the server's RSS
/// per idle socket at 19,500 sockets: 135 KiB with the default, 10.9 KiB with 4 KiB. A visitor's
/// frame is a chat line; a larger one (up to the frame limit) grows the buffer by its declared length.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The socket's buffers and limits, sized for many idle chat sockets. The write side needs no setting: each
/// frame is flushed as it is sent (`write`), and tungstenite's write buffer is a vector that only grows to the
/// largest frame written, never preallocated.
fn sized(upgrade: WebSocketUpgrade, max_message_bytes: usize) -> WebSocketUpgrade {
    let limit = frames::frame_limit(max_message_bytes);
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(limit)
        // tungstenite reserves a frame's declared length before reading it; its default frame limit (16 MiB)
        // let one visitor's frame header make the server allocate 16 MiB for a chat line at most a few KiB long.
        .max_frame_size(limit)
}

fn prepare(
    web: &Web,
    query: Result<Query<Connect>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
) -> Result<(Visitor, Option<MessageId>, Slot), WebError> {
    if !web.settings.websocket {
        return Err(WebError::WebsocketDisabled);
    }
    let Query(connect) = query.map_err(|e| WebError::Invalid(e.body_text()))?;
    let visitor = session::authenticate(web, connect.token.as_deref(), headers)?;
    let after = frames::parse_seq(connect.after.as_deref())?;
    let slot = web.limits.connect(&visitor)?;
    Ok((visitor, after, slot))
}

/// What the loop does after one turn.
enum Turn {
    Continue,
    Close(Option<CloseFrame>),
}

fn close(code: u16, reason: &'static str) -> Turn {
    Turn::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// A visitor whose browser takes no frame for this long is not reading (its receive window is full): the
/// socket is dropped rather than hold a task and a slot for it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes one frame; `false` when the visitor is gone or not reading.
async fn write(socket: &mut WebSocket, frame: Frame) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.send(frame)).await,
        Ok(Ok(()))
    )
}

async fn send(socket: &mut WebSocket, frame: &Value) -> bool {
    write(socket, Frame::Text(frame.to_string().into())).await
}

/// When the socket's one timer fires next: a ping is due, or the visitor has been silent too long.
enum Due {
    Ping,
    Evict,
}

fn due(next_ping: Instant, evict_at: Instant) -> (Instant, Due) {
    if evict_at <= next_ping {
        (evict_at, Due::Evict)
    } else {
        (next_ping, Due::Ping)
    }
}

async fn serve(web: Arc<Web>, visitor: Visitor, after: Option<MessageId>, _slot: Slot, mut socket: WebSocket) {
    let ready = frames::ready_frame(&visitor, after, &web.settings.greeting);
    // The feed holds the visitor for the socket's life; the loop reads it from there (one copy per socket).
    let mut feed = Feed::open(web.service.clone(), &web.prompts, visitor, after);
    if !send(&mut socket, &ready).await {
        return;
    }
    drop(ready);
    // One timer for both pings and eviction (an idle socket holds one, not an interval and a sleep).
    let mut next_ping = Instant::now() + web.settings.ping_interval;
    let mut heard = Instant::now();
    let turn = loop {
        let (at, due) = due(next_ping, heard + web.settings.idle_timeout);
        let turn = tokio::select! {
            () = web.stop.cancelled() => close(close_code::AWAY, "server shutting down"),
            received = socket.recv() => match received {
                Some(Ok(frame)) => {
                    heard = Instant::now();
                    // Boxed: storing a message is a deep future; an idle socket should not hold room for it.
                    Box::pin(on_frame(&web, feed.visitor(), &mut socket, frame)).await
                }
                // Gone: nothing more can be said to it.
                None | Some(Err(_)) => return,
            },
            batch = feed.next() => match batch {
                Ok(messages) => {
                    for message in &messages {
                        if !send(&mut socket, &frames::message_frame(message)).await {
                            return;
                        }
                    }
                    Turn::Continue
                }
                Err(e) => {
                    let error = WebError::Service(e);
                    error.count();
                    let _ = send(&mut socket, &error.frame(None)).await;
                    close(close_code::AGAIN, "try again later")
                }
            },
            () = tokio::time::sleep_until(at) => match due {
                Due::Evict => close(close_code::POLICY, "idle"),
                Due::Ping => {
                    next_ping = Instant::now() + web.settings.ping_interval;
                    if !write(&mut socket, Frame::Ping(Default::default())).await {
                        return;
                    }
                    Turn::Continue
                }
            },
        };
        if let Turn::Close(frame) = turn {
            break frame;
        }
    };
    let _ = write(&mut socket, Frame::Close(turn)).await;
}

/// Handles one frame from the visitor; a bad frame gets an error frame and the socket stays open.
async fn on_frame(web: &Web, visitor: &Visitor, socket: &mut WebSocket, frame: Frame) -> Turn {
    let text = match frame {
        Frame::Text(text) => text,
        Frame::Close(_) => return Turn::Close(None),
        // Pongs only prove the visitor is there; axum answers pings itself.
        Frame::Ping(_) | Frame::Pong(_) => return Turn::Continue,
        Frame::Binary(_) => {
            let error = WebError::Invalid("frames are JSON text".to_owned());
            error.count();
            return reply(socket, &error.frame(None)).await;
        }
    };
    let incoming = match serde_json::from_str::<Incoming>(text.as_str()) {
        Ok(incoming) => incoming,
        Err(e) => {
            let error = WebError::Invalid(format!("not a frame this channel knows: {e}"));
            error.count();
            return reply(socket, &error.frame(None)).await;
        }
    };
    match incoming {
        Incoming::Ping => reply(socket, &serde_json::json!({"type": "pong"})).await,
        Incoming::Message { client_id, text } => {
            let outgoing = Outgoing {
                client_id: client_id.clone(),
                text,
            };
            let frame = match inbound::accept(web, visitor, outgoing).await {
                Ok(outcome) => frames::ack_frame(&client_id, &outcome.message, outcome.duplicate),
                Err(e) => {
                    e.count();
                    e.frame(Some(&client_id))
                }
            };
            reply(socket, &frame).await
        }
    }
}

async fn reply(socket: &mut WebSocket, frame: &Value) -> Turn {
    if send(socket, frame).await {
        Turn::Continue
    } else {
        Turn::Close(None)
    }
}
