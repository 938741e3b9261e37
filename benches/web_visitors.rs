//! Many idle web visitors (issue 19, "Scale"): server memory per open visitor connection, and the latency of
//! delivering an agent's reply to 1,000 active visitors while the others stay idle, over WebSocket and over
//! Server-Sent Events, next to a bare axum server holding the same connections in the same run.
//!
//! Each server runs as a child process (this same binary, re-executed with `WEB_BENCH_ROLE`), so its RSS
//! (`/proc/<pid>/status`) holds the server's memory only, not the 20,000 clients'. Per target: start the
//! server, create the visitors' sessions, read its RSS, open every connection (each visitor its own session
//! token, clients spread over 127.0.0.2–127.0.0.17 so no source address runs out of ports), wait for each
//! connection's `ready`, let it settle, read the RSS again: (after − before) / connections. Then the first
//! `WEB_BENCH_ACTIVE` visitors each start a conversation (`POST /web/messages`) and `WEB_BENCH_AGENTS`
//! concurrent agents reply to them through the REST API (`POST /v1/messages` with the conversation id),
//! `WEB_BENCH_ROUNDS` replies per active visitor; latency is from sending the POST to the frame arriving at the
//! visitor's socket. The baseline's server is bare axum (default WebSocket configuration, `Sse` with a keep-alive)
//! holding the same connections, each with an unbounded channel a `POST /push/{id}` writes into: no store, no
//! authentication.
//!
//! Run: `cargo bench --bench web_visitors` (env: `WEB_BENCH_CONNECTIONS`, default 20000; `WEB_BENCH_ACTIVE`,
//! default 1000; `WEB_BENCH_ROUNDS`, default 5; `WEB_BENCH_AGENTS`, default 32; `WEB_BENCH_TARGETS`, e.g.
//! `ws` or `sse`, default both; `WEB_BENCH_NO_BASELINE` set: protofuse only; `WEB_BENCH_SERVER_WRAPPER`: a
//! command the server children run under, e.g. `heaptrack -o /tmp/web` for what holds their memory). It raises
//! its descriptor limit to the connections plus 4,096 (the hard limit too where the process may, i.e. with
//! `CAP_SYS_RESOURCE`); the clients and each server hold one descriptor per connection, so where the hard limit
//! stays at 20,000 the largest run is about 19,500 connections (it says so before starting). Compare the ratios to the baseline, not absolute figures across machines.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message as ServerFrame, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use protofuse::config::Config;
use protofuse::server::web::{Secret, SiteConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_tungstenite::tungstenite::Message as ClientFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use support::{env_or, histogram};

/// Which server a child process runs.
const ROLE: &str = "WEB_BENCH_ROLE";
const SESSION_KEY: &str = "bench-session-key-0123456789abcdef0123456789";
const SITE: &str = "bench";
/// Connections opened at once (each waits for its `ready`).
const OPENING: usize = 64;
/// How long a frame may take before the delivery counts as an error.
const FRAME_WAIT: Duration = Duration::from_secs(30);
/// Client source addresses: 16 × ~28,000 ephemeral ports.
const SOURCES: u8 = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Baseline,
    Protofuse,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    WebSocket,
    Sse,
}

struct Knobs {
    connections: usize,
    active: usize,
    rounds: usize,
    agents: usize,
}

fn main() {
    let want = env_or("WEB_BENCH_CONNECTIONS", 20_000) + 4096;
    let limit = raise_descriptor_limit(want);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var(ROLE).as_deref() {
        Ok("protofuse") => runtime.block_on(serve_protofuse()),
        Ok("baseline") => runtime.block_on(serve_baseline()),
        _ => runtime.block_on(drive(limit)),
    }
}

/// Raises `RLIMIT_NOFILE` to `want` (root may raise the hard limit, up to `fs.nr_open`), or as far as the hard
/// limit allows; the children inherit it. Returns the soft limit in force.
fn raise_descriptor_limit(want: u64) -> u64 {
    let nofile = rlimit::Resource::NOFILE;
    let (soft, hard) = nofile.get().unwrap();
    if soft >= want {
        return soft;
    }
    if nofile.set(want, want.max(hard)).is_ok() {
        return want;
    }
    let _ = nofile.set(hard, hard);
    nofile.get().unwrap().0
}

