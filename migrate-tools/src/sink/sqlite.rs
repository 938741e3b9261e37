//! SQLite target: upserts with `ON CONFLICT … DO UPDATE`, foreign keys off on the importer's own connections
//! (messages may arrive before their conversation row; a placeholder fills the gap in the same transaction).
//! Batches are written on a raw connection of their own (`sqlite_batch.rs`), everything else on a sqlx pool.

use std::str::FromStr as _;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::sqlite_batch::BatchConnection;

const INSERT_IGNORE: &str = "INSERT OR IGNORE";

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS import_checkpoint (name TEXT PRIMARY KEY NOT NULL, file TEXT, pos INTEGER, gtid TEXT, \
     snapshot_done INTEGER NOT NULL, rows_applied INTEGER NOT NULL, events_applied INTEGER NOT NULL, \
     last_event_at INTEGER, errors INTEGER NOT NULL, last_error TEXT)",
    "CREATE TABLE IF NOT EXISTS import_snapshot (name TEXT NOT NULL, source TEXT NOT NULL, last_pk INTEGER NOT NULL, \
     PRIMARY KEY (name, source))",
    "CREATE TABLE IF NOT EXISTS import_resync (name TEXT NOT NULL, tbl TEXT NOT NULL, requested_at INTEGER NOT NULL, \
     done_at INTEGER, copied INTEGER, PRIMARY KEY (name, tbl))",
    "CREATE TABLE IF NOT EXISTS import_rows (source TEXT NOT NULL, pk INTEGER NOT NULL, canonical_id TEXT NOT NULL, \
     PRIMARY KEY (source, pk)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS import_parties (source TEXT NOT NULL, pk INTEGER NOT NULL, role TEXT NOT NULL, \
     external_id TEXT NOT NULL, display_name TEXT, email TEXT, raw TEXT NOT NULL, PRIMARY KEY (source, pk)) \
     WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS import_lease (name TEXT PRIMARY KEY NOT NULL, holder TEXT NOT NULL, \
     expires_at INTEGER NOT NULL)",
];

fn upsert_tail(conflict: &str, columns: &[&str]) -> String {
    let sets: Vec<String> = columns.iter().map(|c| format!("{c} = excluded.{c}")).collect();
    format!(" ON CONFLICT ({conflict}) DO UPDATE SET {}", sets.join(", "))
}

/// Per-connection settings of every importer connection, the sqlx pool's and the batch connection's.
/// NORMAL in WAL mode still survives a process crash (SIGKILL), which is what resumability needs; an fsync per
/// batch would bound follow throughput by the disk. The importer writes far more than the server does: a 256 MB
/// page cache keeps the indexes it inserts into in memory, and checkpointing every 256 MB of WAL instead of
/// SQLite's 4 MB copies a hot index page to the database file once rather than once per commit (together 1.8x the
/// snapshot rate of the defaults, migrate-tools/BENCHMARKS.md). The WAL is cut back to 64 MB after each
/// checkpoint. Foreign keys are off: messages may arrive before their conversation row.
const PRAGMAS: [(&str, &str); 5] = [
    ("synchronous", "NORMAL"),
    ("foreign_keys", "OFF"),
    ("cache_size", "-262144"),
    ("wal_autocheckpoint", "65536"),
    ("journal_size_limit", "67108864"),
];

const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The SQLite target: a sqlx pool for reads and bookkeeping, and the connection batches are written on.
/// (Public only as the payload of [`super::Target::Sqlite`].)
#[derive(Debug, Clone)]
pub struct SqliteTarget {
    pub(super) pool: SqlitePool,
    pub(super) batches: BatchConnection,
}

pub(super) async fn open(url: &str) -> Result<SqliteTarget, super::error::TargetError> {
    let mut options = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT);
    for (pragma, value) in PRAGMAS {
        options = options.pragma(pragma, value);
    }
    let options = super::quiet::quiet_slow_statements(options);
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await?;
    for statement in DDL {
        sqlx::query(statement).execute(&pool).await?;
    }
    let batches = BatchConnection::open(options.get_filename(), BUSY_TIMEOUT, &PRAGMAS)?;
    Ok(SqliteTarget { pool, batches })
}

super::writer::impl_writer!(sqlx::Sqlite);
