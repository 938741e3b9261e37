//! The target: the protofuse conversation store's own tables plus the importer's bookkeeping (`import_*`).
//!
//! Conversations and messages are written through the store's bulk import API ([`protofuse_store::import`]),
//! which computes every stored column with the store's own codec, on the importer's own pool and inside the
//! importer's transaction. [`protofuse_store::open`] runs first, so the store's migrations are applied; the
//! `import_*` tables are created with `CREATE TABLE IF NOT EXISTS` rather than sqlx migrations, which would
//! clash with the store's migration history in `_sqlx_migrations`.
//!
//! Every [`Target::apply`] is one database transaction holding the rows and the checkpoint that covers them.

mod mysql;
mod sqlite;
mod writer;

use std::time::Duration;

use crate::canonical::Record;
use crate::mapping::EntityKind;

/// How often a batch is run again after losing a deadlock.
const DEADLOCK_RETRIES: u32 = 5;

/// One change to apply, keyed by (source, primary key).
#[derive(Debug, Clone)]
pub struct Op {
    /// `<mapping>:<table>/<kind>`.
    pub source: String,
    /// What the row is.
    pub kind: EntityKind,
    /// The source primary key.
    pub pk: i64,
    /// Upsert with the row's records, or delete.
    pub action: Action,
}

/// What to do with the row.
// Unboxed on purpose: actions live briefly in batches, and most are upserts of the large variant anyway.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    /// Insert or replace.
    Upsert(Record),
    /// Remove.
    Delete {
        /// For messages: the idempotency key (derived, so no lookup is needed).
        message_key: Option<String>,
    },
}

/// Where the source stream stands, stored with the rows it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// Binlog file name.
    pub file: String,
    /// Offset of the next event to read.
    pub pos: u64,
    /// MariaDB GTID position (`domain-server-seq`) at that point, when known.
    pub gtid: Option<String>,
}

/// Progress recorded with a batch.
#[derive(Debug, Clone, Default)]
pub enum Progress {
    /// Nothing besides the rows.
    #[default]
    None,
    /// A snapshot chunk: the last primary key copied of `source`, and whether the table is done.
    Snapshot {
        /// The mapping source.
        source: String,
        /// Highest primary key copied.
        last_pk: i64,
    },
    /// The binlog position after the last source transaction in the batch.
    Binlog {
        /// The position.
        position: Position,
        /// Source events covered (for `status`).
        events: u64,
        /// Source timestamp (Unix seconds) of the last event.
        event_time: i64,
    },
}

/// What `status` shows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// Binlog file of the checkpoint.
    pub file: Option<String>,
    /// Offset of the checkpoint.
    pub pos: Option<u64>,
    /// GTID of the checkpoint.
    pub gtid: Option<String>,
    /// Whether the snapshot has finished.
    pub snapshot_done: bool,
    /// Rows applied, snapshot and follow.
    pub rows_applied: i64,
    /// Binlog events applied.
    pub events_applied: i64,
    /// Unix seconds of the last applied source event.
    pub last_event_at: Option<i64>,
    /// Errors recorded (reconnects, failed batches).
    pub errors: i64,
    /// The last error, redacted.
    pub last_error: Option<String>,
}

/// Target failures.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Opening the protofuse store (and its migrations) failed.
    #[error("cannot open the target store: {0}")]
    Store(#[from] protofuse_store::StoreError),
    /// A database error.
    #[error("target database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The URL names no supported backend.
    #[error("target url must start with sqlite: or mysql: (got {0})")]
    Url(String),
    /// `--no-target-binlog` was asked for, but the target user may not turn binary logging off.
    #[error(
        "--no-target-binlog: the target user may not turn off binary logging for its sessions (needs SUPER, \
         BINLOG ADMIN on MariaDB 10.5+, or SESSION_VARIABLES_ADMIN on MySQL 8): {0}"
    )]
    BinlogOff(#[source] sqlx::Error),
}

/// How the importer writes to its target.
#[derive(Debug, Clone, Copy)]
pub struct TargetOptions {
    /// Whether a MySQL/MariaDB target writes the importer's changes to its own binary log. Off
    /// (`SET SESSION sql_log_bin = 0`) costs the target's server about a quarter less CPU per row and copies
    /// 1.2–1.3x as fast (migrate-tools/BENCHMARKS.md), but replicas and binlog-based backups of the target then
    /// never see the imported rows; so it is the operator's explicit choice, as in myloader.
    pub binlog: bool,
}

