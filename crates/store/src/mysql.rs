//! The MySQL/MariaDB backend, for production. One pool serves reads and writes; InnoDB handles concurrency and
//! already groups the fsyncs of concurrent commits, so each message is its own transaction.

use std::str::FromStr;

use protofuse_model::{Conversation, ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp};
use sqlx::Executor;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use crate::codec;
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::outbox::{DeadLetterTuple, dead_letter_from, impl_outbox};
use crate::page::{ConversationFilter, Order, Page, PageRequest};
use crate::queries::{ConversationTuple, impl_store, impl_write_one, split_page, tuple_to_row};
use crate::store::{Inserted, Store};
use crate::turn::WriteTurn;

/// How often a write is retried when InnoDB picks it as a deadlock victim (concurrent first messages of one
/// customer can lock the same unique keys in opposite orders).
const DEADLOCK_RETRIES: u32 = 3;

/// The MySQL/MariaDB store.
#[derive(Debug, Clone)]
pub struct MysqlStore {
    /// The one pool; named `reader` and `writer` for the shared query code (both are the same pool).
    reader: MySqlPool,
    writer: MySqlPool,
    /// None: InnoDB's row locks order the writers.
    turn: WriteTurn,
}

impl MysqlStore {
    /// Connects to the database named by `settings.url` (`mysql://` or `mariadb://`) and migrates it.
    pub async fn open(settings: &StoreConfig) -> Result<Self, StoreError> {
        let url = settings.url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)?.charset("utf8mb4");
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
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            turn: WriteTurn::none(),
        })
    }

    async fn insert(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
    ) -> Result<Inserted, StoreError> {
        let mut attempt = 0;
        loop {
            let mut tx = self.reader.begin().await?;
            match write_one(&mut tx, envelope.clone(), received_at, &destinations).await {
                Ok(inserted) => {
                    tx.commit().await?;
                    return Ok(inserted);
                }
                Err(StoreError::Database(e)) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => attempt += 1,
                // Dropping the transaction rolls back, including a conversation it may have opened.
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether InnoDB rolled the transaction back as a deadlock victim (SQLSTATE 40001), so running it again is the
/// remedy. Shared with the importer, which writes the same tables from parallel transactions.
pub fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}

impl_write_one!(sqlx::MySql);
impl_store!(MysqlStore, sqlx::MySql, "mysql", "START TRANSACTION");
impl_outbox!(MysqlStore, sqlx::MySql, "START TRANSACTION");
