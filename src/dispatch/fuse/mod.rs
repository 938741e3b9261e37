//! The per-destination fuse: the async side of the circuit breaker. It owns what needs a runtime or shared state:
//! the bulkhead (a semaphore with a bounded wait queue), the timeout inside the breaker, the slow-call threshold,
//! the operator override, the counters and metrics, and the logging of transitions. The rules (when to open,
//! for how long, how many probes) are [`policy`]'s, a pure state machine this wrapper keeps behind a mutex that
//! is never held across an await.
//!
//! Why the timeout lives here: the breaker only learns an outcome when the wrapped call ends, so a call abandoned
//! by an outer timeout would record nothing and a hanging backend would never trip the breaker.
//!
//! Time is tokio's ([`tokio::time::Instant`]), so tests run the whole fuse on a paused clock.

mod policy;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::FuseSettings;
use crate::telemetry::metric;

pub use policy::BreakerState;
use policy::{Admit, Outcome, Policy, Ticket, Transition};

use super::retry::random_jitter;

/// An operator's override of the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Override {
    /// The breaker decides.
    Auto,
    /// Every call is refused as if open (maintenance of the destination).
    ForcedOpen,
    /// Every call goes through, whatever the breaker thinks.
    ForcedClosed,
}

impl Override {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::ForcedOpen,
            2 => Self::ForcedClosed,
            _ => Self::Auto,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Auto => 0,
            Self::ForcedOpen => 1,
            Self::ForcedClosed => 2,
        }
    }
}

impl BreakerState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

/// Why the fuse did not return the call's own result.
#[derive(Debug, thiserror::Error)]
pub enum FuseError<E> {
    /// The breaker is open (or forced open, or its probes are taken): not called.
    #[error("circuit open")]
    Open,
    /// Every slot and the wait queue are taken: not called.
    #[error("destination overloaded: concurrency and queue full")]
    Overloaded,
    /// The call took longer than the timeout and was abandoned; counted as a failure.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The call itself failed.
    #[error(transparent)]
    Failed(E),
}

/// Whether an error says the destination is unhealthy (and so counts toward opening the breaker). A refusal of
/// our request (say, HTTP 400) comes from a healthy destination and does not.
pub trait Trips {
    /// `true` if this failure should count against the destination's health.
    fn trips(&self) -> bool;
}

/// Call outcomes, as counted for operators.
#[derive(Debug, Clone, Copy)]
enum Tally {
    Success,
    Failure,
    Timeout,
    Slow,
    RejectedOpen,
    RejectedFull,
}

const TALLIES: [&str; 6] = [
    "success",
    "failure",
    "timeout",
    "slow",
    "rejected_open",
    "rejected_full",
];

/// Counts per outcome, and the metric handles registered once (a labelled lookup per call would cost more than
/// the rest of the fuse).
struct Counters {
    counts: [AtomicU64; 6],
    metrics: [metrics::Counter; 6],
    duration: metrics::Histogram,
}

impl Counters {
    fn new(name: &str) -> Self {
        Self {
            counts: Default::default(),
            metrics: TALLIES.map(|outcome| {
                metrics::counter!(metric::DESTINATION_CALLS, "destination" => name.to_owned(), "outcome" => outcome)
            }),
            duration: metrics::histogram!(metric::DESTINATION_CALL_SECONDS, "destination" => name.to_owned()),
        }
    }
}

/// A snapshot of a fuse for the admin API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FuseSnapshot {
    /// Breaker state.
    pub state: BreakerState,
    /// Operator override.
    pub r#override: Override,
    /// Calls running now.
    pub in_flight: usize,
    /// Calls waiting for a slot.
    pub queued: usize,
    /// Calls by outcome since start.
    pub calls: std::collections::BTreeMap<&'static str, u64>,
}

/// One destination's fuse. Share it with `Arc`.
pub struct Fuse {
    name: Arc<str>,
    settings: FuseSettings,
    policy: Mutex<Policy>,
    /// The policy's state, mirrored under its lock so that readers (the worker, the admin API, the fast path)
    /// need not take it.
    state: AtomicU8,
    forced: AtomicU8,
    slots: Semaphore,
    queued: AtomicUsize,
    counters: Counters,
}

