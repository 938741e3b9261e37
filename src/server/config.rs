//! The listeners' sections: `[server]` (HTTP: REST, JSON-RPC, WeChat, legacy routes, health), `[grpc]`,
//! `[jsonrpc]` and `[admin]`, with their limits, defaults (each with its reason) and validation rules.
//!
//! Owns what the operator can set about listening; must never bind a socket (validation is pure).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigIssue;

/// `[server]`: the HTTP listener serving the REST API, health and metrics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default: exposing it is a deliberate choice.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take end to end before it is answered 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish before the process exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// On SIGINT/SIGTERM, how long `/readyz` (and gRPC health) answer not-serving while requests are still
    /// served, so load balancers stop sending before the listeners close.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Longest a client may take to send a request's headers; a slower one is disconnected.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in flight (keep-alive, or nothing sent at all).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most connections open at once on each HTTP listener (public, API); more are closed at once.
    pub max_connections: usize,
    /// Most connections open at once from one client address on each HTTP listener.
    pub max_connections_per_client: usize,
    /// HTTPS on the public and API listeners. Unset: plain HTTP, for a TLS-terminating proxy in front.
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: the certificate and key the HTTP listeners present.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// 1 MiB: far above any chat message, small enough that a flood of large bodies cannot exhaust memory.
const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// Below the 30 s that most HTTP clients and proxies give up at, above any healthy store write.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Within the 30 s that orchestrators usually wait between SIGTERM and SIGKILL.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// Long enough for a load balancer polling `/readyz` every second or two to take the node out of rotation.
const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(3);
/// A real client sends its headers in one round trip; ten seconds covers a slow mobile link.
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than typical proxies' own keep-alive (nginx 60 s upstream default is 60 s idle), so the proxy closes
/// first and never sends on a connection we just closed.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Below a default 1,024-descriptor limit, leaving room for the store, the log and outbound calls.
const DEFAULT_MAX_CONNECTIONS: usize = 768;
/// A proxy in front fans many users into few addresses; a direct client rarely needs more than a few.
const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            drain_delay: DEFAULT_DRAIN_DELAY,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            tls: None,
        }
    }
}

/// `[grpc]`: the gRPC listener (its own port; HTTP/2 only).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request or response message, in bytes; larger requests get RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// Longest a unary call may take, whatever deadline the client sets (a shorter client deadline wins).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// 4 MiB: gRPC's customary default, far above any chat message and a page of 500 messages.
const DEFAULT_GRPC_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_message_bytes: DEFAULT_GRPC_MAX_MESSAGE_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Below common proxies' 60 s idle cut-off, so a quiet subscription is not dropped by a proxy in between.
const DEFAULT_WS_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Two missed pings: a peer that answers neither is gone.
const DEFAULT_WS_INACTIVE_LIMIT: Duration = Duration::from_secs(65);

/// `[jsonrpc]`: JSON-RPC 2.0 at `/rpc` on the HTTP listener (HTTP POST and WebSocket upgrade).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonRpcConfig {
    /// Largest request (a call, a batch, or a WebSocket message), in bytes.
    pub max_request_bytes: u32,
    /// Largest response, in bytes (a page of 500 messages fits comfortably).
    pub max_response_bytes: u32,
    /// Most calls in one batch; a larger batch is answered with one error.
    pub max_batch_len: u32,
    /// Most concurrent JSON-RPC connections (WebSocket sessions and in-flight HTTP calls).
    pub max_connections: u32,
    /// Most live subscriptions on one WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// How often an open WebSocket is pinged.
    #[serde(with = "humantime_serde")]
    pub ws_ping_interval: Duration,
    /// A WebSocket whose peer answers nothing (no pong, no message) for this long is closed: a dead or stalled
    /// client does not hold a connection slot.
    #[serde(with = "humantime_serde")]
    pub ws_inactive_limit: Duration,
}

impl Default for JsonRpcConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_batch_len: 50,
            max_connections: 1024,
            max_subscriptions_per_connection: 64,
            ws_ping_interval: DEFAULT_WS_PING_INTERVAL,
            ws_inactive_limit: DEFAULT_WS_INACTIVE_LIMIT,
        }
    }
}

