//! The fuse as callers see it, on tokio's paused clock: timeouts and slow successes trip the breaker, half-open
//! lets exactly the configured probes through, the bulkhead queues then refuses, operators override. Futures are
//! polled by hand (`poll!`) to hold calls in flight at a known point; nothing waits on the wall clock.

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::poll;
use tokio::time::Instant;

use super::{BreakerState, Fuse, FuseError, Override, Trips};
use crate::dispatch::{BreakerSettings, FuseSettings};

#[derive(Debug)]
struct Boom {
    trips: bool,
}

impl Trips for Boom {
    fn trips(&self) -> bool {
        self.trips
    }
}

const TIMEOUT: Duration = Duration::from_secs(1);
const SLOW: Duration = Duration::from_millis(500);
/// The longest first open period (the jitter only shortens it).
const OPEN: Duration = Duration::from_secs(1);

/// Two failures in a row open the breaker (the rate policy stays out of the way); two probes; two slots and one
/// place in the queue.
fn settings() -> FuseSettings {
    FuseSettings {
        timeout: TIMEOUT,
        slow_call: SLOW,
        concurrency: 2,
        queue: 1,
        breaker: BreakerSettings {
            consecutive_failures: 2,
            min_calls: u32::MAX,
            open_initial: OPEN,
            open_max: Duration::from_secs(8),
            half_open_probes: 2,
            ..BreakerSettings::default()
        },
    }
}

fn ok() -> impl Future<Output = Result<(), Boom>> {
    std::future::ready(Ok(()))
}

fn fail() -> impl Future<Output = Result<(), Boom>> {
    std::future::ready(Err(Boom { trips: true }))
}

fn hang() -> impl Future<Output = Result<(), Boom>> {
    pending()
}

/// A call started and held in flight; dropping it cancels the call.
type Held<'a> = Pin<Box<dyn Future<Output = Result<(), FuseError<Boom>>> + 'a>>;

async fn hold<'a>(fuse: &'a Fuse, call: impl Future<Output = Result<(), Boom>> + 'a) -> Held<'a> {
    let mut held: Held<'a> = Box::pin(fuse.call(call));
    assert!(poll!(held.as_mut()).is_pending(), "the call is in flight");
    held
}

/// Trips the breaker and lets its first open period pass: the next call is a probe.
async fn due_for_probes(fuse: &Fuse) {
    for _ in 0..2 {
        assert!(matches!(fuse.call(fail()).await, Err(FuseError::Failed(_))));
    }
    assert_eq!(fuse.state(), BreakerState::Open);
    tokio::time::advance(OPEN).await;
}

