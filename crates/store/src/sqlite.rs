//! The embedded SQLite backend: one file in WAL mode, a pool of readers, and one writer task that commits
//! messages in groups.
//!
//! SQLite allows one writer at a time and, with `synchronous = full`, pays an fsync per commit. The writer task
//! takes every write waiting in its queue (up to [`MAX_GROUP`]) into one transaction, so under load many
//! messages share one fsync, while a lone message is still committed at once. Callers are answered only after
//! the commit of their group.

use std::str::FromStr;

use protofuse_model::{Conversation, ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use crate::codec;
use crate::config::{StoreConfig, Synchronous};
use crate::error::StoreError;
use crate::outbox::{DeadLetterTuple, dead_letter_from, impl_outbox};
use crate::page::{ConversationFilter, Order, Page, PageRequest};
use crate::queries::{ConversationTuple, impl_store, split_page, tuple_to_row};
use crate::store::{Inserted, Store};

/// Most writes committed in one transaction: bounds how long the first writer of a group waits for the rest.
const MAX_GROUP: usize = 256;

struct Write {
    envelope: Envelope,
    received_at: Timestamp,
    destinations: Vec<String>,
    done: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    /// The single write connection, shared by the group-commit task and the outbox (which waits its turn).
    writer: SqlitePool,
    writes: mpsc::Sender<Write>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by `settings.url`, migrates it and starts the writer
    /// task (which ends when the last handle to the store is dropped).
    pub async fn open(settings: &StoreConfig) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&settings.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match settings.sqlite_synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(settings.acquire_timeout);
        if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(StoreError::Migrate)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.read_only(true))
            .await?;
        let (writes, queue) = mpsc::channel(settings.write_queue.max(1));
        tokio::spawn(write_groups(writer.clone(), queue));
        Ok(Self { reader, writer, writes })
    }

    async fn insert(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
    ) -> Result<Inserted, StoreError> {
        let (done, result) = oneshot::channel();
        // Refused at once when full: a caller waiting for room would hold its request (and its memory) for as
        // long as the overload lasts, and its client would time out anyway.
        self.writes
            .try_send(Write {
                envelope,
                received_at,
                destinations,
                done,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::WriterGone,
            })?;
        result.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// The writer task: waits for a write, takes whatever else is queued, commits them together.
async fn write_groups(writer: SqlitePool, mut queue: mpsc::Receiver<Write>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (work, answers): (Vec<_>, Vec<_>) = group
            .drain(..)
            .map(|w| ((w.envelope, w.received_at, w.destinations), w.done))
            .unzip();
        match commit_group(&writer, work).await {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
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

/// One transaction for the whole group. A write refused on its own (reused key, unknown conversation, a failed
/// statement) is rolled back to its savepoint and leaves the others untouched.
async fn commit_group(
    writer: &SqlitePool,
    work: Vec<(Envelope, Timestamp, Vec<String>)>,
) -> Result<Vec<Result<Inserted, StoreError>>, sqlx::Error> {
    // IMMEDIATE takes the write lock up front: a deferred transaction would read first and then fail with
    // SQLITE_BUSY when upgrading to write while another process holds the lock, instead of waiting for it.
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(work.len());
    for (envelope, received_at, destinations) in work {
        // A savepoint per write: a write that fails half-way (say, after opening its conversation) leaves
        // nothing behind, and the rest of the group still commits.
        let mut one = sqlx::Connection::begin(&mut *tx).await?;
        let result = write_one(&mut one, envelope, received_at, &destinations).await;
        if result.is_ok() {
            one.commit().await?;
        }
        results.push(result);
    }
    tx.commit().await?;
    Ok(results)
}

impl_store!(SqliteStore, sqlx::Sqlite, "sqlite", "BEGIN IMMEDIATE");
impl_outbox!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE");
