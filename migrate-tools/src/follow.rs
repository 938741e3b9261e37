//! Following the binlog: register as a replica, decode row events, group whole source transactions into target
//! batches and commit each batch together with the position after its last transaction. On any connection
//! trouble (server restart, network loss, a silent socket: no event or heartbeat for three heartbeat periods) the
//! stream is dropped and reopened from the last committed checkpoint with exponential backoff, so nothing is
//! lost and nothing applied twice. What cannot be decoded stops the importer with a message.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mysql_async::binlog::events::{Event, EventData, RowsEventData};
use mysql_async::prelude::Queryable as _;
use mysql_async::{BinlogStream, BinlogStreamRequest};
use tokio::sync::{mpsc, watch};

use crate::binlog::{self, BinlogError};
use crate::canonical::Mapper;
use crate::ddl::{self, DdlStop, MappedColumns, Statement};
use crate::mapping::{FieldError, TableMapping};
use crate::sink::{Action, Op, Position, Progress, Target, TargetError};
use crate::snapshot::{self, SnapshotError, TableReader};
use crate::source::{self, ServerInfo, Source, SourceError};

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
            on_ddl: OnDdl::Stop,
        }
    }
}

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
                | Self::Stream(_)
                | Self::Target(TargetError::Database(_))
        )
    }
}

/// Follows until a fatal error (or, with `until_caught_up`, until caught up), reconnecting on transient ones.
pub async fn run(
    source: &Source,
    target: &Target,
    mapper: &Mapper,
    options: &FollowOptions,
) -> Result<(), FollowError> {
    let (_never, stop) = watch::channel(false);
    run_until(source, target, mapper, options, stop).await
}

/// [`run`], also ending (successfully) once `stop` turns true: the batch of whole source transactions read so
/// far is committed first, a transaction still open is left to the next start.
pub async fn run_until(
    source: &Source,
    target: &Target,
    mapper: &Mapper,
    options: &FollowOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), FollowError> {
    let name = mapper.mapping().name.clone();
    if let Some((file, pos)) = &options.start_position {
        start_at(target, &name, file, *pos).await?;
    }
    let mut backoff = Duration::from_millis(200);
    let mut stop_at = None;
    loop {
        let started = Instant::now();
        let error = match follow_once(source, target, mapper, options, &mut stop_at, &mut stop).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_fatal() => {
                let _ = target.record_error(&name, &e.to_string()).await;
                return Err(e);
            }
            Err(e) => e,
        };
        metrics::counter!("protofuse_migrate_reconnects_total").increment(1);
        let _ = target.record_error(&name, &error.to_string()).await;
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tracing::warn!(error = %error, retry_in = ?backoff, "binlog stream lost; reconnecting from the checkpoint");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
        }
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

/// Records `file:pos` as the checkpoint. Refused while a snapshot is unfinished: the snapshot's start position
/// is where its resumption must follow from.
async fn start_at(target: &Target, name: &str, file: &str, pos: u64) -> Result<(), FollowError> {
    if !target.status(name).await?.snapshot_done {
        return Err(FollowError::SnapshotUnfinished);
    }
    let position = Position {
        file: file.to_owned(),
        pos,
        gtid: None,
    };
    let progress = Progress::Binlog {
        position,
        events: 0,
        event_time: chrono::Utc::now().timestamp(),
    };
    target.apply(name, &[], &progress).await?;
    tracing::info!(file, pos, "following from the given position, now the checkpoint");
    Ok(())
}

