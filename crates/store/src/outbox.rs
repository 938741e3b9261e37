//! The dispatcher's durable outbox and dead-letter table, kept in the conversation store.
//!
//! A delivery is a row `(message, destination)` written in the same transaction as its message, so nothing
//! acknowledged can miss a delivery. Workers *claim* due rows with a lease (a token and an expiry), deliver them,
//! and *settle* them: delete on success, push `due_at` on a retry or a deferral, move to `dead_letters` after the
//! last attempt. A lease that expires (its worker crashed) makes the row claimable again, which is why delivery is
//! at least once and carries an idempotency key. The SQL is written once, as in `queries.rs`.

use async_trait::async_trait;
use protofuse_model::{Message, Timestamp};

use crate::error::StoreError;

/// A delivery claimed by a worker: deliver `message` to `destination`, then settle it with `token`.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The outbox row.
    pub id: i64,
    /// The lease that must be shown to settle the row.
    pub token: uuid::Uuid,
    /// Where to.
    pub destination: String,
    /// Failed attempts before this one.
    pub attempts: u32,
    /// When the delivery was queued (for age metrics).
    pub created_at: Timestamp,
    /// The stored message.
    pub message: Message,
}

/// What became of a claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered: the row is removed.
    Delivered,
    /// Failed; try again at `due_at`. Counts as an attempt.
    Retry {
        /// Next try.
        due_at: Timestamp,
        /// Why it failed.
        error: String,
    },
    /// Not tried (breaker open, no capacity, retry budget spent); try at `due_at`. Not an attempt.
    Defer {
        /// Next try.
        due_at: Timestamp,
    },
    /// Failed for the last time or for good: moved to the dead letters.
    Dead {
        /// Why.
        error: String,
    },
}

/// One settlement of a claimed row.
#[derive(Debug, Clone)]
pub struct Settle {
    /// The outbox row.
    pub id: i64,
    /// The claim's lease token; a row re-claimed by someone else since is left alone.
    pub token: uuid::Uuid,
    /// The outcome.
    pub outcome: Settlement,
}

/// Queue depth of one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// The destination.
    pub destination: String,
    /// Deliveries waiting (including those in flight).
    pub pending: u64,
    /// Of those, currently claimed by a worker.
    pub in_flight: u64,
    /// When the oldest waiting delivery was queued.
    pub oldest: Option<Timestamp>,
    /// Dead letters.
    pub dead: u64,
}

/// A delivery that gave up.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its id in the dead-letter table.
    pub id: i64,
    /// The message's id.
    pub message_id: String,
    /// Where it was going.
    pub destination: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
    /// When it was first queued.
    pub created_at: Timestamp,
    /// When it gave up.
    pub dead_at: Timestamp,
    /// The original message (filled by [`Outbox::dead_letter`], not by listings).
    pub message: Option<Message>,
}

/// Which dead letters to replay or list.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// Only these ids.
    pub ids: Option<Vec<i64>>,
    /// Only this destination.
    pub destination: Option<String>,
}

