//! WeChat callbacks (`POST /wechat/{account}`) into SQLite, plaintext and safe mode, against a bare hyper
//! server answering `success`, measured in the same run. Each callback is a distinct text message that the
//! keyword table answers, so it covers verify → decrypt → store → respond → passive reply (sealed in safe mode)
//! → bot reply stored.
//!
//! Run: `cargo bench --bench wechat_callbacks` (env: `BENCH_SECONDS` per target, default 10;
//! `BENCH_CONNECTIONS`, default 32). Signing and encrypting happen in the load generator, on the same cores.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use protofuse::config::Config;
use protofuse::wechat::{AccountConfig, AutoReply, MatchKind};
use protofuse_wechat::crypto::{self, AesKey};
use protofuse_wechat::{Mode, signature};
use tokio::net::TcpStream;
use tokio::time::Instant;

use support::{Outcome, bare_hyper, env_or};

const TOKEN: &str = "benchtoken";
const APP_ID: &str = "wxbench000000001";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn account(name: &str, mode: Mode) -> AccountConfig {
    AccountConfig {
        account: name.to_owned(),
        token: TOKEN.to_owned(),
        mode,
        app_id: Some(APP_ID.to_owned()),
        encoding_aes_key: Some(AES_KEY.to_owned()),
        auto_replies: vec![AutoReply {
            keyword: "hours".to_owned(),
            match_kind: MatchKind::Exact,
            reply: "We answer 9:00-18:00, Monday to Saturday.".to_owned(),
        }],
        ..AccountConfig::demo()
    }
}

async fn protofuse(dir: &std::path::Path) -> SocketAddr {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = format!("sqlite://{}", dir.join("wechat.db").display());
    config.wechat.accounts = vec![account("plain", Mode::Plaintext), account("safe", Mode::Safe)];
    let running = protofuse::server::start(&config).await.unwrap();
    let addr = running.local_addr();
    std::mem::forget(running); // serves until the process exits
    addr
}

/// One callback as WeChat would send it: a fresh signature, and in safe mode a fresh encryption.
fn callback(path: &str, safe: Option<&AesKey>, worker: u64, n: u64) -> Request<Full<Bytes>> {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = format!("{worker}{n}");
    let sig = signature::signature(TOKEN, &timestamp, &nonce);
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[bench-{worker}]]></FromUserName>\
         <CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hours]]></Content>\
         <MsgId>{}</MsgId></xml>",
        worker * 1_000_000_000 + n
    );
    let (uri, body) = match safe {
        None => (
            format!("{path}?signature={sig}&timestamp={timestamp}&nonce={nonce}"),
            xml,
        ),
        Some(key) => {
            let encrypt = crypto::encrypt(key, APP_ID, &rand::random(), xml.as_bytes()).unwrap();
            let msg_sig = signature::msg_signature(TOKEN, &timestamp, &nonce, &encrypt);
            let uri = format!(
                "{path}?signature={sig}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_sig}"
            );
            (
                uri,
                format!(
                    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
                ),
            )
        }
    };
    Request::post(uri)
        .header("host", "bench")
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

type MakeRequest = Arc<dyn Fn(u64, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Keep-alive connections, each sending requests back to back for `seconds`.
async fn load(name: &'static str, addr: SocketAddr, make: MakeRequest, connections: u64, seconds: u64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let make = Arc::clone(&make);
        workers.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
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
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut requests, mut errors) = (0, 0);
    for worker in workers {
        let (hist, ok, failed) = worker.await.unwrap();
        latency.add(hist).unwrap();
        requests += ok;
        errors += failed;
    }
    Outcome {
        name: name.to_owned(),
        requests,
        errors,
        seconds: started.elapsed().as_secs_f64(),
        latency,
    }
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let dir = tempfile::tempdir().unwrap();
    let baseline_addr = bare_hyper().await;
    let addr = protofuse(dir.path()).await;
    let key = Arc::new(AesKey::from_encoding_aes_key(AES_KEY).unwrap());

    let baseline_req: MakeRequest = Arc::new(|w, n| callback("/wechat/plain", None, w, n));
    let plain_req: MakeRequest = Arc::new(|w, n| callback("/wechat/plain", None, w, n));
    let safe_req: MakeRequest = Arc::new(move |w, n| callback("/wechat/safe", Some(&key), w, n));

    let _warmup = load("warmup", baseline_addr, Arc::clone(&baseline_req), connections, 1).await;
    let baseline = load(
        "bare hyper (baseline)",
        baseline_addr,
        baseline_req,
        connections,
        seconds,
    )
    .await;
    let plain = load(
        "protofuse /wechat plaintext, answered",
        addr,
        plain_req,
        connections,
        seconds,
    )
    .await;
    let safe = load(
        "protofuse /wechat safe mode, answered",
        addr,
        safe_req,
        connections,
        seconds,
    )
    .await;

    println!("\n{connections} keep-alive connections, {seconds} s per target, one machine, SQLite synchronous=full\n");
    println!("| target | callbacks/s | p50 ms | p99 ms | errors | throughput vs baseline | p99 vs baseline |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for o in [&baseline, &plain, &safe] {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.3} | {:.1}x |",
            o.name,
            o.rate(),
            o.p(0.5),
            o.p(0.99),
            o.errors,
            o.rate() / baseline.rate(),
            o.p(0.99) / baseline.p(0.99)
        );
    }
}