async fn follow_once(
    source: &Source,
    target: &Target,
    mapper: &Mapper,
    options: &FollowOptions,
    stop_at: &mut Option<(String, u64)>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), FollowError> {
    let status = target.status(&mapper.mapping().name).await?;
    let Some(file) = status.file.clone().filter(|f| !f.is_empty()) else {
        return Err(FollowError::NoCheckpoint);
    };
    if !status.snapshot_done {
        return Err(FollowError::SnapshotUnfinished);
    }
    let start = Position {
        file,
        pos: status.pos.unwrap_or(4),
        gtid: status.gtid.clone(),
    };
    let mut conn = source.connect().await?;
    let info = source::preflight(&mut conn).await?;
    if options.until_caught_up && stop_at.is_none() {
        *stop_at = Some(source::master_position(&mut conn).await?);
    }
    if info.is_mariadb {
        // Real GTID events instead of rewritten dummies (see shared/binlog/NOTES.md §1.5).
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(SourceError::from)?;
    }
    let nanos = options.heartbeat.as_nanos();
    conn.query_drop(format!("SET @master_heartbeat_period = {nanos}"))
        .await
        .map_err(SourceError::from)?;
    let request = BinlogStreamRequest::new(options.server_id)
        .with_filename(start.file.as_bytes())
        .with_pos(start.pos);
    let stream = conn.get_binlog_stream(request).await.map_err(stream_error)?;
    tracing::info!(file = %start.file, pos = start.pos, "following the binlog");
    // Batches are committed by a writer task, in order, while the stream is read on: decoding and writing
    // overlap. At most two batches wait, which bounds memory and how far reading runs ahead of the checkpoint.
    let (batches, rx) = mpsc::channel(2);
    let writer = tokio::spawn(write_batches(
        target.clone(),
        mapper.mapping().name.clone(),
        rx,
        options.progress_every,
    ));
    let mut follower = Follower::new(batches, mapper, info, start, stop_at.clone());
    follower.database = source.database().to_owned();
    follower.mapped = MappedColumns::new(mapper.mapping());
    follower.progress_every = options.progress_every;
    follower.on_ddl = options.on_ddl;
    follower.source = Some(source.clone());
    let streamed = follower.stream(stream, options, stop).await;
    drop(follower);
    let written = writer
        .await
        .map_err(|e| FollowError::Stream(format!("target writer task: {e}")))?;
    // The writer's own error explains a failed hand-over better than the closed channel does.
    written.and(streamed)
}

type Batch = (Vec<Op>, Progress);

async fn write_batches(
    target: Target,
    name: String,
    mut rx: mpsc::Receiver<Batch>,
    progress_every: Duration,
) -> Result<(), FollowError> {
    let mut applied = 0;
    let mut last_report: Option<Instant> = None;
    while let Some((ops, progress)) = rx.recv().await {
        let rows = ops.len() as u64;
        target.apply(&name, &ops, &progress).await?;
        applied += rows;
        metrics::counter!("protofuse_migrate_rows_applied_total").increment(rows);
        if let Progress::Binlog {
            events,
            event_time,
            position,
        } = &progress
        {
            // Behind the source by how long ago its last applied event was written, as of this commit.
            let lag = (chrono::Utc::now().timestamp() - event_time).max(0);
            metrics::gauge!("protofuse_migrate_lag_seconds").set(lag as f64);
            metrics::counter!("protofuse_migrate_events_total").increment(*events);
            if last_report.is_none_or(|at| at.elapsed() >= progress_every) {
                last_report = Some(Instant::now());
                tracing::info!(
                    position = %format!("{}:{}", position.file, position.pos),
                    rows_applied = applied,
                    lag_seconds = lag,
                    "following"
                );
            }
        }
    }
    Ok(())
}

/// Replica id of the short look at the binlog [`next_change_time`] takes. A replica registering with a running
/// one's id would end that one's stream, so it differs from the follower's default (and must from any chosen one).
pub const PROBE_SERVER_ID: u32 = 4_230_977;