/// The outbox operations; every [`crate::Store`] implements them.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` deliveries for `destination` that are due at `now` and not leased, leasing them until
    /// `lease_until`.
    async fn claim(
        &self,
        destination: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Applies settlements in one transaction. A row whose lease was taken over is skipped.
    async fn settle(&self, settlements: &[Settle], now: Timestamp) -> Result<(), StoreError>;

    /// Frees the leases of `token`s not settled (at shutdown), so the rows are claimable at once on restart.
    async fn release(&self, tokens: &[uuid::Uuid]) -> Result<(), StoreError>;

    /// Queue depth per destination that has pending deliveries or dead letters.
    async fn outbox_depth(&self, now: Timestamp) -> Result<Vec<OutboxDepth>, StoreError>;

    /// A page of dead letters after id `after`, oldest first.
    async fn dead_letters(
        &self,
        destination: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError>;

    /// One dead letter with its message.
    async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError>;

    /// Moves the matching dead letters back into the outbox, due now, with their attempts reset. Returns how
    /// many were moved.
    async fn replay_dead_letters(&self, filter: &DeadLetterFilter, now: Timestamp) -> Result<u64, StoreError>;

    /// Deletes the matching dead letters (the messages stay). Returns how many.
    async fn discard_dead_letters(&self, filter: &DeadLetterFilter) -> Result<u64, StoreError>;
}

/// Implements [`Outbox`] for `$store`, which has `reader` and `writer` pools of `$db` and a `turn`
/// ([`crate::turn::WriteTurn`]) taken before writing on `writer`; `$begin` opens a write transaction.
macro_rules! impl_outbox {
    ($store:ty, $db:ty, $begin:literal) => {
        #[async_trait::async_trait]
        impl $crate::outbox::Outbox for $store {
            async fn claim(
                &self,
                destination: &str,
                now: Timestamp,
                lease_until: Timestamp,
                limit: u32,
            ) -> Result<Vec<$crate::outbox::Claimed>, StoreError> {
                let now = codec::to_micros(now);
                let _turn = self.turn.take().await;
                let ids: Vec<(i64,)> = sqlx::query_as(
                    "SELECT id FROM outbox WHERE destination = ? AND due_at <= ? AND lease_until <= ? \
                     ORDER BY due_at, id LIMIT ?",
                )
                .bind(destination)
                .bind(now)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.writer)
                .await?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let token = uuid::Uuid::now_v7();
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE outbox SET lease_until = ");
                qb.push_bind(codec::to_micros(lease_until))
                    .push(", lease_token = ")
                    .push_bind(token.to_string())
                    .push(" WHERE lease_until <= ")
                    .push_bind(now)
                    .push(" AND id IN (");
                let mut list = qb.separated(", ");
                for (id,) in &ids {
                    list.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(&self.writer).await?;
                let rows: Vec<(i64, codec::Text, i64, i64, codec::Text)> = sqlx::query_as(
                    "SELECT o.id, o.destination, o.attempts, o.created_at, m.body FROM outbox o \
                     JOIN messages m ON m.id = o.message_id WHERE o.lease_token = ? ORDER BY o.due_at, o.id",
                )
                .bind(token.to_string())
                .fetch_all(&self.writer)
                .await?;
                rows.into_iter()
                    .map(|(id, destination, attempts, created_at, body)| {
                        Ok($crate::outbox::Claimed {
                            id,
                            token,
                            destination: destination.0,
                            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                            created_at: codec::from_micros(created_at)?,
                            message: codec::decode_message(&body.0)?,
                        })
                    })
                    .collect()
            }

            async fn settle(&self, settlements: &[$crate::outbox::Settle], now: Timestamp) -> Result<(), StoreError> {
                use $crate::outbox::Settlement;
                let now = codec::to_micros(now);
                let _turn = self.turn.take().await;
                let mut tx = self.writer.begin_with($begin).await?;
                for s in settlements {
                    let token = s.token.to_string();
                    match &s.outcome {
                        Settlement::Delivered => {
                            sqlx::query("DELETE FROM outbox WHERE id = ? AND lease_token = ?")
                                .bind(s.id)
                                .bind(&token)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Settlement::Retry { due_at, error } => {
                            sqlx::query(
                                "UPDATE outbox SET attempts = attempts + 1, due_at = ?, lease_until = 0, \
                                 lease_token = NULL, last_error = ? WHERE id = ? AND lease_token = ?",
                            )
                            .bind(codec::to_micros(*due_at))
                            .bind(error)
                            .bind(s.id)
                            .bind(&token)
                            .execute(&mut *tx)
                            .await?;
                        }
                        Settlement::Defer { due_at } => {
                            sqlx::query(
                                "UPDATE outbox SET due_at = ?, lease_until = 0, lease_token = NULL \
                                 WHERE id = ? AND lease_token = ?",
                            )
                            .bind(codec::to_micros(*due_at))
                            .bind(s.id)
                            .bind(&token)
                            .execute(&mut *tx)
                            .await?;
                        }
                        Settlement::Dead { error } => {
                            sqlx::query(
                                "INSERT INTO dead_letters \
                                 (message_id, destination, attempts, last_error, created_at, dead_at) \
                                 SELECT message_id, destination, attempts + 1, ?, created_at, ? FROM outbox \
                                 WHERE id = ? AND lease_token = ?",
                            )
                            .bind(error)
                            .bind(now)
                            .bind(s.id)
                            .bind(&token)
                            .execute(&mut *tx)
                            .await?;
                            sqlx::query("DELETE FROM outbox WHERE id = ? AND lease_token = ?")
                                .bind(s.id)
                                .bind(&token)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn release(&self, tokens: &[uuid::Uuid]) -> Result<(), StoreError> {
                if tokens.is_empty() {
                    return Ok(());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE outbox SET lease_until = 0, lease_token = NULL WHERE lease_token IN (",
                );
                let mut list = qb.separated(", ");
                for token in tokens {
                    list.push_bind(token.to_string());
                }
                qb.push(")");
                let _turn = self.turn.take().await;
                qb.build().execute(&self.writer).await?;
                Ok(())
            }

            async fn outbox_depth(&self, now: Timestamp) -> Result<Vec<$crate::outbox::OutboxDepth>, StoreError> {
                let pending: Vec<(codec::Text, i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT destination, COUNT(*), COUNT(CASE WHEN lease_until > ? THEN 1 END), MIN(created_at) \
                     FROM outbox GROUP BY destination",
                )
                .bind(codec::to_micros(now))
                .fetch_all(&self.reader)
                .await?;
                let dead: Vec<(codec::Text, i64)> =
                    sqlx::query_as("SELECT destination, COUNT(*) FROM dead_letters GROUP BY destination")
                        .fetch_all(&self.reader)
                        .await?;
                let mut out: std::collections::BTreeMap<String, $crate::outbox::OutboxDepth> =
                    std::collections::BTreeMap::new();
                for (destination, count, leased, oldest) in pending {
                    let entry = out.entry(destination.0.clone()).or_default();
                    entry.destination = destination.0;
                    entry.pending = u64::try_from(count).unwrap_or_default();
                    entry.in_flight = u64::try_from(leased).unwrap_or_default();
                    entry.oldest = oldest.map(codec::from_micros).transpose()?;
                }
                for (destination, count) in dead {
                    let entry = out.entry(destination.0.clone()).or_default();
                    entry.destination = destination.0;
                    entry.dead = u64::try_from(count).unwrap_or_default();
                }
                Ok(out.into_values().collect())
            }

            async fn dead_letters(
                &self,
                destination: Option<&str>,
                after: i64,
                limit: u32,
            ) -> Result<Vec<$crate::outbox::DeadLetter>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, message_id, destination, attempts, last_error, created_at, dead_at \
                     FROM dead_letters WHERE id > ",
                );
                qb.push_bind(after);
                if let Some(destination) = destination {
                    qb.push(" AND destination = ").push_bind(destination.to_owned());
                }
                qb.push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(limit.clamp(1, 500)));
                let rows: Vec<DeadLetterTuple> = qb.build_query_as().fetch_all(&self.reader).await?;
                rows.into_iter().map(|r| dead_letter_from(r, None)).collect()
            }

            async fn dead_letter(&self, id: i64) -> Result<Option<$crate::outbox::DeadLetter>, StoreError> {
                let row: Option<(
                    i64,
                    codec::Text,
                    codec::Text,
                    i64,
                    codec::Text,
                    i64,
                    i64,
                    codec::Text,
                )> = sqlx::query_as(
                    "SELECT d.id, d.message_id, d.destination, d.attempts, d.last_error, d.created_at, \
                         d.dead_at, m.body FROM dead_letters d JOIN messages m ON m.id = d.message_id \
                         WHERE d.id = ?",
                )
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
                row.map(|r| {
                    let message = codec::decode_message(&r.7.0)?;
                    dead_letter_from((r.0, r.1, r.2, r.3, r.4, r.5, r.6), Some(message))
                })
                .transpose()
            }

            async fn replay_dead_letters(
                &self,
                filter: &$crate::outbox::DeadLetterFilter,
                now: Timestamp,
            ) -> Result<u64, StoreError> {
                let now = codec::to_micros(now);
                let _turn = self.turn.take().await;
                let mut tx = self.writer.begin_with($begin).await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO outbox (message_id, destination, attempts, due_at, lease_until, created_at) \
                     SELECT message_id, destination, 0, ",
                );
                qb.push_bind(now)
                    .push(", 0, ")
                    .push_bind(now)
                    .push(" FROM dead_letters");
                push_dead_filter(&mut qb, filter);
                let moved = qb.build().execute(&mut *tx).await?.rows_affected();
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM dead_letters");
                push_dead_filter(&mut qb, filter);
                qb.build().execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(moved)
            }

            async fn discard_dead_letters(&self, filter: &$crate::outbox::DeadLetterFilter) -> Result<u64, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM dead_letters");
                push_dead_filter(&mut qb, filter);
                let _turn = self.turn.take().await;
                Ok(qb.build().execute(&self.writer).await?.rows_affected())
            }
        }

        /// ` WHERE ...` for a dead-letter filter; an empty filter matches all.
        fn push_dead_filter(qb: &mut sqlx::QueryBuilder<'_, $db>, filter: &$crate::outbox::DeadLetterFilter) {
            qb.push(" WHERE 1 = 1");
            if let Some(destination) = &filter.destination {
                qb.push(" AND destination = ").push_bind(destination.clone());
            }
            if let Some(ids) = &filter.ids {
                if ids.is_empty() {
                    qb.push(" AND 1 = 0");
                } else {
                    qb.push(" AND id IN (");
                    let mut list = qb.separated(", ");
                    for id in ids {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                }
            }
        }
    };
}

pub(crate) use impl_outbox;

/// A dead-letter row as sqlx decodes it.
pub(crate) type DeadLetterTuple = (
    i64,
    crate::codec::Text,
    crate::codec::Text,
    i64,
    crate::codec::Text,
    i64,
    i64,
);

pub(crate) fn dead_letter_from(r: DeadLetterTuple, message: Option<Message>) -> Result<DeadLetter, StoreError> {
    Ok(DeadLetter {
        id: r.0,
        message_id: r.1.0,
        destination: r.2.0,
        attempts: u32::try_from(r.3).unwrap_or(u32::MAX),
        last_error: r.4.0,
        created_at: crate::codec::from_micros(r.5)?,
        dead_at: crate::codec::from_micros(r.6)?,
        message,
    })
}
