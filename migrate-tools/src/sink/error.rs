//! [`TargetError`]: why the target refused.

/// Target failures.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Opening the protofuse store (and its migrations) failed.
    #[error("cannot open the target store: {0}")]
    Store(#[from] protofuse_store::StoreError),
    /// A database error.
    #[error("target database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A database error on the SQLite target's batch connection.
    #[error("target database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
