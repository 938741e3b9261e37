//! Several nodes (issue 20): cross-node event latency (a message ingested on node B over REST, heard by a
//! JSON-RPC subscriber on node A through NATS JetStream), and total `POST /v1/messages` throughput with one node
//! and with three (the same client load spread over them), all on one private MariaDB and the machine's NATS,
//! against a bare hyper hello-world measured in the same run.
//!
//! Run: `cargo bench --bench cluster` (env: `BENCH_SECONDS` per target, default 10; `BENCH_CONNECTIONS`,
//! default 32; `BENCH_SAMPLES` latency samples, default 500). Needs NATS with JetStream on 127.0.0.1:4222; the
//! bench's streams take a prefix of their own and are removed at the end. The nodes run in this process, on the
//! same cores as the load generator, MariaDB and NATS: on a small machine three nodes cannot show scaling, only
//! what the cluster path costs.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use protofuse::cluster::ClusterConfig;
use protofuse::config::Config;
use serde_json::{Value, json};
use support::{Outcome, bare_hyper, env_or, histogram, load, load_spread, native};
use tokio::time::Instant;

const NATS: &str = "nats://127.0.0.1:4222";

/// A node named `name` of the cluster `prefix` on `store`, serving until the process exits.
async fn node(store: &str, prefix: &str, name: &str) -> SocketAddr {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = store.to_owned();
    config.cluster = Some(ClusterConfig {
        nats: NATS.to_owned(),
        node: name.to_owned(),
        prefix: prefix.to_owned(),
        event_retention: Duration::from_secs(3600),
    });
    let running = protofuse::app::start(&config).await.unwrap();
    let addr = running.local_addr();
    std::mem::forget(running); // serves until the process exits
    addr
}

/// `samples` messages ingested one at a time on `b`; the time from sending each until the subscriber on `a`
/// hears it, and the REST round trip alone.
async fn cross_node(a: SocketAddr, b: SocketAddr, samples: u64) -> (Outcome, Outcome) {
    let ws = WsClientBuilder::default().build(format!("ws://{a}/rpc")).await.unwrap();
    let mut events = ws
        .subscribe::<Value, _>(
            "conversation.subscribe",
            rpc_params![json!({"customer": "latency"})],
            "conversation.unsubscribe",
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let (mut heard, mut acked) = (histogram(), histogram());
    let started = Instant::now();
    for n in 0..samples {
        let body = json!({"channel": "app", "sender": {"role": "customer", "external_id": "latency"},
                          "content": {"type": "text", "text": format!("sample {n}")}});
        let sent = Instant::now();
        let response = http
            .post(format!("http://{b}/v1/messages"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        acked.record(sent.elapsed().as_micros() as u64).unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the event within 10 s")
            .unwrap()
            .unwrap();
        assert_eq!(event["message"]["content"]["text"], format!("sample {n}"));
        heard.record(sent.elapsed().as_micros() as u64).unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let outcome = |name: &str, latency| Outcome {
        name: name.to_owned(),
        requests: samples,
        errors: 0,
        seconds,
        latency,
        rss: support::Rss::default(),
        cpu_seconds: 0.0,
    };
    (
        outcome("REST on B → event on A's JSON-RPC subscriber", heard),
        outcome("REST on B, its answer (for comparison)", acked),
    )
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let samples = env_or("BENCH_SAMPLES", 500);
    let store = protofuse_testkit::mariadb::server().await.fresh_database().await;
    let prefix = format!("pfbench{}", uuid::Uuid::now_v7().simple());
    let baseline_addr = bare_hyper().await;
    let _warmup = load("warmup", baseline_addr, connections, 1, native).await;
    let baseline = load("bare hyper (baseline)", baseline_addr, connections, seconds, native).await;
    // One node first, alone in the cluster; then two more join and the same load is spread over the three.
    let a = node(&store, &prefix, "a").await;
    let one = load("1 node, MariaDB + NATS", a, connections, seconds, native).await;
    let (b, c) = (node(&store, &prefix, "b").await, node(&store, &prefix, "c").await);
    let three = load_spread("3 nodes, MariaDB + NATS", &[a, b, c], connections, seconds, native).await;
    let (heard, acked) = cross_node(a, b, samples).await;

    println!("\n{connections} keep-alive connections, {seconds} s per target, one machine\n");
    support::print_table("req/s", &baseline, &[&one, &three]);
    println!("\ncross-node event latency, {samples} messages one at a time\n");
    println!("| path | p50 ms | p99 ms |");
    println!("|---|---:|---:|");
    for o in [&heard, &acked] {
        println!("| {} | {:.2} | {:.2} |", o.name, o.p(0.5), o.p(0.99));
    }
    let jetstream = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    for stream in ["events", "nonces", "tokens"] {
        let _ = jetstream.delete_stream(format!("{prefix}_{stream}")).await;
    }
}
