//! The claim/settle loop against an in-memory outbox and a scripted destination, on tokio's paused clock. Tests
//! wait for events (settlements, calls), never for the wall clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use protofuse_model::{Message, Timestamp};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Lane, Timing, run};
use crate::dispatch::destination::{Delivery, DeliveryError, Destination, SharedDestination};
use crate::dispatch::fuse::{BreakerState, Fuse};
use crate::dispatch::retry::RetryBudget;
use crate::dispatch::{FuseSettings, RetrySettings};
use protofuse_store::StoreError;
use protofuse_store::outbox::{Claimed, DeadLetter, DeadLetterFilter, Outbox, OutboxDepth, Settle, Settlement};

const POLL: Duration = Duration::from_millis(100);
const DRAIN: Duration = Duration::from_millis(200);
/// Far beyond anything a test waits for: a test that hangs fails here instead.
const PATIENCE: Duration = Duration::from_secs(3600);

fn message(n: usize) -> Message {
    serde_json::from_value(serde_json::json!({
        "id": uuid::Uuid::now_v7(),
        "conversation_id": uuid::Uuid::now_v7(),
        "channel": "web",
        "direction": "inbound",
        "sender": {"role": "customer", "external_id": "ann"},
        "content": {"type": "text", "text": format!("message {n}")},
        "received_at": Utc::now(),
        "source": {"protocol": "rest"},
        "idempotency_key": format!("key-{n}"),
    }))
    .unwrap()
}

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    attempts: u32,
    due_at: Timestamp,
    lease: Option<uuid::Uuid>,
    settled: Option<Settlement>,
    message: Message,
}

/// The outbox as a list of rows. Leases do not expire (no test outlives one).
struct FakeOutbox {
    rows: Mutex<Vec<Row>>,
    /// When (on tokio's clock) the worker claimed, and how many rows it asked for.
    claims: Mutex<Vec<(Instant, u32)>>,
    settled: watch::Sender<Vec<Settle>>,
    released: Mutex<Vec<uuid::Uuid>>,
}

impl FakeOutbox {
    /// `rows` due now, with as many failed attempts behind each as given.
    fn with(attempts: &[u32]) -> Arc<Self> {
        let rows = attempts
            .iter()
            .enumerate()
            .map(|(n, &attempts)| Row {
                id: i64::try_from(n).unwrap() + 1,
                attempts,
                due_at: Utc::now(),
                lease: None,
                settled: None,
                message: message(n),
            })
            .collect();
        Arc::new(Self {
            rows: Mutex::new(rows),
            claims: Mutex::default(),
            settled: watch::Sender::new(Vec::new()),
            released: Mutex::default(),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.rows.lock().unwrap().clone()
    }

    /// Waits until `n` settlements were applied; returns them all.
    async fn settled(&self, n: usize) -> Vec<Settle> {
        let mut settled = self.settled.subscribe();
        let all = tokio::time::timeout(PATIENCE, settled.wait_for(|s| s.len() >= n));
        all.await.expect("settlements").unwrap().clone()
    }
}

#[async_trait]
impl Outbox for FakeOutbox {
    async fn claim(
        &self,
        destination: &str,
        now: Timestamp,
        _lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.claims.lock().unwrap().push((Instant::now(), limit));
        let token = uuid::Uuid::now_v7();
        let mut rows = self.rows.lock().unwrap();
        let due = rows
            .iter_mut()
            .filter(|r| r.settled.is_none() && r.lease.is_none() && r.due_at <= now)
            .take(limit as usize);
        Ok(due
            .map(|r| {
                r.lease = Some(token);
                Claimed {
                    id: r.id,
                    token,
                    destination: destination.to_owned(),
                    attempts: r.attempts,
                    created_at: now,
                    message: r.message.clone(),
                }
            })
            .collect())
    }

    async fn settle(&self, settlements: &[Settle], _now: Timestamp) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap();
        for s in settlements {
            let Some(row) = rows.iter_mut().find(|r| r.id == s.id && r.lease == Some(s.token)) else {
                continue;
            };
            row.lease = None;
            match &s.outcome {
                Settlement::Retry { due_at, .. } => {
                    row.attempts += 1;
                    row.due_at = *due_at;
                }
                Settlement::Defer { due_at } => row.due_at = *due_at,
                Settlement::Delivered | Settlement::Dead { .. } => row.settled = Some(s.outcome.clone()),
            }
        }
        drop(rows);
        self.settled.send_modify(|all| all.extend_from_slice(settlements));
        Ok(())
    }

    async fn release(&self, tokens: &[uuid::Uuid]) -> Result<(), StoreError> {
        for row in self.rows.lock().unwrap().iter_mut() {
            if row.lease.is_some_and(|t| tokens.contains(&t)) {
                row.lease = None;
            }
        }
        self.released.lock().unwrap().extend_from_slice(tokens);
        Ok(())
    }

    // The worker never reads depths or dead letters.

    async fn outbox_depth(&self, _now: Timestamp) -> Result<Vec<OutboxDepth>, StoreError> {
        Ok(Vec::new())
    }

    async fn dead_letters(&self, _: Option<&str>, _: i64, _: u32) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(Vec::new())
    }

