//! [`WriteTurn`]: whose turn it is to write, when one process has more than one writer connection to a file.
//!
//! The SQLite backend writes messages on its own connection (`sqlite/writer.rs`) and everything else (status
//! changes, triage, the outbox) on a sqlx connection. SQLite serializes the two with its file lock, but a writer
//! that finds the lock taken only polls for it (`busy_timeout` sleeps and retries), so under a steady stream of
//! message groups a claim or settlement could lose every race until it timed out. Taking this FIFO turn first
//! makes them alternate in arrival order; the file lock is then only contended by other processes (the
//! importer). MySQL has row locks and needs no turn: there it is a no-op.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// A FIFO lock over the right to open a write transaction, shared by a store's writer connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteTurn(Option<Arc<Mutex<()>>>);

impl WriteTurn {
    /// A turn shared by every clone.
    pub(crate) fn shared() -> Self {
        Self(Some(Arc::new(Mutex::new(()))))
    }

    /// No turn: taking it never waits.
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// Waits for the turn (tokio's mutex queues waiters fairly) and holds it until the guard is dropped.
    pub(crate) async fn take(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.0 {
            Some(turn) => Some(Arc::clone(turn).lock_owned().await),
            None => None,
        }
    }

    /// [`WriteTurn::take`] for a thread outside the async runtime.
    pub(crate) fn take_blocking(&self) -> Option<OwnedMutexGuard<()>> {
        self.0.as_ref().map(|turn| Arc::clone(turn).blocking_lock_owned())
    }

    /// The turn if it is free now (`None` also when there is no turn).
    #[cfg(test)]
    pub(crate) fn try_take(&self) -> Option<OwnedMutexGuard<()>> {
        self.0.as_ref().and_then(|turn| Arc::clone(turn).try_lock_owned().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_are_served_in_arrival_order() {
        let turn = WriteTurn::shared();
        let held = turn.take().await;
        let (order, mut served) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for i in 0..3 {
            let (turn, order) = (turn.clone(), order.clone());
            let (queued, is_queued) = tokio::sync::oneshot::channel();
            waiters.push(tokio::spawn(async move {
                let wait = turn.take();
                tokio::pin!(wait);
                // Poll once so this waiter is queued before the next one is spawned.
                assert!(futures_poll_once(wait.as_mut()).await.is_none());
                queued.send(()).unwrap();
                let _guard = wait.await;
                order.send(i).unwrap();
            }));
            is_queued.await.unwrap();
        }
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        let got: Vec<i32> = (0..3).map(|_| served.try_recv().unwrap()).collect();
        assert_eq!(got, [0, 1, 2]);
    }

    #[tokio::test]
    async fn no_turn_never_waits() {
        let turn = WriteTurn::none();
        let (a, b) = (turn.take().await, turn.take().await);
        assert!(a.is_none() && b.is_none());
    }

    /// Polls `fut` once: `Some` if it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut fut: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
