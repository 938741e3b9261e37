//! One batch of message writes in one transaction, with a statement per step for the whole batch.
//!
//! The steps are `write_one`'s (`queries.rs`), each over every write at once:
//! 1. keys stored before: one `SELECT … WHERE idempotency_key IN (…)`; each hit is answered as a duplicate or
//!    a reused key, exactly as `replay` answers it, and writes nothing;
//! 2. conversations: the named ones must exist (one `SELECT … IN`), the customers' open ones are looked up by
//!    `open_key` (one `SELECT … IN`), and those missing are opened with one multi-row `INSERT`, where the
//!    `open_key` unique key still settles a race with another writer (this process's or another node's);
//! 3. one touch `UPDATE … WHERE id IN (…)` over every conversation written to: InnoDB locks the rows in id
//!    order, so two batches never take them in opposite orders, and holds them to the commit;
//! 4. the message ids are drawn only now, with every row lock held, so the ids of one conversation follow its
//!    commit order as the per-message path guarantees; one multi-row `INSERT` of the messages and one of their
//!    outbox rows, in the same transaction.
//!
//! Anything the batch cannot settle in bulk fails the statement (a unique violation from a concurrent writer,
//! a deadlock, a value the column refuses): the batch rolls back and the caller writes each message on its own
//! (`writer.rs`). Nothing is answered before the commit.
//!
//! Statement shapes: sqlx prepares each distinct SQL text once per connection. `IN` lists are padded to a power
//! of two by repeating their last value, and multi-row inserts are cut into chunks of power-of-two rows, so a
//! statement comes in at most nine shapes however the batches vary, and every shape stays prepared.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use protofuse_model::{ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp};
use sqlx::QueryBuilder;
use sqlx::mysql::{MySql, MySqlConnection, MySqlPool};
use tokio::sync::oneshot;

use crate::codec::{self, Text};
use crate::error::StoreError;
use crate::queries::replay;
use crate::store::Inserted;

/// Most writes in one batch: bounds how long a batch holds its row locks and the size of its statements (a
/// message row has nine parameters; a statement may have 65,535).
pub(super) const MAX_BATCH: usize = 128;

/// Most bytes of row data in one insert statement (beyond its first row), well under the smallest default
/// `max_allowed_packet` (4 MiB in MySQL 5.7; 16 MiB in MariaDB, 64 MiB in MySQL 8).
const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// What a message row costs besides its body, for [`MAX_STATEMENT_BYTES`].
const MESSAGE_ROW_OVERHEAD: usize = 256;

/// One queued message write and where its answer goes.
pub(super) struct Write {
    pub(super) envelope: Envelope,
    pub(super) received_at: Timestamp,
    pub(super) destinations: Vec<String>,
    pub(super) done: oneshot::Sender<Result<Inserted, StoreError>>,
}

impl Write {
    /// Sends the caller its answer.
    pub(super) fn answer(self, result: Result<Inserted, StoreError>) {
        // The caller may have given up (its request timed out); the write stands either way.
        let _ = self.done.send(result);
    }
}

/// Why a batch was not stored.
pub(super) enum Failed {
    /// A statement was refused (a conflict, a deadlock, a bad value) and the batch rolled back: nothing of it
    /// was stored, and each write may go again on its own.
    Refused(StoreError),
    /// The database could not be reached, or `COMMIT` failed (whether it took effect is then unknown): every
    /// write of the batch fails with this; a client's retry with the same key settles it.
    Unavailable(sqlx::Error),
}

/// Writes `writes` (no two with the same idempotency key) in one transaction; the answers are in their order.
pub(super) async fn commit(pool: &MySqlPool, writes: &[Write]) -> Result<Vec<Result<Inserted, StoreError>>, Failed> {
    let mut tx = pool.begin().await.map_err(Failed::Unavailable)?;
    match write_all(&mut tx, writes).await {
        Ok(answers) => {
            tx.commit().await.map_err(Failed::Unavailable)?;
            Ok(answers)
        }
        Err(e) => {
            // Explicitly, not on drop: the per-message writes that follow must not wait on this batch's locks.
            tx.rollback().await.map_err(Failed::Unavailable)?;
            Err(Failed::Refused(e))
        }
    }
}

