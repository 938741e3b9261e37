//! What every gRPC call passes through before the service: API-key authentication and the method's scope
//! (the same `[api]` keys as REST and JSON-RPC; the health service needs none), the deadline
//! (client `grpc-timeout` capped by `[grpc] request_timeout`) and gRPC-conventional status codes for
//! refusals tonic makes itself ([`EdgeLayer`]).
//!
//! Must never: look at message contents; decisions here are made from metadata and timing only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http;
use tonic::Status;

use crate::auth::{AuthError, Authenticator, Scope, presented};
use crate::telemetry::metric;

/// Below this, a deadline cannot cover even a local write: the call is refused before it starts.
const MIN_DEADLINE: Duration = Duration::from_millis(1);

/// The method's name as a metric label: one of a fixed set, so a client cannot grow the label's cardinality.
fn method_label(path: &str) -> &'static str {
    const KNOWN: [&str; 5] = [
        "SendMessage",
        "GetConversation",
        "ListMessages",
        "ListConversations",
        "Subscribe",
    ];
    let name = path.rsplit('/').next().unwrap_or_default();
    if path.starts_with("/grpc.health.v1.") {
        return "health";
    }
    KNOWN.into_iter().find(|k| *k == name).unwrap_or("other")
}

/// The scope a gRPC method needs; `None` for the health service, which probes reach without a key.
fn scope_of(path: &str) -> Option<Scope> {
    if path.starts_with("/grpc.health.v1.") {
        return None;
    }
    match path.rsplit('/').next() {
        Some("SendMessage") => Some(Scope::Write),
        _ => Some(Scope::Read),
    }
}

fn refusal(e: &AuthError) -> Status {
    match e {
        AuthError::Missing | AuthError::Invalid => Status::unauthenticated(e.to_string()),
        AuthError::Forbidden(_) => Status::permission_denied(e.to_string()),
        AuthError::RateLimited(wait) => {
            let mut status = Status::resource_exhausted(e.to_string());
            // The gRPC retry convention: a pushback the client's retry policy honours.
            if let Ok(value) = wait.as_millis().to_string().parse() {
                status.metadata_mut().insert("grpc-retry-pushback-ms", value);
            }
            status
        }
    }
}

/// Bounds each call by its deadline and maps tonic's own size refusal to RESOURCE_EXHAUSTED.
#[derive(Clone)]
pub(super) struct EdgeLayer {
    cap: Duration,
    auth: Arc<Authenticator>,
}

impl EdgeLayer {
    pub(super) fn new(cap: Duration, auth: Arc<Authenticator>) -> Self {
        Self { cap, auth }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            cap: self.cap,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Edge<S> {
    inner: S,
    cap: Duration,
    auth: Arc<Authenticator>,
}

type Reply = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for Edge<S>
where
    S: tower::Service<http::Request<B>, Response = Reply> + Send,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(scope) = scope_of(request.uri().path()) {
            let headers = request.headers();
            let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let checked = self
                .auth
                .authenticate(presented(text("authorization"), text("x-api-key")))
                .and_then(|caller| caller.require(scope));
            if let Err(e) = checked {
                let reply = refusal(&e).into_http();
                return Box::pin(async move { Ok(reply) });
            }
        }
        let deadline = grpc_timeout(request.headers()).map_or(self.cap, |d| d.min(self.cap));
        if deadline < MIN_DEADLINE {
            // A call whose deadline has (as good as) passed is refused before it can write anything: the client
            // has given up on the answer, and a write it never hears of would only surprise it.
            let reply = Status::deadline_exceeded("the call's deadline had passed on arrival").into_http();
            return Box::pin(async move { Ok(reply) });
        }
        let method = method_label(request.uri().path());
        let started = tokio::time::Instant::now();
        let call = self.inner.call(request);
        // For a server stream this bounds the wait for the response head only; the stream then lives on.
        Box::pin(async move {
            let reply = match tokio::time::timeout(deadline, call).await {
                Ok(reply) => reply.map(too_large_is_resource_exhausted),
                Err(_) => Ok(Status::deadline_exceeded("deadline exceeded before the call completed").into_http()),
            };
            if let Ok(reply) = &reply {
                // An error is a trailers-only reply, its status in the headers; a success sends it in trailers.
                let code = reply
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned();
                metrics::counter!(metric::GRPC_CALLS, "method" => method, "code" => code).increment(1);
                metrics::histogram!(metric::GRPC_DURATION, "method" => method).record(started.elapsed().as_secs_f64());
            }
            reply
        })
    }
}

/// The `grpc-timeout` header: digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`). Malformed means none.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let raw = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// tonic refuses an oversized message with OUT_OF_RANGE; gRPC's convention (and every other implementation)
/// is RESOURCE_EXHAUSTED, which clients treat as "do not retry as is".
fn too_large_is_resource_exhausted(mut reply: Reply) -> Reply {
    let headers = reply.headers_mut();
    let oversized = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains("too%20large") || m.contains("too large"));
    if oversized {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeout() {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-timeout", http::HeaderValue::from_static("250m"));
        assert_eq!(grpc_timeout(&h), Some(Duration::from_millis(250)));
        h.insert("grpc-timeout", http::HeaderValue::from_static("x"));
        assert_eq!(grpc_timeout(&h), None);
    }

    #[test]
    fn methods_need_their_scope_and_health_needs_none() {
        assert_eq!(
            scope_of("/protofuse.v1.ConversationService/SendMessage"),
            Some(Scope::Write)
        );
        assert_eq!(
            scope_of("/protofuse.v1.ConversationService/Subscribe"),
            Some(Scope::Read)
        );
        assert_eq!(scope_of("/grpc.health.v1.Health/Check"), None);
    }
}
