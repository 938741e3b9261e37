//! One message write on the SQLite writer's own connection: the same steps and the same SQL as
//! `queries.rs::write_one` (which MySQL still runs), as prepared statements cached on the connection.
//!
//! Runs inside the writer's group transaction, which holds SQLite's write lock from its `BEGIN IMMEDIATE`: no
//! other connection can write between a lookup here and the insert that follows it, so a key or an open
//! conversation that the lookup did not find cannot appear before the insert.

use protofuse_model::{ConversationId, ConversationStatus, Envelope, MessageId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::codec;
use crate::error::StoreError;
use crate::queries::replay;
use crate::store::Inserted;

const FIND_BY_KEY: &str = "SELECT fingerprint, body FROM messages WHERE idempotency_key = ?";
const FIND_CONVERSATION: &str = "SELECT id FROM conversations WHERE id = ?";
const FIND_OPEN: &str = "SELECT id FROM conversations WHERE open_key = ?";
const OPEN_CONVERSATION: &str = "INSERT INTO conversations \
     (id, channel, account, customer_id, status, open_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_MESSAGE: &str = "INSERT INTO messages (id, conversation_id, idempotency_key, fingerprint, direction, \
     sender_role, content_type, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
const TOUCH_CONVERSATION: &str = "UPDATE conversations SET updated_at = ? WHERE id = ? AND updated_at < ?";
const QUEUE_DELIVERY: &str = "INSERT INTO outbox (message_id, destination, attempts, due_at, lease_until, created_at) \
     VALUES (?, ?, 0, ?, 0, ?)";

/// Stores `envelope` (or finds it stored), with one outbox row per destination, inside the caller's
/// transaction. On an error the caller rolls the write back to its savepoint.
pub(super) fn write_one(
    conn: &Connection,
    envelope: Envelope,
    received_at: Timestamp,
    destinations: &[String],
) -> Result<Inserted, StoreError> {
    let fingerprint = codec::envelope_fingerprint(&envelope);
    if let Some(found) = find_by_key(conn, envelope.idempotency_key.as_str())? {
        return replay(&fingerprint, &found);
    }
    let now = codec::to_micros(received_at);
    let conversation = resolve_conversation(conn, &envelope, now)?;
    let message = envelope.into_message(MessageId::new(), conversation, received_at);
    let id = message.id.to_string();
    let conversation = conversation.to_string();
    conn.prepare_cached(INSERT_MESSAGE)?.execute(params![
        id,
        conversation,
        message.idempotency_key.as_str(),
        fingerprint,
        message.direction.as_str(),
        message.sender.role.as_str(),
        message.content.kind(),
        now,
        codec::encode_message(&message),
    ])?;
    conn.prepare_cached(TOUCH_CONVERSATION)?
        .execute(params![now, conversation, now])?;
    // The deliveries are queued in the message's own transaction: an acknowledged message always has them, and
    // a duplicate (returned above) never queues them twice.
    for destination in destinations {
        conn.prepare_cached(QUEUE_DELIVERY)?
            .execute(params![id, destination, now, now])?;
    }
    Ok(Inserted {
        message,
        duplicate: false,
    })
}

fn find_by_key(conn: &Connection, key: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached(FIND_BY_KEY)?
        .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// The conversation the envelope belongs to: the one it names, or the customer's open one, opened now if there
/// is none. The write lock makes the lookup and the insert one step, so the `open_key` unique key (which still
/// guards against any other writer) is never hit here.
fn resolve_conversation(conn: &Connection, envelope: &Envelope, now: i64) -> Result<ConversationId, StoreError> {
    if let Some(id) = envelope.conversation_id {
        let found = conn
            .prepare_cached(FIND_CONVERSATION)?
            .query_row([id.to_string()], |_| Ok(()))
            .optional()?;
        return found.map(|()| id).ok_or(StoreError::ConversationNotFound(id));
    }
    let account = envelope.source.account.as_deref();
    let key = codec::open_key(&envelope.channel, account, &envelope.sender.external_id);
    let open: Option<String> = conn
        .prepare_cached(FIND_OPEN)?
        .query_row([&key], |row| row.get(0))
        .optional()?;
    if let Some(id) = open {
        return Ok(ConversationId::from_uuid(codec::parse_uuid(&id)?));
    }
    let id = ConversationId::new();
    conn.prepare_cached(OPEN_CONVERSATION)?.execute(params![
        id.to_string(),
        envelope.channel,
        account,
        envelope.sender.external_id,
        ConversationStatus::Bot.as_str(),
        key,
        now,
        now,
    ])?;
    Ok(id)
}
