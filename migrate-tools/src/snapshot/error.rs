//! [`SnapshotError`]: why a snapshot stopped.

use crate::decode::DecodeError;
use crate::mapping::FieldError;
use crate::sink::TargetError;
use crate::source::SourceError;

/// Snapshot failures.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A source query failed.
    #[error("source query failed: {0}")]
    Query(#[from] mysql_async::Error),
    /// The target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A value could not be decoded.
    #[error("table {table}, row {row}: {source}")]
    Decode {
        /// The table.
        table: String,
        /// The row, by its key (`id=42`).
        row: String,
        /// The cause.
        #[source]
        source: DecodeError,
    },
    /// A row could not be mapped.
    #[error(transparent)]
    Map(#[from] FieldError),
    /// The writer task ended early.
    #[error("the target writer stopped")]
    WriterGone,
}
