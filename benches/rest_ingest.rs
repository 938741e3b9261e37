//! `POST /v1/messages` into SQLite against a bare hyper hello-world, measured in the same run, and the same
//! ingest through the php-helpdesk legacy adapter (GBK form, API key, field mapping) against the native route;
//! then into MariaDB (the private `mariadbd` the tests use, binlog on) as the server's store.
//!
//! Run: `cargo bench --bench rest_ingest`. Environment:
//! - `BENCH_TARGETS`: a subset of `full,normal,legacy,mariadb` (default all);
//! - `BENCH_SECONDS` per target (default 10), `BENCH_CONNECTIONS` (default 32);
//! - `BENCH_MYSQL_POOL`: the MariaDB store's `max_connections` (default the server's, 8), which also sets its
//!   number of batch writers (half the pool, at most 2).
//!
//! The servers and the load generator share this process and this machine's cores: compare the ratios and the
//! CPU per request, not the absolute rates, across runs and machines.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use protofuse::config::Config;
use protofuse_store::Synchronous;
use support::{bare_hyper, env_or, load, native};

async fn protofuse(dir: &std::path::Path, synchronous: Synchronous) -> SocketAddr {
    let url = format!("sqlite://{}", dir.join(format!("{synchronous:?}.db")).display());
    serve(url, synchronous).await
}

async fn serve(store_url: String, synchronous: Synchronous) -> SocketAddr {
    let mut config = Config::default();
    if store_url.starts_with("mysql:") {
        config.store.max_connections = env_or("BENCH_MYSQL_POOL", u64::from(config.store.max_connections)) as u32;
    }
    config.legacy.adapters =
        vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/adapters/php-helpdesk.toml")];
    // Every listener on a port of its own: the bench starts more than one server, and the defaults may be taken.
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = store_url;
    config.store.sqlite_synchronous = synchronous;
    let running = protofuse::app::start(&config).await.unwrap();
    let addr = running.local_addr();
    std::mem::forget(running); // serves until the process exits
    addr
}

/// The same message as a GBK form from a PHP helpdesk ("我要退货" percent-encoded in GBK).
fn legacy_form(worker: u64, n: u64) -> Request<Full<Bytes>> {
    let body = format!("uid=bench-{worker}&msg=%CE%D2%D2%AA%CD%CB%BB%F5+{n}&ts=1700000000&role=1");
    Request::post("/legacy/php/message")
        .header("host", "bench")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-api-key", "php-demo-key")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    // `BENCH_TARGETS`: a comma-separated subset of full,normal,legacy,mariadb (default all), e.g. `full` for a
    // quick A/B of the SQLite write path without starting MariaDB.
    let targets = std::env::var("BENCH_TARGETS").unwrap_or_else(|_| "full,normal,legacy,mariadb".to_owned());
    let wanted = |t: &str| targets.split(',').any(|w| w.trim() == t);
    let dir = tempfile::tempdir().unwrap();
    let baseline_addr = bare_hyper().await;
    let _warmup = load("warmup", baseline_addr, connections, 1, native).await;
    let baseline = load("bare hyper (baseline)", baseline_addr, connections, seconds, native).await;
    let mut outcomes = vec![];
    if wanted("full") {
        let addr = protofuse(dir.path(), Synchronous::Full).await;
        let name = "protofuse POST /v1/messages, SQLite synchronous=full";
        outcomes.push(load(name, addr, connections, seconds, native).await);
    }
    let mut mapping = None;
    if wanted("normal") || wanted("legacy") {
        let addr = protofuse(dir.path(), Synchronous::Normal).await;
        let name = "protofuse POST /v1/messages, SQLite synchronous=normal";
        let normal = if wanted("normal") {
            Some(load(name, addr, connections, seconds, native).await)
        } else {
            None
        };
        let name = "protofuse legacy GBK form (php-helpdesk), SQLite synchronous=normal";
        let legacy = if wanted("legacy") {
            Some(load(name, addr, connections, seconds, legacy_form).await)
        } else {
            None
        };
        if let (Some(normal), Some(legacy)) = (&normal, &legacy) {
            mapping = Some((legacy.rate() / normal.rate(), legacy.p(0.99) / normal.p(0.99)));
        }
        outcomes.extend(normal.into_iter().chain(legacy));
    }
    if wanted("mariadb") {
        let mariadb = protofuse_testkit::mariadb::server().await.fresh_database().await;
        let addr = serve(mariadb, Synchronous::Full).await;
        let name = "protofuse POST /v1/messages, MariaDB (test mariadbd: binlog on, no fsync per commit)";
        outcomes.push(load(name, addr, connections, seconds, native).await);
    }

    println!("\n{connections} keep-alive connections, {seconds} s per target, one machine\n");
    let rows: Vec<&support::Outcome> = outcomes.iter().collect();
    support::print_table("req/s", &baseline, &rows);
    if let Some((throughput, p99)) = mapping {
        println!(
            "\nmapping layer: legacy adapter / native REST on the same store: throughput {throughput:.3}, p99 {p99:.2}x"
        );
        decode_cost();
    }
}

/// The mapping layer alone, without HTTP or the store: decoding the same message natively and through the
/// php-helpdesk adapter, timed over many iterations in this process.
fn decode_cost() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/adapters/php-helpdesk.toml");
    let adapter = protofuse_legacy::LegacyAdapter::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    let json = br#"{"channel":"web","sender":{"role":"customer","external_id":"u1"},"content":{"type":"text","text":"where is my parcel?"}}"#;
    let form = b"uid=u1&msg=%CE%D2%D2%AA%CD%CB%BB%F5&ts=1700000000&role=1&mid=9";
    let iterations = 200_000u32;
    let time = |f: &dyn Fn()| {
        let started = std::time::Instant::now();
        for _ in 0..iterations {
            f();
        }
        started.elapsed().as_nanos() as f64 / f64::from(iterations)
    };
    let native_ns = time(&|| {
        std::hint::black_box(protofuse_adapter::native::decode(json, Some("k")).unwrap());
    });
    let legacy_ns = time(&|| {
        std::hint::black_box(adapter.decode(None, form).unwrap());
    });
    println!(
        "decode only: native JSON {native_ns:.0} ns/message, legacy GBK form {legacy_ns:.0} ns/message, ratio {:.2}x",
        legacy_ns / native_ns
    );
}
