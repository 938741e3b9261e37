//! `GET /web/events` as the public listener serves it outside hyper (`src/server/stream.rs`), over raw sockets:
//! the response head and chunked framing, resume with `Last-Event-ID`, HTTP/1.0, refused heads (oversized,
//! malformed, pipelined, with a body) with a clear HTTP error, other requests on the same listener still served
//! by hyper with keep-alive, and the stream over TLS (HTTP/1.1 by ALPN, and HTTP/2 through hyper).

use std::collections::HashMap;

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::server::TestServer;
use crate::support::web::{self, GREETING, SITE_ORIGIN, WAIT, agent_reply, text};

/// One raw HTTP/1 connection and what it has read but not consumed.
struct Raw {
    socket: TcpStream,
    read: Vec<u8>,
}

/// A response head: the status and the headers (names lowercased).
struct Head {
    status: u16,
    headers: HashMap<String, String>,
}

/// One SSE event: its `event:`, `id:` and `data:` fields.
#[derive(Debug, Default)]
struct Event {
    event: String,
    id: String,
    data: String,
}

impl Raw {
    async fn open(server: &TestServer) -> Self {
        let addr = server.base.trim_start_matches("http://");
        Self {
            socket: TcpStream::connect(addr).await.unwrap(),
            read: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    /// Reads more; `false` at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.socket.read(&mut buf))
            .await
            .expect("bytes in time")
            .unwrap_or(0);
        self.read.extend_from_slice(&buf[..n]);
        n > 0
    }

    async fn head(&mut self) -> Head {
        loop {
            if let Some(end) = find(&self.read, b"\r\n\r\n") {
                let head = String::from_utf8(self.read.drain(..end + 4).collect()).unwrap();
                let mut lines = head.lines();
                let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
                let headers = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
                    .collect();
                return Head { status, headers };
            }
            assert!(self.fill().await, "the connection closed before a response head");
        }
    }

    /// The next chunk of a chunked body; `None` for the last (empty) chunk.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(line_end) = find(&self.read, b"\r\n") {
                let size = usize::from_str_radix(std::str::from_utf8(&self.read[..line_end]).unwrap(), 16).unwrap();
                let total = line_end + 2 + size + 2;
                if self.read.len() >= total {
                    let chunk = self.read[line_end + 2..line_end + 2 + size].to_vec();
                    assert_eq!(&self.read[total - 2..total], b"\r\n", "a chunk ends in CRLF");
                    self.read.drain(..total);
                    return (size > 0).then_some(chunk);
                }
            }
            assert!(self.fill().await, "the connection closed inside a chunk");
        }
    }

    /// The next event of a chunked event stream (comments skipped).
    async fn event(&mut self, pending: &mut String) -> Event {
        loop {
            if let Some(end) = pending.find("\n\n") {
                let block: String = pending.drain(..end + 2).collect();
                let mut event = Event::default();
                for line in block.lines() {
                    if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                        match field {
                            "event" => event.event = value,
                            "id" => event.id = value,
                            "data" => event.data.push_str(&value),
                            _ => {}
                        }
                    }
                }
                if !event.event.is_empty() || !event.data.is_empty() {
                    return event;
                }
                continue;
            }
            let chunk = self.chunk().await.expect("the stream is open");
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Reads until the server closes the connection; everything after what was consumed.
    async fn rest(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.read)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn message(event: &Event) -> Value {
    assert_eq!(event.event, "message", "{event:?}");
    let frame: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(frame["seq"], event.id.as_str(), "the event id is the sequence");
    frame["message"].clone()
}

fn events_request(token: &str, extra: &str) -> Vec<u8> {
    format!("GET /web/events?token={token} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{extra}\r\n")
        .into_bytes()
}

#[tokio::test]
async fn the_event_stream_is_served_chunked_with_cors_and_resumes_after_last_event_id() {
    let server = web::server(|_| {}).await;
    let token = web::anonymous(&server).await;
    let (status, sent) = web::post_message(&server, &token, "c-1", "hello").await;
    assert_eq!(status, 201);
    let conversation = sent["message"]["conversation_id"].as_str().unwrap().to_owned();

    let mut raw = Raw::open(&server).await;
    raw.send(&events_request(
        &token,
        &format!("Origin: {SITE_ORIGIN}\r\nConnection: keep-alive\r\n"),
    ))
    .await;
    let head = raw.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-type"], "text/event-stream");
    assert_eq!(head.headers["transfer-encoding"], "chunked");
    assert_eq!(
        head.headers["connection"], "close",
        "a stream's connection serves nothing after it"
    );
    assert_eq!(head.headers["access-control-allow-origin"], SITE_ORIGIN);
    assert_eq!(head.headers["x-accel-buffering"], "no");
    assert!(head.headers.contains_key("date"));
    let mut pending = String::new();
    assert_eq!(raw.event(&mut pending).await.event, "ready");
    let own = raw.event(&mut pending).await;
    assert_eq!(message(&own)["client_id"], "c-1");
    let bot = raw.event(&mut pending).await;
    assert_eq!(text(&message(&bot)), GREETING);
    agent_reply(&server, &conversation, "live").await;
    assert_eq!(text(&message(&raw.event(&mut pending).await)), "live");
    drop(raw);

    // Resume after the visitor's own message: the bot's answer and the agent's, once each, then new ones.
    let mut raw = Raw::open(&server).await;
    raw.send(&events_request(&token, &format!("Last-Event-ID: {}\r\n", own.id)))
        .await;
    assert_eq!(raw.head().await.status, 200);
    let mut pending = String::new();
    assert_eq!(raw.event(&mut pending).await.event, "ready");
    assert_eq!(raw.event(&mut pending).await.id, bot.id);
    assert_eq!(text(&message(&raw.event(&mut pending).await)), "live");
    agent_reply(&server, &conversation, "sentinel").await;
    assert_eq!(text(&message(&raw.event(&mut pending).await)), "sentinel");

    // HTTP/1.0 has no chunks: the body runs until the connection closes.
    let mut old = Raw::open(&server).await;
    old.send(format!("GET /web/events?token={token} HTTP/1.0\r\n\r\n").as_bytes())
        .await;
    let head = old.head().await;
    assert_eq!(head.status, 200);
    assert!(!head.headers.contains_key("transfer-encoding"), "{:?}", head.headers);
    while !String::from_utf8_lossy(&old.read).contains("event: ready") {
        assert!(old.fill().await);
    }

    // Shutdown ends the stream cleanly: the last chunk, then the close.
    server.shutdown().await;
    while raw.chunk().await.is_some() {}
    assert!(raw.rest().await.is_empty());
}

#[tokio::test]
async fn bad_oversized_pipelined_and_bodied_stream_heads_get_a_clear_error_and_a_close() {
    let server = web::server(|_| {}).await;
    let token = web::anonymous(&server).await;
    let cases: [(&str, Vec<u8>, u16, &str); 5] = [
        (
            "oversized",
            events_request(&token, &format!("X-Padding: {}\r\n", "a".repeat(9000))),
            431,
            "head_too_large",
        ),
        (
            "malformed",
            b"GET /web/events HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            "pipelined",
            [
                events_request(&token, ""),
                b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            ]
            .concat(),
            400,
            "pipelining_unsupported",
        ),
        (
            "with a body",
            events_request(&token, "Content-Length: 2\r\n"),
            400,
            "unexpected_body",
        ),
        ("no token", events_request("", ""), 401, "token_required"),
    ];
    for (name, request, status, code) in cases {
        let mut raw = Raw::open(&server).await;
        raw.send(&request).await;
        let head = raw.head().await;
        assert_eq!(head.status, status, "{name}");
        assert_eq!(head.headers["connection"], "close", "{name}");
        let length: usize = head.headers["content-length"].parse().unwrap();
        let body = raw.rest().await;
        assert_eq!(body.len(), length, "{name}: the body, then the close");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn other_requests_on_the_public_listener_stay_with_hyper_and_keep_alive() {
    let server = web::server(|_| {}).await;
    let mut raw = Raw::open(&server).await;
    // A path that starts like the stream's, sent in two pieces: the listener waits for the path to end.
    raw.send(b"GET /web/ev").await;
    raw.send(b"entsx HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let head = raw.head().await;
    assert_eq!(head.status, 404);
    assert_ne!(head.headers.get("connection").map(String::as_str), Some("close"));
    raw.body(&head).await;
    // The CORS preflight of the stream path is not the stream: hyper answers it, on the same connection.
    raw.send(
        format!(
            "OPTIONS /web/events HTTP/1.1\r\nHost: test\r\nOrigin: {SITE_ORIGIN}\r\n\
             Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: last-event-id\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let head = raw.head().await;
    assert!(head.status == 200 || head.status == 204, "{}", head.status);
    assert_eq!(head.headers["access-control-allow-origin"], SITE_ORIGIN);
    raw.body(&head).await;
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await;
    assert_eq!(raw.head().await.status, 200);
    server.shutdown().await;
}

impl Raw {
    /// Reads the body of a response whose head was just read, by its `content-length` (0 when absent).
    async fn body(&mut self, head: &Head) -> Vec<u8> {
        let length: usize = head.headers.get("content-length").map_or(0, |v| v.parse().unwrap());
        while self.read.len() < length {
            assert!(self.fill().await, "the connection closed inside a body");
        }
        self.read.drain(..length).collect()
    }
}

/// The JSON answer to `request`.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The stream over `[server.tls]`: HTTP/1.1 (served outside hyper after the handshake) and HTTP/2 (by ALPN,
/// through hyper), both carrying the `ready` event and a live message.
#[tokio::test]
async fn the_event_stream_works_over_tls_on_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let tls = protofuse::server::TlsConfig { cert, key };
    let server = web::server(|c| c.server.tls = Some(tls)).await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    for http2 in [false, true] {
        let builder = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
            .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap());
        let client = if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        }
        .build()
        .unwrap();
        let base = format!("https://localhost:{port}");
        let session = answer(
            client
                .post(format!("{base}/web/session"))
                .json(&json!({"site": "shop"})),
        )
        .await;
        let token = session["token"].as_str().unwrap();
        let response = client
            .get(format!("{base}/web/events?token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "http2: {http2}");
        let expected = if http2 {
            reqwest::Version::HTTP_2
        } else {
            reqwest::Version::HTTP_11
        };
        assert_eq!(response.version(), expected);
        let mut events = response.bytes_stream().eventsource();
        let ready = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ready.event, "ready");
        let message = json!({"client_id": "c-1", "text": "over tls"});
        let sent = answer(
            client
                .post(format!("{base}/web/messages"))
                .bearer_auth(token)
                .json(&message),
        )
        .await;
        let own = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(own.id, sent["seq"].as_str().unwrap(), "http2: {http2}");
    }
    server.shutdown().await;
}

/// A connection from 127.0.0.2, so the listener's per-address count sees only this test's sockets (the shared
/// client's pooled connections come from 127.0.0.1).
async fn from_second_address(server: &TestServer) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    socket
        .connect(server.base.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap()
}

/// Whether the listener answers a request on a new connection from 127.0.0.2 (a refused one is closed unread).
async fn answered(server: &TestServer) -> bool {
    let mut raw = Raw {
        socket: from_second_address(server).await,
        read: Vec::new(),
    };
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await;
    !raw.rest().await.is_empty()
}

/// Upgraded and streaming connections keep their place in the listener's per-address count for as long as they
/// are open (hyper hands an upgraded socket over and forgets it; the count lives with the socket).
#[tokio::test]
async fn open_websockets_and_event_streams_keep_their_place_in_the_listeners_counts() {
    let server = web::server(|config| config.server.max_connections_per_client = 2).await;
    let token = web::anonymous(&server).await;
    let url = web::ws_url(&server, &token, None);
    let (mut ws, _) = tokio_tungstenite::client_async(url, from_second_address(&server).await)
        .await
        .expect("the upgrade is accepted");
    assert!(ws.next().await.unwrap().unwrap().is_text(), "the ready frame");
    let mut stream = Raw {
        socket: from_second_address(&server).await,
        read: Vec::new(),
    };
    stream.send(&events_request(&token, "")).await;
    assert_eq!(stream.head().await.status, 200);
    assert!(
        !answered(&server).await,
        "a third connection from the address is refused"
    );
    drop(ws);
    // The server notices the close when it next reads; wait for the place to come back, within a deadline.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !answered(&server).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed WebSocket's place came back"
        );
    }
    drop(stream);
    server.shutdown().await;
}
