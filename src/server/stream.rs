//! Event streams over HTTP/1 served outside hyper's connection dispatcher: the web channel's
//! `GET /web/events` on the public listener (`listen.rs` decides, per new connection, which path it takes).
//!
//! Why: hyper 1.x holds an 8 KiB read buffer and an 8 KiB header write buffer for a connection's whole life
//! (and refuses a maximum under 8 KiB), two thirds of what an idle SSE visitor cost the server (BENCHMARKS.md,
//! "Idle web visitors"). An event stream's request is a bodyless GET and its response lasts as long as the
//! connection, so after the head nothing needs reading and each event is written as it comes: no buffer has to
//! outlive one write.
//!
//! What it handles: a connection whose first request line is `GET <stream path>[?query] HTTP/1.x`. The head is
//! read (at most [`MAX_HEAD_BYTES`], within the header-read timeout) and parsed with `httparse`; the request
//! goes to the listener's own application like any other (same routes, middleware, CORS, authentication,
//! `Last-Event-ID`, error answers). Here only the HTTP/1 framing is done: the response head, the body chunked
//! (HTTP/1.1) or delimited by the close (HTTP/1.0), each frame flushed as it comes, `Connection: close`.
//!
//! What it refuses: a head over [`MAX_HEAD_BYTES`] (431), one `httparse` rejects or that names a header
//! `http` cannot hold (400), a request with a body, and bytes sent after the head (pipelining, 400); each with
//! `Connection: close`. A stream's response never ends while the visitor listens, so a second request on the
//! connection could never be answered: it is refused rather than left waiting. Every other connection (other
//! paths, other methods such as the CORS preflight, HTTP/2) goes to hyper unchanged, the bytes read while
//! deciding replayed first ([`Replay`]).
//!
//! Must never: decide what a stream carries (its route does), or hold a buffer between writes.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use axum::response::IntoResponse as _;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use super::error::ApiError;

/// The largest request head read: a session token in the query (a few hundred bytes) and a browser's headers
/// (about 1 KiB), with room to spare; hyper's own default is larger, but this path serves only stream paths.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;

/// What the first read asks for; most heads arrive whole in it.
const FIRST_READ_BYTES: usize = 1024;

/// A visitor whose client takes no bytes for this long is not reading (its receive window is full): the
/// connection is dropped rather than hold a task and a slot for it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most headers a stream's request may carry.
const MAX_HEADERS: usize = 48;

/// The paths whose `GET` a listener serves here; empty on listeners without streams.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Streams(&'static [&'static str]);

impl Streams {
    /// No stream paths: every connection goes to hyper.
    pub(crate) const NONE: Self = Self(&[]);

    /// `GET` on any of `paths` (exact paths, a query allowed).
    pub(crate) const fn new(paths: &'static [&'static str]) -> Self {
        Self(paths)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `start`, the first bytes of a connection, opens a stream's request: `Some` once it can tell.
    fn classify(&self, start: &[u8]) -> Option<bool> {
        let mut undecided = false;
        for path in self.0 {
            let line = [b"GET ".as_slice(), path.as_bytes()];
            let prefix_len = line[0].len() + line[1].len();
            let expected = line.concat();
            let seen = start.len().min(prefix_len);
            if start[..seen] != expected[..seen] {
                continue;
            }
            match start.get(prefix_len) {
                Some(b' ' | b'?') => return Some(true),
                Some(_) => {}
                None => undecided = true,
            }
        }
        (!undecided).then_some(false)
    }
}

/// What the first bytes of a connection were.
pub(super) enum Sniffed {
    /// The start of a stream's request (the bytes read so far, its head still to complete).
    Stream(Vec<u8>),
    /// Anything else, for hyper: the bytes read so far, to replay.
    Other(Vec<u8>),
}

