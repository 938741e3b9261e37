//! The MySQL message writers: a bounded queue, a few tasks draining it in batches, and who answers whom.
//!
//! A task waits for a write, takes whatever else is queued (up to [`MAX_BATCH`]) and commits it as one batch
//! (`batch.rs`); callers are answered only after that commit. While one task's batch waits on the database,
//! another collects the writes that arrived meanwhile, so under load batches grow by themselves, and a lone
//! write is still committed at once. Writes the batch could not settle in bulk, and writes repeating a key
//! seen earlier in the same batch, take the per-message path (`one.rs`) after it. The tasks
//! end when the last sender of the queue (the last store handle) is gone.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::Executor as _;
use sqlx::mysql::{MySql, MySqlConnection, MySqlPool};
use sqlx::pool::PoolConnection;
use tokio::sync::{Mutex, mpsc};

use super::batch::{self, Failed, MAX_BATCH};
use super::one::insert_one;
use crate::error::StoreError;
use crate::queue::Write;

/// Writer tasks, each holding one connection of the pool. Two: while one waits on the database, the other
/// collects the writes that arrived meanwhile into the next batch. More only cut the queue into smaller
/// batches, and a batch's cost is its round trips, not its rows: on the REST bench (BENCHMARKS.md,
/// 2026-12-03) four writers took 3,436 messages/s, two 4,838, one 4,767. Capped at half the pool, so reads,
/// the outbox and status changes always find a connection.
const WRITERS: u32 = 2;

/// Starts the writer tasks on `queue`, writing through `pool` (of `max_connections`).
pub(super) fn start(pool: &MySqlPool, max_connections: u32, queue: mpsc::Receiver<Write>) {
    let writers = WRITERS.min(max_connections / 2).max(1);
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..writers {
        tokio::spawn(run(pool.clone(), Arc::clone(&queue)));
    }
}

/// One writer task: a batch per turn, until the queue closes.
async fn run(pool: MySqlPool, queue: Arc<Mutex<mpsc::Receiver<Write>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The task's own connection, kept from batch to batch: taking one from the pool for each batch costs a
    // round trip (sqlx pings a connection before handing it out). Dropped (closed) after a failure, so the
    // next batch starts on a fresh one.
    let mut conn: Option<PoolConnection<MySql>> = None;
    loop {
        {
            // Only one task waits on the queue at a time; the others are writing their batches meanwhile.
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
        }
        let connection = match conn.take() {
            Some(c) => Ok(c),
            None => connect(&pool).await,
        };
        match connection {
            Ok(mut c) => {
                if write(&pool, &mut c, std::mem::take(&mut batch)).await {
                    conn = Some(c);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.len(), "no MySQL connection for a batch");
                let reason = e.to_string();
                for write in batch.drain(..) {
                    write.answer(Err(StoreError::GroupFailed(reason.clone())));
                }
            }
        }
        batch.reserve(MAX_BATCH);
    }
}

/// A writer's connection: taken from the pool for good, with `autocommit` off, so a batch's first statement
/// opens its transaction (`batch::commit`). Closed when dropped, never returned to the pool, where it would
/// hand its next user a connection that never commits.
async fn connect(pool: &MySqlPool) -> Result<PoolConnection<MySql>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    conn.execute("SET autocommit = 0").await?;
    Ok(conn)
}

/// Commits `writes` as one batch on `conn` and answers every caller. `false` when the connection failed and
/// should not be used again.
async fn write(pool: &MySqlPool, conn: &mut MySqlConnection, writes: Vec<Write>) -> bool {
    // A key seen earlier in this batch must see how the first write of it ended (stored: a duplicate; other
    // content: a reused key), so it waits for the batch and goes on its own.
    let mut keys = HashSet::with_capacity(writes.len());
    let (firsts, repeats): (Vec<Write>, Vec<Write>) = writes
        .into_iter()
        .partition(|w| keys.insert(w.envelope.idempotency_key.as_str().to_owned()));
    let healthy = match batch::commit(conn, &firsts).await {
        Ok(results) => {
            for (write, result) in firsts.into_iter().zip(results) {
                write.answer(result);
            }
            true
        }
        Err(Failed::Refused(e)) => {
            // Nothing of the batch was stored: each write goes again on its own, where a conflict is settled
            // by the per-message path (a re-read after a unique-key conflict, a retry after a deadlock) and a
            // bad value fails only its own write.
            tracing::debug!(error = %e, writes = firsts.len(), "MySQL batch rolled back; writing one by one");
            one_by_one(pool, firsts).await;
            true
        }
        Err(Failed::Lost(e)) => {
            // Say a server restart: the next batch takes a fresh connection, and these go one by one on the
            // pool's (which checks a connection before handing it out).
            tracing::warn!(error = %e, writes = firsts.len(), "MySQL writer connection lost; writing one by one");
            one_by_one(pool, firsts).await;
            false
        }
        Err(Failed::Unavailable(e)) => {
            tracing::warn!(error = %e, writes = firsts.len(), "MySQL batch commit failed");
            let reason = format!("{e}");
            for write in firsts {
                write.answer(Err(StoreError::GroupFailed(reason.clone())));
            }
            false
        }
    };
    one_by_one(pool, repeats).await;
    healthy
}

/// Each write in a transaction of its own, in order.
async fn one_by_one(pool: &MySqlPool, writes: Vec<Write>) {
    for write in writes {
        let result = insert_one(pool, &write.envelope, write.received_at, &write.destinations).await;
        write.answer(result);
    }
}
