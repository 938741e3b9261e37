//! WAL checkpoints off the message writer's thread.
//!
//! Why: SQLite's automatic checkpoint runs inside the `COMMIT` that takes the WAL past its threshold, on the
//! committing connection. On the message writer that was a stall of about 30 ms every 10,000 pages (the WAL
//! synced, every page copied into the database, the database synced) while every caller queued behind it: it was
//! WeChat's whole p99 (BENCHMARKS.md, "WeChat's p99 is the checkpoint stall", 2026-12-03). A checkpoint does not
//! need the write lock, so this thread runs it on a connection of its own while the writer goes on committing.
//!
//! The catch is restarting the WAL. SQLite starts the WAL over from its first frame only when a write
//! transaction begins with every frame already copied; otherwise the file keeps growing. A checkpoint that runs
//! beside the writer always leaves behind the frames committed while it ran. So each cycle copies the bulk of
//! the WAL beside the writer, a few more passes copy what was committed meanwhile (each shorter than the last),
//! and the last pass runs holding the [`WriteTurn`]: no write transaction is open on this process's
//! connections, that pass copies the last few frames, and the next write transaction finds the WAL fully copied
//! and restarts it. The writer waits only for that last pass: 2 to 21 ms on the WeChat bench, because SQLite
//! syncs the database file only after a pass that reaches the WAL's end, which beside a busy writer only the last
//! one does, so that pass flushes the cycle's pages.
//!
//! Why this thread does not flush the database file itself between passes (which held the writer only 1.5 to
//! 5 ms, with no p99 gain measurable on a noisy VM): it would need a descriptor of its own on the database file,
//! and closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's included
//! (sqlite.org, "How To Corrupt An SQLite Database File", 2.2). Another process could then take the file for its
//! own and delete the WAL under this one: an importer test saw a committed row that new connections could not
//! read.
//!
//! The cycle starts after [`CHECKPOINT_MESSAGES`] committed messages (the writer reports each group). Every
//! connection keeps SQLite's own automatic checkpoint at [`BACKSTOP_PAGES`], far above where a cycle starts, so
//! that the WAL stays bounded even if this thread falls behind.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;
use crate::turn::WriteTurn;

/// Messages committed between checkpoint cycles: about 10,000 WAL pages at the 2.4 pages per message the REST
/// bench writes. Why not SQLite's 1,000 pages: under load each commit rewrites the same hot pages (the indexes'
/// last leaves, the busy conversations' leaves) to the WAL, and a checkpoint copies each page once however often
/// it was committed, so a longer interval copies far fewer pages per message (BENCHMARKS.md, 2026-12-03, session
/// 13). Counted in messages because only the writer's commits report to this thread, and SQLite tells a
/// connection the WAL's length only through a hook rusqlite 0.32 does not offer safely.
const CHECKPOINT_MESSAGES: usize = 4_000;

/// WAL pages after which any connection of the store checkpoints on its own, inside its commit: about four times
/// what a cycle lets the WAL reach on the REST bench (2.6 times on WeChat's, whose messages take more pages), so
/// it only runs if this thread cannot keep up (or is gone). Up to about 160 MB of WAL with 4 KiB pages.
pub(super) const BACKSTOP_PAGES: i64 = 40_000;

/// Frames committed during a pass that are worth another pass beside the writer before the last one under the
/// turn: about a megabyte, a copy of a millisecond or two.
const SMALL_BACKLOG: i64 = 256;

/// Most passes beside the writer before the last one under the turn, however much the writer committed during
/// them.
const PASSES_BESIDE: usize = 4;

/// What a checkpoint pass saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pass {
    /// Another connection was checkpointing (a backstop checkpoint), so this pass copied nothing.
    busy: bool,
    /// Frames in the WAL when the pass began: it copies those (all of them unless a reader still needs an older
    /// page), and leaves what was committed while it ran to the next pass.
    frames: i64,
}

/// The database's WAL as the cycle sees it. [`Database`] in production; a test double in the unit tests.
trait Checkpoint: Send + 'static {
    /// One PASSIVE checkpoint: copies what it can without waiting for readers or writers.
    fn passive(&mut self) -> rusqlite::Result<Pass>;
}

/// The checkpoint thread's connection.
struct Database(Connection);

impl Database {
    /// `synchronous` NORMAL makes a checkpoint sync the WAL before it copies frames into the database, so the
    /// database never holds a page whose frame was not durable, and the database once it copied the whole WAL.
    fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
        Ok(Self(conn))
    }
}

