//! [`FollowError`]: why following stopped or reconnects, and what the operator can do about it.

use crate::binlog::BinlogError;
use crate::ddl::DdlStop;
use crate::mapping::FieldError;
use crate::sink::TargetError;
use crate::snapshot::SnapshotError;
use crate::source::SourceError;

/// Follow failures. [`FollowError::is_fatal`] tells a reconnect from a stop.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Source connection or query failure.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A stream or protocol error.
    #[error("binlog stream: {0}")]
    Stream(String),
    /// The server refused the dump (binlog purged, bad position, duplicate server id…).
    #[error("the source refused to stream the binlog: {0}; if the binlog was purged, start again with a snapshot")]
    Refused(String),
    /// The target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A row that cannot be decoded.
    #[error(transparent)]
    Decode(#[from] BinlogError),
    /// A row that cannot be mapped.
    #[error(transparent)]
    Map(#[from] FieldError),
    /// An event the importer does not understand (would otherwise be silently skipped).
    #[error("unsupported binlog event type {kind} at {file}:{pos}; the importer stops rather than skip changes")]
    Unsupported {
        /// Raw event type.
        kind: u8,
        /// Where.
        file: String,
        /// Where.
        pos: u64,
    },
    /// DDL that makes the mapping unsafe to follow.
    #[error(
        "the importer stopped at the statement ending at {at}, {stop}; nothing after it was applied: {}",
        way_on(stop)
    )]
    Ddl {
        /// `file:pos` of the end of the statement's event.
        at: String,
        /// What the statement does to the mapping.
        stop: Box<DdlStop>,
    },
    /// Copying a table again after DDL failed.
    #[error("copying the table again: {0}")]
    Resync(#[from] SnapshotError),
    /// Reading the rows a mapping looks up (or the rows that read a changed one) failed.
    #[error("reading looked-up rows: {0}")]
    Lookup(#[source] SnapshotError),
    /// Nothing to follow from.
    #[error("no checkpoint in the target: run `snapshot` (or `run`) first")]
    NoCheckpoint,
    /// An interrupted snapshot: following from its start position would never copy the rows it has not reached,
    /// since only changes made after that position are in the binlog.
    #[error("the snapshot is not finished: run `snapshot` or `run` to resume it")]
    SnapshotUnfinished,
}

fn way_on(stop: &DdlStop) -> String {
    let fresh = "update the mapping to the new schema, then import again into a fresh target with `run`";
    if stop.resyncable {
        format!(
            "start `follow` again with `--on-ddl resync-table` to copy `{}` again, or {fresh}",
            stop.table
        )
    } else {
        fresh.to_owned()
    }
}

impl FollowError {
    /// `true` when reconnecting cannot help.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Self::Source(SourceError::Connect { .. } | SourceError::Query(_))
                | Self::Resync(SnapshotError::Source(SourceError::Connect { .. }) | SnapshotError::Query(_))
                | Self::Lookup(SnapshotError::Source(SourceError::Connect { .. }) | SnapshotError::Query(_))
                | Self::Stream(_)
                | Self::Target(TargetError::Database(_) | TargetError::Sqlite(_))
        )
    }
}

pub(super) fn stream_error(e: mysql_async::Error) -> FollowError {
    match e {
        mysql_async::Error::Server(server) => FollowError::Refused(server.to_string()),
        other => FollowError::Stream(other.to_string()),
    }
}
