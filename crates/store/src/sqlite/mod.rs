//! The embedded SQLite backend: one file in WAL mode, a pool of readers, a writer thread that commits messages
//! in groups, and one sqlx connection for every other write.
//!
//! SQLite allows one writer at a time and, with `synchronous = full`, pays an fsync per commit. The writer
//! thread (`writer.rs`, statements in `message.rs`) takes every message write waiting in its queue into one
//! transaction, so under load many messages share one fsync, while a lone message is still committed at once.
//! Callers are answered only after the commit of their group and, with `full`, the WAL's fsync that follows it,
//! which runs on a thread of its own (`sync.rs`) so the writer can go on to the next group meanwhile; WAL
//! checkpoints run on another (`checkpoint.rs`), so the writer does not stop to copy the WAL. Status changes,
//! triage outcomes and the outbox's claims and settlements are rarer and stay on sqlx (the SQL shared with
//! MySQL); they take the same [`WriteTurn`] as the writer thread before writing, so the two connections
//! alternate fairly.

use std::str::FromStr;

use protofuse_model::{Conversation, ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::mpsc;

use crate::codec;
use crate::config::{StoreConfig, Synchronous};
use crate::error::StoreError;
use crate::outbox::{DeadLetterTuple, dead_letter_from, impl_outbox};
use crate::page::{ConversationFilter, Order, Page, PageRequest};
use crate::queries::{ConversationTuple, impl_store, split_page, tuple_to_row};
use crate::store::{Inserted, Replied, Reply, Store};
use crate::turn::WriteTurn;

mod checkpoint;
mod message;
mod sync;
mod writer;

use crate::queue::{self, Write};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    /// The write connection for everything but messages (status, triage, outbox), used in [`WriteTurn`].
    writer: SqlitePool,
    /// The message writer thread's queue.
    writes: mpsc::Sender<Write>,
    turn: WriteTurn,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by `settings.url`, migrates it and starts the writer
    /// thread (which ends when the last handle to the store is dropped).
    pub async fn open(settings: &StoreConfig) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&settings.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match settings.sqlite_synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .pragma("wal_autocheckpoint", checkpoint::BACKSTOP_PAGES.to_string())
            .busy_timeout(settings.acquire_timeout);
        let path = options.get_filename().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
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
        let turn = WriteTurn::shared();
        writer::start(
            &path,
            settings.sqlite_synchronous,
            settings.acquire_timeout,
            turn.clone(),
            queue,
        )?;
        Ok(Self {
            reader,
            writer,
            writes,
            turn,
        })
    }

    async fn insert(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
    ) -> Result<Inserted, StoreError> {
        Ok(queue::submit(&self.writes, envelope, received_at, destinations, None)
            .await?
            .inserted)
    }

    /// The message and its reply as one queued write: the writer stores both in the message's savepoint.
    async fn answered(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
        reply: Reply,
    ) -> Result<Replied, StoreError> {
        queue::submit(&self.writes, envelope, received_at, destinations, Some(reply)).await
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, "sqlite", "BEGIN IMMEDIATE");
impl_outbox!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE");