/// When the first change after `file:pos` was written on the source, or `None` when no change follows it (only
/// rotations, format descriptions, GTID lists). Lag counts from there: measured from the last applied event, it
/// would grow while the source is idle.
pub async fn next_change_time(source: &Source, file: &str, pos: u64) -> Result<Option<i64>, FollowError> {
    let mut conn = source.connect().await?;
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(SourceError::from)?;
    if version.is_some_and(|v| v.contains("MariaDB")) {
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(SourceError::from)?;
    }
    let request = BinlogStreamRequest::new(PROBE_SERVER_ID)
        .with_filename(file.as_bytes())
        .with_pos(pos)
        .with_non_blocking();
    let mut stream = conn.get_binlog_stream(request).await.map_err(stream_error)?;
    let look = async {
        while let Some(event) = stream.next().await {
            let event = event.map_err(stream_error)?;
            let header = event.header();
            // Artificial events, rotations, format descriptions, GTID lists and binlog checkpoints change nothing.
            let informational = header.flags_raw() & 0x20 != 0 || matches!(header.event_type_raw(), 4 | 15 | 161 | 163);
            if !informational && header.timestamp() > 0 {
                return Ok(Some(i64::from(header.timestamp())));
            }
        }
        Ok(None)
    };
    let found = tokio::time::timeout(Duration::from_secs(10), look)
        .await
        .map_err(|_| FollowError::Stream("no answer from the binlog within 10 s".to_owned()))?;
    let _ = stream.close().await;
    found
}

fn stream_error(e: mysql_async::Error) -> FollowError {
    match e {
        mysql_async::Error::Server(server) => FollowError::Refused(server.to_string()),
        other => FollowError::Stream(other.to_string()),
    }
}

/// The state of one stream: the open source transaction, the batch of finished ones, and positions.
struct Follower<'a> {
    batches: mpsc::Sender<Batch>,
    mapper: &'a Mapper,
    info: ServerInfo,
    file: String,
    gtids: BTreeMap<u32, String>,
    in_txn: Vec<Op>,
    batch: Vec<Op>,
    batch_started: Option<Instant>,
    /// Position after the last complete source transaction (what a commit may record).
    safe: Position,
    dirty: bool,
    events: u64,
    event_time: i64,
    first_event: bool,
    /// Inside a source transaction: statements seen now (SAVEPOINT…) do not end it.
    txn_open: bool,
    stop_at: Option<(String, u64)>,
    database: String,
    mapped: MappedColumns,
    progress_every: Duration,
    last_report: Option<Instant>,
    on_ddl: OnDdl,
    source: Option<Source>,
}

enum Flow {
    Continue,
    Stop,
    /// Copy this table again, then move past the statement ending at this position.
    Resync(String, u64),
}

impl<'a> Follower<'a> {
    fn new(
        batches: mpsc::Sender<Batch>,
        mapper: &'a Mapper,
        info: ServerInfo,
        start: Position,
        stop_at: Option<(String, u64)>,
    ) -> Self {
        let gtids = start
            .gtid
            .iter()
            .flat_map(|g| g.split(','))
            .filter_map(|g| Some((g.split('-').next()?.parse().ok()?, g.to_owned())))
            .collect();
        Self {
            batches,
            mapper,
            info,
            file: start.file.clone(),
            gtids,
            in_txn: Vec::new(),
            batch: Vec::new(),
            batch_started: None,
            safe: start,
            dirty: false,
            events: 0,
            event_time: 0,
            first_event: true,
            txn_open: false,
            stop_at,
            database: String::new(),
            mapped: MappedColumns::default(),
            progress_every: Duration::from_secs(10),
            last_report: None,
            on_ddl: OnDdl::Stop,
            source: None,
        }
    }

    async fn stream(
        &mut self,
        mut stream: BinlogStream,
        options: &FollowOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), FollowError> {
        if self.caught_up() {
            return Ok(());
        }
        loop {
            let wait = match self.batch_started {
                Some(at) => options.batch_delay.saturating_sub(at.elapsed()),
                None => options.heartbeat * 3,
            };
            let next = tokio::select! {
                next = tokio::time::timeout(wait, stream.next()) => Some(next),
                _ = stop.wait_for(|stop| *stop) => None,
            };
            let Some(next) = next else {
                self.flush().await?;
                return Ok(());
            };
            let event = match next {
                Err(_) if self.batch_started.is_some() => {
                    self.flush().await?;
                    continue;
                }
                Err(_) => {
                    return Err(FollowError::Stream(
                        "no event or heartbeat for 3 heartbeat periods".to_owned(),
                    ));
                }
                Ok(None) => return Err(FollowError::Stream("the source closed the stream".to_owned())),
                Ok(Some(Err(e))) => return Err(stream_error(e)),
                Ok(Some(Ok(event))) => event,
            };
            let mut flow = self.handle(&event, &stream)?;
            if let Flow::Resync(table, log_pos) = flow {
                self.resync(&table).await?;
                // Only now past the statement: a crash while copying restarts before it, and copies again.
                self.end_transaction(log_pos);
                self.events += 1;
                flow = self.flow();
            }
            if self.batch.len() >= options.batch_rows {
                self.flush().await?;
            }
            if let Flow::Stop = flow {
                self.flush().await?;
                return Ok(());
            }
        }
    }

