//! Safe to face the internet (issue 18), through real clients over sockets: API keys and scopes on REST,
//! JSON-RPC (HTTP and WebSocket) and gRPC alike; per-key rate limits; the public and API listeners apart;
//! check-config refusing an exposed API or the public demo credentials; stalled connections closed under a low
//! descriptor limit; idle WebSockets evicted; a drain window on SIGTERM in which every request is answered.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use protofuse::auth::{ApiKeyConfig, Scope, digest_hex};
use protofuse::config::Config;
use serde_json::{Value, json};
use tonic::Code;

use crate::grpc::{client as grpc_client, text};
use crate::jsonrpc::app_code;
use crate::support::server::TestServer;

pub(crate) fn key(id: &str, secret: &str, scopes: &[Scope]) -> ApiKeyConfig {
    ApiKeyConfig {
        id: id.to_owned(),
        sha256: digest_hex(secret),
        scopes: scopes.to_vec(),
        rate_per_second: None,
        burst: None,
    }
}

fn with_keys(c: &mut Config) {
    c.api.keys = vec![
        key("reader", "r-secret", &[Scope::Read]),
        key("writer", "w-secret", &[Scope::Read, Scope::Write]),
    ];
}

fn message(customer: &str) -> Value {
    json!({"sender": {"role": "customer", "external_id": customer}, "content": {"type": "text", "text": "hi"}})
}

fn headers(secret: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-api-key", secret.parse().unwrap());
    h
}

#[tokio::test]
async fn keys_and_scopes_hold_on_rest_and_jsonrpc_over_http() {
    let server = TestServer::sqlite(with_keys).await;
    let client = &server.client;
    let post = |secret: Option<&'static str>| {
        let mut r = client.post(server.url("/v1/messages")).json(&message("kim"));
        if let Some(s) = secret {
            r = r.bearer_auth(s);
        }
        r.send()
    };
    let anonymous = post(None).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        anonymous.json::<Value>().await.unwrap()["error"]["code"],
        "unauthenticated"
    );
    assert_eq!(post(Some("wrong")).await.unwrap().status(), 401);
    let reader = post(Some("r-secret")).await.unwrap();
    assert_eq!(reader.status(), 403);
    assert_eq!(reader.json::<Value>().await.unwrap()["error"]["code"], "forbidden");
    assert_eq!(post(Some("w-secret")).await.unwrap().status(), 201);
    let listed = client
        .get(server.url("/v1/conversations?customer=kim"))
        .header("x-api-key", "r-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    // JSON-RPC over HTTP: the key is checked on the request, the method's scope on the call.
    let bare = HttpClientBuilder::default().build(server.url("/rpc")).unwrap();
    assert!(
        bare.request::<Value, _>("conversation.list", rpc_params![])
            .await
            .is_err()
    );
    let http = HttpClientBuilder::default()
        .set_headers(headers("r-secret"))
        .build(server.url("/rpc"))
        .unwrap();
    let _: Value = http.request("conversation.list", rpc_params![]).await.unwrap();
    let refused = http
        .request::<Value, _>("message.send", rpc_params![message("kim")])
        .await;
    assert_eq!(app_code(refused.unwrap_err()), -32006);

    server.shutdown().await;
}

#[tokio::test]
async fn a_websocket_is_authorised_by_its_upgrade_request() {
    let server = TestServer::sqlite(with_keys).await;
    let ws_url = format!("{}/rpc", server.base.replace("http://", "ws://"));
    assert!(
        WsClientBuilder::default().build(&ws_url).await.is_err(),
        "no key, no upgrade"
    );
    let ws = WsClientBuilder::default()
        .set_headers(headers("r-secret"))
        .build(&ws_url)
        .await
        .unwrap();
    let _: Value = ws.request("conversation.list", rpc_params![]).await.unwrap();
    let refused = ws
        .request::<Value, _>("message.send", rpc_params![message("kim")])
        .await;
    assert_eq!(app_code(refused.unwrap_err()), -32006);
    let ws = WsClientBuilder::default()
        .set_headers(headers("w-secret"))
        .build(&ws_url)
        .await
        .unwrap();
    let sent: Value = ws.request("message.send", rpc_params![message("kim")]).await.unwrap();
    assert_eq!(sent["duplicate"], false);
    server.shutdown().await;
}

