//! A decoded source row, through its table mapping, to the canonical records the target stores.
//!
//! Ids are derived, never drawn: a conversation's id from (mapping, conversation table, conversation key), a
//! message's from its sent time (UUIDv7 time bits, so a conversation's messages list in time order) and its
//! (table, primary key). The same row therefore always yields the same records, which makes every write an
//! idempotent upsert and lets `verify` recompute what the target must hold.

use chrono::{DateTime, FixedOffset};
use protofuse_model::{
    Content, Conversation, ConversationId, ConversationStatus, Direction, IdempotencyKey, MediaRef, Message, MessageId,
    Party, Role, Source,
};
use protofuse_store::import::{ConversationRow, MessageRow};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::mapping::{EntityKind, FieldError, Mapping, Row, TableMapping};

/// A message row of the protofuse store, with the conversation it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    /// The row the store writes (columns computed by the store's codec).
    pub row: MessageRow,
    /// Written only if the conversation does not exist yet, so the message is reachable through the API
    /// even when its conversation row arrives later (or is not mapped).
    pub placeholder: ConversationRow,
}

/// A customer or agent.
#[derive(Debug, Clone, PartialEq)]
pub struct PartyRecord {
    /// customer | agent.
    pub role: &'static str,
    /// External id.
    pub external_id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// The whole source row, normalized, as JSON.
    pub raw: String,
}

/// What one mapped row becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A conversation.
    Conversation(ConversationRow),
    /// A message.
    Message(MessageRecord),
    /// A customer or agent.
    Party(PartyRecord),
    /// Nothing (the mapping's `skip` said so): any earlier version must go.
    Skipped,
}

impl Record {
    /// The canonical id recorded in `import_rows` (empty for parties and skipped rows).
    pub fn canonical_id(&self) -> &str {
        match self {
            Self::Conversation(c) => c.id(),
            Self::Message(m) => m.row.id(),
            Self::Party(_) | Self::Skipped => "",
        }
    }
}

/// Maps rows of one mapping file.
#[derive(Debug, Clone)]
pub struct Mapper {
    mapping: Mapping,
    zone: FixedOffset,
}

