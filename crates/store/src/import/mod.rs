//! The bulk import API: how the importer (`protofuse-migrate`) writes conversations and messages.
//!
//! The importer applies a batch of source rows and its own bookkeeping (`import_*` tables, the binlog
//! checkpoint) in one transaction it owns, so these functions take that transaction rather than opening their
//! own. What they write is exactly what the server's ingest writes, through the same codec: the same stored body,
//! the same [`crate::fingerprint`], and the open-conversation key for a conversation imported while still open,
//! so the customer's next message through any protocol joins it instead of opening a second one.
//!
//! Must never: be called with foreign-key checks on while messages may precede their conversation (the
//! importer's sessions turn them off and write a placeholder conversation in the same transaction).

use protofuse_model::{Conversation, ConversationStatus, Message};

pub mod connection;

use crate::codec;

/// A conversation as the importer writes it: the stored columns, computed once by the store's codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRow {
    id: String,
    channel: String,
    account: Option<String>,
    customer_id: String,
    status: &'static str,
    department: Option<String>,
    assigned_agent: Option<String>,
    created_at: i64,
    updated_at: i64,
    /// Set while open: the customer's next message resolves to this conversation.
    open_key: Option<String>,
}

impl ConversationRow {
    /// The row for `conversation`.
    pub fn new(conversation: &Conversation) -> Self {
        let open = conversation.status != ConversationStatus::Closed;
        Self {
            id: conversation.id.to_string(),
            open_key: open.then(|| {
                codec::open_key(
                    &conversation.channel,
                    conversation.account.as_deref(),
                    &conversation.customer_id,
                )
            }),
            channel: conversation.channel.clone(),
            account: conversation.account.clone(),
            customer_id: conversation.customer_id.clone(),
            status: conversation.status.as_str(),
            department: conversation.department.clone(),
            assigned_agent: conversation.assigned_agent.clone(),
            created_at: codec::to_micros(conversation.created_at),
            updated_at: codec::to_micros(conversation.updated_at),
        }
    }

    /// `conversations.id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stored columns `verify` reads back, in the order of [`CONVERSATION_COLUMNS`], as text (`None` for
    /// NULL; times as decimal microseconds).
    pub fn stored_fields(&self) -> Vec<Option<String>> {
        vec![
            Some(self.id.clone()),
            Some(self.channel.clone()),
            self.account.clone(),
            Some(self.customer_id.clone()),
            Some(self.status.to_owned()),
            self.department.clone(),
            self.assigned_agent.clone(),
            Some(self.created_at.to_string()),
            Some(self.updated_at.to_string()),
        ]
    }
}

/// A message as the importer writes it: the stored columns, computed once by the store's codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    id: String,
    conversation_id: String,
    idempotency_key: String,
    fingerprint: String,
    direction: &'static str,
    sender_role: &'static str,
    content_type: &'static str,
    received_at: i64,
    body: String,
}

impl MessageRow {
    /// The row for `message`.
    pub fn new(message: &Message) -> Self {
        Self {
            id: message.id.to_string(),
            conversation_id: message.conversation_id.to_string(),
            idempotency_key: message.idempotency_key.as_str().to_owned(),
            fingerprint: codec::fingerprint(message.direction, &message.sender, &message.content),
            direction: message.direction.as_str(),
            sender_role: message.sender.role.as_str(),
            content_type: message.content.kind(),
            received_at: codec::to_micros(message.received_at),
            body: codec::encode_message(message),
        }
    }

    /// `messages.id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stored body's size, for sizing statements.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The stored columns `verify` reads back, in the order of [`MESSAGE_COLUMNS`], as text.
    pub fn stored_fields(&self) -> Vec<Option<String>> {
        vec![
            Some(self.id.clone()),
            Some(self.conversation_id.clone()),
            Some(self.idempotency_key.clone()),
            Some(self.direction.to_owned()),
            Some(self.sender_role.to_owned()),
            Some(self.content_type.to_owned()),
            Some(self.received_at.to_string()),
            Some(self.body.clone()),
        ]
    }
}

