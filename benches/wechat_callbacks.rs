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

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use protofuse::config::Config;
use protofuse::respond::{AutoReply, MatchKind};
use protofuse::wechat::AccountConfig;
use protofuse_wechat::crypto::{self, AesKey};
use protofuse_wechat::{Mode, signature};

use support::{bare_hyper, env_or, load};

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
    // Every listener on a port of its own: the bench starts more than one server, and the defaults may be taken.
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = format!("sqlite://{}", dir.join("wechat.db").display());
    config.wechat.accounts = vec![account("plain", Mode::Plaintext), account("safe", Mode::Safe)];
    let running = protofuse::app::start(&config).await.unwrap();
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

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let dir = tempfile::tempdir().unwrap();
    let baseline_addr = bare_hyper().await;
    let addr = protofuse(dir.path()).await;
    let key = Arc::new(AesKey::from_encoding_aes_key(AES_KEY).unwrap());

    let plain = |w, n| callback("/wechat/plain", None, w, n);
    let safe = move |w, n| callback("/wechat/safe", Some(&key), w, n);

    let _warmup = load("warmup", baseline_addr, connections, 1, plain).await;
    let baseline = load("bare hyper (baseline)", baseline_addr, connections, seconds, plain).await;
    let plain = load(
        "protofuse /wechat plaintext, answered",
        addr,
        connections,
        seconds,
        plain,
    )
    .await;
    let safe = load(
        "protofuse /wechat safe mode, answered",
        addr,
        connections,
        seconds,
        safe,
    )
    .await;

    println!("\n{connections} keep-alive connections, {seconds} s per target, one machine, SQLite synchronous=full\n");
    support::print_table("callbacks/s", &baseline, &[&plain, &safe]);
}
