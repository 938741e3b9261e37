//! The SQLite message writer: one thread, one raw SQLite connection, group commits.
//!
//! Why not sqlx here: sqlx's SQLite driver runs each connection on a worker thread and sends every statement
//! there and its result back over channels, so a message's six to eight statements cost six to eight thread
//! hand-offs (profiled in BENCHMARKS.md, 2026-12-02). This thread owns its connection and runs the statements
//! itself, prepared once when the thread starts and held. It links the same libsqlite3 as sqlx (rusqlite's
//! `libsqlite3-sys` is the version sqlx uses; the crate's `links` key admits only one), so file format, locking
//! and WAL behave as for the sqlx connections reading and writing the same file.
//!
//! The thread waits for a write, takes whatever else is queued (up to [`MAX_GROUP`]) into one `BEGIN IMMEDIATE`
//! transaction with a savepoint per write, commits, and hands the group's answers to the sync thread
//! (`sync.rs`), which answers each caller after the WAL's fsync: nothing is acknowledged before it is durable,
//! and the writer executes the next group while the disk syncs. With `synchronous = normal` there is no sync
//! thread and callers are answered at commit. The thread ends when the last sender of its queue (the last store
//! handle) is gone.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;

use super::checkpoint::{BACKSTOP_PAGES, Checkpointer};
use super::message::{Statements, Work, write_one};
use super::sync::{Answer, Syncer, WalFile};
use crate::config::Synchronous;
use crate::error::StoreError;
use crate::queue::Write;
use crate::store::Replied;
use crate::turn::WriteTurn;

/// Most writes committed in one transaction: bounds how long the first writer of a group waits for the rest.
pub(super) const MAX_GROUP: usize = 256;

/// Opens the writer's connection to the (already migrated) database at `path` and starts its thread on `queue`.
pub(super) fn start(
    path: &Path,
    synchronous: Synchronous,
    busy_timeout: Duration,
    turn: WriteTurn,
    queue: mpsc::Receiver<Write>,
) -> Result<(), StoreError> {
    let conn = connect(path, busy_timeout)?;
    let checkpointer = Checkpointer::start(path, busy_timeout, turn.clone())?;
    let syncer = match synchronous {
        Synchronous::Full => Some(Syncer::start(WalFile::next_to(path))?),
        Synchronous::Normal => None,
    };
    // The statements borrow the connection, so the thread prepares them and says whether it could.
    let (ready, prepared) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sqlite-writer".to_owned())
        .spawn(move || match Statements::prepare(&conn) {
            Ok(mut statements) => {
                let _ = ready.send(Ok(()));
                write_groups(&mut statements, &turn, &checkpointer, syncer.as_ref(), queue);
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        })
        .map_err(StoreError::WriterThread)?;
    prepared
        .recv()
        .map_err(|_| StoreError::WriterGone)?
        .map_err(StoreError::from)
}

/// The connection, set up as sqlx sets up its own (`foreign_keys` is per connection; WAL is a property of the
/// file, set when sqlx opened it). `synchronous` is NORMAL whatever the store's setting: with `full`, the WAL's
/// fsync after each commit is the sync thread's (`sync.rs`), so that it does not stall this connection.
fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    // NO_MUTEX: only this thread ever uses the connection.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
    Ok(conn)
}

/// The thread's loop: a group per turn, until the queue closes.
fn write_groups(
    statements: &mut Statements<'_>,
    turn: &WriteTurn,
    checkpointer: &Checkpointer,
    syncer: Option<&Syncer>,
    mut queue: mpsc::Receiver<Write>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        fill(&mut group, &mut queue);
        if syncer.is_some_and(Syncer::failed) {
            for write in group.drain(..) {
                let _ = write.done.send(Err(StoreError::NotDurable));
            }
            continue;
        }
        let held = turn.take_blocking();
        // Writes that arrived while waiting for the turn share this commit rather than wait for the next one.
        fill(&mut group, &mut queue);
        let (work, answers): (Vec<_>, Vec<_>) = group
            .drain(..)
            .map(|w| {
                let work = Work {
                    envelope: w.envelope,
                    received_at: w.received_at,
                    destinations: w.destinations,
                    fingerprint: w.fingerprint,
                    open_key: w.open_key,
                    reply: w.reply,
                };
                (work, w.done)
            })
            .unzip();
        let results = commit_group(statements, work);
        drop(held);
        match results {
            Ok(results) => {
                checkpointer.committed(results.iter().map(messages_written).sum());
                let answered: Vec<Answer> = answers.into_iter().zip(results).collect();
                match syncer {
                    Some(syncer) => syncer.committed(answered),
                    None => {
                        for (caller, result) in answered {
                            let _ = caller.send(result);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = answers.len(), "SQLite group commit failed");
                let reason = e.to_string();
                for answer in answers {
                    let _ = answer.send(Err(StoreError::GroupFailed(reason.clone())));
                }
            }
        }
    }
}

/// Messages a write stored: a reply counts, as the cadence of checkpoints is in messages (`checkpoint.rs`).
fn messages_written(result: &Result<Replied, StoreError>) -> usize {
    match result {
        Ok(Replied { reply: Ok(Some(_)), .. }) => 2,
        _ => 1,
    }
}

/// Moves queued writes into `group` without waiting, up to [`MAX_GROUP`].
fn fill(group: &mut Vec<Write>, queue: &mut mpsc::Receiver<Write>) {
    while group.len() < MAX_GROUP {
        match queue.try_recv() {
            Ok(write) => group.push(write),
            Err(_) => break,
        }
    }
}

/// One transaction for the whole group; the answers are in the group's order. A write refused on its own
/// (reused key, unknown conversation, a failed statement) is rolled back to its savepoint and leaves the others
/// untouched.
fn commit_group(
    statements: &mut Statements<'_>,
    work: Vec<Work>,
) -> Result<Vec<Result<Replied, StoreError>>, rusqlite::Error> {
    statements.begin.execute([])?;
    let written = write_all(statements, work).and_then(|results| {
        statements.commit.execute([])?;
        Ok(results)
    });
    let conn = statements.connection();
    if written.is_err() && !conn.is_autocommit() {
        // Leaves the connection usable for the next group; the group's callers learn it failed.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "SQLite rollback after a failed group failed");
        }
    }
    written
}

fn write_all(
    statements: &mut Statements<'_>,
    work: Vec<Work>,
) -> Result<Vec<Result<Replied, StoreError>>, rusqlite::Error> {
    let mut results = Vec::with_capacity(work.len());
    for one in work {
        // A savepoint per write: a write that fails half-way (say, after opening its conversation) leaves
        // nothing behind, and the rest of the group still commits.
        statements.savepoint.execute([])?;
        let result = write_one(statements, one);
        if result.is_err() {
            statements.rollback_to.execute([])?;
        }
        statements.release.execute([])?;
        results.push(result);
    }
    Ok(results)
}