impl Default for TargetOptions {
    fn default() -> Self {
        Self { binlog: true }
    }
}

/// The opened target.
#[derive(Debug, Clone)]
pub enum Target {
    /// SQLite file.
    Sqlite(sqlx::SqlitePool),
    /// MySQL/MariaDB database.
    Mysql(sqlx::MySqlPool),
}

impl Target {
    /// Opens the store at `url` (applying protofuse's migrations), then the importer's own pool and tables.
    pub async fn open(url: &str) -> Result<Self, TargetError> {
        Self::open_with(url, TargetOptions::default()).await
    }

    /// [`Target::open`] with `options`.
    pub async fn open_with(url: &str, options: TargetOptions) -> Result<Self, TargetError> {
        let settings = protofuse_store::StoreConfig {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(30),
            ..protofuse_store::StoreConfig::for_url(url)
        };
        drop(protofuse_store::open(&settings).await?);
        if url.starts_with("sqlite:") {
            if !options.binlog {
                tracing::warn!("--no-target-binlog has no effect on a SQLite target");
            }
            Ok(Self::Sqlite(sqlite::open(url).await?))
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Self::Mysql(mysql::open(url, options.binlog).await?))
        } else {
            Err(TargetError::Url(crate::redact::url(url)))
        }
    }

    /// Applies `ops` and `progress` in one transaction. On MySQL a transaction InnoDB picks as a deadlock victim
    /// is run again (parallel snapshot writers, or the server writing the same conversation, can lock rows in
    /// opposite orders); it rolled back whole, so nothing is applied twice.
    pub async fn apply(&self, name: &str, ops: &[Op], progress: &Progress) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(pool) => Ok(sqlite::apply(pool, name, ops, progress).await?),
            Self::Mysql(pool) => {
                let mut attempt = 0;
                loop {
                    match mysql::apply(pool, name, ops, progress).await {
                        Err(e) if protofuse_store::is_deadlock(&e) && attempt < DEADLOCK_RETRIES => {
                            attempt += 1;
                            tracing::debug!(attempt, "target batch was a deadlock victim; running it again");
                        }
                        applied => return Ok(applied?),
                    }
                }
            }
        }
    }

    /// How many batches may be written at once: InnoDB runs transactions of separate connections in parallel,
    /// SQLite has one writer.
    pub fn max_writers(&self) -> usize {
        match self {
            Self::Sqlite(_) => 1,
            Self::Mysql(_) => mysql::MAX_WRITERS,
        }
    }

    /// The checkpoint and counters of import `name`.
    pub async fn status(&self, name: &str) -> Result<Status, TargetError> {
        match self {
            Self::Sqlite(pool) => sqlite::status(pool, name).await,
            Self::Mysql(pool) => mysql::status(pool, name).await,
        }
    }

    /// Where a snapshot of `source` stands: the last primary key copied, if any.
    pub async fn snapshot_progress(&self, name: &str, source: &str) -> Result<Option<i64>, TargetError> {
        match self {
            Self::Sqlite(pool) => sqlite::snapshot_progress(pool, name, source).await,
            Self::Mysql(pool) => mysql::snapshot_progress(pool, name, source).await,
        }
    }

    /// Records where a snapshot began (only the first time) or that it finished.
    pub async fn mark_snapshot(&self, name: &str, start: Option<&Position>, done: bool) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(pool) => sqlite::mark_snapshot(pool, name, start, done).await,
            Self::Mysql(pool) => mysql::mark_snapshot(pool, name, start, done).await,
        }
    }

    /// Counts an error and keeps its (redacted) text for `status`.
    pub async fn record_error(&self, name: &str, error: &str) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(pool) => sqlite::record_error(pool, name, error).await,
            Self::Mysql(pool) => mysql::record_error(pool, name, error).await,
        }
    }

    /// The rows of `source` with primary keys in `lo..=hi` as the target holds them: (pk, digest).
    pub async fn digests(
        &self,
        source: &str,
        kind: EntityKind,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(i64, String)>, TargetError> {
        match self {
            Self::Sqlite(pool) => sqlite::digests(pool, source, kind, lo, hi).await,
            Self::Mysql(pool) => mysql::digests(pool, source, kind, lo, hi).await,
        }
    }

    /// How many rows of `source` the target holds.
    pub async fn count(&self, source: &str, kind: EntityKind) -> Result<i64, TargetError> {
        match self {
            Self::Sqlite(pool) => sqlite::count(pool, source, kind).await,
            Self::Mysql(pool) => mysql::count(pool, source, kind).await,
        }
    }
}
