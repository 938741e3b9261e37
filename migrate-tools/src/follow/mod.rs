//! Following the binlog: register as a replica, decode row events, group whole source transactions into target
//! batches and commit each batch together with the position after its last transaction. On any connection
//! trouble (server restart, network loss, a silent socket: no event or heartbeat for three heartbeat periods) the
//! stream is dropped and reopened from the last committed checkpoint with exponential backoff, so nothing is
//! lost and nothing applied twice. What cannot be decoded stops the importer with a message.

mod changes;
mod error;
mod follower;
mod options;

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mysql_async::BinlogStreamRequest;
use mysql_async::prelude::Queryable as _;
use tokio::sync::{mpsc, watch};

pub use self::error::FollowError;
use self::error::stream_error;
use self::follower::{Batch, Follower};
pub use self::options::{FollowOptions, OnDdl};
use crate::canonical::Mapper;
use crate::sink::{Position, Progress, Target};
use crate::source::{self, Source, SourceError};

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
        start_at(target, &name, file, *pos, None).await?;
    }
    if let Some(gtid) = &options.start_gtid {
        let mut conn = source.connect().await?;
        let (file, pos) = crate::gtid::position_after(&mut conn, gtid).await?;
        start_at(target, &name, &file, pos, Some(gtid)).await?;
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
async fn start_at(target: &Target, name: &str, file: &str, pos: u64, gtid: Option<&str>) -> Result<(), FollowError> {
    if !target.status(name).await?.snapshot_done {
        return Err(FollowError::SnapshotUnfinished);
    }
    let position = Position {
        file: file.to_owned(),
        pos,
        gtid: gtid.map(str::to_owned),
    };
    let progress = Progress::Binlog {
        position,
        events: 0,
        event_time: chrono::Utc::now().timestamp(),
    };
    target.apply(name, Vec::new(), &progress).await?;
    tracing::info!(file, pos, gtid, "following from the given position, now the checkpoint");
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
    let mut follower = Follower::new(batches, mapper, source, options, info, start, stop_at.clone(), target);
    let streamed = follower.stream(stream, options, stop).await;
    drop(follower);
    let written = writer
        .await
        .map_err(|e| FollowError::Stream(format!("target writer task: {e}")))?;
    // The writer's own error explains a failed hand-over better than the closed channel does.
    written.and(streamed)
}

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
        target.apply(&name, ops, &progress).await?;
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
