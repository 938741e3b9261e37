//! One batch of message writes in one transaction, with a statement per step for the whole batch.
//!
//! The steps are `write_one`'s (`queries.rs`), each over every write at once:
//! 1. one lookup statement finds the keys stored before, the customers' open conversations (by `open_key`) and
//!    which named conversations exist; each stored key is answered as a duplicate or a reused key, exactly as
//!    `replay` answers it, and writes nothing;
//! 2. customers without an open conversation get one, opened with one multi-row `INSERT`, where the
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
//! Round trips, not rows, are what a batch costs (on a busy machine each waits for both processes to be
//! scheduled): the lookup, the touch, the message insert (plus the opened conversations and the outbox rows,
//! when there are any) and `COMMIT`, whatever the batch's size; no `BEGIN` (see [`commit`]).
//!
//! Statement shapes: sqlx prepares each distinct SQL text once per connection. `IN` lists are padded to a power
//! of two by repeating their last value (eight shapes); an insert has a shape per row count (up to
//! [`MAX_BATCH`]), which the connection's statement cache holds, rather than costing a batch extra round trips
//! in chunks of fixed sizes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use protofuse_model::{ConversationId, ConversationStatus, Message, MessageId};
use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::{Executor as _, QueryBuilder};

use crate::codec::{self, Text};
use crate::error::StoreError;
use crate::queries::replay;
use crate::queue::Write;
use crate::store::Inserted;

/// Most writes in one batch: bounds how long a batch holds its row locks and the size of its statements (a
/// message row has nine parameters; a statement may have 65,535).
pub(super) const MAX_BATCH: usize = 128;

/// Most bytes of row data in one insert statement (beyond its first row), well under the smallest default
/// `max_allowed_packet` (4 MiB in MySQL 5.7; 16 MiB in MariaDB, 64 MiB in MySQL 8).
const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// What a message row costs besides its body, for [`MAX_STATEMENT_BYTES`].
const MESSAGE_ROW_OVERHEAD: usize = 256;

/// Why a batch was not stored.
pub(super) enum Failed {
    /// A statement was refused (a conflict, a deadlock, a bad value) and the batch rolled back: nothing of it
    /// was stored, and each write may go again on its own.
    Refused(StoreError),
    /// The connection failed before `COMMIT`, taking the transaction with it: nothing of the batch was stored,
    /// and each write may go again on its own, on another connection.
    Lost(sqlx::Error),
    /// `COMMIT` failed: whether it took effect is unknown, so every write of the batch fails with this; a
    /// client's retry with the same key settles it.
    Unavailable(sqlx::Error),
}

/// Writes `writes` (no two with the same idempotency key) in one transaction on `conn`, a writer's connection
/// with `autocommit` off (`writer.rs`): the first statement opens the transaction, which saves the round trip
/// of a `BEGIN`. The answers are in the writes' order.
pub(super) async fn commit(
    conn: &mut MySqlConnection,
    writes: &[Write],
) -> Result<Vec<Result<Inserted, StoreError>>, Failed> {
    match write_all(conn, writes).await {
        Ok(answers) => {
            conn.execute("COMMIT").await.map_err(Failed::Unavailable)?;
            Ok(answers)
        }
        // At once: the per-message writes that follow must not wait on this batch's locks. A connection that
        // cannot roll back is gone, and the server rolls back a transaction whose connection is gone.
        Err(e) => match conn.execute("ROLLBACK").await {
            Ok(_) => Err(Failed::Refused(e)),
            Err(lost) => Err(Failed::Lost(lost)),
        },
    }
}

/// The batch's statements, inside the caller's transaction.
async fn write_all(
    conn: &mut MySqlConnection,
    writes: &[Write],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let fingerprints: Vec<&str> = writes.iter().map(|w| w.fingerprint.as_str()).collect();
    // Per write: its answer once known; a write still unanswered after step 2 is stored.
    let mut answers: Vec<Option<Result<Inserted, StoreError>>> = writes.iter().map(|_| None).collect();

    let open_keys: Vec<Option<&str>> = writes.iter().map(|w| w.open_key.as_deref()).collect();
    let found = look_up(conn, writes, &open_keys).await?;
    for (i, write) in writes.iter().enumerate() {
        if let Some(stored) = found.stored.get(write.envelope.idempotency_key.as_str()) {
            answers[i] = Some(replay(fingerprints[i], stored));
        }
    }
    let conversations = resolve_conversations(conn, writes, &open_keys, found, &mut answers).await?;

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

/// What the batch's first statement finds.
struct Found {
    /// `(fingerprint, body)` by idempotency key, for the keys already stored.
    stored: HashMap<String, (String, String)>,
    /// The open conversation by open key, for the customers that have one.
    open: HashMap<String, ConversationId>,
    /// Which of the named conversations exist.
    named: HashSet<String>,
}

/// Looks up, in one statement, which keys are stored, which customers have an open conversation and which
/// named conversations exist (a round trip is a batch's largest cost on a busy machine). The three `IN` lists
/// are padded to the same power of two (an empty one with `''`, which no key or id equals), so the statement
/// has one shape per size.
async fn look_up(
    conn: &mut MySqlConnection,
    writes: &[Write],
    open_keys: &[Option<&str>],
) -> Result<Found, StoreError> {
    let keys: Vec<&str> = writes.iter().map(|w| w.envelope.idempotency_key.as_str()).collect();
    let opens: Vec<&str> = distinct(open_keys.iter().flatten().copied());
    let named: Vec<String> = distinct(
        writes
            .iter()
            .filter_map(|w| w.envelope.conversation_id.map(|id| id.to_string())),
    );
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    let size = keys.len().next_power_of_two();
    let mut qb =
        QueryBuilder::<MySql>::new("SELECT 0, idempotency_key, fingerprint, body FROM messages WHERE idempotency_key");
    push_in_list(&mut qb, &keys, size);
    qb.push(" UNION ALL SELECT 1, open_key, id, NULL FROM conversations WHERE open_key");
    push_in_list(&mut qb, &opens, size);
    qb.push(" UNION ALL SELECT 2, id, id, NULL FROM conversations WHERE id");
    push_in_list(&mut qb, &named, size);
    let rows: Vec<(i64, Text, Text, Option<Text>)> = qb.build_query_as().fetch_all(&mut *conn).await?;
    let mut found = Found {
        stored: HashMap::new(),
        open: HashMap::new(),
        named: HashSet::new(),
    };
    for (kind, key, value, body) in rows {
        match (kind, body) {
            (0, Some(body)) => {
                found.stored.insert(key.0, (value.0, body.0));
            }
            (1, _) => {
                let id = ConversationId::from_uuid(codec::parse_uuid(&value.0)?);
                found.open.insert(key.0, id);
            }
            (2, _) => {
                found.named.insert(key.0);
            }
            _ => return Err(StoreError::Corrupt("message row without a body".to_owned())),
        }
    }
    Ok(found)
}

/// `items` without repeats, in first-seen order.
fn distinct<T: Eq + std::hash::Hash + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|item| seen.insert(item.clone())).collect()
}