fn calls(fuse: &Fuse, outcome: &str) -> u64 {
    fuse.snapshot().calls[outcome]
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_the_breaker_counts_as_a_failure_and_opens_it() {
    let fuse = Fuse::new("hangs", settings());
    for _ in 0..2 {
        let started = Instant::now();
        let result = fuse.call(hang()).await;
        assert!(
            matches!(result, Err(FuseError::Timeout(t)) if t == TIMEOUT),
            "{result:?}"
        );
        assert_eq!(started.elapsed(), TIMEOUT, "abandoned at the timeout, not later");
    }
    assert_eq!(fuse.state(), BreakerState::Open);
    let called = AtomicBool::new(false);
    let refused = fuse
        .call(async {
            called.store(true, Ordering::Relaxed);
            Ok::<_, Boom>(())
        })
        .await;
    assert!(matches!(refused, Err(FuseError::Open)));
    assert!(!called.load(Ordering::Relaxed), "an open breaker does not call");
    assert_eq!((calls(&fuse, "timeout"), calls(&fuse, "rejected_open")), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_slow_success_is_returned_but_counts_as_a_failure() {
    let fuse = Fuse::new("sluggish", settings());
    let slow = |by: Duration| async move {
        tokio::time::sleep(by).await;
        Ok::<_, Boom>(7)
    };
    assert_eq!(fuse.call(slow(SLOW)).await.unwrap(), 7, "at the threshold is not slow");
    assert_eq!(fuse.call(slow(SLOW + Duration::from_millis(1))).await.unwrap(), 7);
    assert_eq!(fuse.state(), BreakerState::Closed);
    assert_eq!(fuse.call(slow(SLOW * 3 / 2)).await.unwrap(), 7);
    assert_eq!(fuse.state(), BreakerState::Open, "two slow calls in a row");
    assert_eq!((calls(&fuse, "success"), calls(&fuse, "slow")), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_by_a_healthy_destination_does_not_trip() {
    let fuse = Fuse::new("strict", settings());
    for _ in 0..3 {
        let refused = fuse.call(std::future::ready(Err::<(), _>(Boom { trips: false }))).await;
        assert!(matches!(refused, Err(FuseError::Failed(Boom { trips: false }))));
    }
    assert_eq!(fuse.state(), BreakerState::Closed);
    assert_eq!(calls(&fuse, "failure"), 3);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_configured_probes_and_a_dropped_probe_frees_its_slot() {
    // Slots to spare, so that only the probe limit refuses.
    let fuse = Fuse::new(
        "recovering",
        FuseSettings {
            concurrency: 4,
            ..settings()
        },
    );
    due_for_probes(&fuse).await;
    assert_eq!(fuse.room(0), 2, "the probe allowance");
    let first = hold(&fuse, hang()).await;
    assert_eq!(fuse.state(), BreakerState::HalfOpen);
    let (answer, answered) = tokio::sync::oneshot::channel();
    let mut second = hold(&fuse, async { answered.await.unwrap() }).await;
    assert!(
        matches!(fuse.call(ok()).await, Err(FuseError::Open)),
        "a third probe is refused"
    );

    drop(first);
    assert_eq!(fuse.snapshot().in_flight, 1);
    fuse.call(ok()).await.unwrap();
    assert_eq!(fuse.state(), BreakerState::Closed, "the freed slot's probe succeeded");

    answer.send(Err(Boom { trips: true })).unwrap();
    assert!(matches!(second.as_mut().await, Err(FuseError::Failed(_))));
    assert_eq!(
        fuse.state(),
        BreakerState::Closed,
        "a probe ending after the breaker closed decides nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker() {
    let fuse = Fuse::new("still-down", settings());
    due_for_probes(&fuse).await;
    assert!(matches!(fuse.call(fail()).await, Err(FuseError::Failed(_))));
    assert_eq!(fuse.state(), BreakerState::Open);
    assert!(matches!(fuse.call(ok()).await, Err(FuseError::Open)));
}

#[tokio::test(start_paused = true)]
async fn the_bulkhead_queues_up_to_its_limit_then_refuses() {
    let fuse = Fuse::new("busy", settings());
    let first = hold(&fuse, hang()).await;
    let _second = hold(&fuse, hang()).await;
    let mut queued = hold(&fuse, ok()).await;
    let snapshot = fuse.snapshot();
    assert_eq!((snapshot.in_flight, snapshot.queued), (2, 1));
    assert_eq!(fuse.room(0), 0);
    assert!(matches!(fuse.call(ok()).await, Err(FuseError::Overloaded)));
    assert_eq!(calls(&fuse, "rejected_full"), 1);

    drop(first);
    queued.as_mut().await.unwrap();
    assert_eq!(fuse.snapshot().queued, 0);
}

#[tokio::test(start_paused = true)]
async fn a_probe_refused_by_the_bulkhead_frees_its_probe_slot() {
    let mut s = settings();
    s.queue = 0;
    s.concurrency = 1;
    let fuse = Fuse::new("narrow", s);
    due_for_probes(&fuse).await;
    let _probe = hold(&fuse, hang()).await;
    // Both probe slots would be taken if the refused calls kept theirs: the answer would turn into `Open`.
    for _ in 0..3 {
        assert!(matches!(fuse.call(ok()).await, Err(FuseError::Overloaded)));
    }
}

#[tokio::test(start_paused = true)]
async fn forced_open_refuses_everything_until_auto() {
    let fuse = Fuse::new("maintenance", settings());
    fuse.set_override(Override::ForcedOpen);
    assert_eq!(fuse.override_state(), Override::ForcedOpen);
    assert_eq!(fuse.room(0), 0);
    let called = AtomicBool::new(false);
    let refused = fuse
        .call(async {
            called.store(true, Ordering::Relaxed);
            Ok::<_, Boom>(())
        })
        .await;
    assert!(matches!(refused, Err(FuseError::Open)));
    assert!(!called.load(Ordering::Relaxed));
    assert_eq!(fuse.state(), BreakerState::Closed, "the breaker itself is left alone");
    fuse.set_override(Override::Auto);
    fuse.call(ok()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn forced_closed_lets_everything_through_and_records_nothing() {
    let fuse = Fuse::new("trusted", settings());
    due_for_probes(&fuse).await;
    fuse.set_override(Override::ForcedClosed);
    assert_eq!(fuse.state(), BreakerState::Closed, "forcing closed resets the breaker");
    assert_eq!(fuse.room(0), 2);
    for _ in 0..5 {
        assert!(matches!(fuse.call(fail()).await, Err(FuseError::Failed(_))));
    }
    assert_eq!(
        fuse.state(),
        BreakerState::Closed,
        "failures while forced are not recorded"
    );
    fuse.set_override(Override::Auto);
    assert!(matches!(fuse.call(fail()).await, Err(FuseError::Failed(_))));
    assert_eq!(fuse.state(), BreakerState::Closed, "the run starts afresh");
    assert!(matches!(fuse.call(fail()).await, Err(FuseError::Failed(_))));
    assert_eq!(fuse.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn returning_to_auto_resets_an_open_breaker() {
    let fuse = Fuse::new("fixed", settings());
    due_for_probes(&fuse).await;
    fuse.set_override(Override::Auto);
    assert_eq!(fuse.state(), BreakerState::Closed);
    fuse.call(ok()).await.unwrap();
}
