//! One message write on the SQLite writer's own connection: the same steps and the same SQL as
//! `queries.rs::write_one` (which MySQL still runs), as statements prepared once when the writer starts.
//!
//! Runs inside the writer's group transaction, which holds SQLite's write lock from its `BEGIN IMMEDIATE`: no
//! other connection can write between a lookup here and the insert that follows it, so a key or an open
//! conversation that the lookup did not find cannot appear before the insert.

use std::borrow::Cow;

use protofuse_model::{ConversationId, ConversationStatus, Envelope, MessageId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Statement, params};

use crate::codec;
use crate::error::StoreError;
use crate::queries::replay;
use crate::queue::QueuedReply;
use crate::store::{Inserted, Replied};

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

/// The writer's statements, prepared when its thread starts and kept for its life. Why not rusqlite's statement
/// cache: it hashes a statement's SQL on every use and again when the statement goes back, which was 3.6% of
/// the writer thread's time (BENCHMARKS.md, 2026-12-03, session 14), and this connection runs these statements
/// and nothing else.
pub(super) struct Statements<'c> {
    pub(super) begin: Statement<'c>,
    pub(super) commit: Statement<'c>,
    pub(super) savepoint: Statement<'c>,
    pub(super) rollback_to: Statement<'c>,
    pub(super) release: Statement<'c>,
    find_by_key: Statement<'c>,
    find_conversation: Statement<'c>,
    find_open: Statement<'c>,
    open_conversation: Statement<'c>,
    insert_message: Statement<'c>,
    touch_conversation: Statement<'c>,
    queue_delivery: Statement<'c>,
    conn: &'c Connection,
}

impl<'c> Statements<'c> {
    pub(super) fn prepare(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Self {
            // IMMEDIATE takes the write lock up front: a deferred transaction would read first and then fail
            // with SQLITE_BUSY when upgrading to write while another process holds the lock, instead of waiting.
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            savepoint: conn.prepare("SAVEPOINT one")?,
            rollback_to: conn.prepare("ROLLBACK TO one")?,
            release: conn.prepare("RELEASE one")?,
            find_by_key: conn.prepare(FIND_BY_KEY)?,
            find_conversation: conn.prepare(FIND_CONVERSATION)?,
            find_open: conn.prepare(FIND_OPEN)?,
            open_conversation: conn.prepare(OPEN_CONVERSATION)?,
            insert_message: conn.prepare(INSERT_MESSAGE)?,
            touch_conversation: conn.prepare(TOUCH_CONVERSATION)?,
            queue_delivery: conn.prepare(QUEUE_DELIVERY)?,
            conn,
        })
    }

    pub(super) fn connection(&self) -> &'c Connection {
        self.conn
    }
}

/// A queued write without its answer's channel, which the writer keeps until the write's group is durable.
pub(super) struct Work {
    pub(super) envelope: Envelope,
    pub(super) received_at: Timestamp,
    pub(super) destinations: Vec<String>,
    pub(super) fingerprint: String,
    /// Set when the envelope names no conversation (see `queue::Write`).
    pub(super) open_key: Option<String>,
    pub(super) reply: Option<QueuedReply>,
}

/// Stores the work's message (or finds it stored), with one outbox row per destination, and its reply when the
/// message is new, inside the caller's transaction. On an error the caller rolls the whole write back to its
/// savepoint: a message is never stored without the reply queued with it.
pub(super) fn write_one(statements: &mut Statements<'_>, work: Work) -> Result<Replied, StoreError> {
    let Work {
        envelope,
        received_at,
        destinations,
        fingerprint,
        open_key,
        reply,
    } = work;
    let inserted = write_message(
        statements,
        envelope,
        received_at,
        &destinations,
        &fingerprint,
        open_key.as_deref(),
    )?;
    let reply = match reply {
        Some(queued) if !inserted.duplicate => {
            let (envelope, destinations) = queued.reply.complete(&inserted.message);
            let stored = write_message(
                statements,
                envelope,
                received_at,
                &destinations,
                &queued.fingerprint,
                None,
            )?;
            Some(stored.message)
        }
        _ => None,
    };
    Ok(Replied {
        inserted,
        reply: Ok(reply),
    })
}

fn write_message(
    statements: &mut Statements<'_>,
    envelope: Envelope,
    received_at: Timestamp,
    destinations: &[String],
    fingerprint: &str,
    open_key: Option<&str>,
) -> Result<Inserted, StoreError> {
    if let Some(found) = find_by_key(statements, envelope.idempotency_key.as_str())? {
        return replay(fingerprint, &found);
    }
    let now = codec::to_micros(received_at);
    let conversation = resolve_conversation(statements, &envelope, open_key, now)?;
    let message = envelope.into_message(MessageId::new(), conversation, received_at);
    let id = message.id.to_string();
    let conversation = conversation.to_string();
    statements.insert_message.execute(params![
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
    statements.touch_conversation.execute(params![now, conversation, now])?;
    // The deliveries are queued in the message's own transaction: an acknowledged message always has them, and
    // a duplicate (returned above) never queues them twice.
    for destination in destinations {
        statements.queue_delivery.execute(params![id, destination, now, now])?;
    }
    Ok(Inserted {
        message,
        duplicate: false,
    })
}

fn find_by_key(statements: &mut Statements<'_>, key: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(statements
        .find_by_key
        .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// The conversation the envelope belongs to: the one it names, or the customer's open one, opened now if there
/// is none. The write lock makes the lookup and the insert one step, so the `open_key` unique key (which still
/// guards against any other writer) is never hit here.
fn resolve_conversation(
    statements: &mut Statements<'_>,
    envelope: &Envelope,
    open_key: Option<&str>,
    now: i64,
) -> Result<ConversationId, StoreError> {
    let key = match (envelope.conversation_id, open_key) {
        (Some(id), _) => {
            let found = statements
                .find_conversation
                .query_row([id.to_string()], |_| Ok(()))
                .optional()?;
            return found.map(|()| id).ok_or(StoreError::ConversationNotFound(id));
        }
        (None, Some(key)) => Cow::Borrowed(key),
        // Not queued so (the queue computes the key for every such envelope), but cheap to get right.
        (None, None) => Cow::Owned(codec::envelope_open_key(envelope).unwrap_or_default()),
    };
    let account = envelope.source.account.as_deref();
    let open: Option<String> = statements
        .find_open
        .query_row([key.as_ref()], |row| row.get(0))
        .optional()?;
    if let Some(id) = open {
        return Ok(ConversationId::from_uuid(codec::parse_uuid(&id)?));
    }
    let id = ConversationId::new();
    statements.open_conversation.execute(params![
        id.to_string(),
        envelope.channel,
        account,
        envelope.sender.external_id,
        ConversationStatus::Bot.as_str(),
        key.as_ref(),
        now,
        now,
    ])?;
    Ok(id)
}
