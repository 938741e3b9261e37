//! [`Target`]: the opened target store and its operations, dispatched to the backend's instantiation of the
//! write path (`writer.rs`).

use std::time::Duration;

use super::batch::{Op, Position, Progress, Status};
use super::error::TargetError;
use super::{mysql, sqlite};
use crate::mapping::EntityKind;

/// How often a batch is run again after losing a deadlock.
const DEADLOCK_RETRIES: u32 = 5;

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
    Sqlite(sqlite::SqliteTarget),
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
    pub async fn apply(&self, name: &str, ops: Vec<Op>, progress: &Progress) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite.batches.apply(name, ops, progress).await,
            Self::Mysql(pool) => {
                let mut attempt = 0;
                loop {
                    match mysql::apply(pool, name, &ops, progress).await {
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
            Self::Sqlite(sqlite) => sqlite::status(&sqlite.pool, name).await,
            Self::Mysql(pool) => mysql::status(pool, name).await,
        }
    }

    /// Where a snapshot of `source` stands: the last primary key copied, if any.
    pub async fn snapshot_progress(&self, name: &str, source: &str) -> Result<Option<i64>, TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::snapshot_progress(&sqlite.pool, name, source).await,
            Self::Mysql(pool) => mysql::snapshot_progress(pool, name, source).await,
        }
    }

    /// Records where a snapshot began (only the first time) or that it finished.
    pub async fn mark_snapshot(&self, name: &str, start: Option<&Position>, done: bool) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::mark_snapshot(&sqlite.pool, name, start, done).await,
            Self::Mysql(pool) => mysql::mark_snapshot(pool, name, start, done).await,
        }
    }

    /// Asks the running `follow` (or the next one to start) to copy `table` again (`resync --table`).
    pub async fn request_resync(&self, name: &str, table: &str) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::request_resync(&sqlite.pool, name, table).await,
            Self::Mysql(pool) => mysql::request_resync(pool, name, table).await,
        }
    }

    /// Tables whose requested copy is not done yet, oldest request first.
    pub async fn pending_resyncs(&self, name: &str) -> Result<Vec<String>, TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::pending_resyncs(&sqlite.pool, name).await,
            Self::Mysql(pool) => mysql::pending_resyncs(pool, name).await,
        }
    }

    /// The rows the requested copy of `table` wrote, once it is done.
    pub async fn resync_done(&self, name: &str, table: &str) -> Result<Option<i64>, TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::resync_done(&sqlite.pool, name, table).await,
            Self::Mysql(pool) => mysql::resync_done(pool, name, table).await,
        }
    }

    /// Takes import `name`'s lease for `holder` until `until` (ms since the epoch) when it is free, expired,
    /// `holder`'s already, or `dead`'s (a holder known to have stopped); otherwise `Err` with the holder and when
    /// its lease ends.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        dead: Option<&str>,
        now: i64,
        until: i64,
    ) -> Result<Result<(), (String, i64)>, TargetError> {
        let dead = dead.unwrap_or(holder);
        match self {
            Self::Sqlite(sqlite) => sqlite::take_lease(&sqlite.pool, name, holder, dead, now, until).await,
            Self::Mysql(pool) => mysql::take_lease(pool, name, holder, dead, now, until).await,
        }
    }

    /// Extends `holder`'s lease on `name`; `false` when another follower has taken it.
    pub async fn renew_lease(&self, name: &str, holder: &str, until: i64) -> Result<bool, TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::renew_lease(&sqlite.pool, name, holder, until).await,
            Self::Mysql(pool) => mysql::renew_lease(pool, name, holder, until).await,
        }
    }

    /// Gives `holder`'s lease on `name` up.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::release_lease(&sqlite.pool, name, holder).await,
            Self::Mysql(pool) => mysql::release_lease(pool, name, holder).await,
        }
    }

    /// Counts an error and keeps its (redacted) text for `status`.
    pub async fn record_error(&self, name: &str, error: &str) -> Result<(), TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::record_error(&sqlite.pool, name, error).await,
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
            Self::Sqlite(sqlite) => sqlite::digests(&sqlite.pool, source, kind, lo, hi).await,
            Self::Mysql(pool) => mysql::digests(pool, source, kind, lo, hi).await,
        }
    }

    /// The stored records of `source` with primary keys in `lo..=hi`, as JSON objects (see `verify --mode source`).
    pub async fn stored(
        &self,
        source: &str,
        kind: EntityKind,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(i64, serde_json::Map<String, serde_json::Value>)>, TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::stored(&sqlite.pool, source, kind, lo, hi).await,
            Self::Mysql(pool) => mysql::stored(pool, source, kind, lo, hi).await,
        }
    }

    /// How many rows of `source` the target holds.
    pub async fn count(&self, source: &str, kind: EntityKind) -> Result<i64, TargetError> {
        match self {
            Self::Sqlite(sqlite) => sqlite::count(&sqlite.pool, source, kind).await,
            Self::Mysql(pool) => mysql::count(pool, source, kind).await,
        }
    }
}
