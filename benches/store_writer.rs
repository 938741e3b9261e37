//! Below HTTP: what storing one message costs on the store's SQLite write path, against what SQLite itself needs
//! to store the same rows, measured in the same run. This is the bound under every protocol's rate (issue 17):
//! the HTTP benches say how far the server is from bare hyper, this one says how much of the store's share is
//! SQLite's own B-tree and WAL work and how much is the store's.
//!
//! Targets, one after another, each on a fresh database:
//! 1. **the store**: `Store::insert_message` from `BENCH_CONNECTIONS` tasks (default 32), each its own customer
//!    (as `rest_ingest` does), SQLite `synchronous = full`: the writer thread, its group commits, the WAL's
//!    sync thread and the checkpoint thread, with the tasks' side (fingerprint, open key, queue) on tokio.
//! 2. **the SQLite floor**: one thread on one raw connection to a database with the store's own schema, the same
//!    rows (the body the store stored in target 1, a fresh id and a time-ordered key per row, spread over as
//!    many conversations), one `INSERT` and the conversation's `UPDATE` per message, `BENCH_GROUP` messages per
//!    transaction (default 16, about the store's group at 32 callers), `synchronous = full` and SQLite's own
//!    checkpoints every `BENCH_FLOOR_CHECKPOINT` WAL pages (default 10,000): no lookups, no savepoints, no
//!    queue, no threads. `BENCH_FLOOR_DROP` leaves parts out to see what each costs (see [`dropped`]).
//! 3. **the floor without indexes**: the same bodies into a table with nothing but its rowid, the same
//!    transactions: what the WAL alone costs, so the difference to 2 is the schema's indexes.
//!
//! Run: `cargo bench --bench store_writer` (`BENCH_SECONDS` per target, default 6). Reports messages per second
//! and CPU microseconds per message, for the store also per thread. Compare CPU per message across targets, not
//! rates across machines.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use protofuse_model::{Content, Direction, Envelope, IdempotencyKey, Party, Protocol, Role, Source};
use protofuse_store::{Store, StoreConfig, Synchronous};
use rusqlite::{Connection, params};
use support::{env_or, stat_cpu_seconds};
use uuid::Uuid;

const SCHEMA: [&str; 2] = [
    include_str!("../crates/store/migrations/sqlite/0001_init.sql"),
    include_str!("../crates/store/migrations/sqlite/0002_outbox.sql"),
];

fn envelope(worker: u64, n: u64) -> Envelope {
    Envelope {
        conversation_id: None,
        channel: "web".to_owned(),
        direction: Direction::Inbound,
        sender: Party {
            role: Role::Customer,
            external_id: format!("bench-{worker}"),
            display_name: None,
        },
        content: Content::Text {
            text: format!("where is my parcel? #{n}"),
        },
        sent_at: None,
        source: Source::new(Protocol::Rest),
        metadata: Default::default(),
        idempotency_key: IdempotencyKey::unique(),
    }
}

/// CPU seconds (user and system) per thread name, summed over this process's threads. A thread that ended
/// between two readings drops out of the second: the store's threads and tokio's workers live for the run.
fn thread_cpu() -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        *by_name.entry(stat[open + 1..close].to_owned()).or_insert(0.0) += stat_cpu_seconds(&stat);
    }
    by_name
}

/// Whether `BENCH_FLOOR_DROP` (a comma-separated list) names `part` of the schema floor to leave out, to see what
/// each costs: `touch` (the conversation's `UPDATE`), `fk` (foreign keys off), `by_conversation` (the
/// messages-by-conversation index), `customer` (the conversations-by-customer index).
fn dropped(part: &str) -> bool {
    std::env::var("BENCH_FLOOR_DROP").is_ok_and(|v| v.split(',').any(|p| p.trim() == part))
}

/// CPU seconds of the calling thread.
fn this_thread_cpu() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
}

struct Measured {
    name: String,
    messages: u64,
    seconds: f64,
    cpu: Vec<(String, f64)>,
}

impl Measured {
    fn print(&self) {
        let per = |s: f64| s * 1e6 / self.messages.max(1) as f64;
        let total: f64 = self.cpu.iter().map(|(_, s)| s).sum();
        let parts: Vec<String> = self
            .cpu
            .iter()
            .filter(|(_, s)| per(*s) >= 0.05)
            .map(|(name, s)| format!("{name} {:.1}", per(*s)))
            .collect();
        println!(
            "| {} | {:.0} | {:.1} | {} |",
            self.name,
            self.messages as f64 / self.seconds,
            per(total),
            parts.join(" · ")
        );
    }
}

async fn store_target(dir: &std::path::Path, writers: u64, seconds: u64) -> (Measured, String) {
    let path = dir.join("store.db");
    let config = StoreConfig {
        sqlite_synchronous: Synchronous::Full,
        ..StoreConfig::for_url(&format!("sqlite://{}", path.display()))
    };
    let store: Arc<dyn Store> = Arc::from(protofuse_store::open(&config).await.unwrap());
    // Every customer's conversation exists before the clock starts, as in a long-running server.
    for worker in 0..writers {
        store.insert_message(envelope(worker, 0), Utc::now()).await.unwrap();
    }
    let before = thread_cpu();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..writers)
        .map(|worker| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    store.insert_message(envelope(worker, n), Utc::now()).await.unwrap();
                }
                n
            })
        })
        .collect();
    let mut messages = 0;
    for task in tasks {
        messages += task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = thread_cpu();
    let cpu = after
        .into_iter()
        .map(|(name, s)| {
            let spent = s - before.get(&name).copied().unwrap_or(0.0);
            (name, spent)
        })
        .collect();
    let body: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT body FROM messages ORDER BY id DESC LIMIT 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    let measured = Measured {
        name: format!("the store: `insert_message`, {writers} tasks, synchronous=full"),
        messages,
        seconds,
        cpu,
    };
    (measured, body)
}

