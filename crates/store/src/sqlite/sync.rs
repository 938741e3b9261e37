//! The WAL's fsync, off the writer thread: with `synchronous = full`, callers of a group are answered only
//! after an `fdatasync` of the WAL that began after their group's commit.
//!
//! Why: SQLite's own `synchronous = FULL` syncs the WAL inside `COMMIT`, on the writer thread, so the writer
//! sits idle for the disk's flush time (about 0.35 ms here) between groups while requests queue behind it. The
//! writer's connection therefore runs `synchronous = NORMAL` (WAL frames written, not synced, at commit; the
//! WAL synced before every checkpoint and the database after it, so a crash never corrupts the file) and this
//! thread syncs the WAL file after each commit while the writer executes the next group. One sync covers every
//! group committed before it began, so under load several groups share one.
//!
//! What it changes: the durability of an acknowledged message is the same as FULL's (nothing is answered
//! before the sync covering its commit returned). Other connections may *see* a committed group for the length
//! of one sync before it is durable; a power cut in that window loses it as it loses every unanswered write.
//! The outbox cannot deliver such a message first: a claim commits on the sqlx connection, whose FULL commit
//! syncs the same WAL file (and so the message's frames) before the claim returns.
//!
//! A failed sync is final for this process: Linux may drop the unwritten pages and report later syncs as
//! successful, so a write retried after the failure could be answered "duplicate" for a message that never
//! reached the disk. The store refuses every write from then on ([`StoreError::NotDurable`]) until a restart
//! recovers from the WAL, as PostgreSQL does after a failed fsync.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::store::Replied;

/// A caller waiting for its write, and the write's result once its group committed.
pub(super) type Answer = (
    oneshot::Sender<Result<Replied, StoreError>>,
    Result<Replied, StoreError>,
);

/// Makes a file's written data durable. The WAL file in production; a test double in the unit tests.
pub(super) trait Fsync: Send + 'static {
    fn sync(&mut self) -> io::Result<()>;
}

/// The SQLite WAL file next to the database, opened at its first sync (SQLite creates it on the first write).
/// Keeping it open is safe because SQLite deletes the WAL only when the last connection closes, and the writer's
/// own connection stays open as long as this thread runs.
pub(super) struct WalFile {
    path: PathBuf,
    file: Option<File>,
}

impl WalFile {
    pub(super) fn next_to(database: &Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: PathBuf::from(path),
            file: None,
        }
    }
}

impl Fsync for WalFile {
    fn sync(&mut self) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(File::open(&self.path)?),
        };
        // fdatasync flushes the inode's data and its size, whichever descriptor wrote them.
        file.sync_data()
    }
}

/// The sync thread's handle: where the writer hands each committed group's answers.
#[derive(Clone)]
pub(super) struct Syncer {
    committed: mpsc::Sender<Vec<Answer>>,
    failed: Arc<AtomicBool>,
}

impl Syncer {
    /// Starts the thread; it ends when the last handle is dropped, after answering what it was handed.
    pub(super) fn start(file: impl Fsync) -> Result<Self, StoreError> {
        let (committed, queue) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        std::thread::Builder::new()
            .name("sqlite-sync".to_owned())
            .spawn(move || run(file, &queue, &flag))
            .map_err(StoreError::WriterThread)?;
        Ok(Self { committed, failed })
    }

    /// `true` once a sync failed: the writer must not write (see the module docs).
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Hands over a committed group; its callers are answered after the next sync.
    pub(super) fn committed(&self, answers: Vec<Answer>) {
        if let Err(mpsc::SendError(answers)) = self.committed.send(answers) {
            // The thread is gone (it only ends with the last handle, so this is a panic in it): the commit's
            // durability is unknown.
            answer_all(answers, || StoreError::NotDurable);
        }
    }
}

