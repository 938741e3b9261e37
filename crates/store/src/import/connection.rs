//! The bulk writes on SQLite through a raw connection (rusqlite), for an importer that runs its batches on a
//! thread of its own: the same SQL and the same conflict handling as [`super::sqlite`], one row per statement.
//!
//! Why a second copy of the SQLite writes: a profile of the importer's snapshot (migrate-tools/BENCHMARKS.md,
//! 2026-12-03) put 58% of its CPU on the write side: 44% in SQLite itself, a quarter of that in its statement
//! journal (a multi-row INSERT that may fail halfway first copies every page it changes to a temporary file, so
//! that it can be undone alone; a single-row INSERT needs none), and 14% in sqlx around it (each multi-row
//! statement's arguments encoded into owned values, then handed to the connection's worker thread). Here each
//! statement is prepared once and cached on the connection, and a row's columns are bound straight from the
//! [`ConversationRow`] or [`MessageRow`] the codec computed. rusqlite links the same libsqlite3 as sqlx (see
//! `sqlite/writer.rs`), so the file is read and written alike.
//!
//! Every function runs inside the caller's transaction (a `rusqlite::Transaction` derefs to the connection).

use rusqlite::{Connection, params};

use super::{ConversationRow, MessageRow};

/// Statements kept prepared on an importer's connection: the five here plus the importer's own bookkeeping.
pub const STATEMENT_CACHE: usize = 32;

const UPSERT_CONVERSATION: &str = "INSERT INTO conversations \
     (id, channel, account, customer_id, status, department, assigned_agent, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET channel = excluded.channel, \
     account = excluded.account, customer_id = excluded.customer_id, status = excluded.status, \
     department = excluded.department, assigned_agent = excluded.assigned_agent, \
     created_at = excluded.created_at, updated_at = excluded.updated_at, \
     open_key = CASE WHEN excluded.status = 'closed' THEN NULL ELSE conversations.open_key END";
const INSERT_MISSING_CONVERSATION: &str = "INSERT OR IGNORE INTO conversations \
     (id, channel, account, customer_id, status, department, assigned_agent, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
const TAKE_OPEN_KEY: &str = "UPDATE OR IGNORE conversations SET open_key = ? WHERE id = ? AND open_key IS NULL";
const UPSERT_MESSAGE: &str = "INSERT INTO messages \
     (idempotency_key, id, conversation_id, fingerprint, direction, sender_role, content_type, received_at, body) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO UPDATE SET id = excluded.id, \
     conversation_id = excluded.conversation_id, fingerprint = excluded.fingerprint, \
     direction = excluded.direction, sender_role = excluded.sender_role, content_type = excluded.content_type, \
     received_at = excluded.received_at, body = excluded.body";
const DELETE_MESSAGE: &str = "DELETE FROM messages WHERE idempotency_key = ?";
const DELETE_CONVERSATION: &str = "DELETE FROM conversations WHERE id = ?";

/// Inserts or replaces conversations by id, then gives each open one its customer's open-conversation slot unless
/// another conversation holds it, as [`super::sqlite::upsert_conversations`] does. The slots are taken after
/// every row is written, so a conversation closed later in the same batch has already given its slot up.
pub fn upsert_conversations(conn: &Connection, rows: &[&ConversationRow]) -> rusqlite::Result<()> {
    write_conversations(conn, UPSERT_CONVERSATION, rows)?;
    let mut take = conn.prepare_cached(TAKE_OPEN_KEY)?;
    for row in rows {
        if let Some(key) = &row.open_key {
            take.execute(params![key, row.id])?;
        }
    }
    Ok(())
}

/// Inserts conversations that do not exist yet and leaves existing ones alone (placeholders for messages whose
/// conversation row has not been imported, or is not mapped).
pub fn insert_missing_conversations(conn: &Connection, rows: &[&ConversationRow]) -> rusqlite::Result<()> {
    write_conversations(conn, INSERT_MISSING_CONVERSATION, rows)
}

fn write_conversations(conn: &Connection, sql: &str, rows: &[&ConversationRow]) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    for c in rows {
        statement.execute(params![
            c.id,
            c.channel,
            c.account,
            c.customer_id,
            c.status,
            c.department,
            c.assigned_agent,
            c.created_at,
            c.updated_at,
        ])?;
    }
    Ok(())
}

/// Inserts or replaces messages by idempotency key, as [`super::sqlite::upsert_messages`] does.
pub fn upsert_messages(conn: &Connection, rows: &[&MessageRow]) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(UPSERT_MESSAGE)?;
    for m in rows {
        statement.execute(params![
            m.idempotency_key,
            m.id,
            m.conversation_id,
            m.fingerprint,
            m.direction,
            m.sender_role,
            m.content_type,
            m.received_at,
            m.body,
        ])?;
    }
    Ok(())
}

/// Removes the message stored under `idempotency_key`, if any.
pub fn delete_message(conn: &Connection, idempotency_key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(DELETE_MESSAGE)?.execute([idempotency_key])?;
    Ok(())
}

/// Removes the conversation `id`, if it exists (its messages stay, as they do in the source).
pub fn delete_conversation(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(DELETE_CONVERSATION)?.execute([id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use protofuse_model::{Conversation, ConversationId, ConversationStatus};
    use rusqlite::Connection;

    use super::{ConversationRow, upsert_conversations};

    fn store() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../migrations/sqlite/0001_init.sql"))
            .unwrap();
        conn
    }

    fn conversation(n: u128, status: ConversationStatus) -> ConversationRow {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        ConversationRow::new(&Conversation {
            id: ConversationId::from_uuid(uuid::Uuid::from_u128(n)),
            channel: "gofly".to_owned(),
            account: Some("gofly".to_owned()),
            customer_id: "v1".to_owned(),
            status,
            department: None,
            assigned_agent: None,
            created_at: at,
            updated_at: at,
        })
    }

    fn holder(conn: &Connection) -> Option<String> {
        conn.query_row("SELECT id FROM conversations WHERE open_key IS NOT NULL", [], |r| {
            r.get(0)
        })
        .ok()
    }

    /// The open-conversation rule of the bulk import API: the first open conversation written keeps the
    /// customer's slot, and one closed later in the same batch has given it up before the slots are taken.
    #[test]
    fn the_open_slot_goes_to_the_first_open_conversation_after_the_batch_s_closings() {
        let conn = store();
        let (first, second) = (
            conversation(1, ConversationStatus::Queued),
            conversation(2, ConversationStatus::Queued),
        );
        upsert_conversations(&conn, &[&first, &second]).unwrap();
        assert_eq!(holder(&conn).as_deref(), Some(first.id()));

        // The second opens before the first closes, in one batch: the slot is free once the batch is written.
        let closed = conversation(1, ConversationStatus::Closed);
        upsert_conversations(&conn, &[&second, &closed]).unwrap();
        assert_eq!(holder(&conn).as_deref(), Some(second.id()));
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM conversations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }
}
