//! The MySQL/MariaDB backend, for production. One pool serves reads and writes; InnoDB's row locks order
//! concurrent writers, including other server nodes writing the same database.
//!
//! Message writes go through a bounded queue to a few writer tasks (`writer.rs`), each of which takes whatever
//! is queued into one transaction of set-based statements (`batch.rs`): a statement per step for the whole
//! batch instead of one per message, so a message costs a fraction of a round trip instead of seven. Whatever
//! the batch cannot settle in bulk (a conflict with another writer, a deadlock, a failed statement) it rolls
//! back and hands to the per-message path (`one.rs`), a transaction per message running the shared `write_one`
//! (`queries.rs`): correctness never depends on the fast path.
//!
//! # Layout
//! - `mod.rs`: the store and its connection set-up; reads and the other writes come from `queries.rs`.
//! - `writer.rs`: the queue's writer tasks, who answers whom.
//! - `batch.rs`: one batch transaction and its SQL.
//! - `one.rs`: one message in its own transaction, with deadlock retry.

use std::str::FromStr;

use protofuse_model::{Conversation, ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp};
use sqlx::Executor;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use tokio::sync::mpsc;

use crate::codec;
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::outbox::{DeadLetterTuple, dead_letter_from, impl_outbox};
use crate::page::{ConversationFilter, Order, Page, PageRequest};
use crate::queries::{ConversationTuple, impl_store, split_page, tuple_to_row};
use crate::store::{Inserted, Replied, Reply, Store};
use crate::turn::WriteTurn;

mod batch;
mod one;
mod writer;

use crate::queue::{self, Write};
pub use one::is_deadlock;

/// Prepared statements kept per connection. A writer's batch statements come in a bounded set of shapes
/// (`batch.rs`: eight lookup and touch sizes, an insert per row count up to 128), which must fit beside the
/// rest of the store's statements, or a batch would prepare again what an earlier one evicted.
const STATEMENT_CACHE: usize = 512;

/// The MySQL/MariaDB store.
#[derive(Debug, Clone)]
pub struct MysqlStore {
    /// The one pool; named `reader` and `writer` for the shared query code (both are the same pool).
    reader: MySqlPool,
    writer: MySqlPool,
    /// None: InnoDB's row locks order the writers.
    turn: WriteTurn,
    /// The writer tasks' queue of message writes.
    writes: mpsc::Sender<Write>,
}

impl MysqlStore {
    /// Connects to the database named by `settings.url` (`mysql://` or `mariadb://`), migrates it and starts the
    /// message writer tasks (which end when the last handle to the store is dropped).
    pub async fn open(settings: &StoreConfig) -> Result<Self, StoreError> {
        let url = settings.url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)?
            .charset("utf8mb4")
            .statement_cache_capacity(STATEMENT_CACHE);
        let pool = MySqlPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(|conn, _| {
                // READ COMMITTED: a re-read after a unique-key conflict must see the row the other writer
                // committed, which REPEATABLE READ's snapshot would hide.
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/mysql")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        let (writes, queue) = mpsc::channel(settings.write_queue.max(1));
        writer::start(&pool, settings.max_connections, queue);
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            turn: WriteTurn::none(),
            writes,
        })
    }

    /// Queues the write for the writer tasks and waits for its answer, which comes after its batch committed.
    async fn insert(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
    ) -> Result<Inserted, StoreError> {
        Ok(queue::submit(&self.writes, envelope, received_at, destinations, None)
            .await?
            .inserted)
    }

    /// The message, then its reply as a write of its own when the message is new. Not one transaction: the
    /// batch statements (`batch.rs`) write independent messages, and a reply depends on its message's id and
    /// conversation. A failed reply leaves the message stored, as a reply written by its caller afterwards would.
    async fn answered(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
        reply: Reply,
    ) -> Result<Replied, StoreError> {
        let inserted = self.insert(envelope, received_at, destinations).await?;
        if inserted.duplicate {
            return Ok(Replied {
                inserted,
                reply: Ok(None),
            });
        }
        let (envelope, destinations) = reply.complete(&inserted.message);
        let reply = self
            .insert(envelope, received_at, destinations)
            .await
            .map(|stored| Some(stored.message));
        Ok(Replied { inserted, reply })
    }
}

impl_store!(MysqlStore, sqlx::MySql, "mysql", "START TRANSACTION");
impl_outbox!(MysqlStore, sqlx::MySql, "START TRANSACTION");
