//! The embedded SQLite backend: one file in WAL mode, one writer connection, a pool of readers.

use std::str::FromStr;

use protofuse_model::{Conversation, ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp};
use serde::Deserialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::queries::{ConversationTuple, impl_store, split_page, tuple_to_row};
use super::{ConversationFilter, Inserted, Order, Page, PageRequest, Store, StoreError, StoreSettings, codec};

/// How hard SQLite works to make a commit survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged message survives a power cut. The default, because protofuse
    /// acknowledges a message only after it is stored.
    #[default]
    Full,
    /// fsync at WAL checkpoints only: survives a process crash, may lose the last commits on power loss.
    Normal,
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    /// A single connection: SQLite allows one writer at a time, and queueing in the pool is cheaper and fairer
    /// than retrying on `SQLITE_BUSY`.
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by `settings.url` and migrates it.
    pub async fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
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
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&writer)
            .await
            .map_err(StoreError::Migrate)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { reader, writer })
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, "sqlite");
