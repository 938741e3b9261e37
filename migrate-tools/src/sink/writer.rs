//! The write path, written once and instantiated for each backend by [`impl_writer!`] and [`impl_apply!`] (the
//! same approach as the store's `queries.rs`: one copy of the SQL without sqlx's generic-executor bounds).
//! Conversations and messages are written by the store's bulk import API (`protofuse_store::import`), inside the
//! importer's transaction; the SQL here is the importer's own bookkeeping (`import_*`). A backend module provides
//! `upsert_tail(conflict_columns, columns)`, `greatest_tail(conflict_columns, column)` (keep the larger value)
//! and `INSERT_IGNORE`. SQLite applies its batches on a raw connection instead (`sqlite_batch.rs`), from the same
//! [`Plan`].

use std::collections::{HashMap, HashSet};

use protofuse_store::import::{ConversationRow, MessageRow};

use crate::canonical::{PartyRecord, Record};
use crate::mapping::EntityKind;
use crate::sink::batch::{Action, Op};

/// What one batch writes, in the order it is written: the deletes first (in the batch's order), then the
/// conversations, the placeholders of the messages' conversations, the messages, parties and `import_rows`.
/// Built once per batch by [`plan`], for either backend.
pub(super) struct Plan<'a> {
    /// Rows that go: source, kind, pk and, for a message, its idempotency key.
    pub(super) deletes: Vec<(&'a str, EntityKind, i64, Option<String>)>,
    pub(super) conversations: Vec<&'a ConversationRow>,
    /// One per conversation the messages name and the batch does not write itself; foreign keys are off, so they
    /// may follow the rows that point at them within the transaction.
    pub(super) placeholders: Vec<&'a ConversationRow>,
    pub(super) messages: Vec<&'a MessageRow>,
    pub(super) parties: Vec<(&'a str, i64, &'a PartyRecord)>,
    /// `import_rows`: source, pk, canonical id.
    pub(super) keys: Vec<(&'a str, i64, &'a str)>,
}

/// Sorts the last change of every row of `ops` into a [`Plan`]: each change carries the row's full state, so
/// earlier ones are superseded, and the rest may then be grouped by table without reordering two changes of one
/// row.
pub(super) fn plan(ops: &[Op]) -> Plan<'_> {
    let mut last = HashMap::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        last.insert((op.source.as_str(), op.pk), i);
    }
    let mut plan = Plan {
        deletes: Vec::new(),
        conversations: Vec::new(),
        placeholders: Vec::new(),
        messages: Vec::new(),
        parties: Vec::new(),
        keys: Vec::with_capacity(last.len()),
    };
    let mut message_records = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if last.get(&(op.source.as_str(), op.pk)) != Some(&i) {
            continue;
        }
        match &op.action {
            Action::Delete { message_key } => {
                plan.deletes.push((&op.source, op.kind, op.pk, message_key.clone()));
            }
            Action::Upsert(Record::Skipped) => {
                let key = message_key_of(&op.source, op.pk);
                plan.deletes.push((&op.source, op.kind, op.pk, Some(key)));
            }
            Action::Upsert(record) => {
                plan.keys.push((&op.source, op.pk, record.canonical_id()));
                match record {
                    Record::Conversation(c) => plan.conversations.push(c),
                    Record::Message(m) => message_records.push(m),
                    Record::Party(p) => plan.parties.push((&op.source, op.pk, p)),
                    Record::Skipped => {}
                }
            }
        }
    }
    let mut seen: HashSet<&str> = plan.conversations.iter().map(|c| c.id()).collect();
    for m in &message_records {
        if seen.insert(m.placeholder.id()) {
            plan.placeholders.push(&m.placeholder);
        }
        plan.messages.push(&m.row);
    }
    plan
}