impl Checkpoint for Database {
    fn passive(&mut self) -> rusqlite::Result<Pass> {
        self.0.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok(Pass {
                busy: row.get::<_, i64>(0)? != 0,
                frames: row.get(1)?,
            })
        })
    }
}

/// The checkpoint thread's handle: the writer reports its commits here.
pub(super) struct Checkpointer {
    committed: mpsc::Sender<usize>,
}

impl Checkpointer {
    /// Opens the thread's connection to the database at `path` and starts it. The thread ends when the handle
    /// is dropped.
    pub(super) fn start(path: &Path, busy_timeout: Duration, turn: WriteTurn) -> Result<Self, StoreError> {
        let database = Database::open(path, busy_timeout)?;
        Self::spawn(database, turn, CHECKPOINT_MESSAGES)
    }

    fn spawn(wal: impl Checkpoint, turn: WriteTurn, every: usize) -> Result<Self, StoreError> {
        let (committed, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run(wal, &turn, every, &queue))
            .map_err(StoreError::WriterThread)?;
        Ok(Self { committed })
    }

    /// Reports a committed group of `messages`.
    pub(super) fn committed(&self, messages: usize) {
        // The thread only ends with this handle, or after a panic; the backstop checkpoints without it.
        let _ = self.committed.send(messages);
    }
}

fn run(mut wal: impl Checkpoint, turn: &WriteTurn, every: usize, queue: &mpsc::Receiver<usize>) {
    let mut since = 0;
    while let Ok(first) = queue.recv() {
        since += first + queue.try_iter().sum::<usize>();
        if since < every {
            continue;
        }
        since = 0;
        if let Err(e) = cycle(&mut wal, turn) {
            // Nothing is lost: the next cycle, or the backstop, copies these frames.
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
        }
    }
}

