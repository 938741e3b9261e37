//! The per-destination fuse: a circuit breaker (failsafe's state machine and failure policies) plus what failsafe
//! lacks: a bounded number of half-open probes, the timeout inside the breaker, slow calls counted as failures,
//! a bulkhead with a bounded wait queue, operator overrides, and counters.
//!
//! Why the timeout lives here: failsafe only learns an outcome when the wrapped future completes, so a call
//! abandoned by an outer timeout would record nothing and a hanging backend would never trip the breaker.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use failsafe::failure_policy::{self, ConsecutiveFailures, FailurePolicy as _, OrElse, SuccessRateOverTimeWindow};
use failsafe::{Config as BreakerConfig, Instrument, StateMachine};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::{BreakerSettings, FuseSettings};
use crate::telemetry::metric;

use super::retry::OpenPeriods;

type Policy = OrElse<SuccessRateOverTimeWindow<OpenPeriods>, ConsecutiveFailures<OpenPeriods>>;

/// A breaker state, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls fail fast.
    Open,
    /// A bounded number of probe calls test whether the destination recovered.
    HalfOpen,
}

impl BreakerState {
    const ALL: [Self; 3] = [Self::Closed, Self::Open, Self::HalfOpen];

    /// The label value used in metrics and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

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
enum Outcome {
    Success,
    Failure,
    Timeout,
    Slow,
    RejectedOpen,
    RejectedFull,
}

const OUTCOMES: [&str; 6] = [
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
            metrics: OUTCOMES.map(|outcome| {
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

/// Tracks failsafe's transitions in an atomic the fuse can read without locking, and reports them.
#[derive(Clone)]
struct Watch {
    name: Arc<str>,
    state: Arc<AtomicU8>,
}

impl Watch {
    fn set(&self, to: BreakerState) {
        let from = BreakerState::from_u8(self.state.swap(to as u8, Ordering::AcqRel));
        if from != to {
            if to == BreakerState::Open {
                tracing::warn!(destination = %self.name, from = from.as_str(), "breaker opened");
            } else {
                tracing::info!(destination = %self.name, from = from.as_str(), to = to.as_str(), "breaker changed");
            }
            metrics::counter!(metric::BREAKER_TRANSITIONS, "destination" => self.name.to_string(), "to" => to.as_str())
                .increment(1);
        }
        for s in BreakerState::ALL {
            let value = if s == to { 1.0 } else { 0.0 };
            metrics::gauge!(metric::BREAKER_STATE, "destination" => self.name.to_string(), "state" => s.as_str())
                .set(value);
        }
    }
}

impl Instrument for Watch {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        self.set(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.set(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.set(BreakerState::Closed);
    }
}

/// One destination's fuse. Share it with `Arc`.
pub struct Fuse {
    name: Arc<str>,
    settings: FuseSettings,
    breaker: StateMachine<Policy, Watch>,
    state: Arc<AtomicU8>,
    forced: AtomicU8,
    probes: AtomicU32,
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

fn policy(b: &BreakerSettings) -> Policy {
    let open = || OpenPeriods::new(b.open_initial, b.open_max);
    failure_policy::success_rate_over_time_window(1.0 - b.failure_rate, b.min_calls, b.window, open())
        .or_else(failure_policy::consecutive_failures(b.consecutive_failures, open()))
}

impl Fuse {
    /// A closed fuse for the destination `name`.
    pub fn new(name: &str, settings: FuseSettings) -> Self {
        let name: Arc<str> = Arc::from(name);
        let state = Arc::new(AtomicU8::new(BreakerState::Closed as u8));
        let watch = Watch {
            name: name.clone(),
            state: state.clone(),
        };
        let breaker = BreakerConfig::new()
            .failure_policy(policy(&settings.breaker))
            .instrument(watch)
            .build();
        Self {
            counters: Counters::new(&name),
            slots: Semaphore::new(settings.concurrency as usize),
            name,
            settings,
            breaker,
            state,
            forced: AtomicU8::new(Override::Auto.as_u8()),
            probes: AtomicU32::new(0),
            queued: AtomicUsize::new(0),
        }
    }

    /// The destination's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's state as last reported (an open breaker turns half-open when the next call asks).
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
            self.breaker.reset();
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
        if forced == Override::ForcedOpen || (forced == Override::Auto && self.fast_reject()) {
            return Err(self.reject_open());
        }
        let _slot = self.slot().await?;
        let _probe = match forced {
            Override::ForcedClosed => None,
            _ => Some(self.admit()?),
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.settings.timeout, call).await;
        let elapsed = started.elapsed();
        self.counters.duration.record(elapsed.as_secs_f64());
        let record = forced != Override::ForcedClosed;
        match outcome {
            Ok(Ok(value)) if elapsed > self.settings.slow_call => {
                self.count(Outcome::Slow);
                if record {
                    self.breaker.on_error();
                }
                Ok(value)
            }
            Ok(Ok(value)) => {
                self.count(Outcome::Success);
                if record {
                    self.breaker.on_success();
                }
                Ok(value)
            }
            Ok(Err(e)) => {
                self.count(Outcome::Failure);
                if record {
                    if e.trips() {
                        self.breaker.on_error();
                    } else {
                        self.breaker.on_success();
                    }
                }
                Err(FuseError::Failed(e))
            }
            Err(_) => {
                self.count(Outcome::Timeout);
                if record {
                    self.breaker.on_error();
                }
                Err(FuseError::Timeout(self.settings.timeout))
            }
        }
    }

    /// `true` when the breaker is open and not yet due for a probe: answered without waiting for a slot.
    fn fast_reject(&self) -> bool {
        self.state() == BreakerState::Open && !self.breaker.is_call_permitted()
    }

    fn reject_open<E>(&self) -> FuseError<E> {
        self.count(Outcome::RejectedOpen);
        FuseError::Open
    }

    async fn slot<E>(&self) -> Result<SemaphorePermit<'_>, FuseError<E>> {
        if let Ok(slot) = self.slots.try_acquire() {
            return Ok(slot);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.settings.queue as usize {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.count(Outcome::RejectedFull);
            return Err(FuseError::Overloaded);
        }
        let slot = self.slots.acquire().await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        slot.map_err(|_| FuseError::Overloaded)
    }

    /// Asks the breaker; in half-open, also takes one of the bounded probe permits.
    fn admit<E>(&self) -> Result<Probe<'_>, FuseError<E>> {
        if !self.breaker.is_call_permitted() {
            return Err(self.reject_open());
        }
        if self.state() != BreakerState::HalfOpen {
            return Ok(Probe(None));
        }
        let limit = self.settings.breaker.half_open_probes;
        if self.probes.fetch_add(1, Ordering::AcqRel) >= limit {
            self.probes.fetch_sub(1, Ordering::AcqRel);
            return Err(self.reject_open());
        }
        Ok(Probe(Some(&self.probes)))
    }

    fn count(&self, outcome: Outcome) {
        self.counters.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.counters.metrics[outcome as usize].increment(1);
    }

    /// State and counters for operators.
    pub fn snapshot(&self) -> FuseSnapshot {
        let calls = OUTCOMES
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

/// A half-open probe permit, returned when the probe ends however it ends.
struct Probe<'a>(Option<&'a AtomicU32>);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(probes) = self.0 {
            probes.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