    async fn dead_letter(&self, _id: i64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(None)
    }

    async fn replay_dead_letters(&self, _: &DeadLetterFilter, _: Timestamp) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn discard_dead_letters(&self, _: &DeadLetterFilter) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accept,
    Transient,
    Permanent,
    Hang,
}

/// A destination that answers every delivery the same way and notes the attempt numbers it was given.
struct Scripted {
    answer: Answer,
    attempts: watch::Sender<Vec<u32>>,
}

impl Scripted {
    fn new(answer: Answer) -> Arc<Self> {
        Arc::new(Self {
            answer,
            attempts: watch::Sender::new(Vec::new()),
        })
    }

    fn attempts(&self) -> Vec<u32> {
        self.attempts.borrow().clone()
    }

    async fn called(&self, n: usize) {
        let mut attempts = self.attempts.subscribe();
        let called = tokio::time::timeout(PATIENCE, attempts.wait_for(|a| a.len() >= n));
        called.await.expect("calls").unwrap();
    }
}

#[async_trait]
impl Destination for Scripted {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        self.attempts.send_modify(|a| a.push(delivery.attempt));
        match self.answer {
            Answer::Accept => Ok(()),
            Answer::Transient => Err(DeliveryError::Transient("answered HTTP 503".to_owned())),
            Answer::Permanent => Err(DeliveryError::Permanent("answered HTTP 400".to_owned())),
            Answer::Hang => std::future::pending().await,
        }
    }
}

fn fuse_settings() -> FuseSettings {
    FuseSettings {
        timeout: Duration::from_secs(1),
        ..FuseSettings::default()
    }
}

fn fuse(settings: FuseSettings) -> Fuse {
    Fuse::new("crm", settings)
}

fn retry_settings(max_attempts: u32) -> RetrySettings {
    RetrySettings {
        max_attempts,
        backoff_initial: Duration::from_secs(10),
        backoff_max: Duration::from_secs(60),
        ..RetrySettings::default()
    }
}

/// A worker running against `outbox` and `destination`.
struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    fn start(outbox: &Arc<FakeOutbox>, destination: &Arc<Scripted>, fuse: Fuse, retry: RetrySettings) -> Self {
        let lane = Arc::new(Lane {
            name: fuse.name().to_owned(),
            destination: arc_swap::ArcSwap::from_pointee(destination.clone() as SharedDestination),
            fuse: Arc::new(fuse),
            budget: RetryBudget::new(&retry),
            retry,
            wake: Notify::new(),
        });
        let timing = Timing {
            poll: POLL,
            lease: Duration::from_secs(60),
            drain: DRAIN,
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(lane, outbox.clone(), timing, stopped));
        Self { stop, task }
    }

    /// Stops the worker and waits for its drain; returns how long that took on tokio's clock.
    async fn stop(self) -> Duration {
        let started = Instant::now();
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
        started.elapsed()
    }
}

/// One row through one delivery: the destination's answer, the row's failed attempts before, the settlement
/// expected, and the attempt number the destination should see. `max_attempts` is 3 throughout.
struct Case {
    answer: Answer,
    before: u32,
    settles: fn(&Settlement) -> bool,
    attempt: u32,
}

const CASES: &[Case] = &[
    Case {
        answer: Answer::Accept,
        before: 0,
        settles: |s| *s == Settlement::Delivered,
        attempt: 1,
    },
    Case {
        answer: Answer::Accept,
        before: 2,
        settles: |s| *s == Settlement::Delivered,
        attempt: 3,
    },
    Case {
        answer: Answer::Transient,
        before: 0,
        settles: |s| matches!(s, Settlement::Retry { error, .. } if error.contains("503")),
        attempt: 1,
    },
    Case {
        answer: Answer::Transient,
        before: 2,
        settles: |s| matches!(s, Settlement::Dead { error } if error.contains("503")),
        attempt: 3,
    },
    Case {
        answer: Answer::Permanent,
        before: 0,
        settles: |s| matches!(s, Settlement::Dead { error } if error.contains("400")),
        attempt: 1,
    },
    Case {
        answer: Answer::Hang,
        before: 0,
        settles: |s| matches!(s, Settlement::Retry { error, .. } if error.contains("timed out")),
        attempt: 1,
    },
];