/// The conversation columns [`ConversationRow::stored_fields`] lists, for reading them back.
pub const CONVERSATION_COLUMNS: &str =
    "id, channel, account, customer_id, status, department, assigned_agent, created_at, updated_at";

/// The message columns [`MessageRow::stored_fields`] lists, for reading them back.
pub const MESSAGE_COLUMNS: &str =
    "id, conversation_id, idempotency_key, direction, sender_role, content_type, received_at, body";

/// Rows per multi-row statement: 1,000 rows write 1.4–2x as fast as 200 (fewer round trips and statement
/// executions; migrate-tools/BENCHMARKS.md), and 10,000 placeholders stay far below both backends' limits.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Bytes of large text per statement, so a statement fits MySQL 5.7's default 4 MB `max_allowed_packet`.
const BYTES_PER_STATEMENT: usize = 2 << 20;

/// Splits `rows` into multi-row statements of at most 1,000 rows and, counting `size` of each, about 2 MiB
/// (a single larger row still gets its own statement). The importer sizes its own tables' statements alike.
pub fn statements<T>(rows: &[T], size: impl Fn(&T) -> usize) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while let Some(row) = rest.get(n)
            && n < ROWS_PER_STATEMENT
        {
            bytes += size(row);
            if n > 0 && bytes > BYTES_PER_STATEMENT {
                break;
            }
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// The bulk writes, written once over the backend's sqlx database type and its dialect (the same approach as
/// `queries.rs`).
macro_rules! impl_import {
    ($db:ty) => {
        use super::{ConversationRow, MessageRow, statements};

        /// Inserts or replaces conversations by id. A conversation that is still open also takes its customer's
        /// open-conversation slot, unless another conversation holds it (a legacy helpdesk may have several
        /// open tickets per customer; the first one written keeps the slot); a closed one gives the slot up.
        pub async fn upsert_conversations(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[&ConversationRow],
        ) -> Result<(), sqlx::Error> {
            for chunk in statements(rows, |_| 0) {
                write_conversations(tx, chunk, false).await?;
            }
            for row in rows {
                if let Some(key) = &row.open_key {
                    sqlx::query(&format!(
                        "{UPDATE_IGNORE} conversations SET open_key = ? WHERE id = ? AND open_key IS NULL"
                    ))
                    .bind(key)
                    .bind(&row.id)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Ok(())
        }

        /// Inserts conversations that do not exist yet and leaves existing ones alone: placeholders for messages
        /// whose conversation row has not been imported (or is not mapped).
        pub async fn insert_missing_conversations(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[&ConversationRow],
        ) -> Result<(), sqlx::Error> {
            for chunk in statements(rows, |_| 0) {
                write_conversations(tx, chunk, true).await?;
            }
            Ok(())
        }

        async fn write_conversations(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[&ConversationRow],
            only_if_missing: bool,
        ) -> Result<(), sqlx::Error> {
            const COLUMNS: [&str; 9] = [
                "id",
                "channel",
                "account",
                "customer_id",
                "status",
                "department",
                "assigned_agent",
                "created_at",
                "updated_at",
            ];
            if rows.is_empty() {
                return Ok(());
            }
            let head = if only_if_missing { INSERT_IGNORE } else { "INSERT" };
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!("{head} INTO conversations ({}) ", COLUMNS.join(", ")));
            qb.push_values(rows, |mut b, c| {
                b.push_bind(c.id.as_str())
                    .push_bind(c.channel.as_str())
                    .push_bind(c.account.as_deref())
                    .push_bind(c.customer_id.as_str())
                    .push_bind(c.status)
                    .push_bind(c.department.as_deref())
                    .push_bind(c.assigned_agent.as_deref())
                    .push_bind(c.created_at)
                    .push_bind(c.updated_at);
            });
            if !only_if_missing {
                qb.push(upsert_tail("id", &COLUMNS[1..]));
                qb.push(", ").push(RELEASE_OPEN_KEY_WHEN_CLOSED);
            }
            qb.build().execute(&mut **tx).await?;
            Ok(())
        }

        /// Inserts or replaces messages by idempotency key, which names the source row: a message whose sent
        /// time changed has a new id (ids are time-ordered), and the update moves the row to it. A fresh row
        /// costs one insert, where deleting by key first probed the unique index once more for every row.
        pub async fn upsert_messages(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[&MessageRow],
        ) -> Result<(), sqlx::Error> {
            const COLUMNS: [&str; 9] = [
                "idempotency_key",
                "id",
                "conversation_id",
                "fingerprint",
                "direction",
                "sender_role",
                "content_type",
                "received_at",
                "body",
            ];
            for chunk in statements(rows, |m| m.body.len()) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO messages ({}) ", COLUMNS.join(", ")));
                qb.push_values(chunk, |mut b, m| {
                    b.push_bind(m.idempotency_key.as_str())
                        .push_bind(m.id.as_str())
                        .push_bind(m.conversation_id.as_str())
                        .push_bind(m.fingerprint.as_str())
                        .push_bind(m.direction)
                        .push_bind(m.sender_role)
                        .push_bind(m.content_type)
                        .push_bind(m.received_at)
                        .push_bind(m.body.as_str());
                });
                qb.push(upsert_tail("idempotency_key", &COLUMNS[1..]));
                qb.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Removes the message stored under `idempotency_key`, if any.
        pub async fn delete_message(
            tx: &mut sqlx::Transaction<'_, $db>,
            idempotency_key: &str,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("DELETE FROM messages WHERE idempotency_key = ?")
                .bind(idempotency_key)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Removes the conversation `id`, if it exists (its messages stay, as they do in the source).
        pub async fn delete_conversation(tx: &mut sqlx::Transaction<'_, $db>, id: &str) -> Result<(), sqlx::Error> {
            sqlx::query("DELETE FROM conversations WHERE id = ?")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    };
}

/// The bulk writes on SQLite.
pub mod sqlite {
    const INSERT_IGNORE: &str = "INSERT OR IGNORE";
    const UPDATE_IGNORE: &str = "UPDATE OR IGNORE";
    const RELEASE_OPEN_KEY_WHEN_CLOSED: &str =
        "open_key = CASE WHEN excluded.status = 'closed' THEN NULL ELSE conversations.open_key END";

    fn upsert_tail(conflict: &str, columns: &[&str]) -> String {
        let sets: Vec<String> = columns.iter().map(|c| format!("{c} = excluded.{c}")).collect();
        format!(" ON CONFLICT ({conflict}) DO UPDATE SET {}", sets.join(", "))
    }

    impl_import!(sqlx::Sqlite);
}

/// The bulk writes on MySQL/MariaDB.
pub mod mysql {
    const INSERT_IGNORE: &str = "INSERT IGNORE";
    const UPDATE_IGNORE: &str = "UPDATE IGNORE";
    // `VALUES(status)`, not `status`: assignments run left to right, and `status` is already the new value.
    const RELEASE_OPEN_KEY_WHEN_CLOSED: &str = "open_key = IF(VALUES(status) = 'closed', NULL, open_key)";

    fn upsert_tail(_conflict: &str, columns: &[&str]) -> String {
        let sets: Vec<String> = columns.iter().map(|c| format!("{c} = VALUES({c})")).collect();
        format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
    }

    impl_import!(sqlx::MySql);
}

#[cfg(test)]
mod tests {
    use super::{BYTES_PER_STATEMENT, ROWS_PER_STATEMENT, statements};

    #[test]
    fn statements_are_bounded_by_rows_and_by_bytes() {
        let small = vec![10_usize; 2_500];
        let sizes: Vec<usize> = statements(&small, |n| *n).map(<[usize]>::len).collect();
        assert_eq!(sizes, [ROWS_PER_STATEMENT, ROWS_PER_STATEMENT, 500]);

        let big = vec![BYTES_PER_STATEMENT / 3; 7];
        let sizes: Vec<usize> = statements(&big, |n| *n).map(<[usize]>::len).collect();
        assert_eq!(sizes, [3, 3, 1]);

        let huge = vec![BYTES_PER_STATEMENT * 2; 2];
        let sizes: Vec<usize> = statements(&huge, |n| *n).map(<[usize]>::len).collect();
        assert_eq!(sizes, [1, 1], "an oversized row still goes, alone");
        assert_eq!(statements(&[] as &[usize], |n| *n).count(), 0);
    }
}
