//! The web channel's JSON: what a visitor sends (a WebSocket frame, or the body of `POST /web/messages`) and
//! what it is sent (WebSocket frames and SSE event data share one form).
//!
//! Server → visitor:
//! - `{"type":"ready","visitor_id","site","after","greeting"?}`: the connection is live; replay follows. The
//!   greeting (`web.greeting`) is the bot's opening line, shown by the widget and never stored.
//! - `{"type":"message","seq","message":{…}}`: a message of the visitor's conversations, in `seq` order.
//! - `{"type":"ack","client_id","seq","duplicate"}`: a WebSocket send was stored (or was a resend).
//! - `{"type":"error","client_id"?,"error":{"code","message","retry_after"?}}`.
//! - `{"type":"pong"}`: the answer to `{"type":"ping"}`, for clients that cannot see WebSocket pings.
//!
//! Visitor → server: `{"type":"message","client_id","text"}`, `{"type":"ping"}`.
//!
//! Owns the shapes only. A visitor sees the canonical content, the sender's role and display name, and the
//! client id of its own messages; never the source's raw fields, metadata or idempotency keys.

use protofuse_model::{Content, Message, MessageId, Protocol, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::WebError;

/// Longest client message id: a UUID is 36.
const MAX_CLIENT_ID_BYTES: usize = 128;

/// A visitor's text message, with the id the widget generated for it: a resend with the same id is the same
/// message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Outgoing {
    /// The widget's id for the message, its idempotency key.
    pub(super) client_id: String,
    /// What the visitor typed.
    pub(super) text: String,
}

/// What a visitor sends over the WebSocket.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Incoming {
    /// A message to store.
    Message {
        /// The widget's id for it.
        client_id: String,
        /// Its text.
        text: String,
    },
    /// Asks for a `pong` frame.
    Ping,
}

impl Outgoing {
    /// Checks the visitor's input against the channel's rules before anything else looks at it.
    pub(super) fn check(&self, max_text_bytes: usize) -> Result<(), WebError> {
        let id_ok = !self.client_id.is_empty()
            && self.client_id.len() <= MAX_CLIENT_ID_BYTES
            && self.client_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(WebError::Invalid(format!(
                "client_id must be 1 to {MAX_CLIENT_ID_BYTES} visible ASCII characters"
            )));
        }
        if self.text.len() > max_text_bytes {
            return Err(WebError::TooLarge {
                size: self.text.len(),
                limit: max_text_bytes,
            });
        }
        if self.text.trim().is_empty() {
            return Err(WebError::Invalid("text must not be empty".to_owned()));
        }
        Ok(())
    }
}

/// The largest WebSocket frame or POST body read: room for a text at `web.max_message_bytes` with every
/// character escaped in JSON, and the other fields. A larger frame ends the WebSocket connection, a larger body
/// is 413, before either is buffered.
pub(super) fn frame_limit(max_message_bytes: usize) -> usize {
    max_message_bytes * 6 + 1024
}

/// The sequence of a message as the visitor sees it (and echoes back in `after` / `Last-Event-ID`).
pub(super) fn seq(id: MessageId) -> String {
    id.to_string()
}

/// Parses a sequence the channel sent; empty means "from the beginning".
pub(super) fn parse_seq(raw: Option<&str>) -> Result<Option<MessageId>, WebError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| WebError::InvalidCursor),
    }
}

#[derive(Serialize)]
struct Sender<'a> {
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
}

#[derive(Serialize)]
struct View<'a> {
    id: MessageId,
    conversation_id: protofuse_model::ConversationId,
    direction: protofuse_model::Direction,
    sender: Sender<'a>,
    content: &'a Content,
    received_at: protofuse_model::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
}

/// A message as its visitor sees it.
pub(super) fn message_view(message: &Message) -> Value {
    let own = message.sender.role == Role::Customer && message.source.protocol == Protocol::Web;
    let view = View {
        id: message.id,
        conversation_id: message.conversation_id,
        direction: message.direction,
        sender: Sender {
            role: message.sender.role,
            display_name: message.sender.display_name.as_deref(),
        },
        content: &message.content,
        received_at: message.received_at,
        client_id: message.source.external_id.as_deref().filter(|_| own),
    };
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// `{"type":"message"}`.
pub(super) fn message_frame(message: &Message) -> Value {
    json!({"type": "message", "seq": seq(message.id), "message": message_view(message)})
}

/// `{"type":"ready"}`, with the bot's `greeting` unless it is empty.
pub(super) fn ready_frame(visitor: &super::token::Visitor, after: Option<MessageId>, greeting: &str) -> Value {
    let mut frame = json!({"type": "ready", "visitor_id": visitor.id, "site": visitor.site, "after": after.map(seq)});
    if !greeting.is_empty() {
        frame["greeting"] = Value::from(greeting);
    }
    frame
}

/// `{"type":"ack"}`.
pub(super) fn ack_frame(client_id: &str, message: &Message, duplicate: bool) -> Value {
    json!({"type": "ack", "client_id": client_id, "seq": seq(message.id), "duplicate": duplicate})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules() {
        let ok = Outgoing {
            client_id: "c-1".to_owned(),
            text: "你好".to_owned(),
        };
        assert!(ok.check(6).is_ok());
        assert!(matches!(ok.check(5), Err(WebError::TooLarge { size: 6, limit: 5 })));
        let blank = Outgoing {
            client_id: "c-1".to_owned(),
            text: " \n".to_owned(),
        };
        assert!(matches!(blank.check(100), Err(WebError::Invalid(_))));
        let bad_id = Outgoing {
            client_id: "with space".to_owned(),
            text: "x".to_owned(),
        };
        assert!(matches!(bad_id.check(100), Err(WebError::Invalid(_))));
        assert!(matches!(parse_seq(Some("12")), Err(WebError::InvalidCursor)));
        assert_eq!(parse_seq(Some("")).unwrap(), None);
    }

    #[test]
    fn frames_parse_by_type() {
        let frame: Incoming = serde_json::from_str(r#"{"type":"message","client_id":"a","text":"hi"}"#).unwrap();
        assert!(matches!(frame, Incoming::Message { .. }));
        assert!(matches!(
            serde_json::from_str(r#"{"type":"ping"}"#).unwrap(),
            Incoming::Ping
        ));
        assert!(serde_json::from_str::<Incoming>(r#"{"type":"shout"}"#).is_err());
    }
}