/// The batch's statements, inside the caller's transaction.
async fn write_all(
    conn: &mut MySqlConnection,
    writes: &[Write],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let fingerprints: Vec<String> = writes
        .iter()
        .map(|w| codec::envelope_fingerprint(&w.envelope))
        .collect();
    // Per write: its answer once known; a write still unanswered after step 2 is stored.
    let mut answers: Vec<Option<Result<Inserted, StoreError>>> = writes.iter().map(|_| None).collect();

    let keys: Vec<&str> = writes.iter().map(|w| w.envelope.idempotency_key.as_str()).collect();
    let stored = stored_keys(conn, &keys).await?;
    for (i, key) in keys.iter().enumerate() {
        if let Some(found) = stored.get(*key) {
            answers[i] = Some(replay(&fingerprints[i], found));
        }
    }

    let conversations = resolve_conversations(conn, writes, &mut answers).await?;
    let mut latest = BTreeMap::new();
    for (write, conversation) in writes.iter().zip(&conversations) {
        if let Some(id) = conversation {
            let now = codec::to_micros(write.received_at);
            let at = latest.entry(id.to_string()).or_insert(now);
            *at = now.max(*at);
        }
    }
    touch(conn, &latest).await?;

    // Ids drawn after the touch: see the module docs.
    let rows: Vec<Row> = writes
        .iter()
        .zip(&conversations)
        .enumerate()
        .filter_map(|(i, (write, conversation))| {
            let message = write
                .envelope
                .clone()
                .into_message(MessageId::new(), (*conversation)?, write.received_at);
            let body = codec::encode_message(&message);
            Some(Row {
                write: i,
                message,
                body,
            })
        })
        .collect();
    insert_messages(conn, &rows, &fingerprints).await?;
    insert_outbox(conn, &rows, writes).await?;
    for row in rows {
        answers[row.write] = Some(Ok(Inserted {
            message: row.message,
            duplicate: false,
        }));
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(StoreError::GroupFailed("write left unanswered".to_owned()))))
        .collect())
}

/// A message to insert: which write it comes from, and its stored body.
struct Row {
    write: usize,
    message: Message,
    body: String,
}

/// The stored `(fingerprint, body)` of each of `keys` that is stored.
async fn stored_keys(
    conn: &mut MySqlConnection,
    keys: &[&str],
) -> Result<HashMap<String, (String, String)>, StoreError> {
    let mut qb =
        QueryBuilder::<MySql>::new("SELECT idempotency_key, fingerprint, body FROM messages WHERE idempotency_key");
    push_in_list(&mut qb, keys);
    let rows: Vec<(Text, Text, Text)> = qb.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(|(k, f, b)| (k.0, (f.0, b.0))).collect())
}

