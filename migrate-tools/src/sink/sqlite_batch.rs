//! SQLite batches on a raw connection of their own (rusqlite), run on a blocking thread: the rows through the
//! store's `import::connection` writes, the importer's bookkeeping with its own statements, all prepared once
//! and cached on the connection, in one `BEGIN IMMEDIATE` transaction per batch.
//!
//! Why not the sqlx pool the rest of the SQLite target uses: sqlx hands every statement to the connection's
//! worker thread after encoding a multi-row statement's arguments into owned values, and SQLite keeps a statement
//! journal for every multi-row INSERT (see `protofuse_store::import::connection`); the batch thread binds each
//! row's columns straight from the records, one row per statement, while the snapshot's reader decodes and maps the
//! next batch on the other core (migrate-tools/BENCHMARKS.md, 2026-12-03: 18% less CPU per row at 500,000 and
//! 2M rows; no measurable change at 8M in a more loaded run). Reads, leases and the other bookkeeping stay on the sqlx
//! pool: they are rare, and SQLite's file locking orders them with the batches (WAL mode; `busy_timeout` on both).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protofuse_store::import::connection as store;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, TransactionBehavior, params};

use super::batch::{Op, Progress};
use super::error::TargetError;
use super::writer::{Plan, plan};
use crate::mapping::EntityKind;

/// The connection the target's batches are written on.
#[derive(Debug, Clone)]
pub(super) struct BatchConnection(Arc<Mutex<Connection>>);

impl BatchConnection {
    /// Opens `path` (created, migrated and switched to WAL by the sqlx pool already) with the pool's `pragmas`:
    /// `synchronous`, `foreign_keys`, the page cache and the checkpoint interval are per connection.
    pub(super) fn open(path: &Path, busy_timeout: Duration, pragmas: &[(&str, &str)]) -> Result<Self, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(busy_timeout)?;
        for (pragma, value) in pragmas {
            conn.pragma_update(None, pragma, value)?;
        }
        conn.set_prepared_statement_cache_capacity(store::STATEMENT_CACHE);
        Ok(Self(Arc::new(Mutex::new(conn))))
    }

    /// Applies `ops` and `progress` in one transaction, on a blocking thread.
    pub(super) async fn apply(&self, name: &str, ops: Vec<Op>, progress: &Progress) -> Result<(), TargetError> {
        let conn = Arc::clone(&self.0);
        let (name, progress) = (name.to_owned(), progress.clone());
        let applied = tokio::task::spawn_blocking(move || {
            // A panic while a batch was open leaves its transaction to the rollback of `Transaction`'s drop, so
            // the connection is still usable.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let result = apply(&mut conn, &name, &ops, &progress);
            // The batch's records are freed here rather than on the reader's thread.
            drop(ops);
            result
        })
        .await;
        match applied {
            Ok(result) => Ok(result?),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

fn apply(conn: &mut Connection, name: &str, ops: &[Op], progress: &Progress) -> Result<(), rusqlite::Error> {
    let plan = plan(ops);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    write(&tx, &plan)?;
    write_progress(&tx, name, ops.len() as i64, progress)?;
    tx.commit()
}

fn write(conn: &Connection, plan: &Plan<'_>) -> Result<(), rusqlite::Error> {
    for (source, kind, pk, message_key) in &plan.deletes {
        delete(conn, source, *kind, *pk, message_key.as_deref())?;
    }
    store::upsert_conversations(conn, &plan.conversations)?;
    store::insert_missing_conversations(conn, &plan.placeholders)?;
    store::upsert_messages(conn, &plan.messages)?;
    let mut parties = conn.prepare_cached(
        "INSERT INTO import_parties (source, pk, role, external_id, display_name, email, raw) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, pk) DO UPDATE SET role = excluded.role, \
         external_id = excluded.external_id, display_name = excluded.display_name, email = excluded.email, \
         raw = excluded.raw",
    )?;
    for (source, pk, p) in &plan.parties {
        parties.execute(params![
            source,
            pk,
            p.role,
            p.external_id,
            p.display_name,
            p.email,
            p.raw
        ])?;
    }
    let mut keys = conn.prepare_cached(
        "INSERT INTO import_rows (source, pk, canonical_id) VALUES (?, ?, ?) \
         ON CONFLICT (source, pk) DO UPDATE SET canonical_id = excluded.canonical_id",
    )?;
    for (source, pk, id) in &plan.keys {
        keys.execute(params![source, pk, id])?;
    }
    Ok(())
}

fn delete(
    conn: &Connection,
    source: &str,
    kind: EntityKind,
    pk: i64,
    message_key: Option<&str>,
) -> Result<(), rusqlite::Error> {
    match kind {
        EntityKind::Message => store::delete_message(conn, message_key.unwrap_or_default())?,
        EntityKind::Conversation => {
            let id: Option<String> = conn
                .prepare_cached("SELECT canonical_id FROM import_rows WHERE source = ? AND pk = ?")?
                .query_row(params![source, pk], |row| row.get(0))
                .optional()?;
            if let Some(id) = id {
                store::delete_conversation(conn, &id)?;
            }
        }
        EntityKind::Customer | EntityKind::Agent => {
            conn.prepare_cached("DELETE FROM import_parties WHERE source = ? AND pk = ?")?
                .execute(params![source, pk])?;
        }
    }
    conn.prepare_cached("DELETE FROM import_rows WHERE source = ? AND pk = ?")?
        .execute(params![source, pk])?;
    Ok(())
}

/// The same bookkeeping as the sqlx backends' `write_progress` (`writer.rs`).
fn write_progress(conn: &Connection, name: &str, rows: i64, progress: &Progress) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO import_checkpoint (name, snapshot_done, rows_applied, events_applied, errors) \
         VALUES (?, 0, 0, 0, 0)",
    )?
    .execute([name])?;
    let count_rows = "UPDATE import_checkpoint SET rows_applied = rows_applied + ? WHERE name = ?";
    match progress {
        Progress::None => {
            conn.prepare_cached(count_rows)?.execute(params![rows, name])?;
        }
        Progress::Snapshot { source, last_pk } => {
            conn.prepare_cached(count_rows)?.execute(params![rows, name])?;
            // Parallel writers may commit an older watermark after a newer one (see `snapshot::writers`).
            conn.prepare_cached(
                "INSERT INTO import_snapshot (name, source, last_pk) VALUES (?, ?, ?) \
                 ON CONFLICT (name, source) DO UPDATE SET last_pk = MAX(last_pk, excluded.last_pk)",
            )?
            .execute(params![name, source, last_pk])?;
        }
        Progress::Resynced { table, rows: copied } => {
            conn.prepare_cached(count_rows)?.execute(params![rows, name])?;
            conn.prepare_cached("UPDATE import_resync SET done_at = ?, copied = ? WHERE name = ? AND tbl = ?")?
                .execute(params![chrono::Utc::now().timestamp(), *copied as i64, name, table])?;
        }
        Progress::Binlog {
            position,
            events,
            event_time,
        } => {
            conn.prepare_cached(
                "UPDATE import_checkpoint SET file = ?, pos = ?, gtid = ?, rows_applied = rows_applied + ?, \
                 events_applied = events_applied + ?, last_event_at = ? WHERE name = ?",
            )?
            .execute(params![
                position.file,
                position.pos as i64,
                position.gtid,
                rows,
                *events as i64,
                event_time,
                name
            ])?;
        }
    }
    Ok(())
}