/// `[admin]`: a separate listener for operators: `/healthz`, `/readyz`, `/metrics` and the admin API under
/// `/admin/` (destinations, breakers, dead letters).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on. Keep it private: metrics reveal traffic volumes.
    pub listen: SocketAddr,
    /// Bearer token the admin API requires (`Authorization: Bearer ...`). Optional on loopback, where only local
    /// users can reach it; required otherwise.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
        }
    }
}

/// Issues in the RPC and admin sections.
pub(crate) fn rpc_issues(grpc: &GrpcConfig, jsonrpc: &JsonRpcConfig) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let mut check = |ok: bool, key: &'static str, message: &str| {
        if !ok {
            issues.push(ConfigIssue {
                key: key.to_owned(),
                message: message.to_owned(),
            });
        }
    };
    check(
        (1024..=64 * 1024 * 1024).contains(&grpc.max_message_bytes),
        "grpc.max_message_bytes",
        "must be between 1024 and 67108864",
    );
    check(
        !grpc.request_timeout.is_zero(),
        "grpc.request_timeout",
        "must be greater than 0s",
    );
    check(
        jsonrpc.max_request_bytes >= 1024,
        "jsonrpc.max_request_bytes",
        "must be at least 1024",
    );
    check(
        jsonrpc.max_response_bytes >= 1024,
        "jsonrpc.max_response_bytes",
        "must be at least 1024",
    );
    check(
        jsonrpc.max_batch_len >= 1,
        "jsonrpc.max_batch_len",
        "must be at least 1",
    );
    check(
        jsonrpc.max_connections >= 1,
        "jsonrpc.max_connections",
        "must be at least 1",
    );
    check(
        !jsonrpc.ws_ping_interval.is_zero() && jsonrpc.ws_inactive_limit > jsonrpc.ws_ping_interval,
        "jsonrpc.ws_inactive_limit",
        "ws_ping_interval must be positive and ws_inactive_limit longer than it",
    );
    check(
        jsonrpc.max_subscriptions_per_connection >= 1,
        "jsonrpc.max_subscriptions_per_connection",
        "must be at least 1",
    );
    issues
}

impl ServerConfig {
    /// Every broken rule of `[server]`.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if !(MIN_BODY_LIMIT..=MAX_BODY_LIMIT).contains(&self.body_limit_bytes) {
            issues.push(ConfigIssue::new(
                "server.body_limit_bytes",
                format!(
                    "must be between {MIN_BODY_LIMIT} and {MAX_BODY_LIMIT}, got {}",
                    self.body_limit_bytes
                ),
            ));
        }
        if self.request_timeout.is_zero() {
            issues.push(ConfigIssue::new("server.request_timeout", "must be greater than 0s"));
        }
        if self.shutdown_grace.is_zero() {
            issues.push(ConfigIssue::new("server.shutdown_grace", "must be greater than 0s"));
        }
        for (key, d) in [
            ("server.header_read_timeout", self.header_read_timeout),
            ("server.idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                issues.push(ConfigIssue::new(key, "must be greater than 0s"));
            }
        }
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            issues.push(ConfigIssue::new(
                "server.max_connections",
                "max_connections and max_connections_per_client must be at least 1",
            ));
        }
        issues
    }
}

impl AdminConfig {
    /// Every broken rule of `[admin]`.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            return vec![ConfigIssue::new(
                "admin.token",
                "required when admin.listen is not a loopback address: the admin API can replay and discard",
            )];
        }
        Vec::new()
    }
}

const MIN_BODY_LIMIT: usize = 1024;
const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_limits_are_checked_with_their_keys() {
        let jsonrpc = JsonRpcConfig {
            max_batch_len: 0,
            ..JsonRpcConfig::default()
        };
        let keys: Vec<_> = rpc_issues(&GrpcConfig::default(), &jsonrpc)
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(keys, ["jsonrpc.max_batch_len"]);
    }
}
