//! What every gRPC call passes through before the service: API-key authentication ([`ApiKeys`]), the deadline
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
use tonic::service::Interceptor;

/// Accepts a call when no keys are configured, or when `authorization: Bearer <key>` or `x-api-key: <key>`
/// names a configured key.
#[derive(Clone)]
pub(super) struct ApiKeys(Arc<[String]>);

impl ApiKeys {
    pub(super) fn new(keys: &[String]) -> Self {
        Self(keys.into())
    }

    fn accepts(&self, presented: &str) -> bool {
        // Compare every key in full so timing does not reveal how much of a guess was right.
        self.0.iter().fold(false, |found, key| {
            found | constant_time_eq(key.as_bytes(), presented.as_bytes())
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for ApiKeys {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if self.0.is_empty() {
            return Ok(request);
        }
        let metadata = request.metadata();
        let presented = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| metadata.get("x-api-key").and_then(|v| v.to_str().ok()));
        match presented {
            Some(key) if self.accepts(key) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid API key")),
            None => Err(Status::unauthenticated(
                "missing API key: send `authorization: Bearer <key>` or `x-api-key` metadata",
            )),
        }
    }
}

/// Bounds each call by its deadline and maps tonic's own size refusal to RESOURCE_EXHAUSTED.
#[derive(Clone)]
pub(super) struct EdgeLayer {
    cap: Duration,
}

impl EdgeLayer {
    pub(super) fn new(cap: Duration) -> Self {
        Self { cap }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, cap: self.cap }
    }
}

#[derive(Clone)]
pub(super) struct Edge<S> {
    inner: S,
    cap: Duration,
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
        let deadline = grpc_timeout(request.headers()).map_or(self.cap, |d| d.min(self.cap));
        let call = self.inner.call(request);
        // For a server stream this bounds the wait for the response head only; the stream then lives on.
        Box::pin(async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(reply) => reply.map(too_large_is_resource_exhausted),
                Err(_) => Ok(Status::deadline_exceeded("deadline exceeded before the call completed").into_http()),
            }
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
    fn keys_compare_whole() {
        let keys = ApiKeys::new(&["secret".to_owned()]);
        assert!(keys.accepts("secret"));
        assert!(!keys.accepts("secre"));
        assert!(!keys.accepts("secret2"));
    }
}
