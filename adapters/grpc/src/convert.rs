//! Wire ↔ model mapping. Requests decode into the same [`NewMessage`] the REST API accepts, so defaults,
//! idempotency-key derivation and validation are the model's, identical for every protocol.

use chrono::{DateTime, Utc};
use protofuse_adapter::DecodeError;
use protofuse_model::{
    Content, Conversation, ConversationId, ConversationStatus, Direction, Envelope, MediaRef, Message, MessageId,
    Metadata, NewMessage, Party, Protocol, Role, Timestamp,
};
use serde_json::Value;

use crate::pb;

/// Decodes a `SendMessage` request. `metadata_key` (the `idempotency-key` call metadata) wins over the field.
pub fn decode_send(req: pb::SendMessageRequest, metadata_key: Option<&str>) -> Result<Envelope, DecodeError> {
    let sender = req.sender.ok_or_else(|| missing("sender"))?;
    let role = match pb::Role::try_from(sender.role).unwrap_or(pb::Role::Unspecified) {
        pb::Role::Unspecified => return Err(missing("sender.role")),
        pb::Role::Customer => Role::Customer,
        pb::Role::Agent => Role::Agent,
        pb::Role::Bot => Role::Bot,
        pb::Role::System => Role::System,
    };
    let direction = match pb::Direction::try_from(req.direction) {
        Ok(pb::Direction::Outbound) => Direction::Outbound,
        Ok(pb::Direction::Unspecified | pb::Direction::Inbound) => Direction::Inbound,
        Err(_) => return Err(DecodeError::Invalid("direction: unknown value".to_owned())),
    };
    let conversation_id = req
        .conversation_id
        .map(|id| id.parse().map_err(|_| invalid("conversation_id must be a UUID")))
        .transpose()?;
    let content = req.content.and_then(|c| c.kind).ok_or_else(|| missing("content"))?;
    let posted = NewMessage {
        conversation_id,
        channel: if req.channel.is_empty() {
            "api".to_owned()
        } else {
            req.channel
        },
        account: req.account,
        direction,
        sender: Party {
            role,
            external_id: sender.external_id,
            display_name: sender.display_name,
        },
        content: decode_content(content),
        sent_at: req.sent_at.map(timestamp).transpose()?,
        external_id: req.external_id,
        metadata: req.metadata.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
        idempotency_key: req.idempotency_key,
    };
    Ok(posted.into_envelope(Protocol::Grpc, metadata_key)?)
}

fn missing(field: &str) -> DecodeError {
    DecodeError::Invalid(format!("{field} is required"))
}

fn invalid(reason: &str) -> DecodeError {
    DecodeError::Invalid(reason.to_owned())
}

fn timestamp(t: prost_types::Timestamp) -> Result<Timestamp, DecodeError> {
    let nanos = u32::try_from(t.nanos).map_err(|_| invalid("timestamp nanos out of range"))?;
    DateTime::<Utc>::from_timestamp(t.seconds, nanos).ok_or_else(|| invalid("timestamp out of range"))
}