/// Copies the whole WAL into the database, holding the writers off only for the last pass.
fn cycle(wal: &mut impl Checkpoint, turn: &WriteTurn) -> rusqlite::Result<()> {
    let started = Instant::now();
    let first = wal.passive()?;
    if first.busy {
        return Ok(());
    }
    // A pass copies the WAL as it stood when the pass began; what the writer committed meanwhile is for the
    // next pass, which is shorter as long as a pass copies faster than the writer commits.
    let mut seen = first.frames;
    let mut passes = 1;
    while passes < PASSES_BESIDE {
        let pass = wal.passive()?;
        passes += 1;
        if pass.busy {
            return Ok(());
        }
        // Fewer frames than before: the writer found the WAL fully copied and restarted it.
        let committed_meanwhile = pass.frames - seen;
        seen = pass.frames;
        if committed_meanwhile <= SMALL_BACKLOG {
            break;
        }
    }
    let held = Instant::now();
    let last = {
        let _turn = turn.take_blocking();
        wal.passive()?
    };
    tracing::debug!(
        frames = first.frames,
        passes_beside = passes,
        left_for_last = last.frames - seen,
        took_ms = started.elapsed().as_secs_f64() * 1e3,
        held_ms = held.elapsed().as_secs_f64() * 1e3,
        "SQLite WAL checkpointed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, Sender, channel};

    use super::*;

    /// A pass as the test saw it: run while the turn was free (a writer could commit) or held.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Seen {
        Beside(Pass),
        Held(Pass),
    }

    /// A checkpoint that reports each pass and answers with the WAL lengths it is given, in order.
    struct Scripted {
        turn: WriteTurn,
        script: std::vec::IntoIter<Pass>,
        seen: Sender<Seen>,
    }

    impl Checkpoint for Scripted {
        fn passive(&mut self) -> rusqlite::Result<Pass> {
            let beside = self.turn.try_take().is_some();
            let pass = self.script.next().expect("a pass more than scripted");
            let seen = if beside { Seen::Beside(pass) } else { Seen::Held(pass) };
            self.seen.send(seen).unwrap();
            Ok(pass)
        }
    }

    fn frames(frames: i64) -> Pass {
        Pass { busy: false, frames }
    }

    const BUSY: Pass = Pass { busy: true, frames: 0 };

    fn scripted(every: usize, script: Vec<Pass>) -> (Checkpointer, Receiver<Seen>) {
        let turn = WriteTurn::shared();
        let (seen, passes) = channel();
        let wal = Scripted {
            turn: turn.clone(),
            script: script.into_iter(),
            seen,
        };
        (Checkpointer::spawn(wal, turn, every).unwrap(), passes)
    }

    /// Every pass the thread ran (its end closes the channel).
    fn passes_until_stopped(checkpointer: Checkpointer, passes: &Receiver<Seen>) -> Vec<Seen> {
        drop(checkpointer);
        passes.iter().collect()
    }

    /// Whether each pass ran beside the writer (`true`) or under the turn.
    fn beside(passes: &[Seen]) -> Vec<bool> {
        passes.iter().map(|seen| matches!(seen, Seen::Beside(_))).collect()
    }

    #[test]
    fn a_cycle_starts_once_enough_messages_committed() {
        let (checkpointer, passes) = scripted(10, vec![frames(30), frames(30), frames(30)]);
        checkpointer.committed(4);
        checkpointer.committed(5);
        checkpointer.committed(1);
        let passes = passes_until_stopped(checkpointer, &passes);
        // Nothing committed during the first pass: one more beside the writer finds that, then the last.
        assert_eq!(
            passes,
            vec![
                Seen::Beside(frames(30)),
                Seen::Beside(frames(30)),
                Seen::Held(frames(30))
            ]
        );
    }

    #[test]
    fn fewer_messages_start_no_cycle() {
        let (checkpointer, passes) = scripted(10, vec![]);
        checkpointer.committed(9);
        assert!(passes_until_stopped(checkpointer, &passes).is_empty());
    }

    #[test]
    fn passes_beside_the_writer_go_on_while_it_commits_much_during_each() {
        let script = vec![
            frames(10_000),
            frames(12_000),
            frames(12_400),
            frames(12_500),
            frames(12_550),
        ];
        let (checkpointer, passes) = scripted(1, script);
        checkpointer.committed(1);
        let passes = passes_until_stopped(checkpointer, &passes);
        // 2,000 then 400 frames committed meanwhile: more passes; 100 is small, so the turn is taken.
        assert_eq!(beside(&passes), vec![true, true, true, true, false]);
    }

    #[test]
    fn passes_beside_the_writer_are_bounded() {
        let script = (1..=PASSES_BESIDE as i64 + 1).map(|n| frames(n * 5_000)).collect();
        let (checkpointer, passes) = scripted(1, script);
        checkpointer.committed(1);
        let passes = passes_until_stopped(checkpointer, &passes);
        let mut expected = vec![true; PASSES_BESIDE];
        expected.push(false);
        assert_eq!(beside(&passes), expected);
    }

    #[test]
    fn a_restarted_wal_ends_the_passes_beside() {
        let (checkpointer, passes) = scripted(1, vec![frames(10_000), frames(40), frames(45)]);
        checkpointer.committed(1);
        assert_eq!(
            beside(&passes_until_stopped(checkpointer, &passes)),
            vec![true, true, false]
        );
    }

    #[test]
    fn a_busy_checkpoint_ends_the_cycle_without_taking_the_turn() {
        let (checkpointer, passes) = scripted(1, vec![BUSY]);
        checkpointer.committed(1);
        assert_eq!(passes_until_stopped(checkpointer, &passes), vec![Seen::Beside(BUSY)]);
        let (checkpointer, passes) = scripted(1, vec![frames(10_000), BUSY]);
        checkpointer.committed(1);
        assert_eq!(beside(&passes_until_stopped(checkpointer, &passes)), vec![true, true]);
    }

    /// The real thing: with the cycle done, the next write transaction starts the WAL over.
    #[test]
    fn after_a_cycle_the_next_commit_restarts_the_wal() {
        let dir = std::env::temp_dir().join(format!("protofuse-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wal.db");
        let _ = std::fs::remove_file(&path);
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        let insert = |n: usize| {
            for _ in 0..n {
                writer
                    .execute("INSERT INTO t (body) VALUES (?)", ["x".repeat(3000)])
                    .unwrap();
            }
        };
        insert(50);

        let (seen, passes) = channel();
        let observed = Observed {
            inner: Database::open(&path, Duration::from_secs(5)).unwrap(),
            seen,
        };
        let checkpointer = Checkpointer::spawn(observed, WriteTurn::shared(), 50).unwrap();
        checkpointer.committed(50);
        drop(checkpointer);
        let passes: Vec<Pass> = passes.iter().collect();
        assert!(passes[0].frames >= 50, "{passes:?}");

        insert(1);
        let mut probe = Database::open(&path, Duration::from_secs(5)).unwrap();
        let frames = probe.passive().unwrap().frames;
        assert!(
            frames <= 4,
            "the WAL was not restarted: {frames} frames after one more insert"
        );
        drop((writer, probe));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The real checkpoint, reporting each pass.
    struct Observed {
        inner: Database,
        seen: Sender<Pass>,
    }

    impl Checkpoint for Observed {
        fn passive(&mut self) -> rusqlite::Result<Pass> {
            let pass = self.inner.passive()?;
            self.seen.send(pass).unwrap();
            Ok(pass)
        }
    }
}
