//! The breaker's policy: a pure state machine that decides whether a call may run and what its outcome does to
//! the breaker. It owns the breaker state, the run of consecutive failures, the failure-rate window, the schedule
//! of open periods and the half-open probe slots. It never reads a clock (every method that needs the time takes
//! `now`), never sleeps, never locks, never logs and never counts metrics: the async wrapper in [`super`] does all
//! of that, which is what lets these rules be tested step by step on tokio's paused clock.
//!
//! Why not failsafe (the fuse was built on it before): failsafe's state machine and failure policies read their
//! own process clock (`failsafe::clock`, a `std::time::Instant`) that neither tokio's paused clock nor a test can
//! drive, so open periods and windows could only be tested by waiting in real time; and it lets every call through
//! while half-open, so the fuse had to bolt a probe counter on beside it, where the two could disagree about which
//! outcome belonged to which probe.
//!
//! Every admitted call carries a [`Ticket`] stamped with the breaker's epoch, which moves on every transition. An
//! outcome with an older epoch is ignored: a call admitted while closed that ends after the breaker opened says
//! nothing about the probes, and a probe of an earlier half-open spell must not free a slot of the current one.

use std::time::Duration;

use tokio::time::Instant;

use crate::dispatch::BreakerSettings;
use crate::dispatch::retry::{Jitter, OpenPeriods};

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
    pub(super) const ALL: [Self; 3] = [Self::Closed, Self::Open, Self::HalfOpen];

    /// The label value used in metrics and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// What the breaker lets a caller do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Closed: make the call and report its outcome with the ticket.
    Call(Ticket),
    /// Half-open: make the call as one of the bounded probes and report its outcome with the ticket, `Excluded`
    /// if it never finished, so that its probe slot is freed.
    Probe(Ticket),
    /// Do not call: open for `retry_after` more, or (zero) every probe slot is taken and one may free any moment.
    Reject {
        /// How long until the breaker lets a probe through, as far as it knows now.
        retry_after: Duration,
    },
}

/// Proof of admission, handed back with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    epoch: u64,
    probe: bool,
}

impl Ticket {
    /// `true` for a half-open probe, whose slot must be given back however the call ends.
    pub(super) fn is_probe(self) -> bool {
        self.probe
    }
}

/// How an admitted call ended, as the breaker counts it. The caller classifies: timeouts and slow successes are
/// failures, refusals of the request by a healthy destination are successes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The destination is healthy.
    Success,
    /// The destination is unhealthy.
    Failure,
    /// Says nothing about the destination (the call was cancelled before it ended); only frees a probe slot.
    Excluded,
}

/// A change of state, for the wrapper to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Transition {
    pub(super) from: BreakerState,
    pub(super) to: BreakerState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probes: u32 },
}

/// One destination's breaker rules and state.
#[derive(Debug)]
pub(super) struct Policy {
    consecutive_limit: u32,
    failure_rate: f64,
    min_calls: u32,
    probe_limit: u32,
    state: State,
    epoch: u64,
    consecutive: u32,
    window: Window,
    periods: OpenPeriods,
}

// === impl Policy ===

impl Policy {
    /// A closed breaker following `settings`; `jitter` draws the random part of each open period.
    pub(super) fn new(settings: &BreakerSettings, jitter: Jitter) -> Self {
        Self {
            consecutive_limit: settings.consecutive_failures,
            failure_rate: settings.failure_rate,
            min_calls: settings.min_calls,
            probe_limit: settings.half_open_probes,
            state: State::Closed,
            epoch: 0,
            consecutive: 0,
            window: Window::new(settings.window),
            periods: OpenPeriods::new(settings.open_initial, settings.open_max, jitter),
        }
    }

    /// The state as last decided: an open breaker whose period ended stays open until the next `admit`.
    pub(super) fn state(&self) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make a call at `now`. Once the open period is over, the first caller turns the breaker half-open
    /// and becomes a probe; at most `half_open_probes` probes run at once.
    pub(super) fn admit(&mut self, now: Instant) -> (Admit, Option<Transition>) {
        match self.state {
            State::Closed => (Admit::Call(self.ticket(false)), None),
            State::Open { until } if now < until => (
                Admit::Reject {
                    retry_after: until - now,
                },
                None,
            ),
            State::Open { .. } => {
                let transition = self.enter(State::HalfOpen { probes: 1 });
                (Admit::Probe(self.ticket(true)), transition)
            }
            State::HalfOpen { probes } if probes < self.probe_limit => {
                self.state = State::HalfOpen { probes: probes + 1 };
                (Admit::Probe(self.ticket(true)), None)
            }
            State::HalfOpen { .. } => (
                Admit::Reject {
                    retry_after: Duration::ZERO,
                },
                None,
            ),
        }
    }

