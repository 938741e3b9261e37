//! The store's SQL, written once and instantiated for each backend by [`impl_store!`].
//!
//! Both backends accept the same statements (`?` placeholders, no vendor syntax), so a macro over the concrete
//! sqlx database type keeps one copy of the logic without sqlx's generic-executor bounds. A backend type
//! provides a `reader` pool for queries and an inherent `insert` that runs the generated `write_one` inside a
//! transaction of its choosing (SQLite: many per transaction; MySQL: one).

/// Defines `write_one` for `$db`: one message write through sqlx. MySQL runs it, one per transaction; the SQLite
/// backend runs the same steps and SQL on its writer thread's own connection (`sqlite/message.rs`).
macro_rules! impl_write_one {
    ($db:ty) => {
        /// The steps of one message write, on one connection inside the caller's transaction. Both backends
        /// run it; the SQLite backend runs many per transaction (group commit), MySQL one.
        async fn write_one(
            conn: &mut <$db as sqlx::Database>::Connection,
            envelope: Envelope,
            received_at: Timestamp,
            destinations: &[String],
        ) -> Result<Inserted, StoreError> {
            let fingerprint = codec::envelope_fingerprint(&envelope);
            if let Some(found) = find_by_key(conn, envelope.idempotency_key.as_str()).await? {
                return $crate::queries::replay(&fingerprint, &found);
            }
            let now = codec::to_micros(received_at);
            let conversation = resolve_conversation(conn, &envelope, now).await?;
            // The touch matches the row whatever its time, so InnoDB holds its lock to the commit: writers of
            // one conversation draw their ids one after the other, and the id order is their commit order
            // (readers resume after the last id they saw). A conditional touch that matched nothing would
            // release the lock under READ COMMITTED.
            sqlx::query("UPDATE conversations SET updated_at = CASE WHEN updated_at < ? THEN ? ELSE updated_at END WHERE id = ?")
                .bind(now)
                .bind(now)
                .bind(conversation.to_string())
                .execute(&mut *conn)
                .await?;
            let message = envelope.into_message(MessageId::new(), conversation, received_at);
            let inserted = sqlx::query(
                "INSERT INTO messages (id, conversation_id, idempotency_key, fingerprint, direction, \
                 sender_role, content_type, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(message.id.to_string())
            .bind(conversation.to_string())
            .bind(message.idempotency_key.as_str())
            .bind(&fingerprint)
            .bind(message.direction.as_str())
            .bind(message.sender.role.as_str())
            .bind(message.content.kind())
            .bind(now)
            .bind(codec::encode_message(&message))
            .execute(&mut *conn)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if codec::is_unique_violation(&e) => {
                    // A concurrent delivery of the same key committed first (MySQL waits for it on the key).
                    let found = find_by_key(conn, message.idempotency_key.as_str()).await?;
                    let found = found.ok_or_else(|| StoreError::Corrupt("duplicate key vanished".to_owned()))?;
                    return $crate::queries::replay(&fingerprint, &found);
                }
                Err(e) => return Err(e.into()),
            }
            // The deliveries are queued in the message's own transaction: an acknowledged message always has
            // them, and a duplicate (returned above) never queues them twice.
            for destination in destinations {
                sqlx::query(
                    "INSERT INTO outbox (message_id, destination, attempts, due_at, lease_until, created_at) \
                     VALUES (?, ?, 0, ?, 0, ?)",
                )
                .bind(message.id.to_string())
                .bind(destination)
                .bind(now)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            Ok(Inserted {
                message,
                duplicate: false,
            })
        }

        async fn find_by_key(
            conn: &mut <$db as sqlx::Database>::Connection,
            key: &str,
        ) -> Result<Option<(String, String)>, StoreError> {
            let found: Option<(codec::Text, codec::Text)> =
                sqlx::query_as("SELECT fingerprint, body FROM messages WHERE idempotency_key = ?")
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await?;
            Ok(found.map(|(f, b)| (f.0, b.0)))
        }

        /// The conversation the envelope belongs to: the one it names, or the customer's open one, opened now
        /// if there is none. A concurrent opener is settled by the `open_key` unique key; the re-read after a
        /// conflict sees its row because transactions read committed data (MySQL sessions are set to READ
        /// COMMITTED; SQLite has a single writer).
        async fn resolve_conversation(
            conn: &mut <$db as sqlx::Database>::Connection,
            envelope: &Envelope,
            now: i64,
        ) -> Result<ConversationId, StoreError> {
            if let Some(id) = envelope.conversation_id {
                let found: Option<(codec::Text,)> = sqlx::query_as("SELECT id FROM conversations WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                return found.map(|_| id).ok_or(StoreError::ConversationNotFound(id));
            }
            let account = envelope.source.account.as_deref();
            let key = codec::open_key(&envelope.channel, account, &envelope.sender.external_id);
            for _ in 0..2 {
                let open: Option<(codec::Text,)> = sqlx::query_as("SELECT id FROM conversations WHERE open_key = ?")
                    .bind(&key)
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some((id,)) = open {
                    return Ok(ConversationId::from_uuid(codec::parse_uuid(&id.0)?));
                }
                let id = ConversationId::new();
                let inserted = sqlx::query(
                    "INSERT INTO conversations \
                     (id, channel, account, customer_id, status, open_key, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id.to_string())
                .bind(&envelope.channel)
                .bind(account)
                .bind(&envelope.sender.external_id)
                .bind(ConversationStatus::Bot.as_str())
                .bind(&key)
                .bind(now)
                .bind(now)
                .execute(&mut *conn)
                .await;
                match inserted {
                    Ok(_) => return Ok(id),
                    // Another writer opened it first; read theirs on the next turn.
                    Err(e) if codec::is_unique_violation(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(StoreError::Corrupt(
                "open conversation vanished while resolving it".to_owned(),
            ))
        }
    };
}

/// A missing table: SQLite says so in its message (its code is the generic `SQLITE_ERROR`), MySQL and MariaDB by
/// SQLSTATE `42S02`.
pub(crate) fn no_such_table(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("42S02") || d.message().contains("no such table"))
}

/// Implements [`crate::Store`] for `$store`, which has `reader` and `writer: sqlx::Pool<$db>` fields, a `turn:
/// WriteTurn` taken before writing on `writer`, and inherent
/// `async fn insert(&self, Envelope, Timestamp, Vec<String>) -> Result<Inserted, StoreError>` and
/// `async fn answered(&self, Envelope, Timestamp, Vec<String>, Reply) -> Result<Replied, StoreError>`.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal, $begin:literal) => {
        #[async_trait::async_trait]
        impl Store for $store {
            async fn insert_routed(
                &self,
                envelope: Envelope,
                received_at: Timestamp,
                destinations: Vec<String>,
            ) -> Result<Inserted, StoreError> {
                self.insert(envelope, received_at, destinations).await
            }

            async fn insert_answered(
                &self,
                envelope: Envelope,
                received_at: Timestamp,
                destinations: Vec<String>,
                reply: $crate::store::Reply,
            ) -> Result<$crate::store::Replied, StoreError> {
                self.answered(envelope, received_at, destinations, reply).await
            }

            async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM conversations WHERE id = ?",
                    codec::CONVERSATION_COLUMNS
                );
                let row: Option<ConversationTuple> = sqlx::query_as(&sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.reader)
                    .await?;
                row.map(|r| tuple_to_row(r).into_conversation()).transpose()
            }

            async fn messages(
                &self,
                conversation: ConversationId,
                page: PageRequest,
            ) -> Result<Page<Message>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT id, body FROM messages WHERE conversation_id = ");
                qb.push_bind(conversation.to_string());
                push_cursor(&mut qb, &page);
                let rows: Vec<(codec::Text, codec::Text)> = qb.build_query_as().fetch_all(&self.reader).await?;
                let (rows, next) = split_page(rows, &page, |r| &r.0.0)?;
                let items = rows
                    .iter()
                    .map(|r| codec::decode_message(&r.1.0))
                    .collect::<Result<_, _>>()?;
                Ok(Page {
                    items,
                    next_cursor: next,
                })
            }

            async fn conversations(
                &self,
                filter: &ConversationFilter,
                page: PageRequest,
            ) -> Result<Page<Conversation>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM conversations WHERE 1 = 1",
                    codec::CONVERSATION_COLUMNS
                ));
                if let Some(customer) = &filter.customer_id {
                    qb.push(" AND customer_id = ").push_bind(customer.clone());
                }
                if let Some(status) = filter.status {
                    qb.push(" AND status = ").push_bind(status.as_str());
                }
                push_cursor(&mut qb, &page);
                let rows: Vec<ConversationTuple> = qb.build_query_as().fetch_all(&self.reader).await?;
                let (rows, next) = split_page(rows, &page, |r| &r.0.0)?;
                let items = rows
                    .into_iter()
                    .map(|r| tuple_to_row(r).into_conversation())
                    .collect::<Result<_, _>>()?;
                Ok(Page {
                    items,
                    next_cursor: next,
                })
            }

            async fn change_status(
                &self,
                id: ConversationId,
                change: &$crate::StatusChange,
                at: Timestamp,
            ) -> Result<Option<(Conversation, Conversation)>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM conversations WHERE id = ?",
                    codec::CONVERSATION_COLUMNS
                );
                let _turn = self.turn.take().await;
                let mut tx = self.writer.begin_with($begin).await?;
                let row: Option<ConversationTuple> = sqlx::query_as(&sql)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let before = tuple_to_row(row).into_conversation()?;
                let closing = change.status == ConversationStatus::Closed;
                // The assignee check is in the UPDATE's own WHERE, not only in the read above: MySQL re-reads
                // the row under the UPDATE's lock, so two nodes taking the same conversation cannot both pass.
                // (SQLite's single writer serialises them anyway.) Both drivers report matched rows.
                let expected = change.if_assignee.as_ref();
                let updated = sqlx::query(
                    "UPDATE conversations SET status = ?, department = COALESCE(?, department), \
                     assigned_agent = COALESCE(?, assigned_agent), \
                     open_key = CASE WHEN ? THEN NULL ELSE open_key END, updated_at = ? WHERE id = ? \
                     AND (? OR assigned_agent = ? OR (assigned_agent IS NULL AND ?))",
                )
                .bind(change.status.as_str())
                .bind(change.department.as_deref())
                .bind(change.assigned_agent.as_deref())
                .bind(closing)
                .bind(codec::to_micros(at))
                .bind(id.to_string())
                .bind(expected.is_none())
                .bind(expected.and_then($crate::Assignee::agent))
                .bind(expected == Some(&$crate::Assignee::Nobody))
                .execute(&mut *tx)
                .await?;
                let row: ConversationTuple = sqlx::query_as(&sql)
                    .bind(id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let after = tuple_to_row(row).into_conversation()?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::AssigneeChanged {
                        current: after.assigned_agent,
                    });
                }
                tx.commit().await?;
                Ok(Some((before, after)))
            }

            async fn set_triage(
                &self,
                id: MessageId,
                outcome: &protofuse_model::TriageOutcome,
            ) -> Result<Option<Message>, StoreError> {
                let _turn = self.turn.take().await;
                let mut tx = self.writer.begin_with($begin).await?;
                let body: Option<(codec::Text,)> = sqlx::query_as("SELECT body FROM messages WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((body,)) = body else { return Ok(None) };
                let mut message = codec::decode_message(&body.0)?;
                message.triage = Some(outcome.clone());
                sqlx::query("UPDATE messages SET body = ? WHERE id = ?")
                    .bind(codec::encode_message(&message))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(message))
            }

            async fn labelled_messages(&self, page: PageRequest) -> Result<Page<$crate::Labelled>, StoreError> {
                // Keyset on the message id; the join is by primary key, so a page costs its rows, not the table.
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT m.id, c.department, m.body FROM messages m \
                     JOIN conversations c ON c.id = m.conversation_id \
                     WHERE c.department IS NOT NULL AND m.sender_role = 'customer' AND m.content_type = 'text'",
                );
                if let Some(after) = page.after {
                    qb.push(" AND m.id > ").push_bind(after.to_string());
                }
                qb.push(" ORDER BY m.id LIMIT ")
                    .push_bind(i64::from(page.clamped_limit()) + 1);
                let rows: Vec<(codec::Text, codec::Text, codec::Text)> =
                    qb.build_query_as().fetch_all(&self.reader).await?;
                let (rows, next) = split_page(rows, &page, |r| &r.0.0)?;
                let items = rows
                    .into_iter()
                    .map(|(_, department, body)| {
                        Ok($crate::Labelled {
                            department: department.0,
                            message: codec::decode_message(&body.0)?,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                Ok(Page {
                    items,
                    next_cursor: next,
                })
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.reader).await?;
                Ok(())
            }

            async fn import_progress(&self) -> Result<Vec<$crate::ImportProgress>, StoreError> {
                type Row = (
                    String,
                    Option<String>,
                    Option<i64>,
                    Option<String>,
                    i64,
                    i64,
                    i64,
                    Option<i64>,
                    i64,
                    Option<String>,
                );
                let sql = "SELECT name, file, pos, gtid, snapshot_done, rows_applied, events_applied, \
                           last_event_at, errors, last_error FROM import_checkpoint ORDER BY name";
                let rows: Vec<Row> = match sqlx::query_as(sql).fetch_all(&self.reader).await {
                    Ok(rows) => rows,
                    // The importer creates its tables on first use: a store never imported into has none.
                    Err(e) if $crate::queries::no_such_table(&e) => return Ok(Vec::new()),
                    Err(e) => return Err(e.into()),
                };
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::ImportProgress {
                        name: r.0,
                        file: r.1,
                        pos: r.2,
                        gtid: r.3,
                        snapshot_done: r.4 != 0,
                        rows_applied: r.5,
                        events_applied: r.6,
                        last_event_at: r.7,
                        errors: r.8,
                        last_error: r.9,
                    })
                    .collect())
            }

            fn backend(&self) -> &'static str {
                $backend
            }
        }

        /// Appends the cursor condition, order and limit (one extra row, to learn whether a next page exists).
        fn push_cursor(qb: &mut sqlx::QueryBuilder<'_, $db>, page: &PageRequest) {
            let (cmp, dir) = match page.order {
                Order::Ascending => (" > ", " ASC"),
                Order::Descending => (" < ", " DESC"),
            };
            if let Some(after) = page.after {
                qb.push(" AND id").push(cmp).push_bind(after.to_string());
            }
            qb.push(" ORDER BY id")
                .push(dir)
                .push(" LIMIT ")
                .push_bind(i64::from(page.clamped_limit()) + 1);
        }
    };
}

