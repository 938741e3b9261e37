//! The initial copy: every mapped table, chunked by primary key inside one consistent-snapshot transaction,
//! written in batches, each batch committed with the chunk's progress so a killed snapshot resumes where it
//! stopped.
//!
//! Where following starts: on MariaDB the snapshot's own binlog position (`binlog_snapshot_file/position`, read
//! without any lock); on MySQL the position read just before the snapshot began, so following may replay a few
//! changes already copied — harmless, because every change carries the row's full image and is applied as an
//! upsert or delete. For the same reason a resumed snapshot keeps the first attempt's start position.

mod error;
mod row;
mod writers;

pub use error::SnapshotError;
pub use row::{decode_row, ident};

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;
use tokio::sync::mpsc;

use crate::canonical::Mapper;
use crate::decode::ColumnInfo;
use crate::lookup::Lookups;
use crate::mapping::{EntityKind, TableMapping};
use std::sync::Arc;

use crate::progress::Progress as Bar;
use crate::sink::{Action, Op, Position, Progress, Target};
use crate::source::{self, Source};

/// Rows per source query.
pub const DEFAULT_CHUNK: usize = 5_000;

/// Rows per target transaction. Each commit writes every page it dirtied, and a message insert dirties a
/// random leaf of the by-conversation index, so small transactions rewrite the same index pages over and over:
/// on SQLite, 50,000-row transactions copied 1.6x as fast as 5,000-row ones (migrate-tools/BENCHMARKS.md).
/// Costs about 100 MB of memory for rows in flight.
pub const DEFAULT_BATCH_ROWS: usize = 50_000;

/// Target transactions in flight at once (MySQL/MariaDB; SQLite has one writer). A single connection keeps one
/// server thread busy; two let InnoDB insert on both cores while the importer maps the next batch
/// (migrate-tools/BENCHMARKS.md).
pub const DEFAULT_WRITERS: usize = 2;

/// How the snapshot reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotOptions {
    /// Rows per source query.
    pub chunk: usize,
    /// Rows per target transaction (at least one chunk; a batch never spans two tables).
    pub batch_rows: usize,
    /// Target transactions in flight at once (capped at what the target allows).
    pub writers: usize,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self {
            chunk: DEFAULT_CHUNK,
            batch_rows: DEFAULT_BATCH_ROWS,
            writers: DEFAULT_WRITERS,
        }
    }
}

/// Copies every mapped table, unless a finished snapshot is recorded. Returns the position to follow from.
pub async fn run(
    source: &Source,
    target: &Target,
    mapper: &Mapper,
    options: &SnapshotOptions,
) -> Result<Position, SnapshotError> {
    let chunk = options.chunk.max(1);
    let name = mapper.mapping().name.clone();
    let status = target.status(&name).await?;
    if status.snapshot_done {
        tracing::info!("snapshot already finished; nothing to copy");
        return Ok(position_of(&status));
    }
    let mut conn = source.connect().await?;
    let info = source::preflight(&mut conn).await?;
    // Raw column bytes (no conversion to the connection charset), TIMESTAMPs in UTC.
    conn.query_drop("SET time_zone = '+00:00', character_set_results = NULL")
        .await?;
    let before = source::master_position(&mut conn).await?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
    let start = if info.is_mariadb {
        mariadb_snapshot_position(&mut conn).await?
    } else {
        None
    };
    let start = start.unwrap_or(Position {
        file: before.0,
        pos: before.1,
        gtid: None,
    });
    target.mark_snapshot(&name, Some(&start), false).await?;
    let tables = ordered_tables(mapper);
    // Counted as `status` counts: one row per mapping of a source row (go-fly's `visitor` is a conversation
    // and a customer).
    let mut total = 0;
    for table in &tables {
        let count: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM `{}`", ident(table)))
            .await?;
        total += count.unwrap_or(0) * mapper.mapping().for_table(table).count() as u64;
    }
    let bar = Arc::new(Bar::new(total));
    // Reading and mapping go on while the writers commit: the writers' queue holds a whole next batch.
    let batch_rows = options.batch_rows.max(chunk);
    let (tx, rx) = mpsc::channel::<(Vec<Op>, Progress)>(2);
    let writer = tokio::spawn(writers::write_all(
        target.clone(),
        name.clone(),
        rx,
        batch_rows,
        options.writers,
        Arc::clone(&bar),
    ));
    for table in &tables {
        let copied = copy_table(&mut conn, source.database(), table, mapper, target, chunk, &tx, &bar).await;
        if let Err(e) = copied {
            drop(tx);
            let written = writer.await.map_err(|_| SnapshotError::WriterGone).and_then(|r| r);
            // When the reader stopped because the writer did, the writer's error is the cause.
            return Err(match (e, written) {
                (SnapshotError::WriterGone, Err(cause)) => cause,
                (e, _) => e,
            });
        }
    }
    drop(tx);
    writer.await.map_err(|_| SnapshotError::WriterGone)??;
    conn.query_drop("COMMIT").await?;
    bar.finish();
    target.mark_snapshot(&name, None, true).await?;
    Ok(position_of(&target.status(&name).await?))
}

fn position_of(status: &crate::sink::Status) -> Position {
    Position {
        file: status.file.clone().unwrap_or_default(),
        pos: status.pos.unwrap_or(4),
        gtid: status.gtid.clone(),
    }
}

