//! The message write queue both backends put their writers behind: a caller queues its [`Write`] and waits for
//! the answer, which the backend's writer sends only after the write's group committed (SQLite: `sqlite/writer.rs`;
//! MySQL: `mysql/writer.rs`).

use protofuse_model::{Envelope, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::codec;
use crate::error::StoreError;
use crate::store::{Inserted, Replied, Reply};

/// One queued message write and where its answer goes.
pub(crate) struct Write {
    pub(crate) envelope: Envelope,
    pub(crate) received_at: Timestamp,
    pub(crate) destinations: Vec<String>,
    /// The envelope's [`codec::fingerprint`], and its open-conversation key when it names no conversation:
    /// hashed by the caller before queueing, on whichever core runs it, so that the one writer (the serial part
    /// of every write) does not.
    pub(crate) fingerprint: String,
    pub(crate) open_key: Option<String>,
    /// Written with the message when it is new. Only SQLite's writer takes one: MySQL's batches have no
    /// statement for it, so its store writes the reply as a write of its own (`mysql/mod.rs`).
    pub(crate) reply: Option<QueuedReply>,
    pub(crate) done: oneshot::Sender<Result<Replied, StoreError>>,
}

/// A [`Reply`] and its fingerprint, hashed before queueing like the message's.
pub(crate) struct QueuedReply {
    pub(crate) reply: Reply,
    pub(crate) fingerprint: String,
}

impl Write {
    /// Sends the caller the answer to a write queued without a reply.
    pub(crate) fn answer(self, result: Result<Inserted, StoreError>) {
        debug_assert!(
            self.reply.is_none(),
            "a reply queued to a writer that does not write them"
        );
        // The caller may have given up (its request timed out); the write stands either way.
        let _ = self.done.send(result.map(|inserted| Replied {
            inserted,
            reply: Ok(None),
        }));
    }
}

/// Queues a write on `writes` and waits for its answer. Refused at once when the queue is full: a caller
/// waiting for room would hold its request (and its memory) for as long as the overload lasts, and its client
/// would time out anyway.
pub(crate) async fn submit(
    writes: &mpsc::Sender<Write>,
    envelope: Envelope,
    received_at: Timestamp,
    destinations: Vec<String>,
    reply: Option<Reply>,
) -> Result<Replied, StoreError> {
    let (done, result) = oneshot::channel();
    let fingerprint = codec::envelope_fingerprint(&envelope);
    let open_key = codec::envelope_open_key(&envelope);
    let reply = reply.map(|reply| QueuedReply {
        fingerprint: codec::envelope_fingerprint(reply.envelope()),
        reply,
    });
    writes
        .try_send(Write {
            envelope,
            received_at,
            destinations,
            fingerprint,
            open_key,
            reply,
            done,
        })
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => StoreError::WriterGone,
        })?;
    result.await.map_err(|_| StoreError::WriterGone)?
}
