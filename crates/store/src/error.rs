//! [`StoreError`]: why the store could not do what was asked, and whether retrying may help.

use protofuse_model::ConversationId;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The envelope names a conversation that does not exist.
    #[error("conversation {0} not found")]
    ConversationNotFound(ConversationId),
    /// The idempotency key was stored before with different content.
    #[error("idempotency key was already used for a different message")]
    KeyReused,
    /// [`crate::StatusChange::if_assignee`] no longer holds: another agent took (or released) the conversation.
    #[error("the conversation's assignee changed (now {})", .current.as_deref().unwrap_or("nobody"))]
    AssigneeChanged {
        /// Who is assigned now.
        current: Option<String>,
    },
    /// The store URL names no supported backend.
    #[error("store url must start with sqlite: or mysql:")]
    UnsupportedUrl,
    /// A stored row does not decode; the database was changed behind protofuse's back.
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    /// Migrations could not be applied.
    #[error("migrating the store failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database failed or could not be reached. Usually transient.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The SQLite writer thread's connection failed (the message write path; see `sqlite/writer.rs`). Usually
    /// transient (busy, I/O).
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
    /// The SQLite writer thread could not be started.
    #[error("cannot start the store's writer thread")]
    WriterThread(#[source] std::io::Error),
    /// The write queue is full: the store is taking writes more slowly than they arrive. Retry shortly.
    #[error("the store's write queue is full")]
    Overloaded,
    /// The SQLite writer thread has stopped (the store is shutting down).
    #[error("the store's writer has stopped")]
    WriterGone,
    /// An fsync of the SQLite WAL failed (now or earlier in this process's life): whether this write survives a
    /// power cut is unknown, and every write is refused until a restart recovers the file (`sqlite/sync.rs`).
    #[error("the store cannot make writes durable (an fsync failed); restart the server")]
    NotDurable,
    /// The transaction holding this write (with others) failed to commit; nothing of it was stored.
    #[error("group commit failed: {0}")]
    GroupFailed(String),
    /// Preparing the data directory failed.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl StoreError {
    /// `true` when retrying later may succeed (the database is down, busy or timed out).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Database(_) | Self::Sqlite(_) | Self::GroupFailed(_) | Self::WriterGone | Self::Overloaded
        )
    }
}