/// Each unanswered write's conversation (`None` for the answered ones). A named conversation that does not
/// exist answers its write with [`StoreError::ConversationNotFound`]; a customer without an open conversation
/// gets one, opened here for all of their writes in the batch.
async fn resolve_conversations(
    conn: &mut MySqlConnection,
    writes: &[Write],
    answers: &mut [Option<Result<Inserted, StoreError>>],
) -> Result<Vec<Option<ConversationId>>, StoreError> {
    let pending: Vec<bool> = answers.iter().map(Option::is_none).collect();
    let named: Vec<String> = (0..writes.len())
        .filter(|i| pending[*i])
        .filter_map(|i| writes[i].envelope.conversation_id.map(|id| id.to_string()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let existing = existing_conversations(conn, &named).await?;

    // The open key of each unanswered write that names no conversation.
    let open_keys: Vec<Option<String>> = (0..writes.len())
        .map(|i| {
            let envelope = &writes[i].envelope;
            (pending[i] && envelope.conversation_id.is_none()).then(|| {
                let account = envelope.source.account.as_deref();
                codec::open_key(&envelope.channel, account, &envelope.sender.external_id)
            })
        })
        .collect();
    let distinct: Vec<&str> = open_keys
        .iter()
        .flatten()
        .map(String::as_str)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut open = open_conversations(conn, &distinct).await?;
    // Customers without one: a conversation each, described by their first write in the batch.
    let mut opened = Vec::new();
    for (i, key) in open_keys.iter().enumerate() {
        if let Some(key) = key
            && !open.contains_key(key)
        {
            let id = ConversationId::new();
            open.insert(key.clone(), id);
            opened.push((id, i, key.as_str()));
        }
    }
    // In key order, so two writers opening overlapping sets of customers wait for each other rather than
    // deadlock (each takes the unique key's locks in the same order).
    opened.sort_unstable_by_key(|(_, _, key)| *key);
    insert_conversations(conn, &opened, writes).await?;

    let mut resolved = Vec::with_capacity(writes.len());
    for (i, write) in writes.iter().enumerate() {
        resolved.push(match (&open_keys[i], write.envelope.conversation_id) {
            (Some(key), _) => open.get(key).copied(),
            (None, Some(id)) if pending[i] => {
                if existing.contains(&id.to_string()) {
                    Some(id)
                } else {
                    answers[i] = Some(Err(StoreError::ConversationNotFound(id)));
                    None
                }
            }
            (None, _) => None,
        });
    }
    Ok(resolved)
}

/// Which of `ids` exist.
async fn existing_conversations(conn: &mut MySqlConnection, ids: &[String]) -> Result<HashSet<String>, StoreError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut qb = QueryBuilder::<MySql>::new("SELECT id FROM conversations WHERE id");
    push_in_list(&mut qb, &ids);
    let rows: Vec<(Text,)> = qb.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(|(id,)| id.0).collect())
}

/// The open conversation of each of `keys` that has one.
async fn open_conversations(
    conn: &mut MySqlConnection,
    keys: &[&str],
) -> Result<HashMap<String, ConversationId>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut qb = QueryBuilder::<MySql>::new("SELECT open_key, id FROM conversations WHERE open_key");
    push_in_list(&mut qb, keys);
    let rows: Vec<(Text, Text)> = qb.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|(key, id)| Ok((key.0, ConversationId::from_uuid(codec::parse_uuid(&id.0)?))))
        .collect()
}