fn run(mut file: impl Fsync, queue: &mpsc::Receiver<Vec<Answer>>, failed: &AtomicBool) {
    while let Ok(first) = queue.recv() {
        // Every group committed before the sync starts is covered by it.
        let mut groups = vec![first];
        groups.extend(queue.try_iter());
        let synced = if failed.load(Ordering::Acquire) {
            Err(())
        } else {
            file.sync().map_err(|e| {
                tracing::error!(error = %e, "fsync of the SQLite WAL failed; refusing writes until a restart");
                failed.store(true, Ordering::Release);
            })
        };
        for group in groups {
            match synced {
                Ok(()) => {
                    for (caller, result) in group {
                        let _ = caller.send(result);
                    }
                }
                Err(()) => answer_all(group, || StoreError::NotDurable),
            }
        }
    }
}

fn answer_all(group: Vec<Answer>, error: impl Fn() -> StoreError) {
    for (caller, _) in group {
        let _ = caller.send(Err(error()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

    use tokio::sync::oneshot::error::TryRecvError;

    use super::*;

    /// A sync the test holds: it reports each start on `started` and finishes when the test sends the outcome.
    struct Held {
        started: SyncSender<()>,
        outcome: Receiver<io::Result<()>>,
    }

    impl Fsync for Held {
        fn sync(&mut self) -> io::Result<()> {
            self.started.send(()).unwrap();
            self.outcome.recv().unwrap()
        }
    }

    fn held() -> (Syncer, Receiver<()>, SyncSender<io::Result<()>>) {
        let (started, on_start) = sync_channel(16);
        let (finish, outcome) = sync_channel(16);
        (Syncer::start(Held { started, outcome }).unwrap(), on_start, finish)
    }

    /// A committed group of `n` callers (their results are all `Err(KeyReused)`, a stand-in payload).
    fn group(n: usize) -> (Vec<Answer>, Vec<oneshot::Receiver<Result<Replied, StoreError>>>) {
        (0..n)
            .map(|_| {
                let (tx, rx) = oneshot::channel();
                ((tx, Err(StoreError::KeyReused)), rx)
            })
            .unzip()
    }

    #[test]
    fn callers_are_answered_only_after_the_sync_returns() {
        let (syncer, started, finish) = held();
        let (answers, mut callers) = group(2);
        syncer.committed(answers);
        started.recv().unwrap();
        assert!(
            callers
                .iter_mut()
                .all(|c| matches!(c.try_recv(), Err(TryRecvError::Empty)))
        );
        finish.send(Ok(())).unwrap();
        for caller in callers {
            assert!(matches!(caller.blocking_recv().unwrap(), Err(StoreError::KeyReused)));
        }
        assert!(!syncer.failed());
    }

    #[test]
    fn groups_committed_during_a_sync_share_the_next_one() {
        let (syncer, started, finish) = held();
        let (first, first_callers) = group(1);
        syncer.committed(first);
        started.recv().unwrap();
        let (second, second_callers) = group(1);
        let (third, third_callers) = group(1);
        syncer.committed(second);
        syncer.committed(third);
        finish.send(Ok(())).unwrap();
        first_callers.into_iter().for_each(|c| drop(c.blocking_recv().unwrap()));
        // One more sync answers both later groups.
        started.recv().unwrap();
        finish.send(Ok(())).unwrap();
        for caller in second_callers.into_iter().chain(third_callers) {
            assert!(caller.blocking_recv().is_ok());
        }
        drop(syncer);
        assert!(started.recv().is_err(), "a third sync ran");
    }

    #[test]
    fn a_failed_sync_refuses_its_groups_and_every_later_one() {
        let (syncer, started, finish) = held();
        let (answers, callers) = group(1);
        syncer.committed(answers);
        started.recv().unwrap();
        finish.send(Err(io::Error::other("disk gone"))).unwrap();
        for caller in callers {
            assert!(matches!(caller.blocking_recv().unwrap(), Err(StoreError::NotDurable)));
        }
        assert!(syncer.failed());
        // Even though the next sync would succeed, nothing after the failure is answered as durable.
        finish.send(Ok(())).unwrap();
        let (answers, callers) = group(1);
        syncer.committed(answers);
        for caller in callers {
            assert!(matches!(caller.blocking_recv().unwrap(), Err(StoreError::NotDurable)));
        }
    }
}