#[tokio::test]
async fn grpc_takes_the_same_keys_and_scopes_and_leaves_health_open() {
    let server = TestServer::sqlite(with_keys).await;
    let mut grpc = grpc_client(&server).await;
    assert_eq!(
        grpc.send_message(text("kim", "hi")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let as_reader = |mut r: tonic::Request<_>| {
        r.metadata_mut()
            .insert("authorization", "Bearer r-secret".parse().unwrap());
        r
    };
    let status = grpc
        .send_message(as_reader(tonic::Request::new(text("kim", "hi"))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let mut as_writer = tonic::Request::new(text("kim", "hi"));
    as_writer
        .metadata_mut()
        .insert("x-api-key", "w-secret".parse().unwrap());
    grpc.send_message(as_writer).await.unwrap();
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert!(health.is_ok(), "{health:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_key_over_its_rate_is_told_when_to_come_back() {
    let server = TestServer::sqlite(|c| {
        let mut limited = key("limited", "l-secret", &[Scope::Read, Scope::Write]);
        limited.rate_per_second = Some(1);
        limited.burst = Some(2);
        c.api.keys = vec![limited];
    })
    .await;
    let get = || {
        server
            .client
            .get(server.url("/v1/conversations"))
            .header("x-api-key", "l-secret")
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(get().await.unwrap().status(), 200);
    let limited = get().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(limited.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
    let mut grpc = grpc_client(&server).await;
    let mut request = tonic::Request::new(text("lou", "hi"));
    request.metadata_mut().insert("x-api-key", "l-secret".parse().unwrap());
    let status = grpc.send_message(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn the_public_listener_serves_only_what_the_internet_must_reach() {
    let api_port = protofuse_testkit::http::free_port();
    let server = TestServer::sqlite(|c| {
        c.api.listen = Some(format!("127.0.0.1:{api_port}").parse().unwrap());
    })
    .await;
    let public = |path: &str| server.client.get(server.url(path)).send();
    assert_eq!(public("/v1/conversations").await.unwrap().status(), 404);
    assert_eq!(public("/metrics").await.unwrap().status(), 404);
    assert_eq!(public("/readyz").await.unwrap().status(), 200);
    let api = |path: &str| server.client.get(format!("http://127.0.0.1:{api_port}{path}")).send();
    assert_eq!(api("/v1/conversations").await.unwrap().status(), 200);
    assert_eq!(api("/metrics").await.unwrap().status(), 200);
    assert_eq!(api("/wechat/demo").await.unwrap().status(), 404);
    server.shutdown().await;
}

fn check_config(env: &[(&str, &str)]) -> (bool, String) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("check-config")
        .arg(&config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_config_refuses_an_exposed_api_without_keys_and_the_demo_account_in_public() {
    let (ok, text) = check_config(&[("PROTOFUSE__SERVER__LISTEN", "0.0.0.0:8080")]);
    assert!(!ok, "{text}");
    assert!(text.contains("api.keys: required when the API"), "{text}");
    assert!(
        text.contains("wechat.accounts[0]") && text.contains("public sample credentials"),
        "{text}"
    );
    let (ok, text) = check_config(&[
        ("PROTOFUSE__SERVER__LISTEN", "127.0.0.1:8080"),
        ("PROTOFUSE__GRPC__LISTEN", "0.0.0.0:50051"),
    ]);
    assert!(!ok && text.contains("grpc.listen is not a loopback address"), "{text}");
    let (ok, text) = check_config(&[]);
    assert!(ok, "the shipped configuration, on loopback, passes: {text}");
}

/// Runs `protofuse serve` under `ulimit -n 256` with short timeouts.
fn serve_with_few_descriptors(dir: &Path, port: u16) -> std::process::Child {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let script = format!(
        "ulimit -n 256 && exec '{}' serve --config '{}'",
        env!("CARGO_BIN_EXE_protofuse"),
        config.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .env("PROTOFUSE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PROTOFUSE__GRPC__LISTEN", "127.0.0.1:0")
        .env("PROTOFUSE__ADMIN__LISTEN", "127.0.0.1:0")
        .env("PROTOFUSE__SERVER__HEADER_READ_TIMEOUT", "1s")
        .env("PROTOFUSE__SERVER__IDLE_TIMEOUT", "1s")
        .env("PROTOFUSE__SERVER__DRAIN_DELAY", "0s")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn healthz(port: u16, timeout: Duration) -> bool {
    let client = reqwest::Client::builder().timeout(timeout).build().unwrap();
    client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn stalled_and_idle_connections_are_closed_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = protofuse_testkit::http::free_port();
    let mut child = serve_with_few_descriptors(dir.path(), port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !healthz(port, Duration::from_secs(1)).await {
        assert!(tokio::time::Instant::now() < deadline, "protofuse did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 150 clients that send half a request line and 150 that send nothing: more than the descriptors left.
    let mut stalled = Vec::new();
    for i in 0..300 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            if i % 2 == 0 {
                let _ = s.write_all(b"GET /heal");
            }
            stalled.push(s);
        }
    }
    // Within the timeouts (1 s) plus scheduling, every stalled connection has been closed and a new client is
    // served again.
    let recovered = tokio::time::Instant::now() + Duration::from_secs(10);
    while !healthz(port, Duration::from_secs(1)).await {
        assert!(
            tokio::time::Instant::now() < recovered,
            "still starved after the timeouts"
        );
    }
    // And every stalled connection is closed by the server (EOF or reset), none left holding a descriptor.
    for s in &stalled {
        s.set_nonblocking(true).unwrap();
    }
    let mut open: Vec<TcpStream> = stalled;
    let all_closed = tokio::time::Instant::now() + Duration::from_secs(15);
    while !open.is_empty() {
        assert!(
            tokio::time::Instant::now() < all_closed,
            "{} connections still open",
            open.len()
        );
        open.retain_mut(|s| !is_closed(s));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Whether the server has closed `s` (EOF or reset), reading whatever it sent before.
fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0_u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn a_websocket_that_answers_nothing_is_evicted() {
    let server = TestServer::sqlite(|c| {
        c.jsonrpc.ws_ping_interval = Duration::from_millis(200);
        c.jsonrpc.ws_inactive_limit = Duration::from_millis(700);
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    // Tokio's socket, not std's: the server runs on this test's runtime, and a blocking read would starve it.
    let mut ws = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let upgrade = format!(
        "GET /rpc HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut ws, upgrade.as_bytes())
        .await
        .unwrap();
    let mut head = [0_u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut ws, &mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101", "upgraded");
    // Never answer the server's pings: the connection is closed once the inactivity limit passes.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0_u8; 1024];
        while tokio::io::AsyncReadExt::read(&mut ws, &mut buf)
            .await
            .is_ok_and(|n| n > 0)
        {}
    })
    .await;
    assert!(closed.is_ok(), "the silent WebSocket is still open");
    server.shutdown().await;
}

/// SIGTERM: `/readyz` answers 503 for the drain delay while requests are still served, then the listener
/// closes, and every request in flight gets a response.
#[tokio::test]
async fn sigterm_drains_before_closing_and_answers_every_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_protofuse"));
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let env = [("PROTOFUSE__SERVER__DRAIN_DELAY", "1500ms")];
    let binary = protofuse_testkit::binary::Binary::serve(exe, &config, dir.path(), &env).await;
    let client = reqwest::Client::new();
    let base = binary.base.clone();
    // Sixteen requests in flight: their writes wait on SQLite's write lock, held from outside.
    let url = format!("sqlite://{}", dir.path().join("data/protofuse.db").display());
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
    let in_flight: Vec<_> = (0..16)
        .map(|i| {
            let request = client
                .post(format!("{base}/v1/messages"))
                .json(&message(&format!("drain-{i}")));
            tokio::spawn(request.send())
        })
        .collect();
    // Requests that reach the server before or during the drain are answered alike; no wait is needed here.
    binary.terminate();
    let not_ready = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ready = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("still serving while draining");
        if ready.status() == 503 {
            break;
        }
        assert!(tokio::time::Instant::now() < not_ready, "readyz never answered 503");
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    for request in in_flight {
        let response = request.await.unwrap().expect("a response, not a dropped connection");
        assert!(matches!(response.status().as_u16(), 201 | 503), "{}", response.status());
    }
}

/// Input the API must refuse: a JSON array as a message, fields over their limits, JSON-RPC ids of a kind the
/// spec does not allow (refused, not run), an HMAC nonce of unbounded size.
#[tokio::test]
async fn strict_input_is_refused_in_each_protocols_terms() {
    let server = TestServer::sqlite(|_| {}).await;
    let post = |body: Value| server.client.post(server.url("/v1/messages")).json(&body).send();
    let code = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (
            status,
            r.json::<Value>().await.unwrap()["error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    let array = json!([{"role": "customer", "external_id": "x"}, {"type": "text", "text": "hi"}]);
    let (status, why) = code(post(array).await.unwrap()).await;
    assert_eq!(status, 422, "{why}");
    for (field, body) in [
        ("account", json!({"account": "a".repeat(192)})),
        (
            "sender.display_name",
            json!({"sender": {"role": "customer", "external_id": "x", "display_name": "n".repeat(256)}}),
        ),
        (
            "content.text",
            json!({"content": {"type": "text", "text": "t".repeat(256 * 1024 + 1)}}),
        ),
        ("metadata", json!({"metadata": {"blob": "m".repeat(64 * 1024)}})),
    ] {
        let mut message = message("long");
        for (k, v) in body.as_object().unwrap() {
            message[k] = v.clone();
        }
        let (status, why) = code(post(message).await.unwrap()).await;
        assert_eq!(status, 422, "{field}: {why}");
        assert!(why.contains(field), "{field}: {why}");
    }

    let rpc = |body: Value| server.client.post(server.url("/rpc")).json(&body).send();
    for id in [json!({"a": 1}), json!([1]), json!(true)] {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "message.send", "params": message("bad-id")});
        let answer: Value = rpc(call).await.unwrap().json().await.unwrap();
        assert_eq!(
            (answer["error"]["code"].as_i64(), &answer["id"]),
            (Some(-32600), &Value::Null),
            "{answer}"
        );
    }
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "conversation.list"},
        {"jsonrpc": "2.0", "id": false, "method": "message.send", "params": message("bad-id")},
    ]);
    let answers: Value = rpc(batch).await.unwrap().json().await.unwrap();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers.iter().any(|a| a["id"] == 1 && a["result"].is_object()));
    assert!(answers.iter().any(|a| a["error"]["code"] == -32600));
    let stored = server.get_json("/v1/conversations?customer=bad-id").await;
    assert!(
        stored["items"].as_array().unwrap().is_empty(),
        "a refused request was run: {stored}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_hmac_nonce_longer_than_the_limit_is_refused_and_not_remembered() {
    let server = crate::legacy::with_adapters().await;
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"header":{"requestId":"r-n"},"body":{"customerId":"n1","content":"hello"}}"#;
    let long = "n".repeat(129);
    let (status, refused) = crate::legacy::crm_post(&server, body, now, &long, "crm-demo-secret").await;
    assert_eq!(status, 401, "{refused}");
    let fine = "n".repeat(128);
    let (status, ok) = crate::legacy::crm_post(&server, body, now, &fine, "crm-demo-secret").await;
    assert_eq!(status, 200, "{ok}");
    server.shutdown().await;
}

/// A webhook URL carrying its secret in the query (as WeCom bots' do) never shows it in a dead letter.
#[tokio::test]
async fn a_secret_in_a_webhook_query_stays_out_of_dead_letters() {
    let closed = protofuse_testkit::http::free_port();
    let mut hook = crate::dispatch::webhook("wecom", &format!("http://127.0.0.1:{closed}/send?key=s3cret-hook-key"));
    hook.retry.max_attempts = 1;
    let server = TestServer::sqlite(|c| crate::dispatch::route_all(c, vec![hook])).await;
    let posted = server
        .client
        .post(server.url("/v1/messages"))
        .json(&message("hook"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let admin = format!("http://{}/admin/dead-letters", server.admin);
    let dead = || async {
        server
            .client
            .get(&admin)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["items"]
            .clone()
    };
    crate::dispatch::eventually("the dead letter", Duration::from_secs(10), || async {
        dead().await.as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    let items = dead().await;
    let error = items[0]["last_error"].as_str().unwrap();
    assert!(!error.contains("s3cret-hook-key"), "{error}");
    assert!(error.contains("127.0.0.1"), "the host stays, for the operator: {error}");
    server.shutdown().await;
}

/// Every refusal on the admin listener has the one error shape, including unknown routes and malformed ids.
#[tokio::test]
async fn admin_refusals_have_the_one_error_shape() {
    let server = TestServer::sqlite(|_| {}).await;
    let get = |path: &str| server.client.get(format!("http://{}{path}", server.admin)).send();
    for (path, status, code) in [
        ("/admin/nope", 404, "not_found"),
        ("/admin/dead-letters/abc", 400, "invalid_id"),
        ("/admin/dead-letters/42", 404, "dead_letter_not_found"),
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    server.shutdown().await;
}

/// Operators' view: every metric described, the build named, process metrics, per-method gRPC metrics.
#[tokio::test]
async fn metrics_are_described_and_name_the_build_and_the_grpc_methods() {
    let server = TestServer::sqlite(|_| {}).await;
    let mut grpc = grpc_client(&server).await;
    grpc.send_message(text("met", "hi")).await.unwrap();
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "# HELP protofuse_messages_ingested_total",
        "protofuse_build_info{",
        "protofuse_grpc_calls_total{method=\"SendMessage\",code=\"0\"}",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(expected), "{expected} missing from:\n{metrics}");
    }
    server.shutdown().await;
}

#[test]
fn the_version_names_the_commit_and_logs_to_a_pipe_carry_no_colour_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        version.starts_with("protofuse 0.") && version.contains(" ("),
        "{version}"
    );
    // A configuration that cannot start still logs a line or two first; stderr here is a pipe, not a terminal.
    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .args(["serve", "--config", "/nonexistent/protofuse.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains('\u{1b}'), "ANSI codes in piped output: {stderr:?}");
}

fn check_file(toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("protofuse.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("check-config")
        .arg(&file)
        .env("RUST_BACKTRACE", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// check-config names every problem with its key and what would fix it, and prints no backtrace.
#[test]
fn check_config_explains_what_is_wrong_and_how_to_fix_it() {
    let (ok, text) = check_file("[server]\nlistn = \"127.0.0.1:8080\"\n");
    assert!(!ok && text.contains("did you mean `listen`?"), "{text}");
    let (ok, text) = check_file("[server]\nlisten = \"localhost:8080\"\n");
    assert!(!ok && text.contains("an IP address and a port"), "{text}");
    let broken = "[store]\nurl = \"mysql://u:secretpw@db:notaport/x\"\n\
        [[dispatch.destinations]]\nname = \"crm\"\nkind = \"webhook\"\nurl = \"htp:/127.0.0.1:9000 hooks\"\n";
    let (ok, text) = check_file(broken);
    assert!(!ok, "{text}");
    assert!(text.contains("store.url: is not a MySQL URL"), "{text}");
    assert!(text.contains("dispatch.destinations[0].url"), "{text}");
    assert!(!text.contains("secretpw"), "a password is never echoed: {text}");
    assert!(!text.contains("stack backtrace"), "{text}");
    let knowledge = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/triage/knowledge.toml");
    let missing_model = format!(
        "[triage]\nmodel = \"nowhere/model.onnx\"\nknowledge = \"{}\"\n\
         [[dispatch.destinations]]\nname = \"triage\"\nkind = \"triage\"\n",
        knowledge.display()
    );
    let (ok, text) = check_file(&missing_model);
    assert!(!ok && text.contains("nowhere/model.onnx"), "{text}");
    assert_eq!(
        text.matches("nowhere/model.onnx").count(),
        1,
        "each cause said once: {text}"
    );
}

/// Files a configuration names resolve against the configuration's own directory, from any working directory.
#[test]
fn the_triage_model_is_found_from_any_working_directory() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .args(["triage", "--config"])
        .arg(&config)
        .arg("我要退货")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("refund"));
}

/// `api-key new` prints a key and the entry for it; pasted into a configuration, the key works with exactly the
/// scopes asked for, and `api-key digest` agrees with the entry.
#[tokio::test]
async fn a_key_made_by_the_cli_opens_what_its_scopes_allow() {
    let exe = Path::new(env!("CARGO_BIN_EXE_protofuse"));
    let out = Command::new(exe)
        .args(["api-key", "new", "--id", "crm \"east\"", "--scope", "write"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("# pf_"))
        .map(|rest| format!("pf_{rest}"))
        .expect("the key is printed");
    assert_eq!(secret.len(), 3 + 64);
    let entry = printed.split_once("[[api.keys]]").unwrap().1;

    let mut digest = Command::new(exe)
        .args(["api-key", "digest"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(digest.stdin.take().unwrap(), "{secret}").unwrap();
    let digested = digest.wait_with_output().unwrap();
    assert!(entry.contains(&format!(
        "sha256 = \"{}\"",
        String::from_utf8_lossy(&digested.stdout).trim()
    )));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("protofuse.toml");
    std::fs::write(&config, format!("[[api.keys]]{entry}")).unwrap();
    let binary = protofuse_testkit::binary::Binary::serve(exe, &config, dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let sent = client
        .post(binary.url("/v1/messages"))
        .bearer_auth(&secret)
        .json(&message("cli-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let read = client
        .get(binary.url("/v1/conversations?customer=cli-key"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 403, "the key was made with write only");
}

#[test]
fn completions_and_the_man_page_come_from_the_same_command_line() {
    let exe = env!("CARGO_BIN_EXE_protofuse");
    let bash = Command::new(exe).args(["completions", "bash"]).output().unwrap();
    let bash = String::from_utf8(bash.stdout).unwrap();
    assert!(bash.contains("check-config") && bash.contains("api-key"), "{bash}");
    let man = Command::new(exe).arg("man").output().unwrap();
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(man.starts_with(".ie") || man.contains(".TH protofuse"), "{man}");
    assert!(man.contains("dead\\-letters") || man.contains("dead-letters"), "{man}");
}

/// `[server.tls]`: the public listener speaks HTTPS with the configured certificate (HTTP/1.1 and HTTP/2 by
/// ALPN), a plain-text client gets no answer, and a missing key file is named by check-config.
#[tokio::test]
async fn the_listeners_serve_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let tls = protofuse::server::TlsConfig {
        cert: cert.clone(),
        key: key.clone(),
    };
    let server = TestServer::sqlite(|c| c.server.tls = Some(tls)).await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let trusting = |http2: bool| {
        let builder = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
            .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap());
        if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        }
        .build()
        .unwrap()
    };
    for http2 in [false, true] {
        let sent = trusting(http2)
            .post(format!("https://localhost:{port}/v1/messages"))
            .json(&message("over-tls"))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 201);
        let expected = if http2 {
            reqwest::Version::HTTP_2
        } else {
            reqwest::Version::HTTP_11
        };
        assert_eq!(sent.version(), expected);
    }
    assert!(
        server.client.get(server.url("/healthz")).send().await.is_err(),
        "plain HTTP to an HTTPS listener gets no HTTP answer"
    );
    server.shutdown().await;

    std::fs::remove_file(&key).unwrap();
    let (ok, text) = check_file(&format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    assert!(!ok && text.contains("server.tls.key"), "{text}");
}