impl std::fmt::Debug for Fuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fuse")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish()
    }
}

// === impl Fuse ===

impl Fuse {
    /// A closed fuse for the destination `name`.
    pub fn new(name: &str, settings: FuseSettings) -> Self {
        let fuse = Self {
            counters: Counters::new(name),
            slots: Semaphore::new(settings.concurrency as usize),
            name: Arc::from(name),
            policy: Mutex::new(Policy::new(&settings.breaker, random_jitter)),
            settings,
            state: AtomicU8::new(BreakerState::Closed.as_u8()),
            forced: AtomicU8::new(Override::Auto.as_u8()),
            queued: AtomicUsize::new(0),
        };
        fuse.publish_gauges(BreakerState::Closed);
        fuse
    }

    /// The destination's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's state as last decided (an open breaker turns half-open when the next call asks).
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The operator override.
    pub fn override_state(&self) -> Override {
        Override::from_u8(self.forced.load(Ordering::Acquire))
    }

    /// Sets the operator override. Returning to `Auto` (or forcing closed) also resets the breaker to closed.
    pub fn set_override(&self, to: Override) {
        self.forced.store(to.as_u8(), Ordering::Release);
        tracing::warn!(destination = %self.name, r#override = ?to, "breaker override set by operator");
        if to != Override::ForcedOpen {
            let transition = self.with_policy(Policy::reset);
            self.report(transition);
        }
    }

    /// How many more calls a caller that already has `busy` calls in flight through this fuse could start now
    /// without waiting: free slots, or the probe allowance while not closed. (`busy` covers calls spawned but not
    /// yet holding a slot.)
    pub fn room(&self, busy: usize) -> usize {
        let free = self
            .slots
            .available_permits()
            .min((self.settings.concurrency as usize).saturating_sub(busy));
        match (self.override_state(), self.state()) {
            (Override::ForcedOpen, _) => 0,
            (Override::ForcedClosed, _) | (Override::Auto, BreakerState::Closed) => free,
            (Override::Auto, BreakerState::Open | BreakerState::HalfOpen) => {
                free.min(self.settings.breaker.half_open_probes as usize)
            }
        }
    }

    /// Runs `call` through the fuse: refused at once if open or full, abandoned (and counted a failure) after
    /// the timeout, counted a failure if slower than the slow-call threshold even when it succeeds.
    pub async fn call<T, E: Trips>(&self, call: impl Future<Output = Result<T, E>>) -> Result<T, FuseError<E>> {
        let forced = self.override_state();
        if forced == Override::ForcedOpen {
            return Err(self.reject_open());
        }
        let judged = forced == Override::Auto;
        // While not closed the breaker is asked before queueing, so an open one answers without taking a slot;
        // while closed it is asked after, so a call that waited for its slot is refused if the breaker opened.
        let early = if judged && self.state() != BreakerState::Closed {
            Some(self.admit(Instant::now())?)
        } else {
            None
        };
        let _slot = self.slot().await?;
        let started = Instant::now();
        let pass = match early {
            Some(pass) => pass,
            None if judged => self.admit(started)?,
            None => Pass::unjudged(self),
        };
        let outcome = tokio::time::timeout(self.settings.timeout, call).await;
        let finished = Instant::now();
        let elapsed = finished - started;
        self.counters.duration.record(elapsed.as_secs_f64());
        let (tally, verdict, result) = match outcome {
            Ok(Ok(value)) if elapsed > self.settings.slow_call => (Tally::Slow, Outcome::Failure, Ok(value)),
            Ok(Ok(value)) => (Tally::Success, Outcome::Success, Ok(value)),
            Ok(Err(e)) => {
                let verdict = if e.trips() { Outcome::Failure } else { Outcome::Success };
                (Tally::Failure, verdict, Err(FuseError::Failed(e)))
            }
            Err(_) => (
                Tally::Timeout,
                Outcome::Failure,
                Err(FuseError::Timeout(self.settings.timeout)),
            ),
        };
        self.count(tally);
        pass.finish(finished, verdict);
        result
    }

    fn reject_open<E>(&self) -> FuseError<E> {
        self.count(Tally::RejectedOpen);
        FuseError::Open
    }

    async fn slot<E>(&self) -> Result<SemaphorePermit<'_>, FuseError<E>> {
        if let Ok(slot) = self.slots.try_acquire() {
            return Ok(slot);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.settings.queue as usize {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.count(Tally::RejectedFull);
            return Err(FuseError::Overloaded);
        }
        let slot = self.slots.acquire().await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        slot.map_err(|_| FuseError::Overloaded)
    }

    /// Asks the breaker for a call or a probe at `now`.
    fn admit<E>(&self, now: Instant) -> Result<Pass<'_>, FuseError<E>> {
        let (admit, transition) = self.with_policy(|p| p.admit(now));
        self.report(transition);
        match admit {
            Admit::Call(ticket) | Admit::Probe(ticket) => Ok(Pass {
                fuse: self,
                ticket: Some(ticket),
            }),
            Admit::Reject { .. } => Err(self.reject_open()),
        }
    }