/// How the floor writes a message: the store's rows, or the body alone into a table without indexes.
#[derive(Clone, Copy)]
enum Floor {
    Schema,
    Bare,
}

/// A fresh database for `floor`, with the store's pragmas and, for [`Floor::Schema`], the store's schema (less what
/// `BENCH_FLOOR_DROP` leaves out) and `conversations` open conversations, whose ids it returns.
fn open_floor(dir: &std::path::Path, floor: Floor, conversations: u64) -> (Connection, Vec<String>) {
    let conn = Connection::open(dir.join(match floor {
        Floor::Schema => "floor.db",
        Floor::Bare => "bare.db",
    }))
    .unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    // About the store's cadence (a checkpoint every 4,000 messages of about 2.4 pages each), so that a page
    // rewritten by many groups is copied to the database about as often as there.
    let checkpoint = env_or("BENCH_FLOOR_CHECKPOINT", 10_000);
    conn.pragma_update(None, "wal_autocheckpoint", checkpoint).unwrap();
    let now = Utc::now().timestamp_micros();
    let ids: Vec<String> = (0..conversations).map(|_| Uuid::now_v7().to_string()).collect();
    match floor {
        Floor::Schema => {
            for sql in SCHEMA {
                conn.execute_batch(sql).unwrap();
            }
            for (part, sql) in [
                ("by_conversation", "DROP INDEX messages_by_conversation"),
                ("customer", "DROP INDEX conversations_by_customer"),
            ] {
                if dropped(part) {
                    conn.execute_batch(sql).unwrap();
                }
            }
            if dropped("fk") {
                conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
            }
            for (i, id) in ids.iter().enumerate() {
                conn.execute(
                    "INSERT INTO conversations (id, channel, customer_id, status, open_key, created_at, updated_at) \
                     VALUES (?, 'web', ?, 'bot', ?, ?, ?)",
                    params![id, format!("bench-{i}"), format!("{:064x}", i), now, now],
                )
                .unwrap();
            }
        }
        Floor::Bare => conn.execute_batch("CREATE TABLE bare (body TEXT NOT NULL)").unwrap(),
    }
    (conn, ids)
}

/// Writes `group` messages per transaction for `seconds` on one connection, nothing else on the thread.
fn floor_target(
    dir: &std::path::Path,
    floor: Floor,
    body: &str,
    conversations: u64,
    group: u64,
    seconds: u64,
) -> Measured {
    let (conn, ids) = open_floor(dir, floor, conversations);
    let fingerprint = "f".repeat(64);
    // Each floor prepares only its own statements: the other floor's tables do not exist in its database.
    let (mut insert_message, mut touch, mut insert_bare) = match floor {
        Floor::Schema => (
            Some(
                conn.prepare(
                    "INSERT INTO messages (id, conversation_id, idempotency_key, fingerprint, direction, sender_role, \
                     content_type, received_at, body) VALUES (?, ?, ?, ?, 'inbound', 'customer', 'text', ?, ?)",
                )
                .unwrap(),
            ),
            Some(
                conn.prepare("UPDATE conversations SET updated_at = ? WHERE id = ? AND updated_at < ?")
                    .unwrap(),
            ),
            None,
        ),
        Floor::Bare => (
            None,
            None,
            Some(conn.prepare("INSERT INTO bare (body) VALUES (?)").unwrap()),
        ),
    };
    let mut begin = conn.prepare("BEGIN IMMEDIATE").unwrap();
    let mut commit = conn.prepare("COMMIT").unwrap();
    let cpu_start = this_thread_cpu();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut messages = 0u64;
    while Instant::now() < deadline {
        begin.execute([]).unwrap();
        for _ in 0..group {
            let received = Utc::now().timestamp_micros();
            match floor {
                Floor::Schema => {
                    let conversation = &ids[(messages % conversations) as usize];
                    let key = format!("unique:{}", Uuid::now_v7().simple());
                    insert_message
                        .as_mut()
                        .unwrap()
                        .execute(params![
                            Uuid::now_v7().to_string(),
                            conversation,
                            key,
                            fingerprint,
                            received,
                            body
                        ])
                        .unwrap();
                    if !dropped("touch") {
                        touch
                            .as_mut()
                            .unwrap()
                            .execute(params![received, conversation, received])
                            .unwrap();
                    }
                }
                Floor::Bare => {
                    insert_bare.as_mut().unwrap().execute([body]).unwrap();
                }
            }
            messages += 1;
        }
        commit.execute([]).unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    Measured {
        name: match floor {
            Floor::Schema => format!("SQLite floor: the store's schema, {group} messages per commit"),
            Floor::Bare => format!("SQLite floor: no indexes, {group} bodies per commit"),
        },
        messages,
        seconds,
        cpu: vec![("this thread".to_owned(), this_thread_cpu() - cpu_start)],
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 6);
    let writers = env_or("BENCH_CONNECTIONS", 32);
    let group = env_or("BENCH_GROUP", 16);
    let dir = tempfile::tempdir().unwrap();
    let (store, body) = store_target(dir.path(), writers, seconds).await;
    println!("stored body: {} bytes", body.len());
    let path = dir.path().to_owned();
    let floors = tokio::task::spawn_blocking(move || {
        [Floor::Schema, Floor::Bare].map(|floor| floor_target(&path, floor, &body, writers, group, seconds))
    })
    .await
    .unwrap();
    println!("| target | messages/s | CPU µs per message | of which, by thread |");
    println!("|---|---:|---:|---|");
    store.print();
    for floor in &floors {
        floor.print();
    }
}
