//! One binlog stream's state: the open source transaction, the batch of finished ones, the safe position, and
//! what each event means for them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mysql_async::BinlogStream;
use mysql_async::binlog::events::{Event, EventData, RowsEventData};
use mysql_async::prelude::Queryable as _;
use tokio::sync::{mpsc, watch};

use super::changes::{Change, Resolver};
use super::error::{FollowError, stream_error};
use super::options::{FollowOptions, OnDdl};
use crate::binlog::{self, BinlogError};
use crate::canonical::Mapper;
use crate::ddl::{self, MappedColumns, Statement};
use crate::mapping::{Row, TableMapping};
use crate::sink::{Action, Op, Position, Progress, Target};
use crate::snapshot::{self, TableReader};
use crate::source::{ServerInfo, Source, SourceError};

/// How often a running follower looks for `resync --table` requests.
const RESYNC_POLL: Duration = Duration::from_secs(1);

/// Whole source transactions, and the position after the last, for the writer to commit together.
pub(super) type Batch = (Vec<Op>, Progress);

/// The state of one stream: the open source transaction, the batch of finished ones, and positions.
pub(super) struct Follower<'a> {
    batches: mpsc::Sender<Batch>,
    mapper: &'a Mapper,
    info: ServerInfo,
    file: String,
    gtids: BTreeMap<u32, String>,
    in_txn: Vec<Change>,
    batch: Vec<Change>,
    resolver: Resolver,
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
    source: Source,
    target: Target,
    /// When `resync --table` requests were last looked for (`None`: not yet, so at once).
    resyncs_checked: Option<Instant>,
}

enum Flow {
    Continue,
    Stop,
    /// Copy this table again, then move past the statement ending at this position.
    Resync(String, u64),
}

impl<'a> Follower<'a> {
    // Each argument is a separate piece of the stream's context; a struct holding them would only rename it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        batches: mpsc::Sender<Batch>,
        mapper: &'a Mapper,
        source: &Source,
        options: &FollowOptions,
        info: ServerInfo,
        start: Position,
        stop_at: Option<(String, u64)>,
        target: &Target,
    ) -> Self {
        let gtids = start
            .gtid
            .iter()
            .flat_map(|g| g.split(','))
            // MariaDB GTIDs only (`domain-server-seq`); a MySQL `uuid:seq` is not tracked per domain.
            .filter(|g| g.split('-').count() == 3)
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
            resolver: Resolver::new(source),
            batch_started: None,
            safe: start,
            dirty: false,
            events: 0,
            event_time: 0,
            first_event: true,
            txn_open: false,
            stop_at,
            database: source.database().to_owned(),
            mapped: MappedColumns::new(mapper.mapping()),
            progress_every: options.progress_every,
            last_report: None,
            on_ddl: options.on_ddl,
            source: source.clone(),
            target: target.clone(),
            resyncs_checked: None,
        }
    }

    pub(super) async fn stream(
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
            self.requested_resyncs().await?;
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
    /// Copies the tables `resync --table` asked for, between source transactions, at most once per
    /// [`RESYNC_POLL`]. The request is answered in the transaction of the copy's last rows.
    async fn requested_resyncs(&mut self) -> Result<(), FollowError> {
        if self.txn_open || !self.in_txn.is_empty() || self.resyncs_checked.is_some_and(|at| at.elapsed() < RESYNC_POLL)
        {
            return Ok(());
        }
        self.resyncs_checked = Some(Instant::now());
        let name = self.mapper.mapping().name.clone();
        for table in self.target.pending_resyncs(&name).await? {
            tracing::info!(table, "copying the table again, as `resync` asked");
            let rows = self.resync(&table).await?;
            self.batches
                .send((Vec::new(), Progress::Resynced { table, rows }))
                .await
                .map_err(|_| FollowError::Stream("the target writer stopped".to_owned()))?;
        }
        Ok(())
    }

    async fn resync(&mut self, table: &str) -> Result<u64, FollowError> {
        // Everything before the statement is committed first, in order, by the same writer.
        self.flush().await?;
        // A table only looked up is copied through the tables that read it.
        let mapping = self.mapper.mapping();
        let mut tables: Vec<String> = mapping
            .tables
            .iter()
            .filter(|t| t.table != table && t.lookups.values().any(|l| l.table == table))
            .map(|t| t.table.clone())
            .collect();
        if mapping.for_table(table).next().is_some() {
            tables.push(table.to_owned());
        }
        tables.dedup();
        let mut rows = 0;
        for table in tables {
            rows += self.copy_again(&table).await?;
        }
        Ok(rows)
    }

    async fn copy_again(&mut self, table: &str) -> Result<u64, FollowError> {
        tracing::warn!(table, "copying the table again (--on-ddl resync-table)");
        let mut conn = self.source.connect().await?;
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
        Ok(rows as u64)
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
        let mapping = self.mapper.mapping();
        let mappings: Vec<(usize, &TableMapping)> = mapping
            .tables
            .iter()
            .enumerate()
            .filter(|(_, t)| t.table == table)
            .collect();
        // A table the mapping looks up: its key column names its rows in errors.
        let looked_up = mapping
            .tables
            .iter()
            .flat_map(|t| t.lookups.values())
            .find(|l| l.table == table)
            .map(|l| (l.key.clone(), mapping.looked_up_columns(&table)));
        if mappings.is_empty() && looked_up.is_none() {
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
            for &(index, m) in &mappings {
                let decode =
                    |r: &mysql_async::binlog::row::BinlogRow| binlog::decode(r, columns, &m.columns, &m.key, &table);
                let before = before.as_ref().map(decode).transpose()?;
                let after = after.as_ref().map(decode).transpose()?;
                self.push_change(index, m, before.as_ref(), after.as_ref())?;
            }
            if let Some((key, read)) = &looked_up {
                let no_options = BTreeMap::new();
                let decode =
                    |r: &mysql_async::binlog::row::BinlogRow| binlog::decode(r, columns, &no_options, key, &table);
                let images = [before.as_ref(), after.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(decode)
                    .collect::<Result<Vec<Row>, _>>()?;
                // An update that leaves every column read through the lookup as it was (osTicket touches
                // `ost_thread.lastmessage` on every new entry) re-imports nothing.
                let unchanged = images.len() == 2 && read.iter().all(|c| images[0].get(c) == images[1].get(c));
                if !unchanged {
                    self.in_txn.push(Change::LookedUp {
                        table: table.clone(),
                        images,
                    });
                }
            }
        }
        Ok(())
    }

    fn push_change(
        &mut self,
        index: usize,
        m: &TableMapping,
        before: Option<&Row>,
        after: Option<&Row>,
    ) -> Result<(), FollowError> {
        let source = self.mapper.source_name(m);
        let delete = |pk: i64| {
            Change::Ready(Op {
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
            })
        };
        match (before, after) {
            (before, Some(after)) => {
                let pk = m.pk(after)?;
                if let Some(old) = before.map(|b| m.pk(b)).transpose()?.filter(|old| *old != pk) {
                    self.in_txn.push(delete(old));
                }
                let change = if m.lookups.is_empty() {
                    Change::Ready(Op {
                        source: source.clone(),
                        kind: m.kind,
                        pk,
                        action: Action::Upsert(self.mapper.map(m, after)?),
                    })
                } else {
                    Change::Enrich {
                        mapping: index,
                        pk,
                        row: after.clone(),
                    }
                };
                self.in_txn.push(change);
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
        let changes = std::mem::take(&mut self.batch);
        let batch = self.resolver.resolve(self.mapper, changes).await?;
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