    /// Records how the call admitted with `ticket` ended at `now`. Closed: a failure opens the breaker after
    /// `consecutive_failures` in a row, or once `failure_rate` of at least `min_calls` calls in the window failed.
    /// Half-open: a probe's success closes the breaker, its failure opens it again for a longer period.
    pub(super) fn on_outcome(&mut self, now: Instant, ticket: Ticket, outcome: Outcome) -> Option<Transition> {
        if ticket.epoch != self.epoch {
            return None;
        }
        match (ticket.probe, outcome) {
            (true, Outcome::Excluded) => {
                if let State::HalfOpen { probes } = &mut self.state {
                    *probes = probes.saturating_sub(1);
                }
                None
            }
            (true, Outcome::Success) => self.close(),
            (true, Outcome::Failure) => self.open(now),
            (false, Outcome::Excluded) => None,
            (false, Outcome::Success) => {
                self.consecutive = 0;
                self.window.record(now, false);
                None
            }
            (false, Outcome::Failure) => {
                self.consecutive = self.consecutive.saturating_add(1);
                self.window.record(now, true);
                let (calls, failures) = self.window.totals();
                let rate_tripped =
                    calls >= self.min_calls && f64::from(failures) >= self.failure_rate * f64::from(calls);
                if self.consecutive >= self.consecutive_limit || rate_tripped {
                    self.open(now)
                } else {
                    None
                }
            }
        }
    }

    /// The operator's reset: closed, with counts, window and open periods started afresh. A closed breaker is left
    /// as it is.
    pub(super) fn reset(&mut self) -> Option<Transition> {
        match self.state {
            State::Closed => None,
            State::Open { .. } | State::HalfOpen { .. } => self.close(),
        }
    }

    fn ticket(&self, probe: bool) -> Ticket {
        Ticket {
            epoch: self.epoch,
            probe,
        }
    }

    fn open(&mut self, now: Instant) -> Option<Transition> {
        let until = now + self.periods.next_period();
        self.enter(State::Open { until })
    }

    fn close(&mut self) -> Option<Transition> {
        self.consecutive = 0;
        self.window.clear();
        self.periods.reset();
        self.enter(State::Closed)
    }

    fn enter(&mut self, to: State) -> Option<Transition> {
        let from = self.state();
        self.state = to;
        self.epoch = self.epoch.wrapping_add(1);
        Some(Transition { from, to: self.state() })
    }
}

/// Buckets the failure-rate window is cut into: the window slides a tenth at a time.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u32,
    failures: u32,
}

/// Calls and failures over the last `window`, as a ring of time buckets; the newest bucket is `head`, which
/// covers the time up to `head_end`.
#[derive(Debug)]
struct Window {
    width: Duration,
    buckets: [Bucket; BUCKETS],
    head: usize,
    head_end: Option<Instant>,
}

// === impl Window ===

impl Window {
    fn new(span: Duration) -> Self {
        Self {
            // Never zero, so that rotating always moves forward.
            width: (span / BUCKETS as u32).max(Duration::from_millis(1)),
            buckets: [Bucket::default(); BUCKETS],
            head: 0,
            head_end: None,
        }
    }

    fn record(&mut self, now: Instant, failed: bool) {
        self.rotate(now);
        let bucket = &mut self.buckets[self.head];
        bucket.calls = bucket.calls.saturating_add(1);
        bucket.failures = bucket.failures.saturating_add(u32::from(failed));
    }

    /// Moves the head to the bucket holding `now`, emptying the buckets passed on the way.
    fn rotate(&mut self, now: Instant) {
        let end = match self.head_end {
            Some(end) if now < end => return,
            Some(end) => end,
            None => {
                self.head_end = Some(now + self.width);
                return;
            }
        };
        let width = self.width.as_nanos();
        let passed = (now - end).as_nanos() / width + 1;
        for _ in 0..passed.min(BUCKETS as u128) {
            self.head = (self.head + 1) % BUCKETS;
            self.buckets[self.head] = Bucket::default();
        }
        let into_head = (now - end).as_nanos() % width;
        self.head_end = Some(now + self.width - Duration::from_nanos(u64::try_from(into_head).unwrap_or(0)));
    }

    fn totals(&self) -> (u32, u32) {
        self.buckets.iter().fold((0, 0), |(calls, failures), b| {
            (calls.saturating_add(b.calls), failures.saturating_add(b.failures))
        })
    }

    fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
        self.head_end = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::{Closed, HalfOpen, Open};
    use Outcome::{Excluded as X, Failure as F, Success as S};
    use Step::{Admit as A, Call, Finish, Reset, Wait};

    /// One step of a scenario; `Admit` holds its ticket, numbered in admission order, for a later `Finish`.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Wait(u64),
        Call(Outcome),
        Admit(Expect),
        Finish(usize, Outcome),
        Reset,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Expect {
        Call,
        Probe,
        Reject(u64),
    }

    struct Case {
        name: &'static str,
        settings: fn(&mut BreakerSettings),
        steps: &'static [(Step, BreakerState)],
    }

    /// Every policy on: 3 failures in a row, or half of at least 4 calls in 10 s; open 1 s doubling to 4 s; 2 probes.
    fn base() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            min_calls: 4,
            open_initial: Duration::from_secs(1),
            open_max: Duration::from_secs(4),
            half_open_probes: 2,
        }
    }

    fn consecutive_only(s: &mut BreakerSettings) {
        s.min_calls = u32::MAX;
    }

    fn rate_only(s: &mut BreakerSettings) {
        s.consecutive_failures = u32::MAX;
    }

    fn trips_at_once(s: &mut BreakerSettings) {
        s.consecutive_failures = 1;
    }

    /// No jitter drawn: every open period is its full doubling, so the table can name it.
    fn no_jitter(half: Duration) -> Duration {
        half
    }

    const CASES: &[Case] = &[
        Case {
            name: "consecutive failures open the breaker",
            settings: consecutive_only,
            steps: &[
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(F), Open),
                (A(Expect::Reject(1000)), Open),
            ],
        },
        Case {
            name: "a success breaks the run; an excluded call does not",
            settings: consecutive_only,
            steps: &[
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(S), Closed),
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(X), Closed),
                (Call(F), Open),
            ],
        },
        Case {
            name: "the failure rate opens once min_calls were made",
            settings: rate_only,
            steps: &[
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(S), Closed),
                (Call(F), Open),
            ],
        },
        Case {
            name: "the rate is reached, not only exceeded",
            settings: rate_only,
            steps: &[(Call(S), Closed), (Call(F), Closed), (Call(S), Closed), (Call(F), Open)],
        },
        Case {
            name: "failures within the window still count",
            settings: rate_only,
            steps: &[
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(F), Closed),
                (Wait(9_500), Closed),
                (Call(F), Open),
            ],
        },
        Case {
            name: "failures age out of the window",
            settings: rate_only,
            steps: &[
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(F), Closed),
                (Wait(10_000), Closed),
                (Call(S), Closed),
                (Call(S), Closed),
                (Call(S), Closed),
                (Call(F), Closed),
            ],
        },
        Case {
            name: "open for the open period, then the next admit turns half-open",
            settings: trips_at_once,
            steps: &[
                (Call(F), Open),
                (A(Expect::Reject(1000)), Open),
                (Wait(999), Open),
                (A(Expect::Reject(1)), Open),
                (Wait(1), Open),
                (A(Expect::Probe), HalfOpen),
            ],
        },
        Case {
            name: "half-open admits exactly the configured probes; a cancelled probe frees its slot",
            settings: trips_at_once,
            steps: &[
                (Call(F), Open),
                (Wait(1000), Open),
                (A(Expect::Probe), HalfOpen),
                (A(Expect::Probe), HalfOpen),
                (A(Expect::Reject(0)), HalfOpen),
                (Finish(0, X), HalfOpen),
                (A(Expect::Probe), HalfOpen),
                (A(Expect::Reject(0)), HalfOpen),
            ],
        },
        Case {
            name: "a probe's success closes; the other probe's late failure is ignored",
            settings: trips_at_once,
            steps: &[
                (Call(F), Open),
                (Wait(1000), Open),
                (A(Expect::Probe), HalfOpen),
                (A(Expect::Probe), HalfOpen),
                (Finish(0, S), Closed),
                (Finish(1, F), Closed),
                (A(Expect::Call), Closed),
            ],
        },
        Case {
            name: "a probe's failure re-opens for twice as long, up to open_max",
            settings: trips_at_once,
            steps: &[
                (Call(F), Open),
                (Wait(1000), Open),
                (A(Expect::Probe), HalfOpen),
                (Finish(0, F), Open),
                (A(Expect::Reject(2000)), Open),
                (Wait(2000), Open),
                (A(Expect::Probe), HalfOpen),
                (Finish(1, F), Open),
                (A(Expect::Reject(4000)), Open),
                (Wait(4000), Open),
                (A(Expect::Probe), HalfOpen),
                (Finish(2, F), Open),
                (A(Expect::Reject(4000)), Open),
            ],
        },
        Case {
            name: "closing starts the open periods afresh",
            settings: trips_at_once,
            steps: &[
                (Call(F), Open),
                (Wait(1000), Open),
                (A(Expect::Probe), HalfOpen),
                (Finish(0, F), Open),
                (Wait(2000), Open),
                (A(Expect::Probe), HalfOpen),
                (Finish(1, S), Closed),
                (Call(F), Open),
                (A(Expect::Reject(1000)), Open),
            ],
        },
        Case {
            name: "a call admitted before the breaker opened decides nothing",
            settings: consecutive_only,
            steps: &[
                (A(Expect::Call), Closed),
                (Call(F), Closed),
                (Call(F), Closed),
                (Call(F), Open),
                (Wait(1000), Open),
                (Finish(0, S), Open),
                (A(Expect::Probe), HalfOpen),
                (A(Expect::Probe), HalfOpen),
                (A(Expect::Reject(0)), HalfOpen),
            ],
        },
        Case {
            name: "a reset closes, clears the run and starts the open periods afresh",
            settings: trips_at_once,
            steps: &[
                (Call(F), Open),
                (Wait(1000), Open),
                (A(Expect::Probe), HalfOpen),
                (Finish(0, F), Open),
                (Reset, Closed),
                (Finish(0, X), Closed),
                (Call(S), Closed),
                (Call(F), Open),
                (A(Expect::Reject(1000)), Open),
            ],
        },
        Case {
            name: "a reset of a closed breaker keeps its run of failures",
            settings: consecutive_only,
            steps: &[(Call(F), Closed), (Call(F), Closed), (Reset, Closed), (Call(F), Open)],
        },
    ];

    /// Plays one step; returns the transition the policy reported.
    fn play(policy: &mut Policy, now: &mut Instant, held: &mut Vec<Ticket>, step: Step) -> Option<Transition> {
        match step {
            Wait(ms) => {
                *now += Duration::from_millis(ms);
                None
            }
            Call(outcome) => {
                let (Admit::Call(ticket), None) = policy.admit(*now) else {
                    panic!("a closed breaker admits a call");
                };
                policy.on_outcome(*now, ticket, outcome)
            }
            A(expect) => {
                let (admit, transition) = policy.admit(*now);
                let got = match admit {
                    Admit::Call(ticket) => {
                        held.push(ticket);
                        Expect::Call
                    }
                    Admit::Probe(ticket) => {
                        held.push(ticket);
                        Expect::Probe
                    }
                    Admit::Reject { retry_after } => Expect::Reject(u64::try_from(retry_after.as_millis()).unwrap()),
                };
                assert_eq!(got, expect);
                transition
            }
            Finish(n, outcome) => policy.on_outcome(*now, held[n], outcome),
            Reset => policy.reset(),
        }
    }

    #[test]
    fn scenarios() {
        for case in CASES {
            let mut settings = base();
            (case.settings)(&mut settings);
            let mut policy = Policy::new(&settings, no_jitter);
            let mut now = Instant::now();
            let mut held = Vec::new();
            for (i, &(step, expected)) in case.steps.iter().enumerate() {
                let before = policy.state();
                let transition = play(&mut policy, &mut now, &mut held, step);
                let after = policy.state();
                assert_eq!(after, expected, "{}: step {i} ({step:?})", case.name);
                let change = (before != after).then_some(Transition {
                    from: before,
                    to: after,
                });
                assert_eq!(
                    transition, change,
                    "{}: step {i} ({step:?}) reports its transition",
                    case.name
                );
            }
        }
    }

    #[test]
    fn the_window_slides_a_bucket_at_a_time() {
        let mut window = Window::new(Duration::from_secs(10));
        let t0 = Instant::now();
        window.record(t0, true);
        window.record(t0 + Duration::from_millis(999), true);
        window.record(t0 + Duration::from_millis(1000), false);
        assert_eq!(window.totals(), (3, 2));
        // The first bucket covered [t0, t0 + 1 s): it is dropped once the head has moved ten buckets on.
        window.record(t0 + Duration::from_millis(9_999), false);
        assert_eq!(window.totals(), (4, 2));
        window.record(t0 + Duration::from_millis(10_000), false);
        assert_eq!(window.totals(), (3, 0));
        window.record(t0 + Duration::from_secs(3600), true);
        assert_eq!(window.totals(), (1, 1));
    }
}
