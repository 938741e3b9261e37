//! Unary ingest over gRPC (`SendMessage`) and JSON-RPC over HTTP (`message.send`), next to REST
//! (`POST /v1/messages`) and a bare hyper hello-world baseline, all measured in the same run against one
//! in-process protofuse storing into SQLite.
//!
//! Run: `cargo bench --bench rpc_ingest` (env: `BENCH_SECONDS` per target, default 5; `BENCH_CONNECTIONS`,
//! default 32 concurrent callers). Compare ratios to the baseline, not absolute figures across machines.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use protofuse::config::Config;
use protofuse_grpc::pb;
use protofuse_store::Synchronous;
use tokio::net::TcpStream;
use tokio::time::Instant;

use support::{Outcome, bare_hyper, collect, env_or, histogram};

/// protofuse with its HTTP and gRPC listeners on loopback ports; serves until the process exits.
async fn protofuse(dir: &std::path::Path) -> (SocketAddr, SocketAddr) {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = format!("sqlite://{}", dir.join("bench.db").display());
    config.store.sqlite_synchronous = Synchronous::Full;
    let running = protofuse::app::start(&config).await.unwrap();
    let addrs = (running.local_addr(), running.grpc_addr());
    std::mem::forget(running);
    addrs
}

fn new_message(worker: u64, n: u64) -> String {
    format!(
        r#"{{"channel":"web","sender":{{"role":"customer","external_id":"bench-{worker}"}},"content":{{"type":"text","text":"where is my parcel? #{n}"}}}}"#
    )
}

fn rest_body(worker: u64, n: u64) -> Bytes {
    Bytes::from(new_message(worker, n))
}

fn rpc_body(worker: u64, n: u64) -> Bytes {
    let msg = new_message(worker, n);
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{n},"method":"message.send","params":{msg}}}"#
    ))
}

/// HTTP/1.1 keep-alive connections posting `body(worker, n)` to `path` back to back until the deadline.
async fn http_load(
    name: &str,
    addr: SocketAddr,
    path: &'static str,
    body: fn(u64, u64) -> Bytes,
    connections: u64,
    seconds: u64,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers = (0..connections)
        .map(|worker| {
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let (mut hist, mut ok, mut errors, mut n) = (histogram(), 0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    n += 1;
                    let request = Request::post(path)
                        .header("host", "bench")
                        .header("content-type", "application/json")
                        .body(Full::new(body(worker, n)))
                        .unwrap();
                    let sent = Instant::now();
                    let response = sender.send_request(request).await.unwrap();
                    let status_ok = response.status().is_success();
                    let bytes = response.into_body().collect().await.unwrap().to_bytes();
                    // A JSON-RPC failure is still HTTP 200: look for the error member too.
                    let success = status_ok && !bytes.windows(8).any(|w| w == b"\"error\":");
                    hist.record(sent.elapsed().as_micros() as u64).unwrap();
                    if success { ok += 1 } else { errors += 1 }
                }
                (hist, ok, errors)
            })
        })
        .collect();
    collect(name, started, workers).await
}

/// Unary `SendMessage` calls; callers share 4 HTTP/2 connections, as a pooled gRPC client would.
async fn grpc_load(name: &str, addr: SocketAddr, callers: u64, seconds: u64) -> Outcome {
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers = (0..callers)
        .map(|worker| {
            let channel = channels[(worker % 4) as usize].clone();
            tokio::spawn(async move {
                let mut client = pb::conversation_service_client::ConversationServiceClient::new(channel);
                let (mut hist, mut ok, mut errors, mut n) = (histogram(), 0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    n += 1;
                    let request = pb::SendMessageRequest {
                        channel: "web".to_owned(),
                        sender: Some(pb::Party {
                            role: pb::Role::Customer.into(),
                            external_id: format!("bench-{worker}"),
                            display_name: None,
                        }),
                        content: Some(pb::Content {
                            kind: Some(pb::content::Kind::Text(pb::content::Text {
                                text: format!("where is my parcel? #{n}"),
                            })),
                        }),
                        ..Default::default()
                    };
                    let sent = Instant::now();
                    let result = client.send_message(request).await;
                    hist.record(sent.elapsed().as_micros() as u64).unwrap();
                    if result.is_ok() { ok += 1 } else { errors += 1 }
                }
                (hist, ok, errors)
            })
        })
        .collect();
    collect(name, started, workers).await
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let dir = tempfile::tempdir().unwrap();
    let baseline_addr = bare_hyper().await;
    let (http_addr, grpc_addr) = protofuse(dir.path()).await;

    let _warmup = http_load("warmup", baseline_addr, "/", rest_body, connections, 1).await;
    let results = [
        http_load(
            "bare hyper (baseline)",
            baseline_addr,
            "/",
            rest_body,
            connections,
            seconds,
        )
        .await,
        grpc_load("gRPC SendMessage (unary)", grpc_addr, connections, seconds).await,
        http_load(
            "JSON-RPC message.send over HTTP",
            http_addr,
            "/rpc",
            rpc_body,
            connections,
            seconds,
        )
        .await,
        http_load(
            "REST POST /v1/messages",
            http_addr,
            "/v1/messages",
            rest_body,
            connections,
            seconds,
        )
        .await,
    ];
    let baseline = &results[0];
    println!("\n{connections} concurrent callers, {seconds} s per target, SQLite synchronous=full, one machine\n");
    let rows: Vec<&support::Outcome> = results[1..].iter().collect();
    support::print_table("req/s", baseline, &rows);
}