/// Instantiates `apply` (one batch in one transaction) for the sqlx database `$db`, whose store writes are
/// `protofuse_store::import::$store`; next to [`impl_writer!`], whose `ensure_checkpoint_row` it uses.
macro_rules! impl_apply {
    ($db:ty, $store:ident) => {
        pub(super) async fn apply(
            pool: &sqlx::Pool<$db>,
            name: &str,
            ops: &[crate::sink::batch::Op],
            progress: &crate::sink::batch::Progress,
        ) -> Result<(), sqlx::Error> {
            use protofuse_store::import::statements;
            use protofuse_store::import::$store as store;

            let plan = crate::sink::writer::plan(ops);
            let mut tx = pool.begin().await?;
            for (source, kind, pk, message_key) in &plan.deletes {
                delete(&mut tx, source, *kind, *pk, message_key.as_deref()).await?;
            }
            store::upsert_conversations(&mut tx, &plan.conversations).await?;
            store::insert_missing_conversations(&mut tx, &plan.placeholders).await?;
            store::upsert_messages(&mut tx, &plan.messages).await?;
            for chunk in statements(&plan.parties, |(_, _, p)| p.raw.len()) {
                write_parties(&mut tx, chunk).await?;
            }
            for chunk in statements(&plan.keys, |_| 0) {
                write_keys(&mut tx, chunk).await?;
            }
            write_progress(&mut tx, name, ops.len() as i64, progress).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn delete(
            tx: &mut sqlx::Transaction<'_, $db>,
            source: &str,
            kind: crate::mapping::EntityKind,
            pk: i64,
            message_key: Option<&str>,
        ) -> Result<(), sqlx::Error> {
            use crate::mapping::EntityKind;
            use protofuse_store::import::$store as store;

            match kind {
                EntityKind::Message => {
                    store::delete_message(tx, message_key.unwrap_or_default()).await?;
                }
                EntityKind::Conversation => {
                    let id: Option<(String,)> =
                        sqlx::query_as("SELECT canonical_id FROM import_rows WHERE source = ? AND pk = ?")
                            .bind(source)
                            .bind(pk)
                            .fetch_optional(&mut **tx)
                            .await?;
                    if let Some((id,)) = id {
                        store::delete_conversation(tx, &id).await?;
                    }
                }
                EntityKind::Customer | EntityKind::Agent => {
                    sqlx::query("DELETE FROM import_parties WHERE source = ? AND pk = ?")
                        .bind(source)
                        .bind(pk)
                        .execute(&mut **tx)
                        .await?;
                }
            }
            sqlx::query("DELETE FROM import_rows WHERE source = ? AND pk = ?")
                .bind(source)
                .bind(pk)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        async fn write_parties(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[(&str, i64, &crate::canonical::PartyRecord)],
        ) -> Result<(), sqlx::Error> {
            const COLUMNS: [&str; 7] = [
                "source",
                "pk",
                "role",
                "external_id",
                "display_name",
                "email",
                "raw",
            ];
            let mut qb =
                sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO import_parties ({}) ", COLUMNS.join(", ")));
            qb.push_values(rows, |mut b, (source, pk, p)| {
                b.push_bind(*source)
                    .push_bind(*pk)
                    .push_bind(p.role)
                    .push_bind(p.external_id.as_str())
                    .push_bind(p.display_name.as_deref())
                    .push_bind(p.email.as_deref())
                    .push_bind(p.raw.as_str());
            });
            qb.push(upsert_tail("source, pk", &COLUMNS[2..]));
            qb.build().execute(&mut **tx).await?;
            Ok(())
        }

        async fn write_keys(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[(&str, i64, &str)],
        ) -> Result<(), sqlx::Error> {
            let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO import_rows (source, pk, canonical_id) ");
            qb.push_values(rows, |mut b, (source, pk, id)| {
                b.push_bind(*source).push_bind(*pk).push_bind(*id);
            });
            qb.push(upsert_tail("source, pk", &["canonical_id"]));
            qb.build().execute(&mut **tx).await?;
            Ok(())
        }

        async fn write_progress(
            tx: &mut sqlx::Transaction<'_, $db>,
            name: &str,
            rows: i64,
            progress: &crate::sink::batch::Progress,
        ) -> Result<(), sqlx::Error> {
            ensure_checkpoint_row(tx, name).await?;
            use crate::sink::batch::Progress;
            match progress {
                Progress::None => {
                    sqlx::query("UPDATE import_checkpoint SET rows_applied = rows_applied + ? WHERE name = ?")
                        .bind(rows)
                        .bind(name)
                        .execute(&mut **tx)
                        .await?;
                }
                Progress::Snapshot { source, last_pk } => {
                    sqlx::query("UPDATE import_checkpoint SET rows_applied = rows_applied + ? WHERE name = ?")
                        .bind(rows)
                        .bind(name)
                        .execute(&mut **tx)
                        .await?;
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO import_snapshot (name, source, last_pk) ");
                    qb.push_values([(name, source, *last_pk)], |mut b, (n, s, p)| {
                        b.push_bind(n.to_owned()).push_bind(s.clone()).push_bind(p);
                    });
                    // Parallel writers may commit an older watermark after a newer one (see `snapshot::writers`).
                    qb.push(greatest_tail("name, source", "last_pk"));
                    qb.build().execute(&mut **tx).await?;
                }
                Progress::Resynced { table, rows: copied } => {
                    sqlx::query("UPDATE import_checkpoint SET rows_applied = rows_applied + ? WHERE name = ?")
                        .bind(rows)
                        .bind(name)
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query("UPDATE import_resync SET done_at = ?, copied = ? WHERE name = ? AND tbl = ?")
                        .bind(chrono::Utc::now().timestamp())
                        .bind(*copied as i64)
                        .bind(name)
                        .bind(table)
                        .execute(&mut **tx)
                        .await?;
                }
                Progress::Binlog {
                    position,
                    events,
                    event_time,
                } => {
                    sqlx::query(
                        "UPDATE import_checkpoint SET file = ?, pos = ?, gtid = ?, rows_applied = rows_applied + ?, \
                         events_applied = events_applied + ?, last_event_at = ? WHERE name = ?",
                    )
                    .bind(&position.file)
                    .bind(position.pos as i64)
                    .bind(&position.gtid)
                    .bind(rows)
                    .bind(*events as i64)
                    .bind(*event_time)
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Ok(())
        }
    };
}

pub(super) use impl_apply;

/// Instantiates `status`, `snapshot_progress`, `mark_snapshot`, `record_error`, `digests`, `count` and the other
/// bookkeeping operations for the sqlx database `$db`.
macro_rules! impl_writer {
    ($db:ty) => {
        use crate::mapping::EntityKind;
        use crate::sink::batch::{Position, Status};

        async fn ensure_checkpoint_row(tx: &mut sqlx::Transaction<'_, $db>, name: &str) -> Result<(), sqlx::Error> {
            sqlx::query(&format!(
                "{INSERT_IGNORE} INTO import_checkpoint (name, snapshot_done, rows_applied, events_applied, errors) \
                 VALUES (?, 0, 0, 0, 0)"
            ))
            .bind(name)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        pub(super) async fn status(pool: &sqlx::Pool<$db>, name: &str) -> Result<Status, super::error::TargetError> {
            type Row = (Option<String>, Option<i64>, Option<String>, i64, i64, i64, Option<i64>, i64, Option<String>);
            let row: Option<Row> = sqlx::query_as(
                "SELECT file, pos, gtid, snapshot_done, rows_applied, events_applied, last_event_at, errors, last_error \
                 FROM import_checkpoint WHERE name = ?",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?;
            Ok(row.map_or_else(Status::default, |r| Status {
                file: r.0,
                pos: r.1.map(|p| p as u64),
                gtid: r.2,
                snapshot_done: r.3 != 0,
                rows_applied: r.4,
                events_applied: r.5,
                last_event_at: r.6,
                errors: r.7,
                last_error: r.8,
            }))
        }

        pub(super) async fn snapshot_progress(
            pool: &sqlx::Pool<$db>,
            name: &str,
            source: &str,
        ) -> Result<Option<i64>, super::error::TargetError> {
            let row: Option<(i64,)> = sqlx::query_as("SELECT last_pk FROM import_snapshot WHERE name = ? AND source = ?")
                .bind(name)
                .bind(source)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.0))
        }

        /// The start position is kept from the first attempt: following from the earliest snapshot start replays
        /// changes over rows copied later, which converges because every change carries the row's full image.
        pub(super) async fn mark_snapshot(
            pool: &sqlx::Pool<$db>,
            name: &str,
            start: Option<&Position>,
            done: bool,
        ) -> Result<(), super::error::TargetError> {
            let mut tx = pool.begin().await?;
            ensure_checkpoint_row(&mut tx, name).await?;
            if let Some(p) = start {
                sqlx::query("UPDATE import_checkpoint SET file = ?, pos = ?, gtid = ? WHERE name = ? AND file IS NULL")
                    .bind(&p.file)
                    .bind(p.pos as i64)
                    .bind(&p.gtid)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
            if done {
                sqlx::query("UPDATE import_checkpoint SET snapshot_done = 1 WHERE name = ?")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        /// Asks the running (or next) `follow` to copy `table` again; a pending or answered request is renewed.
        pub(super) async fn request_resync(
            pool: &sqlx::Pool<$db>,
            name: &str,
            table: &str,
        ) -> Result<(), super::error::TargetError> {
            let sql = format!(
                "INSERT INTO import_resync (name, tbl, requested_at, done_at, copied) VALUES (?, ?, ?, NULL, NULL){}",
                upsert_tail("name, tbl", &["requested_at", "done_at", "copied"])
            );
            sqlx::query(&sql)
                .bind(name)
                .bind(table)
                .bind(chrono::Utc::now().timestamp())
                .execute(pool)
                .await?;
            Ok(())
        }

        /// Tables whose copy is requested and not yet done, oldest request first.
        pub(super) async fn pending_resyncs(
            pool: &sqlx::Pool<$db>,
            name: &str,
        ) -> Result<Vec<String>, super::error::TargetError> {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT tbl FROM import_resync WHERE name = ? AND done_at IS NULL ORDER BY requested_at, tbl",
            )
            .bind(name)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        }

        /// The rows copied for the request for `table`, once it is done.
        pub(super) async fn resync_done(
            pool: &sqlx::Pool<$db>,
            name: &str,
            table: &str,
        ) -> Result<Option<i64>, super::error::TargetError> {
            let row: Option<(Option<i64>, Option<i64>)> =
                sqlx::query_as("SELECT done_at, copied FROM import_resync WHERE name = ? AND tbl = ?")
            .bind(name)
            .bind(table)
            .fetch_optional(pool)
            .await?;
            Ok(row.and_then(|(done, rows)| done.and(rows)))
        }

        /// Takes import `name`'s lease for `holder` until `until` (ms since the epoch) if it is free, expired,
        /// already `holder`'s or `dead`'s; otherwise the current holder and the time its lease ends.
        pub(super) async fn take_lease(
            pool: &sqlx::Pool<$db>,
            name: &str,
            holder: &str,
            dead: &str,
            now: i64,
            until: i64,
        ) -> Result<Result<(), (String, i64)>, super::error::TargetError> {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!("{INSERT_IGNORE} INTO import_lease (name, holder, expires_at) VALUES (?, '', 0)"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let taken = sqlx::query(
                "UPDATE import_lease SET holder = ?, expires_at = ? \
                 WHERE name = ? AND (expires_at < ? OR holder = ? OR holder = ?)",
            )
            .bind(holder)
            .bind(until)
            .bind(name)
            .bind(now)
            .bind(holder)
            .bind(dead)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let held: (String, i64) = sqlx::query_as("SELECT holder, expires_at FROM import_lease WHERE name = ?")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(if taken == 1 { Ok(()) } else { Err(held) })
        }

        /// Extends `holder`'s lease on `name` to `until`; `false` when it is no longer `holder`'s.
        pub(super) async fn renew_lease(
            pool: &sqlx::Pool<$db>,
            name: &str,
            holder: &str,
            until: i64,
        ) -> Result<bool, super::error::TargetError> {
            let renewed = sqlx::query("UPDATE import_lease SET expires_at = ? WHERE name = ? AND holder = ?")
                .bind(until)
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(renewed == 1)
        }

        /// Gives `holder`'s lease on `name` up, so the next follower need not wait for it to expire.
        pub(super) async fn release_lease(
            pool: &sqlx::Pool<$db>,
            name: &str,
            holder: &str,
        ) -> Result<(), super::error::TargetError> {
            sqlx::query("UPDATE import_lease SET expires_at = 0 WHERE name = ? AND holder = ?")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(super) async fn record_error(pool: &sqlx::Pool<$db>, name: &str, error: &str) -> Result<(), super::error::TargetError> {
            let mut tx = pool.begin().await?;
            ensure_checkpoint_row(&mut tx, name).await?;
            sqlx::query("UPDATE import_checkpoint SET errors = errors + 1, last_error = ? WHERE name = ?")
                .bind(error)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        pub(super) async fn digests(
            pool: &sqlx::Pool<$db>,
            source: &str,
            kind: EntityKind,
            lo: i64,
            hi: i64,
        ) -> Result<Vec<(i64, String)>, super::error::TargetError> {
            let sql = match kind {
                EntityKind::Message => {
                    "SELECT r.pk, m.id, m.conversation_id, m.idempotency_key, m.direction, m.sender_role, \
                     m.content_type, m.received_at, m.body FROM import_rows r LEFT JOIN messages m ON m.id = r.canonical_id \
                     WHERE r.source = ? AND r.pk BETWEEN ? AND ? ORDER BY r.pk"
                }
                EntityKind::Conversation => {
                    "SELECT r.pk, c.id, c.channel, c.account, c.customer_id, c.status, c.department, c.assigned_agent, \
                     c.created_at, c.updated_at FROM import_rows r LEFT JOIN conversations c ON c.id = r.canonical_id \
                     WHERE r.source = ? AND r.pk BETWEEN ? AND ? ORDER BY r.pk"
                }
                EntityKind::Customer | EntityKind::Agent => {
                    "SELECT pk, role, external_id, display_name, email, raw FROM import_parties \
                     WHERE source = ? AND pk BETWEEN ? AND ? ORDER BY pk"
                }
            };
            let rows = sqlx::query(sql).bind(source).bind(lo).bind(hi).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(crate::sink::writer::row_digest::<$db>(row)?);
            }
            Ok(out)
        }

        /// The stored records of `source` with primary keys in `lo..=hi`, as JSON objects: a message's canonical
        /// body, a conversation's columns, a party's fields. For `verify --mode source`.
        pub(super) async fn stored(
            pool: &sqlx::Pool<$db>,
            source: &str,
            kind: EntityKind,
            lo: i64,
            hi: i64,
        ) -> Result<Vec<(i64, serde_json::Map<String, serde_json::Value>)>, super::error::TargetError> {
            let sql = match kind {
                EntityKind::Message => {
                    "SELECT r.pk, m.body FROM import_rows r JOIN messages m ON m.id = r.canonical_id \
                     WHERE r.source = ? AND r.pk BETWEEN ? AND ? ORDER BY r.pk"
                }
                EntityKind::Conversation => {
                    "SELECT r.pk, c.id, c.channel, c.customer_id, c.status, c.department, c.assigned_agent, \
                     c.created_at, c.updated_at FROM import_rows r JOIN conversations c ON c.id = r.canonical_id \
                     WHERE r.source = ? AND r.pk BETWEEN ? AND ? ORDER BY r.pk"
                }
                EntityKind::Customer | EntityKind::Agent => {
                    "SELECT pk, external_id, display_name, email FROM import_parties \
                     WHERE source = ? AND pk BETWEEN ? AND ? ORDER BY pk"
                }
            };
            let rows = sqlx::query(sql).bind(source).bind(lo).bind(hi).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(crate::sink::writer::row_record::<$db>(row)?);
            }
            Ok(out)
        }

        /// Rows the target holds for `source`. Messages are counted in `messages` itself, by the idempotency-key
        /// range of the source table, so a stored message that no source row accounts for shows as a difference.
        pub(super) async fn count(pool: &sqlx::Pool<$db>, source: &str, kind: EntityKind) -> Result<i64, super::error::TargetError> {
            let (n,): (i64,) = match kind {
                EntityKind::Customer | EntityKind::Agent => {
                    sqlx::query_as("SELECT COUNT(*) FROM import_parties WHERE source = ?").bind(source).fetch_one(pool).await?
                }
                EntityKind::Conversation => {
                    sqlx::query_as("SELECT COUNT(*) FROM import_rows WHERE source = ?").bind(source).fetch_one(pool).await?
                }
                EntityKind::Message => {
                    let (from, to) = crate::sink::writer::message_key_range(source);
                    sqlx::query_as("SELECT COUNT(*) FROM messages WHERE idempotency_key >= ? AND idempotency_key < ?")
                        .bind(from)
                        .bind(to)
                        .fetch_one(pool)
                        .await?
                }
            };
            Ok(n)
        }
    };
}

pub(super) use impl_writer;

use sqlx::{Column as _, Row as _};

/// The idempotency key of a message row; the canonical mapper derives the same.
pub(super) fn message_key_of(source: &str, pk: i64) -> String {
    format!("{}{pk}", message_key_prefix(source))
}

/// `import:<mapping>:<table>:` for source `<mapping>:<table>/<kind>`.
fn message_key_prefix(source: &str) -> String {
    let table_part = source.rsplit_once('/').map_or(source, |(head, _)| head);
    format!("import:{table_part}:")
}

/// The idempotency keys of every message row of `source`, as a half-open range: `;` is the character after `:`.
pub(super) fn message_key_range(source: &str) -> (String, String) {
    let from = message_key_prefix(source);
    let to = format!("{};", &from[..from.len() - 1]);
    (from, to)
}

/// Digest of a stored row: the selected columns after the pk, in the encoding of [`digest_fields`]. Columns named
/// `*_at` are integers (microseconds); the rest text, which MySQL's binary collations deliver as bytes.
pub(super) fn row_digest<DB>(row: &DB::Row) -> Result<(i64, String), sqlx::Error>
where
    DB: sqlx::Database,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> Vec<u8>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let pk: i64 = row.try_get(0)?;
    let mut fields = Vec::with_capacity(row.columns().len());
    for (i, column) in row.columns().iter().enumerate().skip(1) {
        let value = if column.name().ends_with("_at") {
            row.try_get::<Option<i64>, _>(i)?.map(|n| n.to_string())
        } else {
            match row.try_get::<Option<String>, _>(i) {
                Ok(s) => s,
                Err(_) => row
                    .try_get::<Option<Vec<u8>>, _>(i)?
                    .map(|b| String::from_utf8_lossy(&b).into_owned()),
            }
        };
        fields.push(value);
    }
    Ok((pk, crate::canonical::digest_fields(&fields)))
}

/// A stored row as (pk, column name to value): `*_at` columns as numbers, the rest as text.
pub(super) fn row_record<DB>(row: &DB::Row) -> Result<(i64, serde_json::Map<String, serde_json::Value>), sqlx::Error>
where
    DB: sqlx::Database,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> Vec<u8>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let pk: i64 = row.try_get(0)?;
    let mut fields = serde_json::Map::new();
    for (i, column) in row.columns().iter().enumerate().skip(1) {
        let value = if column.name().ends_with("_at") {
            row.try_get::<Option<i64>, _>(i)?.map(serde_json::Value::from)
        } else {
            match row.try_get::<Option<String>, _>(i) {
                Ok(s) => s.map(serde_json::Value::String),
                Err(_) => row
                    .try_get::<Option<Vec<u8>>, _>(i)?
                    .map(|b| serde_json::Value::String(String::from_utf8_lossy(&b).into_owned())),
            }
        };
        fields.insert(column.name().to_owned(), value.unwrap_or(serde_json::Value::Null));
    }
    Ok((pk, fields))
}

#[cfg(test)]
mod tests {
    use super::{message_key_of, message_key_range};

    #[test]
    fn a_tables_message_keys_fall_in_its_range_and_no_other_tables() {
        let (from, to) = message_key_range("gofly:message/message");
        let inside = |key: &str| from.as_str() <= key && key < to.as_str();
        for pk in [0, 7, 10, 99_999, i64::MAX] {
            assert!(inside(&message_key_of("gofly:message/message", pk)), "{pk}");
        }
        for other in [
            "gofly:message2/message",
            "gofly:messages/message",
            "gofly:mess/message",
            "other:message/message",
        ] {
            assert!(!inside(&message_key_of(other, 1)), "{other}");
        }
    }
}
