//! Shared by the benchmarks: a closed-loop HTTP load generator with latency histograms, and the bare hyper
//! server every benchmark reports its ratios against.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The allocator the `protofuse` binary runs with (`src/main.rs`), so the servers the benches start allocate as
/// it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub struct Outcome {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latency: Histogram<u64>,
    /// This process's resident memory while the load ran (server and load generator, when in-process).
    pub rss: Rss,
    /// CPU seconds this process (server, store threads and load generator, when in-process) used during the load:
    /// per request, a figure far steadier than the rate on a shared machine.
    pub cpu_seconds: f64,
}

/// Resident set size in MiB: when the load began, its highest sample (every 100 ms), when it ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    pub start: f64,
    pub peak: f64,
    pub end: f64,
}

/// `VmRSS` of this process in MiB (0 where `/proc` is missing).
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// User plus system CPU seconds this process has used so far (0 where `/proc` is missing).
pub fn cpu_seconds() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// User plus system CPU seconds in a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` line (0 where a field is
/// missing).
pub fn stat_cpu_seconds(stat: &str) -> f64 {
    // The fields after the command name, which is in parentheses and may itself hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks a second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    /// Microseconds of this process's CPU per successful request.
    pub fn cpu_us(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.requests.max(1) as f64
    }
    pub fn p(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Prints `rows` as a Markdown table against `baseline` (which is printed first): rate, latency, errors, process
/// RSS and CPU per request, each ratio to the baseline measured in the same run. `rate` names the rate column
/// (`req/s`, `callbacks/s`).
pub fn print_table(rate: &str, baseline: &Outcome, rows: &[&Outcome]) {
    println!(
        "| target | {rate} | p50 ms | p99 ms | errors | throughput vs baseline | p99 vs baseline | process RSS MiB start → peak → end | CPU µs per request | vs baseline |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    for o in std::iter::once(baseline).chain(rows.iter().copied()) {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.3} | {:.1}x | {:.0} → {:.0} → {:.0} | {:.1} | {:.2}x |",
            o.name,
            o.rate(),
            o.p(0.5),
            o.p(0.99),
            o.errors,
            o.rate() / baseline.rate(),
            o.p(0.99) / baseline.p(0.99),
            o.rss.start,
            o.rss.peak,
            o.rss.end,
            o.cpu_us(),
            o.cpu_us() / baseline.cpu_us()
        );
    }
}

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The baseline: hyper answering 200 with a tiny body after reading the request body, nothing else.
pub async fn bare_hyper() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}"))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

pub fn native(worker: u64, n: u64) -> Request<Full<Bytes>> {
    let body = format!(
        r#"{{"channel":"web","sender":{{"role":"customer","external_id":"bench-{worker}"}},"content":{{"type":"text","text":"where is my parcel? #{n}"}}}}"#
    );
    Request::post("/v1/messages")
        .header("host", "bench")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// A latency histogram in microseconds, up to a minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap()
}

/// Merges the workers' (latency, successes, errors) into one outcome timed from `started`.
pub async fn collect(
    name: &str,
    started: Instant,
    workers: Vec<tokio::task::JoinHandle<(Histogram<u64>, u64, u64)>>,
) -> Outcome {
    let start = rss_mib();
    let cpu_start = cpu_seconds();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut peak = start;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => peak = peak.max(rss_mib()),
                _ = &mut stopped => return peak,
            }
        }
    });
    let mut latency = histogram();
    let (mut requests, mut errors) = (0, 0);
    for worker in workers {
        let (hist, ok, failed) = worker.await.unwrap();
        latency.add(hist).unwrap();
        requests += ok;
        errors += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let cpu_seconds = cpu_seconds() - cpu_start;
    let end = rss_mib();
    let peak = sampler.await.unwrap().max(end);
    Outcome {
        name: name.to_owned(),
        requests,
        errors,
        seconds,
        latency,
        rss: Rss { start, peak, end },
        cpu_seconds,
    }
}

/// Keep-alive connections, each sending `make(connection, n)` back to back for `seconds`.
pub async fn load<F>(name: &str, addr: SocketAddr, connections: u64, seconds: u64, make: F) -> Outcome
where
    F: Fn(u64, u64) -> Request<Full<Bytes>> + Send + Sync + 'static,
{
    load_spread(name, &[addr], connections, seconds, make).await
}

/// [`load`] with the connections spread over `addrs` in turn (several nodes behind one client load).
pub async fn load_spread<F>(name: &str, addrs: &[SocketAddr], connections: u64, seconds: u64, make: F) -> Outcome
where
    F: Fn(u64, u64) -> Request<Full<Bytes>> + Send + Sync + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let make = std::sync::Arc::new(make);
    let mut workers = Vec::new();
    for worker in 0..connections {
        let make = std::sync::Arc::clone(&make);
        let addr = addrs[worker as usize % addrs.len()];
        workers.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut hist = histogram();
            let (mut ok, mut errors, mut n) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                n += 1;
                let request = make(worker, n);
                let sent = Instant::now();
                let response = sender.send_request(request).await.unwrap();
                let success = response.status().is_success();
                let _ = response.into_body().collect().await;
                hist.record(sent.elapsed().as_micros() as u64).unwrap();
                if success { ok += 1 } else { errors += 1 }
            }
            (hist, ok, errors)
        }));
    }
    collect(name, started, workers).await
}
