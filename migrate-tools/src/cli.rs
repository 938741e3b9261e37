//! Command-line interface. URLs may come from the environment so that credentials stay out of `ps` output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::follow::FollowOptions;
use crate::mapping::{Mapping, MappingError};

/// The heading global options are listed under in every command's help, apart from the command's own options.
const GLOBAL: &str = "Global options";

/// Copy a legacy helpdesk's MySQL/MariaDB data into the protofuse conversation store, then keep following its
/// binlog until cut-over.
#[derive(Debug, Parser)]
#[command(name = "protofuse-migrate", version)]
pub struct Cli {
    /// Mapping file, or `preset:osticket`, `preset:freescout`, `preset:gofly`, `preset:generic`.
    #[arg(long, short, env = "PROTOFUSE_MIGRATE_MAPPING", global = true, help_heading = GLOBAL)]
    pub mapping: Option<String>,
    /// Source, `mysql://user:pass@host:3306/database` (needs SELECT, REPLICATION SLAVE, REPLICATION CLIENT).
    #[arg(long, env = "PROTOFUSE_MIGRATE_SOURCE", hide_env_values = true, global = true, help_heading = GLOBAL)]
    pub source: Option<String>,
    /// Target store, `sqlite://path/protofuse.db` or `mysql://user:pass@host/db`.
    #[arg(long, env = "PROTOFUSE_MIGRATE_TARGET", hide_env_values = true, global = true, help_heading = GLOBAL)]
    pub target: Option<String>,
    /// MySQL/MariaDB target: keep the importer's writes out of the target's binary log (`sql_log_bin = 0`;
    /// needs SUPER or BINLOG ADMIN). About 1.3x the snapshot rate, but the target's replicas and binlog-based
    /// backups never see the imported rows: only for a target nothing replicates from yet.
    #[arg(long, env = "PROTOFUSE_MIGRATE_NO_TARGET_BINLOG", global = true, help_heading = GLOBAL)]
    pub no_target_binlog: bool,
    /// Serve Prometheus metrics (`protofuse_migrate_*`) on this address, e.g. 127.0.0.1:9187.
    #[arg(long, env = "PROTOFUSE_MIGRATE_METRICS", global = true, help_heading = GLOBAL)]
    pub metrics_addr: Option<SocketAddr>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The operator commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every mapped table (resumes an interrupted snapshot).
    Snapshot(SnapshotArgs),
    /// Follow the binlog from the checkpoint.
    Follow(FollowArgs),
    /// Snapshot (if not finished), then follow.
    Run {
        /// Snapshot options.
        #[command(flatten)]
        snapshot: SnapshotArgs,
        /// Follow options.
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Show the checkpoint, lag, rows applied and errors.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare the mapped data, source against target: row counts and per-chunk checksums (fast), or every
    /// mapped field read from the source with plain SQL (`--mode source`).
    Verify {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// What to compare.
        #[arg(long, value_enum, default_value_t = VerifyMode::Checksums)]
        mode: VerifyMode,
        /// With `--mode source`: compare this many random rows per table instead of all.
        #[arg(long)]
        sample: Option<u64>,
    },
    /// Copy one table again, consistently, through the running `follow` (which goes on following), e.g. after
    /// `verify` found rows that differ. Waits for the copy; without a running `follow` the next one to start
    /// copies it before streaming.
    Resync {
        /// The source table (a mapped table, or one a mapping looks up: the tables reading it are copied).
        #[arg(long)]
        table: String,
        /// How long to wait for the copy before returning (exit status 1 if it has not finished).
        #[arg(long, default_value_t = 600)]
        wait_secs: u64,
    },
    /// Parse and check a mapping; with a source (`--source` or PROTOFUSE_MIGRATE_SOURCE), also against its
    /// tables, column types and values (reads only). Lists every problem with its key.
    CheckMapping,
}

/// What `verify` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyMode {
    /// Row counts and per-chunk checksums of the source mapped again: fast, but it agrees with the mapping.
    Checksums,
    /// Every mapped field read from the source with plain SQL and compared with the stored value.
    Source,
}

/// Snapshot options.
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// Rows per source query.
    #[arg(long, default_value_t = crate::snapshot::DEFAULT_CHUNK)]
    pub chunk: usize,
    /// Rows per target transaction (memory: about 2 KB per row in flight).
    #[arg(long, default_value_t = crate::snapshot::DEFAULT_BATCH_ROWS)]
    pub snapshot_batch_rows: usize,
    /// Target transactions in flight at once (MySQL/MariaDB target; SQLite always writes one at a time).
    #[arg(long, default_value_t = crate::snapshot::DEFAULT_WRITERS)]
    pub writers: usize,
}