/// A child server's life: until the driver closes its stdin (or dies).
async fn until_stdin_closes() {
    let _ = tokio::task::spawn_blocking(|| {
        use std::io::Read as _;
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// The servers (child processes)

/// protofuse with the web channel on and the listener's and channel's connection caps raised for the run;
/// otherwise the default configuration (SQLite, `synchronous=full`).
async fn serve_protofuse() {
    let connections = env_or("WEB_BENCH_CONNECTIONS", 20_000) as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = format!("sqlite://{}", dir.path().join("bench.db").display());
    // The defaults size the listener for a 1,024-descriptor limit and a few clients behind one address.
    config.server.max_connections = connections + 2048;
    config.server.max_connections_per_client = connections + 2048;
    config.web.enabled = true;
    config.web.session_key = Some(Secret::from(SESSION_KEY));
    config.web.max_connections = connections + 1024;
    // Every visitor here comes from one address, as no real site's visitors do.
    config.web.anonymous_sessions_per_minute = 0;
    config.web.sites.insert(
        SITE.to_owned(),
        SiteConfig {
            key: None,
            anonymous: true,
            origins: Vec::new(),
        },
    );
    let running = protofuse::app::start(&config).await.unwrap();
    println!("ready {}", running.local_addr());
    until_stdin_closes().await;
}

/// The baseline's open connections: a channel per visitor id that `POST /push/{id}` writes into.
#[derive(Default)]
struct Hub {
    visitors: Mutex<HashMap<u64, mpsc::UnboundedSender<String>>>,
}

impl Hub {
    fn register(&self, id: u64) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.visitors.lock().unwrap().insert(id, tx);
        rx
    }
}

#[derive(Deserialize)]
struct Id {
    id: u64,
}

const READY: &str = r#"{"type":"ready"}"#;

/// Bare axum: `GET /ws?id=` (default WebSocket configuration), `GET /events?id=` (SSE) and `POST /push/{id}`.
async fn serve_baseline() {
    let app = axum::Router::new()
        .route("/ws", get(baseline_ws))
        .route("/events", get(baseline_events))
        .route("/push/{id}", post(baseline_push))
        .with_state(Arc::new(Hub::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("ready {}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    until_stdin_closes().await;
}

async fn baseline_ws(State(hub): State<Arc<Hub>>, Query(id): Query<Id>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| baseline_socket(hub, id.id, socket))
}

async fn baseline_socket(hub: Arc<Hub>, id: u64, mut socket: WebSocket) {
    let mut pushed = hub.register(id);
    if socket.send(ServerFrame::Text(READY.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            received = socket.recv() => if !matches!(received, Some(Ok(_))) { break },
            Some(text) = pushed.recv() => if socket.send(ServerFrame::Text(text.into())).await.is_err() { break },
        }
    }
    hub.visitors.lock().unwrap().remove(&id);
}

async fn baseline_events(
    State(hub): State<Arc<Hub>>,
    Query(id): Query<Id>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let pushed = hub.register(id.id);
    let ready = futures::stream::once(async { Ok(Event::default().event("ready").data(READY)) });
    let messages = UnboundedReceiverStream::new(pushed).map(|text| Ok(Event::default().event("message").data(text)));
    Sse::new(ready.chain(messages)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn baseline_push(State(hub): State<Arc<Hub>>, Path(id): Path<u64>, body: String) -> StatusCode {
    let sent = hub.visitors.lock().unwrap().get(&id).map(|tx| tx.send(body).is_ok());
    if sent == Some(true) {
        StatusCode::CREATED
    } else {
        StatusCode::NOT_FOUND
    }
}

// ---------------------------------------------------------------------------------------------------------
// The driver

struct Outcome {
    name: String,
    opened: usize,
    open_errors: usize,
    open_seconds: f64,
    rss_before_kib: u64,
    rss_after_kib: u64,
    rss_active_kib: u64,
    delivery: Histogram<u64>,
    answered: Histogram<u64>,
    delivery_errors: u64,
}

impl Outcome {
    fn bytes_per_connection(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0 / self.opened.max(1) as f64
    }
}

fn ms(histogram: &Histogram<u64>, q: f64) -> f64 {
    histogram.value_at_quantile(q) as f64 / 1000.0
}

async fn drive(limit: u64) {
    let knobs = Knobs {
        connections: env_or("WEB_BENCH_CONNECTIONS", 20_000) as usize,
        active: 0,
        rounds: env_or("WEB_BENCH_ROUNDS", 5) as usize,
        agents: env_or("WEB_BENCH_AGENTS", 32) as usize,
    };
    let knobs = Knobs {
        active: (env_or("WEB_BENCH_ACTIVE", 1_000) as usize).min(knobs.connections),
        ..knobs
    };
    if (limit as usize) < knobs.connections + 400 {
        eprintln!(
            "warning: the descriptor limit ({limit}) leaves too little room for {} connections (the hard limit \
             could not be raised); expect failed connections, or set WEB_BENCH_CONNECTIONS below {}",
            knobs.connections,
            (limit as usize).saturating_sub(400)
        );
    }
    let targets = std::env::var("WEB_BENCH_TARGETS").unwrap_or_else(|_| "ws,sse".to_owned());
    println!(
        "descriptor limit {limit}; {} connections, {} active × {} replies, {} agents; load average {}",
        knobs.connections,
        knobs.active,
        knobs.rounds,
        knobs.agents,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let mut results = Vec::new();
    for (transport, label) in [(Transport::WebSocket, "ws"), (Transport::Sse, "sse")] {
        if !targets.split(',').any(|t| t.trim() == label) {
            continue;
        }
        let mut pair = Vec::new();
        for server in [Server::Baseline, Server::Protofuse] {
            // Without the baseline (a profiling run of protofuse alone), ratios are against protofuse itself.
            if server == Server::Baseline && std::env::var_os("WEB_BENCH_NO_BASELINE").is_some() {
                continue;
            }
            pair.push(run(server, transport, &knobs).await);
        }
        results.push(pair);
    }
    println!(
        "\n{} idle connections per target, {} of them active ({} replies each, {} concurrent agents); one machine; \
         goal ≤ 10 KB per connection, the seeds' Go system ~23 KB\n",
        knobs.connections, knobs.active, knobs.rounds, knobs.agents
    );
    println!(
        "| target | open | open errors | open s | RSS before MiB | RSS after MiB | KiB per connection | vs baseline \
         | delivery p50 ms | delivery p99 ms | p99 vs baseline | POST answered p99 ms | delivery errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for pair in &results {
        let baseline = &pair[0];
        for o in pair {
            println!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2}x | {:.2} | {:.2} | {:.1}x | {:.2} | {} |",
                o.name,
                o.opened,
                o.open_errors,
                o.open_seconds,
                o.rss_before_kib as f64 / 1024.0,
                o.rss_after_kib as f64 / 1024.0,
                o.bytes_per_connection() / 1024.0,
                o.bytes_per_connection() / baseline.bytes_per_connection(),
                ms(&o.delivery, 0.5),
                ms(&o.delivery, 0.99),
                ms(&o.delivery, 0.99) / ms(&baseline.delivery, 0.99),
                ms(&o.answered, 0.99),
                o.delivery_errors,
            );
        }
    }
    println!("\nRSS after the active phase (MiB):");
    for o in results.iter().flatten() {
        println!("- {}: {:.1}", o.name, o.rss_active_kib as f64 / 1024.0);
    }
}

/// This binary again as the `role` server; returns the child and its address.
async fn spawn_server(role: &str) -> (Child, SocketAddr) {
    // A profiler around the server only (e.g. `heaptrack -o /tmp/web`): what holds each connection's memory.
    let wrapper = std::env::var("WEB_BENCH_SERVER_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(std::env::current_exe().unwrap());
            command
        }
        None => Command::new(std::env::current_exe().unwrap()),
    };
    let mut child = command
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next_line().await.unwrap().expect("the server prints its address");
        if let Some(addr) = line.strip_prefix("ready ") {
            break addr.parse().unwrap();
        }
    };
    // Anything it prints later is drained, so a write never fails on a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// What a visitor connects with: its query string, and its session token (protofuse).
struct Visitor {
    query: String,
    token: Option<String>,
}

/// A frame (its text) and when it arrived.
type Arrival = (Instant, String);

async fn run(server: Server, transport: Transport, knobs: &Knobs) -> Outcome {
    let name = match (server, transport) {
        (Server::Baseline, Transport::WebSocket) => "bare axum WebSocket (baseline)",
        (Server::Protofuse, Transport::WebSocket) => "protofuse /web/ws",
        (Server::Baseline, Transport::Sse) => "bare axum SSE (baseline)",
        (Server::Protofuse, Transport::Sse) => "protofuse /web/events",
    };
    eprintln!("== {name}");
    let role = if server == Server::Protofuse {
        "protofuse"
    } else {
        "baseline"
    };
    let (mut child, addr) = spawn_server(role).await;
    let pid = child.id().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(knobs.agents + OPENING)
        .build()
        .unwrap();
    let visitors = match server {
        Server::Baseline => (0..knobs.connections)
            .map(|i| Visitor {
                query: format!("id={i}"),
                token: None,
            })
            .collect(),
        Server::Protofuse => sessions(&http, addr, knobs.connections).await,
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = rss_kib(pid);

    let path = match (server, transport) {
        (Server::Baseline, Transport::WebSocket) => "/ws",
        (Server::Protofuse, Transport::WebSocket) => "/web/ws",
        (Server::Baseline, Transport::Sse) => "/events",
        (Server::Protofuse, Transport::Sse) => "/web/events",
    };
    let started = Instant::now();
    let (handles, receivers, open_errors) = open_all(addr, path, transport, &visitors, knobs.active).await;
    let open_seconds = started.elapsed().as_secs_f64();
    eprintln!("{} open in {open_seconds:.1} s", handles.len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_kib = rss_kib(pid);

    // The active visitors' conversations (protofuse), then the agents' replies.
    let conversations = match server {
        Server::Baseline => Vec::new(),
        Server::Protofuse => start_conversations(&http, addr, &visitors[..knobs.active]).await,
    };
    let (delivery, answered, delivery_errors) = deliver(&http, addr, server, &conversations, &receivers, knobs).await;
    let rss_active_kib = rss_kib(pid);

    for handle in &handles {
        handle.abort();
    }
    drop(child.stdin.take());
    if tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    Outcome {
        name: name.to_owned(),
        opened: handles.len(),
        open_errors,
        open_seconds,
        rss_before_kib,
        rss_after_kib,
        rss_active_kib,
        delivery,
        answered,
        delivery_errors,
    }
}

/// The receivers of the active visitors' frames, by visitor.
type Receivers = Vec<Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<Arrival>>>>;

/// Opens every visitor's connection, `OPENING` at a time: the connections' reading tasks, the active
/// visitors' receivers, and how many failed to open.
async fn open_all(
    addr: SocketAddr,
    path: &str,
    transport: Transport,
    visitors: &[Visitor],
    active: usize,
) -> (Vec<JoinHandle<()>>, Receivers, usize) {
    let opened: Vec<_> = futures::stream::iter(visitors.iter().enumerate())
        .map(|(i, visitor)| {
            let url_path = format!("{path}?{}", visitor.query);
            async move { (i, open(addr, i, &url_path, transport, i < active).await) }
        })
        .buffer_unordered(OPENING)
        .collect()
        .await;
    let mut handles = Vec::new();
    let mut receivers: Receivers = (0..active).map(|_| None).collect();
    let mut open_errors = 0;
    let mut first_error = None;
    for (i, result) in opened {
        match result {
            Ok((handle, rx)) => {
                handles.push(handle);
                if let Some(rx) = rx {
                    receivers[i] = Some(tokio::sync::Mutex::new(rx));
                }
            }
            Err(e) => {
                open_errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        eprintln!("{open_errors} connections failed to open; the first: {e}");
    }
    (handles, receivers, open_errors)
}

/// One anonymous session per visitor (`POST /web/session`), `OPENING` at a time.
async fn sessions(http: &reqwest::Client, addr: SocketAddr, count: usize) -> Vec<Visitor> {
    let url = format!("http://{addr}/web/session");
    futures::stream::iter(0..count)
        .map(|_| {
            let request = http.post(&url).json(&json!({"site": SITE}));
            async move {
                let body: Value = request.send().await.unwrap().json().await.unwrap();
                let token = body["token"].as_str().expect("a session token").to_owned();
                Visitor {
                    query: format!("token={token}"),
                    token: Some(token),
                }
            }
        })
        .buffered(OPENING)
        .collect()
        .await
}

/// A TCP connection from source address 127.0.0.(2 + i % SOURCES).
async fn connect(addr: SocketAddr, i: usize) -> std::io::Result<TcpStream> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(SOURCES)) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens one visitor connection and waits for its `ready`; then a task keeps reading it (answering the
/// server's pings) and, for an active visitor, hands every frame's text and arrival time to the receiver.
async fn open(
    addr: SocketAddr,
    i: usize,
    path: &str,
    transport: Transport,
    active: bool,
) -> Result<(JoinHandle<()>, Option<mpsc::UnboundedReceiver<Arrival>>), String> {
    let stream = connect(addr, i).await.map_err(|e| format!("connect: {e}"))?;
    let (tx, rx) = if active {
        let (tx, rx) = mpsc::unbounded_channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let handle = match transport {
        Transport::WebSocket => open_ws(addr, path, stream, tx).await?,
        Transport::Sse => open_sse(path, stream, tx).await?,
    };
    Ok((handle, rx))
}

async fn open_ws(
    addr: SocketAddr,
    path: &str,
    stream: TcpStream,
    tx: Option<mpsc::UnboundedSender<Arrival>>,
) -> Result<JoinHandle<()>, String> {
    // The clients' memory is not measured, but 20,000 of tungstenite's default 128 KiB read buffers would
    // still be 2.5 GiB on the machine the servers share.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(format!("ws://{addr}{path}"), stream, Some(config))
            .await
            .map_err(|e| format!("upgrade: {e}"))?;
    match tokio::time::timeout(FRAME_WAIT, socket.next()).await {
        Ok(Some(Ok(ClientFrame::Text(text)))) if text.contains("\"ready\"") => {}
        other => return Err(format!("no ready frame: {other:?}")),
    }
    Ok(tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            if let (Some(tx), ClientFrame::Text(text)) = (&tx, frame) {
                let _ = tx.send((Instant::now(), text.to_string()));
            }
        }
    }))
}

async fn open_sse(
    path: &str,
    stream: TcpStream,
    tx: Option<mpsc::UnboundedSender<Arrival>>,
) -> Result<JoinHandle<()>, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = hyper::Request::get(path)
        .header("host", "bench")
        .header("accept", "text/event-stream")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status()));
    }
    let mut events = SseReader {
        body: response.into_body(),
        buffer: String::new(),
        _sender: sender,
    };
    match tokio::time::timeout(FRAME_WAIT, events.next()).await {
        Ok(Some((event, _))) if event == "ready" => {}
        other => return Err(format!("no ready event: {other:?}")),
    }
    Ok(tokio::spawn(async move {
        while let Some((event, data)) = events.next().await {
            if let Some(tx) = &tx
                && event == "message"
            {
                let _ = tx.send((Instant::now(), data));
            }
        }
        connection.abort();
    }))
}

/// An event stream's events, as (event, data); heartbeat comments are skipped.
struct SseReader {
    body: hyper::body::Incoming,
    buffer: String,
    /// Kept so the connection is not wound down while the stream is open.
    _sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl SseReader {
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            // Events are blocks ending in a blank line.
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        v.trim().clone_into(&mut event);
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !event.is_empty() || !data.is_empty() {
                    return Some((event, data));
                }
                continue;
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(chunk) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    }
}

/// Each active visitor says hello (`POST /web/messages`), which opens its conversation; returns their ids.
async fn start_conversations(http: &reqwest::Client, addr: SocketAddr, visitors: &[Visitor]) -> Vec<String> {
    let url = format!("http://{addr}/web/messages");
    futures::stream::iter(visitors.iter().enumerate())
        .map(|(i, visitor)| {
            let request = http
                .post(&url)
                .bearer_auth(visitor.token.as_deref().unwrap())
                .json(&json!({"client_id": format!("hello-{i}"), "text": format!("hello, I am visitor {i}")}));
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                assert_eq!(status, StatusCode::CREATED, "{body}");
                body["message"]["conversation_id"].as_str().unwrap().to_owned()
            }
        })
        .buffered(32)
        .collect()
        .await
}

/// `rounds` replies to every active visitor from `agents` concurrent agents: each sends one and waits for it to
/// arrive. Returns (POST → frame at the visitor, POST → answer, errors), in microseconds.
async fn deliver(
    http: &reqwest::Client,
    addr: SocketAddr,
    server: Server,
    conversations: &[String],
    receivers: &Receivers,
    knobs: &Knobs,
) -> (Histogram<u64>, Histogram<u64>, u64) {
    let plan = Plan {
        http,
        addr,
        server,
        conversations,
        receivers,
        active: knobs.active as u64,
        total: (knobs.active * knobs.rounds) as u64,
        next: AtomicU64::new(0),
    };
    let results = futures::future::join_all((0..knobs.agents).map(|_| agent(&plan))).await;
    let (mut delivery, mut answered, mut errors) = (histogram(), histogram(), 0);
    for (d, a, e) in results {
        delivery.add(d).unwrap();
        answered.add(a).unwrap();
        errors += e;
    }
    (delivery, answered, errors)
}

/// What the agents share: where to post, the visitors' conversations and receivers, and the next reply's
/// number.
struct Plan<'a> {
    http: &'a reqwest::Client,
    addr: SocketAddr,
    server: Server,
    conversations: &'a [String],
    receivers: &'a Receivers,
    active: u64,
    total: u64,
    next: AtomicU64,
}

