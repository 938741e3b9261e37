//! A webhook receiver for dispatcher tests: a real HTTP server on a loopback port whose behaviour can be
//! switched at run time (answer, fail, hang, answer slowly), and which dedupes deliveries by their
//! `Idempotency-Key` the way a well-behaved backend does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 at once.
    Healthy,
    /// This status at once.
    Fail(u16),
    /// Never answers.
    Hang,
    /// 200 after this delay.
    Slow(Duration),
}

#[derive(Debug)]
struct Inner {
    mode: Mutex<Mode>,
    /// Accepted deliveries per idempotency key.
    accepted: Mutex<HashMap<String, usize>>,
    calls: AtomicUsize,
    concurrent: AtomicUsize,
    max_concurrent: AtomicUsize,
}

/// A running receiver; stops when dropped (its task is aborted).
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Self {
        let inner = Arc::new(Inner {
            mode: Mutex::new(mode),
            accepted: Mutex::new(HashMap::new()),
            calls: AtomicUsize::new(0),
            concurrent: AtomicUsize::new(0),
            max_concurrent: AtomicUsize::new(0),
        });
        let app = axum::Router::new().route("/hook", post(hook)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            inner,
            task,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
    }

    /// Calls received, whatever their answer.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// Most calls in progress at once since the last reset.
    pub fn max_concurrent(&self) -> usize {
        self.inner.max_concurrent.load(Ordering::SeqCst)
    }

    pub fn reset_max_concurrent(&self) {
        let now = self.inner.concurrent.load(Ordering::SeqCst);
        self.inner.max_concurrent.store(now, Ordering::SeqCst);
    }

    /// Idempotency keys accepted (answered 200), each with how often it arrived.
    pub fn accepted(&self) -> HashMap<String, usize> {
        self.inner.accepted.lock().unwrap().clone()
    }

    /// Waits until every key in `keys` was accepted, or panics after `limit`.
    pub async fn wait_for(&self, keys: &[String], limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let accepted = self.accepted();
            let missing = keys.iter().filter(|k| !accepted.contains_key(*k)).count();
            if missing == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{missing} of {} deliveries missing after {limit:?}",
                keys.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Busy<'a>(&'a Inner);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.concurrent.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn hook(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> StatusCode {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    let now = inner.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
    inner.max_concurrent.fetch_max(now, Ordering::SeqCst);
    let _busy = Busy(&inner);
    let mode = *inner.mode.lock().unwrap();
    match mode {
        Mode::Healthy => {}
        Mode::Fail(status) => return StatusCode::from_u16(status).unwrap(),
        Mode::Hang => std::future::pending::<()>().await,
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    *inner.accepted.lock().unwrap().entry(key).or_default() += 1;
    StatusCode::OK
}