/// Reads until the request line shows whether this connection opens a stream. Waits for the first byte as long
/// as the socket lets it (the listener's idle rule ends a silent connection, as hyper's would); the rest of the
/// line must come within `header_read_timeout`.
pub(super) async fn sniff<S: AsyncRead + Unpin>(
    socket: &mut S,
    streams: Streams,
    header_read_timeout: Duration,
) -> io::Result<Sniffed> {
    let mut start = Vec::with_capacity(FIRST_READ_BYTES);
    if socket.read_buf(&mut start).await? == 0 {
        return Ok(Sniffed::Other(start));
    }
    let deadline = tokio::time::Instant::now() + header_read_timeout;
    loop {
        match streams.classify(&start) {
            Some(true) => return Ok(Sniffed::Stream(start)),
            Some(false) => return Ok(Sniffed::Other(start)),
            None => {}
        }
        match tokio::time::timeout_at(deadline, socket.read_buf(&mut start)).await {
            Ok(Ok(0)) => return Ok(Sniffed::Other(start)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

/// Why a stream's request head was refused; answered with [`refusal`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(super) enum HeadError {
    /// The head is over [`MAX_HEAD_BYTES`] or has more than [`MAX_HEADERS`] headers.
    #[error("the request head is over {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers")]
    TooLarge,
    /// Not an HTTP/1 request head.
    #[error("malformed request head: {0}")]
    Malformed(String),
    /// A stream's request carries no body.
    #[error("a request for an event stream must not have a body")]
    Body,
    /// Bytes after the head: a second request on a connection whose response never ends.
    #[error("pipelined requests are not served on an event stream's connection; open another connection")]
    Pipelined,
}

impl HeadError {
    /// The answer telling the client, in the API's JSON error shape.
    pub(super) fn response(&self) -> Response<Body> {
        let (status, code) = match self {
            Self::TooLarge => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "head_too_large"),
            Self::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            Self::Body => (StatusCode::BAD_REQUEST, "unexpected_body"),
            Self::Pipelined => (StatusCode::BAD_REQUEST, "pipelining_unsupported"),
        };
        ApiError::new(status, code, self.to_string()).into_response()
    }
}

/// Reads the rest of a stream request's head after `start` and parses it into a request for the application;
/// `Ok(Err(_))` is a head to refuse, `Err(_)` a connection that failed or closed first.
pub(super) async fn read_head<S: AsyncRead + Unpin>(
    socket: &mut S,
    mut head: Vec<u8>,
    peer: SocketAddr,
) -> io::Result<Result<Request<Body>, HeadError>> {
    loop {
        match parse(&head, peer) {
            Err(Some(refused)) => return Ok(Err(refused)),
            Ok(request) => return Ok(Ok(request)),
            Err(None) if head.len() >= MAX_HEAD_BYTES => return Ok(Err(HeadError::TooLarge)),
            Err(None) => {}
        }
        // Never past the limit: a client cannot make this buffer grow beyond it.
        let room = MAX_HEAD_BYTES - head.len();
        head.reserve(room.min(FIRST_READ_BYTES));
        let read = (&mut *socket).take(room as u64).read_buf(&mut head).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// The request in `bytes`: `Err(None)` when the head is not complete yet.
fn parse(bytes: &[u8], peer: SocketAddr) -> Result<Request<Body>, Option<HeadError>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let length = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Err(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Some(HeadError::TooLarge)),
        Err(e) => return Err(Some(HeadError::Malformed(e.to_string()))),
    };
    if length < bytes.len() {
        return Err(Some(HeadError::Pipelined));
    }
    let malformed = |what: &str| Some(HeadError::Malformed(what.to_owned()));
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(parsed.path.ok_or_else(|| malformed("no request target"))?)
        .version(version)
        .body(Body::empty())
        .map_err(|e| malformed(&e.to_string()))?;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| malformed("bad header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| malformed("bad header value"))?;
        request.headers_mut().append(name, value);
    }
    let declared_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if declared_body {
        return Err(Some(HeadError::Body));
    }
    // Handlers that limit by client address read it here (axum's `ConnectInfo`), as on hyper's path.
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    Ok(request)
}

/// Headers this module writes itself: the connection's framing is its own, not the application's.
fn is_framing(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        HeaderName::from_static("keep-alive"),
    ]
    .contains(name)
}

/// How the body is delimited on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`: a body whose size is known.
    Length,
    /// `Transfer-Encoding: chunked` (HTTP/1.1).
    Chunked,
    /// Until the connection closes (HTTP/1.0 has no chunks).
    Close,
}