#[tokio::test(start_paused = true)]
async fn each_answer_settles_as_it_should() {
    for case in CASES {
        let outbox = FakeOutbox::with(&[case.before]);
        let destination = Scripted::new(case.answer);
        let worker = Worker::start(&outbox, &destination, fuse(fuse_settings()), retry_settings(3));
        let settled = outbox.settled(1).await;
        let what = format!("{:?} after {} attempts", case.answer, case.before);
        assert!((case.settles)(&settled[0].outcome), "{what}: {:?}", settled[0].outcome);
        assert_eq!(destination.attempts(), [case.attempt], "{what}");
        worker.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn delivered_rows_are_settled_delivered_in_batches() {
    let outbox = FakeOutbox::with(&[0; 5]);
    let destination = Scripted::new(Answer::Accept);
    let worker = Worker::start(&outbox, &destination, fuse(fuse_settings()), retry_settings(3));
    let settled = outbox.settled(5).await;
    assert!(settled.iter().all(|s| s.outcome == Settlement::Delivered));
    assert!(outbox.rows().iter().all(|r| r.settled == Some(Settlement::Delivered)));
    assert_eq!(outbox.claims.lock().unwrap()[0].1, 16, "claims what the fuse can start");
    worker.stop().await;
    assert!(outbox.released.lock().unwrap().is_empty(), "nothing left to release");
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_after_a_backoff_and_counted() {
    let outbox = FakeOutbox::with(&[0]);
    let destination = Scripted::new(Answer::Transient);
    let before = Utc::now();
    let worker = Worker::start(&outbox, &destination, fuse(fuse_settings()), retry_settings(3));
    let settled = outbox.settled(1).await;
    let after = Utc::now();
    let Settlement::Retry { due_at, .. } = settled[0].outcome else {
        panic!("{:?}", settled[0].outcome);
    };
    // The first retry waits backoff_initial (10 s) with equal jitter: between 5 and 10 s.
    assert!(due_at >= before + Duration::from_secs(5), "{due_at} vs {before}");
    assert!(due_at <= after + Duration::from_secs(10), "{due_at} vs {after}");
    let row = &outbox.rows()[0];
    assert_eq!((row.attempts, row.due_at, row.lease), (1, due_at, None));
    worker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_defers_without_an_attempt_and_probes_once_per_poll() {
    let outbox = FakeOutbox::with(&[0; 4]);
    let destination = Scripted::new(Answer::Accept);
    let mut settings = fuse_settings();
    settings.breaker.consecutive_failures = 1;
    settings.breaker.open_initial = Duration::from_secs(600);
    settings.breaker.open_max = Duration::from_secs(600);
    let fuse = fuse(settings);
    let tripped = fuse.call(async { Err::<(), _>(DeliveryError::Transient("down".to_owned())) });
    assert!(tripped.await.is_err());
    assert_eq!(fuse.state(), BreakerState::Open);
    let worker = Worker::start(&outbox, &destination, fuse, retry_settings(3));

    let settled = outbox.settled(4).await;
    assert!(
        settled.iter().all(|s| matches!(s.outcome, Settlement::Defer { .. })),
        "{settled:?}"
    );
    assert!(destination.attempts().is_empty(), "an open breaker calls nothing");
    assert!(
        outbox.rows().iter().all(|r| r.attempts == 0),
        "a deferral is not an attempt"
    );
    let claims = outbox.claims.lock().unwrap().clone();
    assert!(claims.len() >= 4, "{claims:?}");
    assert!(claims.iter().all(|&(_, limit)| limit == 1), "{claims:?}");
    assert!(
        claims.windows(2).all(|w| w[1].0 - w[0].0 >= POLL),
        "one probe claim per poll interval: {claims:?}"
    );
    worker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_drain_deadline_then_releases_unfinished_claims() {
    let outbox = FakeOutbox::with(&[0; 3]);
    let destination = Scripted::new(Answer::Hang);
    let settings = FuseSettings {
        timeout: Duration::from_secs(3600),
        ..fuse_settings()
    };
    let worker = Worker::start(&outbox, &destination, fuse(settings), retry_settings(3));
    destination.called(3).await;
    let tokens: Vec<_> = outbox.rows().iter().filter_map(|r| r.lease).collect();
    assert_eq!(tokens.len(), 3);

    let took = worker.stop().await;
    assert!(took >= DRAIN && took < DRAIN * 2, "drain took {took:?}");
    let released = outbox.released.lock().unwrap().clone();
    assert!(tokens.iter().all(|t| released.contains(t)), "{released:?}");
    assert!(outbox.rows().iter().all(|r| r.lease.is_none() && r.attempts == 0));
    assert!(
        outbox.settled.borrow().is_empty(),
        "abandoned deliveries are not settled"
    );
}