    fn caught_up(&self) -> bool {
        self.stop_at
            .as_ref()
            .is_some_and(|(file, pos)| (&self.safe.file, self.safe.pos) >= (file, *pos))
    }

    fn handle(&mut self, event: &Event, stream: &BinlogStream) -> Result<Flow, FollowError> {
        let header = event.header();
        let kind = header.event_type_raw();
        let log_pos = u64::from(header.log_pos());
        let first = std::mem::replace(&mut self.first_event, false);
        if header.timestamp() > 0 {
            self.event_time = i64::from(header.timestamp());
        }
        // Artificial events (the stream's fake ROTATE, GTID_LIST and the re-sent FDE) do not stand where they
        // claim to.
        let artificial = header.flags_raw() & 0x20 != 0;
        match kind {
            // ANNOTATE_ROWS: inside a transaction, informational.
            160 => return Ok(Flow::Continue),
            // BINLOG_CHECKPOINT, GTID_LIST: no change, but they may be the last events of the binlog.
            161 | 163 => {
                if !artificial {
                    self.pass(log_pos);
                }
                return Ok(self.flow());
            }
            162 => {
                if let Some((domain, gtid, standalone)) = binlog::mariadb_gtid(event.data(), header.server_id()) {
                    self.gtids.insert(domain, gtid);
                    // MariaDB's GTID event stands in for BEGIN, except before a standalone statement (DDL).
                    self.txn_open = !standalone;
                }
                return Ok(Flow::Continue);
            }
            k if k >= 0xa0 || header.event_type().is_err() => return Err(self.unsupported(kind, log_pos)),
            _ => {}
        }
        let data = event
            .read_data()
            .map_err(|e| FollowError::Stream(format!("cannot parse event: {e}")))?
            .ok_or_else(|| self.unsupported(kind, log_pos))?;
        match data {
            EventData::RotateEvent(rotate) => {
                // The first (fake) rotate of a MariaDB stream carries CRC bytes glued to the name (mysql_async
                // #189); we asked for a file by name, so keep ours.
                if !first {
                    self.file = rotate.name().into_owned();
                    if self.in_txn.is_empty() {
                        self.safe.file.clone_from(&self.file);
                        self.safe.pos = rotate.position();
                        self.dirty = true;
                    }
                }
            }
            EventData::FormatDescriptionEvent(_) if !artificial => self.pass(log_pos),
            EventData::FormatDescriptionEvent(_)
            | EventData::TableMapEvent(_)
            | EventData::PreviousGtidsEvent(_)
            | EventData::GtidEvent(_)
            | EventData::AnonymousGtidEvent(_)
            | EventData::RowsQueryEvent(_)
            | EventData::StopEvent => {}
            EventData::HeartbeatEvent => {
                // A heartbeat names the file and end position the source has sent everything up to.
                if event.data() == self.file.as_bytes() {
                    self.pass(log_pos);
                }
                if self.in_txn.is_empty() && self.batch.is_empty() {
                    metrics::gauge!("protofuse_migrate_lag_seconds").set(0.0);
                    if self.last_report.is_none_or(|at| at.elapsed() >= self.progress_every) {
                        self.last_report = Some(Instant::now());
                        tracing::info!(
                            position = %format!("{}:{}", self.safe.file, self.safe.pos),
                            lag_seconds = 0,
                            "following: caught up, waiting for changes"
                        );
                    }
                    if self.caught_up() {
                        return Ok(Flow::Stop);
                    }
                }
            }
            EventData::RowsEvent(rows) => self.rows(&rows, stream)?,
            EventData::XidEvent(_) => self.end_transaction(log_pos),
            EventData::QueryEvent(query) => return self.query(&query.schema(), &query.query(), log_pos),
            _ => return Err(self.unsupported(kind, log_pos)),
        }
        self.events += 1;
        Ok(self.flow())
    }

