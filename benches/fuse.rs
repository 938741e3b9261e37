//! The fuse under load, in one run: REST ingress latency with every destination healthy, the same with one
//! destination hanging (its breaker opens), and the breaker's fast-fail cost per call. The bare hyper server is
//! the baseline for the HTTP figures; a direct call of the same future is the baseline for the fuse's cost.
//!
//! Run: `cargo bench --bench fuse` (env: `BENCH_SECONDS` per target, default 10; `BENCH_CONNECTIONS`, default
//! 16). Compare ratios, not absolute figures: load generator, servers and receivers share this machine's cores.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protofuse::config::Config;
use protofuse::dispatch::{DeliveryError, Fuse, FuseError};
use protofuse::dispatch::{DestinationConfig, DestinationKind, FuseSettings, RouteConfig};
use protofuse_store::Synchronous;
use support::{bare_hyper, env_or, load, native};

/// A destination that accepts connections and never answers.
async fn hanging() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

fn webhook(name: &str, addr: SocketAddr) -> DestinationConfig {
    DestinationConfig {
        name: name.to_owned(),
        kind: DestinationKind::Webhook,
        url: Some(format!("http://{addr}/hook")),
        headers: Default::default(),
        adapter: None,
        account: None,
        fuse: FuseSettings {
            timeout: Duration::from_secs(1),
            ..FuseSettings::default()
        },
        retry: Default::default(),
    }
}

async fn protofuse(dir: &std::path::Path, name: &str, destinations: Vec<DestinationConfig>) -> SocketAddr {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    config.store.sqlite_synchronous = Synchronous::Normal;
    config.dispatch.routes = vec![RouteConfig {
        destinations: destinations.iter().map(|d| d.name.clone()).collect(),
        ..RouteConfig::default()
    }];
    config.dispatch.destinations = destinations;
    let running = protofuse::app::start(&config).await.unwrap();
    let addr = running.local_addr();
    std::mem::forget(running); // serves until the process exits
    addr
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 16);
    let dir = tempfile::tempdir().unwrap();
    let baseline_addr = bare_hyper().await;
    let receiver_a = bare_hyper().await;
    let receiver_b = bare_hyper().await;
    let stuck = hanging().await;
    let healthy_addr = protofuse(
        dir.path(),
        "healthy",
        vec![webhook("a", receiver_a), webhook("b", receiver_b)],
    )
    .await;
    let hanging_addr = protofuse(
        dir.path(),
        "hanging",
        vec![webhook("a", receiver_a), webhook("stuck", stuck)],
    )
    .await;

    let _warmup = load("warmup", baseline_addr, connections, 1, native).await;
    let baseline = load("bare hyper (baseline)", baseline_addr, connections, seconds, native).await;
    let name = "ingress, two healthy destinations";
    let healthy = load(name, healthy_addr, connections, seconds, native).await;
    let name = "ingress, one healthy + one hanging destination (breaker opens)";
    let stuck = load(name, hanging_addr, connections, seconds, native).await;

    println!("\n{connections} keep-alive connections, {seconds} s per target, SQLite synchronous=normal\n");
    println!("| target | req/s | p50 ms | p99 ms | errors | p99 vs baseline | p99 vs healthy |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for o in [&baseline, &healthy, &stuck] {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.1}x | {:.2}x |",
            o.name,
            o.rate(),
            o.p(0.5),
            o.p(0.99),
            o.errors,
            o.p(0.99) / baseline.p(0.99),
            o.p(0.99) / healthy.p(0.99)
        );
    }
    fast_fail_cost().await;
}

/// The cheapest future there is, so the figures are the fuse's own cost.
fn succeed() -> std::future::Ready<Result<(), DeliveryError>> {
    std::future::ready(Ok(()))
}

/// Nanoseconds per call: the bare future, through a closed fuse, and refused by an open one.
async fn fast_fail_cost() {
    const CALLS: u32 = 1_000_000;
    let mut settings = FuseSettings::default();
    settings.breaker.consecutive_failures = 1;
    settings.breaker.open_initial = Duration::from_secs(600);
    settings.breaker.open_max = Duration::from_secs(600);
    let closed = Fuse::new("closed", settings.clone());
    let open = Fuse::new("open", settings);
    let _ = open
        .call(async { Err::<(), _>(DeliveryError::Transient("trip".to_owned())) })
        .await;

    let started = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(succeed().await).unwrap();
    }
    let bare = started.elapsed().as_nanos() as f64 / f64::from(CALLS);
    let started = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(closed.call(succeed()).await).unwrap();
    }
    let through = started.elapsed().as_nanos() as f64 / f64::from(CALLS);
    let started = Instant::now();
    for _ in 0..CALLS {
        let refused = std::hint::black_box(open.call(succeed()).await);
        assert!(matches!(refused, Err(FuseError::Open)));
    }
    let refused = started.elapsed().as_nanos() as f64 / f64::from(CALLS);
    println!("\nfuse cost per call ({CALLS} calls each):");
    println!("| path | ns/call | vs bare call |");
    println!("|---|---:|---:|");
    println!("| bare future (baseline) | {bare:.0} | 1.0x |");
    println!(
        "| through a closed fuse (timeout, slot, breaker, counters) | {through:.0} | {:.1}x |",
        through / bare.max(1.0)
    );
    println!(
        "| refused by an open breaker (fast fail) | {refused:.0} | {:.1}x |",
        refused / bare.max(1.0)
    );
}
