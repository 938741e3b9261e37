//! The per-message write path: one message in a transaction of its own, running the shared `write_one`
//! (`queries.rs`), retried when InnoDB picks it as a deadlock victim. What a batch cannot settle in bulk is
//! written here, where a conflict with another writer is settled message by message (a re-read after a
//! unique-key conflict, a retry after a deadlock).

use protofuse_model::{ConversationId, ConversationStatus, Envelope, MessageId, Timestamp};
use sqlx::mysql::MySqlPool;

use crate::codec;
use crate::error::StoreError;
use crate::queries::impl_write_one;
use crate::store::Inserted;

/// How often a write is retried when InnoDB picks it as a deadlock victim (concurrent first messages of one
/// customer can lock the same unique keys in opposite orders).
const DEADLOCK_RETRIES: u32 = 3;

/// Writes one message (or finds it stored) in a transaction of its own.
pub(super) async fn insert_one(
    pool: &MySqlPool,
    envelope: &Envelope,
    received_at: Timestamp,
    destinations: &[String],
) -> Result<Inserted, StoreError> {
    let mut attempt = 0;
    loop {
        let mut tx = pool.begin().await?;
        match write_one(&mut tx, envelope.clone(), received_at, destinations).await {
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

/// Whether InnoDB rolled the transaction back as a deadlock victim (SQLSTATE 40001), so running it again is the
/// remedy. Shared with the importer, which writes the same tables from parallel transactions.
pub fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}

impl_write_one!(sqlx::MySql);