/// The response head, with the framing chosen for the body's known length (if any) and the request's `version`.
fn head(response: &Response<Body>, version: Version) -> (Vec<u8>, Framing) {
    let status = response.status();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(format!("HTTP/1.1 {} ", status.as_str()).as_bytes());
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in response.headers() {
        if is_framing(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !response.headers().contains_key(header::DATE) {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT");
        head.extend_from_slice(format!("date: {date}\r\n").as_bytes());
    }
    let framing = match (response.body().size_hint().exact(), version) {
        (Some(length), _) => {
            head.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
            Framing::Length
        }
        (None, Version::HTTP_10) => Framing::Close,
        (None, _) => {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n");
            Framing::Chunked
        }
    };
    head.extend_from_slice(b"connection: close\r\n\r\n");
    (head, framing)
}

/// Writes `bytes` and flushes them (a TLS stream holds them until flushed), within [`WRITE_TIMEOUT`].
async fn send<S: AsyncWrite + Unpin>(socket: &mut S, bytes: &[u8]) -> io::Result<()> {
    let write = async {
        socket.write_all(bytes).await?;
        socket.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// What the body or the client did next.
enum Next {
    Data(Bytes),
    End,
    /// The client closed its side, or sent bytes no one will read (a request after a never-ending response).
    ClientDone,
    Failed,
}

/// Writes `response` for a request of `version`, then closes the connection; a body that never ends is written
/// until the client goes away or `stop` resolves (the stream then ends cleanly, so the client reconnects).
pub(super) async fn respond<S>(
    socket: &mut S,
    response: Response<Body>,
    version: Version,
    stop: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (head, framing) = head(&response, version);
    send(socket, &head).await?;
    drop(head);
    let mut body = response.into_body();
    let mut stop = std::pin::pin!(stop);
    loop {
        // A body of known length is written whole whatever the client does (a refused client may still be
        // sending its head); an open-ended one ends when the client does.
        let watch_client = framing != Framing::Length;
        let next = poll_fn(|cx| next(cx, watch_client.then_some(&mut *socket), &mut body, stop.as_mut())).await;
        match next {
            Next::Data(data) if data.is_empty() => {}
            Next::Data(data) => match framing {
                Framing::Chunked => {
                    let mut chunk = Vec::with_capacity(data.len() + 12);
                    chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    chunk.extend_from_slice(&data);
                    chunk.extend_from_slice(b"\r\n");
                    send(socket, &chunk).await?;
                }
                Framing::Length | Framing::Close => send(socket, &data).await?,
            },
            Next::End => break,
            Next::ClientDone => return Ok(()),
            // An unfinished body is left unfinished: the client sees the stream cut, not a clean end.
            Next::Failed => return Err(io::Error::other("the response body failed")),
        }
    }
    if framing == Framing::Chunked {
        send(socket, b"0\r\n\r\n").await?;
    }
    socket.shutdown().await
}

/// How long a refused client may keep sending before its connection is dropped anyway.
const LINGER: Duration = Duration::from_secs(2);
/// The most a refused client's leftover bytes are read for.
const LINGER_BYTES: usize = 64 * 1024;

/// After a refusal written and the write side shut: reads and drops what the client is still sending (the
/// rest of an oversized head), briefly, so closing with unread bytes does not reset the connection and
/// destroy the answer before the client has read it.
pub(super) async fn linger<S: AsyncRead + Unpin>(socket: &mut S) {
    let drain = async {
        let mut dropped = [0u8; 512];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match socket.read(&mut dropped).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Polls, in order: the client if given (closed, or sending more), the stop signal, the body. Reading one byte
/// at a time holds no buffer: a stream's client sends nothing after its head, so any byte ends the connection.
fn next<S: AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    client: Option<&mut S>,
    body: &mut Body,
    stop: Pin<&mut impl Future<Output = ()>>,
) -> Poll<Next> {
    if let Some(socket) = client {
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        if Pin::new(socket).poll_read(cx, &mut probe).is_ready() {
            return Poll::Ready(Next::ClientDone);
        }
    }
    if stop.poll(cx).is_ready() {
        return Poll::Ready(Next::End);
    }
    match Pin::new(body).poll_frame(cx) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(None) => Poll::Ready(Next::End),
        Poll::Ready(Some(Err(_))) => Poll::Ready(Next::Failed),
        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
            Ok(data) => Poll::Ready(Next::Data(data)),
            // Trailers have no place in this framing; the stream is over.
            Err(_) => Poll::Ready(Next::End),
        },
    }
}

/// A socket whose first bytes were already read: they are read again first, then the socket's own. The copy is
/// freed as soon as it has been read.
pub(super) struct Replay<S> {
    start: Option<Vec<u8>>,
    position: usize,
    inner: S,
}

impl<S> Replay<S> {
    pub(super) fn new(start: Vec<u8>, inner: S) -> Self {
        Self {
            start: (!start.is_empty()).then_some(start),
            position: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(start) = &this.start {
            let rest = &start[this.position..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.position += n;
            if this.position == start.len() {
                this.start = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: Streams = Streams::new(&["/web/events"]);

    #[test]
    fn only_a_get_of_a_stream_path_is_a_stream() {
        assert_eq!(EVENTS.classify(b"GET /web/events?token=x HTTP/1.1\r\n"), Some(true));
        assert_eq!(EVENTS.classify(b"GET /web/events HTTP/1.1\r\n"), Some(true));
        assert_eq!(EVENTS.classify(b"GET /web/eventsx HTTP/1.1\r\n"), Some(false));
        assert_eq!(EVENTS.classify(b"OPTIONS /web/events HTTP/1.1\r\n"), Some(false));
        assert_eq!(EVENTS.classify(b"PRI * HTTP/2.0\r\n"), Some(false));
        assert_eq!(EVENTS.classify(b"GET /web/ev"), None, "undecided until the path ends");
        assert_eq!(EVENTS.classify(b""), None);
        assert_eq!(Streams::NONE.classify(b""), Some(false));
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn heads_are_parsed_or_refused_with_a_reason() {
        let request = parse(
            b"GET /web/events?token=t HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 5\r\n\r\n",
            peer(),
        )
        .unwrap();
        assert_eq!(request.uri().query(), Some("token=t"));
        assert_eq!(request.headers()["last-event-id"], "5");
        assert!(matches!(parse(b"GET /web/events HTTP/1.1\r\nHost:", peer()), Err(None)));
        let pipelined = b"GET /web/events HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n";
        assert_eq!(parse(pipelined, peer()).err(), Some(Some(HeadError::Pipelined)));
        let with_body = b"GET /web/events HTTP/1.1\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parse(with_body, peer()).err(), Some(Some(HeadError::Body)));
        assert!(matches!(
            parse(b"GET /web/events HTTP/1.1\r\nbad header\r\n\r\n", peer()),
            Err(Some(HeadError::Malformed(_)))
        ));
    }

    #[tokio::test]
    async fn replayed_bytes_come_first_then_the_socket() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"Host: x\r\n\r\n").await.unwrap();
        drop(client);
        let mut replay = Replay::new(b"GET / HTTP/1.1\r\n".to_vec(), server);
        let mut read = Vec::new();
        replay.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(replay.start.is_none(), "the copy is freed once read");
    }
}
