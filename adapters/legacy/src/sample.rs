//! A template context with every optional field present, to check templates at start-up.

use protofuse_model::{
    Content, ConversationId, Direction, IdempotencyKey, MediaRef, Message, MessageId, Party, Protocol, Role, Source,
};
use serde_json::{Value, json};

/// Free-form maps: any key below them may be named in a template.
pub(crate) const OPEN: &[&str] = &["message.metadata.", "message.source.raw."];

/// The message a check renders with: every optional field set, so only impossible paths fail.
pub(crate) fn message() -> Message {
    let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    Message {
        id: MessageId::new(),
        conversation_id: ConversationId::new(),
        channel: "sample".to_owned(),
        direction: Direction::Inbound,
        sender: Party {
            role: Role::Customer,
            external_id: "u".to_owned(),
            display_name: Some("n".to_owned()),
        },
        content: Content::Text { text: "t".to_owned() },
        sent_at: Some(now),
        received_at: now,
        source: Source {
            protocol: Protocol::LegacyRest,
            account: Some("a".to_owned()),
            external_id: Some("e".to_owned()),
            raw: serde_json::Map::new(),
        },
        metadata: serde_json::Map::new(),
        idempotency_key: IdempotencyKey::unique(),
        triage: None,
    }
}

/// The response context: `message`, `duplicate`, `error.{code,message}`, `adapter`. Content fields of every
/// variant are present so a template may name any of them.
pub(crate) fn context() -> Value {
    let mut message = serde_json::to_value(message()).unwrap_or(Value::Null);
    let media = MediaRef {
        url: Some("u".into()),
        media_id: Some("m".into()),
        mime_type: Some("t".into()),
    };
    let extra = json!({"url": media.url, "media_id": media.media_id, "mime_type": media.mime_type,
        "title": "", "description": "", "name": "", "size": 0, "latitude": 0.0, "longitude": 0.0, "label": "",
        "format": "", "recognition": "", "kind": "", "key": "", "thumb_media_id": ""});
    if let (Some(content), Value::Object(extra)) = (message.pointer_mut("/content"), extra)
        && let Value::Object(content) = content
    {
        content.extend(extra);
    }
    json!({"message": message, "duplicate": false, "error": {"code": "c", "message": "m"}, "adapter": "a"})
}
