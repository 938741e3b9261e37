//! The snapshot's write side: chunks gathered into batches, batches committed by one or more writers at once,
//! and the resume point each commit records.
//!
//! With one writer, a batch may record its own progress (the last primary key it copied): every earlier batch is
//! committed. With several, a batch can commit before an earlier one, so each records the [`Watermark`] instead:
//! the progress of the highest batch that, with every batch before it, is committed once this one is. A crash
//! then resumes at or before every uncommitted batch. Committed rows past the watermark are copied again, which
//! is harmless because every write is keyed by source table and primary key, and an older watermark committed
//! after a newer one is ignored by the target (`greatest_tail`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::error::SnapshotError;
use crate::progress::Progress as Bar;
use crate::sink::{Op, Progress, Target};

/// A target transaction's worth of rows, numbered in source order.
struct Batch {
    seq: u64,
    ops: Vec<Op>,
    progress: Progress,
}

/// Which batches are committed, and how far the unbroken committed prefix reaches.
#[derive(Debug, Default)]
pub(super) struct Watermark {
    /// The lowest batch not yet committed.
    next: u64,
    /// Committed batches above `next`, with their own progress.
    ahead: BTreeMap<u64, Progress>,
    /// The progress of batch `next - 1`: everything up to it is committed.
    reached: Progress,
}

impl Watermark {
    /// What batch `seq`, whose own progress is `progress`, may record: how far the committed prefix reaches
    /// once it commits too. Only ever names committed batches or `seq` itself, so it is safe at any moment.
    pub(super) fn covered(&self, seq: u64, progress: &Progress) -> Progress {
        if seq != self.next {
            return self.reached.clone();
        }
        let mut covered = progress;
        let mut after = seq + 1;
        while let Some(p) = self.ahead.get(&after) {
            covered = p;
            after += 1;
        }
        covered.clone()
    }

    /// Batch `seq` is committed.
    pub(super) fn commit(&mut self, seq: u64, progress: Progress) {
        self.ahead.insert(seq, progress);
        while let Some(p) = self.ahead.remove(&self.next) {
            self.reached = p;
            self.next += 1;
        }
    }
}

/// Gathers the chunks from `rx` into transactions of about `batch_rows` rows and commits them with up to
/// `writers` transactions in flight (capped by what the target allows). A batch ends where a table does,
/// because its progress names one table.
pub(super) async fn write_all(
    target: Target,
    name: String,
    mut rx: mpsc::Receiver<(Vec<Op>, Progress)>,
    batch_rows: usize,
    writers: usize,
    bar: Arc<Bar>,
) -> Result<(), SnapshotError> {
    let writers = writers.clamp(1, target.max_writers());
    let (batches, queue) = mpsc::channel::<Batch>(1);
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    let watermark = Arc::new(Mutex::new(Watermark::default()));
    let mut tasks = JoinSet::new();
    for _ in 0..writers {
        tasks.spawn(write_batches(
            target.clone(),
            name.clone(),
            Arc::clone(&queue),
            Arc::clone(&watermark),
            Arc::clone(&bar),
        ));
    }
    let gathered = gather(&mut rx, batch_rows, &batches).await;
    drop(batches);
    drop(rx);
    // A writer's own error says more than the "writer stopped" the gatherer saw because of it.
    let mut failed = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or(Err(SnapshotError::WriterGone));
        if let (Err(e), None) = (result, &failed) {
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => gathered,
    }
}

async fn gather(
    rx: &mut mpsc::Receiver<(Vec<Op>, Progress)>,
    batch_rows: usize,
    batches: &mpsc::Sender<Batch>,
) -> Result<(), SnapshotError> {
    let mut seq = 0;
    let mut send = async |ops: Vec<Op>, progress: Progress| {
        seq += 1;
        let batch = Batch {
            seq: seq - 1,
            ops,
            progress,
        };
        batches.send(batch).await.map_err(|_| SnapshotError::WriterGone)
    };
    let mut batch: Vec<Op> = Vec::new();
    let mut covered = Progress::None;
    while let Some((ops, progress)) = rx.recv().await {
        if !batch.is_empty() && !same_source(&covered, &progress) {
            send(std::mem::take(&mut batch), covered.clone()).await?;
        }
        batch.extend(ops);
        covered = progress;
        if batch.len() >= batch_rows {
            send(std::mem::take(&mut batch), covered.clone()).await?;
        }
    }
    if !batch.is_empty() {
        send(batch, covered).await?;
    }
    Ok(())
}

fn same_source(a: &Progress, b: &Progress) -> bool {
    match (a, b) {
        (Progress::Snapshot { source: x, .. }, Progress::Snapshot { source: y, .. }) => x == y,
        _ => false,
    }
}

async fn write_batches(
    target: Target,
    name: String,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Batch>>>,
    watermark: Arc<Mutex<Watermark>>,
    bar: Arc<Bar>,
) -> Result<(), SnapshotError> {
    loop {
        let next = queue.lock().await.recv().await;
        let Some(batch) = next else {
            return Ok(());
        };
        let covered = lock(&watermark).covered(batch.seq, &batch.progress);
        let rows = batch.ops.len() as u64;
        if let Err(e) = target.apply(&name, batch.ops, &covered).await {
            // Stops the gatherer (and through it the reader) instead of letting the other writers go on.
            queue.lock().await.close();
            return Err(e.into());
        }
        lock(&watermark).commit(batch.seq, batch.progress);
        bar.committed(rows);
    }
}

fn lock(watermark: &Mutex<Watermark>) -> std::sync::MutexGuard<'_, Watermark> {
    // The watermark is updated in single, non-panicking steps; a poisoned lock still holds a consistent value.
    watermark.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::{Progress, Watermark};

    fn at(last_pk: i64) -> Progress {
        Progress::Snapshot {
            source: "table:t".into(),
            last_pk,
        }
    }

    fn pk(p: &Progress) -> Option<i64> {
        match p {
            Progress::Snapshot { last_pk, .. } => Some(*last_pk),
            _ => None,
        }
    }

    #[test]
    fn a_batch_records_only_what_is_committed_before_it_or_with_it() {
        let mut w = Watermark::default();
        // Batches 0, 1, 2 in flight: only 0 may record its own progress.
        assert_eq!(pk(&w.covered(0, &at(100))), Some(100));
        assert_eq!(pk(&w.covered(1, &at(200))), None, "batch 0 is not committed yet");
        // 2 commits first, recording nothing; then 1 (still nothing: 0 is open).
        w.commit(2, at(300));
        assert_eq!(pk(&w.covered(1, &at(200))), None);
        w.commit(1, at(200));
        // 0 commits last and covers 1 and 2 as well.
        assert_eq!(pk(&w.covered(0, &at(100))), Some(300));
        w.commit(0, at(100));
        assert_eq!(pk(&w.covered(4, &at(500))), Some(300), "3 is open");
        assert_eq!(pk(&w.covered(3, &at(400))), Some(400));
        w.commit(3, at(400));
        assert_eq!(pk(&w.covered(4, &at(500))), Some(500));
    }
}
