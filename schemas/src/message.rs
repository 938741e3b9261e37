//! Messages through their life: [`NewMessage`] (what the native API accepts), [`Envelope`] (decoded by an adapter,
//! not stored yet: no id, conversation maybe unknown) and [`Message`] (stored: id assigned, conversation resolved).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Content, ConversationId, IdempotencyKey, MessageId, Metadata, Party, Protocol, Role, Source, Timestamp};

/// Which way a message travels, seen from the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From a customer to the platform.
    #[default]
    Inbound,
    /// From the platform (agent, bot, system) to a customer.
    Outbound,
}

impl Direction {
    /// The direction's name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// A message as an adapter decoded it: everything but the id, the conversation (when the source does not name it)
/// and the time it was received here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// The conversation, when the source names it; otherwise the store resolves the customer's open conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The channel the conversation runs on (`wechat`, `web`, `app`, `api`, a legacy system's name).
    pub channel: String,
    /// Which way the message travels.
    pub direction: Direction,
    /// Who sent it.
    pub sender: Party,
    /// What it says.
    pub content: Content,
    /// When the source says it was sent, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// Where it came from.
    pub source: Source,
    /// Free-form data for downstream consumers.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// Storing the same key twice stores one message.
    pub idempotency_key: IdempotencyKey,
}

/// Why an envelope cannot be accepted. Each names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A field is missing, empty, too long or out of range.
    #[error("{field}: {reason}")]
    Field {
        /// The field's path in the JSON form, e.g. `sender.external_id`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

const MAX_CHANNEL_LEN: usize = 64;
/// The MySQL store indexes ids as `VARCHAR(191)` (the longest utf8mb4 key InnoDB indexes in full).
const MAX_EXTERNAL_ID_LEN: usize = 191;
/// A person's name, not a document.
const MAX_DISPLAY_NAME_LEN: usize = 255;
/// Far beyond a chat message (WeChat allows 2,048 characters), room for a long email body from a legacy system.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Free-form data for downstream systems, not a second body.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

fn check_len(field: &'static str, value: Option<&str>, max: usize) -> Result<(), ValidationError> {
    if value.is_some_and(|v| v.len() > max) {
        return Err(ValidationError::Field {
            field,
            reason: "is too long",
        });
    }
    Ok(())
}

fn check_id(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Field {
            field,
            reason: "must not be empty",
        });
    }
    if value.len() > max {
        return Err(ValidationError::Field {
            field,
            reason: "is too long",
        });
    }
    Ok(())
}

impl Envelope {
    /// Checks the rules the types cannot express. Called by ingest before anything is stored.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_id("channel", &self.channel, MAX_CHANNEL_LEN)?;
        check_id("sender.external_id", &self.sender.external_id, MAX_EXTERNAL_ID_LEN)?;
        check_len(
            "sender.display_name",
            self.sender.display_name.as_deref(),
            MAX_DISPLAY_NAME_LEN,
        )?;
        check_len("account", self.source.account.as_deref(), MAX_EXTERNAL_ID_LEN)?;
        check_len("external_id", self.source.external_id.as_deref(), MAX_EXTERNAL_ID_LEN)?;
        if let crate::Content::Text { text } = &self.content {
            check_len("content.text", Some(text), MAX_TEXT_BYTES)?;
        }
        if !self.metadata.is_empty() {
            let size = serde_json::to_vec(&self.metadata).map_or(usize::MAX, |v| v.len());
            if size > MAX_METADATA_BYTES {
                return Err(ValidationError::Field {
                    field: "metadata",
                    reason: "is too large",
                });
            }
        }
        self.content.validate().map_err(|reason| ValidationError::Field {
            field: "content",
            reason,
        })?;
        if self.conversation_id.is_none()
            && (self.direction != Direction::Inbound || self.sender.role != Role::Customer)
        {
            return Err(ValidationError::Field {
                field: "conversation_id",
                reason: "is required unless an inbound message comes from a customer",
            });
        }
        Ok(())
    }

    /// The message this envelope becomes once stored.
    pub fn into_message(self, id: MessageId, conversation_id: ConversationId, received_at: Timestamp) -> Message {
        Message {
            id,
            conversation_id,
            channel: self.channel,
            direction: self.direction,
            sender: self.sender,
            content: self.content,
            sent_at: self.sent_at,
            received_at,
            source: self.source,
            metadata: self.metadata,
            idempotency_key: self.idempotency_key,
            triage: None,
        }
    }
}

/// A stored message: the canonical record every part of protofuse reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Time-ordered id assigned when stored.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// The channel the conversation runs on.
    pub channel: String,
    /// Which way the message travels.
    pub direction: Direction,
    /// Who sent it.
    pub sender: Party,
    /// What it says.
    pub content: Content,
    /// When the source says it was sent, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// When protofuse accepted it.
    pub received_at: Timestamp,
    /// Where it came from.
    pub source: Source,
    /// Free-form data for downstream consumers.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// The key it was deduplicated on.
    pub idempotency_key: IdempotencyKey,
    /// What built-in triage decided about it, once triage ran (absent before, and on messages triage skips).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<crate::TriageOutcome>,
}

