//! Serving one HTTP listener with explicit limits: connections per listener and per client address, a
//! header-read timeout, an idle timeout for connections with no request in flight, and a graceful shutdown
//! bounded by the grace period.
//!
//! Why not `axum::serve`: it accepts every connection and keeps an idle or half-sent one open for as long as
//! the client likes, so a few hundred stalled sockets exhaust the descriptors and starve everyone (issue 18).
//! hyper's connection builder offers the header-read timeout; the idle rule and the counts are here.
//!
//! With `[server.tls]`, each admitted connection's TLS handshake runs in its own task under the header-read
//! timeout (a handshake that never completes is a slow header by another name).
//!
//! On a listener with stream paths (the public one with the web channel on: `GET /web/events`), each new
//! connection's first request line decides who serves it: a stream's request is served by `stream.rs`, outside
//! hyper's dispatcher and its 16 KiB of buffers per connection; anything else goes to hyper with the bytes read
//! so far replayed. Either way the same application answers, under the same counts and idle rule.
//!
//! Must never: hold a request that is being answered to the idle rule (a slow handler is not an idle client),
//! or refuse a connection silently (refusals are counted in `protofuse_connections_refused_total`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::stream::{self, Sniffed, Streams};
use crate::telemetry::metric;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest a client may take to send a request's headers.
    pub(crate) header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in flight and no bytes moving.
    pub(crate) idle_timeout: Duration,
    /// Most connections open at once on this listener.
    pub(crate) max_connections: usize,
    /// Most connections open at once from one client address.
    pub(crate) max_connections_per_client: usize,
}

/// Open connections, in total and per client address.
#[derive(Default)]
struct Counts {
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; gives its place back when dropped.
struct Admitted {
    counts: Arc<Counts>,
    client: IpAddr,
}

impl Counts {
    fn admit(self: &Arc<Self>, client: IpAddr, limits: &Limits) -> Option<Admitted> {
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mine = per_client.entry(client).or_default();
        if *mine >= limits.max_connections_per_client || self.total.load(Ordering::Acquire) >= limits.max_connections {
            if *mine == 0 {
                per_client.remove(&client);
            }
            return None;
        }
        *mine += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Some(Admitted {
            counts: self.clone(),
            client,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut per_client = self
            .counts
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&self.client);
            }
        }
        self.counts.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the idle rule needs to know about a connection: requests in flight, and when it was last busy.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    last_busy_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_busy_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_busy_ms.store(ms, Ordering::Release);
    }

    fn idle_deadline(&self, timeout: Duration) -> Instant {
        self.started + Duration::from_millis(self.last_busy_ms.load(Ordering::Acquire)) + timeout
    }
}

/// Marks a request in flight from its arrival until its response body has been sent.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, failing its reads once it has been idle (nothing in flight, no bytes moved) for
/// the idle timeout; hyper then closes the connection. It holds the connection's place in the counts, so a
/// socket hyper hands over on an upgrade (a visitor's WebSocket) stays counted for as long as it is open.
struct Idle {
    inner: TcpStream,
    activity: Arc<Activity>,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    _admitted: Admitted,
}

impl Idle {
    fn new(inner: TcpStream, activity: Arc<Activity>, timeout: Duration, admitted: Admitted) -> Self {
        Self {
            timer: Box::pin(tokio::time::sleep_until(activity.idle_deadline(timeout))),
            inner,
            activity,
            timeout,
            _admitted: admitted,
        }
    }
}

impl AsyncRead for Idle {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.activity.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if self.activity.in_flight.load(Ordering::Acquire) > 0 {
                    return Poll::Pending;
                }
                let deadline = self.activity.idle_deadline(self.timeout);
                if self.timer.deadline() != deadline {
                    self.timer.as_mut().reset(deadline);
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle connection"))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for Idle {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` under `limits` (over TLS when `tls` is given), the `GET`s of `streams` outside
/// hyper, until `stop` turns true; then stops accepting, lets requests in flight finish within `grace` (streams
/// end at once) and closes what is left.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    streams: Streams,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    name: &'static str,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.idle_timeout / 2);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let counts = Arc::new(Counts::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait a moment, so a
                    // full table is not spun on, and go on; timeouts free descriptors.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Some(admitted) = counts.admit(peer.ip(), &limits) else {
            metrics::counter!(metric::CONNECTIONS_REFUSED, "listener" => name).increment(1);
            tracing::debug!(listener = name, client = %peer.ip(), "connection refused: limit reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let socket = Idle::new(stream, activity.clone(), limits.idle_timeout, admitted);
        let connection = Connection {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            app: app.clone(),
            streams,
            stop: stop.clone(),
            header_read_timeout: limits.header_read_timeout,
            activity,
            peer,
            name,
        };
        // A task per path: a connection's task is allocated at the size of its largest state for its whole
        // life, and the TLS path's (rustls' connection, the handshake) is several KiB that a plain connection,
        // such as an idle visitor's event stream, must not carry (BENCHMARKS.md, "Idle web visitors").
        match &tls {
            None => drop(tokio::spawn(connection.serve(socket))),
            Some(acceptor) => drop(tokio::spawn(serve_tls(connection, acceptor.clone(), socket))),
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!(listener = name, "stopped"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, ?grace, "shutdown grace elapsed; closing remaining connections");
        }
    }
}

/// The TLS handshake (within the header-read timeout), then `connection` on the encrypted stream.
async fn serve_tls(connection: Connection, acceptor: TlsAcceptor, socket: Idle) {
    let (name, peer) = (connection.name, connection.peer);
    match tokio::time::timeout(connection.header_read_timeout, acceptor.accept(socket)).await {
        Ok(Ok(tls)) => connection.serve(tls).await,
        Ok(Err(e)) => tracing::debug!(listener = name, client = %peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(listener = name, client = %peer, "TLS handshake timed out"),
    }
}

/// One admitted connection, ready to serve HTTP once its transport (plain or TLS) is established.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
    app: Router,
    streams: Streams,
    stop: watch::Receiver<bool>,
    header_read_timeout: Duration,
    activity: Arc<Activity>,
    peer: SocketAddr,
    name: &'static str,
}

impl Connection {
    async fn serve<S>(self, mut socket: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Each path is boxed so the task of an idle connection holds the state of the path it took, not the
        // larger of the two (hyper's connection is a few KiB inline).
        if self.streams.is_empty() {
            return Box::pin(self.serve_hyper(socket)).await;
        }
        match stream::sniff(&mut socket, self.streams, self.header_read_timeout).await {
            Ok(Sniffed::Stream(start)) => Box::pin(self.serve_stream(socket, start)).await,
            Ok(Sniffed::Other(start)) => Box::pin(self.serve_hyper(stream::Replay::new(start, socket))).await,
            Err(e) => {
                tracing::debug!(listener = self.name, client = %self.peer, error = %e, "connection ended before a request");
            }
        }
    }