    fn flow(&self) -> Flow {
        if self.caught_up() && self.in_txn.is_empty() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// Moves the checkpoint over an event that carries no change, between source transactions. Without it, a
    /// binlog that ends in such events (`FLUSH BINARY LOGS` and no transaction since) is never caught up with.
    fn pass(&mut self, log_pos: u64) {
        if self.txn_open || !self.in_txn.is_empty() || self.safe.file != self.file || log_pos <= self.safe.pos {
            return;
        }
        self.safe.pos = log_pos;
        self.dirty = true;
        self.batch_started.get_or_insert_with(Instant::now);
    }

    /// Copies `table` again from a consistent read, after a statement changed its rows without row events. Its
    /// changes between the statement and that read are then replayed from the binlog; as full row images
    /// applied as upserts and deletes, they converge on the source (as after a snapshot).
    async fn resync(&mut self, table: &str) -> Result<(), FollowError> {
        tracing::warn!(table, "copying the table again (--on-ddl resync-table)");
        // Everything before the statement is committed first, in order, by the same writer.
        self.flush().await?;
        let source = self
            .source
            .clone()
            .ok_or_else(|| FollowError::Stream("no source to copy from".to_owned()))?;
        let mut conn = source.connect().await?;
        snapshot::begin_consistent_read(&mut conn).await?;
        let mut reader = TableReader::new(
            &mut conn,
            &self.database,
            table,
            self.mapper,
            snapshot::DEFAULT_CHUNK,
            None,
        )
        .await?;
        let mut rows = 0;
        while let Some((ops, n)) = reader.next_chunk().await? {
            rows += n;
            self.batches
                .send((ops, Progress::None))
                .await
                .map_err(|_| FollowError::Stream("the target writer stopped".to_owned()))?;
        }
        drop(reader);
        conn.query_drop("COMMIT").await.map_err(SourceError::from)?;
        tracing::info!(table, rows, "table copied again; following on");
        Ok(())
    }

    fn unsupported(&self, kind: u8, pos: u64) -> FollowError {
        FollowError::Unsupported {
            kind,
            file: self.file.clone(),
            pos,
        }
    }

    fn end_transaction(&mut self, log_pos: u64) {
        self.txn_open = false;
        // Also for transactions on unmapped tables: the checkpoint then moves on within `batch_delay`, so
        // `status` shows no false lag and a restart does not re-read them.
        if self.batch_started.is_none() {
            self.batch_started = Some(Instant::now());
        }
        self.batch.append(&mut self.in_txn);
        self.safe = Position {
            file: self.file.clone(),
            pos: log_pos,
            gtid: (!self.gtids.is_empty()).then(|| self.gtids.values().cloned().collect::<Vec<_>>().join(",")),
        };
        self.dirty = true;
    }

    fn query(&mut self, schema: &str, query: &str, log_pos: u64) -> Result<Flow, FollowError> {
        let scope = ddl::Scope {
            database: &self.database,
            schema,
        };
        match ddl::classify(query, scope, &self.mapped) {
            Statement::Begin => self.txn_open = true,
            Statement::Ignore if self.txn_open => {}
            Statement::Commit | Statement::Ignore => self.end_transaction(log_pos),
            Statement::Follow { table, filled } => {
                // FULL row metadata makes every later row image self-describing, so rows before and after the
                // change decode alike.
                tracing::info!(
                    table,
                    statement = %ddl::quote(query),
                    "DDL on a mapped table keeps every mapped column readable; following on"
                );
                if !filled.is_empty() && self.on_ddl == OnDdl::ResyncTable {
                    return Ok(Flow::Resync(table, log_pos));
                }
                if !filled.is_empty() {
                    tracing::warn!(
                        table,
                        columns = %filled.join(", "),
                        "new columns fill every existing row without row events: the mapping reads none of them, \
                         but `source.raw` of rows imported before lacks them, and `verify` reports those rows \
                         until they change or are imported again"
                    );
                }
                self.end_transaction(log_pos);
            }
            Statement::Stop(stop) if stop.resyncable && self.on_ddl == OnDdl::ResyncTable => {
                tracing::warn!(table = stop.table, "{stop}");
                return Ok(Flow::Resync(stop.table, log_pos));
            }
            Statement::Stop(stop) => {
                return Err(FollowError::Ddl {
                    at: format!("{}:{log_pos}", self.file),
                    stop: Box::new(stop),
                });
            }
        }
        self.events += 1;
        Ok(self.flow())
    }

    fn rows(&mut self, rows: &RowsEventData<'_>, stream: &BinlogStream) -> Result<(), FollowError> {
        let Some(tme) = stream.get_tme(rows.table_id()) else {
            return Err(FollowError::Stream("rows event without its table map".to_owned()));
        };
        if tme.database_name() != self.database {
            return Ok(());
        }
        let table = tme.table_name().into_owned();
        let mappings: Vec<&TableMapping> = self.mapper.mapping().for_table(&table).collect();
        if mappings.is_empty() {
            return Ok(());
        }
        let mut columns = None;
        for row in rows.rows(tme) {
            let (before, after) = row.map_err(|source| BinlogError::Parse {
                table: table.clone(),
                source,
            })?;
            let Some(any) = after.as_ref().or(before.as_ref()) else {
                continue;
            };
            if columns.is_none() {
                columns = Some(binlog::columns(tme, any, &self.info.collations)?);
            }
            let columns = columns.as_deref().unwrap_or_default();
            for m in &mappings {
                let before = before
                    .as_ref()
                    .map(|r| binlog::decode(r, columns, m, &table))
                    .transpose()?;
                let after = after
                    .as_ref()
                    .map(|r| binlog::decode(r, columns, m, &table))
                    .transpose()?;
                self.push_change(m, before.as_ref(), after.as_ref())?;
            }
        }
        Ok(())
    }

    fn push_change(
        &mut self,
        m: &TableMapping,
        before: Option<&crate::mapping::Row>,
        after: Option<&crate::mapping::Row>,
    ) -> Result<(), FollowError> {
        let source = self.mapper.source_name(m);
        let delete = |pk: i64| Op {
            source: source.clone(),
            kind: m.kind,
            pk,
            action: Action::Delete {
                message_key: Some(
                    protofuse_model::IdempotencyKey::imported(&self.mapper.mapping().name, &m.table, pk)
                        .as_str()
                        .to_owned(),
                ),
            },
        };
        match (before, after) {
            (before, Some(after)) => {
                let pk = m.pk(after)?;
                if let Some(old) = before.map(|b| m.pk(b)).transpose()?.filter(|old| *old != pk) {
                    self.in_txn.push(delete(old));
                }
                let record = self.mapper.map(m, after)?;
                self.in_txn.push(Op {
                    source: source.clone(),
                    kind: m.kind,
                    pk,
                    action: Action::Upsert(record),
                });
            }
            (Some(before), None) => {
                let pk = m.pk(before)?;
                self.in_txn.push(delete(pk));
            }
            (None, None) => {}
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), FollowError> {
        if self.batch.is_empty() && !self.dirty {
            self.batch_started = None;
            return Ok(());
        }
        let progress = Progress::Binlog {
            position: self.safe.clone(),
            events: self.events,
            event_time: self.event_time,
        };
        let batch = std::mem::take(&mut self.batch);
        self.batches
            .send((batch, progress))
            .await
            .map_err(|_| FollowError::Stream("the target writer stopped".to_owned()))?;
        self.events = 0;
        self.dirty = false;
        self.batch_started = None;
        Ok(())
    }
}