    /// Runs `f` on the policy and mirrors its state, both under the lock, so the mirror never runs backwards.
    fn with_policy<R>(&self, f: impl FnOnce(&mut Policy) -> R) -> R {
        let mut policy = self.policy.lock().unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut policy);
        self.state.store(policy.state().as_u8(), Ordering::Release);
        result
    }

    fn record(&self, now: Instant, ticket: Ticket, outcome: Outcome) {
        let transition = self.with_policy(|p| p.on_outcome(now, ticket, outcome));
        self.report(transition);
    }

    /// Logs a transition and publishes it as metrics (outside the policy's lock).
    fn report(&self, transition: Option<Transition>) {
        let Some(Transition { from, to }) = transition else {
            return;
        };
        if to == BreakerState::Open {
            tracing::warn!(destination = %self.name, from = from.as_str(), "breaker opened");
        } else {
            tracing::info!(destination = %self.name, from = from.as_str(), to = to.as_str(), "breaker changed");
        }
        metrics::counter!(metric::BREAKER_TRANSITIONS, "destination" => self.name.to_string(), "to" => to.as_str())
            .increment(1);
        self.publish_gauges(to);
    }

    fn publish_gauges(&self, current: BreakerState) {
        for s in BreakerState::ALL {
            let value = if s == current { 1.0 } else { 0.0 };
            metrics::gauge!(metric::BREAKER_STATE, "destination" => self.name.to_string(), "state" => s.as_str())
                .set(value);
        }
    }

    fn count(&self, tally: Tally) {
        self.counters.counts[tally as usize].fetch_add(1, Ordering::Relaxed);
        self.counters.metrics[tally as usize].increment(1);
    }

    /// State and counters for operators.
    pub fn snapshot(&self) -> FuseSnapshot {
        let calls = TALLIES
            .iter()
            .zip(&self.counters.counts)
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect();
        FuseSnapshot {
            state: self.state(),
            r#override: self.override_state(),
            in_flight: self.settings.concurrency as usize - self.slots.available_permits(),
            queued: self.queued.load(Ordering::Relaxed),
            calls,
        }
    }
}

/// A call let through by the breaker, until its outcome is recorded. Dropped unrecorded (the caller gave up on
/// the call, or the bulkhead refused it), a probe is reported `Excluded` so that its slot is freed.
struct Pass<'a> {
    fuse: &'a Fuse,
    ticket: Option<Ticket>,
}

impl<'a> Pass<'a> {
    /// A call the breaker does not judge (forced closed).
    fn unjudged(fuse: &'a Fuse) -> Self {
        Self { fuse, ticket: None }
    }

    fn finish(mut self, now: Instant, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.fuse.record(now, ticket, outcome);
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        // A cancelled closed-state call says nothing and holds nothing: skip the lock.
        if let Some(ticket) = self.ticket.take().filter(|t| t.is_probe()) {
            self.fuse.record(Instant::now(), ticket, Outcome::Excluded);
        }
    }
}
