//! Conversions between the canonical model and stored columns, shared by both backends.

use chrono::{DateTime, Utc};
use protofuse_model::{Conversation, ConversationStatus, Envelope, IdempotencyKey, Message, Timestamp};
use sha2::{Digest, Sha256};

use super::StoreError;

/// Stored times are microseconds since the Unix epoch: one integer type that both backends index and compare
/// alike, with no time-zone conversion in the driver.
pub(super) fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(super) fn from_micros(us: i64) -> Result<Timestamp, StoreError> {
    DateTime::<Utc>::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("time {us} out of range")))
}

/// Identifies the content of an envelope, to tell a retry (same key, same content) from a reused key.
pub(super) fn fingerprint(envelope: &Envelope) -> String {
    // serde_json maps are ordered (no preserve_order feature), so equal envelopes serialize to equal bytes.
    let bytes = serde_json::to_vec(envelope).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of `conversations.open_key`: one open conversation per (channel, account, customer).
pub(super) fn open_key(channel: &str, account: Option<&str>, customer_id: &str) -> String {
    IdempotencyKey::derive("open", &[channel, account.unwrap_or(""), customer_id])
        .as_str()
        .to_owned()
}

/// Answers a write whose key is already stored: the same content is a duplicate, other content a reused key.
pub(super) fn replay(fingerprint: &str, found: &(String, String)) -> Result<super::Inserted, StoreError> {
    if found.0 != fingerprint {
        return Err(StoreError::KeyReused);
    }
    Ok(super::Inserted {
        message: decode_message(&found.1)?,
        duplicate: true,
    })
}

pub(super) fn decode_message(body: &str) -> Result<Message, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("message body: {e}")))
}

pub(super) fn encode_message(message: &Message) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

pub(super) fn parse_uuid(text: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("id {text:?}: {e}")))
}

pub(super) fn parse_status(text: &str) -> Result<ConversationStatus, StoreError> {
    ConversationStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("status {text:?}")))
}

/// The columns of a conversation row, as read by either backend.
pub(super) struct ConversationRow {
    pub(super) id: String,
    pub(super) channel: String,
    pub(super) account: Option<String>,
    pub(super) customer_id: String,
    pub(super) status: String,
    pub(super) department: Option<String>,
    pub(super) assigned_agent: Option<String>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl ConversationRow {
    pub(super) fn into_conversation(self) -> Result<Conversation, StoreError> {
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
pub(super) const CONVERSATION_COLUMNS: &str =
    "id, channel, account, customer_id, status, department, assigned_agent, created_at, updated_at";

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A text column as both backends return it. MySQL reports columns with a binary collation (`utf8mb4_bin`, which
/// the schema uses so ids and external ids compare byte for byte) as `VARBINARY`/`BLOB`, which sqlx refuses to
/// decode as `String`; this type accepts either and checks the bytes are UTF-8.
#[derive(Debug)]
pub(super) struct Text(pub(super) String);

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