async fn mariadb_snapshot_position(conn: &mut Conn) -> Result<Option<Position>, SnapshotError> {
    let rows: Vec<(String, String)> = conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
    let get = |key: &str| {
        rows.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let (Some(file), Some(pos)) = (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) else {
        return Ok(None);
    };
    let Ok(pos) = pos.parse::<u64>() else {
        return Ok(None);
    };
    let gtid: Option<Option<String>> = conn.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos)).await?;
    Ok(Some(Position {
        file,
        pos,
        gtid: gtid.flatten().filter(|g| !g.is_empty()),
    }))
}

/// Conversations first, then customers and agents, then messages, so that messages find their conversation.
fn ordered_tables(mapper: &Mapper) -> Vec<String> {
    let mut tables: Vec<(u8, String)> = Vec::new();
    for t in &mapper.mapping().tables {
        let rank = match t.kind {
            EntityKind::Conversation => 0,
            EntityKind::Customer | EntityKind::Agent => 1,
            EntityKind::Message => 2,
        };
        match tables.iter_mut().find(|(_, name)| *name == t.table) {
            Some(entry) => entry.0 = entry.0.min(rank),
            None => tables.push((rank, t.table.clone())),
        }
    }
    tables.sort_by_key(|(rank, _)| *rank);
    tables.into_iter().map(|(_, name)| name).collect()
}

#[allow(clippy::too_many_arguments)]
async fn copy_table(
    conn: &mut Conn,
    database: &str,
    table: &str,
    mapper: &Mapper,
    target: &Target,
    chunk: usize,
    tx: &mpsc::Sender<(Vec<Op>, Progress)>,
    bar: &Bar,
) -> Result<(), SnapshotError> {
    let progress_key = format!("table:{table}");
    let from = target.snapshot_progress(&mapper.mapping().name, &progress_key).await?;
    let mut reader = TableReader::new(conn, database, table, mapper, chunk, from).await?;
    bar.table(table);
    while let Some((ops, _)) = reader.next_chunk().await? {
        let progress = Progress::Snapshot {
            source: progress_key.clone(),
            last_pk: reader.last,
        };
        tx.send((ops, progress)).await.map_err(|_| SnapshotError::WriterGone)?;
    }
    Ok(())
}

/// Reads one mapped table in primary-key order, a chunk at a time, as upserts of every mapping of the table.
pub struct TableReader<'c> {
    conn: &'c mut Conn,
    table: String,
    columns: Vec<ColumnInfo>,
    mappings: Vec<TableMapping>,
    /// Each mapping's bookkeeping source name, formatted once.
    sources: Vec<String>,
    mapper: Mapper,
    sql: String,
    chunk: usize,
    lookups: Lookups,
    /// The highest primary key read so far.
    pub last: i64,
    done: bool,
}

impl<'c> TableReader<'c> {
    /// Starts after primary key `from` (from the first row when `None`), in `conn`'s current transaction.
    pub async fn new(
        conn: &'c mut Conn,
        database: &str,
        table: &str,
        mapper: &Mapper,
        chunk: usize,
        from: Option<i64>,
    ) -> Result<Self, SnapshotError> {
        let columns = source::table_columns(conn, database, table).await?;
        let mappings: Vec<TableMapping> = mapper.mapping().for_table(table).cloned().collect();
        let key = mappings.first().map(|m| m.key.clone()).unwrap_or_default();
        let chunk = chunk.max(1);
        let sql = format!(
            "SELECT * FROM `{t}` WHERE `{k}` > ? ORDER BY `{k}` LIMIT {chunk}",
            t = ident(table),
            k = ident(&key)
        );
        let sources = mappings.iter().map(|m| mapper.source_name(m)).collect();
        Ok(Self {
            conn,
            table: table.to_owned(),
            columns,
            mappings,
            sources,
            mapper: mapper.clone(),
            sql,
            chunk,
            lookups: Lookups::new(database),
            last: from.unwrap_or(i64::MIN),
            done: false,
        })
    }

    /// The next chunk's ops and its number of source rows; `None` after the last row.
    pub async fn next_chunk(&mut self) -> Result<Option<(Vec<Op>, usize)>, SnapshotError> {
        if self.done {
            return Ok(None);
        }
        let rows: Vec<mysql_async::Row> = self.conn.exec(&self.sql, (self.last,)).await?;
        let n = rows.len();
        self.done = n < self.chunk;
        if n == 0 {
            return Ok(None);
        }
        let mut decoded = Vec::with_capacity(n);
        for row in rows {
            decoded.push(decode_row(
                &row.unwrap(),
                &self.columns,
                self.mappings.first(),
                &self.table,
            )?);
        }
        for m in self.mappings.iter().filter(|m| !m.lookups.is_empty()) {
            self.lookups.enrich(self.conn, m, &mut decoded).await?;
        }
        let mut ops = Vec::with_capacity(n * self.mappings.len());
        for row in decoded {
            for (m, source) in self.mappings.iter().zip(&self.sources) {
                let pk = m.pk(&row)?;
                self.last = self.last.max(pk);
                ops.push(Op {
                    source: source.clone(),
                    kind: m.kind,
                    pk,
                    action: Action::Upsert(self.mapper.map(m, &row)?),
                });
            }
        }
        Ok(Some((ops, n)))
    }
}

/// Opens a consistent read of the source on `conn`, with the session settings both copy paths decode with:
/// raw column bytes (no conversion to the connection charset) and TIMESTAMPs in UTC.
pub async fn begin_consistent_read(conn: &mut Conn) -> Result<(), SnapshotError> {
    conn.query_drop("SET time_zone = '+00:00', character_set_results = NULL")
        .await?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
    Ok(())
}
