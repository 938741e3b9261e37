//! The conversation store: where accepted messages and their conversations live.
//!
//! One interface, [`Store`], two backends: SQLite (embedded default, a WAL-mode file under the data dir) and
//! MySQL/MariaDB (production). Both run the same SQL, written once in [`queries`], and are checked by the same
//! test suite. Migrations are per backend (`migrations/{sqlite,mysql}/`) and applied by [`open`] at start-up.
//!
//! Writing a message is idempotent on its idempotency key: the same key is stored once, and the caller learns
//! whether its write was a duplicate. The store never decides routing or status transitions; it only records.

mod codec;
mod mysql;
pub mod outbox;
mod queries;
mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use protofuse_model::{
    Conversation, ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp, TriageOutcome,
};

pub use mysql::{MysqlStore, is_deadlock};
pub use outbox::Outbox;
pub use sqlite::{SqliteStore, Synchronous};

/// How to reach the store; built from the `[store]` config section.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `sqlite://path/to/file.db` or `mysql://user:pass@host:port/db`.
    pub url: String,
    /// Pool size (for SQLite: readers; writes go through one connection).
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite durability; ignored for MySQL.
    pub sqlite_synchronous: Synchronous,
}

/// Opens the store named by `settings.url`, creating the SQLite file and its directory if needed, and applies
/// pending migrations.
pub async fn open(settings: &StoreSettings) -> Result<Box<dyn Store>, StoreError> {
    if settings.url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(settings).await?))
    } else if settings.url.starts_with("mysql:") || settings.url.starts_with("mariadb:") {
        Ok(Box::new(MysqlStore::open(settings).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// The conversation store. Implementations are cheap to share (`Arc`) and safe to call concurrently.
#[async_trait]
pub trait Store: Outbox + Send + Sync + 'static {
    /// Stores `envelope` as a message received at `received_at`, resolving or opening its conversation.
    /// Idempotent on the envelope's key: a second write of the same key stores nothing and returns the first
    /// message with `duplicate: true`; the same key with different content is [`StoreError::KeyReused`].
    async fn insert_message(&self, envelope: Envelope, received_at: Timestamp) -> Result<Inserted, StoreError> {
        self.insert_routed(envelope, received_at, Vec::new()).await
    }

    /// [`Store::insert_message`], also queueing one outbox delivery per destination in the same transaction
    /// (none for a duplicate: its deliveries were queued with the first write).
    async fn insert_routed(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
    ) -> Result<Inserted, StoreError>;

    /// One conversation, if it exists.
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;

    /// A page of a conversation's messages in id (= arrival) order.
    async fn messages(&self, conversation: ConversationId, page: PageRequest) -> Result<Page<Message>, StoreError>;

    /// A page of conversations matching `filter`, newest first.
    async fn conversations(
        &self,
        filter: &ConversationFilter,
        page: PageRequest,
    ) -> Result<Page<Conversation>, StoreError>;

    /// Moves a conversation to `change.status`, setting its department and agent where given (a `None` keeps the
    /// current value). Closing also frees the customer's "open conversation" slot, so their next message opens a
    /// new one. Returns the conversation before and after, or `None` if it does not exist. Which transitions are
    /// allowed is the service's rule, not the store's.
    async fn change_status(
        &self,
        id: ConversationId,
        change: &StatusChange,
        at: Timestamp,
    ) -> Result<Option<(Conversation, Conversation)>, StoreError>;

    /// Records triage's outcome on a stored message (replacing an earlier one). Returns the updated message, or
    /// `None` if there is no such message.
    async fn set_triage(&self, id: MessageId, outcome: &TriageOutcome) -> Result<Option<Message>, StoreError>;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// `sqlite` or `mysql`, for logs and metrics.
    fn backend(&self) -> &'static str;
}

/// What [`Store::change_status`] sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The new status.
    pub status: ConversationStatus,
    /// The department now responsible, if it changes.
    pub department: Option<String>,
    /// The agent now assigned, if it changes.
    pub assigned_agent: Option<String>,
}

/// The result of [`Store::insert_message`].
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The stored message (the earlier one, for a duplicate).
    pub message: Message,
    /// `true` when the key had been stored before and nothing was written.
    pub duplicate: bool,
}

/// Sort order of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// Which page to read: items strictly after `after` in `order`, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// The cursor returned with the previous page; `None` for the first page.
    pub after: Option<uuid::Uuid>,
    /// Page size, clamped to [`PageRequest::MAX_LIMIT`].
    pub limit: u32,
    /// Sort order.
    pub order: Order,
}

impl PageRequest {
    /// Largest page served; bigger requests are clamped.
    pub const MAX_LIMIT: u32 = 500;
    /// Page size when the caller does not ask.
    pub const DEFAULT_LIMIT: u32 = 50;

    fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            after: None,
            limit: Self::DEFAULT_LIMIT,
            order: Order::default(),
        }
    }
}

/// A page of results and the cursor for the next one (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as [`PageRequest::after`] to read on.
    pub next_cursor: Option<uuid::Uuid>,
}

/// Which conversations to list. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// The customer's external id.
    pub customer_id: Option<String>,
    /// The status.
    pub status: Option<ConversationStatus>,
}

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
    /// The SQLite writer task has stopped (the store is shutting down).
    #[error("the store's writer has stopped")]
    WriterGone,
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

impl StoreError {
    /// `true` when retrying later may succeed (the database is down, busy or timed out).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Database(_) | Self::GroupFailed(_) | Self::WriterGone)
    }
}
