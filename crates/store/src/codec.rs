//! Conversions between the canonical model and stored columns, shared by both backends.

use chrono::{DateTime, Utc};
use protofuse_model::{
    Content, Conversation, ConversationStatus, Direction, Envelope, IdempotencyKey, Message, Party, Timestamp,
};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// Stored times are microseconds since the Unix epoch: one integer type that both backends index and compare
/// alike, with no time-zone conversion in the driver.
pub(crate) fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Result<Timestamp, StoreError> {
    DateTime::<Utc>::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("time {us} out of range")))
}

/// Identifies what a message says and who says it, to tell a retry (same key, same fingerprint) from a reused
/// key. Every writer of the store (the server's ingest and the importer) calls this one function, so a message
/// imported from a legacy helpdesk and later posted again through an API with the same key is a duplicate.
///
/// It covers direction, the sender's role and id, and the content, and nothing a retry may legitimately change
/// on the way: the transport (`source`), the display name, the sent time, metadata, or whether the caller named
/// the conversation.
pub fn fingerprint(direction: Direction, sender: &Party, content: &Content) -> String {
    let mut hasher = Sha256::new();
    for part in [direction.as_str(), sender.role.as_str(), sender.external_id.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    // serde_json maps are ordered (no preserve_order feature), so equal contents serialize to equal bytes.
    hasher.update(serde_json::to_vec(content).unwrap_or_default());
    let digest = hasher.finalize();
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// [`fingerprint`] of an envelope.
pub(crate) fn envelope_fingerprint(envelope: &Envelope) -> String {
    fingerprint(envelope.direction, &envelope.sender, &envelope.content)
}

/// The value of `conversations.open_key`: one open conversation per (channel, account, customer).
pub(crate) fn open_key(channel: &str, account: Option<&str>, customer_id: &str) -> String {
    IdempotencyKey::derive("open", &[channel, account.unwrap_or(""), customer_id])
        .as_str()
        .to_owned()
}

/// The [`open_key`] of the customer's conversation, for an envelope that names no conversation.
pub(crate) fn envelope_open_key(envelope: &Envelope) -> Option<String> {
    envelope.conversation_id.is_none().then(|| {
        let account = envelope.source.account.as_deref();
        open_key(&envelope.channel, account, &envelope.sender.external_id)
    })
}

pub(crate) fn decode_message(body: &str) -> Result<Message, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("message body: {e}")))
}

pub(crate) fn encode_message(message: &Message) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

pub(crate) fn parse_uuid(text: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("id {text:?}: {e}")))
}

pub(crate) fn parse_status(text: &str) -> Result<ConversationStatus, StoreError> {
    ConversationStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("status {text:?}")))
}

/// The columns of a conversation row, as read by either backend.
pub(crate) struct ConversationRow {
    pub(crate) id: String,
    pub(crate) channel: String,
    pub(crate) account: Option<String>,
    pub(crate) customer_id: String,
    pub(crate) status: String,
    pub(crate) department: Option<String>,
    pub(crate) assigned_agent: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl ConversationRow {
    pub(crate) fn into_conversation(self) -> Result<Conversation, StoreError> {
        Ok(Conversation {
            id: protofuse_model::ConversationId::from_uuid(parse_uuid(&self.id)?),
            channel: self.channel,
            account: self.account,
            customer_id: self.customer_id,
            status: parse_status(&self.status)?,
            department: self.department,
            assigned_agent: self.assigned_agent,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
        })
    }
}

/// The select list matching [`ConversationRow`].
pub(crate) const CONVERSATION_COLUMNS: &str =
    "id, channel, account, customer_id, status, department, assigned_agent, created_at, updated_at";

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A text column as both backends return it. MySQL reports columns with a binary collation (`utf8mb4_bin`, which
/// the schema uses so ids and external ids compare byte for byte) as `VARBINARY`/`BLOB`, which sqlx refuses to
/// decode as `String`; this type accepts either and checks the bytes are UTF-8.
#[derive(Debug)]
pub(crate) struct Text(pub(crate) String);

impl sqlx::Type<sqlx::MySql> for Text {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <String as sqlx::Type<sqlx::MySql>>::type_info()
    }

    fn compatible(ty: &sqlx::mysql::MySqlTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::MySql>>::compatible(ty) || <Vec<u8> as sqlx::Type<sqlx::MySql>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::MySql> for Text {
    fn decode(value: sqlx::mysql::MySqlValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let bytes = <&[u8] as sqlx::Decode<sqlx::MySql>>::decode(value)?;
        Ok(Self(std::str::from_utf8(bytes)?.to_owned()))
    }
}

impl sqlx::Type<sqlx::Sqlite> for Text {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for Text {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <String as sqlx::Decode<sqlx::Sqlite>>::decode(value).map(Self)
    }
}