impl Mapper {
    /// Wraps a validated mapping.
    pub fn new(mapping: Mapping) -> Self {
        let zone = mapping.zone();
        Self { mapping, zone }
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The bookkeeping source name of a table mapping: `<mapping>:<table>/<kind>`.
    pub fn source_name(&self, table: &TableMapping) -> String {
        format!("{}:{}", self.mapping.name, table.source_name())
    }

    /// Maps one row.
    pub fn map(&self, table: &TableMapping, row: &Row) -> Result<Record, FieldError> {
        match table.kind {
            // A skipped conversation (osTicket: a task's thread) is not imported, and goes if it was.
            EntityKind::Conversation if table.flag("skip", row) => Ok(Record::Skipped),
            EntityKind::Conversation => self.conversation(table, row).map(Record::Conversation),
            EntityKind::Message => self.message(table, row),
            EntityKind::Customer | EntityKind::Agent => party(table, row).map(Record::Party),
        }
    }

    fn conversation(&self, t: &TableMapping, row: &Row) -> Result<ConversationRow, FieldError> {
        let key = match t.text("conversation_key", row) {
            Some(key) => key,
            None => t.pk(row)?.to_string(),
        };
        let created = t
            .time("created_at", row, self.zone)?
            .map_or(DateTime::UNIX_EPOCH, |t| t.to_utc());
        let updated = t.time("updated_at", row, self.zone)?.map_or(created, |t| t.to_utc());
        let status = t.text("status", row).unwrap_or_else(|| "closed".to_owned());
        let status = ConversationStatus::parse(&status)
            .ok_or_else(|| t.error("status", &format!("{status:?} is not bot|queued|assigned|closed"), row))?;
        Ok(ConversationRow::new(&Conversation {
            id: self.conversation_id(&t.table, &key),
            channel: t.text("channel", row).unwrap_or_else(|| self.mapping.channel.clone()),
            account: Some(self.mapping.name.clone()),
            customer_id: t.required_text("customer_id", row)?,
            status,
            department: t.text("department", row),
            assigned_agent: t.text("assigned_agent", row),
            created_at: created,
            updated_at: updated.max(created),
        }))
    }

    /// The id of the conversation with `key` in conversation table `table`.
    pub fn conversation_id(&self, table: &str, key: &str) -> ConversationId {
        let digest = hash(&["conversation", &self.mapping.name, table, key]);
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        ConversationId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    fn message(&self, t: &TableMapping, row: &Row) -> Result<Record, FieldError> {
        if t.flag("skip", row) {
            return Ok(Record::Skipped);
        }
        let pk = t.pk(row)?;
        let conv_table = t.conversation_table.as_deref().unwrap_or_default();
        let conversation_id = self.conversation_id(conv_table, &t.required_text("conversation", row)?);
        let role = role(&t.required_text("role", row)?).ok_or_else(|| t.error("role", "unknown role", row))?;
        // Legacy tables keep customer and agent authors in different columns (osTicket user_id/staff_id).
        let author = match role {
            Role::Customer => t.text("sender_id", row),
            _ => t.text("agent_id", row).or_else(|| t.text("sender_id", row)),
        };
        let sender = Party {
            role,
            external_id: author.ok_or_else(|| t.error("sender_id", "no author: sender_id/agent_id are NULL", row))?,
            display_name: t.text("sender_name", row),
        };
        let sent_at = t
            .time("sent_at", row, self.zone)?
            .ok_or_else(|| t.error("sent_at", "is NULL and has no default", row))?;
        let content = content(t, row)?;
        let key = IdempotencyKey::imported(&self.mapping.name, &t.table, pk);
        if key.as_str().len() > IdempotencyKey::MAX_LEN {
            return Err(t.error("key", "key too long", row));
        }
        let id = message_id(key.as_str(), sent_at);
        let direction = if role == Role::Customer {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let mut metadata = serde_json::Map::new();
        if t.flag("internal", row) {
            metadata.insert("internal".to_owned(), Json::Bool(true));
        }
        let channel = t.text("channel", row).unwrap_or_else(|| self.mapping.channel.clone());
        let message = Message {
            id: MessageId::from_uuid(id),
            conversation_id,
            channel: channel.clone(),
            direction,
            sender,
            content,
            sent_at: Some(sent_at),
            received_at: sent_at,
            source: Source {
                protocol: protofuse_model::Protocol::Import,
                account: Some(self.mapping.name.clone()),
                external_id: Some(format!("{}:{pk}", t.table)),
                raw: without_nulls(row),
            },
            metadata,
            idempotency_key: key,
            triage: None,
        };
        let customer = (role == Role::Customer).then(|| message.sender.external_id.clone());
        let placeholder = self.placeholder(conversation_id, channel, customer, sent_at);
        Ok(Record::Message(MessageRecord {
            row: MessageRow::new(&message),
            placeholder,
        }))
    }

    fn placeholder(
        &self,
        id: ConversationId,
        channel: String,
        customer: Option<String>,
        at: protofuse_model::Timestamp,
    ) -> ConversationRow {
        ConversationRow::new(&Conversation {
            id,
            channel,
            account: Some(self.mapping.name.clone()),
            customer_id: customer.unwrap_or_else(|| "unknown".to_owned()),
            status: ConversationStatus::Closed,
            department: None,
            assigned_agent: None,
            created_at: at,
            updated_at: at,
        })
    }
}

/// UUIDv7 with the sent time as its time bits (messages list in time order) and the key's hash as the rest.
fn message_id(key: &str, sent_at: protofuse_model::Timestamp) -> uuid::Uuid {
    let digest = hash(&["message", key]);
    let millis = u64::try_from(sent_at.timestamp_millis()).unwrap_or(0);
    let mut random = [0_u8; 10];
    random.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

fn party(t: &TableMapping, row: &Row) -> Result<PartyRecord, FieldError> {
    Ok(PartyRecord {
        role: if t.kind == EntityKind::Agent {
            "agent"
        } else {
            "customer"
        },
        external_id: t.required_text("external_id", row)?,
        display_name: t.text("display_name", row),
        email: t.text("email", row),
        raw: serde_json::to_string(&without_nulls(row)).unwrap_or_default(),
    })
}

/// The raw row keeps non-NULL columns only (an absent key is NULL), so adding a nullable column to a source
/// table does not change every stored row.
fn without_nulls(row: &Row) -> serde_json::Map<String, Json> {
    row.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn content(t: &TableMapping, row: &Row) -> Result<Content, FieldError> {
    let kind = t.text("content_type", row).unwrap_or_else(|| "text".to_owned());
    let media = || MediaRef {
        url: t.text("attachment_url", row),
        media_id: None,
        mime_type: None,
    };
    match kind.as_str() {
        "text" => Ok(Content::Text {
            text: t.text("text", row).unwrap_or_default(),
        }),
        "image" => Ok(Content::Image { media: media() }),
        "file" => Ok(Content::File {
            media: media(),
            name: t.text("attachment_name", row),
            size: None,
        }),
        other => Err(t.error("content_type", &format!("{other:?} is not text|image|file"), row)),
    }
}

fn role(name: &str) -> Option<Role> {
    match name {
        "customer" => Some(Role::Customer),
        "agent" => Some(Role::Agent),
        "bot" => Some(Role::Bot),
        "system" => Some(Role::System),
        _ => None,
    }
}

fn hash(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Digest of a row's stored fields, NULL distinct from empty; the target computes the same from what it holds.
pub fn digest_fields(fields: &[Option<String>]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        match field {
            Some(t) => {
                hasher.update([1]);
                hasher.update((t.len() as u64).to_be_bytes());
                hasher.update(t.as_bytes());
            }
            None => hasher.update([0]),
        }
    }
    hex::encode(hasher.finalize())
}

impl Record {
    /// What the target must hold for this record, as [`digest_fields`] of the columns `verify` reads back.
    pub fn digest(&self) -> Option<String> {
        let s = |v: &str| Some(v.to_owned());
        let fields = match self {
            Self::Message(m) => m.row.stored_fields(),
            Self::Conversation(c) => c.stored_fields(),
            Self::Party(p) => vec![
                s(p.role),
                s(&p.external_id),
                p.display_name.clone(),
                p.email.clone(),
                s(&p.raw),
            ],
            Self::Skipped => return None,
        };
        Some(digest_fields(&fields))
    }
}