/// A message as a client posts it to the native API (`POST /v1/messages`). Optional fields take the defaults
/// documented on each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NewMessage {
    /// The conversation; omit it for a customer's inbound message to use (or open) the customer's conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The channel; default `api`.
    #[serde(default = "default_channel")]
    pub channel: String,
    /// The calling system or tenant, when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Default `inbound`.
    #[serde(default)]
    pub direction: Direction,
    /// Who sent it.
    pub sender: Party,
    /// What it says.
    pub content: Content,
    /// When it was sent at the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// The caller's own id for the message; deduplicated on when no idempotency key is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Free-form data.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// The caller's idempotency key; the `Idempotency-Key` HTTP header takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

fn default_channel() -> String {
    "api".to_owned()
}

impl NewMessage {
    /// Turns the posted form into an envelope from `protocol`. The idempotency key is, in order: `key_override`
    /// (a transport header), the body's `idempotency_key`, the `external_id`, or a unique key (no deduplication).
    /// Keys are scoped by protocol and account so two callers cannot collide, except a key of the importer's
    /// namespace (`import:<mapping>:<table>:<pk>`), which names an imported message as stored: a legacy system
    /// still posting during a cut-over dedupes against what the importer copied. Such a key only ever matches
    /// a message with the same content; other content is refused as a reused key, never overwrites.
    pub fn into_envelope(self, protocol: Protocol, key_override: Option<&str>) -> Result<Envelope, ValidationError> {
        let account = self.account.as_deref().unwrap_or("");
        let scope = protocol.as_str();
        let explicit = key_override.or(self.idempotency_key.as_deref());
        let idempotency_key = match (explicit, self.external_id.as_deref()) {
            (Some(key), _) => {
                if key.is_empty() || key.len() > IdempotencyKey::MAX_LEN {
                    return Err(ValidationError::Field {
                        field: "idempotency_key",
                        reason: "must be 1 to 200 bytes",
                    });
                }
                if IdempotencyKey::is_imported(key) {
                    IdempotencyKey::parse(key).unwrap_or_else(IdempotencyKey::unique)
                } else {
                    IdempotencyKey::derive(scope, &[account, "key", key])
                }
            }
            (None, Some(ext)) => IdempotencyKey::derive(scope, &[account, "external_id", ext]),
            (None, None) => IdempotencyKey::unique(),
        };
        let envelope = Envelope {
            conversation_id: self.conversation_id,
            channel: self.channel,
            direction: self.direction,
            sender: self.sender,
            content: self.content,
            sent_at: self.sent_at,
            source: Source {
                protocol,
                account: self.account,
                external_id: self.external_id,
                raw: Default::default(),
            },
            metadata: self.metadata,
            idempotency_key,
        };
        envelope.validate()?;
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn posted(extra: serde_json::Value) -> NewMessage {
        let mut body = json!({
            "sender": {"role": "customer", "external_id": "u1"},
            "content": {"type": "text", "text": "hello"}
        });
        if let serde_json::Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn defaults_apply() {
        let env = posted(json!({})).into_envelope(Protocol::Rest, None).unwrap();
        assert_eq!(env.channel, "api");
        assert_eq!(env.direction, Direction::Inbound);
        assert!(env.idempotency_key.as_str().starts_with("unique:"));
    }

    #[test]
    fn header_key_beats_body_key_and_keys_are_scoped_by_account() {
        let a = posted(json!({"idempotency_key": "k1"}))
            .into_envelope(Protocol::Rest, Some("h"))
            .unwrap();
        let b = posted(json!({"idempotency_key": "other"}))
            .into_envelope(Protocol::Rest, Some("h"))
            .unwrap();
        assert_eq!(a.idempotency_key, b.idempotency_key);
        let c = posted(json!({"account": "crm"}))
            .into_envelope(Protocol::Rest, Some("h"))
            .unwrap();
        assert_ne!(a.idempotency_key, c.idempotency_key);
    }

    #[test]
    fn an_imported_messages_key_is_matched_as_stored() {
        let env = posted(json!({"idempotency_key": "import:gofly:message:17"}))
            .into_envelope(Protocol::Rest, None)
            .unwrap();
        assert_eq!(env.idempotency_key, IdempotencyKey::imported("gofly", "message", 17));
    }

    #[test]
    fn agent_message_needs_a_conversation() {
        let msg = posted(json!({"direction": "outbound", "sender": {"role": "agent", "external_id": "a1"}}));
        let err = msg.into_envelope(Protocol::Rest, None).unwrap_err();
        assert!(err.to_string().starts_with("conversation_id:"), "{err}");
    }
}