/// Opens a conversation per `(id, write, open key)`. A customer whose conversation another writer opened since
/// the lookup fails the statement on the `open_key` unique key (waiting for that writer's commit first), and
/// the batch goes one by one, where the per-message path re-reads it.
async fn insert_conversations(
    conn: &mut MySqlConnection,
    opened: &[(ConversationId, usize, &str)],
    writes: &[Write],
) -> Result<(), StoreError> {
    for range in chunks(&vec![0; opened.len()]) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO conversations (id, channel, account, customer_id, status, open_key, created_at, updated_at) ",
        );
        qb.push_values(&opened[range], |mut b, (id, i, key)| {
            let envelope = &writes[*i].envelope;
            let now = codec::to_micros(writes[*i].received_at);
            b.push_bind(id.to_string())
                .push_bind(envelope.channel.as_str())
                .push_bind(envelope.source.account.as_deref())
                .push_bind(envelope.sender.external_id.as_str())
                .push_bind(ConversationStatus::Bot.as_str())
                .push_bind(*key)
                .push_bind(now)
                .push_bind(now);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Moves each conversation's `updated_at` up to its batch's latest message (never back), locking its row to
/// the commit. The `WHERE` matches every row whatever its time, so the lock is kept under READ COMMITTED.
async fn touch(conn: &mut MySqlConnection, latest: &BTreeMap<String, i64>) -> Result<(), StoreError> {
    if latest.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(&str, i64)> = latest.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    let ids: Vec<&str> = pairs.iter().map(|(id, _)| *id).collect();
    let mut qb = QueryBuilder::<MySql>::new("UPDATE conversations SET updated_at = GREATEST(updated_at, CASE id");
    for (id, at) in pad(&pairs) {
        qb.push(" WHEN ").push_bind(*id).push(" THEN ").push_bind(*at);
    }
    qb.push(" END) WHERE id");
    push_in_list(&mut qb, &ids);
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

/// Inserts the messages. A key another writer stored since the lookup fails the statement on the
/// `idempotency_key` unique key, and the batch goes one by one, where it is answered as a duplicate.
async fn insert_messages(conn: &mut MySqlConnection, rows: &[Row], fingerprints: &[String]) -> Result<(), StoreError> {
    let sizes: Vec<usize> = rows.iter().map(|r| r.body.len() + MESSAGE_ROW_OVERHEAD).collect();
    for range in chunks(&sizes) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO messages (id, conversation_id, idempotency_key, fingerprint, direction, sender_role, \
             content_type, received_at, body) ",
        );
        qb.push_values(&rows[range], |mut b, row| {
            let message = &row.message;
            b.push_bind(message.id.to_string())
                .push_bind(message.conversation_id.to_string())
                .push_bind(message.idempotency_key.as_str())
                .push_bind(fingerprints[row.write].as_str())
                .push_bind(message.direction.as_str())
                .push_bind(message.sender.role.as_str())
                .push_bind(message.content.kind())
                .push_bind(codec::to_micros(message.received_at))
                .push_bind(row.body.as_str());
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Queues each message's deliveries, in the messages' transaction: an acknowledged message always has them.
async fn insert_outbox(conn: &mut MySqlConnection, rows: &[Row], writes: &[Write]) -> Result<(), StoreError> {
    let deliveries: Vec<(&Row, &str)> = rows
        .iter()
        .flat_map(|row| writes[row.write].destinations.iter().map(move |d| (row, d.as_str())))
        .collect();
    for range in chunks(&vec![0; deliveries.len()]) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO outbox (message_id, destination, attempts, due_at, lease_until, created_at) ",
        );
        qb.push_values(&deliveries[range], |mut b, (row, destination)| {
            let now = codec::to_micros(row.message.received_at);
            b.push_bind(row.message.id.to_string())
                .push_bind(*destination)
                .push("0")
                .push_bind(now)
                .push("0")
                .push_bind(now);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends ` IN (…)` binding `values`, padded to a power of two by repeating the last one (a set is the same
/// with a member repeated). `values` must not be empty.
fn push_in_list<'a>(qb: &mut QueryBuilder<'a, MySql>, values: &[&'a str]) {
    qb.push(" IN (");
    let mut list = qb.separated(", ");
    for value in pad(values) {
        list.push_bind(*value);
    }
    list.push_unseparated(")");
}

/// `items` followed by repeats of its last item up to the next power of two (empty stays empty).
fn pad<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let padded = items.len().next_power_of_two();
    let last = items.last();
    items
        .iter()
        .chain(std::iter::repeat_n(last, padded - items.len()).flatten())
}

/// Cuts rows of the given sizes into consecutive chunks of a power of two rows each, at most [`MAX_BATCH`]
/// rows and, beyond a chunk's first row, [`MAX_STATEMENT_BYTES`] bytes.
fn chunks(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut end = start + 1;
        let mut bytes = sizes[start];
        while end < sizes.len() && end - start < MAX_BATCH && bytes + sizes[end] <= MAX_STATEMENT_BYTES {
            bytes += sizes[end];
            end += 1;
        }
        // The largest power of two that fits; the rest starts the next chunk.
        let len = 1 << (end - start).ilog2();
        out.push(start..start + len);
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_covering_every_row_once() {
        for n in 0..300 {
            let ranges = chunks(&vec![10; n]);
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next);
                assert!(r.len().is_power_of_two() && r.len() <= MAX_BATCH, "{n}: {r:?}");
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }

    #[test]
    fn chunks_stay_under_the_byte_limit_but_always_take_one_row() {
        let sizes = [
            MAX_STATEMENT_BYTES / 2,
            MAX_STATEMENT_BYTES / 2,
            1,
            2 * MAX_STATEMENT_BYTES,
            5,
        ];
        assert_eq!(chunks(&sizes), vec![0..2, 2..3, 3..4, 4..5]);
    }

    #[test]
    fn lists_are_padded_with_their_last_item() {
        let padded: Vec<_> = pad(&[1, 2, 3]).copied().collect();
        assert_eq!(padded, [1, 2, 3, 3]);
        assert_eq!(pad(&[7]).count(), 1);
        assert_eq!(pad::<u8>(&[]).count(), 0);
    }
}