fn encode_time(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn media(m: Option<pb::Media>) -> MediaRef {
    let m = m.unwrap_or_default();
    MediaRef {
        url: m.url,
        media_id: m.media_id,
        mime_type: m.mime_type,
    }
}

fn encode_media(m: MediaRef) -> Option<pb::Media> {
    Some(pb::Media {
        url: m.url,
        media_id: m.media_id,
        mime_type: m.mime_type,
    })
}

fn decode_content(kind: pb::content::Kind) -> Content {
    use pb::content::Kind;
    match kind {
        Kind::Text(t) => Content::Text { text: t.text },
        Kind::Image(m) => Content::Image { media: media(Some(m)) },
        Kind::Voice(v) => Content::Voice {
            media: media(v.media),
            format: v.format,
            recognition: v.recognition,
        },
        Kind::Video(v) => Content::Video {
            media: media(v.media),
            thumb_media_id: v.thumb_media_id,
            short: v.short,
        },
        Kind::Location(l) => Content::Location {
            latitude: l.latitude,
            longitude: l.longitude,
            scale: l.scale,
            label: l.label,
        },
        Kind::Link(l) => Content::Link {
            url: l.url,
            title: l.title,
            description: l.description,
        },
        Kind::File(f) => Content::File {
            media: media(f.media),
            name: f.name,
            size: f.size,
        },
        Kind::Event(e) => Content::Event {
            kind: e.kind,
            key: e.key,
        },
    }
}

/// The wire form of a content union.
pub fn encode_content(content: Content) -> pb::Content {
    use pb::content::{Event, File, Kind, Link, Location, Text, Video, Voice};
    let kind = match content {
        Content::Text { text } => Kind::Text(Text { text }),
        Content::Image { media } => Kind::Image(encode_media(media).unwrap_or_default()),
        Content::Voice {
            media,
            format,
            recognition,
        } => Kind::Voice(Voice {
            media: encode_media(media),
            format,
            recognition,
        }),
        Content::Video {
            media,
            thumb_media_id,
            short,
        } => Kind::Video(Video {
            media: encode_media(media),
            thumb_media_id,
            short,
        }),
        Content::Location {
            latitude,
            longitude,
            scale,
            label,
        } => Kind::Location(Location {
            latitude,
            longitude,
            scale,
            label,
        }),
        Content::Link {
            url,
            title,
            description,
        } => Kind::Link(Link {
            url,
            title,
            description,
        }),
        Content::File { media, name, size } => Kind::File(File {
            media: encode_media(media),
            name,
            size,
        }),
        Content::Event { kind, key } => Kind::Event(Event { kind, key }),
    };
    pb::Content { kind: Some(kind) }
}

fn encode_metadata(metadata: Metadata) -> std::collections::HashMap<String, String> {
    metadata
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect()
}

/// The wire form of a stored message.
pub fn encode_message(m: Message) -> pb::Message {
    let role = match m.sender.role {
        Role::Customer => pb::Role::Customer,
        Role::Agent => pb::Role::Agent,
        Role::Bot => pb::Role::Bot,
        Role::System => pb::Role::System,
    };
    let direction = match m.direction {
        Direction::Inbound => pb::Direction::Inbound,
        Direction::Outbound => pb::Direction::Outbound,
    };
    pb::Message {
        id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        channel: m.channel,
        direction: direction.into(),
        sender: Some(pb::Party {
            role: role.into(),
            external_id: m.sender.external_id,
            display_name: m.sender.display_name,
        }),
        content: Some(encode_content(m.content)),
        sent_at: m.sent_at.map(encode_time),
        received_at: Some(encode_time(m.received_at)),
        source: Some(pb::Source {
            protocol: m.source.protocol.as_str().to_owned(),
            account: m.source.account,
            external_id: m.source.external_id,
        }),
        metadata: encode_metadata(m.metadata),
        idempotency_key: m.idempotency_key.as_str().to_owned(),
    }
}

/// What a `Subscribe` request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// Only this conversation's events.
    pub conversation_id: Option<ConversationId>,
    /// Only this customer's events.
    pub customer_id: Option<String>,
    /// Resume after this message id: stored messages first, then live events. Only with `conversation_id`.
    pub after: Option<MessageId>,
}

/// Decodes a `Subscribe` request. A cursor without a conversation is refused: a customer's messages across
/// conversations have no one order to resume in.
pub fn decode_subscribe(req: pb::SubscribeRequest) -> Result<SubscribeFilter, DecodeError> {
    let conversation_id = req
        .conversation_id
        .map(|c| c.parse().map_err(|_| invalid("conversation_id must be a UUID")))
        .transpose()?;
    let after = req
        .after
        .map(|a| a.parse().map_err(|_| invalid("after must be a message id (UUID)")))
        .transpose()?;
    if after.is_some() && conversation_id.is_none() {
        return Err(invalid(
            "after resumes one conversation: conversation_id is required with it",
        ));
    }
    Ok(SubscribeFilter {
        conversation_id,
        customer_id: req.customer_id,
        after,
    })
}

/// The wire form of a conversation status.
pub fn encode_status(s: ConversationStatus) -> pb::ConversationStatus {
    match s {
        ConversationStatus::Bot => pb::ConversationStatus::Bot,
        ConversationStatus::Queued => pb::ConversationStatus::Queued,
        ConversationStatus::Assigned => pb::ConversationStatus::Assigned,
        ConversationStatus::Closed => pb::ConversationStatus::Closed,
    }
}

/// A status filter: `None` for unspecified (any), an error for a value this version does not know.
pub fn model_status(raw: i32) -> Result<Option<ConversationStatus>, DecodeError> {
    Ok(match pb::ConversationStatus::try_from(raw) {
        Ok(pb::ConversationStatus::Unspecified) => None,
        Ok(pb::ConversationStatus::Bot) => Some(ConversationStatus::Bot),
        Ok(pb::ConversationStatus::Queued) => Some(ConversationStatus::Queued),
        Ok(pb::ConversationStatus::Assigned) => Some(ConversationStatus::Assigned),
        Ok(pb::ConversationStatus::Closed) => Some(ConversationStatus::Closed),
        Err(_) => return Err(invalid("status: unknown value")),
    })
}

/// A page order: `None` for unspecified (the operation's default), `Some(true)` for ascending.
pub fn model_order(raw: i32) -> Result<Option<bool>, DecodeError> {
    match pb::Order::try_from(raw) {
        Ok(pb::Order::Unspecified) => Ok(None),
        Ok(pb::Order::Ascending) => Ok(Some(true)),
        Ok(pb::Order::Descending) => Ok(Some(false)),
        Err(_) => Err(invalid("order: unknown value")),
    }
}

/// The wire form of a conversation.
pub fn encode_conversation(c: Conversation) -> pb::Conversation {
    pb::Conversation {
        id: c.id.to_string(),
        channel: c.channel,
        account: c.account,
        customer_id: c.customer_id,
        status: encode_status(c.status).into(),
        department: c.department,
        assigned_agent: c.assigned_agent,
        created_at: Some(encode_time(c.created_at)),
        updated_at: Some(encode_time(c.updated_at)),
    }
}