impl SnapshotArgs {
    /// The snapshot's options.
    pub fn options(&self) -> crate::snapshot::SnapshotOptions {
        crate::snapshot::SnapshotOptions {
            chunk: self.chunk,
            batch_rows: self.snapshot_batch_rows,
            writers: self.writers,
        }
    }
}

/// Follow options.
#[derive(Debug, Clone, Args)]
pub struct FollowArgs {
    /// Replica server id, unique among the source's replicas.
    #[arg(long, default_value_t = 4231)]
    pub server_id: u32,
    /// Heartbeat period in milliseconds; the stream is presumed dead after three silent periods.
    #[arg(long, default_value_t = 1000)]
    pub heartbeat_ms: u64,
    /// Flush a target batch at this many row changes.
    #[arg(long, default_value_t = 20_000)]
    pub batch_rows: usize,
    /// Or this many milliseconds after its first change.
    #[arg(long, default_value_t = 200)]
    pub batch_delay_ms: u64,
    /// Exit once caught up with the source's binlog end as of the start.
    #[arg(long)]
    pub until_caught_up: bool,
    /// Log a progress line (position, rows applied, lag) every this many seconds.
    #[arg(long, default_value_t = 10)]
    pub progress_secs: u64,
    /// Follow from this source binlog position, `FILE:POS` (e.g. `mariadb-bin.000042:1234`), instead of the
    /// checkpoint; it becomes the checkpoint. Only after a finished snapshot.
    #[arg(long, value_parser = parse_position)]
    pub start_position: Option<(String, u64)>,
    /// Follow from just after the transaction of this GTID (MariaDB `0-1-42`, MySQL `uuid:42`: the last one
    /// already applied), found in the source's binlogs, e.g. after a failover; it becomes the checkpoint.
    #[arg(long, value_parser = crate::gtid::parse, conflicts_with = "start_position")]
    pub gtid: Option<String>,
    /// DDL that changed a mapped table's rows without row events but kept the columns the mapping reads (a
    /// retyped column, a filled new column): `stop`, or `resync-table` to copy that table again and follow on.
    #[arg(long, value_enum, default_value_t = crate::follow::OnDdl::Stop)]
    pub on_ddl: crate::follow::OnDdl,
    /// When another follower holds this mapping's lease, wait and take over once it stops or dies, instead of
    /// refusing.
    #[arg(long)]
    pub wait_for_lease: bool,
    /// The follow lease's length in seconds: a follower that dies is taken over this long after its last
    /// renewal (renewed every third of it).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..))]
    pub lease_secs: u64,
}

fn parse_position(text: &str) -> Result<(String, u64), String> {
    text.rsplit_once(':')
        .and_then(|(file, pos)| Some((file.to_owned(), pos.parse().ok()?)))
        .filter(|(file, _)| !file.is_empty())
        .ok_or_else(|| format!("{text:?} is not FILE:POS, e.g. mariadb-bin.000042:1234"))
}

impl FollowArgs {
    /// As library options.
    pub fn options(&self) -> FollowOptions {
        FollowOptions {
            server_id: self.server_id,
            heartbeat: Duration::from_millis(self.heartbeat_ms.max(100)),
            batch_rows: self.batch_rows.max(1),
            batch_delay: Duration::from_millis(self.batch_delay_ms),
            until_caught_up: self.until_caught_up,
            max_backoff: Duration::from_secs(30),
            progress_every: Duration::from_secs(self.progress_secs.max(1)),
            start_position: self.start_position.clone(),
            start_gtid: self.gtid.clone(),
            on_ddl: self.on_ddl,
        }
    }
}

/// The shipped presets, by name.
pub const PRESETS: &[(&str, &str)] = &[
    ("osticket", include_str!("../../config/migrate/osticket.toml")),
    ("freescout", include_str!("../../config/migrate/freescout.toml")),
    ("gofly", include_str!("../../config/migrate/gofly.toml")),
    ("generic", include_str!("../../config/migrate/generic.toml")),
];

/// Loads `preset:<name>` or a file.
pub fn load_mapping(spec: &str) -> Result<Mapping, MappingError> {
    if let Some(name) = spec.strip_prefix("preset:") {
        let text = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                MappingError::Invalid(vec![crate::mapping::MappingIssue::new(
                    "mapping",
                    format!("no preset {name:?}; presets: {}", names.join(", ")),
                )])
            })?;
        return Mapping::parse(text);
    }
    Mapping::load(&PathBuf::from(spec))
}