pub(crate) use {impl_store, impl_write_one};

use crate::codec::{self, Text};
use crate::error::StoreError;
use crate::page::PageRequest;
use crate::store::Inserted;

/// A conversation row as sqlx decodes it (tuples need no `FromRow` derive per backend).
pub(crate) type ConversationTuple = (
    Text,
    Text,
    Option<Text>,
    Text,
    Text,
    Option<Text>,
    Option<Text>,
    i64,
    i64,
);

pub(crate) fn tuple_to_row(t: ConversationTuple) -> codec::ConversationRow {
    codec::ConversationRow {
        id: t.0.0,
        channel: t.1.0,
        account: t.2.map(|a| a.0),
        customer_id: t.3.0,
        status: t.4.0,
        department: t.5.map(|d| d.0),
        assigned_agent: t.6.map(|a| a.0),
        created_at: t.7,
        updated_at: t.8,
    }
}

/// Drops the probe row fetched beyond the limit and derives the next cursor from the last row kept.
pub(crate) fn split_page<T>(
    mut rows: Vec<T>,
    page: &PageRequest,
    id_of: impl Fn(&T) -> &String,
) -> Result<(Vec<T>, Option<uuid::Uuid>), StoreError> {
    let limit = page.clamped_limit() as usize;
    if rows.len() <= limit {
        return Ok((rows, None));
    }
    rows.truncate(limit);
    let last = rows.last().map(&id_of).map(|id| codec::parse_uuid(id)).transpose()?;
    Ok((rows, last))
}

/// Answers a write whose key is already stored: the same content is a duplicate, other content a reused key.
///
/// Rows written before [`fingerprint`] covered only what a message says carry a hash of other inputs (the whole
/// envelope, or the imported body); for those the fingerprint is recomputed from the stored message itself, so
/// their retries are still recognised.
pub(crate) fn replay(fingerprint: &str, found: &(String, String)) -> Result<Inserted, StoreError> {
    let message = codec::decode_message(&found.1)?;
    if found.0 != fingerprint && codec::fingerprint(message.direction, &message.sender, &message.content) != fingerprint
    {
        return Err(StoreError::KeyReused);
    }
    Ok(Inserted {
        message,
        duplicate: true,
    })
}
