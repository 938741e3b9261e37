//! One destination's worker: claims due deliveries from the outbox (never more than its fuse can start), runs
//! each through the fuse, and settles the outcomes in batches. Settling is batched because on SQLite every
//! commit is an fsync: one transaction per batch keeps delivery throughput off the disk's commit rate.
//!
//! It sees only the [`Outbox`] (claim, settle, release), never the rest of the store, and never writes a row it
//! has not claimed. Its own timing (poll, probe spacing, drain) runs on tokio's clock, so tests drive it on a
//! paused one; outbox timestamps stay on the wall clock the store and other processes share.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::destination::{Delivery, DeliveryError, SharedDestination};
use super::fuse::{BreakerState, Fuse, FuseError};
use super::retry::{RetryBudget, backoff};
use crate::dispatch::RetrySettings;
use crate::telemetry::metric;

use protofuse_store::outbox::{Claimed, Outbox, Settle, Settlement};

/// Most deliveries claimed at once.
const CLAIM_BATCH: usize = 64;
/// Most settlements applied in one transaction.
const SETTLE_BATCH: usize = 256;

/// A destination with its fuse, retry policy and wake-up signal.
pub(super) struct Lane {
    /// The destination's name.
    pub(super) name: String,
    /// Delivers. Swapped by a configuration reload that keeps the lane (its settings unchanged) but rebuilt
    /// what it delivers through (an adapter file, a WeChat client); a delivery keeps the one it started with.
    pub(super) destination: arc_swap::ArcSwap<SharedDestination>,
    /// Guards it.
    pub(super) fuse: Arc<Fuse>,
    /// Retry schedule and budget settings.
    pub(super) retry: RetrySettings,
    /// Retries as a share of traffic.
    pub(super) budget: RetryBudget,
    /// Notified when a message for this destination was stored.
    pub(super) wake: Notify,
}

/// How a worker runs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// Idle wait between looks at the outbox.
    pub poll: Duration,
    /// How long a claim is held before others may take the row (a crashed worker's rows come back after it).
    pub lease: Duration,
    /// Time allowed for in-flight deliveries at shutdown.
    pub drain: Duration,
}

/// Runs until `stop` turns true, then drains and returns.
pub(super) async fn run(lane: Arc<Lane>, outbox: Arc<dyn Outbox>, timing: Timing, mut stop: watch::Receiver<bool>) {
    let (settled, settlements) = mpsc::channel(SETTLE_BATCH * 4);
    let settler = tokio::spawn(settle_loop(outbox.clone(), settlements));
    let mut inflight: JoinSet<uuid::Uuid> = JoinSet::new();
    let mut open_claims: HashMap<uuid::Uuid, usize> = HashMap::new();
    let mut last_probe: Option<Instant> = None;
    while !*stop.borrow() {
        while let Some(done) = inflight.try_join_next() {
            finish(&mut open_claims, &done);
        }
        let limit = claim_limit(&lane.fuse, inflight.len(), &mut last_probe, timing.poll);
        let claimed = claim(&lane, outbox.as_ref(), limit, timing.lease).await;
        if claimed.is_empty() {
            tokio::select! {
                () = lane.wake.notified() => {}
                () = tokio::time::sleep(timing.poll) => {}
                Some(done) = inflight.join_next() => finish(&mut open_claims, &done),
                _ = stop.changed() => {}
            }
            continue;
        }
        for claim in claimed {
            *open_claims.entry(claim.token).or_default() += 1;
            inflight.spawn(deliver_one(lane.clone(), claim, settled.clone(), timing.poll));
        }
    }
    // One last look: what was queued while shutdown began (a late WeChat answer stored as ingress closed) gets
    // its chance within the drain window instead of waiting for the next start. Only what the fuse has room
    // for now, and nothing while the breaker is open.
    if lane.fuse.state() != BreakerState::Open {
        let limit = lane.fuse.room(inflight.len()).min(CLAIM_BATCH);
        for claim in claim(&lane, outbox.as_ref(), limit, timing.lease).await {
            *open_claims.entry(claim.token).or_default() += 1;
            inflight.spawn(deliver_one(lane.clone(), claim, settled.clone(), timing.poll));
        }
    }
    drain(&lane.name, &mut inflight, &mut open_claims, timing.drain).await;
    drop(settled);
    let _ = settler.await;
    let unfinished: Vec<_> = open_claims.into_keys().collect();
    if let Err(e) = outbox.release(&unfinished).await {
        tracing::warn!(destination = %lane.name, error = %e, "releasing unfinished deliveries failed; their leases will expire");
    }
}