/// Each unanswered write's conversation (`None` for the answered ones). A named conversation that does not
/// exist answers its write with [`StoreError::ConversationNotFound`]; a customer without an open conversation
/// gets one, opened here for all of their writes in the batch.
async fn resolve_conversations(
    conn: &mut MySqlConnection,
    writes: &[Write],
    open_keys: &[Option<&str>],
    found: Found,
    answers: &mut [Option<Result<Inserted, StoreError>>],
) -> Result<Vec<Option<ConversationId>>, StoreError> {
    let mut open = found.open;
    // Customers without one: a conversation each, described by their first unanswered write in the batch.
    let mut opened = Vec::new();
    for (i, key) in open_keys.iter().enumerate() {
        if let Some(key) = *key
            && answers[i].is_none()
            && !open.contains_key(key)
        {
            let id = ConversationId::new();
            open.insert(key.to_owned(), id);
            opened.push((id, i, key));
        }
    }
    // In key order, so two writers opening overlapping sets of customers wait for each other rather than
    // deadlock (each takes the unique key's locks in the same order).
    opened.sort_unstable_by_key(|(_, _, key)| *key);
    insert_conversations(conn, &opened, writes).await?;

    let mut resolved = Vec::with_capacity(writes.len());
    for (i, write) in writes.iter().enumerate() {
        if answers[i].is_some() {
            resolved.push(None);
            continue;
        }
        resolved.push(match (&open_keys[i], write.envelope.conversation_id) {
            (Some(key), _) => open.get(*key).copied(),
            (None, Some(id)) if found.named.contains(&id.to_string()) => Some(id),
            (None, Some(id)) => {
                answers[i] = Some(Err(StoreError::ConversationNotFound(id)));
                None
            }
            (None, None) => None,
        });
    }
    Ok(resolved)
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
    let size = ids.len().next_power_of_two();
    let mut qb = QueryBuilder::<MySql>::new("UPDATE conversations SET updated_at = GREATEST(updated_at, CASE id");
    for (id, at) in pad(&pairs) {
        qb.push(" WHEN ").push_bind(*id).push(" THEN ").push_bind(*at);
    }
    qb.push(" END) WHERE id");
    push_in_list(&mut qb, &ids, size);
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

/// Inserts the messages. A key another writer stored since the lookup fails the statement on the
/// `idempotency_key` unique key, and the batch goes one by one, where it is answered as a duplicate.
async fn insert_messages(conn: &mut MySqlConnection, rows: &[Row], fingerprints: &[&str]) -> Result<(), StoreError> {
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
                .push_bind(fingerprints[row.write])
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

/// Appends ` IN (…)` binding `values` padded to `size` by repeating the last one (a set is the same with a
/// member repeated), or `''` for an empty list.
fn push_in_list<'a>(qb: &mut QueryBuilder<'a, MySql>, values: &[&'a str], size: usize) {
    qb.push(" IN (");
    let mut list = qb.separated(", ");
    let last = values.last().copied().unwrap_or("");
    for value in values
        .iter()
        .copied()
        .chain(std::iter::repeat(last))
        .take(size.max(values.len()))
    {
        list.push_bind(value);
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

/// Cuts rows of the given sizes into consecutive chunks of at most [`MAX_BATCH`] rows and, beyond a chunk's
/// first row, [`MAX_STATEMENT_BYTES`] bytes: one chunk, one statement, for every batch but those of large
/// messages. (Padding cannot apply to inserts; each row count is its own shape, and the statement cache holds
/// them all.)
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
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_within_the_row_limit() {
        for n in 0..300 {
            let ranges = chunks(&vec![10; n]);
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next);
                assert!(!r.is_empty() && r.len() <= MAX_BATCH, "{n}: {r:?}");
                next = r.end;
            }
            assert_eq!(next, n);
            assert_eq!(ranges.len(), n.div_ceil(MAX_BATCH), "{n}");
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