    /// A stream's request (its first bytes in `start`), answered by the application and written by
    /// `stream.rs`; the connection closes when the response ends.
    async fn serve_stream<S>(self, mut socket: S, start: Vec<u8>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            app,
            watcher,
            mut stop,
            header_read_timeout,
            activity,
            peer,
            name,
            ..
        } = self;
        // Held until the stream ends: the graceful shutdown counts this connection like hyper's, and the idle
        // rule leaves a stream alone while it is open (a quiet stream is not an idle client).
        let _watched = watcher;
        let _in_flight = InFlight::begin(&activity);
        // Boxed: reading the head, calling the application and answering a refusal take more room than writing
        // the stream, and an open stream should hold only what writing it needs.
        let answered = Box::pin(stream_response(
            &mut socket,
            start,
            app,
            header_read_timeout,
            peer,
            name,
        ))
        .await;
        let Some((response, version)) = answered else {
            return;
        };
        let stopping = async move { stopped(&mut stop).await };
        if let Err(e) = stream::respond(&mut socket, response, version, stopping).await {
            tracing::debug!(listener = name, client = %peer, error = %e, "stream ended with an error");
        }
    }

    /// Anything but a stream: hyper serves the connection (HTTP/1 keep-alive, HTTP/2, upgrades).
    async fn serve_hyper<S>(self, socket: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            builder,
            watcher,
            app,
            activity,
            peer,
            name,
            ..
        } = self;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let in_flight = InFlight::begin(&activity);
            let app = app.clone();
            // Handlers that limit by client address read it here (axum's `ConnectInfo`).
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            async move {
                let response = app.oneshot(request.map(Body::new)).await?;
                // The request stays in flight until its body has been sent (a long stream is not idle).
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _held = &in_flight;
                        frame
                    }))
                }))
            }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(socket), service);
        if let Err(e) = watcher.watch(connection.into_owned()).await {
            tracing::debug!(listener = name, client = %peer, error = %e, "connection ended with an error");
        }
    }
}

/// A stream request's head read from `socket` (its first bytes in `start`) and answered by `app`: the response
/// to write, or `None` when the connection ended or the head was refused (the refusal already written).
async fn stream_response<S>(
    socket: &mut S,
    start: Vec<u8>,
    app: Router,
    header_read_timeout: Duration,
    peer: SocketAddr,
    name: &'static str,
) -> Option<(axum::response::Response, hyper::Version)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = tokio::time::timeout(header_read_timeout, stream::read_head(socket, start, peer)).await;
    match head {
        Err(_) => {
            tracing::debug!(listener = name, client = %peer, "stream request head timed out");
            None
        }
        Ok(Err(e)) => {
            tracing::debug!(listener = name, client = %peer, error = %e, "connection ended in a stream request head");
            None
        }
        Ok(Ok(Err(refused))) => {
            tracing::debug!(listener = name, client = %peer, error = %refused, "stream request refused");
            let response = refused.response();
            // Counted as hyper's path counts a request no route took (`observe.rs`).
            let status = response.status().as_u16().to_string();
            metrics::counter!(metric::HTTP_REQUESTS, "method" => "GET", "route" => "unmatched", "status" => status)
                .increment(1);
            if let Err(e) = stream::respond(socket, response, hyper::Version::HTTP_11, std::future::pending()).await {
                tracing::debug!(listener = name, client = %peer, error = %e, "refusal not delivered");
            }
            stream::linger(socket).await;
            None
        }
        Ok(Ok(Ok(request))) => {
            let version = request.version();
            match app.oneshot(request).await {
                Ok(response) => Some((response, version)),
                Err(never) => match never {},
            }
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, inside, so the caller's future stays `Send`.
    let _ = stop.wait_for(|stopping| *stopping).await.map(|_| ());
}

/// Binds `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}