/// Claims up to `limit` due deliveries of the lane's destination; a failed claim is logged and claims nothing.
async fn claim(lane: &Lane, outbox: &dyn Outbox, limit: usize, lease: Duration) -> Vec<Claimed> {
    if limit == 0 {
        return Vec::new();
    }
    let now = Utc::now();
    match outbox.claim(&lane.name, now, now + lease, limit as u32).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!(destination = %lane.name, error = %e, "claiming deliveries failed");
            Vec::new()
        }
    }
}

/// How many deliveries to claim now: what the fuse can start; while the breaker is open, one probe per poll
/// interval (the breaker decides whether it runs), so an open destination does not churn through its queue.
fn claim_limit(fuse: &Fuse, busy: usize, last_probe: &mut Option<Instant>, poll: Duration) -> usize {
    let room = fuse.room(busy).min(CLAIM_BATCH);
    if fuse.state() != BreakerState::Open || room == 0 {
        return room;
    }
    if last_probe.is_some_and(|t| t.elapsed() < poll) {
        return 0;
    }
    *last_probe = Some(Instant::now());
    1
}

fn finish(open_claims: &mut HashMap<uuid::Uuid, usize>, done: &Result<uuid::Uuid, tokio::task::JoinError>) {
    let Ok(token) = done else { return };
    if let Some(n) = open_claims.get_mut(token) {
        *n -= 1;
        if *n == 0 {
            open_claims.remove(token);
        }
    }
}

async fn drain(
    name: &str,
    inflight: &mut JoinSet<uuid::Uuid>,
    open_claims: &mut HashMap<uuid::Uuid, usize>,
    deadline: Duration,
) {
    let all = async {
        while let Some(done) = inflight.join_next().await {
            finish(open_claims, &done);
        }
    };
    if tokio::time::timeout(deadline, all).await.is_err() {
        tracing::warn!(
            destination = name,
            left = inflight.len(),
            "drain deadline passed; unfinished deliveries stay in the outbox"
        );
        inflight.abort_all();
        while inflight.join_next().await.is_some() {}
    }
}

/// Delivers one claimed row and sends its settlement; returns the claim token for bookkeeping.
async fn deliver_one(lane: Arc<Lane>, claim: Claimed, settled: mpsc::Sender<Settle>, poll: Duration) -> uuid::Uuid {
    let outcome = attempt(&lane, &claim, poll).await;
    let label = match &outcome {
        Settlement::Delivered => "delivered",
        Settlement::Retry { .. } => "retry",
        Settlement::Defer { .. } => "deferred",
        Settlement::Dead { error } => {
            tracing::warn!(destination = %lane.name, message = %claim.message.id, error, "delivery dead-lettered");
            "dead"
        }
    };
    metrics::counter!(metric::DELIVERIES, "destination" => lane.name.clone(), "outcome" => label).increment(1);
    let _ = settled
        .send(Settle {
            id: claim.id,
            token: claim.token,
            outcome,
        })
        .await;
    claim.token
}

async fn attempt(lane: &Lane, claim: &Claimed, poll: Duration) -> Settlement {
    let later = |delay: Duration| Settlement::Defer {
        due_at: Utc::now() + delay,
    };
    if claim.attempts == 0 {
        lane.budget.deposit();
    } else if !lane.budget.try_retry() {
        return later(poll);
    }
    let attempt = claim.attempts + 1;
    let delivery = Delivery {
        message: &claim.message,
        attempt,
    };
    let error = match lane.fuse.call(lane.destination.load_full().deliver(delivery)).await {
        Ok(()) => return Settlement::Delivered,
        Err(FuseError::Open | FuseError::Overloaded) => return later(poll),
        Err(FuseError::Failed(DeliveryError::Permanent(e))) => return Settlement::Dead { error: e },
        Err(FuseError::Failed(DeliveryError::Transient(e))) => e,
        Err(e @ FuseError::Timeout(_)) => e.to_string(),
    };
    if attempt >= lane.retry.max_attempts {
        Settlement::Dead { error }
    } else {
        Settlement::Retry {
            due_at: Utc::now() + backoff(&lane.retry, attempt),
            error,
        }
    }
}

/// Applies settlements in batches. A batch that cannot be written is retried a few times; if the store stays
/// down, the rows' leases expire and they are delivered again (at least once, deduped by the receiver).
async fn settle_loop(outbox: Arc<dyn Outbox>, mut settlements: mpsc::Receiver<Settle>) {
    let mut batch = Vec::with_capacity(SETTLE_BATCH);
    while settlements.recv_many(&mut batch, SETTLE_BATCH).await > 0 {
        for wait in [0, 100, 1000, 5000] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            match outbox.settle(&batch, Utc::now()).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(error = %e, settlements = batch.len(), "settling deliveries failed"),
            }
        }
        batch.clear();
    }
}