/// One agent: takes the next reply, sends it, waits for the visitor to have it; until all are sent.
async fn agent(plan: &Plan<'_>) -> (Histogram<u64>, Histogram<u64>, u64) {
    let (mut delivery, mut answered, mut errors) = (histogram(), histogram(), 0u64);
    let addr = plan.addr;
    loop {
        let k = plan.next.fetch_add(1, Ordering::Relaxed);
        if k >= plan.total {
            break;
        }
        let visitor = (k % plan.active) as usize;
        let marker = format!("reply {visitor}/{}", k / plan.active);
        let Some(receiver) = &plan.receivers[visitor] else {
            errors += 1;
            continue;
        };
        let mut receiver = receiver.lock().await;
        let request = match plan.server {
            Server::Protofuse => plan.http.post(format!("http://{addr}/v1/messages")).json(&json!({
                "conversation_id": plan.conversations[visitor], "channel": "web", "direction": "outbound",
                "sender": {"role": "agent", "external_id": "agent-7", "display_name": "Mia"},
                "content": {"type": "text", "text": marker}})),
            Server::Baseline => plan.http.post(format!("http://{addr}/push/{visitor}")).body(
                json!({"type": "message", "seq": k.to_string(),
                    "message": {"direction": "outbound", "sender": {"role": "agent", "display_name": "Mia"},
                    "content": {"type": "text", "text": marker}}})
                .to_string(),
            ),
        };
        let sent = Instant::now();
        let post = async {
            let response = request.send().await.ok()?;
            let ok = response.status().is_success();
            let _ = response.bytes().await;
            ok.then(Instant::now)
        };
        let frame = async {
            tokio::time::timeout(FRAME_WAIT, async {
                while let Some((at, text)) = receiver.recv().await {
                    let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                    if frame["message"]["content"]["text"] == marker.as_str() {
                        return Some(at);
                    }
                }
                None
            })
            .await
            .ok()
            .flatten()
        };
        match tokio::join!(post, frame) {
            (Some(answered_at), Some(arrived_at)) => {
                delivery.record((arrived_at - sent).as_micros() as u64).unwrap();
                answered.record((answered_at - sent).as_micros() as u64).unwrap();
            }
            _ => errors += 1,
        }
    }
    (delivery, answered, errors)
}
