//! What one [`super::Target::apply`] carries: the row changes ([`Op`]), the progress recorded with them, and
//! the checkpoint `status` reads back.

use crate::canonical::Record;
use crate::mapping::EntityKind;

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
    /// The end of a requested copy of `table` (`resync --table`): the request is answered with the copy's last
    /// rows, in the same transaction.
    Resynced {
        /// The source table copied again.
        table: String,
        /// Rows copied.
        rows: u64,
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
