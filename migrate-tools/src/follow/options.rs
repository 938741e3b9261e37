//! How following behaves: [`FollowOptions`] and the DDL choice [`OnDdl`].

use std::time::Duration;

/// How following behaves.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Replica server id; must be unique among the source's replicas.
    pub server_id: u32,
    /// Heartbeat period asked of the source.
    pub heartbeat: Duration,
    /// Flush a batch at this many buffered row changes…
    pub batch_rows: usize,
    /// …or this long after its first change.
    pub batch_delay: Duration,
    /// Stop (successfully) once the checkpoint reaches the source's end as of the start: for one-shot catch-up.
    pub until_caught_up: bool,
    /// Longest wait between reconnects.
    pub max_backoff: Duration,
    /// Log a progress line (position, rows applied, lag) this often.
    pub progress_every: Duration,
    /// Follow from this binlog position (file, pos) instead of the checkpoint; it becomes the checkpoint.
    pub start_position: Option<(String, u64)>,
    /// Follow from just after the transaction of this GTID instead (found in the source's binlogs).
    pub start_gtid: Option<String>,
    /// What to do about DDL that changed a mapped table's rows without row events.
    pub on_ddl: OnDdl,
}

/// What `follow` does about DDL that changed a mapped table's rows without row events but left every column the
/// mapping reads in place (a retyped column, a filled new column).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnDdl {
    /// Stop with a message, before applying anything after the statement.
    #[default]
    Stop,
    /// Copy the table again from a consistent read, then follow on.
    ResyncTable,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            server_id: 4_231,
            heartbeat: Duration::from_secs(1),
            // Catching up a backlog, 20,000-row transactions apply 1.35x as fast as 5,000-row ones on SQLite.
            batch_rows: 20_000,
            batch_delay: Duration::from_millis(200),
            until_caught_up: false,
            max_backoff: Duration::from_secs(30),
            progress_every: Duration::from_secs(10),
            start_position: None,
            start_gtid: None,
            on_ddl: OnDdl::Stop,
        }
    }
}
